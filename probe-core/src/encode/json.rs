//! JSON and JSON lines.
//!
//! The document is exactly the serde form of [`Report`]
//! (`{"pulse": …, "summary": …, "results": […]}`), so a consumer can
//! deserialize it back into the same type. A successful result carries
//! `"error": null` rather than omitting the key: `jq '.results[].error'`
//! then needs no special case.

use std::io::{self, Write};

use crate::result::{ProbeResult, Report};

/// Write the report as pretty-printed JSON followed by a newline.
pub fn write(w: &mut dyn Write, report: &Report) -> io::Result<()> {
    let mut buf = serde_json::to_vec_pretty(report)?;
    buf.push(b'\n');
    w.write_all(&buf)
}

/// Write one result as a single JSON line followed by `\n`.
///
/// The line is serialized first and written with one `write_all`, so when
/// several results stream to one pipe, a line is never interleaved with
/// another or cut in half by a serialization error.
pub fn write_line(w: &mut dyn Write, result: &ProbeResult) -> io::Result<()> {
    let mut buf = serde_json::to_vec(result)?;
    buf.push(b'\n');
    w.write_all(&buf)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in a test, a panic is the failure report
mod tests {
    use super::*;
    use crate::encode::tests::sample_report;
    use crate::encode::{Format, write_jsonl_line, write_report};

    fn json_text(report: &Report) -> String {
        let mut out = Vec::new();
        write_report(&mut out, Format::Json, report).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn json_round_trips() {
        let report = sample_report();
        let text = json_text(&report);
        assert!(text.ends_with("}\n"));
        let back: Report = serde_json::from_str(&text).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn json_shape() {
        let report = sample_report();
        let value: serde_json::Value = serde_json::from_str(&json_text(&report)).unwrap();
        let mut top: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        top.sort_unstable(); // Value's key order depends on serde_json features
        assert_eq!(top, ["pulse", "results", "summary"]);
        assert!(value["results"][0]["error"].is_null());
        assert_eq!(value["results"][0]["success"], true);
        assert_eq!(value["results"][0]["kind"], "http");
        assert_eq!(value["results"][1]["error"]["kind"], "status");
        assert_eq!(value["summary"]["errors"]["cancelled"], 1);
        assert_eq!(value["pulse"]["runtime"], "tokio");

        // The document keeps the struct's field order: pulse, summary, results.
        let text = json_text(&report);
        let at = |k: &str| text.find(&format!("\n  \"{k}\": ")).unwrap();
        assert!(at("pulse") < at("summary") && at("summary") < at("results"));
    }

    #[test]
    fn jsonl_is_one_parsable_line_per_result() {
        let report = sample_report();
        let mut out = Vec::new();
        for r in &report.results {
            write_jsonl_line(&mut out, r).unwrap();
        }
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with('\n'));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), report.results.len());
        for (line, want) in lines.iter().zip(&report.results) {
            assert!(line.starts_with('{') && line.ends_with('}'));
            let back: ProbeResult = serde_json::from_str(line).unwrap();
            assert_eq!(&back, want);
        }
        // The multi-line error message stays on its line, escaped.
        assert!(lines[5].contains(r#"headers\n(the server"#));
    }
}
