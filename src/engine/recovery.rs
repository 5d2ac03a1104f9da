//! Crash recovery: who owns a run (the identity of the process running it, recorded in the
//! run's `owner`), and [`Engine::recover`] for the runs whose owner is gone.
//!
//! A pid alone cannot say whether a run's process still lives: after a reboot (or after pids wrap)
//! another process may have the same pid, and a dead run would look alive forever. So an owner
//! is `pid:boot_id:start_time:instance`: the kernel's boot id (`/proc/sys/kernel/random/boot_id`)
//! and the process's start time in clock ticks since boot (`/proc/<pid>/stat`, field 22), which
//! together name one process for all time. `instance` tells engines of one process apart.
//! Owners written before this format (`pid:instance`) fall back to asking whether the pid exists.

use std::sync::{Arc, OnceLock};

use serde_json::Value;

use super::{Engine, EngineError, RunHandle, TriggerEvent, executor, lock};
use crate::store::{Op, RunRecord, RunStatus, now_ms};
use crate::workflow::Workflow;

impl Engine {
    /// Deals with runs a dead process left unfinished: resumes those whose workflow says
    /// `resume: true` (from their last completed action) and marks the others `interrupted`.
    /// Runs owned by a live process are left alone. Returns (resumed, interrupted) run ids.
    pub async fn recover(&self) -> Result<(Vec<RunHandle>, Vec<String>), EngineError> {
        let mut resumed = Vec::new();
        let mut interrupted = Vec::new();
        for run in self.inner.store.unfinished_runs()? {
            if run.owner == self.inner.owner || alive(&run.owner) {
                continue;
            }
            match self.workflow(&run.workflow_id) {
                Some(wf) if wf.def.resume => resumed.push(self.resume_recorded(run, wf)?),
                _ => {
                    let pid = owner_pid(&run.owner);
                    self.finish(
                        &run.id,
                        &run.workflow_id,
                        executor::Ending::bare(
                            RunStatus::Interrupted,
                            Some(format!(
                                "the process running it (pid {pid}) stopped before the run ended"
                            )),
                        ),
                    );
                    interrupted.push(run.id);
                }
            }
        }
        // A database that cannot take writes now must not keep the daemon from starting: the
        // writes are kept and retried, and the store's health says what is wrong.
        if let Err(e) = self.inner.store.flush().await {
            tracing::error!(error = %e, "recovered runs are not recorded yet");
        }
        Ok((resumed, interrupted))
    }

    fn resume_recorded(&self, run: RunRecord, wf: Arc<Workflow>) -> Result<RunHandle, EngineError> {
        let actions = self.inner.store.run_actions(&run.id)?;
        let vars = match run.vars {
            Some(Value::Object(m)) => m,
            _ => Default::default(),
        };
        self.inner.store.send(Op::Status {
            id: run.id.clone(),
            status: RunStatus::Running,
            at: now_ms(),
            owner: Some(self.inner.owner.clone()),
        });
        lock(&self.inner.slots)
            .entry(wf.id().to_owned())
            .or_default()
            .admit(
                wf.id(),
                &run.id,
                crate::workflow::ConcurrencyDef {
                    mode: crate::workflow::Mode::Parallel,
                    max: u32::MAX,
                },
            )?;
        let start = executor::Start {
            run_id: run.id.clone(),
            workflow: wf,
            trigger: TriggerEvent {
                kind: run.trigger,
                data: run.trigger_data,
            },
            vars,
            depth: 0,
            resume_from: Some(executor::Resume {
                cursor: run.cursor,
                done: actions,
            }),
            parent_run: run.parent_run.clone(),
            parent_deadline: None,
            redactor: Arc::default(),
        };
        Ok(self.spawn_run(start, None, None))
    }
}

/// The boot id of the running kernel, without the newline; empty when unknown.
fn boot_id() -> &'static str {
    static BOOT: OnceLock<String> = OnceLock::new();
    BOOT.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    })
}

/// Start time of process `pid`, in clock ticks since boot (`/proc/<pid>/stat` field 22); `None`
/// when there is no such process, or only its zombie (it has exited, its parent has not reaped it).
fn start_time(pid: u32) -> Option<u64> {
    parse_start_time(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn parse_start_time(stat: &str) -> Option<u64> {
    // Field 2 (the command name) is in parentheses and may hold spaces or parentheses itself:
    // count fields from after the last `)`, where field 3 (the state) starts.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    if matches!(fields.next(), Some("Z" | "X" | "x")) {
        return None;
    }
    fields.nth(22 - 4)?.parse().ok()
}

/// The owner string of this process for an engine `instance` id.
pub(super) fn current(instance: &str) -> String {
    let pid = std::process::id();
    let start = start_time(pid).unwrap_or(0);
    format!("{pid}:{}:{start}:{instance}", boot_id())
}

/// The pid an owner names, as text for messages (`?` when it names none).
pub(super) fn owner_pid(owner: &str) -> String {
    owner.split(':').next().unwrap_or("?").to_owned()
}

/// Whether the process an owner names still runs.
pub(super) fn alive(owner: &str) -> bool {
    let parts: Vec<&str> = owner.split(':').collect();
    let Some(pid) = parts.first().and_then(|p| p.parse::<u32>().ok()) else {
        return false;
    };
    match parts.as_slice() {
        [_, boot, start, _instance] => {
            if *boot != boot_id() {
                // Recorded before the last reboot: whatever has this pid now is another process.
                return false;
            }
            let now = start_time(pid).map(|s| s.to_string());
            if pid == std::process::id() && now.as_deref() == Some(*start) {
                // Another engine instance of this very process: it was dropped, or it is alive
                // in the same process. Only the former happens outside tests, so treat it as gone.
                return false;
            }
            now.as_deref() == Some(*start)
        }
        _ => legacy_alive(pid),
    }
}

/// An owner of the old `pid:instance` form: all it can tell is whether the pid exists.
fn legacy_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return false;
    }
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 only checks that the process exists; it sends nothing.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owner_names_one_process_and_a_reused_pid_is_not_it() {
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id();
        let start = start_time(pid).expect("the child's start time");
        let boot = boot_id();
        assert!(!boot.is_empty(), "this machine has a boot id");
        assert!(alive(&format!("{pid}:{boot}:{start}:x")));
        // Same pid, another start time: the pid was reused by a later process.
        assert!(!alive(&format!("{pid}:{boot}:{}:x", start + 1)));
        // Same pid and start time, another boot: recorded before a reboot.
        assert!(!alive(&format!(
            "{pid}:00000000-0000-0000-0000-000000000000:{start}:x"
        )));
        child.kill().expect("kill");
        // Dead but not yet reaped (a zombie), then gone: neither owns a run.
        let owner = format!("{pid}:{boot}:{start}:x");
        for _ in 0..1000 {
            if !alive(&owner) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(!alive(&owner), "a killed, unreaped process");
        child.wait().expect("reap");
        assert!(!alive(&owner));
        assert_eq!(owner_pid(&current("i")), std::process::id().to_string());
    }

    #[test]
    fn the_command_name_may_hold_spaces_and_parentheses() {
        // Fields are counted after the last `)`, so a name like `a) (b c` cannot shift them.
        let stat =
            "4242 (a) (b c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 12345 67";
        assert_eq!(parse_start_time(stat), Some(987654));
        assert_eq!(parse_start_time("4242 (truncated"), None);
        let zombie = stat.replace(") S ", ") Z ");
        assert_eq!(parse_start_time(&zombie), None, "a zombie runs nothing");
    }
}
