//! The `mail` kind: the mail of every connected account (Gmail, Outlook, ...), its operation
//! chosen by `op`: `unread` (the unread count per account and in total, and the newest unread
//! messages), `search` (messages matching `query`, words each account searches its own way;
//! `unread: true` for unread ones only; no query: the inbox, newest first), `read` (one message
//! by the `ACCOUNT:ID` a search gave), `send` (from `account`, or the first connected one),
//! `reply`, `mark_read`. Like `gmail`, it reaches the integrations through [`super::Accounts`].
//! The `gmail` kind stays for workflows written for Gmail alone (Gmail's query syntax, labels).

use serde::Deserialize;
use serde_json::Value;

use super::{ActionCtx, ActionError, ActionKind, LeafKind};
use crate::spec::Problem;
use crate::template::Tmpl;

/// One mail operation, its template fields rendered.
#[derive(Debug, Clone, PartialEq)]
pub enum MailOp {
    /// The unread count and the newest `limit` unread messages.
    Unread {
        /// How many to describe.
        limit: usize,
    },
    /// Messages matching `query` (empty: the inbox).
    Search {
        /// Words to search for.
        query: String,
        /// Unread only.
        unread: bool,
        /// How many.
        limit: usize,
    },
    /// One message.
    Read {
        /// `ACCOUNT:ID`.
        id: String,
    },
    /// A new message.
    Send {
        /// Recipients.
        to: String,
        /// Subject.
        subject: String,
        /// Plain text.
        body: String,
        /// The account to send from (default: the first connected).
        account: Option<String>,
    },
    /// A reply to message `id`.
    Reply {
        /// `ACCOUNT:ID`.
        id: String,
        /// Plain text.
        body: String,
    },
    /// Marks `id` read.
    MarkRead {
        /// `ACCOUNT:ID`.
        id: String,
    },
}

/// Which operation.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// See [`MailOp::Unread`].
    Unread,
    /// See [`MailOp::Search`].
    Search,
    /// See [`MailOp::Read`].
    Read,
    /// See [`MailOp::Send`].
    Send,
    /// See [`MailOp::Reply`].
    Reply,
    /// See [`MailOp::MarkRead`].
    MarkRead,
}

/// Config of a `mail` action.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    /// The operation.
    pub op: Op,
    /// `search`: the words.
    #[serde(default)]
    pub query: Option<Tmpl>,
    /// `search`: unread only.
    #[serde(default)]
    pub unread: bool,
    /// `search`, `unread`: how many messages (default 5, at most 50).
    #[serde(default)]
    pub limit: Option<usize>,
    /// `read`, `reply`, `mark_read`: the message's `ACCOUNT:ID`.
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
    /// `send`: the account (`gmail`, `microsoft`).
    #[serde(default)]
    pub account: Option<Tmpl>,
}

/// The most messages one action reads.
const MAX_LIMIT: usize = 50;

/// The `mail` kind.
pub struct Mail;

impl ActionKind for Mail {
    const NAME: &'static str = "mail";
    const DOC: &'static str = "Mail of every connected account (Gmail, Outlook): unread, search, read, send, reply, mark_read.";
    type Config = MailConfig;

    fn check(c: &MailConfig) -> Vec<Problem> {
        let needs: &[(&str, bool)] = match c.op {
            Op::Unread | Op::Search => &[],
            Op::Read | Op::MarkRead => &[("id", c.id.is_some())],
            Op::Send => &[
                ("to", c.to.is_some()),
                ("subject", c.subject.is_some()),
                ("body", c.body.is_some()),
            ],
            Op::Reply => &[("id", c.id.is_some()), ("body", c.body.is_some())],
        };
        let mut problems: Vec<Problem> = needs
            .iter()
            .filter(|(_, present)| !present)
            .map(|(field, _)| Problem::new(*field, "this mail operation needs it"))
            .collect();
        if c.limit.is_some_and(|l| l == 0 || l > MAX_LIMIT) {
            problems.push(Problem::new("limit", "between 1 and 50"));
        }
        problems
    }
}

impl LeafKind for Mail {
    async fn execute(c: &MailConfig, ctx: &ActionCtx<'_>) -> Result<Value, ActionError> {
        let render = |t: &Option<Tmpl>| -> Result<String, ActionError> {
            Ok(match t {
                Some(t) => t.render(ctx.scope)?,
                None => String::new(),
            })
        };
        let limit = c.limit.unwrap_or(5).clamp(1, MAX_LIMIT);
        let op = match c.op {
            Op::Unread => MailOp::Unread { limit },
            Op::Search => MailOp::Search {
                query: render(&c.query)?,
                unread: c.unread,
                limit,
            },
            Op::Read => MailOp::Read { id: render(&c.id)? },
            Op::Send => MailOp::Send {
                to: render(&c.to)?,
                subject: render(&c.subject)?,
                body: render(&c.body)?,
                account: Some(render(&c.account)?).filter(|a| !a.trim().is_empty()),
            },
            Op::Reply => MailOp::Reply {
                id: render(&c.id)?,
                body: render(&c.body)?,
            },
            Op::MarkRead => MailOp::MarkRead { id: render(&c.id)? },
        };
        let Some(accounts) = &ctx.services.accounts else {
            return Err(ActionError::Integration(
                "no integrations here (run it with `atlas workflow run` or in the daemon)".into(),
            ));
        };
        accounts.mail(op).await.map_err(ActionError::Integration)
    }
}

#[cfg(test)]
mod tests {
    use crate::actions::ActionConfig;
    use serde_json::json;

    #[test]
    fn each_operation_names_the_fields_it_misses_and_limits_are_bounded() {
        let ok = ActionConfig::parse(
            "mail",
            &json!({"op": "search", "query": "invoice", "unread": true}),
        )
        .unwrap();
        assert!(ok.check().is_empty(), "{:?}", ok.check());
        let reply = ActionConfig::parse("mail", &json!({"op": "reply", "id": "gmail:1"})).unwrap();
        assert_eq!(reply.check()[0].field, "body");
        let send = ActionConfig::parse("mail", &json!({"op": "send", "to": "a@b.c"})).unwrap();
        let fields: Vec<String> = send.check().into_iter().map(|p| p.field).collect();
        assert_eq!(fields, ["subject", "body"]);
        let many = ActionConfig::parse("mail", &json!({"op": "unread", "limit": 500})).unwrap();
        assert_eq!(many.check()[0].field, "limit");
        // Gmail's own fields are not the mail kind's.
        let err =
            ActionConfig::parse("mail", &json!({"op": "unread", "labels": ["X"]})).unwrap_err();
        assert!(err.to_string().contains("unknown field `labels`"), "{err}");
        // The gmail kind still loads as it did.
        let old =
            ActionConfig::parse("gmail", &json!({"op": "search", "query": "in:inbox"})).unwrap();
        assert!(old.check().is_empty());
    }
}
