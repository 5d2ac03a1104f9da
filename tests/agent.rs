//! The resident agent for real, headless: Xvfb with a tray host, PulseAudio with a null sink as
//! microphone and speaker, the real whisper model. Push-to-talk with xdotool, a command played
//! into the virtual microphone, the spoken reply recorded from the sink and transcribed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use atlas::store::Store;
use serde_json::Value;

use crate::test_dbus::{SESSION_BUS_VARIABLE, SessionBus};
use crate::test_display::{Trayer, Xvfb};
use crate::test_pulse::PulseServer;
use crate::test_skip::{Need, require_programs};
use crate::util::atlas_bin;
use crate::voice::{espeak, model};

/// The live path while the key is held: speculative decoding, the silence stop, the ack.
mod live;

struct Daemon {
    child: Child,
    data: PathBuf,
    /// The daemon's stderr, kept in a file so a test that fails can show what it logged.
    log: PathBuf,
}

/// How a daemon ended: its exit status and everything it wrote to stderr.
struct Ended {
    status: std::process::ExitStatus,
    stderr: String,
}

impl Daemon {
    fn status(&self) -> Option<Value> {
        serde_json::from_slice(&std::fs::read(self.data.join("status.json")).ok()?).ok()
    }
    fn logged(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
    fn wait(mut self) -> Ended {
        let status = self.child.wait().unwrap();
        Ended {
            status,
            stderr: self.logged(),
        }
    }
    fn stop(self) -> Ended {
        // SAFETY: SIGTERM to our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.wait()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn daemon(dir: &Path, model: &Path, env: &[(&str, &str)]) -> Daemon {
    let data = dir.join("data");
    let log = dir.join(format!(
        "daemon-{}.log",
        DAEMONS.fetch_add(1, Ordering::Relaxed)
    ));
    let mut c = Command::new(atlas_bin());
    c.env("ATLAS_DATA_DIR", &data)
        .env("ATLAS_CONFIG", dir.join("config.toml"))
        .env("XDG_CONFIG_HOME", dir.join("xdg-config"))
        .env("ATLAS_MODEL", model)
        .env("ATLAS_BUNDLED_WORKFLOWS", dir.join("none"))
        .env("NO_AT_BRIDGE", "1")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .arg("--workflows")
        .arg(dir.join("wf"))
        // Off the default port: daemons of parallel tests (and one the developer runs) each
        // get a free one; `atlas status` and the CLI find it in the data dir.
        .env("ATLAS_API_LISTEN", "127.0.0.1:0")
        .arg("daemon")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    for (k, v) in env {
        c.env(k, v);
    }
    Daemon {
        child: c.spawn().unwrap(),
        data,
        log,
    }
}

/// Numbers the daemons' log files (a test may start more than one in its folder).
static DAEMONS: AtomicUsize = AtomicUsize::new(0);

fn write_workflows(dir: &Path) {
    std::fs::create_dir_all(dir.join("wf")).unwrap();
    std::fs::write(
        dir.join("wf/volume.yaml"),
        "id: volume\ntriggers: [{type: manual}, {type: voice, phrases: ['(set|turn) [the] volume to {level:low|medium|high}']}]\nactions:\n  - {id: say, type: speak, config: {text: 'Okay, the volume is now {{ trigger.slots.level | default(\"medium\") }}.'}}\n",
    )
    .unwrap();
}

/// Waits up to 30 s for `f`; on timeout the failure shows what the daemon logged.
async fn wait_for(d: &Daemon, what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..300 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "timed out after 30s waiting for {what}; the daemon logged:\n{}",
        d.logged()
    );
}

fn runs(data: &Path) -> Vec<atlas::store::RunRecord> {
    if !data.join("atlas.db").exists() {
        return Vec::new();
    }
    Store::open(&data.join("atlas.db"))
        .unwrap()
        .list_runs(None, 50)
        .unwrap()
}

/// Records what the speaker plays (the null sink's monitor) into a WAV file.
struct SpeakerRecording {
    parec: Child,
    wav: PathBuf,
}

impl SpeakerRecording {
    /// Starts recording (the monitor delivers its first buffer ~2 s after opening).
    fn start(pulse: &PulseServer, wav: PathBuf) -> SpeakerRecording {
        let parec = pulse
            .cmd("parec")
            .args(["-d", "vsink.monitor", "--file-format=wav"])
            .arg(&wav)
            .spawn()
            .unwrap();
        SpeakerRecording { parec, wav }
    }

    /// Stops recording and returns what the real model hears in it, lowercased.
    fn heard(mut self, model: &Path) -> String {
        // SAFETY: SIGINT to our own child so parec finalises the WAV header.
        unsafe { libc::kill(self.parec.id() as i32, libc::SIGINT) };
        let _ = self.parec.wait();
        let out = Command::new(atlas_bin())
            .env("ATLAS_MODEL", model)
            .arg("transcribe")
            .arg(&self.wav)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_lowercase()
    }
}

/// What a spoken-command test of the daemon needs: the real model, a PulseAudio server whose
/// null sink is both microphone and speaker, an X server, and a folder for workflows and data.
struct Rig {
    model: PathBuf,
    pulse: PulseServer,
    x: Xvfb,
    dir: tempfile::TempDir,
}

impl Rig {
    fn start() -> Option<Rig> {
        let model = model()?;
        let pulse = PulseServer::start()?;
        let x = Xvfb::start()?;
        Some(Rig {
            model,
            pulse,
            x,
            dir: tempfile::tempdir().unwrap(),
        })
    }

    /// The daemon on this rig's display and sound server, speaking with espeak-ng.
    fn daemon(&self, extra: &[(&str, &str)]) -> Daemon {
        let runtime = self.pulse.runtime_dir().to_str().unwrap().to_owned();
        let mut env = vec![
            ("DISPLAY", self.x.display()),
            ("XDG_RUNTIME_DIR", runtime.as_str()),
            ("ATLAS_SPEECH", "espeak"),
        ];
        env.extend_from_slice(extra);
        daemon(self.dir.path(), &self.model, &env)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_to_talk_hears_a_command_and_the_reply_is_heard_on_the_speaker() {
    let Some(rig) = Rig::start() else { return };
    let (model, pulse, x, dir) = (&rig.model, &rig.pulse, &rig.x, &rig.dir);
    write_workflows(dir.path());
    let d = rig.daemon(&[]);
    wait_for(&d, "the daemon's status", || {
        d.status().is_some_and(|s| s["state"] == "idle")
    })
    .await;
    // The null sink's monitor delivers its first buffer ~2 s after the stream opens.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = Command::new(atlas_bin())
        .env("ATLAS_DATA_DIR", &d.data)
        .env("ATLAS_CONFIG", dir.path().join("config.toml"))
        .args(["status", "--json"])
        .output()
        .unwrap();
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["running"], true, "{status}");
    assert_eq!(status["headless"], false, "{status}");
    // The control API's event stream, read from here on: stage changes and run events.
    let api_url = status["api_url"].as_str().expect("the API URL").to_owned();
    let token = std::fs::read_to_string(d.data.join("api-token")).unwrap();
    let stream = Arc::new(std::sync::Mutex::new(String::new()));
    let mut sse = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{api_url}/v1/events"))
        .bearer_auth(token.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), 200);
    let reader = tokio::spawn({
        let stream = stream.clone();
        async move {
            while let Ok(Some(chunk)) = sse.chunk().await {
                stream
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk));
            }
        }
    });

    // A press too short to be a command does nothing.
    xdo(x, &["keydown", "ctrl+shift+space"]);
    tokio::time::sleep(Duration::from_millis(80)).await;
    xdo(x, &["keyup", "ctrl+shift+space"]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(runs(&d.data).is_empty());

    // Record the speaker from the sink's monitor (it starts delivering ~2 s after opening).
    let speaker = SpeakerRecording::start(pulse, dir.path().join("speaker.wav"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Hold the key, speak into the microphone, release.
    let cmd = dir.path().join("cmd.wav");
    espeak("Set the volume to high.", "en-us", 150, &cmd);
    xdo(x, &["keydown", "ctrl+shift+space"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(pulse.cmd("paplay").arg(&cmd).status().unwrap().success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    xdo(x, &["keyup", "ctrl+shift+space"]);
    wait_for(&d, "the voice run", || {
        runs(&d.data)
            .iter()
            .any(|r| r.workflow_id == "volume" && r.status.is_final())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let text = speaker.heard(model);
    let run = runs(&d.data)
        .into_iter()
        .find(|r| r.workflow_id == "volume")
        .unwrap();
    assert_eq!(run.trigger, "voice");
    assert_eq!(run.trigger_data["slots"]["level"], "high");
    assert!(text.contains("the volume is"), "the speaker said: {text:?}");
    // The event stream saw the key go down and the utterance go through, and the run.
    let seen = stream.lock().unwrap().clone();
    reader.abort();
    for want in [
        "event: agent_stage",
        "\"stage\":\"listening\"",
        "\"stage\":\"transcribing\"",
        "event: run_started",
        "\"workflow_id\":\"volume\"",
    ] {
        assert!(
            seen.contains(want),
            "{want} missing from the event stream:\n{seen}"
        );
    }

    // One daemon per user.
    let runtime = pulse.runtime_dir().to_str().unwrap();
    let second = daemon(dir.path(), model, &[("XDG_RUNTIME_DIR", runtime)]);
    let out = second.wait();
    assert!(!out.status.success());
    assert!(
        out.stderr.contains("already running (pid"),
        "{}",
        out.stderr
    );

    let out = d.stop();
    assert!(out.status.success(), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_display_the_daemon_runs_headless_and_says_so() {
    let Some(model) = model() else { return };
    let dir = tempfile::tempdir().unwrap();
    write_workflows(dir.path());
    let d = daemon(dir.path(), &model, &[("ATLAS_SPEECH", "none")]);
    wait_for(&d, "the daemon's status", || {
        d.status().is_some_and(|s| s["state"] != "starting")
    })
    .await;
    assert_eq!(d.status().unwrap()["headless"], true);
    let out = d.stop();
    assert!(out.status.success());
    let err = out.stderr;
    assert!(
        err.contains("running headless, the hotkey and tray are off"),
        "{err}"
    );
}

fn xdo(x: &Xvfb, args: &[&str]) {
    assert!(
        x.cmd("xdotool").args(args).status().unwrap().success(),
        "xdotool {args:?}"
    );
}

/// A quick tap of the push-to-talk key (toggle mode starts or stops listening with one).
async fn tap(x: &Xvfb) {
    xdo(x, &["keydown", "ctrl+shift+space"]);
    tokio::time::sleep(Duration::from_millis(120)).await;
    xdo(x, &["keyup", "ctrl+shift+space"]);
}

fn state(d: &Daemon) -> String {
    d.status()
        .and_then(|s| s["state"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_toggle_mode_a_press_interrupts_speech_and_a_forgotten_stop_ends_at_the_limit() {
    let Some(rig) = Rig::start() else { return };
    let (pulse, x, dir) = (&rig.pulse, &rig.x, &rig.dir);
    write_workflows(dir.path());
    std::fs::write(
        dir.path().join("wf/story.yaml"),
        "id: story\ntriggers: [{type: voice, phrases: ['tell me a [long] story']}]\nactions:\n  - {id: tell, type: speak, config: {text: 'Once upon a time there was a lighthouse keeper who counted the waves every night. One, two, three, four, five, six, seven, eight, nine, ten. She counted until the sun came up, and then she counted the gulls. Eleven, twelve, thirteen, fourteen, fifteen, sixteen, seventeen, eighteen, nineteen, twenty.'}}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        "[agent]\nmode = \"toggle\"\n[voice]\nmax_seconds = 6\nsilence_stop = 0\n",
    )
    .unwrap();
    let d = rig.daemon(&[]);
    wait_for(&d, "the daemon's status", || state(&d) == "idle").await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Tap to start, speak, tap to stop: a long story begins.
    let story = dir.path().join("story.wav");
    espeak("Tell me a long story.", "en-us", 150, &story);
    tap(x).await;
    wait_for(&d, "listening", || state(&d) == "listening").await;
    assert!(pulse.cmd("paplay").arg(&story).status().unwrap().success());
    tap(x).await;
    wait_for(&d, "Atlas speaking the story", || state(&d) == "speaking").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // A tap while it speaks stops the story and listens for the next command.
    tap(x).await;
    wait_for(&d, "listening again", || state(&d) == "listening").await;
    let cmd = dir.path().join("cmd.wav");
    espeak("Set the volume to low.", "en-us", 150, &cmd);
    assert!(pulse.cmd("paplay").arg(&cmd).status().unwrap().success());
    tap(x).await;
    wait_for(&d, "the volume run", || {
        runs(&d.data)
            .iter()
            .any(|r| r.workflow_id == "volume" && r.status.is_final())
    })
    .await;
    wait_for(&d, "idle again", || state(&d) == "idle").await;
    let all = runs(&d.data);
    let story = all.iter().find(|r| r.workflow_id == "story").unwrap();
    let volume = all.iter().find(|r| r.workflow_id == "volume").unwrap();
    assert_eq!(volume.trigger_data["slots"]["level"], "low", "{volume:?}");
    let store = Store::open(&d.data.join("atlas.db")).unwrap();
    let told = store.run_actions(&story.id).unwrap();
    let output = told[0].output.clone().unwrap();
    assert_eq!(
        output["completed"], false,
        "the story was cut short: {output}"
    );
    assert!(story.finished_at.unwrap() <= volume.started_at.unwrap());

    // Started and never stopped: after `voice.max_seconds` the utterance ends by itself.
    let cmd = dir.path().join("cmd2.wav");
    espeak("Set the volume to medium.", "en-us", 150, &cmd);
    tap(x).await;
    wait_for(&d, "listening", || state(&d) == "listening").await;
    assert!(pulse.cmd("paplay").arg(&cmd).status().unwrap().success());
    wait_for(&d, "the run after the longest recording", || {
        runs(&d.data).iter().any(|r| {
            r.workflow_id == "volume"
                && r.trigger_data["slots"]["level"] == "medium"
                && r.status.is_final()
        })
    })
    .await;
    let out = d.stop();
    assert!(out.status.success());
}

/// The output lines of `program args` run on the display.
fn output_lines(x: &Xvfb, program: &str, args: &[&str]) -> Vec<String> {
    let out = x.cmd(program).args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn search_class(x: &Xvfb, class: &str) -> Vec<String> {
    output_lines(x, "xdotool", &["search", "--class", class])
}

/// Whether window `id` (decimal) is inside trayer's panel.
fn docked(x: &Xvfb, id: &str) -> bool {
    let Ok(n) = id.parse::<u64>() else {
        return false;
    };
    let hex = format!("0x{n:x} ");
    search_class(x, "^trayer$").iter().any(|panel| {
        output_lines(x, "xwininfo", &["-tree", "-id", panel])
            .iter()
            .any(|l| l.trim_start().starts_with(&hex))
    })
}

/// Clicks the tray icon, which opens its menu, then types `keys`.
async fn menu(x: &Xvfb, icon: &str, keys: &[&str]) {
    xdo(
        x,
        &["mousemove", "--window", icon, "16", "16", "click", "1"],
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    for k in keys {
        xdo(x, &["key", k]);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tray_icon_docks_and_its_menu_runs_workflows_pauses_listening_and_quits() {
    let Some(model) = model() else { return };
    if !require_programs(Need::Desktop, &[("trayer", "trayer")]) {
        return;
    }
    let Some(x) = Xvfb::start() else { return };
    let Some(_panel) = Trayer::start(&x) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("wf")).unwrap();
    std::fs::write(
        dir.path().join("wf/note.yaml"),
        "id: note\nname: Take a note\ntriggers: [{type: manual}]\nactions:\n  - {id: a, type: log, config: {message: noted}}\n",
    )
    .unwrap();
    let runtime = tempfile::tempdir().unwrap();
    let d = daemon(
        dir.path(),
        &model,
        &[
            ("DISPLAY", x.display()),
            ("XDG_RUNTIME_DIR", runtime.path().to_str().unwrap()),
            ("ATLAS_SPEECH", "none"),
        ],
    );
    wait_for(&d, "the daemon's status", || state(&d) == "idle").await;
    let mut icon = None;
    wait_for(&d, "the tray icon docked in trayer", || {
        icon = search_class(&x, "^tray-icon tray app atlas$")
            .into_iter()
            .next();
        icon.as_deref().is_some_and(|i| docked(&x, i))
    })
    .await;
    let icon = icon.unwrap();

    // Workflows submenu (the items: Listening, Workflows, ...): its only item is "Take a note".
    menu(&x, &icon, &["Down", "Down", "Right"]).await;
    let shot = dir.path().join("tray.png");
    let ok = x
        .cmd("sh")
        .arg("-c")
        .arg(format!(
            "xwd -root -silent | convert xwd:- '{}'",
            shot.display()
        ))
        .status()
        .unwrap();
    assert!(ok.success() && std::fs::metadata(&shot).unwrap().len() > 1000);
    if let Some(keep) = std::env::var_os("ATLAS_TRAY_SHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
    xdo(&x, &["key", "Return"]);
    wait_for(&d, "the run started from the tray", || {
        runs(&d.data)
            .iter()
            .any(|r| r.workflow_id == "note" && r.status.is_final())
    })
    .await;
    let run = runs(&d.data).into_iter().next().unwrap();
    assert_eq!(run.trigger, "manual");
    assert_eq!(run.trigger_data["source"], "tray");
    assert_eq!(run.status, atlas::store::RunStatus::Succeeded);

    // "Listening" off: the agent is paused (the hotkey is ignored), and back on.
    menu(&x, &icon, &["Down", "Return"]).await;
    wait_for(&d, "paused", || state(&d) == "paused").await;
    tap(&x).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(state(&d), "paused", "the hotkey is ignored while paused");
    menu(&x, &icon, &["Down", "Return"]).await;
    wait_for(&d, "idle", || state(&d) == "idle").await;

    // Quit, the last item, ends the daemon cleanly.
    menu(&x, &icon, &["Up", "Return"]).await;
    let out = tokio::task::spawn_blocking(move || d.wait()).await.unwrap();
    assert!(out.status.success(), "{}", out.stderr);
    assert!(out.stderr.contains("atlas daemon stopping"));
}

/// A private session bus with a real notification daemon (dunst) on the display.
struct Notifications {
    dunst: Child,
    bus: SessionBus,
}

impl Notifications {
    fn start(x: &Xvfb) -> Option<Notifications> {
        let bus = SessionBus::start()?;
        let dunst = x
            .cmd("dunst")
            .env(SESSION_BUS_VARIABLE, bus.address())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let n = Notifications { dunst, bus };
        for _ in 0..100 {
            if n.history().is_some() {
                return Some(n);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("dunst did not come up on the session bus");
    }

    /// The bus dunst serves on, for the daemon's `DBUS_SESSION_BUS_ADDRESS`.
    fn address(&self) -> &str {
        self.bus.address()
    }

    /// Summaries and bodies of the notifications dunst has shown (`dunstctl history`).
    fn history(&self) -> Option<String> {
        let out = self.bus.cmd("dunstctl").arg("history").output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Closes what is on screen, so it moves into the history.
    fn close_all(&self) {
        let _ = self.bus.cmd("dunstctl").arg("close-all").status();
    }
}

impl Drop for Notifications {
    fn drop(&mut self) {
        // dunst first, then the bus it is on (the `bus` field drops after this).
        let _ = self.dunst.kill();
        let _ = self.dunst.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_fires_on_time_is_heard_on_the_speaker_and_a_failed_one_notifies() {
    if !require_programs(
        Need::Desktop,
        &[
            ("dbus-daemon", "dbus"),
            ("dunst", "dunst"),
            ("dunstctl", "dunst"),
        ],
    ) {
        return;
    }
    let Some(rig) = Rig::start() else { return };
    let (model, pulse, x, dir) = (&rig.model, &rig.pulse, &rig.x, &rig.dir);
    let Some(notes) = Notifications::start(x) else {
        return;
    };
    std::fs::create_dir_all(dir.path().join("wf")).unwrap();
    // Both due 12 s after the daemon starts (the seconds field of a 6-field cron).
    let due = chrono::Utc::now() + chrono::TimeDelta::seconds(12);
    let cron = format!(
        "{} {} {} * * *",
        due.format("%-S"),
        due.format("%-M"),
        due.format("%-H")
    );
    std::fs::write(
        dir.path().join("wf/tea.yaml"),
        format!("id: tea\ntriggers: [{{type: schedule, cron: '{cron}', timezone: UTC}}]\nactions:\n  - {{id: say, type: speak, config: {{text: 'It is time for your meeting with the design team.'}}}}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("wf/backup.yaml"),
        format!("id: backup\nname: Nightly backup\ntriggers: [{{type: schedule, cron: '{cron}', timezone: UTC}}]\nactions:\n  - {{id: call, type: http, config: {{url: 'http://127.0.0.1:9/backup'}}}}\n"),
    )
    .unwrap();
    let speaker = SpeakerRecording::start(pulse, dir.path().join("speaker.wav"));
    let d = rig.daemon(&[("DBUS_SESSION_BUS_ADDRESS", notes.address())]);
    wait_for(&d, "the daemon's status", || state(&d) == "idle").await;
    let next = d.status().unwrap()["next"].clone();
    assert!(
        next.as_array()
            .is_some_and(|n| n.iter().any(|u| u["workflow_id"] == "tea")),
        "{next}"
    );
    wait_for(&d, "both scheduled runs", || {
        runs(&d.data).iter().filter(|r| r.status.is_final()).count() == 2
    })
    .await;
    // Heard: let the speech finish, then stop recording.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let text = speaker.heard(model);
    // The status file's next runs move on: tea's next time is tomorrow's.
    wait_for(&d, "the status file's next runs to move on", || {
        d.status().is_some_and(|s| {
            s["next"].as_array().is_some_and(|n| {
                n.iter().any(|u| {
                    u["workflow_id"] == "tea"
                        && u["at"]
                            .as_str()
                            .and_then(|a| chrono::DateTime::parse_from_rfc3339(a).ok())
                            > Some(due.into())
                })
            })
        })
    })
    .await;
    let all = runs(&d.data);
    let tea: Vec<_> = all.iter().filter(|r| r.workflow_id == "tea").collect();
    assert_eq!(tea.len(), 1, "fires once: {all:?}");
    let t = &tea[0];
    assert_eq!(t.trigger, "schedule");
    assert_eq!(t.status, atlas::store::RunStatus::Succeeded);
    let scheduled =
        chrono::DateTime::parse_from_rfc3339(t.trigger_data["scheduled_for"].as_str().unwrap())
            .unwrap();
    assert_eq!(scheduled.timestamp(), due.timestamp());
    // It ran for the right second (above) and never early. How late it is on a loaded machine
    // is `atlas bench agent`'s figure, not a test's.
    let fired = t.trigger_data["fired_at_ms"].as_i64().unwrap();
    assert!(
        fired >= scheduled.timestamp_millis(),
        "fired {} ms before its time",
        scheduled.timestamp_millis() - fired
    );
    let words = ["time", "meeting", "design", "team"];
    let heard = words.iter().filter(|w| text.contains(*w)).count();
    assert!(heard >= 3, "the speaker said: {text:?}");

    // The failed one shows a desktop notification naming it and how to see why.
    let backup = all.iter().find(|r| r.workflow_id == "backup").unwrap();
    assert_eq!(backup.status, atlas::store::RunStatus::Failed);
    let mut shown = String::new();
    wait_for(&d, "the failure notification", || {
        notes.close_all();
        shown = notes.history().unwrap_or_default();
        shown.contains("Scheduled run of Nightly backup failed")
    })
    .await;
    assert!(
        shown.contains(&format!("atlas workflow show-run {}", backup.id)),
        "{shown}"
    );
    let out = d.stop();
    assert!(out.status.success());

    // The notify action reaches the same real notification service.
    std::fs::write(
        dir.path().join("wf/ping.yaml"),
        "id: ping\ntriggers: [{type: manual}]\nactions:\n  - {id: n, type: notify, config: {title: 'Build finished', body: 'All {{ 2 * 21 }} tests passed.', urgency: low}}\n",
    )
    .unwrap();
    let out = Command::new(atlas_bin())
        .env("ATLAS_DATA_DIR", dir.path().join("data"))
        .env("ATLAS_CONFIG", dir.path().join("config.toml"))
        .env("ATLAS_BUNDLED_WORKFLOWS", dir.path().join("none"))
        .env("DBUS_SESSION_BUS_ADDRESS", notes.address())
        .arg("--workflows")
        .arg(dir.path().join("wf"))
        .args(["workflow", "run", "ping", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["result"]["delivered"], true, "{result:#}");
    crate::util::within(
        "the notify action's notification",
        Duration::from_secs(30),
        || {
            notes.close_all();
            notes
                .history()
                .is_some_and(|h| h.contains("Build finished") && h.contains("All 42 tests passed."))
        },
    )
    .await;
}
