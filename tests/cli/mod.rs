//! Tests of the `pulse` command line.

mod bad_input;
mod baselines;
mod check;
mod compare;
mod completions;
mod credentials;
mod encoding;
mod hardening;
mod help;
mod icmp;
mod prometheus;
mod real;
mod redirects;
mod runtimes;
mod scan;
pub(crate) mod serve;
mod serve_disconnect;
mod serve_page;
mod shutdown;
mod stacks;
pub(crate) mod util;
