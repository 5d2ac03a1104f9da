//! Writing the whisper.cpp ggml file format: header, mel filters, vocabulary and tensors.
//!
//! Layout (little-endian): i32 magic `0x67676d6c`; eleven i32 hyper-parameters (n_vocab,
//! n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer, n_text_ctx, n_text_state, n_text_head,
//! n_text_layer, n_mels, ftype); i32 n_mel, i32 n_fft and the f32 filters; i32 word count and per
//! word an i32 length and the bytes; then per tensor i32 n_dims, i32 name length, i32 type
//! (0 f32, 1 f16, 8 q8_0), the dims innermost first, the name and the data.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use half::f16;

use super::ModelError;
use super::convert::Hparams;
use super::{mel, vocab};

/// The ggml file magic, `"ggml"` as a little-endian i32.
const GGML_MAGIC: u32 = 0x6767_6d6c;

/// How the big matrices (linear layers and the token embedding) are stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WeightType {
    /// 16-bit floats, as the source model (ggml ftype 1).
    #[default]
    F16,
    /// ggml's Q8_0: blocks of 32 values as one f16 scale and 32 signed bytes (ggml ftype 7).
    /// Half the memory of f16, and faster matrix products on the CPU; accuracy stays very close.
    Q8_0,
}

impl WeightType {
    /// The header's `ftype`: whisper.cpp reads quantized types as `ftype + 1000 * version`.
    fn ftype(self) -> usize {
        match self {
            WeightType::F16 => 1,
            WeightType::Q8_0 => 7 + 1000 * GGML_QNT_VERSION,
        }
    }

    /// The ggml tensor type of a big matrix.
    fn tensor_type(self) -> usize {
        match self {
            WeightType::F16 => 1,
            WeightType::Q8_0 => 8,
        }
    }

    /// The name as `atlas model import --quantize` spells it.
    pub fn name(self) -> &'static str {
        match self {
            WeightType::F16 => "f16",
            WeightType::Q8_0 => "q8_0",
        }
    }
}

impl std::str::FromStr for WeightType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "f16" => Ok(WeightType::F16),
            "q8_0" | "q8" => Ok(WeightType::Q8_0),
            other => Err(format!(
                "`{other}` is not a supported weight type: f16 or q8_0"
            )),
        }
    }
}

/// ggml's quantization format version (`GGML_QNT_VERSION`).
const GGML_QNT_VERSION: usize = 2;
/// Values per Q8_0 block (`QK8_0`).
const QK8_0: usize = 32;

/// Quantizes `data` to Q8_0 blocks, as ggml's reference `quantize_row_q8_0` does: per block of
/// 32, the scale is max |x| / 127 and each value is rounded to the nearest multiple of it.
/// `data.len()` must be a multiple of 32.
fn quantize_q8_0(data: &[f32], out: &mut Vec<u8>) {
    for block in data.chunks_exact(QK8_0) {
        let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
        out.extend(block.iter().map(|&v| (v * id).round() as i8 as u8));
    }
}

/// Streams ggml records into the temporary file, counting bytes and tensors.
pub(crate) struct GgmlWriter {
    pub(crate) w: BufWriter<File>,
    pub(crate) path: PathBuf,
    pub(crate) bytes: u64,
    pub(crate) tensors: usize,
    /// How 2-D weight matrices are stored.
    pub(crate) weights: WeightType,
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

    /// Writes one tensor: `shape` is row-major (outermost first), as CT2 stores it. A tensor
    /// not `as_f32` is f16, except 2-D matrices, which take the writer's [`WeightType`] (the
    /// 3-D convolution kernels stay f16: whisper.cpp expects exactly that).
    pub(crate) fn tensor(
        &mut self,
        name: &str,
        shape: &[usize],
        data: &[f32],
        as_f32: bool,
    ) -> Result<(), ModelError> {
        let quantize = !as_f32 && shape.len() == 2 && self.weights == WeightType::Q8_0;
        if quantize && !shape[1].is_multiple_of(QK8_0) {
            return Err(ModelError::malformed(
                &self.path,
                format!(
                    "{name}: rows of {} values cannot be split into Q8_0 blocks of 32",
                    shape[1]
                ),
            ));
        }
        let ttype = match (as_f32, quantize) {
            (true, _) => 0,
            (false, true) => self.weights.tensor_type(),
            (false, false) => 1,
        };
        self.i32(shape.len())?;
        self.i32(name.len())?;
        self.i32(ttype)?;
        for &d in shape.iter().rev() {
            self.i32(d)?;
        }
        self.put(name.as_bytes())?;
        let mut buf = Vec::with_capacity(data.len() * if as_f32 { 4 } else { 2 });
        if as_f32 {
            data.iter()
                .for_each(|v| buf.extend_from_slice(&v.to_le_bytes()));
        } else if quantize {
            quantize_q8_0(data, &mut buf);
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
        out.weights.ftype(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q8_0_blocks_hold_the_scale_and_rounded_values() {
        let mut data: Vec<f32> = (0..32).map(|i| i as f32 - 16.0).collect();
        data.extend([0.0; 32]);
        let mut out = Vec::new();
        quantize_q8_0(&data, &mut out);
        assert_eq!(
            out.len(),
            2 * 34,
            "two blocks of a 2-byte scale and 32 bytes"
        );
        let d = f16::from_le_bytes([out[0], out[1]]).to_f32();
        assert!((d - 16.0 / 127.0).abs() < 1e-4, "{d}");
        // -16 is the largest magnitude: it maps to -127; 0 to 0; dequantized values are close.
        assert_eq!(out[2] as i8, -127);
        assert_eq!(out[2 + 16] as i8, 0);
        for (i, &q) in out[2..34].iter().enumerate() {
            let back = q as i8 as f32 * d;
            assert!((back - data[i]).abs() <= d / 2.0 + 1e-6, "{i}: {back}");
        }
        // An all-zero block has scale 0 and zero quants.
        assert!(out[34..].iter().all(|&b| b == 0));
        assert_eq!(WeightType::Q8_0.ftype(), 2007);
        assert_eq!("Q8_0".parse::<WeightType>(), Ok(WeightType::Q8_0));
        assert!(
            "q4_k"
                .parse::<WeightType>()
                .unwrap_err()
                .contains("f16 or q8_0")
        );
    }
}
