//! The one chart writer: plain SVG, for `pulse compare` and the harness.
//!
//! Two shapes cover every figure in the reports: [`Bars`] (one panel per
//! metric, one bar per model, each labelled with its value and its ratio to
//! the first model) and [`Lines`] (one line per model over a swept
//! variable, with optional log axes, since workers and unit counts sweep
//! over three decades). Written by hand rather than with plotters: these
//! are a few dozen rectangles, lines and labels, plotters' text layout
//! wants a font file to measure labels (its `ttf` feature), and the output
//! here is byte-for-byte reproducible from the same figures, so a report
//! regenerated from the same CSV does not change.

use std::fmt::Write as _;

/// Colours by series position: the five models first (in `MODELS` order),
/// then peers. Picked from the Tableau 10 palette, which stays apart for
/// the common kinds of colour blindness.
const COLOURS: [&str; 10] = [
    "#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#ff9da6", "#9d755d",
    "#bab0ac", "#eeca3b",
];

/// Escape text for SVG or HTML (XML), in element content and in quoted
/// attribute values alike.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A value as a label: no decimals from 100 up, two below.
fn label(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// One panel of a bar chart: a metric, one bar per row.
#[derive(Debug, Clone)]
pub struct Panel {
    /// What is measured and which way is better.
    pub title: String,
    /// Unit printed after each value (` MiB`), may be empty.
    pub unit: String,
    /// (row label, value), in the order drawn.
    pub rows: Vec<(String, f64)>,
}

/// Horizontal bar panels, stacked.
#[derive(Debug, Clone)]
pub struct Bars {
    /// The chart's title.
    pub title: String,
    /// The panels, top to bottom.
    pub panels: Vec<Panel>,
}

impl Bars {
    /// The SVG text. Each bar carries its value and, after the first row,
    /// its ratio to the first row (`0.98x tokio`).
    pub fn svg(&self) -> String {
        let (label_w, bar_w, row_h, gap) = (110.0, 340.0, 22.0, 34.0);
        let width = label_w + bar_w + 170.0;
        let heights: Vec<f64> = self
            .panels
            .iter()
            .map(|p| gap + p.rows.len() as f64 * row_h)
            .collect();
        let height = 40.0 + heights.iter().sum::<f64>();
        let mut svg = open(width, height, &self.title);
        let mut top = 40.0;
        for (panel, h) in self.panels.iter().zip(&heights) {
            let _ = writeln!(
                svg,
                r#"<text x="8" y="{}" font-weight="bold">{}</text>"#,
                top + 16.0,
                escape(&panel.title)
            );
            let max = panel
                .rows
                .iter()
                .map(|r| r.1)
                .fold(0.0_f64, f64::max)
                .max(1e-9);
            let base = panel.rows.first().filter(|r| r.1 > 0.0);
            for (i, (name, v)) in panel.rows.iter().enumerate() {
                let y = top + gap - 8.0 + i as f64 * row_h;
                let w = (v / max * bar_w).max(1.0);
                let ratio = match base {
                    Some((b, bv)) if i > 0 => format!(" ({:.2}x {})", v / bv, escape(b)),
                    _ => String::new(),
                };
                let _ = writeln!(
                    svg,
                    r#"<text x="8" y="{}">{}</text><rect x="{label_w}" y="{y}" width="{w:.1}" height="{}" fill="{}"/><text x="{:.1}" y="{}">{}{}{ratio}</text>"#,
                    y + 14.0,
                    escape(name),
                    row_h - 6.0,
                    COLOURS[i % COLOURS.len()],
                    label_w + w + 6.0,
                    y + 14.0,
                    label(*v),
                    escape(&panel.unit),
                );
            }
            top += h;
        }
        svg.push_str("</svg>\n");
        svg
    }
}

/// One line of a line chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Its legend label (a model's name).
    pub name: String,
    /// (x, y) points, drawn in x order; a missing point (a model that
    /// could not run there) is simply absent.
    pub points: Vec<(f64, f64)>,
}

/// A line chart: y over a swept x, one series per model.
#[derive(Debug, Clone)]
pub struct Lines {
    /// The chart's title.
    pub title: String,
    /// The x axis: what was swept.
    pub x_label: String,
    /// The y axis: what was measured, with its unit and which way is better.
    pub y_label: String,
    /// Log scale on x (sweeps over decades).
    pub log_x: bool,
    /// Log scale on y.
    pub log_y: bool,
    /// The lines; colours follow their order.
    pub series: Vec<Series>,
}

/// Plot area and margins of a line chart, pixels.
const PLOT: (f64, f64, f64, f64) = (70.0, 40.0, 460.0, 260.0);

impl Lines {
    /// The SVG text: axes with ticks at powers of ten (log) or at five even
    /// steps (linear), the lines with their points marked, and a legend.
    pub fn svg(&self) -> String {
        let (left, top, w, h) = PLOT;
        let width = left + w + 150.0;
        let height = top + h + 50.0;
        let mut svg = open(width, height, &self.title);
        let points = || self.series.iter().flat_map(|s| s.points.iter());
        let xs = Axis::fit(points().map(|p| p.0), self.log_x, false);
        let ys = Axis::fit(points().map(|p| p.1), self.log_y, true);
        let px = |x: f64| left + xs.at(x) * w;
        let py = |y: f64| top + h - ys.at(y) * h;
        let _ = writeln!(
            svg,
            r##"<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="none" stroke="#999"/>"##
        );
        for t in xs.ticks() {
            let x = px(t);
            let _ = writeln!(
                svg,
                r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{}" stroke="#eee"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
                top + h,
                top + h + 16.0,
                label(t)
            );
        }
        for t in ys.ticks() {
            let y = py(t);
            let _ = writeln!(
                svg,
                r##"<line x1="{left}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
                left + w,
                left - 6.0,
                y + 4.0,
                label(t)
            );
        }
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text><text x="14" y="{}" transform="rotate(-90 14 {})" text-anchor="middle">{}</text>"#,
            left + w / 2.0,
            top + h + 36.0,
            escape(&self.x_label),
            top + h / 2.0,
            top + h / 2.0,
            escape(&self.y_label)
        );
        for (i, s) in self.series.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            let mut pts: Vec<(f64, f64)> = s.points.clone();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let path: Vec<String> = pts
                .iter()
                .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
                .collect();
            let _ = writeln!(
                svg,
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
                path.join(" ")
            );
            for &(x, y) in &pts {
                let _ = writeln!(
                    svg,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}"/>"#,
                    px(x),
                    py(y)
                );
            }
            let ly = top + 10.0 + i as f64 * 18.0;
            let _ = writeln!(
                svg,
                r#"<rect x="{}" y="{}" width="12" height="12" fill="{colour}"/><text x="{}" y="{}">{}</text>"#,
                left + w + 14.0,
                ly - 10.0,
                left + w + 32.0,
                ly,
                escape(&s.name)
            );
        }
        svg.push_str("</svg>\n");
        svg
    }
}

/// An axis fitted to the data: where a value falls, 0..1 along it.
struct Axis {
    /// Low end (in log10 units on a log axis).
    lo: f64,
    /// High end (same units).
    hi: f64,
    /// Whether values are placed by their logarithm.
    log: bool,
}

impl Axis {
    /// Fit to the values; a linear y axis starts at zero so that bars of
    /// different models are not exaggerated by a cut-off baseline.
    fn fit(values: impl Iterator<Item = f64>, log: bool, from_zero: bool) -> Axis {
        let vals: Vec<f64> = values
            .filter(|v| v.is_finite() && (!log || *v > 0.0))
            .map(|v| if log { v.log10() } else { v })
            .collect();
        let mut lo = vals.iter().copied().fold(f64::INFINITY, f64::min);
        let mut hi = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if vals.is_empty() {
            (lo, hi) = (0.0, 1.0);
        }
        if log {
            (lo, hi) = (lo.floor(), hi.ceil().max(lo.floor() + 1.0));
        } else {
            if from_zero {
                lo = lo.min(0.0);
            }
            hi = if hi > lo {
                hi + (hi - lo) * 0.05
            } else {
                lo + 1.0
            };
        }
        Axis { lo, hi, log }
    }

    /// Where `v` falls, 0 at the low end and 1 at the high end.
    fn at(&self, v: f64) -> f64 {
        let v = if self.log { v.max(1e-12).log10() } else { v };
        ((v - self.lo) / (self.hi - self.lo)).clamp(0.0, 1.0)
    }

    /// Tick values: each power of ten (log), or six even steps (linear).
    fn ticks(&self) -> Vec<f64> {
        if self.log {
            (self.lo as i32..=self.hi as i32)
                .map(|e| 10f64.powi(e))
                .collect()
        } else {
            (0..=5)
                .map(|i| self.lo + (self.hi - self.lo) * f64::from(i) / 5.0)
                .collect()
        }
    }
}

/// The SVG header and title.
fn open(width: f64, height: f64, title: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"8\" y=\"20\" font-size=\"14\" font-weight=\"bold\">{}</text>\n",
        escape(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_markup_character_is_escaped() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(escape("plain ✓"), "plain ✓");
    }

    #[test]
    fn bars_carry_values_and_ratios_to_the_first_row() {
        let svg = Bars {
            title: "t <1>".into(),
            panels: vec![Panel {
                title: "probes/s".into(),
                unit: String::new(),
                rows: vec![("tokio".into(), 200.0), ("threads".into(), 100.0)],
            }],
        }
        .svg();
        assert!(svg.contains("t &lt;1&gt;"), "{svg}");
        assert!(svg.contains(">200<"), "{svg}");
        assert!(svg.contains("(0.50x tokio)"), "{svg}");
        assert_eq!(svg.matches("<rect x=\"110\"").count(), 2, "{svg}");
    }

    #[test]
    fn a_log_axis_ticks_every_decade_and_places_points_in_order() {
        let chart = Lines {
            title: "sweep".into(),
            x_label: "workers".into(),
            y_label: "probes/s".into(),
            log_x: true,
            log_y: false,
            series: vec![Series {
                name: "tokio".into(),
                points: vec![(1000.0, 3.0), (10.0, 1.0), (100.0, 2.0)],
            }],
        };
        let axis = Axis::fit([10.0, 100.0, 1000.0].into_iter(), true, false);
        assert_eq!(axis.ticks(), vec![10.0, 100.0, 1000.0]);
        assert!((axis.at(100.0) - 0.5).abs() < 1e-9);
        let svg = chart.svg();
        assert_eq!(svg.matches("<circle").count(), 3);
        // The polyline runs left to right whatever order the points came in.
        let line = svg.lines().find(|l| l.starts_with("<polyline")).unwrap();
        let xs: Vec<f64> = line
            .split('"')
            .nth(1)
            .unwrap()
            .split(' ')
            .map(|p| p.split(',').next().unwrap().parse().unwrap())
            .collect();
        assert!(xs.windows(2).all(|w| w[0] < w[1]), "{line}");
    }
}
