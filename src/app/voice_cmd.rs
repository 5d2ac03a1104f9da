//! `atlas model ...`, `atlas transcribe`, `atlas say`, `atlas listen`: the voice commands.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;

use super::{Global, build};
use atlas::config::{self, Config, Paths};
use atlas::model;
use atlas::runtime::Runtime;
use atlas::stt::{SttConfig, Transcriber};
use atlas::tts::espeak::Espeak;
use atlas::tts::{Speaker, WavFileSpeaker};
use atlas::voice::{MeteredSpeaker, VoiceLoop};

/// Finds the whisper model: `--model` (a path or a catalog name), else `ATLAS_MODEL`, else
/// config's `voice.model`, else the best installed English model.
pub fn resolve_model(arg: Option<&str>, config: &Config, paths: &Paths) -> anyhow::Result<PathBuf> {
    Ok(atlas::runtime::resolve_model(arg, config, paths)?)
}

pub(super) fn transcriber(config: &Config, model: PathBuf) -> Transcriber {
    Transcriber::new(SttConfig::for_voice(model, &config.voice))
}

/// `atlas model list`.
pub fn model_list(global: &Global, as_json: bool) -> anyhow::Result<()> {
    let (config, paths) = config::load(global.config.as_deref(), global.data_dir.as_deref())?;
    let installed = model::installed(&paths.models());
    let active = resolve_model(None, &config, &paths).ok();
    let rows: Vec<serde_json::Value> = model::CATALOG
        .iter()
        .map(|e| {
            let path = paths.models().join(e.file_name);
            let is_installed = installed.iter().any(|i| i.path == path);
            json!({
                "name": e.name, "file": e.file_name, "size": e.size, "language": e.language.as_str(),
                "sha1": e.sha1, "installed": is_installed,
                "active": active.as_deref() == Some(path.as_path()),
            })
        })
        .collect();
    let others: Vec<serde_json::Value> = installed
        .iter()
        .filter(|i| i.catalog.is_none())
        .map(|i| json!({"name": i.name, "path": i.path, "size": i.size, "active": active.as_deref() == Some(i.path.as_path())}))
        .collect();
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"models": rows, "other_installed": others, "dir": paths.models()})
            )?
        );
        return Ok(());
    }
    println!("whisper models (folder {}):", paths.models().display());
    for r in &rows {
        let mark = match (r["active"].as_bool(), r["installed"].as_bool()) {
            (Some(true), _) => "* active",
            (_, Some(true)) => "  installed",
            _ => "",
        };
        println!(
            "  {:<22} {:>8.1} MB  {:<12} sha1 {}  {mark}",
            r["name"].as_str().unwrap_or(""),
            r["size"].as_u64().unwrap_or(0) as f64 / 1e6,
            r["language"].as_str().unwrap_or(""),
            r["sha1"].as_str().unwrap_or(""),
        );
    }
    for o in &others {
        let mark = if o["active"].as_bool() == Some(true) {
            "* active"
        } else {
            "  installed"
        };
        println!(
            "  {:<22} {} {mark}",
            o["name"].as_str().unwrap_or(""),
            o["path"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

/// `atlas model probe NAME`: whether the model's file answers within `timeout_secs`.
pub async fn model_probe(
    global: &Global,
    name: &str,
    base_url: Option<&str>,
    timeout_secs: u64,
) -> anyhow::Result<bool> {
    let (config, _) = config::load(global.config.as_deref(), global.data_dir.as_deref())?;
    let base = base_url
        .map(str::to_owned)
        .or(config.model_base_url.clone())
        .unwrap_or_else(|| model::DEFAULT_BASE_URL.to_owned());
    let entry = model::catalog::find(name)
        .with_context(|| format!("no model `{name}`; `atlas model list` shows the catalog"))?;
    let url = format!("{}/{}", base.trim_end_matches('/'), entry.file_name);
    match model::probe(&url, Duration::from_secs(timeout_secs.max(1))).await {
        Ok(()) => {
            println!("{name}: reachable");
            Ok(true)
        }
        Err(e) => {
            println!("{name}: {e}");
            Ok(false)
        }
    }
}

/// `atlas model download NAME`.
pub async fn model_download(
    global: &Global,
    name: &str,
    base_url: Option<&str>,
) -> anyhow::Result<()> {
    let (config, paths) = config::load(global.config.as_deref(), global.data_dir.as_deref())?;
    let base = base_url
        .map(str::to_owned)
        .or(config.model_base_url.clone())
        .unwrap_or_else(|| model::DEFAULT_BASE_URL.to_owned());
    let last = std::sync::Mutex::new(Instant::now() - Duration::from_secs(1));
    let progress = |done: u64, total: Option<u64>| {
        let mut l = last.lock().unwrap_or_else(|e| e.into_inner());
        if l.elapsed() < Duration::from_millis(200) && total != Some(done) {
            return;
        }
        *l = Instant::now();
        let bar = match total {
            Some(t) if t > 0 => {
                let filled = ((done as f64 / t as f64) * 30.0) as usize;
                format!(
                    "[{}{}] {:5.1}%",
                    "#".repeat(filled.min(30)),
                    " ".repeat(30 - filled.min(30)),
                    done as f64 * 100.0 / t as f64
                )
            }
            _ => String::new(),
        };
        eprint!("\r{name}: {bar} {:.1} MB", done as f64 / 1e6);
        let _ = std::io::stderr().flush();
    };
    let path = model::download::download(name, &base, &paths.models(), &progress).await;
    eprintln!();
    let path = path?;
    println!("installed {}", path.display());
    Ok(())
}

/// `atlas model import DIR [--out FILE] [--quantize f16|q8_0]`.
pub async fn model_import(
    global: &Global,
    dir: &Path,
    out: Option<&Path>,
    weights: model::WeightType,
) -> anyhow::Result<()> {
    let (_, paths) = config::load(global.config.as_deref(), global.data_dir.as_deref())?;
    let out = match out {
        Some(o) => o.to_path_buf(),
        None => {
            let name = dir
                .file_name()
                .map(|n| {
                    n.to_string_lossy()
                        .trim_start_matches("faster-whisper-")
                        .to_owned()
                })
                .unwrap_or_else(|| "imported".into());
            let suffix = match weights {
                model::WeightType::F16 => String::new(),
                other => format!("-{}", other.name()),
            };
            paths.models().join(format!("ggml-{name}{suffix}.bin"))
        }
    };
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let (d, o) = (dir.to_path_buf(), out.clone());
    let report =
        tokio::task::spawn_blocking(move || model::import_ct2_as(&d, &o, weights)).await??;
    println!(
        "imported {} model: {} tensors, {} bytes -> {}",
        report.model_type,
        report.tensors,
        report.bytes,
        out.display()
    );
    Ok(())
}

/// `atlas transcribe WAV`.
pub async fn transcribe(
    global: &Global,
    wav: &Path,
    model_arg: Option<&str>,
    as_json: bool,
) -> anyhow::Result<()> {
    let (config, paths) = config::load(global.config.as_deref(), global.data_dir.as_deref())?;
    let model = resolve_model(model_arg, &config, &paths)?;
    let samples = atlas::audio::read_wav_16k_mono(wav)?;
    let t = transcriber(&config, model);
    let out = t.transcribe(samples, None).await?;
    if as_json {
        println!(
            "{}",
            json!({"text": out.text, "audio_ms": out.audio_ms, "stt_ms": out.stt_ms})
        );
    } else {
        println!("{}", out.text);
    }
    Ok(())
}

pub(super) fn speaker_for(config: &Config, out: Option<&Path>) -> anyhow::Result<Arc<dyn Speaker>> {
    Ok(match out {
        Some(p) => Arc::new(WavFileSpeaker::create(
            p,
            Espeak::from_config(&config.speech),
        )?),
        None => atlas::tts::default_speaker(&config.speech),
    })
}

/// `atlas say TEXT [--out WAV]`.
pub async fn say(global: &Global, text: &str, out: Option<&Path>) -> anyhow::Result<()> {
    let (config, _) = config::load(global.config.as_deref(), global.data_dir.as_deref())?;
    let (cfg, out_owned) = (config.clone(), out.map(Path::to_path_buf));
    let speaker =
        tokio::task::spawn_blocking(move || speaker_for(&cfg, out_owned.as_deref())).await??;
    let outcome = speaker.speak(text).await?;
    if let Some(why) = &outcome.unvoiced {
        anyhow::bail!("nothing was said: {why}");
    }
    if let Some(p) = out {
        println!("wrote {}", p.display());
    } else {
        eprintln!("spoke with {}", outcome.backend);
    }
    Ok(())
}

/// Where `atlas listen` gets its utterance.
pub enum Input {
    /// A WAV file.
    Wav(PathBuf),
    /// The microphone, for this long.
    Mic(Duration),
    /// A typed command: no audio, no whisper.
    Text(String),
}

/// Options of `atlas listen`.
pub struct ListenOpts {
    /// The utterance.
    pub input: Input,
    /// Write the reply to this WAV instead of the speaker.
    pub speak_to: Option<PathBuf>,
    /// `--model`.
    pub model: Option<String>,
    /// `--json`.
    pub json: bool,
    /// `--explain`.
    pub explain: bool,
}

/// `atlas listen`: one utterance, handled end to end. `Ok(false)` (exit status 1) only for a
/// typed command that started no workflow or whose run did not succeed; audio that matched
/// nothing is an answer ("no workflow"), not a failure.
pub async fn listen(global: &Global, opts: ListenOpts) -> anyhow::Result<bool> {
    let (config, paths) = config::load(global.config.as_deref(), global.data_dir.as_deref())?;
    let typed = matches!(opts.input, Input::Text(_));
    // A typed command never loads the model, so it works where none is installed.
    let model = match resolve_model(opts.model.as_deref(), &config, &paths) {
        Ok(m) => m,
        Err(_) if typed => PathBuf::new(),
        Err(e) => return Err(e),
    };
    let (cfg, out) = (config.clone(), opts.speak_to.clone());
    let inner = tokio::task::spawn_blocking(move || speaker_for(&cfg, out.as_deref())).await??;
    let speaker = MeteredSpeaker::new(inner);
    let Runtime { engine, report, .. } = build(global, speaker.clone())?;
    super::warn_load_errors(&report);
    let t = transcriber(&config, model);
    let voice = VoiceLoop::new(engine.clone(), t.clone(), speaker, config.voice.clone())?;
    let mut handled = match opts.input {
        Input::Text(ref text) => voice.handle_text(text).await,
        Input::Wav(_) | Input::Mic(_) => {
            let (samples, released) = {
                // Load the model while the audio is read or recorded, as the agent does while
                // the key is held.
                let preload = {
                    let t = t.clone();
                    tokio::spawn(async move { t.preload().await })
                };
                let samples = read_input(&opts.input, &config).await?;
                let released = Instant::now();
                preload.await??;
                (samples, released)
            };
            voice.handle(samples, released).await?
        }
    };
    if handled.asked.is_some() {
        answer_from_stdin(&voice, &engine, &mut handled).await?;
    }
    engine.store().flush().await?;
    print_handled(&handled, opts.json, opts.explain)?;
    let succeeded = handled
        .run
        .as_ref()
        .is_some_and(|r| r.status == "succeeded");
    Ok(!typed || succeeded)
}

/// The run `handled` started asked a question: one-shot `atlas listen` takes the answer as a
/// line of standard input (none when it is closed: the question then runs out), and waits for
/// the run to end so it is not left half done when the process exits.
async fn answer_from_stdin(
    voice: &VoiceLoop,
    engine: &atlas::engine::Engine,
    handled: &mut atlas::voice::Handled,
) -> anyhow::Result<()> {
    let Some(run) = handled.run.clone() else {
        return Ok(());
    };
    eprintln!("answer (a line; none leaves the question unanswered):");
    // Bounded: the question waits at most its own `wait`, the rest of the run its timeout.
    let deadline = Instant::now() + atlas::actions::MAX_ASK_TIMEOUT + Duration::from_secs(60);
    let ended = async {
        while engine.active_runs().contains(&run.id) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    // A terminal nobody types into must not hold the run's end: the read races the run, which
    // ends on its own when the question's `wait` runs out. The blocked read is left behind; the
    // process exits after printing.
    let read = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    });
    tokio::pin!(ended);
    tokio::select! {
        line = read => {
            let line = line??;
            if !line.trim().is_empty() {
                voice.handle_text(line.trim()).await;
            }
            ended.await;
        }
        () = &mut ended => {}
    }
    engine.store().flush().await?;
    if let Some(r) = engine.store().get_run(&run.id)? {
        handled.run = Some(atlas::voice::RunInfo {
            id: r.id,
            status: r.status.to_string(),
            error: r.error,
        });
    }
    // What the run said after the question (its history keeps what each `speak` said).
    let actions = engine.store().run_actions(&run.id)?;
    let asked_at = actions
        .iter()
        .filter(|a| a.kind == "ask")
        .map(|a| a.seq)
        .max();
    let after: Vec<String> = actions
        .into_iter()
        .filter(|a| a.kind == "speak" && Some(a.seq) > asked_at)
        .filter_map(|a| a.output?["text"].as_str().map(str::to_owned))
        .collect();
    if !after.is_empty() {
        let asked = handled.reply.take().unwrap_or_default();
        handled.reply = Some(format!("{asked} {}", after.join(" ")).trim().to_owned());
    }
    Ok(())
}

/// The samples of a WAV or microphone input.
async fn read_input(input: &Input, config: &Config) -> anyhow::Result<Vec<f32>> {
    match input {
        Input::Wav(p) => Ok(atlas::audio::read_wav_16k_mono(p)?),
        Input::Mic(d) => {
            let capture = atlas::audio::CaptureConfig {
                device: config.voice.input_device.clone(),
                max_seconds: config.voice.max_seconds,
                keep_warm: false,
            };
            let d = *d;
            let rec = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
                let mut r = atlas::audio::Recorder::open(&capture)?;
                eprintln!(
                    "listening for {:.1} s on {}",
                    d.as_secs_f64(),
                    r.device_name()
                );
                Ok(r.record_for(d)?)
            })
            .await??;
            Ok(rec.samples)
        }
        Input::Text(_) => anyhow::bail!("a typed command has no audio"),
    }
}

/// Prints what became of an utterance: JSON (with the candidates under `--explain`) or lines.
fn print_handled(
    handled: &atlas::voice::Handled,
    as_json: bool,
    explain: bool,
) -> anyhow::Result<()> {
    if as_json {
        let mut v = serde_json::to_value(handled)?;
        if explain && let Some(o) = &handled.outcome {
            v["candidates"] = serde_json::to_value(&o.candidates)?;
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "heard: {}",
        if handled.transcript.is_empty() {
            "(nothing)"
        } else {
            &handled.transcript
        }
    );
    match (&handled.workflow, &handled.run) {
        (Some(w), Some(r)) => println!(
            "workflow: {w} (score {:.2}) -> run {} {}",
            handled.score.unwrap_or(0.0),
            r.id,
            r.status
        ),
        _ => println!("no workflow: {}", handled.reason.as_deref().unwrap_or("")),
    }
    if let Some(r) = &handled.reply {
        println!("reply: {r}");
    }
    if explain && let Some(o) = &handled.outcome {
        println!("{}", o.explain());
    }
    Ok(())
}
