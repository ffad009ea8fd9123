//! The echo train of an icmp target with `count=` above 1: the steps a
//! model is asked for, and the counts and statistics in the result.

use super::*;

use crate::result::IcmpPackets;

fn train(text: &str, count: u16, interval_ms: u64, t0: Instant) -> Session {
    session(text, t0).with_echoes(count, Duration::from_millis(interval_ms))
}

fn pong(sequence: u16) -> io::Result<Option<Pong>> {
    Ok(Some(Pong {
        sequence,
        ttl: Some(63),
    }))
}

fn packets(o: &Outcome) -> &IcmpPackets {
    o.icmp.as_ref().and_then(|i| i.packets.as_ref()).unwrap()
}

#[test]
fn a_count_of_one_is_the_single_echo_of_old() {
    let t0 = Instant::now();
    let s = train("icmp://127.0.0.1", 1, 10, t0);
    assert_eq!(s.step(), Step::Ping("127.0.0.1".parse().unwrap()));
}

#[test]
fn requests_go_out_on_a_fixed_schedule_and_the_train_ends_when_all_are_answered() {
    let t0 = Instant::now();
    let ip: IpAddr = "127.0.0.1".parse().unwrap();
    let mut s = train("icmp://127.0.0.1", 3, 10, t0);
    assert_eq!(s.step(), Step::Echo { to: ip, of: 3 });
    s.echoed(Ok(40), at(t0, 0));
    assert_eq!(
        s.step(),
        Step::Collect {
            until: Some(at(t0, 10))
        }
    );
    s.collected(pong(40), at(t0, 2));
    assert_eq!(
        s.step(),
        Step::Collect {
            until: Some(at(t0, 10))
        },
        "a reply before the next send time waits on for it"
    );
    s.collected(Ok(None), at(t0, 11));
    assert_eq!(s.step(), Step::Echo { to: ip, of: 3 });
    s.echoed(Ok(41), at(t0, 11));
    // Due at 20 ms after the first send, not 10 ms after the late second.
    assert_eq!(
        s.step(),
        Step::Collect {
            until: Some(at(t0, 20))
        }
    );
    s.collected(Ok(None), at(t0, 20));
    s.echoed(Ok(42), at(t0, 20));
    assert_eq!(
        s.step(),
        Step::Collect { until: None },
        "all sent: wait for replies"
    );
    s.collected(pong(42), at(t0, 26));
    s.collected(pong(41), at(t0, 27));
    assert_eq!(s.step(), Step::Done);
    s.duplicates(0);
    let o = s.finish(at(t0, 27));
    assert!(o.success, "{o:?}");
    let p = packets(&o);
    assert_eq!((p.sent, p.received, p.duplicates), (3, 3, 0));
    assert_eq!(p.loss_ratio, 0.0);
    assert_eq!(p.rtts_ms, vec![Some(2.0), Some(16.0), Some(6.0)]);
    assert_eq!((p.rtt_min_ms, p.rtt_max_ms), (Some(2.0), Some(16.0)));
    assert_eq!(p.rtt_avg_ms, Some(8.0));
    // Population standard deviation of 2, 16, 6: sqrt(104 / 3).
    assert_eq!(p.rtt_stddev_ms, Some(5.888));
    assert_eq!(
        o.phases.rtt,
        Some(8.0),
        "the rtt phase is the mean round trip"
    );
    let icmp = o.icmp.as_ref().unwrap();
    assert_eq!((icmp.sequence, icmp.reply_ttl), (40, Some(63)));
}

#[test]
fn some_loss_at_the_deadline_is_up_with_its_loss_ratio() {
    let t0 = Instant::now();
    let mut s = train("icmp://127.0.0.1", 4, 10, t0);
    for (i, seq) in (100..104).enumerate() {
        s.echoed(Ok(seq), at(t0, 10 * i as u64));
        if seq % 2 == 0 {
            s.collected(pong(seq), at(t0, 10 * i as u64 + 1));
        }
        s.collected(Ok(None), at(t0, 10 * (i as u64 + 1)));
    }
    s.duplicates(2);
    let o = s.timed_out(at(t0, 50), Duration::from_millis(50));
    assert!(o.success, "{o:?}");
    assert_eq!(o.error, None);
    let p = packets(&o);
    assert_eq!((p.sent, p.received, p.duplicates), (4, 2, 2));
    assert_eq!(p.loss_ratio, 0.5);
    assert_eq!(p.rtts_ms, vec![Some(1.0), None, Some(1.0), None]);
}

#[test]
fn a_duplicate_reply_is_counted_not_received_twice() {
    let t0 = Instant::now();
    let mut s = train("icmp://127.0.0.1", 2, 10, t0);
    s.echoed(Ok(7), t0);
    s.collected(pong(7), at(t0, 1));
    s.collected(pong(7), at(t0, 2));
    s.collected(Ok(None), at(t0, 10));
    s.echoed(Ok(8), at(t0, 10));
    s.collected(pong(8), at(t0, 12));
    s.duplicates(1);
    let o = s.finish(at(t0, 12));
    let p = packets(&o);
    assert_eq!((p.sent, p.received, p.duplicates), (2, 2, 2));
    assert_eq!(p.rtts_ms, vec![Some(1.0), Some(2.0)]);
}

#[test]
fn no_reply_at_all_is_a_timeout_that_says_how_many_went_unanswered() {
    let t0 = Instant::now();
    let mut s = train("icmp://127.0.0.1", 2, 10, t0);
    s.echoed(Ok(1), t0);
    s.collected(Ok(None), at(t0, 10));
    s.echoed(Ok(2), at(t0, 10));
    let o = s.timed_out(at(t0, 20), Duration::from_millis(20));
    assert!(!o.success);
    let e = o.error.as_ref().unwrap();
    assert_eq!(e.kind, ErrorKind::Timeout);
    assert_eq!(
        e.message,
        "timed out after 20ms while waiting for echo replies (none of 2 answered)"
    );
    let p = packets(&o);
    assert_eq!((p.sent, p.received, p.loss_ratio), (2, 0, 1.0));
    assert_eq!(p.rtt_avg_ms, None);
}

#[test]
fn a_send_failure_ends_the_train_with_its_kind() {
    let t0 = Instant::now();
    let mut s = train("icmp://127.0.0.1", 3, 10, t0);
    s.echoed(Ok(1), t0);
    s.collected(Ok(None), at(t0, 10));
    s.echoed(
        Err(io::Error::from(io::ErrorKind::PermissionDenied)),
        at(t0, 10),
    );
    assert_eq!(s.step(), Step::Done);
    let o = s.finish(at(t0, 10));
    let e = o.error.as_ref().unwrap();
    assert_eq!(e.kind, ErrorKind::Permission);
    assert!(
        e.message.starts_with("echo request 2 of 3: "),
        "{}",
        e.message
    );
}

#[test]
fn a_name_resolves_before_the_train() {
    let t0 = Instant::now();
    let mut s = train("icmp://localhost", 2, 10, t0);
    assert!(matches!(s.step(), Step::Resolve { .. }));
    s.resolved(Ok(vec![sock("127.0.0.1:0")]), at(t0, 1));
    assert_eq!(
        s.step(),
        Step::Echo {
            to: "127.0.0.1".parse().unwrap(),
            of: 2
        }
    );
}
