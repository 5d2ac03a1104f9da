//! The integration manager as the actions' [`Accounts`] gateway: `mail` and `calendar` go to
//! the capabilities ([`super::mail`], [`super::agenda`]); the `gmail` action's
//! operations carried out with the [`Gmail`] client, answered as JSON a workflow template reads
//! (`messages[i].from_name`, `subject`, `snippet`, ...; `unread.count`), and the service kinds'
//! operations handed to [`super::services`].

use serde_json::{Value, json};

use super::Integrations;
use super::gmail::{Gmail, GmailError, Outgoing};
use crate::actions::{Accounts, AccountsFuture, CalendarOp, GmailOp, MailOp, ServiceOp};

impl Accounts for Integrations {
    fn gmail(&self, op: GmailOp) -> AccountsFuture<'_> {
        Box::pin(async move { gmail(self, op).await.map_err(|e| e.to_string()) })
    }

    fn calendar(&self, op: CalendarOp) -> AccountsFuture<'_> {
        Box::pin(async move { super::agenda::run(self, op).await.map_err(|e| e.0) })
    }

    fn mail(&self, op: MailOp) -> AccountsFuture<'_> {
        Box::pin(async move { super::mail::run(self, op).await.map_err(|e| e.0) })
    }

    fn service(&self, kind: &'static str, op: ServiceOp) -> AccountsFuture<'_> {
        Box::pin(async move {
            super::services::run(self, kind, &op)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

async fn gmail(all: &Integrations, op: GmailOp) -> Result<Value, GmailError> {
    let g = Gmail::new(all);
    Ok(match op {
        GmailOp::Search { query, limit } => {
            let messages = g.messages(&query, limit).await?;
            json!({ "count": messages.len(), "messages": messages })
        }
        GmailOp::Read { id } => json!(g.message(&id).await?),
        GmailOp::Unread { limit } => {
            let count = g.unread_count().await?;
            let messages = g.messages("is:unread in:inbox", limit).await?;
            let important = messages
                .iter()
                .filter(|m| m.labels.iter().any(|l| l == "IMPORTANT"))
                .count();
            json!({ "count": count, "important": important, "messages": messages })
        }
        GmailOp::Send { to, subject, body } => {
            let id = g
                .send(&Outgoing {
                    to: to.clone(),
                    subject,
                    body,
                })
                .await?;
            json!({ "id": id, "to": to })
        }
        GmailOp::Reply { id, body } => {
            let original = g.message(&id).await?;
            let sent = g.reply(&original, &body).await?;
            json!({ "id": sent, "to": original.from, "to_name": original.from_name, "subject": original.subject })
        }
        GmailOp::MarkRead { id } => {
            g.mark_read(&id).await?;
            json!({ "id": id, "read": true })
        }
        GmailOp::Labels { id, add, remove } => {
            g.modify(&id, &add, &remove).await?;
            json!({ "id": id, "added": add, "removed": remove })
        }
    })
}
