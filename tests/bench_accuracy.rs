//! `atlas bench accuracy` runs on the real model and reports every figure: a small sample of
//! its generated corpus (espeak-ng speech, the real tiny.en whisper model). Its figures are
//! benchmark results, not asserted here; only that each is measured or says why not.

use std::process::{Command, Stdio};

use serde_json::Value;

use crate::test_skip::{Need, skip};
use crate::util::atlas_bin;
use crate::voice::model;

/// Every figure the benchmark reports.
const FIGURES: &[&str] = &[
    "in_grammar_pct",
    "paraphrase_pct",
    "off_topic_pct",
    "question_pct",
    "silence_noise_pct",
    "nothing_started_pct",
    "intent_pct",
    "false_starts",
    "wrong_workflow_starts",
    "commands_missed",
    "wer_pct",
    "wer_clean_pct",
    "wer_noisy_pct",
    "stt_p50_ms",
    "accuracy",
    "by_condition",
    "by_voice",
    "confusions",
    "voices",
    "utterances",
    "corpus",
];

#[test]
fn bench_accuracy_reports_every_figure_or_why_it_has_none() {
    let Some(model) = model() else { return };
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(atlas_bin())
        .env("ATLAS_DATA_DIR", dir.path().join("data"))
        .env("ATLAS_CONFIG", dir.path().join("config.toml"))
        .env("XDG_CONFIG_HOME", dir.path().join("xdg-config"))
        .args(["bench", "accuracy", "--limit", "3", "--json", "--model"])
        .arg(&model)
        .arg("--cache")
        .arg(dir.path().join("cache"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(out["utterances"], 3, "{out:#}");
    let nulls = out["nulls"].as_object().expect("nulls");
    for f in FIGURES {
        let v = out
            .get(*f)
            .unwrap_or_else(|| panic!("no figure {f}: {out:#}"));
        if v.is_null() {
            assert!(
                nulls
                    .get(*f)
                    .and_then(Value::as_str)
                    .is_some_and(|w| !w.is_empty()),
                "{f} is null without a reason: {out:#}"
            );
        }
    }
    // A null has a reason, and only a figure that is null has one.
    for (k, why) in nulls {
        assert!(out[k].is_null(), "{k} has a value and a null reason: {why}");
    }
    // The three items are one in-grammar command, one paraphrase and one that must start
    // nothing; each class's counts add up.
    let classes = out["accuracy"].as_object().unwrap();
    let of = |c: &str| classes[c]["of"].as_u64().unwrap();
    assert_eq!((of("in_grammar"), of("paraphrase")), (1, 1), "{out:#}");
    assert_eq!(
        classes
            .values()
            .map(|c| c["of"].as_u64().unwrap())
            .sum::<u64>(),
        3
    );
    for c in classes.values() {
        assert!(c["right"].as_u64().unwrap() <= c["of"].as_u64().unwrap());
    }
    // The WAVs were cached under the corpus's hash, outside the repository.
    let corpus = out["corpus"].as_str().unwrap();
    let wavs = dir.path().join("cache").join(corpus).join("wav");
    assert!(
        std::fs::read_dir(&wavs).unwrap().count() >= 2,
        "{}",
        wavs.display()
    );
}

/// `--gate` runs the speech gate alone: on the sample and the added noise clips, every clip
/// counted once, each share measured.
#[test]
fn bench_accuracy_gate_counts_every_clip_once() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(atlas_bin())
        .env("ATLAS_DATA_DIR", dir.path().join("data"))
        .env("ATLAS_CONFIG", dir.path().join("config.toml"))
        .env("XDG_CONFIG_HOME", dir.path().join("xdg-config"))
        .args([
            "bench", "accuracy", "--gate", "--limit", "10", "--json", "--cache",
        ])
        .arg(dir.path().join("cache"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    if !o.status.success()
        && String::from_utf8_lossy(&o.stderr).contains("apt-get install espeak-ng")
    {
        return skip(Need::Desktop, "espeak-ng is not installed");
    }
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(out["mode"], "gate", "{out:#}");
    let counted = |key: &str| -> u64 {
        let by = out[key]
            .as_object()
            .unwrap_or_else(|| panic!("{key}: {out:#}"));
        by.values()
            .map(|c| {
                assert!(c["right"].as_u64().unwrap() <= c["of"].as_u64().unwrap());
                c["of"].as_u64().unwrap()
            })
            .sum()
    };
    let total = counted("speech_found_by_condition") + counted("no_speech_stopped_by_condition");
    assert_eq!(total, 10 + 96, "{out:#}");
    assert_eq!(out["clips"], 10 + 96);
    for f in ["speech_found_pct", "no_speech_stopped_pct", "gate_p50_us"] {
        let v = out[f]
            .as_f64()
            .unwrap_or_else(|| panic!("{f} not measured: {out:#}"));
        assert!(v >= 0.0, "{f} = {v}");
    }
}
