//! Loom model checks of pulse's hand-written synchronization.
//!
//! Build and run with `scripts/loom.sh` (it sets `--cfg pulse_loom` and a
//! target directory of its own). Without that cfg this crate is empty.
//!
//! # What is checked
//!
//! Loom runs a test body over and over, once per interleaving of its
//! threads' synchronization points (every lock, condvar wait and notify,
//! atomic access), up to a *preemption bound*: the number of times the
//! scheduler may switch away from a thread that could have gone on. Most
//! concurrency bugs need two or three preemptions to show (the loom and
//! CHESS papers found the same), so each test states its bound, the
//! highest that keeps `scripts/loom.sh` within a few minutes on two cores.
//!
//! - `tests/shutdown.rs`: `Shutdown` (trigger, on_trigger, wait).
//! - `tests/pool.rs`: the blocking pool's queues and its dispatch / work /
//!   collect protocol (`pulse_core::pool`), which the threads model runs.
//! - `tests/drain.rs`: the in-flight registry the end of the grace period
//!   cuts (`pulse_core::pool::InFlight`), against a probe blocked on a
//!   socket.
//! - `tests/reply_table.rs`: the ICMP reply table, a reply racing its
//!   waiter's timeout.
//!
//! Each file also builds its primitive `with_bug` (see `pulse_core::sync::Bug`)
//! and expects loom to find the failure; `expect_failure` prints the steps
//! of the failing interleaving, as recorded with `step` (plain names, not
//! links: without the cfg, as `cargo doc` builds it, the crate is empty).
//!
//! # Out of reach
//!
//! The runtimes' own internals (tokio, smol, async-std, rayon, crossbeam),
//! which their authors check with loom themselves; wall-clock time (loom has
//! none: a timed wait is an untimed one, and a deadline passing is a thread
//! that fires it, at any point); and the sockets, which are modelled by a
//! condvar that a shutdown wakes.

#![cfg(pulse_loom)]

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};

thread_local! {
    /// The steps of the current execution. Loom runs every thread of a
    /// model on the OS thread that called it, so a thread-local sees them
    /// all, and being std, not loom, it adds no synchronization point.
    static TRACE: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Record one step of the current execution, labelled by its loom thread.
pub fn step(what: impl Into<String>) {
    let who = loom::thread::current()
        .name()
        .map_or_else(|| "?".to_string(), str::to_string);
    TRACE.with(|t| t.borrow_mut().push(format!("{who:>10}: {}", what.into())));
}

fn builder(bound: usize) -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(bound);
    // Source locations in loom's own reports (a deadlock names where each
    // thread waits).
    b.location = true;
    b
}

/// Check `body` at preemption bound `bound`: it must hold in every
/// interleaving loom explores.
pub fn check(bound: usize, body: impl Fn() + Sync + Send + 'static) {
    print_trace_on_panic();
    builder(bound).check(move || {
        TRACE.with(|t| t.borrow_mut().clear());
        body();
    });
}

/// The message of the panics the pool tests inject on purpose.
pub const INJECTED_PANIC: &str = "injected worker panic";

/// Set in the child process that [`expect_failure`] runs a broken model in.
const CHILD: &str = "PULSE_LOOM_BROKEN_CHILD";

/// Check `body`, which runs a deliberately broken primitive, and expect loom
/// to find an interleaving that fails it (an assertion, or a deadlock).
/// Returns what the failing run printed: loom's message and the steps of the
/// failing interleaving, as recorded with [`step`].
///
/// `test` is the name of the calling test. The model runs in a child
/// process (this test binary, running only that test): when loom finds a
/// deadlock, the threads it leaves blocked cannot be unwound cleanly, and
/// the process aborts, which must not take the other tests with it.
pub fn expect_failure(test: &str, bound: usize, body: impl Fn() + Sync + Send + 'static) -> String {
    if std::env::var_os(CHILD).is_some() {
        check(bound, body);
        return String::new();
    }
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("no test binary path: {e}"));
    let out = std::process::Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap_or_else(|e| panic!("cannot run the broken model in a child process: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success(),
        "loom explored every interleaving at bound {bound} and found no failure:\n{text}"
    );
    let report: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("loom found the bug"))
        .take_while(|l| !l.starts_with("end of the failing interleaving"))
        .collect();
    println!("{}", report.join("\n"));
    text
}

/// On the first panic of a loom run (loom's report, or a failed assertion
/// in the model), print the message and the steps of that execution.
fn print_trace_on_panic() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(install_trace_hook);
}

fn install_trace_hook() {
    let default = std::panic::take_hook();
    let printed = AtomicBool::new(false);
    std::panic::set_hook(Box::new(move |info| {
        // The pool tests inject a panic that the worker catches, in
        // thousands of executions: not a failure, and not worth a report.
        if info.to_string().contains(INJECTED_PANIC) {
            return;
        }
        if !printed.swap(true, Ordering::SeqCst) {
            let steps = TRACE.with(|t| t.borrow().join("\n"));
            println!(
                "loom found the bug: {info}\nthe failing interleaving, step by step:\n{steps}\n\
                 end of the failing interleaving"
            );
        }
        default(info);
    }));
}

/// Start a named loom thread (the name labels its [`step`]s).
pub fn spawn<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> loom::thread::JoinHandle<T> {
    match loom::thread::Builder::new().name(name.into()).spawn(f) {
        Ok(handle) => handle,
        Err(e) => panic!("loom could not start thread {name}: {e}"),
    }
}
