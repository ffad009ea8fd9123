//! A target's password is sent (Basic auth) but never shown: not in any
//! output format of `pulse scan`, nor on serve's `/metrics`, `/` or `/probe`.

use std::time::Duration;

use pulse_fixtures::HttpFixture;

use super::serve::{Serve, sample};
use super::util::*;
use crate::conformance::redirects::pct;

const SECRET: &str = "s3cret";

/// base64("user:s3cret"), as the Authorization header carries it.
const BASIC: &str = "basic dXNlcjpzM2NyZXQ=";

/// The fixture's URL for `path` with `user:s3cret@` in it.
fn with_credentials(http: &HttpFixture, path: &str) -> String {
    http.url(path)
        .replacen("http://", &format!("http://user:{SECRET}@"), 1)
}

/// Every request the fixture got carried the credentials as Basic auth.
fn assert_basic_auth_sent(http: &HttpFixture) {
    let heads = http.request_heads();
    assert!(!heads.is_empty());
    for h in heads {
        assert!(
            h.to_ascii_lowercase().contains(&format!(
                "\r\nauthorization: {}",
                BASIC.to_ascii_lowercase()
            )),
            "{h}"
        );
    }
}

#[test]
fn scan_never_shows_the_password() {
    let http = HttpFixture::start();
    let lines = [
        with_credentials(&http, "/ok"),
        // A redirect on the same server: final_url too.
        with_credentials(&http, "/redirect/1"),
        with_credentials(&http, "/status/500"),
    ];
    let file = targets_file(&lines);
    let path = file.path().to_str().unwrap();
    for format in ["json", "jsonl", "yaml", "table", "prom"] {
        let out = run(&["scan", "-t", path, "-o", format]);
        assert_eq!(code(&out), 1, "{format}: {}", stderr(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains(SECRET), "{format}:\n{text}");
        assert!(!stderr(&out).contains(SECRET), "{format}: {}", stderr(&out));
        assert!(
            text.contains("user:<redacted>@127.0.0.1"),
            "{format}:\n{text}"
        );
    }
    let out = run(&["scan", "-t", path, "-o", "json"]);
    let r = report(&out);
    assert!(
        r.results[0].success && r.results[1].success,
        "{:?}",
        r.results
    );
    assert_eq!(
        r.results[1].http.as_ref().unwrap().final_url.as_deref(),
        Some(
            http.url("/ok")
                .replacen("http://", "http://user:<redacted>@", 1)
                .as_str()
        )
    );
    assert_basic_auth_sent(&http);
}

/// Credentials from `auth_file=` are sent and never shown, in any format,
/// and a bad credentials file is refused without quoting it.
#[test]
fn auth_file_credentials_are_sent_and_never_shown() {
    let http = HttpFixture::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), format!("bearer {SECRET}-token\n")).unwrap();
    std::fs::write(dir.path().join("user"), format!("basic user:{SECRET}\n")).unwrap();
    let targets = dir.path().join("targets.txt");
    std::fs::write(
        &targets,
        format!(
            "{} auth_file=token\n{} auth_file=user\n",
            http.url("/ok"),
            http.url("/status/500")
        ),
    )
    .unwrap();
    let path = targets.to_str().unwrap();
    for format in ["json", "jsonl", "yaml", "table", "prom"] {
        let out = run(&["scan", "-t", path, "-o", format]);
        assert_eq!(code(&out), 1, "{format}: {}", stderr(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains(SECRET), "{format}:\n{text}");
        assert!(!stderr(&out).contains(SECRET), "{format}: {}", stderr(&out));
    }
    let heads = http.request_heads();
    assert!(heads.iter().any(|h| {
        h.to_ascii_lowercase()
            .contains(&format!("\r\nauthorization: bearer {SECRET}-token\r\n"))
    }));
    assert!(
        heads
            .iter()
            .any(|h| h.contains("\r\nauthorization: Basic dXNlcjpzM2NyZXQ=\r\n")),
        "{heads:?}"
    );
    // A file that is not credentials: refused, its content not quoted.
    std::fs::write(dir.path().join("token"), format!("{SECRET}\n")).unwrap();
    let out = run(&["scan", "-t", path]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("auth_file=token has no credentials after the scheme"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains(SECRET), "{}", stderr(&out));
}

#[test]
fn serve_never_shows_the_password() {
    let http = HttpFixture::start();
    let target = with_credentials(&http, "/ok");
    let file = targets_file(std::slice::from_ref(&target));
    let serve = Serve::start(
        "tokio",
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
    let shown = target.replace(SECRET, "<redacted>");
    assert!(!m.contains(SECRET), "{m}");
    assert_eq!(
        sample(
            &m,
            &format!(r#"probe_success{{target="{shown}",kind="http"}}"#)
        ),
        Some(1.0),
        "{m}"
    );
    let (_, page) = serve.get("/");
    assert!(!page.contains(SECRET), "{page}");
    assert!(page.contains("user:&lt;redacted&gt;@"), "{page}");
    // /probe matches the target as written in the file, password and all
    // (Prometheus configs name it so), and does not echo it.
    let (status, body) = serve.get(&format!("/probe?target={}", pct(&target)));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\nprobe_success 1\n"), "{body}");
    assert!(!body.contains(SECRET), "{body}");
    let other = with_credentials(&http, "/status/204");
    let (status, body) = serve.get(&format!("/probe?target={}", pct(&other)));
    assert_eq!(status, 403, "{body}");
    assert!(!body.contains(SECRET), "{body}");
    assert!(body.contains("user:<redacted>@"), "{body}");
    assert_basic_auth_sent(&http);
    assert!(!serve.log().contains(SECRET), "{}", serve.log());
}
