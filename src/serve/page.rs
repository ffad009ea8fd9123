//! `/`: the status page, for a person (Prometheus reads `/metrics`).
//!
//! One row per target, failing targets first, each with what an operator
//! looks for when something is wrong: a strip of its last [`KEPT`] results
//! (green up, red down, oldest left), a latency line over the same results,
//! its uptime over them, how long ago it was checked, and the last error
//! with its kind and message. Plain HTML and inline SVG: no script, no
//! external asset, so it works on an air-gapped host and costs the exporter
//! nothing but the render. It reloads itself every interval (between 5 s
//! and 60 s) with `<meta http-equiv="refresh">`.
//!
//! # Ten thousand targets
//!
//! The render is a few string writes per result kept (the strip draws each
//! run of equal results as one dashed line, not a shape per cell), and the
//! page holds at most [`PAGE_SIZE`] rows, `?page=N` the rest, so a browser
//! gets at most about 650 KB (1.3 KB a row with full history, most of it
//! the latency line) whatever the file. Sorting puts every failing target
//! on the first pages.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use pulse_core::redact::redact_password;
use pulse_core::result::ErrorKind;
use pulse_core::session::fmt_duration;
use pulse_core::target::Target;

use super::history::{History, KEPT, Sample};
use super::state::{Info, Latest, PageSnapshot, State};
use crate::markup::escape;

/// Rows per page: every failure up to this many shows on page 1, and a
/// page stays near 650 KB (1.3 KB a row with full history), which a
/// browser lays out at once.
pub(crate) const PAGE_SIZE: usize = 500;

/// Width of one result in the strip and the latency line, in px: 4 drawn
/// and 1 gap, so [`KEPT`] results take 300 px.
const CELL: usize = 5;
/// The strip's and the latency line's width.
const WIDTH: usize = KEPT * CELL;

/// The page's style: one sheet, inline (no asset to fetch).
const STYLE: &str = "\
:root{--up:#1a7f37;--down:#cf222e;--pending:#8c959f;--ink:#1f2328;--muted:#656d76;--line:#d8dee4}\
*{box-sizing:border-box}\
body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;color:var(--ink);margin:0;background:#f6f8fa}\
header{padding:18px 24px 10px;background:#fff;border-bottom:1px solid var(--line)}\
h1{font-size:20px;margin:0 0 10px;font-weight:600;display:flex;align-items:baseline;gap:16px}\
h1 a{font-size:13px;font-weight:400}\
.totals{display:flex;gap:12px;margin-bottom:8px}\
.total{border:1px solid var(--line);border-radius:6px;padding:6px 14px;min-width:96px;background:#fff}\
.total b{display:block;font-size:24px;line-height:1.1}\
.total span{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}\
.total.down b{color:var(--down)}.total.up b{color:var(--up)}.total.pending b{color:var(--pending)}\
.total.down.some{border-color:var(--down);background:#fff5f5}\
.meta{color:var(--muted);margin:4px 0 0}\
a{color:#0969da}code{font-size:13px}\
main{padding:12px 24px 24px}\
nav{margin:0 0 10px;color:var(--muted)}nav a{margin-left:10px}\
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid var(--line)}\
th{font-size:12px;font-weight:600;color:var(--muted);text-align:left;padding:8px 10px;border-bottom:1px solid var(--line);background:#f6f8fa;white-space:nowrap}\
td{padding:8px 10px;border-bottom:1px solid #eaeef2;vertical-align:top}\
tr.down td{background:#fff8f8}\
td.dot{width:18px;padding-right:0}\
.dot i{display:inline-block;width:10px;height:10px;border-radius:50%;margin-top:5px}\
.up .dot i{background:var(--up)}.down .dot i{background:var(--down)}.pending .dot i{background:var(--pending)}\
td.target{min-width:250px}\
.t{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:13px;overflow-wrap:anywhere}\
.sub{color:var(--muted);font-size:12px}\
.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}\
.state{font-weight:600;font-size:12px;text-transform:uppercase}\
.up .state{color:var(--up)}.down .state{color:var(--down)}.pending .state{color:var(--pending)}\
svg{display:block}\
.strip path{fill:none;stroke-width:14;stroke-dasharray:4 1}\
.strip .u{stroke:var(--up)}.strip .f{stroke:var(--down)}.strip .e{stroke:#eaeef2}\
.spark{margin-top:3px}\
.spark path{fill:none;stroke:#0969da;stroke-width:1.5;stroke-linejoin:round;stroke-linecap:round}\
.err{max-width:420px}\
.err b{color:var(--down)}\
.err .msg{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px;word-break:break-word}\
";

/// How a target stands, in the order the page lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Health {
    Down,
    Pending,
    Up,
}

impl Health {
    fn class(self) -> &'static str {
        match self {
            Health::Down => "down",
            Health::Pending => "pending",
            Health::Up => "up",
        }
    }
}

/// One target, ready to draw.
struct Row<'a> {
    target: &'a Target,
    latest: Option<&'a Latest>,
    history: Option<&'a History>,
    health: Health,
    uptime: Option<f64>,
}

/// The page, `page` counted from 1 (out of range: the nearest page).
pub(crate) fn render(state: &State, page: usize) -> String {
    render_snapshot(&state.info, &state.page_snapshot(), page, SystemTime::now())
}

/// The page for a snapshot, as of `now`.
fn render_snapshot(info: &Info, snap: &PageSnapshot, page: usize, now: SystemTime) -> String {
    let config = &snap.config;
    let mut rows: Vec<Row<'_>> = config
        .plan
        .targets
        .iter()
        .zip(&snap.latest)
        .zip(&snap.history)
        .map(|((target, latest), history)| {
            let latest = latest.as_ref();
            let history = history.as_deref();
            Row {
                target,
                latest,
                history,
                health: match latest {
                    None => Health::Pending,
                    Some(l) if l.result.success => Health::Up,
                    Some(_) => Health::Down,
                },
                uptime: history.and_then(History::uptime),
            }
        })
        .collect();
    let count = |h: Health| rows.iter().filter(|r| r.health == h).count();
    let (down, up, pending) = (
        count(Health::Down),
        count(Health::Up),
        count(Health::Pending),
    );
    // Failing first; within a group the least healthy over the window
    // first (a flapping target above a steady one); then file order.
    // The sort is stable and the rows start in file order.
    rows.sort_by(|a, b| {
        a.health
            .cmp(&b.health)
            .then(a.uptime.unwrap_or(2.0).total_cmp(&b.uptime.unwrap_or(2.0)))
    });
    let pages = rows.len().div_ceil(PAGE_SIZE).max(1);
    let page = page.clamp(1, pages);
    let shown = &rows[((page - 1) * PAGE_SIZE).min(rows.len())..(page * PAGE_SIZE).min(rows.len())];

    let refresh = info
        .interval
        .clamp(Duration::from_secs(5), Duration::from_secs(60));
    let mut h = String::with_capacity(4096 + 1200 * shown.len());
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{}\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}pulse serve</title><style>{STYLE}</style></head><body>\n<header>\
         <h1>pulse serve <a href=\"/metrics\">/metrics</a><a href=\"/healthz\">/healthz</a></h1>\n\
         <div class=\"totals\">\
         <div class=\"total down{}\"><b>{down}</b><span>down</span></div>\
         <div class=\"total up\"><b>{up}</b><span>up</span></div>\
         <div class=\"total pending\"><b>{pending}</b><span>pending</span></div></div>\n",
        refresh.as_secs(),
        if down > 0 {
            format!("{down} down · ")
        } else {
            String::new()
        },
        if down > 0 { " some" } else { "" },
    );
    let shard = info
        .shard
        .map_or_else(String::new, |(i, n)| format!(", shard {i}/{n}"));
    let _ = writeln!(
        h,
        "<p class=\"meta\">pulse {} on <b>{}</b> at {}, every {}: {} of {} targets in \
         <code>{}</code>{shard}; {} rounds, {} skipped; this page reloads every {}.</p>\
         </header>\n<main>",
        pulse_core::VERSION,
        info.runtime,
        escape(&info.listen),
        fmt_duration(info.interval),
        config.plan.len(),
        config.all.len(),
        escape(&config.source),
        snap.rounds.completed,
        snap.rounds.skipped,
        fmt_duration(refresh),
    );
    if pages > 1 {
        nav(&mut h, page, pages, rows.len());
    }
    if rows.is_empty() {
        h.push_str("<p>No targets to probe: the file has none for this shard.</p>\n");
    } else {
        let _ = writeln!(
            h,
            "<table><thead><tr><th></th><th>target</th><th>last {KEPT} results, oldest first \
             · latency</th><th class=\"num\">uptime</th><th class=\"num\">latency</th>\
             <th>checked</th><th>last error</th></tr></thead><tbody>"
        );
        for row in shown {
            write_row(&mut h, row, now);
        }
        h.push_str("</tbody></table>\n");
    }
    if pages > 1 {
        nav(&mut h, page, pages, rows.len());
    }
    h.push_str("</main></body></html>\n");
    h
}

/// Links to the other pages.
fn nav(h: &mut String, page: usize, pages: usize, rows: usize) {
    let first = (page - 1) * PAGE_SIZE + 1;
    let last = (page * PAGE_SIZE).min(rows);
    let _ = write!(
        h,
        "<nav>page {page} of {pages}: targets {first}–{last} of {rows}, failing first"
    );
    if page > 1 {
        let _ = write!(
            h,
            "<a href=\"/?page=1\">first</a><a href=\"/?page={}\">previous</a>",
            page - 1
        );
    }
    if page < pages {
        let _ = write!(
            h,
            "<a href=\"/?page={}\">next</a><a href=\"/?page={pages}\">last</a>",
            page + 1
        );
    }
    h.push_str("</nav>\n");
}

fn write_row(h: &mut String, row: &Row<'_>, now: SystemTime) {
    let t = row.target;
    let class = row.health.class();
    let _ = write!(
        h,
        "<tr class=\"{class}\"><td class=\"dot\"><i></i></td><td class=\"target\"><div class=\"t\">{}</div>\
         <div class=\"sub\"><span class=\"state\">{class}</span> · {} · line {}</div></td><td>",
        escape(&redact_password(&t.text)),
        t.kind.as_str(),
        t.line,
    );
    let samples: Vec<Sample> = row.history.map(|h| h.iter().collect()).unwrap_or_default();
    strip(h, &samples);
    sparkline(h, &samples);
    h.push_str("</td><td class=\"num\">");
    match row.uptime {
        Some(u) => {
            let _ = write!(
                h,
                "{}<div class=\"sub\">of last {}</div>",
                percent(u),
                samples.len()
            );
        }
        None => h.push('–'),
    }
    h.push_str("</td><td class=\"num\">");
    match row.latest {
        Some(l) => {
            let _ = write!(h, "{}", ms(l.result.duration_ms));
            let max = samples
                .iter()
                .filter(|s| s.error.is_none())
                .map(|s| f64::from(s.latency_ms))
                .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
            if let Some(max) = max {
                let _ = write!(h, "<div class=\"sub\">max {}</div>", ms(max));
            }
        }
        None => h.push('–'),
    }
    h.push_str("</td><td>");
    if let Some(l) = row.latest {
        let _ = write!(
            h,
            "<span title=\"{}\">{}</span>",
            humantime::format_rfc3339_seconds(l.at),
            ago(now.duration_since(l.at).unwrap_or_default()),
        );
    }
    h.push_str("</td><td class=\"err\">");
    if let Some(e) = row.latest.and_then(|l| l.result.error.as_ref()) {
        let _ = write!(
            h,
            "<b>{}</b> <span class=\"msg\">{}</span>",
            e.kind.as_str(),
            escape(&e.message)
        );
    }
    let failures = failure_counts(&samples);
    if !failures.is_empty() {
        let _ = write!(h, "<div class=\"sub\">in the window: {failures}</div>");
    }
    h.push_str("</td></tr>\n");
}

/// The up/down strip: [`KEPT`] cells, newest at the right, empty cells
/// grey until the ring fills. Each run of equal results is one dashed
/// line (dash 4, gap 1: one cell each), so a steady target costs one path
/// segment, not sixty shapes. Runs start on a cell boundary and are whole
/// cells long, so the dash pattern lines up with the cells whether a
/// renderer restarts it per segment or carries it on.
fn strip(h: &mut String, samples: &[Sample]) {
    let empty = KEPT - samples.len().min(KEPT);
    let up = samples.iter().filter(|s| s.error.is_none()).count();
    let _ = write!(
        h,
        "<svg class=\"strip\" width=\"{WIDTH}\" height=\"14\" viewBox=\"0 0 {WIDTH} 14\" \
         role=\"img\" aria-label=\"{up} up, {} down\"><title>last {} results: {up} up, {} down \
         (oldest left)</title>",
        samples.len() - up,
        samples.len(),
        samples.len() - up,
    );
    if empty > 0 {
        let _ = write!(h, "<path class=\"e\" d=\"M0 7h{}\"/>", empty * CELL);
    }
    let mut ups = String::new();
    let mut downs = String::new();
    let mut i = 0;
    while i < samples.len() {
        let is_up = samples[i].error.is_none();
        let run = samples[i..]
            .iter()
            .take_while(|s| s.error.is_none() == is_up)
            .count();
        let d = if is_up { &mut ups } else { &mut downs };
        let _ = write!(d, "M{} 7h{}", (empty + i) * CELL, run * CELL);
        i += run;
    }
    if !ups.is_empty() {
        let _ = write!(h, "<path class=\"u\" d=\"{ups}\"/>");
    }
    if !downs.is_empty() {
        let _ = write!(h, "<path class=\"f\" d=\"{downs}\"/>");
    }
    h.push_str("</svg>");
}

/// The latency line under the strip, cell for cell: the probe times of
/// the results that were up, from 0 at the bottom to their maximum at the
/// top. From 0, not from their minimum, so a steady 20 ms with 0.3 ms of
/// jitter draws flat instead of as full-height noise. A failure breaks the
/// line (its time is the time to fail, often the whole timeout, which
/// would flatten everything else).
fn sparkline(h: &mut String, samples: &[Sample]) {
    let ups = samples.iter().filter(|s| s.error.is_none());
    let (lo, hi) = ups.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), s| {
        (lo.min(s.latency_ms), hi.max(s.latency_ms))
    });
    if lo > hi {
        return; // no result up: nothing to draw
    }
    let empty = KEPT - samples.len().min(KEPT);
    // 2 px margins inside 24 px.
    let y = |v: f32| {
        if hi <= 0.0 {
            22.0
        } else {
            22.0 - v.max(0.0) / hi * 20.0
        }
    };
    let _ = write!(
        h,
        "<svg class=\"spark\" width=\"{WIDTH}\" height=\"24\" viewBox=\"0 0 {WIDTH} 24\" \
         role=\"img\" aria-label=\"latency\"><title>latency of the results up: {} to {}</title>\
         <path d=\"",
        ms(f64::from(lo)),
        ms(f64::from(hi)),
    );
    let mut drawing = false;
    for (k, s) in samples.iter().enumerate() {
        if s.error.is_some() {
            drawing = false;
            continue;
        }
        let x = (empty + k) * CELL + 2;
        // A lone point is a zero-length segment, drawn as a dot by its round cap.
        let _ = write!(
            h,
            "{}{x} {:.1}{}",
            if drawing { "L" } else { "M" },
            y(s.latency_ms),
            if drawing { "" } else { "h0" }
        );
        drawing = true;
    }
    h.push_str("\"/></svg>");
}

/// The window's failures by kind, most frequent first: `3× timeout, 1× refused`.
fn failure_counts(samples: &[Sample]) -> String {
    let mut counts: Vec<(ErrorKind, usize)> = Vec::new();
    for kind in samples.iter().filter_map(|s| s.error) {
        match counts.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => counts.push((kind, 1)),
        }
    }
    counts.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
    counts
        .iter()
        .map(|(k, n)| format!("{n}× {}", k.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `100%`, `99.2%`, `0%`: one decimal where it says something.
fn percent(share: f64) -> String {
    let p = share * 100.0;
    if !(0.05..99.95).contains(&p) {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

/// A probe time, to about three significant digits.
fn ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2} s", v / 1000.0)
    } else if v >= 100.0 {
        format!("{v:.0} ms")
    } else if v >= 10.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.2} ms")
    }
}

/// `4s ago`, `3m ago`, `2h ago`.
fn ago(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=119 => format!("{s}s ago"),
        120..=7199 => format!("{}m ago", s / 60),
        _ => format!("{}h ago", s / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::state::{Config, RoundSink, State};
    use pulse_core::model::Sink;
    use pulse_core::plan::{Options, Plan};
    use pulse_core::result::{Phases, ProbeError, ProbeResult};
    use pulse_core::target::parse_targets;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    fn config(lines: &[&str]) -> Config {
        let text = lines.join("\n");
        let targets = parse_targets("targets.txt", text.as_bytes()).unwrap();
        let mut no_files = |_: &std::path::Path| Err(std::io::ErrorKind::NotFound.into());
        let plan = Plan::new(
            "targets.txt",
            targets.clone(),
            Options::default(),
            &mut no_files,
        )
        .unwrap();
        let keys = Config::keys(&plan.targets);
        let index = keys
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, k)| (k, i))
            .collect();
        Config {
            source: "targets.txt".into(),
            all: targets,
            files: Default::default(),
            plan: Arc::new(plan),
            keys,
            index,
        }
    }

    fn state(lines: &[&str]) -> Arc<State> {
        let info = Info {
            runtime: "tokio",
            interval: Duration::from_secs(30),
            workers: 50,
            shard: None,
            listen: "127.0.0.1:9100".into(),
            started: SystemTime::now(),
        };
        Arc::new(State::new(info, config(lines)))
    }

    fn sink(state: &Arc<State>) -> RoundSink {
        RoundSink {
            state: state.clone(),
            config: state.config(),
            completed: Arc::new(AtomicUsize::new(0)),
            denied: None,
        }
    }

    fn result(state: &State, i: usize, ms: f64, error: Option<(ErrorKind, &str)>) -> ProbeResult {
        let t = &state.config().plan.targets[i];
        ProbeResult {
            target: t.text.clone(),
            kind: t.kind,
            line: t.line,
            success: error.is_none(),
            duration_ms: ms,
            queue_wait_ms: 0.0,
            phases: Phases::default(),
            address: None,
            http: None,
            icmp: None,
            error: error.map(|(k, m)| ProbeError::new(k, m)),
            addresses: Vec::new(),
        }
    }

    fn page(state: &State) -> String {
        render(state, 1)
    }

    #[test]
    fn failing_targets_come_first_then_flapping_then_steady() {
        let s = state(&[
            "tcp://127.0.0.1:1",
            "tcp://127.0.0.1:2",
            "tcp://127.0.0.1:3",
            "tcp://127.0.0.1:4",
        ]);
        let mut sink = sink(&s);
        for round in 0..10 {
            sink.accept(0, result(&s, 0, 1.0, None));
            // Target 2 fails once in ten: flapping, but up now.
            let flap = (round == 3).then_some((ErrorKind::Timeout, "timed out"));
            sink.accept(1, result(&s, 1, 2.0, flap));
            sink.accept(2, result(&s, 2, 3.0, Some((ErrorKind::Refused, "refused"))));
        }
        let html = page(&s);
        let at = |needle: &str| {
            html.find(&format!("<div class=\"t\">{needle}</div>"))
                .unwrap_or_else(|| panic!("{needle} not on the page"))
        };
        let (steady, flapping, down, pending) = (
            at("tcp://127.0.0.1:1"),
            at("tcp://127.0.0.1:2"),
            at("tcp://127.0.0.1:3"),
            at("tcp://127.0.0.1:4"),
        );
        assert!(
            down < pending && pending < flapping && flapping < steady,
            "{html}"
        );
        assert!(html.contains("<b>1</b><span>down</span>"), "{html}");
        assert!(
            html.contains("<title>1 down · pulse serve</title>"),
            "{html}"
        );
        assert!(
            html.contains(">90.0%<div class=\"sub\">of last 10</div>"),
            "{html}"
        );
        assert!(
            html.contains(">0%<div class=\"sub\">of last 10</div>"),
            "{html}"
        );
        assert!(html.contains("in the window: 10× refused"), "{html}");
        assert!(html.contains("in the window: 1× timeout"), "{html}");
        assert!(html.contains("<meta http-equiv=\"refresh\" content=\"30\">"));
    }

    #[test]
    fn text_is_escaped_and_passwords_redacted() {
        let s = state(&["http://admin:hunter2@127.0.0.1:8080/a?q=<script>"]);
        let mut sink = sink(&s);
        sink.accept(
            0,
            result(
                &s,
                0,
                5.0,
                Some((ErrorKind::Body, "body lacks \"<b>ok</b>\" & more")),
            ),
        );
        let html = page(&s);
        assert!(!html.contains("hunter2"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("q=&lt;script&gt;"), "{html}");
        assert!(html.contains("admin:&lt;redacted&gt;@"), "{html}");
        assert!(
            html.contains("body lacks &quot;&lt;b&gt;ok&lt;/b&gt;&quot; &amp; more"),
            "{html}"
        );
    }

    #[test]
    fn history_is_bounded_and_drawn_cell_for_cell() {
        let s = state(&["tcp://127.0.0.1:1"]);
        let mut sink = sink(&s);
        for i in 0..(3 * KEPT) {
            let error = (i % 2 == 0).then_some((ErrorKind::Reset, "reset"));
            sink.accept(0, result(&s, 0, 1.0 + i as f64, error));
        }
        let snap = s.page_snapshot();
        assert_eq!(snap.history[0].as_ref().unwrap().len(), KEPT);
        let html = page(&s);
        // Alternating: every cell its own run, all 60 drawn, none empty.
        assert_eq!(html.matches(" 7h5").count(), KEPT, "{html}");
        assert!(!html.contains("class=\"e\""), "{html}");
        assert!(
            html.contains(">50.0%<div class=\"sub\">of last 60</div>"),
            "{html}"
        );

        // A fresh target: one cell drawn at the right, the rest empty.
        let s = state(&["tcp://127.0.0.1:1"]);
        sink_one(&s);
        let html = page(&s);
        assert!(html.contains(&format!("<path class=\"e\" d=\"M0 7h{}\"/>", WIDTH - CELL)));
        assert!(html.contains(&format!("<path class=\"u\" d=\"M{} 7h5\"/>", WIDTH - CELL)));
    }

    fn sink_one(s: &Arc<State>) {
        sink(s).accept(0, result(s, 0, 1.0, None));
    }

    #[test]
    fn a_reload_keeps_the_history_of_kept_targets() {
        let s = state(&["tcp://127.0.0.1:1", "tcp://127.0.0.1:2"]);
        let mut sink = sink(&s);
        for _ in 0..5 {
            sink.accept(1, result(&s, 1, 1.0, None));
        }
        s.replace_config(config(&["tcp://127.0.0.1:9", "tcp://127.0.0.1:2"]));
        let snap = s.page_snapshot();
        assert!(snap.history[0].is_none(), "a new target starts empty");
        assert_eq!(snap.history[1].as_ref().unwrap().len(), 5);
    }

    #[test]
    fn ten_thousand_targets_page_by_page() {
        let lines: Vec<String> = (0..10_000)
            .map(|i| format!("tcp://127.0.{}.{}:{}", i / 250, i % 250 + 1, 1000 + i))
            .collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let s = state(&refs);
        let mut sink = sink(&s);
        for _ in 0..KEPT {
            for i in 0..10_000 {
                let error = (i % 1000 == 7).then_some((ErrorKind::Timeout, "timed out"));
                sink.accept(i, result(&s, i, 1.0 + (i % 13) as f64, error));
            }
        }
        let started = std::time::Instant::now();
        let html = render(&s, 1);
        let took = started.elapsed();
        assert_eq!(html.matches("<tr class=").count(), PAGE_SIZE);
        assert_eq!(
            html.matches("<tr class=\"down\"").count(),
            10,
            "every failure on page 1"
        );
        assert!(
            html.contains("page 1 of 20: targets 1–500 of 10000"),
            "{}",
            &html[..3000]
        );
        let last = render(&s, 99);
        assert!(
            last.contains("page 20 of 20: targets 9501–10000"),
            "clamped"
        );
        println!(
            "page 1 of 10,000 targets with {KEPT} results each: {} bytes, rendered in {took:?} (debug build)",
            html.len()
        );
    }

    #[test]
    fn figures_read_well() {
        assert_eq!(percent(1.0), "100%");
        assert_eq!(percent(0.9999), "100%");
        assert_eq!(percent(0.992), "99.2%");
        assert_eq!(percent(0.0), "0%");
        assert_eq!(ms(0.412), "0.41 ms");
        assert_eq!(ms(12.34), "12.3 ms");
        assert_eq!(ms(123.4), "123 ms");
        assert_eq!(ms(1234.0), "1.23 s");
        assert_eq!(ago(Duration::from_secs(4)), "4s ago");
        assert_eq!(ago(Duration::from_secs(600)), "10m ago");
        assert_eq!(ago(Duration::from_secs(7200)), "2h ago");
    }
}
