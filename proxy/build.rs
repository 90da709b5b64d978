//! Places the functions that serve traffic side by side in release builds.
//!
//! `hot-symbols.txt` (written by `cargo xtask hot-symbols`) lists them; the linker lays
//! them out in that order. The kernel maps a binary's code 64 KiB around each page a
//! process touches, so with the hot functions scattered over the whole text most of it
//! becomes resident; packed together they take about a quarter as much (measured: 3.8 MB
//! of resident code under 64 connections before, 1.1 MB after).
//!
//! The relative relocations are packed too (`-z pack-relative-relocs`), which takes the
//! relocation table the loader reads at every start from 370 KB to a few KB.
//!
//! Only for release builds for x86_64 Linux with glibc, whose default linker since Rust 1.90
//! is rust-lld (which, like mold, takes `--symbol-ordering-file`; GNU ld does not). Set
//! `MESH_PROXY_SYMBOL_ORDER=0` to link without it, e.g. with another linker. Symbols the
//! linker does not find (the file is older than the code, or the binary was built with other
//! flags than the images', from which the list is recorded) are skipped without a warning.

use std::env;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=hot-symbols.txt");
    println!("cargo:rerun-if-env-changed=MESH_PROXY_SYMBOL_ORDER");
    let var = |k: &str| env::var(k).unwrap_or_default();
    let wanted = var("PROFILE") == "release"
        && var("TARGET") == "x86_64-unknown-linux-gnu"
        && var("MESH_PROXY_SYMBOL_ORDER") != "0";
    let file = Path::new(&var("CARGO_MANIFEST_DIR")).join("hot-symbols.txt");
    if wanted && file.is_file() {
        println!(
            "cargo:rustc-link-arg-bin=mesh-proxy=-Wl,--symbol-ordering-file={}",
            file.display()
        );
        println!("cargo:rustc-link-arg-bin=mesh-proxy=-Wl,--no-warn-symbol-ordering");
    }
    if wanted {
        // Relative relocations packed as a bitmap (DT_RELR, glibc 2.36 and later): the
        // dynamic loader reads a few kilobytes at start-up instead of a 370 KB table.
        println!("cargo:rustc-link-arg-bin=mesh-proxy=-Wl,-z,pack-relative-relocs");
    }
}
