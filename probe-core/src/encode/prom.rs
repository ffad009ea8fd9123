//! Prometheus text exposition format 0.0.4, written by hand.
//!
//! Why by hand and why 0.0.4: the output is one scan's snapshot, a few
//! families written once, and the classic text format is what every
//! Prometheus tool reads. OpenMetrics would add `# EOF` and counter rules that
//! the promtool in CI (Debian's 2.42) lints differently; the output must pass
//! `promtool check metrics` with no warning, and a test runs it when promtool
//! is installed.
//!
//! # Names
//!
//! Per-target families use blackbox_exporter's names and meanings
//! (`probe_success`, `probe_duration_seconds`, `probe_http_*`, `probe_icmp_*`,
//! `probe_dns_lookup_time_seconds`), so existing dashboards and alerts work,
//! labelled `target` (the target as written) and `kind` (`http`, `tcp`,
//! `icmp`). pulse's own figures are `pulse_*`.
//!
//! Every family is a gauge. This is a snapshot of one scan, not a process
//! that counts over its life: "probes by result" is written as the gauge
//! `pulse_scan_probes{result}` rather than a counter `pulse_probes_total`,
//! because a counter that restarts from zero on every scan would make
//! `rate()` lie.
//!
//! # Rules the writer keeps
//!
//! - Every family has `# HELP` and `# TYPE` once, and its samples are
//!   contiguous (families are built whole, then written in a fixed order).
//!   A family with no samples is left out entirely.
//! - Label values are escaped (`\\`, `\"`, `\n`).
//! - No series twice: when a targets file lists the same (target, kind) more
//!   than once (say, with different `expect=`), every series of those targets
//!   gets a `line` label with the targets-file line; other targets do not, so
//!   their series stay stable when a duplicate is added elsewhere.
//! - Units in names (`_seconds`, `_bytes`); seconds come from the results'
//!   `*_ms` fields divided by 1000.

use std::collections::HashMap;
use std::io::{self, Write};

use crate::result::{ErrorKind, Kind, ProbeResult, Report};

/// Write the report as Prometheus text exposition format 0.0.4.
pub fn write(w: &mut dyn Write, report: &Report) -> io::Result<()> {
    w.write_all(render(report).as_bytes())
}

/// The phases `probe_http_duration_seconds` always has, as blackbox_exporter
/// writes them: a phase the probe never reached is 0, so every http target
/// has the same five series on every scan and `sum by (phase)` stays simple.
const HTTP_PHASES: [&str; 5] = ["resolve", "connect", "tls", "processing", "transfer"];

/// The phases `probe_icmp_duration_seconds` always has (0 when not reached).
/// blackbox's `setup` phase has no counterpart in pulse's results.
const ICMP_PHASES: [&str; 2] = ["resolve", "rtt"];

/// The whole exposition as a string.
fn render(report: &Report) -> String {
    let mut out = String::new();
    write_targets(&mut out, &report.results, TargetLabels::Labelled);

    let s = &report.summary;
    let none = Labels::default();

    let mut f = Family::new(
        "pulse_scan_duration_seconds",
        "Wall time of the whole scan, in seconds.",
    );
    f.sample(&none, seconds(report.pulse.duration_ms));
    f.write_to(&mut out);

    let mut f = Family::new("pulse_scan_targets", "Targets in the scan.");
    f.sample(&none, s.targets as f64);
    f.write_to(&mut out);

    let mut f = Family::new(
        "pulse_scan_probes",
        "Probes in the scan by result: up, down (failed) or cancelled (by shutdown).",
    );
    for (result, n) in [("up", s.up), ("down", s.down), ("cancelled", s.cancelled)] {
        f.sample(&none.with("result", result), n as f64);
    }
    f.write_to(&mut out);

    let mut f = Family::new(
        "pulse_scan_errors",
        "Failed probes in the scan by error kind (cancelled included); only kinds that occurred.",
    );
    for kind in ErrorKind::ALL {
        if let Some(&n) = s.errors.get(&kind) {
            f.sample(&none.with("error", kind.as_str()), n as f64);
        }
    }
    f.write_to(&mut out);

    let mut f = Family::new(
        "pulse_scan_interrupted",
        "1 when the scan was interrupted by a signal, else 0.",
    );
    f.sample(&none, bool_value(s.interrupted));
    f.write_to(&mut out);

    let mut f = Family::new(
        "pulse_build_info",
        "pulse version, the concurrency model and the stack (core or native) that ran the scan; always 1.",
    );
    let p = &report.pulse;
    let info = none
        .with("version", &p.version)
        .with("runtime", &p.runtime)
        .with("stack", &p.stack)
        .with("workers", &p.workers.to_string())
        .with("runtime_threads", &p.runtime_threads.to_string());
    f.sample(&info, 1.0);
    f.write_to(&mut out);

    out
}

/// Whether per-target series carry the `target` and `kind` labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetLabels {
    /// `target`, `kind` (and `line` for duplicates): a scan or an exporter
    /// that reports many targets in one exposition.
    Labelled,
    /// No labels: one target per exposition, as blackbox_exporter's
    /// `/probe` answers (Prometheus adds the target as `instance`).
    Bare,
}

/// Append the per-target families (`probe_*`, `pulse_probe_error`,
/// `pulse_probe_queue_wait_seconds`) for `results` to `out`.
pub fn write_targets(out: &mut String, results: &[ProbeResult], labels: TargetLabels) {
    let labels = match labels {
        TargetLabels::Labelled => target_labels(results),
        TargetLabels::Bare => vec![Labels::default(); results.len()],
    };
    let per_target = || results.iter().zip(&labels);
    let http = || per_target().filter(|(r, _)| r.kind == Kind::Http);
    let icmp = || per_target().filter(|(r, _)| r.kind == Kind::Icmp);

    let mut f = Family::new(
        "probe_success",
        "Whether the probe succeeded (1) or not (0).",
    );
    for (r, l) in per_target() {
        f.sample(l, bool_value(r.success));
    }
    f.write_to(out);

    let mut f = Family::new(
        "probe_duration_seconds",
        "How long the probe took, in seconds, not counting queue wait.",
    );
    for (r, l) in per_target() {
        f.sample(l, seconds(r.duration_ms));
    }
    f.write_to(out);

    let mut f = Family::new(
        "probe_dns_lookup_time_seconds",
        "How long name resolution took, in seconds (0 for an IP literal).",
    );
    for (r, l) in per_target() {
        if let Some(ms) = r.phases.resolve {
            f.sample(l, seconds(ms));
        }
    }
    f.write_to(out);

    let mut f = Family::new(
        "probe_http_status_code",
        "Status code of the final HTTP response, 0 when no response arrived.",
    );
    for (r, l) in http() {
        let code = r.http.as_ref().and_then(|h| h.status_code).unwrap_or(0);
        f.sample(l, f64::from(code));
    }
    f.write_to(out);

    let mut f = Family::new(
        "probe_http_duration_seconds",
        "Time spent in each phase of the HTTP request, in seconds (0 for a phase not reached).",
    );
    for (r, l) in http() {
        for phase in HTTP_PHASES {
            let ms = phase_ms(r, phase).unwrap_or(0.0);
            f.sample(&l.with("phase", phase), seconds(ms));
        }
    }
    f.write_to(out);

    let mut f = Family::new("probe_http_redirects", "Number of redirects followed.");
    for (r, l) in http() {
        let n = r.http.as_ref().map_or(0, |h| h.redirects);
        f.sample(l, f64::from(n));
    }
    f.write_to(out);

    let mut f = Family::new(
        "probe_http_uncompressed_body_length",
        "Length of the response body read, in bytes (never more than the body cap).",
    );
    for (r, l) in http() {
        // Body sizes are capped (1 MiB by default), far below 2^53: exact in an f64.
        let n = r.http.as_ref().map_or(0, |h| h.body_bytes);
        f.sample(l, n as f64);
    }
    f.write_to(out);

    let mut f = Family::new(
        "probe_http_version",
        "HTTP version of the final response, e.g. 1.1, 0 when no response arrived.",
    );
    for (r, l) in http() {
        let v = r.http.as_ref().and_then(|h| h.version.as_deref());
        f.sample(l, http_version(v));
    }
    f.write_to(out);

    // TLS: blackbox_exporter's names and meanings (see `crate::certs`).
    let mut f = Family::new(
        "probe_http_ssl",
        "Whether the final HTTP request used TLS (1) or not (0).",
    );
    for (r, l) in http() {
        let tls = r.http.as_ref().is_some_and(|h| h.tls_version.is_some());
        f.sample(l, bool_value(tls));
    }
    f.write_to(out);

    let cert = || http().filter_map(|(r, l)| Some((r.http.as_ref()?.certificate.as_ref()?, l)));
    let mut f = Family::new(
        "probe_ssl_earliest_cert_expiry",
        "Earliest expiry among the certificates the server sent (leaf and chain as sent, verified or not), Unix seconds.",
    );
    for (c, l) in cert() {
        f.sample(l, c.earliest_expiry_unix as f64);
    }
    f.write_to(out);

    let mut f = Family::new(
        "probe_ssl_last_chain_expiry_timestamp_seconds",
        "Earliest expiry along the verified certificate chain, Unix seconds; absent when the chain was not verified.",
    );
    for (c, l) in cert() {
        if let Some(t) = c.chain_expiry_unix {
            f.sample(l, t as f64);
        }
    }
    f.write_to(out);

    let mut f = Family::new(
        "probe_tls_version_info",
        "The TLS version the final connection negotiated, as a label; the value is always 1.",
    );
    for (r, l) in http() {
        if let Some(v) = r.http.as_ref().and_then(|h| h.tls_version.as_deref()) {
            f.sample(&l.with("version", &tls_version_label(v)), 1.0);
        }
    }
    f.write_to(out);

    let mut f = Family::new(
        "probe_icmp_duration_seconds",
        "Time spent in each phase of the ICMP probe, in seconds (0 for a phase not reached).",
    );
    for (r, l) in icmp() {
        for phase in ICMP_PHASES {
            let ms = phase_ms(r, phase).unwrap_or(0.0);
            f.sample(&l.with("phase", phase), seconds(ms));
        }
    }
    f.write_to(out);

    let mut f = Family::new(
        "probe_icmp_reply_hop_limit",
        "IP TTL (hop limit) of the ICMP echo reply.",
    );
    for (r, l) in icmp() {
        if let Some(ttl) = r.icmp.as_ref().and_then(|i| i.reply_ttl) {
            f.sample(l, f64::from(ttl));
        }
    }
    f.write_to(out);

    write_icmp_trains(out, &|| Box::new(icmp()));

    // `all_addresses`: one series per address, so an alert can name the
    // address that is down while the name's others answer.
    let mut f = Family::new(
        "pulse_address_up",
        "For an all_addresses target: whether this address passed (1) or not (0).",
    );
    for (r, l) in per_target() {
        for a in &r.addresses {
            f.sample(&l.with("address", &a.address), bool_value(a.success));
        }
    }
    f.write_to(out);

    let mut f = Family::new(
        "pulse_address_duration_seconds",
        "For an all_addresses target: how long this address's probe took, in seconds.",
    );
    for (r, l) in per_target() {
        for a in &r.addresses {
            f.sample(&l.with("address", &a.address), seconds(a.duration_ms));
        }
    }
    f.write_to(out);

    let mut f = Family::new(
        "pulse_probe_error",
        "Why the probe failed: 1 for its error kind; only failed probes have this series.",
    );
    for (r, l) in per_target() {
        if let Some(e) = &r.error {
            f.sample(&l.with("error", e.kind.as_str()), 1.0);
        }
    }
    f.write_to(out);

    let mut f = Family::new(
        "pulse_probe_queue_wait_seconds",
        "Time from when the probe was due (the scan start; under serve, its spread start time) until it started, in seconds (not part of its duration).",
    );
    for (r, l) in per_target() {
        f.sample(l, seconds(r.queue_wait_ms));
    }
    f.write_to(out);
}

/// Upper bounds of `probe_icmp_rtt_seconds`, in seconds: 1, 2.5, 5 per
/// decade from 100 µs (loopback, a LAN) to 2.5 s (a satellite hop, a
/// bloated buffer). Fourteen buckets keep a quantile within a factor of
/// 2.5 anywhere on that range, at fourteen series per target; above 2.5 s
/// only `+Inf` counts, and the `stat="max"` gauge has the value.
pub const ICMP_RTT_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// The echo-train families (`count=` above 1), smokeping's figures:
/// packets sent and received, duplicates, loss, round-trip statistics and
/// a histogram of the round trips. A single echo has none of them, so a
/// count=1 target's series are what they always were. blackbox_exporter
/// has no multi-packet ICMP, so there is no name of its to keep; these
/// follow its `probe_icmp_` prefix.
type Rows<'a> = Box<dyn Iterator<Item = (&'a ProbeResult, &'a Labels)> + 'a>;

fn write_icmp_trains<'a>(out: &mut String, icmp: &dyn Fn() -> Rows<'a>) {
    use crate::result::IcmpPackets;
    let trains = || icmp().filter_map(|(r, l)| Some((r.icmp.as_ref()?.packets.as_ref()?, l)));
    /// A gauge family: name, help, and its value from a train.
    type Gauge = (&'static str, &'static str, fn(&IcmpPackets) -> f64);
    let gauges: [Gauge; 4] = [
        (
            "probe_icmp_packets_sent",
            "Echo requests sent by the probe's train.",
            |p| f64::from(p.sent),
        ),
        (
            "probe_icmp_packets_received",
            "Echo requests of the train that were answered (a duplicated reply counts once).",
            |p| f64::from(p.received),
        ),
        (
            "probe_icmp_duplicate_replies",
            "Replies beyond the first to one echo request of the train.",
            |p| f64::from(p.duplicates),
        ),
        (
            "probe_icmp_packet_loss_ratio",
            "Share of the train's echo requests never answered before the deadline, 0 to 1.",
            |p| p.loss_ratio,
        ),
    ];
    for (name, help, value) in gauges {
        let mut f = Family::new(name, help);
        for (p, l) in trains() {
            f.sample(l, value(p));
        }
        f.write_to(out);
    }

    let mut f = Family::new(
        "probe_icmp_rtt_stat_seconds",
        "Round trips of the train's answered echo requests: min, avg, max and (population) stddev, in seconds; absent when none was answered.",
    );
    for (p, l) in trains() {
        let stats = [
            ("min", p.rtt_min_ms),
            ("avg", p.rtt_avg_ms),
            ("max", p.rtt_max_ms),
            ("stddev", p.rtt_stddev_ms),
        ];
        for (stat, ms) in stats {
            if let Some(ms) = ms {
                f.sample(&l.with("stat", stat), seconds(ms));
            }
        }
    }
    f.write_to(out);

    // One histogram per target of this probe's round trips only: it starts
    // again with every probe (every `pulse serve` round), so read it with
    // histogram_quantile() on the buckets as scraped, not on a rate().
    let mut f = Family::typed(
        "probe_icmp_rtt_seconds",
        "Round trips of the last probe's answered echo requests, in seconds (a new histogram each probe, not cumulative).",
        MetricType::Histogram,
    );
    for (p, l) in trains() {
        let mut h = Histogram::new(ICMP_RTT_BUCKETS);
        for ms in p.rtts_ms.iter().flatten() {
            h.observe(seconds(*ms));
        }
        f.histogram(l, &h);
    }
    f.write_to(out);
}

/// The `target`, `kind` (and, for a (target, kind) listed more than once,
/// `line`) labels of every result, in result order: what
/// [`write_targets`] labels each result's series with, for a caller that
/// adds per-target families of its own (`pulse serve`'s timeouts).
pub fn target_labels(results: &[ProbeResult]) -> Vec<Labels> {
    let mut seen: HashMap<(&str, Kind), usize> = HashMap::new();
    for r in results {
        *seen.entry((r.target.as_str(), r.kind)).or_default() += 1;
    }
    results
        .iter()
        .map(|r| {
            let l = Labels::default()
                .with("target", &r.target)
                .with("kind", r.kind.as_str());
            if seen.get(&(r.target.as_str(), r.kind)).copied().unwrap_or(0) > 1 {
                l.with("line", &r.line.to_string())
            } else {
                l
            }
        })
        .collect()
}

/// `TLSv1.3` → `TLS 1.3`: blackbox_exporter's `version` label values, so
/// its dashboards' queries match.
fn tls_version_label(v: &str) -> String {
    match v.strip_prefix("TLSv") {
        Some(n) => format!("TLS {n}"),
        None => v.to_string(),
    }
}

/// One phase's milliseconds by its label name.
fn phase_ms(r: &ProbeResult, phase: &str) -> Option<f64> {
    r.phases.iter().find(|(n, _)| *n == phase).map(|(_, ms)| ms)
}

/// `HTTP/1.1` → 1.1, `HTTP/2` → 2, as blackbox_exporter's `probe_http_version`;
/// 0 when there was no response or the version is not a number.
fn http_version(v: Option<&str>) -> f64 {
    v.and_then(|v| v.strip_prefix("HTTP/"))
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// Milliseconds to seconds, rounded to the nanosecond so that `12.345` ms
/// prints as `0.012345`, not `0.012345000000000001`: the rounded integer and
/// 1e9 are both exact in an f64, so the division gives the f64 nearest the
/// decimal, which `{}` prints in its shortest form.
fn seconds(ms: f64) -> f64 {
    (ms * 1e6).round() / 1e9
}

/// 1 or 0.
fn bool_value(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// A sample value as the text format spells it (Go's `ParseFloat` syntax).
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v == f64::INFINITY {
        "+Inf".to_owned()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        // Rust's `{}` for f64 never uses an exponent and round-trips exactly.
        format!("{v}")
    }
}

/// A rendered label set, without the braces: `target="x",kind="http"`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels(String);

impl Labels {
    /// This set plus `name="value"` (value escaped).
    pub fn with(&self, name: &str, value: &str) -> Labels {
        let mut s = self.0.clone();
        if !s.is_empty() {
            s.push(',');
        }
        s.push_str(name);
        s.push_str("=\"");
        escape_label_value(&mut s, value);
        s.push('"');
        Labels(s)
    }
}

/// Label value escaping of the text format: backslash, double quote, newline.
fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '"' => out.push_str(r#"\""#),
            '\n' => out.push_str(r"\n"),
            c => out.push(c),
        }
    }
}

/// HELP text escaping: backslash and newline (quotes are literal there).
fn escape_help(out: &mut String, help: &str) {
    for c in help.chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '\n' => out.push_str(r"\n"),
            c => out.push(c),
        }
    }
}

/// A metric family's `# TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// A value that goes up and down (every family of a scan's snapshot).
    Gauge,
    /// A count since the process started (`pulse serve`'s `*_total`).
    Counter,
    /// Cumulative buckets plus `_sum` and `_count` ([`Histogram`]).
    Histogram,
}

/// One metric family being built: its samples are collected first and the
/// family written whole, which is what keeps HELP/TYPE single and samples
/// contiguous.
#[derive(Debug)]
pub struct Family {
    /// Metric name, with its unit suffix.
    name: &'static str,
    /// The `# HELP` text.
    help: &'static str,
    /// The `# TYPE`.
    kind: MetricType,
    /// Rendered sample lines, each ending in `\n`.
    samples: String,
}

impl Family {
    /// A gauge family.
    pub fn new(name: &'static str, help: &'static str) -> Family {
        Family::typed(name, help, MetricType::Gauge)
    }

    /// A family of the given type (a counter's name ends in `_total`).
    pub fn typed(name: &'static str, help: &'static str, kind: MetricType) -> Family {
        Family {
            name,
            help,
            kind,
            samples: String::new(),
        }
    }

    /// Add `name{labels} value`.
    pub fn sample(&mut self, labels: &Labels, value: f64) {
        self.sample_suffixed("", labels, value);
    }

    /// Add one histogram: `name_bucket{labels,le=...}` for each bound and
    /// `+Inf`, then `name_sum` and `name_count`.
    pub fn histogram(&mut self, labels: &Labels, h: &Histogram) {
        let mut cumulative = 0;
        for (bound, n) in h.bounds.iter().zip(&h.counts) {
            cumulative += n;
            let le = labels.with("le", &format_value(*bound));
            self.sample_suffixed("_bucket", &le, cumulative as f64);
        }
        self.sample_suffixed("_bucket", &labels.with("le", "+Inf"), h.count as f64);
        self.sample_suffixed("_sum", labels, h.sum);
        self.sample_suffixed("_count", labels, h.count as f64);
    }

    /// Add `name<suffix>{labels} value`.
    fn sample_suffixed(&mut self, suffix: &str, labels: &Labels, value: f64) {
        self.samples.push_str(self.name);
        self.samples.push_str(suffix);
        if !labels.0.is_empty() {
            self.samples.push('{');
            self.samples.push_str(&labels.0);
            self.samples.push('}');
        }
        self.samples.push(' ');
        self.samples.push_str(&format_value(value));
        self.samples.push('\n');
    }

    /// Append HELP, TYPE and the samples to `out`; nothing when no samples.
    pub fn write_to(self, out: &mut String) {
        if self.samples.is_empty() {
            return;
        }
        out.push_str("# HELP ");
        out.push_str(self.name);
        out.push(' ');
        escape_help(out, self.help);
        out.push_str("\n# TYPE ");
        out.push_str(self.name);
        // A scan's snapshot has gauges only (see the module doc);
        // `pulse serve` counts over its life and has counters too.
        out.push_str(match self.kind {
            MetricType::Gauge => " gauge\n",
            MetricType::Counter => " counter\n",
            MetricType::Histogram => " histogram\n",
        });
        out.push_str(&self.samples);
    }
}

/// Observations counted into fixed buckets (upper bounds, ascending), for
/// a [`MetricType::Histogram`] family.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative): `counts[i]` holds those
    /// in `(bounds[i-1], bounds[i]]`; above the last bound only `count` has them.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    /// An empty histogram with these upper bounds (ascending, finite).
    pub fn new(bounds: &'static [f64]) -> Histogram {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]));
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    /// Count one observation.
    pub fn observe(&mut self, value: f64) {
        if let Some(i) = self.bounds.iter().position(|b| value <= *b) {
            self.counts[i] += 1;
        }
        self.sum += value;
        self.count += 1;
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in a test, a panic is the failure report
mod tests {
    use std::collections::HashSet;
    use std::process::{Command, Stdio};

    use super::*;
    use crate::encode::tests::sample_report;
    use crate::encode::{Format, write_report};

    fn prom_text(report: &Report) -> String {
        let mut out = Vec::new();
        write_report(&mut out, Format::Prom, report).unwrap();
        String::from_utf8(out).unwrap()
    }

    const OK: &str = r#"target="http://127.0.0.1:8080/ok",kind="http""#;

    #[test]
    fn expected_samples() {
        let text = prom_text(&sample_report());
        let lines: HashSet<&str> = text.lines().collect();
        let want = [
            format!("probe_success{{{OK}}} 1"),
            format!("probe_duration_seconds{{{OK}}} 0.012345"),
            format!("probe_dns_lookup_time_seconds{{{OK}}} 0"),
            format!("probe_http_status_code{{{OK}}} 200"),
            format!(r#"probe_http_duration_seconds{{{OK},phase="resolve"}} 0"#),
            format!(r#"probe_http_duration_seconds{{{OK},phase="connect"}} 0.00025"#),
            format!(r#"probe_http_duration_seconds{{{OK},phase="tls"}} 0"#),
            format!(r#"probe_http_duration_seconds{{{OK},phase="processing"}} 0.011"#),
            format!(r#"probe_http_duration_seconds{{{OK},phase="transfer"}} 0.001095"#),
            format!("probe_http_redirects{{{OK}}} 1"),
            format!("probe_http_uncompressed_body_length{{{OK}}} 2"),
            format!("probe_http_version{{{OK}}} 1.1"),
            format!("pulse_probe_queue_wait_seconds{{{OK}}} 0.0005"),
            r#"probe_success{target="http://127.0.0.1:8080/missing",kind="http"} 0"#.into(),
            r#"probe_http_status_code{target="http://127.0.0.1:8080/missing",kind="http"} 404"#.into(),
            r#"pulse_probe_error{target="http://127.0.0.1:8080/missing",kind="http",error="status"} 1"#.into(),
            r#"probe_success{target="tcp://127.0.0.1:1",kind="tcp"} 0"#.into(),
            r#"pulse_probe_error{target="tcp://127.0.0.1:1",kind="tcp",error="refused"} 1"#.into(),
            r#"probe_success{target="icmp://127.0.0.1",kind="icmp"} 1"#.into(),
            r#"probe_icmp_duration_seconds{target="icmp://127.0.0.1",kind="icmp",phase="resolve"} 0"#.into(),
            r#"probe_icmp_duration_seconds{target="icmp://127.0.0.1",kind="icmp",phase="rtt"} 0.000125"#.into(),
            r#"probe_icmp_reply_hop_limit{target="icmp://127.0.0.1",kind="icmp"} 64"#.into(),
            r#"probe_success{target="http://10.0.0.1/slow",kind="http"} 0"#.into(),
            r#"probe_http_status_code{target="http://10.0.0.1/slow",kind="http"} 0"#.into(),
            r#"probe_http_version{target="http://10.0.0.1/slow",kind="http"} 0"#.into(),
            r#"probe_http_duration_seconds{target="http://10.0.0.1/slow",kind="http",phase="connect"} 0"#.into(),
            r#"pulse_probe_error{target="http://10.0.0.1/slow",kind="http",error="cancelled"} 1"#.into(),
            r#"probe_duration_seconds{target="http://127.0.0.1:8080/q?a=\"b\"\\c",kind="http"} 5"#.into(),
            r#"pulse_probe_error{target="http://127.0.0.1:8080/q?a=\"b\"\\c",kind="http",error="timeout"} 1"#.into(),
            r#"probe_success{target="127.0.0.1:22",kind="tcp",line="7"} 1"#.into(),
            r#"probe_success{target="127.0.0.1:22",kind="tcp",line="8"} 1"#.into(),
            r#"probe_duration_seconds{target="127.0.0.1:22",kind="tcp",line="7"} 0.0035"#.into(),
            r#"probe_duration_seconds{target="127.0.0.1:22",kind="tcp",line="8"} 0.004"#.into(),
            r#"pulse_probe_queue_wait_seconds{target="127.0.0.1:22",kind="tcp",line="8"} 0.0015"#.into(),
            "pulse_scan_duration_seconds 1.2345".into(),
            "pulse_scan_targets 8".into(),
            r#"pulse_scan_probes{result="up"} 4"#.into(),
            r#"pulse_scan_probes{result="down"} 3"#.into(),
            r#"pulse_scan_probes{result="cancelled"} 1"#.into(),
            r#"pulse_scan_errors{error="timeout"} 1"#.into(),
            r#"pulse_scan_errors{error="refused"} 1"#.into(),
            r#"pulse_scan_errors{error="status"} 1"#.into(),
            r#"pulse_scan_errors{error="cancelled"} 1"#.into(),
            "pulse_scan_interrupted 1".into(),
            r#"pulse_build_info{version="0.1.0",runtime="tokio",stack="core",workers="50",runtime_threads="2"} 1"#.into(),
        ];
        for w in &want {
            assert!(lines.contains(w.as_str()), "missing {w}\n---\n{text}");
        }
    }

    #[test]
    fn no_series_where_they_do_not_belong() {
        let text = prom_text(&sample_report());
        let samples = || text.lines().filter(|l| !l.starts_with('#'));
        // Successful probes have no error series.
        assert!(!samples().any(|l| l.starts_with("pulse_probe_error") && l.contains(OK)));
        // http families only for http targets, icmp only for icmp.
        for l in samples().filter(|l| l.starts_with("probe_http_")) {
            assert!(l.contains(r#"kind="http""#), "{l}");
        }
        for l in samples().filter(|l| l.starts_with("probe_icmp_")) {
            assert!(l.contains(r#"kind="icmp""#), "{l}");
        }
        // Only the duplicated target carries `line`.
        for l in samples().filter(|l| l.contains("line=")) {
            assert!(l.contains(r#"target="127.0.0.1:22""#), "{l}");
        }
        assert!(
            samples()
                .filter(|l| l.contains(r#"target="127.0.0.1:22""#))
                .all(|l| l.contains(r#",line=""#))
        );
        // A snapshot has no counters, so nothing ends in _total.
        assert!(!text.contains("_total"));
        assert!(text.ends_with('\n'));
    }

    /// The exposition's structure: HELP then TYPE once per family, before its
    /// samples; samples contiguous; no series twice.
    #[test]
    fn families_are_well_formed() {
        let text = prom_text(&sample_report());
        let mut help = HashSet::new();
        let mut typed = HashSet::new();
        let mut finished: HashSet<String> = HashSet::new();
        let mut current: Option<String> = None;
        let mut series = HashSet::new();
        for line in text.lines() {
            let name = if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().unwrap().to_owned();
                assert!(help.insert(name.clone()), "second HELP for {name}");
                assert!(!typed.contains(&name), "HELP after TYPE for {name}");
                name
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut parts = rest.split(' ');
                let name = parts.next().unwrap().to_owned();
                assert_eq!(parts.next(), Some("gauge"));
                assert!(help.contains(&name), "TYPE before HELP for {name}");
                assert!(typed.insert(name.clone()), "second TYPE for {name}");
                name
            } else {
                assert!(!line.starts_with('#') && !line.is_empty(), "{line:?}");
                let name = line.split(['{', ' ']).next().unwrap().to_owned();
                assert!(typed.contains(&name), "sample before TYPE: {line}");
                let (id, value) = line.rsplit_once(' ').unwrap();
                assert!(value.parse::<f64>().is_ok(), "{line}");
                assert!(series.insert(id.to_owned()), "duplicate series {id}");
                name
            };
            if current.as_deref() != Some(name.as_str()) {
                if let Some(prev) = current.take() {
                    finished.insert(prev);
                }
                assert!(!finished.contains(&name), "{name} is not contiguous");
                current = Some(name);
            }
        }
        assert_eq!(help, typed);
        // A family without samples is not written: of the TLS families,
        // only probe_http_ssl (0 for plain http) is here.
        assert_eq!(help.len(), 19, "{help:?}");
    }

    #[test]
    fn every_address_has_its_series() {
        let mut report = sample_report();
        let mut r = report.results[0].clone();
        r.target = "http://dual.example/".into();
        r.success = false;
        r.addresses = vec![
            crate::result::AddressResult {
                address: "127.0.0.1:80".into(),
                success: true,
                duration_ms: 1.5,
                status_code: Some(200),
                error: None,
            },
            crate::result::AddressResult {
                address: "[::1]:80".into(),
                success: false,
                duration_ms: 0.25,
                status_code: None,
                error: Some(crate::result::ProbeError::new(
                    crate::result::ErrorKind::Refused,
                    "x",
                )),
            },
        ];
        report.results.push(r);
        let text = prom_text(&report);
        const T: &str = r#"target="http://dual.example/",kind="http""#;
        for want in [
            format!(r#"pulse_address_up{{{T},address="127.0.0.1:80"}} 1"#),
            format!(r#"pulse_address_up{{{T},address="[::1]:80"}} 0"#),
            format!(r#"pulse_address_duration_seconds{{{T},address="[::1]:80"}} 0.00025"#),
            format!("probe_success{{{T}}} 0"),
        ] {
            assert!(text.lines().any(|l| l == want), "missing {want}\n{text}");
        }
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("pulse_address_up{"))
                .count(),
            2
        );
    }

    #[test]
    fn tls_families_carry_blackbox_names_and_values() {
        let mut report = sample_report();
        let mut https = report.results[0].clone();
        https.target = "https://127.0.0.1:8443/".into();
        let h = https.http.as_mut().unwrap();
        h.tls_version = Some("TLSv1.3".into());
        h.certificate = Some(crate::certs::CertDetails {
            subject: "CN=pulse fixture".into(),
            issuer: "CN=pulse fixture test CA".into(),
            serial: "01:02".into(),
            not_before_unix: 1_700_000_000,
            not_after_unix: 1_800_000_000,
            earliest_expiry_unix: 1_750_000_000,
            chain_expiry_unix: Some(1_760_000_000),
            checked_at_unix: 1_710_000_000,
        });
        report.results.push(https);
        let text = prom_text(&report);
        let lines: HashSet<&str> = text.lines().collect();
        const T: &str = r#"target="https://127.0.0.1:8443/",kind="http""#;
        for want in [
            format!("probe_http_ssl{{{T}}} 1"),
            format!("probe_http_ssl{{{OK}}} 0"),
            format!("probe_ssl_earliest_cert_expiry{{{T}}} 1750000000"),
            format!("probe_ssl_last_chain_expiry_timestamp_seconds{{{T}}} 1760000000"),
            format!(r#"probe_tls_version_info{{{T},version="TLS 1.3"}} 1"#),
        ] {
            assert!(lines.contains(want.as_str()), "missing {want}\n---\n{text}");
        }
        // Only a probe with certificates has the expiry series.
        let expiry = text
            .lines()
            .filter(|l| l.starts_with("probe_ssl_earliest_cert_expiry{"))
            .count();
        assert_eq!(expiry, 1);
    }

    #[test]
    fn histograms_are_cumulative_with_sum_and_count() {
        let mut h = Histogram::new(&[0.1, 1.0]);
        for v in [0.05, 0.1, 0.5, 3.0] {
            h.observe(v);
        }
        let mut f = Family::typed("x_seconds", "help", MetricType::Histogram);
        f.histogram(&Labels::default().with("kind", "tcp"), &h);
        let mut out = String::new();
        f.write_to(&mut out);
        assert_eq!(
            out,
            "# HELP x_seconds help\n# TYPE x_seconds histogram\n\
             x_seconds_bucket{kind=\"tcp\",le=\"0.1\"} 2\n\
             x_seconds_bucket{kind=\"tcp\",le=\"1\"} 3\n\
             x_seconds_bucket{kind=\"tcp\",le=\"+Inf\"} 4\n\
             x_seconds_sum{kind=\"tcp\"} 3.65\n\
             x_seconds_count{kind=\"tcp\"} 4\n"
        );
    }

    #[test]
    fn bare_target_series_have_no_labels() {
        let report = sample_report();
        let mut out = String::new();
        write_targets(&mut out, &report.results[..1], TargetLabels::Bare);
        assert!(out.contains("\nprobe_success 1\n"), "{out}");
        assert!(
            out.contains("\nprobe_http_duration_seconds{phase=\"connect\"} 0.00025\n"),
            "{out}"
        );
        assert!(!out.contains("target="), "{out}");
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        escape_label_value(&mut out, "a\\b\"c\nd");
        assert_eq!(out, r#"a\\b\"c\nd"#);

        let mut report = sample_report();
        report.results[0].target = "multi\nline".into();
        let text = prom_text(&report);
        assert!(text.contains(r#"probe_success{target="multi\nline",kind="http"} 1"#));
    }

    #[test]
    fn values_and_units() {
        assert_eq!(format_value(seconds(12.345)), "0.012345");
        assert_eq!(format_value(seconds(0.001)), "0.000001");
        assert_eq!(format_value(seconds(1234.5)), "1.2345");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(http_version(Some("HTTP/1.1")), 1.1);
        assert_eq!(http_version(Some("HTTP/2")), 2.0);
        assert_eq!(http_version(Some("SPDY")), 0.0);
        assert_eq!(http_version(None), 0.0);
    }

    #[test]
    fn a_duplicate_of_another_kind_is_not_a_duplicate() {
        let mut report = sample_report();
        // Same string, different kind: distinct series without `line`.
        let mut icmp = report.results[3].clone();
        icmp.target = "tcp://127.0.0.1:1".into();
        report.results.push(icmp);
        let text = prom_text(&report);
        assert!(text.contains(r#"probe_success{target="tcp://127.0.0.1:1",kind="tcp"} 0"#));
        assert!(text.contains(r#"probe_success{target="tcp://127.0.0.1:1",kind="icmp"} 1"#));
    }

    /// A report whose ICMP target sent a train of 4 echoes, 3 answered
    /// (one of them twice).
    fn train_report() -> Report {
        use crate::result::{IcmpDetails, IcmpPackets};
        use std::time::Duration;
        let mut report = sample_report();
        let mut r = report.results[3].clone();
        r.target = "icmp://127.0.0.2".into();
        let ms = |n: u64| Some(Duration::from_micros(n));
        r.icmp = Some(IcmpDetails {
            sequence: 10,
            reply_ttl: Some(64),
            packets: Some(IcmpPackets::of(&[ms(200), None, ms(400), ms(3_000)], 1)),
        });
        report.results = vec![report.results[3].clone(), r];
        report
    }

    #[test]
    fn an_echo_train_has_smokeping_families_and_a_single_echo_has_none() {
        let text = prom_text(&train_report());
        let lines: HashSet<&str> = text.lines().collect();
        let t = r#"target="icmp://127.0.0.2",kind="icmp""#;
        for want in [
            format!("probe_icmp_packets_sent{{{t}}} 4"),
            format!("probe_icmp_packets_received{{{t}}} 3"),
            format!("probe_icmp_duplicate_replies{{{t}}} 1"),
            format!("probe_icmp_packet_loss_ratio{{{t}}} 0.25"),
            format!(r#"probe_icmp_rtt_stat_seconds{{{t},stat="min"}} 0.0002"#),
            format!(r#"probe_icmp_rtt_stat_seconds{{{t},stat="max"}} 0.003"#),
            format!(r#"probe_icmp_rtt_seconds_bucket{{{t},le="0.00025"}} 1"#),
            format!(r#"probe_icmp_rtt_seconds_bucket{{{t},le="0.0005"}} 2"#),
            format!(r#"probe_icmp_rtt_seconds_bucket{{{t},le="0.005"}} 3"#),
            format!(r#"probe_icmp_rtt_seconds_bucket{{{t},le="+Inf"}} 3"#),
            format!("probe_icmp_rtt_seconds_count{{{t}}} 3"),
            "# TYPE probe_icmp_rtt_seconds histogram".to_string(),
        ] {
            assert!(lines.contains(want.as_str()), "missing {want}\n{text}");
        }
        let single = r#"target="icmp://127.0.0.1""#;
        for l in text.lines().filter(|l| l.contains(single)) {
            assert!(
                !l.contains("packets") && !l.contains("rtt_s") && !l.contains("loss"),
                "{l}"
            );
        }
        promtool_accepts(&text);
    }

    /// `promtool check metrics` (the CI linter) accepts the output with no
    /// lint at all. Skipped when promtool is not installed.
    #[test]
    fn promtool_check_metrics() {
        promtool_accepts(&prom_text(&sample_report()));
    }

    fn promtool_accepts(text: &str) {
        let found = Command::new("promtool")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            println!("skipped: promtool not installed");
            return;
        }
        let path = std::env::temp_dir().join(format!(
            "pulse-encode-prom-{}-{:?}.prom",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&path, text).unwrap();
        let stdin = std::fs::File::open(&path).unwrap();
        let out = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(stdin)
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&path);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "promtool failed ({}):\n{stdout}{stderr}",
            out.status
        );
        assert_eq!(stdout.trim(), "", "promtool lint output");
        assert_eq!(stderr.trim(), "", "promtool lint output");
    }
}
