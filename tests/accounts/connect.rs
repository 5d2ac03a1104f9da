//! `atlas integration connect|list|status|disconnect` end to end through the real binary, tokens
//! in a real Secret Service (gnome-keyring-daemon on a private bus): against the independent
//! authorization server oauth2-mock-server (npm, installed by scripts/oauth-server.sh), and
//! against the strict fake, whose every issued token is then looked for (and must be absent) in
//! stdout, stderr, the log files and every file of the data dir. The "browser" is `$BROWSER`, a
//! script that follows the sign-in URL with curl as a browser would.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Instant;

use serde_json::Value;

use super::fake_auth::FakeAuth;
use crate::test_keyring::Keyring;
use crate::test_skip::{Need, require_programs, skip};
use crate::util::atlas_bin;

/// oauth2-mock-server on 127.0.0.1 at a port it picks, ended on drop.
pub(crate) struct MockServer {
    child: Child,
    pub(crate) base: String,
}

impl MockServer {
    pub(crate) fn start() -> Option<MockServer> {
        let program = std::env::var_os("ATLAS_OAUTH_MOCK_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").unwrap())
                    .join(".cache/atlas/oauth2-mock-server/node_modules/.bin/oauth2-mock-server")
            });
        if !program.exists() {
            skip(
                Need::Desktop,
                "oauth2-mock-server is not installed (run scripts/oauth-server.sh)",
            );
            return None;
        }
        let mut child = Command::new(&program)
            .args(["-a", "127.0.0.1", "-p", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start oauth2-mock-server");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("oauth2-mock-server ended before it listened")
                .unwrap();
            if let Some(url) = line.strip_prefix("OAuth 2 server listening on ") {
                break url.trim().to_owned();
            }
        };
        // Keep draining its output so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Some(MockServer { child, base })
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new(config: &str) -> Home {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        let browser = dir.path().join("browser.sh");
        std::fs::write(
            &browser,
            "#!/bin/sh\nexec curl -sS -L -o /dev/null \"$1\"\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&browser, std::fs::Permissions::from_mode(0o755)).unwrap();
        Home { dir }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn atlas(&self, keyring: &Keyring, args: &[&str]) -> Output {
        keyring
            .cmd(atlas_bin())
            .env("ATLAS_DATA_DIR", self.data())
            .env("ATLAS_CONFIG", self.dir.path().join("config.toml"))
            .env("ATLAS_BUNDLED_WORKFLOWS", self.dir.path().join("none"))
            .env("ATLAS_LOG", "debug")
            .env("BROWSER", self.dir.path().join("browser.sh"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

pub(crate) fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn connect_gmail_against_oauth2_mock_server_with_tokens_in_the_keyring() {
    if !require_programs(Need::Desktop, &[("curl", "curl")]) {
        return;
    }
    let Some(keyring) = Keyring::start() else {
        return;
    };
    let Some(server) = MockServer::start() else {
        return;
    };
    let b = &server.base;
    let home = Home::new(&format!(
        "[integrations.gmail]\nclient_id = \"atlas-desktop\"\nclient_secret = \"mock-secret\"\nauth_url = \"{b}/authorize\"\ntoken_url = \"{b}/token\"\nrevoke_url = \"{b}/revoke\"\nredirect_timeout_secs = 20\n"
    ));
    let started = Instant::now();
    let o = home.atlas(&keyring, &["integration", "connect", "gmail", "--json"]);
    let wall = started.elapsed();
    assert!(o.status.success(), "{}", text(&o));
    let v = json_of(&o);
    assert_eq!(v["state"], "connected", "{v}");
    eprintln!(
        "connect against oauth2-mock-server: {} ms from URL to tokens stored, {} ms for the whole command",
        v["took_ms"],
        wall.as_millis()
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("Sign in to Gmail in your browser: "), "{err}");
    assert!(err.contains("code_challenge_method=S256"), "{err}");

    // A new process finds the tokens in the keyring and the status on disk.
    let list = home.atlas(&keyring, &["integration", "list", "--json"]);
    let v = json_of(&list);
    assert_eq!(v["integrations"][0]["name"], "gmail");
    assert_eq!(v["integrations"][0]["state"], "connected", "{v}");
    assert_eq!(v["integrations"][1]["state"], "disconnected", "{v}");
    let names = home.atlas(&keyring, &["secret", "list"]);
    assert!(
        String::from_utf8_lossy(&names.stdout).contains("integration.gmail.token"),
        "{}",
        text(&names)
    );

    let off = home.atlas(&keyring, &["integration", "disconnect", "gmail"]);
    assert!(off.status.success(), "{}", text(&off));
    let names = home.atlas(&keyring, &["secret", "list"]);
    assert!(!String::from_utf8_lossy(&names.stdout).contains("integration.gmail.token"));
    let list = home.atlas(&keyring, &["integration", "list"]);
    assert!(
        String::from_utf8_lossy(&list.stdout).contains("gmail     disconnected"),
        "{}",
        text(&list)
    );

    // The mock server's tokens are JWTs: none appears in any output or file.
    let mut files = Vec::new();
    files_under(&home.data(), &mut files);
    for o in [&o, &list, &names, &off] {
        for s in [&o.stdout, &o.stderr] {
            assert!(!String::from_utf8_lossy(s).contains("eyJ"), "{}", text(o));
        }
    }
    for f in files {
        let t = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
        assert!(!t.contains("eyJ"), "{} holds a token", f.display());
    }
}

#[test]
fn tokens_refresh_across_restarts_and_never_reach_output_logs_or_files() {
    if !require_programs(Need::Desktop, &[("curl", "curl")]) {
        return;
    }
    let Some(keyring) = Keyring::start() else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fake = rt.block_on(FakeAuth::start());
    // Short-lived access tokens: every later use refreshes first.
    fake.set(|i| i.expires_in = 30);
    let home = Home::new(&fake.provider_toml("gmail", 20));

    let mut outputs = Vec::new();
    let o = home.atlas(&keyring, &["integration", "connect", "gmail"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Gmail is connected"));
    outputs.push(o);
    for _ in 0..2 {
        // Each a new process: the refresh token came back from the keyring.
        let started = Instant::now();
        let o = home.atlas(&keyring, &["integration", "status", "gmail", "--json"]);
        eprintln!(
            "status with a refresh and a health check (new process, keyring read and write): {} ms",
            started.elapsed().as_millis()
        );
        assert!(o.status.success(), "{}", text(&o));
        assert_eq!(json_of(&o)["integrations"][0]["state"], "connected");
        outputs.push(o);
    }
    assert_eq!(fake.get(|i| i.refreshes), 2);
    // Revoked behind Atlas's back: needs_reauth, exit status 1, and the command says what to do.
    fake.revoke_grant();
    let o = home.atlas(&keyring, &["integration", "status", "gmail"]);
    assert!(!o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("needs_reauth") && out.contains("invalid_grant"),
        "{}",
        text(&o)
    );
    outputs.push(o);
    let asked = fake.get(|i| i.token_requests);
    let o = home.atlas(&keyring, &["integration", "status", "gmail"]);
    assert!(!o.status.success());
    assert_eq!(fake.get(|i| i.token_requests), asked, "no refresh loop");
    outputs.push(o);
    outputs.push(home.atlas(&keyring, &["integration", "list"]));
    outputs.push(home.atlas(&keyring, &["secret", "list", "--json"]));

    let issued = fake.get(|i| i.issued.clone());
    assert!(issued.len() >= 4, "{issued:?}");
    files_under(keyring.files(), &mut Vec::new());
    assert_no_token(&issued, &outputs, &home.data());
    // The logs did run at debug level (so the scan saw something).
    assert!(
        outputs
            .iter()
            .any(|o| String::from_utf8_lossy(&o.stderr).contains("refreshing"))
    );
}

/// No token of `issued` in the commands' `outputs` (stdout, stderr: the logs) nor in a file
/// under `data`.
fn assert_no_token(issued: &[String], outputs: &[Output], data: &Path) {
    let mut files = Vec::new();
    files_under(data, &mut files);
    for tok in issued {
        for o in outputs {
            for s in [&o.stdout, &o.stderr] {
                assert!(
                    !String::from_utf8_lossy(s).contains(tok.as_str()),
                    "a token reached the output: {}",
                    text(o)
                );
            }
        }
        for f in &files {
            let t = String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned();
            assert!(!t.contains(tok.as_str()), "{} holds a token", f.display());
        }
    }
}

/// A daemon finds at its start check that the grant was revoked: `needs_reauth` in
/// `GET /v1/integrations`, and the `integration.needs_reauth` event starts a workflow.
#[test]
fn the_daemon_checks_at_start_and_reports_a_revoked_grant_through_the_api_and_events() {
    if !require_programs(Need::Desktop, &[("curl", "curl")]) {
        return;
    }
    let Some(keyring) = Keyring::start() else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fake = rt.block_on(FakeAuth::start());
    let home = Home::new(&format!(
        "bundled_workflows = \"{}\"\n[speech]\nbackend = \"none\"\n[agent]\ntray = false\n[api]\nlisten = \"127.0.0.1:0\"\n{}",
        home_none(),
        fake.provider_toml("gmail", 20)
    ));
    let wf = home.dir.path().join("wf");
    std::fs::create_dir_all(&wf).unwrap();
    std::fs::write(
        wf.join("reauth.yaml"),
        "id: reauth\ntriggers:\n  - {type: event, event: integration.needs_reauth}\nactions:\n  - {id: note, type: file, config: {op: write, path: reauth.txt, content: '{{ trigger.data.integration }} needs sign-in'}}\n",
    )
    .unwrap();
    let o = home.atlas(&keyring, &["integration", "connect", "gmail"]);
    assert!(o.status.success(), "{}", text(&o));
    fake.revoke_grant();
    let mut daemon = keyring
        .cmd(atlas_bin())
        .env("ATLAS_DATA_DIR", home.data())
        .env("ATLAS_CONFIG", home.dir.path().join("config.toml"))
        .env("ATLAS_LOG", "debug")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .arg("--workflows")
        .arg(&wf)
        .arg("daemon")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(home.dir.path().join("daemon.log")).unwrap(),
        ))
        .spawn()
        .unwrap();
    struct Kill<'a>(&'a mut Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let guard = Kill(&mut daemon);
    let data = home.data();
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    let url = loop {
        let status: Option<Value> = std::fs::read(data.join("status.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        if let Some(u) = status.as_ref().and_then(|s| s["api_url"].as_str()) {
            break u.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "the daemon did not start its API"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let token = std::fs::read_to_string(data.join("api-token")).unwrap();
    let seen = loop {
        let o = Command::new("curl")
            .args(["-sS", "-H"])
            .arg(format!("Authorization: Bearer {}", token.trim()))
            .arg(format!("{url}/v1/integrations"))
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
        if v["integrations"][0]["state"] == "needs_reauth" {
            break v;
        }
        assert!(Instant::now() < deadline, "never needs_reauth: {v}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(
        seen["integrations"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("invalid_grant"),
        "{seen}"
    );
    let note = data.join("files/reauth.txt");
    while !note.exists() {
        assert!(Instant::now() < deadline, "the event trigger never ran");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(
        std::fs::read_to_string(&note).unwrap(),
        "gmail needs sign-in"
    );
    drop(guard);
    let log = std::fs::read_to_string(home.dir.path().join("daemon.log")).unwrap();
    assert!(log.contains("sign-in needed again"), "{log}");
    for tok in fake.get(|i| i.issued.clone()) {
        assert!(!log.contains(&tok), "the daemon logged a token");
    }
    assert_eq!(fake.get(|i| i.refreshes), 0);
}

fn home_none() -> String {
    std::env::temp_dir()
        .join("atlas-no-bundled-workflows")
        .display()
        .to_string()
}

/// The voice phrases of the email digest, typed (`atlas listen --text`): matched, run, and
/// without Gmail connected the reply says what to do.
#[test]
fn do_i_have_new_email_is_understood_and_says_how_to_connect() {
    let dir = tempfile::tempdir().unwrap();
    for phrase in ["do I have new email", "read my email"] {
        let o = Command::new(atlas_bin())
            .env("ATLAS_DATA_DIR", dir.path().join("data"))
            .env("ATLAS_CONFIG", dir.path().join("config.toml"))
            .env("ATLAS_SPEECH", "none")
            .env(
                "DBUS_SESSION_BUS_ADDRESS",
                crate::test_dbus::no_bus_address(dir.path()),
            )
            .env_remove("ATLAS_BUNDLED_WORKFLOWS")
            .args(["listen", "--text", phrase, "--json"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(o.status.success(), "{phrase}: {}", text(&o));
        let v = json_of(&o);
        assert_eq!(v["workflow"], "email_digest", "{phrase}: {v}");
        assert!(
            v.to_string().contains(
                "Email is not connected: run atlas integration connect gmail (or microsoft)."
            ),
            "{phrase}: {v}"
        );
    }
}

/// The bundled calendar and mail voice phrases, typed among all the bundled workflows: the next
/// meeting, an event from slots (title, day, time), a reply; without the accounts connected
/// each reply says what to do.
#[test]
fn calendar_phrases_are_understood_with_their_slots() {
    let dir = tempfile::tempdir().unwrap();
    let listen = |phrase: &str| {
        let o = Command::new(atlas_bin())
            .env("ATLAS_DATA_DIR", dir.path().join("data"))
            .env("ATLAS_CONFIG", dir.path().join("config.toml"))
            .env("ATLAS_SPEECH", "none")
            .env(
                "DBUS_SESSION_BUS_ADDRESS",
                crate::test_dbus::no_bus_address(dir.path()),
            )
            .env_remove("ATLAS_BUNDLED_WORKFLOWS")
            .arg("--workflows")
            .arg(dir.path().join("no-user-workflows"))
            .args(["listen", "--text", phrase, "--json"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(o.status.success(), "{phrase}: {}", text(&o));
        json_of(&o)
    };
    let v = listen("what's my next meeting");
    assert_eq!(v["workflow"], "next_meeting", "{v}");
    assert!(
        v["reply"]
            .as_str()
            .unwrap()
            .contains("calendar is not connected"),
        "{v}"
    );
    let v = listen("add lunch with Sam tomorrow at noon to my calendar");
    assert_eq!(v["workflow"], "add_to_calendar", "{v}");
    assert_eq!(v["slots"]["title"], "lunch with Sam", "{v}");
    assert_eq!(v["slots"]["day"], "tomorrow", "{v}");
    assert_eq!(v["slots"]["time"], "noon", "{v}");
    assert!(
        v["reply"]
            .as_str()
            .unwrap()
            .contains("calendar is not connected"),
        "{v}"
    );
}

#[test]
fn microsoft_connects_through_the_binary_and_rotated_tokens_serve_new_processes_without_leaking() {
    use super::fake_microsoft::FakeMicrosoft;
    if !require_programs(Need::Desktop, &[("curl", "curl")]) {
        return;
    }
    let Some(keyring) = Keyring::start() else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fake = rt.block_on(FakeMicrosoft::start());
    let home = Home::new(&fake.provider_toml());
    let mut outputs = Vec::new();
    let started = Instant::now();
    let o = home.atlas(&keyring, &["integration", "connect", "microsoft"]);
    eprintln!(
        "atlas integration connect microsoft (browser stand-in, token exchange, keyring write): {} ms",
        started.elapsed().as_millis()
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("is connected"),
        "{}",
        text(&o)
    );
    outputs.push(o);
    for round in 1..=2 {
        // Each a new process after the access token expired: a refresh, whose rotated refresh
        // token the next process must find in the keyring.
        fake.expire_access();
        let o = home.atlas(&keyring, &["integration", "status", "microsoft", "--json"]);
        assert!(o.status.success(), "{}", text(&o));
        assert_eq!(json_of(&o)["integrations"][0]["state"], "connected");
        assert_eq!(fake.get(|i| i.refreshes), round);
        outputs.push(o);
    }
    assert_eq!(fake.get(|i| i.rotated.len()), 2);
    fake.revoke_grant();
    fake.expire_access();
    let o = home.atlas(&keyring, &["integration", "status", "microsoft"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("needs_reauth"),
        "{}",
        text(&o)
    );
    outputs.push(o);
    let issued = fake.get(|i| i.issued.clone());
    assert_no_token(&issued, &outputs, &home.data());
    // The logs did run at debug level (so the scan saw something).
    assert!(
        outputs
            .iter()
            .any(|o| String::from_utf8_lossy(&o.stderr).contains("refreshing"))
    );
}
