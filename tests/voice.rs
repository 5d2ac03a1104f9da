//! The voice loop end to end with real audio: espeak-ng speaks, the real tiny.en whisper model
//! transcribes, a workflow runs, its reply is rendered to a WAV by espeak-ng, and the same model
//! transcribes that reply back. Also the microphone path under a PulseAudio virtual microphone,
//! and the model commands.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::test_pulse::PulseServer;
use crate::test_skip::{Need, skip};
use crate::util::{atlas_bin, serve};

/// The real whisper model, or `None` when it is absent: the test is then skipped (recorded, see
/// `test_skip`), or fails under `ATLAS_REQUIRE_MODEL=1` (the test script sets it).
pub fn model() -> Option<PathBuf> {
    let path = std::env::var_os("ATLAS_TEST_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/atlas-test/ggml-tiny.en-q8_0.bin")
        });
    if path.exists() {
        return Some(path);
    }
    skip(
        Need::Model,
        &format!(
            "no whisper model at {} (run scripts/test-model.sh)",
            path.display()
        ),
    );
    None
}

pub fn espeak(text: &str, voice: &str, speed: u32, out: &Path) {
    let ok = Command::new("espeak-ng")
        .args(["-v", voice, "-s", &speed.to_string(), "-w"])
        .arg(out)
        .arg(text)
        .status()
        .expect("espeak-ng runs")
        .success();
    assert!(ok, "espeak-ng failed for {text}");
}

struct Voice {
    dir: tempfile::TempDir,
    model: PathBuf,
}

impl Voice {
    fn new(model: PathBuf) -> Voice {
        let v = Voice {
            dir: tempfile::tempdir().unwrap(),
            model,
        };
        std::fs::create_dir_all(v.wf()).unwrap();
        v
    }
    fn wf(&self) -> PathBuf {
        self.dir.path().join("wf")
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn cmd(&self) -> Command {
        let mut c = Command::new(atlas_bin());
        c.env("ATLAS_DATA_DIR", self.path("data"))
            .env("ATLAS_CONFIG", self.path("config.toml"))
            .env("XDG_CONFIG_HOME", self.path("xdg-config"))
            .env("ATLAS_MODEL", &self.model)
            .env("ATLAS_SPEECH", "none")
            .arg("--workflows")
            .arg(self.wf())
            .stdin(Stdio::null());
        c
    }
    fn listen(&self, wav: &Path, reply: &Path) -> Value {
        let o = self
            .cmd()
            .args(["listen", "--json", "--explain", "--wav"])
            .arg(wav)
            .arg("--speak-to")
            .arg(reply)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "listen failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
    }
    fn transcribe(&self, wav: &Path) -> String {
        let o = self
            .cmd()
            .args(["transcribe", "--json"])
            .arg(wav)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        v["text"].as_str().unwrap().to_lowercase()
    }
}

fn test_workflows(v: &Voice, weather_api: &str) {
    std::fs::write(
        v.wf().join("remind.yaml"),
        "id: remind\ntriggers: [{type: voice, phrases: ['remind me in {minutes:number} minutes to {task}']}]\nactions:\n  - {id: say, type: speak, config: {text: 'Okay. In {{ trigger.slots.minutes }} minutes I will remind you to {{ trigger.slots.task }}.'}}\n",
    )
    .unwrap();
    std::fs::write(
        v.wf().join("volume.yaml"),
        "id: volume\ntriggers: [{type: voice, phrases: ['(set|turn) [the] volume to {level:low|medium|high}']}]\nactions:\n  - {id: say, type: speak, config: {text: 'Volume set to {{ trigger.slots.level }}.'}}\n",
    )
    .unwrap();
    // The bundled weather workflow, pointed at a local Open-Meteo stand-in.
    let bundled = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/weather.yaml"),
    )
    .unwrap();
    std::fs::write(
        v.wf().join("weather.yaml"),
        bundled.replace("https://api.open-meteo.com", weather_api),
    )
    .unwrap();
}

async fn open_meteo() -> String {
    let app = Router::new().route(
        "/v1/forecast",
        get(|| async {
            axum::Json(json!({"current": {"temperature_2m": 21.2, "apparent_temperature": 20.4, "weather_code": 0, "wind_speed_10m": 5.1}}))
        }),
    );
    format!("http://{}", serve(app).await)
}

/// What is said, voice, speed, workflow, slots, words the spoken reply must contain.
type Case = (
    &'static str,
    &'static str,
    u32,
    &'static str,
    Value,
    &'static [&'static str],
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoken_commands_run_the_right_workflow_and_the_reply_is_heard() {
    let Some(model) = model() else { return };
    let v = Voice::new(model);
    test_workflows(&v, &open_meteo().await);
    // (what is said, voice, speed, workflow, slots, words the spoken reply must contain; `a|b`:
    // either)
    let cases: &[Case] = &[
        (
            "Remind me in twenty five minutes to call my mother.",
            "en-us",
            160,
            "remind",
            json!({"minutes": 25, "task": "call my mother"}),
            &["25 minutes", "mother"],
        ),
        (
            "Remind me in 10 minutes to water the plants.",
            "en-gb",
            140,
            "remind",
            json!({"minutes": 10}),
            &["10 minutes", "plants"],
        ),
        (
            "What's the weather like today?",
            "en-us+f3",
            170,
            "weather",
            json!({}),
            &["21 degrees", "clear skies"],
        ),
        (
            "Set the volume to high.",
            "en-gb+m3",
            150,
            "volume",
            json!({"level": "high"}),
            &["volume set to high"],
        ),
        // The greeting depends on the time of day, and tiny.en mishears some of its renderings
        // ("Atlas is ready" after "Good morning!"): any of its words will do.
        (
            "Hello Atlas!",
            "en-us",
            175,
            "hello",
            json!({}),
            &["atlas|ready|morning|afternoon|evening"],
        ),
        (
            "Read me my morning briefing.",
            "en-us",
            150,
            "morning_briefing",
            json!({}),
            &["today is"],
        ),
    ];
    for (i, (text, voice, speed, workflow, slots, reply_words)) in cases.iter().enumerate() {
        let input = v.path(&format!("in{i}.wav"));
        let reply = v.path(&format!("reply{i}.wav"));
        espeak(text, voice, *speed, &input);
        let out = v.listen(&input, &reply);
        assert_eq!(out["workflow"], json!(workflow), "{text}: {out:#}");
        for (k, want) in slots.as_object().unwrap() {
            assert_eq!(&out["slots"][k], want, "{text}: slot {k} in {out:#}");
        }
        assert_eq!(out["run"]["status"], "succeeded", "{text}: {out:#}");
        // Round trip: the reply WAV, transcribed by the same model, says what the workflow said.
        let heard = v.transcribe(&reply);
        for w in *reply_words {
            assert!(
                w.split('|').any(|alt| heard.contains(alt)),
                "{text}: reply heard as {heard:?}, expected {w:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_noise_and_off_topic_speech_start_nothing() {
    let Some(model) = model() else { return };
    let v = Voice::new(model);
    test_workflows(&v, "http://127.0.0.1:9");
    let silence = v.path("silence.wav");
    atlas::audio::write_wav_i16(&silence, &vec![0.0; 32000], 16000, 1).unwrap();
    let noise = v.path("noise.wav");
    let noisy: Vec<f32> = (0..48000u32)
        .map(|i| ((i.wrapping_mul(2654435761) >> 16) as f32 / 65536.0 - 0.5) * 0.02)
        .collect();
    atlas::audio::write_wav_i16(&noise, &noisy, 16000, 1).unwrap();
    for wav in [&silence, &noise] {
        let out = v.listen(wav, &v.path("r.wav"));
        assert_eq!(out["workflow"], Value::Null, "{out:#}");
        assert_eq!(out["run"], Value::Null);
        assert!(
            out["reason"].as_str().unwrap().contains("no speech"),
            "{out:#}"
        );
    }
    let off = v.path("off.wav");
    espeak(
        "The old cat slept quietly beside the wooden fence.",
        "en-us",
        160,
        &off,
    );
    let reply = v.path("sorry.wav");
    let out = v.listen(&off, &reply);
    assert_eq!(out["workflow"], Value::Null, "{out:#}");
    assert_eq!(out["reply"], "Sorry, I didn't catch that.");
    assert!(v.transcribe(&reply).contains("sorry"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmatched_speech_goes_to_the_llm_when_configured() {
    let Some(model) = model() else { return };
    // A local fake of the OpenAI chat-completions protocol.
    let addr = serve(Router::new().route(
        "/v1/chat/completions",
        post(|axum::Json(body): axum::Json<Value>| async move {
            let asked = body["messages"][1]["content"]
                .as_str()
                .unwrap_or("")
                .to_lowercase();
            let answer = format!("You asked: {asked}");
            axum::Json(json!({"choices": [{"message": {"role": "assistant", "content": answer}}]}))
        }),
    ))
    .await;
    let v = Voice::new(model);
    std::fs::write(v.path("config.toml"), format!("[voice]\nllm_fallback = true\n\n[llm]\nbase_url = \"http://{addr}/v1\"\nmodel = \"local\"\n")).unwrap();
    let q = v.path("q.wav");
    espeak("What is the capital of France?", "en-us", 160, &q);
    let out = v.listen(&q, &v.path("a.wav"));
    assert_eq!(out["workflow"], Value::Null);
    let reply = out["reply"].as_str().unwrap();
    assert!(
        reply.starts_with("You asked: ") && reply.contains("capital"),
        "{out:#}"
    );
}

#[test]
fn transcribe_reports_text_and_timings() {
    let Some(model) = model() else { return };
    let v = Voice::new(model);
    let wav = v.path("t.wav");
    espeak("Good morning, read my briefing.", "en-us", 160, &wav);
    let o = v
        .cmd()
        .args(["transcribe", "--json"])
        .arg(&wav)
        .output()
        .unwrap();
    let out: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        out["text"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("good morning"),
        "{out}"
    );
    assert!(out["audio_ms"].as_u64().unwrap() > 1000);
    assert!(out["stt_ms"].as_u64().is_some());
    // A missing model is a clear error naming the fix.
    let o = v
        .cmd()
        .env("ATLAS_MODEL", "base.en")
        .args(["transcribe"])
        .arg(&wav)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("atlas model download base.en"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_microphone_path_hears_an_utterance_played_into_a_virtual_microphone() {
    let Some(model) = model() else { return };
    let Some(pulse) = PulseServer::start() else {
        return;
    };
    let v = Voice::new(model);
    test_workflows(&v, "http://127.0.0.1:9");
    let wav = v.path("mic.wav");
    espeak("Set the volume to medium.", "en-us", 150, &wav);
    let mut listen = v.cmd();
    listen
        .env("XDG_RUNTIME_DIR", pulse.runtime_dir())
        .args(["listen", "--mic", "--seconds", "7", "--json", "--speak-to"])
        .arg(v.path("mic-reply.wav"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = listen.spawn().unwrap();
    // The null sink's monitor delivers its first buffer after ~2 s; speak after that.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert!(pulse.cmd("paplay").arg(&wav).status().unwrap().success());
    let o: Output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(out["workflow"], "volume", "{out:#}");
    assert_eq!(out["slots"]["level"], "medium");
    assert_eq!(out["reply"], "Volume set to medium.");
}

#[test]
fn model_import_converts_a_faster_whisper_model_and_it_becomes_active() {
    let Some(model) = model() else { return };
    let ct2 = model.parent().unwrap().join("faster-whisper-tiny.en");
    if !ct2.join("model.bin").exists() {
        skip(
            Need::Model,
            &format!("{} is missing (run scripts/test-model.sh)", ct2.display()),
        );
        return;
    }
    let v = Voice::new(model);
    // `atlas ARGS` on the models folder alone (no ATLAS_MODEL); it must succeed.
    let atlas = |args: &[&str]| {
        let o = v
            .cmd()
            .env_remove("ATLAS_MODEL")
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        o
    };
    let models = |o: Output| -> Vec<Value> {
        let list: Value = serde_json::from_slice(&o.stdout).unwrap();
        let all = list["models"].as_array().unwrap().iter();
        all.chain(list["other_installed"].as_array().unwrap())
            .cloned()
            .collect()
    };
    let ct2 = ct2.to_str().unwrap();
    atlas(&["model", "import", ct2]);
    let out = v.path("data/models/ggml-tiny.en.bin");
    assert_eq!(std::fs::metadata(&out).unwrap().len(), 77_704_715);
    let list = models(atlas(&["model", "list", "--json"]));
    let tiny = list.iter().find(|m| m["name"] == "tiny.en").unwrap();
    assert_eq!(
        (tiny["installed"].as_bool(), tiny["active"].as_bool()),
        (Some(true), Some(true)),
        "{tiny}"
    );
    // Quantized to Q8_0: a little over half the size, still hears a command right, and becomes
    // the active model (preferred over the f16 copy of the same model).
    atlas(&["model", "import", "--quantize", "q8_0", ct2]);
    let q8 = v.path("data/models/ggml-tiny.en-q8_0.bin");
    let size = std::fs::metadata(&q8).unwrap().len();
    assert!((40_000_000..45_000_000).contains(&size), "{size} bytes");
    let cmd = v.path("q8.wav");
    espeak("Set the volume to medium.", "en-us", 150, &cmd);
    let o = atlas(&["transcribe", "--json", cmd.to_str().unwrap()]);
    let heard: Value = serde_json::from_slice(&o.stdout).unwrap();
    let text = heard["text"].as_str().unwrap().to_lowercase();
    assert!(text.contains("volume to medium"), "{heard}");
    let list = models(atlas(&["model", "list", "--json"]));
    let active: Vec<&Value> = list.iter().filter(|m| m["active"] == true).collect();
    assert_eq!(active.len(), 1, "{list:#?}");
    assert_eq!(active[0]["name"], "tiny.en-q8_0", "{list:#?}");
    // An unsupported input is refused with a clear message.
    let empty = v.path("empty-model");
    std::fs::create_dir_all(&empty).unwrap();
    let o = v
        .cmd()
        .args(["model", "import"])
        .arg(&empty)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("model.bin"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_download_refuses_a_file_whose_checksum_is_wrong() {
    // A local server answering like whisper.cpp's file host, with the wrong bytes.
    let body = vec![7u8; 77_704_715];
    let app = Router::new().route(
        "/ggml-tiny.en.bin",
        get(move || {
            let b = body.clone();
            async move { b }
        }),
    );
    let addr = serve(app).await;
    let v = Voice::new(PathBuf::from("unused"));
    let o = tokio::task::spawn_blocking({
        let mut c = v.cmd();
        c.args([
            "model",
            "download",
            "tiny.en",
            "--base-url",
            &format!("http://{addr}"),
        ]);
        move || c.output().unwrap()
    })
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.to_lowercase().contains("sha-1") || err.to_lowercase().contains("checksum"),
        "{err}"
    );
    let models = v.path("data/models");
    let left: Vec<_> = std::fs::read_dir(&models)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "nothing may be left behind: {left:?}");
}
