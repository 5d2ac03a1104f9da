//! The command-line edge: [`run`] carries out a parsed [`cli::Cli`] and turns the library's
//! typed errors into messages and exit codes.
//!
//! This is the `atlas` binary's own module, not library API: everything below it is the
//! library, and this is the only place with `anyhow` and with printing for people. `bench`
//! (`atlas bench ...`) lives here because it drives the whole product from outside, as a user
//! would.

mod bench;
pub mod cli;
mod daemon_cmd;
mod dashboard_cmd;
mod history;
mod integration_cmd;
mod logging;
mod mcp_cmd;
mod secret_cmd;
mod service;
mod voice_cmd;
mod workflow_cmd;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use atlas::config::{self, Config, Paths};
use atlas::runtime::Runtime;
use atlas::tts::Speaker;
use atlas::workflow::LoadReport;

pub use voice_cmd::resolve_model;

use cli::{ApiCmd, BenchCmd, Cli, Command, McpCmd, ModelCmd, ServiceCmd, WorkflowCmd};

/// Options every command shares.
#[derive(Debug, Clone, Default)]
pub struct Global {
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--workflows`: extra workflow folders.
    pub workflows: Vec<PathBuf>,
}

/// Carries out one command line: logging, the async runtime, the command, its exit code.
pub fn run(cli: Cli) -> ExitCode {
    let global = cli.global();
    let daemon = matches!(cli.command, Command::Daemon);
    if daemon && std::env::var_os("GDK_GL").is_none() {
        // The tray icon draws no OpenGL, but GTK loads the GL driver to pick a visual: with
        // Mesa's software driver that maps 45 MB of LLVM into an idle tray. The tray helper
        // inherits this.
        // SAFETY: no other thread exists yet (the runtime and tracing start below).
        unsafe { std::env::set_var("GDK_GL", "disable") };
    }
    let _log_guard = logging::init_tracing(daemon, &global);
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
    let result = runtime.block_on(command(cli.command, &global));
    // Dropping the runtime would wait for every blocking task, a read of a terminal nobody types
    // into too (`atlas listen` leaves one behind when the question runs out): bounded instead.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
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

/// One command; `Ok(false)` is a command that ran and reports failure (exit status 1).
async fn command(command: Command, global: &Global) -> anyhow::Result<bool> {
    match command {
        Command::Daemon => daemon_cmd::daemon(global).await.map(|_| true),
        Command::Status { json } => daemon_cmd::status(global, json),
        Command::Service(cmd) => service_command(cmd),
        Command::Workflow(cmd) => workflow_command(cmd, global).await,
        Command::Bench(cmd) => bench_command(cmd, global).await.map(|_| true),
        Command::Dashboard { open } => dashboard_cmd::run(global, open).await,
        Command::Api(ApiCmd::Token) => {
            let (_, paths) = load(global)?;
            println!("{}", atlas::api::token::load_or_create(&paths.data_dir)?);
            Ok(true)
        }
        Command::Model(cmd) => model_command(cmd, global).await,
        Command::Secret(cmd) => secret_cmd::run(cmd).await,
        Command::Integration(cmd) => integration_cmd::run(cmd, global).await,
        Command::Mcp { cmd } => match cmd.unwrap_or(McpCmd::Serve) {
            McpCmd::Serve => mcp_cmd::serve(global).await.map(|_| true),
            McpCmd::Tools {
                server,
                timeout,
                json,
            } => mcp_cmd::tools(global, server.as_deref(), timeout, json).await,
        },
        Command::Transcribe { wav, model, json } => {
            voice_cmd::transcribe(global, &wav, model.as_deref(), json)
                .await
                .map(|_| true)
        }
        Command::Say { text, out } => voice_cmd::say(global, &text, out.as_deref())
            .await
            .map(|_| true),
        Command::Listen {
            wav,
            text,
            mic: _,
            seconds,
            speak_to,
            model,
            json,
            explain,
        } => {
            let input = match (wav, text) {
                (Some(w), _) => voice_cmd::Input::Wav(w),
                (_, Some(t)) => voice_cmd::Input::Text(t),
                _ => voice_cmd::Input::Mic(std::time::Duration::from_secs_f64(seconds.max(0.5))),
            };
            let opts = voice_cmd::ListenOpts {
                input,
                speak_to,
                model,
                json,
                explain,
            };
            voice_cmd::listen(global, opts).await
        }
    }
}

fn service_command(cmd: ServiceCmd) -> anyhow::Result<bool> {
    let install = matches!(cmd, ServiceCmd::Install);
    let done = if install {
        service::install()?
    } else {
        service::uninstall()?
    };
    if !install && done.files.is_empty() {
        println!("nothing was installed");
    }
    let verb = if install { "wrote" } else { "removed" };
    for p in &done.files {
        println!("{verb} {}", p.display());
    }
    for n in &done.notes {
        println!("{n}");
    }
    Ok(true)
}

async fn workflow_command(cmd: WorkflowCmd, global: &Global) -> anyhow::Result<bool> {
    match cmd {
        WorkflowCmd::List { json } => workflow_cmd::list(global, json).map(|_| true),
        WorkflowCmd::Validate { paths, json } => workflow_cmd::validate(global, &paths, json),
        WorkflowCmd::Run {
            id,
            vars,
            json,
            silent,
        } => workflow_cmd::run_workflow(global, &id, &vars, json, silent).await,
        WorkflowCmd::History { id, limit, json } => {
            workflow_cmd::history(global, id.as_deref(), limit, json).map(|_| true)
        }
        WorkflowCmd::ShowRun { run_id, json } => {
            workflow_cmd::show_run(global, &run_id, json).map(|_| true)
        }
        WorkflowCmd::Prune {
            older_than,
            keep,
            json,
        } => history::prune(global, older_than.as_deref(), keep, json)
            .await
            .map(|_| true),
    }
}

async fn bench_command(cmd: BenchCmd, global: &Global) -> anyhow::Result<()> {
    match cmd {
        BenchCmd::Api {
            json,
            deliveries,
            clients,
        } => bench::api(deliveries, clients, json).await,
        BenchCmd::Engine { json, runs } => bench::engine(global, runs, json).await,
        BenchCmd::Agent { json, model } => bench::agent(global, model.as_deref(), json).await,
        BenchCmd::Voice { json, model, reps } => {
            bench::voice(global, model.as_deref(), reps, json).await
        }
        BenchCmd::Accuracy {
            json,
            model,
            limit,
            full,
            corpus,
            cache,
            text,
            dump,
            gate,
        } => {
            let opts = bench::AccuracyOpts {
                model,
                limit,
                full,
                corpus,
                cache,
                json,
                text,
                dump,
                gate,
            };
            bench::accuracy(global, opts).await
        }
    }
}

async fn model_command(cmd: ModelCmd, global: &Global) -> anyhow::Result<bool> {
    match cmd {
        ModelCmd::List { json } => voice_cmd::model_list(global, json).map(|_| true),
        ModelCmd::Download { name, base_url } => {
            voice_cmd::model_download(global, &name, base_url.as_deref())
                .await
                .map(|_| true)
        }
        ModelCmd::Probe {
            name,
            base_url,
            timeout_secs,
        } => voice_cmd::model_probe(global, &name, base_url.as_deref(), timeout_secs).await,
        ModelCmd::Import { dir, out, quantize } => {
            voice_cmd::model_import(global, &dir, out.as_deref(), quantize)
                .await
                .map(|_| true)
        }
    }
}

/// Reads config.toml and resolves the paths; `--workflows` folders are added to the config's.
pub fn load(global: &Global) -> anyhow::Result<(Config, Paths)> {
    let (mut config, paths) = config::load(global.config.as_deref(), global.data_dir.as_deref())?;
    config
        .workflow_dirs
        .extend(global.workflows.iter().cloned());
    Ok((config, paths))
}

/// Reads config, opens the store, loads workflows and builds the engine.
pub fn build(global: &Global, speaker: Arc<dyn Speaker>) -> anyhow::Result<Runtime> {
    let (config, paths) = load(global)?;
    Ok(Runtime::build(config, paths, speaker)?)
}

/// Prints load warnings and errors to stderr, one per line.
pub fn warn_load_errors(report: &LoadReport) {
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    for e in &report.errors {
        eprintln!("warning: {e}");
    }
    if !report.errors.is_empty() {
        eprintln!(
            "warning: {} problem(s) in workflow files; those workflows are not loaded (`atlas workflow validate` lists them)",
            report.errors.len()
        );
    }
}

/// SIGINT and SIGTERM, caught from the moment this is made: a signal that arrives while the
/// daemon is still starting up waits here instead of killing the process.
pub struct ShutdownSignal {
    signals: Vec<tokio::signal::unix::Signal>,
}

impl ShutdownSignal {
    /// Starts catching the signals.
    pub fn listen() -> ShutdownSignal {
        use tokio::signal::unix::{SignalKind, signal};
        let signals = [SignalKind::interrupt(), SignalKind::terminate()]
            .into_iter()
            .filter_map(|k| signal(k).ok())
            .collect();
        ShutdownSignal { signals }
    }

    /// Waits for the first of them.
    pub async fn recv(&mut self) {
        if self.signals.is_empty() {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
        let waits = self.signals.iter_mut().map(|s| Box::pin(s.recv()));
        futures::future::select_all(waits).await;
    }
}
