//! mesh-proxy: with no arguments, runs the proxy configured from the environment.

use std::process::ExitCode;

const USAGE: &str =
    "usage: mesh-proxy                 run the proxy (configured by environment variables)
       mesh-proxy init [ARGS]     install the iptables rules that redirect a pod's traffic
       mesh-proxy await [--timeout D] [--shutdown] -- COMMAND [ARGS]
                                  run COMMAND once the proxy is ready";

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    match args.next() {
        None => mesh_proxy::app::main(&mesh_proxy::config::ProcessEnv),
        Some(cmd) if cmd == "init" => mesh_proxy::init::run(args.collect()),
        Some(cmd) if cmd == "await" => mesh_proxy::await_cmd::run(args.collect()),
        Some(cmd) if cmd == "--version" || cmd == "-V" => {
            println!("mesh-proxy {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some(cmd) if cmd == "--help" || cmd == "-h" => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!(
                "mesh-proxy: unknown command {:?}\n{USAGE}",
                other.to_string_lossy()
            );
            ExitCode::from(mesh_proxy::app::EXIT_CONFIG)
        }
    }
}
