//! Running the pulse binary and reading its output.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use pulse_core::result::{ErrorKind, ProbeResult, Report};

/// A `pulse` command with logging quiet unless the test asks otherwise.
pub fn pulse() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pulse"));
    c.env_remove("RUST_LOG");
    c.stdin(Stdio::null());
    c
}

/// Run pulse with `args` and return its output.
pub fn run(args: &[&str]) -> Output {
    pulse().args(args).output().expect("pulse runs")
}

/// Run pulse with `stdin` as its standard input.
pub fn run_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = pulse()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pulse starts");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// A temporary targets file with these lines.
pub fn targets_file(lines: &[String]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
    f.flush().unwrap();
    f
}

/// The exit code (panics if killed by a signal, which is always a bug here).
pub fn code(o: &Output) -> i32 {
    o.status
        .code()
        .unwrap_or_else(|| panic!("pulse died by a signal: {}", stderr(o)))
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The json report on standard output.
pub fn report(o: &Output) -> Report {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not a json report ({e}); stderr: {}\nstdout: {}",
            stderr(o),
            String::from_utf8_lossy(&o.stdout)
        )
    })
}

/// The error kind of a result, or None for success.
pub fn kind(r: &ProbeResult) -> Option<ErrorKind> {
    r.error.as_ref().map(|e| e.kind)
}

/// Whether this process can open a raw ICMP socket (root or CAP_NET_RAW) or
/// an unprivileged ping socket; ICMP tests skip with a printed reason if not.
pub fn icmp_available() -> bool {
    use socket2::{Domain, Protocol, Socket, Type};
    Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)).is_ok()
        || Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::ICMPV4)).is_ok()
}

/// What must be identical between models for the same scenario.
pub fn normalise(r: &ProbeResult) -> String {
    let mut v = serde_json::to_value(r).unwrap();
    let o = v.as_object_mut().unwrap();
    o.remove("duration_ms");
    o.remove("queue_wait_ms");
    // Which phases were reached must match; how long they took need not.
    if let Some(phases) = o.get_mut("phases").and_then(|p| p.as_object_mut()) {
        for (_, ms) in phases.iter_mut() {
            *ms = serde_json::Value::Null;
        }
    }
    if let Some(icmp) = o.get_mut("icmp").and_then(|i| i.as_object_mut()) {
        icmp.remove("sequence");
    }
    // When the handshake checked the certificate is the clock's, not the
    // model's (two runs a second apart differ).
    if let Some(c) = o
        .get_mut("http")
        .and_then(|h| h.get_mut("certificate"))
        .and_then(|c| c.as_object_mut())
    {
        c.remove("checked_at_unix");
    }
    if r.error
        .as_ref()
        .is_some_and(|e| e.kind == ErrorKind::Timeout)
    {
        // How many drip-fed bytes arrived before the deadline is timing.
        o.remove("error");
        if let Some(h) = o.get_mut("http").and_then(|h| h.as_object_mut()) {
            h.remove("body_bytes");
        }
    }
    v.to_string()
}

/// Send `sig` (e.g. "INT", "HUP") to process `pid` with kill(1).
pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

/// A loopback port that was free a moment ago (for servers that cannot be
/// told to bind port 0 and report it, like nginx and Prometheus).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `promtool check metrics` on `text`: passes with no lint at all.
/// Skipped (printed) when promtool is not installed.
pub fn promtool_check(text: &str) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        println!("skipped promtool: not installed (scripts/test.sh installs prometheus)");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
