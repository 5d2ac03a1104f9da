//! A real key press for `atlas bench agent`: XTest fake input on the X server. The server treats
//! it as the keyboard's own, so it reaches global-hotkey's grab (and its X11 thread) as a user's
//! press would.

use std::time::Instant;

use anyhow::Context;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    ConnectionExt as _, KEY_PRESS_EVENT, KEY_RELEASE_EVENT, Keycode, Keysym,
};
use x11rb::protocol::xtest::ConnectionExt as _;
use x11rb::rust_connection::RustConnection;

const CONTROL_L: Keysym = 0xffe3;
const SHIFT_L: Keysym = 0xffe1;
const SPACE: Keysym = 0x0020;

/// The hotkey the bench presses; the agent under test is set up to listen for it.
pub(crate) const HOTKEY: &str = "ctrl+shift+space";

/// A connection to `$DISPLAY` that presses and releases [`HOTKEY`].
pub(crate) struct Keyboard {
    conn: RustConnection,
    root: u32,
    /// Control, Shift, then Space.
    chord: [Keycode; 3],
}

impl Keyboard {
    /// Connects to `$DISPLAY` and finds the chord's key codes; fails when the server lacks XTest.
    pub(crate) fn connect() -> anyhow::Result<Keyboard> {
        let (conn, screen) = x11rb::connect(None).context("cannot connect to the X display")?;
        let root = conn.setup().roots[screen].root;
        conn.xtest_get_version(2, 2)
            .context("XTest")?
            .reply()
            .context("the X server has no XTest extension")?;
        let (min, max) = (conn.setup().min_keycode, conn.setup().max_keycode);
        let map = conn
            .get_keyboard_mapping(min, max - min + 1)?
            .reply()
            .context("cannot read the keyboard mapping")?;
        let per = usize::from(map.keysyms_per_keycode.max(1));
        let code = |sym: Keysym| -> anyhow::Result<Keycode> {
            map.keysyms
                .chunks(per)
                .position(|syms| syms.contains(&sym))
                .and_then(|i| u8::try_from(i).ok())
                .map(|i| min + i)
                .with_context(|| format!("no key for keysym {sym:#x} on this display"))
        };
        let chord = [code(CONTROL_L)?, code(SHIFT_L)?, code(SPACE)?];
        Ok(Keyboard { conn, root, chord })
    }

    fn send(&self, kind: u8, key: Keycode) -> anyhow::Result<()> {
        self.conn
            .xtest_fake_input(kind, key, 0, self.root, 0, 0, 0)?
            .check()
            .context("XTest fake input was refused")?;
        Ok(())
    }

    /// Holds Control and Shift, then presses Space; returns the instant Space was sent.
    pub(crate) fn press(&self) -> anyhow::Result<Instant> {
        self.send(KEY_PRESS_EVENT, self.chord[0])?;
        self.send(KEY_PRESS_EVENT, self.chord[1])?;
        let at = Instant::now();
        self.send(KEY_PRESS_EVENT, self.chord[2])?;
        Ok(at)
    }

    /// Releases Space, then the modifiers; returns the instant Space's release was sent.
    pub(crate) fn release(&self) -> anyhow::Result<Instant> {
        let at = Instant::now();
        self.send(KEY_RELEASE_EVENT, self.chord[2])?;
        self.send(KEY_RELEASE_EVENT, self.chord[1])?;
        self.send(KEY_RELEASE_EVENT, self.chord[0])?;
        Ok(at)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::test_display::Xvfb;
    use atlas::desktop::{Desktop, DesktopConfig, DesktopEvent};

    /// Set in the child, so the inner test runs only when started by the outer one.
    const CHILD_ENV: &str = "ATLAS_TEST_KEYS_CHILD";

    // global-hotkey and the keyboard read DISPLAY from the environment, which must not change
    // while other tests run: the outer test re-runs this binary for the inner one on Xvfb.
    #[test]
    fn an_xtest_press_and_release_reach_the_global_hotkey() {
        let Some(x) = Xvfb::start() else { return };
        let module = module_path!().split_once("::").map_or("", |(_, rest)| rest);
        let inner = format!("{module}::xtest_session");
        let out = x
            .cmd(std::env::current_exe().expect("test binary"))
            .args([inner.as_str(), "--exact", "--ignored", "--nocapture"])
            .env(CHILD_ENV, "1")
            .env_remove("WAYLAND_DISPLAY")
            .output()
            .expect("run the inner test");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        assert!(
            stdout.contains("1 passed"),
            "the inner test did not run:\n{stdout}"
        );
    }

    #[test]
    #[ignore = "run by an_xtest_press_and_release_reach_the_global_hotkey under Xvfb"]
    fn xtest_session() {
        assert_eq!(
            std::env::var(CHILD_ENV).as_deref(),
            Ok("1"),
            "run the outer test"
        );
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let cfg = DesktopConfig {
            hotkey: HOTKEY.into(),
            tray: false,
        };
        let desktop = Desktop::start(&cfg, tx).expect("desktop on Xvfb");
        assert!(desktop.hotkey_active(), "{:?}", desktop.hotkey_problem());
        let keys = Keyboard::connect().expect("XTest on Xvfb");
        let next = |rx: &mut tokio::sync::mpsc::UnboundedReceiver<DesktopEvent>| {
            for _ in 0..1000 {
                if let Ok(e) = rx.try_recv() {
                    return Some(e);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            None
        };
        keys.press().expect("press");
        assert_eq!(next(&mut rx), Some(DesktopEvent::HotkeyPressed));
        keys.release().expect("release");
        assert_eq!(next(&mut rx), Some(DesktopEvent::HotkeyReleased));
        desktop.shutdown();
    }
}
