//! The blocking pool's hand-written synchronization: the job and result
//! queues, the dispatch / work / collect protocol over them, and the
//! registry of in-flight sockets that the end of the grace period cuts.
//!
//! The threads model runs exactly this code on OS threads (its `scan.rs` and
//! `shutdown.rs`), and `loom-tests/` runs the same code on loom's threads
//! under `--cfg pulse_loom`: every lock and condvar here comes from
//! [`crate::sync`], so loom sees every synchronization point and can try
//! every interleaving of them (tokio keeps its own primitives checkable the
//! same way). A crossbeam channel would do the queues' job, but its lock-free
//! insides are out of loom's reach; a mutex and two condvars are a few lines
//! and can be checked exhaustively.
//!
//! # The protocol
//!
//! - [`dispatch`] pushes target indices, in order, into the bounded job
//!   [`Queue`] until the plan is exhausted or shutdown is triggered, then
//!   closes it. A dispatcher blocked on a full queue is woken by the trigger
//!   itself: [`Pool::new`] registers a callback that closes the job queue.
//! - [`work`] (one per worker thread) pops jobs until the queue is closed and
//!   empty, skips them once shutdown is triggered, and pushes each result
//!   through its [`Producer`], a counted handle on the result queue: the last
//!   producer dropped (the last worker returning, or unwinding) closes it.
//! - [`collect`] pops results until the result queue is closed and empty,
//!   and closes it on the way out whichever way it leaves, so that workers
//!   blocked on a full result queue are released if the collector panics.
//!
//! # Invariants loom checks
//!
//! Every index dispatched before the trigger is probed once and collected
//! once; nothing is lost or duplicated; and no interleaving of the trigger,
//! a full queue, a worker panic and the end of the plan leaves a thread
//! waiting for ever.

use std::collections::{BTreeMap, VecDeque};

use crate::shutdown::Shutdown;
#[cfg(pulse_loom)]
use crate::sync::Bug;
use crate::sync::{Arc, Condvar, Mutex};

/// A bounded FIFO for many producers and many consumers, which can be closed.
///
/// `push` blocks while the queue is full, `pop` while it is empty. Once
/// closed, `push` fails at once and `pop` returns what is left, then `None`:
/// a closed, empty queue is how a consumer learns there is no more work.
pub struct Queue<T> {
    state: Mutex<State<T>>,
    /// Consumers asleep on an empty queue wait here.
    not_empty: Condvar,
    /// Producers asleep on a full queue wait here.
    not_full: Condvar,
    /// Items the queue holds at most: the bound on how far producers may run
    /// ahead of consumers.
    cap: usize,
    #[cfg(pulse_loom)]
    bug: Option<Bug>,
}

struct State<T> {
    items: VecDeque<T>,
    closed: bool,
    /// Live [`Producer`] handles; the last one dropped closes the queue.
    producers: usize,
    /// Consumers asleep on `not_empty`, and producers asleep on `not_full`.
    /// A push or pop notifies only when someone sleeps: std's
    /// `Condvar::notify_one` is a futex system call even with no waiter, and
    /// unconditional notifies cost the threads model four per probe (two
    /// queues, both ends). Counted under the lock, like the items, so a
    /// sleeper cannot be missed: it counts itself before it waits, and the
    /// waker reads the count after it changed the queue.
    sleeping_consumers: usize,
    sleeping_producers: usize,
}

impl<T> std::fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.state.lock();
        f.debug_struct("Queue")
            .field("len", &s.items.len())
            .field("cap", &self.cap)
            .field("closed", &s.closed)
            .finish()
    }
}

impl<T> Queue<T> {
    /// An open, empty queue holding at most `cap` items (at least one).
    pub fn new(cap: usize) -> Self {
        Queue {
            state: Mutex::new(State {
                items: VecDeque::with_capacity(cap.max(1)),
                closed: false,
                producers: 0,
                sleeping_consumers: 0,
                sleeping_producers: 0,
            }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            cap: cap.max(1),
            #[cfg(pulse_loom)]
            bug: None,
        }
    }

    /// A queue that runs the broken code of `bug` (see [`Bug`]).
    #[cfg(pulse_loom)]
    pub fn with_bug(cap: usize, bug: Bug) -> Self {
        Queue {
            bug: Some(bug),
            ..Queue::new(cap)
        }
    }

    /// Append `item`, waiting while the queue is full. Gives the item back
    /// when the queue is (or becomes, while waiting) closed.
    pub fn push(&self, item: T) -> Result<(), T> {
        let mut s = self.state.lock();
        loop {
            if s.closed {
                return Err(item);
            }
            if s.items.len() < self.cap {
                break;
            }
            s.sleeping_producers += 1;
            s = self.not_full.wait(s);
            s.sleeping_producers -= 1;
        }
        s.items.push_back(item);
        let wake = s.sleeping_consumers > 0;
        drop(s);
        // Outside the lock: the woken consumer can take the lock at once.
        // Safe because the item is already in the queue, which the consumer
        // checks under the lock before it sleeps.
        if wake {
            self.not_empty.notify_one();
        }
        Ok(())
    }

    /// Take the oldest item, waiting while the queue is empty and open.
    /// `None` once it is closed and empty.
    pub fn pop(&self) -> Option<T> {
        let mut s = self.state.lock();
        loop {
            if let Some(item) = s.items.pop_front() {
                let wake = s.sleeping_producers > 0;
                drop(s);
                if wake {
                    self.not_full.notify_one();
                }
                return Some(item);
            }
            if s.closed {
                return None;
            }
            s.sleeping_consumers += 1;
            s = self.not_empty.wait(s);
            s.sleeping_consumers -= 1;
        }
    }

    /// Take the oldest item if there is one, without waiting.
    pub fn try_pop(&self) -> Option<T> {
        let mut s = self.state.lock();
        let item = s.items.pop_front()?;
        let wake = s.sleeping_producers > 0;
        drop(s);
        if wake {
            self.not_full.notify_one();
        }
        Some(item)
    }

    /// No more pushes: wake every thread waiting on either side. Items
    /// already queued can still be popped.
    pub fn close(&self) {
        self.state.lock().closed = true;
        #[cfg(pulse_loom)]
        if self.bug == Some(Bug::MissingWakeOnClose) {
            return;
        }
        // All, not one: every sleeper must see the close, and each re-checks
        // `closed` under the lock, so none can miss it.
        self.not_empty.notify_all();
        self.not_full.notify_all();
    }

    /// Whether [`close`](Self::close) was called (or the last producer left).
    pub fn is_closed(&self) -> bool {
        self.state.lock().closed
    }

    /// Items waiting.
    pub fn len(&self) -> usize {
        self.state.lock().items.len()
    }

    /// True when no item is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A push handle on a [`Queue`]; dropping the last one closes the queue.
///
/// Dropped on every way out of a worker, a panic unwinding included, so the
/// consumer always learns that the producers are gone.
pub struct Producer<T> {
    queue: Arc<Queue<T>>,
}

impl<T> Producer<T> {
    /// A counted push handle on `queue`. Take every producer before
    /// starting the threads that use them: the queue closes when the count
    /// drops back to zero, so a fast first worker must not see it at zero
    /// before a slow one has registered.
    pub fn new(queue: &Arc<Queue<T>>) -> Self {
        queue.state.lock().producers += 1;
        Producer {
            queue: queue.clone(),
        }
    }

    /// [`Queue::push`].
    pub fn push(&self, item: T) -> Result<(), T> {
        self.queue.push(item)
    }
}

impl<T> Drop for Producer<T> {
    fn drop(&mut self) {
        let last = {
            let mut s = self.queue.state.lock();
            s.producers -= 1;
            s.producers == 0
        };
        if last {
            self.queue.close();
        }
    }
}

/// The two queues of one scan.
pub struct Pool<R> {
    /// Target indices, from the dispatcher to the workers. Bounded to one
    /// per worker: the dispatcher stays in step with the workers and stops
    /// the moment shutdown begins, rather than queueing every target at once.
    pub jobs: Arc<Queue<usize>>,
    /// Finished results, from the workers to the collector. Bounded to one
    /// per worker: a slow sink makes workers wait rather than pile results
    /// up in memory.
    pub results: Arc<Queue<(usize, R)>>,
}

impl<R> Pool<R> {
    /// The queues for `workers` workers, with the job queue closed by
    /// `shutdown`'s trigger, so that a dispatcher waiting for room stops at
    /// once rather than when a worker next takes a job.
    pub fn new(workers: usize, shutdown: &Shutdown) -> Self {
        let jobs = Arc::new(Queue::new(workers));
        let on_trigger = jobs.clone();
        shutdown.on_trigger(move || on_trigger.close());
        Pool {
            jobs,
            results: Arc::new(Queue::new(workers)),
        }
    }
}

/// Queue `0..len` in order until the plan is exhausted or shutdown began,
/// then close the queue: that is how the workers learn there is no more work.
///
/// `due(index)` runs before each job is queued: it waits until the job may
/// start (`pulse serve` spreads start times) and returns false to stop
/// dispatch (shutdown came first). A scan passes `|_| true`.
pub fn dispatch(
    len: usize,
    jobs: &Queue<usize>,
    shutdown: &Shutdown,
    mut due: impl FnMut(usize) -> bool,
) {
    for index in 0..len {
        if shutdown.is_triggered() || !due(index) || jobs.push(index).is_err() {
            break;
        }
    }
    jobs.close();
}

/// One worker: probe each job it takes, until none are left or shutdown
/// began, and hand each result to the collector.
pub fn work<R>(
    jobs: &Queue<usize>,
    results: &Producer<(usize, R)>,
    shutdown: &Shutdown,
    mut probe: impl FnMut(usize) -> R,
) {
    while let Some(index) = jobs.pop() {
        // A job taken after the trigger is dropped, never started: the
        // ledger reports it cancelled.
        if shutdown.is_triggered() {
            break;
        }
        let result = probe(index);
        // Fails only when the collector is gone; then nobody wants it.
        if results.push((index, result)).is_err() {
            break;
        }
    }
}

/// Hand every result to `record` until all producers are gone and the
/// queue is empty, calling `pause` after each batch: the threads model
/// sleeps there for [`crate::model::COLLECT_EVERY`] so that results gather
/// while it sleeps instead of waking it one by one (loom's models pass a
/// no-op).
pub fn collect<R>(
    results: &Queue<(usize, R)>,
    mut pause: impl FnMut(),
    mut record: impl FnMut(usize, R),
) {
    /// Closes the queue when the collector leaves, by return or by unwind:
    /// a worker blocked on a full queue must not wait for a dead collector.
    struct CloseOnDrop<'a, R>(&'a Queue<(usize, R)>);
    impl<R> Drop for CloseOnDrop<'_, R> {
        fn drop(&mut self) {
            self.0.close();
        }
    }
    let _close = CloseOnDrop(results);
    while let Some((index, result)) = results.pop() {
        record(index, result);
        while let Some((index, result)) = results.try_pop() {
            record(index, result);
        }
        pause();
    }
}

/// The sockets (or anything else the drain must reach) of the probes in
/// flight, and whether the grace period is over.
///
/// Tracking and the drain take the same lock, so they cannot cross: either
/// an item is tracked first and the drain cuts it, or the tracking sees the
/// drain and is refused, and the probe stops before it blocks on anything.
pub struct InFlight<T> {
    state: Mutex<Tracked<T>>,
    #[cfg(pulse_loom)]
    bug: Option<Bug>,
}

struct Tracked<T> {
    drained: bool,
    /// By ticket. A `BTreeMap`, not a `HashMap`: the drain walks it, and a
    /// `HashMap`'s order is random per map, which would make loom's runs of
    /// the same interleaving differ (loom needs a deterministic model).
    items: BTreeMap<u64, T>,
    /// The next ticket number (a `u64` does not wrap in any scan).
    next: u64,
}

impl<T> Default for InFlight<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> InFlight<T> {
    /// An empty registry, not drained.
    pub fn new() -> Self {
        InFlight {
            state: Mutex::new(Tracked {
                drained: false,
                items: BTreeMap::new(),
                next: 0,
            }),
            #[cfg(pulse_loom)]
            bug: None,
        }
    }

    /// A registry that runs the broken code of `bug` (see [`Bug`]).
    #[cfg(pulse_loom)]
    pub fn with_bug(bug: Bug) -> Self {
        InFlight {
            bug: Some(bug),
            ..InFlight::new()
        }
    }

    /// Register `item` before the probe's first blocking call on it, and get
    /// its ticket; gives it back once the drain has happened.
    pub fn track(&self, item: T) -> Result<u64, T> {
        #[cfg(pulse_loom)]
        if self.bug == Some(Bug::TrackCheckThenInsert) {
            if self.state.lock().drained {
                return Err(item);
            }
            let mut s = self.state.lock();
            let ticket = s.next;
            s.next += 1;
            s.items.insert(ticket, item);
            return Ok(ticket);
        }
        let mut s = self.state.lock();
        if s.drained {
            return Err(item);
        }
        let ticket = s.next;
        s.next += 1;
        s.items.insert(ticket, item);
        Ok(ticket)
    }

    /// Take an item out again (the probe is done with it).
    pub fn untrack(&self, ticket: u64) -> Option<T> {
        self.state.lock().items.remove(&ticket)
    }

    /// End the grace period: refuse every later `track`, and call `cut` on
    /// each item in flight, under the lock (see the type's doc). `cut` must
    /// not block: shutting a socket down does not.
    pub fn drain(&self, mut cut: impl FnMut(&T)) {
        let mut s = self.state.lock();
        s.drained = true;
        for item in s.items.values() {
            cut(item);
        }
    }

    /// Whether the drain has happened.
    pub fn is_drained(&self) -> bool {
        self.state.lock().drained
    }

    /// Items tracked now (zero once every probe has finished).
    pub fn len(&self) -> usize {
        self.state.lock().items.len()
    }

    /// True when nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(all(test, not(pulse_loom)))]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn every_job_is_collected_once_in_a_real_pool() {
        let shutdown = Shutdown::new(Duration::ZERO);
        let pool = Pool::<usize>::new(3, &shutdown);
        let mut seen = Vec::new();
        std::thread::scope(|s| {
            for _ in 0..3 {
                let (jobs, results) = (&pool.jobs, Producer::new(&pool.results));
                let shutdown = &shutdown;
                s.spawn(move || work(jobs, &results, shutdown, |i| i * 10));
            }
            s.spawn(|| dispatch(100, &pool.jobs, &shutdown, |_| true));
            collect(&pool.results, || {}, |i, r| seen.push((i, r)));
        });
        seen.sort_unstable();
        assert_eq!(seen, (0..100).map(|i| (i, i * 10)).collect::<Vec<_>>());
    }

    #[test]
    fn the_trigger_wakes_a_dispatcher_waiting_for_room() {
        let shutdown = Shutdown::new(Duration::ZERO);
        let pool = Pool::<()>::new(1, &shutdown);
        std::thread::scope(|s| {
            // No worker: the queue fills after one job and dispatch blocks.
            let d = s.spawn(|| dispatch(10, &pool.jobs, &shutdown, |_| true));
            std::thread::sleep(Duration::from_millis(20));
            assert!(!d.is_finished());
            shutdown.trigger(Instant::now());
            d.join().unwrap();
        });
        assert_eq!(pool.jobs.len(), 1);
        assert!(pool.jobs.is_closed());
    }

    #[test]
    fn a_drained_registry_refuses_new_items_and_cuts_the_rest() {
        let r = InFlight::new();
        let a = r.track("a").unwrap();
        let _b = r.track("b").unwrap();
        assert_eq!(r.untrack(a), Some("a"));
        let mut cut = Vec::new();
        r.drain(|i| cut.push(*i));
        assert_eq!(cut, ["b"]);
        assert_eq!(r.track("c"), Err("c"));
        assert!(r.is_drained());
    }
}
