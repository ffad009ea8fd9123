//! The suite for the rayon model.

conformance!(pulse_rayon::run);
