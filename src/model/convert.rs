//! Converting a CTranslate2 (faster-whisper) Whisper model directory into a whisper.cpp ggml file.
//!
//! The directory holds `model.bin` (the weights) and a token list (`vocabulary.txt`,
//! `vocabulary.json` or `tokenizer.json`); `config.json` is not needed. The ggml file is written in
//! this order: magic, the eleven hyper-parameters (taken from the CT2 shapes and the `num_heads`
//! scalars), the mel filterbank (computed, see `mel`), the byte-decoded vocabulary (see `vocab`)
//! and the tensors under whisper.cpp's names. CT2 fuses attention projections, so `q;k;v` and the
//! cross-attention `k;v` are split by rows; the key bias is dropped because whisper.cpp has no such
//! tensor (CT2 stores zeros there, and a bias on keys cannot change softmax attention anyway).
//! Vectors, conv biases and positional embeddings are f32; every other weight is f16. Float32 and
//! bfloat16 sources are converted; integer (quantized) sources are refused.
//!
//! The output goes to a hidden temporary file next to `out_path`, is synced, and is renamed into
//! place only when complete, so a crash never leaves a truncated `ggml-*.bin` behind.

use std::fs::{File, OpenOptions};
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use tracing::info;

use super::ModelError;
use super::ct2::{Ct2Model, DType};
use super::ggml::{GgmlWriter, WeightType, write_header};
use super::vocab;

/// Head width of every Whisper model, used when a CT2 file has no `num_heads` scalar.
const HEAD_DIM: usize = 64;

/// What [`import_ct2`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// Number of tensors written (167 for tiny).
    pub tensors: usize,
    /// Size of the ggml file in bytes.
    pub bytes: u64,
    /// Vocabulary size of the model (51864 for English-only models, 51865 or 51866 otherwise).
    pub n_vocab: usize,
    /// Number of mel bands the model expects (80, or 128 for large-v3).
    pub n_mels: usize,
    /// The recognised architecture, e.g. `"tiny.en"` or `"large-v3"`.
    pub model_type: String,
    /// Where the file was written.
    pub path: PathBuf,
}

/// Hyper-parameters, in the order the ggml header stores them (before `ftype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hparams {
    pub(crate) n_vocab: usize,
    pub(crate) n_audio_ctx: usize,
    pub(crate) n_audio_state: usize,
    pub(crate) n_audio_head: usize,
    pub(crate) n_audio_layer: usize,
    pub(crate) n_text_ctx: usize,
    pub(crate) n_text_state: usize,
    pub(crate) n_text_head: usize,
    pub(crate) n_text_layer: usize,
    pub(crate) n_mels: usize,
}

impl Hparams {
    /// The model's usual name, from its size (and vocabulary for `.en`).
    fn model_type(&self) -> String {
        let base = match (self.n_audio_layer, self.n_audio_state) {
            (4, 384) => "tiny".to_owned(),
            (6, 512) => "base".to_owned(),
            (12, 768) => "small".to_owned(),
            (24, 1024) => "medium".to_owned(),
            (32, 1280) if self.n_mels == 128 && self.n_text_layer == 4 => {
                "large-v3-turbo".to_owned()
            }
            (32, 1280) if self.n_mels == 128 => "large-v3".to_owned(),
            (32, 1280) => "large".to_owned(),
            (layers, state) => format!("custom-{layers}x{state}"),
        };
        if self.n_vocab == 51_864 {
            format!("{base}.en")
        } else {
            base
        }
    }
}

/// Converts the CTranslate2 Whisper model in `model_dir` into a ggml file at `out_path`.
///
/// Blocking (it reads and writes the whole model): call it from `spawn_blocking` in async code.
/// The parent directory of `out_path` is created if needed; an existing file there is replaced.
pub fn import_ct2(model_dir: &Path, out_path: &Path) -> Result<ImportReport, ModelError> {
    import_ct2_as(model_dir, out_path, WeightType::F16)
}

/// [`import_ct2`], storing the weight matrices as `weights` (f16, or quantized to Q8_0).
pub fn import_ct2_as(
    model_dir: &Path,
    out_path: &Path,
    weights: WeightType,
) -> Result<ImportReport, ModelError> {
    let (mut model, hp, tokens) = open_source(model_dir)?;
    let dir = match out_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| ModelError::io("create", &dir, e))?;
    let file_name = out_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model.bin".to_owned());
    let tmp = TempFile(dir.join(format!(".{file_name}.tmp-{}", std::process::id())));
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp.0)
        .map_err(|e| ModelError::io("create", &tmp.0, e))?;
    let mut out = GgmlWriter {
        w: BufWriter::with_capacity(1 << 20, file),
        path: tmp.0.clone(),
        bytes: 0,
        tensors: 0,
        weights,
    };
    write_header(&mut out, &hp, &tokens)?;
    write_tensors(&mut model, &mut out, &hp)?;
    let bytes = out.bytes;
    let tensors = out.tensors;
    let file = out
        .w
        .into_inner()
        .map_err(|e| ModelError::io("write", &tmp.0, e.into_error()))?;
    file.sync_all()
        .map_err(|e| ModelError::io("sync", &tmp.0, e))?;
    drop(file);
    tmp.persist(out_path)?;
    sync_dir(&dir);
    let report = ImportReport {
        tensors,
        bytes,
        n_vocab: hp.n_vocab,
        n_mels: hp.n_mels,
        model_type: hp.model_type(),
        path: out_path.to_owned(),
    };
    info!(
        source = %model_dir.display(),
        out = %out_path.display(),
        model = %report.model_type,
        tensors,
        bytes,
        "converted CTranslate2 whisper model to ggml"
    );
    Ok(report)
}

/// Opens the CTranslate2 model in `model_dir`: its weights index (refusing quantized weights),
/// hyper-parameters and vocabulary, checked against each other.
fn open_source(model_dir: &Path) -> Result<(Ct2Model, Hparams, Vec<String>), ModelError> {
    if !model_dir.is_dir() {
        return Err(ModelError::MissingFile {
            path: model_dir.to_owned(),
            hint: "expected a CTranslate2 Whisper model directory (model.bin, vocabulary.txt)",
        });
    }
    let bin = model_dir.join("model.bin");
    if !bin.is_file() {
        return Err(ModelError::MissingFile {
            path: bin,
            hint: "the CTranslate2 weights file; is this a faster-whisper model directory?",
        });
    }
    let mut model = Ct2Model::open(&bin)?;
    refuse_quantized(&model)?;
    let hp = hparams(&mut model)?;
    let tokens = vocab::load_tokens(model_dir)?;
    if tokens.len() < hp.n_vocab.min(50_257) {
        return Err(ModelError::malformed(
            model_dir,
            format!(
                "the vocabulary has {} tokens but the model has {} embeddings",
                tokens.len(),
                hp.n_vocab
            ),
        ));
    }
    Ok((model, hp, tokens))
}

/// Deletes the temporary output unless the conversion completed.
struct TempFile(PathBuf);

impl TempFile {
    /// Renames the finished file to `dest`; after that there is nothing to delete.
    fn persist(self, dest: &Path) -> Result<(), ModelError> {
        std::fs::rename(&self.0, dest).map_err(|e| ModelError::io("rename into", dest, e))?;
        // The temporary name is gone, so the guard's delete becomes a harmless no-op.
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Makes a completed rename durable. Failure only weakens crash safety, so it is not an error.
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Refuses models whose weights are stored as integers with scales (int8/int16 quantization).
fn refuse_quantized(model: &Ct2Model) -> Result<(), ModelError> {
    for (name, var) in model.names() {
        let int = matches!(var.dtype, DType::I8 | DType::I16 | DType::I32);
        if name.ends_with("weight_scale") || (int && var.shape.len() >= 2) {
            let quantized = if name.ends_with("weight_scale") {
                name.trim_end_matches("_scale").to_owned()
            } else {
                name.to_owned()
            };
            let dtype = model.get(&quantized).map_or(var.dtype, |v| v.dtype);
            return Err(ModelError::Quantized {
                path: model.path().to_owned(),
                variable: quantized,
                dtype: dtype.name(),
            });
        }
    }
    Ok(())
}

/// Reads the hyper-parameters from the shapes of known variables and the head-count scalars.
fn hparams(model: &mut Ct2Model) -> Result<Hparams, ModelError> {
    let shape2 = |model: &Ct2Model, name: &str| -> Result<(usize, usize), ModelError> {
        let v = model.require(name)?;
        match v.shape[..] {
            [a, b] => Ok((a, b)),
            _ => Err(ModelError::malformed(
                model.path(),
                format!("{name} should be 2-D but has shape {:?}", v.shape),
            )),
        }
    };
    let (n_vocab, n_text_state) = shape2(model, "decoder/embeddings/weight")?;
    let (n_text_ctx, dec_pos_state) = shape2(model, "decoder/position_encodings/encodings")?;
    let (n_audio_ctx, n_audio_state) = shape2(model, "encoder/position_encodings/encodings")?;
    let conv1 = model.require("encoder/conv1/weight")?;
    let n_mels = match conv1.shape[..] {
        [out, mels, 3] if out == n_audio_state => mels,
        _ => {
            return Err(ModelError::malformed(
                model.path(),
                format!(
                    "encoder/conv1/weight has shape {:?}, expected [{n_audio_state}, n_mels, 3]",
                    conv1.shape
                ),
            ));
        }
    };
    if dec_pos_state != n_text_state {
        return Err(ModelError::malformed(
            model.path(),
            format!(
                "decoder/position_encodings/encodings is {dec_pos_state} wide, expected {n_text_state}"
            ),
        ));
    }
    let layers = |model: &Ct2Model, side: &str| {
        (0..)
            .take_while(|i| {
                model
                    .get(&format!("{side}/layer_{i}/self_attention/linear_0/weight"))
                    .is_some()
            })
            .count()
    };
    let n_audio_layer = layers(model, "encoder");
    let n_text_layer = layers(model, "decoder");
    let mut heads = |name: &str, state: usize| -> Result<usize, ModelError> {
        match model.scalar_int(name)? {
            Some(h) if h > 0 && state.is_multiple_of(h as usize) => Ok(h as usize),
            Some(h) => Err(ModelError::malformed(
                model.path(),
                format!("{name} is {h}, which does not divide the width {state}"),
            )),
            None => Ok((state / HEAD_DIM).max(1)),
        }
    };
    let n_audio_head = heads("encoder/num_heads", n_audio_state)?;
    let n_text_head = heads("decoder/num_heads", n_text_state)?;
    if n_audio_layer == 0 || n_text_layer == 0 {
        return Err(ModelError::malformed(
            model.path(),
            "no encoder or decoder layers were found",
        ));
    }
    Ok(Hparams {
        n_vocab,
        n_audio_ctx,
        n_audio_state,
        n_audio_head,
        n_audio_layer,
        n_text_ctx,
        n_text_state,
        n_text_head,
        n_text_layer,
        n_mels,
    })
}

/// Reads one CT2 variable after checking it has the `expected` shape.
fn load(model: &mut Ct2Model, name: &str, expected: &[usize]) -> Result<Vec<f32>, ModelError> {
    let var = model.require(name)?;
    if var.shape != expected {
        return Err(ModelError::malformed(
            model.path(),
            format!(
                "unexpected tensor shape: {name} is {:?}, expected {expected:?}",
                var.shape
            ),
        ));
    }
    model.read_f32(name)
}

/// Copies `src/{weight,bias}` (`[rows, cols]`, `[rows]`) to `dst.{weight,bias}`.
fn linear(
    m: &mut Ct2Model,
    out: &mut GgmlWriter,
    src: &str,
    dst: &str,
    rows: usize,
    cols: usize,
) -> Result<(), ModelError> {
    let w = load(m, &format!("{src}/weight"), &[rows, cols])?;
    out.tensor(&format!("{dst}.weight"), &[rows, cols], &w, false)?;
    let b = load(m, &format!("{src}/bias"), &[rows])?;
    out.tensor(&format!("{dst}.bias"), &[rows], &b, true)
}

/// Copies a LayerNorm's `gamma`/`beta` to `dst.weight`/`dst.bias`.
fn norm(
    m: &mut Ct2Model,
    out: &mut GgmlWriter,
    src: &str,
    dst: &str,
    d: usize,
) -> Result<(), ModelError> {
    let g = load(m, &format!("{src}/gamma"), &[d])?;
    out.tensor(&format!("{dst}.weight"), &[d], &g, true)?;
    let b = load(m, &format!("{src}/beta"), &[d])?;
    out.tensor(&format!("{dst}.bias"), &[d], &b, true)
}

/// Splits a fused projection of `parts.len() × d` rows into one tensor per part. A part whose
/// flag is false (the keys) gets no bias.
fn fused(
    m: &mut Ct2Model,
    out: &mut GgmlWriter,
    src: &str,
    parts: &[(&str, bool)],
    d: usize,
) -> Result<(), ModelError> {
    let n = parts.len();
    let w = load(m, &format!("{src}/weight"), &[n * d, d])?;
    let b = load(m, &format!("{src}/bias"), &[n * d])?;
    for (i, (dst, with_bias)) in parts.iter().enumerate() {
        out.tensor(
            &format!("{dst}.weight"),
            &[d, d],
            &w[i * d * d..(i + 1) * d * d],
            false,
        )?;
        if *with_bias {
            out.tensor(&format!("{dst}.bias"), &[d], &b[i * d..(i + 1) * d], true)?;
        }
    }
    Ok(())
}

/// Self-attention, feed-forward and their norms: shared by encoder and decoder blocks.
fn block_common(
    m: &mut Ct2Model,
    out: &mut GgmlWriter,
    src: &str,
    dst: &str,
    d: usize,
) -> Result<(), ModelError> {
    norm(
        m,
        out,
        &format!("{src}/self_attention/layer_norm"),
        &format!("{dst}.attn_ln"),
        d,
    )?;
    let (q, k, v) = (
        format!("{dst}.attn.query"),
        format!("{dst}.attn.key"),
        format!("{dst}.attn.value"),
    );
    fused(
        m,
        out,
        &format!("{src}/self_attention/linear_0"),
        &[(&q, true), (&k, false), (&v, true)],
        d,
    )?;
    linear(
        m,
        out,
        &format!("{src}/self_attention/linear_1"),
        &format!("{dst}.attn.out"),
        d,
        d,
    )?;
    norm(
        m,
        out,
        &format!("{src}/ffn/layer_norm"),
        &format!("{dst}.mlp_ln"),
        d,
    )?;
    linear(
        m,
        out,
        &format!("{src}/ffn/linear_0"),
        &format!("{dst}.mlp.0"),
        4 * d,
        d,
    )?;
    linear(
        m,
        out,
        &format!("{src}/ffn/linear_1"),
        &format!("{dst}.mlp.2"),
        d,
        4 * d,
    )
}

/// Every tensor whisper.cpp loads, in its order: the encoder's, then the decoder's.
fn write_tensors(m: &mut Ct2Model, out: &mut GgmlWriter, hp: &Hparams) -> Result<(), ModelError> {
    let da = hp.n_audio_state;
    let pos = load(
        m,
        "encoder/position_encodings/encodings",
        &[hp.n_audio_ctx, da],
    )?;
    out.tensor(
        "encoder.positional_embedding",
        &[hp.n_audio_ctx, da],
        &pos,
        true,
    )?;
    for (i, n_in) in [(1, hp.n_mels), (2, da)] {
        let w = load(m, &format!("encoder/conv{i}/weight"), &[da, n_in, 3])?;
        out.tensor(
            &format!("encoder.conv{i}.weight"),
            &[da, n_in, 3],
            &w,
            false,
        )?;
        let b = load(m, &format!("encoder/conv{i}/bias"), &[da])?;
        // whisper.cpp adds the bias to a [time, channels] result, so it is stored as (d, 1).
        out.tensor(&format!("encoder.conv{i}.bias"), &[da, 1], &b, true)?;
    }
    for i in 0..hp.n_audio_layer {
        block_common(
            m,
            out,
            &format!("encoder/layer_{i}"),
            &format!("encoder.blocks.{i}"),
            da,
        )?;
    }
    norm(m, out, "encoder/layer_norm", "encoder.ln_post", da)?;
    write_decoder(m, out, hp)
}

/// The decoder's tensors: positions, token embeddings, blocks with cross-attention, final norm.
fn write_decoder(m: &mut Ct2Model, out: &mut GgmlWriter, hp: &Hparams) -> Result<(), ModelError> {
    let dt = hp.n_text_state;
    let pos = load(
        m,
        "decoder/position_encodings/encodings",
        &[hp.n_text_ctx, dt],
    )?;
    out.tensor(
        "decoder.positional_embedding",
        &[hp.n_text_ctx, dt],
        &pos,
        true,
    )?;
    let emb = load(m, "decoder/embeddings/weight", &[hp.n_vocab, dt])?;
    out.tensor(
        "decoder.token_embedding.weight",
        &[hp.n_vocab, dt],
        &emb,
        false,
    )?;
    drop(emb);
    for i in 0..hp.n_text_layer {
        let (src, dst) = (format!("decoder/layer_{i}"), format!("decoder.blocks.{i}"));
        block_common(m, out, &src, &dst, dt)?;
        cross_attention(m, out, &src, &dst, dt)?;
    }
    norm(m, out, "decoder/layer_norm", "decoder.ln", dt)
}

/// A decoder block's cross-attention: its norm, query, fused key/value and output projections.
fn cross_attention(
    m: &mut Ct2Model,
    out: &mut GgmlWriter,
    src: &str,
    dst: &str,
    dt: usize,
) -> Result<(), ModelError> {
    norm(
        m,
        out,
        &format!("{src}/attention/layer_norm"),
        &format!("{dst}.cross_attn_ln"),
        dt,
    )?;
    linear(
        m,
        out,
        &format!("{src}/attention/linear_0"),
        &format!("{dst}.cross_attn.query"),
        dt,
        dt,
    )?;
    let (k, v) = (
        format!("{dst}.cross_attn.key"),
        format!("{dst}.cross_attn.value"),
    );
    fused(
        m,
        out,
        &format!("{src}/attention/linear_1"),
        &[(&k, false), (&v, true)],
        dt,
    )?;
    linear(
        m,
        out,
        &format!("{src}/attention/linear_2"),
        &format!("{dst}.cross_attn.out"),
        dt,
        dt,
    )
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;
