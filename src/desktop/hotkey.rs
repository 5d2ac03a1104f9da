//! The push-to-talk hotkey: parsing the configured combination and registering it with
//! `global-hotkey`, whose own X11 thread reports presses and releases; both are forwarded to the
//! agent as [`DesktopEvent::HotkeyPressed`] and [`DesktopEvent::HotkeyReleased`].

use std::str::FromStr;

use global_hotkey::hotkey::HotKey;
use global_hotkey::{GlobalHotKeyEvent, GlobalHotKeyManager, HotKeyState};
use tokio::sync::mpsc::UnboundedSender;

use super::{DesktopError, DesktopEvent};

/// Modifier names accepted in a hotkey, with the spelling `global-hotkey` expects.
const MODIFIERS: [(&str, &str); 9] = [
    ("ctrl", "ctrl"),
    ("control", "ctrl"),
    ("shift", "shift"),
    ("alt", "alt"),
    ("option", "alt"),
    ("super", "super"),
    ("meta", "super"),
    ("win", "super"),
    ("cmd", "super"),
];

/// Parses a combination such as `"ctrl+shift+space"` or `"Super+Alt+A"`: any modifiers, then
/// exactly one key, joined by `+` (case and spaces around `+` do not matter).
pub fn parse_hotkey(s: &str) -> Result<HotKey, DesktopError> {
    let invalid = |reason: String| DesktopError::InvalidHotkey {
        input: s.to_string(),
        reason,
    };
    let tokens: Vec<String> = s.split('+').map(|t| t.trim().to_lowercase()).collect();
    if tokens.iter().any(|t| t.is_empty()) {
        return Err(invalid("it has an empty part".into()));
    }
    let Some((key, mods)) = tokens.split_last() else {
        return Err(invalid("it is empty".into()));
    };
    let mut canonical = Vec::with_capacity(tokens.len());
    for m in mods {
        match MODIFIERS.iter().find(|(name, _)| name == m) {
            Some((_, canon)) => canonical.push(*canon),
            None => {
                return Err(invalid(format!(
                    "{m:?} is not a modifier (only the last part may be a key)"
                )));
            }
        }
    }
    if MODIFIERS.iter().any(|(name, _)| name == key) {
        return Err(invalid(format!(
            "it ends with the modifier {key:?} but needs a key after the modifiers"
        )));
    }
    let key = match key.as_str() {
        "return" => "enter",
        "esc" => "escape",
        "del" => "delete",
        "ins" => "insert",
        other => other,
    };
    canonical.push(key);
    HotKey::from_str(&canonical.join("+"))
        .map_err(|_| invalid(format!("{key:?} is not a key name")))
}

/// A registered hotkey; dropping it unregisters the combination and stops the X11 thread.
pub(super) struct HotkeyListener {
    manager: GlobalHotKeyManager,
    key: HotKey,
}

impl HotkeyListener {
    /// Registers `key` (written `combo` in the configuration) and forwards its events to `events`.
    pub(super) fn start(
        combo: &str,
        key: HotKey,
        events: UnboundedSender<DesktopEvent>,
    ) -> Result<HotkeyListener, DesktopError> {
        let failed = |reason: String| DesktopError::Hotkey {
            combo: combo.to_string(),
            reason,
        };
        let manager = GlobalHotKeyManager::new().map_err(|e| failed(e.to_string()))?;
        let id = key.id();
        // The handler runs on global-hotkey's X11 thread; it is set before registering so that
        // no press can be missed.
        GlobalHotKeyEvent::set_event_handler(Some(move |event: GlobalHotKeyEvent| {
            if event.id() != id {
                return;
            }
            let ev = match event.state() {
                HotKeyState::Pressed => DesktopEvent::HotkeyPressed,
                HotKeyState::Released => DesktopEvent::HotkeyReleased,
            };
            tracing::debug!(event = ?ev, "hotkey");
            // The agent has gone away: nothing left to tell.
            let _ = events.send(ev);
        }));
        if let Err(err) = manager.register(key) {
            GlobalHotKeyEvent::set_event_handler(None::<fn(GlobalHotKeyEvent)>);
            return Err(match err {
                global_hotkey::Error::AlreadyRegistered(_) => DesktopError::HotkeyTaken {
                    combo: combo.to_string(),
                },
                other => failed(other.to_string()),
            });
        }
        tracing::info!(hotkey = %combo, "hotkey registered");
        Ok(HotkeyListener { manager, key })
    }
}

impl Drop for HotkeyListener {
    fn drop(&mut self) {
        if let Err(err) = self.manager.unregister(self.key) {
            tracing::warn!(%err, "could not unregister the hotkey");
        }
        GlobalHotKeyEvent::set_event_handler(None::<fn(GlobalHotKeyEvent)>);
    }
}

#[cfg(test)]
mod tests {
    use global_hotkey::hotkey::{Code, Modifiers};

    use super::*;

    #[test]
    fn parses_combinations_case_insensitively() {
        let k = parse_hotkey("ctrl+shift+space").unwrap();
        assert_eq!(k.mods, Modifiers::CONTROL | Modifiers::SHIFT);
        assert_eq!(k.key, Code::Space);
        let k = parse_hotkey("Super + ALT + a").unwrap();
        assert_eq!(k.mods, Modifiers::META | Modifiers::ALT);
        assert_eq!(k.key, Code::KeyA);
        assert_eq!(parse_hotkey("F9").unwrap().key, Code::F9);
        assert_eq!(parse_hotkey("control+return").unwrap().key, Code::Enter);
        assert_eq!(
            parse_hotkey("CTRL+SHIFT+SPACE").unwrap(),
            parse_hotkey("ctrl+shift+space").unwrap()
        );
    }

    #[test]
    fn bad_combinations_explain_what_is_valid() {
        for (input, says) in [
            ("ctrl+shift+spacebar", "\"spacebar\" is not a key name"),
            ("ctrl+shift", "ends with the modifier \"shift\""),
            ("ctrl++a", "empty part"),
            ("", "empty part"),
            ("hyperx+a", "\"hyperx\" is not a modifier"),
            ("a+ctrl", "\"a\" is not a modifier"),
        ] {
            let err = parse_hotkey(input).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, DesktopError::InvalidHotkey { .. }), "{msg}");
            assert!(msg.contains(says), "{input:?}: {msg}");
            assert!(msg.contains("Modifiers: ctrl, shift, alt, super"), "{msg}");
            assert!(msg.contains("agent.hotkey"), "{msg}");
        }
    }
}
