//! The CPU-bound regime: HTTPS with a full TLS handshake per probe against
//! hosts that answer at once, so nothing waits and the cores decide. Two
//! labelled variants pin a model to one core (`taskset -c 0`), which shows
//! how much of the figure is parallelism.

use std::time::Duration;

use pulse_bench::chart::{Bars, Panel};
use pulse_bench::machine::command_output;
use pulse_bench::report::Table;
use pulse_bench::setup;

use super::{Ctx, Section, f0, models, pick};

/// Probes in flight: enough to keep two cores busy with handshakes.
const WORKERS: usize = 100;

pub fn run(ctx: &mut Ctx) -> Section {
    let mut s = Section::new("CPU-bound: HTTPS with full handshakes at zero latency");
    s.doc.para(&format!(
        "Every probe is a new connection and a full TLS 1.3 handshake (ECDHE, a signature check skipped by \
         `insecure` but the key exchange done) against farm hosts that answer at once, `--workers \
         {WORKERS}`. The farm runs the server half of every handshake on its two threads in the harness \
         process, on the same two cores: its CPU is shown per run. The `1 core` rows run the same scan \
         under `taskset -c 0`."
    ));
    let farm = match setup::one_group("cpu", "https", "ok", pick(100, 10), 0, "2s")
        .and_then(|sc| ctx.farm(&sc))
    {
        Ok(f) => f,
        Err(e) => {
            ctx.skip(format!("the CPU-bound regime: the farm cannot start: {e}"));
            return s;
        }
    };
    let n = pick(4000, 100);
    let (text, _) = setup::cycle(&farm, n);
    let Ok(file) = ctx.file("cpu.txt", &text) else {
        return s;
    };
    let taskset = command_output("taskset", &["--version"]).is_some();
    if !taskset {
        ctx.skip("the CPU-bound regime's one-core rows: `taskset` (util-linux) not found".into());
    }
    let mut variants: Vec<(String, &str, bool)> = models()
        .iter()
        .map(|m| ((*m).to_string(), *m, false))
        .collect();
    if taskset {
        variants.push(("tokio, 1 core".into(), "tokio", true));
        variants.push(("threads, 1 core".into(), "threads", true));
    }
    let mut rows = Vec::new();
    for (label, model, pinned) in variants {
        let before = farm.cpu_time();
        let run = ctx.scan(model, &file, WORKERS, Duration::from_secs(2), |spec| {
            if pinned {
                spec.wrapper = vec!["taskset".into(), "-c".into(), "0".into()];
            }
        });
        let farm_cpu = farm.cpu_time().saturating_sub(before).as_secs_f64();
        let Ok(run) = run else { continue };
        let Some(rep) = &run.report else { continue };
        let probes = rep.results.len() as f64;
        let up = rep.summary.up as f64;
        let rate = probes / (rep.pulse.duration_ms / 1000.0).max(1e-9);
        rows.push((
            label,
            rate,
            run.measured.usage.cpu_s() * 1e6 / probes,
            farm_cpu * 1e6 / probes,
            up / probes,
            rep.pulse.runtime_threads,
        ));
    }
    drop(farm);
    s.chart(
        "cpu-https",
        "HTTPS probes/s and CPU per probe, per model",
        Bars {
            title: format!("HTTPS, full handshakes, {WORKERS} in flight, zero latency"),
            panels: vec![
                Panel {
                    title: "probes/s (higher is better)".into(),
                    unit: String::new(),
                    rows: rows.iter().map(|r| (r.0.clone(), r.1)).collect(),
                },
                Panel {
                    title: "client CPU per probe, µs (lower is better)".into(),
                    unit: " µs".into(),
                    rows: rows.iter().map(|r| (r.0.clone(), r.2)).collect(),
                },
            ],
        }
        .svg(),
    );
    let get = |l: &str| rows.iter().find(|r| r.0 == l);
    if let (Some(t), Some(t1)) = (get("tokio"), get("tokio, 1 core")) {
        s.doc.finding(
            &format!("On one core tokio does {:.0}% of its two-core rate ({:.0} vs {:.0} probes/s).", t1.1 / t.1 * 100.0, t1.1, t.1),
            "Handshakes are computation (key exchange, record encryption) in the client and in the farm; \
             with nothing to wait for, the rate follows the cores the client gets, and on a 2-core machine \
             shared with the farm the client never gets two whole ones.",
        );
    }
    let rates: Vec<String> = rows
        .iter()
        .filter(|r| !r.0.contains("core"))
        .map(|r| format!("{} {:.0}", r.0, r.1))
        .collect();
    let cpus: Vec<f64> = rows
        .iter()
        .filter(|r| !r.0.contains("core"))
        .map(|r| r.2)
        .collect();
    if let (Some(lo), Some(hi)) = (
        cpus.iter().copied().reduce(f64::min),
        cpus.iter().copied().reduce(f64::max),
    ) {
        s.doc.finding(
            &format!("probes/s: {}; client CPU per probe {lo:.0} to {hi:.0} µs.", rates.join(", ")),
            "The TLS work is the core's (rustls, the same code in every model), so it costs each model the \
             same; what separates the models is the scheduling around a per-probe cost the handshake \
             dominates, and how much of the two cores the farm's half of the handshakes leaves them (the \
             farm CPU column): two cores run two handshakes at a time however the work is handed out.",
        );
    }
    let mut t = Table::new(&[
        "variant",
        "probes/s#",
        "client CPU µs/probe#",
        "farm CPU µs/probe#",
        "up#",
        "model threads#",
    ]);
    for r in &rows {
        t.row(vec![
            r.0.clone(),
            f0(r.1),
            f0(r.2),
            f0(r.3),
            format!("{:.0}%", r.4 * 100.0),
            r.5.to_string(),
        ]);
    }
    s.table("cpu-https", t);
    s
}
