//! What `pulse scan` puts on the wire for URLs with characters HTTP does not
//! allow raw in a request line: the server receives them percent-encoded,
//! from the targets file and from a redirect's `Location` alike.

use pulse_fixtures::HttpFixture;

use super::util::*;
use crate::conformance::redirects::pct;

/// The request line of every request `http` received.
fn request_lines(http: &HttpFixture) -> Vec<String> {
    http.request_heads()
        .iter()
        .map(|h| h.split("\r\n").next().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn the_server_receives_an_encoded_request_line() {
    let http = HttpFixture::start();
    let raw = r#"/ok/a"b\é{|}^[`<]%41%zz?q="x"&é?"#;
    let file = targets_file(&[http.url(raw)]);
    let out = run(&["scan", "-t", file.path().to_str().unwrap(), "-o", "json"]);
    assert_eq!(code(&out), 1, "a 404, not a bad target: {}", stderr(&out));
    let r = &report(&out).results[0];
    assert_eq!(r.http.as_ref().unwrap().status_code, Some(404), "{r:?}");
    assert_eq!(r.target, http.url(raw), "the target is shown as written");
    assert_eq!(
        request_lines(&http),
        vec![
            "GET /ok/a%22b%5C%C3%A9%7B%7C%7D%5E%5B%60%3C%5D%41%25zz?q=%22x%22&%C3%A9? HTTP/1.1"
                .to_owned()
        ]
    );

    http.reset_stats();
    let hop = "/r/a b\"c\\é";
    let file = targets_file(&[http.url(&format!("/location/{}", pct(hop)))]);
    run(&["scan", "-t", file.path().to_str().unwrap(), "-o", "json"]);
    let lines = request_lines(&http);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[1], "GET /r/a%20b%22c%5C%C3%A9 HTTP/1.1");
}
