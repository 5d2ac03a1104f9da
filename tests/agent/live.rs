//! The daemon's live path for real (Xvfb, the PulseAudio null sink as microphone and speaker,
//! the real model, xdotool): a pause while the key is held is decoded before the release and
//! that transcript is used; speech after the pause is decoded again; toggle mode ends on the
//! silence after speech; an acknowledgement is heard while a slow workflow still runs.

use std::time::Duration;

use super::{Rig, SpeakerRecording, runs, state, tap, wait_for, write_workflows, xdo};
use crate::voice::espeak;

const KEY: &str = "ctrl+shift+space";

/// How many times the daemon has logged `line` so far.
fn logged(d: &super::Daemon, line: &str) -> usize {
    d.logged().matches(line).count()
}

/// Plays `wav` into the microphone and waits for it to end.
fn say(rig: &Rig, wav: &std::path::Path) {
    assert!(rig.pulse.cmd("paplay").arg(wav).status().unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holding_the_key_through_a_pause_uses_the_speculative_transcript_unless_speech_follows() {
    let Some(rig) = Rig::start() else { return };
    let dir = rig.dir.path();
    write_workflows(dir);
    std::fs::write(
        dir.join("wf/backup.yaml"),
        "id: backup\ntriggers: [{type: voice, phrases: ['start the backup'], ack: 'Sure, one moment please.'}]\nactions:\n  - {id: wait, type: delay, config: {duration: 8s}}\n  - {id: say, type: speak, config: {text: 'The backup is finished.'}}\n",
    )
    .unwrap();
    // A pause is 700 ms of quiet here: longer than the 390 ms of silence espeak-ng ends its
    // speech with plus the 150 ms before the second release, so that release comes before a
    // pause after the second half (it then has speech after the only snapshot).
    std::fs::write(
        dir.join("config.toml"),
        "[voice]\nspeculate_pause_ms = 700\n",
    )
    .unwrap();
    let d = rig.daemon(&[]);
    wait_for(&d, "the daemon's status", || state(&d) == "idle").await;
    // The null sink's monitor delivers its first buffer ~2 s after the stream opens.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Speech, a pause with the key still down (the speculative decode runs), release.
    let high = dir.join("high.wav");
    espeak("Set the volume to high.", "en-us", 150, &high);
    xdo(&rig.x, &["keydown", KEY]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    say(&rig, &high);
    wait_for(&d, "a speculative decode", || {
        logged(&d, "speculative decode started") >= 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    xdo(&rig.x, &["keyup", KEY]);
    wait_for(&d, "the volume run", || {
        runs(&d.data)
            .iter()
            .any(|r| r.workflow_id == "volume" && r.status.is_final())
    })
    .await;
    let run = runs(&d.data)
        .into_iter()
        .find(|r| r.workflow_id == "volume")
        .unwrap();
    assert_eq!(run.trigger_data["slots"]["level"], "high", "{run:?}");
    assert_eq!(
        logged(&d, "speculative transcript used"),
        1,
        "{}",
        d.logged()
    );
    assert!(d.logged().contains("speculative: true"), "{}", d.logged());
    wait_for(&d, "idle", || state(&d) == "idle").await;

    // Half a command, a pause (decoded speculatively), the rest, release: decoded again.
    let (first, rest) = (dir.join("first.wav"), dir.join("rest.wav"));
    espeak("Set the volume", "en-us", 150, &first);
    espeak("to low.", "en-us", 150, &rest);
    let started = logged(&d, "speculative decode started");
    xdo(&rig.x, &["keydown", KEY]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    say(&rig, &first);
    wait_for(&d, "a speculative decode of the first half", || {
        logged(&d, "speculative decode started") > started
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    say(&rig, &rest);
    tokio::time::sleep(Duration::from_millis(150)).await;
    xdo(&rig.x, &["keyup", KEY]);
    wait_for(&d, "the second volume run", || {
        runs(&d.data)
            .iter()
            .filter(|r| r.workflow_id == "volume" && r.status.is_final())
            .count()
            == 2
    })
    .await;
    let run = runs(&d.data)
        .into_iter()
        .find(|r| r.workflow_id == "volume")
        .unwrap();
    assert_eq!(run.trigger_data["slots"]["level"], "low", "{run:?}");
    assert!(
        d.logged()
            .contains("speech after the speculative snapshot: decoding again"),
        "{}",
        d.logged()
    );
    wait_for(&d, "idle", || state(&d) == "idle").await;

    // A slow workflow with an ack: it is heard while the run still goes on.
    let speaker = SpeakerRecording::start(&rig.pulse, dir.join("speaker.wav"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let backup = dir.join("backup.wav");
    espeak("Start the backup.", "en-us", 150, &backup);
    xdo(&rig.x, &["keydown", KEY]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    say(&rig, &backup);
    tokio::time::sleep(Duration::from_millis(300)).await;
    xdo(&rig.x, &["keyup", KEY]);
    wait_for(&d, "the backup run to start", || {
        runs(&d.data).iter().any(|r| r.workflow_id == "backup")
    })
    .await;
    // The ack is a second of speech; the run waits 8 s before its own reply.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let running = runs(&d.data)
        .iter()
        .any(|r| r.workflow_id == "backup" && !r.status.is_final());
    let heard = speaker.heard(&rig.model);
    assert!(
        running,
        "the run was still going when the speaker was heard"
    );
    assert!(heard.contains("moment"), "the speaker said: {heard:?}");
    assert!(!heard.contains("finished"), "the speaker said: {heard:?}");
    let out = d.stop();
    assert!(out.status.success(), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_toggle_mode_the_silence_after_speech_ends_the_recording_without_a_second_tap() {
    let Some(rig) = Rig::start() else { return };
    let dir = rig.dir.path();
    write_workflows(dir);
    // The longest recording is far off: only the silence can end this one in time.
    std::fs::write(
        dir.join("config.toml"),
        "[agent]\nmode = \"toggle\"\n[voice]\nmax_seconds = 60\nsilence_stop = 1.2\n",
    )
    .unwrap();
    let d = rig.daemon(&[]);
    wait_for(&d, "the daemon's status", || state(&d) == "idle").await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Only silence after the tap: listening goes on (silence without speech ends nothing).
    tap(&rig.x).await;
    wait_for(&d, "listening", || state(&d) == "listening").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(state(&d), "listening", "{}", d.logged());

    let cmd = dir.join("medium.wav");
    espeak("Set the volume to medium.", "en-us", 150, &cmd);
    say(&rig, &cmd);
    wait_for(&d, "the run after the silence", || {
        runs(&d.data).iter().any(|r| {
            r.workflow_id == "volume"
                && r.trigger_data["slots"]["level"] == "medium"
                && r.status.is_final()
        })
    })
    .await;
    assert!(
        d.logged()
            .contains("silence after speech: the recording ends"),
        "{}",
        d.logged()
    );
    assert!(!d.logged().contains("longest recording reached"));
    wait_for(&d, "idle", || state(&d) == "idle").await;
    let out = d.stop();
    assert!(out.status.success(), "{}", out.stderr);
}
