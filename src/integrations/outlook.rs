//! Outlook mail through Microsoft Graph, as a [`MailSource`]: the inbox's unread count
//! (`/me/mailFolders/inbox`, `unreadItemCount`), listings (the inbox newest first with `$orderby`,
//! `$filter=isRead eq false` for unread, or `$search` over the mailbox; `$select` and `$top`,
//! `@odata.nextLink` followed), one message read as plain text (`Prefer:
//! outlook.body-content-type="text"`), `sendMail`, `reply` and a `PATCH` of `isRead`.
//!
//! The trigger: [`NewMail`] publishes `mail.new` (`id` as `microsoft:ID`, `from`, `from_name`,
//! `subject`, `snippet`, `unread`, `account`) from a delta query of the inbox. Its state
//! (`integrations/microsoft-mail-watch.json`) keeps the `@odata.deltaLink`, the time of the last
//! poll and the ids announced lately; a message is new when it is in a delta, was received after
//! the previous poll began (a read flag changing on old mail is also in a delta) and was not
//! announced yet, so nothing is announced twice across restarts. The first poll only walks the
//! delta to its link. A delta link Graph no longer accepts (410 `SyncStateNotFound`, or a
//! 400 naming the sync state) starts again from now.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::api::Request;
use super::mail::{Mail, MailQuery, MailSource, Outgoing, SourceError};
use super::microsoft::{GraphError, PROVIDER, call, pages, seg, url};
use super::services::ServiceError;
use super::watch::Poller;
use super::{BoxFuture, Integrations, Provider, WatchCtx};
use crate::triggers::events::Event;

/// The fields a listing asks for.
const SELECT: &str = "id,subject,from,toRecipients,receivedDateTime,bodyPreview,isRead,importance";

/// Graph's largest `$top` for messages.
const MAX_TOP: usize = 50;

/// How many announced ids are remembered.
const SEEN_KEPT: usize = 500;

/// Outlook mail through `all`.
pub struct Outlook<'a> {
    all: &'a Integrations,
}

impl<'a> Outlook<'a> {
    /// The client.
    pub fn new(all: &'a Integrations) -> Outlook<'a> {
        Outlook { all }
    }

    /// The inbox's unread count.
    pub async fn unread_count(&self) -> Result<u64, GraphError> {
        let req = Request::get(url(self.all, "/me/mailFolders/inbox"))
            .query("$select", "unreadItemCount");
        let v = call(self.all, &req).await?;
        v["unreadItemCount"]
            .as_u64()
            .ok_or(GraphError::Shape("unreadItemCount"))
    }

    /// Messages matching `q`, newest first, at most `q.limit`.
    pub async fn list(&self, q: &MailQuery) -> Result<Vec<Mail>, GraphError> {
        let limit = q.limit.clamp(1, 100);
        let top = limit.min(MAX_TOP).to_string();
        let text = q.text.trim();
        let req = if text.is_empty() {
            let mut r = Request::get(url(self.all, "/me/mailFolders/inbox/messages"))
                .query("$select", SELECT)
                .query("$top", top)
                .query("$orderby", "receivedDateTime desc");
            if q.unread {
                r = r.query("$filter", "isRead eq false");
            }
            r
        } else {
            // `$search` orders by relevance and takes no `$orderby`; the merge sorts by date.
            let words = text.replace('"', " ");
            Request::get(url(self.all, "/me/messages"))
                .query("$search", format!("\"{words}\""))
                .query("$select", SELECT)
                .query("$top", top)
        };
        let (items, _) = pages(self.all, req, |n| n >= limit).await?;
        let mut out: Vec<Mail> = items
            .iter()
            .map(parse_mail)
            .filter(|m| !q.unread || m.unread)
            .collect();
        out.truncate(limit);
        Ok(out)
    }

    /// One message, its body as plain text.
    pub async fn message(&self, id: &str) -> Result<Mail, GraphError> {
        let mut req = Request::get(url(self.all, &format!("/me/messages/{}", seg(id))))
            .query("$select", format!("{SELECT},body"));
        req.headers
            .push(("Prefer".into(), "outlook.body-content-type=\"text\"".into()));
        let v = call(self.all, &req).await?;
        let mut m = parse_mail(&v);
        m.body = v["body"]["content"].as_str().map(|b| b.trim().to_owned());
        Ok(m)
    }

    /// Sends `msg` (saved to Sent Items).
    pub async fn send(&self, msg: &Outgoing) -> Result<(), GraphError> {
        let to: Vec<Value> = msg
            .to
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(|a| json!({ "emailAddress": { "address": a } }))
            .collect();
        if to.is_empty() {
            return Err(GraphError::Input(
                "a message needs a recipient (`to`)".into(),
            ));
        }
        let body = json!({
            "message": {
                "subject": msg.subject,
                "body": { "contentType": "Text", "content": msg.body },
                "toRecipients": to,
            },
            "saveToSentItems": true,
        });
        call(
            self.all,
            &Request::post(url(self.all, "/me/sendMail"), body),
        )
        .await?;
        Ok(())
    }

    /// Replies to message `id` (to its sender, in its conversation).
    pub async fn reply(&self, id: &str, body: &str) -> Result<(), GraphError> {
        let req = Request::post(
            url(self.all, &format!("/me/messages/{}/reply", seg(id))),
            json!({ "comment": body }),
        );
        call(self.all, &req).await?;
        Ok(())
    }

    /// Marks message `id` read.
    pub async fn mark_read(&self, id: &str) -> Result<(), GraphError> {
        let req = Request::new(
            reqwest::Method::PATCH,
            url(self.all, &format!("/me/messages/{}", seg(id))),
        )
        .json(json!({ "isRead": true }));
        call(self.all, &req).await?;
        Ok(())
    }

    /// The inbox's changes since `link` (a delta link), or from `since` when there is none: the
    /// changed messages (removed ones left out) and the next delta link.
    pub async fn delta(
        &self,
        link: Option<&str>,
        since: DateTime<Utc>,
    ) -> Result<(Vec<Mail>, String), GraphError> {
        let req = match link {
            Some(l) => Request::get(l),
            None => Request::get(url(self.all, "/me/mailFolders/inbox/messages/delta"))
                .query("$select", SELECT)
                .query(
                    "$filter",
                    format!(
                        "receivedDateTime ge {}",
                        since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    ),
                ),
        };
        let (items, delta) = pages(self.all, req, |_| false).await?;
        let delta = delta.ok_or(GraphError::Shape("@odata.deltaLink"))?;
        let changed = items
            .iter()
            .filter(|v| v.get("@removed").is_none())
            .map(parse_mail)
            .collect();
        Ok((changed, delta))
    }
}

/// Reads Graph's message resource (ids unqualified).
pub fn parse_mail(v: &Value) -> Mail {
    let text = |x: &Value| x.as_str().unwrap_or("").to_owned();
    let from = &v["from"]["emailAddress"];
    let (name, address) = (text(&from["name"]), text(&from["address"]));
    let to: Vec<String> = v["toRecipients"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["emailAddress"]["address"].as_str().map(str::to_owned))
        .collect();
    Mail {
        id: text(&v["id"]),
        account: String::new(),
        via: None,
        from: match (name.is_empty(), address.is_empty()) {
            (false, false) => format!("{name} <{address}>"),
            (true, _) => address.clone(),
            (false, true) => name.clone(),
        },
        from_name: if name.is_empty() { address } else { name },
        to: to.join(", "),
        subject: v["subject"]
            .as_str()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or("(no subject)")
            .to_owned(),
        date: text(&v["receivedDateTime"]),
        snippet: text(&v["bodyPreview"]),
        body: None,
        unread: v["isRead"] == Value::Bool(false),
        important: v["importance"] == "high",
    }
}

fn err(e: GraphError) -> SourceError {
    SourceError::of(e)
}

impl MailSource for Outlook<'_> {
    fn provider(&self) -> Provider {
        PROVIDER
    }

    fn label(&self) -> &'static str {
        "Outlook"
    }

    fn unread_count(&self) -> BoxFuture<'_, Result<u64, SourceError>> {
        Box::pin(async move { Outlook::unread_count(self).await.map_err(err) })
    }

    fn list<'a>(&'a self, q: &'a MailQuery) -> BoxFuture<'a, Result<Vec<Mail>, SourceError>> {
        Box::pin(async move { Outlook::list(self, q).await.map_err(err) })
    }

    fn read<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Mail, SourceError>> {
        Box::pin(async move { self.message(id).await.map_err(err) })
    }

    fn send<'a>(&'a self, m: &'a Outgoing) -> BoxFuture<'a, Result<Option<String>, SourceError>> {
        Box::pin(async move { Outlook::send(self, m).await.map(|()| None).map_err(err) })
    }

    fn reply<'a>(&'a self, id: &'a str, body: &'a str) -> BoxFuture<'a, Result<Mail, SourceError>> {
        Box::pin(async move {
            let original = self.message(id).await.map_err(err)?;
            Outlook::reply(self, id, body).await.map_err(err)?;
            Ok(original)
        })
    }

    fn mark_read<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), SourceError>> {
        Box::pin(async move { Outlook::mark_read(self, id).await.map_err(err) })
    }
}

/// Microsoft's mailbox.
pub fn mailbox(all: &Integrations) -> Box<dyn MailSource + '_> {
    Box::new(Outlook::new(all))
}

/// Microsoft's polling triggers: new mail, here; meetings are the calendar watch's.
pub fn watches(ctx: &WatchCtx<'_>) {
    ctx.spawn(NewMail);
}

/// What the new-mail watch remembers.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeltaState {
    /// The `@odata.deltaLink` to poll next.
    pub link: String,
    /// When the previous poll began (RFC 3339).
    pub since: String,
    /// Ids announced lately.
    pub seen: Vec<String>,
}

/// The `mail.new` source of Outlook; see the module docs.
pub struct NewMail;

impl Poller for NewMail {
    type State = DeltaState;
    const NAME: &'static str = "microsoft-mail";
    const PROVIDER: Provider = PROVIDER;

    async fn poll(
        &self,
        all: &Integrations,
        state: &mut DeltaState,
        first: bool,
    ) -> Result<Vec<Event>, ServiceError> {
        let now = Utc::now();
        let outlook = Outlook::new(all);
        let provider = |e: GraphError| ServiceError::Provider(e.to_string());
        if first || state.link.is_empty() {
            let (_, link) = outlook.delta(None, now).await.map_err(provider)?;
            *state = DeltaState {
                link,
                since: now.to_rfc3339(),
                seen: Vec::new(),
            };
            return Ok(Vec::new());
        }
        let (changed, link) = match outlook.delta(Some(&state.link), now).await {
            Ok(d) => d,
            Err(e) if stale(&e) => {
                tracing::warn!(
                    "Outlook no longer has this delta: mail since then is not announced"
                );
                let (_, link) = outlook.delta(None, now).await.map_err(provider)?;
                state.link = link;
                state.since = now.to_rfc3339();
                return Ok(Vec::new());
            }
            Err(e) => return Err(provider(e)),
        };
        // Mail received a little before the previous poll began may reach the delta late.
        let since = DateTime::parse_from_rfc3339(&state.since)
            .map(|t| t.with_timezone(&Utc) - chrono::Duration::minutes(5))
            .unwrap_or(now);
        let mut events = Vec::new();
        for m in changed {
            let received = DateTime::parse_from_rfc3339(&m.date).map(|t| t.with_timezone(&Utc));
            if state.seen.contains(&m.id) || !received.is_ok_and(|r| r >= since) {
                continue;
            }
            state.seen.push(m.id.clone());
            events.push(Event::new(
                PROVIDER.name(),
                "mail.new",
                json!({
                    "id": format!("microsoft:{}", m.id), "from": m.from, "from_name": m.from_name,
                    "subject": m.subject, "snippet": m.snippet, "unread": m.unread,
                    "account": "microsoft", "via": "Outlook", "queries": [],
                }),
            ));
        }
        let excess = state.seen.len().saturating_sub(SEEN_KEPT);
        state.seen.drain(..excess);
        state.link = link;
        state.since = now.to_rfc3339();
        Ok(events)
    }
}

/// Whether Graph refused a delta link as too old.
fn stale(e: &GraphError) -> bool {
    matches!(e, GraphError::Refused { status: 410, .. })
        || matches!(e, GraphError::Refused { code, .. } if code.contains("SyncState"))
}
