//! `pulse --stack native`: the CLI runs the native stacks where they exist,
//! labels every output with the stack, and refuses where a native stack
//! would differ silently (a model without one, the exporter, compare).

use pulse_fixtures::{HttpFixture, closed_port};

use super::util::*;

#[test]
fn native_scans_label_the_stack_and_classify_as_the_core() {
    let http = HttpFixture::start();
    let closed = closed_port();
    let lines = vec![
        http.url("/ok"),
        http.url("/status/503"),
        format!("{} contains=nope", http.url("/body/hello")),
        format!("tcp://{closed}"),
        "http://name.invalid/".into(),
    ];
    let f = targets_file(&lines);
    let path = f.path().to_str().unwrap();
    let core = report(&run(&["scan", "-t", path, "-o", "json"]));
    assert_eq!(core.pulse.stack, "core");
    for rt in ["tokio", "threads", "rayon"] {
        let out = run(&[
            "--runtime",
            rt,
            "--stack",
            "native",
            "scan",
            "-t",
            path,
            "-o",
            "json",
        ]);
        assert_eq!(code(&out), 1, "{rt}: {}", stderr(&out));
        let native = report(&out);
        assert_eq!(
            (native.pulse.runtime.as_str(), native.pulse.stack.as_str()),
            (rt, "native")
        );
        let kinds = |r: &pulse_core::result::Report| r.results.iter().map(kind).collect::<Vec<_>>();
        assert_eq!(kinds(&native), kinds(&core), "{rt}");
        let prom = run(&[
            "--runtime",
            rt,
            "--stack",
            "native",
            "scan",
            "-t",
            path,
            "-o",
            "prom",
        ]);
        let text = String::from_utf8_lossy(&prom.stdout);
        assert!(
            text.contains(&format!("runtime=\"{rt}\",stack=\"native\"")),
            "{rt}: {text}"
        );
    }
}

#[test]
fn native_is_refused_where_it_would_differ_silently() {
    let http = HttpFixture::start();
    let f = targets_file(&[http.url("/ok")]);
    let path = f.path().to_str().unwrap();
    for (args, why) in [
        (
            vec!["--runtime", "smol", "scan", "-t", path],
            "no native smol stack",
        ),
        (
            vec!["--runtime", "async-std", "check", "tcp://127.0.0.1:1"],
            "no native async-std stack",
        ),
        (
            vec!["serve", "-t", path],
            "pulse serve runs only the core stack",
        ),
        (vec!["compare"], "compare runs the core stack"),
    ] {
        let mut full = vec!["--stack", "native"];
        full.extend(args.iter().copied());
        let out = run(&full);
        assert_eq!(code(&out), 2, "{full:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(why), "{full:?}: {}", stderr(&out));
    }
    assert_eq!(http.stats().requests, 0, "nothing was probed");
}

/// A native client hands over no certificates, so a target that must
/// check its certificate's expiry is refused on the native stacks, with
/// its line and the way out.
#[test]
fn native_refuses_what_it_cannot_honour_by_line() {
    let (https, _) = HttpFixture::start_tls();
    let f = targets_file(&[
        format!("{} insecure", https.url("/ok")),
        format!("{} insecure cert_expiry_warn=14d", https.url("/ok")),
    ]);
    let path = f.path().to_str().unwrap();
    let out = run(&[
        "--runtime",
        "threads",
        "--stack",
        "native",
        "scan",
        "-t",
        path,
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "{path}:2: cert_expiry_warn= needs the certificate facts the core stack reports"
        )),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("--stack core"));
    assert_eq!(https.stats().requests, 0, "nothing was probed");
    // An address family, per target or scan-wide, is the core's resolver's.
    let f = targets_file(&[format!("{} ip=4", https.url("/ok"))]);
    let path = f.path().to_str().unwrap();
    let out = run(&["--stack", "native", "scan", "-t", path]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("{path}:1: ip= limits the addresses")),
        "{}",
        stderr(&out)
    );
    let f = targets_file(&[format!("{} all_addresses", https.url("/ok"))]);
    let out = run(&[
        "--stack",
        "native",
        "scan",
        "-t",
        f.path().to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(":1: all_addresses probes each address"),
        "{}",
        stderr(&out)
    );
    let out = run(&[
        "--stack",
        "native",
        "check",
        "--resolve",
        "a.test=127.0.0.1",
        &https.url("/ok"),
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--resolve: the native clients"),
        "{}",
        stderr(&out)
    );
    let out = run(&["--stack", "native", "check", "--ip", "6", &https.url("/ok")]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("--ip: the native clients resolve names themselves"));
    assert_eq!(https.stats().requests, 0, "nothing was probed");
}
