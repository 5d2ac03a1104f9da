//! MCP with independent clients: the Python `mcp` package's client (both protocol eras) and the
//! MCP Inspector CLI (0.15.0) against `atlas mcp` over stdio and against the API server's `/mcp`
//! over HTTP on 127.0.0.1 (with the token; without it 401; the Inspector, which has no header
//! option, through a loopback proxy that adds it), and the `mcp` action calling real external
//! MCP servers (a Python `mcp` server script, tests/mcp/echo_server.py, over stdio; Atlas's own
//! `/mcp` over HTTP with a bearer secret) through `atlas workflow run` and `atlas mcp tools`. The clients are installed by
//! scripts/mcp-clients.sh (run by scripts/test.sh) under ~/.cache/atlas/mcp-clients.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use atlas::api::{self, Api, ApiParts};
use atlas::config::{Config, Paths};
use atlas::engine::Engine;
use atlas::store::Store;
use atlas::tts::RecordingSpeaker;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::util::{atlas_bin, run_bounded};

const ECHO: &str = "id: mcp-echo\nname: MCP echo\ntriggers:\n  - {type: manual}\n  - {type: voice, phrases: ['echo mcp']}\nvariables: {word: hello}\nactions:\n  - {id: out, type: set, config: {values: {echoed: 'echo {{ vars.word }}'}}}\n";

fn clients_dir() -> PathBuf {
    std::env::var_os("ATLAS_MCP_CLIENTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/atlas/mcp-clients")
        })
}

/// The Python of the venv with `mcp` (scripts/mcp-clients.sh).
fn python() -> PathBuf {
    let p = std::env::var_os("ATLAS_MCP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| clients_dir().join("py/bin/python"));
    assert!(
        p.exists(),
        "the Python MCP client is not installed at {}: run scripts/mcp-clients.sh",
        p.display()
    );
    p
}

/// The Inspector CLI (scripts/mcp-clients.sh).
fn inspector() -> PathBuf {
    let p = std::env::var_os("ATLAS_MCP_INSPECTOR")
        .map(PathBuf::from)
        .unwrap_or_else(|| clients_dir().join("npm/node_modules/.bin/mcp-inspector"));
    assert!(
        p.exists(),
        "the MCP Inspector is not installed at {}: run scripts/mcp-clients.sh",
        p.display()
    );
    p
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/mcp")
        .join(name)
}

/// A home for `atlas`: config.toml (no speech, the test's workflows folder, `extra` appended),
/// a data dir, the mcp-echo workflow.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new(extra: &str) -> Home {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for d in ["flows", "no-bundled", "data"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(root.join("flows/mcp-echo.yaml"), ECHO).unwrap();
        let config = format!(
            "bundled_workflows = {:?}\nworkflows_dir = {:?}\n[speech]\nbackend = \"none\"\n{extra}",
            root.join("no-bundled"),
            root.join("flows"),
        );
        std::fs::write(root.join("config.toml"), config).unwrap();
        Home { dir }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// `atlas`'s environment, for it or for a client that starts it.
    fn env(&self, cmd: &mut Command) {
        cmd.env("ATLAS_CONFIG", self.path("config.toml"))
            .env("ATLAS_DATA_DIR", self.path("data"))
            .env("XDG_CONFIG_HOME", self.path("xdg"))
            .env("ATLAS_SPEECH", "none");
    }

    fn atlas(&self, args: &[&str]) -> Output {
        let mut c = Command::new(atlas_bin());
        self.env(&mut c);
        c.args(args);
        run_bounded(&mut c, Duration::from_secs(60))
    }

    fn runs(&self) -> usize {
        let store = Store::open(&self.path("data/atlas.db")).unwrap();
        store.list_runs(None, 1000).unwrap().len()
    }
}

fn py_client(home: &Home, args: &[&str]) -> Value {
    let mut c = Command::new(python());
    home.env(&mut c);
    c.arg(script("client.py")).args(args);
    let o = run_bounded(&mut c, Duration::from_secs(120));
    assert!(o.status.success(), "client.py {args:?} failed: {o:?}");
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("client.py printed no JSON ({e}): {o:?}"))
}

/// What the Python client saw, checked the same for stdio and HTTP, both protocol eras.
fn check_python_session(v: &Value) {
    let tools: Vec<&str> = v["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        tools,
        [
            "command",
            "get_run",
            "history",
            "list_workflows",
            "run_workflow",
            "say"
        ]
    );
    let wf = &v["workflows"][0];
    assert_eq!(wf["id"], "mcp-echo");
    assert_eq!(wf["arguments"]["properties"]["word"]["type"], "string");
    assert_eq!(wf["arguments"]["additionalProperties"], false);
    assert_eq!(v["run"]["is_error"], false, "{v}");
    assert_eq!(v["run"]["outcome"]["status"], "succeeded");
    assert_eq!(
        v["run"]["outcome"]["result"]["echoed"], "echo from-python",
        "{v}"
    );
    let run_id = v["run"]["outcome"]["run_id"].as_str().unwrap();
    assert_eq!(v["get_run"]["run"]["id"], run_id);
    assert_eq!(v["get_run"]["actions"][0]["action_id"], "out", "{v}");
    assert_eq!(v["history"]["runs"][0]["id"], run_id);
    for (case, needle) in [
        ("unknown_tool", "unknown tool `no_such_tool`"),
        ("unknown_workflow", "unknown workflow `no-such-workflow`"),
        ("wrong_argument", "`nope` is not a variable of `mcp-echo`"),
        ("wrong_type", "`word` must be of type string"),
        ("missing_field", "missing field `run_id`"),
    ] {
        assert_eq!(v[case]["code"], -32602, "{case}: {v}");
        let msg = v[case]["message"].as_str().unwrap_or("");
        assert!(msg.contains(needle), "{case}: {msg}");
    }
    // The typed command matched the voice phrase.
    assert_eq!(v["command"]["workflow"], "mcp-echo", "{v}");
    let resources: Vec<&str> = v["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        resources,
        ["atlas://runs/recent", "atlas://workflows/mcp-echo"]
    );
    assert_eq!(v["resource_text"], ECHO);
    assert!(!v["recent"]["runs"].as_array().unwrap().is_empty());
}

#[test]
fn python_client_over_stdio_both_protocol_eras() {
    let home = Home::new("");
    let bin = atlas_bin();
    for mode in ["auto", "legacy"] {
        let before = home.runs();
        let v = py_client(&home, &["stdio", mode, bin.to_str().unwrap(), "mcp"]);
        check_python_session(&v);
        // One run from run_workflow, one from the typed command; the refused calls started none.
        assert_eq!(home.runs(), before + 2, "{mode}");
    }
}

#[test]
fn inspector_cli_over_stdio() {
    let home = Home::new("");
    let inspect = |args: &[&str]| {
        let mut c = Command::new(inspector());
        c.arg("--cli");
        for kv in [
            format!("ATLAS_CONFIG={}", home.path("config.toml").display()),
            format!("ATLAS_DATA_DIR={}", home.path("data").display()),
            "ATLAS_SPEECH=none".to_owned(),
        ] {
            c.arg("-e").arg(kv);
        }
        c.arg(atlas_bin()).arg("mcp").args(args);
        run_bounded(&mut c, Duration::from_secs(90))
    };
    let o = inspect(&["--method", "tools/list"]);
    assert!(o.status.success(), "{o:?}");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = v["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"run_workflow"), "{v}");
    let o = inspect(&[
        "--method",
        "tools/call",
        "--tool-name",
        "run_workflow",
        "--tool-arg",
        "workflow=mcp-echo",
    ]);
    assert!(o.status.success(), "{o:?}");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["isError"], false, "{v}");
    assert_eq!(
        v["structuredContent"]["result"]["echoed"], "echo hello",
        "{v}"
    );
    assert_eq!(home.runs(), 1);
    // Unknown tool and unknown workflow: MCP errors, the Inspector exits non-zero, no run.
    for args in [
        &["--method", "tools/call", "--tool-name", "no_such_tool"][..],
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "run_workflow",
            "--tool-arg",
            "workflow=ghost",
        ][..],
    ] {
        let o = inspect(args);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(!o.status.success(), "{all}");
        assert!(all.contains("-32602") || all.contains("unknown"), "{all}");
    }
    assert_eq!(home.runs(), 1);
    let o = inspect(&["--method", "resources/list"]);
    assert!(o.status.success(), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("atlas://workflows/mcp-echo"));
}

/// The API server (and so `/mcp`) on 127.0.0.1:0 over `home`'s workflows and data.
struct Server {
    base: String,
    token: String,
    engine: Engine,
    stop: CancellationToken,
}

impl Server {
    async fn start(home: &Home) -> Server {
        let mut config = Config {
            bundled_workflows: Some(home.path("no-bundled")),
            workflows_dir: Some(home.path("flows")),
            ..Config::default()
        };
        config.api.listen = "127.0.0.1:0".into();
        let paths = Paths {
            config_file: home.path("config.toml"),
            data_dir: home.path("data"),
            user_workflows: home.path("flows"),
        };
        let store = Store::open(&paths.database()).unwrap();
        let services =
            atlas::runtime::services(&config, &paths, Arc::new(RecordingSpeaker::default()))
                .unwrap();
        let engine = Engine::new(store, services);
        let report = atlas::workflow::load_sources(&config.workflow_dirs(&paths));
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        engine.set_workflows(report.workflows.iter().cloned());
        let a = Api::new(ApiParts {
            engine: engine.clone(),
            voice: None,
            config: config.clone(),
            paths,
            status: None,
            integrations: None,
        })
        .unwrap();
        let listener = api::bind(&config.api).await.unwrap().unwrap();
        let stop = CancellationToken::new();
        api::start(a.clone(), listener, stop.clone());
        Server {
            base: a.url().unwrap(),
            token: std::fs::read_to_string(home.path("data/api-token")).unwrap(),
            engine,
            stop,
        }
    }

    async fn runs(&self) -> usize {
        self.engine.store().flush().await.unwrap();
        self.engine.store().list_runs(None, 1000).unwrap().len()
    }
}

/// A loopback HTTP proxy to `target` that adds `Authorization: Bearer <token>` to every request
/// and streams the answers back (server-sent events included), until `stop`; its base URL.
async fn auth_proxy(target: String, token: String, stop: CancellationToken) -> String {
    use axum::response::IntoResponse;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let (client, target, token) = (client.clone(), target.clone(), token.clone());
        async move {
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, 1 << 20)
                .await
                .unwrap_or_default();
            let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            let mut out = client
                .request(parts.method, format!("{target}{path}"))
                .body(body)
                .bearer_auth(token);
            for (k, v) in &parts.headers {
                if !matches!(k.as_str(), "host" | "content-length" | "authorization") {
                    out = out.header(k, v);
                }
            }
            let r = match out.send().await {
                Ok(r) => r,
                Err(e) => {
                    return (axum::http::StatusCode::BAD_GATEWAY, e.to_string()).into_response();
                }
            };
            let mut answer = axum::response::Response::builder().status(r.status());
            for (k, v) in r.headers() {
                if !matches!(k.as_str(), "content-length" | "transfer-encoding") {
                    answer = answer.header(k, v);
                }
            }
            let chunks = futures::stream::unfold(r, |mut r| async move {
                match r.chunk().await {
                    Ok(Some(c)) => Some((Ok::<_, std::io::Error>(c), r)),
                    _ => None,
                }
            });
            answer
                .body(axum::body::Body::from_stream(chunks))
                .unwrap()
                .into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
    });
    base
}

/// A blocking client process, off the test's async runtime (which serves the API).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_inspector_over_http_with_the_token_and_401_without() {
    let home = Arc::new(Home::new(""));
    let server = Server::start(&home).await;
    let url = format!("{}/mcp", server.base);
    for mode in ["auto", "legacy"] {
        let before = server.runs().await;
        let (h, u, t) = (home.clone(), url.clone(), server.token.clone());
        let v = blocking(move || py_client(&h, &["http", mode, &u, &t])).await;
        check_python_session(&v);
        // The dry match (no voice loop here) starts nothing: only run_workflow ran.
        assert_eq!(v["command"]["dry"], true, "{v}");
        assert_eq!(server.runs().await, before + 1, "{mode}");
    }
    let before = server.runs().await;

    // Without the token, or with a wrong one: 401 before MCP sees anything.
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let call = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "run_workflow", "arguments": {"workflow": "mcp-echo"}}});
    for auth in [None, Some("Bearer wrong")] {
        let mut req = client
            .post(&url)
            .header("accept", "application/json, text/event-stream")
            .json(&call);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        assert_eq!(req.send().await.unwrap().status(), 401);
    }
    // A foreign Origin is refused even with the token (DNS rebinding).
    let r = client
        .post(&url)
        .header("accept", "application/json, text/event-stream")
        .header("authorization", format!("Bearer {}", server.token))
        .header("origin", "https://evil.example")
        .json(&call)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // The Inspector CLI 0.15 has no header option: without the token it is refused with 401.
    let (u, insp) = (url.clone(), inspector());
    let o = blocking(move || {
        run_bounded(
            Command::new(insp).args(["--cli", &u, "--method", "tools/list"]),
            Duration::from_secs(90),
        )
    })
    .await;
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!o.status.success(), "{all}");
    assert!(all.contains("401"), "{all}");
    assert_eq!(
        server.runs().await,
        before,
        "a refused request started a run"
    );
    // Through a loopback proxy that adds the token (what a client with a header option sends),
    // the Inspector's own streamable HTTP transport lists the tools and runs a workflow.
    let proxy = auth_proxy(
        server.base.clone(),
        server.token.clone(),
        server.stop.clone(),
    )
    .await;
    let (u, insp) = (format!("{proxy}/mcp"), inspector());
    let o = blocking(move || {
        run_bounded(
            Command::new(insp).args(["--cli", &u, "--method", "tools/list"]),
            Duration::from_secs(90),
        )
    })
    .await;
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{o:?}");
    for tool in [
        "list_workflows",
        "run_workflow",
        "get_run",
        "history",
        "say",
        "command",
    ] {
        assert!(out.contains(tool), "{tool} missing: {out}");
    }
    let (u, insp) = (format!("{proxy}/mcp"), inspector());
    let o = blocking(move || {
        run_bounded(
            Command::new(insp).args([
                "--cli",
                &u,
                "--method",
                "tools/call",
                "--tool-name",
                "run_workflow",
                "--tool-arg",
                "workflow=mcp-echo",
            ]),
            Duration::from_secs(90),
        )
    })
    .await;
    assert!(o.status.success(), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("run_id"),
        "{o:?}"
    );
    assert_eq!(
        server.runs().await,
        before + 1,
        "the Inspector's call ran once"
    );
    server.stop.cancel();
}

#[test]
fn mcp_action_calls_a_real_external_server_with_a_timeout() {
    let server = format!(
        "[mcp.servers.echo]\ncommand = {:?}\nargs = [{:?}]\n[mcp.servers.gone]\ncommand = \"/nonexistent/mcp-server\"\n",
        python(),
        script("echo_server.py")
    );
    let home = Home::new(&server);
    std::fs::write(
        home.path("flows/call.yaml"),
        "id: call\ntriggers: [{type: manual}]\nvariables: {text: hello}\nactions:\n  - {id: shout, type: mcp, config: {server: echo, tool: shout, arguments: {text: '{{ vars.text }}'}}}\n  - {id: say, type: set, config: {values: {heard: '{{ shout.text }}'}}}\n",
    )
    .unwrap();
    std::fs::write(
        home.path("flows/fails.yaml"),
        "id: fails\ntriggers: [{type: manual}]\nactions:\n  - {id: f, type: mcp, config: {server: echo, tool: fail, arguments: {reason: nope}}}\n",
    )
    .unwrap();
    std::fs::write(
        home.path("flows/slow.yaml"),
        "id: slow\ntriggers: [{type: manual}]\nactions:\n  - {id: s, type: mcp, config: {server: echo, tool: slow, arguments: {seconds: 30}, timeout: 2s}}\n",
    )
    .unwrap();
    std::fs::write(
        home.path("flows/nowhere.yaml"),
        "id: nowhere\ntriggers: [{type: manual}]\nactions:\n  - {id: n, type: mcp, config: {server: missing, tool: x}}\n",
    )
    .unwrap();

    let o = home.atlas(&["workflow", "run", "call", "--var", "text=atlas", "--json"]);
    assert!(o.status.success(), "{o:?}");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["outputs"]["shout"]["text"], "ATLAS!", "{v}");
    assert_eq!(v["outputs"]["shout"]["tool"], "shout");
    assert_eq!(v["result"]["heard"], "ATLAS!");

    let o = home.atlas(&["workflow", "run", "fails", "--json"]);
    assert!(!o.status.success());
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let err = v["error"].as_str().unwrap_or("");
    // The Python server reports the tool's exception as a result marked `isError`.
    assert!(
        err.contains("MCP tool `fail` of server `echo` failed: Error executing tool fail"),
        "{v}"
    );

    let started = Instant::now();
    let o = home.atlas(&["workflow", "run", "slow", "--json"]);
    assert!(!o.status.success());
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        v["error"]
            .as_str()
            .unwrap_or("")
            .contains("did not answer within 2s"),
        "{v}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "the timeout did not stop the call"
    );

    let o = home.atlas(&["workflow", "run", "nowhere", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        v["error"]
            .as_str()
            .unwrap_or("")
            .contains("no MCP server `missing`"),
        "{v}"
    );

    // `atlas mcp tools`: what each configured server offers, and why one could not be asked.
    let o = home.atlas(&["mcp", "tools", "--json"]);
    assert!(
        !o.status.success(),
        "the missing server must fail the listing: {o:?}"
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let echo = &v["servers"][0];
    assert_eq!(echo["server"], "echo");
    let names: Vec<&str> = echo["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["shout", "fail", "slow"]);
    assert!(
        v["servers"][1]["error"]
            .as_str()
            .unwrap()
            .contains("cannot start"),
        "{v}"
    );
    let o = home.atlas(&["mcp", "tools", "echo"]);
    assert!(o.status.success(), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("shout  Upper-case the text."));
}

#[test]
fn mcp_action_calls_atlas_itself_as_the_external_server() {
    // `atlas mcp` of another home is the external server: a workflow here runs one there.
    let other = Home::new("");
    let env: Vec<String> = [
        ("ATLAS_CONFIG", other.path("config.toml")),
        ("ATLAS_DATA_DIR", other.path("data")),
    ]
    .iter()
    .map(|(k, v)| format!("{k} = {:?}", v))
    .collect();
    let home = Home::new(&format!(
        "[mcp.servers.atlas]\ncommand = {:?}\nargs = [\"mcp\"]\n[mcp.servers.atlas.env]\n{}\n",
        atlas_bin(),
        env.join("\n")
    ));
    std::fs::write(
        home.path("flows/remote.yaml"),
        "id: remote\ntriggers: [{type: manual}]\nactions:\n  - {id: r, type: mcp, config: {server: atlas, tool: run_workflow, arguments: {workflow: mcp-echo, arguments: {word: remote}}}}\n",
    )
    .unwrap();
    let o = home.atlas(&["workflow", "run", "remote", "--json"]);
    assert!(o.status.success(), "{o:?}");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["outputs"]["r"]["structured"]["result"]["echoed"], "echo remote",
        "{v}"
    );
    assert_eq!(other.runs(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_action_calls_an_http_server_with_its_bearer_secret_and_a_wrong_one_is_refused() {
    // The other side: Atlas's own /mcp over HTTP, behind its token.
    let other = Arc::new(Home::new(""));
    let server = Server::start(&other).await;
    let home = Arc::new(Home::new(&format!(
        "[mcp.servers.remote]\nurl = \"{}/mcp\"\nbearer_secret = \"remote_token\"\n",
        server.base
    )));
    std::fs::write(
        home.path("flows/remote.yaml"),
        "id: remote\ntriggers: [{type: manual}]\nactions:\n  - {id: r, type: mcp, config: {server: remote, tool: run_workflow, arguments: {workflow: mcp-echo, arguments: {word: over-http}, wait: true}}}\n",
    )
    .unwrap();
    let run = |token: String, args: &'static [&'static str]| {
        let home = home.clone();
        blocking(move || {
            let mut c = Command::new(atlas_bin());
            home.env(&mut c);
            c.env("ATLAS_SECRET_REMOTE_TOKEN", token).args(args);
            run_bounded(&mut c, Duration::from_secs(60))
        })
    };
    let o = run(
        server.token.clone(),
        &["workflow", "run", "remote", "--json"],
    )
    .await;
    assert!(o.status.success(), "{o:?}");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["outputs"]["r"]["structured"]["result"]["echoed"], "echo over-http",
        "{v}"
    );
    assert_eq!(server.runs().await, 1);
    let o = run(server.token.clone(), &["mcp", "tools", "remote", "--json"]).await;
    assert!(o.status.success(), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("run_workflow"),
        "{o:?}"
    );

    // A wrong token: the action fails saying the server refused it; nothing ran there, and
    // the token is in no output.
    let wrong = "wrong-token-3f9a1c".to_owned();
    let o = run(wrong.clone(), &["workflow", "run", "remote", "--json"]).await;
    assert!(!o.status.success(), "{o:?}");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        all.contains("401") || all.to_lowercase().contains("unauthorized"),
        "{all}"
    );
    assert!(!all.contains(&wrong), "the bearer token leaked: {all}");
    assert!(!all.contains(&server.token));
    assert_eq!(server.runs().await, 1, "a refused call ran");
    server.stop.cancel();
}
