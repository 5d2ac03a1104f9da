//! The resident agent's desktop presence: a global push-to-talk hotkey and a tray icon with a
//! menu. This module imports nothing from the rest of Atlas; it is driven by messages. The agent
//! starts a [`Desktop`], receives [`DesktopEvent`]s on a channel (hotkey presses, menu clicks) and
//! sends [`TrayUpdate`]s back (state, workflow list, next and recent runs). Without a display the
//! agent runs headless: [`Desktop::start`] says so quickly with [`DesktopError::NoDisplay`].
//!
//! The hotkey is registered in the agent's process (`global-hotkey` loads Xlib at run time, and a
//! press must not cross a process boundary). The tray icon needs GTK, so it runs in the helper
//! process `atlas-tray` (`src/bin/atlas-tray`), which [`Desktop::start`] spawns and supervises and
//! talks to in JSON lines ([`protocol`]): neither the `atlas` binary nor this library links GTK.

mod hotkey;
pub mod protocol;
mod tray;

#[cfg(test)]
mod desktop_tests;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::UnboundedSender;

pub use hotkey::parse_hotkey;

/// What the agent is doing; shown by the tray icon and its status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    /// Waiting for the hotkey or a schedule.
    Idle,
    /// Recording the user's voice.
    Listening,
    /// Recognising speech or running a workflow.
    Thinking,
    /// Speaking a reply.
    Speaking,
    /// Listening is switched off by the user.
    Paused,
    /// Something failed; the log says what.
    Error,
}

impl AgentState {
    /// Every state, in the order the icons are listed.
    pub const ALL: [AgentState; 6] = [
        AgentState::Idle,
        AgentState::Listening,
        AgentState::Thinking,
        AgentState::Speaking,
        AgentState::Paused,
        AgentState::Error,
    ];

    /// The state as a word for the user ("Idle", "Listening", ...).
    pub fn label(self) -> &'static str {
        match self {
            AgentState::Idle => "Idle",
            AgentState::Listening => "Listening",
            AgentState::Thinking => "Thinking",
            AgentState::Speaking => "Speaking",
            AgentState::Paused => "Paused",
            AgentState::Error => "Error",
        }
    }
}

/// Something the user did on the desktop, sent to the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DesktopEvent {
    /// The push-to-talk combination went down.
    HotkeyPressed,
    /// The push-to-talk combination was released.
    HotkeyReleased,
    /// The "Listening" check item was toggled; the new value.
    SetListening(bool),
    /// A workflow was picked from the "Workflows" submenu; its id.
    RunWorkflow(String),
    /// "Open workflows folder" was clicked.
    OpenWorkflowsFolder,
    /// "Open dashboard" was clicked: a one-time login link opens in the browser.
    OpenDashboard,
    /// "Quit" was clicked.
    Quit,
}

/// A change the agent wants the tray to show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrayUpdate {
    /// The agent's state: icon and status line.
    State(AgentState),
    /// Whether listening is on: the "Listening" check item.
    Listening(bool),
    /// The workflows the user can start: `(id, name)` pairs, in menu order.
    Workflows(Vec<(String, String)>),
    /// The next scheduled run, e.g. `"morning_briefing at 07:00"`, or `None`.
    Next(Option<String>),
    /// Recent runs, newest first, e.g. `"weather: succeeded"`; the first five are shown.
    Recent(Vec<String>),
    /// Integrations that need the user, e.g. `"Gmail: sign in again"`; empty when none does.
    Accounts(Vec<String>),
}

/// The `[agent]` settings this module reads from config.toml.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DesktopConfig {
    /// Push-to-talk combination, e.g. `"ctrl+shift+space"` (see [`parse_hotkey`]).
    pub hotkey: String,
    /// Whether to show the tray icon.
    pub tray: bool,
}

impl Default for DesktopConfig {
    fn default() -> Self {
        DesktopConfig {
            hotkey: "ctrl+shift+space".into(),
            tray: true,
        }
    }
}

/// Why the desktop side could not start.
#[derive(Debug, thiserror::Error)]
pub enum DesktopError {
    /// No X11 or Wayland display is reachable; the agent should run headless.
    #[error("no desktop display: {0}; the agent runs without hotkey and tray icon")]
    NoDisplay(String),
    /// Another program already grabbed the combination.
    #[error(
        "the hotkey {combo:?} is already taken by another program; choose another combination \
         with `agent.hotkey` in config.toml (for example \"ctrl+alt+space\")"
    )]
    HotkeyTaken {
        /// The combination as written in the configuration.
        combo: String,
    },
    /// The hotkey string could not be understood.
    #[error(
        "invalid hotkey {input:?} (`agent.hotkey` in config.toml): {reason}. Write modifiers \
         then one key, joined by '+', e.g. \"ctrl+shift+space\". Modifiers: ctrl, shift, alt, \
         super. Keys: a-z, 0-9, f1-f24, space, enter, tab, escape, backspace, insert, delete, \
         home, end, pageup, pagedown, up, down, left, right, comma, period, slash, semicolon, \
         quote, minus, equal, backquote, backslash, bracketleft, bracketright, numpad0-numpad9"
    )]
    InvalidHotkey {
        /// The string as written.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The hotkey could not be registered for another reason.
    #[error("could not register the hotkey {combo:?}: {reason}")]
    Hotkey {
        /// The combination as written.
        combo: String,
        /// The system's reason.
        reason: String,
    },
    /// The tray icon could not be started.
    #[error(
        "could not start the tray icon: {0}. Set `agent.tray = false` in config.toml to run \
         with the hotkey only"
    )]
    Tray(String),
    /// The tray helper program is not installed; the hotkey works without it.
    #[error(
        "the tray icon is off: its helper program `atlas-tray` was not found ({0}). Install it \
         next to `atlas` (scripts/start.sh and `cargo install --path .` install both), or set \
         `agent.tray = false` in config.toml"
    )]
    TrayHelperMissing(String),
}

/// Says why no desktop display is reachable, or `None` when an X11 display (or a Wayland
/// compositor) is. Reads `DISPLAY`, `WAYLAND_DISPLAY` and `XDG_RUNTIME_DIR`.
pub fn display_problem() -> Option<String> {
    let x11 = x11_problem(std::env::var("DISPLAY").ok().as_deref());
    if x11.is_some() && wayland_socket().is_some() {
        return None;
    }
    x11
}

/// Why the X11 display `display` cannot be used, or `None` when a connection succeeds.
fn x11_problem(display: Option<&str>) -> Option<String> {
    let dpy = match display {
        None | Some("") => return Some("DISPLAY is not set".into()),
        Some(d) => d,
    };
    // A server that is busy starting up can drop a connection; try a few times.
    let mut last = None;
    for attempt in 0..3 {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        match x11rb::connect(Some(dpy)) {
            Ok(_) => return None,
            Err(err) => {
                tracing::debug!(%err, display = %dpy, attempt, "X11 connection failed");
                last = Some(err);
            }
        }
    }
    last.map(|err| format!("cannot connect to display {dpy}: {err}"))
}

/// The Wayland compositor's socket, when `WAYLAND_DISPLAY` names one that exists.
fn wayland_socket() -> Option<PathBuf> {
    let name = std::env::var_os("WAYLAND_DISPLAY").filter(|n| !n.is_empty())?;
    let path = PathBuf::from(&name);
    let path = if path.is_absolute() {
        path
    } else {
        PathBuf::from(std::env::var_os("XDG_RUNTIME_DIR")?).join(path)
    };
    path.exists().then_some(path)
}

/// The running hotkey listener and tray icon (its helper process). Dropping it (or
/// [`Desktop::shutdown`]) stops both.
pub struct Desktop {
    hotkey: Option<hotkey::HotkeyListener>,
    /// Why the hotkey is not registered, when it is not.
    hotkey_problem: Option<DesktopError>,
    tray: Option<tray::TrayHandle>,
    /// Why the tray is off although it was asked for, when it is.
    tray_problem: Option<DesktopError>,
}

impl Desktop {
    /// Registers the hotkey and (when `cfg.tray`) shows the tray icon; events go to `events`.
    /// Returns [`DesktopError::NoDisplay`] at once when no display is reachable, and
    /// [`DesktopError::InvalidHotkey`] for a combination that does not parse. A hotkey that
    /// cannot be registered (another program holds it: [`DesktopError::HotkeyTaken`]) does not
    /// stop the tray: [`Desktop::hotkey_problem`] tells why push-to-talk is off. Nor does a
    /// missing tray helper stop the hotkey ([`Desktop::tray_problem`]); a helper that is there
    /// but cannot show the icon is [`DesktopError::Tray`].
    pub fn start(
        cfg: &DesktopConfig,
        events: UnboundedSender<DesktopEvent>,
    ) -> Result<Desktop, DesktopError> {
        let key = parse_hotkey(&cfg.hotkey)?;
        if let Some(reason) = display_problem() {
            return Err(DesktopError::NoDisplay(reason));
        }
        // On a Wayland session without XWayland the tray can work but X11 key grabs cannot.
        let (hotkey, hotkey_problem) = match x11_problem(std::env::var("DISPLAY").ok().as_deref()) {
            None => match hotkey::HotkeyListener::start(&cfg.hotkey, key, events.clone()) {
                Ok(h) => (Some(h), None),
                Err(e) => {
                    tracing::warn!(error = %e, "push-to-talk is off");
                    (None, Some(e))
                }
            },
            Some(reason) => {
                tracing::warn!(%reason, "no X11 display: the global hotkey is not available");
                (
                    None,
                    Some(DesktopError::Hotkey {
                        combo: cfg.hotkey.clone(),
                        reason: format!("global hotkeys need X11 (or XWayland): {reason}"),
                    }),
                )
            }
        };
        let (tray, tray_problem) = match cfg.tray.then(tray::helper_path) {
            None => (None, None),
            Some(Ok(path)) => (Some(tray::TrayHandle::start(path, events)?), None),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "no tray icon");
                (None, Some(e))
            }
        };
        tracing::info!(hotkey = %cfg.hotkey, tray = tray.is_some(), "desktop started");
        Ok(Desktop {
            hotkey,
            hotkey_problem,
            tray,
            tray_problem,
        })
    }

    /// Whether the global hotkey is registered.
    pub fn hotkey_active(&self) -> bool {
        self.hotkey.is_some()
    }

    /// Why the hotkey is not registered (taken by another program, no X11), when it is not.
    pub fn hotkey_problem(&self) -> Option<&DesktopError> {
        self.hotkey_problem.as_ref()
    }

    /// Why the tray icon is off although the configuration asks for it (its helper program is
    /// missing), when it is.
    pub fn tray_problem(&self) -> Option<&DesktopError> {
        self.tray_problem.as_ref()
    }

    /// Sends a change to the tray icon; never blocks. Ignored when the tray is off.
    pub fn update(&self, u: TrayUpdate) {
        if let Some(tray) = &self.tray {
            tray.update(u);
        }
    }

    /// Stops the tray helper and the hotkey listener, waiting for the helper to exit.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for Desktop {
    fn drop(&mut self) {
        if let Some(tray) = self.tray.take() {
            tray.stop();
        }
        self.hotkey.take();
        tracing::debug!("desktop stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_rejects_unknown_fields() {
        let cfg: DesktopConfig = toml::from_str("").unwrap();
        assert_eq!(cfg, DesktopConfig::default());
        assert_eq!(cfg.hotkey, "ctrl+shift+space");
        assert!(cfg.tray);
        let cfg: DesktopConfig = toml::from_str("hotkey = \"super+alt+a\"\ntray = false").unwrap();
        assert_eq!(cfg.hotkey, "super+alt+a");
        assert!(!cfg.tray);
        let err = toml::from_str::<DesktopConfig>("hotkey = \"f9\"\ntrayy = true").unwrap_err();
        assert!(err.to_string().contains("trayy"), "{err}");
    }

    #[test]
    fn state_serializes_as_snake_case_words() {
        let json = serde_json::to_string(&AgentState::ALL).unwrap();
        assert_eq!(
            json,
            r#"["idle","listening","thinking","speaking","paused","error"]"#
        );
        assert_eq!(AgentState::Speaking.label(), "Speaking");
    }

    #[test]
    fn unset_or_dead_display_is_reported() {
        assert_eq!(x11_problem(None).as_deref(), Some("DISPLAY is not set"));
        assert_eq!(x11_problem(Some("")).as_deref(), Some("DISPLAY is not set"));
        // Display 87 has no server: no socket in /tmp/.X11-unix (checked, so the test means it).
        if !std::path::Path::new("/tmp/.X11-unix/X87").exists() {
            let reason = x11_problem(Some(":87")).unwrap();
            assert!(
                reason.starts_with("cannot connect to display :87"),
                "{reason}"
            );
        }
        let reason = x11_problem(Some("not a display")).unwrap();
        assert!(reason.contains("not a display"), "{reason}");
    }

    #[test]
    fn desktop_is_send() {
        fn check<T: Send>() {}
        check::<Desktop>();
    }
}
