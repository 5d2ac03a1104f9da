//! Size caps on what actions read: HTTP and LLM answers and files.
//!
//! Every read is bounded by a [`ByteLimit`] (10 MiB unless the action's `max_bytes` says
//! otherwise, at most 256 MiB), and the bytes are read as a stream that stops at the cap: a
//! server that sends without end, or a file that grows while it is read, costs at most the cap
//! in memory and ends in [`ActionError::TooLarge`], which says what to change.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Deserializer};
use tokio::io::AsyncReadExt;

use super::ActionError;
use super::http::error_chain;

/// Default cap on an answer or a file read: 10 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 10 * 1024 * 1024;
/// The largest `max_bytes` an action may set: 256 MiB.
pub const MAX_MAX_BYTES: u64 = 256 * 1024 * 1024;

/// A cap on bytes read, written as a number of bytes or with a unit: `512KiB`, `10MiB`, `1MB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteLimit(pub u64);

impl Default for ByteLimit {
    fn default() -> Self {
        ByteLimit(DEFAULT_MAX_BYTES)
    }
}

impl fmt::Display for ByteLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 >= 1024 * 1024 && self.0.is_multiple_of(1024 * 1024) {
            write!(f, "{} MiB", self.0 / (1024 * 1024))
        } else if self.0 >= 1024 && self.0.is_multiple_of(1024) {
            write!(f, "{} KiB", self.0 / 1024)
        } else {
            write!(f, "{} bytes", self.0)
        }
    }
}

impl ByteLimit {
    /// Parses `4096`, `512KiB`, `10MiB`, `1MB`, `2kb`..., refusing 0 and more than
    /// [`MAX_MAX_BYTES`].
    pub fn parse(s: &str) -> Result<ByteLimit, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("`{s}` is not a size: expected e.g. 4096, 512KiB or 10MiB"))?;
        let unit = unit.trim();
        let scale: u64 = match unit.to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kb" => 1000,
            "kib" | "k" => 1024,
            "mb" => 1000 * 1000,
            "mib" | "m" => 1024 * 1024,
            "gb" => 1000 * 1000 * 1000,
            "gib" | "g" => 1024 * 1024 * 1024,
            _ => {
                return Err(format!(
                    "unknown size unit `{unit}` in `{s}`: expected B, KB, KiB, MB or MiB"
                ));
            }
        };
        ByteLimit::checked(n.saturating_mul(scale))
    }

    fn checked(n: u64) -> Result<ByteLimit, String> {
        if n == 0 {
            Err("must be more than 0 bytes".into())
        } else if n > MAX_MAX_BYTES {
            Err(format!(
                "{n} bytes is more than the largest cap allowed, {}",
                ByteLimit(MAX_MAX_BYTES)
            ))
        } else {
            Ok(ByteLimit(n))
        }
    }

    fn too_large(self, what: impl Into<String>) -> ActionError {
        ActionError::TooLarge {
            what: what.into(),
            limit: self.to_string(),
        }
    }
}

impl<'de> Deserialize<'de> for ByteLimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ByteLimit, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(u64),
            Text(String),
        }
        match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a size such as 4096, 512KiB or 10MiB")
        })? {
            Raw::Bytes(n) => ByteLimit::checked(n),
            Raw::Text(s) => ByteLimit::parse(&s),
        }
        .map_err(serde::de::Error::custom)
    }
}

/// What to do with an answer longer than the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Over {
    /// Fail with [`ActionError::TooLarge`].
    Fail,
    /// Keep the first `limit` bytes (for error bodies, of which only the start is shown).
    Truncate,
}

/// Reads an HTTP answer's body, at most `limit` bytes of it, as a stream.
pub(super) async fn read_response(
    mut resp: reqwest::Response,
    limit: ByteLimit,
    over: Over,
    url: &str,
) -> Result<Vec<u8>, ActionError> {
    let what = || format!("the answer from {url}");
    if over == Over::Fail
        && let Some(len) = resp.content_length()
        && len > limit.0
    {
        return Err(limit.too_large(format!("{} ({len} bytes)", what())));
    }
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| ActionError::Http {
        url: url.to_owned(),
        reason: error_chain(&e),
    })? {
        let room = (limit.0 as usize).saturating_sub(buf.len());
        if chunk.len() > room {
            if over == Over::Truncate {
                buf.extend_from_slice(&chunk[..room]);
                break;
            }
            return Err(limit.too_large(what()));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// Decodes a body as text in the charset its content type names (UTF-8 by default).
pub(super) fn decode_text(bytes: &[u8], content_type: Option<&str>) -> String {
    let charset = content_type.and_then(|ct| {
        ct.split(';').find_map(|p| {
            let (k, v) = p.split_once('=')?;
            (k.trim().eq_ignore_ascii_case("charset")).then(|| v.trim().trim_matches('"'))
        })
    });
    let encoding = charset
        .and_then(|c| encoding_rs::Encoding::for_label(c.as_bytes()))
        .unwrap_or(encoding_rs::UTF_8);
    encoding.decode(bytes).0.into_owned()
}

/// Reads a text file, at most `limit` bytes of it; `shown` names it in errors.
pub(super) async fn read_file(
    path: &Path,
    limit: ByteLimit,
    shown: &str,
) -> Result<String, ActionError> {
    let io = |source| ActionError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = tokio::fs::File::open(path).await.map_err(io)?;
    let len = file.metadata().await.map_err(io)?.len();
    if len > limit.0 {
        return Err(limit.too_large(format!("file `{shown}` ({len} bytes)")));
    }
    // The file may grow between the size check and the read: read one byte past the cap to tell.
    let mut buf = Vec::new();
    file.take(limit.0 + 1)
        .read_to_end(&mut buf)
        .await
        .map_err(io)?;
    if buf.len() as u64 > limit.0 {
        return Err(limit.too_large(format!("file `{shown}`")));
    }
    String::from_utf8(buf).map_err(|_| ActionError::NotText {
        what: format!("file `{shown}`"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units_and_are_bounded() {
        assert_eq!(ByteLimit::parse("4096"), Ok(ByteLimit(4096)));
        assert_eq!(ByteLimit::parse("512KiB"), Ok(ByteLimit(512 * 1024)));
        assert_eq!(ByteLimit::parse("10MiB"), Ok(ByteLimit(DEFAULT_MAX_BYTES)));
        assert_eq!(ByteLimit::parse("2 kb"), Ok(ByteLimit(2000)));
        assert!(ByteLimit::parse("0").unwrap_err().contains("more than 0"));
        let err = ByteLimit::parse("1024MiB").unwrap_err();
        assert!(err.contains("256 MiB"), "{err}");
        assert!(ByteLimit::parse("2GiB").unwrap_err().contains("256 MiB"));
        let err = ByteLimit::parse("3 parsecs").unwrap_err();
        assert!(err.contains("`parsecs`"), "{err}");
        assert!(ByteLimit::parse("99999999999999999999GiB").is_err());
        assert!(ByteLimit::parse("lots").is_err());
    }

    #[test]
    fn text_is_decoded_in_the_charset_named() {
        assert_eq!(
            decode_text(b"caf\xe9", Some("text/plain; charset=ISO-8859-1")),
            "café"
        );
        assert_eq!(decode_text("café".as_bytes(), None), "café");
    }
}
