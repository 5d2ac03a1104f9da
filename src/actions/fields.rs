//! The fields of a kind's config, read from its serde derive rather than a second table: a
//! deserializer that only records the field names serde's `deserialize_struct` is handed, and a
//! probe that finds the required ones by parsing `{}` and filling each missing field in turn.
//! `GET /v1/action-kinds` lists them so the dashboard's builder can offer a kind's fields.

use serde::Serialize;
use serde::de::{self, DeserializeOwned, Visitor};
use serde_json::{Map, Value};

/// One field of a kind's `config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldInfo {
    /// Its name as written in YAML.
    pub name: String,
    /// Whether a config without it is refused.
    pub required: bool,
}

/// One kind of the registry, as `GET /v1/action-kinds` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct KindInfo {
    /// The name written in `type:`.
    pub name: &'static str,
    /// What it does.
    pub doc: &'static str,
    /// Whether the engine runs it (`loop`, `workflow`).
    pub control: bool,
    /// Its config's fields (empty when the config is not a plain struct).
    pub fields: Vec<FieldInfo>,
    /// For a service kind: its operations (`op`), each with the fields it needs and may take.
    pub ops: &'static [super::OpSpec],
}

/// Why the recording deserializer stopped (it always stops: it builds no value).
#[derive(Debug)]
struct Stop(Option<&'static [&'static str]>);

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("field introspection")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Stop(None)
    }
}

/// Answers every request with an error, except that a struct's request records its fields.
struct Recorder;

impl<'de> de::Deserializer<'de> for Recorder {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop(None))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Stop> {
        Err(Stop(Some(fields)))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// Values tried, in order, for a required field whose type is unknown.
fn candidates() -> [Value; 7] {
    [
        Value::String("1s".into()),
        Value::String("x".into()),
        Value::from(1),
        Value::Bool(true),
        Value::Array(Vec::new()),
        Value::Object(Map::new()),
        Value::String("get".into()),
    ]
}

/// The field `missing field `x`` names, if that is the error.
fn missing_field(message: &str) -> Option<String> {
    let rest = message.split("missing field `").nth(1)?;
    Some(rest.split('`').next()?.to_owned())
}

/// The fields of `T` (a struct config); empty for a config that is not a plain struct (a map,
/// or a struct with flattened fields, whose names serde does not know in advance).
pub fn fields_of<T: DeserializeOwned>() -> Vec<FieldInfo> {
    let names: &[&str] = match T::deserialize(Recorder) {
        Err(Stop(Some(fields))) => fields,
        _ => &[],
    };
    let mut required = Vec::new();
    let mut probe = Map::new();
    // Each round names one more required field (serde reports the first missing one); the
    // bound is the number of fields.
    for _ in 0..=names.len() {
        let Err(e) = serde_json::from_value::<T>(Value::Object(probe.clone())) else {
            break;
        };
        let Some(field) = missing_field(&e.to_string()) else {
            break;
        };
        if required.contains(&field) {
            break;
        }
        let fits = candidates().into_iter().find(|c| {
            let mut p = probe.clone();
            p.insert(field.clone(), c.clone());
            serde_json::from_value::<T>(Value::Object(p))
                .err()
                .is_none_or(|e| missing_field(&e.to_string()).is_some_and(|m| m != field))
        });
        probe.insert(field.clone(), fits.unwrap_or(Value::Null));
        required.push(field);
    }
    names
        .iter()
        .map(|n| FieldInfo {
            name: (*n).to_owned(),
            required: required.iter().any(|r| r == n),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Sample {
        url: String,
        #[serde(default)]
        method: Option<String>,
        count: u32,
    }

    #[test]
    fn names_and_required_fields_come_from_the_derive() {
        assert_eq!(
            fields_of::<Sample>(),
            [
                FieldInfo {
                    name: "url".into(),
                    required: true
                },
                FieldInfo {
                    name: "method".into(),
                    required: false
                },
                FieldInfo {
                    name: "count".into(),
                    required: true
                },
            ]
        );
        assert!(fields_of::<Map<String, Value>>().is_empty());
    }
}
