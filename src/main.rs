//! `pulse`: the command line. Parsing arguments, reading files, signals,
//! choosing the model and writing outputs live here; probing lives in the
//! models and in `pulse-core`.

mod compare;
mod farm;
mod generate;
mod input;
mod markup;
mod scan;
mod serve;

use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use pulse_core::encode::Format;
use pulse_core::target::{parse_duration, parse_icmp_count};

/// Exit codes (README, "Exit codes"): every target up.
pub(crate) const EXIT_UP: u8 = 0;
/// Some target down (failed, or cancelled by an interrupt).
pub(crate) const EXIT_DOWN: u8 = 1;
/// Bad input or usage.
pub(crate) const EXIT_USAGE: u8 = 2;
/// Setup failure (runtime, output, a probe this host does not permit such as
/// ICMP without a raw or ping socket): the message names the fix.
pub(crate) const EXIT_SETUP: u8 = 3;
/// Interrupted by SIGINT/SIGTERM (the output is still complete).
pub(crate) const EXIT_INTERRUPTED: u8 = 130;
/// Stdout was closed before the output was written (`| head -1`): 128 +
/// SIGPIPE, what a shell reports for a program killed by SIGPIPE, so
/// `set -o pipefail` scripts see pulse like any other Unix tool. The same
/// for every output format.
pub(crate) const EXIT_CLOSED_STDOUT: u8 = 141;

/// File descriptors kept back from `--workers` for stdio, the ICMP sockets,
/// the runtime's own (epoll, eventfd, signal pipe) and DNS lookups.
pub(crate) const FD_RESERVE: u64 = 64;

#[derive(Parser, Debug)]
#[command(
    name = "pulse",
    version,
    about = "Probe many hosts concurrently (ICMP, TCP, HTTP(S)); compare concurrency models doing it",
    after_help = "Exit codes: 0 all up, 1 some down, 2 bad input or usage, 3 setup failure (nothing could run, output that could not be written, or some probe not permitted here, e.g. ICMP without privilege: the rest is still probed), 130 interrupted, 141 stdout closed early (| head)."
)]
pub(crate) struct Cli {
    /// Concurrency model that runs the probes of scan, check and serve [default: tokio].
    /// (compare runs every model, or those its --runtimes names.)
    #[arg(long, global = true, value_enum)]
    runtime: Option<Runtime>,

    /// What does the exchange inside each probe: `core`, the same sans-IO
    /// session for every model, or `native`, the client a programmer would
    /// reach for on that executor (tokio: reqwest, surge-ping, TcpStream;
    /// threads and rayon: ureq for HTTP(S), the core for TCP and ICMP).
    /// smol and async-std have no native stack: see docs/guide.md.
    #[arg(long, global = true, value_enum, default_value_t = StackArg::Core)]
    stack: StackArg,

    /// More logging on stderr: -v the run's figures (model, workers, threads, times; serve:
    /// each round), -vv also each probe's result as it comes in and each request serve
    /// answers, -vvv also the libraries' debug logs (rustls, hyper, ...). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,

    #[command(subcommand)]
    command: Command,
}

/// `--stack`, as clap parses it.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StackArg {
    Core,
    Native,
}

impl StackArg {
    pub(crate) fn stack(self) -> pulse_core::native::Stack {
        match self {
            StackArg::Core => pulse_core::native::Stack::Core,
            StackArg::Native => pulse_core::native::Stack::Native,
        }
    }
}

/// Why `model` has no native stack, or `None` when it has one.
pub(crate) fn no_native_stack(model: Runtime) -> Option<&'static str> {
    match model {
        Runtime::Tokio | Runtime::Threads | Runtime::Rayon => None,
        // What each ecosystem offers, as of the versions in Cargo.lock.
        Runtime::Smol => Some(
            "smol has no maintained HTTP client written for it (surf and async-h1, \
             from the http-rs project, are unmaintained, as is isahc), so there is \
             no native smol stack: run it with --stack core",
        ),
        Runtime::AsyncStd => Some(
            "async-std is discontinued (RUSTSEC-2025-0052) and its client, surf, \
             with it, so there is no native async-std stack: run it with --stack core",
        ),
    }
}

impl Cli {
    /// The model that runs scan, check and serve: `--runtime`, or tokio.
    pub(crate) fn runtime(&self) -> Runtime {
        self.runtime.unwrap_or(Runtime::Tokio)
    }
}

/// `--output`, as clap parses it: the core's formats, each with its one-line
/// description, so that `--help` lists them and the shells complete them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OutputArg(pub(crate) Format);

impl OutputArg {
    /// Every format, in `Format::ALL`'s order.
    const ALL: [OutputArg; 5] = [
        OutputArg(Format::ALL[0]),
        OutputArg(Format::ALL[1]),
        OutputArg(Format::ALL[2]),
        OutputArg(Format::ALL[3]),
        OutputArg(Format::ALL[4]),
    ];
}

impl ValueEnum for OutputArg {
    fn value_variants<'a>() -> &'a [Self] {
        &Self::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        let help = match self.0 {
            Format::Table => "aligned columns and a summary line (the default on a terminal)",
            Format::Json => {
                "one JSON document: run facts, summary, every result (the default otherwise)"
            }
            Format::Jsonl => "one JSON object per result, streamed as each completes",
            Format::Yaml => "the json document's data as YAML",
            Format::Prom => "Prometheus text exposition format, blackbox_exporter's names",
        };
        Some(clap::builder::PossibleValue::new(self.0.name()).help(help))
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Runtime {
    Tokio,
    Smol,
    #[value(name = "async-std")]
    AsyncStd,
    Threads,
    Rayon,
}

impl Runtime {
    /// Every model, in the order reports list them.
    pub(crate) const ALL: [Runtime; 5] = [
        Runtime::Tokio,
        Runtime::Smol,
        Runtime::AsyncStd,
        Runtime::Threads,
        Runtime::Rayon,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Runtime::Tokio => "tokio",
            Runtime::Smol => "smol",
            Runtime::AsyncStd => "async-std",
            Runtime::Threads => "threads",
            Runtime::Rayon => "rayon",
        }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Probe every target in a file and report each one.
    Scan(ScanArgs),
    /// Probe one target given on the command line.
    Check(CheckArgs),
    /// Run the mock host farm on loopback until interrupted (it runs no probes).
    Farm(FarmArgs),
    /// The workbench: one farm, the same scan by every model, side by side.
    Compare(CompareArgs),
    /// Probe the targets every interval and serve the results to Prometheus.
    Serve(ServeArgs),
    /// Print a shell completion script for pulse (e.g. `source <(pulse completions bash)`).
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print pulse's manual page (pulse.1, roff), or write one page per command to --out.
    Man {
        /// Write pulse.1 and pulse-COMMAND.1 for each command into this directory
        /// instead of printing pulse.1.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Internal: the farm's ICMP responder, run inside its network namespace.
    #[command(hide = true)]
    FarmIcmpResponder {
        /// The host list the farm wrote.
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(Args, Debug)]
pub(crate) struct FarmArgs {
    /// Scenario: a built-in name (smoke, latency, mixed, fail-heavy) or a TOML file.
    #[arg(long, default_value = "mixed")]
    scenario: String,

    /// Multiply every group's host count (e.g. 0.1 for a quick run).
    #[arg(long)]
    scale: Option<f64>,

    /// Write the targets file here. Without it the targets are printed to stdout when
    /// stdout is not a terminal (`pulse farm > targets.txt`); on a terminal, a summary.
    #[arg(long, value_name = "FILE")]
    write_targets: Option<PathBuf>,

    /// Write every target's expected outcome here (JSON).
    #[arg(long)]
    write_expectations: Option<PathBuf>,

    /// Threads of the farm's tokio runtime.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

#[derive(Args, Debug)]
pub(crate) struct CompareArgs {
    /// Scenario: a built-in name (smoke, latency, mixed, fail-heavy) or a TOML file.
    #[arg(long, default_value = "mixed")]
    scenario: String,

    /// Multiply every group's host count (e.g. 0.1 for a quick run).
    #[arg(long)]
    scale: Option<f64>,

    /// Maximum probes in flight [default: the scenario's].
    #[arg(long, short, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..20000))]
    workers: Option<usize>,

    /// Probe deadline [default: the scenario's].
    #[arg(long, value_parser = parse_duration)]
    timeout: Option<Duration>,

    /// Models to compare, comma-separated [default: all five]. (The global --runtime picks
    /// the one model of scan, check and serve; compare does not take it.)
    #[arg(long, value_enum, value_delimiter = ',')]
    runtimes: Vec<Runtime>,

    /// Runs per model (the table shows each model's median run).
    #[arg(long, default_value_t = 1, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    runs: usize,

    /// Threads of the farm's tokio runtime.
    #[arg(long, default_value_t = 2)]
    farm_threads: usize,

    /// Where the markdown, JSON and SVG of this run go [default: $TMPDIR/pulse-compare].
    /// Ad-hoc runs stay out of the repository: `reports/` is regenerated by
    /// `scripts/bench.sh` only.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub(crate) struct Probing {
    /// Probe deadline (resolve + connect + TLS + request + body), unless a target sets `timeout=`.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,

    /// Output format [default: table on a terminal, json otherwise].
    #[arg(long, short, value_enum)]
    output: Option<OutputArg>,

    #[command(flatten)]
    reaching: Reaching,

    /// Test hook: probes of targets on this line panic (checks panic isolation).
    #[arg(long, hide = true)]
    fault_panic_line: Vec<usize>,
}

/// How probes reach their targets' addresses, and how many echoes an ICMP
/// probe sends: the same flags for scan, check and serve.
#[derive(Args, Debug)]
pub(crate) struct Reaching {
    /// Address family tried first when a name resolves to both: 4, 6 or any
    /// (the resolver's order). The other family is the fallback; a
    /// target's own ip= limits it to one family instead.
    #[arg(long, value_name = "4|6|any", default_value = "any")]
    pub(crate) ip: pulse_core::target::IpFamily,

    /// Probe NAME at these addresses instead of resolving it, keeping NAME
    /// for the Host header and TLS (curl's --resolve); repeatable.
    #[arg(long, value_name = "NAME=ADDR[,ADDR]", value_parser = pulse_core::target::parse_pin)]
    pub(crate) resolve: Vec<(String, Vec<std::net::IpAddr>)>,

    /// Echo requests per ICMP probe (1..=1000), unless a target sets `count=`;
    /// the train's count × interval must fit the deadline.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = parse_icmp_count)]
    pub(crate) icmp_count: u16,
}

#[derive(Args, Debug)]
#[group(id = "input", required = true, multiple = false)]
pub(crate) struct ScanArgs {
    /// Targets file, one target per line, or `-` for stdin.
    #[arg(long, short, value_name = "FILE", group = "input")]
    targets: Option<PathBuf>,

    /// The targets file, given without --targets (the same thing).
    #[arg(value_name = "FILE", group = "input")]
    file: Option<PathBuf>,

    /// Maximum probes in flight at once.
    #[arg(long, short, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
    workers: u64,

    /// After an interrupt, how long in-flight probes may go on before they are reported cancelled.
    #[arg(long, default_value = "2s", value_parser = parse_grace)]
    grace: Duration,

    /// Refuse a targets file (or stdin) larger than this (e.g. 64MiB).
    #[arg(long, value_name = "SIZE", default_value_t = input::DEFAULT_TARGETS_CAP)]
    max_targets_size: input::ByteSize,

    #[command(flatten)]
    probing: Probing,
}

#[derive(Args, Debug)]
pub(crate) struct CheckArgs {
    /// The target, in the targets-file syntax (quote it if it has options).
    target: String,

    #[command(flatten)]
    probing: Probing,
}

#[derive(Args, Debug)]
#[group(id = "input", required = true, multiple = false)]
pub(crate) struct ServeArgs {
    /// Targets file, one target per line; SIGHUP reloads it.
    #[arg(long, short, value_name = "FILE", group = "input")]
    targets: Option<PathBuf>,

    /// The targets file, given without --targets (the same thing).
    #[arg(value_name = "FILE", group = "input")]
    file: Option<PathBuf>,

    /// Address for /metrics, /probe, /healthz and / (loopback unless you say otherwise).
    #[arg(long, default_value = "127.0.0.1:9100")]
    listen: String,

    /// Time between round starts; a round still running at the next start skips it.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    interval: Duration,

    /// Spread probe starts over this long from the round's start [default: 80% of the
    /// interval less the longest timeout]; 0 starts them all at once.
    #[arg(long, value_parser = parse_grace)]
    spread: Option<Duration>,

    /// Maximum probes in flight at once.
    #[arg(long, short, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
    workers: u64,

    /// Probe deadline, unless a target sets `timeout=`.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,

    #[command(flatten)]
    reaching: Reaching,

    /// On SIGTERM/SIGINT, how long the running round may go on before its probes are cancelled.
    #[arg(long, default_value = "5s", value_parser = parse_grace)]
    grace: Duration,

    /// Probe only shard I of N (0-based): the targets whose stable hash modulo N is I.
    #[arg(long, value_name = "I/N", value_parser = serve::parse_shard)]
    shard: Option<serve::Shard>,

    /// Let /probe?target= run targets that are not in the targets file (an open prober
    /// can be made to reach anything this host can: only on a trusted network).
    #[arg(long)]
    allow_any_target: bool,

    /// Also follow redirects to HOST (any port) or HOST:PORT; repeatable. By default a
    /// redirect may go only to the host and port of a configured http(s) target (or the
    /// http->https upgrade of one), so a configured server cannot send probes elsewhere.
    #[arg(long, value_name = "HOST[:PORT]", value_parser = pulse_core::redirect::AllowedHost::parse)]
    allow_redirect_host: Vec<pulse_core::redirect::AllowedHost>,

    /// Follow redirects anywhere, as `pulse scan` does (implied by --allow-any-target).
    #[arg(long)]
    allow_any_redirect: bool,

    /// Refuse a targets file larger than this (e.g. 64MiB), at start and on SIGHUP.
    #[arg(long, value_name = "SIZE", default_value_t = input::DEFAULT_TARGETS_CAP)]
    max_targets_size: input::ByteSize,

    /// Accept POST /-/reload, which re-reads the targets file as SIGHUP does (as
    /// Prometheus's --web.enable-lifecycle). Off by default: it is a write endpoint,
    /// and anyone who can reach --listen could use it; without this flag it answers 403.
    #[arg(long)]
    enable_reload: bool,

    /// Check the targets file and exit, probing nothing and binding nothing: the same
    /// loading as serving (syntax, options, CA bundles, --shard, --max-targets-size).
    /// Exit 0 with a one-line summary on stdout, or 2 with every FILE:LINE:COL error.
    #[arg(long)]
    check_config: bool,

    /// With --check-config: print the targets this instance would probe (its --shard of
    /// the file), one per line as written, on stdout, and the summary on stderr. Diff two
    /// shard counts' lists to see which targets move when N changes.
    #[arg(long, requires = "check_config")]
    list_targets: bool,

    /// Stop after this many rounds (for soak runs and tests), printing memory figures.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    rounds: Option<u64>,
}

/// The targets file of scan or serve, given with `--targets FILE` or as
/// `FILE` alone.
fn targets_path<'a>(flag: &'a Option<PathBuf>, positional: &'a Option<PathBuf>) -> &'a Path {
    // clap requires exactly one of the two (the `input` group), so the
    // fallback, stdin, is never taken; it is there only to need no unwrap.
    flag.as_deref()
        .or(positional.as_deref())
        .unwrap_or(Path::new("-"))
}

impl ScanArgs {
    /// The targets file (`-`: stdin).
    pub(crate) fn targets(&self) -> &Path {
        targets_path(&self.targets, &self.file)
    }
}

impl ServeArgs {
    /// The targets file.
    pub(crate) fn targets(&self) -> &Path {
        targets_path(&self.targets, &self.file)
    }
}

fn parse_grace(s: &str) -> Result<Duration, String> {
    if s.trim() == "0" || s.trim() == "0s" {
        return Ok(Duration::ZERO);
    }
    parse_duration(s)
}

/// The clap command as every user sees it: parsing, `--help`, the
/// completions and the man page. The global `--runtime` and `--stack` are
/// hidden where they choose nothing: farm runs no probes, compare takes
/// `--runtimes`, and completions and man print text.
pub(crate) fn command() -> clap::Command {
    let cmd = <Cli as clap::CommandFactory>::command();
    // A command that already has an argument of a global's id is left
    // alone when clap copies the globals into every command (at `build`),
    // so each gets the global's own definition, hidden.
    let global = |id: &str| {
        cmd.get_arguments()
            .find(|a| a.get_id() == id)
            .map(|a| a.clone().hide(true))
    };
    let (runtime, stack) = (global("runtime"), global("stack"));
    cmd.clone().mut_subcommands(|sc| {
        let hidden = match sc.get_name() {
            "farm" | "completions" | "man" => [runtime.clone(), stack.clone()],
            "compare" => [runtime.clone(), None],
            _ => [None, None],
        };
        sc.args(hidden.into_iter().flatten())
    })
}

fn main() -> ExitCode {
    let parsed = command()
        .try_get_matches()
        .and_then(|m| <Cli as clap::FromArgMatches>::from_arg_matches(&m));
    let cli = match parsed {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { EXIT_UP });
        }
    };
    init_logging(cli.verbose, cli.quiet);
    if let Some(refused) = runtime_refused(&cli) {
        return ExitCode::from(fail(EXIT_USAGE, refused));
    }
    if cli.stack == StackArg::Native
        && let Some(refused) = native_refused(&cli)
    {
        return ExitCode::from(fail(EXIT_USAGE, refused));
    }
    let code = match &cli.command {
        Command::Scan(args) => scan::scan(&cli, args),
        Command::Check(args) => scan::check(&cli, args),
        Command::Farm(args) => farm::farm(args),
        Command::Compare(args) => compare::compare(args),
        Command::Serve(args) => serve::serve(&cli, args),
        Command::Completions { shell } => generate::completions(*shell),
        Command::Man { out } => generate::man(out.as_deref()),
        Command::FarmIcmpResponder { config } => farm::icmp_responder(config),
    };
    ExitCode::from(code)
}

/// Why `--runtime` given to a command that runs no single model is
/// refused, rather than silently ignored.
fn runtime_refused(cli: &Cli) -> Option<String> {
    let model = cli.runtime?;
    match &cli.command {
        Command::Compare(_) => Some(format!(
            "--runtime chooses the one model of scan, check and serve; compare runs several: \
             use --runtimes {} (comma-separated; all five by default)",
            model.name()
        )),
        Command::Farm(_) => Some(
            "--runtime chooses the model of scan, check and serve; the farm runs no probes \
             (its servers run on a tokio runtime of their own: --threads sets its size)"
                .into(),
        ),
        _ => None,
    }
}

/// Why `--stack native` cannot run this command, if it cannot.
fn native_refused(cli: &Cli) -> Option<String> {
    match &cli.command {
        Command::Scan(_) | Command::Check(_) => {
            no_native_stack(cli.runtime()).map(|why| format!("--stack native: {why}"))
        }
        // The exporter checks every redirect hop against its allowlist
        // inside the core's session (docs/security.md); a native client
        // follows hops the allowlist never sees.
        Command::Serve(_) => Some(
            "--stack native: pulse serve runs only the core stack, whose session checks every \
             redirect hop against the exporter's allowlist (docs/security.md)"
                .into(),
        ),
        Command::Compare(_) => Some(
            "--stack native: compare runs the core stack; the benchmark harness compares \
             the stacks (scripts/bench.sh, the `stacks` regime)"
                .into(),
        ),
        Command::Farm(_)
        | Command::Completions { .. }
        | Command::Man { .. }
        | Command::FarmIcmpResponder { .. } => None,
    }
}

/// pulse's own crates, which `-vv` turns to debug (the libraries stay at
/// info: rustls and hyper log every record and header at debug).
const OWN_CRATES: [&str; 9] = [
    "pulse",
    "pulse_core",
    "pulse_net",
    "pulse_tokio",
    "pulse_smol",
    "pulse_async_std",
    "pulse_threads",
    "pulse_rayon",
    "pulse_fixtures",
];

/// The log filter for `-q` and each `-v` count (without RUST_LOG).
fn log_filter(verbose: u8, quiet: bool) -> String {
    match (quiet, verbose) {
        (true, _) => "error".into(),
        (_, 0) => "warn".into(),
        (_, 1) => "info".into(),
        (_, 2) => std::iter::once("info".to_string())
            .chain(OWN_CRATES.iter().map(|c| format!("{c}=debug")))
            .collect::<Vec<_>>()
            .join(","),
        _ => "debug".into(),
    }
}

fn init_logging(verbose: u8, quiet: bool) {
    let default = log_filter(verbose, quiet);
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_target(false)
        .with_ansi(io::stderr().is_terminal())
        .init();
}

/// Print an error the way every pulse error looks, and return its exit code.
pub(crate) fn fail(code: u8, message: impl std::fmt::Display) -> u8 {
    eprintln!("pulse: {message}");
    code
}
