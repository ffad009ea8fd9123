//! The blocking pool (`pulse_core::pool`): dispatch, workers and the
//! collector, racing shutdown, a full result queue and a worker panic.
//!
//! Every test runs the real `dispatch`, `work` and `collect`, on loom
//! threads instead of the threads model's OS threads.

#![cfg(pulse_loom)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use pulse_core::pool::{Pool, Producer, Queue, collect, dispatch, work};
use pulse_core::shutdown::Shutdown;
use pulse_core::sync::{Arc, AtomicUsize, Bug, Ordering};
use pulse_loom_tests::{INJECTED_PANIC, check, expect_failure, spawn, step};

/// Preemption bound for the tests with two workers (dispatcher, two workers
/// and the collector, sometimes a trigger): 2. Measured on this 2-core
/// machine, release build: 38 s for three targets, 23 s for two with a
/// trigger; at bound 3 the first ran for over ten minutes.
const BOUND_4_THREADS: usize = 2;
/// Preemption bound for the tests with one worker (dispatcher, worker,
/// trigger, collector): 3, about 70 s for two targets.
const BOUND: usize = 3;

/// Run a scan of `len` targets with `workers` workers on loom threads; the
/// calling thread collects. `trigger` also starts a thread that triggers
/// shutdown at some point. `panic_on` makes the probe of that index panic
/// (outside the model's own `catch_unwind`, to check the pool itself).
/// Returns (index, probe count at the time) for each collected result, and
/// how many probes ran.
fn scan(len: usize, workers: usize, trigger: bool, panic_on: Option<usize>) -> (Vec<usize>, usize) {
    let shutdown = Shutdown::new(Duration::ZERO);
    let pool = Arc::new(Pool::<usize>::new(workers, &shutdown));
    let probes = Arc::new(AtomicUsize::new(0));
    let producers: Vec<_> = (0..workers).map(|_| Producer::new(&pool.results)).collect();
    let mut threads = Vec::new();
    for (i, results) in producers.into_iter().enumerate() {
        let (pool, shutdown, probes) = (pool.clone(), shutdown.clone(), probes.clone());
        threads.push(spawn(&format!("worker{i}"), move || {
            // A panic outside the probe's own isolation unwinds the whole
            // worker; its producer handle is dropped on the way.
            let _ = catch_unwind(AssertUnwindSafe(move || {
                work(&pool.jobs, &results, &shutdown, |index| {
                    probes.fetch_add(1, Ordering::SeqCst);
                    assert_ne!(Some(index), panic_on, "{INJECTED_PANIC}");
                    index
                });
            }));
        }));
    }
    {
        let (pool, shutdown) = (pool.clone(), shutdown.clone());
        threads.push(spawn("dispatch", move || {
            dispatch(len, &pool.jobs, &shutdown, |_| true);
        }));
    }
    if trigger {
        let shutdown = shutdown.clone();
        threads.push(spawn("trigger", move || {
            shutdown.trigger(Instant::now());
        }));
    }
    let mut seen = Vec::new();
    collect(
        &pool.results,
        || {},
        |index, result| {
            assert_eq!(index, result, "a result travels with its own index");
            seen.push(index);
        },
    );
    for t in threads {
        t.join().unwrap();
    }
    (seen, probes.load(Ordering::SeqCst))
}

fn assert_no_duplicates(seen: &[usize]) {
    let mut sorted = seen.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        seen.len(),
        "a result was duplicated: {seen:?}"
    );
}

/// Two workers, three targets, queues of one: every target is probed once
/// and collected once.
#[test]
fn no_result_is_lost_or_duplicated() {
    check(BOUND_4_THREADS, || {
        let (mut seen, probes) = scan(3, 2, false, None);
        seen.sort_unstable();
        assert_eq!(seen, [0, 1, 2], "every result collected once");
        assert_eq!(probes, 3, "every target probed once");
    });
}

/// Shutdown racing the dispatcher (which may be blocked on the full job
/// queue of one), one worker, two targets: the scan ends, nothing is duplicated, and every probe
/// that ran reached the collector.
#[test]
fn shutdown_racing_dispatch_never_deadlocks() {
    check(BOUND, || {
        let (seen, probes) = scan(2, 1, true, None);
        assert_no_duplicates(&seen);
        assert_eq!(seen.len(), probes, "every probe that ran was collected");
    });
}

/// Shutdown while both workers wait on a full result queue (capacity one,
/// two workers, a collector that may be the slowest thread): nobody waits
/// for ever, and every probe that ran is collected.
#[test]
fn shutdown_with_a_full_results_queue_never_deadlocks() {
    check(BOUND_4_THREADS, || {
        let (seen, probes) = scan(2, 2, true, None);
        assert_no_duplicates(&seen);
        assert_eq!(seen.len(), probes);
    });
}

/// A worker that panics (its producer handle dropped by the unwind), racing
/// shutdown: the result queue still closes when the other worker is done,
/// so the collector ends; the other targets are still collected once.
#[test]
fn a_worker_panic_racing_shutdown_never_deadlocks() {
    check(BOUND_4_THREADS, || {
        let (seen, _) = scan(2, 1, true, Some(0));
        assert!(
            seen.iter().all(|&i| i != 0),
            "the panicked probe has no result"
        );
        assert_no_duplicates(&seen);
    });
}

/// The same panic without shutdown, two workers: the surviving worker
/// takes every remaining target.
#[test]
fn a_worker_panic_loses_only_its_own_target() {
    check(BOUND_4_THREADS, || {
        let (mut seen, _) = scan(3, 2, false, Some(1));
        seen.sort_unstable();
        // The panicking worker may have taken only target 1, or target 1
        // after another one it finished; either way only 1 is missing.
        assert_eq!(seen, [0, 2]);
    });
}

/// Broken: `close` wakes nobody. A worker asleep on the empty job queue
/// never learns that the dispatcher is done (loom reports the deadlock).
#[test]
fn broken_missing_wake_on_close_strands_a_worker() {
    let message = expect_failure(
        "broken_missing_wake_on_close_strands_a_worker",
        BOUND,
        || {
            let jobs = Arc::new(Queue::<usize>::with_bug(1, Bug::MissingWakeOnClose));
            let j = jobs.clone();
            let worker = spawn("worker", move || {
                step("pop (sleeps while the queue is empty and open)");
                let got = j.pop();
                step(format!("pop gave {got:?}"));
            });
            step("dispatch: no targets, close the queue");
            jobs.close();
            step("closed");
            worker.join().unwrap();
        },
    );
    assert!(message.to_lowercase().contains("deadlock"), "{message}");
}
