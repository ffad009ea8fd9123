//! Bad input: every case a clear message and exit code 2, nothing probed.

use super::util::*;

#[test]
fn malformed_lines_are_all_reported_with_file_line_col() {
    let f = targets_file(&[
        "http://127.0.0.1:1/ok".into(),
        "ftp://example.com/".into(),
        "# fine".into(),
        "tcp://127.0.0.1:99999".into(),
        "http://127.0.0.1:1/ bogus=1".into(),
    ]);
    let p = f.path().to_str().unwrap();
    let out = run(&["scan", "-t", p]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(err.contains(&format!("{p}:2:1: ")), "{err}");
    assert!(err.contains(&format!("{p}:4:")), "{err}");
    assert!(err.contains(&format!("{p}:5:21: ")), "{err}");
    assert!(err.contains("bogus"), "{err}");
    assert!(err.contains("3 bad target line(s)"), "{err}");
    assert!(out.stdout.is_empty(), "nothing is probed or printed");
}

#[test]
fn empty_and_missing_files() {
    let empty = targets_file(&["# only a comment".into()]);
    let out = run(&["scan", "-t", empty.path().to_str().unwrap()]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("no targets"), "{}", stderr(&out));

    let out = run(&["scan", "-t", "/nonexistent/targets.txt"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("cannot read targets file /nonexistent/targets.txt"));
}

#[test]
fn non_utf8_input_names_the_line() {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut f, b"127.0.0.1:80\nhttp://caf\xe9.test/\n").unwrap();
    let p = f.path().to_str().unwrap();
    let out = run(&["scan", "-t", p]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{p}:2:11: ")) && err.contains("UTF-8"),
        "{err}"
    );
}

#[test]
fn bad_flags_are_usage_errors() {
    let f = targets_file(&["127.0.0.1:80".into()]);
    let p = f.path().to_str().unwrap();
    for (args, needle) in [
        (vec!["scan", "-t", p, "--workers", "0"], "--workers"),
        (vec!["scan", "-t", p, "--timeout", "soon"], "--timeout"),
        (vec!["scan", "-t", p, "--timeout", "0s"], "--timeout"),
        (vec!["scan", "-t", p, "--output", "xml"], "xml"),
        (vec!["--runtime", "go", "scan", "-t", p], "go"),
        (
            vec!["scan", "-t", p, "--workers", "30000"],
            "open-files limit",
        ),
        (vec!["check", "ftp://x/"], "<argument>:1:1"),
        (vec!["frobnicate"], "frobnicate"),
    ] {
        let out = run(&args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn a_bad_ca_bundle_is_reported_at_its_line() {
    let f = targets_file(&["https://127.0.0.1:1/ ca=/nonexistent.pem".into()]);
    let p = f.path().to_str().unwrap();
    let out = run(&["scan", "-t", p]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains(&format!("{p}:1:1: ca=/nonexistent.pem")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn rayon_refuses_a_pool_past_its_limit_and_names_what_to_use_instead() {
    // 1,001 targets at --workers 1001: a pool one thread past the limit.
    let f = targets_file(&vec!["tcp://127.0.0.1:1".to_string(); 1001]);
    let p = f.path().to_str().unwrap();
    let out = run(&["--runtime", "rayon", "scan", "-t", p, "--workers", "1001"]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("at most 1000"), "{err}");
    assert!(err.contains("--runtime threads"), "{err}");
    assert!(out.stdout.is_empty(), "nothing is probed: {err}");
}
