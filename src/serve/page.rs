//! `/`: an HTML page listing the targets and their last state, for a
//! person (Prometheus reads `/metrics`).

use std::fmt::Write as _;

use pulse_core::redact::redact_password;

use super::state::State;
use crate::markup::escape;

/// The page, rendered from a snapshot taken under the state's locks.
pub(crate) fn render(state: &State) -> String {
    let (config, latest) = state.snapshot();
    let rounds = state.round_counts();
    let up = latest.iter().flatten().filter(|l| l.result.success).count();
    let down = latest.iter().flatten().count() - up;
    let pending = latest.iter().filter(|l| l.is_none()).count();
    let mut h = String::with_capacity(512 + 160 * config.plan.len());
    let shard = state
        .info
        .shard
        .map_or_else(String::new, |(i, n)| format!(", shard {i}/{n}"));
    let _ = write!(
        h,
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>pulse serve</title>\
         <style>body{{font-family:sans-serif;margin:1.5em}}table{{border-collapse:collapse}}\
         td,th{{padding:.2em .8em;border-bottom:1px solid #ddd;text-align:left}}\
         .up{{color:#070}}.down{{color:#b00}}.pending{{color:#777}}</style></head><body>\n\
         <h1>pulse serve</h1>\n<p>{} {} on {}, every {}{}: {} targets of {} in <code>{}</code>; \
         {} up, {} down, {} pending; {} rounds, {} skipped.</p>\n\
         <p><a href=\"/metrics\">/metrics</a> · <a href=\"/healthz\">/healthz</a> · \
         /probe?target=…</p>\n<table><tr><th>target</th><th>kind</th><th>line</th>\
         <th>state</th><th>duration</th><th>checked</th><th>error</th></tr>\n",
        pulse_core::VERSION,
        state.info.runtime,
        escape(&state.info.listen),
        pulse_core::session::fmt_duration(state.info.interval),
        shard,
        config.plan.len(),
        config.all.len(),
        escape(&config.source),
        up,
        down,
        pending,
        rounds.completed,
        rounds.skipped,
    );
    for (t, l) in config.plan.targets.iter().zip(&latest) {
        let (class, state, duration, at, error) = match l {
            None => (
                "pending",
                "pending",
                String::new(),
                String::new(),
                String::new(),
            ),
            Some(l) => (
                if l.result.success { "up" } else { "down" },
                if l.result.success { "up" } else { "down" },
                format!("{:.1} ms", l.result.duration_ms),
                humantime::format_rfc3339_seconds(l.at).to_string(),
                l.result
                    .error
                    .as_ref()
                    .map(|e| format!("{}: {}", e.kind.as_str(), e.message))
                    .unwrap_or_default(),
            ),
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{state}</td>\
             <td>{duration}</td><td>{at}</td><td>{}</td></tr>",
            escape(&redact_password(&t.text)),
            t.kind.as_str(),
            t.line,
            escape(&error),
        );
    }
    h.push_str("</table>\n</body></html>\n");
    h
}
