//! `atlas-tray`: the tray icon of the Atlas agent, in a process of its own so that GTK (some
//! 16 MB resident once initialised) stays out of the agent. The agent (`atlas daemon`) starts it
//! when a display is usable and the tray is on, and talks to it in JSON lines
//! (`atlas::desktop::protocol`): updates on stdin, `ready`/`failed` and menu clicks on stdout,
//! log lines on stderr. It is not meant to be run by hand.
//!
//! It exits when the agent closes its stdin, when writing to the agent fails, and (through
//! `PR_SET_PDEATHSIG`) when the agent's thread that started it ends, so it never outlives the
//! agent.

mod icons;
mod tray;

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::mpsc;

use atlas::desktop::protocol::{self, HelperLine};
use atlas::desktop::{DesktopEvent, TrayUpdate};

fn main() -> ExitCode {
    // SAFETY: prctl with integer arguments only changes this process's own signal setting.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) };
    let (tx, rx) = mpsc::channel();
    let events: tray::Events = Box::new(|event: DesktopEvent| say(&HelperLine::Event { event }));
    let ready = move |outcome: Result<(), String>| {
        let line = match outcome {
            Ok(()) => HelperLine::Ready,
            Err(reason) => HelperLine::Failed { reason },
        };
        if say(&line) {
            // Updates are read only once the icon exists; until then they wait in the pipe.
            std::thread::spawn(move || read_updates(tx));
        }
    };
    match tray::run(rx, events, ready) {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("{reason}");
            ExitCode::FAILURE
        }
    }
}

/// Writes one line to the agent; `false` when it is gone.
fn say(line: &HelperLine) -> bool {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", protocol::encode(line)).is_ok() && out.flush().is_ok()
}

/// Hands the agent's updates to the GTK loop until stdin ends (then the loop quits).
fn read_updates(tx: mpsc::Sender<TrayUpdate>) {
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        match protocol::decode::<TrayUpdate>(&line) {
            Ok(u) => {
                if tx.send(u).is_err() {
                    return;
                }
            }
            Err(err) => eprintln!("ignoring an update: {err}"),
        }
    }
}
