//! The `ask` kind: say a question and wait for the user's spoken (or typed) answer.
//!
//! [`Questions`] holds at most one open question. The `ask` action speaks it, opens it and waits;
//! the voice loop hands the next utterance to it ([`Questions::answer`]) instead of matching it
//! against the workflows' phrases, so "send it" answers "Shall I send it?" rather than starting
//! something else. The wait is bounded by the action's `timeout` (default 30 s) and by the run's
//! cancellation; an unanswered question is not a failure: its output says `answered: false`.
//!
//! Output: `answered` (bool), `answer` (the text heard, "" when none), `yes` (true for an
//! affirmative answer, false for a negative one, null when it is neither), `choice` (the first of
//! `choices` the answer names, or null).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{oneshot, watch};

use super::{ActionCtx, ActionError, ActionKind, LeafKind};
use crate::spec::{Dur, Problem, too_long};
use crate::template::Tmpl;

/// How long a question waits for its answer unless `timeout` says otherwise.
pub const DEFAULT_ASK_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest a question may wait.
pub const MAX_ASK_TIMEOUT: Duration = Duration::from_secs(600);

/// Config of `ask`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AskConfig {
    /// What to ask, e.g. `Shall I send it?`.
    pub question: Tmpl,
    /// How long to wait for the answer (default 30 s, at most 10 minutes).
    #[serde(default)]
    pub wait: Option<Dur>,
    /// Answers to recognise besides yes and no, e.g. `[tea, coffee]`: the output's `choice`.
    #[serde(default)]
    pub choices: Vec<String>,
}

impl AskConfig {
    fn wait(&self) -> Duration {
        self.wait.map_or(DEFAULT_ASK_TIMEOUT, |d| d.0)
    }
}

/// The `ask` kind.
pub struct Ask;

impl ActionKind for Ask {
    const NAME: &'static str = "ask";
    const DOC: &'static str = "Ask a question and wait for the spoken answer.";
    type Config = AskConfig;

    /// A question waits at most [`MAX_ASK_TIMEOUT`] (10 minutes), and at least a second.
    fn check(c: &AskConfig) -> Vec<Problem> {
        let wait = c.wait();
        if wait > MAX_ASK_TIMEOUT {
            vec![Problem::new(
                "wait",
                too_long("a wait of", wait, MAX_ASK_TIMEOUT, "10 minutes"),
            )]
        } else if wait < Duration::from_secs(1) {
            vec![Problem::new(
                "wait",
                format!("a wait of {wait:?} leaves no time to answer: give at least 1s"),
            )]
        } else {
            Vec::new()
        }
    }
}

impl LeafKind for Ask {
    async fn execute(c: &AskConfig, ctx: &ActionCtx<'_>) -> Result<Value, ActionError> {
        let question = c
            .question
            .render(ctx.scope)?
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let run_id = ctx
            .scope
            .get_attr("run")
            .and_then(|r| r.get_attr("id"))
            .ok()
            .and_then(|id| id.as_str().map(str::to_owned))
            .unwrap_or_default();
        // Opened before it is said, so an answer given while the question is still being spoken
        // (or typed at once) is not lost; a question already open is refused at once.
        let pending = ctx.services.questions.open(&run_id, &question)?;
        let spoken = ctx.services.speaker.speak(&question).await;
        if let Err(e) = spoken {
            tracing::warn!(error = %e, "ask: the question could not be spoken");
        }
        let wait = c.wait();
        let answer = tokio::select! {
            a = pending.answer() => a,
            () = tokio::time::sleep(wait) => None,
            () = ctx.cancel.cancelled() => return Err(ActionError::Cancelled),
        };
        let answer_text = answer.unwrap_or_default();
        Ok(json!({
            "question": question,
            "answered": !answer_text.is_empty(),
            "answer": answer_text,
            "yes": if answer_text.is_empty() { None } else { yes_or_no(&answer_text) },
            "choice": choice(&answer_text, &c.choices),
        }))
    }
}

/// A question waiting for its answer: who asked and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    /// The run that asked.
    pub run_id: String,
    /// The question as said.
    pub question: String,
}

/// The open question, shared by the `ask` action and the voice loop. Cloning shares it.
#[derive(Clone)]
pub struct Questions {
    inner: Arc<Inner>,
}

struct Inner {
    /// The open question's number and where its answer goes.
    open: Mutex<Option<(u64, oneshot::Sender<String>)>>,
    next: AtomicU64,
    /// The open question itself, for those who wait to see one asked (the voice loop).
    asked: watch::Sender<Option<Asked>>,
}

impl Default for Questions {
    fn default() -> Self {
        Questions {
            inner: Arc::new(Inner {
                open: Mutex::new(None),
                next: AtomicU64::new(0),
                asked: watch::Sender::new(None),
            }),
        }
    }
}

impl std::fmt::Debug for Questions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Questions")
            .field("open", &self.open_question())
            .finish()
    }
}

/// An opened question; dropping it closes the question.
pub struct Pending {
    questions: Questions,
    id: u64,
    rx: Option<oneshot::Receiver<String>>,
}

impl Pending {
    /// The answer, or `None` when the question was closed without one.
    async fn answer(mut self) -> Option<String> {
        self.rx.take()?.await.ok()
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.questions.close(self.id);
    }
}

impl Questions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(u64, oneshot::Sender<String>)>> {
        self.inner.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens `question` for run `run_id`; refused while another question is open.
    pub fn open(&self, run_id: &str, question: &str) -> Result<Pending, ActionError> {
        let mut open = self.lock();
        // `asked` is set and cleared under the same lock as `open`.
        if let Some(other) = open.as_ref().and_then(|_| self.open_question()) {
            return Err(ActionError::Ask(format!(
                "another question is waiting for its answer: {:?} (run {})",
                other.question, other.run_id
            )));
        }
        let id = self.inner.next.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = oneshot::channel();
        *open = Some((id, tx));
        self.inner.asked.send_replace(Some(Asked {
            run_id: run_id.to_owned(),
            question: question.to_owned(),
        }));
        Ok(Pending {
            questions: self.clone(),
            id,
            rx: Some(rx),
        })
    }

    /// Gives `text` to the open question; returns the question it answered, or `None` when no
    /// question is open (the text is then a command like any other).
    pub fn answer(&self, text: &str) -> Option<Asked> {
        let mut open = self.lock();
        let (_, tx) = open.take()?;
        let asked = self.inner.asked.send_replace(None);
        drop(open);
        // The asker may have given up this very moment: the answer then goes nowhere.
        let _ = tx.send(text.to_owned());
        asked
    }

    /// The open question, if any.
    pub fn open_question(&self) -> Option<Asked> {
        self.inner.asked.borrow().clone()
    }

    /// Follows the open question (`None` when none is open).
    pub fn subscribe(&self) -> watch::Receiver<Option<Asked>> {
        self.inner.asked.subscribe()
    }

    fn close(&self, id: u64) {
        let mut open = self.lock();
        if open.as_ref().is_some_and(|(i, _)| *i == id) {
            *open = None;
            self.inner.asked.send_replace(None);
        }
    }
}

/// Words that refuse; any of them makes the answer a no ("no, don't send it", "cancel").
const NO: &[&str] = &[
    "no", "nope", "nah", "cancel", "stop", "don't", "dont", "not", "never", "abort", "negative",
    "wait", "hold",
];
/// Words that agree.
const YES: &[&str] = &[
    "yes",
    "yeah",
    "yep",
    "yup",
    "yes please",
    "sure",
    "ok",
    "okay",
    "correct",
    "right",
    "affirmative",
    "confirm",
    "confirmed",
    "absolutely",
    "definitely",
    "send",
    "go",
    "do",
    "please",
    "fine",
];

/// Whether `answer` agrees (true), refuses (false) or neither (None). A refusing word wins
/// ("yes, but not now" is a no): asking again costs less than doing what was not meant.
pub fn yes_or_no(answer: &str) -> Option<bool> {
    let words: Vec<String> = answer
        .to_lowercase()
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .map(|w| w.replace('\u{2019}', "'"))
        .collect();
    let has = |list: &[&str]| words.iter().any(|w| list.contains(&w.as_str()));
    let mind = words.windows(2).any(|w| w[0] == "never" && w[1] == "mind");
    if has(NO) || mind || words.iter().any(|w| w.ends_with("n't")) {
        Some(false)
    } else if has(YES) {
        Some(true)
    } else {
        None
    }
}

/// The first of `choices` whose words all appear in `answer` (compared normalised), if any.
fn choice(answer: &str, choices: &[String]) -> Option<String> {
    let heard = crate::intent::normalize(answer);
    let heard: Vec<&str> = heard.split_whitespace().collect();
    choices
        .iter()
        .find(|c| {
            let want = crate::intent::normalize(c);
            let mut want = want.split_whitespace().peekable();
            want.peek().is_some() && want.all(|w| heard.contains(&w))
        })
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_yes_no_or_neither() {
        for a in [
            "Yes.",
            "Yeah, send it.",
            "Okay",
            "Sure, go ahead.",
            "Send it",
        ] {
            assert_eq!(yes_or_no(a), Some(true), "{a}");
        }
        for a in [
            "No.",
            "Cancel.",
            "Don't send it.",
            "Yes, but not now.",
            "Never mind",
            "No, wait.",
        ] {
            assert_eq!(yes_or_no(a), Some(false), "{a}");
        }
        for a in ["Banana.", "What time is it?", ""] {
            assert_eq!(yes_or_no(a), None, "{a}");
        }
    }

    #[test]
    fn a_choice_is_found_by_its_words() {
        let choices = vec!["green tea".to_owned(), "coffee".to_owned()];
        assert_eq!(
            choice("Um, coffee please", &choices).as_deref(),
            Some("coffee")
        );
        assert_eq!(choice("Green tea.", &choices).as_deref(), Some("green tea"));
        assert_eq!(choice("tea", &choices), None);
    }

    #[tokio::test]
    async fn one_question_at_a_time_and_the_answer_reaches_it() {
        let q = Questions::default();
        assert_eq!(q.answer("yes"), None, "no question is open");
        let mut seen = q.subscribe();
        let pending = q.open("run-1", "Shall I?").unwrap();
        assert!(q.open("run-2", "And I?").is_err());
        seen.changed().await.unwrap();
        assert_eq!(seen.borrow().as_ref().unwrap().run_id, "run-1");
        let asked = q.answer("Yes please").unwrap();
        assert_eq!(asked.question, "Shall I?");
        assert_eq!(pending.answer().await.as_deref(), Some("Yes please"));
        assert_eq!(q.open_question(), None);
        // A question given up closes: the next utterance is a command again.
        let pending = q.open("run-3", "Now?").unwrap();
        drop(pending);
        assert_eq!(q.open_question(), None);
        assert_eq!(q.answer("yes"), None);
    }

    #[tokio::test]
    async fn the_action_waits_its_time_and_an_answer_ends_the_wait() {
        use crate::actions::{ActionConfig, execute};
        let services = crate::actions::tests::services();
        let cfg = ActionConfig::parse(
            "ask",
            &json!({"question": "Tea or coffee?", "wait": "1s", "choices": ["tea", "coffee"]}),
        )
        .unwrap();
        assert!(cfg.check().is_empty());
        let scope = crate::template::mj(json!({"run": {"id": "run-7"}}));
        let cancel = tokio_util::sync::CancellationToken::new();
        let redactor = crate::redact::Redactor::default();
        let ctx = ActionCtx {
            scope: &scope,
            services: &services,
            cancel: &cancel,
            redactor: &redactor,
        };
        // Nobody answers: after its wait the action ends, answered false, and the question closes.
        let started = std::time::Instant::now();
        let out = execute(&cfg, &ctx).await.unwrap();
        assert!(started.elapsed() >= Duration::from_secs(1));
        assert_eq!(out["answered"], json!(false));
        assert_eq!(
            (out["yes"].clone(), out["choice"].clone()),
            (Value::Null, Value::Null)
        );
        assert_eq!(services.questions.open_question(), None);
        // An answer given while the question is open ends the wait at once.
        let questions = services.questions.clone();
        let answering = async {
            let mut seen = questions.subscribe();
            let asked = seen
                .wait_for(Option::is_some)
                .await
                .unwrap()
                .clone()
                .unwrap();
            assert_eq!(
                (asked.run_id.as_str(), asked.question.as_str()),
                ("run-7", "Tea or coffee?")
            );
            questions.answer("Coffee, yes please.")
        };
        let (out, answered) = tokio::join!(execute(&cfg, &ctx), answering);
        assert!(answered.is_some());
        let out = out.unwrap();
        assert_eq!(out["answer"], json!("Coffee, yes please."));
        assert_eq!(
            (out["yes"].clone(), out["choice"].clone()),
            (json!(true), json!("coffee"))
        );
        // Out of bounds waits are refused at load, naming the field.
        let long = ActionConfig::parse("ask", &json!({"question": "?", "wait": "1h"})).unwrap();
        assert_eq!(long.check()[0].field, "wait");
    }
}
