//! The scan plan: the parsed targets plus everything a model needs to run
//! them, identical for every model (that is what makes runs comparable).

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::native::Stack;
use crate::redact::redact_password;
use crate::redirect::RedirectPolicy;
use crate::request::{Auth, MAX_REQUEST_BODY, Payload};
use crate::result::{ErrorKind, Kind, Outcome, ProbeResult, millis};
use crate::session::{DEFAULT_BODY_CAP, Pins, Session};
use crate::target::{
    DEFAULT_ICMP_INTERVAL, IpFamily, Target, TargetError, TargetErrors, train_length, train_message,
};

/// Scan-wide settings (the CLI's flags).
#[derive(Debug, Clone)]
pub struct Options {
    /// Maximum probes in flight at once (`--workers`).
    pub workers: usize,
    /// Probe deadline for targets without their own `timeout=` (`--timeout`).
    pub timeout: Duration,
    /// Response body bytes read at most per probe.
    pub body_cap: usize,
    /// Spread probe start times evenly over this long from the scan start
    /// (`pulse serve`): target `i` of `n` starts no earlier than
    /// `start + spread * i / n`. Zero (the default, and `pulse scan`) starts
    /// every probe as soon as a worker is free. See [`Plan::due`].
    pub spread: Duration,
    /// Where redirects may lead: anywhere for `pulse scan` (the default),
    /// only to configured targets for `pulse serve` (see [`RedirectPolicy`]).
    pub redirects: RedirectPolicy,
    /// Which code does the exchange inside a probe (`--stack`): the core's
    /// session (the default), or the model's ecosystem client
    /// ([`crate::native`]).
    pub stack: Stack,
    /// The address family tried first when a name has both (`--ip`); a
    /// target's `ip=` limits it to one instead.
    pub prefer_ip: IpFamily,
    /// Names pinned to addresses (`--resolve`), skipping the resolver.
    pub resolve: Option<Arc<Pins>>,
    /// Echo requests per ICMP probe for targets without their own
    /// `count=` (`--icmp-count`; 1, a single echo, by default).
    pub icmp_count: u16,
    /// Test-only fault hook: probes of targets on these lines panic at start,
    /// so tests can check that a panic stays inside its probe.
    pub panic_on_lines: BTreeSet<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            workers: 50,
            timeout: Duration::from_secs(5),
            body_cap: DEFAULT_BODY_CAP,
            spread: Duration::ZERO,
            redirects: RedirectPolicy::Any,
            stack: Stack::Core,
            prefer_ip: IpFamily::Any,
            resolve: None,
            icmp_count: 1,
            panic_on_lines: BTreeSet::new(),
        }
    }
}

/// Everything a model needs to run a scan.
pub struct Plan {
    /// The targets, in input order; a target's index is its position here.
    pub targets: Vec<Target>,
    /// Scan-wide settings.
    pub options: Options,
    /// TLS client config per target index (http targets only).
    tls: Vec<Option<Arc<rustls::ClientConfig>>>,
    /// The `ca=FILE` bundle per target index, as read: a native client
    /// that cannot take a rustls config (ureq) builds its own from it.
    ca_pem: Vec<Option<Arc<[u8]>>>,
    /// The ICMP identifier for this scan's echo requests.
    pub icmp_ident: u16,
    /// Probes started so far (sessions created), for `pulse serve`'s
    /// in-flight gauge. A statistic, not synchronization: nothing waits on
    /// it or orders anything by it, hence std's atomic rather than
    /// [`crate::sync`]'s (a loom atomic cannot live outside a loom model).
    started: AtomicUsize,
}

impl Plan {
    /// Build a plan. `source` names the targets file in errors; `read_file`
    /// loads the files targets name, `ca=` bundles, `body_file=` and
    /// `auth_file=` (the core does no IO itself), with relative paths
    /// already resolved by the caller. Every bad or missing file is
    /// reported as `FILE:LINE:COL: ...`, all at once.
    pub fn new(
        source: &str,
        mut targets: Vec<Target>,
        options: Options,
        read_file: &mut dyn FnMut(&Path) -> io::Result<Vec<u8>>,
    ) -> Result<Plan, TargetErrors> {
        let mut errors = Vec::new();
        for t in &targets {
            if let Err(message) = check_train(t, &options) {
                errors.push(TargetError {
                    file: source.to_string(),
                    line: t.line,
                    column: t.icmp.column.max(1),
                    message,
                });
            }
        }
        for t in &mut targets {
            if let Err(message) = load_request_files(t, read_file) {
                errors.push(TargetError {
                    file: source.to_string(),
                    line: t.line,
                    column: 1,
                    message,
                });
            }
        }
        let mut verified = None;
        let mut insecure = None;
        let mut by_ca: HashMap<PathBuf, (Arc<rustls::ClientConfig>, Arc<[u8]>)> = HashMap::new();
        let mut tls = Vec::with_capacity(targets.len());
        let mut ca_pem = Vec::with_capacity(targets.len());
        for t in &targets {
            let Some(h) = &t.http else {
                tls.push(None);
                ca_pem.push(None);
                continue;
            };
            let mut pem_of_target = None;
            let config = if h.insecure {
                insecure.get_or_insert_with(crate::tls::insecure).clone()
            } else if let Some(ca) = &h.ca {
                if let Some((c, pem)) = by_ca.get(ca) {
                    pem_of_target = Some(pem.clone());
                    c.clone()
                } else {
                    let loaded = read_file(ca)
                        .map_err(|e| format!("ca={}: {e}", ca.display()))
                        .and_then(|pem| {
                            crate::tls::with_ca(&pem)
                                .map(|c| (c, Arc::<[u8]>::from(pem)))
                                .map_err(|e| format!("ca={}: {e}", ca.display()))
                        });
                    match loaded {
                        Ok((c, pem)) => {
                            by_ca.insert(ca.clone(), (c.clone(), pem.clone()));
                            pem_of_target = Some(pem);
                            c
                        }
                        Err(message) => {
                            errors.push(TargetError {
                                file: source.to_string(),
                                line: t.line,
                                column: 1,
                                message,
                            });
                            continue;
                        }
                    }
                }
            } else {
                verified.get_or_insert_with(crate::tls::verified).clone()
            };
            tls.push(Some(config));
            ca_pem.push(pem_of_target);
        }
        if !errors.is_empty() {
            return Err(TargetErrors::from_vec(errors));
        }
        Ok(Plan {
            targets,
            options,
            tls,
            ca_pem,
            icmp_ident: scan_ident(),
            started: AtomicUsize::new(0),
        })
    }

    /// The same plan (targets, TLS configs, options, ICMP identifier) with
    /// its exchanges done by `stack`: how the conformance suite and the
    /// benchmark harness run one plan on both stacks.
    pub fn with_stack(&self, stack: Stack) -> Plan {
        Plan {
            targets: self.targets.clone(),
            options: Options {
                stack,
                ..self.options.clone()
            },
            tls: self.tls.clone(),
            ca_pem: self.ca_pem.clone(),
            icmp_ident: self.icmp_ident,
            started: AtomicUsize::new(0),
        }
    }

    /// Number of targets.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// True when there are no targets.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// How many workers to start: `--workers`, but never more than there are
    /// targets (a worker with nothing to probe is memory and, for the
    /// blocking models, a thread for nothing), and at least one.
    pub fn workers(&self) -> usize {
        self.options.workers.clamp(1, self.len().max(1))
    }

    /// The deadline length for target `index`.
    pub fn timeout(&self, index: usize) -> Duration {
        self.targets[index].timeout.unwrap_or(self.options.timeout)
    }

    /// The echo train of target `index`: how many echo requests, how far
    /// apart (icmp targets; a count of 1 is the single echo of old).
    pub fn icmp_train(&self, index: usize) -> (u16, Duration) {
        let t = &self.targets[index];
        (
            t.icmp.count.unwrap_or(self.options.icmp_count),
            t.icmp.interval.unwrap_or(DEFAULT_ICMP_INTERVAL),
        )
    }

    /// Whether any target needs an ICMP socket of this address family.
    pub fn needs_icmp(&self, v6: bool) -> bool {
        self.targets.iter().any(|t| {
            t.kind == Kind::Icmp
                && match t.host.parse::<std::net::IpAddr>() {
                    Ok(ip) => ip.is_ipv6() == v6,
                    // A name: we learn its family only when it resolves.
                    // `ip=` says which it will be; `--ip 6` makes IPv6 the
                    // likely one; otherwise IPv4 is what names need in
                    // practice.
                    Err(_) if let Some(ips) = self.pinned(&t.host) => {
                        ips.iter().any(|ip| ip.is_ipv6() == v6 && t.ip.admits(*ip))
                    }
                    Err(_) => match (t.ip, self.options.prefer_ip) {
                        (IpFamily::V4, _) => !v6,
                        (IpFamily::V6, _) | (IpFamily::Any, IpFamily::V6) => v6,
                        (IpFamily::Any, _) => !v6,
                    },
                }
        })
    }

    /// The addresses `--resolve` pins `host` to, if it does.
    fn pinned(&self, host: &str) -> Option<&Vec<std::net::IpAddr>> {
        self.options
            .resolve
            .as_ref()?
            .get(&host.to_ascii_lowercase())
    }

    /// The earliest instant target `index` may start, for a scan that
    /// started at `started`: `started` itself unless [`Options::spread`] is
    /// set. Every model waits for it (cut short by shutdown) before it
    /// starts the probe, and counts queue wait from it, so with a spread the
    /// queue wait is how late the probe started, not how long after the scan.
    pub fn due(&self, index: usize, started: Instant) -> Instant {
        let n = self.targets.len();
        if self.options.spread.is_zero() || n == 0 {
            return started;
        }
        // index < n, and n is far below 2^53: the ratio is exact enough.
        crate::time::deadline(
            started,
            self.options.spread.mul_f64(index as f64 / n as f64),
        )
    }

    /// Probes started so far: sessions created by [`Plan::session`], which
    /// every model calls exactly once per probe it starts.
    pub fn probes_started(&self) -> usize {
        self.started.load(Ordering::Relaxed)
    }

    /// The TLS client config for target `index` (http targets only): the
    /// one its session uses, for a native client that takes a rustls config.
    pub fn tls_config(&self, index: usize) -> Option<&Arc<rustls::ClientConfig>> {
        self.tls[index].as_ref()
    }

    /// The `ca=FILE` bundle of target `index` as read, if it names one.
    pub fn ca_pem(&self, index: usize) -> Option<&Arc<[u8]>> {
        self.ca_pem[index].as_ref()
    }

    /// Count a probe started without a session (a native stack's), so
    /// `pulse serve`'s in-flight gauge and the test hook see every probe;
    /// fires the test-only fault hook like [`Plan::session`].
    pub fn start_native(&self, index: usize) {
        self.started.fetch_add(1, Ordering::Relaxed);
        let t = &self.targets[index];
        if self.options.panic_on_lines.contains(&t.line) {
            panic!(
                "injected fault: probe of line {} panics (test hook)",
                t.line
            );
        }
    }

    /// Start the session for target `index` at `now`.
    ///
    /// This is also where the test-only fault hook fires, so every model gets
    /// it from the same place, inside its own panic isolation.
    pub fn session(&self, index: usize, now: Instant) -> Session {
        self.start_native(index);
        let t = &self.targets[index];
        let (count, interval) = self.icmp_train(index);
        Session::new(t, self.tls[index].clone(), self.options.body_cap, now)
            .with_redirects(self.options.redirects.clone())
            .with_preferred_ip(self.options.prefer_ip)
            .with_echoes(count, interval)
            .with_pins(self.options.resolve.clone(), now)
    }

    /// The result for target `index` from its outcome and queue wait.
    pub fn result(&self, index: usize, outcome: Outcome, queue_wait: Duration) -> ProbeResult {
        let t = &self.targets[index];
        ProbeResult {
            // Shown everywhere (every encoder, serve's pages): never the
            // password. The session still sends it.
            target: redact_password(&t.text).into_owned(),
            kind: t.kind,
            line: t.line,
            success: outcome.success,
            duration_ms: millis(outcome.duration),
            queue_wait_ms: millis(queue_wait),
            phases: outcome.phases,
            address: outcome.address,
            http: outcome.http,
            icmp: outcome.icmp,
            error: outcome.error,
            addresses: outcome.addresses,
        }
    }

    /// A failed result that no session produced (cancelled before start,
    /// panicked, no ICMP socket of that family).
    pub fn failed(
        &self,
        index: usize,
        kind: ErrorKind,
        message: impl Into<String>,
        duration: Duration,
        queue_wait: Duration,
    ) -> ProbeResult {
        self.result(index, Outcome::failed(kind, message, duration), queue_wait)
    }
}

/// Read the `body_file=` and `auth_file=` a target names into the bytes
/// and header its session sends, within their caps; the error names the
/// option and the file, never the file's content.
fn load_request_files(
    t: &mut Target,
    read_file: &mut dyn FnMut(&Path) -> io::Result<Vec<u8>>,
) -> Result<(), String> {
    let Some(h) = t.http.as_mut() else {
        return Ok(());
    };
    if let Some(Payload::File(path)) = &h.body {
        let bytes = read_file(path).map_err(|e| format!("body_file={}: {e}", path.display()))?;
        if bytes.len() > MAX_REQUEST_BODY {
            return Err(format!(
                "body_file={}: {} bytes, more than the maximum of {} KiB for a request body",
                path.display(),
                bytes.len(),
                MAX_REQUEST_BODY / 1024
            ));
        }
        h.body = Some(Payload::Bytes(bytes.into()));
    }
    if let Some(Auth::File(path)) = &h.auth {
        let bytes = read_file(path).map_err(|e| format!("auth_file={}: {e}", path.display()))?;
        let header = crate::request::parse_auth_file(&bytes)
            .map_err(|e| format!("auth_file={} {e}", path.display()))?;
        h.auth = Some(Auth::Header(header));
    }
    Ok(())
}

/// An ICMP identifier for this scan: distinct between concurrent scans on one
/// host (pid in the high bits would collide across pid namespaces, so mix the
/// pid with the clock's nanoseconds).
fn scan_ident() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mixed = std::process::id().wrapping_mul(2_654_435_761) ^ nanos;
    (mixed ^ (mixed >> 16)) as u16
}

/// An icmp target's echo train must fit its deadline. A line with its own
/// `timeout=` and `count=` was checked by the parser; this is the check
/// against `--timeout` and `--icmp-count`, which only the plan knows.
fn check_train(t: &Target, options: &Options) -> Result<(), String> {
    if t.kind != Kind::Icmp {
        return Ok(());
    }
    let count = t.icmp.count.unwrap_or(options.icmp_count);
    let interval = t.icmp.interval.unwrap_or(DEFAULT_ICMP_INTERVAL);
    let timeout = t.timeout.unwrap_or(options.timeout);
    match train_length(count, interval) {
        Some(needs) if needs > timeout => {
            let source = if t.timeout.is_some() {
                "timeout="
            } else {
                "--timeout"
            };
            let message = train_message(count, interval, needs, timeout, source);
            Err(if t.icmp.count.is_none() {
                message.replacen("count=", "--icmp-count ", 1)
            } else {
                message
            })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::parse_targets;

    fn plan_with(text: &str, files: &[(&str, Vec<u8>)]) -> Result<Plan, String> {
        let targets = parse_targets("t.txt", text.as_bytes()).map_err(|e| e.to_string())?;
        let mut read = |p: &Path| {
            files
                .iter()
                .find(|(name, _)| Path::new(name) == p)
                .map(|(_, b)| b.clone())
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
        };
        Plan::new("t.txt", targets, Options::default(), &mut read).map_err(|e| e.to_string())
    }

    #[test]
    fn request_files_are_read_into_what_the_session_sends() {
        let plan = plan_with(
            "http://h/ body_file=req.json auth_file=token\n",
            &[
                ("req.json", b"{}".to_vec()),
                ("token", b"bearer abc\n".to_vec()),
            ],
        )
        .unwrap();
        let h = plan.targets[0].http.as_ref().unwrap();
        assert_eq!(h.body, Some(Payload::Bytes(Arc::from(&b"{}"[..]))));
        match &h.auth {
            Some(Auth::Header(v)) => {
                assert_eq!(v.to_str().unwrap(), "Bearer abc");
                assert!(v.is_sensitive());
            }
            other => panic!("auth not read: {other:?}"),
        }
    }

    #[test]
    fn every_bad_request_file_is_listed_with_its_line() {
        let e = plan_with(
            "http://h/ body_file=missing.json\nhttp://h/ body_file=big\nhttp://h/ auth_file=bad\n",
            &[
                ("big", vec![b'x'; MAX_REQUEST_BODY + 1]),
                ("bad", b"hunter2\n".to_vec()),
            ],
        )
        .err()
        .expect("bad files");
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(
            lines[0],
            format!(
                "t.txt:1:1: body_file=missing.json: {}",
                io::Error::from(io::ErrorKind::NotFound)
            )
        );
        assert_eq!(
            lines[1],
            "t.txt:2:1: body_file=big: 65537 bytes, more than the maximum of 64 KiB for a request body"
        );
        assert_eq!(
            lines[2],
            "t.txt:3:1: auth_file=bad has no credentials after the scheme; its first line must be \
             `basic USER:PASSWORD` or `bearer TOKEN`"
        );
        assert!(!e.contains("hunter2"), "{e}");
    }
}
