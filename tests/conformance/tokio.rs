//! The suite for the tokio model.

conformance!(pulse_tokio::run);
