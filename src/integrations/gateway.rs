//! The integration manager as the actions' [`Accounts`] gateway: the `gmail` action's
//! operations carried out with the [`Gmail`] client, answered as JSON a workflow template reads
//! (`messages[i].from_name`, `subject`, `snippet`, ...; `unread.count`), and the service kinds'
//! operations handed to [`super::services`].

use serde_json::{Value, json};

use super::Integrations;
use super::calendar::{Calendar, CalendarError, start_from_slots};
use super::gmail::{Gmail, GmailError, Outgoing};
use crate::actions::{Accounts, AccountsFuture, CalendarOp, GmailOp, ServiceOp};

impl Accounts for Integrations {
    fn gmail(&self, op: GmailOp) -> AccountsFuture<'_> {
        Box::pin(async move { gmail(self, op).await.map_err(|e| e.to_string()) })
    }

    fn calendar(&self, op: CalendarOp) -> AccountsFuture<'_> {
        Box::pin(async move { calendar(self, op).await.map_err(|e| e.to_string()) })
    }

    fn service(&self, kind: &'static str, op: ServiceOp) -> AccountsFuture<'_> {
        Box::pin(async move {
            super::services::run(self, kind, &op)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

async fn calendar(all: &Integrations, op: CalendarOp) -> Result<Value, CalendarError> {
    let c = Calendar::new(all);
    Ok(match op {
        CalendarOp::Today { limit } => {
            let events = c.today(limit).await?;
            let first = events.iter().find(|e| !e.all_day).cloned();
            json!({ "count": events.len(), "events": events, "first": first })
        }
        CalendarOp::Next => json!({ "next": c.next_meeting().await? }),
        CalendarOp::Create {
            title,
            day,
            time,
            minutes,
        } => {
            let start = start_from_slots(&day, &time, chrono::Local::now())?;
            json!(c.create(&title, start, minutes).await?)
        }
        CalendarOp::FreeBusy { hours } => {
            let now = chrono::Local::now().fixed_offset();
            let busy = c
                .free_busy(now, now + chrono::Duration::hours(hours))
                .await?;
            let busy: Vec<Value> = busy
                .into_iter()
                .map(|(s, e)| json!({ "start": s, "end": e }))
                .collect();
            json!({ "busy": busy, "free": busy.is_empty() })
        }
    })
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
