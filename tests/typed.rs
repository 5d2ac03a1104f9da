//! Typed commands (`atlas listen --text`): the same matcher and run as speech, without whisper,
//! through the real binary over a temp workflows folder.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

use crate::util::atlas_bin;

const LIGHTS_ON: &str = "id: lights_on\ntriggers: [{type: voice, phrases: ['turn on [the] {room:kitchen|living room|garage} lights']}]\nactions:\n  - {id: say, type: speak, config: {text: 'The {{ trigger.slots.room }} lights are on.'}}\n";
const LIGHTS_OFF: &str = "id: lights_off\ntriggers: [{type: voice, phrases: ['turn off [the] {room:kitchen|living room|garage} lights']}]\nactions:\n  - {id: say, type: speak, config: {text: 'The {{ trigger.slots.room }} lights are off.'}}\n";
const TIMER: &str = "id: timer\ntriggers: [{type: voice, phrases: ['set a timer for {minutes:number} minutes']}]\nactions:\n  - {id: say, type: speak, config: {text: 'Timer set for {{ trigger.slots.minutes }} minutes.'}}\n";

struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        let h = Home {
            dir: tempfile::tempdir().unwrap(),
        };
        let wf = h.wf();
        std::fs::create_dir_all(&wf).unwrap();
        for (name, yaml) in [
            ("on.yaml", LIGHTS_ON),
            ("off.yaml", LIGHTS_OFF),
            ("timer.yaml", TIMER),
        ] {
            std::fs::write(wf.join(name), yaml).unwrap();
        }
        h
    }
    fn wf(&self) -> PathBuf {
        self.dir.path().join("wf")
    }
    /// `atlas listen --text TEXT ARGS`: no model (a typed command never loads one), no speech.
    fn listen(&self, text: &str, args: &[&str]) -> Output {
        Command::new(atlas_bin())
            .env("ATLAS_DATA_DIR", self.dir.path().join("data"))
            .env("ATLAS_CONFIG", self.dir.path().join("config.toml"))
            .env("XDG_CONFIG_HOME", self.dir.path().join("xdg-config"))
            .env(
                "ATLAS_BUNDLED_WORKFLOWS",
                self.dir.path().join("no-bundled"),
            )
            .env("ATLAS_MODEL", self.dir.path().join("no-model.bin"))
            .env("ATLAS_SPEECH", "none")
            .arg("--workflows")
            .arg(self.wf())
            .args(["listen", "--text", text])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

#[test]
fn a_typed_command_runs_the_workflow_it_names_with_its_slots() {
    let h = Home::new();
    for (text, workflow, slots, reply) in [
        (
            "Turn off the kitchen lights.",
            "lights_off",
            json!({"room": "kitchen"}),
            "The kitchen lights are off.",
        ),
        (
            "turn on the living room lights",
            "lights_on",
            json!({"room": "living room"}),
            "The living room lights are on.",
        ),
        (
            "Set a timer for twenty five minutes",
            "timer",
            json!({"minutes": 25}),
            "Timer set for 25 minutes.",
        ),
    ] {
        let o = h.listen(text, &["--json"]);
        assert!(
            o.status.success(),
            "{text}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let out = json_of(&o);
        assert_eq!(out["workflow"], workflow, "{text}: {out:#}");
        assert_eq!(out["slots"], slots, "{text}: {out:#}");
        assert_eq!(out["run"]["status"], "succeeded", "{text}: {out:#}");
        assert_eq!(out["reply"], reply, "{text}: {out:#}");
        assert_eq!(out["transcript"], text);
        // No audio was heard and whisper never ran.
        assert_eq!(out["timings"]["audio_ms"], 0);
        assert_eq!(out["timings"]["stt_ms"], 0);
    }
}

#[test]
fn an_unmatched_typed_command_says_so_and_exits_with_status_1() {
    let h = Home::new();
    let o = h.listen("what is the capital of peru", &["--json"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = json_of(&o);
    assert_eq!(out["workflow"], Value::Null, "{out:#}");
    assert_eq!(out["run"], Value::Null, "{out:#}");
    assert!(
        out["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{out:#}"
    );
    assert_eq!(out["reply"], "Sorry, I didn't catch that.");
    // The plain output says so too.
    let o = h.listen("what is the capital of peru", &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("no workflow:"));
    // An empty command is refused the same way.
    let o = h.listen("  ", &["--json"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(json_of(&o)["reason"], "the command is empty");
}

#[test]
fn explain_lists_the_candidates_and_their_scores() {
    let h = Home::new();
    let o = h.listen("turn on the garage lights", &["--explain"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("matched: lights_on"), "{text}");
    // The near miss is listed with its own score, below the match.
    let score_of = |id: &str| -> f32 {
        // A candidate line: the score, the workflow id, the phrase, ...
        text.lines()
            .filter_map(|l| {
                let mut parts = l.split_whitespace();
                let score: f32 = parts.next()?.parse().ok()?;
                (parts.next() == Some(id)).then_some(score)
            })
            .next()
            .unwrap_or_else(|| panic!("no candidate line for {id}:\n{text}"))
    };
    assert!(score_of("lights_on") > score_of("lights_off"), "{text}");
    let o = h.listen("turn on the garage lights", &["--explain", "--json"]);
    let out = json_of(&o);
    let candidates = out["candidates"].as_array().expect("candidates");
    assert!(candidates.len() >= 2, "{out:#}");
    assert_eq!(candidates[0]["workflow_id"], "lights_on");
    assert!(candidates.iter().all(|c| c["score"].as_f64().is_some()));
}

const ORDER: &str = "id: order\ntriggers: [{type: voice, phrases: ['order {drink}']}]\nactions:\n  - {id: q, type: ask, config: {question: 'Shall I order {{ trigger.slots.drink }}?', wait: 5s}}\n  - {id: which, type: condition, config: {if: 'q.yes == true', then: yes, else: no}}\n  - {id: yes, type: speak, config: {text: 'Ordered {{ trigger.slots.drink }}.'}, on_success: end}\n  - {id: no, type: speak, config: {text: '{% if q.answered %}Not ordered.{% else %}No answer, nothing ordered.{% endif %}'}}\n  - {id: end, type: log, config: {message: done}}\n";

/// `atlas listen --text` with stdin as the answer: a workflow that asks gets the next line.
fn listen_answering(h: &Home, text: &str, answer: Option<&str>) -> Value {
    listen_answering_with(h, text, answer, false)
}

/// As [`listen_answering`]; with `keep_open` standard input stays open and silent (a terminal
/// nobody types into) until the command has ended.
fn listen_answering_with(h: &Home, text: &str, answer: Option<&str>, keep_open: bool) -> Value {
    use std::io::Write as _;
    std::fs::write(h.wf().join("order.yaml"), ORDER).unwrap();
    let mut child = Command::new(atlas_bin())
        .env("ATLAS_DATA_DIR", h.dir.path().join("data"))
        .env("ATLAS_CONFIG", h.dir.path().join("config.toml"))
        .env("XDG_CONFIG_HOME", h.dir.path().join("xdg-config"))
        .env("ATLAS_BUNDLED_WORKFLOWS", h.dir.path().join("no-bundled"))
        .env("ATLAS_MODEL", h.dir.path().join("no-model.bin"))
        .env("ATLAS_SPEECH", "none")
        .arg("--workflows")
        .arg(h.wf())
        .args(["listen", "--json", "--text", text])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    if let Some(a) = answer {
        writeln!(stdin, "{a}").unwrap();
    }
    let held = keep_open.then_some(stdin);
    let o = child.wait_with_output().unwrap();
    drop(held);
    json_of(&o)
}

#[test]
fn a_question_is_answered_by_the_next_line_and_an_unanswered_one_does_nothing() {
    let h = Home::new();
    let v = listen_answering(&h, "order coffee", Some("yes please"));
    assert_eq!(v["workflow"], "order", "{v}");
    assert_eq!(v["asked"], "Shall I order coffee?", "{v}");
    assert_eq!(v["reply"], "Shall I order coffee? Ordered coffee.", "{v}");
    assert_eq!(v["run"]["status"], "succeeded", "{v}");
    let v = listen_answering(&h, "order tea", Some("no"));
    assert_eq!(v["reply"], "Shall I order tea? Not ordered.", "{v}");
    // Standard input closed without an answer: the question runs out (its 5 s wait).
    let v = listen_answering(&h, "order juice", None);
    assert_eq!(
        v["reply"], "Shall I order juice? No answer, nothing ordered.",
        "{v}"
    );
    assert_eq!(v["run"]["status"], "succeeded", "{v}");
    // Standard input open and silent: the run still ends when the question runs out, and the
    // command with it.
    let v = listen_answering_with(&h, "order milk", None, true);
    assert_eq!(
        v["reply"], "Shall I order milk? No answer, nothing ordered.",
        "{v}"
    );
}
