//! One module per subcommand; each `execute` returns a [`crate::cli::Outcome`].

pub mod check;
pub mod import;
pub mod log;
pub mod run;
pub mod status;
pub mod test;
pub mod undo;
pub mod watch;

use std::path::{Path, PathBuf};

use crate::cli::Outcome;
use crate::config::{self, Account, Config, LoadError};
use crate::imap::{ImapError, Session};
use crate::output::stderr_line;
use crate::secret::{self, SecretError};
use crate::state::{self, State, StateError};

/// Why a session for an account could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Connect(#[from] ImapError),
}

impl OpenError {
    /// What failed, in a few words.
    pub fn what(&self) -> &'static str {
        match self {
            OpenError::Secret(_) => "cannot read the secret",
            OpenError::Connect(_) => "cannot connect",
        }
    }
}

/// A session for `account`, its secret read afresh (and dropped once
/// logged in).
pub async fn open_session(account: &Account) -> Result<Session, OpenError> {
    let credential = secret::resolve(&account.secret, account.timeout).await?;
    Ok(crate::imap::connect(account, &credential).await?)
}

/// Checks that `--account` and `--mailbox` name something the
/// configuration has: a typo is exit 2 with the names there are, not a run
/// that quietly does nothing.
pub fn check_selection(
    config: &Config,
    account: Option<&str>,
    mailbox: Option<&str>,
) -> Result<(), Outcome> {
    let accounts: Vec<&str> = config.accounts.iter().map(|a| a.name.as_str()).collect();
    if let Some(a) = account
        && !accounts.contains(&a)
    {
        crate::say!(
            "mailwarden: unknown account {a:?} (accounts: {})",
            accounts.join(", ")
        );
        return Err(Outcome::ConfigInvalid);
    }
    if let Some(m) = mailbox {
        let mut read: Vec<String> = Vec::new();
        for r in config
            .rules
            .iter()
            .filter(|r| account.is_none_or(|a| r.accounts.contains(a)))
        {
            for name in &r.mailboxes {
                if !read.iter().any(|x| crate::rules::same_mailbox(x, name)) {
                    read.push(name.clone());
                }
            }
        }
        if !read.iter().any(|x| crate::rules::same_mailbox(x, m)) {
            crate::say!(
                "mailwarden: no rule reads mailbox {m:?} (the rules read: {})",
                read.join(", ")
            );
            return Err(Outcome::ConfigInvalid);
        }
    }
    Ok(())
}

/// Opens the state file (`--state`, else the default) and takes its lock.
pub fn open_state(path: Option<&PathBuf>) -> Result<State, Outcome> {
    State::open(&path.cloned().unwrap_or_else(state::default_path)).map_err(|e| state_failed(&e))
}

/// Reports a problem with the state file; the outcome to exit with.
pub fn state_failed(e: &StateError) -> Outcome {
    stderr_line(format_args!("mailwarden: {e}"));
    Outcome::StateFailed
}

/// The async runtime: one thread for a one-shot pass, two for the daemon's
/// concurrent accounts.
pub fn runtime(threads: usize) -> Result<tokio::runtime::Runtime, Outcome> {
    let mut builder = if threads > 1 {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder.enable_all().build().map_err(|e| {
        stderr_line(format_args!("mailwarden: cannot start: {e}"));
        Outcome::SomeFailed
    })
}

/// Loads the configuration, printing every problem; `Err` carries the
/// outcome to exit with.
pub fn load_config(path: &Path) -> Result<Config, Outcome> {
    config::load(path).map_err(|e| {
        stderr_line(e.report());
        match e {
            LoadError::Invalid { diagnostics, .. } => {
                stderr_line(format_args!(
                    "{} error{} in {}",
                    diagnostics.len(),
                    if diagnostics.len() == 1 { "" } else { "s" },
                    path.display()
                ));
            }
            LoadError::Io { .. } => {}
        }
        Outcome::ConfigInvalid
    })
}
