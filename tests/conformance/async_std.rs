//! The suite for the async-std model.

conformance!(pulse_async_std::run);
