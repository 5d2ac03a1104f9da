//! The Gmail REST v1 client over [`Integrations::call`]: search (Gmail's query syntax passed
//! through, `nextPageToken` followed up to a limit), read one message (headers, snippet, the
//! `text/plain` body decoded from base64url), the unread count, send and reply (an RFC 2822
//! message, base64url as `raw`; replies carry `In-Reply-To`, `References` and the thread id),
//! mark read and add/remove labels, and the history since a history id (for the new-mail
//! trigger: a stale id is [`GmailError::StaleHistory`], so the caller resyncs).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use serde::Serialize;
use serde_json::{Value, json};

use super::api::{ApiError, Request};
use super::mail::{Mail, MailQuery, MailSource, SourceError};
use super::{BoxFuture, IntegrationError, Integrations, Provider};

/// The most message ids one search returns.
pub const MAX_RESULTS: usize = 500;

/// What went wrong with Gmail.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GmailError {
    /// The call failed.
    #[error(transparent)]
    Call(#[from] IntegrationError),
    /// A header value would break the message (a line break in a subject or address).
    #[error("the {field} must be one line (it contains a line break)")]
    BadHeader {
        /// Which field.
        field: &'static str,
    },
    /// No recipient.
    #[error("a message needs a recipient (`to`)")]
    NoRecipient,
    /// The history id is too old (Gmail keeps about a week): resync from the profile.
    #[error("the Gmail history id is too old; starting again from now")]
    StaleHistory,
    /// An answer without the fields Gmail documents.
    #[error("Gmail answered without `{0}`")]
    Shape(&'static str),
}

/// One message as Atlas uses it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Message {
    /// The message id.
    pub id: String,
    /// Its thread.
    pub thread_id: String,
    /// `From`.
    pub from: String,
    /// The sender's name (or address) alone, for speaking.
    pub from_name: String,
    /// `To`.
    pub to: String,
    /// `Subject`.
    pub subject: String,
    /// `Date` as written.
    pub date: String,
    /// Gmail's snippet.
    pub snippet: String,
    /// The plain-text body, if the message has one.
    pub body: Option<String>,
    /// Whether it is unread.
    pub unread: bool,
    /// Its label ids.
    pub labels: Vec<String>,
    /// `Message-ID`, for replies.
    #[serde(skip)]
    pub message_id: String,
    /// `References`, for replies.
    #[serde(skip)]
    pub references: String,
}

/// New messages since a history id, and the id to poll from next.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    /// Ids of messages added, oldest first, without repeats.
    pub added: Vec<String>,
    /// The mailbox's history id now.
    pub history_id: String,
}

/// A message to send.
#[derive(Debug, Clone, Default)]
pub struct Outgoing {
    /// Recipients, comma-separated.
    pub to: String,
    /// The subject.
    pub subject: String,
    /// The plain-text body.
    pub body: String,
}

/// Gmail through `all`.
pub struct Gmail<'a> {
    all: &'a Integrations,
}

impl<'a> Gmail<'a> {
    /// The client.
    pub fn new(all: &'a Integrations) -> Gmail<'a> {
        Gmail { all }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/users/me{path}", self.all.api_url(Provider::Gmail))
    }

    async fn call(&self, req: Request) -> Result<Value, GmailError> {
        Ok(self.all.call(Provider::Gmail, &req).await?)
    }

    /// Ids of the messages matching `query` (Gmail's search syntax, e.g. `is:unread
    /// newer_than:1d`), newest first, at most `limit` (and [`MAX_RESULTS`]).
    pub async fn search(&self, query: &str, limit: usize) -> Result<Vec<String>, GmailError> {
        let limit = limit.clamp(1, MAX_RESULTS);
        let mut ids = Vec::new();
        let mut page: Option<String> = None;
        loop {
            let mut req = Request::get(self.url("/messages"))
                .query("maxResults", (limit - ids.len()).to_string());
            if !query.is_empty() {
                req = req.query("q", query);
            }
            if let Some(p) = &page {
                req = req.query("pageToken", p.clone());
            }
            let v = self.call(req).await?;
            for m in v["messages"].as_array().into_iter().flatten() {
                if let Some(id) = m["id"].as_str() {
                    ids.push(id.to_owned());
                }
            }
            page = v["nextPageToken"].as_str().map(str::to_owned);
            if page.is_none() || ids.len() >= limit {
                ids.truncate(limit);
                return Ok(ids);
            }
        }
    }

    /// One message, with its plain-text body.
    pub async fn message(&self, id: &str) -> Result<Message, GmailError> {
        let v = self
            .call(Request::get(self.url(&format!("/messages/{}", seg(id)))).query("format", "full"))
            .await?;
        parse_message(&v)
    }

    /// The messages matching `query`, read, at most `limit`.
    pub async fn messages(&self, query: &str, limit: usize) -> Result<Vec<Message>, GmailError> {
        let mut out = Vec::new();
        for id in self.search(query, limit).await? {
            out.push(self.message(&id).await?);
        }
        Ok(out)
    }

    /// Unread messages in the inbox.
    pub async fn unread_count(&self) -> Result<u64, GmailError> {
        let v = self.call(Request::get(self.url("/labels/INBOX"))).await?;
        v["messagesUnread"]
            .as_u64()
            .ok_or(GmailError::Shape("messagesUnread"))
    }

    /// Sends `msg`; returns the new message's id.
    pub async fn send(&self, msg: &Outgoing) -> Result<String, GmailError> {
        let raw = rfc2822(msg, None)?;
        let v = self
            .call(Request::post(
                self.url("/messages/send"),
                json!({ "raw": raw }),
            ))
            .await?;
        id_of(&v)
    }

    /// Replies to `to` (to its sender, `Re:` its subject, in its thread).
    pub async fn reply(&self, to: &Message, body: &str) -> Result<String, GmailError> {
        let subject = if to.subject.to_ascii_lowercase().starts_with("re:") {
            to.subject.clone()
        } else {
            format!("Re: {}", to.subject)
        };
        let msg = Outgoing {
            to: to.from.clone(),
            subject,
            body: body.to_owned(),
        };
        let raw = rfc2822(&msg, Some(to))?;
        let v = self
            .call(Request::post(
                self.url("/messages/send"),
                json!({ "raw": raw, "threadId": to.thread_id }),
            ))
            .await?;
        id_of(&v)
    }

    /// Adds and removes labels (`UNREAD`, `STARRED`, `IMPORTANT`, or a label id).
    pub async fn modify(
        &self,
        id: &str,
        add: &[String],
        remove: &[String],
    ) -> Result<(), GmailError> {
        self.call(Request::post(
            self.url(&format!("/messages/{}/modify", seg(id))),
            json!({ "addLabelIds": add, "removeLabelIds": remove }),
        ))
        .await?;
        Ok(())
    }

    /// Marks a message read.
    pub async fn mark_read(&self, id: &str) -> Result<(), GmailError> {
        self.modify(id, &[], &["UNREAD".to_owned()]).await
    }

    /// The mailbox's current history id.
    pub async fn history_id(&self) -> Result<String, GmailError> {
        let v = self.call(Request::get(self.url("/profile"))).await?;
        v["historyId"]
            .as_str()
            .map(str::to_owned)
            .ok_or(GmailError::Shape("historyId"))
    }

    /// Messages added since `start` (every page), and the history id to poll from next.
    pub async fn history_since(&self, start: &str) -> Result<History, GmailError> {
        let mut added: Vec<String> = Vec::new();
        let mut page: Option<String> = None;
        let mut history_id = start.to_owned();
        loop {
            let mut req = Request::get(self.url("/history"))
                .query("startHistoryId", start)
                .query("historyTypes", "messageAdded")
                .query("labelId", "INBOX");
            if let Some(p) = &page {
                req = req.query("pageToken", p.clone());
            }
            let v = match self.call(req).await {
                Err(GmailError::Call(IntegrationError::Api(ApiError::Http {
                    status: 404,
                    ..
                }))) => {
                    return Err(GmailError::StaleHistory);
                }
                other => other?,
            };
            for h in v["history"].as_array().into_iter().flatten() {
                for m in h["messagesAdded"].as_array().into_iter().flatten() {
                    if let Some(id) = m["message"]["id"].as_str()
                        && !added.iter().any(|a| a == id)
                    {
                        added.push(id.to_owned());
                    }
                }
            }
            if let Some(h) = v["historyId"].as_str() {
                history_id = h.to_owned();
            }
            page = v["nextPageToken"].as_str().map(str::to_owned);
            if page.is_none() {
                return Ok(History { added, history_id });
            }
        }
    }
}

/// A path segment: ids are URL-safe, but a template could hand over anything.
fn seg(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .collect()
}

fn id_of(v: &Value) -> Result<String, GmailError> {
    v["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or(GmailError::Shape("id"))
}

/// Reads Gmail's `format=full` message resource.
pub fn parse_message(v: &Value) -> Result<Message, GmailError> {
    let id = id_of(v)?;
    let headers = v["payload"]["headers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let header = |name: &str| {
        headers
            .iter()
            .find(|h| {
                h["name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .and_then(|h| h["value"].as_str())
            .unwrap_or("")
            .to_owned()
    };
    let labels: Vec<String> = v["labelIds"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l.as_str().map(str::to_owned))
        .collect();
    let from = header("From");
    Ok(Message {
        id,
        thread_id: v["threadId"].as_str().unwrap_or("").to_owned(),
        from_name: display_name(&from),
        from,
        to: header("To"),
        subject: header("Subject"),
        date: header("Date"),
        snippet: v["snippet"].as_str().unwrap_or("").to_owned(),
        body: plain_body(&v["payload"]),
        unread: labels.iter().any(|l| l == "UNREAD"),
        labels,
        message_id: header("Message-ID"),
        references: header("References"),
    })
}

/// `"Sam Lee" <sam@example.com>` -> `Sam Lee`; a bare address stays as it is.
pub fn display_name(from: &str) -> String {
    match from.split_once('<') {
        Some((name, addr)) => {
            let name = name.trim().trim_matches('"').trim();
            if name.is_empty() {
                addr.trim_end_matches('>').trim().to_owned()
            } else {
                name.to_owned()
            }
        }
        None => from.trim().to_owned(),
    }
}

/// The first `text/plain` part, depth first, decoded from base64url.
fn plain_body(part: &Value) -> Option<String> {
    let mime = part["mimeType"].as_str().unwrap_or("");
    if mime.eq_ignore_ascii_case("text/plain")
        && let Some(data) = part["body"]["data"].as_str()
    {
        return decode_b64url(data).map(|b| String::from_utf8_lossy(&b).into_owned());
    }
    part["parts"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(plain_body)
}

/// Gmail's base64url, padded or not.
pub fn decode_b64url(data: &str) -> Option<Vec<u8>> {
    let trimmed = data.trim();
    URL_SAFE_NO_PAD
        .decode(trimmed.trim_end_matches('='))
        .or_else(|_| URL_SAFE.decode(trimmed))
        .ok()
}

fn one_line(field: &'static str, v: &str) -> Result<(), GmailError> {
    if v.contains('\r') || v.contains('\n') {
        return Err(GmailError::BadHeader { field });
    }
    Ok(())
}

/// An RFC 2047 encoded word when `v` is not plain ASCII.
fn header_text(v: &str) -> String {
    if v.is_ascii() {
        v.to_owned()
    } else {
        format!("=?UTF-8?B?{}?=", STANDARD.encode(v.as_bytes()))
    }
}

/// The RFC 2822 message (UTF-8 text, base64 body lines of 76), base64url-encoded for `raw`.
pub fn rfc2822(msg: &Outgoing, reply_to: Option<&Message>) -> Result<String, GmailError> {
    if msg.to.trim().is_empty() {
        return Err(GmailError::NoRecipient);
    }
    one_line("recipient", &msg.to)?;
    one_line("subject", &msg.subject)?;
    let mut text = String::new();
    text.push_str(&format!("To: {}\r\n", msg.to.trim()));
    text.push_str(&format!("Subject: {}\r\n", header_text(&msg.subject)));
    if let Some(r) = reply_to {
        one_line("Message-ID", &r.message_id)?;
        one_line("References", &r.references)?;
        if !r.message_id.is_empty() {
            text.push_str(&format!("In-Reply-To: {}\r\n", r.message_id));
            let refs = format!("{} {}", r.references, r.message_id);
            text.push_str(&format!("References: {}\r\n", refs.trim()));
        }
    }
    text.push_str("MIME-Version: 1.0\r\n");
    text.push_str("Content-Type: text/plain; charset=\"UTF-8\"\r\n");
    text.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
    let body = STANDARD.encode(msg.body.as_bytes());
    for chunk in body.as_bytes().chunks(76) {
        text.push_str(&String::from_utf8_lossy(chunk));
        text.push_str("\r\n");
    }
    Ok(URL_SAFE_NO_PAD.encode(text.as_bytes()))
}

/// A Gmail message as the `mail` action gives it (its `Date` normalised to RFC 3339 in UTC,
/// so that it sorts with other accounts' mail).
pub fn to_mail(m: Message) -> Mail {
    // A wrong weekday ("Thu" on a Friday) does not make the date unreadable.
    let undated = m.date.split_once(", ").map_or(m.date.as_str(), |(_, d)| d);
    let date = chrono::DateTime::parse_from_rfc2822(&m.date)
        .or_else(|_| chrono::DateTime::parse_from_rfc2822(undated))
        .map(|d| {
            d.with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        })
        .unwrap_or(m.date);
    Mail {
        important: m.labels.iter().any(|l| l == "IMPORTANT"),
        id: m.id,
        account: String::new(),
        via: None,
        from: m.from,
        from_name: m.from_name,
        to: m.to,
        subject: m.subject,
        date,
        snippet: m.snippet,
        body: m.body,
        unread: m.unread,
    }
}

impl MailSource for Gmail<'_> {
    fn provider(&self) -> Provider {
        Provider::Gmail
    }

    fn label(&self) -> &'static str {
        "Gmail"
    }

    fn unread_count(&self) -> BoxFuture<'_, Result<u64, SourceError>> {
        Box::pin(async move { Gmail::unread_count(self).await.map_err(SourceError::of) })
    }

    fn list<'a>(&'a self, q: &'a MailQuery) -> BoxFuture<'a, Result<Vec<Mail>, SourceError>> {
        Box::pin(async move {
            let mut query = if q.text.trim().is_empty() {
                "in:inbox".to_owned()
            } else {
                q.text.trim().to_owned()
            };
            if q.unread {
                query.push_str(" is:unread");
            }
            let found = self.messages(&query, q.limit).await;
            Ok(found
                .map_err(SourceError::of)?
                .into_iter()
                .map(to_mail)
                .collect())
        })
    }

    fn read<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Mail, SourceError>> {
        Box::pin(async move { self.message(id).await.map(to_mail).map_err(SourceError::of) })
    }

    fn send<'a>(&'a self, m: &'a Outgoing) -> BoxFuture<'a, Result<Option<String>, SourceError>> {
        Box::pin(async move {
            Gmail::send(self, m)
                .await
                .map(Some)
                .map_err(SourceError::of)
        })
    }

    fn reply<'a>(&'a self, id: &'a str, body: &'a str) -> BoxFuture<'a, Result<Mail, SourceError>> {
        Box::pin(async move {
            let original = self.message(id).await.map_err(SourceError::of)?;
            Gmail::reply(self, &original, body)
                .await
                .map_err(SourceError::of)?;
            Ok(to_mail(original))
        })
    }

    fn mark_read<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), SourceError>> {
        Box::pin(async move { Gmail::mark_read(self, id).await.map_err(SourceError::of) })
    }
}

fn mailbox(all: &Integrations) -> Box<dyn MailSource + '_> {
    Box::new(Gmail::new(all))
}

/// Gmail's declaration in the registry: read, send, label and mark read; not delete.
pub const SPEC: super::Spec = super::google(
    "gmail",
    "Gmail",
    &["https://www.googleapis.com/auth/gmail.modify"],
    "https://gmail.googleapis.com/gmail/v1",
    "/users/me/profile",
    Some(mailbox),
    None,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_is_rfc_2822_with_encoded_subject_threading_headers_and_a_base64_body() {
        let orig = Message {
            id: "m1".into(),
            thread_id: "t1".into(),
            from: "\"Sam Lee\" <sam@example.com>".into(),
            from_name: "Sam Lee".into(),
            to: "me@example.com".into(),
            subject: "Lunch?".into(),
            date: String::new(),
            snippet: String::new(),
            body: None,
            unread: true,
            labels: vec![],
            message_id: "<abc@mail.example.com>".into(),
            references: "<zero@mail.example.com>".into(),
        };
        let out = Outgoing {
            to: orig.from.clone(),
            subject: "Re: Déjeuner".into(),
            body: "Yes — noon works.".into(),
        };
        let raw = rfc2822(&out, Some(&orig)).unwrap();
        let text = String::from_utf8(decode_b64url(&raw).unwrap()).unwrap();
        assert!(
            text.starts_with("To: \"Sam Lee\" <sam@example.com>\r\n"),
            "{text}"
        );
        assert!(
            text.contains("Subject: =?UTF-8?B?UmU6IETDqWpldW5lcg==?=\r\n"),
            "{text}"
        );
        assert!(text.contains("In-Reply-To: <abc@mail.example.com>\r\n"));
        assert!(text.contains("References: <zero@mail.example.com> <abc@mail.example.com>\r\n"));
        let body = text.split("\r\n\r\n").nth(1).unwrap().replace("\r\n", "");
        assert_eq!(
            String::from_utf8(STANDARD.decode(body).unwrap()).unwrap(),
            "Yes — noon works."
        );
        assert!(!raw.contains('+') && !raw.contains('/') && !raw.contains('='));
    }

    #[test]
    fn header_injection_and_a_missing_recipient_are_refused() {
        let bad = Outgoing {
            to: "a@example.com".into(),
            subject: "hi\r\nBcc: everyone@example.com".into(),
            body: String::new(),
        };
        assert!(matches!(
            rfc2822(&bad, None),
            Err(GmailError::BadHeader { field: "subject" })
        ));
        let none = Outgoing::default();
        assert!(matches!(rfc2822(&none, None), Err(GmailError::NoRecipient)));
        assert_eq!(display_name("\"Sam Lee\" <sam@example.com>"), "Sam Lee");
        assert_eq!(display_name("<x@example.com>"), "x@example.com");
        assert_eq!(display_name("x@example.com"), "x@example.com");
        assert_eq!(seg("abc/../def?x"), "abcdefx");
    }
}
