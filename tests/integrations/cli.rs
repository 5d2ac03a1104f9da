//! The command line end to end with a real Secret Service (gnome-keyring on a private bus):
//! `atlas integration connect github --token` and `connect binance --token` reading the
//! credentials from stdin (never an argument), `list` showing all eight, a typed command
//! (`atlas listen --text`) running the bundled workflows against the fake with the keyring's
//! credentials, a revoked token reported by `status`, and every credential looked for (and
//! absent) in stdout, stderr at debug level and every file of the data dir.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use serde_json::{Value, json};

use super::fake::Fake;
use crate::test_keyring::Keyring;
use crate::util::atlas_bin;

const GITHUB: &str = "ghp_cliFakeToken5a7e1b";
const KEY: &str = "cliFakeBinanceKey9c2d";
const SECRET: &str = "cliFakeBinanceSecret4f8a";

fn atlas(keyring: &Keyring, home: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut c = keyring.cmd(atlas_bin());
    c.env("ATLAS_DATA_DIR", home.join("data"))
        .env("ATLAS_CONFIG", home.join("config.toml"))
        .env("ATLAS_SPEECH", "none")
        .env("ATLAS_LOG", "debug")
        .env_remove("ATLAS_BUNDLED_WORKFLOWS")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn tokens_connect_from_stdin_run_typed_commands_and_never_leak() {
    let Some(keyring) = Keyring::start() else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fake = rt.block_on(Fake::start());
    fake.set(|i| {
        i.tokens.insert(GITHUB.into());
        i.tokens.insert(KEY.into());
        i.secrets.insert(KEY.into(), SECRET.into());
        i.review_prs = vec![json!({"number": 7, "title": "Fix the parser", "html_url": "https://github.com/octo-org/app/pull/7",
            "repository_url": "https://api.github.com/repos/octo-org/app", "draft": false})];
        i.prices.insert("BTCUSDT".into(), "100000.00".into());
        i.balances = vec![json!({"asset": "BTC", "free": "0.25", "locked": "0"})];
    });
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "[integrations.github]\napi_url = \"{}\"\n[integrations.binance]\napi_url = \"{}\"\n",
            fake.base("github"),
            fake.base("binance")
        ),
    )
    .unwrap();
    let run = |args: &[&str], stdin: Option<&str>| atlas(&keyring, home.path(), args, stdin);
    let mut outputs = Vec::new();

    let o = run(
        &["integration", "connect", "github", "--token"],
        Some(&format!("{GITHUB}\n")),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("GitHub is connected"),
        "{}",
        text(&o)
    );
    outputs.push(o);
    let o = run(
        &["integration", "connect", "binance", "--token"],
        Some(&format!("{KEY}\n{SECRET}\n")),
    );
    assert!(o.status.success(), "{}", text(&o));
    outputs.push(o);
    // Gmail takes no token.
    let o = run(&["integration", "connect", "gmail", "--token"], Some("x\n"));
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("signs in through the browser only"),
        "{}",
        text(&o)
    );

    let o = run(&["integration", "list", "--json"], None);
    assert!(o.status.success(), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = v["integrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "gmail",
            "calendar",
            "github",
            "slack",
            "discord",
            "notion",
            "spotify",
            "binance",
            "microsoft"
        ]
    );
    let state = |n: &str| {
        v["integrations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == n)
            .unwrap()["state"]
            .clone()
    };
    assert_eq!(
        (state("github"), state("binance"), state("slack")),
        (
            json!("connected"),
            json!("connected"),
            json!("disconnected")
        )
    );
    outputs.push(o);

    let o = run(&["listen", "--text", "any review requests", "--json"], None);
    assert!(o.status.success(), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["workflow"], "what_needs_me", "{v}");
    let all = v.to_string();
    assert!(
        all.contains("1 review request: Fix the parser in octo-org/app."),
        "{v}"
    );
    assert!(
        all.contains("Slack is not connected, so I skipped mentions."),
        "{v}"
    );
    outputs.push(o);
    let o = run(
        &[
            "listen",
            "--text",
            "how much is my portfolio worth",
            "--json",
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("Your crypto portfolio is worth 25000 dollars."),
        "{}",
        text(&o)
    );
    outputs.push(o);

    // Revoked at GitHub: status says so and fails.
    fake.set(|i| {
        i.tokens.remove(GITHUB);
    });
    let o = run(&["integration", "status", "github"], None);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("needs_reauth"),
        "{}",
        text(&o)
    );
    outputs.push(o);
    let o = run(&["integration", "disconnect", "binance"], None);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("revoke it in binance's settings"),
        "{}",
        text(&o)
    );
    outputs.push(o);

    let mut files = Vec::new();
    files_under(&home.path().join("data"), &mut files);
    assert!(!files.is_empty());
    for secret in [GITHUB, KEY, SECRET] {
        for o in &outputs {
            for s in [&o.stdout, &o.stderr] {
                assert!(
                    !String::from_utf8_lossy(s).contains(secret),
                    "a credential reached the output: {}",
                    text(o)
                );
            }
        }
        for f in &files {
            let t = String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned();
            assert!(!t.contains(secret), "{} holds a credential", f.display());
        }
    }
    // The logs did run at debug level, so the scan saw them.
    assert!(
        outputs
            .iter()
            .any(|o| String::from_utf8_lossy(&o.stderr).contains("DEBUG")),
        "no debug logs"
    );
    drop(rt);
}

/// Spotify's sign-in (authorization code + PKCE, no client secret) against the independent
/// authorization server oauth2-mock-server, then "what's playing" typed, with the access token
/// from the keyring; the token never reaches the output or a file.
#[test]
fn spotify_signs_in_with_pkce_against_the_mock_server_and_answers_whats_playing() {
    if !crate::test_skip::require_programs(crate::test_skip::Need::Desktop, &[("curl", "curl")]) {
        return;
    }
    let Some(keyring) = Keyring::start() else {
        return;
    };
    let Some(server) = crate::accounts::connect::MockServer::start() else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fake = rt.block_on(Fake::start());
    fake.set(|i| {
        i.accept_jwt = true;
        i.playing = Some(json!({"is_playing": true, "item": {"name": "So What", "artists": [{"name": "Miles Davis"}], "album": {"name": "Kind of Blue"}}}));
    });
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "[integrations.spotify]\nclient_id = \"atlas-spotify-test\"\nauth_url = \"{0}/authorize\"\ntoken_url = \"{0}/token\"\napi_url = \"{1}\"\nredirect_timeout_secs = 20\n",
            server.base,
            fake.base("spotify")
        ),
    )
    .unwrap();
    let browser = home.path().join("browser.sh");
    std::fs::write(
        &browser,
        "#!/bin/sh\nexec curl -sS -L -o /dev/null \"$1\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&browser, std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = |args: &[&str]| {
        let mut c = keyring.cmd(atlas_bin());
        c.env("ATLAS_DATA_DIR", home.path().join("data"))
            .env("ATLAS_CONFIG", home.path().join("config.toml"))
            .env("ATLAS_SPEECH", "none")
            .env("ATLAS_LOG", "debug")
            .env("BROWSER", &browser)
            .env_remove("ATLAS_BUNDLED_WORKFLOWS")
            .args(args)
            .stdin(Stdio::null());
        c.output().unwrap()
    };
    let o = run(&["integration", "connect", "spotify"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("Spotify is connected"),
        "{}",
        text(&o)
    );
    let o2 = run(&["listen", "--text", "what's playing", "--json"]);
    assert!(o2.status.success(), "{}", text(&o2));
    let v: Value = serde_json::from_slice(&o2.stdout).unwrap();
    assert_eq!(v["workflow"], "music", "{v}");
    assert_eq!(v["reply"], "So What by Miles Davis.", "{v}");
    // The fake saw the mock server's JWT; it appears in no output or file.
    let token = fake
        .get(|i| {
            i.auth_seen
                .iter()
                .find_map(|a| a.strip_prefix("Bearer ").map(str::to_owned))
        })
        .expect("a bearer token reached the fake");
    assert!(token.starts_with("eyJ"), "{token}");
    let mut files = Vec::new();
    files_under(&home.path().join("data"), &mut files);
    for o in [&o, &o2] {
        for s in [&o.stdout, &o.stderr] {
            assert!(!String::from_utf8_lossy(s).contains(&token), "{}", text(o));
        }
    }
    for f in files {
        assert!(
            !String::from_utf8_lossy(&std::fs::read(&f).unwrap()).contains(&token),
            "{}",
            f.display()
        );
    }
    drop(rt);
}

#[test]
fn a_config_section_of_no_integration_is_refused_naming_the_known_ones() {
    let Some(keyring) = Keyring::start() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("config.toml"),
        "[integrations.gihtub]\napi_url = \"http://127.0.0.1:9\"\n",
    )
    .unwrap();
    let o = atlas(&keyring, home.path(), &["integration", "list"], None);
    assert!(!o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("[integrations.gihtub]")
            && err.contains(
                "gmail, calendar, github, slack, discord, notion, spotify, binance, microsoft"
            ),
        "{}",
        text(&o)
    );
}
