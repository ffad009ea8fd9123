//! Each target's recent results, kept small, for the page at `/`.
//!
//! The page shows a strip of recent ups and downs and a latency line per
//! target, as status pages (Gatus) do. Whole `ProbeResult`s (strings,
//! phases, HTTP details: a few hundred bytes each, more with a long error
//! message) would make that cost grow with the messages; a [`History`]
//! keeps only what the strip and the line draw, 9 bytes a result, in a
//! fixed ring: when it arrived, its latency, and up or which error kind.
//! The last result's message is kept whole beside it (`Latest`), so the
//! page still says what went wrong.
//!
//! # The bound
//!
//! [`KEPT`] results per target, in one allocation of
//! `size_of::<History>()` = 544 bytes, plus 16 for the `Arc` counts and 8
//! for the pointer in the state's vector: at most 568 bytes a target, 5.7
//! MB for 10,000 targets (5.4 MiB), whatever the targets or their errors.
//! The `Arc` lets a page render share the rings it snapshots without
//! copying them; a result that lands meanwhile copies that one ring
//! (`Arc::make_mut`).

use std::time::SystemTime;

use pulse_core::result::{ErrorKind, ProbeResult};

/// Results kept per target: 30 minutes at the default 30 s interval, an
/// hour at a 1-minute one; enough to see a target flap, and a strip of 60
/// cells fits a table row (300 px at 5 px a cell).
pub(crate) const KEPT: usize = 60;

/// `outcome` of a result that was up; a failure stores 1 + its kind's
/// place in [`ErrorKind::ALL`].
const UP: u8 = 0;

/// The last [`KEPT`] results of one target, oldest overwritten first.
/// Three arrays rather than one of structs: 9 bytes a result with no
/// padding, where a struct of (u32, f32, u8) takes 12.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct History {
    /// Where the next result goes.
    next: u8,
    /// Results held, up to [`KEPT`].
    len: u8,
    /// When each arrived, in seconds since the Unix epoch (u32 lasts until
    /// 2106).
    at: [u32; KEPT],
    /// Probe time in milliseconds (f32: 24 bits of precision, microseconds
    /// up to 16 s, more than the page can draw).
    latency_ms: [f32; KEPT],
    /// [`UP`], or 1 + the error kind's index in [`ErrorKind::ALL`].
    outcome: [u8; KEPT],
}

/// One kept result, as the page reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Sample {
    /// Seconds since the Unix epoch.
    pub(crate) at: u32,
    pub(crate) latency_ms: f32,
    /// `None` when up.
    pub(crate) error: Option<ErrorKind>,
}

impl Default for History {
    fn default() -> History {
        History {
            next: 0,
            len: 0,
            at: [0; KEPT],
            latency_ms: [0.0; KEPT],
            outcome: [UP; KEPT],
        }
    }
}

impl History {
    /// Keep `result`, which arrived `at`, dropping the oldest if full.
    pub(crate) fn push(&mut self, result: &ProbeResult, at: SystemTime) {
        let i = usize::from(self.next);
        self.at[i] = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX));
        self.latency_ms[i] = result.duration_ms as f32;
        self.outcome[i] = match &result.error {
            None => UP,
            Some(e) => ErrorKind::ALL
                .iter()
                .position(|k| *k == e.kind)
                // ALL has 12 kinds: the index fits a u8 with room to spare.
                .map_or(u8::MAX, |p| p as u8 + 1),
        };
        // KEPT < 256, so both stay in u8.
        self.next = ((i + 1) % KEPT) as u8;
        self.len = (usize::from(self.len) + 1).min(KEPT) as u8;
    }

    /// Results held.
    pub(crate) fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// The kept results, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = Sample> + '_ {
        let len = self.len();
        let start = (usize::from(self.next) + KEPT - len) % KEPT;
        (0..len).map(move |k| {
            let i = (start + k) % KEPT;
            Sample {
                at: self.at[i],
                latency_ms: self.latency_ms[i],
                error: match self.outcome[i] {
                    UP => None,
                    // A kind the table does not know (u8::MAX) is shown
                    // as the catch-all `io`.
                    n => Some(
                        ErrorKind::ALL
                            .get(usize::from(n) - 1)
                            .copied()
                            .unwrap_or(ErrorKind::Io),
                    ),
                },
            }
        })
    }

    /// Share of the kept results that were up, 0 to 1; `None` when empty.
    pub(crate) fn uptime(&self) -> Option<f64> {
        let len = self.len();
        (len > 0).then(|| {
            let up = self.iter().filter(|s| s.error.is_none()).count();
            up as f64 / len as f64
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulse_core::result::{Kind, Phases, ProbeError};
    use std::time::Duration;

    fn result(ms: f64, error: Option<ErrorKind>) -> ProbeResult {
        ProbeResult {
            target: "tcp://127.0.0.1:1".into(),
            kind: Kind::Tcp,
            line: 1,
            success: error.is_none(),
            duration_ms: ms,
            queue_wait_ms: 0.0,
            phases: Phases::default(),
            address: None,
            http: None,
            icmp: None,
            error: error.map(|k| ProbeError::new(k, "failed")),
            addresses: Vec::new(),
        }
    }

    #[test]
    fn the_ring_keeps_the_last_results_in_order() {
        let mut h = History::default();
        assert_eq!((h.len(), h.uptime()), (0, None));
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        for i in 0..1000u64 {
            let error = (i % 4 == 0).then_some(ErrorKind::Timeout);
            h.push(&result(i as f64, error), t0 + Duration::from_secs(i));
        }
        assert_eq!(h.len(), KEPT, "bounded");
        let kept: Vec<Sample> = h.iter().collect();
        assert_eq!(kept.len(), KEPT);
        assert_eq!(kept[0].latency_ms, (1000 - KEPT) as f32, "oldest first");
        assert_eq!(kept[KEPT - 1].latency_ms, 999.0);
        assert_eq!(kept[KEPT - 1].at, 1_700_000_999);
        assert_eq!(kept[0].error, Some(ErrorKind::Timeout), "940 % 4 == 0");
        assert_eq!(kept[1].error, None);
        assert_eq!(h.uptime(), Some(0.75));
    }

    #[test]
    fn every_error_kind_round_trips() {
        let mut h = History::default();
        for k in ErrorKind::ALL {
            h.push(&result(1.0, Some(k)), SystemTime::now());
        }
        let kinds: Vec<_> = h.iter().map(|s| s.error).collect();
        assert_eq!(kinds, ErrorKind::ALL.map(Some).to_vec());
    }

    #[test]
    fn the_stated_memory_bound_holds() {
        // The module doc's figure: 544 bytes a ring, 568 with its Arc and
        // pointer, 5.7 MB for 10,000 targets.
        assert_eq!(std::mem::size_of::<History>(), 544);
        let per_target = std::mem::size_of::<History>() + 16 + 8;
        assert!(per_target * 10_000 <= 5_700_000);
    }
}
