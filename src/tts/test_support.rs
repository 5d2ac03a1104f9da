//! Test helpers for the speech module: a private PulseAudio server with a null sink, so tests can
//! play audio on a machine without a sound card and record what came out of its monitor.
//!
//! Tests are skipped (and recorded as such, see [`crate::test_skip`]) when a needed program is
//! missing, and fail instead when `ATLAS_REQUIRE_DESKTOP=1` is set, as CI does on a prepared
//! machine.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

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

/// A PulseAudio server in its own runtime directory with a null sink `vsink` as default output.
/// While it lives, this process's `XDG_RUNTIME_DIR` points at it and other audio tests wait.
pub(crate) struct VirtualSpeaker {
    dir: tempfile::TempDir,
    server: Child,
    /// Variables to put back on drop, oldest first.
    previous: Vec<(String, Option<std::ffi::OsString>)>,
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
        if !(require("pulseaudio", "pulseaudio")
            && require("pactl", "pulseaudio-utils")
            && require("parec", "pulseaudio-utils"))
        {
            return None;
        }
        let lock = AUDIO_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().expect("temp runtime dir");
        make_private(dir.path());
        // Run in the foreground as our child, so the test can end it however it finishes.
        let server = Command::new("pulseaudio")
            .args([
                "-n",
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--disallow-exit",
            ])
            .args(["-L", "module-native-protocol-unix auth-anonymous=1"])
            .args(["-L", "module-null-sink sink_name=vsink rate=48000"])
            .env("XDG_RUNTIME_DIR", dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pulseaudio");
        let mut vs = Self {
            dir,
            server,
            previous: Vec::new(),
            _lock: lock,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !vs.pactl(&["info"]) {
            assert!(Instant::now() < deadline, "pulseaudio did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(vs.pactl(&["set-default-sink", "vsink"]), "set default sink");
        let runtime_dir = vs.dir.path().to_string_lossy().into_owned();
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

    /// Runs pactl against this server; true on success.
    fn pactl(&self, args: &[&str]) -> bool {
        Command::new("pactl")
            .args(args)
            .env("XDG_RUNTIME_DIR", self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Starts recording the sink's monitor (16 kHz mono).
    pub(crate) fn record(&self) -> Recording {
        let mut child = Command::new("parec")
            .args(["-d", "vsink.monitor", "--raw", "--format=s16le"])
            .args(["--channels=1", "--rate=16000"])
            .env("XDG_RUNTIME_DIR", self.dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start parec");
        let mut stdout = child.stdout.take().expect("parec stdout");
        let reader = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = stdout.read_to_end(&mut bytes);
            bytes
        });
        Recording { child, reader }
    }
}

/// Gives `dir` the owner-only permissions PulseAudio expects of a runtime directory.
fn make_private(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).expect("chmod 700");
}

impl Drop for VirtualSpeaker {
    fn drop(&mut self) {
        // A speech-dispatcher auto-started in this runtime dir would outlive the test by its
        // idle timeout; end it now.
        let pid_file = self
            .dir
            .path()
            .join("speech-dispatcher/pid/speech-dispatcher.pid");
        if let Ok(pid) = std::fs::read_to_string(pid_file) {
            let _ = Command::new("kill")
                .arg(pid.trim())
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.server.kill();
        let _ = self.server.wait();
        while let Some((key, value)) = self.previous.pop() {
            restore_var(&key, value);
        }
    }
}

/// A running `parec` capture.
pub(crate) struct Recording {
    child: Child,
    reader: std::thread::JoinHandle<Vec<u8>>,
}

impl Recording {
    /// Stops the capture and returns its samples.
    pub(crate) fn finish(mut self) -> Vec<f32> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let bytes = self.reader.join().unwrap_or_default();
        bytes
            .chunks_exact(2)
            .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32_768.0)
            .collect()
    }
}
