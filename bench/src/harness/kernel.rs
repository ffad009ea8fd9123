//! At the kernel's limit: HTTP against a real nginx on loopback (one
//! worker), a new connection per probe, 100 in flight, each model beside
//! `wrk -t1` and `hey` in the same run; the syscalls and futex calls each
//! model makes per probe; and the performance goals the project set for
//! itself, each checked against this run's figures.
//!
//! nginx rather than the farm: it is the fastest server there is for this
//! job, written in C, on its own core, so what limits the rate is the
//! client, and the client's cost is what a model adds to the kernel's.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pulse_bench::chart::{Bars, Panel};
use pulse_bench::report::Table;

use super::peers::{free_port, hey, installed, version, wrk};
use super::sched::{Counter, counted, counter};
use super::{Ctx, Section, f0, f1, f2, models, pick};

/// Probes (and peer connections) in flight.
const WORKERS: usize = 100;

/// A model counts as async for the syscall and memory goals.
const ASYNC: [&str; 3] = ["tokio", "smol", "async-std"];

/// The goals: the best model against wrk -t1, every model against hey,
/// syscalls and futex calls per probe for the async models, and resident
/// KiB per waiting blackholed TCP probe for the async models.
const BEST_VS_WRK: f64 = 1.0;
const EVERY_VS_HEY: f64 = 1.5;
const MAX_SYSCALLS: f64 = 8.0;
const MAX_FUTEX: f64 = 0.5;
const MAX_KIB: f64 = 2.0;

/// nginx on loopback with its own config and files, stopped (by its PID)
/// on drop.
struct Nginx {
    /// The process (`master_process off`: this is the one worker).
    child: Child,
    /// Where it listens.
    port: u16,
    /// Its config, pid file and document root.
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where Debian's nginx-light puts the binary.
fn nginx_binary() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/local/sbin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Start nginx with one worker, serving `/ok`, closing each connection
/// after its response (`keepalive_timeout 0`): every request is a new
/// connection for every client, as a probe is.
fn nginx(ctx: &mut Ctx) -> Result<Nginx, String> {
    let bin = nginx_binary().ok_or("nginx is not installed (apt-get install nginx-light)")?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let d = dir.path().display().to_string();
    std::fs::create_dir_all(dir.path().join("html")).map_err(|e| e.to_string())?;
    std::fs::write(dir.path().join("html/ok"), "pulse via nginx: ok\n")
        .map_err(|e| e.to_string())?;
    let port = free_port()?;
    let conf = format!(
        "daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid;\n\
         error_log {d}/error.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n\
         client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;\n\
         uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n  keepalive_timeout 0;\n\
         server {{ listen 127.0.0.1:{port} backlog=4096; root {d}/html;\n\
         location = /ok {{ default_type text/plain; }} }}\n}}\n"
    );
    let conf_path = dir.path().join("nginx.conf");
    std::fs::write(&conf_path, conf).map_err(|e| e.to_string())?;
    let args = ["-e", &format!("{d}/error.log"), "-p", &d, "-c"].map(String::from);
    ctx.commands.push(format!(
        "{} {} {}",
        bin.display(),
        args.join(" "),
        conf_path.display()
    ));
    let child = Command::new(&bin)
        .args(&args)
        .arg(&conf_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start nginx: {e}"))?;
    let n = Nginx {
        child,
        port,
        _dir: dir,
    };
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if t0.elapsed() > Duration::from_secs(10) {
            return Err("nginx did not listen within 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(n)
}

/// One row: a model or a peer against nginx.
struct Row {
    /// `pulse tokio`, `wrk -t1 -c100`, ...
    who: String,
    /// The model, for a pulse row.
    model: Option<&'static str>,
    /// Requests (probes) per second.
    rate: f64,
    /// Client CPU per request, µs (user + system).
    cpu_us: f64,
    /// Syscalls and futex calls per probe (pulse rows, when counted).
    syscalls: Option<(f64, f64)>,
    /// The tool's version.
    version: String,
}

pub fn run(ctx: &mut Ctx) -> Section {
    let mut s = Section::new("At the kernel's limit: HTTP against nginx, beside wrk and hey");
    let server = match nginx(ctx) {
        Ok(n) => n,
        Err(e) => {
            ctx.skip(format!("the kernel regime: {e}"));
            return s;
        }
    };
    let probes = pick(50_000, 500);
    let count_probes = pick(2_000, 100);
    let secs = pick(5, 1);
    // strace first: the goals are stated in its counts, and it names every
    // call; perf's tracepoint totals are the fallback.
    let how = if installed("strace") {
        Some(Counter::Strace)
    } else {
        counter()
    };
    let counted_by = match how {
        Some(Counter::Strace) => "`strace -c -f`",
        Some(Counter::Perf) => "`perf stat -e raw_syscalls:sys_enter,syscalls:sys_enter_futex`",
        None => {
            ctx.skip("kernel regime syscall counts: neither strace nor perf works here".into());
            "nothing (neither strace nor perf works here)"
        }
    };
    s.doc.para(&format!(
        "nginx (one worker, `keepalive_timeout 0`, so every request is a new connection) serves a \
         20-byte file on loopback. Each model scans {probes} targets of it with `--workers {WORKERS}`; \
         `wrk -t1 -c{WORKERS}` and `hey -c{WORKERS} -disable-keepalive` run {secs} s each against the same \
         URL in the same run. Client CPU is the client process's user + system time per request. Syscalls \
         and futex calls per probe come from {counted_by} over a second scan of {count_probes} probes."
    ));
    let url = format!("http://127.0.0.1:{}/ok", server.port);
    let text: String = std::iter::repeat_n(format!("{url}\n"), probes).collect();
    let small: String = std::iter::repeat_n(format!("{url}\n"), count_probes).collect();
    let (Ok(file), Ok(small)) = (
        ctx.file("kernel.txt", &text),
        ctx.file("kernel-counted.txt", &small),
    ) else {
        ctx.skip("the kernel regime: cannot write its targets files".into());
        return s;
    };
    let mut rows = Vec::new();
    for model in models() {
        let run = match ctx.scan(model, &file, WORKERS, Duration::from_secs(5), |_| {}) {
            Ok(r) => r,
            Err(e) => {
                ctx.skip(format!("kernel regime, {model}: {e}"));
                continue;
            }
        };
        let Some(rep) = &run.report else { continue };
        let n = rep.results.len() as f64;
        let up = rep.results.iter().filter(|r| r.success).count();
        if up != rep.results.len() {
            ctx.skip(format!(
                "kernel regime, {model}: {} of {} probes failed against nginx; its row is left out",
                rep.results.len() - up,
                rep.results.len()
            ));
            continue;
        }
        let syscalls =
            how.and_then(|c| counted(ctx, c, model, &small, WORKERS, &format!("kernel-{model}")));
        rows.push(Row {
            who: format!("pulse {model}"),
            model: Some(model),
            rate: n / (rep.pulse.duration_ms / 1000.0).max(1e-9),
            cpu_us: run.measured.usage.cpu_s() * 1e6 / n,
            syscalls,
            version: pulse_core::VERSION.into(),
        });
    }
    for (tool, label) in [
        ("wrk", "wrk -t1 -c100"),
        ("hey", "hey -c100 -disable-keepalive"),
    ] {
        if !installed(tool) {
            ctx.skip(format!(
                "kernel regime peer {tool}: not installed (apt-get install {tool})"
            ));
            continue;
        }
        let measured = if tool == "wrk" {
            wrk(ctx, &url, secs, "kernel-wrk")
        } else {
            hey(ctx, &url, secs, "kernel-hey")
        };
        match measured {
            Ok((rate, cpu_us)) => rows.push(Row {
                who: label.into(),
                model: None,
                rate,
                cpu_us,
                syscalls: None,
                version: if tool == "wrk" {
                    version("wrk", &["-v"])
                } else {
                    "hey 0.1.4 (Debian)".into()
                },
            }),
            Err(e) => ctx.skip(format!("kernel regime peer {tool}: {e}")),
        }
    }
    drop(server);
    if rows.is_empty() {
        return s;
    }
    let rate_of = |who: &str| rows.iter().find(|r| r.who.starts_with(who)).map(|r| r.rate);
    let (wrk_rate, hey_rate) = (rate_of("wrk"), rate_of("hey"));
    s.chart(
        "kernel-http",
        "HTTP against nginx, new connection per request: requests per second and client CPU per request",
        Bars {
            title: format!("HTTP against nginx, {WORKERS} in flight, a new connection each"),
            panels: vec![
                Panel {
                    title: "requests/s (higher is better)".into(),
                    unit: String::new(),
                    rows: rows.iter().map(|r| (r.who.clone(), r.rate)).collect(),
                },
                Panel {
                    title: "client CPU per request, µs (lower is better)".into(),
                    unit: " µs".into(),
                    rows: rows.iter().map(|r| (r.who.clone(), r.cpu_us)).collect(),
                },
            ],
        }
        .svg(),
    );
    let mut t = Table::new(&[
        "client",
        "requests/s#",
        "vs wrk -t1#",
        "vs hey#",
        "client CPU µs/request#",
        "syscalls/probe#",
        "futex/probe#",
        "version",
    ]);
    let ratio = |v: f64, of: Option<f64>| of.map_or_else(String::new, |o| f2(v / o.max(1e-9)));
    for r in &rows {
        t.row(vec![
            r.who.clone(),
            f0(r.rate),
            ratio(r.rate, wrk_rate),
            ratio(r.rate, hey_rate),
            f1(r.cpu_us),
            r.syscalls.map_or_else(String::new, |c| f1(c.0)),
            r.syscalls.map_or_else(String::new, |c| f2(c.1)),
            r.version.clone(),
        ]);
    }
    s.table("kernel-http", t);
    findings(&mut s, &rows, wrk_rate);
    goals(ctx, &mut s, &rows, wrk_rate, hey_rate);
    s
}

fn findings(s: &mut Section, rows: &[Row], wrk_rate: Option<f64>) {
    let pulse: Vec<&Row> = rows.iter().filter(|r| r.model.is_some()).collect();
    let Some(best) = pulse.iter().max_by(|a, b| a.rate.total_cmp(&b.rate)) else {
        return;
    };
    if let (Some(w), Some(wrk_row)) = (wrk_rate, rows.iter().find(|r| r.who.starts_with("wrk"))) {
        s.doc.finding(
            &format!(
                "The fastest model, {}, makes {:.0} probes/s, {:.2}x wrk -t1; it spends {:.0} µs of CPU per \
                 probe where wrk spends {:.0} µs per request.",
                best.who,
                best.rate,
                best.rate / w.max(1e-9),
                best.cpu_us,
                wrk_row.cpu_us
            ),
            "wrk is one thread in C driving 100 connections from one epoll loop: it parses no more of the \
             response than it must and keeps nothing. A pulse probe does the same kernel work (socket, \
             connect, send, receive, close: most of its CPU is system time) and on top of it classifies the \
             outcome, times its phases and hands a result to the collector. With nginx on one core and the \
             client on the other, the rate is the client's CPU per request, so the two columns say the same \
             thing twice.",
        );
    }
    let with_counts: Vec<String> = pulse
        .iter()
        .filter_map(|r| {
            r.syscalls.map(|(all, futex)| {
                format!("{} {all:.1} (futex {futex:.2})", r.model.unwrap_or(""))
            })
        })
        .collect();
    if !with_counts.is_empty() {
        s.doc.finding(
            &format!("Syscalls per probe: {}.", with_counts.join(", ")),
            "The floor is the socket's own life: socket, connect, send, receive, close. tokio adds its \
             epoll registration and removal (epoll_ctl ADD and DEL, two calls: mio deregisters before the \
             close that would do it anyway), and reads SO_ERROR only when its readiness says a connect \
             failed; it skips the SO_LINGER reset when it has already seen the server's FIN. smol and \
             async-std register with async-io, which arms every wait with EPOLLONESHOT and so re-arms the \
             socket (epoll_ctl MOD) before each wait, and wakes its reactor thread through an eventfd and \
             its timers through a timerfd. The blocking models set a socket timeout before every call \
             (setsockopt) and connect through poll with the socket briefly non-blocking (fcntl). Results \
             reach the collector in batches (`COLLECT_EVERY`), so the futex column is the runtimes' own \
             parking and waking, not the hand-over of results.",
        );
    }
}

/// The project's performance goals, each checked against this run.
fn goals(ctx: &Ctx, s: &mut Section, rows: &[Row], wrk_rate: Option<f64>, hey_rate: Option<f64>) {
    let pulse: Vec<&Row> = rows.iter().filter(|r| r.model.is_some()).collect();
    let verdict = |ok: bool| if ok { "met" } else { "not met" }.to_string();
    let mut t = Table::new(&["goal", "measured in this run", "verdict"]);
    if let (Some(w), Some(best)) = (
        wrk_rate,
        pulse.iter().max_by(|a, b| a.rate.total_cmp(&b.rate)),
    ) {
        let r = best.rate / w.max(1e-9);
        t.row(vec![
            format!("the best model at ≥ {BEST_VS_WRK:.1}x wrk -t1"),
            format!("{} {r:.2}x", best.who),
            verdict(r >= BEST_VS_WRK),
        ]);
    }
    if let Some(h) = hey_rate
        && let Some(worst) = pulse.iter().min_by(|a, b| a.rate.total_cmp(&b.rate))
    {
        let r = worst.rate / h.max(1e-9);
        t.row(vec![
            format!("every model at ≥ {EVERY_VS_HEY:.1}x hey"),
            format!("slowest, {}: {r:.2}x", worst.who),
            verdict(r >= EVERY_VS_HEY),
        ]);
    }
    for (what, max, pick_it) in [
        ("syscalls per HTTP probe", MAX_SYSCALLS, 0usize),
        ("futex calls per probe", MAX_FUTEX, 1),
    ] {
        let got: Vec<(&str, f64)> = pulse
            .iter()
            .filter(|r| r.model.is_some_and(|m| ASYNC.contains(&m)))
            .filter_map(|r| {
                let (all, futex) = r.syscalls?;
                Some((r.model?, if pick_it == 0 { all } else { futex }))
            })
            .collect();
        if got.is_empty() {
            continue;
        }
        let text: Vec<String> = got.iter().map(|(m, v)| format!("{m} {v:.2}")).collect();
        let ok: Vec<&str> = got
            .iter()
            .filter(|(_, v)| *v <= max)
            .map(|(m, _)| *m)
            .collect();
        t.row(vec![
            format!("≤ {max} {what}, async models"),
            text.join(", "),
            format!(
                "{} ({})",
                verdict(ok.len() == got.len()),
                if ok.is_empty() {
                    "none".into()
                } else {
                    format!("met by {}", ok.join(", "))
                }
            ),
        ]);
    }
    let n = ctx.tcp_kib.iter().map(|p| p.1).max().unwrap_or(0);
    let at_n: Vec<&(String, usize, f64)> = ctx.tcp_kib.iter().filter(|p| p.1 == n).collect();
    if !at_n.is_empty() {
        let asyncs: Vec<&&(String, usize, f64)> = at_n
            .iter()
            .filter(|p| ASYNC.contains(&p.0.as_str()))
            .collect();
        let text: Vec<String> = at_n.iter().map(|p| format!("{} {:.2}", p.0, p.2)).collect();
        t.row(vec![
            format!("≤ {MAX_KIB} KiB per in-flight blackholed TCP probe at {n}, async models (the others beside them)"),
            text.join(", "),
            verdict(!asyncs.is_empty() && asyncs.iter().all(|p| p.2 <= MAX_KIB)),
        ]);
    } else {
        t.row(vec![
            format!("≤ {MAX_KIB} KiB per in-flight blackholed TCP probe, async models"),
            "not measured: run the `memory` regime in the same run".into(),
            String::new(),
        ]);
    }
    s.doc.heading(3, "The goals, checked");
    s.table("kernel-goals", t);
}
