//! The suite for the async-std model: enabled once the model is built.
//! (replace this line with: conformance!(pulse_async_std::run);)
