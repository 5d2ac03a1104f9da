//! A real Secret Service for the tests: `gnome-keyring-daemon` (unlocked, secrets component only)
//! on a private session bus ([`crate::test_dbus::SessionBus`]), with its keyring files in a temp
//! dir, ended on drop. Clients reach it through [`Keyring::cmd`], which sets the bus address and
//! the same `HOME`/`XDG_*` folders. Shared by the unit and integration tests like the other
//! harnesses; a missing `gnome-keyring-daemon` is a skip by the rule of `test_skip`.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::test_dbus::SessionBus;
use crate::test_skip::{Need, require_programs};

/// A running, unlocked keyring on its own bus.
pub struct Keyring {
    daemon: Child,
    dir: tempfile::TempDir,
    bus: SessionBus,
}

impl Keyring {
    /// Starts the bus and the keyring and returns once the keyring owns
    /// `org.freedesktop.secrets` (at most 10 s); `None` when a program is missing.
    pub fn start() -> Option<Keyring> {
        if !require_programs(
            Need::Desktop,
            &[
                ("gnome-keyring-daemon", "gnome-keyring"),
                ("dbus-send", "dbus"),
            ],
        ) {
            return None;
        }
        let bus = SessionBus::start()?;
        let dir = tempfile::tempdir().expect("temp dir");
        for sub in ["home", "data", "config", "runtime"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("keyring dirs");
        }
        set_mode_700(&dir.path().join("runtime"));
        let mut cmd = bus.cmd("gnome-keyring-daemon");
        folders(&mut cmd, dir.path());
        let mut daemon = cmd
            .args(["--foreground", "--unlock", "--components=secrets"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start gnome-keyring-daemon");
        // The password of the new login keyring, then EOF: the daemon creates it unlocked.
        let mut stdin = daemon.stdin.take().expect("keyring stdin");
        stdin.write_all(b"atlas-test").expect("keyring password");
        drop(stdin);
        let keyring = Keyring { daemon, dir, bus };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !keyring.owns_secrets() {
            assert!(
                Instant::now() < deadline,
                "gnome-keyring-daemon did not take org.freedesktop.secrets within 10 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(keyring)
    }

    /// A command on this keyring's bus, with its home and XDG folders.
    pub fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = self.bus.cmd(program);
        folders(&mut cmd, self.dir.path());
        cmd
    }

    /// The bus address.
    pub fn address(&self) -> &str {
        self.bus.address()
    }

    /// Where the keyring keeps its files (to check that nothing else was written).
    pub fn files(&self) -> &Path {
        self.dir.path()
    }

    fn owns_secrets(&self) -> bool {
        self.bus
            .cmd("dbus-send")
            .args(["--session", "--print-reply", "--dest=org.freedesktop.DBus"])
            .args(["/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner"])
            .arg("string:org.freedesktop.secrets")
            .stderr(Stdio::null())
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("boolean true"))
    }
}

impl Drop for Keyring {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

fn folders(cmd: &mut Command, dir: &Path) {
    cmd.env("HOME", dir.join("home"))
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_RUNTIME_DIR", dir.join("runtime"));
}

fn set_mode_700(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).expect("chmod 700");
}
