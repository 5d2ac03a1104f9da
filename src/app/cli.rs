//! The command line: clap's types for every command and option. Parsing only; [`super::run`]
//! carries the commands out.

use std::path::PathBuf;

use atlas::model::WeightType;
use clap::{Parser, Subcommand};

use super::Global;

// The `atlas` command line. (Plain comments on these types: clap turns doc comments into help.)
#[derive(Parser)]
#[command(
    name = "atlas",
    version,
    about = "Local-first, voice-first assistant with a workflow engine"
)]
pub struct Cli {
    /// The config file (default: the platform config dir's atlas/config.toml).
    #[arg(long, global = true, env = "ATLAS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where the database and logs live (default: the platform data dir).
    #[arg(long, global = true, env = "ATLAS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// An extra workflow folder (repeatable).
    #[arg(long = "workflows", global = true)]
    pub workflows: Vec<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

// A command.
#[derive(Subcommand)]
pub enum Command {
    /// Run the resident agent (the engine, its triggers and schedules) until stopped.
    Daemon,
    /// Whether a daemon runs, its state, the active model, the next scheduled runs.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Print a one-time login link to the daemon's dashboard (valid 60 s, used once).
    Dashboard {
        /// Open it in the web browser too (`xdg-open`).
        #[arg(long)]
        open: bool,
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
        #[arg(long, conflicts_with_all = ["mic", "text"], required_unless_present_any = ["mic", "text"])]
        wav: Option<PathBuf>,
        /// A typed command, matched and run as if it had been heard (no whisper); exit status 1
        /// when no workflow matched it or its run did not succeed.
        #[arg(long, conflicts_with = "mic")]
        text: Option<String>,
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
    /// The daemon's control API.
    #[command(subcommand)]
    Api(ApiCmd),
    /// Accounts Atlas signs in to (gmail, calendar): connect, disconnect, status.
    #[command(subcommand)]
    Integration(IntegrationCmd),
    /// Secrets in the OS keyring (API keys workflows read as `secrets.NAME`).
    #[command(subcommand)]
    Secret(SecretCmd),
    /// Atlas as an MCP server on stdin/stdout (for AI clients); `atlas mcp tools` lists the
    /// tools of the MCP servers in config.toml.
    Mcp {
        /// What to do (default: serve over stdio).
        #[command(subcommand)]
        cmd: Option<McpCmd>,
    },
}

// `atlas mcp ...`.
#[derive(Subcommand)]
pub enum McpCmd {
    /// Serve MCP on stdin and stdout (the default): tools and resources over the workflows.
    Serve,
    /// List the tools each configured MCP server ([mcp.servers] in config.toml) offers.
    Tools {
        /// Only this server.
        server: Option<String>,
        /// Give up on a server after this many seconds.
        #[arg(long, default_value_t = 15)]
        timeout: u64,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

// `atlas integration ...`.
#[derive(Subcommand)]
pub enum IntegrationCmd {
    /// Every integration with its state.
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Sign in: opens the browser (or prints the URL) and waits for the redirect; or, with
    /// `--token`, stores a token (or API key and secret) typed at a prompt or piped on stdin.
    Connect {
        /// gmail, calendar, github, slack, discord, notion, spotify or binance.
        name: String,
        /// Do not open a browser; only print the URL.
        #[arg(long)]
        no_browser: bool,
        /// Read a token from the prompt or stdin instead of signing in through the browser
        /// (github, discord, notion, slack; binance: the API key, then the secret).
        #[arg(long)]
        token: bool,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Revoke the tokens (where the provider can) and forget them.
    Disconnect {
        /// The integration.
        name: String,
    },
    /// One integration's state; checks it against the provider now (within 5 s).
    Status {
        /// The integration (default: all).
        name: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

// `atlas secret ...`.
#[derive(Subcommand)]
pub enum SecretCmd {
    /// Store a secret in the OS keyring; the value is read from a prompt (not echoed) or, when
    /// stdin is not a terminal, from stdin (one trailing newline is dropped). Never an argument.
    Set {
        /// The secret's name, e.g. openai_key (workflows read it as `secrets.openai_key`).
        name: String,
    },
    /// The names of the secrets in the OS keyring (never their values).
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Remove a secret from the OS keyring.
    Delete {
        /// The secret's name.
        name: String,
    },
}

// `atlas api ...`.
#[derive(Subcommand)]
pub enum ApiCmd {
    /// Prints the API's bearer token (made now if the daemon never started).
    Token,
}

// `atlas service ...`.
#[derive(Subcommand)]
pub enum ServiceCmd {
    /// Write and enable the unit (or autostart entry).
    Install,
    /// Remove it.
    Uninstall,
}

// `atlas model ...`.
#[derive(Subcommand)]
pub enum ModelCmd {
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
        quantize: WeightType,
    },
}

// `atlas workflow ...`.
#[derive(Subcommand)]
pub enum WorkflowCmd {
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

// `atlas bench ...`.
#[derive(Subcommand)]
pub enum BenchCmd {
    /// Webhook deliveries through the API on loopback: deliveries/s, accept latency.
    Api {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Deliveries to send.
        #[arg(long, default_value_t = 2000)]
        deliveries: usize,
        /// Concurrent clients.
        #[arg(long, default_value_t = 16)]
        clients: usize,
    },
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
    /// Voice loop accuracy on a generated corpus: per class, false starts, WER, confusions.
    Accuracy {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Whisper model: a catalog name or a file.
        #[arg(long, env = "ATLAS_MODEL")]
        model: Option<String>,
        /// Utterances to run, spread over the classes.
        #[arg(long, default_value_t = 200)]
        limit: usize,
        /// Run the whole corpus (several minutes more).
        #[arg(long, conflicts_with = "limit")]
        full: bool,
        /// The corpus folder (default: the source tree's bench/accuracy).
        #[arg(long)]
        corpus: Option<PathBuf>,
        /// Where the corpus manifest and WAVs are cached (default: ~/.cache/atlas/accuracy).
        #[arg(long)]
        cache: Option<PathBuf>,
        /// Each distinct text of the corpus typed instead of spoken: the matcher's share of the
        /// errors, without whisper's (all of them; `--limit` and `--full` do not apply).
        #[arg(long, conflicts_with_all = ["limit", "full", "model"])]
        text: bool,
        /// Also write every utterance's outcome (what was said, heard freely and guided,
        /// started) to this file, a JSON object a line.
        #[arg(long)]
        dump: Option<PathBuf>,
        /// Only the speech gate, on the sample (or with `--full` the whole corpus) and 96 more
        /// noise clips: how much speech it lets through and how much silence and noise it
        /// stops, per noise condition (no whisper, seconds).
        #[arg(long, conflicts_with_all = ["model", "text", "dump"])]
        gate: bool,
    },
}

impl Cli {
    /// The options every command shares.
    pub fn global(&self) -> Global {
        Global {
            config: self.config.clone(),
            data_dir: self.data_dir.clone(),
            workflows: self.workflows.clone(),
        }
    }
}
