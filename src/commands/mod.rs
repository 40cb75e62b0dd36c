//! One module per subcommand; each `execute` returns a [`crate::cli::Outcome`].

pub mod auth;
pub mod check;
pub mod import;
pub mod log;
pub mod pace;
pub mod run;
pub mod status;
pub mod test;
pub mod undo;
pub mod watch;

use std::path::{Path, PathBuf};

use crate::cli::Outcome;
use crate::config::{self, Account, Config, LoadError, SecretSource};
use crate::imap::{ImapError, Session};
use crate::oauth::{OAuthError, TokenCache};
use crate::output::stderr_line;
use crate::secret::{self, Credential, SecretError};
use crate::state::{self, State, StateError};

/// Why a session for an account could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    #[error(transparent)]
    Connect(#[from] ImapError),
}

impl OpenError {
    /// What failed, in a few words.
    pub fn what(&self) -> &'static str {
        match self {
            OpenError::Secret(_) => "cannot read the secret",
            OpenError::OAuth(_) => "cannot get an OAuth2 access token",
            OpenError::Connect(_) => "cannot connect",
        }
    }
}

/// A session for `account`, its secret read afresh (and dropped once
/// logged in).
pub async fn open_session(account: &Account) -> Result<Session, OpenError> {
    let mut tokens = TokenCache::default();
    Ok(open_session_with(account, &mut tokens).await?.session)
}

/// A session, and when it is to be ended because its access token falls
/// due (`None`: a password, or a helper's token of unknown life).
pub struct Opened {
    pub session: Session,
    pub renew_at: Option<std::time::Instant>,
}

/// A session for `account`; with the built-in OAuth2 flow, its access
/// token from `tokens` (refreshed when due). A login refused with a cached
/// token is tried once more with a fresh one: the provider may have ended
/// the token early (a password change, a revoked session).
pub async fn open_session_with(
    account: &Account,
    tokens: &mut TokenCache,
) -> Result<Opened, OpenError> {
    let SecretSource::OAuth2Client(client) = &account.secret else {
        let credential = secret::resolve(&account.secret, account.timeout).await?;
        return Ok(Opened {
            session: crate::imap::connect(account, &credential).await?,
            renew_at: None,
        });
    };
    let (token, fresh) = tokens.get(account, client).await?;
    let login = |t: &crate::oauth::AccessToken| {
        let credential = Credential::OAuth2Token(t.token.clone());
        async move { crate::imap::connect(account, &credential).await }
    };
    let (session, token) = match login(&token).await {
        Err(ImapError::Auth { .. }) if !fresh => {
            tracing::info!(account = %account.name, "the login with the cached access token was refused; refreshing it");
            tokens.forget();
            let (token, _) = tokens.get(account, client).await?;
            (login(&token).await?, token)
        }
        other => (other?, token),
    };
    Ok(Opened {
        session,
        renew_at: Some(token.lifetime.renew_at()),
    })
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
