//! YAML: the same document as json, for people who prefer to read it that way.

use std::io::{self, Write};

use crate::result::Report;

/// Write the report as a YAML document.
pub fn write(w: &mut dyn Write, report: &Report) -> io::Result<()> {
    // Serialize to memory first: one write_all, and a serializer error never
    // leaves half a document on stdout.
    let text = serde_norway::to_string(report).map_err(io::Error::other)?;
    w.write_all(text.as_bytes())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in a test, a panic is the failure report
mod tests {
    use super::*;
    use crate::encode::tests::sample_report;
    use crate::encode::{Format, write_report};

    #[test]
    fn yaml_round_trips() {
        let report = sample_report();
        let mut out = Vec::new();
        write_report(&mut out, Format::Yaml, &report).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("pulse:\n"));
        assert!(text.contains("\nsummary:\n"));
        assert!(text.contains("\nresults:\n"));
        assert!(text.contains("error: null"));
        let back: Report = serde_norway::from_str(&text).unwrap();
        assert_eq!(back, report);
    }
}
