//! The `atlas` command as a user runs it: real processes, a real database file, and a process
//! killed with SIGKILL in the middle of a run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use atlas::store::{RunStatus, Store};
use axum::Router;
use axum::routing::get;
use serde_json::Value;

use crate::util::{atlas_bin, serve};

struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        let h = Home {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(h.workflows()).unwrap();
        h
    }
    fn workflows(&self) -> PathBuf {
        self.dir.path().join("wf")
    }
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    fn write(&self, name: &str, yaml: &str) {
        std::fs::write(self.workflows().join(name), yaml).unwrap();
    }
    fn cmd(&self) -> Command {
        let mut c = Command::new(atlas_bin());
        c.env("ATLAS_DATA_DIR", self.data())
            .env("ATLAS_CONFIG", self.dir.path().join("config.toml"))
            .env("XDG_CONFIG_HOME", self.dir.path().join("xdg-config"))
            .env(
                "ATLAS_BUNDLED_WORKFLOWS",
                self.dir.path().join("no-bundled"),
            )
            .arg("--workflows")
            .arg(self.workflows())
            .stdin(Stdio::null());
        c
    }
    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }
    fn store(&self) -> Store {
        Store::open(&self.data().join("atlas.db")).unwrap()
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn run_prints_result_and_speech_and_exits_by_status() {
    let h = Home::new();
    h.write("greet.yaml", "id: greet\ntriggers: [{type: manual}]\nvariables: {who: world}\nactions:\n  - {id: say, type: speak, config: {text: 'Hello {{ vars.who }}'}}\n");
    h.write("broken.yaml", "id: broken\ntriggers: [{type: manual}]\nactions:\n  - {id: r, type: file, config: {op: read, path: nope.txt}}\n");
    let o = h.run(&[
        "workflow", "run", "greet", "--silent", "--var", "who=Ada", "--json",
    ]);
    assert!(o.status.success(), "{o:?}");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["status"], "succeeded");
    assert_eq!(v["spoken"][0], "Hello Ada");
    let o = h.run(&["workflow", "run", "greet", "--silent"]);
    assert!(stdout(&o).contains("said: Hello world"), "{}", stdout(&o));
    let o = h.run(&["workflow", "run", "broken", "--silent"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("action `r` failed"),
        "{o:?}"
    );
    let o = h.run(&["workflow", "run", "ghost", "--silent"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no workflow `ghost`"));

    // History and show-run read the same database.
    let o = h.run(&["workflow", "history", "--json"]);
    let runs: Value = serde_json::from_slice(&o.stdout).unwrap();
    let runs = runs["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3);
    assert_eq!(runs[0]["status"], "failed");
    let id = runs[2]["id"].as_str().unwrap();
    let o = h.run(&["workflow", "show-run", id]);
    let text = stdout(&o);
    assert!(
        text.contains("status   succeeded") && text.contains("say") && text.contains("Hello Ada"),
        "{text}"
    );
    let o = h.run(&["workflow", "list"]);
    assert!(
        stdout(&o).contains("greet") && stdout(&o).contains("2 runs, 2 ok"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn validate_lists_every_problem_and_exits_non_zero() {
    let h = Home::new();
    h.write("ok.yaml", "id: ok\ntriggers: [{type: manual}]\nactions:\n  - {id: x, type: log, config: {message: x}}\n");
    let o = h.run(&["workflow", "validate"]);
    assert!(o.status.success(), "{o:?}");
    h.write("bad.yaml", "id: bad\ntriggers: [{type: manual}]\nactions:\n  - {id: x, type: log, config: {message: x}, on_success: y}\n  - {id: z, type: delay, config: {duration: 1parsec}}\n");
    let o = h.run(&["workflow", "validate"]);
    assert!(!o.status.success());
    let text = stdout(&o);
    assert!(
        text.contains("bad.yaml:4:58: `actions[0].on_success`: no action `y`"),
        "{text}"
    );
    assert!(text.contains("`actions[1].config.duration`"), "{text}");
    // The good workflow still runs.
    assert!(
        h.run(&["workflow", "run", "ok", "--silent"])
            .status
            .success()
    );
}

#[test]
fn validate_and_loading_warn_that_event_triggers_are_not_active() {
    let h = Home::new();
    h.write(
        "hook.yaml",
        "id: hook
triggers:
  - {type: manual}
  - {type: event, event: run.faild}
actions:
  - {id: x, type: log, config: {message: x}}
",
    );
    // A warning, not a failure: the workflow is valid and runs manually.
    let o = h.run(&["workflow", "validate"]);
    assert!(o.status.success(), "{o:?}");
    let text = stdout(&o);
    assert!(
        text.contains("warning: ")
            && text.contains("hook.yaml:4:")
            && text.contains("no event source of Atlas publishes `run.faild`"),
        "{text}"
    );
    let o = h.run(&["workflow", "validate", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["warnings"][0]["line"], 4, "{v}");
    assert_eq!(v["warnings"][0]["field"], "triggers[1].event", "{v}");
    // Loading them elsewhere says so on stderr.
    let o = h.run(&["workflow", "list"]);
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("no event source of Atlas publishes `run.faild`"),
        "{o:?}"
    );
}

/// A server whose first request to /hang never answers and later ones answer at once.
async fn hang_once() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let addr = serve(Router::new().route(
        "/hang",
        get(move || {
            let n = h.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    tokio::time::sleep(Duration::from_secs(600)).await;
                }
                axum::Json(serde_json::json!({"n": n}))
            }
        }),
    ))
    .await;
    (addr, hits)
}

fn crash_workflow(addr: std::net::SocketAddr, resume: bool) -> String {
    format!(
        "id: crashy\nresume: {resume}\ntriggers: [{{type: manual}}]\nactions:\n  - {{id: first, type: set, config: {{values: {{step: 1}}}}}}\n  - {{id: second, type: log, config: {{message: 'step {{{{ vars.step }}}}'}}}}\n  - {{id: slow, type: http, config: {{url: 'http://{addr}/hang'}}}}\n  - {{id: last, type: set, config: {{values: {{step: 3}}}}}}\n"
    )
}

/// Starts `atlas workflow run crashy`, waits until `slow` is recorded as started and its request
/// has reached the server (`hits`), kills it.
async fn kill_mid_run(h: &Home, hits: &AtomicUsize) -> String {
    let mut child = h
        .cmd()
        .args(["workflow", "run", "crashy", "--silent"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let db = h.data().join("atlas.db");
    let mut run_id = None;
    for _ in 0..3000 {
        if db.exists() {
            let store = Store::open(&db).unwrap();
            if let Some(run) = store
                .list_runs(Some("crashy"), 1)
                .unwrap()
                .into_iter()
                .next()
            {
                let actions = store.run_actions(&run.id).unwrap();
                // Recorded first, sent after: the kill must land while the request hangs.
                if actions.iter().any(|a| a.action_id == "slow") && hits.load(Ordering::SeqCst) > 0
                {
                    run_id = Some(run.id);
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let run_id = run_id.expect("the run reached its slow action");
    // SIGKILL: no chance to clean up.
    child.kill().unwrap();
    child.wait().unwrap();
    run_id
}

fn start_daemon(h: &Home) -> Child {
    h.cmd()
        .env("ATLAS_API_LISTEN", "127.0.0.1:0")
        .arg("daemon")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn stop(mut child: Child) {
    // SAFETY: sending SIGTERM to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(status.success(), "daemon exited with {status:?}");
}

async fn wait_status(db: &Path, run_id: &str, want: RunStatus) -> atlas::store::RunRecord {
    let mut last = None;
    for _ in 0..3000 {
        let store = Store::open(db).unwrap();
        last = store.get_run(run_id).unwrap();
        if let Some(run) = &last
            && run.status == want
        {
            return run.clone();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let actions = Store::open(db).unwrap().run_actions(run_id).unwrap();
    panic!("run {run_id} never became {want}: it is {last:?}, its actions {actions:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_run_leaves_an_interrupted_run_with_its_actions() {
    let (addr, hits) = hang_once().await;
    let h = Home::new();
    h.write("crashy.yaml", &crash_workflow(addr, false));
    let run_id = kill_mid_run(&h, &hits).await;
    let daemon = start_daemon(&h);
    let run = wait_status(&h.data().join("atlas.db"), &run_id, RunStatus::Interrupted).await;
    stop(daemon);
    assert!(
        run.error
            .clone()
            .unwrap()
            .contains("stopped before the run ended")
    );
    let actions = h.store().run_actions(&run_id).unwrap();
    let done: Vec<(&str, &str)> = actions
        .iter()
        .map(|a| (a.action_id.as_str(), a.status.as_str()))
        .collect();
    assert_eq!(
        done,
        [
            ("first", "succeeded"),
            ("second", "succeeded"),
            // Closed with its run: a finished run never shows an action `running`.
            ("slow", "interrupted")
        ]
    );
    assert_eq!(actions[1].output.as_ref().unwrap()["message"], "step 1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_run_resumes_from_the_last_completed_action() {
    let (addr, hits) = hang_once().await;
    let h = Home::new();
    h.write("crashy.yaml", &crash_workflow(addr, true));
    let run_id = kill_mid_run(&h, &hits).await;
    let daemon = start_daemon(&h);
    let run = wait_status(&h.data().join("atlas.db"), &run_id, RunStatus::Succeeded).await;
    stop(daemon);
    assert_eq!(run.result.unwrap()["step"], 3);
    let actions = h.store().run_actions(&run_id).unwrap();
    let ids: Vec<&str> = actions.iter().map(|a| a.action_id.as_str()).collect();
    // `first` and `second` ran once, before the kill; `slow` ran again after it.
    assert_eq!(ids, ["first", "second", "slow", "slow", "last"]);
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_run_records_the_run_as_cancelled() {
    let h = Home::new();
    h.write("long.yaml", "id: long\ntriggers: [{type: manual}]\nactions:\n  - {id: a, type: log, config: {message: a}}\n  - {id: wait, type: delay, config: {duration: 60s}}\n");
    let mut child = h
        .cmd()
        .args(["workflow", "run", "long", "--silent"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let db = h.data().join("atlas.db");
    // Up to 30 s: a debug build starting while other tests load both cores can be slow.
    let mut running = false;
    // Running, and past its first action (so the kill lands in the delay).
    for _ in 0..3000 {
        running = db.exists() && {
            let store = Store::open(&db).unwrap();
            store
                .list_runs(Some("long"), 1)
                .unwrap()
                .first()
                .is_some_and(|r| {
                    r.status == RunStatus::Running
                        && store
                            .run_actions(&r.id)
                            .unwrap()
                            .iter()
                            .any(|a| a.action_id == "wait")
                })
        };
        if running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(running, "the run never started");
    // A CLI run dies with its process on SIGTERM; the next daemon start records it.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap();
    let run = h.store().list_runs(Some("long"), 1).unwrap().remove(0);
    let daemon = start_daemon(&h);
    let run = wait_status(&db, &run.id, RunStatus::Interrupted).await;
    stop(daemon);
    let actions = h.store().run_actions(&run.id).unwrap();
    assert_eq!(actions[0].status, "succeeded");
    // The delay it died in is closed with the run, never left `running`.
    assert_eq!(actions[1].status, "interrupted", "{actions:?}");
}

/// A `systemctl` for a machine without a systemd user manager (none runs here): logs its
/// arguments and answers `show-environment` as a user session would (`session`) or would not.
fn fake_systemctl(dir: &Path, session: bool) -> (PathBuf, PathBuf) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = dir.join("systemctl.log");
    let script = bin.join("systemctl");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$@\" >> '{}'\n[ \"$2\" = show-environment ] && exit {}\nexit 0\n",
            log.display(),
            if session { 0 } else { 1 }
        ),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&script, perms).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    (PathBuf::from(path), log)
}

/// `atlas service VERB` with the fake systemctl first on `path`, writing under `config_home`.
fn service_cmd(h: &Home, path: &Path, config_home: &Path, verb: &str) -> Output {
    h.cmd()
        .env("PATH", path)
        .env("XDG_CONFIG_HOME", config_home)
        .args(["service", verb])
        .output()
        .unwrap()
}

#[test]
fn service_install_writes_a_systemd_user_unit_and_uninstall_removes_it() {
    let h = Home::new();
    let (path, log) = fake_systemctl(h.dir.path(), true);
    let config_home = h.dir.path().join("xdg");
    let service = |verb: &str| service_cmd(&h, &path, &config_home, verb);
    let out = service("install");
    assert!(out.status.success(), "{out:?}");
    let unit = config_home.join("systemd/user/atlas.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    let exe = std::fs::canonicalize(atlas_bin()).unwrap();
    assert!(
        text.contains(&format!("ExecStart={} daemon", exe.display())),
        "{text}"
    );
    assert!(text.contains("WantedBy=graphical-session.target"), "{text}");
    assert!(stdout(&out).contains(&format!("wrote {}", unit.display())));
    assert!(stdout(&out).contains("systemctl --user start atlas"));
    assert!(!config_home.join("autostart/atlas.desktop").exists());
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(calls.contains("--user daemon-reload"), "{calls}");
    assert!(calls.contains("--user enable atlas.service"), "{calls}");

    let out = service("uninstall");
    assert!(out.status.success(), "{out:?}");
    assert!(!unit.exists());
    assert!(stdout(&out).contains(&format!("removed {}", unit.display())));
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(calls.contains("--user disable atlas.service"), "{calls}");
    let out = service("uninstall");
    assert!(stdout(&out).contains("nothing was installed"));
}

#[test]
fn service_install_writes_an_autostart_entry_without_a_systemd_user_session() {
    let h = Home::new();
    let (path, log) = fake_systemctl(h.dir.path(), false);
    let config_home = h.dir.path().join("xdg");
    let service = |verb: &str| service_cmd(&h, &path, &config_home, verb);
    let out = service("install");
    assert!(out.status.success(), "{out:?}");
    let entry = config_home.join("autostart/atlas.desktop");
    let text = std::fs::read_to_string(&entry).unwrap();
    assert!(text.starts_with("[Desktop Entry]\n"), "{text}");
    assert!(
        text.contains(" daemon\n") && text.contains("Exec="),
        "{text}"
    );
    assert!(stdout(&out).contains("next desktop login"));
    assert!(!config_home.join("systemd/user/atlas.service").exists());
    assert!(!std::fs::read_to_string(&log).unwrap().contains("enable"));
    let out = service("uninstall");
    assert!(out.status.success());
    assert!(!entry.exists());
    assert!(stdout(&out).contains(&format!("removed {}", entry.display())));
}

#[test]
fn prune_removes_old_runs_by_its_options_or_by_the_history_config() {
    let h = Home::new();
    h.write("tick.yaml", "id: tick\ntriggers: [{type: manual}]\nactions:\n  - {id: a, type: log, config: {message: a}}\n  - {id: b, type: log, config: {message: b}}\n");
    for _ in 0..4 {
        let o = h.run(&["workflow", "run", "tick", "--silent"]);
        assert!(o.status.success(), "{o:?}");
    }
    let o = h.run(&["workflow", "prune", "--older-than", "30d"]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(stdout(&o).trim(), "removed 0 run(s) and 0 action record(s)");
    let o = h.run(&["workflow", "prune", "--keep", "3", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"runs": 1, "actions": 2, "deliveries": 0})
    );
    // Without options, `[history]` in config.toml decides.
    std::fs::write(
        h.dir.path().join("config.toml"),
        "[history]\nkeep_days = 0\nkeep_runs = 1\n",
    )
    .unwrap();
    let o = h.run(&["workflow", "prune"]);
    assert_eq!(
        stdout(&o).trim(),
        "removed 2 run(s) and 4 action record(s)",
        "{o:?}"
    );
    let runs = h.store().list_runs(None, 10).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(h.store().stats().unwrap()[0].runs, 4, "counters are kept");
}
