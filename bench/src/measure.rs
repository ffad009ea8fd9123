//! Measuring one child process: what the kernel says it cost.
//!
//! Every figure in a report comes from a process of its own (a model's
//! `pulse scan`, a peer such as wrk, an idle-units child), started here and
//! waited for here, so the kernel's accounting covers the whole process and
//! nothing of the harness: CPU and context switches from the difference of
//! getrusage(RUSAGE_CHILDREN) around the wait (the one place that still
//! counts threads that have already exited), and the peak resident set and
//! OS thread count sampled from `/proc/PID/status` while it runs.
//!
//! Not wait4's `ru_maxrss`: Linux carries the high-water mark of the image
//! a process replaced at exec into it, and std spawns with vfork, so a
//! child's ru_maxrss is never below its parent's RSS at the spawn. With the
//! farm in the parent (10,000 hosts are tens of MiB) every small child
//! would read the same figure. `VmHWM` in `/proc/PID/status` is the new
//! image's own high-water mark; it only grows, so the last sample before
//! the exit is the peak, short of what the last few milliseconds add.
//!
//! One child at a time: the RUSAGE_CHILDREN difference is only this
//! child's when no other child is reaped in between.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use pulse_procfs::{Proc, Status};
use serde::Serialize;
use wait4::Wait4;

/// How often a running child's thread count and RSS are sampled: often
/// enough to catch a pool at its peak (a scan holds it for its whole run)
/// and to leave little after the last `VmHWM` read, rarely enough that
/// reading `/proc` costs the child nothing measurable.
const SAMPLE_EVERY: Duration = Duration::from_millis(10);

/// What the kernel reported for one child.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Usage {
    /// Spawn to exit, as the harness saw it.
    pub wall_s: f64,
    /// Peak resident set of the whole process (`VmHWM`, see above), MiB.
    pub peak_rss_mib: f64,
    /// User CPU of the whole process, every thread included.
    pub user_s: f64,
    /// System (kernel) CPU of the whole process.
    pub sys_s: f64,
    /// Voluntary context switches: a thread gave up the CPU to wait
    /// (a blocking read, a futex, epoll_wait).
    pub voluntary_cs: u64,
    /// Involuntary context switches: the scheduler took the CPU away
    /// (time slice over, a more urgent thread woke).
    pub involuntary_cs: u64,
    /// Most OS threads seen at once (`Threads:` in /proc/PID/status).
    pub peak_threads: u64,
    /// The exit code, or None when a signal ended it.
    pub exit_code: Option<i32>,
}

impl Usage {
    /// User plus system CPU, seconds.
    pub fn cpu_s(&self) -> f64 {
        self.user_s + self.sys_s
    }
}

/// A child to run and measure.
#[derive(Debug)]
pub struct Child {
    /// The command, arguments set; stdio is set by [`Child::run`].
    pub command: Command,
    /// Where its stdout goes (read back by the caller).
    pub stdout: PathBuf,
    /// Where its stderr goes (quoted when it fails).
    pub stderr: PathBuf,
    /// Send SIGINT this long after the start (the cancellation regime).
    pub interrupt_after: Option<Duration>,
    /// Kill it (SIGKILL) if it runs longer than this: a bench run that
    /// hangs must not hang the whole report.
    pub limit: Duration,
}

/// A measured run: the usage, and when SIGINT was sent if it was.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The kernel's figures.
    pub usage: Usage,
    /// Start to SIGINT, if one was sent.
    pub interrupted_at: Option<Duration>,
    /// SIGINT to exit, if one was sent.
    pub exit_after_interrupt: Option<Duration>,
    /// Whether the child was killed for running past its limit.
    pub killed: bool,
    /// The exit status.
    pub status: ExitStatus,
}

impl Child {
    /// A child running `program args...`, with output files under `dir`
    /// named after `stem`.
    pub fn new(program: &Path, args: &[String], dir: &Path, stem: &str) -> Child {
        let mut command = Command::new(program);
        command.args(args);
        Child {
            command,
            stdout: dir.join(format!("{stem}.out")),
            stderr: dir.join(format!("{stem}.err")),
            interrupt_after: None,
            limit: Duration::from_secs(600),
        }
    }

    /// Start it, sample it while it runs, wait for it, and measure it.
    pub fn run(mut self) -> Result<Measured, String> {
        let out =
            File::create(&self.stdout).map_err(|e| format!("{}: {e}", self.stdout.display()))?;
        let err =
            File::create(&self.stderr).map_err(|e| format!("{}: {e}", self.stderr.display()))?;
        let before = children_usage()?;
        let started = Instant::now();
        let mut child = self
            .command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {:?}: {e}", self.command.get_program()))?;
        let pid = Pid::from_raw(i32::try_from(child.id()).map_err(|e| e.to_string())?);
        let mut peak_threads = 0;
        let mut peak_rss_kib = 0;
        let mut interrupted_at = None;
        let mut killed = false;
        // Sample until it exits; `try_wait` would reap it and lose the
        // rusage, so "still running" is read from /proc instead.
        while let Some((n, hwm)) = sample(child.id()) {
            peak_threads = peak_threads.max(n);
            peak_rss_kib = peak_rss_kib.max(hwm);
            let now = started.elapsed();
            if let Some(after) = self.interrupt_after
                && interrupted_at.is_none()
                && now >= after
            {
                // Fails only if it has just exited, which the wait sees.
                let _ = kill(pid, Signal::SIGINT);
                interrupted_at = Some(now);
            }
            if now >= self.limit {
                let _ = kill(pid, Signal::SIGKILL);
                killed = true;
                break;
            }
            // After the signal, look every millisecond: the exit latency is
            // measured to the sample that first sees the process gone.
            std::thread::sleep(if interrupted_at.is_some() {
                Duration::from_millis(1)
            } else {
                SAMPLE_EVERY
            });
        }
        let waited = child
            .wait4()
            .map_err(|e| format!("waiting for the child: {e}"))?;
        let wall = started.elapsed();
        let after = children_usage()?;
        let usage = Usage {
            wall_s: wall.as_secs_f64(),
            // No sample at all (it exited before the first): wait4's
            // figure, an upper bound.
            peak_rss_mib: if peak_rss_kib > 0 {
                peak_rss_kib as f64 / 1024.0
            } else {
                waited.rusage.maxrss as f64 / (1024.0 * 1024.0)
            },
            user_s: after.user_s - before.user_s,
            sys_s: after.sys_s - before.sys_s,
            voluntary_cs: after.voluntary_cs.saturating_sub(before.voluntary_cs),
            involuntary_cs: after.involuntary_cs.saturating_sub(before.involuntary_cs),
            peak_threads,
            exit_code: waited.status.code(),
        };
        Ok(Measured {
            usage,
            exit_after_interrupt: interrupted_at.map(|at| wall.saturating_sub(at)),
            interrupted_at,
            killed,
            status: waited.status,
        })
    }
}

/// The accumulated usage of every child reaped so far.
fn children_usage() -> Result<Usage, String> {
    let u = getrusage(UsageWho::RUSAGE_CHILDREN).map_err(|e| format!("getrusage: {e}"))?;
    let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    Ok(Usage {
        user_s: secs(u.user_time()),
        sys_s: secs(u.system_time()),
        voluntary_cs: u64::try_from(u.voluntary_context_switches()).unwrap_or(0),
        involuntary_cs: u64::try_from(u.involuntary_context_switches()).unwrap_or(0),
        ..Usage::default()
    })
}

/// The `Threads:` count and `VmHWM` (KiB) of a running process; None once
/// it has exited (a zombie has no threads or memory left to count).
fn sample(pid: u32) -> Option<(u64, u64)> {
    let status = Status::read(Proc::Pid(pid))?;
    if status.is_zombie() {
        return None;
    }
    let hwm_kib = status.bytes("VmHWM").map_or(0, |b| b / 1024);
    Some((status.number("Threads")?, hwm_kib))
}

/// Sorted copy of some values.
pub fn sorted(values: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    v
}

/// Nearest-rank percentile of sorted values (0 for none).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of some values (0 for none).
pub fn median(values: impl Iterator<Item = f64>) -> f64 {
    percentile(&sorted(values), 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v = sorted([5.0, 1.0, 4.0, 2.0, 3.0].into_iter());
        assert_eq!(percentile(&v, 0.5), 3.0);
        assert_eq!(percentile(&v, 0.99), 5.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn a_child_is_measured_by_the_kernel() {
        let dir = tempfile::tempdir().unwrap();
        // A shell that burns some CPU in a second process and exits 3.
        let args = [
            "-c".to_string(),
            "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exit 3".to_string(),
        ];
        let m = Child::new(Path::new("/bin/sh"), &args, dir.path(), "sh")
            .run()
            .unwrap();
        assert_eq!(m.usage.exit_code, Some(3));
        assert!(m.usage.cpu_s() > 0.0, "{:?}", m.usage);
        assert!(m.usage.peak_rss_mib > 0.1, "{:?}", m.usage);
        assert!(m.usage.peak_threads >= 1, "{:?}", m.usage);
        assert!(m.interrupted_at.is_none() && !m.killed);
    }

    #[test]
    fn a_small_child_of_a_big_parent_is_small() {
        // 256 MiB touched here: wait4's ru_maxrss would give it to the child.
        let big = vec![1u8; 256 << 20];
        let dir = tempfile::tempdir().unwrap();
        let args = ["0.2".to_string()];
        let m = Child::new(Path::new("/bin/sleep"), &args, dir.path(), "sleep")
            .run()
            .unwrap();
        assert!(m.usage.peak_rss_mib < 32.0, "{:?}", m.usage);
        assert!(m.usage.peak_rss_mib > 0.1, "{:?}", m.usage);
        assert_eq!(std::hint::black_box(&big)[big.len() - 1], 1);
    }

    #[test]
    fn an_interrupted_child_reports_its_exit_latency() {
        let dir = tempfile::tempdir().unwrap();
        let args = ["5".to_string()];
        let mut c = Child::new(Path::new("/bin/sleep"), &args, dir.path(), "sleep");
        c.interrupt_after = Some(Duration::from_millis(100));
        let m = c.run().unwrap();
        // sleep dies of SIGINT: no exit code, and well before its 5 s.
        assert_eq!(m.usage.exit_code, None);
        assert!(m.usage.wall_s < 2.0, "{:?}", m.usage);
        assert!(
            m.exit_after_interrupt
                .is_some_and(|d| d < Duration::from_secs(1))
        );
    }
}

/// One `pulse --runtime X scan` child, as run by `compare` and the harness.
#[derive(Debug, Clone)]
pub struct ScanSpec<'a> {
    /// The pulse binary.
    pub pulse: &'a Path,
    /// The model (`--runtime`).
    pub runtime: &'a str,
    /// The targets file.
    pub targets: &'a Path,
    /// `--workers`.
    pub workers: usize,
    /// `--timeout`, as pulse writes it (`2s`).
    pub timeout: String,
    /// Further `scan` arguments (`--grace 0`).
    pub extra: Vec<String>,
    /// A program to run pulse under (`taskset -c 0`, `perf stat ...`), or
    /// none.
    pub wrapper: Vec<String>,
    /// Send SIGINT this long after the start.
    pub interrupt_after: Option<Duration>,
    /// Where the child's output files go.
    pub dir: &'a Path,
    /// Their names' stem.
    pub stem: String,
}

/// A measured scan: the kernel's figures, and the scan's own report when
/// it wrote one.
#[derive(Debug, Clone)]
pub struct ScanRun {
    /// The child as measured.
    pub measured: Measured,
    /// Its JSON report (None when it failed before writing one, e.g. a
    /// refusal).
    pub report: Option<pulse_core::result::Report>,
    /// The first line of its stderr that says why it failed, when it did.
    pub failure: Option<String>,
    /// The exact command line, for the run folder.
    pub command: String,
}

impl ScanSpec<'_> {
    /// The command line this spec runs.
    pub fn argv(&self) -> Vec<String> {
        let mut argv = self.wrapper.clone();
        argv.push(self.pulse.display().to_string());
        argv.extend(
            [
                "--runtime",
                self.runtime,
                "-q",
                "scan",
                "--output",
                "json",
                "--targets",
            ]
            .map(String::from),
        );
        argv.push(self.targets.display().to_string());
        argv.extend([
            "--workers".to_string(),
            self.workers.to_string(),
            "--timeout".to_string(),
            self.timeout.clone(),
        ]);
        argv.extend(self.extra.iter().cloned());
        argv
    }

    /// Run and measure it. A scan that exits 0 (all up), 1 (some down) or
    /// 130 (interrupted) has a report; any other exit is a failure whose
    /// reason is kept, not an error: the caller records it as a row.
    pub fn run(&self) -> Result<ScanRun, String> {
        let argv = self.argv();
        let (program, args) = argv.split_first().ok_or("an empty command")?;
        let mut child = Child::new(Path::new(program), args, self.dir, &self.stem);
        child.interrupt_after = self.interrupt_after;
        let stdout = child.stdout.clone();
        let stderr = child.stderr.clone();
        let measured = child.run()?;
        let report = match measured.usage.exit_code {
            Some(0 | 1 | 130) => std::fs::read(&stdout)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok()),
            _ => None,
        };
        let failure = if report.is_none() {
            let text = std::fs::read_to_string(&stderr).unwrap_or_default();
            Some(
                text.lines()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("no report and no message")
                    .trim_start_matches("pulse: ")
                    .to_string(),
            )
            .map(|why| {
                if measured.killed {
                    format!("killed after its time limit: {why}")
                } else {
                    why
                }
            })
        } else {
            None
        };
        Ok(ScanRun {
            measured,
            report,
            failure,
            command: argv.join(" "),
        })
    }
}
