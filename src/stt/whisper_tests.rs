//! Transcriber tests with the real tiny.en model and real espeak-ng speech.
//!
//! The model is found through `ATLAS_TEST_MODEL` (default `$HOME/.cache/atlas-test/ggml-tiny.en-q8_0.bin`).
//! When it is absent these tests are skipped and recorded as such (see [`crate::test_skip`]),
//! unless `ATLAS_REQUIRE_MODEL=1`, in which case they fail and say where the model was looked for.

use std::time::Duration;

use super::*;
use crate::audio::test_support::{espeak_16k, hum, padded, silence};
use crate::audio::{Vad, VadConfig};
use crate::test_skip::{Need, skip};

const WEATHER: &str = "what is the weather like today";
const LONG: &str = "remind me to call the dentist tomorrow morning at nine and then send the \
                    weekly report to my manager before lunch";

fn test_model() -> Option<PathBuf> {
    let path = std::env::var_os("ATLAS_TEST_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_default();
            PathBuf::from(home).join(".cache/atlas-test/ggml-tiny.en-q8_0.bin")
        });
    if path.is_file() {
        return Some(path);
    }
    let why = format!(
        "whisper test model not found at {} (set ATLAS_TEST_MODEL, or create it as described in \
         the shared notes whisper-models.md)",
        path.display()
    );
    skip(Need::Model, &why);
    None
}

fn transcriber(path: PathBuf) -> Transcriber {
    Transcriber::new(SttConfig::new(path))
}

fn words(text: &str) -> String {
    text.to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace())
        .collect()
}

async fn wait_until(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..500 {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done()
}

#[test]
fn handle_is_clone_send_and_sync() {
    fn check<T: Clone + Send + Sync + 'static>() {}
    check::<Transcriber>();
}

#[tokio::test]
async fn transcribes_espeak_commands_in_two_voices() {
    let Some(model) = test_model() else { return };
    let stt = transcriber(model);
    assert!(!stt.is_loaded(), "nothing loads before first use");
    for (i, args) in [&[][..], &["-v", "en-gb", "-s", "140"][..]]
        .into_iter()
        .enumerate()
    {
        let Some(speech) = espeak_16k(WEATHER, args) else {
            return;
        };
        let clip = padded(&speech, 0.2, 0.3);
        let t = stt.transcribe(clip, None).await.unwrap();
        eprintln!("{args:?}: {t:?}");
        let w = words(&t.text);
        for key in ["weather", "today"] {
            assert!(
                w.contains(key),
                "{args:?}: {key:?} missing from {:?}",
                t.text
            );
        }
        assert!(t.audio_ms >= 1500, "{t:?}");
        // The first call loads the model; later ones find it warm.
        assert_eq!(t.load_ms.is_some(), i == 0, "{t:?}");
    }
    assert!(stt.is_loaded());
}

#[tokio::test]
async fn a_prompt_is_accepted_and_nul_bytes_do_not_crash() {
    let Some(model) = test_model() else { return };
    let Some(speech) = espeak_16k("read my briefing", &[]) else {
        return;
    };
    let stt = transcriber(model);
    let prompt = "Morning briefing. Read my briefing.\0 What's the weather like today?";
    let t = stt
        .transcribe(padded(&speech, 0.2, 0.3), Some(prompt.into()))
        .await
        .unwrap();
    eprintln!("with prompt: {t:?}");
    assert!(words(&t.text).contains("briefing"), "{:?}", t.text);
}

#[test]
fn silence_and_hum_never_reach_whisper() {
    // The voice loop gates every clip before transcribing; whisper would invent text here.
    let vad = Vad::new(VadConfig::default());
    assert!(!vad.analyze(&silence(2.0)).has_speech);
    assert!(!vad.analyze(&hum(2.0, 0.1)).has_speech);
}

#[tokio::test]
async fn a_second_utterance_aborts_the_first() {
    let Some(model) = test_model() else { return };
    let Some(speech) = espeak_16k(LONG, &[]) else {
        return;
    };
    let Some(short) = espeak_16k(WEATHER, &[]) else {
        return;
    };
    let stt = transcriber(model);
    stt.preload().await.unwrap();
    let first = {
        let stt = stt.clone();
        let clip = padded(&speech, 0.0, 0.2);
        tokio::spawn(async move { stt.transcribe(clip, None).await })
    };
    // Let the first one reach the decoder, then speak again.
    tokio::time::sleep(Duration::from_millis(40)).await;
    let second = stt
        .transcribe(padded(&short, 0.2, 0.3), None)
        .await
        .unwrap();
    let first = first.await.unwrap();
    assert!(matches!(first, Err(SttError::Aborted)), "first: {first:?}");
    assert!(
        words(&second.text).contains("weather"),
        "second: {second:?}"
    );
    // The model survives an abort and keeps working.
    let again = stt
        .transcribe(padded(&speech, 0.2, 0.3), None)
        .await
        .unwrap();
    eprintln!("6 s clip: {again:?}");
    assert!(words(&again.text).contains("dentist"), "{again:?}");
}

#[tokio::test]
async fn unload_frees_the_model_and_the_next_call_reloads_it() {
    let Some(model) = test_model() else { return };
    let Some(speech) = espeak_16k(WEATHER, &[]) else {
        return;
    };
    let stt = transcriber(model);
    let load = stt.preload().await.unwrap();
    assert!(stt.is_loaded());
    assert!(load > Duration::ZERO);
    assert_eq!(
        stt.preload().await.unwrap(),
        Duration::ZERO,
        "already loaded"
    );
    stt.unload();
    assert!(
        wait_until(|| !stt.is_loaded()).await,
        "unload did not happen"
    );
    let t = stt
        .transcribe(padded(&speech, 0.2, 0.3), None)
        .await
        .unwrap();
    assert!(t.load_ms.is_some(), "{t:?}");
    assert!(words(&t.text).contains("weather"), "{t:?}");
    assert!(stt.is_loaded());
}

#[tokio::test]
async fn an_idle_model_unloads_itself() {
    let Some(model) = test_model() else { return };
    let stt = Transcriber::new(SttConfig {
        idle_unload: Duration::from_millis(200),
        ..SttConfig::new(model)
    });
    stt.preload().await.unwrap();
    assert!(stt.is_loaded());
    assert!(
        wait_until(|| !stt.is_loaded()).await,
        "idle model stayed loaded"
    );
}

#[tokio::test]
async fn missing_foreign_and_empty_inputs_give_actionable_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("ggml-nope.bin");
    let err = transcriber(missing.clone())
        .transcribe(vec![0.1; 16_000], None)
        .await
        .unwrap_err();
    assert!(matches!(err, SttError::ModelMissing { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&missing.display().to_string()), "{msg}");
    assert!(msg.contains("atlas model download tiny.en") && msg.contains("atlas model import"));

    for (name, bytes) in [
        ("gguf.bin", &b"GGUF\x03\x00\x00\x00 rest of an llm"[..]),
        ("text.bin", &b"<html>not found</html>"[..]),
        ("tiny.bin", &b"lm"[..]),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = transcriber(path).preload().await.unwrap_err();
        assert!(matches!(err, SttError::NotAModel { .. }), "{name}: {err}");
        assert!(err.to_string().contains(name), "{err}");
    }

    // The right magic and nothing after it: whisper.cpp would "load" this, so we refuse it.
    let header_only = dir.path().join("header-only.bin");
    std::fs::write(&header_only, 0x6767_6d6cu32.to_le_bytes()).unwrap();
    let err = transcriber(header_only).preload().await.unwrap_err();
    assert!(matches!(err, SttError::NotAModel { .. }), "{err}");
    assert!(err.to_string().contains("cut short"), "{err}");

    // A real model cut off after 1 MB (an interrupted download): whisper.cpp refuses it.
    if let Some(model) = test_model() {
        let bytes = std::fs::read(&model).unwrap();
        let truncated = dir.path().join("truncated.bin");
        std::fs::write(&truncated, &bytes[..1 << 20]).unwrap();
        let err = transcriber(truncated).preload().await.unwrap_err();
        assert!(matches!(err, SttError::ModelLoad { .. }), "{err}");
        assert!(err.to_string().contains("download it again"), "{err}");
    }

    let err = transcriber(missing)
        .transcribe(Vec::new(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, SttError::EmptyAudio), "{err}");
}

/// The decoding grammar of one workflow asking for a coin's price, as the voice loop builds it.
fn coin_names() -> [&'static str; 14] {
    [
        "dogecoin",
        "solana",
        "cardano",
        "polkadot",
        "litecoin",
        "monero",
        "chainlink",
        "avalanche",
        "tezos",
        "stellar",
        "cosmos",
        "algorand",
        "ripple",
        "tron",
    ]
}

fn coin_grammar() -> Arc<Grammar> {
    let coins = coin_names().join("|");
    let entries = [crate::intent::VoiceEntry {
        workflow_id: "coin".into(),
        phrases: vec![format!("what is the price of {{coin:{coins}}}")],
    }];
    let text = crate::intent::Matcher::new(&entries, Default::default())
        .unwrap()
        .decoding_grammar()
        .unwrap();
    Arc::new(Grammar::parse(&text).unwrap())
}

#[tokio::test]
async fn a_grammar_guided_decode_hears_list_values_the_free_decode_mishears() {
    let Some(model) = test_model() else { return };
    let stt = transcriber(model);
    let grammar = coin_grammar();
    // Values tiny.en plainly mishears from these espeak-ng voices ("my balance", "the label",
    // "my narrow"), and one it hears nearly right without help ("chain link").
    let cases: [(&str, &[&str]); 4] = [
        ("avalanche", &[]),
        ("ripple", &["-v", "en-us+f3", "-s", "180"]),
        ("monero", &["-v", "en-us+f3", "-s", "180"]),
        ("chainlink", &["-v", "en-gb", "-s", "150"]),
    ];
    for (coin, voice) in cases {
        let Some(speech) = espeak_16k(&format!("what is the price of {coin}"), voice) else {
            return;
        };
        let clip = padded(&speech, 0.2, 0.3);
        let free = stt.transcribe(clip.clone(), None).await.unwrap();
        let hints = Hints {
            grammar: Some(grammar.clone()),
            ..Hints::default()
        };
        let guided = stt.transcribe_with(clip, hints).await.unwrap();
        eprintln!(
            "{coin} {voice:?}: free {:?}, with the grammar {guided:?}",
            free.text
        );
        assert!(!free.guided);
        if coin != "chainlink" {
            assert!(!words(&free.text).contains(coin), "{coin}: {:?}", free.text);
        }
        assert!(words(&guided.text).contains(coin), "{coin}: {guided:?}");
    }
}

#[tokio::test]
async fn speech_outside_the_grammar_stays_as_heard() {
    let Some(model) = test_model() else { return };
    let stt = transcriber(model);
    let grammar = coin_grammar();
    for said in [
        "what is the meaning of life",
        "remind me to call my mother tomorrow",
        "the price of eggs went up again",
    ] {
        let Some(speech) = espeak_16k(said, &[]) else {
            return;
        };
        let clip = padded(&speech, 0.2, 0.3);
        let hints = Hints {
            grammar: Some(grammar.clone()),
            ..Hints::default()
        };
        let t = stt.transcribe_with(clip, hints).await.unwrap();
        eprintln!("{said}: {t:?}");
        assert!(!t.guided, "{said}: {t:?}");
        let heard = words(&t.text);
        assert!(
            !coin_names().iter().any(|c| heard.contains(c)),
            "{said}: {t:?}"
        );
    }
}

/// What a worker holding a loaded model shares with its handle.
fn loaded() -> Arc<Shared> {
    Arc::new(Shared {
        generation: AtomicU64::new(0),
        loaded: AtomicBool::new(true),
    })
}

/// One transcription of `clip` as the worker runs it, never aborted.
fn run_of<'a>(
    cfg: &'a SttConfig,
    clip: &'a [f32],
    prompt: Option<&'a str>,
    shared: &Arc<Shared>,
) -> Run<'a> {
    Run {
        cfg,
        samples: clip,
        prompt,
        max_tokens: max_tokens_for(clip.len()),
        abort: AbortWhen {
            shared: Arc::clone(shared),
            generation: 0,
        },
    }
}

/// The guided pass on the free pass's encoding reads what a whole guided `whisper_full` reads:
/// the same text and end, the same score, with no prompt, a prompt and one too long to keep
/// whole, for speech inside the grammar and outside it.
#[test]
fn a_guided_pass_on_the_free_encoding_reads_what_a_whole_guided_decode_reads() {
    let Some(path) = test_model() else { return };
    let mut model = Model::load(&path, true).unwrap();
    let cfg = SttConfig::new(path);
    let grammar = coin_grammar();
    let shared = loaded();
    let long_prompt = coin_names()
        .iter()
        .map(|c| format!("What is the price of {c}?"))
        .collect::<Vec<_>>()
        .join(" ")
        .repeat(4);
    let cases: [(&str, &[&str]); 3] = [
        ("what is the price of avalanche", &[]),
        (
            "what is the price of ripple",
            &["-v", "en-us+f3", "-s", "180"],
        ),
        ("remind me to call my mother tomorrow", &["-v", "en-gb"]),
    ];
    for (said, voice) in cases {
        let Some(speech) = espeak_16k(said, voice) else {
            return;
        };
        let clip = padded(&speech, 0.2, 0.3);
        for prompt in [
            None,
            Some("Price of solana. Price of tezos."),
            Some(&*long_prompt),
        ] {
            let run = run_of(&cfg, &clip, prompt, &shared);
            let window = audio_ctx_for(clip.len(), 0, cfg.audio_ctx_margin);
            let whole = run.pass(&mut model, window, Some(&grammar)).unwrap();
            let free = run.pass(&mut model, window, None).unwrap();
            let again = run
                .guided_pass(&mut model, window, &grammar, &|_| true)
                .unwrap();
            let prompt_len = prompt.map(str::len);
            eprintln!(
                "{said} (prompt of {prompt_len:?} bytes): free {:?}, guided {:?} {:?}, again {:?} {:?}",
                free.raw, whole.raw, whole.score, again.raw, again.score
            );
            assert_eq!(again.raw, whole.raw, "{said}, prompt {prompt_len:?}");
            assert_eq!(again.out_of_tokens, whole.out_of_tokens);
            let (a, w) = (again.score.unwrap(), whole.score.unwrap());
            assert!((a - w).abs() < 0.02, "{said}: score {a} against {w}");
        }
    }
}

/// A reading scored on the free pass's encoding: whisper's own free text scores what the free
/// pass scored, and a reading with another list value scores lower; the likeliest acceptable
/// reading is the one `read` returns.
#[test]
fn a_reading_scored_on_the_encoding_scores_as_whisper_decoding_it_would() {
    let Some(path) = test_model() else { return };
    let mut model = Model::load(&path, true).unwrap();
    let cfg = SttConfig::new(path);
    let shared = loaded();
    for (said, voice) in [
        ("turn on the kitchen lights", &[][..]),
        ("what is the price of solana", &["-v", "en-gb"][..]),
    ] {
        let Some(speech) = espeak_16k(said, voice) else {
            return;
        };
        let clip = padded(&speech, 0.2, 0.3);
        for prompt in [None, Some("Price of solana. Turn on the attic lights.")] {
            let run = run_of(&cfg, &clip, prompt, &shared);
            // The default floor: a window sized to the clip alone makes tiny.en repeat itself.
            let window = audio_ctx_for(clip.len(), 512, cfg.audio_ctx_margin);
            let free = run.pass(&mut model, window, None).unwrap();
            assert!(!free.out_of_tokens, "{said}: {free:?}");
            // The last word said otherwise.
            let body = free.raw.trim_end_matches(['.', '?', '!']);
            let wrong = match body.rsplit_once(' ') {
                Some((head, _)) => format!("{head} Tuesday."),
                None => String::new(),
            };
            assert_ne!(wrong, free.raw, "{said}: {:?}", free.raw);
            let offered = [
                (wrong.clone(), "wrong".to_owned()),
                (free.raw.clone(), "free".to_owned()),
            ];
            let (read, scored) = run.read(&mut model, window, &offered, &|_| true).unwrap();
            let read = read.unwrap();
            eprintln!(
                "{said} (prompt {prompt:?}): free {:?} {:?}, read {read:?}",
                free.raw, free.score
            );
            assert_eq!(scored, 2);
            assert_eq!(read.raw, free.raw, "{said}");
            let (r, f) = (read.score.unwrap(), free.score.unwrap());
            assert!((r - f).abs() < 0.02, "{said}: score {r} against {f}");
            // Alone, the wrong reading scores lower; one that is not acceptable is not scored.
            let (alone, _) = run
                .read(&mut model, window, &offered[..1], &|_| true)
                .unwrap();
            assert!(alone.unwrap().score.unwrap() < f - 0.1, "{said}");
            let (none, scored) = run.read(&mut model, window, &offered, &|_| false).unwrap();
            assert!(none.is_none() && scored == 0);
        }
    }
}
