//! The `mailwarden` binary: parses the command line and hands over to
//! [`mailwarden::cli::run`]; the architecture is described in `lib.rs`.

#![forbid(unsafe_code)]

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = mailwarden::cli::Cli::parse();
    mailwarden::cli::run(cli).exit_code()
}
