//! The one X server harness of the tests: a private Xvfb on a free display, killed on drop, and
//! [`Trayer`], a tray host on it for the XEmbed icon to dock in. Shared by the unit tests (`crate::test_display`) and the integration tests (`tests/tests.rs`
//! includes this file by path); a missing Xvfb or xdotool is a skip by the rule of
//! `test_skip` (a failure under `ATLAS_REQUIRE_DESKTOP=1`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::test_skip::{Need, require_programs};

/// The displays tried, in order.
const DISPLAYS: std::ops::RangeInclusive<u32> = 70..=99;

/// Serialises picking display numbers among this process's tests.
static DISPLAY_PICK: Mutex<()> = Mutex::new(());

/// A private Xvfb (1280x800x24, no TCP, no reset), with its own scratch directory.
pub struct Xvfb {
    display: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl Xvfb {
    /// Starts Xvfb on the first free display; `None` when Xvfb or xdotool (what the tests
    /// press keys with) is not installed. Panics when Xvfb is installed but starts on none.
    pub fn start() -> Option<Xvfb> {
        if !require_programs(Need::Desktop, &[("Xvfb", "xvfb"), ("xdotool", "xdotool")]) {
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let _pick = DISPLAY_PICK.lock().unwrap_or_else(|e| e.into_inner());
        let (display, child) = DISPLAYS
            .clone()
            .find_map(|n| try_display(n, dir.path()))
            .unwrap_or_else(|| {
                panic!("Xvfb is installed but would not start on any display in {DISPLAYS:?}")
            });
        Some(Xvfb {
            display,
            child,
            dir,
        })
    }

    /// `:N`, for `DISPLAY`.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// A scratch directory that lives as long as the server.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A command with `DISPLAY` set to this server.
    pub fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env("DISPLAY", &self.display);
        c
    }

    /// Runs xdotool on this display and returns its output lines (none when, e.g., a search
    /// found nothing: xdotool then exits 1).
    pub fn xdotool(&self, args: &[&str]) -> Vec<String> {
        let out = self
            .cmd("xdotool")
            .args(args)
            .output()
            .expect("run xdotool");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// A tray host (`trayer`, a 200x40 panel at the top right) on an [`Xvfb`], stopped on drop.
pub struct Trayer {
    child: Child,
}

impl Trayer {
    /// Starts trayer on `x` and waits until its panel window exists; `None` when trayer is not
    /// installed. Panics when it is but shows no panel within 10 s.
    pub fn start(x: &Xvfb) -> Option<Trayer> {
        if !require_programs(Need::Desktop, &[("trayer", "trayer")]) {
            return None;
        }
        let child = x
            .cmd("trayer")
            .args(["--edge", "top", "--align", "right", "--widthtype", "pixel"])
            .args(["--width", "200", "--heighttype", "pixel", "--height", "40"])
            .args(["--SetDockType", "true", "--transparent", "false"])
            .env("NO_AT_BRIDGE", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start trayer");
        let trayer = Trayer { child };
        let up = wait_for(Duration::from_secs(10), || {
            !x.xdotool(&["search", "--class", "^trayer$"]).is_empty()
        });
        assert!(up, "trayer did not show its panel in 10 s");
        Some(trayer)
    }
}

impl Drop for Trayer {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// Starts Xvfb on display `n` when it is free and waits until it answers steadily.
fn try_display(n: u32, dir: &Path) -> Option<(String, Child)> {
    let socket = PathBuf::from(format!("/tmp/.X11-unix/X{n}"));
    let display = format!(":{n}");
    // A live server answers; a stale lock or socket left by a killed one Xvfb clears itself.
    if x11rb::connect(Some(&display)).is_ok() {
        return None;
    }
    let log = std::fs::File::create(dir.join(format!("xvfb{n}.log"))).ok()?;
    let mut xvfb = Command::new("Xvfb")
        .args([display.as_str(), "-screen", "0", "1280x800x24"])
        .args(["-nolisten", "tcp"])
        // Without it Xvfb resets whenever its last client disconnects, and a connection made
        // during a reset is dropped: the flakiness seen when tests probe the server.
        .arg("-noreset")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .ok()?;
    // Ready once connections succeed for a second: in its first moments Xvfb was seen to accept
    // connections and then drop later ones ("connection reset by peer").
    let mut good = 0;
    let up = wait_for(Duration::from_secs(10), || {
        if matches!(xvfb.try_wait(), Ok(Some(_))) {
            return true;
        }
        let ok = socket.exists() && x11rb::connect(Some(&display)).is_ok();
        good = if ok { good + 1 } else { 0 };
        good >= 20
    });
    if up && matches!(xvfb.try_wait(), Ok(None)) {
        Some((display, xvfb))
    } else {
        // Lost the display to another server (or it failed): the caller tries the next one.
        terminate(&mut xvfb);
        None
    }
}

/// Stops a child with SIGTERM, so that Xvfb removes its lock file and socket, then reaps it.
pub fn terminate(child: &mut Child) {
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let ended = term.is_ok_and(|s| s.success())
        && wait_for(Duration::from_secs(5), || {
            matches!(child.try_wait(), Ok(Some(_)))
        });
    if !ended {
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// Polls `ready` every 50 ms for up to `limit`; whether it became true.
pub fn wait_for(limit: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if ready() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    ready()
}
