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
