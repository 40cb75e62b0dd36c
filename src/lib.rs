//! mailwarden sorts and archives IMAP mail by rules written in YAML.
//!
//! Data flow, one module per stage:
//!
//! ```text
//! config  (YAML -> positioned tree -> validated Config with compiled rules)
//!   -> rules    (pure: evaluate(rules, message, now) -> Decision)
//!   -> plan     (pure: decisions per mailbox -> Plan; dry-run prints it)
//!   -> imap / execute (one session per account carries out the Plan)
//!   -> state    (UIDVALIDITY, last UID, action journal)
//! ```
//!
//! Beside the flow, for the daemon: `health` (each account's state, kept
//! in the state file for `status`, in `metrics` for Prometheus, and told to
//! systemd through `notify`).
//!
//! `message` turns raw RFC 5322 bytes (a file, or what IMAP FETCH returns)
//! into the view the rules read. `cli` is the command line; `commands` holds
//! one module per subcommand, which print through `output`. `import`
//! translates Gmail filter exports and Sieve scripts into rules (YAML for
//! `config` to read). `oauth` gets OAuth2 access tokens for the login
//! (`mailwarden auth`'s consent, stored refresh tokens, renewal).

#![forbid(unsafe_code)]

/// A line on standard error for the user ([`output::stderr_line`]): a
/// closed or broken standard error is no reason to stop.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::output::stderr_line(format_args!($($arg)*))
    };
}

pub mod cli;
pub mod commands;
pub mod config;
pub mod display;
pub mod duplicates;
pub mod execute;
pub mod health;
pub mod imap;
pub mod import;
pub mod marks;
pub mod message;
pub mod metrics;
pub mod notify;
pub mod oauth;
pub mod output;
pub mod pass;
pub mod plan;
pub mod recover;
pub mod report;
pub mod rules;
pub mod search;
pub mod secret;
pub mod state;
pub mod undo;
