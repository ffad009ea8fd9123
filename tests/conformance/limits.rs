//! Durations at the edge of what an `Instant` can hold.
//!
//! Every duration pulse reads is capped at `MAX_DURATION` (24h) where it is
//! parsed; these tests go around that wall on purpose, building plans and
//! shutdowns with `Duration::MAX`-sized values directly, to check the
//! second one: no model computes a deadline that overflows. Before, a
//! `timeout=18446744073709551615s` made every probe `panicked` on the async
//! models, and a `--grace` like it made the threads and rayon models exit
//! 101 while the async ones reported `panicked`: the models disagreed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pulse_core::model::Collect;
use pulse_core::plan::{Options, Plan};
use pulse_core::result::ErrorKind;
use pulse_core::shutdown::Shutdown;
use pulse_core::target::parse_targets;
use pulse_fixtures::{Blackhole, HttpFixture};

use super::suite::RunFn;

/// A probe timeout of `u64::MAX` seconds (`--timeout` and `timeout=`
/// without their cap): the probes run to their natural end.
pub fn a_huge_timeout_is_a_deadline_that_never_comes(model: RunFn) {
    let http = HttpFixture::start();
    let text = format!("{}\ntcp://{}\n", http.url("/ok"), http.addr());
    let mut targets = parse_targets("limits", text.as_bytes()).expect("valid targets");
    // `timeout=` as a target option, past the parser's cap.
    targets[1].timeout = Some(Duration::from_secs(u64::MAX));
    let options = Options {
        workers: 2,
        timeout: Duration::MAX,
        ..Options::default()
    };
    let plan = Arc::new(Plan::new("limits", targets, options, &mut |_| unreachable!()).unwrap());
    let mut sink = Collect::new(plan.len());
    let report = model(plan, Shutdown::new(Duration::MAX), &mut sink).expect("sets up");
    let results = sink.into_ordered();
    for r in &results {
        assert!(r.success, "{}: {:?}", r.target, r.error);
    }
    assert_eq!(report.summary.up, 2);
}

/// A grace period of `Duration::MAX` (`--grace` without its cap), with a
/// shutdown mid-probe: the drain deadline saturates, so the in-flight probe
/// ends at its own deadline, a timeout, and nothing panics.
pub fn a_huge_grace_period_saturates(model: RunFn) {
    let hole = Blackhole::start();
    let http = HttpFixture::start();
    let text = format!(
        "tcp://{} timeout=400ms\n{}\n{}\n",
        hole.addr(),
        http.url("/delay/300"),
        http.url("/ok?late")
    );
    let targets = parse_targets("limits", text.as_bytes()).expect("valid targets");
    let options = Options {
        workers: 2,
        timeout: Duration::from_secs(5),
        ..Options::default()
    };
    let plan = Arc::new(Plan::new("limits", targets, options, &mut |_| unreachable!()).unwrap());
    let shutdown = Shutdown::new(Duration::MAX);
    let trigger = shutdown.clone();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(150));
        trigger.trigger(Instant::now());
    });
    let mut sink = Collect::new(plan.len());
    let started = Instant::now();
    model(plan, shutdown, &mut sink).expect("sets up");
    stopper.join().unwrap();
    let took = started.elapsed();
    let results = sink.into_ordered();
    let kinds: Vec<_> = results
        .iter()
        .map(|r| r.error.as_ref().map(|e| e.kind))
        .collect();
    assert_eq!(
        kinds,
        [Some(ErrorKind::Timeout), None, Some(ErrorKind::Cancelled)],
        "in flight: the blackhole times out at 400 ms and the 300 ms delay \
         finishes; the third never started: {results:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
}
