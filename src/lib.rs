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
//! `message` turns raw RFC 5322 bytes (a file, or what IMAP FETCH returns)
//! into the view the rules read. `cli` is the command line; `commands` holds
//! one module per subcommand.

#![forbid(unsafe_code)]

pub mod cli;
pub mod commands;
pub mod config;
pub mod execute;
pub mod imap;
pub mod message;
pub mod pass;
pub mod plan;
pub mod recover;
pub mod report;
pub mod rules;
pub mod search;
pub mod secret;
pub mod state;
