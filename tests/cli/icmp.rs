//! ICMP socket set-up: raw socket as root, ping socket where
//! `ping_group_range` allows it, else each ICMP target fails as
//! `permission` with both fixes named, the others are probed, and the exit
//! code is 3.
//!
//! The unprivileged cases drop to `nobody` with `setpriv`, and the ping-socket
//! case changes `ping_group_range` only inside a network namespace the test
//! creates (`unshare -n`), so the host's setting is never touched. They need
//! root to start; otherwise they print why they are skipped.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use pulse_core::result::ErrorKind;

use super::util::*;

const AS_NOBODY: &str =
    "setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all";

fn root_with(tools: &[&str]) -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n");
    let have = tools.iter().all(|t| {
        Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !(root && have) {
        eprintln!("skipped: needs root and {tools:?}");
    }
    root && have
}

/// A world-readable targets file (the probe runs as nobody).
fn readable_targets(lines: &[String]) -> tempfile::NamedTempFile {
    let f = targets_file(lines);
    std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    f
}

/// Run `pulse ARGS` as nobody (no capabilities) in a network namespace of
/// its own, where ping sockets are off (a fresh namespace has
/// ping_group_range "1 0", whatever the host says) and lo is up, after
/// starting a TCP listener on 127.0.0.1:8080 there, so one target is up.
fn as_nobody_without_icmp(args: &str) -> std::process::Output {
    let script = format!(
        "ip link set lo up; \
         python3 -c 'import socket,time; s=socket.socket(); s.bind((\"127.0.0.1\",8080)); s.listen(64); time.sleep(60)' & \
         for i in $(seq 50); do python3 -c 'import socket; socket.create_connection((\"127.0.0.1\",8080))' 2>/dev/null && break; sleep 0.1; done; \
         {AS_NOBODY} {} {args}; code=$?; kill $!; exit $code",
        env!("CARGO_BIN_EXE_pulse"),
    );
    Command::new("unshare")
        .args(["-n", "sh", "-c", &script])
        .output()
        .unwrap()
}

/// The fix each ICMP failure names: this binary's own path for setcap
/// (not a `$(command -v pulse)` that expands to nothing off the PATH), and
/// the sysctl.
fn names_the_fix(message: &str) {
    let setcap = format!("setcap cap_net_raw+ep {}", env!("CARGO_BIN_EXE_pulse"));
    assert!(message.contains(&setcap), "no `{setcap}` in {message}");
    assert!(message.contains("net.ipv4.ping_group_range"), "{message}");
}

/// Without any ICMP socket (no CAP_NET_RAW, ping sockets off) a mixed
/// file is still probed, on every model: the TCP and HTTP targets get
/// their real verdicts, each ICMP target fails as `permission` naming the
/// fix, and the exit code is 3 (setup failure), with the fix on stderr.
#[test]
fn without_any_icmp_socket_the_other_targets_are_probed_and_icmp_is_permission() {
    if !root_with(&["setpriv", "unshare", "python3"]) {
        return;
    }
    let f = readable_targets(&[
        "tcp://127.0.0.1:8080".into(),
        "http://127.0.0.1:1/".into(),
        "icmp://127.0.0.1".into(),
        "127.0.0.2".into(),
    ]);
    for model in ["tokio", "smol", "async-std", "threads", "rayon"] {
        let out = as_nobody_without_icmp(&format!(
            "--runtime {model} scan -t {} -o json",
            f.path().display()
        ));
        assert_eq!(code(&out), 3, "{model}: {}", stderr(&out));
        let rep = report(&out);
        let kinds: Vec<_> = rep.results.iter().map(kind).collect();
        assert_eq!(
            kinds,
            [
                None,
                Some(ErrorKind::Refused),
                Some(ErrorKind::Permission),
                Some(ErrorKind::Permission)
            ],
            "{model}"
        );
        for r in &rep.results[2..] {
            names_the_fix(&r.error.as_ref().unwrap().message);
        }
        let err = stderr(&out);
        assert!(
            err.contains("2 of 4 target(s) could not be probed for lack of permission"),
            "{model}: {err}"
        );
        names_the_fix(&err);
    }
    // tokio's native stack (surge-ping) is denied the same way.
    let out = as_nobody_without_icmp(&format!(
        "--stack native scan -t {} -o json",
        f.path().display()
    ));
    assert_eq!(code(&out), 3, "native: {}", stderr(&out));
    let rep = report(&out);
    assert!(rep.results[0].success, "native: {:?}", rep.results[0]);
    for r in &rep.results[2..] {
        assert_eq!(kind(r), Some(ErrorKind::Permission), "native: {r:?}");
        names_the_fix(&r.error.as_ref().unwrap().message);
    }
}

/// `pulse check` of an ICMP target reports it as `permission` (exit 3),
/// and `pulse serve` keeps serving the others, saying once why its ICMP
/// targets fail.
#[test]
fn check_and_serve_report_icmp_without_privilege_as_permission() {
    if !root_with(&["setpriv", "unshare", "python3"]) {
        return;
    }
    let out = as_nobody_without_icmp("check icmp://127.0.0.1 -o json");
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let rep = report(&out);
    assert_eq!(kind(&rep.results[0]), Some(ErrorKind::Permission));
    names_the_fix(&stderr(&out));

    let f = readable_targets(&["tcp://127.0.0.1:8080".into(), "icmp://127.0.0.1".into()]);
    let out = as_nobody_without_icmp(&format!(
        "-v serve -t {} --listen 127.0.0.1:0 --rounds 1 --spread 0",
        f.path().display()
    ));
    let err = stderr(&out);
    assert_eq!(code(&out), 0, "{err}");
    assert!(err.contains("round 1: 1 of 2 up"), "{err}");
    assert!(
        err.contains("some targets cannot be probed for lack of permission"),
        "{err}"
    );
    names_the_fix(&err);
}

#[test]
fn an_unprivileged_ping_socket_is_used_where_allowed() {
    if !root_with(&["setpriv", "unshare", "sysctl"]) {
        return;
    }
    let f = readable_targets(&["icmp://127.0.0.1".into(), "127.0.0.3".into()]);
    let script = format!(
        "ip link set lo up; sysctl -qw net.ipv4.ping_group_range='0 2147483647'; {AS_NOBODY} {} scan -t {} -o json",
        env!("CARGO_BIN_EXE_pulse"),
        f.path().display()
    );
    let out = Command::new("unshare")
        .args(["-n", "sh", "-c", &script])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rep = report(&out);
    assert!(
        rep.results
            .iter()
            .all(|r| r.success && r.phases.rtt.is_some())
    );
}

/// Every bad echo-train setting is a FILE:LINE:COL error and exit 2, all
/// lines at once, nothing probed: count out of range (0, past 1000, past
/// u16), an interval under 1 ms, a train longer than the line's own
/// `timeout=`, count= on a tcp target; and, found by the plan, a train
/// longer than `--timeout`.
#[test]
fn bad_echo_trains_are_refused_by_line_and_column() {
    let f = targets_file(&[
        "icmp://127.0.0.1 count=0".into(),
        "icmp://127.0.0.1 count=100000".into(),
        "icmp://127.0.0.1 count=5 interval=500us".into(),
        "icmp://127.0.0.1 timeout=3s count=5 interval=1s".into(),
        "tcp://127.0.0.1:1 count=2".into(),
        "icmp://127.0.0.1 count=1001".into(),
    ]);
    let p = f.path().to_str().unwrap();
    let out = run(&["scan", "-t", p]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    for want in [
        format!("{p}:1:18: count 0 is out of range: 1 to 1000 echo requests per probe"),
        format!("{p}:2:18: count 100000 is out of range"),
        format!("{p}:3:26: option `interval`: `500us` is shorter than the minimum, 1ms"),
        format!("{p}:4:29: count=5 × interval=1s needs 5s but the deadline (timeout=) is 3s"),
        format!("{p}:5:19: option `count` applies only to icmp targets"),
        format!("{p}:6:18: count 1001 is out of range"),
    ] {
        assert!(err.contains(&want), "missing {want}\n{err}");
    }
    assert!(out.stdout.is_empty(), "nothing is probed or printed");

    // Only the plan knows --timeout: still the line, at the option.
    let f = targets_file(&["icmp://127.0.0.1 interval=1s count=6".into()]);
    let p = f.path().to_str().unwrap();
    let out = run(&["scan", "-t", p, "--timeout", "5s"]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{p}:1:18: count=6 × interval=1s needs 6s but the deadline (--timeout) is 5s"
        )),
        "{err}"
    );
    // --icmp-count is checked the same way, and as a flag.
    let out = run(&["check", "--icmp-count", "10", "icmp://127.0.0.1"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("--icmp-count 10 × interval=1s needs 10s"),
        "{}",
        stderr(&out)
    );
    let out = run(&["check", "--icmp-count", "0", "icmp://127.0.0.1"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("out of range"), "{}", stderr(&out));
}

/// tokio's native ICMP client sends one echo: a train there is refused by
/// line, never silently cut to one echo.
#[test]
fn tokio_native_refuses_an_echo_train() {
    let f = targets_file(&["icmp://127.0.0.1 count=3 interval=10ms".into()]);
    let p = f.path().to_str().unwrap();
    let out = run(&["--stack", "native", "scan", "-t", p]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains(&format!("{p}:1: an echo train")),
        "{}",
        stderr(&out)
    );
}

/// `pulse check` with `--icmp-count` reports the train in json: sent,
/// received, loss and the round trips, on loopback.
#[test]
fn icmp_count_sends_a_train_and_reports_it() {
    if !icmp_available() {
        eprintln!("skipped: no raw or ping ICMP socket");
        return;
    }
    let out = run(&[
        "check",
        "--icmp-count",
        "3",
        "-o",
        "json",
        "icmp://127.0.0.1 interval=10ms",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let p = &doc["results"][0]["icmp"]["packets"];
    assert_eq!(p["sent"], 3);
    assert_eq!(p["received"], 3);
    assert_eq!(p["loss_ratio"], 0.0);
    assert_eq!(p["rtts_ms"].as_array().unwrap().len(), 3);
}
