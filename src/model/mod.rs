//! Whisper model management: which models exist, which are installed, getting them, and making
//! one from a CTranslate2 (faster-whisper) directory.
//!
//! Speech recognition in Atlas runs whisper.cpp, which loads a single `ggml-<name>.bin` file.
//! [`catalog`] lists the official files with their sizes and the SHA-1 sums whisper.cpp
//! publishes, and finds what is already in the models directory ([`installed`],
//! [`best_installed_english`]). [`download`] fetches a file over HTTP with resume, retries and a
//! checksum check before anything appears under its final name. [`convert`] turns a CTranslate2
//! Whisper model (the format faster-whisper uses, and the only one available from PyPI here) into
//! the ggml format. Nothing in this module loads or runs a model: that is `stt`'s job.
//!
//! **Invariant:** a file named `ggml-*.bin` in the models directory is always complete. Downloads
//! write `<file>.part` and conversions a hidden temporary file, and both are renamed into place
//! only once verified and synced.

pub mod catalog;
pub mod convert;
mod ct2;
pub mod download;
mod ggml;
mod mel;
mod vocab;

use std::path::PathBuf;

pub use catalog::{
    CATALOG, CatalogEntry, InstalledModel, Language, best_installed_english, find, installed,
};
pub use convert::{ImportReport, import_ct2, import_ct2_as};
pub use download::{DEFAULT_BASE_URL, download_file, download_model, probe};
pub use ggml::WeightType;

/// Everything that can go wrong while finding, downloading or converting a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The name is not in the catalog.
    #[error("unknown whisper model '{name}'; known models: {known}")]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// The catalog's names, comma separated.
        known: String,
    },
    /// Reading or writing a local file failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done, e.g. "write".
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The HTTP request failed before a usable answer arrived, after every retry.
    #[error(
        "download of {url} failed after {attempts} attempt(s): {reason}; check the network and \
         run the command again (the partial file is kept and the download resumes)"
    )]
    Network {
        /// The URL requested.
        url: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last error seen.
        reason: String,
    },
    /// The server does not have the file.
    #[error("{url} was not found (HTTP 404); check the model name and the download base URL")]
    NotFound {
        /// The URL requested.
        url: String,
    },
    /// The server answered with an error status other than 404.
    #[error("{url} answered HTTP {status}; try again later or use another base URL")]
    HttpStatus {
        /// The URL requested.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The downloaded file does not have the published SHA-1 sum. The partial file was deleted.
    #[error(
        "checksum mismatch for {path}: expected SHA-1 {expected}, got {actual}; the corrupt \
         download was deleted, run the command again"
    )]
    ChecksumMismatch {
        /// The file that was checked (the `.part` file, now deleted).
        path: PathBuf,
        /// The published SHA-1, lowercase hex.
        expected: String,
        /// The SHA-1 of what arrived.
        actual: String,
    },
    /// The downloaded file does not have the expected size. The partial file was deleted.
    #[error(
        "size mismatch for {path}: expected {expected} bytes, got {actual}; the download was \
         deleted, run the command again"
    )]
    SizeMismatch {
        /// The file that was checked.
        path: PathBuf,
        /// The expected size in bytes.
        expected: u64,
        /// The size that arrived.
        actual: u64,
    },
    /// The server offers a file of another size than the catalog says; nothing was downloaded.
    #[error(
        "{url} has {actual} bytes but {expected} were expected; the base URL serves a different \
         file (check it, or update Atlas if the model was republished)"
    )]
    UnexpectedSize {
        /// The URL requested.
        url: String,
        /// The size the catalog expects.
        expected: u64,
        /// The size the server announced.
        actual: u64,
    },
    /// A file the CTranslate2 model directory needs is absent.
    #[error("{path} is missing: {hint}")]
    MissingFile {
        /// The missing file.
        path: PathBuf,
        /// What the file is and where it comes from.
        hint: &'static str,
    },
    /// The model file is of a binary version this converter cannot read.
    #[error(
        "{path} has CTranslate2 binary version {version}; only versions 4 to 6 can be converted \
         (re-export it with a recent ct2-transformers-converter)"
    )]
    UnsupportedVersion {
        /// The `model.bin` file.
        path: PathBuf,
        /// The version found in its header.
        version: u32,
    },
    /// The model is a CTranslate2 model of something other than Whisper.
    #[error("{path} holds a CTranslate2 {spec} model, not a Whisper model (WhisperSpec)")]
    NotWhisper {
        /// The `model.bin` file.
        path: PathBuf,
        /// The spec name found in its header.
        spec: String,
    },
    /// The model stores integer (quantized) weights.
    #[error(
        "quantized CTranslate2 models are not supported; convert a float16 or float32 model \
         ({variable} in {path} is {dtype})"
    )]
    Quantized {
        /// The `model.bin` file.
        path: PathBuf,
        /// The first quantized variable found.
        variable: String,
        /// Its storage type, e.g. "int8".
        dtype: &'static str,
    },
    /// The file is not a well-formed model of the expected layout.
    #[error("{path} is not a usable Whisper model: {detail}")]
    Malformed {
        /// The file that was being read.
        path: PathBuf,
        /// What was wrong, naming the variable or offset.
        detail: String,
    },
}

impl ModelError {
    /// Wraps an I/O error with what was being done and to which path.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        ModelError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// A [`ModelError::Malformed`] for `path`.
    pub(crate) fn malformed(path: impl Into<PathBuf>, detail: impl Into<String>) -> Self {
        ModelError::Malformed {
            path: path.into(),
            detail: detail.into(),
        }
    }
}
