//! `Shutdown`: the trigger racing callback registration and a waiting thread.

#![cfg(pulse_loom)]

use std::time::{Duration, Instant};

use pulse_core::shutdown::Shutdown;
use pulse_core::sync::{Arc, AtomicUsize, Bug, Ordering};
use pulse_loom_tests::{check, expect_failure, spawn, step};

/// Preemption bound of every test here. Three finishes in well under a
/// second: the primitive has one lock and one condvar.
const BOUND: usize = 3;

/// Two triggers, a late callback registration and a waiting thread, in any
/// order: the callback runs exactly once, exactly one trigger wins, and the
/// waiter wakes.
#[test]
fn a_callback_runs_once_and_a_waiter_wakes_whatever_the_order() {
    check(BOUND, || {
        let s = Shutdown::new(Duration::ZERO);
        let ran = Arc::new(AtomicUsize::new(0));
        let triggers: Vec<_> = (0..2)
            .map(|i| {
                let s = s.clone();
                spawn(&format!("trigger{i}"), move || s.trigger(Instant::now()))
            })
            .collect();
        let (s2, ran2) = (s.clone(), ran.clone());
        let register = spawn("register", move || {
            s2.on_trigger(move || {
                ran2.fetch_add(1, Ordering::SeqCst);
            });
        });
        // Under loom a timed wait is an untimed one: this returns only when
        // the trigger wakes it, so a lost wake-up is a deadlock loom reports.
        assert!(s.wait_timeout(Duration::from_secs(1)));
        let won: usize = triggers
            .into_iter()
            .map(|t| usize::from(t.join().unwrap()))
            .sum();
        register.join().unwrap();
        assert_eq!(won, 1, "exactly one trigger is the first");
        assert_eq!(ran.load(Ordering::SeqCst), 1, "the callback ran once");
    });
}

/// Broken: `on_trigger` reads the flag outside the lock. The registration
/// can see "not triggered", the trigger then take the (still empty)
/// callback list, and the callback be stored where nobody will run it.
#[test]
fn broken_flag_checked_outside_the_lock_loses_a_callback() {
    let message = expect_failure(
        "broken_flag_checked_outside_the_lock_loses_a_callback",
        BOUND,
        || {
            let s = Shutdown::with_bug(Duration::ZERO, Bug::FlagCheckedOutsideLock);
            let ran = Arc::new(AtomicUsize::new(0));
            let s2 = s.clone();
            let trigger = spawn("trigger", move || {
                step("trigger");
                s2.trigger(Instant::now());
                step("trigger done (callbacks taken and run)");
            });
            let ran2 = ran.clone();
            step("register callback");
            s.on_trigger(move || {
                ran2.fetch_add(1, Ordering::SeqCst);
            });
            step("registered");
            trigger.join().unwrap();
            let n = ran.load(Ordering::SeqCst);
            step(format!("callback ran {n} time(s)"));
            assert_eq!(n, 1, "the callback was lost");
        },
    );
    assert!(message.contains("the callback was lost"), "{message}");
}
