//! The sections of `config.toml` that components read: plain data with their defaults. Each
//! component takes its section from here; `config` imports no component.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The default espeak-ng voice.
pub const DEFAULT_VOICE: &str = "en-us";

/// The default speaking rate, in words per minute (espeak-ng's own default is 175).
pub const DEFAULT_RATE: u32 = 175;

/// The default of `voice.agree_margin` (see `voice::AGREE_MARGIN`).
pub const DEFAULT_AGREE_MARGIN: f32 = 2.5;

/// The default of `voice.guided_forks`.
pub const DEFAULT_GUIDED_FORKS: usize = 0;

/// The default of `voice.readings`.
pub const DEFAULT_READINGS: usize = 3;

/// The default of `voice.prompt_chars`: about 90 tokens, well inside whisper's 223-token prompt
/// window, so a dozen workflows each get a sentence (at 200 characters, a thirteenth bundled
/// workflow pushed "What's the weather like today?" out of the prompt and tiny.en stopped
/// hearing it, before the grammar-guided pass existed).
pub const DEFAULT_PROMPT_CHARS: usize = 400;

/// `[voice]` in config.toml.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct VoiceConfig {
    /// Whisper model: a catalog name (`tiny.en`) or a path; default the best installed English
    /// model.
    pub model: Option<String>,
    /// Lowest match score that starts a workflow (0..1).
    pub threshold: f32,
    /// How far the best workflow must score above any other.
    pub margin: f32,
    /// What to say when nothing matched.
    pub not_understood: String,
    /// Send unmatched transcripts to the `llm` action and speak its answer.
    pub llm_fallback: bool,
    /// Unload the model after this many idle seconds (0 = never).
    pub idle_unload_secs: u64,
    /// Smallest whisper encoder window (in 20 ms frames); the window is the clip plus a margin,
    /// at least this. Default 512 (10 s): on `atlas bench accuracy` tiny.en heard commands
    /// right 57.5% of the time with it and 47.5% with the window sized to the clip (0), at
    /// about 1.3x the decode time; 768 was no better, the full 1500 worse (45%).
    pub audio_ctx_floor: i32,
    /// Guide whisper with a grammar of the workflows' phrases when its free transcript is not
    /// one of them; the guided transcript is taken only when whisper finds it nearly as likely,
    /// so speech that is none of the phrases stays as heard. Default on.
    pub grammar: bool,
    /// How much lower (mean log-probability per token) the guided transcript may score than the
    /// free one and still stand when the free text's nearest phrase is of the guided text's
    /// workflow (default 2.5; 0 turns this second chance off).
    pub agree_margin: f32,
    /// Input device name or id; default the system default.
    pub input_device: Option<String>,
    /// Longest recording, in seconds.
    pub max_seconds: u32,
    /// Quiet after speech, in milliseconds, at which the recording so far is decoded while the
    /// key is still held (a speculative decode, used at release when nothing was said after it);
    /// 0 turns speculative decoding off. Default 200: shorter than the usual delay between the
    /// last word and the key coming up, longer than most gaps between words; a pause that turns
    /// out to be mid-sentence only costs a background decode, which the next one aborts.
    pub speculate_pause_ms: u64,
    /// In toggle mode, seconds of silence after speech that end the recording as a second tap
    /// would; 0 turns it off. Default 1.2: longer than the hesitations people make inside a
    /// command (mostly under a second), short enough not to feel like waiting.
    pub silence_stop: f32,
    /// Longest initial prompt of the workflows' phrases handed to whisper, in characters
    /// (0: no prompt). Each prompt token goes through whisper's decoder on every decode, about
    /// 1 ms a token on 2 cores: see ARCHITECTURE.md for what it buys.
    pub prompt_chars: usize,
    /// Readings the grammar-guided decode tries besides whisper's greedy one: each forks where
    /// the model was least sure between two tokens the grammar allows and decodes on from there
    /// (on the encoding already made: a fork costs its remaining tokens, a few ms each). The best
    /// scoring reading stands. Default 0 (greedy alone): forks hear more commands right and
    /// also let more wrong readings through the margins; see ARCHITECTURE.md for the figures.
    pub guided_forks: usize,
    /// When whisper's free text is outside the phrases' grammar: how many of the phrases
    /// nearest to it (as the matcher aligns them: misheard and missing words as the phrase has
    /// them, list slots as the option chosen) are scored whole on the same encoding; the
    /// likeliest stands when it beats the guided decode and is close enough to the free text
    /// (see ARCHITECTURE.md; 0: none). Each costs its tokens' decoder steps, a few ms each.
    /// Default 3.
    pub readings: usize,
}

impl Default for VoiceConfig {
    fn default() -> Self {
        VoiceConfig {
            model: None,
            threshold: 0.75,
            margin: 0.1,
            not_understood: "Sorry, I didn't catch that.".into(),
            llm_fallback: false,
            idle_unload_secs: 300,
            audio_ctx_floor: 512,
            grammar: true,
            agree_margin: DEFAULT_AGREE_MARGIN,
            input_device: None,
            max_seconds: 30,
            speculate_pause_ms: 200,
            silence_stop: 1.2,
            prompt_chars: crate::config::DEFAULT_PROMPT_CHARS,
            guided_forks: DEFAULT_GUIDED_FORKS,
            readings: DEFAULT_READINGS,
        }
    }
}

/// Which speech backend to use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// The platform's speech service if it answers, else espeak-ng, else silence.
    #[default]
    Auto,
    /// The platform's speech service (speech-dispatcher on Linux).
    Native,
    /// espeak-ng rendering played by Atlas itself.
    Espeak,
    /// No sound: replies are only recorded (and printed by the CLI).
    None,
}

/// Speech settings, e.g. in `config.toml`:
///
/// ```toml
/// [speech]
/// backend = "auto"   # auto | native | espeak | none
/// voice = "en-us"    # espeak-ng voice, e.g. en-gb, en-us+f3
/// rate = 175         # words per minute, 80..=450
/// start_timeout_ms = 3000   # how long the speech service may take to answer
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpeakerConfig {
    /// Which backend to use.
    pub backend: BackendChoice,
    /// The voice: an espeak-ng voice name, or a native voice name or language.
    pub voice: String,
    /// Speaking rate in words per minute.
    pub rate: u32,
    /// How long the platform's speech service may take to answer at start-up before it is given
    /// up on (the audio output has its own bound, `tts::player::OPEN_LIMIT`).
    pub start_timeout_ms: u64,
}

impl Default for SpeakerConfig {
    fn default() -> Self {
        Self {
            backend: BackendChoice::Auto,
            voice: DEFAULT_VOICE.to_owned(),
            rate: DEFAULT_RATE,
            start_timeout_ms: 3000,
        }
    }
}

/// `[agent]` in config.toml.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// The push-to-talk combination, e.g. `ctrl+shift+space`.
    pub hotkey: String,
    /// `hold` (talk while the key is down) or `toggle` (press to start, press to stop).
    pub mode: PttMode,
    /// Presses shorter than this are ignored, in milliseconds.
    pub min_press_ms: u64,
    /// Show the tray icon.
    pub tray: bool,
    /// Play the listening chimes.
    pub chimes: bool,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            hotkey: "ctrl+shift+space".into(),
            mode: PttMode::Hold,
            min_press_ms: 250,
            tray: true,
            chimes: true,
        }
    }
}

/// How the push-to-talk key works.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PttMode {
    /// Record while held.
    #[default]
    Hold,
    /// Press to start, press again to stop.
    Toggle,
}

/// Defaults for `llm` actions, from config.toml's `[llm]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LlmDefaults {
    /// Base URL of the API, up to and including `/v1`.
    pub base_url: String,
    /// Model name.
    pub model: String,
    /// Name of the secret holding the API key (none for local servers).
    pub api_key_secret: Option<String>,
}

impl Default for LlmDefaults {
    fn default() -> Self {
        LlmDefaults {
            base_url: "http://127.0.0.1:11434/v1".into(),
            model: "llama3.2".into(),
            api_key_secret: None,
        }
    }
}

/// `[history]` in config.toml: which finished runs the daemon deletes (at start and hourly) and
/// `atlas workflow prune` deletes by default. A run goes when either bound says so; 0 turns a
/// bound off. Running, queued and paused runs are never deleted.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct HistoryConfig {
    /// Delete finished runs older than this many days (default 90).
    pub keep_days: u32,
    /// Keep at most this many runs, newest first (default 10,000).
    pub keep_runs: u64,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            keep_days: 90,
            keep_runs: 10_000,
        }
    }
}

/// Where workflows are loaded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkflowSource {
    /// Every `*.yaml`/`*.yml` file of a folder.
    Dir(PathBuf),
    /// The bundled workflows built into the program (`workflows/` of its source tree).
    Embedded,
}

/// `[api]` in config.toml: the daemon's HTTP server (the control API under `/v1`, webhooks under
/// `/hooks`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Where it listens (default `127.0.0.1:7077`). An address other than loopback exposes the
    /// webhooks to that network and is logged as a warning; `off` turns the server off.
    pub listen: String,
    /// The largest request body accepted, in bytes (default 1 MiB); larger ones get 413.
    pub max_body_bytes: usize,
    /// The built dashboard (`scripts/build-dashboard.sh` writes `dashboard/dist`); by default
    /// `dashboard` beside the `atlas` program, else the source tree's `dashboard/dist`.
    pub dashboard_dir: Option<std::path::PathBuf>,
}

/// The API's default address.
pub const DEFAULT_API_LISTEN: &str = "127.0.0.1:7077";

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: DEFAULT_API_LISTEN.into(),
            max_body_bytes: 1024 * 1024,
            dashboard_dir: None,
        }
    }
}

/// `[mcp]`: the external MCP servers workflows call through the `mcp` action.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct McpConfig {
    /// `[mcp.servers.NAME]`, by name (the `server` of an `mcp` action).
    pub servers: BTreeMap<String, McpServerConfig>,
}

/// One external MCP server: a program started over stdio (`command`, `args`) or a streamable
/// HTTP endpoint (`url`); exactly one of the two.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct McpServerConfig {
    /// The program to start; it speaks MCP on its stdin and stdout.
    pub command: Option<String>,
    /// Its arguments.
    pub args: Vec<String>,
    /// Environment variables set for the program (added to Atlas's own).
    pub env: BTreeMap<String, String>,
    /// A streamable HTTP endpoint, e.g. `http://127.0.0.1:8000/mcp`.
    pub url: Option<String>,
    /// The name of a secret (`ATLAS_SECRET_<NAME>`) sent as `Authorization: Bearer` to `url`.
    pub bearer_secret: Option<String>,
}

/// `[events]` in config.toml: the sources of `event` triggers the daemon starts.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// Folders whose files start `file.created` / `file.modified` / `file.removed` events
    /// (watched with their subfolders; nothing outside them is watched). Default: none.
    pub watch: Vec<std::path::PathBuf>,
    /// How long a file must stay quiet before its event is published, in milliseconds
    /// (default 300): a file written in many pieces is one event.
    pub debounce_ms: u64,
    /// Listen for desktop signals on D-Bus (session lock, suspend, network); default on.
    pub dbus: bool,
    /// How many times in any 60 s events other than the engine's (files, D-Bus, agent,
    /// integrations) may start one workflow (default 120): the bound on loops whose cause
    /// Atlas cannot see, such as a workflow writing into the folder it watches.
    pub max_starts_per_minute: usize,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            watch: Vec::new(),
            debounce_ms: 300,
            dbus: true,
            max_starts_per_minute: 120,
        }
    }
}

/// `[integrations]`: the accounts Atlas signs in to, and how often it checks them. Each
/// `[integrations.NAME]` is one provider's section, kept by name; which names exist is the
/// integrations' registry's to say (`integrations::check_config`, run when the runtime is
/// built), since config sits below it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct IntegrationsConfig {
    /// Seconds between the daemon's health checks of connected integrations (the first runs at
    /// start). Default 900.
    pub check_every_secs: u64,
    /// `[integrations.gmail]`, `[integrations.github]`, ...: each provider's section, by name.
    #[serde(flatten, deserialize_with = "provider_sections")]
    pub providers: BTreeMap<String, ProviderConfig>,
}

/// The provider sections, each error naming its section (a key of `[integrations]` that is not
/// `check_every_secs` lands here too, and is told where its settings belong).
fn provider_sections<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, ProviderConfig>, D::Error> {
    struct Sections;
    impl<'de> serde::de::Visitor<'de> for Sections {
        type Value = BTreeMap<String, ProviderConfig>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("[integrations.NAME] sections")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(name) = map.next_key::<String>()? {
                let section = map.next_value::<ProviderConfig>().map_err(|e| {
                    serde::de::Error::custom(format!(
                        "[integrations.{name}]: {e} (the settings of [integrations] itself are check_every_secs; a provider's go in its [integrations.NAME] table)"
                    ))
                })?;
                out.insert(name, section);
            }
            Ok(out)
        }
    }
    d.deserialize_map(Sections)
}

impl Default for IntegrationsConfig {
    fn default() -> Self {
        IntegrationsConfig {
            check_every_secs: 900,
            providers: BTreeMap::new(),
        }
    }
}

impl IntegrationsConfig {
    /// The section of provider `name`, if written.
    pub fn get(&self, name: &str) -> Option<&ProviderConfig> {
        self.providers.get(name)
    }

    /// This config with `[integrations.NAME]` set to `section`.
    pub fn with(mut self, name: &str, section: ProviderConfig) -> Self {
        self.providers.insert(name.to_owned(), section);
        self
    }
}

/// One provider's OAuth client (users bring their own: a Google Cloud "Desktop app" client) and
/// endpoints; the endpoints default to the provider's, and tests point them at local servers.
#[derive(Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderConfig {
    /// The OAuth client id.
    pub client_id: Option<String>,
    /// The client secret (Google desktop clients have one that is not confidential but is
    /// required); or name a secret with `client_secret_secret`.
    pub client_secret: Option<String>,
    /// The name of a secret (keyring or `ATLAS_SECRET_*`) holding the client secret.
    pub client_secret_secret: Option<String>,
    /// The authorization endpoint.
    pub auth_url: Option<String>,
    /// The token endpoint.
    pub token_url: Option<String>,
    /// The revocation endpoint.
    pub revoke_url: Option<String>,
    /// The REST API's base URL.
    pub api_url: Option<String>,
    /// Scopes to ask for instead of the provider's defaults.
    pub scopes: Option<Vec<String>>,
    /// How long `atlas integration connect` waits for the browser's redirect, in seconds
    /// (default 180).
    pub redirect_timeout_secs: Option<u64>,
    /// Seconds between the daemon's polls (Gmail: `mail.new`; Calendar: `calendar.soon`;
    /// default 60, at least 15).
    pub poll_secs: Option<u64>,
    /// Calendar: announce a meeting (`calendar.soon`) this many minutes before it starts
    /// (default 10).
    pub remind_minutes: Option<i64>,
    /// Discord: the channel ids polled for mentions (`discord.mention`); Slack: the channel ids
    /// the `mentions` operation reads by default.
    pub channels: Option<Vec<String>>,
    /// Notion: the database whose new and edited items are announced (`notion.item`).
    pub database: Option<String>,
    /// Binance: price thresholds announced when crossed (`crypto.price`).
    pub alerts: Option<Vec<PriceAlert>>,
    /// GitHub: announce new notifications (`github.notification`); default on once connected.
    pub watch: Option<bool>,
    /// Microsoft: the tenant (directory) id or domain of a work account's organisation, in the
    /// sign-in endpoints (default `common`: any work, school or personal account).
    pub tenant: Option<String>,
    /// Microsoft: the IANA time zone calendar times are asked in (`Prefer: outlook.timezone`;
    /// default the machine's, from `TZ` or `/etc/localtime`, else UTC).
    pub timezone: Option<String>,
}

/// One Binance price threshold: `symbol` crossing `above` (upwards) or `below` (downwards).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PriceAlert {
    /// The pair, e.g. `BTCUSDT`.
    pub symbol: String,
    /// Announce when the price rises above this.
    #[serde(default)]
    pub above: Option<f64>,
    /// Announce when the price falls below this.
    #[serde(default)]
    pub below: Option<f64>,
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "***"))
            .field("auth_url", &self.auth_url)
            .field("token_url", &self.token_url)
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}
