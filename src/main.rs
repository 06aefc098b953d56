//! The `bazaar` command: parses the command line and dispatches.

use std::process::ExitCode;

use clap::Parser;

use bazaar::cli::{Cli, Command};

/// jemalloc rather than glibc's malloc: see its line in `Cargo.toml`.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Node(args) => bazaar::node::run(*args),
        Command::Up(args) => bazaar::launcher::run(args),
        Command::Status(args) => bazaar::control::status(args),
        Command::Kill(args) => bazaar::control::kill(args),
        Command::Voters(args) => bazaar::voters::run(args),
        Command::Demo(args) => bazaar::demo::run(args),
        Command::Bench(args) => bazaar::bench::run(args),
        Command::BenchPeer(args) => bazaar::bench::peer::run(args),
        Command::Load(args) => bazaar::load::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
