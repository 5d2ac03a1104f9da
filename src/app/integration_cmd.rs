//! `atlas integration list|connect|disconnect|status`: the integrations from the command line.
//! `connect` opens the sign-in page with `$BROWSER` if set, else `xdg-open` when a display is
//! there, and always prints the URL (a headless machine's user opens it elsewhere; the redirect
//! must then reach this machine's 127.0.0.1, e.g. through an SSH tunnel).

use std::process::{Command, Stdio};
use std::sync::Arc;

use atlas::integrations::{DesktopAnnounce, IntegrationStatus, Integrations, Provider, TokenKind};
use atlas::secrets::{ChainSecrets, EnvSecrets, KeyringSecrets, SecretStore};
use serde_json::json;

use super::Global;
use super::cli::IntegrationCmd;

/// The integrations of this config, tokens in the OS keyring.
pub fn integrations(global: &Global) -> anyhow::Result<Integrations> {
    let (config, paths) = super::load(global)?;
    atlas::integrations::check_config(&config.integrations)
        .map_err(|e| anyhow::anyhow!("{e} (in {})", paths.config_file.display()))?;
    let keyring = Arc::new(KeyringSecrets::new());
    let secrets: Arc<dyn SecretStore> =
        Arc::new(ChainSecrets(vec![Arc::new(EnvSecrets), keyring.clone()]));
    let announce = Arc::new(DesktopAnnounce);
    Ok(Integrations::new(
        config.integrations,
        &paths.config_file,
        &paths.data_dir,
        keyring,
        secrets,
        announce,
        None,
    ))
}

/// Carries out one `atlas integration` command.
pub async fn run(cmd: IntegrationCmd, global: &Global) -> anyhow::Result<bool> {
    let all = integrations(global)?;
    match cmd {
        IntegrationCmd::List { json } => {
            print_statuses(&all.statuses(), json);
            Ok(true)
        }
        IntegrationCmd::Status { name, json } => {
            let providers = match name {
                Some(n) => vec![Provider::parse(&n)?],
                None => atlas::integrations::PROVIDERS.to_vec(),
            };
            let mut out = Vec::new();
            for p in providers {
                out.push(all.check(p).await);
            }
            print_statuses(&out, json);
            Ok(out.iter().all(|s| !s.needs_attention()))
        }
        IntegrationCmd::Connect {
            name,
            token: true,
            json,
            ..
        } => {
            let p = Provider::parse(&name)?;
            let Some(kind) = p.spec().token else {
                anyhow::bail!(atlas::integrations::IntegrationError::OAuthOnly(name));
            };
            eprintln!(
                "{}: paste {}",
                p.title(),
                match kind {
                    TokenKind::Token(what) | TokenKind::KeySecret(what) => what,
                }
            );
            let (token, secret) = read_token(p, kind)?;
            let s = all.connect_token(p, token, secret).await?;
            if json {
                println!(
                    "{}",
                    json!({"integration": s.name, "state": s.state, "reason": s.reason})
                );
            } else if s.state == "connected" {
                println!("{} is connected", p.title());
            } else {
                println!(
                    "{} is stored, but the check failed: {}",
                    p.title(),
                    s.reason.as_deref().unwrap_or("unknown")
                );
            }
            Ok(s.state == "connected")
        }
        IntegrationCmd::Connect {
            name,
            no_browser,
            json,
            ..
        } => {
            let p = Provider::parse(&name)?;
            let done = all
                .connect(p, |url| {
                    eprintln!("Sign in to {} in your browser: {url}", p.title());
                    if !no_browser {
                        open_browser(url);
                    }
                })
                .await?;
            if json {
                println!(
                    "{}",
                    json!({"integration": done.name, "state": "connected", "took_ms": done.took.as_millis() as u64, "scope": done.scope})
                );
            } else {
                println!(
                    "{} is connected ({:.1} s)",
                    p.title(),
                    done.took.as_secs_f64()
                );
            }
            Ok(true)
        }
        IntegrationCmd::Disconnect { name } => {
            let p = Provider::parse(&name)?;
            let note = all.disconnect(p).await?;
            println!("{} is disconnected", p.title());
            if let Some(n) = note {
                eprintln!("note: {n}");
            }
            Ok(true)
        }
    }
}

/// The pasted credential: one token, or an API key then its secret (two prompts on a terminal,
/// two lines on stdin). Never an argument, which other users of the machine could read.
fn read_token(p: Provider, kind: TokenKind) -> anyhow::Result<(String, Option<String>)> {
    use std::io::IsTerminal;
    match kind {
        TokenKind::Token(_) => Ok((
            super::secret_cmd::read_value(&format!("the {} token", p.name()))?,
            None,
        )),
        TokenKind::KeySecret(_) if std::io::stdin().is_terminal() => {
            let key = super::secret_cmd::read_value(&format!("the {} API key", p.name()))?;
            let secret = super::secret_cmd::read_value(&format!("the {} API secret", p.name()))?;
            Ok((key, Some(secret)))
        }
        TokenKind::KeySecret(_) => {
            let both =
                super::secret_cmd::read_value(&format!("the {} API key and secret", p.name()))?;
            let mut lines = both.lines().map(str::trim).filter(|l| !l.is_empty());
            let key = lines.next().unwrap_or_default().to_owned();
            Ok((key, lines.next().map(str::to_owned)))
        }
    }
}

fn print_statuses(all: &[IntegrationStatus], json: bool) {
    if json {
        println!("{}", json!({ "integrations": all }));
        return;
    }
    for s in all {
        let mut line = format!("{:<9} {:<13} {}", s.name, s.state, s.auth);
        if !s.configured {
            line.push_str(" (no OAuth client in config.toml)");
        }
        if let Some(r) = &s.reason {
            line.push_str(&format!(": {r}"));
        }
        if let Some(c) = &s.last_check {
            line.push_str(&format!(" [checked {c}]"));
        }
        println!("{line}");
    }
}

/// `$BROWSER URL`, else `xdg-open URL` when there is a display; a failure only means the user
/// opens the printed URL by hand.
fn open_browser(url: &str) {
    let program = match std::env::var("BROWSER") {
        Ok(b) if !b.is_empty() => b,
        _ => {
            let display = std::env::var_os("DISPLAY").is_some()
                || std::env::var_os("WAYLAND_DISPLAY").is_some();
            if !display {
                eprintln!("(no display: open the URL above in a browser on this machine)");
                return;
            }
            "xdg-open".to_owned()
        }
    };
    let spawned = Command::new(&program)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    if let Err(e) = spawned {
        eprintln!("(could not start {program}: {e}; open the URL above by hand)");
    }
}
