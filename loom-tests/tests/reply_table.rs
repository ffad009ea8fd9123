//! The ICMP reply table: a reply racing its waiter's timeout.

#![cfg(pulse_loom)]

use std::net::IpAddr;

use pulse_core::icmp::{EchoReply, ReplyTable};
use pulse_core::sync::{Arc, AtomicUsize, Bug, Ordering};
use pulse_loom_tests::{check, expect_failure, spawn, step};

/// Preemption bound: the table has one lock, so three covers every order of
/// the reader's and the probe's critical sections many times over.
const BOUND: usize = 3;

const IDENT: u16 = 7;

fn addr(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// The reader gets the reply (twice: a duplicate, as `ping -f` sees) while
/// the probe times out and its guard cancels the entry: the waiter is
/// delivered once or dropped, never both, and the table ends empty.
#[test]
fn a_reply_racing_the_timeout_is_delivered_or_dropped_never_leaked() {
    check(BOUND, || {
        let table = Arc::new(ReplyTable::new(IDENT));
        let seq = table.register(addr(1), 1u32).unwrap();
        let delivered = Arc::new(AtomicUsize::new(0));
        let (t, d) = (table.clone(), delivered.clone());
        let reader = spawn("reader", move || {
            let reply = EchoReply {
                ident: IDENT,
                seq,
                ttl: None,
            };
            for _ in 0..2 {
                if t.deliver(&reply, addr(1)).is_some() {
                    d.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        // The probe: its deadline passes, and the guard's drop cancels.
        let cancelled = {
            let t = table.clone();
            spawn("probe", move || usize::from(t.cancel(seq).is_some()))
        };
        reader.join().unwrap();
        let cancelled = cancelled.join().unwrap();
        let delivered = delivered.load(Ordering::SeqCst);
        assert_eq!(delivered + cancelled, 1, "delivered or dropped, once");
        assert!(table.is_empty(), "nothing leaked");
    });
}

/// An echo train's entry: the reader gets a reply and its duplicate while
/// the probe closes the entry at its end. The waiter is handed over at
/// most once; a reply after the first is counted as a duplicate only when
/// it beat the close; every reply is delivered, counted or dropped (late),
/// never two of those; and the table ends empty.
#[test]
fn a_duplicate_racing_the_close_is_counted_once_never_delivered_twice() {
    check(BOUND, || {
        let table = Arc::new(ReplyTable::new(IDENT));
        let seq = table.register(addr(1), 1u32).unwrap();
        let delivered = Arc::new(AtomicUsize::new(0));
        let (t, d) = (table.clone(), delivered.clone());
        let reader = spawn("reader", move || {
            let reply = EchoReply {
                ident: IDENT,
                seq,
                ttl: None,
            };
            for _ in 0..2 {
                if t.deliver(&reply, addr(1)).is_some() {
                    d.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        let closed = {
            let t = table.clone();
            spawn("probe", move || t.close(seq).unwrap())
        };
        reader.join().unwrap();
        let closed = closed.join().unwrap();
        let delivered = delivered.load(Ordering::SeqCst);
        let waiter_back = usize::from(closed.waiter.is_some());
        assert_eq!(
            delivered + waiter_back,
            1,
            "handed over or given back, once"
        );
        assert!(delivered <= 1, "never handed over twice");
        // A duplicate exists only beside a delivery that preceded it.
        assert!(closed.duplicates as usize <= delivered, "{closed:?}");
        assert!(table.is_empty(), "nothing leaked");
    });
}

/// Broken: `deliver` takes the entry out, checks the address with the lock
/// released, and puts a mismatch back. A reply from the wrong host racing
/// the probe's cancel puts the entry back after the cancel found nothing:
/// it stays in the table for ever.
#[test]
fn broken_take_check_put_back_leaks_an_entry() {
    let message = expect_failure("broken_take_check_put_back_leaks_an_entry", BOUND, || {
        let table = Arc::new(ReplyTable::with_bug(IDENT, Bug::TakeCheckPutBack));
        let seq = table.register(addr(1), 1u32).unwrap();
        let t = table.clone();
        let reader = spawn("reader", move || {
            let reply = EchoReply {
                ident: IDENT,
                seq,
                ttl: None,
            };
            step("reply from 127.0.0.2 (wrong host): take, check, put back");
            let got = t.deliver(&reply, addr(2));
            step(format!("deliver gave {got:?}"));
        });
        step("probe times out: cancel");
        let cancelled = table.cancel(seq);
        step(format!("cancel gave {cancelled:?}"));
        reader.join().unwrap();
        step(format!("table holds {}", table.len()));
        assert!(table.is_empty(), "an entry leaked");
    });
    assert!(message.contains("an entry leaked"), "{message}");
}
