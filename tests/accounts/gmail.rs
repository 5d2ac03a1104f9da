//! The Gmail client against the local fake Gmail (`fake_auth`, fed by
//! `fixtures/gmail_messages.json`, pages of two): search with the query passed through and page
//! tokens followed, messages read (headers, snippet, base64url bodies, no plain part), the
//! unread count, a reply (RFC 2822, encoded subject, threading), labels, and the history used by
//! the new-mail trigger (paged, and a stale id).

use atlas::integrations::gmail::{Gmail, GmailError, Outgoing};

use super::oauth::{connect, setup};

#[tokio::test]
async fn search_passes_the_query_through_and_follows_page_tokens() {
    let s = setup(10).await;
    connect(&s).await.unwrap();
    let gmail = Gmail::new(&s.all);
    let all = gmail.search("", 50).await.unwrap();
    assert_eq!(all.len(), 3);
    let unread = gmail.search("is:unread newer_than:1d", 50).await.unwrap();
    assert_eq!(unread, vec!["18c1f0a2b3c4d5e6", "18c1f0a2b3c4d5e7"]);
    let one = gmail.search("is:unread newer_than:1d", 1).await.unwrap();
    assert_eq!(one.len(), 1);
    let queries = s.fake.get(|i| i.queries.clone());
    // Three pages for everything (2 + 1), one for the unread (2), one for the limit of 1.
    assert_eq!(
        queries,
        vec!["", "", "is:unread newer_than:1d", "is:unread newer_than:1d"]
    );
}

#[tokio::test]
async fn messages_are_read_with_headers_snippet_and_their_plain_text_body() {
    let s = setup(10).await;
    connect(&s).await.unwrap();
    let gmail = Gmail::new(&s.all);
    let msgs = gmail.messages("", 10).await.unwrap();
    let lunch = &msgs[0];
    assert_eq!(lunch.from_name, "Sam Lee");
    assert_eq!(lunch.subject, "Lunch tomorrow?");
    assert!(lunch.unread);
    assert!(lunch.labels.contains(&"IMPORTANT".to_owned()));
    assert_eq!(
        lunch.body.as_deref(),
        Some(
            "Are you free for lunch tomorrow? I was thinking noon at the usual place.\r\n\r\nSam — café?"
        )
    );
    // base64url, not base64: this body's encoding has `_` and `-`.
    assert_eq!(
        msgs[1].body.as_deref(),
        Some("Your build #512 failed on main.\n?>>~~ binary-ish: ÿþ")
    );
    assert_eq!(msgs[1].from_name, "CI Robot");
    // HTML only: no plain body; the snippet stands.
    assert_eq!(msgs[2].body, None);
    assert_eq!(msgs[2].snippet, "Sale ends tonight");
    assert!(!msgs[2].unread);
    let err = gmail.message("nope").await.unwrap_err().to_string();
    assert!(
        err.contains("HTTP 404") && err.contains("Requested entity was not found"),
        "{err}"
    );
}

#[tokio::test]
async fn replies_and_labels_change_the_mailbox() {
    let s = setup(10).await;
    connect(&s).await.unwrap();
    let gmail = Gmail::new(&s.all);
    assert_eq!(gmail.unread_count().await.unwrap(), 2);
    let lunch = gmail.message("18c1f0a2b3c4d5e6").await.unwrap();
    let id = gmail
        .reply(&lunch, "Noon works. See you there.")
        .await
        .unwrap();
    assert_eq!(id, "sent-1");
    let (raw, thread) = s.fake.get(|i| i.sent[0].clone());
    assert_eq!(thread.as_deref(), Some("18c1f0a2b3c4d5e6"));
    assert!(
        raw.starts_with("To: \"Sam Lee\" <sam@example.com>\r\n"),
        "{raw}"
    );
    assert!(raw.contains("Subject: Re: Lunch tomorrow?\r\n"), "{raw}");
    assert!(
        raw.contains("In-Reply-To: <CAF=lunch123@mail.gmail.com>\r\n"),
        "{raw}"
    );
    assert!(
        raw.contains("Content-Type: text/plain; charset=\"UTF-8\""),
        "{raw}"
    );
    let sent = gmail
        .send(&Outgoing {
            to: "team@example.com".into(),
            subject: "Résumé".into(),
            body: "Attached.".into(),
        })
        .await
        .unwrap();
    assert_eq!(sent, "sent-2");
    assert!(
        s.fake
            .get(|i| i.sent[1].0.contains("Subject: =?UTF-8?B?UsOpc3Vtw6k=?="))
    );
    let bad = gmail
        .send(&Outgoing {
            to: "a@example.com\r\nBcc: x@example.com".into(),
            subject: "x".into(),
            body: String::new(),
        })
        .await
        .unwrap_err();
    assert!(matches!(bad, GmailError::BadHeader { .. }), "{bad}");
    assert_eq!(
        s.fake.get(|i| i.sent.len()),
        2,
        "nothing sent for a bad header"
    );

    gmail.mark_read("18c1f0a2b3c4d5e6").await.unwrap();
    assert_eq!(gmail.unread_count().await.unwrap(), 1);
    gmail
        .modify("18c1f0a2b3c4d5e7", &["STARRED".into()], &["INBOX".into()])
        .await
        .unwrap();
    let m = gmail.message("18c1f0a2b3c4d5e7").await.unwrap();
    assert!(m.labels.contains(&"STARRED".to_owned()) && !m.labels.contains(&"INBOX".to_owned()));
}

#[tokio::test]
async fn history_lists_new_messages_across_pages_and_says_when_it_is_stale() {
    let s = setup(10).await;
    connect(&s).await.unwrap();
    let gmail = Gmail::new(&s.all);
    let start = gmail.history_id().await.unwrap();
    assert_eq!(start, "424242");
    let h = gmail.history_since(&start).await.unwrap();
    assert!(h.added.is_empty());
    assert_eq!(h.history_id, "424242");
    s.fake.set(|i| {
        for n in 0..3 {
            let mut m = i.gmail[0].clone();
            m["id"] = serde_json::json!(format!("new-{n}"));
            i.deliver(m);
        }
    });
    let h = gmail.history_since(&start).await.unwrap();
    assert_eq!(h.added, vec!["new-0", "new-1", "new-2"]);
    assert_eq!(h.history_id, "424245");
    let again = gmail.history_since(&h.history_id).await.unwrap();
    assert!(again.added.is_empty());
    let stale = gmail.history_since("1000").await.unwrap_err();
    assert!(matches!(stale, GmailError::StaleHistory), "{stale}");
}

#[tokio::test]
async fn new_mail_is_announced_once_across_restarts_and_a_stale_history_restarts_from_now() {
    use atlas::integrations::mail_watch::MailWatch;
    let s = setup(10).await;
    connect(&s).await.unwrap();
    let mut events = s.hub.subscribe();
    let _ = events.try_recv();
    let data = s._dir.path();
    let watch = MailWatch::new(s.all.clone(), s.hub.clone(), data);
    // The first poll records where the mailbox is; the three old messages are not news.
    assert_eq!(watch.poll().await.unwrap(), 0);
    let arrive = |n: usize, subject: &str| {
        let subject = subject.to_owned();
        s.fake.set(move |i| {
            let mut m = i.gmail[0].clone();
            m["id"] = serde_json::json!(format!("arrival-{n}"));
            m["payload"]["headers"][3]["value"] = serde_json::json!(subject);
            i.deliver(m);
        });
    };
    arrive(1, "Quarterly report");
    arrive(2, "Dinner plans");
    assert_eq!(watch.poll().await.unwrap(), 2);
    let mut subjects = Vec::new();
    while let Ok(e) = events.try_recv() {
        if e.kind == "mail.new" {
            assert_eq!(e.source, "gmail");
            assert_eq!(e.data["from_name"], "Sam Lee");
            subjects.push(e.data["subject"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(subjects, vec!["Quarterly report", "Dinner plans"]);
    assert_eq!(watch.poll().await.unwrap(), 0);
    // A restart (a new watcher on the same data dir) announces nothing twice...
    let again = MailWatch::new(s.all.clone(), s.hub.clone(), data);
    assert_eq!(again.poll().await.unwrap(), 0);
    // ...and the next arrival once.
    arrive(3, "Invoice");
    assert_eq!(again.poll().await.unwrap(), 1);
    // Offline too long: Gmail has forgotten the history id; the watcher restarts from now.
    arrive(4, "Missed while away");
    s.fake.set(|i| i.history_floor = i.history_id + 1);
    assert_eq!(again.poll().await.unwrap(), 0);
    s.fake.set(|i| i.history_floor = 0);
    arrive(5, "Back online");
    assert_eq!(again.poll().await.unwrap(), 1);
    // The state file holds ids, never a token.
    let state = std::fs::read_to_string(data.join("integrations/gmail-watch.json")).unwrap();
    for tok in s.fake.get(|i| i.issued.clone()) {
        assert!(!state.contains(&tok));
    }
}

#[tokio::test]
async fn a_mail_trigger_with_a_gmail_query_starts_only_for_matching_mail() {
    use atlas::integrations::mail_watch::MailWatch;
    use std::sync::Arc;
    let s = setup(10).await;
    connect(&s).await.unwrap();
    let data = s._dir.path();
    let queries = vec!["subject:invoice".to_owned(), "from:boss".to_owned()];
    let watch = MailWatch::new(s.all.clone(), s.hub.clone(), data)
        .with_queries(Arc::new(move || queries.clone()));
    assert_eq!(watch.poll().await.unwrap(), 0);
    let mut events = s.hub.subscribe();
    s.fake.set(|i| {
        let mut m = i.gmail[0].clone();
        m["id"] = serde_json::json!("arrival-invoice");
        m["payload"]["headers"][3]["value"] = serde_json::json!("Invoice 2026-117");
        i.deliver(m);
        let mut m = i.gmail[0].clone();
        m["id"] = serde_json::json!("arrival-chat");
        m["payload"]["headers"][3]["value"] = serde_json::json!("Weekend?");
        i.deliver(m);
    });
    let searched_before = s.fake.get(|i| i.queries.len());
    assert_eq!(watch.poll().await.unwrap(), 2);
    let mut by_id = std::collections::BTreeMap::new();
    while let Ok(e) = events.try_recv() {
        if e.kind == "mail.new" {
            by_id.insert(
                e.data["id"].as_str().unwrap().to_owned(),
                e.data["queries"].clone(),
            );
        }
    }
    assert_eq!(
        by_id["arrival-invoice"],
        serde_json::json!(["subject:invoice"])
    );
    assert_eq!(by_id["arrival-chat"], serde_json::json!([]));
    // Gmail evaluated the queries, one search each; a poll with no new mail searches nothing.
    let searched: Vec<String> = s.fake.get(|i| i.queries[searched_before..].to_vec());
    assert_eq!(searched, vec!["from:boss", "subject:invoice"]);
    assert_eq!(watch.poll().await.unwrap(), 0);
    assert_eq!(s.fake.get(|i| i.queries.len()), searched_before + 2);

    // The trigger: only the workflow whose query matched starts.
    let dir = tempfile::tempdir().unwrap();
    let (services, speaker) = services(None);
    let engine = atlas::engine::Engine::new(
        atlas::store::Store::open(&dir.path().join("atlas.db")).unwrap(),
        services,
    );
    let flow = |id: &str, query: &str| {
        let yaml = format!(
            "id: {id}\ntriggers: [{{type: event, event: mail.new, query: '{query}'}}]\nactions:\n  - {{id: say, type: speak, config: {{text: '{id}: {{{{ trigger.data.subject }}}}'}}}}\n"
        );
        Arc::new(atlas::workflow::load_str(&yaml, std::path::Path::new("q.yaml")).unwrap())
    };
    engine.set_workflows([
        flow("invoices", "subject:invoice"),
        flow("boss", "from:boss"),
    ]);
    let hub = atlas::triggers::events::EventHub::default();
    let stop = tokio_util::sync::CancellationToken::new();
    let triggers = atlas::triggers::events::EventTriggers::start(
        engine.clone(),
        hub.clone(),
        120,
        stop.clone(),
    );
    let watch =
        MailWatch::new(s.all.clone(), hub.clone(), dir.path()).with_queries(Arc::new(|| {
            vec!["subject:invoice".to_owned(), "from:boss".to_owned()]
        }));
    assert_eq!(watch.poll().await.unwrap(), 0);
    s.fake.set(|i| {
        let mut m = i.gmail[0].clone();
        m["id"] = serde_json::json!("arrival-invoice-2");
        m["payload"]["headers"][3]["value"] = serde_json::json!("Invoice 2026-118");
        i.deliver(m);
    });
    assert_eq!(watch.poll().await.unwrap(), 1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while speaker.said().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        speaker.said(),
        vec!["invoices: Invoice 2026-118".to_owned()]
    );
    drop(triggers);
    stop.cancel();
}

#[test]
fn a_query_on_another_event_is_refused_at_load_naming_the_field() {
    let yaml = "id: q\ntriggers: [{type: event, event: run.failed, query: 'from:boss'}]\nactions:\n  - {id: a, type: log, config: {message: x}}\n";
    let errs = atlas::workflow::load_str(yaml, std::path::Path::new("q.yaml")).unwrap_err();
    let text: String = errs
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        text.contains("triggers[0].query") && text.contains("mail.new"),
        "{text}"
    );
}

const MAIL_FLOW: &str = r#"
id: mail
triggers: [{type: manual}]
actions:
  - {id: unread, type: gmail, config: {op: unread, limit: 2}}
  - id: say
    type: speak
    config:
      text: "You have {{ unread.count }} unread emails. The first is from {{ unread.messages[0].from_name }} about {{ unread.messages[0].subject }}."
  - {id: answer, type: gmail, config: {op: reply, id: "{{ unread.messages[0].id }}", body: "Noon works."}}
  - {id: done, type: gmail, config: {op: mark_read, id: "{{ unread.messages[0].id }}"}}
"#;

/// Services for a test engine: a recording speaker, no secrets, these integrations.
pub(super) fn services(
    accounts: Option<std::sync::Arc<dyn atlas::actions::Accounts>>,
) -> (
    atlas::actions::Services,
    std::sync::Arc<atlas::tts::RecordingSpeaker>,
) {
    use std::sync::Arc;
    let speaker = Arc::new(atlas::tts::RecordingSpeaker::default());
    let services = atlas::actions::Services {
        http: atlas::actions::HttpClient::default(),
        speaker: speaker.clone(),
        secrets: Arc::new(atlas::secrets::MemorySecrets::default()),
        file_roots: Vec::new(),
        env: Default::default(),
        llm: Default::default(),
        mcp_servers: Default::default(),
        accounts,
        questions: Default::default(),
    };
    (services, speaker)
}

/// An engine with the bundled workflows over `accounts`, its database in `dir`.
pub(super) fn bundled_engine(
    accounts: Option<std::sync::Arc<dyn atlas::actions::Accounts>>,
    dir: &std::path::Path,
) -> atlas::engine::Engine {
    let (services, _) = services(accounts);
    let engine = atlas::engine::Engine::new(
        atlas::store::Store::open(&dir.join("atlas.db")).unwrap(),
        services,
    );
    let bundled = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows");
    let report = atlas::workflow::load_sources(&[atlas::config::WorkflowSource::Dir(bundled)]);
    engine.set_workflows(report.workflows.iter().cloned());
    engine
}

fn mail_engine(
    accounts: Option<std::sync::Arc<dyn atlas::actions::Accounts>>,
    dir: &std::path::Path,
) -> (
    atlas::engine::Engine,
    std::sync::Arc<atlas::tts::RecordingSpeaker>,
) {
    use std::sync::Arc;
    let (services, speaker) = services(accounts);
    let store = atlas::store::Store::open(&dir.join("atlas.db")).unwrap();
    let engine = atlas::engine::Engine::new(store, services);
    let wf = atlas::workflow::load_str(MAIL_FLOW, std::path::Path::new("mail.yaml")).unwrap();
    engine.set_workflows([Arc::new(wf)]);
    (engine, speaker)
}

#[tokio::test]
async fn the_gmail_action_reads_unread_mail_replies_and_marks_read_in_a_workflow() {
    let s = setup(10).await;
    connect(&s).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (engine, speaker) = mail_engine(Some(s.all.clone()), dir.path());
    let out = engine
        .run(atlas::engine::RunRequest::manual("mail"))
        .await
        .unwrap();
    assert_eq!(
        out.status,
        atlas::store::RunStatus::Succeeded,
        "{:?}",
        out.error
    );
    assert_eq!(
        speaker.said(),
        vec!["You have 2 unread emails. The first is from Sam Lee about Lunch tomorrow?."]
    );
    assert_eq!(out.outputs["unread"]["important"], 1);
    assert_eq!(out.outputs["answer"]["to_name"], "Sam Lee");
    let (raw, _) = s.fake.get(|i| i.sent[0].clone());
    assert!(raw.contains("Subject: Re: Lunch tomorrow?"), "{raw}");
    let unread = atlas::integrations::gmail::Gmail::new(&s.all)
        .unread_count()
        .await
        .unwrap();
    assert_eq!(unread, 1);
}

#[tokio::test]
async fn the_gmail_action_says_what_is_missing() {
    let bad = "id: x\ntriggers: [{type: manual}]\nactions:\n  - {id: s, type: gmail, config: {op: send, to: a@example.com}}\n";
    let err = format!(
        "{:?}",
        atlas::workflow::load_str(bad, std::path::Path::new("x.yaml")).unwrap_err()
    );
    assert!(err.contains("subject") && err.contains("body"), "{err}");
    // No integrations in this runtime.
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = mail_engine(None, dir.path());
    let out = engine
        .run(atlas::engine::RunRequest::manual("mail"))
        .await
        .unwrap();
    assert_eq!(out.status, atlas::store::RunStatus::Failed);
    assert!(
        out.error
            .as_deref()
            .unwrap()
            .contains("no integrations here"),
        "{:?}",
        out.error
    );
    // Integrations, but Gmail never connected.
    let s = setup(10).await;
    let (engine, _) = mail_engine(Some(s.all.clone()), dir.path());
    let out = engine
        .run(atlas::engine::RunRequest::manual("mail"))
        .await
        .unwrap();
    assert!(
        out.error
            .as_deref()
            .unwrap()
            .contains("atlas integration connect gmail"),
        "{:?}",
        out.error
    );
}

#[tokio::test]
async fn the_bundled_morning_briefing_reads_unread_mail_or_says_once_why_not() {
    let s = setup(10).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = bundled_engine(Some(s.all.clone()), dir.path());
    let run = |vars: Vec<(&'static str, serde_json::Value)>| {
        let engine = engine.clone();
        async move {
            let mut req = atlas::engine::RunRequest::manual("morning_briefing");
            for (k, v) in vars {
                req.vars.insert(k.to_owned(), v);
            }
            engine.run(req).await.unwrap()
        }
    };
    s.fake.set(|i| {
        let day = chrono::Local::now().date_naive();
        let start = chrono::TimeZone::from_local_datetime(&chrono::Local, &day.and_hms_opt(9, 30, 0).unwrap())
            .earliest()
            .unwrap()
            .fixed_offset();
        i.calendar = vec![
            serde_json::json!({"id": "h", "status": "confirmed", "summary": "Holiday", "start": {"date": day.to_string()}, "end": {"date": day.succ_opt().unwrap().to_string()}}),
            serde_json::json!({"id": "s", "status": "confirmed", "summary": "Standup", "start": {"dateTime": start.to_rfc3339()}, "end": {"dateTime": (start + chrono::Duration::minutes(15)).to_rfc3339()}}),
        ];
    });
    // Not connected yet: one sentence, and the briefing goes on.
    let out = run(vec![(
        "weather_api",
        serde_json::json!("http://127.0.0.1:9"),
    )])
    .await;
    assert_eq!(
        out.status,
        atlas::store::RunStatus::Succeeded,
        "{:?}",
        out.error
    );
    assert!(
        out.spoken
            .contains(&"Email is not connected, so I skipped it.".to_owned()),
        "{:?}",
        out.spoken
    );
    connect(&s).await.unwrap();
    let out = run(vec![(
        "weather_api",
        serde_json::json!("http://127.0.0.1:9"),
    )])
    .await;
    assert!(
        out.spoken.contains(
            &"You have 2 unread emails, 1 important. From Sam Lee: Lunch tomorrow?. From CI Robot: Build #512 failed."
                .to_owned()
        ),
        "{:?}",
        out.spoken
    );
    assert_eq!(
        out.spoken.last().unwrap(),
        "That's your briefing. Have a good day."
    );
    // The email digest reads the same mail.
    let mut digest = atlas::engine::RunRequest::manual("email_digest");
    digest.vars.clear();
    let out = engine.run(digest).await.unwrap();
    assert_eq!(
        out.spoken,
        vec![
            "You have 2 unread emails, 1 important. From Sam Lee: Lunch tomorrow?. From CI Robot: Build #512 failed."
        ]
    );
    // Revoked: the briefing says so once and still ends well.
    s.fake.revoke_grant();
    let out = run(vec![(
        "weather_api",
        serde_json::json!("http://127.0.0.1:9"),
    )])
    .await;
    assert_eq!(out.status, atlas::store::RunStatus::Succeeded);
    assert!(
        out.spoken
            .contains(&"Gmail needs you to sign in again, so I skipped your email.".to_owned()),
        "{:?}",
        out.spoken
    );
}

#[tokio::test]
async fn replying_by_voice_asks_first_and_sends_only_after_yes() {
    use std::sync::Arc;
    let s = setup(10).await;
    connect(&s).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let said = Arc::new(atlas::tts::RecordingSpeaker::default());
    let metered = atlas::voice::MeteredSpeaker::new(said.clone());
    let (mut services, _) = services(Some(s.all.clone()));
    services.speaker = metered.clone();
    let questions = services.questions.clone();
    let engine = atlas::engine::Engine::new(
        atlas::store::Store::open(&dir.path().join("atlas.db")).unwrap(),
        services,
    );
    let bundled = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows");
    let report = atlas::workflow::load_sources(&[atlas::config::WorkflowSource::Dir(bundled)]);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    engine.set_workflows(report.workflows.iter().cloned());
    // No model is loaded: typed commands go through the same matcher, runs and questions.
    let transcriber =
        atlas::stt::Transcriber::new(atlas::stt::SttConfig::new(dir.path().join("no-model.bin")));
    let voice = atlas::voice::VoiceLoop::new(
        engine.clone(),
        transcriber,
        metered,
        atlas::config::VoiceConfig::default(),
    )
    .unwrap();

    // The command drafts, reads back and asks; the utterance ends while the run waits.
    let h = voice
        .handle_text("Reply to the last email saying I'll be there at noon.")
        .await;
    assert_eq!(h.workflow.as_deref(), Some("reply_last_email"), "{h:?}");
    let question =
        "Your reply to Sam Lee about Lunch tomorrow? says: I'll be there at noon. Shall I send it?";
    assert_eq!(h.asked.as_deref(), Some(question), "{h:?}");
    assert_eq!(h.run.as_ref().unwrap().status, "running");
    assert_eq!(said.said().last().unwrap(), question);
    assert!(
        s.fake.get(|i| i.sent.is_empty()),
        "nothing is sent before the answer"
    );
    // The answer is not a command: it goes to the question, and the run sends.
    let run_id = h.run.unwrap().id;
    let a = voice.handle_text("Yes, send it.").await;
    assert_eq!(a.answered.as_deref(), Some(question), "{a:?}");
    assert_eq!(a.workflow, None);
    let run = wait_run(&engine, &run_id).await;
    assert_eq!(
        run.status,
        atlas::store::RunStatus::Succeeded,
        "{:?}",
        run.error
    );
    assert_eq!(said.said().last().unwrap(), "Sent your reply to Sam Lee.");
    let (raw, thread) = s.fake.get(|i| i.sent[0].clone());
    assert_eq!(thread.as_deref(), Some("18c1f0a2b3c4d5e6"));
    assert!(raw.contains("Subject: Re: Lunch tomorrow?"), "{raw}");
    // The body is base64 (76-character lines): the words as said, contraction and all.
    let body: String = raw
        .split("\r\n\r\n")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect();
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    assert_eq!(String::from_utf8(body).unwrap(), "I'll be there at noon");
    assert_eq!(questions.open_question(), None);

    // "No" drops it; nothing more is sent.
    let h = voice
        .handle_text("reply to the last email saying maybe later")
        .await;
    assert!(h.asked.is_some(), "{h:?}");
    let a = voice.handle_text("No, don't.").await;
    assert!(a.answered.is_some(), "{a:?}");
    wait_run(&engine, &h.run.unwrap().id).await;
    assert_eq!(said.said().last().unwrap(), "OK, I did not send it.");
    assert_eq!(s.fake.get(|i| i.sent.len()), 1);
    // With no question open, "yes" is an ordinary command again (and matches nothing).
    let a = voice.handle_text("yes").await;
    assert_eq!((a.answered, a.workflow), (None, None));
}

/// The run `id` once it has ended (bounded: 10 s).
async fn wait_run(engine: &atlas::engine::Engine, id: &str) -> atlas::store::RunRecord {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while engine.active_runs().iter().any(|r| r == id) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    engine.store().flush().await.unwrap();
    engine.store().get_run(id).unwrap().unwrap()
}
