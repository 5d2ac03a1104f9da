//! The `atlas` command: parses arguments, sets up logging, calls into `atlas::app`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use atlas::app::{self, Global};
use atlas::redact::RedactingLogs;

#[derive(Parser)]
#[command(
    name = "atlas",
    version,
    about = "Local-first, voice-first assistant with a workflow engine"
)]
struct Cli {
    /// The config file (default: the platform config dir's atlas/config.toml).
    #[arg(long, global = true, env = "ATLAS_CONFIG")]
    config: Option<PathBuf>,
    /// Where the database and logs live (default: the platform data dir).
    #[arg(long, global = true, env = "ATLAS_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// An extra workflow folder (repeatable).
    #[arg(long = "workflows", global = true)]
    workflows: Vec<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the resident agent (the engine, its triggers and schedules) until stopped.
    Daemon,
    /// Whether a daemon runs, its state, the active model, the next scheduled runs.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Start Atlas with the desktop session (systemd user unit or XDG autostart).
    #[command(subcommand)]
    Service(ServiceCmd),
    /// Work with workflows.
    #[command(subcommand)]
    Workflow(WorkflowCmd),
    /// Manage whisper models.
    #[command(subcommand)]
    Model(ModelCmd),
    /// Transcribe a WAV file with the local whisper model.
    Transcribe {
        /// The WAV file (any rate and channel count).
        wav: PathBuf,
        /// Whisper model: a catalog name or a file.
        #[arg(long, env = "ATLAS_MODEL")]
        model: Option<String>,
        /// Machine-readable output: {"text", "audio_ms", "stt_ms"}.
        #[arg(long)]
        json: bool,
    },
    /// Say something out loud (or into a WAV file).
    Say {
        /// What to say.
        text: String,
        /// Write the speech to this WAV file instead of the speaker.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Handle one utterance: transcribe, match a workflow, run it, speak the reply.
    Listen {
        /// Read the utterance from a WAV file.
        #[arg(long, conflicts_with = "mic", required_unless_present = "mic")]
        wav: Option<PathBuf>,
        /// Record the utterance from the microphone.
        #[arg(long)]
        mic: bool,
        /// How long to record with --mic.
        #[arg(long, default_value_t = 5.0, requires = "mic")]
        seconds: f64,
        /// Write the spoken reply to this WAV file instead of the speaker.
        #[arg(long)]
        speak_to: Option<PathBuf>,
        /// Whisper model: a catalog name or a file.
        #[arg(long, env = "ATLAS_MODEL")]
        model: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Show the match candidates and their scores.
        #[arg(long)]
        explain: bool,
    },
    /// Measure performance.
    #[command(subcommand)]
    Bench(BenchCmd),
}

#[derive(Subcommand)]
enum ServiceCmd {
    /// Write and enable the unit (or autostart entry).
    Install,
    /// Remove it.
    Uninstall,
}

#[derive(Subcommand)]
enum ModelCmd {
    /// The catalog of whisper.cpp models, with what is installed and active.
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Download a whisper.cpp model (resumes a partial download, checks its SHA-1).
    Download {
        /// Model name, e.g. tiny.en, base.en, small.en.
        name: String,
        /// Where to download from (default: whisper.cpp's published files).
        #[arg(long)]
        base_url: Option<String>,
    },
    /// Check once, quickly, that a model can be downloaded (exit status 1 and the reason if not).
    Probe {
        /// Model name, e.g. base.en.
        name: String,
        /// Where to download from (default: whisper.cpp's published files).
        #[arg(long)]
        base_url: Option<String>,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 5)]
        timeout_secs: u64,
    },
    /// Convert a CTranslate2 (faster-whisper) model folder to a whisper.cpp model.
    Import {
        /// The folder holding model.bin and vocabulary.txt or tokenizer.json.
        dir: PathBuf,
        /// Output file (default: the models folder).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Store the weight matrices as f16 (as the source) or q8_0 (half the memory, faster).
        #[arg(long, default_value = "f16")]
        quantize: atlas::model::WeightType,
    },
}

#[derive(Subcommand)]
enum WorkflowCmd {
    /// List loaded workflows with their triggers and stats.
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Check workflow files (default: every loaded folder); exit 1 on any problem.
    Validate {
        /// Files or folders to check.
        paths: Vec<PathBuf>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Run a workflow to completion and print its result and what it said.
    Run {
        /// The workflow id.
        id: String,
        /// A variable, NAME=VALUE (VALUE is JSON if it parses, else text). Repeatable.
        #[arg(long = "var")]
        vars: Vec<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Do not speak; only print what would be said.
        #[arg(long)]
        silent: bool,
    },
    /// Recent runs, newest first.
    History {
        /// Only this workflow.
        id: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// One run with every action, output and error.
    ShowRun {
        /// The run id.
        run_id: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Delete old finished runs; without options, by `[history]` in config.toml.
    Prune {
        /// Delete finished runs older than this (e.g. 30d, 12h).
        #[arg(long)]
        older_than: Option<String>,
        /// Keep at most this many runs, newest first.
        #[arg(long)]
        keep: Option<u64>,
        /// Machine-readable output: {"runs", "actions"} removed.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Engine latency, throughput and memory.
    Engine {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Runs for the throughput figure.
        #[arg(long, default_value_t = 20000)]
        runs: usize,
    },
    /// The resident agent: press to recording, release to first audio, schedule lateness, idle memory.
    Agent {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Whisper model: a catalog name or a file.
        #[arg(long, env = "ATLAS_MODEL")]
        model: Option<String>,
    },
    /// Voice loop latency and memory, on a 2 s and a 6 s utterance.
    Voice {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Whisper model: a catalog name or a file.
        #[arg(long, env = "ATLAS_MODEL")]
        model: Option<String>,
        /// Repetitions per utterance.
        #[arg(long, default_value_t = 10)]
        reps: usize,
    },
}

/// Logs to stderr; the daemon also writes them to `<data dir>/logs/atlas.log.YYYY-MM-DD` (daily
/// files). Both pass through [`RedactingLogs`], so no secret a run read reaches a log line. The
/// returned guard flushes the file on drop.
fn init_tracing(
    daemon: bool,
    global: &Global,
) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer};
    let default = if daemon { "info" } else { "warn" };
    let filter =
        || EnvFilter::try_from_env("ATLAS_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(RedactingLogs(std::io::stderr))
        .with_filter(filter());
    let logs = daemon
        .then(|| atlas::config::load(global.config.as_deref(), global.data_dir.as_deref()).ok())
        .flatten()
        .map(|(_, paths)| paths.logs())
        .filter(|dir| std::fs::create_dir_all(dir).is_ok());
    let (file, guard) = match logs {
        Some(dir) => {
            let (writer, guard) =
                tracing_appender::non_blocking(tracing_appender::rolling::daily(dir, "atlas.log"));
            let layer = tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(RedactingLogs(writer))
                .with_filter(filter());
            (Some(layer), Some(guard))
        }
        None => (None, None),
    };
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .try_init();
    guard
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let global = Global {
        config: cli.config,
        data_dir: cli.data_dir,
        workflows: cli.workflows,
    };
    let daemon = matches!(cli.command, Command::Daemon);
    if daemon && std::env::var_os("GDK_GL").is_none() {
        // The tray icon draws no OpenGL, but GTK loads the GL driver to pick a visual: with
        // Mesa's software driver that maps 45 MB of LLVM into an idle daemon.
        // SAFETY: no other thread exists yet (the runtime and tracing start below).
        unsafe { std::env::set_var("GDK_GL", "disable") };
    }
    let _log_guard = init_tracing(daemon, &global);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: anyhow::Result<bool> = runtime.block_on(async {
        match cli.command {
            Command::Daemon => app::daemon(&global).await.map(|_| true),
            Command::Status { json } => app::status(&global, json),
            Command::Service(ServiceCmd::Install) => app::service::install().map(|done| {
                for p in &done.files {
                    println!("wrote {}", p.display());
                }
                for n in &done.notes {
                    println!("{n}");
                }
                true
            }),
            Command::Service(ServiceCmd::Uninstall) => app::service::uninstall().map(|done| {
                if done.files.is_empty() {
                    println!("nothing was installed");
                }
                for p in &done.files {
                    println!("removed {}", p.display());
                }
                for n in &done.notes {
                    println!("{n}");
                }
                true
            }),
            Command::Workflow(w) => match w {
                WorkflowCmd::List { json } => app::list(&global, json).map(|_| true),
                WorkflowCmd::Validate { paths, json } => app::validate(&global, &paths, json),
                WorkflowCmd::Run {
                    id,
                    vars,
                    json,
                    silent,
                } => app::run_workflow(&global, &id, &vars, json, silent).await,
                WorkflowCmd::History { id, limit, json } => {
                    app::history(&global, id.as_deref(), limit, json).map(|_| true)
                }
                WorkflowCmd::ShowRun { run_id, json } => {
                    app::show_run(&global, &run_id, json).map(|_| true)
                }
                WorkflowCmd::Prune {
                    older_than,
                    keep,
                    json,
                } => app::prune(&global, older_than.as_deref(), keep, json)
                    .await
                    .map(|_| true),
            },
            Command::Bench(BenchCmd::Engine { json, runs }) => {
                atlas::bench::engine(&global, runs, json)
                    .await
                    .map(|_| true)
            }
            Command::Bench(BenchCmd::Agent { json, model }) => {
                atlas::bench::agent(&global, model.as_deref(), json)
                    .await
                    .map(|_| true)
            }
            Command::Bench(BenchCmd::Voice { json, model, reps }) => {
                atlas::bench::voice(&global, model.as_deref(), reps, json)
                    .await
                    .map(|_| true)
            }
            Command::Model(ModelCmd::List { json }) => app::model_list(&global, json).map(|_| true),
            Command::Model(ModelCmd::Download { name, base_url }) => {
                app::model_download(&global, &name, base_url.as_deref())
                    .await
                    .map(|_| true)
            }
            Command::Model(ModelCmd::Probe {
                name,
                base_url,
                timeout_secs,
            }) => app::model_probe(&global, &name, base_url.as_deref(), timeout_secs).await,
            Command::Model(ModelCmd::Import { dir, out, quantize }) => {
                app::model_import(&global, &dir, out.as_deref(), quantize)
                    .await
                    .map(|_| true)
            }
            Command::Transcribe { wav, model, json } => {
                app::transcribe(&global, &wav, model.as_deref(), json)
                    .await
                    .map(|_| true)
            }
            Command::Say { text, out } => {
                app::say(&global, &text, out.as_deref()).await.map(|_| true)
            }
            Command::Listen {
                wav,
                mic,
                seconds,
                speak_to,
                model,
                json,
                explain,
            } => {
                let input = match (wav, mic) {
                    (Some(w), _) => app::Input::Wav(w),
                    _ => app::Input::Mic(std::time::Duration::from_secs_f64(seconds.max(0.5))),
                };
                let opts = app::ListenOpts {
                    input,
                    speak_to,
                    model,
                    json,
                    explain,
                };
                app::listen(&global, opts).await.map(|_| true)
            }
        }
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            // Errors are built from redacted parts; this is the last guard before the terminal.
            eprintln!(
                "error: {}",
                atlas::redact::process().text(&format!("{e:#}"))
            );
            ExitCode::FAILURE
        }
    }
}
