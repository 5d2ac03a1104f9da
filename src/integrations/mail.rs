//! Mail as a capability: [`MailSource`] is what an account that holds mail does (unread count,
//! list and search, read one, send, reply, mark read), implemented by Gmail ([`super::gmail`])
//! and Outlook ([`super::outlook`]); a provider offers it through [`super::Spec::mail`]. The
//! `mail` action's operations ([`run`]) go to every mail account that is connected: lists are
//! merged newest first, the unread count is given per account and in total, and when two
//! accounts answer each item says where it came from (`via`). Message ids are qualified with
//! their account (`microsoft:AAMk..`, `gmail:18c..`), so `read`, `reply` and `mark_read` find
//! their account again.
//!
//! Which accounts are asked ([`sources`]): those connected (or in error, or needing a new
//! sign-in, which then says so); with none, those configured (whose answer says how to
//! connect); with none configured, Gmail (its answer says how to configure it). One account
//! failing while another answers leaves its error in `skipped`; all failing is the first error.

use serde::Serialize;
use serde_json::{Value, json};

use super::{BoxFuture, Integrations, PROVIDERS, Provider, Spec};
use crate::actions::MailOp;

/// Why a mail or calendar account could not do something: its own message (which names it).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

impl SourceError {
    /// From any error with a message.
    pub fn of(e: impl std::fmt::Display) -> SourceError {
        SourceError(e.to_string())
    }
}

/// One message as the `mail` action gives it, whichever account it is in.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct Mail {
    /// `ACCOUNT:ID`, as `read`, `reply` and `mark_read` take it.
    pub id: String,
    /// The account (`gmail`, `microsoft`).
    pub account: String,
    /// Where it came from, for people (`Gmail`, `Outlook`), when more than one account answered.
    pub via: Option<String>,
    /// The sender, as written.
    pub from: String,
    /// The sender's name (or address) alone, for speaking.
    pub from_name: String,
    /// The recipients.
    pub to: String,
    /// The subject.
    pub subject: String,
    /// When it arrived (RFC 3339 where the provider says; as written otherwise).
    pub date: String,
    /// A short preview.
    pub snippet: String,
    /// The plain-text body, when read.
    pub body: Option<String>,
    /// Whether it is unread.
    pub unread: bool,
    /// Whether the provider marks it important (Gmail's label, Outlook's high importance).
    pub important: bool,
}

/// What to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MailQuery {
    /// Words to search for (empty: the inbox, newest first).
    pub text: String,
    /// Unread only.
    pub unread: bool,
    /// At most this many.
    pub limit: usize,
}

/// A message to send.
pub use super::gmail::Outgoing;

/// What an account that holds mail does. Ids here are the provider's own (unqualified).
pub trait MailSource: Send + Sync {
    /// The provider.
    fn provider(&self) -> Provider;
    /// Its name for people (`Gmail`, `Outlook`).
    fn label(&self) -> &'static str;
    /// The inbox's unread count.
    fn unread_count(&self) -> BoxFuture<'_, Result<u64, SourceError>>;
    /// Messages matching `q`, newest first.
    fn list<'a>(&'a self, q: &'a MailQuery) -> BoxFuture<'a, Result<Vec<Mail>, SourceError>>;
    /// One message with its plain-text body.
    fn read<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Mail, SourceError>>;
    /// Sends `m`; its id if the provider gives one.
    fn send<'a>(&'a self, m: &'a Outgoing) -> BoxFuture<'a, Result<Option<String>, SourceError>>;
    /// Replies to message `id` with `body`; the message replied to.
    fn reply<'a>(&'a self, id: &'a str, body: &'a str) -> BoxFuture<'a, Result<Mail, SourceError>>;
    /// Marks message `id` read.
    fn mark_read<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), SourceError>>;
}

/// A provider's mail capability: its [`MailSource`] over the integrations.
pub type MailFn = for<'a> fn(&'a Integrations) -> Box<dyn MailSource + 'a>;

/// The providers to ask for a capability (`has` says which have it); see the module docs.
pub fn sources(all: &Integrations, has: fn(&Spec) -> bool) -> Vec<Provider> {
    let with: Vec<Provider> = PROVIDERS
        .iter()
        .copied()
        .filter(|p| has(p.spec()))
        .collect();
    let connected: Vec<Provider> = with
        .iter()
        .copied()
        .filter(|p| all.status(*p).state != "disconnected")
        .collect();
    if !connected.is_empty() {
        return connected;
    }
    let configured: Vec<Provider> = with
        .iter()
        .copied()
        .filter(|p| {
            p.config(all.config())
                .is_some_and(|c| c.client_id.is_some())
        })
        .collect();
    if !configured.is_empty() {
        return configured;
    }
    with.into_iter().take(1).collect()
}

fn mailboxes(all: &Integrations) -> Vec<Box<dyn MailSource + '_>> {
    sources(all, |s| s.mail.is_some())
        .into_iter()
        .filter_map(|p| p.spec().mail.map(|make| make(all)))
        .collect()
}

/// The mailbox of a qualified id, and the provider's own id.
fn mailbox_of<'a>(
    all: &'a Integrations,
    id: &'a str,
) -> Result<(Box<dyn MailSource + 'a>, &'a str), SourceError> {
    let bad = || {
        SourceError(format!(
            "`{id}` is not a mail id: they are written ACCOUNT:ID, as the mail action's search gives them"
        ))
    };
    let (account, raw) = id.split_once(':').ok_or_else(bad)?;
    let p = Provider::parse(account).map_err(SourceError::of)?;
    let make = p.spec().mail.ok_or_else(bad)?;
    Ok((make(all), raw))
}

/// What each account that answered said, and what the failed ones said.
type Gathered<'a, T> = (Vec<(&'a dyn MailSource, T)>, Vec<Value>);

/// Answers of several accounts: the successes (with their source) and, when some failed but
/// not all, what each failed one said; all failing is the first error.
fn gather<'a, T>(
    boxes: &'a [Box<dyn MailSource + 'a>],
    results: Vec<Result<T, SourceError>>,
) -> Result<Gathered<'a, T>, SourceError> {
    let mut ok = Vec::new();
    let mut skipped = Vec::new();
    let mut first = None;
    for (b, r) in boxes.iter().zip(results) {
        match r {
            Ok(v) => ok.push((b.as_ref(), v)),
            Err(e) => {
                skipped.push(
                    json!({ "account": b.provider().name(), "via": b.label(), "error": e.0 }),
                );
                first.get_or_insert(e);
            }
        }
    }
    match (ok.is_empty(), first) {
        (true, Some(e)) => Err(e),
        _ => Ok((ok, skipped)),
    }
}

/// Qualifies `m` as coming from `src`, saying so when `several` accounts answered.
fn qualify(mut m: Mail, src: &dyn MailSource, several: bool) -> Mail {
    m.id = format!("{}:{}", src.provider().name(), m.id);
    m.account = src.provider().name().to_owned();
    m.via = several.then(|| src.label().to_owned());
    m
}

/// Several accounts' messages newest first (one account's keep the order it gave).
fn newest_first(ms: &mut [Mail], several: bool) {
    if several {
        // RFC 3339 in UTC sorts as text (each source normalises its dates).
        ms.sort_by(|a, b| b.date.cmp(&a.date));
    }
}

/// Merged listings, newest first, at most `limit`.
async fn listed(
    boxes: &[Box<dyn MailSource + '_>],
    q: &MailQuery,
) -> Result<(Vec<Mail>, Vec<Value>), SourceError> {
    let results = futures::future::join_all(boxes.iter().map(|b| b.list(q))).await;
    let (ok, skipped) = gather(boxes, results)?;
    let several = boxes.len() > 1;
    let mut out: Vec<Mail> = ok
        .into_iter()
        .flat_map(|(src, ms)| ms.into_iter().map(move |m| qualify(m, src, several)))
        .collect();
    newest_first(&mut out, several);
    out.truncate(q.limit.max(1));
    Ok((out, skipped))
}

/// Carries out one `mail` operation over the connected accounts; see the module docs.
pub async fn run(all: &Integrations, op: MailOp) -> Result<Value, SourceError> {
    let boxes = mailboxes(all);
    Ok(match op {
        MailOp::Unread { limit } => {
            let q = MailQuery {
                unread: true,
                limit,
                ..MailQuery::default()
            };
            let q = &q;
            let both = futures::future::join_all(boxes.iter().map(|b| async move {
                Ok::<_, SourceError>((b.unread_count().await?, b.list(q).await?))
            }))
            .await;
            let (ok, skipped) = gather(&boxes, both)?;
            let several = boxes.len() > 1;
            let mut messages: Vec<Mail> = ok
                .iter()
                .flat_map(|(src, (_, ms))| ms.iter().map(|m| qualify(m.clone(), *src, several)))
                .collect();
            newest_first(&mut messages, several);
            messages.truncate(limit.max(1));
            let total: u64 = ok.iter().map(|(_, (n, _))| n).sum();
            let important = messages.iter().filter(|m| m.important).count();
            let accounts: Vec<Value> = ok
                .iter()
                .map(|(src, (n, _))| json!({ "account": src.provider().name(), "via": src.label(), "count": n }))
                .collect();
            json!({
                "count": total, "important": important, "messages": messages,
                "accounts": accounts, "several": several, "skipped": skipped,
            })
        }
        MailOp::Search {
            query,
            unread,
            limit,
        } => {
            let q = MailQuery {
                text: query,
                unread,
                limit,
            };
            let (messages, skipped) = listed(&boxes, &q).await?;
            json!({ "count": messages.len(), "messages": messages, "skipped": skipped })
        }
        MailOp::Read { id } => {
            let (b, raw) = mailbox_of(all, &id)?;
            json!(qualify(b.read(raw).await?, b.as_ref(), false))
        }
        MailOp::Send {
            to,
            subject,
            body,
            account,
        } => {
            let b = match account.as_deref().filter(|a| !a.is_empty()) {
                Some(a) => {
                    let p = Provider::parse(a).map_err(SourceError::of)?;
                    let make = p.spec().mail.ok_or_else(|| {
                        SourceError(format!("{a} holds no mail: send from {}", mail_names()))
                    })?;
                    make(all)
                }
                None => boxes
                    .into_iter()
                    .next()
                    .ok_or_else(|| SourceError("no mail account is connected".into()))?,
            };
            let id = b
                .send(&Outgoing {
                    to: to.clone(),
                    subject,
                    body,
                })
                .await?;
            json!({ "id": id, "to": to, "account": b.provider().name(), "via": b.label() })
        }
        MailOp::Reply { id, body } => {
            let (b, raw) = mailbox_of(all, &id)?;
            let original = b.reply(raw, &body).await?;
            json!({ "id": id, "to": original.from, "to_name": original.from_name, "subject": original.subject, "via": b.label() })
        }
        MailOp::MarkRead { id } => {
            let (b, raw) = mailbox_of(all, &id)?;
            b.mark_read(raw).await?;
            json!({ "id": id, "read": true })
        }
    })
}

/// The providers that hold mail, for messages.
pub fn mail_names() -> String {
    PROVIDERS
        .iter()
        .filter(|p| p.spec().mail.is_some())
        .map(|p| p.name())
        .collect::<Vec<_>>()
        .join(" or ")
}
