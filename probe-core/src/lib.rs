//! pulse's probe core: everything that is the same for every concurrency model.
//!
//! The core opens no socket and reads no clock. Time is a parameter
//! (`now: Instant`), bytes arrive as slices, and every outcome is classified
//! into a [`result::ProbeResult`]. A model (tokio, smol, threads, ...) only pumps
//! bytes between a socket and a [`session::Session`], so the models differ in
//! how they schedule work and in nothing else.
//!
//! # Layout
//!
//! - [`target`]: the targets file format, parsed with `FILE:LINE:COL` errors.
//! - [`result`]: result, error kind, summary and report types (serde).
//! - [`encode`]: table, json, jsonl, yaml and Prometheus text encoders.
//! - [`plan`]: the targets plus scan-wide options; builds each probe's session.
//! - [`session`]: one probe as a sans-IO state machine (TCP, HTTP/1.1 via
//!   ureq-proto, TLS via rustls, the ICMP step), classifying every outcome.
//! - [`readbuf`]: the read buffer, one per OS thread, lent only for a read.
//! - [`redact`]: target URLs as shown, with any password replaced.
//! - [`redirect`]: which redirect hops a probe may follow (serve's allowlist).
//! - [`tls`]: the rustls client configs (verified, extra CA, insecure), and
//!   the recorder that keeps the certificates a handshake saw.
//! - [`certs`]: what those certificates say (expiry, subject, issuer, serial).
//! - [`request`]: what an HTTP target sends beyond a GET (method, headers,
//!   body, credentials from a file), checked and bounded.
//! - [`icmp`]: echo packet codec and the reply table shared by ICMP probes.
//! - [`model`]: the contract every model honours: `Sink`, `Ledger`, `RunReport`.
//! - [`native`]: what the native stacks (`--stack native`) share: the stack
//!   name, the checks turned into an outcome, error chains mapped to kinds.
//! - [`shutdown`]: the stop signal and grace period, shared with signal handlers.
//! - [`panic`](mod@panic): panic isolation for async probes.
//! - [`percent`]: percent-encoding of the path and query pulse sends.
//! - [`pool`]: the blocking pool's queues, dispatch / work / collect, and the
//!   in-flight registry the drain cuts (loom-checked, see `loom-tests/`).
//! - [`time`]: deadline arithmetic that saturates instead of panicking.
//! - [`sync`]: the only source of locks and atomics (std, or loom under `--cfg pulse_loom`).
//!
//! # Out of scope
//!
//! Sockets, DNS, timers, threads and runtimes: those belong to the models.

pub mod certs;
pub mod encode;
pub mod icmp;
pub mod model;
pub mod native;
pub mod panic;
pub mod percent;
pub mod plan;
pub mod pool;
pub mod readbuf;
pub mod redact;
pub mod redirect;
pub mod request;
pub mod result;
pub mod session;
pub mod shutdown;
pub mod sync;
pub mod target;
pub mod time;
pub mod tls;

/// pulse's version, for outputs and the build-info metric.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
