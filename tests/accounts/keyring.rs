//! `atlas secret set|list|delete` against gnome-keyring-daemon on a private bus, a workflow
//! reading the stored secret (sent to an HTTP server on 127.0.0.1), the environment override, and
//! the refusal without a bus or without an unlocked keyring.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;

use crate::test_dbus::{SessionBus, no_bus_address};
use crate::test_keyring::Keyring;
use crate::util::{atlas_bin, serve};

const VALUE: &str = "kr-S3cret/valu3+x";

const WORKFLOW: &str = r#"
id: uses-key
triggers: [{type: manual}]
actions:
  - id: call
    type: http
    config:
      url: "{{ vars.base }}/echo"
      headers: {Authorization: "Bearer {{ secrets.service_key }}"}
"#;

struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("wf")).unwrap();
        std::fs::write(dir.path().join("wf/uses-key.yaml"), WORKFLOW).unwrap();
        Home { dir }
    }

    fn data(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    /// `atlas ARGS` as a child of `base` (a command with the bus chosen), `stdin` piped in.
    fn atlas(&self, mut base: Command, args: &[&str], stdin: Option<&str>) -> Output {
        base.env("ATLAS_DATA_DIR", self.data())
            .env("ATLAS_CONFIG", self.dir.path().join("config.toml"))
            .env("ATLAS_BUNDLED_WORKFLOWS", self.dir.path().join("none"))
            .env("ATLAS_LOG", "debug")
            .env_remove("ATLAS_SECRET_SERVICE_KEY")
            .arg("--workflows")
            .arg(self.dir.path().join("wf"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = base.spawn().unwrap();
        let mut pipe = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            pipe.write_all(s.as_bytes()).unwrap();
        }
        drop(pipe);
        child.wait_with_output().unwrap()
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

/// An echo server that records the Authorization headers it got.
fn echo(rt: &tokio::runtime::Runtime) -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let router = Router::new().route(
        "/echo",
        get(move |h: HeaderMap| async move {
            let auth = h
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            s.lock().unwrap().push(auth);
            "ok"
        }),
    );
    let addr = rt.block_on(serve(router));
    (format!("base=http://{addr}"), seen)
}

fn assert_no_value_under(dir: &Path, value: &str) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            assert_no_value_under(&p, value);
        } else {
            let bytes = std::fs::read(&p).unwrap();
            assert!(
                !bytes.windows(value.len()).any(|w| w == value.as_bytes()),
                "{} holds the secret",
                p.display()
            );
        }
    }
}

#[test]
fn secrets_are_set_listed_used_and_deleted_in_a_real_secret_service() {
    let Some(keyring) = Keyring::start() else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (base, seen) = echo(&rt);
    let home = Home::new();
    let atlas =
        |args: &[&str], stdin: Option<&str>| home.atlas(keyring.cmd(atlas_bin()), args, stdin);

    let set = atlas(
        &["secret", "set", "service_key"],
        Some(&format!("{VALUE}\n")),
    );
    assert!(set.status.success(), "{}", text(&set));
    let list = atlas(&["secret", "list"], None);
    assert!(list.status.success(), "{}", text(&list));
    assert_eq!(String::from_utf8_lossy(&list.stdout), "service_key\n");
    let list_json = atlas(&["secret", "list", "--json"], None);
    let v: serde_json::Value = serde_json::from_slice(&list_json.stdout).unwrap();
    assert_eq!(v["names"], serde_json::json!(["service_key"]), "{v}");

    // A workflow reads it from the keyring and sends it; it comes back masked in the output.
    let run = atlas(
        &[
            "workflow", "run", "uses-key", "--silent", "--json", "--var", &base,
        ],
        None,
    );
    assert!(run.status.success(), "{}", text(&run));
    assert_eq!(
        seen.lock().unwrap().clone(),
        vec![format!("Bearer {VALUE}")]
    );

    // The environment overrides the keyring.
    let mut with_env = keyring.cmd(atlas_bin());
    with_env.env("ATLAS_SECRET_SERVICE_KEY", "from-the-environment");
    with_env
        .env("ATLAS_DATA_DIR", home.data())
        .arg("--workflows")
        .arg(home.dir.path().join("wf"))
        .env("ATLAS_BUNDLED_WORKFLOWS", home.dir.path().join("none"))
        .args(["workflow", "run", "uses-key", "--silent", "--var", &base]);
    let o = with_env.output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        seen.lock().unwrap().last().cloned(),
        Some("Bearer from-the-environment".to_owned())
    );

    // Replacing keeps one item.
    let again = atlas(&["secret", "set", "service_key"], Some("second-value"));
    assert!(again.status.success(), "{}", text(&again));
    let list = atlas(&["secret", "list"], None);
    assert_eq!(String::from_utf8_lossy(&list.stdout), "service_key\n");

    let del = atlas(&["secret", "delete", "service_key"], None);
    assert!(del.status.success(), "{}", text(&del));
    let list = atlas(&["secret", "list"], None);
    assert!(
        String::from_utf8_lossy(&list.stdout).contains("no secrets"),
        "{}",
        text(&list)
    );
    let del = atlas(&["secret", "delete", "service_key"], None);
    assert!(!del.status.success());
    assert!(String::from_utf8_lossy(&del.stderr).contains("no secret `service_key`"));

    for o in [&set, &list, &list_json, &run] {
        for stream in [&o.stdout, &o.stderr] {
            let s = String::from_utf8_lossy(stream);
            assert!(!s.contains(VALUE), "the value was printed: {}", text(o));
        }
    }
    assert_no_value_under(&home.data(), VALUE);
}

#[test]
fn bad_names_and_empty_values_are_clear_errors() {
    let Some(keyring) = Keyring::start() else {
        return;
    };
    let home = Home::new();
    let o = home.atlas(
        keyring.cmd(atlas_bin()),
        &["secret", "set", "9 bad"],
        Some("x"),
    );
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("is not a secret name"),
        "{}",
        text(&o)
    );
    let o = home.atlas(
        keyring.cmd(atlas_bin()),
        &["secret", "set", "good"],
        Some("\n"),
    );
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no value given"),
        "{}",
        text(&o)
    );
    // The value is never an argument.
    let o = home.atlas(
        keyring.cmd(atlas_bin()),
        &["secret", "set", "good", "the-value"],
        None,
    );
    assert!(!o.status.success(), "{}", text(&o));
}

#[test]
fn without_a_session_bus_nothing_is_stored_and_the_user_is_told_what_to_do() {
    let home = Home::new();
    let nowhere = no_bus_address(home.dir.path());
    let mut cmd = Command::new(atlas_bin());
    cmd.env("DBUS_SESSION_BUS_ADDRESS", &nowhere);
    let o = home.atlas(cmd, &["secret", "set", "service_key"], Some(VALUE));
    assert!(!o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no OS keyring is reachable")
            && err.contains("ATLAS_SECRET_")
            && err.contains("gnome-keyring"),
        "{err}"
    );
    assert!(!err.contains(VALUE), "{err}");
    if home.data().exists() {
        assert_no_value_under(&home.data(), VALUE);
    }
    let mut cmd = Command::new(atlas_bin());
    cmd.env("DBUS_SESSION_BUS_ADDRESS", &nowhere);
    let o = home.atlas(cmd, &["secret", "list"], None);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no OS keyring is reachable"));

    // Workflows still get secrets from the environment, and the missing keyring is said once.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (base, seen) = echo(&rt);
    let mut cmd = Command::new(atlas_bin());
    cmd.env("DBUS_SESSION_BUS_ADDRESS", &nowhere);
    let o = home.atlas(
        cmd,
        &["workflow", "run", "uses-key", "--silent", "--var", &base],
        None,
    );
    // No secret anywhere: the template fails clearly, naming the secret.
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("service_key")
            || String::from_utf8_lossy(&o.stderr).contains("service_key"),
        "{}",
        text(&o)
    );
    let warnings = String::from_utf8_lossy(&o.stderr)
        .matches("the OS keyring is not available")
        .count();
    assert_eq!(warnings, 1, "{}", text(&o));
    assert!(seen.lock().unwrap().is_empty());
}

#[test]
fn a_bus_without_an_unlocked_keyring_is_refused_within_the_bound() {
    let Some(bus) = SessionBus::start() else {
        return;
    };
    let home = Home::new();
    // Nothing owns org.freedesktop.secrets; the bus may try to activate a keyring that then
    // waits for a password: either way the answer is a refusal, in bounded time.
    let mut cmd = bus.cmd(atlas_bin());
    let runtime = home.dir.path().join("runtime");
    std::fs::create_dir_all(&runtime).unwrap();
    cmd.env("HOME", home.dir.path())
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("XDG_DATA_HOME", home.dir.path().join("xdg-data"));
    let started = Instant::now();
    let o = home.atlas(cmd, &["secret", "set", "service_key"], Some(VALUE));
    let took = started.elapsed();
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no OS keyring is reachable"),
        "{}",
        text(&o)
    );
    assert!(took < Duration::from_secs(30), "took {took:?}");
}
