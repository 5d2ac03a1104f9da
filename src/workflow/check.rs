//! The semantic checks of one parsed workflow: its id, its triggers (cron strings, time zones,
//! webhook paths, voice phrases), its bounds and concurrency, then its action graph (`graph`)
//! and entry. Every check runs, so one pass lists every problem of a file.

use std::path::Path;
use std::str::FromStr;

use super::def::{MissedPolicy, Mode, TriggerDef, WorkflowDef};
use super::load::{Checker, LoadError};
use super::{Schedule, Workflow};
use crate::spec::{ActionDef, Scheme, hook_path, secret_ref};

/// Checks `def` and builds its [`Workflow`]; `None` when its graph could not be built (the
/// problems are in `c`).
pub(super) fn check(def: WorkflowDef, c: &mut Checker<'_>, file: &Path) -> Option<Workflow> {
    check_header(&def, c);
    let (schedules, warnings) = check_triggers(&def.triggers, c);
    for p in super::limits::check_workflow(&def) {
        c.err(p.field, p.message);
    }
    if def.concurrency.max == 0 && matches!(def.concurrency.mode, Mode::Parallel | Mode::Queued) {
        c.err("concurrency.max", "must be at least 1");
    }
    if def.actions.is_empty() {
        c.err(
            "actions",
            "the workflow has no actions: an entry action is required",
        );
        return None;
    }
    let mut graph = super::graph::build_graph(&def.actions, "actions", c)?;
    if let Some(entry) = &def.entry {
        match graph.find(entry) {
            Some(idx) => graph.entry = idx,
            None => c.err(
                "entry",
                format!(
                    "entry action `{entry}` does not exist; actions are: {}",
                    ids(&def.actions)
                ),
            ),
        }
    }
    Some(Workflow {
        def,
        source: file.to_path_buf(),
        graph,
        schedules,
        warnings,
    })
}

/// The ids of `actions`, for messages.
pub(super) fn ids(actions: &[ActionDef]) -> String {
    actions
        .iter()
        .map(|a| a.id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The workflow's id, and that it has a trigger.
fn check_header(def: &WorkflowDef, c: &mut Checker<'_>) {
    if def.id.is_empty()
        || !def
            .id
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
    {
        c.err(
            "id",
            format!(
                "`{}` is not a valid workflow id: use letters, digits, `_` and `-`",
                def.id
            ),
        );
    }
    if def.triggers.is_empty() {
        c.err(
            "triggers",
            "no trigger: add at least one, e.g. `triggers: [{type: manual}]`",
        );
    }
}

/// The event types Atlas's own sources publish (`triggers::events`), and those the integrations
/// are to publish: an `event` trigger naming another is a warning (a typo never fires).
pub const KNOWN_EVENTS: &[&str] = &[
    "run.finished",
    "run.failed",
    "agent.stage",
    "file.created",
    "file.modified",
    "file.removed",
    "session.locked",
    "session.unlocked",
    "system.suspend",
    "system.resume",
    "network.up",
    "network.down",
    "mail.new",
    "calendar.soon",
    "integration.connected",
    "integration.disconnected",
    "integration.error",
    "integration.needs_reauth",
];

/// Checks every trigger; returns the parsed schedules and the warnings (event types nothing
/// publishes).
fn check_triggers(triggers: &[TriggerDef], c: &mut Checker<'_>) -> (Vec<Schedule>, Vec<LoadError>) {
    let mut schedules = Vec::new();
    let mut warnings = Vec::new();
    for (i, t) in triggers.iter().enumerate() {
        let field = format!("triggers[{i}]");
        match t {
            TriggerDef::Schedule {
                cron,
                timezone,
                missed,
            } => schedules.extend(check_schedule(i, cron, timezone.as_deref(), *missed, c)),
            TriggerDef::Webhook {
                path,
                secret,
                scheme,
            } => check_webhook(&field, path, secret.as_deref(), *scheme, c),
            TriggerDef::Event {
                event,
                filter,
                query,
                ..
            } => {
                if let Some(Err(why)) = filter.as_deref().map(crate::template::Expr::parse) {
                    c.err(format!("{field}.filter"), why);
                }
                match query.as_deref() {
                    Some(_) if event != "mail.new" => c.err(
                        format!("{field}.query"),
                        format!("`query` is a Gmail search and only `mail.new` has one, not `{event}`: use `filter` for other events"),
                    ),
                    Some(q) if q.trim().is_empty() => c.err(
                        format!("{field}.query"),
                        "an empty Gmail query: expected e.g. `from:boss is:important`, or no `query`",
                    ),
                    _ => {}
                }
                if event.trim().is_empty() {
                    c.err(
                        format!("{field}.event"),
                        "empty event type: expected e.g. `run.failed`",
                    );
                } else if !KNOWN_EVENTS.contains(&event.as_str()) {
                    warnings.push(c.at(
                        format!("{field}.event"),
                        format!(
                            "no event source of Atlas publishes `{event}` (known: {}); an \
                             integration may, else this trigger never fires",
                            KNOWN_EVENTS.join(", ")
                        ),
                    ));
                }
            }
            TriggerDef::Voice { phrases, ack } => {
                check_phrases(&field, phrases, c);
                if let Some(ack) = ack {
                    check_ack(&field, ack, c);
                }
            }
            TriggerDef::Manual {} => {}
        }
    }
    (schedules, warnings)
}

/// A webhook trigger: a URL path, and a scheme with a secret reference (or `scheme: none`).
fn check_webhook(
    field: &str,
    path: &str,
    secret: Option<&str>,
    scheme: Option<Scheme>,
    c: &mut Checker<'_>,
) {
    if !path.starts_with('/') || path.contains(char::is_whitespace) || hook_path(path).is_empty() {
        c.err(
            format!("{field}.path"),
            format!(
                "`{path}` is not a URL path: expected e.g. `/deploy` (served at /hooks/deploy)"
            ),
        );
    }
    match (scheme, secret) {
        (None, _) => c.err(
            format!("{field}.scheme"),
            "a webhook needs `scheme`: github, slack or standard with a `secret`, or an explicit \
             `scheme: none` (anyone who reaches the port may start it)",
        ),
        (Some(Scheme::None), Some(_)) => c.err(
            format!("{field}.secret"),
            "`scheme: none` checks no signature, so a secret would not be used: name a scheme \
             (github, slack, standard) or remove the secret",
        ),
        (Some(Scheme::None), None) => {}
        (Some(s), None) => c.err(
            format!("{field}.secret"),
            format!(
                "`scheme: {}` needs a `secret`, e.g. `secret: \"{{{{ secrets.hook_key }}}}\"`",
                s.name()
            ),
        ),
        (Some(_), Some(text)) => {
            if secret_ref(text).is_none() {
                c.err(
                    format!("{field}.secret"),
                    "the secret must be a reference such as `{{ secrets.hook_key }}` (its value \
                     comes from the secret store, e.g. ATLAS_SECRET_HOOK_KEY), never the value \
                     itself",
                );
            }
        }
    }
}

/// The `i`th trigger, a schedule: its cron string and time zone.
fn check_schedule(
    i: usize,
    cron: &str,
    timezone: Option<&str>,
    missed: MissedPolicy,
    c: &mut Checker<'_>,
) -> Option<Schedule> {
    let field = format!("triggers[{i}]");
    let parsed = parse_cron(cron).map_err(|m| c.err(format!("{field}.cron"), m));
    let tz = match timezone {
        Some(name) => match chrono_tz::Tz::from_str(name) {
            Ok(tz) => Some(tz),
            Err(_) => {
                c.err(
                    format!("{field}.timezone"),
                    format!(
                        "unknown time zone `{name}`: expected an IANA name such as \
                         `Europe/Paris` or `America/New_York`"
                    ),
                );
                None
            }
        },
        None => None,
    };
    Some(Schedule {
        trigger: i as u32,
        expr: cron.to_owned(),
        cron: parsed.ok()?,
        timezone: tz,
        missed,
    })
}

/// A voice trigger's phrases: at least one, each a template that parses.
fn check_phrases(field: &str, phrases: &[String], c: &mut Checker<'_>) {
    if phrases.is_empty() {
        c.err(
            format!("{field}.phrases"),
            "a voice trigger needs at least one phrase",
        );
    }
    for (j, p) in phrases.iter().enumerate() {
        if p.trim().is_empty() {
            c.err(format!("{field}.phrases[{j}]"), "empty phrase");
        } else if let Err(e) = crate::intent::parse_template(p) {
            c.err(
                format!("{field}.phrases[{j}]"),
                format!("phrase `{p}`, column {}: {}", e.column, e.message),
            );
        }
    }
}

/// Longest spoken acknowledgement: a few words, said before the run's own reply.
const ACK_MAX_CHARS: usize = 80;

fn check_ack(field: &str, ack: &str, c: &mut Checker<'_>) {
    let field = format!("{field}.ack");
    if ack.trim().is_empty() {
        c.err(
            field,
            "empty acknowledgement: write a few words, e.g. `On it.`, or remove `ack`",
        );
    } else if ack.contains("{{") || ack.contains("{%") {
        c.err(
            field,
            "an acknowledgement is said as written, not rendered: remove the template tags \
             (a reply that needs the run's data belongs in a `speak` action)",
        );
    } else if ack.chars().count() > ACK_MAX_CHARS {
        c.err(
            field,
            format!(
                "acknowledgement of {} characters: keep it under {ACK_MAX_CHARS} (it is said \
                 before the run's own reply)",
                ack.chars().count()
            ),
        );
    }
}

/// Parses a cron string, accepting the usual 5 fields as well as 6 or 7 with seconds (and year).
pub fn parse_cron(expr: &str) -> Result<cron::Schedule, String> {
    let fields = expr.split_whitespace().count();
    let full = match fields {
        5 => format!("0 {expr}"),
        6 | 7 => expr.to_owned(),
        _ => {
            return Err(format!(
                "`{expr}` has {fields} fields: expected 5 (`min hour day month weekday`) or 6-7 with seconds first"
            ));
        }
    };
    cron::Schedule::from_str(&full).map_err(|e| {
        // The cron crate echoes the expression and a caret on lines of their own: keep its reason.
        let text = e.to_string();
        let reason = text.lines().last().unwrap_or("").trim().to_owned();
        format!("`{expr}` is not a valid cron expression: {reason}")
    })
}

#[cfg(test)]
mod ack_tests {
    use std::path::Path;

    use crate::workflow::{TriggerDef, load_str};

    fn voice(ack: &str) -> String {
        format!(
            "id: w\ntriggers: [{{type: voice, phrases: ['start the backup'], ack: {ack}}}]\nactions:\n  - {{id: a, type: log, config: {{message: hi}}}}\n"
        )
    }

    #[test]
    fn a_voice_trigger_may_say_a_short_plain_acknowledgement() {
        let wf = load_str(&voice("'On it.'"), Path::new("w.yaml")).expect("loads");
        assert!(matches!(
            &wf.def.triggers[0],
            TriggerDef::Voice { ack: Some(a), .. } if a == "On it."
        ));
        for (bad, says) in [
            ("'  '", "empty acknowledgement"),
            ("'On it, {{ trigger.slots.x }}'", "said as written"),
            (&format!("'{}'", "word ".repeat(30)), "keep it under"),
        ] {
            let errs = load_str(&voice(bad), Path::new("w.yaml")).expect_err(bad);
            assert_eq!(errs[0].field, "triggers[0].ack", "{errs:?}");
            assert!(errs[0].message.contains(says), "{bad}: {errs:?}");
        }
    }
}
