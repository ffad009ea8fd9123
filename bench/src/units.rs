//! Units of work on each model's executor, outside the probe: spawning and
//! joining them, holding many asleep, and one wake-up round trip.
//!
//! The models only expose `run(plan)`, which is a whole scan; the `spawn`
//! bench and the idle-units regime need the executor alone. Each
//! [`Executor`] is built the way its model builds it (the same thread
//! counts: one per core for the async runtimes, a thread per unit for the
//! blocking models), so what these figures show is the model's unit of
//! concurrency with nothing of pulse on top:
//!
//! | model | unit | asleep on | woken by |
//! | --- | --- | --- | --- |
//! | tokio | task | tokio's timer wheel | its reactor thread |
//! | smol | task | async-io's timer | async-io's reactor |
//! | async-std | task | async-io's timer | async-io's reactor |
//! | threads | OS thread | the kernel (`nanosleep`) | the kernel |
//! | rayon | job on a pool thread | the kernel: a sleeping job holds its thread | the kernel |
//!
//! The round trip is always the calling thread (outside the executor)
//! sending to a unit on the executor and waiting for its answer, over the
//! model's own channel type, so each round trip is two cross-thread
//! wake-ups on every model.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// The five models, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// tokio's multi-threaded runtime.
    Tokio,
    /// smol's `Executor` on one thread per core.
    Smol,
    /// async-std's global runtime.
    AsyncStd,
    /// Plain OS threads.
    Threads,
    /// A rayon pool.
    Rayon,
}

impl Model {
    /// Every model, in the order reports list them.
    pub const ALL: [Model; 5] = [
        Model::Tokio,
        Model::Smol,
        Model::AsyncStd,
        Model::Threads,
        Model::Rayon,
    ];

    /// The name `--runtime` takes.
    pub fn name(self) -> &'static str {
        match self {
            Model::Tokio => "tokio",
            Model::Smol => "smol",
            Model::AsyncStd => "async-std",
            Model::Threads => "threads",
            Model::Rayon => "rayon",
        }
    }

    /// The model called `name`, or a message listing the names.
    pub fn parse(name: &str) -> Result<Model, String> {
        Model::ALL
            .into_iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| {
                format!(
                    "unknown model `{name}`; known: {}",
                    Model::ALL.map(Model::name).join(", ")
                )
            })
    }

    /// The model's `run`, for in-process benches.
    pub fn run_fn(self) -> crate::setup::RunFn {
        match self {
            Model::Tokio => pulse_tokio::run,
            Model::Smol => pulse_smol::run,
            Model::AsyncStd => pulse_async_std::run,
            Model::Threads => pulse_threads::run,
            Model::Rayon => pulse_rayon::run,
        }
    }
}

/// Threads an async runtime runs on: one per core, as the models do.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A model's executor, built once and reused across measurements.
pub struct Executor {
    /// Which model.
    model: Model,
    /// What the model runs on.
    inner: Inner,
}

/// The executor itself.
enum Inner {
    /// A multi-threaded runtime, one worker per core.
    Tokio(tokio::runtime::Runtime),
    /// A shared executor and the threads running it; dropping `stop` ends
    /// them (the closed channel is the signal, as in the smol model).
    Smol {
        /// The executor, shared with its threads.
        ex: Arc<smol::Executor<'static>>,
        /// Dropped to stop the threads.
        stop: Option<smol::channel::Sender<()>>,
        /// Joined on drop.
        threads: Vec<std::thread::JoinHandle<()>>,
    },
    /// async-std's global runtime needs nothing built.
    AsyncStd,
    /// Threads are started per unit.
    Threads,
    /// A pool of one thread per core, for spawning jobs and the round trip;
    /// [`Executor::hold_idle`] builds its own pool of one thread per unit.
    Rayon(rayon::ThreadPool),
}

impl Executor {
    /// Build `model`'s executor.
    pub fn new(model: Model) -> Result<Executor, String> {
        let inner = match model {
            Model::Tokio => Inner::Tokio(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(cores())
                    .enable_all()
                    .build()
                    .map_err(|e| format!("tokio runtime: {e}"))?,
            ),
            Model::Smol => {
                let ex = Arc::new(smol::Executor::new());
                let (stop, until) = smol::channel::bounded::<()>(1);
                let mut threads = Vec::new();
                for _ in 0..cores() {
                    let (ex, until) = (ex.clone(), until.clone());
                    threads.push(
                        std::thread::Builder::new()
                            .spawn(move || {
                                let _ = smol::block_on(ex.run(until.recv()));
                            })
                            .map_err(|e| format!("smol thread: {e}"))?,
                    );
                }
                Inner::Smol {
                    ex,
                    stop: Some(stop),
                    threads,
                }
            }
            Model::AsyncStd => Inner::AsyncStd,
            Model::Threads => Inner::Threads,
            Model::Rayon => Inner::Rayon(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(cores())
                    .build()
                    .map_err(|e| format!("rayon pool: {e}"))?,
            ),
        };
        Ok(Executor { model, inner })
    }

    /// The model this executor belongs to.
    pub fn model(&self) -> Model {
        self.model
    }

    /// Spawn `n` units that do nothing, then wait for all of them.
    pub fn spawn_join(&self, n: usize) -> Result<(), String> {
        match &self.inner {
            Inner::Tokio(rt) => rt.block_on(async {
                let handles: Vec<_> = (0..n).map(|_| tokio::spawn(async {})).collect();
                for h in handles {
                    h.await.map_err(|e| e.to_string())?;
                }
                Ok(())
            }),
            Inner::Smol { ex, .. } => smol::block_on(async {
                let tasks: Vec<_> = (0..n).map(|_| ex.spawn(async {})).collect();
                for t in tasks {
                    t.await;
                }
                Ok(())
            }),
            Inner::AsyncStd => async_std::task::block_on(async {
                let tasks: Vec<_> = (0..n).map(|_| async_std::task::spawn(async {})).collect();
                for t in tasks {
                    t.await;
                }
                Ok(())
            }),
            Inner::Threads => {
                let mut handles = Vec::with_capacity(n);
                for _ in 0..n {
                    handles.push(
                        std::thread::Builder::new()
                            .spawn(|| {})
                            .map_err(|e| e.to_string())?,
                    );
                }
                for h in handles {
                    h.join().map_err(|_| "a unit panicked".to_string())?;
                }
                Ok(())
            }
            Inner::Rayon(pool) => {
                pool.scope(|s| {
                    for _ in 0..n {
                        s.spawn(|_| {});
                    }
                });
                Ok(())
            }
        }
    }

    /// `rounds` round trips between the calling thread and a unit on the
    /// executor, over the model's own bounded channels.
    pub fn ping_pong(&self, rounds: u64) -> Result<(), String> {
        match &self.inner {
            Inner::Tokio(rt) => {
                let (to, mut from_caller) = tokio::sync::mpsc::channel::<u64>(1);
                let (back, mut from_unit) = tokio::sync::mpsc::channel::<u64>(1);
                rt.spawn(async move {
                    while let Some(v) = from_caller.recv().await {
                        if back.send(v).await.is_err() {
                            break;
                        }
                    }
                });
                for i in 0..rounds {
                    to.blocking_send(i).map_err(|e| e.to_string())?;
                    from_unit.blocking_recv().ok_or("the echo task stopped")?;
                }
                Ok(())
            }
            Inner::Smol { ex, .. } => {
                let (to, from_caller) = smol::channel::bounded::<u64>(1);
                let (back, from_unit) = smol::channel::bounded::<u64>(1);
                ex.spawn(async move {
                    while let Ok(v) = from_caller.recv().await {
                        if back.send(v).await.is_err() {
                            break;
                        }
                    }
                })
                .detach();
                for i in 0..rounds {
                    to.send_blocking(i).map_err(|e| e.to_string())?;
                    from_unit.recv_blocking().map_err(|e| e.to_string())?;
                }
                Ok(())
            }
            Inner::AsyncStd => {
                let (to, from_caller) = async_std::channel::bounded::<u64>(1);
                let (back, from_unit) = async_std::channel::bounded::<u64>(1);
                async_std::task::spawn(async move {
                    while let Ok(v) = from_caller.recv().await {
                        if back.send(v).await.is_err() {
                            break;
                        }
                    }
                });
                for i in 0..rounds {
                    to.send_blocking(i).map_err(|e| e.to_string())?;
                    from_unit.recv_blocking().map_err(|e| e.to_string())?;
                }
                Ok(())
            }
            Inner::Threads => {
                let (to, from_caller) = crossbeam_channel::bounded::<u64>(1);
                let (back, from_unit) = crossbeam_channel::bounded::<u64>(1);
                let echo = std::thread::spawn(move || {
                    for v in from_caller {
                        if back.send(v).is_err() {
                            break;
                        }
                    }
                });
                let result = round_trips(&to, &from_unit, rounds);
                drop(to);
                let _ = echo.join();
                result
            }
            Inner::Rayon(pool) => {
                let (to, from_caller) = crossbeam_channel::bounded::<u64>(1);
                let (back, from_unit) = crossbeam_channel::bounded::<u64>(1);
                pool.spawn(move || {
                    for v in from_caller {
                        if back.send(v).is_err() {
                            break;
                        }
                    }
                });
                round_trips(&to, &from_unit, rounds)
            }
        }
    }

    /// Start `n` units that each sleep until `until`, and wait for them.
    /// Returns how long starting all of them took. A model that cannot hold
    /// `n` (threads past the kernel's limits) fails with the OS's reason
    /// and how many it had started.
    pub fn hold_idle(&self, n: usize, until: Instant) -> Result<Duration, String> {
        let t0 = Instant::now();
        let left = move || until.saturating_duration_since(Instant::now());
        match &self.inner {
            Inner::Tokio(rt) => rt.block_on(async {
                let handles: Vec<_> = (0..n)
                    .map(|_| tokio::spawn(tokio::time::sleep_until(until.into())))
                    .collect();
                let started = t0.elapsed();
                for h in handles {
                    h.await.map_err(|e| e.to_string())?;
                }
                Ok(started)
            }),
            Inner::Smol { ex, .. } => smol::block_on(async {
                let tasks: Vec<_> = (0..n)
                    .map(|_| ex.spawn(async move { smol::Timer::at(until).await }))
                    .collect();
                let started = t0.elapsed();
                for t in tasks {
                    t.await;
                }
                Ok(started)
            }),
            Inner::AsyncStd => async_std::task::block_on(async {
                let tasks: Vec<_> = (0..n)
                    .map(|_| {
                        async_std::task::spawn(async move { async_std::task::sleep(left()).await })
                    })
                    .collect();
                let started = t0.elapsed();
                for t in tasks {
                    t.await;
                }
                Ok(started)
            }),
            Inner::Threads => {
                let mut handles = Vec::with_capacity(n);
                for i in 0..n {
                    match std::thread::Builder::new().spawn(move || std::thread::sleep(left())) {
                        Ok(h) => handles.push(h),
                        Err(e) => {
                            for h in handles {
                                let _ = h.join();
                            }
                            return Err(format!("thread {} of {n} failed to start: {e}", i + 1));
                        }
                    }
                }
                let started = t0.elapsed();
                for h in handles {
                    h.join().map_err(|_| "a unit panicked".to_string())?;
                }
                Ok(started)
            }
            Inner::Rayon(_) => {
                // A sleeping job holds its thread, so holding `n` asleep
                // takes a pool of `n` threads: rayon's unit is a thread here.
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .build()
                    .map_err(|e| format!("a rayon pool of {n} threads failed to start: {e}"))?;
                if pool.current_num_threads() < n {
                    return Err(format!(
                        "rayon caps a pool at {} threads (asked for {n})",
                        pool.current_num_threads()
                    ));
                }
                let started = std::sync::Mutex::new(Duration::ZERO);
                pool.broadcast(|_| {
                    if let Ok(mut s) = started.lock() {
                        *s = (*s).max(t0.elapsed());
                    }
                    std::thread::sleep(left());
                });
                Ok(started.into_inner().unwrap_or_default())
            }
        }
    }
}

/// The blocking side of a round trip over crossbeam channels.
fn round_trips(
    to: &crossbeam_channel::Sender<u64>,
    from: &crossbeam_channel::Receiver<u64>,
    rounds: u64,
) -> Result<(), String> {
    for i in 0..rounds {
        to.send(i).map_err(|e| e.to_string())?;
        from.recv().map_err(|e| e.to_string())?;
    }
    Ok(())
}

impl Drop for Executor {
    fn drop(&mut self) {
        if let Inner::Smol { stop, threads, .. } = &mut self.inner {
            drop(stop.take());
            for t in threads.drain(..) {
                let _ = t.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_spawns_joins_and_echoes() {
        for model in Model::ALL {
            let ex = Executor::new(model).unwrap();
            ex.spawn_join(100).unwrap();
            ex.ping_pong(10).unwrap();
            let until = Instant::now() + Duration::from_millis(50);
            let started = ex.hold_idle(20, until).unwrap();
            assert!(
                Instant::now() >= until,
                "{}: returned before the units woke",
                model.name()
            );
            assert!(started < Duration::from_secs(5));
        }
    }

    #[test]
    fn names_round_trip_and_unknown_names_list_the_known() {
        for m in Model::ALL {
            assert_eq!(Model::parse(m.name()), Ok(m));
        }
        let e = Model::parse("go").unwrap_err();
        assert!(e.contains("tokio, smol, async-std, threads, rayon"), "{e}");
    }
}
