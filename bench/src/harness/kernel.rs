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

/// Loopback addresses nginx listens on, one for each client run: a client
/// that opens 50,000 connections leaves as many TIME_WAIT entries on
/// nginx's side for a minute, and a later client to the same address and
/// port would have to find its source ports among them. Each run gets a
/// fresh address, so no client pays for the one before it.
const ADDRESSES: usize = 24;

/// The `i`th of nginx's [`ADDRESSES`].
fn address(i: usize) -> String {
    format!("127.0.3.{}", i % ADDRESSES + 1)
}

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
    let listen: String = (0..ADDRESSES)
        .map(|i| format!("listen {}:{port} backlog=4096; ", address(i)))
        .collect();
    let conf = format!(
        "daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid;\n\
         error_log {d}/error.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n\
         client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;\n\
         uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n  keepalive_timeout 0;\n\
         server {{ {listen}root {d}/html;\n\
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
    while std::net::TcpStream::connect((address(0).as_str(), port)).is_err() {
        if t0.elapsed() > Duration::from_secs(10) {
            return Err("nginx did not listen within 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(n)
}

/// A model and its (syscalls, futex calls) per probe.
type Counted<'a> = (&'a str, (f64, f64));

/// One row: a model or a peer against nginx.
struct Row {
    /// `pulse tokio`, `wrk -t1 -c100`, ...
    who: String,
    /// The model, for a pulse row.
    model: Option<&'static str>,
    /// Requests (probes) per second.
    rate: f64,
    /// Client CPU per request in user space, µs.
    user_us: f64,
    /// Client CPU per request in the kernel, µs.
    sys_us: f64,
    /// Syscalls and futex calls per probe under `strace -c -f` (pulse rows).
    strace: Option<(f64, f64)>,
    /// The same under perf's tracepoint counts, which slow nothing down.
    perf: Option<(f64, f64)>,
    /// The tool's version.
    version: String,
}

/// A peer's run against `url`: its row, or the reason it has none.
fn peer(ctx: &mut Ctx, tool: &str, url: &str, secs: u64, who: &str) -> Option<Row> {
    if !installed(tool) {
        ctx.skip(format!(
            "kernel regime peer {tool}: not installed (apt-get install {tool})"
        ));
        return None;
    }
    let stem = format!("kernel-{}", who.replace(' ', "-"));
    let measured = if tool == "wrk" {
        wrk(ctx, url, secs, &stem)
    } else {
        hey(ctx, url, secs, &stem)
    };
    match measured {
        Ok(l) => Some(Row {
            who: who.into(),
            model: None,
            rate: l.rate,
            user_us: l.user_us,
            sys_us: l.sys_us,
            strace: None,
            perf: None,
            version: if tool == "wrk" {
                version("wrk", &["-v"])
            } else {
                "hey 0.1.4 (Debian)".into()
            },
        }),
        Err(e) => {
            ctx.skip(format!("kernel regime peer {tool}: {e}"));
            None
        }
    }
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
    let strace = installed("strace");
    let perf = counter() == Some(Counter::Perf);
    if !strace && !perf {
        ctx.skip("kernel regime syscall counts: neither strace nor perf works here".into());
    }
    s.doc.para(&format!(
        "nginx (one worker, `keepalive_timeout 0`, so every request is a new connection) serves a \
         20-byte file on loopback. Each model scans {probes} targets of it with `--workers {WORKERS}`; \
         `wrk -t1 -c{WORKERS}` runs {secs} s before the models and again after them (the ratios are to \
         the mean of the two, so drift over the run shows), and `hey -c{WORKERS} -disable-keepalive` \
         {secs} s, against the same file. Every run talks to an address of its own (127.0.3.x), so none \
         inherits another's TIME_WAIT entries. Client CPU is the client process's user + system time \
         per request. Syscalls and futex calls per probe are counted over a second scan of \
         {count_probes} probes twice: with `strace -c -f`, which the goals below are stated in, and \
         with perf's tracepoints (`raw_syscalls:sys_enter`, `syscalls:sys_enter_futex`). strace stops \
         every thread at every call, which changes how often threads meet on a lock: the futex count \
         of a model whose threads contend (threads, async-std) is larger under strace than without \
         it, and the perf column is the one to believe."
    ));
    let port = server.port;
    let url = |i: usize| format!("http://{}:{port}/ok", address(i));
    let mut rows = Vec::new();
    rows.extend(peer(ctx, "wrk", &url(0), secs, "wrk -t1 -c100 (before)"));
    for (i, model) in models().into_iter().enumerate() {
        let here = url(1 + i);
        let text: String = std::iter::repeat_n(format!("{here}\n"), probes).collect();
        let Ok(file) = ctx.file(&format!("kernel-{model}.txt"), &text) else {
            continue;
        };
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
        let mut count = |c: Counter, at: usize, name: &str| {
            let here = url(at);
            let text: String = std::iter::repeat_n(format!("{here}\n"), count_probes).collect();
            let file = ctx
                .file(&format!("kernel-{model}-{name}.txt"), &text)
                .ok()?;
            counted(
                ctx,
                c,
                model,
                &file,
                WORKERS,
                &format!("kernel-{model}-{name}"),
            )
        };
        let strace_counts = strace
            .then(|| count(Counter::Strace, 8 + i, "strace"))
            .flatten();
        let perf_counts = perf.then(|| count(Counter::Perf, 13 + i, "perf")).flatten();
        rows.push(Row {
            who: format!("pulse {model}"),
            model: Some(model),
            rate: n / (rep.pulse.duration_ms / 1000.0).max(1e-9),
            user_us: run.measured.usage.user_s * 1e6 / n,
            sys_us: run.measured.usage.sys_s * 1e6 / n,
            strace: strace_counts,
            perf: perf_counts,
            version: pulse_core::VERSION.into(),
        });
    }
    rows.extend(peer(
        ctx,
        "hey",
        &url(6),
        secs,
        "hey -c100 -disable-keepalive",
    ));
    rows.extend(peer(ctx, "wrk", &url(7), secs, "wrk -t1 -c100 (after)"));
    drop(server);
    if rows.is_empty() {
        return s;
    }
    let mean_rate = |who: &str| {
        let r: Vec<f64> = rows
            .iter()
            .filter(|r| r.who.starts_with(who))
            .map(|r| r.rate)
            .collect();
        (!r.is_empty()).then(|| r.iter().sum::<f64>() / r.len() as f64)
    };
    let (wrk_rate, hey_rate) = (mean_rate("wrk"), mean_rate("hey"));
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
                    rows: rows
                        .iter()
                        .map(|r| (r.who.clone(), r.user_us + r.sys_us))
                        .collect(),
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
        "user µs/request#",
        "kernel µs/request#",
        "syscalls/probe (strace)#",
        "futex/probe (strace)#",
        "syscalls/probe (perf)#",
        "futex/probe (perf)#",
        "version",
    ]);
    let ratio = |v: f64, of: Option<f64>| of.map_or_else(String::new, |o| f2(v / o.max(1e-9)));
    for r in &rows {
        t.row(vec![
            r.who.clone(),
            f0(r.rate),
            ratio(r.rate, wrk_rate),
            ratio(r.rate, hey_rate),
            f1(r.user_us),
            f1(r.sys_us),
            r.strace.map_or_else(String::new, |c| f1(c.0)),
            r.strace.map_or_else(String::new, |c| f2(c.1)),
            r.perf.map_or_else(String::new, |c| f1(c.0)),
            r.perf.map_or_else(String::new, |c| f2(c.1)),
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
                "The fastest model, {}, makes {:.0} probes/s, {:.2}x wrk -t1. Per request it spends {:.0} µs \
                 in user space and {:.0} µs in the kernel; wrk spends {:.0} and {:.0}.",
                best.who,
                best.rate,
                best.rate / w.max(1e-9),
                best.user_us,
                best.sys_us,
                wrk_row.user_us,
                wrk_row.sys_us
            ),
            "Both columns count. In user space, wrk is one thread in C that writes a canned request and \
             counts the bytes of the answer; a pulse probe builds its request, parses the whole response \
             (ureq-proto and the http crate's types), classifies the outcome, times each phase, keeps a \
             result and writes it out as JSON at the end: that is the core's work, the same in every \
             model, and it is tens of microseconds. In the kernel, the socket's own life (socket, connect, \
             send, receive, close, and the server side of loopback TCP, which runs in the client's \
             softirq) is the same for both; what a model adds there is its epoll calls and the wake-ups \
             between its threads (a single-threaded wrk has none). With nginx on one core, the client \
             gets the other: the rate is one core divided by the client's CPU per request.",
        );
    }
    // perf's counts when there are any: strace changes what it counts.
    let (counts, by): (Vec<Counted<'_>>, &str) = {
        let perf: Vec<_> = pulse
            .iter()
            .filter_map(|r| Some((r.model?, r.perf?)))
            .collect();
        if perf.is_empty() {
            let st = pulse
                .iter()
                .filter_map(|r| Some((r.model?, r.strace?)))
                .collect();
            (st, "strace")
        } else {
            (perf, "perf")
        }
    };
    let with_counts: Vec<String> = counts
        .iter()
        .map(|(m, (all, futex))| format!("{m} {all:.1} (futex {futex:.2})"))
        .collect();
    if !with_counts.is_empty() {
        s.doc.finding(
            &format!("Syscalls per probe ({by}): {}.", with_counts.join(", ")),
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
        let of = |c: (f64, f64)| if pick_it == 0 { c.0 } else { c.1 };
        // The goal is stated in strace's counts; perf's stand beside them.
        let got: Vec<(&str, f64, Option<f64>)> = pulse
            .iter()
            .filter(|r| r.model.is_some_and(|m| ASYNC.contains(&m)))
            .filter_map(|r| Some((r.model?, of(r.strace?), r.perf.map(of))))
            .collect();
        if got.is_empty() {
            continue;
        }
        let text: Vec<String> = got
            .iter()
            .map(|(m, v, p)| match p {
                Some(p) => format!("{m} {v:.2} (perf {p:.2})"),
                None => format!("{m} {v:.2}"),
            })
            .collect();
        let ok: Vec<&str> = got
            .iter()
            .filter(|(_, v, _)| *v <= max)
            .map(|(m, _, _)| *m)
            .collect();
        t.row(vec![
            format!("≤ {max} {what}, async models (strace -c -f)"),
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
