//! Cancellation and failure cost on the `fail-heavy` farm (half of 2,000
//! hosts blackholed): how fast each model stops on SIGINT with 1,000 probes
//! in flight and whether every target is still accounted for; and what a
//! scan of mostly-failing hosts costs against its ideal.

use std::time::Duration;

use pulse_bench::chart::{Bars, Panel};
use pulse_bench::report::Table;
use pulse_fixtures::farm::{Scenario, check};

use super::{Ctx, Section, f0, f2, models, pick};

/// Probes in flight when the signal comes.
const IN_FLIGHT: usize = 1000;

pub fn run(ctx: &mut Ctx) -> Section {
    let mut s = Section::new("Cancellation and failure cost (fail-heavy)");
    let Some(scenario) = Scenario::builtin("fail-heavy") else {
        ctx.skip("cancellation: the fail-heavy scenario is not built in".into());
        return s;
    };
    let scenario = scenario.scaled(pick(1.0, 0.05));
    let farm = match ctx.farm(&scenario) {
        Ok(f) => f,
        Err(e) => {
            ctx.skip(format!(
                "cancellation and failure cost: the farm cannot start: {e}"
            ));
            return s;
        }
    };
    let Ok(file) = ctx.file("fail-heavy.txt", farm.targets()) else {
        return s;
    };
    let targets = farm.hosts();
    let workers = IN_FLIGHT.min(targets);

    s.doc.heading(3, "SIGINT with 1,000 probes in flight");
    s.doc.para(&format!(
        "Each model scans the {targets} fail-heavy targets with `--workers {workers} --timeout 5s` (so the \
         blackholed half hangs for 5 s) and gets SIGINT 1 s in, when every worker is waiting. With \
         `--grace 0` the in-flight probes are cut at once: the figure is how fast the model reaches a \
         probe that is blocked or parked. With the default `--grace 2s` they may go on until their own \
         deadline or the grace period ends, whichever is first. Accounted means the JSON still holds one \
         result per target (exit 130)."
    ));
    let mut rows = Vec::new();
    for grace in ["0", "2s"] {
        for model in models() {
            let run = ctx.scan(model, &file, workers, Duration::from_secs(5), |spec| {
                spec.extra = vec!["--grace".into(), grace.into()];
                spec.interrupt_after = Some(Duration::from_secs(1));
            });
            let Ok(run) = run else { continue };
            let exit_ms = run
                .measured
                .exit_after_interrupt
                .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0);
            let (results, cancelled) = run
                .report
                .as_ref()
                .map_or((0, 0), |r| (r.results.len(), r.summary.cancelled));
            rows.push((
                grace,
                model,
                exit_ms,
                results,
                cancelled,
                run.measured.usage.exit_code,
                run.failure.clone(),
            ));
        }
    }
    s.chart(
        "cancel",
        "time from SIGINT to exit, per model",
        Bars {
            title: format!("SIGINT to exit with {workers} in flight (fail-heavy)"),
            panels: ["0", "2s"]
                .iter()
                .map(|g| Panel {
                    title: format!("--grace {g}: ms from SIGINT to exit (lower is better)"),
                    unit: " ms".into(),
                    rows: rows
                        .iter()
                        .filter(|r| r.0 == *g)
                        .map(|r| (r.1.to_string(), r.2))
                        .collect(),
                })
                .collect(),
        }
        .svg(),
    );
    let zero: Vec<String> = rows
        .iter()
        .filter(|r| r.0 == "0")
        .map(|r| format!("{} {:.0} ms", r.1, r.2))
        .collect();
    let all_accounted = rows.iter().all(|r| r.3 == targets && r.5 == Some(130));
    s.doc.finding(
        &format!(
            "With --grace 0: {}. {}",
            zero.join(", "),
            if all_accounted { "Every run accounted for every target and exited 130." } else { "Not every run accounted for every target: see the table." }
        ),
        "The async models drop every in-flight future at once: a dropped future closes its socket and \
         is gone, so the exit waits only for the runtime to shut down. The blocking models cannot drop a \
         thread: their watchdog shuts every registered socket down, which makes each blocked connect or \
         read return, and then joins every worker thread, so their figure grows with the number of \
         threads to wake and join. With --grace 2s the blackholed probes run on until the grace period \
         ends (their 5 s deadline is later), so every model exits about 2 s after the signal.",
    );
    let cut = |m: &str| rows.iter().find(|r| r.0 == "0" && r.1 == m).map(|r| r.2);
    if let (Some(r), Some(th)) = (cut("rayon"), cut("threads"))
        && r > 3.0 * th
    {
        s.doc.finding(
            &format!(
                "rayon takes {:.0}x as long as threads to stop ({r:.0} vs {th:.0} ms), with the same watchdog.",
                r / th.max(1e-9)
            ),
            &format!(
                "Both cut their probes the same way. What differs comes after: the {workers} rayon pool \
                 threads whose probes were cut all go idle together, and each one's idle loop scans every \
                 other thread's deque, pinning crossbeam's epoch for every look, before the pool can be \
                 joined: the cost the rayon crate doc describes, paid at shutdown."
            ),
        );
    }
    let mut t = Table::new(&[
        "--grace",
        "model",
        "SIGINT to exit (ms)#",
        "results#",
        "cancelled#",
        "exit code#",
        "note",
    ]);
    for r in &rows {
        t.row(vec![
            r.0.into(),
            r.1.into(),
            f0(r.2),
            format!("{} of {targets}", r.3),
            r.4.to_string(),
            r.5.map_or_else(|| "signal".into(), |c| c.to_string()),
            r.6.clone().unwrap_or_default(),
        ]);
    }
    s.table("cancel", t);

    // Failure cost: the scenario as written.
    s.doc.heading(
        3,
        "Failure cost: a scan of mostly failing hosts against its ideal",
    );
    let timeout = scenario.timeout().unwrap_or(Duration::from_secs(1));
    let hung = farm
        .expectations()
        .iter()
        .filter(|e| e.expect == Some(pulse_core::result::ErrorKind::Timeout))
        .count();
    let ideal = (hung as f64 / scenario.workers as f64).ceil() * timeout.as_secs_f64();
    s.doc.para(&format!(
        "The fail-heavy scenario as written: {targets} targets, `--workers {}`, `--timeout {}`. {hung} of \
         them never answer, so at best they occupy every worker for ceil({hung} / {}) × {} = {ideal:.1} s; \
         the rest answer within 50 ms. Correct is the share of results matching the farm's expectations.",
        scenario.workers,
        scenario.timeout.trim(),
        scenario.workers,
        scenario.timeout.trim()
    ));
    let mut t = Table::new(&[
        "model",
        "scan (s)#",
        "vs ideal#",
        "CPU (s)#",
        "peak RSS (MiB)#",
        "correct#",
    ]);
    let mut bars = Vec::new();
    for model in models() {
        let Ok(run) = ctx.scan(model, &file, scenario.workers, timeout, |_| {}) else {
            continue;
        };
        let Some(rep) = &run.report else { continue };
        let secs = rep.pulse.duration_ms / 1000.0;
        let c = check(farm.expectations(), &rep.results);
        bars.push((model.to_string(), secs / ideal.max(1e-9)));
        t.row(vec![
            model.into(),
            f2(secs),
            f2(secs / ideal.max(1e-9)),
            f2(run.measured.usage.cpu_s()),
            format!("{:.1}", run.measured.usage.peak_rss_mib),
            format!("{:.1}%", c.percent()),
        ]);
    }
    drop(farm);
    let spread: Vec<String> = bars
        .iter()
        .map(|b| format!("{} {:.2}x", b.0, b.1))
        .collect();
    s.doc.finding(
        &format!("Scan time over its ideal: {}.", spread.join(", ")),
        "Waiting on a timeout costs every model the same: nothing. A hung probe is a parked future or a \
         sleeping thread until its deadline fires. The part above 1.00x is the answering half, the tail \
         of the last round, and the start-up and wind-down of the workers.",
    );
    s.table("failure-cost", t);
    s
}
