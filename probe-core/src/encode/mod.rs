//! Output encoders: one module per `--output` format.
//!
//! Every encoder writes the same [`Report`] (json, yaml, table, prom) or the
//! same [`ProbeResult`] (jsonl), so a format is a view, never a different set
//! of facts. The encoders take `&mut dyn Write` and do no other IO: the CLI
//! hands them stdout (or a file), the tests a `Vec<u8>`.
//!
//! - [`json`]: the serde form of [`Report`], pretty, and jsonl (one result a line).
//! - [`yaml`]: the same data as YAML.
//! - [`table`]: aligned columns and a summary line, for people.
//! - [`prom`]: Prometheus text exposition format 0.0.4, blackbox_exporter names.
//!
//! Table and prom output is built in memory and written with one `write_all`:
//! the report is already in memory, and a single write keeps a closed pipe from
//! leaving half a line behind.

use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

use crate::result::{ProbeResult, Report};

pub mod json;
pub mod prom;
pub mod table;
pub mod yaml;

/// An output format, as named by `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns and a summary line, for a terminal.
    Table,
    /// The whole report as one pretty-printed JSON document.
    Json,
    /// One JSON object per result and line, streamed in completion order.
    Jsonl,
    /// The whole report as YAML (the same data as json).
    Yaml,
    /// Prometheus text exposition format 0.0.4.
    Prom,
}

impl Format {
    /// Every format, in the order `--help` lists them.
    pub const ALL: [Format; 5] = [
        Format::Table,
        Format::Json,
        Format::Jsonl,
        Format::Yaml,
        Format::Prom,
    ];

    /// The name `--output` takes, e.g. `jsonl`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Json => "json",
            Format::Jsonl => "jsonl",
            Format::Yaml => "yaml",
            Format::Prom => "prom",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A `--output` value that names no format; its message lists the valid ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownFormat(pub String);

impl fmt::Display for UnknownFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown output format `{}` (expected one of: ", self.0)?;
        for (i, format) in Format::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(format.name())?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for UnknownFormat {}

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| UnknownFormat(s.to_owned()))
    }
}

/// Write the whole report in `format`: json is pretty JSON plus a trailing
/// newline, yaml the same data as YAML, table the aligned table and summary,
/// prom the Prometheus text. For [`Format::Jsonl`] every result is written as
/// one line, in the report's (input) order; a streaming scan calls
/// [`write_jsonl_line`] as results arrive instead.
pub fn write_report(w: &mut dyn Write, format: Format, report: &Report) -> io::Result<()> {
    match format {
        Format::Table => table::write(w, report),
        Format::Json => json::write(w, report),
        Format::Jsonl => report
            .results
            .iter()
            .try_for_each(|r| json::write_line(w, r)),
        Format::Yaml => yaml::write(w, report),
        Format::Prom => prom::write(w, report),
    }
}

/// Write one result as one JSON line plus `\n` (jsonl streams these in
/// completion order, as results arrive).
pub fn write_jsonl_line(w: &mut dyn Write, result: &ProbeResult) -> io::Result<()> {
    json::write_line(w, result)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in a test, a panic is the failure report
pub(crate) mod tests {
    //! The hand-built report every encoder's tests share.

    use super::*;
    use crate::result::{
        ErrorKind, HttpDetails, IcmpDetails, Kind, Phases, ProbeError, ScanInfo, Summary,
    };

    /// A target whose label value needs every escape the text format has.
    const QUOTED_TARGET: &str = r#"http://127.0.0.1:8080/q?a="b"\c"#;

    fn result(target: &str, kind: Kind, line: usize) -> ProbeResult {
        ProbeResult {
            target: target.to_owned(),
            kind,
            line,
            success: true,
            duration_ms: 0.0,
            queue_wait_ms: 0.0,
            phases: Phases::default(),
            address: None,
            http: None,
            icmp: None,
            error: None,
            addresses: Vec::new(),
        }
    }

    fn failed(mut r: ProbeResult, kind: ErrorKind, message: &str) -> ProbeResult {
        r.success = false;
        r.error = Some(ProbeError::new(kind, message));
        r
    }

    /// Results covering every shape an encoder must handle: http up with
    /// phases and a redirect, http bad status, tcp refused, icmp up with a
    /// reply TTL, a cancelled probe, a target needing label escapes with a
    /// long multi-line message, and one (target, kind) listed twice.
    pub(crate) fn sample_report() -> Report {
        let mut results = Vec::new();

        let mut ok = result("http://127.0.0.1:8080/ok", Kind::Http, 1);
        ok.duration_ms = 12.345;
        ok.queue_wait_ms = 0.5;
        ok.phases = Phases {
            resolve: Some(0.0),
            connect: Some(0.25),
            processing: Some(11.0),
            transfer: Some(1.095),
            ..Phases::default()
        };
        ok.address = Some("127.0.0.1:8080".into());
        ok.http = Some(HttpDetails {
            status_code: Some(200),
            version: Some("HTTP/1.1".into()),
            redirects: 1,
            body_bytes: 2,
            body_truncated: false,
            tls_version: None,
            certificate: None,
            final_url: Some("http://127.0.0.1:8080/ok/".into()),
        });
        results.push(ok);

        let mut missing = result("http://127.0.0.1:8080/missing", Kind::Http, 2);
        missing.duration_ms = 3.5;
        missing.queue_wait_ms = 0.5;
        missing.phases = Phases {
            resolve: Some(0.0),
            connect: Some(0.125),
            processing: Some(3.0),
            transfer: Some(0.375),
            ..Phases::default()
        };
        missing.http = Some(HttpDetails {
            status_code: Some(404),
            version: Some("HTTP/1.1".into()),
            redirects: 0,
            body_bytes: 9,
            ..HttpDetails::default()
        });
        results.push(failed(
            missing,
            ErrorKind::Status,
            "unexpected status 404, expected 200-299",
        ));

        let mut refused = result("tcp://127.0.0.1:1", Kind::Tcp, 3);
        refused.duration_ms = 0.25;
        refused.queue_wait_ms = 0.75;
        refused.phases = Phases {
            resolve: Some(0.0),
            connect: Some(0.25),
            ..Phases::default()
        };
        refused.address = Some("127.0.0.1:1".into());
        results.push(failed(
            refused,
            ErrorKind::Refused,
            "connect to 127.0.0.1:1: connection refused",
        ));

        let mut ping = result("icmp://127.0.0.1", Kind::Icmp, 4);
        ping.duration_ms = 0.125;
        ping.queue_wait_ms = 1.0;
        ping.phases = Phases {
            resolve: Some(0.0),
            rtt: Some(0.125),
            ..Phases::default()
        };
        ping.address = Some("127.0.0.1".into());
        ping.icmp = Some(IcmpDetails {
            sequence: 7,
            reply_ttl: Some(64),
            packets: None,
        });
        results.push(ping);

        let cancelled = result("http://10.0.0.1/slow", Kind::Http, 5);
        results.push(failed(
            cancelled,
            ErrorKind::Cancelled,
            "scan interrupted before the probe started",
        ));

        let mut quoted = result(QUOTED_TARGET, Kind::Http, 6);
        quoted.duration_ms = 5000.0;
        quoted.queue_wait_ms = 2.0;
        quoted.phases = Phases {
            resolve: Some(0.0),
            connect: Some(0.5),
            ..Phases::default()
        };
        results.push(failed(
            quoted,
            ErrorKind::Timeout,
            "deadline of 5s passed while waiting for the response headers\n\
             (the server accepted the connection and then sent nothing at all)",
        ));

        for line in [7, 8] {
            let mut dup = result("127.0.0.1:22", Kind::Tcp, line);
            dup.duration_ms = 0.5 * line as f64;
            dup.queue_wait_ms = 1.5;
            dup.phases = Phases {
                resolve: Some(0.0),
                connect: Some(0.5 * line as f64),
                ..Phases::default()
            };
            dup.address = Some("127.0.0.1:22".into());
            results.push(dup);
        }

        let mut summary = Summary::default();
        for r in &results {
            summary.add(r);
        }
        summary.interrupted = true;
        Report {
            pulse: ScanInfo {
                version: "0.1.0".into(),
                runtime: "tokio".into(),
                stack: "core".into(),
                workers: 50,
                runtime_threads: 2,
                started_at: "2026-11-02T10:00:00Z".into(),
                duration_ms: 1234.5,
            },
            summary,
            results,
        }
    }

    #[test]
    fn format_names_round_trip() {
        for f in Format::ALL {
            assert_eq!(f.name().parse::<Format>(), Ok(f));
            assert_eq!(f.to_string(), f.name());
        }
    }

    #[test]
    fn unknown_format_lists_valid_names() {
        let err = "xml".parse::<Format>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown output format `xml` (expected one of: table, json, jsonl, yaml, prom)"
        );
    }

    #[test]
    fn write_report_dispatches_every_format() {
        let report = sample_report();
        for f in Format::ALL {
            let mut out = Vec::new();
            write_report(&mut out, f, &report).unwrap();
            let text = String::from_utf8(out).unwrap();
            assert!(text.ends_with('\n'), "{f}: no trailing newline");
        }
        let mut out = Vec::new();
        write_report(&mut out, Format::Jsonl, &report).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap().lines().count(),
            report.results.len()
        );
    }
}
