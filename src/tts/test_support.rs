//! Test helpers for the speech module: a private PulseAudio server with a null sink, so tests can
//! play audio on a machine without a sound card and record what came out of its monitor.
//!
//! Tests are skipped (and recorded as such, see [`crate::test_skip`]) when a needed program is
//! missing, and fail instead when `ATLAS_REQUIRE_DESKTOP=1` is set, as CI does on a prepared
//! machine.

use std::sync::{Mutex, MutexGuard};

pub(crate) use crate::test_pulse::{PulseServer, Recording};

/// Serialises tests that use the process-wide sound server settings and the shared monitor.
static AUDIO_LOCK: Mutex<()> = Mutex::new(());

/// Root mean square of samples.
pub(crate) fn rms(samples: &[f32]) -> f32 {
    (samples.iter().map(|s| s * s).sum::<f32>() / samples.len().max(1) as f32).sqrt()
}

/// True when `program` is on `PATH`; otherwise the test is skipped (a failure under
/// `ATLAS_REQUIRE_DESKTOP=1`).
pub(crate) fn require(program: &str, package: &str) -> bool {
    crate::test_skip::require_programs(crate::test_skip::Need::Desktop, &[(program, package)])
}

/// True when espeak-ng can be run (see [`require`]).
pub(crate) fn espeak_present() -> bool {
    require("espeak-ng", "espeak-ng")
}

/// The shared PulseAudio server (see [`crate::test_pulse`]) made this process's sound server:
/// while it lives, this process's `XDG_RUNTIME_DIR` points at it and other audio tests wait.
pub(crate) struct VirtualSpeaker {
    /// Variables to put back on drop, oldest first.
    previous: Vec<(String, Option<std::ffi::OsString>)>,
    server: PulseServer,
    _lock: MutexGuard<'static, ()>,
}

/// Runs `f` with the environment variable `key` set to `value`, holding the audio lock so no
/// other audio test reads the environment meanwhile; restores the old value afterwards.
pub(crate) fn with_env_var<T>(key: &str, value: &str, f: impl FnOnce() -> T) -> T {
    let _lock = AUDIO_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let previous = std::env::var_os(key);
    // SAFETY: see `VirtualSpeaker::start`; the audio lock is held.
    unsafe { std::env::set_var(key, value) };
    let result = f();
    restore_var(key, previous);
    result
}

/// Puts an environment variable back as it was. Call only while holding the audio lock.
fn restore_var(key: &str, previous: Option<std::ffi::OsString>) {
    // SAFETY: callers hold AUDIO_LOCK (see `VirtualSpeaker::start`).
    unsafe {
        match previous {
            Some(value) => std::env::set_var(key, value),
            None => std::env::remove_var(key),
        }
    }
}

impl VirtualSpeaker {
    /// Starts the server, or returns `None` when PulseAudio or its tools are not installed.
    pub(crate) fn start() -> Option<Self> {
        let lock = AUDIO_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let server = PulseServer::start()?;
        let mut vs = Self {
            previous: Vec::new(),
            server,
            _lock: lock,
        };
        let runtime_dir = vs.server.runtime_dir().to_string_lossy().into_owned();
        vs.set_var("XDG_RUNTIME_DIR", &runtime_dir);
        // libspeechd works out its default socket from the runtime dir only once per process
        // (GLib caches the dir), so name this test's speech-dispatcher socket explicitly.
        vs.set_var(
            "SPEECHD_ADDRESS",
            &format!("unix_socket:{runtime_dir}/speech-dispatcher/speechd.sock"),
        );
        Some(vs)
    }

    /// Sets an environment variable for this process until the server is dropped.
    pub(crate) fn set_var(&mut self, key: &str, value: &str) {
        self.previous.push((key.to_owned(), std::env::var_os(key)));
        // SAFETY: every test that reads the sound server settings (audio output, speech
        // dispatcher) holds AUDIO_LOCK, as `self` does, so no other thread reads the
        // environment through C while it changes.
        unsafe { std::env::set_var(key, value) };
    }

    /// Starts recording the sink's monitor (16 kHz mono).
    pub(crate) fn record(&self) -> Recording {
        self.server.record()
    }
}

impl Drop for VirtualSpeaker {
    fn drop(&mut self) {
        // The server (and a speech-dispatcher it started) ends when the field drops, after this.
        while let Some((key, value)) = self.previous.pop() {
            restore_var(&key, value);
        }
    }
}

/// A speech service that accepts connections and never answers: what a stalled
/// speech-dispatcher looks like to a client. Point `SPEECHD_ADDRESS` at [`Self::address`].
pub(crate) struct StalledService {
    dir: tempfile::TempDir,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl StalledService {
    /// Listens on a socket in a new temporary folder; connections are held open, unread.
    pub(crate) fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let listener =
            std::os::unix::net::UnixListener::bind(dir.path().join("speechd.sock")).expect("bind");
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = std::sync::Arc::clone(&accepted);
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming().flatten() {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                held.push(conn);
            }
        });
        Self { dir, accepted }
    }

    /// The address in speech-dispatcher's `SPEECHD_ADDRESS` form.
    pub(crate) fn address(&self) -> String {
        format!(
            "unix_socket:{}",
            self.dir.path().join("speechd.sock").display()
        )
    }

    /// How many clients connected.
    pub(crate) fn connections(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}
