//! The one PulseAudio harness of the tests: a private server (its own `XDG_RUNTIME_DIR`) with a
//! null sink `vsink` at 48 kHz as default output and its monitor as default input, so what is
//! played can be recorded as a microphone on a machine without a sound card. Shared by the unit
//! tests (`crate::test_pulse`) and the integration tests (`tests/tests.rs` includes this file by
//! path); missing PulseAudio tools are a skip by the rule of `test_skip` (a failure under
//! `ATLAS_REQUIRE_DESKTOP=1`).
//!
//! The server is this process's child, ended on drop however the test finishes. It changes no
//! environment variable of this process: clients get the server through [`PulseServer::cmd`]
//! (or a test re-runs itself in a child with that environment).
#![allow(dead_code)]

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::test_skip::{Need, require_programs};

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
