//! pulse's integration tests, all in one binary (ripgrep's layout): they run
//! the real `pulse` executable against the loopback fixtures and assert what
//! a user sees: results, exit codes, error messages, metric text.

mod cli;
