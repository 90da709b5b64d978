//! mesh-proxy: parse the configuration, build the proxy, run it.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    match args.next() {
        Some(cmd) if cmd == "init" => mesh_proxy::init::run(args.collect()),
        _ => {
            eprintln!("mesh-proxy: the proxy itself is not built yet");
            ExitCode::from(70)
        }
    }
}
