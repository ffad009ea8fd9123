//! `pulse check`: one target from the command line.

use pulse_core::result::ErrorKind;
use pulse_fixtures::HttpFixture;

use super::util::*;

#[test]
fn self_signed_tls_fails_as_tls_and_passes_with_insecure() {
    let (https, _tls) = HttpFixture::start_tls();
    let url = https.url("/ok");
    let out = run(&["check", &url, "-o", "json"]);
    assert_eq!(code(&out), 1);
    let rep = report(&out);
    assert_eq!(kind(&rep.results[0]), Some(ErrorKind::Tls));

    let out = run(&["check", &format!("{url} insecure"), "-o", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(report(&out).results[0].success);
}

#[test]
fn check_prints_a_table_by_default_when_piped_with_table_output() {
    let http = HttpFixture::start();
    let out = run(&["check", &http.url("/ok"), "--output", "table"]);
    assert_eq!(code(&out), 0);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("TARGET"), "{text}");
    assert!(text.contains(" up "), "{text}");
    assert!(text.contains("200 HTTP/1.1"), "{text}");
}

#[test]
fn check_honours_timeout() {
    let http = HttpFixture::start();
    let out = run(&[
        "check",
        &http.url("/stall"),
        "--timeout",
        "300ms",
        "-o",
        "json",
    ]);
    assert_eq!(code(&out), 1);
    let r = &report(&out).results[0];
    assert_eq!(kind(r), Some(ErrorKind::Timeout));
    assert!(r.error.as_ref().unwrap().message.contains("300ms"));
}
