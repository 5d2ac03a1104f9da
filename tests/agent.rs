//! The resident agent for real, headless: Xvfb with a tray host, PulseAudio with a null sink as
//! microphone and speaker, the real whisper model. Push-to-talk with xdotool, a command played
//! into the virtual microphone, the spoken reply recorded from the sink and transcribed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use atlas::store::Store;
use serde_json::Value;

use crate::util::atlas_bin;
use crate::voice::{Pulse, espeak, model};

struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    fn start() -> Option<Xvfb> {
        if Command::new("Xvfb")
            .arg("-help")
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            assert_ne!(
                std::env::var("ATLAS_REQUIRE_DESKTOP").as_deref(),
                Ok("1"),
                "Xvfb is not installed"
            );
            eprintln!("skipping: Xvfb is not installed");
            return None;
        }
        for n in 70..90 {
            if Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                || Path::new(&format!("/tmp/.X{n}-lock")).exists()
            {
                continue;
            }
            let display = format!(":{n}");
            let child = Command::new("Xvfb")
                .args([
                    display.as_str(),
                    "-screen",
                    "0",
                    "1280x800x24",
                    "-nolisten",
                    "tcp",
                    "-noreset",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .ok()?;
            let x = Xvfb { child, display };
            // Wait until the server answers steadily (it can drop connections in its first moments).
            let mut ok = 0;
            for _ in 0..100 {
                if x.cmd("xdpyinfo")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
                {
                    ok += 1;
                    if ok >= 5 {
                        return Some(x);
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            return None;
        }
        None
    }
    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("DISPLAY", &self.display);
        c
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        // SAFETY: SIGTERM to our own child so it removes its lock files.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

struct Daemon {
    child: Child,
    data: PathBuf,
}

impl Daemon {
    fn status(&self) -> Option<Value> {
        serde_json::from_slice(&std::fs::read(self.data.join("status.json")).ok()?).ok()
    }
    fn wait(mut self) -> std::process::Output {
        let child = std::mem::replace(&mut self.child, Command::new("true").spawn().unwrap());
        child.wait_with_output().unwrap()
    }
    fn stop(mut self) -> std::process::Output {
        // SAFETY: SIGTERM to our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let child = std::mem::replace(&mut self.child, Command::new("true").spawn().unwrap());
        child.wait_with_output().unwrap()
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
    let mut c = Command::new(atlas_bin());
    c.env("ATLAS_DATA_DIR", &data)
        .env("ATLAS_CONFIG", dir.join("config.toml"))
        .env("ATLAS_MODEL", model)
        .env("ATLAS_BUNDLED_WORKFLOWS", dir.join("none"))
        .env("NO_AT_BRIDGE", "1")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .arg("--workflows")
        .arg(dir.join("wf"))
        .arg("daemon")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    Daemon {
        child: c.spawn().unwrap(),
        data,
    }
}

fn write_workflows(dir: &Path) {
    std::fs::create_dir_all(dir.join("wf")).unwrap();
    std::fs::write(
        dir.join("wf/volume.yaml"),
        "id: volume\ntriggers: [{type: manual}, {type: voice, phrases: ['(set|turn) [the] volume to {level:low|medium|high}']}]\nactions:\n  - {id: say, type: speak, config: {text: 'Okay, the volume is now {{ trigger.slots.level | default(\"medium\") }}.'}}\n",
    )
    .unwrap();
}

async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..300 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_to_talk_hears_a_command_and_the_reply_is_heard_on_the_speaker() {
    let Some(model) = model() else { return };
    let Some(pulse) = Pulse::start() else { return };
    let Some(x) = Xvfb::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    write_workflows(dir.path());
    let runtime = pulse.runtime.path().to_str().unwrap().to_owned();
    let d = daemon(
        dir.path(),
        &model,
        &[
            ("DISPLAY", &x.display),
            ("XDG_RUNTIME_DIR", &runtime),
            ("ATLAS_SPEECH", "espeak"),
        ],
    );
    wait_for("the daemon's status", || {
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

    // A press too short to be a command does nothing.
    assert!(
        x.cmd("xdotool")
            .args(["keydown", "ctrl+shift+space"])
            .status()
            .unwrap()
            .success()
    );
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert!(
        x.cmd("xdotool")
            .args(["keyup", "ctrl+shift+space"])
            .status()
            .unwrap()
            .success()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(runs(&d.data).is_empty());

    // Record the speaker from the sink's monitor (it starts delivering ~2 s after opening).
    let heard = dir.path().join("speaker.wav");
    let mut parec = pulse
        .cmd("parec")
        .args(["-d", "vsink.monitor", "--file-format=wav"])
        .arg(&heard)
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Hold the key, speak into the microphone, release.
    let cmd = dir.path().join("cmd.wav");
    espeak("Set the volume to high.", "en-us", 150, &cmd);
    assert!(
        x.cmd("xdotool")
            .args(["keydown", "ctrl+shift+space"])
            .status()
            .unwrap()
            .success()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(pulse.cmd("paplay").arg(&cmd).status().unwrap().success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        x.cmd("xdotool")
            .args(["keyup", "ctrl+shift+space"])
            .status()
            .unwrap()
            .success()
    );
    wait_for("the voice run", || {
        runs(&d.data)
            .iter()
            .any(|r| r.workflow_id == "volume" && r.status.is_final())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // SAFETY: SIGINT to our own child so parec finalises the WAV header.
    unsafe { libc::kill(parec.id() as i32, libc::SIGINT) };
    let _ = parec.wait();
    let run = runs(&d.data)
        .into_iter()
        .find(|r| r.workflow_id == "volume")
        .unwrap();
    assert_eq!(run.trigger, "voice");
    assert_eq!(run.trigger_data["slots"]["level"], "high");
    let out = Command::new(atlas_bin())
        .env("ATLAS_MODEL", &model)
        .args(["transcribe"])
        .arg(&heard)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(text.contains("the volume is"), "the speaker said: {text:?}");

    // One daemon per user.
    let second = daemon(dir.path(), &model, &[("XDG_RUNTIME_DIR", &runtime)]);
    let out = second.wait();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already running (pid"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = d.stop();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_display_the_daemon_runs_headless_and_says_so() {
    let Some(model) = model() else { return };
    let dir = tempfile::tempdir().unwrap();
    write_workflows(dir.path());
    let d = daemon(dir.path(), &model, &[("ATLAS_SPEECH", "none")]);
    wait_for("the daemon's status", || d.status().is_some()).await;
    assert_eq!(d.status().unwrap()["headless"], true);
    let out = d.stop();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("running headless, the hotkey and tray are off"),
        "{err}"
    );
}
