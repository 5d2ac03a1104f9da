//! The one PulseAudio harness of the tests: a private server (its own `XDG_RUNTIME_DIR`) with a
//! null sink `vsink` at 48 kHz as default output and its monitor as default input, so what is
//! played can be recorded as a microphone on a machine without a sound card. Shared by the unit
//! tests (`crate::test_pulse`) and the integration tests (`tests/tests.rs` includes this file by
//! path); missing PulseAudio tools are a skip by the rule of `test_skip` (a failure under
//! `ATLAS_REQUIRE_DESKTOP=1`).
//!
//! The server is this process's child, ended on drop however the test finishes. It changes no
//! environment variable of this process: clients get the server through [`PulseServer::cmd`]
//! (or a test re-runs itself in a child with that environment). The exception is for unit tests
//! of code that finds its sound server through this process's environment (audio output,
//! speech-dispatcher): [`VirtualSpeaker`] sets it while holding a lock that every such test
//! takes, and [`with_env_var`] sets one other variable under the same lock.
#![allow(dead_code)]

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::test_skip::{Need, require_programs};

/// Serialises tests that use the process-wide sound server settings and the shared monitor.
static AUDIO_LOCK: Mutex<()> = Mutex::new(());

/// A private PulseAudio server; see the module docs.
pub struct PulseServer {
    dir: tempfile::TempDir,
    child: Child,
}

impl PulseServer {
    /// Starts the server and waits until it answers; `None` when PulseAudio or its tools are
    /// not installed. Panics when they are but the server does not come up.
    pub fn start() -> Option<PulseServer> {
        if !require_programs(
            Need::Desktop,
            &[
                ("pulseaudio", "pulseaudio"),
                ("pactl", "pulseaudio-utils"),
                ("paplay", "pulseaudio-utils"),
                ("parec", "pulseaudio-utils"),
            ],
        ) {
            return None;
        }
        let dir = tempfile::tempdir().expect("temp runtime dir");
        // PulseAudio wants an owner-only runtime directory.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .expect("chmod 700 the runtime dir");
        let child = Command::new("pulseaudio")
            .args(["-n", "--daemonize=no", "--exit-idle-time=-1"])
            .args(["--disallow-exit", "--use-pid-file=no"])
            .args(["-L", "module-native-protocol-unix auth-anonymous=1"])
            .args(["-L", "module-null-sink sink_name=vsink rate=48000"])
            .env("XDG_RUNTIME_DIR", dir.path())
            // Its state and cookie stay in the temp dir, not the user's ~/.config/pulse.
            .env("HOME", dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pulseaudio");
        let server = PulseServer { dir, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !server.pactl(&["info"]) {
            assert!(
                Instant::now() < deadline,
                "pulseaudio did not come up in 10 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        for args in [
            ["set-default-sink", "vsink"],
            ["set-default-source", "vsink.monitor"],
        ] {
            assert!(server.pactl(&args), "pactl {args:?} failed");
        }
        Some(server)
    }

    /// The runtime directory clients must see as `XDG_RUNTIME_DIR`.
    pub fn runtime_dir(&self) -> &Path {
        self.dir.path()
    }

    /// `unix:<dir>/pulse/native`, the server's socket.
    pub fn server_address(&self) -> String {
        format!("unix:{}/pulse/native", self.dir.path().display())
    }

    /// A command that talks to this server.
    pub fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("XDG_RUNTIME_DIR", self.dir.path())
            .env("PULSE_SERVER", self.server_address());
        cmd
    }

    /// Runs pactl against this server; true on success.
    fn pactl(&self, args: &[&str]) -> bool {
        self.cmd("pactl")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Starts recording the sink's monitor (16 kHz mono).
    pub fn record(&self) -> Recording {
        let mut child = self
            .cmd("parec")
            .args(["-d", "vsink.monitor", "--raw", "--format=s16le"])
            .args(["--channels=1", "--rate=16000"])
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

impl Drop for PulseServer {
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
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `parec` capture of the sink's monitor.
pub struct Recording {
    child: Child,
    reader: std::thread::JoinHandle<Vec<u8>>,
}

impl Recording {
    /// Stops the capture and returns its samples.
    pub fn finish(mut self) -> Vec<f32> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let bytes = self.reader.join().unwrap_or_default();
        bytes
            .chunks_exact(2)
            .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32_768.0)
            .collect()
    }
}

/// A [`PulseServer`] made this process's sound server:
/// while it lives, this process's `XDG_RUNTIME_DIR` points at it and other audio tests wait.
pub struct VirtualSpeaker {
    /// Variables to put back on drop, oldest first.
    previous: Vec<(String, Option<std::ffi::OsString>)>,
    server: PulseServer,
    _lock: MutexGuard<'static, ()>,
}

/// Runs `f` with the environment variable `key` set to `value`, holding the audio lock so no
/// other audio test reads the environment meanwhile; restores the old value afterwards.
pub fn with_env_var<T>(key: &str, value: &str, f: impl FnOnce() -> T) -> T {
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
    pub fn start() -> Option<Self> {
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
    pub fn set_var(&mut self, key: &str, value: &str) {
        self.previous.push((key.to_owned(), std::env::var_os(key)));
        // SAFETY: every test that reads the sound server settings (audio output, speech
        // dispatcher) holds AUDIO_LOCK, as `self` does, so no other thread reads the
        // environment through C while it changes.
        unsafe { std::env::set_var(key, value) };
    }

    /// Starts recording the sink's monitor (16 kHz mono).
    pub fn record(&self) -> Recording {
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
