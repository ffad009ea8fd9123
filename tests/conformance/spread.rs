//! The spread contract (`pulse serve`): with `Options::spread`, no probe
//! starts before its due time, and a shutdown cuts the wait short, leaving
//! the probes not yet due cancelled.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pulse_core::model::Sink;
use pulse_core::plan::{Options, Plan};
use pulse_core::result::{ErrorKind, ProbeResult};
use pulse_core::shutdown::Shutdown;
use pulse_core::target::parse_targets;
use pulse_fixtures::HttpFixture;

use super::suite::RunFn;

/// Records when each result arrived.
struct Timed(Vec<Option<(Instant, ProbeResult)>>);

impl Sink for Timed {
    fn accept(&mut self, index: usize, result: ProbeResult) {
        self.0[index] = Some((Instant::now(), result));
    }
}

fn spread_plan(http: &HttpFixture, n: usize, spread: Duration) -> Arc<Plan> {
    let text: String = (0..n)
        .map(|i| format!("{}\n", http.url(&format!("/body/{i}"))))
        .collect();
    let targets = parse_targets("spread", text.as_bytes()).unwrap();
    let options = Options {
        workers: n,
        timeout: Duration::from_secs(5),
        spread,
        ..Options::default()
    };
    Arc::new(Plan::new("spread", targets, options, &mut |_| unreachable!()).unwrap())
}

pub fn starts_are_spread(model: RunFn) {
    let http = HttpFixture::start();
    let (n, spread) = (8, Duration::from_millis(800));
    let plan = spread_plan(&http, n, spread);
    let mut sink = Timed(vec![None; n]);
    let t0 = Instant::now();
    model(plan.clone(), Shutdown::new(Duration::ZERO), &mut sink).unwrap();
    for (i, slot) in sink.0.iter().enumerate() {
        let (at, r) = slot.as_ref().unwrap();
        assert!(r.success, "{r:?}");
        // The model's own start is after t0, so its due times are later
        // than these: a result before this bound means a probe started early.
        let due = t0 + spread.mul_f64(i as f64 / n as f64);
        assert!(
            *at >= due,
            "target {i} finished {:?} before it was due",
            due - *at
        );
    }
    // With a worker per target, nobody waits for a worker; queue wait is
    // measured from the due time, not from the scan's start.
    let last = sink.0[n - 1].as_ref().unwrap();
    assert!(
        last.1.queue_wait_ms < spread.as_millis() as f64 / 2.0,
        "queue wait counts from the due time: {}",
        last.1.queue_wait_ms
    );
}

pub fn shutdown_cuts_the_spread_short(model: RunFn) {
    let http = HttpFixture::start();
    let n = 10;
    // Target i is due at i * 6 s: only the first is due before the trigger.
    let plan = spread_plan(&http, n, Duration::from_secs(60));
    let shutdown = Shutdown::new(Duration::ZERO);
    let trigger = shutdown.clone();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        trigger.trigger(Instant::now());
    });
    let mut sink = Timed(vec![None; n]);
    let t0 = Instant::now();
    let report = model(plan, shutdown, &mut sink).unwrap();
    let took = t0.elapsed();
    stopper.join().unwrap();
    assert!(
        took < Duration::from_secs(20),
        "waited out the spread: {took:?}"
    );
    assert!(report.summary.interrupted);
    let results: Vec<&ProbeResult> = sink.0.iter().map(|s| &s.as_ref().unwrap().1).collect();
    assert!(
        results[0].success,
        "the first target was due at once: {:?}",
        results[0]
    );
    for r in &results[1..] {
        assert_eq!(
            r.error.as_ref().map(|e| e.kind),
            Some(ErrorKind::Cancelled),
            "{r:?}"
        );
    }
    assert_eq!(
        http.stats().accepted,
        1,
        "no probe started after the trigger"
    );
}
