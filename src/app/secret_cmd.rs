//! `atlas secret set|list|delete`: the OS keyring from the command line. A value comes from a
//! prompt with echo off, or from stdin when it is not a terminal; never from an argument (which
//! `ps` and shell history would show). Nothing here prints a value.

use std::io::{BufRead, IsTerminal, Read, Write};

use atlas::secrets::{KeyringSecrets, SecretVault, check_name};
use serde_json::json;

use super::cli::SecretCmd;

/// Carries out one `atlas secret` command.
pub async fn run(cmd: SecretCmd) -> anyhow::Result<bool> {
    // Keyring calls block (bounded); keep them off the async runtime's threads.
    tokio::task::spawn_blocking(move || run_blocking(cmd)).await?
}

fn run_blocking(cmd: SecretCmd) -> anyhow::Result<bool> {
    let store = KeyringSecrets::new();
    match cmd {
        SecretCmd::Set { name } => {
            check_name(&name)?;
            let value = read_value(&name)?;
            store.set(&name, &value)?;
            eprintln!("stored `{name}` in the OS keyring");
            Ok(true)
        }
        SecretCmd::List { json } => {
            let names = store.names()?;
            if json {
                println!("{}", json!({ "store": "keyring", "names": names }));
            } else if names.is_empty() {
                println!("no secrets in the OS keyring (add one with `atlas secret set NAME`)");
            } else {
                for n in names {
                    println!("{n}");
                }
            }
            Ok(true)
        }
        SecretCmd::Delete { name } => {
            check_name(&name)?;
            if store.delete(&name)? {
                eprintln!("deleted `{name}` from the OS keyring");
                Ok(true)
            } else {
                eprintln!("no secret `{name}` in the OS keyring");
                Ok(false)
            }
        }
    }
}

/// The value: prompted for on a terminal (echo off), else all of stdin less one line ending.
pub(super) fn read_value(name: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let value = if stdin.is_terminal() {
        eprint!("value of {name} (not shown): ");
        std::io::stderr().flush()?;
        let echo = EchoOff::new();
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        drop(echo);
        eprintln!();
        line
    } else {
        let mut all = String::new();
        stdin.lock().read_to_string(&mut all)?;
        all
    };
    let value = value
        .strip_suffix('\n')
        .map(|v| v.strip_suffix('\r').unwrap_or(v))
        .unwrap_or(&value)
        .to_owned();
    if value.is_empty() {
        anyhow::bail!("no value given for `{name}`: type it at the prompt or pipe it on stdin");
    }
    Ok(value)
}

/// Turns terminal echo off for as long as it lives.
struct EchoOff(Option<libc::termios>);

impl EchoOff {
    fn new() -> EchoOff {
        // SAFETY: tcgetattr/tcsetattr on stdin with a termios we own; failure leaves echo on.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDIN_FILENO, &mut t) != 0 {
                return EchoOff(None);
            }
            let saved = t;
            t.c_lflag &= !libc::ECHO;
            if libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &t) != 0 {
                return EchoOff(None);
            }
            EchoOff(Some(saved))
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(saved) = self.0 {
            // SAFETY: restores the settings read in `new`.
            unsafe {
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &saved);
            }
        }
    }
}
