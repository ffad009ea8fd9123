//! The suite for the threads model: enabled once the model is built.
//! (replace this line with: conformance!(pulse_threads::run);)
