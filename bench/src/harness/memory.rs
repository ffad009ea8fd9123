//! Memory per in-flight probe: resident memory above the model's own
//! baseline, divided by the probes in flight, for probes that sit waiting
//! for their whole timeout: a TCP connect to a blackhole, an HTTP request a
//! server never answers, a TLS handshake a server never continues.

use std::time::Duration;

use pulse_bench::chart::Lines;
use pulse_bench::report::Table;
use pulse_bench::setup;

use super::{Ctx, Section, brief, f1, models, per_model, pick};

/// The probe kinds: (label, protocol, farm behaviour that keeps it waiting).
const KINDS: [(&str, &str, &str); 3] = [
    ("tcp (connect to a blackhole)", "tcp", "blackhole"),
    ("http (request sent, no answer)", "http", "stall"),
    ("https (mid-handshake)", "https", "slow_tls"),
];

/// Probes in flight in a baseline run: a few, so that the baseline holds
/// the same plan and results as the measured run and almost nothing else.
const BASE_WORKERS: usize = 10;

/// One measurement: KiB per probe, or why there is none.
struct Point {
    /// Probe kind's protocol.
    kind: &'static str,
    /// The model.
    model: &'static str,
    /// Probes in flight.
    in_flight: usize,
    /// Peak RSS, MiB.
    peak_mib: f64,
    /// The same model scanning the same number of targets with nothing
    /// waiting (refused hosts, [`BASE_WORKERS`] in flight), MiB.
    base_mib: f64,
    /// Why it did not run.
    failure: Option<String>,
}

impl Point {
    /// KiB of resident memory per in-flight probe.
    fn kib(&self) -> Option<f64> {
        self.failure
            .is_none()
            .then(|| (self.peak_mib - self.base_mib) * 1024.0 / self.in_flight as f64)
    }
}

pub fn run(ctx: &mut Ctx) -> Section {
    let mut s = Section::new("Memory per in-flight probe");
    s.doc.para(&format!(
        "Each model scans N targets with `--workers N`, every one of which waits out its 2 s timeout, so \
         all N are in flight at the peak. Memory per probe is the scan's peak RSS (`VmHWM`) less the \
         same model's peak RSS scanning N targets of the same kind on hosts that refuse the connection, \
         with {BASE_WORKERS} in flight, divided by N: both runs hold the same plan and the same N \
         results, so what is left is what a waiting probe holds. The farm hosts are cycled (1,000 per \
         kind), one connection per target."
    ));
    let sizes = pick(vec![1000, 5000, 10_000], vec![20, 50]);
    let timeout = Duration::from_secs(2);
    let mut points = Vec::new();
    for (label, protocol, behaviour) in KINDS {
        let farm = match setup::one_group("memory", protocol, behaviour, pick(1000, 10), 0, "2s")
            .and_then(|sc| ctx.farm(&sc))
        {
            Ok(f) => f,
            Err(e) => {
                ctx.skip(format!("memory for {label}: the farm cannot start: {e}"));
                continue;
            }
        };
        let refusing =
            match setup::one_group("memory-base", protocol, "refused", pick(1000, 10), 0, "2s")
                .and_then(|sc| ctx.farm(&sc))
            {
                Ok(f) => f,
                Err(e) => {
                    ctx.skip(format!(
                        "memory for {label}: the baseline farm cannot start: {e}"
                    ));
                    continue;
                }
            };
        for &n in &sizes {
            if !ctx.fits(&format!("memory for {label}"), n) {
                continue;
            }
            let (text, _) = setup::cycle(&farm, n);
            let (base_text, _) = setup::cycle(&refusing, n);
            let (Ok(file), Ok(base_file)) = (
                ctx.file(&format!("mem-{protocol}-{n}.txt"), &text),
                ctx.file(&format!("mem-{protocol}-{n}-base.txt"), &base_text),
            ) else {
                continue;
            };
            for model in models() {
                let base = ctx
                    .scan(model, &base_file, BASE_WORKERS, timeout, |_| {})
                    .ok()
                    .filter(|r| r.report.is_some())
                    .map(|r| r.measured.usage.peak_rss_mib);
                let run = ctx.scan(model, &file, n, timeout, |_| {});
                if protocol == "https" {
                    // The farm's slow-TLS hosts hold each connection until
                    // their 2.5 s wait ends, past the scan: let them close
                    // before the next scan opens as many again.
                    std::thread::sleep(Duration::from_secs(1));
                }
                let (peak, failure) = match (&run, base) {
                    (Ok(r), Some(_)) if r.report.is_some() => (r.measured.usage.peak_rss_mib, None),
                    (Ok(r), _) => (
                        0.0,
                        Some(r.failure.clone().unwrap_or_else(|| "no baseline".into())),
                    ),
                    (Err(e), _) => (0.0, Some(e.clone())),
                };
                points.push(Point {
                    kind: protocol,
                    model,
                    in_flight: n,
                    peak_mib: peak,
                    base_mib: base.unwrap_or(0.0),
                    failure,
                });
            }
        }
    }
    for (label, protocol, _) in KINDS {
        let mine: Vec<&Point> = points.iter().filter(|p| p.kind == protocol).collect();
        if mine.is_empty() {
            continue;
        }
        s.chart(
            &format!("memory-{protocol}"),
            &format!("KiB per in-flight probe, {label}"),
            Lines {
                title: format!("Resident KiB per in-flight probe: {label}"),
                x_label: "probes in flight, log scale".into(),
                y_label: "KiB per probe".into(),
                log_x: true,
                log_y: false,
                series: per_model(&mine, |p| p.model, |p| Some((p.in_flight as f64, p.kib()?))),
            }
            .svg(),
        );
    }
    findings(&mut s, &points);
    ctx.tcp_kib = points
        .iter()
        .filter(|p| p.kind == "tcp")
        .filter_map(|p| Some((p.model.to_string(), p.in_flight, p.kib()?)))
        .collect();
    let mut t = Table::new(&[
        "kind",
        "model",
        "in flight#",
        "peak RSS (MiB)#",
        "baseline (MiB)#",
        "KiB per probe#",
        "note",
    ]);
    for p in &points {
        t.row(vec![
            p.kind.into(),
            p.model.into(),
            p.in_flight.to_string(),
            f1(p.peak_mib),
            f1(p.base_mib),
            p.kib().map_or_else(String::new, f1),
            p.failure.as_deref().map(brief).unwrap_or_default(),
        ]);
    }
    s.table("memory", t);
    s
}

fn findings(s: &mut Section, points: &[Point]) {
    let kib = |kind: &str, model: &str, n: usize| {
        points
            .iter()
            .find(|p| p.kind == kind && p.model == model && p.in_flight == n)
            .and_then(Point::kib)
    };
    let n = points.iter().map(|p| p.in_flight).max().unwrap_or(0);
    for (label, kind, _) in KINDS {
        let row: Vec<String> = models()
            .iter()
            .filter_map(|m| kib(kind, m, n).map(|v| format!("{m} {v:.1}")))
            .collect();
        if row.is_empty() {
            continue;
        }
        s.doc.finding(
            &format!("{label}, {n} in flight, KiB per probe: {}.", row.join(", ")),
            "",
        );
    }
    if let (Some(t), Some(th)) = (kib("tcp", "tokio", n), kib("tcp", "threads", n)) {
        s.doc.finding(
            &format!("A waiting probe costs threads {:.1}x what it costs tokio ({th:.1} vs {t:.1} KiB).", th / t.max(0.01)),
            "No probe holds a read buffer while it waits: each OS thread has one, lent for the length of a \
             read (`pulse_core::readbuf`). So an async model's waiting probe is its task and little else: \
             the worker's future and the probe's (a few hundred bytes each; each model's `timeout.rs` \
             says what was done to keep them small), the core's session (about 300 bytes), the socket's \
             registration with the reactor and the deadline's timer; the socket's kernel side is not in \
             RSS at all. A blocked thread is all of that plus its touched stack pages, its 16 KiB read \
             buffer and its share of malloc's per-thread state (its kernel task is not in RSS either), \
             so the difference between the rows is the thread, not the probe.",
        );
    }
    if let (Some(h), Some(t)) = (kib("https", "tokio", n), kib("tcp", "tokio", n)) {
        s.doc.finding(
            &format!("Mid-handshake TLS adds {:.1} KiB per probe over a bare connect (tokio).", h - t),
            "That is rustls's client state (the handshake transcript, key shares, the record buffers) \
             held by the core's session, the same in every model: it is the probe, not the model, and \
             it shows up equally in each row.",
        );
    }
}
