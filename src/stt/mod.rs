//! Speech to text: a long-lived whisper.cpp model behind a cloneable [`Transcriber`] handle.
//!
//! The voice loop hands over 16 kHz mono clips (from `audio`, already through its speech gate)
//! and gets back a [`Transcript`]. Whisper is tuned here for short spoken commands: greedy
//! decoding with no temperature fallback, one segment, an encoder window sized to the clip with a
//! floor, and a token budget scaled to the clip (see `whisper-models.md` in the shared notes for
//! the measurements behind each choice). A new utterance aborts one that is still decoding.
//! Whisper's artefacts (annotations, loops) are cut from every transcript here, by the one
//! cleaning step [`clean_transcript`]; [`is_noise_transcript`] recognises its silence inventions.
//!
//! **Boundary:** `stt` knows whisper and nothing of hotkeys, trays, intents or workflows. Which
//! initial prompt to use (built from the user's trigger phrases) is decided by the caller.
//!
//! **Invariant:** inference and model loading run only on the transcriber's own worker thread,
//! never on the async runtime; that thread is the single owner of the model.

mod gbnf;
mod guide;
mod redecode;
mod text;
mod transcript;
pub mod whisper;

use std::path::PathBuf;

pub use gbnf::Grammar;
pub use transcript::{clean_transcript, is_noise_transcript};
pub use whisper::{
    Alternative, GUIDED_MARGIN, Hints, Readings, SttConfig, Transcriber, Transcript,
};

/// Errors from loading a model or transcribing.
#[derive(Debug, thiserror::Error)]
pub enum SttError {
    /// The model file does not exist.
    #[error(
        "whisper model not found at {path}: download one with `atlas model download tiny.en`, \
         or bring your own file with `atlas model import <file>`"
    )]
    ModelMissing {
        /// Where the model was expected.
        path: PathBuf,
    },
    /// The file exists but is not a whisper.cpp ggml model.
    #[error(
        "{path} is not a whisper.cpp ggml model ({reason}); use a `ggml-*.bin` file from \
         whisper.cpp, e.g. via `atlas model download tiny.en`"
    )]
    NotAModel {
        /// The file.
        path: PathBuf,
        /// What gave it away.
        reason: String,
    },
    /// whisper.cpp refused to load the file (corrupt, truncated, or an unsupported variant).
    #[error(
        "whisper could not load the model {path}: {reason}; the file may be truncated or \
         corrupt: download it again with `atlas model download`"
    )]
    ModelLoad {
        /// The file.
        path: PathBuf,
        /// whisper's complaint.
        reason: String,
    },
    /// There was no audio to transcribe.
    #[error("no audio to transcribe: the clip is empty")]
    EmptyAudio,
    /// A newer utterance (or an unload) superseded this one while it was queued or decoding.
    #[error("transcription aborted: a newer utterance took its place")]
    Aborted,
    /// A decoding grammar could not be parsed (it is built from the voice phrases: a bug there).
    #[error("the decoding grammar is invalid: {0}")]
    Grammar(String),
    /// whisper failed during inference.
    #[error("transcription failed: {0}")]
    Inference(String),
    /// The transcriber's worker thread is gone (it could not start, or it panicked).
    #[error("the speech recognition worker has stopped; restart Atlas (see the log for why)")]
    WorkerGone,
}
