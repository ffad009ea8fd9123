//! `pulse farm`: run the mock host farm standalone until interrupted, and the
//! hidden ICMP responder the farm runs inside its network namespace.

use std::io::{self, IsTerminal, Write};
use std::path::Path;

use pulse_fixtures::farm::{Farm, FarmOptions, Scenario};

use crate::{EXIT_SETUP, EXIT_UP, EXIT_USAGE, FarmArgs, fail};

/// A scenario by built-in name or file path.
pub(crate) fn load_scenario(name: &str, scale: Option<f64>) -> Result<Scenario, String> {
    let scenario = match Scenario::builtin(name) {
        Some(s) => s,
        None if Path::new(name).exists() => Scenario::load(Path::new(name))?,
        None => {
            return Err(format!(
                "no scenario `{name}`: give a file path or one of {}",
                Scenario::builtin_names().join(", ")
            ));
        }
    };
    Ok(match scale {
        Some(f) => scenario.scaled(f),
        None => scenario,
    })
}

/// Farm options for this process: ICMP groups run the responder by
/// re-executing this binary inside the namespace.
pub(crate) fn farm_options(threads: usize) -> FarmOptions {
    let responder = std::env::current_exe()
        .ok()
        .map(|exe| vec![exe.into_os_string(), "farm-icmp-responder".into()]);
    FarmOptions { threads, responder }
}

pub(crate) fn farm(args: &FarmArgs) -> u8 {
    let scenario = match load_scenario(&args.scenario, args.scale) {
        Ok(s) => s,
        Err(e) => return fail(EXIT_USAGE, e),
    };
    let farm = match Farm::start(&scenario, farm_options(args.threads)) {
        Ok(f) => f,
        Err(e) => return fail(EXIT_SETUP, format!("cannot start the farm: {e}")),
    };
    for why in farm.skipped() {
        eprintln!("pulse: skipped {why}");
    }
    if let Some(path) = &args.write_targets
        && let Err(e) = farm.write_targets(path)
    {
        return fail(EXIT_SETUP, format!("cannot write {}: {e}", path.display()));
    }
    if let Some(path) = &args.write_expectations
        && let Err(e) = farm.write_expectations(path)
    {
        return fail(EXIT_SETUP, format!("cannot write {}: {e}", path.display()));
    }
    eprintln!(
        "pulse: farm `{}` serving {} hosts on loopback{}; Ctrl-C to stop",
        scenario.name,
        farm.hosts(),
        args.write_targets
            .as_ref()
            .map(|p| format!(", targets in {}", p.display()))
            .unwrap_or_default()
    );
    if args.write_targets.is_none() {
        // Piped or redirected (`pulse farm > targets.txt`), the targets
        // file is the output, as scripts take it. On a terminal, 2,000
        // target lines would scroll away everything else: a summary.
        if io::stdout().is_terminal() {
            eprint!("{}", summary(&farm));
        } else {
            let mut out = io::stdout().lock();
            let written = out
                .write_all(farm.targets().as_bytes())
                .and_then(|()| out.flush());
            if let Err(e) = written
                && e.kind() != io::ErrorKind::BrokenPipe
            {
                return fail(EXIT_SETUP, format!("writing the targets to stdout: {e}"));
            }
        }
    }
    wait_for_signal();
    eprintln!(
        "pulse: farm stopping (used {:.2}s of CPU)",
        farm.cpu_time().as_secs_f64()
    );
    EXIT_UP
}

/// What a person at a terminal needs of a running farm: its hosts per
/// group, and how to get the targets file and how to stop.
fn summary(farm: &Farm) -> String {
    let mut text = String::new();
    for group in &farm.scenario().groups {
        let served = farm
            .expectations()
            .iter()
            .filter(|e| e.group == group.name)
            .count();
        if served > 0 {
            text += &format!(
                "  {:<16} {:>6} {} hosts\n",
                group.name,
                served,
                group.protocol.as_str()
            );
        }
    }
    text + "pulse: for the targets file, run `pulse farm --write-targets FILE` (or `pulse farm > FILE`); \
            for each target's expected result, add --write-expectations FILE\n"
}

/// Block until SIGINT or SIGTERM.
fn wait_for_signal() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
        Ok(mut signals) => {
            let _ = signals.forever().next();
        }
        Err(e) => eprintln!("pulse: cannot wait for signals ({e}); stopping now"),
    }
}

pub(crate) fn icmp_responder(config: &Path) -> u8 {
    match pulse_fixtures::farm::netns::run_responder(config) {
        Ok(()) => EXIT_UP,
        Err(e) => fail(EXIT_SETUP, format!("ICMP responder: {e}")),
    }
}
