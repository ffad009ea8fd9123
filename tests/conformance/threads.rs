//! The suite for the threads model.

conformance!(pulse_threads::run);
