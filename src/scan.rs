//! `pulse scan` and `pulse check`: read targets, build the plan, run the
//! chosen model, write the output, map the summary to an exit code.

use std::collections::BTreeSet;
use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pulse_core::encode::{self, Format};
use pulse_core::model::{Collect, RunReport, SetupError, Sink};
use pulse_core::plan::{Options, Plan};
use pulse_core::result::{ErrorKind, ProbeResult, Report, ScanInfo, millis};
use pulse_core::session::Pins;
use pulse_core::shutdown::Shutdown;
use pulse_core::target::{IpFamily, Target, parse_target, parse_targets};

use crate::input::{Source, bad_lines, read_named, read_targets};
use crate::{
    CheckArgs, Cli, EXIT_CLOSED_STDOUT, EXIT_DOWN, EXIT_INTERRUPTED, EXIT_SETUP, EXIT_UP,
    EXIT_USAGE, FD_RESERVE, Probing, Runtime, ScanArgs, fail,
};

pub(crate) type RunFn = fn(Arc<Plan>, Shutdown, &mut dyn Sink) -> Result<RunReport, SetupError>;

/// The model's entry point.
pub(crate) fn model(runtime: Runtime) -> RunFn {
    match runtime {
        Runtime::Tokio => pulse_tokio::run,
        Runtime::Smol => pulse_smol::run,
        Runtime::AsyncStd => pulse_async_std::run,
        Runtime::Threads => pulse_threads::run,
        Runtime::Rayon => pulse_rayon::run,
    }
}

pub(crate) fn scan(cli: &Cli, args: &ScanArgs) -> u8 {
    let run = model(cli.runtime());
    let workers = match check_open_files(args.workers) {
        Ok(w) => w,
        Err(e) => return fail(EXIT_USAGE, e),
    };
    let input = Source::of(args.targets());
    let source = input.name();
    let bytes = match read_targets(&input, args.max_targets_size, "--max-targets-size") {
        Ok(v) => v,
        Err(e) => return fail(EXIT_USAGE, e),
    };
    let targets = match parse_targets(&source, &bytes) {
        Ok(t) => t,
        Err(errors) => {
            eprintln!("{errors}");
            let what = bad_lines(&errors, &source).map_or_else(String::new, |s| s + "; ");
            return fail(EXIT_USAGE, format!("{what}nothing was probed"));
        }
    };
    let base = args
        .targets()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let plan = match build_plan(cli, &source, targets, &base, &args.probing, workers) {
        Ok(p) => p,
        Err(code) => return code,
    };
    execute(cli, run, plan, args.grace, &args.probing)
}

pub(crate) fn check(cli: &Cli, args: &CheckArgs) -> u8 {
    let run = model(cli.runtime());
    let target = match parse_target(&args.target) {
        Ok(t) => t,
        Err(e) => return fail(EXIT_USAGE, e),
    };
    let base = std::env::current_dir().unwrap_or_default();
    let plan = match build_plan(cli, "<argument>", vec![target], &base, &args.probing, 1) {
        Ok(p) => p,
        Err(code) => return code,
    };
    execute(cli, run, plan, Duration::ZERO, &args.probing)
}

/// Raise the soft open-files limit to the hard one and refuse a `--workers`
/// that could not have that many connections open.
pub(crate) fn check_open_files(workers: u64) -> Result<usize, String> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            let usable = limit.saturating_sub(FD_RESERVE);
            if workers > usable {
                return Err(format!(
                    "--workers {workers} needs up to {workers} open sockets, but the open-files \
                     limit is {limit} ({FD_RESERVE} kept for pulse itself); use --workers {usable} \
                     or less, or raise the hard limit (ulimit -Hn, LimitNOFILE= in systemd)"
                ));
            }
        }
        Err(e) => tracing::warn!("could not raise the open-files limit: {e}"),
    }
    usize::try_from(workers).map_err(|_| format!("--workers {workers} is too large"))
}

fn build_plan(
    cli: &Cli,
    source: &str,
    targets: Vec<Target>,
    base: &Path,
    probing: &Probing,
    workers: usize,
) -> Result<Plan, u8> {
    let options = Options {
        workers,
        timeout: probing.timeout,
        prefer_ip: probing.reaching.ip,
        resolve: pins(&probing.reaching.resolve),
        stack: cli.stack.stack(),
        icmp_count: probing.reaching.icmp_count,
        panic_on_lines: probing
            .fault_panic_line
            .iter()
            .copied()
            .collect::<BTreeSet<_>>(),
        ..Options::default()
    };
    if cli.stack.stack() == pulse_core::native::Stack::Native {
        let refused: Vec<String> = targets
            .iter()
            .filter_map(|t| native_cannot(t).map(|why| format!("{source}:{}: {why}", t.line)))
            .collect();
        // surge-ping, tokio's native ICMP client, sends one echo per
        // probe; an echo train (count= above 1) is the core's session's
        // alone. (threads and rayon ping with the core under --stack native.)
        let refused = refused.into_iter().chain(
            targets
                .iter()
                .filter(|t| {
                    cli.runtime() == Runtime::Tokio
                        && t.kind == pulse_core::result::Kind::Icmp
                        && t.icmp.count.unwrap_or(probing.reaching.icmp_count) > 1
                })
                .map(|t| {
                    format!(
                        "{source}:{}: an echo train (count= or --icmp-count above 1) is sent by \
                         the core stack only; tokio's native client (surge-ping) sends one echo \
                         per probe; run it with --stack core",
                        t.line
                    )
                }),
        );
        let refused: Vec<String> = refused.collect();
        if !refused.is_empty() {
            eprintln!("{}", refused.join("\n"));
            return Err(fail(EXIT_USAGE, "nothing was probed"));
        }
        if !probing.reaching.resolve.is_empty() {
            return Err(fail(
                EXIT_USAGE,
                "--resolve: the native clients resolve names themselves; run it with --stack core",
            ));
        }
        if probing.reaching.ip != IpFamily::Any {
            return Err(fail(
                EXIT_USAGE,
                "--ip: the native clients resolve names themselves and take no address-family \
                 preference; run it with --stack core",
            ));
        }
    }
    // Files a target names (`ca=`, `body_file=`, `auth_file=`) are
    // relative to the targets file, like an include.
    let mut read = |p: &Path| read_named(&base.join(p));
    Plan::new(source, targets, options, &mut read).map_err(|errors| {
        eprintln!("{errors}");
        fail(
            EXIT_USAGE,
            "bad target(s) or file(s) they name; nothing was probed",
        )
    })
}

/// `--resolve` flags as the plan's pins: a name given twice keeps every
/// address, in order.
pub(crate) fn pins(flags: &[(String, Vec<std::net::IpAddr>)]) -> Option<Arc<Pins>> {
    if flags.is_empty() {
        return None;
    }
    let mut pins = Pins::new();
    for (name, ips) in flags {
        pins.entry(name.clone()).or_default().extend(ips);
    }
    Some(Arc::new(pins))
}

/// What a native stack cannot honour on `t`, if anything: refused by line
/// rather than silently ignored (README, `--stack`).
fn native_cannot(t: &Target) -> Option<&'static str> {
    if t.http
        .as_ref()
        .is_some_and(|h| h.cert_expiry_warn.is_some())
    {
        // pulse_core::native: no native client hands over its certificates.
        return Some(
            "cert_expiry_warn= needs the certificate facts the core stack reports and no native \
             client hands over; run it with --stack core",
        );
    }
    if t.all_addresses {
        return Some(
            "all_addresses probes each address the core resolves; the native clients resolve \
             names themselves; run it with --stack core",
        );
    }
    if t.ip != IpFamily::Any {
        return Some(
            "ip= limits the addresses the core resolves; the native clients resolve names \
             themselves; run it with --stack core",
        );
    }
    None
}

/// Streams jsonl to stdout as results complete. A failed write (a closed
/// pipe, a full disk) stops the scan, since nobody can read what it finds
/// any more, and is kept for the exit code.
struct JsonlSink {
    out: io::BufWriter<io::Stdout>,
    /// The first write error; nothing more is written after it.
    failed: Option<io::Error>,
    /// The first `permission` failure's message, for the closing line.
    denied: Option<String>,
    shutdown: Shutdown,
}

impl Sink for JsonlSink {
    fn accept(&mut self, _index: usize, result: ProbeResult) {
        if self.denied.is_none() {
            self.denied = denied(std::slice::from_ref(&result));
        }
        if self.failed.is_some() {
            return;
        }
        let written =
            encode::write_jsonl_line(&mut self.out, &result).and_then(|()| self.out.flush());
        if let Err(e) = written {
            self.failed = Some(e);
            self.shutdown.trigger(Instant::now());
        }
    }
}

/// The exit code for output that could not be written, the same for every
/// format: a closed stdout (`pulse scan ... | head -1`) exits
/// [`EXIT_CLOSED_STDOUT`] quietly, as a program killed by SIGPIPE would; any
/// other failure (`> /dev/full`: no space) is a setup failure, exit 3, with
/// the reason.
pub(crate) fn write_failed(e: &io::Error) -> u8 {
    if e.kind() == io::ErrorKind::BrokenPipe {
        EXIT_CLOSED_STDOUT
    } else {
        fail(EXIT_SETUP, format!("writing the results to stdout: {e}"))
    }
}

fn execute(cli: &Cli, run: RunFn, plan: Plan, grace: Duration, probing: &Probing) -> u8 {
    let format = probing
        .output
        .map(|o| o.0)
        .unwrap_or(if io::stdout().is_terminal() {
            Format::Table
        } else {
            Format::Json
        });
    let workers = plan.options.workers;
    let plan = Arc::new(plan);
    let shutdown = Shutdown::new(grace);
    let signalled = match watch_signals(shutdown.clone()) {
        Ok(s) => s,
        Err(e) => return fail(EXIT_SETUP, format!("cannot install signal handlers: {e}")),
    };
    tracing::info!(
        "{}: {} targets, {} workers, timeout {}",
        cli.runtime().name(),
        plan.len(),
        workers,
        pulse_core::session::fmt_duration(plan.options.timeout)
    );
    let (report, results, denied) = if format == Format::Jsonl {
        let mut sink = JsonlSink {
            out: io::BufWriter::new(io::stdout()),
            failed: None,
            denied: None,
            shutdown: shutdown.clone(),
        };
        let report = match run(
            plan.clone(),
            shutdown.clone(),
            &mut Logged { inner: &mut sink },
        ) {
            Ok(r) => r,
            Err(e) => return fail(EXIT_SETUP, e),
        };
        if let Some(e) = sink.failed {
            return write_failed(&e);
        }
        (report, Vec::new(), sink.denied)
    } else {
        let mut sink = Collect::new(plan.len());
        match run(
            plan.clone(),
            shutdown.clone(),
            &mut Logged { inner: &mut sink },
        ) {
            Ok(r) => {
                let results = sink.into_ordered();
                let denied = denied(&results);
                (r, results, denied)
            }
            Err(e) => return fail(EXIT_SETUP, e),
        }
    };
    tracing::info!(
        "{}: {} runtime threads, scan took {:.3}s",
        cli.runtime().name(),
        report.runtime_threads,
        report.duration.as_secs_f64()
    );
    let summary = report.summary.clone();
    if format != Format::Jsonl {
        let doc = Report {
            pulse: ScanInfo {
                version: pulse_core::VERSION.to_string(),
                runtime: cli.runtime().name().to_string(),
                stack: cli.stack.stack().to_string(),
                workers,
                runtime_threads: report.runtime_threads,
                started_at: humantime::format_rfc3339_millis(report.started_at).to_string(),
                duration_ms: millis(report.duration),
            },
            summary: report.summary,
            results,
        };
        let mut out = io::stdout().lock();
        let written = encode::write_report(&mut out, format, &doc).and_then(|()| out.flush());
        if let Err(e) = written {
            return write_failed(&e);
        }
    }
    if summary.interrupted && signalled.load(std::sync::atomic::Ordering::SeqCst) {
        EXIT_INTERRUPTED
    } else if let Some(message) = denied {
        // Exit 3, as before this scan could go on without ICMP: the host
        // is not set up for some targets, which is not a verdict on them.
        let n = summary
            .errors
            .get(&ErrorKind::Permission)
            .copied()
            .unwrap_or(1);
        fail(
            EXIT_SETUP,
            format!(
                "{n} of {} target(s) could not be probed for lack of permission (kind \
                 `permission`; the others were probed): {message}",
                summary.targets
            ),
        )
    } else if summary.up == summary.targets {
        EXIT_UP
    } else {
        EXIT_DOWN
    }
}

/// Log one probe's result at debug level (`-vv`), as it comes in.
pub(crate) fn log_result(r: &ProbeResult) {
    match &r.error {
        None => tracing::debug!("line {} {}: up in {:.1}ms", r.line, r.target, r.duration_ms),
        Some(e) => tracing::debug!(
            "line {} {}: {} in {:.1}ms: {}",
            r.line,
            r.target,
            e.kind.as_str(),
            r.duration_ms,
            e.message
        ),
    }
}

/// Passes every result on to `inner`, logging it first (`-vv`).
struct Logged<'a> {
    inner: &'a mut dyn Sink,
}

impl Sink for Logged<'_> {
    fn accept(&mut self, index: usize, result: ProbeResult) {
        log_result(&result);
        self.inner.accept(index, result);
    }
}

/// The first `permission` failure's message among `results`: a probe this
/// host does not allow (ICMP with no raw or ping socket), which names its
/// fix.
pub(crate) fn denied(results: &[ProbeResult]) -> Option<String> {
    results
        .iter()
        .filter_map(|r| r.error.as_ref())
        .find(|e| e.kind == ErrorKind::Permission)
        .map(|e| e.message.clone())
}

/// First SIGINT/SIGTERM: trigger the shutdown (stop dispatch, drain for the
/// grace period). Second: exit 130 at once. Returns a flag that says whether
/// a signal (not a closed pipe) caused the shutdown.
pub(crate) fn watch_signals(shutdown: Shutdown) -> io::Result<Arc<std::sync::atomic::AtomicBool>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = flag.clone();
    std::thread::Builder::new()
        .name("pulse-signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if seen.swap(true, std::sync::atomic::Ordering::SeqCst) {
                    eprintln!("pulse: second signal, exiting now");
                    std::process::exit(i32::from(EXIT_INTERRUPTED));
                }
                let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
                eprintln!(
                    "pulse: {name}: no new probes; in-flight probes get {} to finish (signal again to exit now)",
                    pulse_core::session::fmt_duration(shutdown.grace())
                );
                shutdown.trigger(Instant::now());
            }
        })?;
    Ok(flag)
}
