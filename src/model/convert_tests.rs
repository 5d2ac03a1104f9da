//! Tests of the CTranslate2 → ggml converter: synthetic models written here byte by byte, and the
//! real tiny.en model when `scripts/test-model.sh` has unpacked it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use half::{bf16, f16};

use super::*;
use crate::model::ct2::Ct2Model;
use crate::model::mel;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A CTranslate2 `model.bin` under construction.
struct Ct2File {
    version: u32,
    spec: String,
    revision: u32,
    vars: Vec<(String, Vec<usize>, u8, Vec<u8>)>,
    aliases: Vec<(String, String)>,
}

/// Deterministic values that f16 and bf16 represent exactly (integers below 256), distinct over
/// 251 elements so that the rows of a split projection differ.
fn pattern(n: usize, base: f32) -> Vec<f32> {
    (0..n).map(|i| base + (i % 251) as f32).collect()
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&((s.len() + 1) as u16).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

impl Ct2File {
    fn new() -> Self {
        Ct2File {
            version: 6,
            spec: "WhisperSpec".into(),
            revision: 3,
            vars: Vec::new(),
            aliases: Vec::new(),
        }
    }

    /// Adds a float variable stored with dtype `dtype` (0 f32, 4 f16, 5 bf16).
    fn float(&mut self, name: &str, shape: &[usize], dtype: u8, values: &[f32]) {
        let mut bytes = Vec::new();
        for &v in values {
            match dtype {
                0 => bytes.extend_from_slice(&v.to_le_bytes()),
                5 => bytes.extend_from_slice(&bf16::from_f32(v).to_le_bytes()),
                _ => bytes.extend_from_slice(&f16::from_f32(v).to_le_bytes()),
            }
        }
        self.vars.push((name.into(), shape.to_vec(), dtype, bytes));
    }

    fn raw(&mut self, name: &str, shape: &[usize], dtype: u8, bytes: Vec<u8>) {
        self.vars.push((name.into(), shape.to_vec(), dtype, bytes));
    }

    fn write(&self, path: &Path) -> std::io::Result<()> {
        let mut out = Vec::new();
        out.extend_from_slice(&self.version.to_le_bytes());
        put_str(&mut out, &self.spec);
        out.extend_from_slice(&self.revision.to_le_bytes());
        out.extend_from_slice(&(self.vars.len() as u32).to_le_bytes());
        let mut sorted: Vec<_> = self.vars.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, shape, dtype, bytes) in sorted {
            put_str(&mut out, name);
            out.push(shape.len() as u8);
            shape
                .iter()
                .for_each(|&d| out.extend_from_slice(&(d as u32).to_le_bytes()));
            out.push(*dtype);
            out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            out.extend_from_slice(bytes);
        }
        out.extend_from_slice(&(self.aliases.len() as u32).to_le_bytes());
        for (a, t) in &self.aliases {
            put_str(&mut out, a);
            put_str(&mut out, t);
        }
        std::fs::write(path, out)
    }
}

const D: usize = 8;
const AUDIO_CTX: usize = 6;
const TEXT_CTX: usize = 4;
const VOCAB: [&str; 6] = [
    "!",
    "Ġa",
    "Ċ",
    "<|endoftext|>",
    "<|startoftranscript|>",
    "<|en|>",
];

fn linear(f: &mut Ct2File, name: &str, rows: usize, cols: usize, dtype: u8) {
    f.float(
        &format!("{name}/weight"),
        &[rows, cols],
        dtype,
        &pattern(rows * cols, 1.0),
    );
    f.float(
        &format!("{name}/bias"),
        &[rows],
        dtype,
        &pattern(rows, -3.0),
    );
}

fn norm(f: &mut Ct2File, name: &str, dtype: u8) {
    f.float(&format!("{name}/gamma"), &[D], dtype, &pattern(D, 1.0));
    f.float(&format!("{name}/beta"), &[D], dtype, &pattern(D, 0.0));
}

/// A complete one-layer Whisper (width 8, 2 heads) in CT2 form, weights stored as `dtype`.
fn synthetic(dtype: u8) -> Ct2File {
    let mut f = Ct2File::new();
    f.raw("encoder/num_heads", &[], 2, 2i16.to_le_bytes().to_vec());
    f.raw("decoder/num_heads", &[], 2, 2i16.to_le_bytes().to_vec());
    f.raw("decoder/activation", &[], 1, vec![3]);
    f.float(
        "encoder/conv1/weight",
        &[D, 80, 3],
        dtype,
        &pattern(D * 240, 0.0),
    );
    f.float("encoder/conv1/bias", &[D], dtype, &pattern(D, 2.0));
    f.float(
        "encoder/conv2/weight",
        &[D, D, 3],
        dtype,
        &pattern(D * D * 3, 0.0),
    );
    f.float("encoder/conv2/bias", &[D], dtype, &pattern(D, 2.0));
    let enc_pos = pattern(AUDIO_CTX * D, 0.0);
    f.float(
        "encoder/position_encodings/encodings",
        &[AUDIO_CTX, D],
        dtype,
        &enc_pos,
    );
    let dec_pos = pattern(TEXT_CTX * D, 0.0);
    f.float(
        "decoder/position_encodings/encodings",
        &[TEXT_CTX, D],
        dtype,
        &dec_pos,
    );
    f.float(
        "decoder/embeddings/weight",
        &[VOCAB.len(), D],
        dtype,
        &pattern(VOCAB.len() * D, 0.0),
    );
    norm(&mut f, "encoder/layer_norm", dtype);
    norm(&mut f, "decoder/layer_norm", dtype);
    for side in ["encoder", "decoder"] {
        let l = format!("{side}/layer_0");
        norm(&mut f, &format!("{l}/self_attention/layer_norm"), dtype);
        linear(
            &mut f,
            &format!("{l}/self_attention/linear_0"),
            3 * D,
            D,
            dtype,
        );
        linear(&mut f, &format!("{l}/self_attention/linear_1"), D, D, dtype);
        norm(&mut f, &format!("{l}/ffn/layer_norm"), dtype);
        linear(&mut f, &format!("{l}/ffn/linear_0"), 4 * D, D, dtype);
        linear(&mut f, &format!("{l}/ffn/linear_1"), D, 4 * D, dtype);
    }
    let l = "decoder/layer_0/attention";
    norm(&mut f, &format!("{l}/layer_norm"), dtype);
    linear(&mut f, &format!("{l}/linear_0"), D, D, dtype);
    linear(&mut f, &format!("{l}/linear_1"), 2 * D, D, dtype);
    linear(&mut f, &format!("{l}/linear_2"), D, D, dtype);
    f.aliases.push((
        "decoder/projection/weight".into(),
        "decoder/embeddings/weight".into(),
    ));
    f
}

fn model_dir(f: &Ct2File) -> Result<tempfile::TempDir, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    f.write(&dir.path().join("model.bin"))?;
    std::fs::write(dir.path().join("vocabulary.txt"), VOCAB.join("\n") + "\n")?;
    Ok(dir)
}

/// A parsed ggml file: header ints, mel shape, vocabulary and tensors (type, ne, values).
struct Ggml {
    hparams: Vec<i32>,
    mel: (i32, i32, Vec<f32>),
    vocab: Vec<Vec<u8>>,
    tensors: BTreeMap<String, (i32, Vec<i32>, Vec<f32>)>,
}

fn parse_ggml(path: &Path) -> Result<Ggml, Box<dyn std::error::Error>> {
    let b = std::fs::read(path)?;
    let mut pos = 0;
    let i32_at = |pos: &mut usize| -> Result<i32, Box<dyn std::error::Error>> {
        let v = i32::from_le_bytes(b.get(*pos..*pos + 4).ok_or("eof")?.try_into()?);
        *pos += 4;
        Ok(v)
    };
    assert_eq!(i32_at(&mut pos)? as u32, 0x6767_6d6c);
    let hparams = (0..11)
        .map(|_| i32_at(&mut pos))
        .collect::<Result<Vec<_>, _>>()?;
    let (n_mel, n_fft) = (i32_at(&mut pos)?, i32_at(&mut pos)?);
    let n = (n_mel * n_fft) as usize;
    let mel: Vec<f32> = b[pos..pos + 4 * n]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    pos += 4 * n;
    let n_words = i32_at(&mut pos)?;
    let mut vocab = Vec::new();
    for _ in 0..n_words {
        let len = i32_at(&mut pos)? as usize;
        vocab.push(b[pos..pos + len].to_vec());
        pos += len;
    }
    let mut tensors = BTreeMap::new();
    while pos < b.len() {
        let (dims, name_len, ty) = (i32_at(&mut pos)?, i32_at(&mut pos)?, i32_at(&mut pos)?);
        let ne = (0..dims)
            .map(|_| i32_at(&mut pos))
            .collect::<Result<Vec<_>, _>>()?;
        let name = String::from_utf8(b[pos..pos + name_len as usize].to_vec())?;
        pos += name_len as usize;
        let count: usize = ne.iter().map(|&d| d as usize).product();
        let size = if ty == 0 { 4 } else { 2 };
        let data = b[pos..pos + count * size]
            .chunks_exact(size)
            .map(|c| match c {
                [lo, hi] => f16::from_le_bytes([*lo, *hi]).to_f32(),
                _ => f32::from_le_bytes([c[0], c[1], c[2], c[3]]),
            })
            .collect();
        pos += count * size;
        assert!(
            tensors.insert(name.clone(), (ty, ne, data)).is_none(),
            "duplicate {name}"
        );
    }
    Ok(Ggml {
        hparams,
        mel: (n_mel, n_fft, mel),
        vocab,
        tensors,
    })
}

#[test]
fn synthetic_model_converts_with_split_attention() -> TestResult {
    let dir = model_dir(&synthetic(4))?;
    let out = dir.path().join("out/ggml-test.bin");
    let report = import_ct2(dir.path(), &out)?;
    let g = parse_ggml(&out)?;
    assert_eq!(g.hparams, [6, 6, 8, 2, 1, 4, 8, 2, 1, 80, 1]);
    assert_eq!((g.mel.0, g.mel.1, g.mel.2.len()), (80, 201, 80 * 201));
    assert_eq!(g.mel.2, mel::filterbank(80));
    // Ids up to <|endoftext|>, byte-decoded.
    let words: Vec<&[u8]> = g.vocab.iter().map(Vec::as_slice).collect();
    assert_eq!(words, [&b"!"[..], b" a", b"\n", b"<|endoftext|>"]);
    // Encoder 5 + 2 + 15 per layer, decoder 4 + 24 per layer.
    assert_eq!(g.tensors.len(), 7 + 15 + 4 + 24);
    assert_eq!(report.tensors, g.tensors.len());
    assert_eq!(report.bytes, std::fs::metadata(&out)?.len());
    assert_eq!((report.n_vocab, report.n_mels), (6, 80));
    assert_eq!(report.model_type, "custom-1x8");

    let t = |name: &str| g.tensors.get(name).ok_or(format!("missing {name}"));
    // Types and shapes (ne is the row-major shape reversed).
    assert_eq!(
        (t("encoder.conv1.weight")?.0, &t("encoder.conv1.weight")?.1),
        (1, &vec![3, 80, 8])
    );
    assert_eq!(
        (t("encoder.conv1.bias")?.0, &t("encoder.conv1.bias")?.1),
        (0, &vec![1, 8])
    );
    assert_eq!(t("encoder.positional_embedding")?.0, 0);
    assert_eq!(t("decoder.positional_embedding")?.0, 0);
    assert_eq!(t("decoder.token_embedding.weight")?.0, 1);
    assert_eq!(t("decoder.blocks.0.mlp.0.weight")?.1, vec![8, 32]);
    assert_eq!(t("decoder.blocks.0.mlp_ln.weight")?.0, 0);
    // q;k;v split by rows, key bias dropped.
    let fused = pattern(3 * D * D, 1.0);
    let fused_bias = pattern(3 * D, -3.0);
    assert_eq!(t("encoder.blocks.0.attn.query.weight")?.2, fused[..D * D]);
    assert_eq!(
        t("encoder.blocks.0.attn.key.weight")?.2,
        fused[D * D..2 * D * D]
    );
    assert_eq!(
        t("encoder.blocks.0.attn.value.weight")?.2,
        fused[2 * D * D..]
    );
    assert_eq!(t("encoder.blocks.0.attn.query.bias")?.2, fused_bias[..D]);
    assert_eq!(
        t("encoder.blocks.0.attn.value.bias")?.2,
        fused_bias[2 * D..]
    );
    assert!(!g.tensors.keys().any(|k| k.ends_with("key.bias")));
    // Cross-attention k;v split, value bias from the second half.
    assert_eq!(
        t("decoder.blocks.0.cross_attn.value.bias")?.2,
        pattern(2 * D, -3.0)[D..]
    );
    assert_eq!(
        t("decoder.blocks.0.cross_attn_ln.weight")?.2,
        pattern(D, 1.0)
    );
    assert!(t("decoder.ln.bias").is_ok() && t("encoder.ln_post.weight").is_ok());
    // No temporary file is left next to the output.
    assert_eq!(std::fs::read_dir(dir.path().join("out"))?.count(), 1);
    Ok(())
}

#[test]
fn float32_and_bfloat16_sources_convert_to_the_same_file() -> TestResult {
    let mut outputs = Vec::new();
    for dtype in [4, 0, 5] {
        let dir = model_dir(&synthetic(dtype))?;
        let out = dir.path().join("ggml.bin");
        import_ct2(dir.path(), &out)?;
        outputs.push(std::fs::read(&out)?);
    }
    // The pattern is exact in f16 and bf16 alike, so all three must be byte-identical.
    assert!(outputs[0] == outputs[1] && outputs[1] == outputs[2]);
    Ok(())
}

#[test]
fn header_index_and_aliases_are_read() -> TestResult {
    let dir = model_dir(&synthetic(4))?;
    let mut m = Ct2Model::open(&dir.path().join("model.bin"))?;
    assert_eq!(m.scalar_int("encoder/num_heads")?, Some(2));
    assert_eq!(m.scalar_int("decoder/activation")?, Some(3));
    assert_eq!(m.scalar_int("absent")?, None);
    let projection = m.get("decoder/projection/weight").map(|v| v.shape.clone());
    assert_eq!(projection, Some(vec![VOCAB.len(), D]));
    assert_eq!(
        m.read_f32("decoder/projection/weight")?,
        pattern(VOCAB.len() * D, 0.0)
    );
    Ok(())
}

fn error_of(f: &Ct2File) -> Result<(String, ()), Box<dyn std::error::Error>> {
    let dir = model_dir(f)?;
    let out = dir.path().join("ggml.bin");
    let err = import_ct2(dir.path(), &out)
        .err()
        .ok_or("conversion should fail")?;
    assert!(!out.exists(), "no output after a failure");
    assert_eq!(
        std::fs::read_dir(dir.path())?.count(),
        2,
        "no temporary file left"
    );
    Ok((err.to_string(), ()))
}

#[test]
fn int8_weights_are_refused_with_advice() -> TestResult {
    let mut f = synthetic(4);
    f.vars
        .retain(|v| v.0 != "encoder/layer_0/ffn/linear_0/weight");
    f.raw(
        "encoder/layer_0/ffn/linear_0/weight",
        &[4 * D, D],
        1,
        vec![1; 4 * D * D],
    );
    f.float(
        "encoder/layer_0/ffn/linear_0/weight_scale",
        &[4 * D],
        0,
        &pattern(4 * D, 1.0),
    );
    let (msg, _) = error_of(&f)?;
    assert!(
        msg.contains(
            "quantized CTranslate2 models are not supported; convert a float16 or float32 model"
        ) && msg.contains("encoder/layer_0/ffn/linear_0/weight")
            && msg.contains("int8"),
        "{msg}"
    );
    Ok(())
}

#[test]
fn int16_weights_are_refused() -> TestResult {
    let mut f = synthetic(4);
    f.vars.retain(|v| v.0 != "decoder/embeddings/weight");
    f.raw(
        "decoder/embeddings/weight",
        &[VOCAB.len(), D],
        2,
        vec![0; 2 * VOCAB.len() * D],
    );
    let (msg, _) = error_of(&f)?;
    assert!(msg.contains("quantized") && msg.contains("int16"), "{msg}");
    Ok(())
}

#[test]
fn wrong_version_spec_and_shapes_are_named() -> TestResult {
    let mut f = synthetic(4);
    f.version = 7;
    assert!(error_of(&f)?.0.contains("binary version 7"));
    let mut f = synthetic(4);
    f.spec = "TransformerSpec".into();
    assert!(
        error_of(&f)?
            .0
            .contains("TransformerSpec model, not a Whisper model")
    );
    let mut f = synthetic(4);
    f.vars
        .retain(|v| v.0 != "encoder/layer_0/ffn/linear_1/weight");
    f.float(
        "encoder/layer_0/ffn/linear_1/weight",
        &[D, D],
        4,
        &pattern(D * D, 0.0),
    );
    let msg = error_of(&f)?.0;
    assert!(
        msg.contains("unexpected tensor shape: encoder/layer_0/ffn/linear_1/weight is [8, 8], expected [8, 32]"),
        "{msg}"
    );
    let mut f = synthetic(4);
    f.vars
        .retain(|v| v.0 != "decoder/layer_0/attention/linear_2/bias");
    assert!(
        error_of(&f)?
            .0
            .contains("decoder/layer_0/attention/linear_2/bias is missing")
    );
    Ok(())
}

#[test]
fn truncated_and_missing_files_are_reported() -> TestResult {
    let dir = model_dir(&synthetic(4))?;
    let bin = dir.path().join("model.bin");
    let len = std::fs::metadata(&bin)?.len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&bin)?
        .set_len(len / 2)?;
    let msg = import_ct2(dir.path(), &dir.path().join("o.bin"))
        .err()
        .map(|e| e.to_string());
    assert!(
        msg.as_deref()
            .is_some_and(|m| m.contains("truncated") || m.contains("ends early")),
        "{msg:?}"
    );

    std::fs::remove_file(dir.path().join("vocabulary.txt"))?;
    synthetic(4).write(&bin)?;
    let err = import_ct2(dir.path(), &dir.path().join("o.bin")).err();
    assert!(
        matches!(err, Some(ModelError::MissingFile { .. })),
        "{err:?}"
    );
    std::fs::remove_file(&bin)?;
    let err = import_ct2(dir.path(), &dir.path().join("o.bin")).err();
    assert!(
        matches!(&err, Some(ModelError::MissingFile { path, .. }) if path.ends_with("model.bin"))
    );
    let err = import_ct2(&dir.path().join("nope"), &dir.path().join("o.bin")).err();
    assert!(matches!(err, Some(ModelError::MissingFile { .. })));
    Ok(())
}

/// The unpacked faster-whisper tiny.en, if `scripts/test-model.sh` (or ATLAS_TEST_CT2_DIR) made it.
fn real_model_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("ATLAS_TEST_CT2_DIR") {
        return Some(PathBuf::from(dir));
    }
    let cache = std::env::var_os("ATLAS_TEST_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/atlas-test")))?;
    let dir = cache.join("faster-whisper-tiny.en");
    dir.join("model.bin").is_file().then_some(dir)
}

#[test]
fn real_tiny_en_converts_to_the_official_layout() -> TestResult {
    let Some(src) = real_model_dir() else {
        crate::test_skip::skip(
            crate::test_skip::Need::Model,
            "no faster-whisper tiny.en to convert: run scripts/test-model.sh or set ATLAS_TEST_CT2_DIR",
        );
        return Ok(());
    };
    let tmp = tempfile::tempdir()?;
    let out = tmp.path().join("ggml-tiny.en.bin");
    let report = import_ct2(&src, &out)?;
    assert_eq!(report.tensors, 167);
    assert_eq!(report.bytes, 77_704_715);
    assert_eq!(std::fs::metadata(&out)?.len(), 77_704_715);
    assert_eq!(
        (report.n_vocab, report.model_type.as_str()),
        (51_864, "tiny.en")
    );
    let g = parse_ggml(&out)?;
    assert_eq!(g.hparams, [51864, 1500, 384, 6, 4, 448, 384, 6, 4, 80, 1]);
    assert_eq!(g.vocab.len(), 50_257);
    assert_eq!(g.vocab[50_256], b"<|endoftext|>");
    assert_eq!(g.vocab[220], b" ");
    Ok(())
}
