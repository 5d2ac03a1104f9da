//! What an action kind is ([`ActionKind`], [`LeafKind`]) and the [`action_kinds!`] macro that
//! turns the registry's one list into the [`super::ActionConfig`] enum, [`super::KINDS`],
//! parsing, load-time checks and dispatch.
//!
//! A kind is one unit in its own file: a unit struct implementing [`ActionKind`] (its name as
//! written in `type:`, its one-line doc, its config type, its load-time checks) and, for the
//! kinds [`super::execute`] runs, [`LeafKind`] (how it runs). Control kinds (`loop`, `workflow`)
//! implement only [`ActionKind`]: the engine runs them, since they need the engine itself.

use std::future::Future;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{ActionCtx, ActionError};
use crate::spec::Problem;

/// One kind of action: what the registry needs to parse, check and list it.
pub trait ActionKind {
    /// The name written in `type:`: lowercase letters, digits, `_`, and dots between words, such
    /// as `http` or `gmail.send`. Unique in the registry (checked when the crate compiles).
    const NAME: &'static str;
    /// One line saying what the kind does.
    const DOC: &'static str;
    /// The kind's config, as serde reads the action's `config` block (an absent block reads as
    /// `{}`). Fields that may hold templates are `Tmpl`, `TValue` or `Expr`.
    type Config: DeserializeOwned + std::fmt::Debug + Clone + Send + Sync + 'static;
    /// Load-time checks beyond what serde checks, such as bounds on literal durations. Each
    /// problem's field is a path below the action's `config` (e.g. `duration`).
    fn check(_config: &Self::Config) -> Vec<Problem> {
        Vec::new()
    }
}

/// A kind that [`super::execute`] runs with only an [`ActionCtx`] (every kind but the engine's
/// control kinds).
pub trait LeafKind: ActionKind {
    /// Runs one attempt of the action. The future may be dropped at any await (cancel, timeout).
    fn execute(
        config: &Self::Config,
        ctx: &ActionCtx<'_>,
    ) -> impl Future<Output = Result<Value, ActionError>> + Send;
}

/// A `config` that did not parse into its kind's config, or a `type` no kind has.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConfigError {
    /// No kind of the registry has this name.
    #[error("unknown action type `{kind}`, expected one of: {}", known.join(", "))]
    UnknownKind {
        /// The `type` as written.
        kind: String,
        /// Every kind: the registry's, then the service integrations' ([`super::all_kinds`]).
        known: Vec<&'static str>,
    },
    /// The config does not fit the kind's config type.
    #[error("{message}")]
    Invalid {
        /// Path below the action's `config`, e.g. `headers.Accept`; empty for the config itself.
        path: String,
        /// What was wrong and what was expected.
        message: String,
    },
}

/// Reads `raw` as a `T`, naming the path of the first field that does not fit.
pub fn parse_config<T: DeserializeOwned>(raw: &Value) -> Result<T, ConfigError> {
    let raw = if raw.is_null() {
        &Value::Object(Default::default())
    } else {
        raw
    };
    serde_path_to_error::deserialize(raw).map_err(|e| {
        let path = e.path().to_string();
        ConfigError::Invalid {
            path: if path == "." { String::new() } else { path },
            message: e.into_inner().to_string(),
        }
    })
}

/// Whether `name` may be a kind's name: words of `[a-z0-9_]` joined by single dots.
pub const fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    if b.is_empty() || b[0] == b'.' || b[b.len() - 1] == b'.' {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let ok =
            matches!(b[i], b'a'..=b'z' | b'0'..=b'9' | b'_') || (b[i] == b'.' && b[i - 1] != b'.');
        if !ok {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether every name of `names` is valid and none appears twice: the registry is checked with
/// this when the crate compiles.
pub const fn valid_registry(names: &[&str]) -> bool {
    let mut i = 0;
    while i < names.len() {
        if !valid_name(names[i]) {
            return false;
        }
        let mut j = i + 1;
        while j < names.len() {
            if names[i].eq_ignore_ascii_case(names[j]) {
                return false;
            }
            j += 1;
        }
        i += 1;
    }
    true
}

/// Declares the registry of action kinds from one list of `role Variant => path::to::Kind`
/// entries, `role` being `leaf` (run by [`super::execute`], the type implements [`LeafKind`]) or
/// `control` (run by the engine). It generates, in the module it is used in: `KINDS` (the names,
/// in list order), the `ActionConfig` enum (one variant per entry, holding the kind's config) and
/// its `parse`, `kind`, `doc`, `is_control`, `check` and `execute` methods.
macro_rules! action_kinds {
    (@run leaf $kind:ty, $c:ident, $ctx:ident) => {
        <$kind as $crate::actions::LeafKind>::execute($c, $ctx).await
    };
    (@run control $kind:ty, $c:ident, $ctx:ident) => {{
        let _ = ($c, $ctx);
        Err($crate::actions::ActionError::EngineOnly {
            kind: <$kind as $crate::actions::ActionKind>::NAME,
        })
    }};
    (@control leaf) => { false };
    (@control control) => { true };
    ($($role:ident $variant:ident => $kind:ty),+ $(,)?) => {
        /// Every action kind, as written in `type:`, in the registry's order.
        pub const KINDS: &[&str] = &[$(<$kind as $crate::actions::ActionKind>::NAME),+];

        /// Every kind with its doc and config fields, in the registry's order, then the service
        /// integrations' kinds by name with their operations.
        pub fn kind_infos() -> Vec<$crate::actions::KindInfo> {
            let mut all = vec![$($crate::actions::KindInfo {
                name: <$kind as $crate::actions::ActionKind>::NAME,
                doc: <$kind as $crate::actions::ActionKind>::DOC,
                control: action_kinds!(@control $role),
                fields: $crate::actions::fields::fields_of::<<$kind as $crate::actions::ActionKind>::Config>(),
                ops: &[],
            }),+];
            all.extend($crate::actions::service_kinds().into_iter().map(|k| $crate::actions::KindInfo {
                name: k.name,
                doc: k.doc,
                control: false,
                fields: $crate::actions::fields::fields_of::<$crate::actions::ServiceConfig>(),
                ops: k.ops,
            }));
            all
        }

        const _: () = assert!(
            $crate::actions::kind::valid_registry(KINDS),
            "an action kind's NAME is not lowercase words joined by dots, or is used twice"
        );

        /// Every action kind: [`KINDS`], then the service integrations' kinds by name.
        pub fn all_kinds() -> Vec<&'static str> {
            let mut all = KINDS.to_vec();
            all.extend($crate::actions::service_kinds().iter().map(|k| k.name));
            all
        }

        /// The typed config of one action: one variant per kind of the registry.
        #[derive(Debug, Clone)]
        pub enum ActionConfig {
            $(
                #[doc = concat!("An action of the kind `", stringify!($kind), "` (", stringify!($role), ").")]
                $variant(<$kind as $crate::actions::ActionKind>::Config),
            )+
            /// An action of a service integration's kind (`github`, `slack`, ...), declared by
            /// its provider module (`actions::SERVICE_KINDS`).
            Service($crate::actions::ServiceAction),
        }

        impl ActionConfig {
            /// Parses the raw `config` of an action whose `type` is `kind`.
            pub fn parse(
                kind: &str,
                raw: &serde_json::Value,
            ) -> Result<ActionConfig, $crate::actions::ConfigError> {
                $(
                    if kind == <$kind as $crate::actions::ActionKind>::NAME {
                        return $crate::actions::kind::parse_config(raw).map(ActionConfig::$variant);
                    }
                )+
                if let Some(service) = $crate::actions::service_kind(kind) {
                    return $crate::actions::kind::parse_config(raw).map(|config| {
                        ActionConfig::Service($crate::actions::ServiceAction { kind: service, config })
                    });
                }
                Err($crate::actions::ConfigError::UnknownKind {
                    kind: kind.to_owned(),
                    known: all_kinds(),
                })
            }

            /// The kind's name, as written in `type:`.
            pub fn kind(&self) -> &'static str {
                match self {
                    $(ActionConfig::$variant(_) => <$kind as $crate::actions::ActionKind>::NAME,)+
                    ActionConfig::Service(s) => s.kind.name,
                }
            }

            /// The kind's one-line description.
            pub fn doc(&self) -> &'static str {
                match self {
                    $(ActionConfig::$variant(_) => <$kind as $crate::actions::ActionKind>::DOC,)+
                    ActionConfig::Service(s) => s.kind.doc,
                }
            }

            /// Whether the engine runs this action itself (a control kind) rather than
            /// `actions::execute`.
            pub fn is_control(&self) -> bool {
                match self {
                    $(ActionConfig::$variant(_) => action_kinds!(@control $role),)+
                    ActionConfig::Service(_) => false,
                }
            }

            /// The kind's load-time checks of this config; fields are paths below `config`.
            pub fn check(&self) -> Vec<$crate::spec::Problem> {
                match self {
                    $(ActionConfig::$variant(c) => <$kind as $crate::actions::ActionKind>::check(c),)+
                    ActionConfig::Service(s) => s.check(),
                }
            }

            /// Runs a leaf action; a control kind is refused with `ActionError::EngineOnly`.
            pub async fn execute(
                &self,
                ctx: &$crate::actions::ActionCtx<'_>,
            ) -> Result<serde_json::Value, $crate::actions::ActionError> {
                match self {
                    $(ActionConfig::$variant(c) => action_kinds!(@run $role $kind, c, ctx),)+
                    ActionConfig::Service(s) => s.execute(ctx).await,
                }
            }
        }
    };
}

pub(super) use action_kinds;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dotted_lowercase_words_and_unique() {
        assert!(valid_name("http") && valid_name("gmail.send") && valid_name("a_b.c2"));
        for bad in ["", ".x", "x.", "a..b", "Gmail", "a-b", "a b"] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert!(valid_registry(&["http", "gmail.send"]));
        assert!(!valid_registry(&["http", "gmail.send", "http"]));
    }

    /// A kind with a dotted name, declared the way an integration would declare one.
    struct Echo;
    impl ActionKind for Echo {
        const NAME: &'static str = "test.echo";
        const DOC: &'static str = "Returns its `text`.";
        type Config = EchoConfig;
        fn check(c: &EchoConfig) -> Vec<Problem> {
            match c.text.is_empty() {
                true => vec![Problem::new("text", "must not be empty")],
                false => Vec::new(),
            }
        }
    }
    impl LeafKind for Echo {
        async fn execute(c: &EchoConfig, _: &ActionCtx<'_>) -> Result<Value, ActionError> {
            Ok(Value::String(c.text.clone()))
        }
    }
    #[derive(Debug, Clone, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct EchoConfig {
        text: String,
    }
    struct Later;
    impl ActionKind for Later {
        const NAME: &'static str = "test.later";
        const DOC: &'static str = "Run by the engine.";
        type Config = serde_json::Map<String, Value>;
    }

    mod registry {
        super::action_kinds! {
            leaf Echo => super::Echo,
            control Later => super::Later,
        }
    }

    #[tokio::test]
    async fn the_macro_builds_parsing_checks_and_dispatch_from_one_list() {
        use registry::{ActionConfig, KINDS};
        assert_eq!(KINDS, ["test.echo", "test.later"]);
        let echo = ActionConfig::parse("test.echo", &serde_json::json!({"text": "hi"})).unwrap();
        assert_eq!((echo.kind(), echo.is_control()), ("test.echo", false));
        assert_eq!(echo.doc(), "Returns its `text`.");
        let empty = ActionConfig::parse("test.echo", &serde_json::json!({"text": ""})).unwrap();
        assert_eq!(empty.check()[0].field, "text");
        let err = ActionConfig::parse("test.echo", &serde_json::json!({"txt": 1})).unwrap_err();
        assert!(err.to_string().contains("unknown field `txt`"), "{err}");
        let err = ActionConfig::parse("teleport", &Value::Null).unwrap_err();
        assert!(
            err.to_string()
                .contains("expected one of: test.echo, test.later, binance"),
            "{err}"
        );
        let later = ActionConfig::parse("test.later", &Value::Null).unwrap();
        assert!(later.is_control());
        let infos = registry::kind_infos();
        assert_eq!(
            (infos[0].name, infos[0].control, infos[1].control),
            ("test.echo", false, true)
        );
        assert_eq!(
            infos[0].fields,
            [crate::actions::FieldInfo {
                name: "text".into(),
                required: true
            }]
        );
        assert!(
            infos[1].fields.is_empty(),
            "a map config has no fixed fields"
        );

        let services = crate::actions::tests::services();
        let (scope, cancel) = (minijinja::Value::UNDEFINED, Default::default());
        let redactor = crate::redact::Redactor::default();
        let ctx = ActionCtx {
            scope: &scope,
            services: &services,
            cancel: &cancel,
            redactor: &redactor,
        };
        assert_eq!(
            echo.execute(&ctx).await.unwrap(),
            Value::String("hi".into())
        );
        let refused = later.execute(&ctx).await.unwrap_err();
        assert!(matches!(
            refused,
            ActionError::EngineOnly { kind: "test.later" }
        ));
    }
}
