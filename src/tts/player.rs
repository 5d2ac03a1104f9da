//! Audio output: plays rendered speech, WAV files and chimes on the default output device.
//!
//! The output stream (rodio over cpal) is not `Send` on every platform, so one thread owns it and
//! everything else talks to that thread through [`AudioPlayer`], a cheap handle with a command
//! channel. Speech buffers queue one after another on a rodio `Player`, so a sentence appended
//! while the previous one plays follows it without a gap; [`AudioPlayer::stop`] drops that queue
//! at once. Chimes are mixed in beside speech and are not affected by `stop`.
//!
//! Each buffer handed to [`AudioPlayer::play`] reports, through its [`Playback`], the instant its
//! first sample was pulled by the output and whether it played to the end.

use std::num::{NonZeroU16, NonZeroU32};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rodio::Source;
use tokio::sync::oneshot;

use super::TtsError;
use super::espeak::{RenderedAudio, parse_wav};

/// The chime played when the microphone opens (a rising two-tone blip, ~120 ms).
const LISTENING_STARTED_WAV: &[u8] = include_bytes!("../../assets/sounds/listening-started.wav");
/// The chime played when the microphone closes (a falling two-tone blip, ~120 ms).
const LISTENING_STOPPED_WAV: &[u8] = include_bytes!("../../assets/sounds/listening-stopped.wav");

/// Which chime to play.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChimeKind {
    /// Atlas started listening (rising tones).
    ListeningStarted,
    /// Atlas stopped listening (falling tones).
    ListeningStopped,
}

impl ChimeKind {
    /// The chime's sound, decoded from the WAV built into the program
    /// (`assets/sounds/listening-started.wav` or `listening-stopped.wav`).
    pub fn audio(self) -> Result<RenderedAudio, TtsError> {
        parse_wav(match self {
            Self::ListeningStarted => LISTENING_STARTED_WAV,
            Self::ListeningStopped => LISTENING_STOPPED_WAV,
        })
    }
}

/// Reads a 16-bit PCM WAV file (any rate; channels are mixed down to mono).
pub fn load_wav(path: &Path) -> Result<RenderedAudio, TtsError> {
    let bytes = std::fs::read(path)
        .map_err(|e| TtsError::Failed(format!("cannot read sound file {}: {e}", path.display())))?;
    parse_wav(&bytes).map_err(|e| {
        TtsError::Failed(format!(
            "{}: {e} (convert it with `sox in.wav -b 16 out.wav`)",
            path.display()
        ))
    })
}

/// Progress of one buffer handed to [`AudioPlayer::play`].
#[derive(Debug)]
pub struct Playback {
    first_sample: oneshot::Receiver<Instant>,
    first_seen: Option<Option<Instant>>,
    finished: oneshot::Receiver<bool>,
    result: Option<bool>,
}

impl Playback {
    /// Resolves with the instant the output pulled the first sample, or `None` when the buffer
    /// was dropped (stopped) before any of it was played. Cancel-safe; can be awaited again.
    pub async fn first_sample(&mut self) -> Option<Instant> {
        if let Some(seen) = self.first_seen {
            return seen;
        }
        let seen = (&mut self.first_sample).await.ok();
        self.first_seen = Some(seen);
        seen
    }

    /// Resolves when the buffer is over: `true` when it played to its end, `false` when it was
    /// stopped (or the output went away) first. Cancel-safe; can be awaited again.
    pub async fn finished(&mut self) -> bool {
        if let Some(result) = self.result {
            return result;
        }
        let result = (&mut self.finished).await.unwrap_or(false);
        self.result = Some(result);
        result
    }

    /// Blocks the current thread until the buffer is over; same result as [`Playback::finished`].
    /// Never call this on an async runtime thread.
    pub fn wait_blocking(self) -> bool {
        match self.result {
            Some(result) => result,
            None => self.finished.blocking_recv().unwrap_or(false),
        }
    }
}

/// Commands for the thread that owns the output stream.
enum Command {
    /// Queue speech after whatever speech is queued.
    Play {
        audio: RenderedAudio,
        first_sample: oneshot::Sender<Instant>,
        finished: oneshot::Sender<bool>,
    },
    /// Mix a short sound in now, beside any speech.
    Mix(RenderedAudio),
    /// Drop all queued speech.
    Stop,
}

/// A handle to the audio output thread. Cloning gives another handle to the same output; the
/// thread and the device close when the last handle is dropped.
#[derive(Debug, Clone)]
pub struct AudioPlayer {
    commands: mpsc::Sender<Command>,
}

impl AudioPlayer {
    /// Opens the default output device on a new thread. Blocks until the device is open (tens of
    /// milliseconds), at most [`OPEN_LIMIT`], so call it at start-up or from a blocking task.
    pub fn open_default() -> Result<Self, TtsError> {
        Self::open_default_within(OPEN_LIMIT)
    }

    /// [`AudioPlayer::open_default`] with another bound: an output that has not opened within
    /// `limit` (a sound server that accepts and never answers) is given up on; its thread closes
    /// the device if it ever opens.
    pub fn open_default_within(limit: Duration) -> Result<Self, TtsError> {
        let (commands, receiver) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("atlas-audio-out".to_owned())
            .spawn(move || output_thread(receiver, ready_tx))
            .map_err(|e| unavailable(format!("cannot start the audio thread: {e}")))?;
        match ready_rx.recv_timeout(limit) {
            Ok(Ok(())) => Ok(Self { commands }),
            Ok(Err(reason)) => Err(unavailable(reason)),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(unavailable(format!(
                "the default audio output did not open in {}",
                super::secs(limit)
            ))),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(unavailable(
                "the audio thread ended while opening the device".to_owned(),
            )),
        }
    }

    /// Queues `audio` after any speech already queued and returns its progress.
    pub fn play(&self, audio: RenderedAudio) -> Result<Playback, TtsError> {
        let (first_tx, first_sample) = oneshot::channel();
        let (finished_tx, finished) = oneshot::channel();
        self.send(Command::Play {
            audio,
            first_sample: first_tx,
            finished: finished_tx,
        })?;
        Ok(Playback {
            first_sample,
            first_seen: None,
            finished,
            result: None,
        })
    }

    /// Plays a WAV file (16-bit PCM) in the speech queue.
    pub fn play_wav_file(&self, path: &Path) -> Result<Playback, TtsError> {
        self.play(load_wav(path)?)
    }

    /// Plays a chime now, mixed over any speech; returns without waiting for it.
    pub fn play_chime(&self, kind: ChimeKind) -> Result<(), TtsError> {
        self.send(Command::Mix(kind.audio()?))
    }

    /// Stops queued and playing speech at once; their [`Playback`]s finish with `false`.
    pub fn stop(&self) {
        // A send error means the thread is gone, so nothing is playing.
        let _ = self.commands.send(Command::Stop);
    }

    fn send(&self, command: Command) -> Result<(), TtsError> {
        self.commands
            .send(command)
            .map_err(|_| unavailable("the audio output thread has stopped".to_owned()))
    }
}

/// An [`TtsError::Unavailable`] for the output device.
fn unavailable(reason: String) -> TtsError {
    TtsError::Unavailable {
        backend: "audio output",
        reason,
    }
}

/// Owns the output stream: opens it, then serves commands until every handle is dropped.
fn output_thread(commands: mpsc::Receiver<Command>, ready: mpsc::SyncSender<Result<(), String>>) {
    let mut sink = match rodio::DeviceSinkBuilder::open_default_sink() {
        Ok(sink) => sink,
        Err(e) => {
            let _ = ready.send(Err(format!(
                "cannot open the default audio output device: {e}; check that a sound server \
                 (PulseAudio or PipeWire) is running and has an output"
            )));
            return;
        }
    };
    sink.log_on_drop(false);
    let mut speech: Option<rodio::Player> = None;
    warm_up(&sink, &mut speech);
    tracing::debug!(config = ?sink.config(), "audio output opened");
    let _ = ready.send(Ok(()));
    while let Ok(command) = commands.recv() {
        match command {
            Command::Play {
                audio,
                first_sample,
                finished,
            } => match buffer(audio) {
                Some(buffer) => speech
                    .get_or_insert_with(|| rodio::Player::connect_new(sink.mixer()))
                    .append(Tracked {
                        inner: buffer,
                        first_sample: Some(first_sample),
                        finished: Some(finished),
                    }),
                None => {
                    // Nothing to play: it is over as soon as it started.
                    let _ = first_sample.send(Instant::now());
                    let _ = finished.send(true);
                }
            },
            Command::Mix(audio) => {
                if let Some(buffer) = buffer(audio) {
                    sink.mixer().add(buffer);
                }
            }
            Command::Stop => {
                // Dropping the rodio player stops its sources within a few milliseconds; a new
                // one is connected for the next speech.
                speech = None;
            }
        }
    }
    // Let the tail of the last sound leave the device before the stream closes.
    std::thread::sleep(Duration::from_millis(100));
}

/// Plays a quarter second of silence and waits (at most [`WARM_UP_LIMIT`]) until the output has
/// taken all of it.
///
/// Some outputs take a first buffer-full at once and then stall: through ALSA's PulseAudio
/// plugin nothing more moves for ~1.7 s. The silence is longer than that first buffer-full, so
/// waiting for its end pays the stall once, here at start-up, instead of in the first reply.
fn warm_up(sink: &rodio::MixerDeviceSink, speech: &mut Option<rodio::Player>) {
    let started = Instant::now();
    let (finished_tx, mut finished_rx) = oneshot::channel();
    let silence =
        rodio::buffer::SamplesBuffer::new(NonZeroU16::MIN, WARM_UP_RATE, vec![0.0; 11_025]);
    speech
        .get_or_insert_with(|| rodio::Player::connect_new(sink.mixer()))
        .append(Tracked {
            inner: silence,
            first_sample: None,
            finished: Some(finished_tx),
        });
    // The output thread has nothing else to do yet, so it can simply poll.
    while matches!(
        finished_rx.try_recv(),
        Err(oneshot::error::TryRecvError::Empty)
    ) {
        if started.elapsed() > WARM_UP_LIMIT {
            tracing::warn!(limit = ?WARM_UP_LIMIT, "the audio output is slow to start playing");
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    tracing::debug!(
        took_ms = started.elapsed().as_millis() as u64,
        "audio output warmed up"
    );
}

/// The sample rate of the warm-up silence.
const WARM_UP_RATE: NonZeroU32 = match NonZeroU32::new(44_100) {
    Some(rate) => rate,
    None => NonZeroU32::MIN,
};

/// How long [`AudioPlayer::open_default`] waits for the device (and its warm-up, at most
/// `WARM_UP_LIMIT`, 3 s).
pub const OPEN_LIMIT: Duration = Duration::from_secs(5);

/// How long [`warm_up`] waits for the output to start moving.
const WARM_UP_LIMIT: Duration = Duration::from_secs(3);

/// A rodio buffer for mono audio, or `None` when there is nothing to play.
fn buffer(audio: RenderedAudio) -> Option<rodio::buffer::SamplesBuffer> {
    let rate = NonZeroU32::new(audio.sample_rate)?;
    if audio.samples.is_empty() {
        return None;
    }
    Some(rodio::buffer::SamplesBuffer::new(
        NonZeroU16::MIN,
        rate,
        audio.samples,
    ))
}

/// A source that reports when its first sample is pulled and whether it reached its end.
struct Tracked {
    inner: rodio::buffer::SamplesBuffer,
    first_sample: Option<oneshot::Sender<Instant>>,
    finished: Option<oneshot::Sender<bool>>,
}

impl Iterator for Tracked {
    type Item = rodio::Sample;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(tx) = self.first_sample.take() {
            let _ = tx.send(Instant::now());
        }
        let sample = self.inner.next();
        if sample.is_none()
            && let Some(tx) = self.finished.take()
        {
            let _ = tx.send(true);
        }
        sample
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        // Dropped before its end: it was stopped.
        if let Some(tx) = self.finished.take() {
            let _ = tx.send(false);
        }
    }
}

impl Source for Tracked {
    fn current_span_len(&self) -> Option<usize> {
        self.inner.current_span_len()
    }

    fn channels(&self) -> rodio::ChannelCount {
        self.inner.channels()
    }

    fn sample_rate(&self) -> rodio::SampleRate {
        self.inner.sample_rate()
    }

    fn total_duration(&self) -> Option<Duration> {
        self.inner.total_duration()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::test_support::rms;
    use crate::test_pulse::VirtualSpeaker;

    #[test]
    fn chimes_are_short_quiet_and_audible() {
        for kind in [ChimeKind::ListeningStarted, ChimeKind::ListeningStopped] {
            let audio = kind.audio().expect("built-in chime decodes");
            let secs = audio.duration().as_secs_f32();
            assert!((0.08..0.2).contains(&secs), "{kind:?} lasts {secs}s");
            let peak = audio.samples.iter().fold(0.0f32, |m, s| m.max(s.abs()));
            assert!((0.05..0.5).contains(&peak), "{kind:?} peak {peak}");
            // Fades in and out, so it starts and ends without a click.
            assert!(
                audio.samples[0].abs() < 0.01
                    && audio.samples[audio.samples.len() - 1].abs() < 0.01
            );
        }
    }

    #[test]
    fn chimes_rise_and_fall() {
        // The dominant pitch of each half, from zero crossings.
        fn pitch(samples: &[f32]) -> usize {
            samples
                .windows(2)
                .filter(|w| w[0] < 0.0 && w[1] >= 0.0)
                .count()
        }
        let up = ChimeKind::ListeningStarted.audio().expect("chime");
        let down = ChimeKind::ListeningStopped.audio().expect("chime");
        let (a, b) = up.samples.split_at(up.samples.len() / 2);
        assert!(pitch(b) > pitch(a), "started chime should rise");
        let (a, b) = down.samples.split_at(down.samples.len() / 2);
        assert!(pitch(b) < pitch(a), "stopped chime should fall");
    }

    #[test]
    fn load_wav_reports_missing_files() {
        let err = load_wav(Path::new("/nonexistent/chime.wav")).expect_err("missing file");
        assert!(err.to_string().contains("/nonexistent/chime.wav"), "{err}");
    }

    #[test]
    fn plays_buffers_and_chimes_on_the_default_output() {
        let Some(vs) = VirtualSpeaker::start() else {
            return;
        };
        let player = AudioPlayer::open_default().expect("open output on the null sink");
        let recording = vs.record();
        std::thread::sleep(Duration::from_millis(300));
        player
            .play_chime(ChimeKind::ListeningStarted)
            .expect("chime");
        let tone: Vec<f32> = (0..22_050)
            .map(|i| (i as f32 * 440.0 * std::f32::consts::TAU / 22_050.0).sin() * 0.3)
            .collect();
        let playback = player
            .play(RenderedAudio {
                samples: tone,
                sample_rate: 22_050,
            })
            .expect("play");
        assert!(playback.wait_blocking(), "a full buffer plays to its end");
        std::thread::sleep(Duration::from_millis(200));
        let recorded = recording.finish();
        assert!(rms(&recorded) > 0.05, "recorded rms {}", rms(&recorded));
    }

    #[test]
    fn stop_ends_queued_playback_early() {
        let Some(_vs) = VirtualSpeaker::start() else {
            return;
        };
        let player = AudioPlayer::open_default().expect("open output on the null sink");
        let long = RenderedAudio {
            samples: vec![0.1; 22_050 * 20],
            sample_rate: 22_050,
        };
        let first = player.play(long.clone()).expect("play");
        let second = player.play(long).expect("play");
        std::thread::sleep(Duration::from_millis(300));
        player.stop();
        assert!(
            !first.wait_blocking(),
            "stopped buffer must not report completion"
        );
        assert!(!second.wait_blocking(), "queued buffer is dropped too");
        let after = player
            .play(RenderedAudio {
                samples: vec![0.1; 2_205],
                sample_rate: 22_050,
            })
            .expect("play after stop");
        assert!(after.wait_blocking(), "speech after a stop still plays");
    }
}
