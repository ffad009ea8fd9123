//! Tests of the `pulse` command line.

mod bad_input;
mod check;
mod scan;
mod shutdown;
mod util;
