//! Microphone capture for push-to-talk, through `cpal`.
//!
//! A [`Recorder`] opens one input device (the default one or one named by the user) on a
//! dedicated thread that owns the `cpal` stream for its whole life: `cpal` streams are not `Send`
//! on every platform, so exactly one thread holds it and the [`Recorder`] handle talks to that
//! thread through a command channel. With `keep_warm` the stream runs from `open` on and samples
//! are dropped in the audio callback while nobody records, so [`Recorder::start`] is a flag flip
//! and capture begins with the next device buffer (milliseconds) instead of paying the device's
//! start-up time (a cold ALSA/PulseAudio stream loses a few hundred ms).
//!
//! The callback converts whatever the device delivers (any rate, channel count and sample format)
//! to interleaved f32 and appends it to a bounded buffer of `max_seconds`. **When the buffer is
//! full, recording keeps the first `max_seconds` and drops what comes after** (the
//! [`Recording::truncated`] flag says so): a spoken command is at the start of a clip, so losing
//! the tail is the lesser harm. [`Recorder::stop`] downmixes and resamples to 16 kHz mono.
//!
//! The methods of [`Recorder`] block (briefly: a lock, a channel round trip, a resample); call them
//! from `spawn_blocking` or a plain thread, not from async code directly.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{Sample, SampleFormat, SizedSample};

use super::{AudioError, resample};

/// How to open the microphone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureConfig {
    /// Input device name (as shown by [`list_input_devices`], or its id); `None` = the system
    /// default input.
    pub device: Option<String>,
    /// Longest recording kept, in seconds; later audio is dropped (see the module docs).
    pub max_seconds: u32,
    /// Keep the stream running between recordings so `start()` captures at once. Costs a few
    /// wake-ups per second and, on desktops that show one, a "microphone in use" indicator.
    pub keep_warm: bool,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        Self {
            device: None,
            max_seconds: 30,
            keep_warm: true,
        }
    }
}

/// One input device as the audio system describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputDeviceInfo {
    /// Human-readable name; what `CaptureConfig::device` matches against.
    pub name: String,
    /// The backend's stable id (e.g. `alsa:default`); also accepted as a device name.
    pub id: String,
    /// Whether this is the system's default input.
    pub is_default: bool,
    /// The device's default input configuration, e.g. `48000 Hz, 2 ch, f32`, when it has one.
    pub default_config: Option<String>,
}

/// A finished recording, converted for `stt`.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    /// Mono samples at 16 kHz in `-1.0..=1.0`.
    pub samples: Vec<f32>,
    /// Length of `samples` in milliseconds.
    pub duration_ms: u64,
    /// The device's own sample rate.
    pub device_rate: u32,
    /// The device's own channel count.
    pub device_channels: u16,
    /// True when the buffer filled up and audio after `max_seconds` was dropped.
    pub truncated: bool,
    /// Time from `start()` to the first captured buffer, when any arrived (a warm-up measure).
    pub first_sample_after: Option<Duration>,
}

/// Lists the input devices of the default audio host.
pub fn list_input_devices() -> Result<Vec<InputDeviceInfo>, AudioError> {
    let host = cpal::default_host();
    let default_id = host.default_input_device().and_then(|d| d.id().ok());
    let devices = host.input_devices().map_err(|e| AudioError::DeviceQuery {
        device: "<host>".to_owned(),
        reason: e.to_string(),
    })?;
    Ok(devices
        .map(|d| {
            let id = d.id().ok();
            InputDeviceInfo {
                name: device_name(&d),
                is_default: id.is_some() && id == default_id,
                id: id.map(|i| i.to_string()).unwrap_or_default(),
                default_config: d.default_input_config().ok().map(|c| {
                    format!(
                        "{} Hz, {} ch, {}",
                        c.sample_rate(),
                        c.channels(),
                        c.sample_format()
                    )
                }),
            }
        })
        .collect())
}

fn device_name(d: &cpal::Device) -> String {
    d.description()
        .map(|desc| desc.name().to_owned())
        .or_else(|_| d.id().map(|id| id.to_string()))
        .unwrap_or_else(|_| "<unnamed device>".to_owned())
}

fn find_device(wanted: Option<&str>) -> Result<cpal::Device, AudioError> {
    let host = cpal::default_host();
    let Some(wanted) = wanted else {
        return host.default_input_device().ok_or(AudioError::NoInputDevice);
    };
    let mut devices: Vec<cpal::Device> = host
        .input_devices()
        .map_err(|e| AudioError::DeviceQuery {
            device: wanted.to_owned(),
            reason: e.to_string(),
        })?
        .collect();
    let matches = |d: &cpal::Device| {
        device_name(d).eq_ignore_ascii_case(wanted)
            || d.id().is_ok_and(|id| id.to_string() == wanted)
    };
    match devices.iter().position(matches) {
        Some(i) => Ok(devices.swap_remove(i)),
        None => Err(AudioError::DeviceNotFound {
            name: wanted.to_owned(),
            available: devices.iter().map(device_name).collect(),
        }),
    }
}

/// State shared between the audio callback, the [`Recorder`] handle and its taps.
pub(super) struct Shared {
    /// Whether the callback should keep what it receives.
    pub(super) recording: AtomicBool,
    /// Bumped by every `start()`, so a [`super::LiveTap`] knows its recording from the next.
    pub(super) session: AtomicU64,
    /// Device buffers delivered since the stream opened (recording or not).
    callbacks: AtomicU64,
    /// Locked by the callback for one append per device buffer and by start/stop; never
    /// contended for longer than a `memcpy`, so the callback cannot stall on it.
    pub(super) buf: Mutex<Buffer>,
}

#[derive(Default)]
pub(super) struct Buffer {
    /// Interleaved samples at the device's rate, as delivered.
    pub(super) samples: Vec<f32>,
    cap: usize,
    truncated: bool,
    first_at: Option<Instant>,
    error: Option<String>,
}

impl Shared {
    fn push<T: Sample>(&self, data: &[T])
    where
        f32: cpal::FromSample<T>,
    {
        self.callbacks.fetch_add(1, Ordering::Relaxed);
        if !self.recording.load(Ordering::Acquire) {
            return;
        }
        let Ok(mut buf) = self.buf.lock() else { return };
        if buf.first_at.is_none() {
            buf.first_at = Some(Instant::now());
        }
        let room = buf.cap.saturating_sub(buf.samples.len());
        if data.len() > room {
            buf.truncated = true;
        }
        let take = data.len().min(room);
        buf.samples
            .extend(data[..take].iter().map(|s| s.to_sample::<f32>()));
    }
}

enum Command {
    Play(mpsc::Sender<Result<(), String>>),
    Pause,
}

/// What the capture thread reports once its stream is open.
struct Opened {
    name: String,
    rate: u32,
    channels: u16,
}

/// See [`Recorder::first_sample_probe`]; `atlas bench agent` measures a key press with it.
#[derive(Clone)]
pub struct FirstSampleProbe(Arc<Shared>);

impl FirstSampleProbe {
    /// When the current recording (or, after it stopped, the last one) got its first sample;
    /// `None` before any sample of it arrived.
    pub fn first_sample_at(&self) -> Option<Instant> {
        self.0.buf.lock().ok()?.first_at
    }
}

/// A push-to-talk microphone recorder. See the module docs for threading and buffering.
pub struct Recorder {
    commands: Option<mpsc::Sender<Command>>,
    thread: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
    device: String,
    rate: u32,
    channels: u16,
    keep_warm: bool,
    started_at: Option<Instant>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("device", &self.device)
            .field("rate", &self.rate)
            .field("channels", &self.channels)
            .field("keep_warm", &self.keep_warm)
            .field("recording", &self.started_at.is_some())
            .finish()
    }
}

/// How long [`Recorder::open`] waits for the device.
pub const OPEN_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

impl Recorder {
    /// Opens the configured input device on a new capture thread (and starts the stream when
    /// `keep_warm`). Fails with [`AudioError::NoInputDevice`], [`AudioError::DeviceNotFound`]
    /// (listing the devices that exist) or [`AudioError::Stream`].
    pub fn open(config: &CaptureConfig) -> Result<Self, AudioError> {
        let shared = Arc::new(Shared {
            recording: AtomicBool::new(false),
            session: AtomicU64::new(0),
            callbacks: AtomicU64::new(0),
            buf: Mutex::new(Buffer::default()),
        });
        let (cmd_tx, cmd_rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let thread_shared = Arc::clone(&shared);
        let thread_config = config.clone();
        let thread = std::thread::Builder::new()
            .name("atlas-audio-capture".to_owned())
            .spawn(move || capture_thread(thread_config, thread_shared, cmd_rx, ready_tx))
            .map_err(|e| AudioError::Stream {
                device: config
                    .device
                    .clone()
                    .unwrap_or_else(|| "default".to_owned()),
                reason: format!("cannot start the capture thread: {e}"),
            })?;
        // A sound server that accepts and never answers must not hold the caller: past the
        // bound the device is given up on (its thread closes it if it ever opens).
        let opened = match ready_rx.recv_timeout(OPEN_LIMIT) {
            Ok(Ok(opened)) => opened,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(AudioError::Stream {
                    device: config
                        .device
                        .clone()
                        .unwrap_or_else(|| "default".to_owned()),
                    reason: format!(
                        "the microphone did not open in {} s; is the sound server answering?",
                        OPEN_LIMIT.as_secs()
                    ),
                });
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return Err(AudioError::CaptureThreadGone),
        };
        let cap_frames = opened.rate as usize * config.max_seconds.max(1) as usize;
        if let Ok(mut buf) = shared.buf.lock() {
            buf.cap = cap_frames * usize::from(opened.channels);
        }
        tracing::info!(
            device = %opened.name,
            rate = opened.rate,
            channels = opened.channels,
            keep_warm = config.keep_warm,
            "microphone opened"
        );
        Ok(Self {
            commands: Some(cmd_tx),
            thread: Some(thread),
            shared,
            device: opened.name,
            rate: opened.rate,
            channels: opened.channels,
            keep_warm: config.keep_warm,
            started_at: None,
        })
    }

    /// The opened device's name.
    pub fn device_name(&self) -> &str {
        &self.device
    }

    /// The device's sample rate and channel count.
    pub fn device_format(&self) -> (u32, u16) {
        (self.rate, self.channels)
    }

    /// Whether a recording is running.
    pub fn is_recording(&self) -> bool {
        self.started_at.is_some()
    }

    /// Waits until the device has delivered audio at least once since it was opened (a warm
    /// stream) or since the last `start()` (a cold one), for at most `timeout`. Returns false when
    /// nothing arrived: the microphone is open but silent in the strongest sense (no data at all),
    /// which is worth telling the user. Some servers deliver the first buffer late (a PulseAudio
    /// null sink: ~2 s), so a warm recorder is best opened well before the first key press.
    pub fn wait_for_audio(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.shared.callbacks.load(Ordering::Relaxed) > 0 {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Starts keeping samples. With a warm stream this only flips a flag; otherwise it starts the
    /// stream and waits for the device to accept.
    pub fn start(&mut self) -> Result<(), AudioError> {
        if self.started_at.is_some() {
            return Err(AudioError::AlreadyRecording);
        }
        {
            let mut buf = self.lock_buf()?;
            buf.samples.clear();
            buf.truncated = false;
            buf.first_at = None;
            buf.error = None;
        }
        let now = Instant::now();
        self.shared.session.fetch_add(1, Ordering::AcqRel);
        self.shared.recording.store(true, Ordering::Release);
        if !self.keep_warm {
            self.shared.callbacks.store(0, Ordering::Relaxed);
            let (tx, rx) = mpsc::channel();
            self.send(Command::Play(tx))?;
            let played = rx.recv().map_err(|_| AudioError::CaptureThreadGone)?;
            if let Err(reason) = played {
                self.shared.recording.store(false, Ordering::Release);
                return Err(AudioError::Stream {
                    device: self.device.clone(),
                    reason,
                });
            }
        }
        self.started_at = Some(now);
        tracing::debug!(device = %self.device, "recording started");
        Ok(())
    }

    /// Stops keeping samples and returns the recording as 16 kHz mono. Fails with
    /// [`AudioError::StreamFailed`] when the stream broke and nothing was captured.
    pub fn stop(&mut self) -> Result<Recording, AudioError> {
        let started = self.started_at.take().ok_or(AudioError::NotRecording)?;
        self.shared.recording.store(false, Ordering::Release);
        if !self.keep_warm {
            // Pausing is an optimisation (no callbacks while idle); a failure only costs CPU.
            let _ = self.send(Command::Pause);
        }
        let (raw, truncated, first_at, error) = {
            let mut buf = self.lock_buf()?;
            (
                std::mem::take(&mut buf.samples),
                buf.truncated,
                // Kept (start() clears it) for the probe to read after the recording.
                buf.first_at,
                buf.error.take(),
            )
        };
        if let Some(reason) = error {
            if raw.is_empty() {
                return Err(AudioError::StreamFailed {
                    device: self.device.clone(),
                    reason,
                });
            }
            tracing::warn!(device = %self.device, %reason, "stream reported an error during recording");
        }
        let samples = resample::to_16k_mono(&raw, self.rate, self.channels)?;
        let duration_ms = samples.len() as u64 * 1000 / u64::from(super::SAMPLE_RATE);
        if truncated {
            tracing::warn!(device = %self.device, duration_ms, "recording hit its maximum length; the rest was dropped");
        }
        tracing::debug!(device = %self.device, duration_ms, "recording stopped");
        Ok(Recording {
            samples,
            duration_ms,
            device_rate: self.rate,
            device_channels: self.channels,
            truncated,
            first_sample_after: first_at.map(|t| t.saturating_duration_since(started)),
        })
    }

    /// A handle that tells, from any thread, when the current (or last) recording received its
    /// first sample, while the recorder itself is owned elsewhere (the agent).
    pub fn first_sample_probe(&self) -> FirstSampleProbe {
        FirstSampleProbe(Arc::clone(&self.shared))
    }

    /// A tap on the recording now running: it reads what has been captured so far while the
    /// recording goes on (see [`super::LiveTap`]). Made between recordings, it reads nothing.
    pub fn live_tap(&self) -> super::LiveTap {
        super::LiveTap::new(Arc::clone(&self.shared), self.rate, self.channels)
    }

    /// Records for a fixed time (`atlas listen --mic --seconds N`). Blocks for `duration`.
    pub fn record_for(&mut self, duration: Duration) -> Result<Recording, AudioError> {
        self.start()?;
        std::thread::sleep(duration);
        self.stop()
    }

    fn lock_buf(&self) -> Result<std::sync::MutexGuard<'_, Buffer>, AudioError> {
        // Only a panic inside `push` could poison the lock, and `push` has nothing that panics;
        // treat it like a dead capture thread all the same.
        self.shared
            .buf
            .lock()
            .map_err(|_| AudioError::CaptureThreadGone)
    }

    fn send(&self, cmd: Command) -> Result<(), AudioError> {
        self.commands
            .as_ref()
            .ok_or(AudioError::CaptureThreadGone)?
            .send(cmd)
            .map_err(|_| AudioError::CaptureThreadGone)
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // Closing the channel ends the capture thread's loop, which drops (closes) the stream.
        self.commands.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The capture thread: opens the stream, reports, then serves commands until the handle drops.
fn capture_thread(
    config: CaptureConfig,
    shared: Arc<Shared>,
    commands: mpsc::Receiver<Command>,
    ready: mpsc::SyncSender<Result<Opened, AudioError>>,
) {
    let (stream, opened) = match open_stream(&config, &shared) {
        Ok(x) => x,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    if config.keep_warm
        && let Err(e) = stream.play()
    {
        let _ = ready.send(Err(AudioError::Stream {
            device: opened.name,
            reason: e.to_string(),
        }));
        return;
    }
    if ready.send(Ok(opened)).is_err() {
        return;
    }
    while let Ok(cmd) = commands.recv() {
        match cmd {
            Command::Play(reply) => {
                let _ = reply.send(stream.play().map_err(|e| e.to_string()));
            }
            Command::Pause => {
                if let Err(e) = stream.pause() {
                    tracing::debug!(error = %e, "input stream cannot pause; it keeps running");
                }
            }
        }
    }
}

fn open_stream(
    config: &CaptureConfig,
    shared: &Arc<Shared>,
) -> Result<(cpal::Stream, Opened), AudioError> {
    let device = find_device(config.device.as_deref())?;
    let name = device_name(&device);
    let supported = device
        .default_input_config()
        .map_err(|e| AudioError::DeviceQuery {
            device: name.clone(),
            reason: e.to_string(),
        })?;
    let format = supported.sample_format();
    let stream_config: cpal::StreamConfig = supported.config();
    let opened = Opened {
        name: name.clone(),
        rate: stream_config.sample_rate,
        channels: stream_config.channels,
    };
    macro_rules! build {
        ($t:ty) => {
            build_stream::<$t>(&device, &stream_config, shared, &name)
        };
    }
    let stream = match format {
        SampleFormat::I8 => build!(i8),
        SampleFormat::I16 => build!(i16),
        SampleFormat::I24 => build!(cpal::I24),
        SampleFormat::I32 => build!(i32),
        SampleFormat::U8 => build!(u8),
        SampleFormat::U16 => build!(u16),
        SampleFormat::U32 => build!(u32),
        SampleFormat::F32 => build!(f32),
        SampleFormat::F64 => build!(f64),
        other => {
            return Err(AudioError::UnsupportedFormat {
                device: name,
                format: other.to_string(),
            });
        }
    }?;
    Ok((stream, opened))
}

fn build_stream<T>(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    shared: &Arc<Shared>,
    name: &str,
) -> Result<cpal::Stream, AudioError>
where
    T: SizedSample,
    f32: cpal::FromSample<T>,
{
    let data_shared = Arc::clone(shared);
    let err_shared = Arc::clone(shared);
    let err_device = name.to_owned();
    device
        .build_input_stream::<T, _, _>(
            *config,
            move |data: &[T], _: &cpal::InputCallbackInfo| data_shared.push(data),
            move |err: cpal::Error| match err.kind() {
                cpal::ErrorKind::Xrun | cpal::ErrorKind::RealtimeDenied => {
                    tracing::debug!(device = %err_device, error = %err, "input stream hiccup");
                }
                _ => {
                    tracing::warn!(device = %err_device, error = %err, "input stream error");
                    if let Ok(mut buf) = err_shared.buf.lock() {
                        buf.error = Some(err.to_string());
                    }
                }
            },
            None,
        )
        .map_err(|e| AudioError::Stream {
            device: name.to_owned(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
#[path = "capture_tests.rs"]
mod tests;
