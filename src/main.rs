//! The `mailwarden` binary: sets up logging, parses the command line and
//! hands over to [`mailwarden::cli::run`]; the architecture is described in
//! `lib.rs`.

#![forbid(unsafe_code)]

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// Logs go to standard error, filtered by `MAILWARDEN_LOG` (e.g. `debug`,
/// `mailwarden=trace`); by default warnings, and for `watch` each action.
/// The IMAP, TLS and HTTP libraries are held at `info` whatever is asked:
/// at `trace` they log what they send and receive, credentials included.
fn init_logging(default_level: &str, format: mailwarden::cli::Format) {
    let mut filter =
        EnvFilter::try_from_env("MAILWARDEN_LOG").unwrap_or_else(|_| EnvFilter::new(default_level));
    for quiet in [
        "async_imap=info",
        "imap_proto=info",
        "rustls=info",
        "tokio_rustls=info",
        // The OAuth2 requests: at trace their own output shows request
        // and response bodies, tokens included.
        "oauth2=info",
        "reqwest=info",
        "hyper=info",
        "hyper_util=info",
    ] {
        filter = filter.add_directive(quiet.parse().expect("valid directive"));
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    match format {
        mailwarden::cli::Format::Json => builder.json().init(),
        mailwarden::cli::Format::Text => builder.init(),
    }
}

fn main() -> std::process::ExitCode {
    let cli = mailwarden::cli::Cli::parse();
    init_logging(cli.default_log_level(), cli.log_format);
    mailwarden::cli::run(cli).exit_code()
}
