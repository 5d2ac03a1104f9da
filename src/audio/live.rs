//! The live recording while the key is held: a tap that reads what the microphone has captured
//! so far, and a pause detector that turns it into events.
//!
//! The agent starts one watcher per recording ([`watch`]): a plain thread that polls the
//! recording's [`LiveTap`] every `poll` and feeds a [`PauseDetector`]. The detector keeps the
//! level of every 30 ms frame (the speech gate's frames and its "loud" rule, relative to the
//! recording's own noise floor), and when the recording falls quiet after sound it asks the
//! full gate ([`super::Vad`], on the recording so far at 16 kHz) whether that sound was speech:
//!
//! - after `pause` of quiet following speech: [`LiveEvent::Pause`] with the recording so far at
//!   16 kHz (the voice loop decodes it speculatively); once per stretch of new sound;
//! - after `silence_stop` of quiet following speech: [`LiveEvent::Silence`], once (toggle mode
//!   ends the recording on it, like a second tap).
//!
//! Only levels are computed per poll (a few hundred frames for a long command); resampling to
//! 16 kHz and the full gate run once per pause.
//!
//! **Bound**: the watcher thread ends within one `poll` of its [`LiveWatch`] being dropped or of
//! the recording it was made for ending.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::capture::Shared;
use super::vad::frame_level;
use super::{SAMPLE_RATE, Vad, VadConfig, resample};

/// Reads the recording that was running when it was made, while it goes on.
pub struct LiveTap {
    shared: Arc<Shared>,
    session: u64,
    rate: u32,
    channels: u16,
    read: usize,
}

impl LiveTap {
    pub(super) fn new(shared: Arc<Shared>, rate: u32, channels: u16) -> LiveTap {
        let session = shared.session.load(Ordering::Acquire);
        LiveTap {
            shared,
            session,
            rate,
            channels,
            read: 0,
        }
    }

    /// The device's sample rate and channel count (the samples [`LiveTap::read_new`] gives).
    pub fn format(&self) -> (u32, u16) {
        (self.rate, self.channels)
    }

    /// Appends the interleaved samples captured since the last call to `out`; false once the
    /// recording this tap was made for has ended (stopped, or a newer one started).
    pub fn read_new(&mut self, out: &mut Vec<f32>) -> bool {
        let Ok(buf) = self.shared.buf.lock() else {
            return false;
        };
        if self.shared.session.load(Ordering::Acquire) != self.session
            || !self.shared.recording.load(Ordering::Acquire)
        {
            return false;
        }
        if let Some(new) = buf.samples.get(self.read..) {
            out.extend_from_slice(new);
        }
        self.read = buf.samples.len();
        true
    }
}

/// When the watcher reports (zero turns an event off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveConfig {
    /// Quiet after speech that counts as a pause (a speculative decode starts).
    pub pause: Duration,
    /// Quiet after speech that ends a toggle-mode recording.
    pub silence_stop: Duration,
    /// How often the recording is read.
    pub poll: Duration,
    /// The start of the recording that holds Atlas's own sound (the listening chime, heard back
    /// through the microphone): it is never taken for the user's speech.
    pub own_sound: Duration,
}

impl LiveConfig {
    /// True when neither event is on (no watcher is needed).
    pub fn is_off(&self) -> bool {
        self.pause.is_zero() && self.silence_stop.is_zero()
    }
}

/// What the watcher saw.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveEvent {
    /// Speech, then `pause` of quiet: the recording so far, 16 kHz mono.
    Pause(Vec<f32>),
    /// Speech, then `silence_stop` of quiet.
    Silence,
}

/// Finds pauses and the final silence in a recording fed to it piece by piece.
pub struct PauseDetector {
    config: LiveConfig,
    vad: Vad,
    rate: u32,
    channels: u16,
    /// The recording so far, mono at the device rate.
    mono: Vec<f32>,
    /// Level of each whole frame of `mono`.
    levels: Vec<f32>,
    frame_len: usize,
    /// The last loud frame the gate has already judged (no new sound since).
    judged: Option<usize>,
    /// The gate found speech in the recording at some pause.
    spoke: bool,
    silence_sent: bool,
}

impl PauseDetector {
    /// A detector for a recording at `rate` Hz with `channels` interleaved channels.
    pub fn new(config: LiveConfig, rate: u32, channels: u16) -> PauseDetector {
        let gate = VadConfig::default();
        let frame_len = (rate as usize * gate.frame_ms as usize / 1000).max(1);
        PauseDetector {
            config,
            vad: Vad::new(VadConfig {
                sample_rate: rate,
                ..gate
            }),
            rate,
            channels,
            mono: Vec::new(),
            levels: Vec::new(),
            frame_len,
            judged: None,
            spoke: false,
            silence_sent: false,
        }
    }

    /// Takes the next interleaved samples; returns what they complete (at most one pause and
    /// the silence).
    pub fn push(&mut self, interleaved: &[f32]) -> Vec<LiveEvent> {
        self.mono
            .extend(resample::downmix(interleaved, self.channels));
        while (self.levels.len() + 1) * self.frame_len <= self.mono.len() {
            let start = self.levels.len() * self.frame_len;
            self.levels
                .push(frame_level(&self.mono[start..start + self.frame_len]));
        }
        let mut events = Vec::new();
        let Some((last_loud, quiet)) = self.quiet() else {
            return events;
        };
        let on = |d: Duration| !d.is_zero() && quiet >= d;
        let first = [self.config.pause, self.config.silence_stop]
            .into_iter()
            .filter(|d| !d.is_zero())
            .min();
        if first.is_some_and(on) && self.judged < Some(last_loud) {
            self.judged = Some(last_loud);
            match self.snapshot() {
                Some(snapshot) => {
                    self.spoke = true;
                    if !self.config.pause.is_zero() {
                        events.push(LiveEvent::Pause(snapshot));
                    }
                }
                None => tracing::debug!("quiet after a sound that was not speech"),
            }
        }
        if self.spoke && !self.silence_sent && on(self.config.silence_stop) {
            self.silence_sent = true;
            events.push(LiveEvent::Silence);
        }
        events
    }

    /// The last loud frame and how long it has been quiet since; `None` before any sound.
    fn quiet(&self) -> Option<(usize, Duration)> {
        if self.levels.is_empty() {
            return None;
        }
        let (_, _, threshold) = self.vad.levels(&self.levels);
        let last = self.levels.iter().rposition(|&l| l > threshold)?;
        if last < self.own_frames() {
            return None;
        }
        let frames = (self.levels.len() - 1 - last) as u32;
        Some((last, Duration::from_millis(30) * frames))
    }

    /// Whole frames at the start that hold Atlas's own sound ([`LiveConfig::own_sound`]).
    fn own_frames(&self) -> usize {
        let frame = Duration::from_millis(u64::from(VadConfig::default().frame_ms));
        (self.config.own_sound.as_millis() / frame.as_millis().max(1)) as usize
    }

    /// The recording so far at 16 kHz, when the speech gate finds speech in it after Atlas's own
    /// sound (the whole recording is handed on: the user may have begun to speak over it).
    fn snapshot(&self) -> Option<Vec<f32>> {
        let samples = match resample::resample_mono(&self.mono, self.rate, SAMPLE_RATE) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot resample the live recording");
                return None;
            }
        };
        let own = (self.config.own_sound.as_millis() as usize * SAMPLE_RATE as usize / 1000)
            .min(samples.len());
        Vad::new(VadConfig::default())
            .analyze(&samples[own..])
            .has_speech
            .then_some(samples)
    }
}

/// Stops its watcher when dropped.
pub struct LiveWatch {
    stop: Arc<AtomicBool>,
}

impl Drop for LiveWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// Watches the recording `tap` reads on a thread of its own, calling `on_event` with what the
/// detector finds until the recording ends, the returned guard is dropped, or `on_event`
/// returns false. `None` when `config` turns both events off or the thread cannot start.
pub fn watch(
    mut tap: LiveTap,
    config: LiveConfig,
    mut on_event: impl FnMut(LiveEvent) -> bool + Send + 'static,
) -> Option<LiveWatch> {
    if config.is_off() {
        return None;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let (rate, channels) = tap.format();
    let poll = config.poll.max(Duration::from_millis(5));
    let started = std::thread::Builder::new()
        .name("atlas-audio-live".to_owned())
        .spawn(move || {
            let mut detector = PauseDetector::new(config, rate, channels);
            let mut new = Vec::new();
            while !stopped.load(Ordering::Acquire) {
                std::thread::sleep(poll);
                new.clear();
                if !tap.read_new(&mut new) {
                    break;
                }
                for event in detector.push(&new) {
                    if stopped.load(Ordering::Acquire) || !on_event(event) {
                        return;
                    }
                }
            }
        });
    match started {
        Ok(_) => Some(LiveWatch { stop }),
        Err(e) => {
            tracing::warn!(error = %e, "cannot start the live recording watcher");
            None
        }
    }
}

#[cfg(test)]
#[path = "live_tests.rs"]
mod tests;
