//! The suite for the rayon model: enabled once the model is built.
//! (replace this line with: conformance!(pulse_rayon::run);)
