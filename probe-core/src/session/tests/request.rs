//! Request options on the wire, and certificate facts in the result.

use super::*;

use crate::request::Auth;

/// The request text `text`'s session writes, and its outcome, against
/// one response.
fn request_of(text: &str, response: &[u8]) -> (String, Outcome) {
    let r = run(text, DEFAULT_BODY_CAP, &[response]);
    (String::from_utf8(r.request).unwrap(), r.outcome)
}

#[test]
fn a_post_sends_its_method_headers_and_body() {
    let (req, o) = request_of(
        r#"http://127.0.0.1:8080/api method=POST header="X-Probe: one" header="X-Probe: two" header="Accept: application/json" body="{\"q\":1}""#,
        OK_5,
    );
    assert!(o.success, "{o:?}");
    assert!(req.starts_with("POST /api HTTP/1.1\r\n"), "{req}");
    let lower = req.to_ascii_lowercase();
    assert!(
        lower.contains("\r\nx-probe: one\r\nx-probe: two\r\n"),
        "{req}"
    );
    assert!(lower.contains("\r\ncontent-length: 7\r\n"), "{req}");
    assert_eq!(
        lower.matches("\r\naccept:").count(),
        1,
        "the target's Accept replaces pulse's: {req}"
    );
    assert!(lower.contains("\r\naccept: application/json\r\n"), "{req}");
    assert!(req.ends_with("\r\n\r\n{\"q\":1}"), "{req}");
    assert!(
        !lower.contains("accept-encoding"),
        "nothing asked for compression: {req}"
    );
}

#[test]
fn a_body_alone_makes_a_post_and_a_bare_post_says_length_zero() {
    let (req, _) = request_of("http://127.0.0.1:8080/ body=hi", OK_5);
    assert!(req.starts_with("POST / HTTP/1.1\r\n"), "{req}");
    let (req, _) = request_of("http://127.0.0.1:8080/ method=PUT", OK_5);
    assert!(req.starts_with("PUT / HTTP/1.1\r\n"), "{req}");
    assert!(
        req.to_ascii_lowercase()
            .contains("\r\ncontent-length: 0\r\n"),
        "{req}"
    );
}

#[test]
fn a_host_header_replaces_the_urls_host() {
    let (req, _) = request_of(r#"http://127.0.0.1:8080/ header="Host: app.example""#, OK_5);
    let lower = req.to_ascii_lowercase();
    assert!(lower.contains("\r\nhost: app.example\r\n"), "{req}");
    assert_eq!(lower.matches("\r\nhost:").count(), 1, "{req}");
}

#[test]
fn a_head_request_reads_no_body() {
    let (req, o) = request_of(
        "http://127.0.0.1:8080/ method=HEAD",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
    );
    assert!(req.starts_with("HEAD / HTTP/1.1\r\n"), "{req}");
    assert!(o.success, "{o:?}");
    assert_eq!(http(&o).body_bytes, 0);
}

#[test]
fn a_303_turns_the_post_into_a_get_without_its_body() {
    let t0 = Instant::now();
    let mut s = session("http://127.0.0.1:8080/form body=secret-form", t0);
    connect(&mut s, "127.0.0.1:8080", at(t0, 1));
    let first = String::from_utf8(drain(&mut s, at(t0, 2))).unwrap();
    assert!(first.starts_with("POST /form HTTP/1.1\r\n"), "{first}");
    feed(
        &mut s,
        b"HTTP/1.1 303 See Other\r\nLocation: /done\r\nContent-Length: 0\r\n\r\n",
        at(t0, 3),
    );
    connect(&mut s, "127.0.0.1:8080", at(t0, 4));
    let second = String::from_utf8(drain(&mut s, at(t0, 5))).unwrap();
    assert!(second.starts_with("GET /done HTTP/1.1\r\n"), "{second}");
    assert!(!second.contains("secret-form"), "{second}");
    assert!(
        !second.to_ascii_lowercase().contains("content-length"),
        "{second}"
    );
}

#[test]
fn credentials_are_sent_and_never_shown() {
    let mut t = target("http://127.0.0.1:8080/ auth_file=token");
    let mut header = http::HeaderValue::from_static("Bearer s3cret");
    header.set_sensitive(true);
    t.http.as_mut().unwrap().auth = Some(Auth::Header(header));
    let t0 = Instant::now();
    let mut s = Session::new(&t, Some(insecure()), DEFAULT_BODY_CAP, t0);
    connect(&mut s, "127.0.0.1:8080", at(t0, 1));
    let req = String::from_utf8(drain(&mut s, at(t0, 2))).unwrap();
    assert!(
        req.to_ascii_lowercase()
            .contains("\r\nauthorization: bearer s3cret\r\n"),
        "{req}"
    );
    feed(
        &mut s,
        b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n",
        at(t0, 3),
    );
    let o = s.finish(at(t0, 3));
    assert!(!format!("{o:?}").contains("s3cret"));
    assert!(!format!("{t:?}").contains("s3cret"));
}

#[test]
fn a_file_the_plan_did_not_read_fails_the_probe_clearly() {
    let o = exchange("http://127.0.0.1:8080/ body_file=req.json", &[OK_5]);
    assert_eq!(error_kind(&o), Some(ErrorKind::Protocol));
    assert_eq!(
        message(&o),
        "cannot build the request: body_file=req.json was not read"
    );
}

fn tls_peer() -> Peer<'static> {
    Peer {
        config: server_config(&[&rustls::version::TLS13]),
        response: OK_5,
        close_notify: false,
        piece: usize::MAX,
    }
}

/// The test leaf and CA are valid 2000-2100 (their PEMs above).
const Y2100: i64 = 4_102_444_800;

#[test]
fn a_verified_handshake_reports_the_leaf_and_the_chain_to_the_root() {
    let r = tls_run("https://127.0.0.1:8443/ok", with_test_ca(), &tls_peer());
    assert!(r.outcome.success, "{:?}", r.outcome);
    let c = http(&r.outcome)
        .certificate
        .clone()
        .expect("certificate facts");
    assert!(c.subject.contains("CN="), "{c:?}");
    assert_ne!(c.subject, c.issuer, "a leaf signed by the CA: {c:?}");
    assert!(!c.serial.is_empty());
    assert!(c.not_after_unix > c.not_before_unix);
    assert!(
        (Y2100 - 86_400..=Y2100 + 86_400).contains(&c.not_after_unix),
        "{c:?}"
    );
    assert_eq!(
        c.earliest_expiry_unix, c.not_after_unix,
        "the server sends its leaf only"
    );
    // The root came from the ca= bundle, so the verified chain includes
    // it; its expiry is the chain's if earlier.
    let chain = c.chain_expiry_unix.expect("verified");
    assert!(chain <= c.not_after_unix);
    assert!(
        c.checked_at_unix > 1_700_000_000,
        "rustls's clock, not zero"
    );
    assert!(c.expires_in() > 0);
}

#[test]
fn a_failed_verification_still_reports_the_certificate() {
    // The webpki roots do not include the test CA.
    let r = tls_run(
        "https://127.0.0.1:8443/ok",
        crate::tls::verified(),
        &tls_peer(),
    );
    assert_eq!(error_kind(&r.outcome), Some(ErrorKind::Tls));
    let c = http(&r.outcome)
        .certificate
        .clone()
        .expect("the chain as sent");
    assert_eq!(c.chain_expiry_unix, None, "nothing verified");
    assert!(c.earliest_expiry_unix > 0);
    // insecure: facts, no verified chain, success.
    let r = tls_run("https://127.0.0.1:8443/ok", insecure(), &tls_peer());
    assert!(r.outcome.success);
    let c = http(&r.outcome)
        .certificate
        .clone()
        .expect("facts under insecure");
    assert_eq!(c.chain_expiry_unix, None);
}

#[test]
fn cert_expiry_warn_fails_a_certificate_inside_its_window() {
    // ~75 years left: a 14-day window passes, a 100-year one fails.
    let r = tls_run(
        "https://127.0.0.1:8443/ok cert_expiry_warn=14d",
        with_test_ca(),
        &tls_peer(),
    );
    assert!(r.outcome.success, "{:?}", r.outcome);
    let r = tls_run(
        "https://127.0.0.1:8443/ok cert_expiry_warn=3650d",
        with_test_ca(),
        &tls_peer(),
    );
    let o = &r.outcome;
    assert!(
        o.success,
        "3650d is the maximum, and 2100 is further: {o:?}"
    );
    // The same certificate, checked a day before it expires.
    let mut c = http(o).certificate.clone().unwrap();
    c.checked_at_unix = c.earliest_expiry_unix - 86_400;
    let checks = Checks::of(
        target("https://h/ cert_expiry_warn=14d")
            .http
            .as_ref()
            .unwrap(),
    );
    let e = checks.check_cert(&c).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Tls);
    assert_eq!(
        e.message,
        format!(
            "certificate {} expires in 1d 0h, within cert_expiry_warn=14d",
            c.subject
        )
    );
}

#[test]
fn a_redirect_to_plain_http_drops_the_certificate() {
    let t0 = Instant::now();
    let peer = Peer {
        response: b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:8080/plain\r\nContent-Length: 0\r\n\r\n",
        ..tls_peer()
    };
    let mut s = Session::new(
        &target("https://127.0.0.1:8443/"),
        Some(with_test_ca()),
        DEFAULT_BODY_CAP,
        t0,
    );
    connect(&mut s, "127.0.0.1:8443", at(t0, 1));
    let mut clock = 1;
    serve_tls(&mut s, &peer, t0, &mut clock);
    connect(&mut s, "127.0.0.1:8080", at(t0, 50));
    answer(&mut s, OK_5, at(t0, 60));
    let o = s.finish(at(t0, 60));
    assert!(o.success, "{o:?}");
    assert_eq!(http(&o).certificate, None);
}
