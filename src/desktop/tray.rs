//! The agent's side of the tray icon: the icon itself runs in the helper process `atlas-tray`
//! (GTK stays out of the agent's memory, see [`super::protocol`]), and this file supervises it.
//!
//! One thread (`atlas-tray-io`) owns the helper: it starts it, writes [`TrayUpdate`]s to its
//! stdin, turns its stdout lines into [`DesktopEvent`]s, and logs its stderr. The thread, not
//! the caller, spawns the helper because the helper asks the kernel for SIGTERM when the
//! thread that spawned it ends (`PR_SET_PDEATHSIG`). A helper that dies is restarted once, and
//! shown the last of each kind of update again; after that the tray stays off and the agent
//! runs on. Stopping closes the helper's stdin and waits a moment before killing it.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use super::protocol::{self, HELPER_ENV, HELPER_NAME, HelperLine};
use super::{DesktopError, DesktopEvent, TrayUpdate};

/// How long the helper may take to show the icon.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a stopping helper may take to exit after its stdin closes, before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// How many times a helper that died is started again.
const RESTARTS: u32 = 1;

/// Where the helper program is: `ATLAS_TRAY_HELPER`, else next to the running executable,
/// else on `PATH`.
pub(super) fn helper_path() -> Result<PathBuf, DesktopError> {
    if let Some(path) = std::env::var_os(HELPER_ENV).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return match path.is_file() {
            true => Ok(path),
            false => Err(DesktopError::TrayHelperMissing(format!(
                "{HELPER_ENV} names {}, which is not a file",
                path.display()
            ))),
        };
    }
    let beside = std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name(HELPER_NAME));
    if let Some(path) = beside.as_ref().filter(|p| p.is_file()) {
        return Ok(path.clone());
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join(HELPER_NAME))
        .find(|p| p.is_file());
    on_path.ok_or_else(|| {
        let beside = beside.map_or("beside atlas".into(), |p| p.display().to_string());
        DesktopError::TrayHelperMissing(format!("it is neither at {beside} nor on PATH"))
    })
}

/// What the supervising thread is told.
enum Ctl {
    /// An update from the agent.
    Update(TrayUpdate),
    /// A line from the stdout of helper number `.0`.
    Line(u64, String),
    /// Helper number `.0` closed its stdout (it exited).
    Eof(u64),
    /// The agent stops the tray.
    Stop,
}

/// The agent's handle on the supervising thread.
pub(super) struct TrayHandle {
    tx: Sender<Ctl>,
    thread: JoinHandle<()>,
    /// The running helper's pid, 0 when none; to kill a helper that does not stop.
    pid: Arc<AtomicI32>,
}

impl TrayHandle {
    /// Starts the helper `path` and waits until it shows the icon (or failed to).
    pub(super) fn start(
        path: PathBuf,
        events: UnboundedSender<DesktopEvent>,
    ) -> Result<TrayHandle, DesktopError> {
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let pid = Arc::new(AtomicI32::new(0));
        let mut sup = Supervisor {
            path,
            tx: tx.clone(),
            rx,
            events,
            pid: pid.clone(),
            helper: None,
            generation: 0,
            last: Last::default(),
            stopping: false,
        };
        let thread = std::thread::Builder::new()
            .name("atlas-tray-io".into())
            .spawn(move || sup.run(ready_tx))
            .map_err(|e| DesktopError::Tray(format!("cannot start the tray thread: {e}")))?;
        let handle = TrayHandle { tx, thread, pid };
        match ready_rx.recv_timeout(START_TIMEOUT + STOP_GRACE) {
            Ok(Ok(())) => Ok(handle),
            Ok(Err(reason)) => {
                handle.stop();
                Err(DesktopError::Tray(reason))
            }
            Err(_) => {
                handle.stop();
                Err(DesktopError::Tray("the tray helper did not answer".into()))
            }
        }
    }

    /// Queues an update; never blocks.
    pub(super) fn update(&self, u: TrayUpdate) {
        // The thread ends only when stopped; nothing to do about a lost update then.
        let _ = self.tx.send(Ctl::Update(u));
    }

    /// Stops the helper and waits for the thread; kills a helper that does not exit in time.
    pub(super) fn stop(self) {
        let _ = self.tx.send(Ctl::Stop);
        let timeout = STOP_GRACE + Duration::from_secs(1);
        if !finishes(&self.thread, timeout) {
            let pid = self.pid.load(Ordering::SeqCst);
            tracing::warn!(pid, "the tray helper does not stop; killing it");
            if pid > 0 {
                // SAFETY: signalling our own child; its pid is not reaped (so not reused) before
                // the supervising thread waits for it.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            if !finishes(&self.thread, timeout) {
                tracing::error!("the tray thread is stuck; leaving it");
                return;
            }
        }
        if self.thread.join().is_err() {
            tracing::error!("the tray thread panicked");
        }
    }
}

/// Whether `thread` ends within `limit`.
fn finishes(thread: &JoinHandle<()>, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while !thread.is_finished() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// The last update of each kind, shown again to a restarted helper.
#[derive(Default)]
struct Last {
    state: Option<TrayUpdate>,
    listening: Option<TrayUpdate>,
    workflows: Option<TrayUpdate>,
    next: Option<TrayUpdate>,
    recent: Option<TrayUpdate>,
    accounts: Option<TrayUpdate>,
}

impl Last {
    fn record(&mut self, u: &TrayUpdate) {
        let slot = match u {
            TrayUpdate::State(_) => &mut self.state,
            TrayUpdate::Listening(_) => &mut self.listening,
            TrayUpdate::Workflows(_) => &mut self.workflows,
            TrayUpdate::Next(_) => &mut self.next,
            TrayUpdate::Recent(_) => &mut self.recent,
            TrayUpdate::Accounts(_) => &mut self.accounts,
        };
        *slot = Some(u.clone());
    }

    fn all(&self) -> impl Iterator<Item = &TrayUpdate> {
        [
            &self.workflows,
            &self.next,
            &self.recent,
            &self.accounts,
            &self.listening,
            &self.state,
        ]
        .into_iter()
        .flatten()
    }
}

/// A running helper process.
struct Helper {
    child: Child,
    stdin: ChildStdin,
}

/// The supervising thread's state.
struct Supervisor {
    path: PathBuf,
    /// For the helper's stdout reader threads.
    tx: Sender<Ctl>,
    rx: Receiver<Ctl>,
    events: UnboundedSender<DesktopEvent>,
    pid: Arc<AtomicI32>,
    helper: Option<Helper>,
    /// Numbers helpers, so lines of a dead one are told apart.
    generation: u64,
    last: Last,
    stopping: bool,
}

impl Supervisor {
    fn run(&mut self, ready: SyncSender<Result<(), String>>) {
        let first = self.launch();
        let started = first.is_ok();
        let _ = ready.send(first);
        let mut restarts = RESTARTS;
        while started && !self.stopping {
            let Ok(msg) = self.rx.recv() else { break };
            match msg {
                Ctl::Update(u) => self.send(u),
                Ctl::Line(g, line) if g == self.generation => self.line(&line),
                Ctl::Eof(g) if g == self.generation => {
                    let status = self.reap();
                    tracing::warn!(%status, "the tray helper exited; the tray icon is gone");
                    if restarts == 0 {
                        tracing::warn!("the tray stays off; restart the agent to get it back");
                        continue;
                    }
                    restarts -= 1;
                    match self.launch() {
                        Ok(()) => tracing::info!("the tray helper was restarted"),
                        Err(reason) => tracing::warn!(%reason, "the tray stays off"),
                    }
                }
                Ctl::Stop => self.stopping = true,
                Ctl::Line(..) | Ctl::Eof(_) => {}
            }
        }
        self.close();
    }

    /// Starts a helper and waits for its first line; then shows it the last updates.
    fn launch(&mut self) -> Result<(), String> {
        self.spawn()?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = match self.rx.recv_timeout(left) {
                Ok(msg) => msg,
                Err(_) => {
                    self.close();
                    return Err(format!(
                        "the tray helper did not show the icon within {} s",
                        START_TIMEOUT.as_secs()
                    ));
                }
            };
            match msg {
                Ctl::Update(u) => self.last.record(&u),
                Ctl::Line(g, line) if g == self.generation => {
                    match protocol::decode::<HelperLine>(&line) {
                        Ok(HelperLine::Ready) => break,
                        Ok(HelperLine::Failed { reason }) => {
                            self.close();
                            return Err(reason);
                        }
                        _ => self.line(&line),
                    }
                }
                Ctl::Eof(g) if g == self.generation => {
                    let status = self.reap();
                    return Err(format!(
                        "the tray helper exited before showing the icon ({status})"
                    ));
                }
                Ctl::Stop => {
                    self.stopping = true;
                    self.close();
                    return Err("stopped while the tray helper was starting".into());
                }
                Ctl::Line(..) | Ctl::Eof(_) => {}
            }
        }
        let replay: Vec<TrayUpdate> = self.last.all().cloned().collect();
        for u in replay {
            self.write(&u);
        }
        Ok(())
    }

    /// Spawns the helper with its three pipes and their reader threads.
    fn spawn(&mut self) -> Result<(), String> {
        self.generation += 1;
        let generation = self.generation;
        let mut child = Command::new(&self.path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.path.display()))?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err("the tray helper's pipes were not set up".into());
        };
        self.pid.store(child.id() as i32, Ordering::SeqCst);
        let tx = self.tx.clone();
        let readers = std::thread::Builder::new()
            .name("atlas-tray-out".into())
            .spawn(move || read_stdout(stdout, generation, tx))
            .and_then(|_| {
                std::thread::Builder::new()
                    .name("atlas-tray-err".into())
                    .spawn(move || log_stderr(stderr))
            });
        self.helper = Some(Helper { child, stdin });
        if let Err(e) = readers {
            self.close();
            return Err(format!("cannot start the tray reader threads: {e}"));
        }
        Ok(())
    }

    /// Records an update and writes it to the helper, when one runs.
    fn send(&mut self, u: TrayUpdate) {
        self.last.record(&u);
        self.write(&u);
    }

    fn write(&mut self, u: &TrayUpdate) {
        let Some(helper) = self.helper.as_mut() else {
            return;
        };
        let mut line = protocol::encode(u);
        line.push('\n');
        // A helper that died fails the write; its closed stdout (an `Eof`) follows.
        if let Err(err) = helper.stdin.write_all(line.as_bytes()) {
            tracing::debug!(%err, "cannot write to the tray helper");
        }
    }

    /// Handles a line the running helper wrote.
    fn line(&self, line: &str) {
        match protocol::decode::<HelperLine>(line) {
            Ok(HelperLine::Event { event }) => {
                tracing::debug!(?event, "tray menu");
                let _ = self.events.send(event);
            }
            Ok(other) => tracing::debug!(?other, "unexpected tray helper line"),
            Err(err) => tracing::warn!(%err, "the tray helper wrote something unexpected"),
        }
    }

    /// Waits for a helper whose stdout closed; its exit status as text.
    fn reap(&mut self) -> String {
        self.pid.store(0, Ordering::SeqCst);
        match self.helper.take() {
            Some(Helper { child, .. }) => wait_or_kill(child),
            None => "not running".into(),
        }
    }

    /// Closes the helper's stdin (its signal to quit) and waits for it to exit.
    fn close(&mut self) {
        if let Some(Helper { child, stdin }) = self.helper.take() {
            drop(stdin);
            wait_or_kill(child);
        }
        self.pid.store(0, Ordering::SeqCst);
    }
}

/// Waits up to [`STOP_GRACE`] for the helper to exit, then kills it; how it ended, as text.
fn wait_or_kill(mut child: Child) -> String {
    let deadline = Instant::now() + STOP_GRACE;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.to_string(),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {
                tracing::warn!("the tray helper did not exit; killing it");
                let _ = child.kill();
                return match child.wait() {
                    Ok(status) => format!("killed: {status}"),
                    Err(e) => format!("killed; cannot tell how it ended: {e}"),
                };
            }
        }
    }
}

/// Forwards the helper's stdout lines to the supervising thread, then says it ended.
fn read_stdout(stdout: impl Read, generation: u64, tx: Sender<Ctl>) {
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if tx.send(Ctl::Line(generation, line)).is_err() {
            return;
        }
    }
    let _ = tx.send(Ctl::Eof(generation));
}

/// Logs the helper's stderr lines (its own log) in the agent's log.
fn log_stderr(stderr: impl Read) {
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        // GTK separates its messages with blank lines.
        if !line.trim().is_empty() {
            tracing::warn!(target: "atlas::desktop::tray_helper", "{line}");
        }
    }
}
