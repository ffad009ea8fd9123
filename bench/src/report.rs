//! The one report writer: markdown documents and the tables in them, for
//! `pulse compare` and the harness.
//!
//! A [`Table`] is written twice from the same cells: as markdown in the
//! report and as CSV in the run folder, so the raw data a reader can
//! re-plot is exactly what the report shows. A [`Doc`] is the markdown
//! around it: headings, the facts of the run, tables, figures with their
//! findings beside them, and what was skipped and why.

use std::fmt::Write as _;

/// A table of text cells with a header row.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// Column names.
    pub headers: Vec<String>,
    /// Whether each column is numeric (right-aligned in markdown).
    pub numeric: Vec<bool>,
    /// The rows, each as long as `headers`.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these columns; a name ending in `#` is numeric (the
    /// `#` is dropped), so call sites read like the table they make.
    pub fn new(columns: &[&str]) -> Table {
        Table {
            headers: columns
                .iter()
                .map(|c| c.trim_end_matches('#').to_string())
                .collect(),
            numeric: columns.iter().map(|c| c.ends_with('#')).collect(),
            rows: Vec::new(),
        }
    }

    /// Add a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as GitHub markdown.
    pub fn markdown(&self) -> String {
        let mut t = String::new();
        let cell = |s: &str| s.replace('|', "\\|");
        let _ = writeln!(
            t,
            "| {} |",
            self.headers
                .iter()
                .map(|h| cell(h))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        let _ = writeln!(
            t,
            "|{}",
            self.numeric
                .iter()
                .map(|&n| if n { " ---: |" } else { " --- |" })
                .collect::<String>()
        );
        for r in &self.rows {
            let _ = writeln!(
                t,
                "| {} |",
                r.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | ")
            );
        }
        t
    }

    /// The table as CSV (RFC 4180 quoting where a cell needs it).
    pub fn csv(&self) -> String {
        let quote = |s: &str| {
            if s.contains([',', '"', '\n']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_string()
            }
        };
        let mut out = String::new();
        for r in std::iter::once(&self.headers).chain(&self.rows) {
            let _ = writeln!(
                out,
                "{}",
                r.iter().map(|c| quote(c)).collect::<Vec<_>>().join(",")
            );
        }
        out
    }
}

/// A markdown document, built top to bottom.
#[derive(Debug, Clone, Default)]
pub struct Doc {
    /// The text so far.
    text: String,
}

impl Doc {
    /// An empty document.
    pub fn new() -> Doc {
        Doc::default()
    }

    /// A heading of `level` (1 = `#`).
    pub fn heading(&mut self, level: usize, text: &str) -> &mut Doc {
        let _ = writeln!(self.text, "{} {text}\n", "#".repeat(level.clamp(1, 6)));
        self
    }

    /// A paragraph.
    pub fn para(&mut self, text: &str) -> &mut Doc {
        let _ = writeln!(self.text, "{}\n", text.trim());
        self
    }

    /// A two-column table of facts (date, command, machine, ...).
    pub fn facts(&mut self, facts: &[(&str, String)]) -> &mut Doc {
        let mut t = Table::new(&["", ""]);
        for (k, v) in facts {
            t.row(vec![(*k).to_string(), v.clone()]);
        }
        self.table(&t)
    }

    /// A table.
    pub fn table(&mut self, table: &Table) -> &mut Doc {
        let _ = writeln!(self.text, "{}", table.markdown());
        self
    }

    /// A figure: the image, with its alternative text.
    pub fn figure(&mut self, path: &str, alt: &str) -> &mut Doc {
        let _ = writeln!(self.text, "![{alt}]({path})\n");
        self
    }

    /// A bulleted list (nothing when empty).
    pub fn bullets(&mut self, items: &[String]) -> &mut Doc {
        for i in items {
            let _ = writeln!(self.text, "- {}", i.trim());
        }
        if !items.is_empty() {
            self.text.push('\n');
        }
        self
    }

    /// A finding: bold lead-in, then the explanation.
    pub fn finding(&mut self, lead: &str, why: &str) -> &mut Doc {
        let _ = writeln!(self.text, "**{}** {}\n", lead.trim(), why.trim());
        self
    }

    /// Raw markdown, as given.
    pub fn raw(&mut self, text: &str) -> &mut Doc {
        self.text.push_str(text);
        self
    }

    /// The document's text.
    pub fn text(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_is_the_same_cells_in_markdown_and_csv() {
        let mut t = Table::new(&["model", "probes/s#"]);
        t.row(vec!["tokio".into(), "3857".into()]);
        t.row(vec!["a|b, \"c\"".into(), "1".into()]);
        let md = t.markdown();
        assert_eq!(md.lines().nth(1), Some("| --- | ---: |"));
        assert!(md.contains("| tokio | 3857 |"), "{md}");
        assert!(md.contains("a\\|b"), "{md}");
        let csv = t.csv();
        assert_eq!(csv.lines().next(), Some("model,probes/s"));
        assert!(csv.contains("\"a|b, \"\"c\"\"\",1"), "{csv}");
    }

    #[test]
    fn a_doc_reads_top_to_bottom() {
        let mut d = Doc::new();
        d.heading(2, "Sweep")
            .figure("a.svg", "chart")
            .finding("tokio wins.", "Because.")
            .bullets(&["one".into()]);
        assert_eq!(
            d.text(),
            "## Sweep\n\n![chart](a.svg)\n\n**tokio wins.** Because.\n\n- one\n\n"
        );
    }
}
