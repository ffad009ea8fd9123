//! pulse's integration tests, all in one binary (ripgrep's layout): they run
//! the real `pulse` executable against the loopback fixtures and assert what
//! a user sees: results, exit codes, error messages, metric text.

// Test helpers outside #[test] functions unwrap too: a failure there is a
// test failure, and the panic message is the report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli;
mod conformance;
