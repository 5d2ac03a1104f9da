//! The token list a ggml whisper file carries, read from a CTranslate2 model directory.
//!
//! CTranslate2 stores tokens in GPT-2's byte-level form, where every byte is drawn as a printable
//! character (a space is `Ġ`, a newline `Ċ`); ggml wants the raw bytes, so each character goes
//! back through GPT-2's byte decoder. Only ids up to and including `<|endoftext|>` are written,
//! as in the official files: whisper.cpp creates the special and timestamp tokens that follow.

use std::path::Path;

use super::ModelError;

/// The token that ends the written vocabulary.
const END_OF_TEXT: &str = "<|endoftext|>";
/// Where `<|endoftext|>` sits in every Whisper vocabulary, used if the list does not name it.
const DEFAULT_WRITTEN: usize = 50_257;

/// The character GPT-2's byte-level encoding uses for each byte value.
fn byte_encoder() -> [char; 256] {
    let printable = |b: u32| {
        (u32::from('!')..=u32::from('~')).contains(&b)
            || (0xA1..=0xAC).contains(&b)
            || (0xAE..=0xFF).contains(&b)
    };
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    for (b, slot) in table.iter_mut().enumerate() {
        let b = b as u32;
        let code = if printable(b) {
            b
        } else {
            next += 1;
            next - 1
        };
        *slot = char::from_u32(code).unwrap_or('\u{FFFD}');
    }
    table
}

/// Turns a byte-level token back into its bytes. A character outside the byte-level alphabet
/// (which GPT-2 never produces) is kept as its UTF-8 encoding.
pub(crate) fn decode_token(token: &str, encoder: &[char; 256]) -> Vec<u8> {
    let mut out = Vec::with_capacity(token.len());
    for c in token.chars() {
        match encoder.iter().position(|&e| e == c) {
            Some(b) => out.push(b as u8),
            None => {
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out
}

/// Reads the token list from `dir` (`vocabulary.txt`, `vocabulary.json` or `tokenizer.json`).
pub(crate) fn load_tokens(dir: &Path) -> Result<Vec<String>, ModelError> {
    let txt = dir.join("vocabulary.txt");
    if txt.is_file() {
        let text = std::fs::read_to_string(&txt).map_err(|e| ModelError::io("read", &txt, e))?;
        let mut tokens: Vec<String> = text.split('\n').map(str::to_owned).collect();
        if tokens.last().is_some_and(String::is_empty) {
            tokens.pop();
        }
        return Ok(tokens);
    }
    let json = dir.join("vocabulary.json");
    if json.is_file() {
        let text = std::fs::read_to_string(&json).map_err(|e| ModelError::io("read", &json, e))?;
        return serde_json::from_str(&text).map_err(|e| {
            ModelError::malformed(&json, format!("expected a JSON list of tokens: {e}"))
        });
    }
    let tok = dir.join("tokenizer.json");
    if tok.is_file() {
        return tokens_from_tokenizer_json(&tok);
    }
    Err(ModelError::MissingFile {
        path: txt,
        hint: "a CTranslate2 Whisper model needs vocabulary.txt, vocabulary.json or \
               tokenizer.json next to model.bin",
    })
}

/// Reads a Hugging Face `tokenizer.json`: the BPE vocabulary plus the added special tokens.
fn tokens_from_tokenizer_json(path: &Path) -> Result<Vec<String>, ModelError> {
    #[derive(serde::Deserialize)]
    struct Added {
        id: usize,
        content: String,
    }
    #[derive(serde::Deserialize)]
    struct Model {
        vocab: std::collections::HashMap<String, usize>,
    }
    #[derive(serde::Deserialize)]
    struct Tokenizer {
        model: Model,
        #[serde(default)]
        added_tokens: Vec<Added>,
    }
    let text = std::fs::read_to_string(path).map_err(|e| ModelError::io("read", path, e))?;
    let parsed: Tokenizer = serde_json::from_str(&text)
        .map_err(|e| ModelError::malformed(path, format!("not a tokenizer.json: {e}")))?;
    let pairs = parsed
        .model
        .vocab
        .into_iter()
        .chain(parsed.added_tokens.into_iter().map(|a| (a.content, a.id)));
    let mut by_id: Vec<Option<String>> = Vec::new();
    for (token, id) in pairs {
        if id >= 1_000_000 {
            return Err(ModelError::malformed(
                path,
                format!("token id {id} is too large"),
            ));
        }
        if by_id.len() <= id {
            by_id.resize(id + 1, None);
        }
        by_id[id] = Some(token);
    }
    by_id
        .into_iter()
        .enumerate()
        .map(|(id, t)| {
            t.ok_or_else(|| ModelError::malformed(path, format!("token id {id} is missing")))
        })
        .collect()
}

/// The byte strings to write: ids `0..=<|endoftext|>`, byte-decoded.
pub(crate) fn ggml_vocab(tokens: &[String]) -> Vec<Vec<u8>> {
    let written = tokens
        .iter()
        .position(|t| t == END_OF_TEXT)
        .map_or(DEFAULT_WRITTEN.min(tokens.len()), |i| i + 1);
    let encoder = byte_encoder();
    tokens[..written]
        .iter()
        .map(|t| decode_token(t, &encoder))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_decoder_inverts_gpt2_byte_level_form() {
        let enc = byte_encoder();
        // Printable ASCII maps to itself; space, newline and tab are shifted above 255.
        assert_eq!(enc[b'a' as usize], 'a');
        assert_eq!(enc[b' ' as usize], 'Ġ');
        assert_eq!(enc[b'\n' as usize], 'Ċ');
        assert_eq!(enc[b'\t' as usize], 'ĉ');
        assert_eq!(enc[0], 'Ā');
        assert_eq!(enc[0xAD], 'Ń');
        let distinct: std::collections::HashSet<char> = enc.iter().copied().collect();
        assert_eq!(distinct.len(), 256, "the table must be a bijection");
        assert_eq!(decode_token("Ġhello", &enc), b" hello");
        assert_eq!(decode_token("ĊĊ", &enc), b"\n\n");
        // "é" is two UTF-8 bytes, each drawn as its own Latin-1 character.
        assert_eq!(decode_token("Ã©", &enc), "é".as_bytes());
        // Every byte round-trips.
        for b in 0..=255u8 {
            assert_eq!(decode_token(&enc[b as usize].to_string(), &enc), vec![b]);
        }
    }

    #[test]
    fn vocab_stops_after_end_of_text() {
        let tokens: Vec<String> = ["!", "Ġa", "<|endoftext|>", "<|startoftranscript|>"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let v = ggml_vocab(&tokens);
        assert_eq!(
            v,
            vec![b"!".to_vec(), b" a".to_vec(), b"<|endoftext|>".to_vec()]
        );
    }

    #[test]
    fn tokens_load_from_each_format() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        assert!(matches!(
            load_tokens(dir.path()),
            Err(ModelError::MissingFile { .. })
        ));
        std::fs::write(
            dir.path().join("tokenizer.json"),
            r#"{"model":{"vocab":{"Ġa":1,"!":0}},"added_tokens":[{"id":2,"content":"<|endoftext|>"}]}"#,
        )?;
        assert_eq!(load_tokens(dir.path())?, ["!", "Ġa", "<|endoftext|>"]);
        std::fs::write(dir.path().join("vocabulary.txt"), "x\nĠy\n")?;
        assert_eq!(load_tokens(dir.path())?, ["x", "Ġy"]);
        Ok(())
    }

    #[test]
    fn tokenizer_json_with_a_gap_is_refused() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        std::fs::write(
            dir.path().join("tokenizer.json"),
            r#"{"model":{"vocab":{"a":0,"c":2}}}"#,
        )?;
        let err = load_tokens(dir.path()).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("token id 1 is missing")));
        Ok(())
    }
}
