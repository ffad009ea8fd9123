//! The ICMP codec and reply table: any packet, never a panic, and a waiter
//! handed over only for an exact match.
#![no_main]

use std::net::IpAddr;

use pulse_core::icmp::{Framing, ReplyTable};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let table = ReplyTable::new(7);
    let from = IpAddr::from([127, 0, 0, 1]);
    let seq = table.register(from, ()).unwrap();
    for framing in [Framing::RawV4, Framing::DgramV4, Framing::V6] {
        if let Some(((), pong)) = table.dispatch(data, framing, from) {
            assert_eq!(pong.sequence, seq);
        }
    }
});
