//! The exporter's signals: SIGHUP reloads, SIGTERM/SIGINT stop.
//!
//! Two threads, so that no reload can keep a stop from being heard:
//! - the **signal thread** only listens. SIGTERM and SIGINT act at once:
//!   the first stops the exporter (no new round, the running one drains for
//!   `--grace`), the second exits. SIGHUP only asks for a reload.
//! - the **reload thread** reads and parses the file. A read can block for
//!   as long as the file's other end wants: a FIFO with no writer blocks in
//!   `open`, a slow pipe in `read`. Done on the signal thread, that once made
//!   SIGTERM (and a second SIGTERM) go unheard until SIGKILL. Here the
//!   reload thread may stay stuck; the process still stops on time, because
//!   exiting does not wait for it.
//!
//! Reload requests go through a channel of capacity one: SIGHUPs that come
//! while a reload runs collapse into one more reload after it, which reads
//! the file as it is then, so nothing asked for is lost and nothing queues
//! up without bound.

use std::io;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pulse_core::session::fmt_duration;

use super::Loader;
use super::state::State;
use crate::EXIT_INTERRUPTED;

/// Start the signal thread and the reload thread.
pub(super) fn watch(state: Arc<State>, loader: Loader, grace: Duration) -> io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGHUP, SIGINT, SIGTERM])?;
    let reloads = Reloads::spawn(state.clone(), loader)?;
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

/// The signal thread's handle on the reload thread.
struct Reloads {
    /// Capacity one: a pending request stands for every SIGHUP since.
    tx: SyncSender<()>,
    /// When the reload now running started, if one is: the signal thread
    /// says how long it has been stuck when another SIGHUP comes.
    running_since: Arc<Mutex<Option<Instant>>>,
    /// The file, for messages.
    source: String,
}

impl Reloads {
    fn spawn(state: Arc<State>, loader: Loader) -> io::Result<Reloads> {
        let (tx, rx) = mpsc::sync_channel::<()>(1);
        let running_since = Arc::new(Mutex::new(None));
        let running = running_since.clone();
        let source = loader.source.clone();
        std::thread::Builder::new()
            .name("pulse-reload".into())
            .spawn(move || {
                for () in rx {
                    set(&running, Some(Instant::now()));
                    reload(&state, &loader);
                    set(&running, None);
                }
            })?;
        Ok(Reloads {
            tx,
            running_since,
            source,
        })
    }

    /// Ask for a reload; never blocks.
    fn request(&self) {
        match self.tx.try_send(()) {
            Ok(()) => {}
            Err(TrySendError::Full(())) => {
                let since = *self
                    .running_since
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let running = since.map_or_else(String::new, |t| {
                    format!(
                        " (the reload running now started {} ago: if it is stuck, {} may be a \
                         FIFO with no writer or a pipe that never ends)",
                        fmt_duration(t.elapsed()),
                        self.source
                    )
                });
                eprintln!(
                    "pulse serve: SIGHUP: a reload is already waiting; {} will be read once \
                     more when the one before it ends{running}",
                    self.source
                );
            }
            // The reload thread is gone only if it panicked; say so rather
            // than ignore the signal.
            Err(TrySendError::Disconnected(())) => {
                eprintln!("pulse serve: SIGHUP: cannot reload: the reload thread has stopped");
            }
        }
    }
}

fn set(slot: &Mutex<Option<Instant>>, value: Option<Instant>) {
    *slot
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = value;
}

fn reload(state: &State, loader: &Loader) {
    match loader.load() {
        Ok(config) => {
            let (mine, all) = (config.plan.len(), config.all.len());
            state.replace_config(config);
            eprintln!(
                "pulse serve: SIGHUP: reloaded {}: {mine} of {all} targets, from the next round on",
                loader.source
            );
        }
        Err(e) => {
            state.reload_failed();
            let kept = state.config().plan.len();
            eprintln!("{e}");
            eprintln!(
                "pulse serve: SIGHUP: {} not reloaded; still probing the {kept} targets loaded before",
                loader.source
            );
        }
    }
}
