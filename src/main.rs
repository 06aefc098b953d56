//! The `bazaar` command: parses the command line and dispatches.

use clap::Parser;

use bazaar::cli::{Cli, Command};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Node(args) => bazaar::node::run(args),
        Command::Up(args) => bazaar::launcher::run(args),
        Command::Status(args) => bazaar::control::status(args),
        Command::Kill(args) => bazaar::control::kill(args),
    }
}
