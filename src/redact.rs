//! Redaction: every secret a run reads is masked in everything Atlas records or prints.
//!
//! A [`Redactor`] belongs to a run (and is shared with the child runs its `workflow` actions
//! start): reading a secret, through `{{ secrets.NAME }}` or an action's own secret setting,
//! registers the value before it is used, and every sink of the run (database rows, events, the
//! outcome, error text) passes through it. Each registration also goes to the process-wide
//! registry, [`process`], which the log writers ([`RedactingLogs`]) and the CLI's error printing
//! use, so a secret that reached a log line by a path no one thought of is masked there too.
//!
//! Besides the value itself, its common encodings are masked: percent-encoded (in a URL echoed
//! back) and base64 (standard and URL-safe alphabets, in an `Authorization` header echoed back).

use std::io::Write;
use std::sync::Mutex;

use serde_json::Value;

/// What a masked secret is replaced with.
pub const MASK: &str = "***";

/// Secrets shorter than this are not registered: masking `a` or `42` everywhere would garble
/// every record and hide nothing worth hiding.
pub const MIN_SECRET_LEN: usize = 4;

/// Values that must never be stored or logged: every secret a run has read, with its encodings.
#[derive(Debug, Default)]
pub struct Redactor {
    /// Every form to mask, longest first (so a longer encoding is masked before a value inside it).
    forms: Mutex<Vec<String>>,
}

static PROCESS: Redactor = Redactor {
    forms: Mutex::new(Vec::new()),
};

/// The process-wide registry: every secret any run of this process has read.
pub fn process() -> &'static Redactor {
    &PROCESS
}

impl Redactor {
    /// Remembers a secret value so that it (and its encodings) is masked from now on, here and in
    /// the process-wide registry.
    pub fn add(&self, secret: &str) {
        if self.insert(secret) && !std::ptr::eq(self, &PROCESS) {
            PROCESS.insert(secret);
        }
    }

    /// Adds the forms of `secret`; true when it was new here.
    fn insert(&self, secret: &str) -> bool {
        if secret.len() < MIN_SECRET_LEN {
            return false;
        }
        let mut forms = self.forms.lock().unwrap_or_else(|e| e.into_inner());
        if forms.iter().any(|f| f == secret) {
            return false;
        }
        for form in encodings(secret) {
            if !forms.contains(&form) {
                forms.push(form);
            }
        }
        forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
        true
    }

    /// Whether no secret is known.
    pub fn is_empty(&self) -> bool {
        self.forms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// Masks every known secret in `text`.
    pub fn text(&self, text: &str) -> String {
        let forms = self.forms.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = text.to_owned();
        for f in forms.iter() {
            if out.contains(f.as_str()) {
                out = out.replace(f.as_str(), MASK);
            }
        }
        out
    }

    /// Masks every known secret in raw bytes (log output, which may not be UTF-8).
    pub fn bytes(&self, bytes: &[u8]) -> Vec<u8> {
        let forms = self.forms.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = bytes.to_vec();
        for f in forms.iter() {
            out = replace_bytes(&out, f.as_bytes(), MASK.as_bytes());
        }
        out
    }

    /// Masks every known secret inside a JSON value (strings and object keys).
    pub fn json(&self, v: &Value) -> Value {
        if self.is_empty() {
            return v.clone();
        }
        match v {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(a) => Value::Array(a.iter().map(|i| self.json(i)).collect()),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, i)| (self.text(k), self.json(i)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

fn replace_bytes(hay: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    if needle.is_empty() || hay.len() < needle.len() {
        return hay.to_vec();
    }
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

/// The value and the encodings of it that are cheap to recognise.
fn encodings(secret: &str) -> Vec<String> {
    let mut forms = vec![secret.to_owned()];
    // Strict (a query value), keeping `/` (a path, or Jinja's `urlencode`), and as a form value.
    for keep in [&b""[..], b"/"] {
        let pct = percent_encode(secret, keep);
        if !forms.contains(&pct) {
            forms.push(pct.clone());
        }
        let form = pct.replace("%20", "+");
        if !forms.contains(&form) {
            forms.push(form);
        }
    }
    const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for alphabet in [STD, URL] {
        let b64 = base64(secret.as_bytes(), alphabet);
        // Without padding: inside a longer encoded text the padding is not there.
        let b64 = b64.trim_end_matches('=').to_owned();
        if b64.len() >= MIN_SECRET_LEN && !forms.contains(&b64) {
            forms.push(b64);
        }
    }
    forms
}

/// Percent-encoding as URLs carry it: unreserved characters and those in `keep` stay as they are.
fn percent_encode(s: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') || keep.contains(&b)
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn base64(data: &[u8], alphabet: &[u8; 64]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(alphabet[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A `tracing_subscriber` writer maker that masks every secret in [`process`] before a log line
/// reaches its destination (stderr, the daily log files).
#[derive(Debug, Clone)]
pub struct RedactingLogs<M>(pub M);

impl<'a, M: tracing_subscriber::fmt::MakeWriter<'a>> tracing_subscriber::fmt::MakeWriter<'a>
    for RedactingLogs<M>
{
    type Writer = RedactingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter {
            inner: self.0.make_writer(),
            buf: Vec::new(),
        }
    }
}

/// One log event being written: buffered, then masked and passed on when dropped (the fmt layer
/// makes one writer per event, so a secret is never split across two writes).
pub struct RedactingWriter<W: Write> {
    inner: W,
    buf: Vec<u8>,
}

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.pass_on()?;
        self.inner.flush()
    }
}

impl<W: Write> RedactingWriter<W> {
    fn pass_on(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let buf = std::mem::take(&mut self.buf);
        let out = if PROCESS.is_empty() {
            buf
        } else {
            PROCESS.bytes(&buf)
        };
        self.inner.write_all(&out)
    }
}

impl<W: Write> Drop for RedactingWriter<W> {
    fn drop(&mut self) {
        let _ = self.pass_on();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_the_value_and_its_encodings_everywhere() {
        let r = Redactor::default();
        r.add("hunter2/x y");
        assert_eq!(
            r.json(&json!({"k": ["a hunter2/x y b"], "hunter2/x y": 1})),
            json!({"k": ["a *** b"], "***": 1})
        );
        assert_eq!(r.text("u?key=hunter2%2Fx%20y&z"), "u?key=***&z");
        assert_eq!(r.text("Bearer aHVudGVyMi94IHk"), "Bearer ***");
        assert!(process().text("hunter2/x y").contains(MASK));
    }

    #[test]
    fn base64_matches_the_standard_alphabet() {
        const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        assert_eq!(base64(b"sk-test", STD), "c2stdGVzdA==");
        assert_eq!(base64(b"abc", STD), "YWJj");
        assert_eq!(base64(b"ab", STD), "YWI=");
    }

    #[test]
    fn log_lines_are_masked_before_they_are_written() {
        use tracing_subscriber::layer::SubscriberExt;
        #[derive(Clone, Default)]
        struct Sink(std::sync::Arc<Mutex<Vec<u8>>>);
        impl Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink::default();
        let out = sink.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(RedactingLogs(move || out.clone())),
        );
        Redactor::default().add("log-secret-9f3a");
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(reply = "the key is log-secret-9f3a", "utterance handled");
        });
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("utterance handled"), "{text}");
        assert!(!text.contains("log-secret-9f3a"), "{text}");
        assert!(text.contains("the key is ***"), "{text}");
    }
}
