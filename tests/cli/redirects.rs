//! Redirects through the CLI: `pulse serve` follows a hop only to its
//! configured targets' hosts (in rounds and on `/probe`), unless told
//! otherwise; `pulse scan` follows any.

use std::time::Duration;

use pulse_fixtures::HttpFixture;

use super::serve::{Serve, sample, successes};
use super::util::*;
use crate::conformance::redirects::pct;

/// `/probe?target=` for `t`, with the query escaped.
fn probe_path(t: &str) -> String {
    format!("/probe?target={}", pct(t))
}

/// A (configured) redirects to B (not configured), to its own `/ok`, and to
/// C (configured). In serve's rounds and on `/probe`, the hop to B is
/// refused as `protocol` with a message naming the way out, and B never
/// sees a connection; the other hops are followed.
fn serve_refuses_unconfigured_hops(runtime: &str) {
    let a = HttpFixture::start();
    let b = HttpFixture::start();
    let c = HttpFixture::start();
    let to = |url: String| a.url(&format!("/location/{}", pct(&url)));
    let (to_b, to_self, to_c) = (to(b.url("/ok")), to("/ok".into()), to(c.url("/ok")));
    let file = targets_file(&[to_b.clone(), to_self.clone(), to_c.clone(), c.url("/ok")]);
    let serve = Serve::start(
        runtime,
        &[
            "-t",
            file.path().to_str().unwrap(),
            "--interval",
            "1h",
            "--spread",
            "0",
        ],
    );
    let m = serve.wait_for(Duration::from_secs(20), |m| {
        sample(m, "pulse_rounds_total").unwrap_or(0.0) >= 1.0
    });
    let mut got = successes(&m);
    got.sort_by(|x, y| x.0.cmp(&y.0));
    let mut want = vec![
        (to_b.clone(), 0.0),
        (to_self, 1.0),
        (to_c, 1.0),
        (c.url("/ok"), 1.0),
    ];
    want.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(got, want, "{m}");
    let error = format!(r#"pulse_probe_error{{target="{to_b}",kind="http",error="protocol"}}"#);
    assert_eq!(sample(&m, &error), Some(1.0), "{m}");
    let (_, page) = serve.get("/");
    // The page shows the kind, then the message.
    let refused = format!(
        "<b>protocol</b> <span class=\"msg\">redirect to {} refused: not a configured target",
        b.url("/ok")
    );
    assert!(page.contains(&refused), "{page}");
    assert!(page.contains("--allow-redirect-host"), "{page}");

    let (status, body) = serve.get(&probe_path(&to_b));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\nprobe_success 0\n"), "{body}");
    assert!(
        body.contains("\npulse_probe_error{error=\"protocol\"} 1\n"),
        "{body}"
    );
    assert_eq!(b.stats().accepted, 0, "B is never contacted");
}

#[test]
fn serve_refuses_unconfigured_hops_tokio() {
    serve_refuses_unconfigured_hops("tokio");
}

#[test]
fn serve_refuses_unconfigured_hops_smol() {
    serve_refuses_unconfigured_hops("smol");
}

#[test]
fn serve_refuses_unconfigured_hops_async_std() {
    serve_refuses_unconfigured_hops("async-std");
}

#[test]
fn serve_refuses_unconfigured_hops_threads() {
    serve_refuses_unconfigured_hops("threads");
}

#[test]
fn serve_refuses_unconfigured_hops_rayon() {
    serve_refuses_unconfigured_hops("rayon");
}

/// `--allow-redirect-host HOST:PORT` lets the hop to B through (rounds and
/// `/probe`); `--allow-any-target` implies any redirect; `pulse scan` follows
/// it as before. The flag is parsed in the CLI and the policy applied in the
/// core, the same code for every model, so one model is enough here.
#[test]
fn the_allow_flags_and_scan_follow_the_hop() {
    let a = HttpFixture::start();
    let b = HttpFixture::start();
    let to_b = a.url(&format!("/location/{}", pct(&b.url("/ok"))));
    let file = targets_file(std::slice::from_ref(&to_b));
    let path = file.path().to_str().unwrap();
    let base = ["-t", path, "--interval", "1h", "--spread", "0"];
    let ready = |m: &str| sample(m, "pulse_rounds_total").unwrap_or(0.0) >= 1.0;

    let allowed = b.addr().to_string();
    let serve = Serve::start(
        "tokio",
        &[&base[..], &["--allow-redirect-host", &allowed]].concat(),
    );
    let m = serve.wait_for(Duration::from_secs(20), ready);
    assert_eq!(successes(&m), vec![(to_b.clone(), 1.0)], "{m}");
    let (_, body) = serve.get(&probe_path(&to_b));
    assert!(body.contains("\nprobe_success 1\n"), "{body}");
    assert_eq!(b.stats().requests, 2, "the round's hop and /probe's");
    drop(serve);

    // Another port on B's host is still refused.
    let other_port = format!("127.0.0.1:{}", b.addr().port().wrapping_add(1).max(1));
    let serve = Serve::start(
        "tokio",
        &[&base[..], &["--allow-redirect-host", &other_port]].concat(),
    );
    let m = serve.wait_for(Duration::from_secs(20), ready);
    assert_eq!(successes(&m), vec![(to_b.clone(), 0.0)], "{m}");
    drop(serve);
    assert_eq!(b.stats().requests, 2);

    for flag in ["--allow-any-redirect", "--allow-any-target"] {
        let serve = Serve::start("tokio", &[&base[..], &[flag]].concat());
        let m = serve.wait_for(Duration::from_secs(20), ready);
        assert_eq!(successes(&m), vec![(to_b.clone(), 1.0)], "{flag}: {m}");
    }
    assert_eq!(b.stats().requests, 4);

    let out = run(&["scan", "-t", path, "-o", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let r = &report(&out).results[0];
    assert!(r.success, "{r:?}");
    assert_eq!(b.stats().requests, 5, "scan follows the hop to B");
}

/// A bad `--allow-redirect-host` is a usage error that says what it wants.
#[test]
fn a_bad_allow_redirect_host_is_a_usage_error() {
    let a = HttpFixture::start();
    let file = targets_file(&[a.url("/ok")]);
    let out = run(&[
        "serve",
        "-t",
        file.path().to_str().unwrap(),
        "--allow-redirect-host",
        "http://x/",
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("HOST:PORT"), "{}", stderr(&out));
}
