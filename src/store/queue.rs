//! The bounded queue between [`Store`](super::Store) handles and the writer thread.
//!
//! `std::sync::mpsc::sync_channel(n)` allocates and initialises all `n` slots when it is created:
//! with 16 K slots of an `Op` that is ~3.8 MB resident in every process that opens a store, idle
//! or not. This queue has the same bound and back-pressure (a sender blocks while `bound` writes
//! wait) but holds only what is queued: a `VecDeque` behind a mutex, grown on demand and given
//! back once a burst has drained. The writer takes a whole batch per lock, so a send costs one
//! short, rarely contended lock. Like a channel it reports the other side gone: a send fails once
//! the writer has stopped (its receiver dropped), and the writer sees the end once the sender is
//! dropped and the queue is empty.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

/// Capacity kept when the queue is empty again; a larger one (after a burst) is given back.
const KEEP: usize = 1024;

struct State<T> {
    items: VecDeque<T>,
    /// The sender was dropped: no more items come.
    closed: bool,
    /// The receiver was dropped: nobody takes items any more.
    gone: bool,
    /// The receiver waits for items (a send must wake it).
    receiver_waits: bool,
    /// Senders waiting for room (a take must wake them). Tracked so that the common case, nobody
    /// waiting, makes no wake-up system call.
    senders_wait: usize,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    /// Signalled when items arrive or the sender goes (the receiver waits on it).
    filled: Condvar,
    /// Signalled when room is made or the receiver goes (blocked senders wait on it).
    drained: Condvar,
    bound: usize,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A std mutex is right here: every critical section is a few pointer moves, no await.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The sending side (one per store; not `Clone`, so dropping it ends the queue).
pub(super) struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// The receiving side, owned by the writer thread.
pub(super) struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

/// A queue holding at most `bound` (at least 1) items.
pub(super) fn bounded<T>(bound: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            closed: false,
            gone: false,
            receiver_waits: false,
            senders_wait: 0,
        }),
        filled: Condvar::new(),
        drained: Condvar::new(),
        bound: bound.max(1),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

impl<T> Sender<T> {
    /// Queues `item`, blocking while the queue is full; gives it back if the receiver is gone.
    pub(super) fn send(&self, item: T) -> Result<(), T> {
        let mut state = self.shared.lock();
        while !state.gone && state.items.len() >= self.shared.bound {
            state.senders_wait += 1;
            state = self
                .shared
                .drained
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
            state.senders_wait -= 1;
        }
        if state.gone {
            return Err(item);
        }
        state.items.push_back(item);
        let wake = state.receiver_waits;
        drop(state);
        if wake {
            self.shared.filled.notify_one();
        }
        Ok(())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.filled.notify_all();
    }
}

/// Why [`Receiver::take`] returned no item.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Empty {
    /// `until` passed with nothing queued.
    Timeout,
    /// The sender is gone and everything it sent has been taken.
    Closed,
}

impl<T> Receiver<T> {
    /// Waits for at least one item (until `until`, or for ever when `None`), then moves up to
    /// `max` of them, oldest first, into `out`.
    pub(super) fn take(
        &self,
        max: usize,
        until: Option<Instant>,
        out: &mut Vec<T>,
    ) -> Result<(), Empty> {
        let mut state = self.shared.lock();
        while state.items.is_empty() {
            if state.closed {
                return Err(Empty::Closed);
            }
            let left = until.map(|at| at.saturating_duration_since(Instant::now()));
            if left.is_some_and(|left| left.is_zero()) {
                return Err(Empty::Timeout);
            }
            state.receiver_waits = true;
            state = match left {
                None => self
                    .shared
                    .filled
                    .wait(state)
                    .unwrap_or_else(|e| e.into_inner()),
                Some(left) => {
                    self.shared
                        .filled
                        .wait_timeout(state, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
            state.receiver_waits = false;
        }
        let n = state.items.len().min(max.max(1));
        out.extend(state.items.drain(..n));
        if state.items.is_empty() && state.items.capacity() > KEEP {
            state.items.shrink_to(KEEP);
        }
        let wake = state.senders_wait > 0;
        drop(state);
        if wake {
            self.shared.drained.notify_all();
        }
        Ok(())
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.shared.lock().gone = true;
        self.shared.drained.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn items_come_out_in_order_in_batches_of_at_most_max() {
        let (tx, rx) = bounded(10);
        for i in 0..5 {
            tx.send(i).expect("room");
        }
        let mut out = Vec::new();
        rx.take(3, None, &mut out).expect("items");
        assert_eq!(out, [0, 1, 2]);
        rx.take(3, None, &mut out).expect("items");
        assert_eq!(out, [0, 1, 2, 3, 4]);
        let soon = Instant::now() + Duration::from_millis(10);
        assert_eq!(rx.take(3, Some(soon), &mut out), Err(Empty::Timeout));
    }

    #[test]
    fn a_sender_blocks_while_the_queue_is_full() {
        let (tx, rx) = bounded(2);
        tx.send(1).expect("room");
        tx.send(2).expect("room");
        let sent = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = sent.clone();
        let sender = std::thread::spawn(move || {
            tx.send(3).expect("room once drained");
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            tx
        });
        // Not a timing assertion: whatever the delay, the third send cannot have completed
        // while two items wait and nothing has been taken.
        std::thread::sleep(Duration::from_millis(50));
        assert!(!sent.load(std::sync::atomic::Ordering::SeqCst));
        let mut out = Vec::new();
        rx.take(1, None, &mut out).expect("items");
        let tx = sender.join().expect("sender");
        assert!(sent.load(std::sync::atomic::Ordering::SeqCst));
        drop(tx);
        rx.take(10, None, &mut out).expect("what was queued");
        assert_eq!(out, [1, 2, 3]);
        assert_eq!(rx.take(10, None, &mut out), Err(Empty::Closed));
    }

    #[test]
    fn a_send_fails_once_the_receiver_is_gone_even_when_blocked() {
        let (tx, rx) = bounded(1);
        tx.send(1).expect("room");
        let sender = std::thread::spawn(move || tx.send(2));
        std::thread::sleep(Duration::from_millis(20));
        drop(rx);
        assert_eq!(sender.join().expect("sender"), Err(2));
    }
}
