//! `pulse-bench`: the whole-process sweep harness. Runs each regime (every
//! model as its own `pulse scan` child against the farm, peers beside
//! them), then writes `reports/README.md`, its charts, and the run folder
//! `reports/runs/<date>-<host>/` with the exact commands, versions and raw
//! CSV. `scripts/bench.sh` runs it after criterion.
//!
//! A binary of its own rather than a `pulse bench` subcommand: it is the
//! measuring instrument, not the thing measured, so it stays out of the
//! binary users install, and it drives the very `pulse` binary they would
//! run (`--pulse`, by default the one next to it) as a child. Its idle-units
//! children are this binary again (`pulse-bench idle`), which keeps the
//! per-model unit code in one place (`pulse_bench::units`), shared with the
//! criterion `spawn` bench.

mod harness;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use pulse_bench::units::{Executor, Model};

#[derive(Parser, Debug)]
#[command(
    name = "pulse-bench",
    about = "Sweep pulse's models as whole processes and write reports/"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Regimes to run, comma-separated [default: all]; see --list.
    #[arg(long, value_delimiter = ',')]
    regimes: Vec<String>,

    /// List the regimes and exit.
    #[arg(long)]
    list: bool,

    /// Where README.md, charts/ and runs/ go.
    #[arg(long, default_value = "reports")]
    out: PathBuf,

    /// The pulse binary to measure [default: `pulse` next to this binary].
    #[arg(long)]
    pulse: Option<PathBuf>,

    /// Criterion's output directory, read for the micro-benchmark tables
    /// [default: $CARGO_TARGET_DIR/criterion or target/criterion].
    #[arg(long)]
    criterion: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Internal: hold `units` sleeping units of one model, for the idle regime.
    #[command(hide = true)]
    Idle {
        /// The model.
        #[arg(long)]
        model: String,
        /// Units to hold asleep.
        #[arg(long)]
        units: usize,
        /// How long they sleep.
        #[arg(long, default_value_t = 1000)]
        hold_ms: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Idle {
        model,
        units,
        hold_ms,
    }) = &cli.command
    {
        return idle(model, *units, *hold_ms);
    }
    if cli.list {
        for (name, what) in harness::REGIMES {
            println!("{name:10} {what}");
        }
        return ExitCode::SUCCESS;
    }
    match harness::main(
        &cli.regimes,
        &cli.out,
        cli.pulse.clone(),
        cli.criterion.clone(),
    ) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pulse-bench: {e}");
            ExitCode::from(2)
        }
    }
}

/// The idle-units child: hold the units, print how long starting them
/// took (ms), exit 0; or print why not and exit 3.
fn idle(model: &str, units: usize, hold_ms: u64) -> ExitCode {
    let run = || -> Result<Duration, String> {
        let ex = Executor::new(Model::parse(model)?)?;
        if units == 0 {
            std::thread::sleep(Duration::from_millis(hold_ms));
            return Ok(Duration::ZERO);
        }
        ex.hold_idle(units, Instant::now() + Duration::from_millis(hold_ms))
    };
    match run() {
        Ok(started) => {
            println!("{:.3}", started.as_secs_f64() * 1000.0);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(3)
        }
    }
}
