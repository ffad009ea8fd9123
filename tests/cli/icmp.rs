//! ICMP socket set-up: raw socket as root, ping socket where
//! `ping_group_range` allows it, else exit 3 with both fixes named.
//!
//! The unprivileged cases drop to `nobody` with `setpriv`, and the ping-socket
//! case changes `ping_group_range` only inside a network namespace the test
//! creates (`unshare -n`), so the host's setting is never touched. They need
//! root to start; otherwise they print why they are skipped.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

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

#[test]
fn without_any_icmp_socket_the_scan_fails_setup_with_both_fixes() {
    if !root_with(&["setpriv", "unshare"]) {
        return;
    }
    let f = readable_targets(&["icmp://127.0.0.1".into()]);
    // A fresh namespace has ping_group_range "1 0" (ping sockets off), whatever the host says.
    let script = format!(
        "ip link set lo up; {AS_NOBODY} {} scan -t {}",
        env!("CARGO_BIN_EXE_pulse"),
        f.path().display()
    );
    let out = Command::new("unshare")
        .args(["-n", "sh", "-c", &script])
        .output()
        .unwrap();
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("CAP_NET_RAW") && err.contains("ping_group_range"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
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
