//! Redirect hygiene on every model: serve's policy refuses a hop to a host
//! no configured target names before connecting to it, and a `Location`
//! that is not an http(s) URL ends the probe. Both are decided in the core's
//! session, so the five models must agree exactly.

use std::sync::Arc;
use std::time::Duration;

use pulse_core::model::Collect;
use pulse_core::plan::{Options, Plan};
use pulse_core::redirect::RedirectPolicy;
use pulse_core::result::{ErrorKind, ProbeResult};
use pulse_core::shutdown::Shutdown;
use pulse_core::target::parse_targets;
use pulse_fixtures::HttpFixture;

use super::suite::RunFn;

/// `text` percent-encoded whole, for the fixture's `/location/{text}`.
pub fn pct(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Run `lines` with serve's policy (`listed`) or scan's (any).
fn run(model: RunFn, lines: &[String], listed: bool) -> Vec<ProbeResult> {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let targets = parse_targets("redirects", text.as_bytes()).expect("valid targets");
    let redirects = if listed {
        RedirectPolicy::configured(&targets, &[])
    } else {
        RedirectPolicy::Any
    };
    let options = Options {
        workers: 4,
        timeout: Duration::from_secs(5),
        redirects,
        ..Options::default()
    };
    let mut no_files = |_: &std::path::Path| Err(std::io::ErrorKind::NotFound.into());
    let plan = Plan::new("redirects", targets, options, &mut no_files).expect("valid plan");
    let plan = Arc::new(plan);
    let mut sink = Collect::new(plan.len());
    model(plan, Shutdown::new(Duration::ZERO), &mut sink).expect("the scan sets up");
    sink.into_ordered()
}

fn kind(r: &ProbeResult) -> Option<ErrorKind> {
    r.error.as_ref().map(|e| e.kind)
}

fn message(r: &ProbeResult) -> &str {
    r.error.as_ref().map_or("", |e| e.message.as_str())
}

/// A (configured) redirects to B (not configured): refused, and B never sees
/// a connection; to its own path and to C (configured): followed. With the
/// policy that scan uses, the same hop to B is followed.
pub fn serve_policy(model: RunFn) {
    let a = HttpFixture::start();
    let b = HttpFixture::start();
    let c = HttpFixture::start();
    let to = |url: String| a.url(&format!("/location/{}", pct(&url)));
    let lines = vec![
        to(b.url("/ok")),
        to("/ok".into()),
        to(c.url("/ok")),
        c.url("/status/204"),
    ];
    let results = run(model, &lines, true);
    let got: Vec<_> = results.iter().map(kind).collect();
    assert_eq!(
        got,
        vec![Some(ErrorKind::Protocol), None, None, None],
        "{results:#?}"
    );
    assert_eq!(
        message(&results[0]),
        format!(
            "redirect to {} refused: not a configured target (pulse serve follows redirects \
             only to the hosts and ports of its configured targets; allow more with \
             --allow-redirect-host HOST[:PORT] or --allow-any-redirect)",
            b.url("/ok")
        )
    );
    assert_eq!(b.stats().accepted, 0, "the refused hop is never contacted");
    assert_eq!(c.stats().requests, 2, "C: the hop from A and its own probe");

    let results = run(model, &lines[..1], false);
    assert_eq!(kind(&results[0]), None, "{results:#?}");
    assert_eq!(b.stats().requests, 1, "scan's policy follows the hop to B");
}

/// `Location: file:///etc/passwd` (and friends) ends the probe as
/// `protocol`; the server sees one request per probe, never
/// `GET /file:///etc/passwd`.
pub fn non_http_locations(model: RunFn) {
    let a = HttpFixture::start();
    let locations = [
        "file:///etc/passwd",
        "mailto:x@y",
        "javascript:alert(1)",
        "http://[::1",
    ];
    let lines: Vec<String> = locations
        .iter()
        .map(|l| a.url(&format!("/location/{}", pct(l))))
        .collect();
    let results = run(model, &lines, false);
    for (r, l) in results.iter().zip(locations) {
        assert_eq!(kind(r), Some(ErrorKind::Protocol), "{l}: {r:#?}");
        assert_eq!(
            message(r),
            format!("redirect to an unusable location {l:?}"),
            "{l}"
        );
    }
    assert_eq!(a.stats().requests, locations.len() as u64);
}
