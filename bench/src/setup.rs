//! Workloads against the farm: farms started from inline scenarios, target
//! files of any length cycled over a farm's hosts, and in-process scans for
//! the criterion benches.
//!
//! A farm host costs the farm's process one open file (three for a
//! blackhole), and this machine allows 20,000, so a workload of 10,000
//! blackholed targets cannot have 10,000 blackholed hosts. It does not need
//! them: a blackhole drops every SYN to it, so [`cycle`] lists each host as
//! many times as it takes, and the scanner still opens one connection per
//! target line. Each repeated line keeps its host's expected outcome.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pulse_core::model::{Collect, RunReport, SetupError, Sink};
use pulse_core::plan::{Options, Plan};
use pulse_core::result::ProbeResult;
use pulse_core::shutdown::Shutdown;
use pulse_core::target::parse_targets;
use pulse_fixtures::farm::{Expectation, Farm, FarmOptions, Scenario};

/// A model's entry point (`pulse_tokio::run`, ...).
pub type RunFn = fn(Arc<Plan>, Shutdown, &mut dyn Sink) -> Result<RunReport, SetupError>;

/// A farm of one group: `hosts` hosts speaking `protocol`, all behaving
/// as `behaviour`, answering after `latency_ms` (ignored for tcp). The
/// expectations hold for `timeout`.
pub fn one_group(
    name: &str,
    protocol: &str,
    behaviour: &str,
    hosts: usize,
    latency_ms: u64,
    timeout: &str,
) -> Result<Scenario, String> {
    let latency = if protocol == "tcp" || latency_ms == 0 {
        String::new()
    } else {
        format!("latency = {{ dist = \"fixed\", ms = {latency_ms} }}\n")
    };
    let extra = match behaviour {
        // Mid-handshake for the whole probe: the TLS server waits past
        // the 2 s timeout the benches use (and out of the farm's grey zone
        // around it) before it answers the ClientHello. Not much longer: a
        // farm host holds the connection, and an open file, while it waits.
        "slow_tls" => "slow_tls_ms = 2500\n",
        _ => "",
    };
    let text = format!(
        "name = \"{name}\"\nseed = 11\ntimeout = \"{timeout}\"\nworkers = 100\n\
         [[groups]]\nname = \"g\"\nhosts = {hosts}\nprotocol = \"{protocol}\"\n{latency}{extra}\
         mix = {{ {behaviour} = 1 }}\n"
    );
    Scenario::parse(name, &text)
}

/// Start a farm on `threads` runtime threads (no ICMP responder: the
/// benches that need ICMP start their own, see the harness).
pub fn start(scenario: &Scenario, threads: usize) -> Result<Farm, String> {
    Farm::start(
        scenario,
        FarmOptions {
            threads,
            responder: None,
        },
    )
}

/// A targets file of exactly `n` lines cycling over the farm's hosts, and
/// each line's expectation (renumbered to its line).
pub fn cycle(farm: &Farm, n: usize) -> (String, Vec<Expectation>) {
    let hosts: Vec<(&str, &Expectation)> = farm
        .targets()
        .lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let e = farm.expectations().iter().find(|e| e.line == i + 1)?;
            Some((line, e))
        })
        .collect();
    let mut text = String::new();
    let mut expect = Vec::with_capacity(n);
    for (i, (line, e)) in hosts.iter().cycle().take(n).enumerate() {
        text.push_str(line);
        text.push('\n');
        expect.push(Expectation {
            line: i + 1,
            ..(*e).clone()
        });
    }
    (text, expect)
}

/// A plan of these targets with `workers` in flight and `timeout` each.
pub fn plan(targets: &str, workers: usize, timeout: Duration) -> Result<Arc<Plan>, String> {
    let parsed = parse_targets("<bench>", targets.as_bytes()).map_err(|e| e.to_string())?;
    let options = Options {
        workers,
        timeout,
        ..Options::default()
    };
    let mut no_files = |p: &std::path::Path| -> std::io::Result<Vec<u8>> {
        Err(std::io::Error::other(format!(
            "no files in benches ({})",
            p.display()
        )))
    };
    Plan::new("<bench>", parsed, options, &mut no_files)
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

/// Run `plan` on `run` in this process: its wall time and the results in
/// input order.
pub fn scan(run: RunFn, plan: &Arc<Plan>) -> Result<(Duration, Vec<ProbeResult>), String> {
    let mut sink = Collect::new(plan.len());
    let t0 = Instant::now();
    run(
        plan.clone(),
        Shutdown::new(Duration::from_secs(1)),
        &mut sink,
    )
    .map_err(|e| e.message)?;
    Ok((t0.elapsed(), sink.into_ordered()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycled_targets_keep_each_hosts_expectation_and_scan_as_expected() {
        let scenario = one_group("t", "http", "ok", 3, 0, "2s").unwrap();
        let farm = start(&scenario, 1).unwrap();
        let (text, expect) = cycle(&farm, 7);
        assert_eq!(text.lines().count(), 7);
        assert_eq!(expect.len(), 7);
        assert_eq!(text.lines().next(), text.lines().nth(3));
        let plan = plan(&text, 4, Duration::from_secs(2)).unwrap();
        let (_, results) = scan(pulse_tokio::run, &plan).unwrap();
        let c = pulse_fixtures::farm::check(&expect, &results);
        assert!(c.is_perfect(), "{c:?}");
    }

    #[test]
    fn a_blackhole_group_times_out() {
        let scenario = one_group("b", "tcp", "blackhole", 2, 0, "1s").unwrap();
        let farm = start(&scenario, 1).unwrap();
        let (text, expect) = cycle(&farm, 4);
        let plan = plan(&text, 4, Duration::from_millis(300)).unwrap();
        let (took, results) = scan(pulse_threads::run, &plan).unwrap();
        assert!(results.iter().all(|r| !r.success), "{results:?}");
        assert!(took >= Duration::from_millis(300));
        assert_eq!(expect.len(), results.len());
    }
}
