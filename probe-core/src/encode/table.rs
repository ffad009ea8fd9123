//! The table: aligned columns for a terminal, then one summary line.
//!
//! ```text
//! TARGET                    KIND  RESULT     TIME  DETAIL
//! http://127.0.0.1:8080/ok  http  up       12.3ms  200 HTTP/1.1, 1 redirect
//! tcp://127.0.0.1:1         tcp   refused   250µs  connect to 127.0.0.1:1: connection refused
//!
//! 2 targets: 1 up, 1 down (refused: 1), 0 cancelled in 1.23s [tokio, 50 workers]
//! ```
//!
//! No colours: the table is often piped or pasted into a ticket, and a
//! terminal-only rendering would need a `--color` switch for no new fact.

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::result::{ErrorKind, Kind, ProbeResult, Report};

/// Longest target shown, in characters. Long enough for a typical URL; a
/// longer one is cut in the middle so the host and the path's end both show.
const TARGET_MAX: usize = 60;

/// Longest detail shown, in characters: one error message per line, and the
/// full text is in json/yaml for anyone who needs it.
const DETAIL_MAX: usize = 80;

/// Spaces between columns.
const GAP: &str = "  ";

/// Write the table and the summary line.
pub fn write(w: &mut dyn Write, report: &Report) -> io::Result<()> {
    w.write_all(render(report).as_bytes())
}

/// The whole table as a string.
fn render(report: &Report) -> String {
    let header = ["TARGET", "KIND", "RESULT", "TIME", "DETAIL"].map(String::from);
    let rows: Vec<[String; 5]> = std::iter::once(header)
        .chain(report.results.iter().map(row))
        .collect();

    // Width of every column but the last, which is never padded.
    let mut widths = [0usize; 4];
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }

    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (col, (cell, width)) in r.iter().zip(widths).enumerate() {
            let pad = " ".repeat(width - cell.chars().count());
            // TIME is a number: right-aligned so the units line up.
            if col == 3 {
                line.push_str(&pad);
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&pad);
            }
            line.push_str(GAP);
        }
        line.push_str(&r[4]);
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&summary_line(report));
    out.push('\n');
    out
}

/// One result's cells: target, kind, result, time, detail.
fn row(r: &ProbeResult) -> [String; 5] {
    let result = match (&r.error, r.success) {
        (Some(e), _) => e.kind.as_str(),
        (None, true) => "up",
        (None, false) => "down",
    };
    [
        truncate_middle(&r.target, TARGET_MAX),
        r.kind.as_str().to_owned(),
        result.to_owned(),
        duration(r.duration_ms),
        truncate_end(&detail(r), DETAIL_MAX),
    ]
}

/// What a person wants to know beyond up/down: the error message on a
/// failure, otherwise what the probe saw.
fn detail(r: &ProbeResult) -> String {
    if let Some(e) = &r.error {
        return e.message.clone();
    }
    let mut parts: Vec<String> = Vec::new();
    match r.kind {
        Kind::Http => {
            if let Some(h) = &r.http {
                let mut first = Vec::new();
                if let Some(code) = h.status_code {
                    first.push(code.to_string());
                }
                first.extend(h.version.clone());
                first.extend(h.tls_version.clone());
                if !first.is_empty() {
                    parts.push(first.join(" "));
                }
                if h.redirects > 0 {
                    parts.push(plural(h.redirects as usize, "redirect"));
                }
                if h.body_truncated {
                    parts.push(format!("body cut at {} bytes", h.body_bytes));
                }
            }
        }
        Kind::Tcp => parts.extend(r.address.clone()),
        Kind::Icmp => {
            let mut first: Vec<String> = r.address.iter().cloned().collect();
            if let Some(ttl) = r.icmp.as_ref().and_then(|i| i.reply_ttl) {
                first.push(format!("ttl={ttl}"));
            }
            if !first.is_empty() {
                parts.push(first.join(" "));
            }
            // An echo train: ping's summary line, shortened.
            if let Some(p) = r.icmp.as_ref().and_then(|i| i.packets.as_ref()) {
                parts.push(format!(
                    "{}/{} received, {:.0}% loss",
                    p.received,
                    p.sent,
                    p.loss_ratio * 100.0
                ));
                if p.duplicates > 0 {
                    parts.push(format!("+{} duplicates", p.duplicates));
                }
                if let (Some(min), Some(avg), Some(max), Some(sd)) =
                    (p.rtt_min_ms, p.rtt_avg_ms, p.rtt_max_ms, p.rtt_stddev_ms)
                {
                    parts.push(format!("rtt min/avg/max/mdev {min}/{avg}/{max}/{sd} ms"));
                }
            }
        }
    }
    // An up all_addresses target: how many addresses answered (a failing
    // one's message already says which address and how many).
    if !r.addresses.is_empty() {
        parts.push(format!("all {} addresses up", r.addresses.len()));
    }
    parts.join(", ")
}

/// `3 targets: 2 up, 1 down (timeout: 1), 0 cancelled in 1.23s [tokio, 50 workers]`.
fn summary_line(report: &Report) -> String {
    let s = &report.summary;
    let mut line = format!(
        "{}: {} up, {} down",
        plural(s.targets, "target"),
        s.up,
        s.down
    );
    // Cancelled has its own count; the parenthesis explains `down` only.
    let causes: Vec<String> = s
        .errors
        .iter()
        .filter(|(k, _)| **k != ErrorKind::Cancelled)
        .map(|(k, n)| format!("{k}: {n}"))
        .collect();
    if !causes.is_empty() {
        let _ = write!(line, " ({})", causes.join(", "));
    }
    let _ = write!(
        line,
        ", {} cancelled in {} [{}{}, {}]",
        s.cancelled,
        duration(report.pulse.duration_ms),
        report.pulse.runtime,
        // The default stack goes unsaid; a native run says so.
        if report.pulse.stack == "core" {
            ""
        } else {
            " native"
        },
        plural(report.pulse.workers, "worker"),
    );
    if s.interrupted {
        line.push_str(" (interrupted)");
    }
    line
}

/// `3 targets`, `1 target`.
fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Milliseconds for people: `250µs`, `12.3ms`, `1.20s`. Thresholds sit where
/// rounding would otherwise print `1000µs` or `1000.0ms`.
fn duration(ms: f64) -> String {
    if !ms.is_finite() || ms < 0.0 {
        "-".to_owned()
    } else if ms < 0.9995 {
        format!("{:.0}µs", ms * 1000.0)
    } else if ms < 999.95 {
        format!("{ms:.1}ms")
    } else {
        format!("{:.2}s", ms / 1000.0)
    }
}

/// Control characters (a newline in an error message) would break the row.
fn one_line(s: &str) -> impl Iterator<Item = char> + '_ {
    s.chars().map(|c| if c.is_control() { ' ' } else { c })
}

/// `s` on one line, at most `max` characters, cut at the end with `…`.
fn truncate_end(s: &str, max: usize) -> String {
    let chars: Vec<char> = one_line(s).collect();
    if chars.len() <= max {
        return chars.into_iter().collect();
    }
    let mut out: String = chars[..max - 1].iter().collect();
    out.push('…');
    out
}

/// `s` on one line, at most `max` characters, cut in the middle with `…` so
/// both a URL's host and its path's end stay visible.
fn truncate_middle(s: &str, max: usize) -> String {
    let chars: Vec<char> = one_line(s).collect();
    if chars.len() <= max {
        return chars.into_iter().collect();
    }
    let head = (max - 1) / 2;
    let tail = max - 1 - head;
    let mut out: String = chars[..head].iter().collect();
    out.push('…');
    out.extend(&chars[chars.len() - tail..]);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in a test, a panic is the failure report
mod tests {
    use super::*;
    use crate::encode::tests::sample_report;
    use crate::encode::{Format, write_report};

    fn table_text(report: &Report) -> String {
        let mut out = Vec::new();
        write_report(&mut out, Format::Table, report).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn rows_and_summary() {
        let report = sample_report();
        let text = table_text(&report);
        let lines: Vec<&str> = text.lines().collect();
        // header + 8 results + blank + summary
        assert_eq!(lines.len(), 11, "{text}");
        let want = [
            "TARGET                           KIND  RESULT       TIME  DETAIL",
            "http://127.0.0.1:8080/ok         http  up         12.3ms  200 HTTP/1.1, 1 redirect",
            "http://127.0.0.1:8080/missing    http  status      3.5ms  unexpected status 404, expected 200-299",
            "tcp://127.0.0.1:1                tcp   refused     250µs  connect to 127.0.0.1:1: connection refused",
            "icmp://127.0.0.1                 icmp  up          125µs  127.0.0.1 ttl=64",
            "http://10.0.0.1/slow             http  cancelled     0µs  scan interrupted before the probe started",
            "http://127.0.0.1:8080/q?a=\"b\"\\c  http  timeout     5.00s  deadline of 5s passed while \
             waiting for the response headers (the server accept…",
            "127.0.0.1:22                     tcp   up          3.5ms  127.0.0.1:22",
            "127.0.0.1:22                     tcp   up          4.0ms  127.0.0.1:22",
            "",
            "8 targets: 4 up, 3 down (timeout: 1, refused: 1, status: 1), 1 cancelled \
             in 1.23s [tokio, 50 workers] (interrupted)",
        ];
        assert_eq!(lines, want, "{text}");
        assert!(text.ends_with("(interrupted)\n"));
        assert!(!text.contains('\x1b'), "no colour escapes");
        assert!(
            lines.iter().all(|l| l.trim_end() == *l),
            "no trailing spaces"
        );
    }

    #[test]
    fn long_message_is_cut_to_one_line() {
        let text = table_text(&sample_report());
        let row = text.lines().nth(6).unwrap();
        let detail = row.split("5.00s  ").nth(1).unwrap();
        assert_eq!(detail.chars().count(), DETAIL_MAX);
        assert!(detail.ends_with('…'));
        assert!(
            detail.contains("headers (the server"),
            "newline became a space"
        );
    }

    #[test]
    fn long_target_is_cut_in_the_middle() {
        let mut report = sample_report();
        let long = format!("http://example.com/{}/end", "x".repeat(100));
        report.results[0].target = long;
        let text = table_text(&report);
        let cell = text.lines().nth(1).unwrap().split("  ").next().unwrap();
        assert_eq!(cell.chars().count(), TARGET_MAX);
        assert!(cell.starts_with("http://example.com/xxx"));
        assert!(cell.contains('…'));
        assert!(cell.ends_with("xxx/end"));
    }

    #[test]
    fn durations() {
        assert_eq!(duration(0.0), "0µs");
        assert_eq!(duration(0.4), "400µs");
        assert_eq!(duration(0.9996), "1.0ms");
        assert_eq!(duration(12.345), "12.3ms");
        assert_eq!(duration(999.96), "1.00s");
        assert_eq!(duration(1200.0), "1.20s");
        assert_eq!(duration(f64::NAN), "-");
    }

    #[test]
    fn empty_report() {
        let mut report = sample_report();
        report.results.clear();
        report.summary = Default::default();
        report.pulse.workers = 1;
        assert_eq!(
            table_text(&report),
            "TARGET  KIND  RESULT  TIME  DETAIL\n\n\
             0 targets: 0 up, 0 down, 0 cancelled in 1.23s [tokio, 1 worker]\n"
        );
    }
}
