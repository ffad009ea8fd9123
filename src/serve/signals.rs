//! The exporter's signals: SIGHUP reloads, SIGTERM/SIGINT stop.
//!
//! The **signal thread** only listens. SIGTERM and SIGINT act at once: the
//! first stops the exporter (no new round, the running one drains for
//! `--grace`), the second exits. SIGHUP only asks the reload thread
//! ([`super::reload`]) for a reload and never waits for it, so no reload
//! (a FIFO with no writer can block one forever) can keep a stop from
//! being heard.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pulse_core::session::fmt_duration;

use super::reload::Reloads;
use super::state::State;
use crate::EXIT_INTERRUPTED;

/// Start the signal thread.
pub(super) fn watch(state: Arc<State>, reloads: Arc<Reloads>, grace: Duration) -> io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGHUP, SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("pulse-signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if sig == SIGHUP {
                    reloads.request();
                    continue;
                }
                let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
                if state.stopping.is_triggered() {
                    eprintln!("pulse serve: second {name}, exiting now");
                    std::process::exit(i32::from(EXIT_INTERRUPTED));
                }
                eprintln!(
                    "pulse serve: {name}: no new rounds; the running round gets {} to finish (signal again to exit now)",
                    fmt_duration(grace)
                );
                state.stop(Instant::now());
            }
        })?;
    Ok(())
}
