//! Tests of the `pulse` command line.

mod bad_input;
mod check;
mod compare;
mod icmp;
mod real;
mod runtimes;
mod scan;
mod serve;
mod shutdown;
pub(crate) mod util;
