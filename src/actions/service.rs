//! The action kinds of the service integrations, one per provider that has operations
//! (`github`, `slack`, `discord`, `notion`, `spotify`, `binance`), each declared by its provider
//! module as a [`ServiceKind`] in [`SERVICE_KINDS`]. Like `gmail`, each picks its operation with `op`;
//! its other config fields are the operation's arguments (templates, rendered at run time), and
//! each kind's table ([`OpSpec`]) says which an operation needs and which it may take, checked
//! when the workflow loads. The rendered operation ([`ServiceOp`]) goes to the integrations
//! through [`super::Accounts::service`]; what each operation answers is documented with its
//! provider in `integrations`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::{ActionCtx, ActionError};
use crate::spec::Problem;
use crate::template::{TValue, Tmpl, has_template};

/// One operation of a service integration, its arguments rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceOp {
    /// The operation (`post`, `notifications`, ...).
    pub op: String,
    /// Its arguments.
    pub args: BTreeMap<String, Value>,
}

impl ServiceOp {
    /// Argument `name` as text (numbers too), if given and not empty.
    pub fn text(&self, name: &str) -> Option<String> {
        match self.args.get(name)? {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// Argument `name` as a number (a numeric string too), if given.
    pub fn number(&self, name: &str) -> Option<f64> {
        match self.args.get(name)? {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// Argument `limit` between 1 and `max`, else `default`.
    pub fn limit(&self, default: usize, max: usize) -> usize {
        self.number("limit")
            .map_or(default, |n| n as usize)
            .clamp(1, max)
    }
}

/// Config of a service action: `op` and the operation's fields.
#[derive(Debug, Clone, Deserialize)]
pub struct ServiceConfig {
    /// The operation: a name, or a template choosing one at run time (then checked when it
    /// runs, and the fields only against every operation's).
    pub op: Tmpl,
    /// Its arguments, by name.
    #[serde(flatten)]
    pub fields: BTreeMap<String, TValue>,
}

/// One operation in a kind's table.
#[derive(Debug, serde::Serialize)]
pub struct OpSpec {
    /// Its name.
    pub name: &'static str,
    /// The fields it needs.
    pub needs: &'static [&'static str],
    /// The fields it may take.
    pub may: &'static [&'static str],
}

/// One row of an operation table.
pub const fn op(
    name: &'static str,
    needs: &'static [&'static str],
    may: &'static [&'static str],
) -> OpSpec {
    OpSpec { name, needs, may }
}

fn check(kind: &str, table: &[OpSpec], c: &ServiceConfig) -> Vec<Problem> {
    let op = c.op.as_str();
    if has_template(op) {
        // Chosen at run time: every field must belong to some operation.
        return c
            .fields
            .keys()
            .filter(|f| {
                !table
                    .iter()
                    .any(|o| o.needs.contains(&f.as_str()) || o.may.contains(&f.as_str()))
            })
            .map(|f| Problem::new(f.clone(), format!("no {kind} operation takes `{f}`")))
            .collect();
    }
    let Some(spec) = table.iter().find(|o| o.name == op) else {
        return vec![Problem::new("op", no_such_op(kind, table, op))];
    };
    let mut problems: Vec<Problem> = spec
        .needs
        .iter()
        .filter(|f| !c.fields.contains_key(**f))
        .map(|f| Problem::new(*f, format!("{kind} {op} needs it")))
        .collect();
    for f in c.fields.keys() {
        if !spec.needs.contains(&f.as_str()) && !spec.may.contains(&f.as_str()) {
            let all: Vec<&str> = spec.needs.iter().chain(spec.may).copied().collect();
            problems.push(Problem::new(
                f.clone(),
                format!(
                    "{kind} {op} takes no `{f}`{}",
                    if all.is_empty() {
                        String::new()
                    } else {
                        format!(": it takes {}", all.join(", "))
                    }
                ),
            ));
        }
    }
    if let Some(limit) = c.fields.get("limit").and_then(|l| l.raw().as_u64())
        && !(1..=100).contains(&limit)
    {
        problems.push(Problem::new("limit", "between 1 and 100"));
    }
    problems
}

fn no_such_op(kind: &str, table: &[OpSpec], op: &str) -> String {
    let names: Vec<&str> = table.iter().map(|o| o.name).collect();
    format!(
        "{kind} has no operation `{op}`: one of {}",
        names.join(", ")
    )
}

async fn execute(
    kind: &'static str,
    table: &[OpSpec],
    c: &ServiceConfig,
    ctx: &ActionCtx<'_>,
) -> Result<Value, ActionError> {
    let op = c.op.render(ctx.scope)?.trim().to_owned();
    let Some(spec) = table.iter().find(|o| o.name == op) else {
        return Err(ActionError::Integration(no_such_op(kind, table, &op)));
    };
    let mut args = BTreeMap::new();
    for (k, v) in &c.fields {
        // A templated `op` may come with fields of other operations: only this one's go.
        if spec.needs.contains(&k.as_str()) || spec.may.contains(&k.as_str()) {
            args.insert(k.clone(), v.render(ctx.scope)?);
        }
    }
    let Some(accounts) = &ctx.services.accounts else {
        return Err(ActionError::Integration(
            "no integrations here (run it with `atlas workflow run` or in the daemon)".into(),
        ));
    };
    accounts
        .service(kind, ServiceOp { op, args })
        .await
        .map_err(ActionError::Integration)
}

/// A service integration's action kind: its name as written in `type:`, its one-line doc and
/// its operations. Each provider module in `integrations` declares its own into
/// [`SERVICE_KINDS`] (actions sit below integrations, so the table comes to them, not the
/// other way round).
#[derive(Debug)]
pub struct ServiceKind {
    /// The kind's name (the provider's name: `github`, `slack`, ...).
    pub name: &'static str,
    /// One line saying what it does.
    pub doc: &'static str,
    /// Its operations.
    pub ops: &'static [OpSpec],
}

/// Every service kind, gathered at link time from the provider modules that declare one
/// (`#[linkme::distributed_slice(SERVICE_KINDS)]`); in no particular order.
#[linkme::distributed_slice]
pub static SERVICE_KINDS: [ServiceKind];

/// The service kinds, by name.
pub fn service_kinds() -> Vec<&'static ServiceKind> {
    let mut all: Vec<&'static ServiceKind> = SERVICE_KINDS.iter().collect();
    all.sort_by_key(|k| k.name);
    all
}

/// The service kind called `name`.
pub fn service_kind(name: &str) -> Option<&'static ServiceKind> {
    SERVICE_KINDS.iter().find(|k| k.name == name)
}

/// An action of a service kind: the kind and its config.
#[derive(Debug, Clone)]
pub struct ServiceAction {
    /// The kind.
    pub kind: &'static ServiceKind,
    /// Its `op` and fields.
    pub config: ServiceConfig,
}

impl ServiceAction {
    /// The load-time checks of its operation and fields against the kind's table.
    pub fn check(&self) -> Vec<Problem> {
        check(self.kind.name, self.kind.ops, &self.config)
    }

    /// Runs it through the integrations.
    pub async fn execute(&self, ctx: &ActionCtx<'_>) -> Result<Value, ActionError> {
        execute(self.kind.name, self.kind.ops, &self.config, ctx).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::ActionConfig;
    use serde_json::json;

    #[test]
    fn operations_and_their_fields_are_checked_at_load() {
        let ok = ActionConfig::parse(
            "slack",
            &json!({"op": "post", "channel": "C1", "text": "hi {{ vars.x }}"}),
        )
        .unwrap();
        assert!(ok.check().is_empty(), "{:?}", ok.check());
        let missing =
            ActionConfig::parse("slack", &json!({"op": "post", "channel": "C1"})).unwrap();
        assert_eq!(missing.check()[0].field, "text");
        let unknown = ActionConfig::parse("spotify", &json!({"op": "shuffle"})).unwrap();
        let p = &unknown.check()[0];
        assert_eq!(p.field, "op");
        assert!(p.message.contains("play, pause, next"), "{}", p.message);
        let extra = ActionConfig::parse("github", &json!({"op": "my_prs", "repo": "a/b"})).unwrap();
        let p = &extra.check()[0];
        assert_eq!(p.field, "repo");
        assert!(p.message.contains("it takes limit"), "{}", p.message);
        let limit = ActionConfig::parse(
            "discord",
            &json!({"op": "recent", "channel": "1", "limit": 500}),
        )
        .unwrap();
        assert_eq!(limit.check()[0].field, "limit");
        // A templated op: fields are checked against every operation's.
        let chosen =
            ActionConfig::parse("spotify", &json!({"op": "{{ pick.op }}", "percent": 40})).unwrap();
        assert!(chosen.check().is_empty(), "{:?}", chosen.check());
        let wrong = ActionConfig::parse("spotify", &json!({"op": "{{ pick.op }}", "channel": "x"}))
            .unwrap();
        assert_eq!(wrong.check()[0].field, "channel");
    }

    #[test]
    fn arguments_read_as_text_numbers_and_limits() {
        let op = ServiceOp {
            op: "x".into(),
            args: [
                ("a".to_owned(), json!(" hi ")),
                ("n".to_owned(), json!("42")),
                ("limit".to_owned(), json!(1000)),
                ("e".to_owned(), json!("")),
            ]
            .into(),
        };
        assert_eq!(op.text("a").as_deref(), Some("hi"));
        assert_eq!(op.text("n").as_deref(), Some("42"));
        assert_eq!(op.text("e"), None);
        assert_eq!(op.number("n"), Some(42.0));
        assert_eq!(op.limit(5, 50), 50);
    }
}
