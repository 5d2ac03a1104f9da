//! Durations as workflow files write them: `250ms`, `5s`, `2m`, `1h`, `1d`, or a bare number of
//! milliseconds.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

/// A duration written as `250ms`, `5s`, `2m`, `1h`, `1d`, or a bare number of milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(into = "String")]
pub struct Dur(pub Duration);

impl From<Dur> for String {
    fn from(d: Dur) -> String {
        d.to_string()
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0.as_millis())
    }
}

impl Dur {
    /// Parses `250ms`, `1.5s`, `2m`, `1h`, `1d` or a bare number of milliseconds.
    pub fn parse(s: &str) -> Result<Dur, String> {
        let s = s.trim();
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let value: f64 = num
            .parse()
            .map_err(|_| format!("`{s}` is not a duration: expected e.g. 500ms, 5s, 2m, 1h"))?;
        let scale = match unit.trim() {
            "" | "ms" => 0.001,
            "s" | "sec" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            other => {
                return Err(format!(
                    "unknown duration unit `{other}` in `{s}`: expected ms, s, m, h or d"
                ));
            }
        };
        let secs = value * scale;
        if !secs.is_finite() || secs > 1e9 {
            return Err(format!("duration `{s}` is out of range"));
        }
        Ok(Dur(Duration::from_secs_f64(secs)))
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Millis(u64),
            Text(String),
        }
        match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a duration such as 500ms, 5s, 2m or 1h")
        })? {
            Raw::Millis(ms) => Ok(Dur(Duration::from_millis(ms))),
            Raw::Text(s) => Dur::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_unit() {
        assert_eq!(Dur::parse("250ms").unwrap().0, Duration::from_millis(250));
        assert_eq!(Dur::parse("1.5s").unwrap().0, Duration::from_millis(1500));
        assert_eq!(Dur::parse("2m").unwrap().0, Duration::from_secs(120));
        assert_eq!(Dur::parse("40").unwrap().0, Duration::from_millis(40));
        assert!(
            Dur::parse("5 parsecs")
                .unwrap_err()
                .contains("unknown duration unit")
        );
        assert!(Dur::parse("soon").is_err());
    }
}
