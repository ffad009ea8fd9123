//! The peers: the tools a user would pick instead, on the same workloads as
//! the scheduling section's pulse runs (zero-latency HTTP and TCP connect
//! at 100 in flight) and on ICMP against the farm's namespace hosts. Each
//! peer's own binary, as installed; a missing one is skipped with the
//! reason, and the rest go on.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pulse_bench::chart::{Bars, Panel};
use pulse_bench::measure::Child;
use pulse_bench::report::Table;
use pulse_bench::setup;

use super::{Ctx, Section, f0, models, pick};

/// Connections the HTTP peers keep open: the pulse runs' `--workers`.
const CONCURRENCY: usize = 100;

/// One row: who, what it did per second, client CPU per operation, version.
struct Row {
    /// The tool and how it was run.
    who: String,
    /// Operations (requests, probes, pings) per second.
    rate: f64,
    /// The tool's CPU per operation, µs (None when not measurable).
    cpu_us: Option<f64>,
    /// The tool's version line.
    version: String,
}

/// The first line a tool prints for its version flag, on either stream.
pub(super) fn version(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()
        .and_then(|o| {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            text.lines().next().map(|l| l.trim().to_string())
        })
        .unwrap_or_default()
}

/// Whether `program` is on the PATH.
pub(super) fn installed(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|d| d.join(program).is_file())
}

/// The number after `key` in a tool's output (`Requests/sec:   37612.31`).
fn number_after(text: &str, key: &str) -> Option<f64> {
    let rest = &text[text.find(key)? + key.len()..];
    rest.split_whitespace()
        .next()?
        .trim_end_matches(',')
        .parse()
        .ok()
}

/// A load generator's run: its rate and its own CPU per request.
pub(super) struct Load {
    /// Requests per second.
    pub(super) rate: f64,
    /// User CPU per request, µs.
    pub(super) user_us: f64,
    /// System (kernel) CPU per request, µs.
    pub(super) sys_us: f64,
}

impl Load {
    /// User + system CPU per request, µs.
    pub(super) fn cpu_us(&self) -> f64 {
        self.user_us + self.sys_us
    }
}

/// Run a peer as a measured child: its stdout text and the kernel's usage.
fn measured(
    ctx: &mut Ctx,
    program: &str,
    args: &[String],
    stem: &str,
) -> Result<(String, pulse_bench::measure::Usage), String> {
    let c = Child::new(Path::new(program), args, ctx.scratch.path(), stem);
    let out = c.stdout.clone();
    ctx.commands.push(format!("{program} {}", args.join(" ")));
    let m = c.run()?;
    if m.usage.exit_code != Some(0) {
        return Err(format!("{program} exited {:?}", m.usage.exit_code));
    }
    Ok((std::fs::read_to_string(out).unwrap_or_default(), m.usage))
}

/// `requests` requests at `rate`, with `usage`'s CPU spread over them.
fn load(rate: f64, requests: f64, usage: &pulse_bench::measure::Usage) -> Load {
    let per = |s: f64| s * 1e6 / requests.max(1.0);
    Load {
        rate,
        user_us: per(usage.user_s),
        sys_us: per(usage.sys_s),
    }
}

/// wrk -t1 against `url` for `secs`.
pub(super) fn wrk(ctx: &mut Ctx, url: &str, secs: u64, stem: &str) -> Result<Load, String> {
    let args = [
        "-t1",
        &format!("-c{CONCURRENCY}"),
        &format!("-d{secs}s"),
        url,
    ]
    .map(String::from);
    let (out, usage) = measured(ctx, "wrk", &args, stem)?;
    let rate = number_after(&out, "Requests/sec:").ok_or("wrk printed no Requests/sec")?;
    let total = out
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(rate * secs as f64);
    Ok(load(rate, total, &usage))
}

/// hey with a new connection per request against `url` for `secs`.
pub(super) fn hey(ctx: &mut Ctx, url: &str, secs: u64, stem: &str) -> Result<Load, String> {
    let args = [
        "-z",
        &format!("{secs}s"),
        "-c",
        &CONCURRENCY.to_string(),
        "-disable-keepalive",
        url,
    ]
    .map(String::from);
    let (out, usage) = measured(ctx, "hey", &args, stem)?;
    let rate = number_after(&out, "Requests/sec:").ok_or("hey printed no Requests/sec")?;
    let done = number_after(&out, "[200]").unwrap_or(rate * secs as f64);
    Ok(load(rate, done, &usage))
}

/// A free port on loopback (bound and released: the peer binds it next).
pub(super) fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// CPU seconds a process has used (`/proc/PID/stat` utime + stime); 0
/// when it cannot be read.
fn cpu_of(pid: u32) -> f64 {
    pulse_procfs::Stat::read(pulse_procfs::Proc::Pid(pid))
        .map_or(0.0, |s| s.cpu_time().as_secs_f64())
}

/// A running blackbox_exporter, stopped (by its PID) on drop.
struct Blackbox {
    /// The process.
    child: std::process::Child,
    /// Where it listens.
    port: u16,
}

impl Drop for Blackbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start blackbox_exporter on loopback with an http and a tcp module.
fn blackbox(ctx: &mut Ctx) -> Result<Blackbox, String> {
    let config = "modules:\n  http_2xx:\n    prober: http\n    timeout: 2s\n    http:\n      preferred_ip_protocol: ip4\n      \
                  fail_if_body_not_matches_regexp: [\"pulse-farm-ok\"]\n  tcp_connect:\n    prober: tcp\n    timeout: 2s\n    \
                  tcp:\n      preferred_ip_protocol: ip4\n";
    let file = ctx.file("blackbox.yml", config)?;
    let port = free_port()?;
    let args = [
        format!("--config.file={}", file.display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
    ];
    ctx.commands
        .push(format!("prometheus-blackbox-exporter {}", args.join(" ")));
    let log = std::fs::File::create(ctx.scratch.path().join("blackbox.log"))
        .map_err(|e| e.to_string())?;
    let child = Command::new("prometheus-blackbox-exporter")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start blackbox_exporter: {e}"))?;
    let bb = Blackbox { child, port };
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if t0.elapsed() > Duration::from_secs(10) {
            return Err("blackbox_exporter did not listen within 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(bb)
}

pub fn run(ctx: &mut Ctx) -> Section {
    let mut s = Section::new("Peers: what a user would pick instead");
    s.doc.para(&format!(
        "The same zero-latency farm hosts, through the tools people use for this job, each its own \
         binary as Debian ships it, next to pulse's rows from the scheduling section (`--workers \
         {CONCURRENCY}`). wrk and hey are load generators: they measure a server, and wrk keeps \
         connections alive where it can (the farm closes each one, as pulse's probes need). \
         blackbox_exporter is a prober driven one probe per `/probe` request, here by wrk with \
         {CONCURRENCY} connections. fping pings many hosts from one socket. Rates are operations per \
         second; client CPU is the tool's own (the farm's is not counted)."
    ));
    let secs = pick(3, 1);
    let farm = setup::one_group("peers", "http", "ok", 100, 0, "2s").and_then(|sc| ctx.farm(&sc));
    let tcp_farm =
        setup::one_group("peers-tcp", "tcp", "ok", 100, 0, "2s").and_then(|sc| ctx.farm(&sc));
    let (Ok(farm), Ok(tcp_farm)) = (farm, tcp_farm) else {
        ctx.skip("peers: the farm cannot start".into());
        return s;
    };
    let url = setup::cycle(&farm, 1)
        .0
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    let tcp_target = setup::cycle(&tcp_farm, 1)
        .0
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();

    let mut http = Vec::new();
    for (m, rate, cpu) in ctx.http100.clone() {
        http.push(Row {
            who: format!("pulse {m}"),
            rate,
            cpu_us: Some(cpu),
            version: pulse_core::VERSION.into(),
        });
    }
    if installed("wrk") {
        match wrk(ctx, &url, secs, "wrk-http") {
            Ok(l) => http.push(Row {
                who: "wrk -t1 -c100".into(),
                rate: l.rate,
                cpu_us: Some(l.cpu_us()),
                version: version("wrk", &["-v"]),
            }),
            Err(e) => ctx.skip(format!("peer wrk: {e}")),
        }
    } else {
        ctx.skip("peer wrk: not installed (apt-get install wrk)".into());
    }
    if installed("hey") {
        match hey(ctx, &url, secs, "hey") {
            Ok(l) => http.push(Row {
                who: "hey -c100 -disable-keepalive".into(),
                rate: l.rate,
                cpu_us: Some(l.cpu_us()),
                version: "hey 0.1.4 (Debian)".into(),
            }),
            Err(e) => ctx.skip(format!("peer hey: {e}")),
        }
    } else {
        ctx.skip("peer hey: not installed (apt-get install hey)".into());
    }
    let mut tcp = Vec::new();
    for (m, rate, cpu) in ctx.tcp100.clone() {
        tcp.push(Row {
            who: format!("pulse {m}"),
            rate,
            cpu_us: Some(cpu),
            version: pulse_core::VERSION.into(),
        });
    }
    if !installed("prometheus-blackbox-exporter") {
        ctx.skip(
            "peer blackbox_exporter: not installed (apt-get install prometheus-blackbox-exporter)"
                .into(),
        );
    } else if !installed("wrk") {
        ctx.skip(
            "peer blackbox_exporter: wrk drives its /probe endpoint and is not installed".into(),
        );
    } else {
        match blackbox(ctx) {
            Err(e) => ctx.skip(format!("peer blackbox_exporter: {e}")),
            Ok(bb) => {
                let v = version("prometheus-blackbox-exporter", &["--version"]);
                for (module, target, rows) in [
                    ("http_2xx", url.clone(), &mut http),
                    (
                        "tcp_connect",
                        tcp_target.trim_start_matches("tcp://").to_string(),
                        &mut tcp,
                    ),
                ] {
                    let probe = format!(
                        "http://127.0.0.1:{}/probe?module={module}&target={target}",
                        bb.port
                    );
                    let before = cpu_of(bb.child.id());
                    match wrk(ctx, &probe, secs, &format!("blackbox-{module}")) {
                        Ok(Load { rate, .. }) => {
                            let cpu = cpu_of(bb.child.id()) - before;
                            rows.push(Row {
                                who: format!("blackbox_exporter /probe ({module})"),
                                rate,
                                cpu_us: Some(cpu * 1e6 / (rate * secs as f64).max(1.0)),
                                version: v.clone(),
                            });
                        }
                        Err(e) => ctx.skip(format!("peer blackbox_exporter ({module}): {e}")),
                    }
                }
            }
        }
    }
    drop((farm, tcp_farm));
    let icmp = icmp_rows(ctx);
    for (name, label, rows) in [
        ("peers-http", "HTTP, zero latency", &http),
        ("peers-tcp", "TCP connect, zero latency", &tcp),
        ("peers-icmp", "ICMP echo, farm namespace hosts", &icmp),
    ] {
        if rows.is_empty() {
            continue;
        }
        s.doc.heading(3, label);
        s.chart(
            name,
            &format!("{label}: operations per second, pulse models and peers"),
            Bars {
                title: format!("{label}: per second (higher is better)"),
                panels: vec![Panel {
                    title: "operations/s".into(),
                    unit: String::new(),
                    rows: rows.iter().map(|r| (r.who.clone(), r.rate)).collect(),
                }],
            }
            .svg(),
        );
        findings(&mut s, label, rows);
        let mut t = Table::new(&["who", "per second#", "client CPU µs/op#", "version"]);
        for r in rows {
            t.row(vec![
                r.who.clone(),
                f0(r.rate),
                r.cpu_us.map_or_else(String::new, f0),
                r.version.clone(),
            ]);
        }
        s.table(name, t);
    }
    s
}

/// fping and pulse over the farm's ICMP hosts, when the namespace runs.
fn icmp_rows(ctx: &mut Ctx) -> Vec<Row> {
    let hosts = pick(200, 20);
    let text = format!(
        "name = \"peers-icmp\"\nseed = 3\ntimeout = \"1s\"\nworkers = 100\n[[groups]]\nname = \"ping\"\nhosts = {hosts}\nprotocol = \"icmp\"\n"
    );
    let farm = match pulse_fixtures::farm::Scenario::parse("peers-icmp", &text)
        .and_then(|sc| ctx.farm(&sc))
    {
        Ok(f) => f,
        Err(e) => {
            ctx.skip(format!("ICMP peers: the farm cannot start: {e}"));
            return Vec::new();
        }
    };
    if farm.hosts() == 0 {
        ctx.skip(
            "ICMP peers (fping and pulse): no namespace hosts (root and `ip` are needed)".into(),
        );
        return Vec::new();
    }
    let Ok(file) = ctx.file("icmp.txt", farm.targets()) else {
        return Vec::new();
    };
    let mut rows = Vec::new();
    for m in models() {
        let Ok(run) = ctx.scan(m, &file, 100, Duration::from_secs(1), |_| {}) else {
            continue;
        };
        let Some(rep) = &run.report else { continue };
        let n = rep.results.len() as f64;
        rows.push(Row {
            who: format!("pulse {m}"),
            rate: n / (rep.pulse.duration_ms / 1000.0).max(1e-9),
            cpu_us: Some(run.measured.usage.cpu_s() * 1e6 / n),
            version: pulse_core::VERSION.into(),
        });
    }
    if installed("fping") {
        let addrs: Vec<String> = farm
            .targets()
            .lines()
            .filter_map(|l| l.strip_prefix("icmp://"))
            .map(|a| a.trim().to_string())
            .collect();
        let mut args: Vec<String> = ["-q", "-c", "1", "-t", "1000", "-i", "1"]
            .map(String::from)
            .to_vec();
        args.extend(addrs.iter().cloned());
        // fping exits 1 when a host did not answer; the rate is still its.
        let c = Child::new(Path::new("fping"), &args, ctx.scratch.path(), "fping");
        ctx.commands.push(format!("fping {}", args.join(" ")));
        match c.run() {
            Ok(m) if matches!(m.usage.exit_code, Some(0 | 1)) => rows.push(Row {
                who: "fping -i 1 (1 ms between pings)".into(),
                rate: addrs.len() as f64 / m.usage.wall_s.max(1e-9),
                cpu_us: Some(m.usage.cpu_s() * 1e6 / addrs.len().max(1) as f64),
                version: version("fping", &["-v"]),
            }),
            Ok(m) => ctx.skip(format!("peer fping: exited {:?}", m.usage.exit_code)),
            Err(e) => ctx.skip(format!("peer fping: {e}")),
        }
    } else {
        ctx.skip("peer fping: not installed (apt-get install fping)".into());
    }
    rows
}

fn findings(s: &mut Section, label: &str, rows: &[Row]) {
    let best_pulse = rows
        .iter()
        .filter(|r| r.who.starts_with("pulse"))
        .max_by(|a, b| a.rate.total_cmp(&b.rate));
    let peers: Vec<&Row> = rows
        .iter()
        .filter(|r| !r.who.starts_with("pulse"))
        .collect();
    let Some(bp) = best_pulse else { return };
    if peers.is_empty() {
        return;
    }
    let vs: Vec<String> = peers
        .iter()
        .map(|p| format!("{} {:.2}x", p.who, p.rate / bp.rate.max(1e-9)))
        .collect();
    let cpu = |r: &Row| {
        r.cpu_us
            .map_or_else(|| "?".to_string(), |c| format!("{c:.0} µs"))
    };
    let costs: Vec<String> = peers
        .iter()
        .map(|p| format!("{} {}", p.who, cpu(p)))
        .collect();
    let why = if label.starts_with("HTTP") {
        format!(
            "Client CPU per operation: {} {}, {}. wrk and hey are load generators run on one server: no \
             deadline per request and no result to classify, but the farm closes every connection after its \
             answer (as pulse's probes need), so they reconnect for each request as pulse does, and wrk's one \
             thread bounds its rate. blackbox_exporter pays for an HTTP request to itself and Go's HTTP client \
             on top of every probe.",
            bp.who,
            cpu(bp),
            costs.join(", ")
        )
    } else if label.starts_with("TCP") {
        format!(
            "Client CPU per operation: {} {}, {}. A TCP connect probe is socket, connect, close: the kernel \
             does the handshake, and the tools differ in what they add around it (blackbox_exporter: an HTTP \
             request to itself and its Go runtime, per probe).",
            bp.who,
            cpu(bp),
            costs.join(", ")
        )
    } else {
        "fping paces its pings (`-i`, here 1 ms: at most 1,000 a second by design, to be polite to the \
         network), so its rate is its pacing, not its cost; pulse sends as fast as its workers allow and \
         matches replies by identifier and sequence."
            .to_string()
    };
    s.doc.finding(
        &format!(
            "{label}, against the fastest pulse model ({}, {:.0}/s): {}.",
            bp.who,
            bp.rate,
            vs.join(", ")
        ),
        &why,
    );
}
