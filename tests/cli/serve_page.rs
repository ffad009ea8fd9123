//! `pulse serve`'s status page at `/`, as a person sees it: rendered by a
//! real browser (Debian's headless `chromium`), not only read as text.
//! Skipped, saying why, where chromium is not installed (scripts/test.sh
//! installs it).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pulse_fixtures::{HttpFixture, closed_port};

use super::serve::{Serve, sample};
use super::util::*;

/// Where Debian's package puts it.
const CHROMIUM: &str = "/usr/bin/chromium";

/// The DOM of `url` after Chromium has loaded and laid it out.
fn dump_dom(url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,900",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .stdin(Stdio::null())
        .stdout(out.reopen().unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium failed: {status}");
            break;
        }
        if start.elapsed() > Duration::from_secs(90) {
            // Our own child, by its PID.
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::read_to_string(out.path()).unwrap()
}

#[test]
fn the_status_page_renders_in_a_browser_failing_targets_first() {
    if !std::path::Path::new(CHROMIUM).exists() {
        println!(
            "skipped: {CHROMIUM} is not installed (apt-get install chromium; scripts/test.sh \
             installs it)"
        );
        return;
    }
    let http = HttpFixture::start();
    let ok = http.url("/ok");
    let failing = format!("{} expect=200", http.url("/status/500"));
    let refused = format!("tcp://{}", closed_port());
    // The healthy target first in the file: the page must move it down.
    let file = targets_file(&[ok.clone(), failing, refused.clone()]);
    let serve = Serve::start(
        "tokio",
        &[
            "-t",
            file.path().to_str().unwrap(),
            "--interval",
            "200ms",
            "--timeout",
            "2s",
        ],
    );
    serve.wait_for(Duration::from_secs(20), |m| {
        sample(m, "pulse_rounds_total").unwrap_or(0.0) >= 3.0
    });

    let dom = dump_dom(&format!("http://{}/", serve.addr));
    assert!(dom.contains("<title>2 down · pulse serve</title>"), "{dom}");
    let row = |target: &str| {
        dom.find(&format!("<div class=\"t\">{target}</div>"))
            .unwrap_or_else(|| panic!("{target} is not on the page:\n{dom}"))
    };
    let (failing_at, refused_at, ok_at) = (row(&http.url("/status/500")), row(&refused), row(&ok));
    assert!(
        failing_at < ok_at && refused_at < ok_at,
        "failing targets first:\n{dom}"
    );
    // What a person reads in each row: state, uptime, the error and its kind.
    let first_row = dom.find("<tr class=").unwrap();
    assert!(dom[first_row..].starts_with("<tr class=\"down\""), "{dom}");
    assert!(dom.contains(">100%<div class=\"sub\">of last "), "{dom}");
    assert!(dom.contains(">0%<div class=\"sub\">of last "), "{dom}");
    assert!(dom.contains("<b>status</b>"), "{dom}");
    assert!(dom.contains("status 500, expected 200"), "{dom}");
    assert!(dom.contains("<b>refused</b>"), "{dom}");
    // The strips and the latency line are SVG the browser parsed: each row
    // has a strip, and the healthy target a latency line.
    assert_eq!(dom.matches("<svg class=\"strip\"").count(), 3, "{dom}");
    assert!(dom.contains("<svg class=\"spark\""), "{dom}");
    assert!(dom.contains("http-equiv=\"refresh\""), "{dom}");
}
