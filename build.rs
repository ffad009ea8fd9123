//! Records the compiler version, so `pulse compare` reports say which rustc
//! built the binaries they measured.

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map_or_else(|| "unknown".to_string(), |v| v.trim().to_string());
    println!("cargo:rustc-env=PULSE_RUSTC_VERSION={version}");
    println!("cargo:rerun-if-changed=build.rs");
}
