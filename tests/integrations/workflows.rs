//! The bundled workflows of the service integrations end to end, in one process: typed commands
//! through the voice loop's matcher (as `atlas listen --text` and `/v1/utterance` use it), and
//! a missed schedule caught up by the scheduler, against the fakes; each part that is not
//! connected is skipped with one sentence.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use atlas::config::VoiceConfig;
use atlas::engine::Engine;
use atlas::integrations::Provider;
use atlas::store::Op;
use atlas::stt::{SttConfig, Transcriber};
use atlas::triggers::schedule::Scheduler;
use atlas::tts::RecordingSpeaker;
use atlas::voice::{MeteredSpeaker, VoiceLoop};
use serde_json::json;

use super::harness::{Setup, setup, setup_with};

struct Rig {
    engine: Engine,
    voice: VoiceLoop,
    said: Arc<RecordingSpeaker>,
    _db: tempfile::TempDir,
}

fn rig(s: &Setup) -> Rig {
    let said = Arc::new(RecordingSpeaker::default());
    let metered = MeteredSpeaker::new(said.clone());
    let services = atlas::actions::Services {
        http: atlas::actions::HttpClient::default(),
        speaker: metered.clone(),
        secrets: Arc::new(atlas::secrets::MemorySecrets::default()),
        file_roots: Vec::new(),
        env: Default::default(),
        llm: Default::default(),
        mcp_servers: Default::default(),
        accounts: Some(s.all.clone()),
        questions: Default::default(),
    };
    let db = tempfile::tempdir().unwrap();
    let engine = Engine::new(
        atlas::store::Store::open(&db.path().join("atlas.db")).unwrap(),
        services,
    );
    let report =
        atlas::workflow::load_dirs(&[PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("workflows")]);
    assert!(report.errors.is_empty(), "{:#?}", report.errors);
    engine.set_workflows(report.workflows.iter().cloned());
    // Typed commands never load the model.
    let transcriber = Transcriber::new(SttConfig::new(Path::new("/nonexistent/ggml-tiny.en.bin")));
    let voice =
        VoiceLoop::new(engine.clone(), transcriber, metered, VoiceConfig::default()).unwrap();
    Rig {
        engine,
        voice,
        said,
        _db: db,
    }
}

impl Rig {
    /// Handles `text` as a typed command: the workflow it started and what was said.
    async fn say(&self, text: &str) -> (Option<String>, Vec<String>) {
        let before = self.said.said().len();
        let handled = self.voice.handle_text(text).await;
        (
            handled.workflow.clone(),
            self.said.said()[before..].to_vec(),
        )
    }
}

fn pr(n: u64, title: &str) -> serde_json::Value {
    json!({"number": n, "title": title, "html_url": format!("https://github.com/octo-org/app/pull/{n}"),
        "repository_url": "https://api.github.com/repos/octo-org/app", "draft": false, "updated_at": "2026-12-06T08:00:00Z"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_needs_me_from_a_typed_command_and_from_its_schedule() {
    let s = setup_with(|c| {
        c.providers.get_mut("slack").unwrap().channels = Some(vec!["C0TEAM".into()])
    })
    .await;
    s.paste(Provider::GitHub, "ghp_fakeGitHubToken0100", None)
        .await;
    s.paste(Provider::Slack, "xoxb-fake-bot-token-0100", None)
        .await;
    s.sign_in(Provider::Gmail).await;
    let now = chrono::Utc::now().timestamp();
    s.fake.set(|i| {
        i.review_prs = vec![pr(7, "Fix the parser"), pr(9, "Bump deps")];
        i.slack.insert("C0TEAM".into(), vec![json!({"user": "U0SAM", "text": "<@U0ME> deploy?", "ts": format!("{}.000001", now - 60)})]);
    });
    let r = rig(&s);
    let (wf, said) = r.say("any review requests").await;
    assert_eq!(wf.as_deref(), Some("what_needs_me"));
    assert_eq!(
        said,
        [
            "2 review requests: Fix the parser in octo-org/app. Bump deps in octo-org/app.",
            "1 Slack mention.",
            "2 unread emails."
        ]
    );
    assert_eq!(
        r.say("what needs me").await.0.as_deref(),
        Some("what_needs_me")
    );

    // GitHub disconnected, then the weekday 09:00 run missed while asleep: caught up once, the
    // GitHub part skipped.
    s.all.disconnect(Provider::GitHub).await.unwrap();
    let week_ago = chrono::Utc::now().timestamp_millis() - 7 * 86_400_000;
    for trigger in 0..3 {
        r.engine.store().send(Op::ScheduleSeen {
            workflow_id: "what_needs_me".into(),
            trigger,
            at: week_ago,
        });
    }
    r.engine.store().flush().await.unwrap();
    let before = r.said.said().len();
    let fired = Scheduler::new(r.engine.clone(), false).catch_up(chrono::Utc::now());
    assert_eq!(fired, ["what_needs_me"]);
    crate::util::within(
        "the caught-up run to speak",
        std::time::Duration::from_secs(10),
        || r.said.said().len() >= before + 3,
    )
    .await;
    assert_eq!(
        r.said.said()[before..],
        [
            "GitHub is not connected, so I skipped reviews.",
            "1 Slack mention.",
            "2 unread emails."
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn music_and_the_portfolio_by_typed_command() {
    let s = setup().await;
    let r = rig(&s);
    // Nothing connected: each says so.
    assert_eq!(
        r.say("what's playing").await.1,
        ["Spotify is not connected, so I cannot control the music."]
    );
    assert_eq!(
        r.say("how much is my portfolio worth").await.1,
        ["Binance is not connected, so I skipped your portfolio."]
    );

    s.sign_in(Provider::Spotify).await;
    s.fake.set(|i| i.playing = Some(json!({"is_playing": true, "item": {"name": "Clair de lune", "artists": [{"name": "Claude Debussy"}], "album": {"name": "Suite bergamasque"}}})));
    let (wf, said) = r.say("what's playing").await;
    assert_eq!(wf.as_deref(), Some("music"));
    assert_eq!(said, ["Clair de lune by Claude Debussy."]);
    assert_eq!(r.say("next song").await.1, ["Next song."]);
    assert_eq!(r.say("previous song").await.1, ["Previous song."]);
    assert_eq!(r.say("pause the music").await.1, ["Paused."]);
    assert_eq!(r.say("resume the music").await.1, ["Playing."]);
    assert_eq!(
        s.fake.get(|i| i.player.clone()),
        ["next", "previous", "pause", "play"]
    );
    s.fake.set(|i| i.device = false);
    assert_eq!(
        r.say("next song").await.1,
        ["Spotify has no active device: start playing on a phone or computer first."]
    );

    s.fake.set(|i| {
        i.prices.insert("BTCUSDT".into(), "101234.56".into());
        i.prices.insert("ETHUSDT".into(), "3850.10".into());
        i.balances = vec![
            json!({"asset": "BTC", "free": "0.5", "locked": "0"}),
            json!({"asset": "ETH", "free": "3", "locked": "0"}),
        ];
    });
    s.paste(
        Provider::Binance,
        "fakeBinanceKey0100",
        Some("fakeBinanceSecret0100"),
    )
    .await;
    let (wf, said) = r.say("how much is my portfolio worth").await;
    assert_eq!(wf.as_deref(), Some("crypto_portfolio"));
    assert_eq!(
        said,
        ["Your crypto portfolio is worth 62168 dollars, most of it in BTC."]
    );
    // The same line in the morning briefing when include_crypto is on (off by default).
    let mut req = atlas::engine::RunRequest::manual("morning_briefing");
    req.vars = serde_json::from_value(json!({
        "include_crypto": true, "include_calendar": false, "include_mail": false,
        "weather_api": s.fake.base("binance"),
    }))
    .unwrap();
    let out = r.engine.run(req).await.unwrap();
    assert_eq!(
        out.status,
        atlas::store::RunStatus::Succeeded,
        "{:?}",
        out.error
    );
    let n = out.spoken.len();
    assert_eq!(
        out.spoken[n - 2..],
        [
            "Your crypto portfolio is worth 62168 dollars, most of it in BTC.".to_owned(),
            "That's your briefing. Have a good day.".to_owned()
        ],
        "{:?}",
        out.spoken
    );
    let mut req = atlas::engine::RunRequest::manual("morning_briefing");
    req.vars = serde_json::from_value(json!({
        "include_calendar": false, "include_mail": false, "weather_api": s.fake.base("binance"),
    }))
    .unwrap();
    let out = r.engine.run(req).await.unwrap();
    assert!(
        !out.spoken.iter().any(|l| l.contains("portfolio")),
        "{:?}",
        out.spoken
    );
}
