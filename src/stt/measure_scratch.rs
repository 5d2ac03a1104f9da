use std::time::Instant;
use whisper_rs::*;
use crate::audio::test_support::{espeak_16k, padded};

fn run(state: &mut WhisperState, clip: &[f32], ctx: i32, max_tokens: i32, threads: i32) -> (f64, String, i32) {
    let mut p = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
    super::whisper::tune_for_commands(&mut p, threads as usize, true);
    p.set_audio_ctx(ctx);
    p.set_max_tokens(max_tokens);
    let t = Instant::now();
    state.full(p, clip).unwrap();
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    let mut text = String::new();
    let mut n = 0;
    for s in state.as_iter() { text.push_str(&s.to_str_lossy().unwrap()); n += s.n_tokens(); }
    (ms, text, n)
}

#[test]
#[ignore]
fn measure() {
    let phrases = ["turn on the kitchen lights", "what is the weather like today", "pause the music", "brief me"];
    let clips: Vec<Vec<f32>> = phrases.iter().map(|p| padded(&espeak_16k(p, &[]).unwrap(), 0.2, 0.3)).collect();
    for c in &clips { eprintln!("clip {:.2}s", c.len() as f64 / 16000.0); }
    let home = std::env::var("HOME").unwrap();
    for model in ["ggml-tiny.en.bin", "ggml-tiny.en-q8_0.bin"] {
        for flash in [false, true] {
            let mut cp = WhisperContextParameters::default();
            cp.flash_attn(flash);
            let ctx = WhisperContext::new_with_params(&format!("{home}/.cache/atlas-test/{model}"), cp).unwrap();
            let mut st = ctx.create_state().unwrap();
            for threads in [1, 2] {
                for (label, floor) in [("floor512", 512), ("sized", 0)] {
                    let mut tot = 0.0; let mut enc = 0.0; let mut toks = 0;
                    let reps = 3;
                    let mut texts = vec![];
                    for c in &clips {
                        let a = super::text::audio_ctx_for(c.len(), floor, 64);
                        let mt = super::text::max_tokens_for(c.len());
                        run(&mut st, c, a, mt, threads); // warm
                        for _ in 0..reps {
                            let (ms, t, n) = run(&mut st, c, a, mt, threads);
                            tot += ms; toks += n;
                            if texts.len() < clips.len() { texts.push(t); }
                            let (ms1, _, _) = run(&mut st, c, a, 1, threads);
                            enc += ms1;
                        }
                    }
                    let k = (reps * clips.len()) as f64;
                    eprintln!("{model} flash={flash} threads={threads} {label}: full {:.1} ms, 1-token {:.1} ms, tokens {:.1} -> per token {:.2} ms  {:?}",
                        tot / k, enc / k, toks as f64 / k, (tot - enc) / (toks as f64 - k), texts);
                }
            }
        }
    }
}

#[test]
#[ignore]
fn sweep() {
    let phrases = ["turn on the kitchen lights", "what is the weather like today", "pause the music", "brief me",
        "set a timer for ten minutes", "what is the price of solana", "lock the front door", "play some jazz in the living room"];
    let voices: [&[&str]; 3] = [&[], &["-v", "en-gb", "-s", "150"], &["-v", "en-us+f3", "-s", "190"]];
    let home = std::env::var("HOME").unwrap();
    let ctx = WhisperContext::new_with_params(&format!("{home}/.cache/atlas-test/ggml-tiny.en-q8_0.bin"), WhisperContextParameters::default()).unwrap();
    let mut st = ctx.create_state().unwrap();
    for extra in [0, 64, 128, 192, 256] {
        let (mut reps, mut n, mut ms) = (0, 0, 0.0);
        for v in voices { for p in phrases {
            let c = padded(&espeak_16k(p, v).unwrap(), 0.2, 0.3);
            let a = (super::text::audio_ctx_for(c.len(), 0, 64) + extra).min(1500);
            let (t, text, _) = run(&mut st, &c, a, super::text::max_tokens_for(c.len()), 2);
            ms += t; n += 1;
            let clean = super::transcript::clean_transcript(&text);
            if clean.len() + 2 < text.trim().len() { reps += 1; }
            if extra == 0 || extra == 128 { eprintln!("  +{extra} ctx {a}: {text:?}"); }
        }}
        eprintln!("extra {extra}: repeats {reps}/{n}, mean {:.1} ms", ms / n as f64);
    }
}
