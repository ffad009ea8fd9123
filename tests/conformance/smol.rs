//! The suite for the smol model: enabled once the model is built.
//! (replace this line with: conformance!(pulse_smol::run);)
