//! The threads model: pulse's probe core driven by plain OS threads and
//! blocking sockets.
//!
//! # Model
//!
//! One OS thread per probe in flight. Each of `--workers` threads runs one
//! probe at a time with blocking std sockets; while a probe waits on the
//! network its thread sleeps in the kernel, holding its stack (2 MiB of
//! address space, of which only the pages touched are real memory). There
//! is no runtime: the kernel's scheduler is the executor, and a socket call
//! returning is the wake-up. `run` starts every thread inside
//! `std::thread::scope`, so the threads can borrow the plan and the stop
//! signal, the calling thread can be the collector that writes to the sink
//! (which is not `'static`), and `run` cannot return before every thread it
//! started has been joined.
//!
//! # Bounded fan-out
//!
//! The bound is the thread count itself: a thread runs one probe at a time,
//! so `--workers` threads cannot have more than `--workers` probes in flight.
//! A dispatcher thread feeds target indices, in order, into a queue that is
//! bounded to one job per worker (scan.rs): bounded, so the dispatcher stays
//! in step with the workers and stops the moment shutdown begins (the
//! trigger closes the queue, waking it), rather than having queued every
//! target up front. It then closes the queue; a closed, empty queue is how
//! the workers learn there is no more work. Results go to the collector over
//! a bounded queue, so a slow sink (a terminal, a pipe) slows the workers
//! down instead of piling results up in memory. Both queues, and this whole
//! protocol, are the core's `pulse_core::pool`: a mutex and two condvars
//! rather than a crossbeam channel, so that loom can check every
//! interleaving of them (`loom-tests/`).
//!
//! # Timeouts
//!
//! One absolute deadline per probe, `start + timeout`. A blocking call cannot
//! be raced against a timer; the only bound on it is its own timeout. So
//! before *every* blocking call (connect, each write, each read) the socket's
//! timeout is set to what is left until the deadline (timeout.rs). A server
//! that drips one byte a second gets a shorter timeout on every read, and the
//! last one expires at the deadline: no read resets it. Waits for a helper
//! thread (DNS, ICMP replies) are channel receives with the same deadline.
//!
//! # Shutdown
//!
//! The dispatcher stops at the trigger, and workers check the flag before
//! each probe; targets never started are reported `cancelled` by the core's
//! ledger. The hard part is an in-flight probe: its thread may be blocked in
//! a socket call for as long as its deadline, and a blocked thread cannot be
//! told anything. Two ways to reach it:
//!
//! - Slice every call: cap each timeout at, say, 50 ms and loop, looking at
//!   the drain deadline between slices. Simple, but every blocked thread
//!   wakes 20 times a second for nothing (a thousand workers waiting on slow
//!   servers: 20,000 wake-ups a second), and a connect cannot be sliced
//!   with std at all: each new connect is a new SYN.
//! - Reach the thread through its socket: keep a registry of the sockets in
//!   flight, and at the end of the grace period shut them all down, which
//!   makes every blocked connect, read and write return at once.
//!
//! This model does the second (shutdown.rs). It costs a lock taken twice per
//! connection (register, deregister) and a watchdog, which is the dispatcher
//! thread once it has nothing left to dispatch; it wakes nobody until it is
//! needed and cuts every probe off within microseconds of the grace period.
//! To make a connect abortable the socket is created (socket2) and
//! registered before the connect starts; Linux aborts a connect still
//! waiting for its SYN-ACK when the socket is shut down. A probe woken that
//! way sees the drain flag, set before any socket is shut, and reports
//! `cancelled`, not the error the dead socket gave it. Signals themselves
//! are caught by the CLI and turned into `Shutdown::trigger`, the same for
//! every model.
//!
//! # Where this model hurts
//!
//! Threads are the unit of concurrency, so `--workers 10000` is ten thousand
//! threads: their stacks, a kernel task each, and a context switch for every
//! socket event, where an async model parks a few hundred bytes per probe.
//! Starting a thread costs about 55 µs on this 2-core machine (10,000 bare
//! `std::thread::spawn`s take 0.55 s, stack size makes no difference, and
//! spawning from several threads at once is no faster): that is the floor
//! under the time to put 10,000 workers to work. The dispatcher starts
//! first so that each new worker finds a job waiting instead of sleeping
//! on an empty queue to be woken one futex call at a time.
//!
//! System calls: a blocking socket gets its timeout set before every call
//! (`setsockopt`, recomputed from the fixed deadline), and a connect with a
//! timeout is non-blocking for its length (`fcntl` there and back, then
//! `poll`), so a blocking HTTP probe makes more calls than an async one.
//!
//! DNS: getaddrinfo blocks with no timeout, so each lookup runs on a thread
//! of its own, started for it, while the probe waits for the answer until
//! its deadline or the drain. A lookup cut off that way cannot be
//! interrupted and is abandoned: its thread holds nothing of the scan and
//! exits when getaddrinfo gives up (seconds, per resolv.conf), possibly after
//! `run` has returned. These are the only threads `run` does not join;
//! waiting for them would hold a shutdown hostage to the resolver. (IP
//! literals, as in the conformance suite, never start one.)

mod io;
mod native;
mod scan;
mod shutdown;
mod timeout;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use pulse_core::model::{RunReport, SetupError, Sink};
use pulse_core::plan::Plan;
use pulse_core::shutdown::Shutdown;

// The blocking probe and what it needs, shared with the rayon model: rayon
// runs exactly this code, so that only the scheduling differs between them.
pub use io::Icmp;
pub use native::Native;
pub use shutdown::Stop;
pub use timeout::with_timeout;

/// This model's name, as given to `--runtime`.
pub const MODEL: &str = "threads";

/// OS threads a scan of `plan` runs on: one per worker, the dispatcher
/// (later the watchdog), and one ICMP reader per address family pinged. The
/// calling thread, which collects results, and the short-lived DNS lookup
/// threads are not counted.
pub fn runtime_threads(plan: &Plan) -> usize {
    let icmp = usize::from(plan.needs_icmp(false)) + usize::from(plan.needs_icmp(true));
    plan.workers() + 1 + icmp
}

/// Run the plan to completion (or shutdown), handing results to `sink`.
pub fn run(
    plan: Arc<Plan>,
    shutdown: Shutdown,
    sink: &mut dyn Sink,
) -> Result<RunReport, SetupError> {
    let threads = runtime_threads(&plan);
    let started_at = SystemTime::now();
    let started = Instant::now();
    // Returns only once every thread it started has been joined.
    let summary = scan::scan(plan, shutdown, sink, started);
    Ok(RunReport {
        runtime_threads: threads,
        started_at,
        duration: started.elapsed(),
        summary: summary?,
    })
}
