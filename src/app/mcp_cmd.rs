//! `atlas mcp` (serve MCP over stdio) and `atlas mcp tools` (what the configured external MCP
//! servers offer).
//!
//! Over stdio, stdout carries only MCP messages: logs go to stderr (as for every command), and
//! nothing here prints.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use atlas::config;
use atlas::mcp::AtlasMcp;
use atlas::runtime::Runtime;
use atlas::voice::{MeteredSpeaker, VoiceLoop};
use serde_json::json;

use super::Global;
use super::voice_cmd::{speaker_for, transcriber};

/// Serves one MCP client on stdin/stdout until it disconnects. Typed commands go through the
/// voice loop's matcher (no whisper model needed: a text is never transcribed).
pub async fn serve(global: &Global) -> anyhow::Result<()> {
    let (config, paths) = config::load(global.config.as_deref(), global.data_dir.as_deref())?;
    let cfg = config.clone();
    let inner = tokio::task::spawn_blocking(move || speaker_for(&cfg, None)).await??;
    let speaker = MeteredSpeaker::new(inner);
    let Runtime { engine, report, .. } = super::build(global, speaker.clone())?;
    super::warn_load_errors(&report);
    let model = super::resolve_model(None, &config, &paths).unwrap_or_else(|_| PathBuf::new());
    let voice = VoiceLoop::new(
        engine.clone(),
        transcriber(&config, model),
        speaker,
        config.voice.clone(),
    )?;
    let server = AtlasMcp::new(
        engine.clone(),
        Some(std::sync::Arc::new(voice)),
        config.voice.clone(),
    );
    let served = server.serve_stdio().await;
    // Runs still in flight when the client leaves are recorded as ended, not left running.
    engine.shutdown("the MCP client disconnected").await;
    served.context("MCP over stdio")
}

/// `atlas mcp tools [SERVER]`: each configured server's tools, or why it could not be asked.
/// `Ok(false)` when a server failed.
pub async fn tools(
    global: &Global,
    only: Option<&str>,
    timeout: u64,
    json_out: bool,
) -> anyhow::Result<bool> {
    let (config, _) = config::load(global.config.as_deref(), global.data_dir.as_deref())?;
    let servers = &config.mcp.servers;
    if let Some(name) = only
        && !servers.contains_key(name)
    {
        anyhow::bail!(
            "no MCP server `{name}` in [mcp.servers] of {}",
            global
                .config
                .as_deref()
                .map_or("config.toml".into(), |p| p.display().to_string())
        );
    }
    if servers.is_empty() && !json_out {
        println!(
            "no MCP servers are configured: add [mcp.servers.NAME] with `command` (and `args`) or `url` to config.toml"
        );
        return Ok(true);
    }
    let secrets = atlas::secrets::EnvSecrets;
    let mut all_ok = true;
    let mut report = Vec::new();
    for (name, server) in servers
        .iter()
        .filter(|(n, _)| only.is_none_or(|o| o == n.as_str()))
    {
        let bearer = match &server.bearer_secret {
            Some(s) => atlas::secrets::SecretStore::get(&secrets, s)?,
            None => None,
        };
        let listed =
            atlas::actions::list_tools(name, server, bearer, Duration::from_secs(timeout)).await;
        match listed {
            Ok(tools) => {
                if !json_out {
                    println!("{name}: {} tools", tools.len());
                    for t in &tools {
                        let doc = t.description.as_deref().unwrap_or("");
                        let first = doc.lines().next().unwrap_or("");
                        println!("  {}  {first}", t.name);
                    }
                }
                report.push(json!({"server": name, "tools": tools}));
            }
            Err(e) => {
                all_ok = false;
                if !json_out {
                    println!("{name}: {e}");
                }
                report.push(json!({"server": name, "error": e.to_string()}));
            }
        }
    }
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "servers": report }))?
        );
    }
    Ok(all_ok)
}
