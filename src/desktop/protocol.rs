//! The line protocol between the agent and its tray helper process, `atlas-tray`.
//!
//! The tray icon needs GTK, which costs a process some 16 MB resident once initialised and
//! several more merely linked; the agent keeps it out of its own address space by running the
//! icon in a small helper (`src/bin/atlas-tray`) and talking to it over pipes. Each message is
//! one line of JSON:
//!
//! - agent -> helper (the helper's stdin): a [`TrayUpdate`](super::TrayUpdate), e.g. `{"state":"listening"}`.
//!   End of input means "quit": the helper removes its icon and exits.
//! - helper -> agent (the helper's stdout): a [`HelperLine`]: first `{"type":"ready"}` once the
//!   icon is shown (or `{"type":"failed","reason":...}`), then one `{"type":"event",...}` per
//!   menu click. The helper's stderr carries its log lines.
//!
//! Both sides are built from this one crate, so the protocol has no version: the agent always
//! starts the helper installed beside it.

use serde::{Deserialize, Serialize};

use super::DesktopEvent;

/// The helper's program name, looked for next to the running `atlas` and then on `PATH`.
pub const HELPER_NAME: &str = "atlas-tray";

/// Names the helper program to use instead of looking for it (for packagers and tests).
pub const HELPER_ENV: &str = "ATLAS_TRAY_HELPER";

/// A line the helper writes to the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HelperLine {
    /// The icon is shown; updates may follow.
    Ready,
    /// The icon could not be shown (GTK would not start, no tray host protocol, ...).
    Failed {
        /// What went wrong, for the user.
        reason: String,
    },
    /// The user clicked a menu item.
    Event {
        /// What the click means.
        event: DesktopEvent,
    },
}

/// One protocol line (no newline) for a value of either direction.
pub fn encode<T: Serialize>(value: &T) -> String {
    // These types are plain enums of strings and lists: serialising them cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| String::from("null"))
}

/// Parses one protocol line; `Err` says what is wrong with it.
pub fn decode<'a, T: Deserialize<'a>>(line: &'a str) -> Result<T, String> {
    serde_json::from_str(line.trim_end()).map_err(|e| format!("{e} in tray protocol line {line:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desktop::{AgentState, TrayUpdate};

    #[test]
    fn updates_and_lines_round_trip() {
        let updates = [
            TrayUpdate::State(AgentState::Listening),
            TrayUpdate::Listening(false),
            TrayUpdate::Workflows(vec![("weather".into(), "Weather \"now\"\n".into())]),
            TrayUpdate::Next(None),
            TrayUpdate::Next(Some("tick at 07:00".into())),
            TrayUpdate::Recent(vec!["weather: succeeded".into()]),
            TrayUpdate::Accounts(vec!["Gmail: sign in again".into()]),
            TrayUpdate::Accounts(Vec::new()),
        ];
        for u in updates {
            let line = encode(&u);
            assert!(!line.contains('\n'), "{line}");
            assert_eq!(decode::<TrayUpdate>(&line).unwrap(), u);
        }
        assert_eq!(
            encode(&TrayUpdate::State(AgentState::Idle)),
            r#"{"state":"idle"}"#
        );
        let lines = [
            HelperLine::Ready,
            HelperLine::Failed {
                reason: "no GTK".into(),
            },
            HelperLine::Event {
                event: DesktopEvent::RunWorkflow("news".into()),
            },
            HelperLine::Event {
                event: DesktopEvent::Quit,
            },
        ];
        for l in lines {
            assert_eq!(decode::<HelperLine>(&encode(&l)).unwrap(), l);
        }
        assert_eq!(encode(&HelperLine::Ready), r#"{"type":"ready"}"#);
        let err = decode::<HelperLine>("{\"type\":\"bogus\"}\n").unwrap_err();
        assert!(err.contains("tray protocol line"), "{err}");
    }
}
