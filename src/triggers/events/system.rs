//! Desktop events from D-Bus signals (zbus), published on the [`EventHub`]:
//!
//! | signal | bus | events |
//! |---|---|---|
//! | `org.freedesktop.ScreenSaver.ActiveChanged(b)` (and `org.gnome.ScreenSaver`) | session | `session.locked` / `session.unlocked` |
//! | `org.freedesktop.login1.Manager.PrepareForSleep(b)` | system | `system.suspend` / `system.resume` |
//! | `org.freedesktop.NetworkManager.StateChanged(u)` | system | `network.up` (70, global) / `network.down` (20 or less) |
//!
//! Each bus is connected within [`CONNECT_TIMEOUT`]; a bus that is absent (headless, a container)
//! makes its sources `unavailable: <why>` in the hub's source list and the log, and nothing
//! waits on it. Data: `{"signal": "<interface>.<member>", "value": <the argument>}`.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use zbus::message::Type;
use zbus::{Connection, MatchRule, MessageStream};

use super::{Event, EventHub};

/// How long connecting to a bus may take before its sources are called unavailable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Which buses to listen on: an address, or `None` for the default session/system bus.
#[derive(Debug, Clone, Default)]
pub struct Buses {
    /// The session bus (screen saver).
    pub session: Option<String>,
    /// The system bus (logind, NetworkManager).
    pub system: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bus {
    Session,
    System,
}

/// One signal Atlas listens for.
struct Signal {
    bus: Bus,
    interface: &'static str,
    member: &'static str,
    /// The event type for the signal's first argument, or `None` to ignore that value.
    map: fn(&Value) -> Option<&'static str>,
}

fn lock_state(v: &Value) -> Option<&'static str> {
    v.as_bool().map(|on| {
        if on {
            "session.locked"
        } else {
            "session.unlocked"
        }
    })
}

fn sleep_state(v: &Value) -> Option<&'static str> {
    v.as_bool().map(|on| {
        if on {
            "system.suspend"
        } else {
            "system.resume"
        }
    })
}

fn network_state(v: &Value) -> Option<&'static str> {
    match v.as_u64()? {
        70 => Some("network.up"),
        0..=20 => Some("network.down"),
        _ => None,
    }
}

const SIGNALS: &[Signal] = &[
    Signal {
        bus: Bus::Session,
        interface: "org.freedesktop.ScreenSaver",
        member: "ActiveChanged",
        map: lock_state,
    },
    Signal {
        bus: Bus::Session,
        interface: "org.gnome.ScreenSaver",
        member: "ActiveChanged",
        map: lock_state,
    },
    Signal {
        bus: Bus::System,
        interface: "org.freedesktop.login1.Manager",
        member: "PrepareForSleep",
        map: sleep_state,
    },
    Signal {
        bus: Bus::System,
        interface: "org.freedesktop.NetworkManager",
        member: "StateChanged",
        map: network_state,
    },
];

async fn connect(address: Option<&str>, bus: Bus) -> Result<Connection, String> {
    let connecting = async {
        match (address, bus) {
            (Some(a), _) => zbus::connection::Builder::address(a).build().await,
            (None, Bus::Session) => Connection::session().await,
            (None, Bus::System) => Connection::system().await,
        }
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {CONNECT_TIMEOUT:?}")),
    }
}

/// Connects to both buses and listens until `shutdown`; returns once every source is on or
/// known to be unavailable (at most about two [`CONNECT_TIMEOUT`]s).
pub async fn listen(buses: Buses, hub: EventHub, shutdown: CancellationToken) {
    for (bus, address, name) in [
        (Bus::Session, buses.session.as_deref(), "system.session"),
        (Bus::System, buses.system.as_deref(), "system.bus"),
    ] {
        let conn = match connect(address, bus).await {
            Ok(c) => c,
            Err(why) => {
                hub.set_source(name, format!("unavailable: {why}"));
                continue;
            }
        };
        let mut on = 0;
        for signal in SIGNALS.iter().filter(|s| s.bus == bus) {
            match subscribe(&conn, signal).await {
                Ok(stream) => {
                    on += 1;
                    tokio::spawn(pump(stream, signal, hub.clone(), shutdown.clone()));
                }
                Err(why) => {
                    tracing::warn!(interface = signal.interface, member = signal.member, error = %why, "cannot listen for a D-Bus signal")
                }
            }
        }
        hub.set_source(name, format!("on: {on} signal(s)"));
    }
}

async fn subscribe(conn: &Connection, s: &Signal) -> Result<MessageStream, zbus::Error> {
    let rule = MatchRule::builder()
        .msg_type(Type::Signal)
        .interface(s.interface)
        .member(s.member)
        .build()?;
    tokio::time::timeout(
        CONNECT_TIMEOUT,
        MessageStream::for_match_rule(rule, conn, None),
    )
    .await
    .map_err(|_| zbus::Error::Failure("the bus did not accept the match rule in time".into()))?
}

async fn pump(
    mut stream: MessageStream,
    s: &'static Signal,
    hub: EventHub,
    shutdown: CancellationToken,
) {
    loop {
        let msg = tokio::select! {
            _ = shutdown.cancelled() => return,
            m = stream.next() => match m {
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "bad D-Bus message skipped");
                    continue;
                }
                None => return,
            },
        };
        let body = msg.body();
        let value = match s.interface {
            "org.freedesktop.NetworkManager" => body.deserialize::<u32>().map(|v| json!(v)),
            _ => body.deserialize::<bool>().map(|v| json!(v)),
        };
        let Ok(value) = value else { continue };
        if let Some(kind) = (s.map)(&value) {
            hub.publish(Event::new(
                "system",
                kind,
                json!({"signal": format!("{}.{}", s.interface, s.member), "value": value}),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_states_map_to_up_and_down_only_at_the_ends() {
        assert_eq!(network_state(&json!(70)), Some("network.up"));
        assert_eq!(network_state(&json!(20)), Some("network.down"));
        assert_eq!(network_state(&json!(50)), None);
    }

    #[tokio::test]
    async fn no_bus_makes_both_sources_unavailable_without_hanging() {
        let dir = tempfile::tempdir().unwrap();
        let nowhere = crate::test_dbus::no_bus_address(dir.path());
        let hub = EventHub::default();
        let buses = Buses {
            session: Some(nowhere.clone()),
            system: Some(nowhere),
        };
        tokio::time::timeout(
            CONNECT_TIMEOUT * 3,
            listen(buses, hub.clone(), CancellationToken::new()),
        )
        .await
        .expect("bounded");
        let sources = hub.sources();
        assert!(
            sources["system.session"].starts_with("unavailable:"),
            "{sources:?}"
        );
        assert!(
            sources["system.bus"].starts_with("unavailable:"),
            "{sources:?}"
        );
    }
}
