//! The command line: clap definitions, dispatch to `commands`, and the one
//! place where outcomes become exit codes (spec: 0 ok, 1 some messages
//! failed, 2 invalid configuration, 3 cannot connect or log in; 4, ours, the
//! state file cannot be used). `import` uses 1 for "something was not
//! translated" and 2 for "not a Gmail export / not Sieve".

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Parser, Subcommand, ValueEnum};

use crate::commands;

#[derive(Debug, Parser)]
#[command(
    name = "mailwarden",
    version,
    about = "Sorts and archives IMAP mail by YAML rules"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log lines (standard error) as text or as one JSON object each
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: Format,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArg {
    /// Configuration file [default: $XDG_CONFIG_HOME/mailwarden/config.yaml]
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub path: Option<PathBuf>,
}

impl ConfigArg {
    pub fn resolve(&self) -> PathBuf {
        self.path.clone().unwrap_or_else(default_config_path)
    }
}

fn default_config_path() -> PathBuf {
    crate::config::xdg_path("XDG_CONFIG_HOME", ".config", "config.yaml")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the configuration; print every error as FILE:LINE:COL
    Check {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Evaluate the rules on message files, offline
    Test(commands::test::TestArgs),
    /// One pass over the mail now in the rules' mailboxes
    Run(commands::run::RunArgs),
    /// Daemon: a pass, then follow new mail by IDLE or polling
    Watch(commands::watch::WatchArgs),
    /// Show the action journal: what moved where, and why
    Log(commands::log::LogArgs),
    /// Take back journaled actions, newest first
    Undo(commands::undo::UndoArgs),
    /// Write rules from a Gmail filter export or a Sieve script
    Import(commands::import::ImportArgs),
    /// One-time OAuth2 consent for an account; stores its refresh token
    Auth(commands::auth::AuthArgs),
}

/// How a command ended; [`Outcome::exit_code`] is the only mapping to
/// process exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Some messages failed; the rest were handled.
    SomeFailed,
    ConfigInvalid,
    ConnectFailed,
    /// The state file cannot be used: locked by another process, not a
    /// state file, unwritable, or its disk full.
    StateFailed,
}

impl Outcome {
    pub fn exit_code(self) -> ExitCode {
        ExitCode::from(match self {
            Outcome::Success => 0,
            Outcome::SomeFailed => 1,
            Outcome::ConfigInvalid => 2,
            Outcome::ConnectFailed => 3,
            Outcome::StateFailed => 4,
        })
    }
}

/// Parses `--now`/`--received` values: RFC 3339, or a date (midnight UTC).
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.to_utc());
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc())
        .map_err(|_| format!("invalid time {text:?}: use 2026-01-01T00:00:00Z or 2026-01-01"))
}

impl Cli {
    /// What is logged when MAILWARDEN_LOG does not say: the daemon reports
    /// each action; one-shot commands only problems.
    pub fn default_log_level(&self) -> &'static str {
        match self.command {
            Command::Watch(_) => "info",
            _ => "warn",
        }
    }
}

pub fn run(cli: Cli) -> Outcome {
    match cli.command {
        Command::Check { config } => commands::check::execute(&config.resolve()),
        Command::Test(args) => commands::test::execute(&args),
        Command::Run(args) => commands::run::execute_command(&args),
        Command::Watch(args) => commands::watch::execute_command(&args),
        Command::Log(args) => commands::log::execute(&args),
        Command::Undo(args) => commands::undo::execute(&args),
        Command::Import(args) => commands::import::execute(&args),
        Command::Auth(args) => commands::auth::execute(&args),
    }
}
