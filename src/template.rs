//! Templates and conditions: `{{ ... }}` in action configs, rendered with minijinja.
//!
//! Config fields that may hold templates are typed [`Tmpl`] (a string), [`TValue`] (any JSON
//! value) or [`Expr`] (a condition). All three compile their templates while the workflow file is
//! deserialized, so a bad template is a load error with a file position, never a run-time surprise.
//! A string that is exactly one `{{ expr }}` renders to the expression's typed value inside a
//! [`TValue`] (a number stays a number, a list stays a list); elsewhere templates render to text.
//! minijinja is sandboxed: templates read values and call filters, nothing else; there is no other
//! way to evaluate code in a workflow.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use minijinja::value::{Object, Value as MjValue};
use minijinja::{Environment, UndefinedBehavior};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

pub use crate::redact::Redactor;

/// A template that failed to render or evaluate.
#[derive(Debug, thiserror::Error)]
#[error("template `{source_text}` failed: {message}")]
pub struct RenderError {
    /// The template's source, for the user to find it.
    pub source_text: String,
    /// minijinja's explanation.
    pub message: String,
}

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        // Printing or iterating an undefined value is an error (a typo in a field name should be
        // loud); testing it in a condition is allowed and false.
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        env.add_function("now", now);
        env
    })
}

/// `now()` in templates: the local date and time, as fields.
fn now() -> MjValue {
    use chrono::{Datelike, Timelike};
    let t = chrono::Local::now();
    mj(serde_json::json!({
        "iso": t.to_rfc3339(),
        "year": t.year(), "month": t.month(), "day": t.day(),
        "hour": t.hour(), "minute": t.minute(),
        "weekday": t.format("%A").to_string(),
        "month_name": t.format("%B").to_string(),
        "date": t.format("%A %-d %B").to_string(),
        "time": t.format("%H:%M").to_string(),
    }))
}

fn describe(err: &minijinja::Error) -> String {
    match err.detail() {
        Some(detail) => format!("{} ({detail})", err.kind()),
        None => err.kind().to_string(),
    }
}

/// True when `s` contains template syntax.
pub fn has_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%")
}

/// If `s` is exactly one `{{ expr }}`, the expression inside.
fn sole_expression(s: &str) -> Option<&str> {
    let t = s.trim();
    let inner = t.strip_prefix("{{")?.strip_suffix("}}")?;
    if inner.contains("{{") || inner.contains("}}") || inner.contains("{%") {
        return None;
    }
    Some(inner.trim())
}

/// Checks that `s` compiles as a template (or, if it is one `{{ expr }}`, as an expression).
pub fn check(s: &str) -> Result<(), String> {
    if !has_template(s) {
        return Ok(());
    }
    let result = match sole_expression(s) {
        Some(expr) => env().compile_expression(expr).map(drop),
        None => env().template_from_str(s).map(drop),
    };
    result.map_err(|e| format!("invalid template `{s}`: {}", describe(&e)))
}

fn eval_expression(expr: &str, ctx: &MjValue, source: &str) -> Result<MjValue, RenderError> {
    env()
        .compile_expression(expr)
        .and_then(|e| e.eval(ctx.clone()))
        .map_err(|e| RenderError {
            source_text: source.to_owned(),
            message: describe(&e),
        })
}

fn render_text(s: &str, ctx: &MjValue) -> Result<String, RenderError> {
    env().render_str(s, ctx.clone()).map_err(|e| RenderError {
        source_text: s.to_owned(),
        message: describe(&e),
    })
}

/// Converts a minijinja value to JSON (undefined becomes null).
pub fn to_json(v: &MjValue) -> Value {
    if v.is_undefined() {
        return Value::Null;
    }
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// A string config field that may contain templates; renders to text.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tmpl(String);

impl Tmpl {
    /// A template from source text (unchecked; use in code, not for user input).
    pub fn new(s: impl Into<String>) -> Tmpl {
        Tmpl(s.into())
    }

    /// The source text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Renders against `ctx`. Constant strings are returned without touching minijinja.
    pub fn render(&self, ctx: &MjValue) -> Result<String, RenderError> {
        if !has_template(&self.0) {
            return Ok(self.0.clone());
        }
        match sole_expression(&self.0) {
            Some(expr) => {
                let v = eval_expression(expr, ctx, &self.0)?;
                if v.is_undefined() {
                    return Err(RenderError {
                        source_text: self.0.clone(),
                        message: "undefined value".into(),
                    });
                }
                Ok(v.to_string())
            }
            None => render_text(&self.0, ctx),
        }
    }
}

impl<'de> Deserialize<'de> for Tmpl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Tmpl, D::Error> {
        let s = match Value::deserialize(d)? {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return Err(serde::de::Error::custom("expected a string")),
        };
        check(&s).map_err(serde::de::Error::custom)?;
        Ok(Tmpl(s))
    }
}

impl Serialize for Tmpl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// A JSON config value whose strings may contain templates.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TValue {
    value: Value,
    templated: bool,
}

impl TValue {
    /// Wraps a value, checking its templates.
    pub fn new(value: Value) -> Result<TValue, String> {
        let mut templated = false;
        walk_strings(&value, &mut |s| {
            if has_template(s) {
                templated = true;
                check(s)
            } else {
                Ok(())
            }
        })?;
        Ok(TValue { value, templated })
    }

    /// The raw value.
    pub fn raw(&self) -> &Value {
        &self.value
    }

    /// Renders every template inside. A string that is one `{{ expr }}` becomes the expression's
    /// typed value.
    pub fn render(&self, ctx: &MjValue) -> Result<Value, RenderError> {
        if !self.templated {
            return Ok(self.value.clone());
        }
        render_value(&self.value, ctx)
    }
}

fn walk_strings(v: &Value, f: &mut dyn FnMut(&str) -> Result<(), String>) -> Result<(), String> {
    match v {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter().try_for_each(|i| walk_strings(i, f)),
        Value::Object(map) => map.values().try_for_each(|i| walk_strings(i, f)),
        _ => Ok(()),
    }
}

fn render_value(v: &Value, ctx: &MjValue) -> Result<Value, RenderError> {
    Ok(match v {
        Value::String(s) if has_template(s) => match sole_expression(s) {
            Some(expr) => {
                let out = eval_expression(expr, ctx, s)?;
                if out.is_undefined() {
                    return Err(RenderError {
                        source_text: s.clone(),
                        message: "undefined value".into(),
                    });
                }
                to_json(&out)
            }
            None => Value::String(render_text(s, ctx)?),
        },
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| render_value(i, ctx))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, i)| Ok((k.clone(), render_value(i, ctx)?)))
                .collect::<Result<_, RenderError>>()?,
        ),
        other => other.clone(),
    })
}

impl<'de> Deserialize<'de> for TValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<TValue, D::Error> {
        TValue::new(Value::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl Serialize for TValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(s)
    }
}

/// A condition: a minijinja expression such as `weather.temp > 25 and not vars.quiet`.
/// Written bare or wrapped in `{{ }}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr(String);

impl Expr {
    /// Evaluates to a truth value.
    pub fn is_true(&self, ctx: &MjValue) -> Result<bool, RenderError> {
        Ok(eval_expression(&self.0, ctx, &self.0)?.is_true())
    }

    /// Evaluates to a JSON value.
    pub fn eval(&self, ctx: &MjValue) -> Result<Value, RenderError> {
        Ok(to_json(&eval_expression(&self.0, ctx, &self.0)?))
    }

    /// The expression's source.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Expr {
    /// Compiles `raw` (bare or wrapped in `{{ }}`); the error says what is wrong with it.
    pub fn parse(raw: &str) -> Result<Expr, String> {
        let inner = sole_expression(raw).unwrap_or(raw.trim()).to_owned();
        env()
            .compile_expression(&inner)
            .map_err(|e| format!("invalid expression `{inner}`: {}", describe(&e)))?;
        Ok(Expr(inner))
    }
}

impl<'de> Deserialize<'de> for Expr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Expr, D::Error> {
        let raw = match Value::deserialize(d)? {
            Value::String(s) => s,
            Value::Bool(b) => b.to_string(),
            _ => return Err(serde::de::Error::custom("expected an expression string")),
        };
        Expr::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Expr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Where templates find `secrets.NAME`: looks the name up in the secret store on first use and
/// registers the value with the run's [`Redactor`].
#[derive(Debug)]
pub struct SecretsView {
    /// The store to read.
    pub store: Arc<dyn crate::secrets::SecretStore>,
    /// The run's redactor.
    pub redactor: Arc<Redactor>,
}

impl Object for SecretsView {
    fn get_value(self: &Arc<Self>, key: &MjValue) -> Option<MjValue> {
        let name = key.as_str()?;
        let value = self.store.get(name).ok().flatten()?;
        self.redactor.add(&value);
        Some(MjValue::from(value))
    }
}

/// Converts any serializable value to a template value.
pub fn mj<T: Serialize>(v: T) -> MjValue {
    MjValue::from(minijinja::value::Serde(v))
}

/// Builds the template context from named parts.
pub fn context(parts: BTreeMap<String, MjValue>) -> MjValue {
    MjValue::from(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> MjValue {
        mj(json!({"vars": {"n": 3, "city": "Paris"}, "fetch": {"list": [1, 2]}}))
    }

    #[test]
    fn sole_expression_keeps_its_type() {
        let v = TValue::new(
            json!({"a": "{{ fetch.list }}", "b": "{{ vars.n + 1 }}", "c": "in {{ vars.city }}"}),
        )
        .unwrap();
        assert_eq!(
            v.render(&ctx()).unwrap(),
            json!({"a": [1, 2], "b": 4, "c": "in Paris"})
        );
    }

    #[test]
    fn bad_templates_fail_to_load() {
        let err = check("{{ vars.n + }}").unwrap_err();
        assert!(err.contains("invalid template"), "{err}");
        assert!(serde_json::from_value::<Expr>(json!("1 +")).is_err());
    }

    #[test]
    fn undefined_printing_is_an_error_but_conditions_are_false() {
        let t = Tmpl::new("{{ vars.nope }}");
        assert!(t.render(&ctx()).is_err());
        let e: Expr = serde_json::from_value(json!("{{ vars.nope }}")).unwrap();
        assert!(!e.is_true(&ctx()).unwrap());
    }
}
