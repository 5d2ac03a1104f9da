//! The `gmail` kind: one action kind for the Gmail integration, its operation chosen by `op`:
//! `search` (messages matching Gmail's query syntax, read), `read` (one message), `unread` (the
//! inbox's unread count and the top unread senders and subjects), `send`, `reply` (to a message
//! by id, in its thread), `mark_read`, `labels` (add/remove).
//!
//! **Boundary**: actions cannot reach the integrations (a higher layer); they call the
//! [`Accounts`] gateway in [`super::Services`], which the runtime fills with the integration
//! manager. Without one (a plain engine), the action fails saying so.

use std::future::Future;
use std::pin::Pin;

use serde::Deserialize;
use serde_json::Value;

use super::{ActionCtx, ActionError, ActionKind, LeafKind};
use crate::spec::Problem;
use crate::template::Tmpl;

/// One Gmail operation, its template fields rendered.
#[derive(Debug, Clone, PartialEq)]
pub enum GmailOp {
    /// Messages matching `query`, at most `limit`.
    Search {
        /// Gmail's search syntax.
        query: String,
        /// How many.
        limit: usize,
    },
    /// One message.
    Read {
        /// Its id.
        id: String,
    },
    /// The unread count and the top `limit` unread messages.
    Unread {
        /// How many to describe.
        limit: usize,
    },
    /// A new message.
    Send {
        /// Recipients.
        to: String,
        /// Subject.
        subject: String,
        /// Plain text.
        body: String,
    },
    /// A reply to message `id`.
    Reply {
        /// The message replied to.
        id: String,
        /// Plain text.
        body: String,
    },
    /// Marks `id` read.
    MarkRead {
        /// The message.
        id: String,
    },
    /// Adds and removes labels on `id`.
    Labels {
        /// The message.
        id: String,
        /// Labels to add.
        add: Vec<String>,
        /// Labels to remove.
        remove: Vec<String>,
    },
}

/// The future an [`Accounts`] call returns.
pub type AccountsFuture<'a> = Pin<Box<dyn Future<Output = Result<Value, String>> + Send + 'a>>;

/// What actions call the integrations through (implemented by the integration manager).
pub trait Accounts: Send + Sync + 'static {
    /// Carries out one Gmail operation; `Err` is a message for the user.
    fn gmail(&self, op: GmailOp) -> AccountsFuture<'_>;
    /// Carries out one Calendar operation; `Err` is a message for the user.
    fn calendar(&self, op: super::calendar::CalendarOp) -> AccountsFuture<'_>;
    /// Carries out one operation of the `mail` kind (every connected mail account); `Err` is a
    /// message for the user.
    fn mail(&self, op: super::MailOp) -> AccountsFuture<'_> {
        let _ = op;
        Box::pin(async move { Err("no mail accounts here".to_owned()) })
    }
    /// Carries out one operation of the service integration `kind` (`github`, `slack`, ...);
    /// `Err` is a message for the user.
    fn service(&self, kind: &'static str, op: super::ServiceOp) -> AccountsFuture<'_> {
        let _ = op;
        Box::pin(async move { Err(format!("no {kind} integration here")) })
    }
}

/// Which operation.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// See [`GmailOp::Search`].
    Search,
    /// See [`GmailOp::Read`].
    Read,
    /// See [`GmailOp::Unread`].
    Unread,
    /// See [`GmailOp::Send`].
    Send,
    /// See [`GmailOp::Reply`].
    Reply,
    /// See [`GmailOp::MarkRead`].
    MarkRead,
    /// See [`GmailOp::Labels`].
    Labels,
}

/// Config of a `gmail` action.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GmailConfig {
    /// The operation.
    pub op: Op,
    /// `search`: the query (e.g. `is:unread newer_than:1d`).
    #[serde(default)]
    pub query: Option<Tmpl>,
    /// `search`, `unread`: how many messages (default 5, at most 50).
    #[serde(default)]
    pub limit: Option<usize>,
    /// `read`, `reply`, `mark_read`, `labels`: the message id.
    #[serde(default)]
    pub id: Option<Tmpl>,
    /// `send`: recipients.
    #[serde(default)]
    pub to: Option<Tmpl>,
    /// `send`: subject.
    #[serde(default)]
    pub subject: Option<Tmpl>,
    /// `send`, `reply`: the text.
    #[serde(default)]
    pub body: Option<Tmpl>,
    /// `labels`: label ids to add.
    #[serde(default)]
    pub add: Vec<String>,
    /// `labels`: label ids to remove.
    #[serde(default)]
    pub remove: Vec<String>,
}

/// The most messages one action reads.
const MAX_LIMIT: usize = 50;

/// The `gmail` kind.
pub struct Gmail;

impl ActionKind for Gmail {
    const NAME: &'static str = "gmail";
    const DOC: &'static str = "Gmail: search, read, unread, send, reply, mark_read, labels (atlas integration connect gmail).";
    type Config = GmailConfig;

    fn check(c: &GmailConfig) -> Vec<Problem> {
        let needs: &[(&str, bool)] = match c.op {
            Op::Search => &[],
            Op::Unread => &[],
            Op::Read | Op::MarkRead => &[("id", c.id.is_some())],
            Op::Send => &[
                ("to", c.to.is_some()),
                ("subject", c.subject.is_some()),
                ("body", c.body.is_some()),
            ],
            Op::Reply => &[("id", c.id.is_some()), ("body", c.body.is_some())],
            Op::Labels => &[("id", c.id.is_some())],
        };
        let mut problems: Vec<Problem> = needs
            .iter()
            .filter(|(_, present)| !present)
            .map(|(field, _)| Problem::new(*field, "this gmail operation needs it"))
            .collect();
        if c.limit.is_some_and(|l| l == 0 || l > MAX_LIMIT) {
            problems.push(Problem::new("limit", "between 1 and 50"));
        }
        if c.op == Op::Labels && c.add.is_empty() && c.remove.is_empty() {
            problems.push(Problem::new("add", "name labels to add or remove"));
        }
        problems
    }
}

impl LeafKind for Gmail {
    async fn execute(c: &GmailConfig, ctx: &ActionCtx<'_>) -> Result<Value, ActionError> {
        let render = |t: &Option<Tmpl>| -> Result<String, ActionError> {
            Ok(match t {
                Some(t) => t.render(ctx.scope)?,
                None => String::new(),
            })
        };
        let limit = c.limit.unwrap_or(5).clamp(1, MAX_LIMIT);
        let op = match c.op {
            Op::Search => GmailOp::Search {
                query: render(&c.query)?,
                limit,
            },
            Op::Read => GmailOp::Read { id: render(&c.id)? },
            Op::Unread => GmailOp::Unread { limit },
            Op::Send => GmailOp::Send {
                to: render(&c.to)?,
                subject: render(&c.subject)?,
                body: render(&c.body)?,
            },
            Op::Reply => GmailOp::Reply {
                id: render(&c.id)?,
                body: render(&c.body)?,
            },
            Op::MarkRead => GmailOp::MarkRead { id: render(&c.id)? },
            Op::Labels => GmailOp::Labels {
                id: render(&c.id)?,
                add: c.add.clone(),
                remove: c.remove.clone(),
            },
        };
        let Some(accounts) = &ctx.services.accounts else {
            return Err(ActionError::Integration(
                "no integrations here (run it with `atlas workflow run` or in the daemon)".into(),
            ));
        };
        accounts.gmail(op).await.map_err(ActionError::Integration)
    }
}
