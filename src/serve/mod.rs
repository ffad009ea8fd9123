//! `pulse serve`: a long-running exporter. It probes the targets every
//! interval on the chosen model and serves the latest results to Prometheus.
//!
//! Three kinds of thread, each doing one thing:
//! - the **round loop** (the main thread) starts a round at every tick. It
//!   calls the model's `run` and blocks in it, so two rounds can never
//!   overlap. A tick that arrives while a round still runs is skipped and
//!   counted, never queued.
//! - the **signal thread** ([`signals`]) handles the signals. SIGHUP asks
//!   the reload thread ([`reload`]) to re-read the targets file (a bad file
//!   keeps the old targets; a stuck read cannot delay a stop). SIGTERM or
//!   SIGINT stops: no new round, the running one drains for `--grace`, then
//!   exit 0. A second one exits at once.
//! - the **HTTP threads** ([`http`]) answer `/metrics`, `/probe`, `/healthz`
//!   and `/` from the shared [`state::State`] ([`metrics`] and [`page`]
//!   render it), never waiting for a round, and `POST /-/reload` (with
//!   `--enable-reload`) through the reload thread.
//!
//! Each round gets a fresh [`Shutdown`]. A `Shutdown` keeps the callbacks the
//! models register until it triggers, so reusing one across rounds would
//! pile them up.

mod disconnect;
mod history;
mod http;
mod metrics;
mod page;
mod reload;
mod signals;
mod state;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant, SystemTime};

use pulse_core::encode::prom::{TargetLabels, write_targets};
use pulse_core::model::Collect;
use pulse_core::plan::{Options, Plan};
use pulse_core::redact::redact_password;
use pulse_core::redirect::{AllowedHost, RedirectPolicy};
use pulse_core::result::Kind;
use pulse_core::session::fmt_duration;
use pulse_core::shutdown::Shutdown;
use pulse_core::target::{MAX_DURATION, Target, parse_target, parse_targets};

use crate::input::{ByteSize, Source, bad_lines, read_named, read_targets};
use crate::scan::{RunFn, check_open_files, model};
use crate::{Cli, EXIT_SETUP, EXIT_UP, EXIT_USAGE, ServeArgs, fail};
use http::{Client, Request, Response};
use reload::Reloads;
use state::{CompletedRound, Config, Info, Round, RoundEnd, RoundSink, State};

/// What `--shard I/N` asks for: keep the targets whose hash modulo `count`
/// is `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shard {
    pub(crate) index: u64,
    pub(crate) count: u64,
}

impl Shard {
    /// Whether this shard probes `target`.
    pub(crate) fn keeps(self, target: &Target) -> bool {
        fnv1a(target.text.as_bytes()) % self.count == self.index
    }
}

/// `I/N` with 0 <= I < N, for `--shard`.
pub(crate) fn parse_shard(s: &str) -> Result<Shard, String> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}` is not I/N (e.g. 0/2 and 1/2 for two instances)"))?;
    let index: u64 = i
        .trim()
        .parse()
        .map_err(|_| format!("shard index `{i}` is not a number"))?;
    let count: u64 = n
        .trim()
        .parse()
        .map_err(|_| format!("shard count `{n}` is not a number"))?;
    if count == 0 {
        return Err("the shard count must be at least 1".into());
    }
    if index >= count {
        return Err(format!(
            "shard index {index} is out of range: shards are numbered 0 to {} (0-based, like Prometheus's hashmod)",
            count - 1
        ));
    }
    Ok(Shard { index, count })
}

/// 64-bit FNV-1a: a hash that is the same on every machine, build and
/// version, which is what lets N instances split one file without talking.
/// (std's `DefaultHasher` is explicitly not stable across releases.)
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// How a targets file becomes a [`Config`]: at start, on every SIGHUP and
/// `POST /-/reload`, and for `--check-config`.
struct Loader {
    path: PathBuf,
    source: String,
    /// `--max-targets-size`: a bigger file is refused, at start and on SIGHUP.
    cap: ByteSize,
    /// `ca=FILE` is relative to the targets file's directory.
    base: PathBuf,
    shard: Option<Shard>,
    options: Options,
    interval: Duration,
    spread: Option<Duration>,
    /// `--allow-redirect-host`: where redirects may go besides the
    /// configured targets' hosts.
    redirect_hosts: Vec<AllowedHost>,
    /// `--allow-any-redirect`, or `--allow-any-target` (whoever may name any
    /// target to `/probe` could name the hop itself, so refusing it would
    /// protect nothing).
    any_redirect: bool,
}

impl Loader {
    /// Read, parse and shard the file. The error lists every problem, one
    /// `FILE:LINE:COL: ...` per line.
    fn load(&self) -> Result<Config, String> {
        let bytes = read_targets(&Source::Path(&self.path), self.cap, "--max-targets-size")?;
        let all = parse_targets(&self.source, &bytes).map_err(|errors| {
            match bad_lines(&errors, &self.source) {
                Some(count) => format!("{errors}\n{count}"),
                None => errors.to_string(),
            }
        })?;
        let mut options = self.options.clone();
        // Every line of the file is a configured target, whichever shard
        // probes it: a redirect to another shard's target is allowed.
        options.redirects = if self.any_redirect {
            RedirectPolicy::Any
        } else {
            RedirectPolicy::configured(&all, &self.redirect_hosts)
        };
        let mine: Vec<Target> = all
            .iter()
            .filter(|t| self.shard.is_none_or(|s| s.keeps(t)))
            .cloned()
            .collect();
        // Every line's files are loaded and checked, whichever shard it
        // falls in: the file is bad or good as a whole, and `/probe` may run
        // any configured target.
        let mut files = HashMap::new();
        let mut read = |p: &Path| -> io::Result<Vec<u8>> {
            let bytes = read_named(&self.base.join(p))?;
            files.insert(p.to_path_buf(), bytes.clone());
            Ok(bytes)
        };
        Plan::new(&self.source, all.clone(), options.clone(), &mut read).map_err(|errors| {
            format!("{errors}\nbad file(s) named by targets in {}", self.source)
        })?;
        let mut cached = |p: &Path| {
            files
                .get(p)
                .cloned()
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
        };
        let mut plan = Plan::new(&self.source, mine, options, &mut cached).map_err(|errors| {
            format!("{errors}\nbad file(s) named by targets in {}", self.source)
        })?;
        let longest = (0..plan.len())
            .map(|i| plan.timeout(i))
            .max()
            .unwrap_or_default();
        plan.options.spread = self
            .spread
            .unwrap_or_else(|| default_spread(self.interval, longest));
        let keys = Config::keys(&plan.targets);
        let index = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), i))
            .collect();
        Ok(Config {
            source: self.source.clone(),
            all,
            files,
            plan: Arc::new(plan),
            keys,
            index,
        })
    }
}

/// `--check-config`'s one line: the file's targets by kind, and, with
/// `--shard`, the share this instance would probe (the shard is applied,
/// as serving would).
fn check_summary(config: &Config, shard: Option<Shard>) -> String {
    let by_kind = |targets: &[Target]| {
        let count = |k: Kind| targets.iter().filter(|t| t.kind == k).count();
        format!(
            "http {}, tcp {}, icmp {}",
            count(Kind::Http),
            count(Kind::Tcp),
            count(Kind::Icmp)
        )
    };
    let mut line = format!(
        "{}: valid: {} targets ({})",
        config.source,
        config.all.len(),
        by_kind(&config.all)
    );
    if let Some(s) = shard {
        let _ = write!(
            line,
            "; shard {}/{} probes {} of them ({})",
            s.index,
            s.count,
            config.plan.len(),
            by_kind(&config.plan.targets)
        );
    }
    line
}

/// Spread starts over 80% of what the interval leaves after the longest
/// timeout, so a round whose probes all keep their deadlines (and are not
/// held up by the worker bound) ends before the next tick. The other 20% is
/// slack for queueing.
fn default_spread(interval: Duration, longest_timeout: Duration) -> Duration {
    interval.saturating_sub(longest_timeout).mul_f64(0.8)
}

/// How long an on-demand probe may take, from the scraper's
/// `X-Prometheus-Scrape-Timeout-Seconds`: that less half a second for the
/// answer to travel (blackbox_exporter's default offset), and at least
/// 100 ms. The header must be a number of seconds above 0 and at most
/// [`MAX_DURATION`]: Prometheus sends its `scrape_timeout`, and anything
/// else (`1e20`, `-1`, `NaN`) is a client's mistake, answered 400 rather
/// than turned into a deadline (`1e20` once panicked the connection thread).
fn scrape_budget(value: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "X-Prometheus-Scrape-Timeout-Seconds: {:?} is not a number of seconds above 0 and \
             at most {} (the 24h maximum of every duration)",
            value.trim(),
            MAX_DURATION.as_secs()
        )
    };
    let secs: f64 = value.trim().parse().map_err(|_| bad())?;
    if !(secs > 0.0 && secs <= MAX_DURATION.as_secs_f64()) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64((secs - 0.5).max(0.1)))
}

/// Everything an HTTP handler needs.
struct Handlers {
    state: Arc<State>,
    run: RunFn,
    allow_any_target: bool,
    default_timeout: Duration,
    /// The reload thread, for `POST /-/reload`.
    reloads: Arc<Reloads>,
    /// `--enable-reload`: whether `POST /-/reload` may reload.
    enable_reload: bool,
}

impl Handlers {
    fn handle(&self, req: &Request, client: &Client<'_>) -> Response {
        match req.path.as_str() {
            "/-/reload" => self.reload(req),
            "/metrics" => Response {
                status: 200,
                content_type: "text/plain; version=0.0.4; charset=utf-8",
                body: metrics::render(&self.state).into_bytes(),
                headers: Vec::new(),
            },
            "/probe" => self.probe(req, client),
            "/healthz" => {
                if self.state.stopping.is_triggered() {
                    Response::text(503, "stopping\n")
                } else {
                    Response::text(200, "ok\n")
                }
            }
            "/" => Response {
                status: 200,
                content_type: "text/html; charset=utf-8",
                // `?page=N`; anything else is the first page.
                body: page::render(
                    &self.state,
                    req.param("page").and_then(|p| p.parse().ok()).unwrap_or(1),
                )
                .into_bytes(),
                headers: Vec::new(),
            },
            other => Response::text(
                404,
                format!(
                    "no such page: {other}\nendpoints: /metrics, /probe?target=TARGET, /healthz, /, \
                     POST /-/reload\n"
                ),
            ),
        }
    }

    /// `POST /-/reload`: re-read the targets file as SIGHUP does, and say
    /// how it went: 200, or 500 with every error (the old targets kept, as
    /// Prometheus answers a failed reload).
    fn reload(&self, req: &Request) -> Response {
        if req.method != "POST" {
            let mut r = Response::text(
                405,
                "/-/reload takes POST (e.g. curl -X POST http://HOST:PORT/-/reload)\n",
            );
            r.headers.push(("Allow", "POST".into()));
            return r;
        }
        if !self.enable_reload {
            return Response::text(
                403,
                "POST /-/reload is off: start pulse serve with --enable-reload to allow it \
                 (off by default because anyone who can reach this address could use it); \
                 SIGHUP reloads without it\n",
            );
        }
        match self.reloads.request_and_wait(reload::HTTP_WAIT) {
            Some(Ok(summary)) => Response::text(200, format!("{summary}\n")),
            Some(Err(errors)) => Response::text(500, format!("{errors}\n")),
            None => {
                let running = self.reloads.running_for().map_or_else(String::new, |d| {
                    format!(" (the reload running now started {} ago)", fmt_duration(d))
                });
                let mut r = Response::text(
                    503,
                    format!(
                        "the reload did not finish within {}{running}: if it is stuck, {} may \
                         be a FIFO with no writer or a pipe that never ends; it applies when it \
                         ends, and pulse_config_last_reload_successful says how it went\n",
                        fmt_duration(reload::HTTP_WAIT),
                        self.reloads.source()
                    ),
                );
                r.headers.push(("Retry-After", "10".into()));
                r
            }
        }
    }

    /// One on-demand probe, blackbox style: the answer is that probe's
    /// series, without `target`/`kind` labels (Prometheus adds the target as
    /// `instance` through relabelling, as for blackbox_exporter).
    ///
    /// If the client goes away first (a scrape that timed out), the probe
    /// is cancelled at once: its shutdown is triggered with no grace, which
    /// every model honours by closing the probe's socket and reporting it
    /// `cancelled` (counted in `pulse_probe_requests_total`).
    fn probe(&self, req: &Request, client: &Client<'_>) -> Response {
        let Some(text) = req.param("target").filter(|t| !t.trim().is_empty()) else {
            return Response::text(
                400,
                "missing ?target=: name a target of the targets file, e.g. /probe?target=tcp://127.0.0.1:22\n",
            );
        };
        let config = self.state.config();
        let mut target = match config.all.iter().find(|t| t.text == text) {
            Some(t) => t.clone(),
            None if self.allow_any_target => match parse_target(&text) {
                Ok(t) => t,
                Err(e) => return Response::text(400, format!("{e}\n")),
            },
            None => {
                return Response::text(
                    403,
                    format!(
                        "target {:?} is not in {}: pulse serve probes only its configured \
                         targets, so that it cannot be used to reach arbitrary hosts (start it \
                         with --allow-any-target to allow any)\n",
                        redact_password(&text),
                        config.source
                    ),
                );
            }
        };
        // Finish inside the scraper's own timeout, less half a second for
        // the answer to travel (blackbox_exporter's default offset).
        let mut timeout = target.timeout.unwrap_or(self.default_timeout);
        if let Some(value) = req.header("x-prometheus-scrape-timeout-seconds") {
            match scrape_budget(value) {
                Ok(budget) => timeout = timeout.min(budget),
                Err(e) => return Response::text(400, format!("{e}\n")),
            }
        }
        target.timeout = Some(timeout);
        // The rounds' redirect policy: an on-demand probe may not reach
        // further than a scheduled one.
        let options = Options {
            workers: 1,
            timeout,
            icmp_count: config.plan.options.icmp_count,
            redirects: config.plan.options.redirects.clone(),
            prefer_ip: config.plan.options.prefer_ip,
            resolve: config.plan.options.resolve.clone(),
            ..Options::default()
        };
        // Only the files the targets file named: a target from a query
        // string may not make the exporter read files.
        let mut read = |p: &Path| {
            config.files.get(p).cloned().ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "files (ca=, body_file=, auth_file=) are read only when the targets file names them",
                )
            })
        };
        let plan = match Plan::new("<probe>", vec![target], options, &mut read) {
            Ok(p) => Arc::new(p),
            Err(e) => return Response::text(400, format!("{e}\n")),
        };
        let mut sink = Collect::new(1);
        let shutdown = Shutdown::new(Duration::ZERO);
        let cancel = shutdown.clone();
        let watch = client.watch(move || {
            cancel.trigger(Instant::now());
        });
        if let Err(e) = &watch {
            // Out of threads or descriptors: the probe still runs, to its
            // own deadline, as it would unwatched.
            tracing::warn!("cannot watch a /probe client for a close: {e}");
        }
        let ran = (self.run)(plan, shutdown, &mut sink);
        if let Ok(watch) = watch {
            watch.finish();
        }
        if let Err(e) = ran {
            return Response::text(500, format!("cannot run the probe: {e}\n"));
        }
        let results = sink.into_ordered();
        for r in &results {
            self.state.record_probe_request(r);
        }
        let mut body = String::new();
        write_targets(&mut body, &results, TargetLabels::Bare);
        Response {
            status: 200,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: body.into_bytes(),
            headers: Vec::new(),
        }
    }
}

pub(crate) fn serve(cli: &Cli, args: &ServeArgs) -> u8 {
    let run = model(cli.runtime());
    let workers = match check_open_files(args.workers) {
        Ok(w) => w,
        Err(e) => return fail(EXIT_USAGE, e),
    };
    if let Some(spread) = args.spread
        && spread >= args.interval
    {
        return fail(
            EXIT_USAGE,
            format!(
                "--spread {} must be shorter than --interval {}: every round would overrun",
                fmt_duration(spread),
                fmt_duration(args.interval)
            ),
        );
    }
    let loader = Loader {
        path: args.targets().to_path_buf(),
        source: Source::Path(args.targets()).name(),
        cap: args.max_targets_size,
        base: args
            .targets()
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
        shard: args.shard,
        options: Options {
            workers,
            timeout: args.timeout,
            prefer_ip: args.reaching.ip,
            resolve: crate::scan::pins(&args.reaching.resolve),
            icmp_count: args.reaching.icmp_count,
            ..Options::default()
        },
        interval: args.interval,
        spread: args.spread,
        redirect_hosts: args.allow_redirect_host.clone(),
        any_redirect: args.allow_any_redirect || args.allow_any_target,
    };
    let config = match loader.load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return fail(
                EXIT_USAGE,
                if args.check_config {
                    format!("{} is not valid", loader.source)
                } else {
                    "nothing to serve".to_owned()
                },
            );
        }
    };
    if args.check_config {
        let summary = check_summary(&config, args.shard);
        if args.list_targets {
            // The list alone on stdout, so that two shards' (or two shard
            // counts') lists can be diffed or joined as they are.
            eprintln!("{summary}");
            let mut out = String::new();
            for t in &config.plan.targets {
                let _ = writeln!(out, "{}", t.text);
            }
            let mut stdout = io::stdout().lock();
            return match stdout
                .write_all(out.as_bytes())
                .and_then(|()| stdout.flush())
            {
                Ok(()) => EXIT_UP,
                Err(e) => crate::scan::write_failed(&e),
            };
        }
        println!("{summary}");
        return EXIT_UP;
    }
    let listener = match TcpListener::bind(&args.listen) {
        Ok(l) => l,
        // Not an address at all (`--listen nonsense`): a usage error.
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
            return fail(
                EXIT_USAGE,
                format!(
                    "--listen {}: {e} (expected HOST:PORT, e.g. 127.0.0.1:9100)",
                    args.listen
                ),
            );
        }
        Err(e) => return fail(EXIT_SETUP, format!("cannot listen on {}: {e}", args.listen)),
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => return fail(EXIT_SETUP, format!("cannot listen on {}: {e}", args.listen)),
    };
    if !addr.ip().is_loopback() {
        tracing::warn!(
            "listening on {addr}, beyond this machine: anyone who can reach it can read the \
             results and ask for probes of the configured targets"
        );
    }
    let spread = config.plan.options.spread;
    let (mine, all) = (config.plan.len(), config.all.len());
    let state = Arc::new(State::new(
        Info {
            runtime: cli.runtime().name(),
            interval: args.interval,
            workers,
            shard: args.shard.map(|s| (s.index, s.count)),
            listen: addr.to_string(),
            started: SystemTime::now(),
        },
        config,
    ));
    let reloads = match Reloads::spawn(state.clone(), loader) {
        Ok(r) => r,
        Err(e) => return fail(EXIT_SETUP, format!("cannot start the reload thread: {e}")),
    };
    let handlers = Handlers {
        state: state.clone(),
        run,
        allow_any_target: args.allow_any_target,
        default_timeout: args.timeout,
        reloads: reloads.clone(),
        enable_reload: args.enable_reload,
    };
    let stats = state.http.clone();
    let handler = Arc::new(move |req: &Request, client: &Client<'_>| handlers.handle(req, client));
    if let Err(e) = http::spawn(listener, handler, stats) {
        return fail(EXIT_SETUP, format!("cannot start the HTTP server: {e}"));
    }
    if let Err(e) = signals::watch(state.clone(), reloads, args.grace) {
        return fail(EXIT_SETUP, format!("cannot install signal handlers: {e}"));
    }
    let shard = args
        .shard
        .map_or_else(String::new, |s| format!(" (shard {}/{})", s.index, s.count));
    eprintln!(
        "pulse serve: listening on http://{addr}/ ; {} probing {mine} of {all} targets{shard} every {}, starts spread over {}",
        cli.runtime().name(),
        fmt_duration(args.interval),
        fmt_duration(spread),
    );
    rounds(&state, run, args)
}

/// The round loop; returns the exit code.
fn rounds(state: &Arc<State>, run: RunFn, args: &ServeArgs) -> u8 {
    let mut next = Instant::now();
    let mut done: u64 = 0;
    let mut succeeded = false;
    let mut denied_logged = false;
    let mut first_rss = None;
    let mut peak_rss = None;
    loop {
        let now = Instant::now();
        if next > now && state.stopping.wait_timeout(next - now) {
            break;
        }
        let config = state.config();
        let shutdown = Shutdown::new(args.grace);
        let completed = Arc::new(AtomicUsize::new(0));
        let round = Round {
            plan: config.plan.clone(),
            started_before: config.plan.probes_started(),
            completed: completed.clone(),
            shutdown: shutdown.clone(),
        };
        if !state.begin_round(round) {
            break;
        }
        let started = Instant::now();
        let mut sink = RoundSink {
            state: state.clone(),
            config: config.clone(),
            completed,
            denied: None,
        };
        let outcome = run(config.plan.clone(), shutdown, &mut sink);
        if let Some(message) = sink.denied.take()
            && !denied_logged
        {
            // Once: the same fix applies every round, and the metrics
            // (pulse_probe_error{error="permission"}) and the page keep
            // showing which targets it concerns.
            denied_logged = true;
            tracing::warn!(
                "some targets cannot be probed for lack of permission (kind `permission`, \
                 probe_success 0); the others are probed: {message}"
            );
        }
        let took = started.elapsed();
        let rss = resident_bytes();
        done += 1;
        match outcome {
            Ok(report) => {
                succeeded = true;
                let (up, complete) = (report.summary.up, !report.summary.interrupted);
                state.end_round(if complete {
                    RoundEnd::Completed(CompletedRound {
                        duration: took,
                        targets: config.plan.len(),
                        up,
                    })
                } else {
                    RoundEnd::Interrupted
                });
                tracing::info!(
                    "round {done}: {up} of {} up, {:.3}s, resident {}{}",
                    config.plan.len(),
                    took.as_secs_f64(),
                    mib(rss),
                    if complete { "" } else { " (interrupted)" }
                );
            }
            Err(e) => {
                state.end_round(RoundEnd::Failed);
                if !succeeded {
                    // Nothing will work better next time (no ICMP socket, no
                    // runtime): say so now rather than serve empty metrics.
                    return fail(EXIT_SETUP, e);
                }
                tracing::error!("round {done} could not run: {e}");
            }
        }
        first_rss = first_rss.or(rss);
        peak_rss = peak_rss.max(rss);
        if args.rounds == Some(done) {
            let skipped = state.round_counts().skipped;
            eprintln!(
                "pulse serve: stopping after {done} rounds as asked (--rounds); {skipped} skipped; \
                 resident memory after round 1: {}, after round {done}: {}, peak after a round: {}",
                mib(first_rss),
                mib(rss),
                mib(peak_rss),
            );
            return EXIT_UP;
        }
        if state.stopping.is_triggered() {
            break;
        }
        // The next tick on the grid started at the first round; ticks that
        // passed while this round ran are skipped, not run late.
        next += args.interval;
        let now = Instant::now();
        if next < now {
            let behind = (now - next).as_nanos();
            let missed = behind.div_ceil(args.interval.as_nanos());
            let missed = u64::try_from(missed).unwrap_or(u64::MAX);
            state.skipped(missed);
            next += args.interval * u32::try_from(missed).unwrap_or(u32::MAX);
            tracing::warn!(
                "round {done} took {:.3}s, longer than the {} interval: skipped {missed} round(s)",
                took.as_secs_f64(),
                fmt_duration(args.interval)
            );
        }
    }
    eprintln!("pulse serve: stopped after {done} rounds");
    EXIT_UP
}

fn resident_bytes() -> Option<u64> {
    pulse_procfs::Status::read(pulse_procfs::Proc::Current)?.bytes("VmRSS")
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or_else(
        || "unknown".into(),
        |b| format!("{:.1} MiB", b as f64 / 1048576.0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_targets() {
        let lines: String = (0..500)
            .map(|i| format!("tcp://127.0.0.{}:{}\n", i % 250 + 1, 1000 + i))
            .collect();
        let targets = parse_targets("t", lines.as_bytes()).unwrap();
        for n in 1..=4 {
            let mut owners = vec![0; targets.len()];
            for i in 0..n {
                let s = parse_shard(&format!("{i}/{n}")).unwrap();
                for (t, o) in targets.iter().zip(&mut owners) {
                    if s.keeps(t) {
                        *o += 1;
                    }
                }
                let kept = targets.iter().filter(|t| s.keeps(t)).count();
                // Roughly even: FNV-1a spreads these well.
                assert!(kept * n * 2 > targets.len(), "shard {i}/{n} kept {kept}");
            }
            assert!(
                owners.iter().all(|&o| o == 1),
                "each target in exactly one of {n} shards"
            );
        }
    }

    #[test]
    fn the_hash_is_stable() {
        // Fixed values: a change here would move targets between instances
        // of a running fleet on upgrade.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn shard_syntax() {
        assert_eq!(parse_shard("1/3"), Ok(Shard { index: 1, count: 3 }));
        assert!(parse_shard("3/3").unwrap_err().contains("0 to 2"));
        assert!(parse_shard("0/0").is_err());
        assert!(parse_shard("1").unwrap_err().contains("I/N"));
        assert!(parse_shard("a/2").is_err());
    }

    #[test]
    fn scrape_timeouts_are_bounded() {
        assert_eq!(scrape_budget("10"), Ok(Duration::from_millis(9500)));
        assert_eq!(scrape_budget(" 0.2 "), Ok(Duration::from_millis(100)));
        assert_eq!(
            scrape_budget("86400"),
            Ok(Duration::from_millis(86_399_500))
        );
        for bad in ["1e20", "86400.5", "0", "-1", "NaN", "inf", "", "ten"] {
            let e = scrape_budget(bad).unwrap_err();
            assert!(
                e.contains("X-Prometheus-Scrape-Timeout-Seconds"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn spread_leaves_room_for_the_slowest_probe() {
        let s = Duration::from_secs;
        assert_eq!(default_spread(s(30), s(5)), s(20));
        assert_eq!(default_spread(s(1), s(5)), Duration::ZERO);
    }
}
