//! The dashboard against a real daemon (`atlas daemon` in a temp home, its API on a free port):
//! the login and cookie rules over plain HTTP, and every page in headless Chromium, driven by
//! `dashboard/tests/e2e.mjs` (playwright-core from the dashboard's npm packages, which
//! `scripts/build-dashboard.sh` installs outside the clone). Screenshots are kept in
//! `<target dir>/dashboard-shots/`. The integrations page signs Gmail in against the local fake
//! of Google's OAuth endpoints (`accounts::fake_auth`), its tokens kept in a real keyring on the
//! test's own session bus. No secret (the API token, a secret a workflow reads, an OAuth token,
//! a login code) may appear in a page, a JSON answer, the event stream or the daemon's log.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::accounts::fake_auth::FakeAuth;
use crate::test_keyring::Keyring;
use crate::test_skip::{Need, skip};
use crate::util::atlas_bin;

const SECRET: &str = "dash-secret-7f3a9c21-never-shown";

const HELLO: &str = "id: hello\nname: Hello\ntriggers: [{type: manual}, {type: voice, phrases: ['run the hello workflow']}]\nvariables: {who: world}\nactions:\n  - {id: greet, type: set, config: {values: {text: 'hello {{ vars.who }}', key: '{{ secrets.password }}'}}}\n  - {id: pause, type: delay, config: {duration: 3s}, on_failure: report}\n  - {id: finish, type: log, config: {message: 'done {{ vars.text }} {{ secrets.password }}'}, on_success: end}\n  - {id: report, type: log, config: {message: 'pause failed'}}\n  - {id: end, type: set, config: {values: {over: true}}}\n";
const SLOW: &str = "id: slow\ntriggers: [{type: manual}]\nactions:\n  - {id: first, type: delay, config: {duration: 200ms}}\n  - {id: wait, type: delay, config: {duration: 60s}}\n";
const STEPS: &str = "id: steps\ntriggers: [{type: manual}]\nactions:\n  - {id: one, type: delay, config: {duration: 3s}}\n  - {id: two, type: delay, config: {duration: 300ms}}\n  - {id: three, type: log, config: {message: resumed}}\n";
const BROKEN: &str = "id: broken\ntriggers: [{type: manual}]\nactions:\n  - {id: fetch, type: http, config: {url: 'http://127.0.0.1:9/nothing', timeout: 2s}}\n";
const NIGHTLY: &str = "id: nightly\ntriggers: [{type: schedule, cron: '0 0 3 * * *'}]\nactions:\n  - {id: note, type: log, config: {message: nightly}}\n";

/// A daemon in a temp home; killed on drop.
struct Daemon {
    child: Child,
    dir: tempfile::TempDir,
    url: String,
    token: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    /// Starts `atlas daemon` over the test workflows; `model` gives it a voice loop;
    /// `dashboard_dir` overrides where the built dashboard is looked for; `keyring` (a session
    /// bus with a keyring, for the integrations' tokens) and `extra` config come with it.
    fn start(
        model: Option<&Path>,
        dashboard_dir: Option<&Path>,
        keyring: Option<&Keyring>,
        extra: &str,
    ) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for d in ["wf", "none", "data"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        for (name, text) in [
            ("hello", HELLO),
            ("slow", SLOW),
            ("steps", STEPS),
            ("broken", BROKEN),
            ("nightly", NIGHTLY),
        ] {
            std::fs::write(root.join(format!("wf/{name}.yaml")), text).unwrap();
        }
        let mut config = format!("workflows_dir = {:?}\n", root.join("wf"));
        config.push_str("[speech]\nbackend = \"none\"\n");
        if let Some(d) = dashboard_dir {
            config.push_str(&format!("[api]\ndashboard_dir = {d:?}\n"));
        }
        config.push_str(extra);
        std::fs::write(root.join("config.toml"), config).unwrap();
        // The nightly schedule was last seen two days ago: the daemon catches its missed run up.
        let store = atlas::store::Store::open(&root.join("data/atlas.db")).unwrap();
        store.send(atlas::store::Op::ScheduleSeen {
            workflow_id: "nightly".into(),
            trigger: 0,
            at: chrono::Utc::now().timestamp_millis() - 2 * 24 * 3600 * 1000,
        });
        tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(store.flush()))
            .unwrap();
        drop(store);
        let mut c = match keyring {
            Some(k) => k.cmd(atlas_bin()),
            None => {
                let mut c = Command::new(atlas_bin());
                c.env_remove("DBUS_SESSION_BUS_ADDRESS");
                c
            }
        };
        Daemon::env(&mut c, root);
        if let Some(m) = model {
            c.env("ATLAS_MODEL", m);
        }
        c.env("ATLAS_SECRET_PASSWORD", SECRET)
            .env("ATLAS_API_LISTEN", "127.0.0.1:0")
            .env("ATLAS_LOG", "debug")
            .env("NO_AT_BRIDGE", "1")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .arg("daemon")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(root.join("out.log")).unwrap())
            .stderr(std::fs::File::create(root.join("err.log")).unwrap());
        let child = c.spawn().unwrap();
        let mut d = Daemon {
            child,
            dir,
            url: String::new(),
            token: String::new(),
        };
        // A debug build on a loaded machine starts slowly: up to 60 s for the API.
        let data = d.dir.path().join("data");
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(url) = atlas::runtime::read_status(&data)
                .and_then(|s| s["api_url"].as_str().map(str::to_owned))
            {
                d.url = url;
                break;
            }
            if let Ok(Some(st)) = d.child.try_wait() {
                panic!("the daemon exited ({st}): {}", d.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(
            !d.url.is_empty(),
            "the daemon's API never came up: {}",
            d.log()
        );
        d.token = std::fs::read_to_string(data.join("api-token"))
            .unwrap()
            .trim()
            .to_owned();
        d
    }

    fn env(c: &mut Command, root: &Path) {
        c.env("ATLAS_DATA_DIR", root.join("data"))
            .env("ATLAS_CONFIG", root.join("config.toml"))
            .env("XDG_CONFIG_HOME", root.join("xdg"))
            .env("ATLAS_BUNDLED_WORKFLOWS", root.join("none"))
            .env("ATLAS_SPEECH", "none");
    }

    fn log(&self) -> String {
        let p = self.dir.path();
        format!(
            "{}{}",
            std::fs::read_to_string(p.join("out.log")).unwrap_or_default(),
            std::fs::read_to_string(p.join("err.log")).unwrap_or_default()
        )
    }

    /// A one-time login link, from `atlas dashboard` as a user would get it.
    fn login_link(&self) -> String {
        let mut c = Command::new(atlas_bin());
        Daemon::env(&mut c, self.dir.path());
        let out = crate::util::run_bounded(c.arg("dashboard"), Duration::from_secs(60));
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert!(
            out.status.success(),
            "atlas dashboard failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.starts_with(&format!("{}/dashboard/login?code=", self.url)),
            "{text}"
        );
        assert!(!text.contains(&self.token), "the link carries the token");
        text
    }

    fn runs(&self) -> Vec<atlas::store::RunRecord> {
        atlas::store::Store::open(&self.dir.path().join("data/atlas.db"))
            .unwrap()
            .list_runs(None, 1000)
            .unwrap()
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// The `code` of a login link.
fn code_of(link: &str) -> &str {
    link.split("code=").nth(1).unwrap()
}

/// Exchanges a link for the session cookie (`atlas_session=...`), checking its attributes.
async fn session(d: &Daemon, link: &str) -> String {
    let r = client().get(link).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/dashboard/");
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(!cookie.contains(&d.token));
    cookie.split(';').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_link_works_once_and_its_cookie_only_from_the_daemons_own_origin() {
    let pages = tempfile::tempdir().unwrap();
    let d = Daemon::start(None, Some(pages.path()), None, "");
    let c = client();
    // Not built yet: the page says how to build it.
    let r = c.get(format!("{}/dashboard/", d.url)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    let text = r.text().await.unwrap();
    assert!(text.contains("scripts/build-dashboard.sh"), "{text}");
    // Built (the folder is looked at on every request).
    std::fs::create_dir_all(pages.path().join("assets")).unwrap();
    std::fs::write(pages.path().join("index.html"), "<!doctype html><p>app</p>").unwrap();
    std::fs::write(pages.path().join("assets/app-1.js"), "console.log(1)").unwrap();
    std::fs::write(pages.path().join(".hidden"), "no").unwrap();
    for (path, status, kind) in [
        ("/dashboard/", 200, "text/html"),
        ("/dashboard/runs/abc", 200, "text/html"),
        ("/dashboard/assets/app-1.js", 200, "text/javascript"),
        ("/dashboard/assets/none.js", 404, "text/html"),
        ("/dashboard/.hidden", 404, "text/html"),
        // An encoded slash reaches the handler as `../../config.toml`, which it refuses.
        ("/dashboard/..%2F..%2Fconfig.toml", 404, "text/html"),
    ] {
        let r = c.get(format!("{}{path}", d.url)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind),
            "{path}"
        );
        assert!(r.headers().contains_key("content-security-policy"));
    }
    let r = c
        .get(format!("{}/dashboard/", d.url))
        .header("host", "evil.example:80")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403, "a foreign Host gets no page");

    // Without a daemon the command says what to do.
    let empty = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(atlas_bin());
    Daemon::env(&mut cmd, empty.path());
    let out = crate::util::run_bounded(cmd.arg("dashboard"), Duration::from_secs(60));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no Atlas daemon is running"), "{err}");

    // A link needs the token.
    let r = c
        .post(format!("{}/v1/dashboard/login", d.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let link = d.login_link();
    let cookie = session(&d, &link).await;
    let again = c.get(&link).send().await.unwrap();
    assert_eq!(again.status().as_u16(), 401, "a code works once");
    let forged = c
        .get(format!(
            "{}/dashboard/login?code=00{}",
            d.url,
            &code_of(&link)[2..]
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 401);

    let own = format!("http://{}", d.url.trim_start_matches("http://"));
    let get = |origin: Option<&str>, cookie: &str| {
        let mut r = c
            .get(format!("{}/v1/workflows", d.url))
            .header("cookie", cookie);
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        r.send()
    };
    assert_eq!(get(None, &cookie).await.unwrap().status().as_u16(), 200);
    assert_eq!(
        get(Some(&own), &cookie).await.unwrap().status().as_u16(),
        200
    );
    // Another local server's page (same site, other port) may not ride on the cookie.
    assert_eq!(
        get(Some("http://localhost:1"), &cookie)
            .await
            .unwrap()
            .status()
            .as_u16(),
        403
    );
    assert_eq!(
        get(None, "atlas_session=0123")
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    // A change needs its Origin.
    let post = |origin: Option<&str>| {
        let mut r = c
            .post(format!("{}/v1/workflows/nightly/disable", d.url))
            .header("cookie", &cookie);
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        r.send()
    };
    assert_eq!(post(None).await.unwrap().status().as_u16(), 403);
    assert_eq!(post(Some(&own)).await.unwrap().status().as_u16(), 200);
    let text = std::fs::read_to_string(d.dir.path().join("wf/nightly.yaml")).unwrap();
    assert!(text.contains("enabled: false"), "{text}");
    // Logging out ends the session.
    let r = c
        .post(format!("{}/dashboard/logout", d.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(get(None, &cookie).await.unwrap().status().as_u16(), 401);

    // The kinds registry for the builder, fields from each config's own type.
    let kinds: serde_json::Value = c
        .get(format!("{}/v1/action-kinds", d.url))
        .bearer_auth(&d.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let http = kinds["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "http")
        .unwrap();
    let fields = http["fields"].as_array().unwrap();
    assert!(fields.contains(&serde_json::json!({"name": "url", "required": true})));
    assert!(fields.contains(&serde_json::json!({"name": "method", "required": false})));
    let github = kinds["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "github")
        .unwrap();
    assert!(
        github["ops"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({"name": "create_issue", "needs": ["repo", "title"], "may": ["body"]})),
        "{github}"
    );

    let log = d.log();
    assert!(log.contains("dashboard session opened"), "{log}");
    for leak in [d.token.as_str(), code_of(&link), cookie.as_str()] {
        assert!(!log.contains(leak), "the log shows a login secret");
    }
}

/// What a missing browser-test prerequisite is, if one is missing.
fn browser_problem(node_modules: &Path, dist: &Path) -> Option<String> {
    if !Path::new("/usr/bin/chromium").exists() {
        return Some("no /usr/bin/chromium (ATLAS_SETUP_TESTS=1 scripts/setup.sh installs Debian's chromium)".into());
    }
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return Some("no node (apt-get install nodejs npm)".into());
    }
    if !node_modules.join("playwright-core/package.json").exists()
        || !dist.join("index.html").exists()
    {
        return Some(format!(
            "the dashboard is not built or has no playwright-core in {} (run scripts/build-dashboard.sh)",
            node_modules.display()
        ));
    }
    None
}

/// The whisper test model, when this machine has it (typed commands need the voice loop).
fn test_model() -> Option<PathBuf> {
    let path = std::env::var_os("ATLAS_TEST_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/atlas-test/ggml-tiny.en-q8_0.bin")
        });
    if path.exists() {
        return Some(path);
    }
    assert!(
        !Need::Model.is_required(),
        "no whisper model at {} (run scripts/test-model.sh; ATLAS_REQUIRE_MODEL=1 makes this a failure)",
        path.display()
    );
    None
}

/// Reads the daemon's event stream (with the token) until `stop`, into `into`.
async fn collect_events(
    url: String,
    token: String,
    into: Arc<Mutex<Vec<u8>>>,
    stop: CancellationToken,
) {
    let c = reqwest::Client::builder().no_proxy().build().unwrap();
    let request = c.get(format!("{url}/v1/events")).bearer_auth(token).send();
    let mut resp = tokio::time::timeout(Duration::from_secs(20), request)
        .await
        .expect("the event stream answers within 20 s")
        .unwrap();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            chunk = resp.chunk() => match chunk {
                Ok(Some(bytes)) => into.lock().unwrap().extend_from_slice(&bytes),
                _ => return,
            },
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_works_in_headless_chromium_and_no_secret_reaches_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboard");
    let (node_modules, dist) = (root.join("node_modules"), root.join("dist"));
    if let Some(problem) = browser_problem(&node_modules, &dist) {
        skip(Need::Desktop, &problem);
        return;
    }
    let model = test_model();
    // Gmail signs in against the local fake of Google's OAuth endpoints; its tokens go to a
    // real keyring on a session bus of the test's own.
    let Some(keyring) = Keyring::start() else {
        return;
    };
    let auth = FakeAuth::start().await;
    let d = Daemon::start(
        model.as_deref(),
        Some(&dist),
        Some(&keyring),
        &auth.provider_toml("gmail", 120),
    );
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("dashboard-shots");
    let _ = std::fs::remove_dir_all(&shots);

    let events = Arc::new(Mutex::new(Vec::new()));
    let stop = CancellationToken::new();
    let reader = tokio::spawn(collect_events(
        d.url.clone(),
        d.token.clone(),
        events.clone(),
        stop.clone(),
    ));
    let link = d.login_link();
    let mut node = Command::new("node");
    node.arg(root.join("tests/e2e.mjs"))
        .env("ATLAS_DASH_LINK", &link)
        .env("ATLAS_DASH_SHOTS", &shots)
        .env("ATLAS_DASH_OAUTH", "gmail")
        .env("ATLAS_DASH_BODIES", d.dir.path().join("bodies.txt"))
        .env("ATLAS_DASH_SECRETS", format!("{},{SECRET}", d.token))
        .env("ATLAS_DASH_VOICE", if model.is_some() { "1" } else { "0" });
    let out = tokio::task::spawn_blocking(move || {
        crate::util::run_bounded(&mut node, Duration::from_secs(300))
    })
    .await
    .unwrap();
    stop.cancel();
    let _ = reader.await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "the browser test failed (screenshots in {}):\n{stdout}\n{stderr}\ndaemon log:\n{}",
        shots.display(),
        d.log()
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(stdout.contains("\"result\""), "{stdout}");
    // Shown with --nocapture: every check the browser made.
    println!("{stdout}");

    // The artefacts: one screenshot per page and state, each a PNG.
    let mut pngs: Vec<PathBuf> = std::fs::read_dir(&shots)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    pngs.sort();
    assert!(pngs.len() >= 14, "{pngs:?}");
    for p in &pngs {
        let mut head = [0u8; 8];
        std::fs::File::open(p)
            .unwrap()
            .read_exact(&mut head)
            .unwrap();
        assert_eq!(&head, b"\x89PNG\r\n\x1a\n", "{}", p.display());
    }

    // What the pages did happened in the daemon.
    let runs = d.runs();
    let of = |w: &str| {
        runs.iter()
            .filter(|r| r.workflow_id == w)
            .collect::<Vec<_>>()
    };
    use atlas::store::RunStatus;
    let hello = of("hello");
    assert!(
        hello.iter().any(|r| r.status == RunStatus::Succeeded
            && r.trigger_data["source"] == "dashboard"
            && r.vars.as_ref().is_some_and(|v| v["who"] == "dashboard")),
        "{hello:?}"
    );
    assert_eq!(of("slow")[0].status, RunStatus::Cancelled);
    assert_eq!(of("steps")[0].status, RunStatus::Succeeded);
    assert_eq!(of("broken")[0].status, RunStatus::Failed);
    if model.is_some() {
        assert!(hello.iter().any(|r| r.trigger == "voice"), "{hello:?}");
    }
    assert!(
        of("nightly")
            .iter()
            .any(|r| r.trigger == "schedule" && r.trigger_data["catch_up"] == true),
        "the missed nightly run was not caught up"
    );
    // The sign-in the integrations page started reached the fake, and ended disconnected.
    assert!(
        auth.get(|i| !i.refresh.is_empty()),
        "the fake issued no tokens: the sign-in did not finish"
    );
    let bodies = std::fs::read_to_string(d.dir.path().join("bodies.txt")).unwrap();
    for t in auth.get(|i| i.issued.clone()) {
        assert!(
            !bodies.contains(&t),
            "a page or answer shows an OAuth token"
        );
        assert!(!d.log().contains(&t), "the daemon log shows an OAuth token");
    }
    let built = std::fs::read_to_string(d.dir.path().join("wf/built.yaml")).unwrap();
    assert!(
        built.contains("type: notify") && built.contains("title: Built"),
        "{built}"
    );

    // The event stream the pages read carried the run, and no secret.
    let events = String::from_utf8_lossy(&events.lock().unwrap()).into_owned();
    assert!(events.contains("event: action_finished"), "{events}");
    assert!(events.contains("event: run_finished"));
    let log = d.log();
    for (what, text) in [("event stream", &events), ("daemon log", &log)] {
        assert!(!text.contains(SECRET), "the {what} shows the secret");
        assert!(!text.contains(&d.token), "the {what} shows the API token");
        assert!(
            !text.contains(code_of(&link)),
            "the {what} shows the login code"
        );
    }
}
