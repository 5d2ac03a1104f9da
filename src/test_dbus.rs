//! The one D-Bus harness of the tests: a private session bus (`dbus-daemon --session`), ended on
//! drop, and the address of no bus at all for a child that must not find one. Shared by the unit
//! tests (`crate::test_dbus`) and the integration tests (`tests/tests.rs` includes this file by
//! path); a missing `dbus-daemon` is a skip by the rule of `test_skip` (a failure under
//! `ATLAS_REQUIRE_DESKTOP=1`).
//!
//! Like the other harnesses it changes no environment variable of this process: clients get the
//! bus through [`SessionBus::cmd`] or by putting [`SessionBus::address`] in a child's
//! `DBUS_SESSION_BUS_ADDRESS`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::test_skip::{Need, require_programs};

/// The variable D-Bus clients find the session bus by.
pub const SESSION_BUS_VARIABLE: &str = "DBUS_SESSION_BUS_ADDRESS";

/// A private session bus; see the module docs.
pub struct SessionBus {
    child: Child,
    address: String,
}

impl SessionBus {
    /// Starts the bus and returns once it listens (`dbus-daemon` prints its address then);
    /// `None` when `dbus-daemon` is not installed. Panics when it is but does not start.
    pub fn start() -> Option<SessionBus> {
        if !require_programs(Need::Desktop, &[("dbus-daemon", "dbus")]) {
            return None;
        }
        let mut child = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dbus-daemon");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("dbus-daemon stdout");
        let read = BufReader::new(stdout).read_line(&mut line);
        let address = line.trim().to_owned();
        let bus = SessionBus { child, address };
        assert!(
            read.is_ok() && bus.address.starts_with("unix:"),
            "dbus-daemon did not print a bus address: {line:?}"
        );
        Some(bus)
    }

    /// The bus address, for `DBUS_SESSION_BUS_ADDRESS`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// A command whose session bus is this one.
    pub fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env(SESSION_BUS_VARIABLE, &self.address);
        cmd
    }
}

impl Drop for SessionBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A bus address in `dir` where nothing listens: a child given it as `DBUS_SESSION_BUS_ADDRESS`
/// finds no session bus (and GTK starts no stray `dbus-daemon` of its own, as it may when the
/// variable is unset).
pub fn no_bus_address(dir: &Path) -> String {
    format!("unix:path={}", dir.join("no-bus").display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_bus_answers_and_no_bus_is_no_bus() {
        let Some(bus) = SessionBus::start() else {
            return;
        };
        if !require_programs(Need::Desktop, &[("dbus-send", "dbus")]) {
            return;
        }
        let ping = |cmd: &mut Command| {
            cmd.args(["--session", "--print-reply", "--dest=org.freedesktop.DBus"])
                .args(["/org/freedesktop/DBus", "org.freedesktop.DBus.GetId"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        assert!(ping(&mut bus.cmd("dbus-send")));
        let dir = tempfile::tempdir().expect("temp dir");
        let mut lost = Command::new("dbus-send");
        lost.env(SESSION_BUS_VARIABLE, no_bus_address(dir.path()));
        assert!(!ping(&mut lost));
    }
}
