//! `atlas dashboard`: asks the running daemon for a one-time login link
//! (`POST /v1/dashboard/login`, with the token read from the data dir) and prints it, or opens
//! it with `--open`. The token itself is never printed or put in the link.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

use super::Global;

/// Prints (and with `open`, opens) a login link; whether it worked.
pub async fn run(global: &Global, open: bool) -> anyhow::Result<bool> {
    let (_, paths) = super::load(global)?;
    if atlas::runtime::instance::running(&paths.data_dir).is_none() {
        bail!("no Atlas daemon is running: start it with `atlas daemon` (or scripts/start.sh)");
    }
    let status = atlas::runtime::read_status(&paths.data_dir)
        .context("the daemon's status file cannot be read")?;
    let Some(url) = status["api_url"].as_str() else {
        bail!(
            "the daemon's control API is off (`[api] listen = \"off\"`): the dashboard is served on it"
        );
    };
    let token = std::fs::read_to_string(atlas::api::token::token_path(&paths.data_dir))
        .context("cannot read the API token")?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()?;
    let resp = client
        .post(format!("{url}/v1/dashboard/login"))
        .bearer_auth(token.trim())
        .send()
        .await
        .with_context(|| format!("the daemon's API at {url} does not answer"))?;
    let ok = resp.status().is_success();
    let body: Value = resp
        .json()
        .await
        .context("the daemon's answer is not JSON")?;
    if !ok {
        let msg = body["error"]["message"].as_str().unwrap_or("no message");
        bail!("the daemon refused a login link: {msg}");
    }
    let link = body["url"]
        .as_str()
        .context("the daemon's answer has no `url`")?;
    println!("{link}");
    if open {
        std::process::Command::new("xdg-open")
            .arg(link)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("cannot run xdg-open to open the link")?;
    }
    Ok(true)
}
