//! Link setting for the two programs (`atlas`, `atlas-tray`): packed relative relocations
//! (`-z pack-relative-relocs`, DT_RELR) on Linux with glibc. A position-independent Rust
//! program has tens of thousands of relative relocations; as classic RELA entries they take
//! 1.1 MB of the `atlas` file that the loader reads (so keeps resident) at every start, as RELR
//! a few kB. Used only when the C toolchain links a probe program with the flag (binutils 2.38+)
//! and the probe runs (glibc 2.36+ loads RELR), so an older system still builds, unpacked.

use std::process::{Command, Stdio};

const FLAG: &str = "-Wl,-z,pack-relative-relocs";

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" && linker_accepts(FLAG) {
        println!("cargo::rustc-link-arg-bins={FLAG}");
    }
}

/// Whether `cc` links a trivial C program with `flag`, and it runs.
fn linker_accepts(flag: &str) -> bool {
    let Some(out) = std::env::var_os("OUT_DIR") else {
        return false;
    };
    let exe = std::path::Path::new(&out).join("relr-probe");
    let child = Command::new("cc")
        .args(["-x", "c", "-", "-o"])
        .arg(&exe)
        .arg(flag)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else { return false };
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        let _ = stdin.write_all(b"int main(void) { return 0; }\n");
    }
    child.wait().is_ok_and(|s| s.success())
        && Command::new(&exe).status().is_ok_and(|s| s.success())
}
