//! Audio in: reading and writing WAV files, resampling to whisper's 16 kHz mono, microphone
//! capture for push-to-talk, a voice-activity gate that decides whether a clip holds speech, and
//! a watcher that finds pauses in a recording while it goes on (`live`).
//!
//! Everything downstream (`stt`, `intent`) sees audio in one shape only: `Vec<f32>` of mono
//! samples at [`SAMPLE_RATE`] (16 kHz) in `-1.0..=1.0`. This module is where other shapes (any WAV
//! file, any microphone's rate, channel count and sample format) are turned into that one.
//!
//! **Boundary:** `audio` imports nothing from the UI or desktop code (tray, hotkeys). The hotkey
//! handler drives a [`Recorder`]; the recorder knows nothing about who presses what.
//!
//! **Invariant:** no audio callback ever blocks on anything but an uncontended lock, and no
//! blocking audio work runs on the async runtime: [`Recorder`] owns its stream on a dedicated
//! thread, and its blocking methods are meant for `spawn_blocking` or a plain thread.

pub mod capture;
pub mod live;
pub mod resample;
pub mod vad;
pub mod wav;

#[cfg(test)]
pub(crate) mod test_support;

use std::path::PathBuf;

pub use capture::{
    CaptureConfig, FirstSampleProbe, InputDeviceInfo, Recorder, Recording, list_input_devices,
};
pub use live::{LiveConfig, LiveEvent, LiveTap, LiveWatch, PauseDetector};
pub use resample::{downmix, resample_mono, to_16k_mono};
pub use vad::{SpeechReport, Vad, VadConfig};
pub use wav::{
    WavAudio, read_wav, read_wav_16k_mono, read_wav_bytes, read_wav_bytes_16k_mono, write_wav_f32,
    write_wav_i16,
};

/// The sample rate every consumer of this module works at: whisper's 16 kHz.
pub const SAMPLE_RATE: u32 = 16_000;

/// Errors from reading, converting or capturing audio.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// A WAV file could not be opened or parsed.
    #[error("cannot read WAV file {path}: {source} (is it a PCM or float WAV file?)")]
    WavRead {
        /// The file.
        path: PathBuf,
        /// The decoder's complaint.
        #[source]
        source: hound::Error,
    },
    /// A WAV file could not be written.
    #[error(
        "cannot write WAV file {path}: {source} (check that the folder exists and is writable)"
    )]
    WavWrite {
        /// The file.
        path: PathBuf,
        /// The encoder's complaint.
        #[source]
        source: hound::Error,
    },
    /// A WAV file parsed but holds something this module cannot use.
    #[error("unsupported WAV file {path}: {reason}")]
    WavUnsupported {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Resampling failed (a bad rate, or an internal resampler error).
    #[error("cannot resample audio from {from_rate} Hz to {to_rate} Hz: {reason}")]
    Resample {
        /// Source rate in Hz.
        from_rate: u32,
        /// Target rate in Hz.
        to_rate: u32,
        /// The resampler's complaint.
        reason: String,
    },
    /// The audio system has no input device at all.
    #[error(
        "no microphone found: the audio system reports no default input device \
         (plug one in, or check that PulseAudio/PipeWire is running and the microphone is not muted)"
    )]
    NoInputDevice,
    /// A device was asked for by name and no input device has that name.
    #[error("no input device named {name:?}; available input devices: {}", list_or_none(.available))]
    DeviceNotFound {
        /// The name asked for.
        name: String,
        /// The input devices that do exist.
        available: Vec<String>,
    },
    /// The audio system could not be queried (devices, configurations).
    #[error("cannot query audio device {device:?}: {reason}")]
    DeviceQuery {
        /// The device, or `"<host>"` for host-level queries.
        device: String,
        /// The backend's complaint.
        reason: String,
    },
    /// The device delivers a sample format this module does not convert.
    #[error(
        "input device {device:?} uses sample format {format}, which Atlas cannot read; pick another device"
    )]
    UnsupportedFormat {
        /// The device.
        device: String,
        /// The format it reported.
        format: String,
    },
    /// The input stream could not be opened or started.
    #[error(
        "cannot open the input stream on {device:?}: {reason} (is another program holding the microphone?)"
    )]
    Stream {
        /// The device.
        device: String,
        /// The backend's complaint.
        reason: String,
    },
    /// The stream failed while recording (device unplugged, server gone).
    #[error("recording from {device:?} failed: {reason}")]
    StreamFailed {
        /// The device.
        device: String,
        /// The backend's complaint.
        reason: String,
    },
    /// `stop()` was called with no recording running.
    #[error("no recording is running: call start() first")]
    NotRecording,
    /// `start()` was called while a recording was already running.
    #[error("a recording is already running: call stop() first")]
    AlreadyRecording,
    /// The capture thread is gone (it panicked or its stream could not be kept).
    #[error("the audio capture thread has stopped; open the recorder again")]
    CaptureThreadGone,
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "(none)".to_owned()
    } else {
        names.join(", ")
    }
}
