//! The one `/proc` reader of pulse.
//!
//! Four places read a process's figures from Linux's `/proc`: the exporter
//! (`process_*` metrics and the memory it logs after each round), the farm
//! (its threads' CPU time, its open files, whether it runs as root), the
//! ICMP responder's CPU time, and the bench harness (a child's peak RSS and
//! thread count while it runs, a peer's CPU time). Each once had its own
//! parser of the same two files; they live here once, so a fix to the
//! parsing (the command name in `stat` may hold spaces and parentheses)
//! lands everywhere.
//!
//! # Scope
//!
//! - [`Status`]: `/proc/<who>/status`, the `Name:\tvalue` lines (memory in
//!   kB, thread count, user ids, state).
//! - [`Stat`]: `/proc/<who>/stat`, the one-line record: the command name
//!   and the user and system CPU time.
//! - [`run_time`]: `/proc/<who>/schedstat`, the time on a CPU in
//!   nanoseconds (where `stat`'s 10 ms ticks are too coarse).
//! - [`open_fds`], [`thread_id`], [`thread_ids`]: directory listings and
//!   links.
//!
//! Out of scope: machine-wide files (`/proc/cpuinfo`, `/proc/sys/...`),
//! which are read once per report by the bench's `machine` module.
//!
//! Every reader returns `None` when the file cannot be read or parsed (no
//! `/proc`, a process that has exited): callers leave the figure out rather
//! than fail, since none of them is worth stopping a probe run for.

use std::path::PathBuf;
use std::time::Duration;

/// Clock ticks per second in `/proc/*/stat`: USER_HZ, which Linux fixes at
/// 100 for user space whatever the kernel's internal HZ.
pub const TICKS_PER_SECOND: u64 = 100;

/// Whose figures to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proc {
    /// This process (`/proc/self`).
    Current,
    /// Another process, by id (a child the harness runs, the responder).
    Pid(u32),
    /// One thread of this process, by thread id (`/proc/self/task/<tid>`).
    Thread(u32),
}

impl Proc {
    /// The directory holding this process's or thread's files.
    fn dir(self) -> PathBuf {
        match self {
            Proc::Current => PathBuf::from("/proc/self"),
            Proc::Pid(pid) => PathBuf::from(format!("/proc/{pid}")),
            Proc::Thread(tid) => PathBuf::from(format!("/proc/self/task/{tid}")),
        }
    }
}

/// The `status` file: one `Name:\tvalue` per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    text: String,
}

impl Status {
    /// Read `who`'s status now.
    pub fn read(who: Proc) -> Option<Status> {
        let text = std::fs::read_to_string(who.dir().join("status")).ok()?;
        Some(Status::parse(text))
    }

    /// A status file's text, as read (for tests, and callers that have it).
    pub fn parse(text: impl Into<String>) -> Status {
        Status { text: text.into() }
    }

    /// The raw value of field `name` (given without its colon), trimmed.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.text.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            (n == name).then_some(v.trim())
        })
    }

    /// A field given in kB (`VmRSS`, `VmHWM`, `VmSize`), in bytes. The
    /// kernel's "kB" is KiB.
    pub fn bytes(&self, name: &str) -> Option<u64> {
        let kib: u64 = self.field(name)?.strip_suffix("kB")?.trim().parse().ok()?;
        kib.checked_mul(1024)
    }

    /// A plain number field (`Threads`).
    pub fn number(&self, name: &str) -> Option<u64> {
        self.field(name)?.parse().ok()
    }

    /// The effective user id: the second of the `Uid:` line's four (real,
    /// effective, saved, filesystem).
    pub fn effective_uid(&self) -> Option<u32> {
        self.field("Uid")?.split_whitespace().nth(1)?.parse().ok()
    }

    /// Whether the process has exited and waits to be reaped: a zombie has
    /// no threads or memory left to count.
    pub fn is_zombie(&self) -> bool {
        self.field("State").is_some_and(|s| s.starts_with('Z'))
    }
}

/// What pulse reads of the `stat` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// The command (or thread) name, field 2, without its parentheses.
    pub comm: String,
    /// User CPU time, in ticks of [`TICKS_PER_SECOND`] (field 14).
    pub utime: u64,
    /// System CPU time, in ticks (field 15).
    pub stime: u64,
}

impl Stat {
    /// Read `who`'s stat line now.
    pub fn read(who: Proc) -> Option<Stat> {
        Stat::parse(&std::fs::read_to_string(who.dir().join("stat")).ok()?)
    }

    /// Parse a stat line. The command name sits in parentheses and may
    /// itself hold spaces and parentheses, so the fields are counted from
    /// the last `)`: after it come field 3 (state) onwards, which puts
    /// utime and stime at the 12th and 13th.
    pub fn parse(line: &str) -> Option<Stat> {
        let open = line.find('(')?;
        let close = line.rfind(')')?;
        let comm = line.get(open + 1..close)?.to_owned();
        let mut fields = line.get(close + 1..)?.split_whitespace().skip(11);
        let utime = fields.next()?.parse().ok()?;
        let stime = fields.next()?.parse().ok()?;
        Some(Stat { comm, utime, stime })
    }

    /// User plus system CPU, in ticks.
    pub fn cpu_ticks(&self) -> u64 {
        self.utime.saturating_add(self.stime)
    }

    /// User plus system CPU time.
    pub fn cpu_time(&self) -> Duration {
        ticks_to_duration(self.cpu_ticks())
    }
}

/// `ticks` of [`TICKS_PER_SECOND`] as a duration.
pub fn ticks_to_duration(ticks: u64) -> Duration {
    Duration::from_millis(ticks.saturating_mul(1000 / TICKS_PER_SECOND))
}

/// Time `who` has spent running on a CPU, in nanoseconds, from the first
/// field of `schedstat` (the scheduler's `sum_exec_runtime`). Prefer it to
/// [`Stat::cpu_time`] for a single thread: `stat` gives each thread's time
/// in whole 10 ms ticks, rounded down, so a thread that ran 8 ms reads 0,
/// and a farm whose two threads served a few TLS handshakes read "0.00s".
/// `None` without the file (a kernel built without `CONFIG_SCHED_INFO`).
pub fn run_time(who: Proc) -> Option<Duration> {
    let text = std::fs::read_to_string(who.dir().join("schedstat")).ok()?;
    let nanos: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// Descriptors this process has open now (the entries of `/proc/self/fd`,
/// the one the listing itself holds included).
pub fn open_fds() -> Option<u64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as u64)
}

/// The calling thread's id, from the `/proc/thread-self` link
/// (`<pid>/task/<tid>`, Linux 3.17 and later).
pub fn thread_id() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// The ids of this process's threads now (empty if `/proc` cannot be read).
pub fn thread_ids() -> Vec<u32> {
    std::fs::read_dir("/proc/self/task")
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A thread that has run reads a run time in nanoseconds, finer than
    /// the 10 ms ticks of `stat`, and it grows as the thread works.
    #[test]
    fn run_time_is_finer_than_ticks() {
        let tid = thread_id().unwrap();
        let before = run_time(Proc::Thread(tid)).unwrap();
        let t0 = std::time::Instant::now();
        let mut x = 0u64;
        while t0.elapsed() < Duration::from_millis(3) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let after = run_time(Proc::Thread(tid)).unwrap();
        assert!(after > before, "{before:?} -> {after:?}");
        assert_ne!(
            after.subsec_nanos() % 10_000_000,
            0,
            "not whole ticks: {after:?}"
        );
    }

    const STATUS: &str = "Name:\tpulse\nState:\tS (sleeping)\nUid:\t1000\t0\t0\t0\n\
                          VmSize:\t  123456 kB\nVmHWM:\t    2048 kB\nVmRSS:\t    1024 kB\n\
                          Threads:\t7\n";

    #[test]
    fn status_fields() {
        let s = Status::parse(STATUS);
        assert_eq!(s.bytes("VmRSS"), Some(1024 * 1024));
        assert_eq!(s.bytes("VmHWM"), Some(2048 * 1024));
        assert_eq!(s.bytes("VmSize"), Some(123_456 * 1024));
        assert_eq!(s.number("Threads"), Some(7));
        assert_eq!(s.effective_uid(), Some(0));
        assert!(!s.is_zombie());
        assert_eq!(s.bytes("Threads"), None, "not a kB field");
        assert_eq!(s.bytes("VmSwap"), None, "absent");
        // `VmRSS` is not a prefix match for `VmRSSx`.
        assert_eq!(Status::parse("VmRSSx:\t1 kB\n").bytes("VmRSS"), None);
        assert!(Status::parse("State:\tZ (zombie)\n").is_zombie());
    }

    #[test]
    fn stat_lines() {
        let line = "4242 (pulse-farm-1) S 1 2 3 4 5 6 7 8 9 10 123 45 0 0 20 0 1 0";
        let s = Stat::parse(line).unwrap();
        assert_eq!(
            (s.comm.as_str(), s.utime, s.stime),
            ("pulse-farm-1", 123, 45)
        );
        assert_eq!(s.cpu_ticks(), 168);
        assert_eq!(s.cpu_time(), Duration::from_millis(1680));
        let odd = Stat::parse("1234 (a (weird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 7 5 0 0")
            .unwrap();
        assert_eq!((odd.comm.as_str(), odd.cpu_ticks()), ("a (weird) name", 12));
        assert_eq!(Stat::parse("garbage"), None);
        assert_eq!(Stat::parse("1 (short) S 1 2"), None);
    }

    #[test]
    fn this_process_reads() {
        let status = Status::read(Proc::Current).unwrap();
        assert!(status.bytes("VmRSS").unwrap() > 0);
        assert!(status.number("Threads").unwrap() >= 1);
        assert!(Stat::read(Proc::Current).is_some());
        assert!(open_fds().unwrap() >= 3);
        let tid = thread_id().unwrap();
        assert!(thread_ids().contains(&tid));
        assert!(Stat::read(Proc::Thread(tid)).is_some());
        assert!(Status::read(Proc::Pid(std::process::id())).is_some());
    }
}
