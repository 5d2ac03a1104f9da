//! Writing the whisper.cpp ggml file format: header, mel filters, vocabulary and tensors.
//!
//! Layout (little-endian): i32 magic `0x67676d6c`; eleven i32 hyper-parameters (n_vocab,
//! n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer, n_text_ctx, n_text_state, n_text_head,
//! n_text_layer, n_mels, ftype); i32 n_mel, i32 n_fft and the f32 filters; i32 word count and per
//! word an i32 length and the bytes; then per tensor i32 n_dims, i32 name length, i32 type
//! (0 f32, 1 f16), the dims innermost first, the name and the data.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use half::f16;

use super::ModelError;
use super::convert::Hparams;
use super::{mel, vocab};

/// The ggml file magic, `"ggml"` as a little-endian i32.
const GGML_MAGIC: u32 = 0x6767_6d6c;

/// Streams ggml records into the temporary file, counting bytes and tensors.
pub(crate) struct GgmlWriter {
    pub(crate) w: BufWriter<File>,
    pub(crate) path: PathBuf,
    pub(crate) bytes: u64,
    pub(crate) tensors: usize,
}

impl GgmlWriter {
    pub(crate) fn put(&mut self, data: &[u8]) -> Result<(), ModelError> {
        self.w
            .write_all(data)
            .map_err(|e| ModelError::io("write", &self.path, e))?;
        self.bytes += data.len() as u64;
        Ok(())
    }

    pub(crate) fn i32(&mut self, v: usize) -> Result<(), ModelError> {
        let v = i32::try_from(v).map_err(|_| {
            ModelError::malformed(&self.path, format!("{v} does not fit the ggml header"))
        })?;
        self.put(&v.to_le_bytes())
    }

    /// Writes one tensor: `shape` is row-major (outermost first), as CT2 stores it.
    pub(crate) fn tensor(
        &mut self,
        name: &str,
        shape: &[usize],
        data: &[f32],
        as_f32: bool,
    ) -> Result<(), ModelError> {
        self.i32(shape.len())?;
        self.i32(name.len())?;
        self.i32(if as_f32 { 0 } else { 1 })?;
        for &d in shape.iter().rev() {
            self.i32(d)?;
        }
        self.put(name.as_bytes())?;
        let mut buf = Vec::with_capacity(data.len() * if as_f32 { 4 } else { 2 });
        if as_f32 {
            data.iter()
                .for_each(|v| buf.extend_from_slice(&v.to_le_bytes()));
        } else {
            data.iter()
                .for_each(|&v| buf.extend_from_slice(&f16::from_f32(v).to_le_bytes()));
        }
        self.put(&buf)?;
        self.tensors += 1;
        Ok(())
    }
}

pub(crate) fn write_header(
    out: &mut GgmlWriter,
    hp: &Hparams,
    tokens: &[String],
) -> Result<(), ModelError> {
    out.put(&GGML_MAGIC.to_le_bytes())?;
    for v in [
        hp.n_vocab,
        hp.n_audio_ctx,
        hp.n_audio_state,
        hp.n_audio_head,
        hp.n_audio_layer,
        hp.n_text_ctx,
        hp.n_text_state,
        hp.n_text_head,
        hp.n_text_layer,
        hp.n_mels,
        1, // ftype: mostly f16
    ] {
        out.i32(v)?;
    }
    out.i32(hp.n_mels)?;
    out.i32(mel::N_FREQS)?;
    let filters = mel::filterbank(hp.n_mels);
    let mut buf = Vec::with_capacity(filters.len() * 4);
    filters
        .iter()
        .for_each(|v| buf.extend_from_slice(&v.to_le_bytes()));
    out.put(&buf)?;
    let words = vocab::ggml_vocab(tokens);
    out.i32(words.len())?;
    for w in &words {
        out.i32(w.len())?;
        out.put(w)?;
    }
    Ok(())
}
