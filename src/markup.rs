//! Escaping text for the markup pulse writes: the SVG charts of `compare`
//! and the HTML page of `serve`. One function, kept with the chart writer
//! in `pulse_bench::chart`, which the harness's charts use too.

pub(crate) use pulse_bench::chart::escape;
