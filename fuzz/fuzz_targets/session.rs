//! An HTTP or HTTPS probe session fed the fuzzer's bytes as the server's,
//! cut into pieces: it always finishes, with a classified result. The first
//! byte picks http or https and the piece size.
#![no_main]

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use pulse_core::session::{DEFAULT_BODY_CAP, Session, Step};
use pulse_core::target::parse_target;

fn insecure() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG.get_or_init(pulse_core::tls::insecure).clone()
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&first, stream)) = data.split_first() else {
        return;
    };
    let text = if first & 1 == 0 {
        "http://127.0.0.1:80/"
    } else {
        "https://localhost:443/"
    };
    let piece = usize::from(first >> 1).max(1);
    let t0 = Instant::now();
    let mut s = Session::new(
        &parse_target(text).unwrap(),
        Some(insecure()),
        DEFAULT_BODY_CAP,
        t0,
    );
    let mut pieces = stream.chunks(piece);
    for n in 0..100_000u64 {
        let now = t0 + Duration::from_millis(n);
        match s.step() {
            Step::Resolve { port, .. } => {
                s.resolved(Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]), now)
            }
            Step::Connect(_) => s.connected(Ok(()), now),
            Step::Write(b) => {
                let len = b.len();
                s.wrote(Ok(len), now);
            }
            Step::Read => s.received(Ok(pieces.next().unwrap_or(&[])), now),
            Step::Ping(_) | Step::Echo { .. } | Step::Collect { .. } => {
                unreachable!("not an icmp target")
            }
            Step::Done => {
                let o = s.finish(now);
                assert_eq!(o.success, o.error.is_none());
                return;
            }
        }
    }
    panic!("the session did not finish");
});
