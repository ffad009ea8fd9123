//! `all_addresses`: one probe of every address a name resolves to, each
//! address its own verdict (blackbox_exporter issue 1512: a target whose
//! first address is down is reported up by a prober that falls back to the
//! next one, and nobody notices until the fallback fails too).
//!
//! The outer [`Session`] resolves the name as usual, then runs one inner
//! session per address, one after the other, inside the probe's single
//! deadline. The model sees an ordinary stream of steps (connect, write,
//! read, connect again), the same as a redirect, so no model needs to know.
//! One after the other rather than at once: the probe holds one connection
//! at a time, as `--workers` promises, and a slow address delays the next
//! (the deadline covers them all, and the addresses not reached are
//! reported as such).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Pins, Session, State, Step};
use crate::redirect::RedirectPolicy;
use crate::result::{AddressResult, ErrorKind, Outcome, Phases, ProbeError, millis};
use crate::target::{IpFamily, Target};

/// The addresses of an `all_addresses` probe and the inner session of the
/// one in progress.
pub(super) struct Every {
    /// The target, with `all_addresses` off: what each inner session probes.
    target: Target,
    tls: Option<Arc<rustls::ClientConfig>>,
    body_cap: usize,
    /// The outer session's redirect policy, pins and preference, handed to
    /// each inner session.
    pub(super) policy: RedirectPolicy,
    pub(super) pins: Option<Arc<Pins>>,
    pub(super) prefer: IpFamily,
    /// Every address, in the order they are probed.
    addrs: Vec<SocketAddr>,
    /// The next address to start.
    next: usize,
    /// The inner session in progress, if any.
    current: Option<Box<Session>>,
    /// The finished addresses' outcomes, in order.
    done: Vec<(SocketAddr, Outcome)>,
    /// Whether the last finished inner session would have closed with a
    /// reset: the model closes the connection it holds at the end.
    last_reset: bool,
}

impl Every {
    pub(super) fn new(
        target: &Target,
        tls: Option<Arc<rustls::ClientConfig>>,
        body_cap: usize,
    ) -> Every {
        let mut target = target.clone();
        target.all_addresses = false;
        Every {
            target,
            tls,
            body_cap,
            policy: RedirectPolicy::Any,
            pins: None,
            prefer: IpFamily::Any,
            addrs: Vec::new(),
            next: 0,
            current: None,
            done: Vec::new(),
            last_reset: false,
        }
    }

    /// Probe `addrs`, starting with the first, at `now`.
    pub(super) fn begin(&mut self, addrs: Vec<SocketAddr>, now: Instant) {
        self.addrs = addrs;
        self.next = 0;
        self.advance(now);
    }

    /// The inner session in progress.
    pub(super) fn current(&self) -> Option<&Session> {
        self.current.as_deref()
    }

    /// The inner session in progress, to hand it what the model did.
    pub(super) fn current_mut(&mut self) -> Option<&mut Session> {
        self.current.as_deref_mut()
    }

    /// The inner session's reset advice, or the last finished one's.
    pub(super) fn close_with_reset(&self) -> bool {
        self.current
            .as_deref()
            .map_or(self.last_reset, Session::close_with_reset)
    }

    /// Once the inner session is done: keep its outcome and start the next
    /// address's, until one is in progress or none is left.
    pub(super) fn advance(&mut self, now: Instant) {
        loop {
            if let Some(current) = self.current.as_deref()
                && current.step() != Step::Done
            {
                return;
            }
            if let Some(finished) = self.current.take() {
                self.last_reset = finished.close_with_reset();
                let addr = self.addrs[self.next - 1];
                self.done.push((addr, finished.finish(now)));
            }
            let Some(&addr) = self.addrs.get(self.next) else {
                return;
            };
            self.next += 1;
            let mut inner = Session::new(&self.target, self.tls.clone(), self.body_cap, now)
                .with_redirects(self.policy.clone())
                .with_preferred_ip(self.prefer);
            // This address, not the name's others (and not the pins'):
            // the inner session is pinned to it; a redirect to another
            // host resolves that host as any probe would.
            if inner.state == State::Resolve {
                inner.resolved(Ok(vec![addr]), now);
            }
            inner.pinned = self.pins.clone();
            self.current = Some(Box::new(inner));
        }
    }

    /// The probe's outcome: the one in progress ended by `end` (finished,
    /// timed out or cancelled), the addresses never reached failed as
    /// `unreached` says, and the whole judged as one: up only when every
    /// address is. `resolve_ms` is the outer session's name lookup.
    pub(super) fn outcome(
        mut self,
        end: impl FnOnce(Session) -> Outcome,
        unreached: (ErrorKind, &str),
        started: Instant,
        resolve_ms: Option<f64>,
        now: Instant,
    ) -> Outcome {
        if let Some(current) = self.current.take() {
            let addr = self.addrs[self.next - 1];
            self.done.push((addr, end(*current)));
        }
        for addr in &self.addrs[self.next..] {
            let o = Outcome::failed(unreached.0, unreached.1, Duration::ZERO);
            self.done.push((*addr, o));
        }
        let addresses: Vec<AddressResult> = self
            .done
            .iter()
            .map(|(addr, o)| AddressResult {
                address: addr.to_string(),
                success: o.success,
                duration_ms: millis(o.duration),
                status_code: o.http.as_ref().and_then(|h| h.status_code),
                error: o.error.clone(),
            })
            .collect();
        // The first failing address speaks for the probe; when all are up,
        // the last one's details stand (they are all alike).
        let speaker = self
            .done
            .iter()
            .position(|(_, o)| !o.success)
            .unwrap_or(self.done.len().saturating_sub(1));
        let failures = addresses.iter().filter(|a| !a.success).count();
        let mut phases = sum_phases(self.done.iter().map(|(_, o)| &o.phases));
        phases.resolve = Some(phases.resolve.unwrap_or(0.0) + resolve_ms.unwrap_or(0.0));
        let (address, http, error) = match self.done.get(speaker) {
            Some((addr, o)) => (
                Some(addr.to_string()),
                o.http.clone(),
                o.error.as_ref().map(|e| {
                    ProbeError::new(
                        e.kind,
                        format!(
                            "{failures} of {} addresses down; {addr}: {}",
                            addresses.len(),
                            e.message
                        ),
                    )
                }),
            ),
            None => (None, None, None),
        };
        Outcome {
            success: !addresses.is_empty() && failures == 0,
            duration: now.saturating_duration_since(started),
            phases,
            address,
            http,
            icmp: None,
            error,
            addresses,
        }
    }
}

/// Each phase summed over the addresses' probes (absent when no address
/// reached it), so the phases still add up to the probe's duration.
fn sum_phases<'a>(all: impl Iterator<Item = &'a Phases>) -> Phases {
    let mut sum = Phases::default();
    let add = |slot: &mut Option<f64>, v: Option<f64>| {
        if let Some(v) = v {
            *slot = Some(slot.unwrap_or(0.0) + v);
        }
    };
    for p in all {
        add(&mut sum.resolve, p.resolve);
        add(&mut sum.connect, p.connect);
        add(&mut sum.tls, p.tls);
        add(&mut sum.processing, p.processing);
        add(&mut sum.transfer, p.transfer);
        add(&mut sum.rtt, p.rtt);
    }
    sum
}
