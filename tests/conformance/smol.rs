//! The suite for the smol model.

conformance!(pulse_smol::run);
