//! The targets file parser: any bytes, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = pulse_core::target::parse_targets("fuzz", data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = pulse_core::target::parse_target(text);
    }
});
