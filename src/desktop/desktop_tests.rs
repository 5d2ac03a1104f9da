//! Tests of the hotkey and tray icon on a real X server: a private Xvfb, `trayer` as the XEmbed
//! tray host, and `xdotool` as the user's hands.
//!
//! GTK and global-hotkey read `DISPLAY` from the process environment, which must not be changed
//! while other tests run, so each outer test starts an X server and re-runs this test binary for
//! an ignored inner test with `DISPLAY` (and a private runtime directory, no session bus) in the
//! child's environment. Tests are skipped (and recorded as such, see [`crate::test_skip`]) when
//! Xvfb, trayer or xdotool are missing, and fail instead when `ATLAS_REQUIRE_DESKTOP=1`. Set `ATLAS_DESKTOP_SHOT=path.png` to keep the tray screenshot.
//!
//! The tray runs in the helper program `atlas-tray`, which `cargo test --lib` does not build:
//! the tray tests use the one in the target directory (`cargo build --bin atlas-tray`, which
//! `cargo test --all-targets` does too) and fail, saying so, when it is not there.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use super::*;
use crate::test_display::{Trayer, Xvfb, wait_for};

/// Set to "1" in the children, so inner tests run only when started by an outer test.
const CHILD_ENV: &str = "ATLAS_TEST_DESKTOP_CHILD";

/// Whether the desktop tools beyond Xvfb and xdotool (which [`Xvfb::start`] checks) are
/// installed; otherwise the test is skipped (see [`crate::test_skip`]), a failure under
/// `ATLAS_REQUIRE_DESKTOP=1`.
fn tray_tools_present() -> bool {
    crate::test_skip::require_programs(
        crate::test_skip::Need::Desktop,
        &[
            ("trayer", "trayer"),
            ("xwd", "x11-apps"),
            ("convert", "imagemagick"),
        ],
    )
}

/// The tray helper built beside this test binary (`target/<profile>/atlas-tray`; the test
/// binary is in `target/<profile>/deps`). Panics, saying how to build it, when it is missing.
fn built_helper() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let helper = profile_dir.join(protocol::HELPER_NAME);
    assert!(
        helper.is_file(),
        "the tray tests run the tray helper {}; build it first: cargo build --bin atlas-tray",
        helper.display()
    );
    helper
}

/// The shared private Xvfb (and optionally trayer; fields drop in order, so trayer stops
/// first).
struct XServer {
    trayer: Option<Trayer>,
    x: Xvfb,
}

impl XServer {
    /// Starts Xvfb on a free display, and trayer when `tray`.
    fn start(tray: bool) -> Option<XServer> {
        if tray && !tray_tools_present() {
            return None;
        }
        let x = Xvfb::start()?;
        let trayer = if tray { Some(Trayer::start(&x)?) } else { None };
        Some(XServer { trayer, x })
    }

    /// This test binary, set up to run the ignored test `inner` on this display.
    fn child(&self, inner: &str) -> Command {
        let name = inner_test_name(inner);
        let runtime = self.x.dir().join("run");
        std::fs::create_dir_all(&runtime).unwrap();
        let mut cmd = self.x.cmd(std::env::current_exe().unwrap());
        cmd.args([name.as_str(), "--exact", "--ignored", "--nocapture"])
            .args(["--test-threads=1"])
            .env(CHILD_ENV, "1")
            .env_remove("WAYLAND_DISPLAY")
            .env("NO_AT_BRIDGE", "1")
            // No session bus: AppIndicator falls back to an XEmbed icon and GTK starts no
            // stray dbus-daemon.
            .env(
                "DBUS_SESSION_BUS_ADDRESS",
                crate::test_dbus::no_bus_address(self.x.dir()),
            )
            .env("XDG_RUNTIME_DIR", &runtime);
        if self.trayer.is_some() {
            cmd.env(protocol::HELPER_ENV, built_helper());
        }
        cmd
    }
}

/// An inner test's name the way the test harness spells it (relative to the crate root).
fn inner_test_name(inner: &str) -> String {
    let module = module_path!().split_once("::").map_or("", |(_, rest)| rest);
    format!("{module}::{inner}")
}

/// Asserts that a child run of one inner test passed.
fn assert_passed(out: &Output, what: &str) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("--- {what} ---\n{stderr}");
    assert!(out.status.success(), "{what} failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "{what} did not run:\n{stdout}");
}

/// Whether this is a child started by an outer test.
fn in_child() -> bool {
    let yes = std::env::var(CHILD_ENV).as_deref() == Ok("1");
    if !yes {
        eprintln!("skipping: run the outer test, which starts an X server for this one");
    }
    yes
}

/// Waits up to 10 s for the next event.
fn next_event(rx: &mut UnboundedReceiver<DesktopEvent>) -> Option<DesktopEvent> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if let Ok(ev) = rx.try_recv() {
            return Some(ev);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn xdo(args: &[&str]) {
    let status = Command::new("xdotool").args(args).status().unwrap();
    assert!(status.success(), "xdotool {args:?} failed");
}

#[test]
fn without_a_display_start_says_so() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            inner_test_name("no_display_session").as_str(),
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_ENV, "1")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    assert_passed(&out, "no_display_session");
}

#[test]
#[ignore = "run by without_a_display_start_says_so"]
fn no_display_session() {
    if !in_child() {
        return;
    }
    assert_eq!(display_problem().as_deref(), Some("DISPLAY is not set"));
    let (tx, _rx) = unbounded_channel();
    match Desktop::start(&DesktopConfig::default(), tx) {
        Err(DesktopError::NoDisplay(reason)) => assert_eq!(reason, "DISPLAY is not set"),
        Err(other) => panic!("expected NoDisplay, got {other}"),
        Ok(_) => panic!("started without a display"),
    }
}

#[test]
fn hotkey_press_and_release_reach_the_agent() {
    let Some(x) = XServer::start(false) else {
        return;
    };
    let out = x.child("hotkey_session").output().unwrap();
    assert_passed(&out, "hotkey_session");
}

#[test]
#[ignore = "run by hotkey_press_and_release_reach_the_agent under Xvfb"]
fn hotkey_session() {
    if !in_child() {
        return;
    }
    assert_eq!(display_problem(), None);
    let cfg = DesktopConfig {
        hotkey: "ctrl+shift+space".into(),
        tray: false,
    };
    let (tx, mut rx) = unbounded_channel();
    let desktop = Desktop::start(&cfg, tx).unwrap();
    assert!(desktop.hotkey_active());
    // Updates are accepted (and ignored) with the tray off.
    desktop.update(TrayUpdate::State(AgentState::Listening));
    xdo(&["keydown", "ctrl+shift+space"]);
    std::thread::sleep(Duration::from_millis(400));
    xdo(&["keyup", "ctrl+shift+space"]);
    assert_eq!(next_event(&mut rx), Some(DesktopEvent::HotkeyPressed));
    assert_eq!(next_event(&mut rx), Some(DesktopEvent::HotkeyReleased));
    // Another combination does nothing.
    xdo(&["key", "ctrl+shift+a"]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(rx.try_recv().is_err());
    desktop.shutdown();
    // Shutdown released the grab: another client can take the combination now.
    // (global-hotkey's X11 thread closes its connection a moment after the drop.)
    let other = global_hotkey::GlobalHotKeyManager::new().unwrap();
    let key = parse_hotkey("ctrl+shift+space").unwrap();
    let freed = wait_for(Duration::from_secs(5), || other.register(key).is_ok());
    assert!(freed, "the hotkey stayed grabbed after shutdown");
}

#[test]
fn hotkey_held_by_another_program_is_reported() {
    let Some(x) = XServer::start(false) else {
        return;
    };
    let mut holder = x
        .child("hotkey_holder")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(holder.stdout.take().unwrap()).lines();
    let holding = lines.any(|l| l.is_ok_and(|l| l.contains("HOLDING ctrl+shift+space")));
    assert!(holding, "the holder process did not grab the hotkey");
    let out = x.child("hotkey_taken_session").output().unwrap();
    drop(holder.stdin.take());
    let _ = holder.kill();
    let _ = holder.wait();
    assert_passed(&out, "hotkey_taken_session");
}

#[test]
#[ignore = "run by hotkey_held_by_another_program_is_reported: holds ctrl+shift+space"]
fn hotkey_holder() {
    if !in_child() {
        return;
    }
    let manager = global_hotkey::GlobalHotKeyManager::new().unwrap();
    manager
        .register(parse_hotkey("ctrl+shift+space").unwrap())
        .unwrap();
    println!("HOLDING ctrl+shift+space");
    // Hold until the outer test closes stdin (or 60 s pass).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        let _ = tx.send(());
    });
    let _ = rx.recv_timeout(Duration::from_secs(60));
}

#[test]
#[ignore = "run by hotkey_held_by_another_program_is_reported"]
fn hotkey_taken_session() {
    if !in_child() {
        return;
    }
    let cfg = DesktopConfig {
        hotkey: "Ctrl+Shift+Space".into(),
        tray: false,
    };
    let (tx, _rx) = unbounded_channel();
    // The desktop starts (the tray would show), without push-to-talk, and says why.
    let desktop = Desktop::start(&cfg, tx.clone()).unwrap();
    assert!(!desktop.hotkey_active());
    let err = desktop
        .hotkey_problem()
        .expect("the hotkey is reported taken");
    let msg = err.to_string();
    assert!(matches!(err, DesktopError::HotkeyTaken { .. }), "{msg}");
    assert!(msg.contains("\"Ctrl+Shift+Space\""), "{msg}");
    assert!(
        msg.contains("agent.hotkey") && msg.contains("config.toml"),
        "{msg}"
    );
    desktop.shutdown();
    // A free combination works.
    let cfg = DesktopConfig {
        hotkey: "ctrl+alt+space".into(),
        tray: false,
    };
    Desktop::start(&cfg, tx).unwrap().shutdown();
}

#[test]
fn tray_menu_runs_workflows_and_toggles_listening() {
    let Some(x) = XServer::start(true) else {
        return;
    };
    let out = x.child("tray_session").output().unwrap();
    assert_passed(&out, "tray_session");
}

/// The tray icon's window id (decimal), once it exists.
fn icon_window() -> Option<String> {
    let out = Command::new("xdotool")
        .args(["search", "--class", "^tray-icon tray app atlas$"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .map(str::to_string)
}

/// Whether window `id` (decimal) is a descendant of trayer's panel window.
fn docked_in_trayer(id: &str) -> bool {
    let Ok(id) = id.parse::<u64>() else {
        return false;
    };
    let hex = format!("0x{id:x} ");
    let panels = Command::new("xdotool")
        .args(["search", "--class", "^trayer$"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&panels.stdout)
        .lines()
        .any(|panel| {
            let tree = Command::new("xwininfo")
                .args(["-tree", "-id", panel])
                .output()
                .unwrap();
            String::from_utf8_lossy(&tree.stdout)
                .lines()
                .skip(1)
                .any(|l| l.trim_start().starts_with(&hex))
        })
}

/// The mean colour of a window as (r, g, b) in 0..=255.
fn mean_colour(id: &str) -> (u32, u32, u32) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "xwd -silent -id {id} | convert xwd:- -resize '1x1!' \
             -format '%[fx:int(255*r)] %[fx:int(255*g)] %[fx:int(255*b)]' info:"
        ))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<u32> = text
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    assert_eq!(v.len(), 3, "cannot read the icon colour: {text:?}");
    (v[0], v[1], v[2])
}

/// Screenshot of the whole screen as PNG.
fn screenshot(path: &Path) {
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "xwd -root -silent | convert xwd:- '{}'",
            path.display()
        ))
        .status()
        .unwrap();
    assert!(status.success(), "screenshot failed");
    assert!(std::fs::metadata(path).unwrap().len() > 1000);
}

/// Opens the tray menu with a click on the icon, then types `keys`.
fn menu_keys(icon: &str, keys: &[&str]) {
    xdo(&["mousemove", "--window", icon, "16", "16", "click", "1"]);
    std::thread::sleep(Duration::from_millis(700));
    for key in keys {
        xdo(&["key", key]);
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
#[ignore = "run by tray_menu_runs_workflows_and_toggles_listening under Xvfb with trayer"]
fn tray_session() {
    if !in_child() {
        return;
    }
    let (tx, mut rx) = unbounded_channel();
    let desktop = Desktop::start(&DesktopConfig::default(), tx).unwrap();
    desktop.update(TrayUpdate::Workflows(vec![
        ("weather".into(), "Weather report".into()),
        ("morning_briefing".into(), "Morning briefing".into()),
    ]));
    desktop.update(TrayUpdate::Next(Some("morning_briefing at 07:00".into())));
    let runs: Vec<String> = (1..=7).map(|i| format!("run {i}: succeeded")).collect();
    desktop.update(TrayUpdate::Recent(runs));
    desktop.update(TrayUpdate::State(AgentState::Listening));

    // The icon is docked in trayer, and shows the state's colour, live.
    let mut icon = None;
    let docked = wait_for(Duration::from_secs(10), || {
        icon = icon_window();
        icon.as_deref().is_some_and(docked_in_trayer)
    });
    let icon = icon.expect("no tray icon window");
    assert!(docked, "the tray icon window {icon} is not inside trayer");
    let green = wait_for(Duration::from_secs(5), || {
        let (r, g, b) = mean_colour(&icon);
        g > r + 20 && g > b + 20
    });
    assert!(
        green,
        "listening icon is not green: {:?}",
        mean_colour(&icon)
    );
    desktop.update(TrayUpdate::State(AgentState::Error));
    let red = wait_for(Duration::from_secs(5), || {
        let (r, g, b) = mean_colour(&icon);
        r > g + 20 && r > b + 20
    });
    assert!(red, "error icon is not red: {:?}", mean_colour(&icon));

    // Workflows submenu: first item is "Listening", second "Workflows"; Right opens it.
    menu_keys(&icon, &["Down", "Down", "Right"]);
    let shot = std::env::var_os("ATLAS_DESKTOP_SHOT").map(PathBuf::from);
    let dir = tempfile::tempdir().unwrap();
    screenshot(&shot.unwrap_or_else(|| dir.path().join("tray.png")));
    xdo(&["key", "Down", "Return"]);
    assert_eq!(
        next_event(&mut rx),
        Some(DesktopEvent::RunWorkflow("morning_briefing".into()))
    );

    // The check item toggles; an update from the agent sets it back.
    menu_keys(&icon, &["Down", "Return"]);
    assert_eq!(next_event(&mut rx), Some(DesktopEvent::SetListening(false)));
    desktop.update(TrayUpdate::Listening(true));
    std::thread::sleep(Duration::from_millis(300));
    menu_keys(&icon, &["Down", "Return"]);
    assert_eq!(next_event(&mut rx), Some(DesktopEvent::SetListening(false)));

    // A new workflow list replaces the old one.
    desktop.update(TrayUpdate::Workflows(vec![("news".into(), "News".into())]));
    std::thread::sleep(Duration::from_millis(300));
    menu_keys(&icon, &["Down", "Down", "Right", "Return"]);
    assert_eq!(
        next_event(&mut rx),
        Some(DesktopEvent::RunWorkflow("news".into()))
    );

    // The last item is "Quit"; above it "Open workflows folder", then "Open dashboard".
    menu_keys(&icon, &["Up", "Return"]);
    assert_eq!(next_event(&mut rx), Some(DesktopEvent::Quit));
    menu_keys(&icon, &["Up", "Up", "Up", "Return"]);
    assert_eq!(next_event(&mut rx), Some(DesktopEvent::OpenDashboard));

    // A helper that dies is started again once, and shown the last state again.
    let first = helper_pids();
    assert_eq!(first.len(), 1, "one tray helper runs: {first:?}");
    kill(first[0]);
    let mut icon = None;
    let back = wait_for(Duration::from_secs(15), || {
        let pids = helper_pids();
        icon = icon_window();
        pids.len() == 1 && pids != first && icon.as_deref().is_some_and(docked_in_trayer)
    });
    assert!(back, "the tray helper was not restarted");
    let icon = icon.unwrap();
    let red = wait_for(Duration::from_secs(5), || {
        let (r, g, b) = mean_colour(&icon);
        r > g + 20 && r > b + 20
    });
    assert!(
        red,
        "the restarted icon lost the state: {:?}",
        mean_colour(&icon)
    );
    menu_keys(&icon, &["Up", "Return"]);
    assert_eq!(next_event(&mut rx), Some(DesktopEvent::Quit));
    // A second death leaves the tray off; the desktop carries on and stops cleanly.
    kill(helper_pids()[0]);
    let gone = wait_for(Duration::from_secs(5), || helper_pids().is_empty());
    assert!(gone, "the killed helper is still there");
    std::thread::sleep(Duration::from_millis(500));
    assert!(helper_pids().is_empty(), "the helper was restarted twice");
    desktop.update(TrayUpdate::State(AgentState::Idle));
    desktop.shutdown();
    assert!(rx.try_recv().is_err(), "no stray events");
}

/// The running tray helpers among this process's children.
fn helper_pids() -> Vec<i32> {
    let mut pids = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for pid in children
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // A zombie (state Z) has died and waits to be reaped.
            let zombie = state
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z'));
            if comm.trim() == protocol::HELPER_NAME && !zombie {
                pids.push(pid);
            }
        }
    }
    pids
}

fn kill(pid: i32) {
    // SAFETY: SIGKILL to a child of this test process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
}

#[test]
fn a_missing_tray_helper_leaves_the_hotkey_on() {
    let Some(x) = XServer::start(false) else {
        return;
    };
    let out = x
        .child("missing_helper_session")
        .env(protocol::HELPER_ENV, x.x.dir().join("no-such-helper"))
        .output()
        .unwrap();
    assert_passed(&out, "missing_helper_session");
}

#[test]
#[ignore = "run by a_missing_tray_helper_leaves_the_hotkey_on under Xvfb"]
fn missing_helper_session() {
    if !in_child() {
        return;
    }
    let (tx, _rx) = unbounded_channel();
    let desktop = Desktop::start(&DesktopConfig::default(), tx).unwrap();
    assert!(desktop.hotkey_active());
    let err = desktop.tray_problem().expect("the tray is reported off");
    let msg = err.to_string();
    assert!(matches!(err, DesktopError::TrayHelperMissing(_)), "{msg}");
    assert!(
        msg.contains("atlas-tray") && msg.contains("no-such-helper"),
        "{msg}"
    );
    assert!(msg.contains("agent.tray = false"), "{msg}");
    desktop.update(TrayUpdate::State(AgentState::Idle));
    desktop.shutdown();
}
