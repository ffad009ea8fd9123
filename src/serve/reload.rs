//! Reloading the targets file: on SIGHUP, and on `POST /-/reload` when
//! `--enable-reload` allows it (as Prometheus's `--web.enable-lifecycle`).
//!
//! Every reload runs on one thread of its own, the **reload thread**. A read
//! can block for as long as the file's other end wants: a FIFO with no
//! writer blocks in `open`, a slow pipe in `read`. Done on the signal
//! thread, that once made SIGTERM (and a second SIGTERM) go unheard until
//! SIGKILL. Here the reload thread may stay stuck; the process still stops
//! on time, because exiting does not wait for it. One thread also means two
//! reloads never run at once, so an older read can never land after a newer
//! one.
//!
//! Requests collapse: any number of requests that come while a reload runs
//! make one more reload after it, which reads the file as it is then, so
//! nothing asked for is lost and nothing queues up without bound. A signal
//! never waits. An HTTP request waits for the outcome of the first reload
//! that starts after it (so its answer reflects the file as it was when it
//! asked, or later), for at most [`HTTP_WAIT`].

use std::io;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use pulse_core::session::fmt_duration;

use super::Loader;
use super::state::State;

/// How long `POST /-/reload` waits for its reload before answering 503. A
/// reload of a valid 16 MiB file (the default `--max-targets-size`) takes
/// well under this; one that takes longer is stuck on its file, and the
/// client is told so rather than held for as long as the file's writer
/// wants.
pub(crate) const HTTP_WAIT: Duration = Duration::from_secs(10);

/// What a reload did: `Ok` with a summary line, or `Err` with every error
/// and what was kept.
pub(crate) type Outcome = Result<String, String>;

/// Who asked for a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cause {
    Signal,
    Http,
}

/// Requests made since the last reload started, and what is running.
#[derive(Default)]
struct Pending {
    /// A reload has been asked for and has not started yet.
    asked: bool,
    /// Who asked (for the log line).
    by_signal: bool,
    by_http: bool,
    /// HTTP requests waiting for the next reload's outcome.
    waiters: Vec<mpsc::Sender<Outcome>>,
    /// When the reload now running started, if one is: the signal thread
    /// says how long it has been stuck when another SIGHUP comes.
    running_since: Option<Instant>,
    /// Set once the reload thread has ended (it only ends by panicking).
    stopped: bool,
}

/// The handle on the reload thread, shared by the signal thread and the
/// HTTP handlers.
pub(crate) struct Reloads {
    pending: Mutex<Pending>,
    /// Wakes the reload thread when a request comes.
    asked: Condvar,
    /// The file, for messages.
    source: String,
}

impl Reloads {
    /// Start the reload thread.
    pub(crate) fn spawn(state: Arc<State>, loader: Loader) -> io::Result<Arc<Reloads>> {
        let reloads = Arc::new(Reloads {
            pending: Mutex::default(),
            asked: Condvar::new(),
            source: loader.source.clone(),
        });
        let me = reloads.clone();
        std::thread::Builder::new()
            .name("pulse-reload".into())
            .spawn(move || {
                // Marks the thread gone however it ends, so a request is
                // answered rather than left waiting.
                let _stopped = Stopped(&me);
                loop {
                    let (causes, waiters) = me.next();
                    let outcome = reload(&state, &loader, &causes);
                    me.lock().running_since = None;
                    for w in waiters {
                        // A waiter that gave up (HTTP_WAIT) has dropped its
                        // receiver: nothing to tell it.
                        let _ = w.send(outcome.clone());
                    }
                }
            })?;
        Ok(reloads)
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// On the reload thread: wait for a request, and take it (its causes
    /// and waiters) as the reload about to run.
    fn next(&self) -> (String, Vec<mpsc::Sender<Outcome>>) {
        let mut p = self.lock();
        while !p.asked {
            p = self.asked.wait(p).unwrap_or_else(PoisonError::into_inner);
        }
        let causes = match (p.by_signal, p.by_http) {
            (true, true) => "SIGHUP and POST /-/reload",
            (false, true) => "POST /-/reload",
            _ => "SIGHUP",
        };
        p.asked = false;
        p.by_signal = false;
        p.by_http = false;
        p.running_since = Some(Instant::now());
        (causes.to_owned(), std::mem::take(&mut p.waiters))
    }

    /// Ask for a reload on SIGHUP; never blocks.
    pub(crate) fn request(&self) {
        let mut p = self.lock();
        if p.stopped {
            eprintln!("pulse serve: SIGHUP: cannot reload: the reload thread has stopped");
            return;
        }
        if p.asked {
            let running = p.running_since.map_or_else(String::new, |t| {
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
        self.ask(&mut p, Cause::Signal);
    }

    /// Ask for a reload and wait for its outcome, for at most `wait`;
    /// `None` if it did not come in time (the reload still applies when it
    /// ends).
    pub(crate) fn request_and_wait(&self, wait: Duration) -> Option<Outcome> {
        let (tx, rx) = mpsc::channel();
        {
            let mut p = self.lock();
            if p.stopped {
                return Some(Err("cannot reload: the reload thread has stopped".into()));
            }
            p.waiters.push(tx);
            self.ask(&mut p, Cause::Http);
        }
        rx.recv_timeout(wait).ok()
    }

    fn ask(&self, p: &mut Pending, cause: Cause) {
        p.asked = true;
        match cause {
            Cause::Signal => p.by_signal = true,
            Cause::Http => p.by_http = true,
        }
        self.asked.notify_one();
    }

    /// How long the running reload has run, if one runs.
    pub(crate) fn running_for(&self) -> Option<Duration> {
        self.lock().running_since.map(|t| t.elapsed())
    }

    /// The targets file, as named in messages.
    pub(crate) fn source(&self) -> &str {
        &self.source
    }
}

/// Set on the reload thread's way out (a panic in the loader): later
/// requests are told at once, and waiting ones are released (dropping
/// their senders ends their wait).
struct Stopped<'a>(&'a Reloads);

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        let mut p = self.0.lock();
        p.stopped = true;
        p.waiters.clear();
    }
}

/// One reload: the new config in force, or the old one kept and counted.
/// The log line comes first, so whoever sees the change in `/metrics` can
/// find its reason in the log.
fn reload(state: &State, loader: &Loader, causes: &str) -> Outcome {
    match loader.load() {
        Ok(config) => {
            let (mine, all) = (config.plan.len(), config.all.len());
            let summary = format!(
                "reloaded {}: {mine} of {all} targets, from the next round on",
                loader.source
            );
            eprintln!("pulse serve: {causes}: {summary}");
            state.replace_config(config);
            Ok(summary)
        }
        Err(e) => {
            let kept = state.config().plan.len();
            let kept = format!(
                "{} not reloaded; still probing the {kept} targets loaded before",
                loader.source
            );
            eprintln!("{e}");
            eprintln!("pulse serve: {causes}: {kept}");
            state.reload_failed();
            Err(format!("{e}\n{kept}"))
        }
    }
}
