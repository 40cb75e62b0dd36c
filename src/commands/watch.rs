//! `mailwarden watch`: the daemon. Per account, one task and one session:
//! a full pass at start and every `sweep`, and in between the new mail of
//! the `watch` mailboxes, found by IDLE (RFC 2177) or by polling. Lost
//! connections are re-made with capped, jittered backoff; unfinished
//! actions are settled first. SIGINT/SIGTERM stop it cleanly; SIGHUP
//! reloads the configuration (an invalid one is reported and the old kept).
//!
//! ```text
//!            +---------+  error: backoff  +-----------+
//!   start -> | connect | <--------------- | any state |
//!            +---------+                  +-----------+
//!                 | reconcile journal
//!                 v
//!   +--------> [sweep due?] --yes--> full pass over every rule mailbox
//!   |             | no                          |
//!   |             v                             v
//!   |        new mail of the watch mailboxes (UID above the mark)
//!   |             |
//!   |             v
//!   +------- wait: IDLE on the first watch mailbox (renewed every 5 min),
//!            or sleep poll_interval; both cut short by a stop
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::cli::{ConfigArg, Outcome};
use crate::config::{self, Account, Config};
use crate::duplicates::Seen;
use crate::imap::folders::Folders;
use crate::imap::{Access, Session, Woke};
use crate::pass::{ReadOptions, Source, apply, mailboxes_of, plan_mailbox, record, seen_for};
use crate::recover::reconcile;
use crate::rules::{FolderPath, Rule};
use crate::state::State;

#[derive(Debug, Clone, clap::Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// State file [default: $XDG_STATE_HOME/mailwarden/state.db]
    #[arg(long, value_name = "PATH")]
    pub state: Option<PathBuf>,
}

const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// Capped exponential backoff with jitter (so that many clients of one
/// restarted server do not come back in step).
struct Backoff(Duration);

impl Backoff {
    fn next(&mut self) -> Duration {
        let d = self.0;
        self.0 = (self.0 * 2).min(BACKOFF_MAX);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |t| t.subsec_nanos());
        d + d.mul_f64(f64::from(nanos % 1000) / 4000.0)
    }

    fn reset(&mut self) {
        self.0 = BACKOFF_MIN;
    }
}

/// Sleeps, unless stopped first; true if stopped.
async fn sleep_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

/// What every pass of one account works with.
struct AccountCtx<'a> {
    config: &'a Config,
    account: &'a Account,
    state: &'a State,
}

/// Why a pass ended early.
#[derive(Debug)]
enum Stopped {
    /// The connection or the state failed: reconnect and go on.
    Lost(String),
    /// The account's first pass would act on more messages than its
    /// `max_actions`: the account waits for the user.
    Refused(String),
    /// The session's OAuth2 access token falls due: log in again with a
    /// fresh one before the server ends the session itself.
    Renew,
}

impl From<String> for Stopped {
    fn from(e: String) -> Self {
        Stopped::Lost(e)
    }
}

/// Which messages a pass reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// All, in the account's first full pass, which refuses to act on more
    /// messages than `max_actions`.
    First,
    /// All, in a later sweep, which skips such a mailbox (its mark stays, so
    /// it is looked at again) and logs why.
    Sweep,
    /// Only those above each mailbox's mark, and those whose flags changed.
    NewMail,
}

/// Passes over `paths`.
async fn pass(
    cx: &AccountCtx<'_>,
    session: &mut Session,
    folders: &mut Folders,
    seen: &mut Seen,
    paths: &[FolderPath],
    reach: Reach,
    stop: &watch::Receiver<bool>,
) -> Result<(), Stopped> {
    let (account, state) = (cx.account, cx.state);
    let mut sink = std::io::sink();
    for path in paths {
        if *stop.borrow() {
            break;
        }
        let rules: Vec<&Rule> = cx.config.rules_for(&account.name, path.as_str()).collect();
        let mailbox = match folders.resolve_path(path) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(account = %account.name, mailbox = %path, "{e}");
                continue;
            }
        };
        let mark = if reach == Reach::NewMail {
            state
                .mark(&account.name, &mailbox)
                .map_err(|e| e.to_string())?
        } else {
            None
        };
        let now = chrono::Utc::now();
        let source = Source {
            path,
            mailbox: &mailbox,
            rules: &rules,
        };
        let options = ReadOptions {
            access: Access::ReadWrite,
            mark,
            now,
        };
        let planned = plan_mailbox(session, folders, account, &source, options, seen)
            .await
            .map_err(|e| format!("{mailbox}: {e}"))?;
        if let Some(why) = planned.over_limit(account) {
            if reach == Reach::First {
                return Err(Stopped::Refused(why));
            }
            tracing::error!(
                account = %account.name, %mailbox,
                "{why}; nothing is done there until `mailwarden run --account {} --no-limit` has gone ahead (check with --dry-run first), or max_actions is raised",
                account.name
            );
            continue;
        }
        if !planned.plan.entries.is_empty() {
            apply(session, folders, &planned, account, state, false, &mut sink)
                .await
                .map_err(|e| format!("{mailbox}: {e}"))?;
        }
        record(state, &account.name, &mailbox, planned.mark, seen).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// One account, until stopped.
async fn account_loop(
    config: Arc<Config>,
    account: Account,
    state: Arc<State>,
    mut stop: watch::Receiver<bool>,
) {
    let all = mailboxes_of(&config, &account.name, None);
    // The watched mailboxes that rules read; the one IDLE waits on last, so
    // that it is still selected when the pass ends.
    let mut watched: Vec<FolderPath> = account
        .watch
        .iter()
        .filter_map(|w| {
            all.iter()
                .find(|m| crate::rules::same_mailbox(m.as_str(), w))
        })
        .cloned()
        .collect();
    for w in &account.watch {
        if !watched
            .iter()
            .any(|x| crate::rules::same_mailbox(x.as_str(), w))
        {
            tracing::warn!(account = %account.name, mailbox = %w, "watched, but no rule reads it");
        }
    }
    if !watched.is_empty() {
        watched.rotate_left(1);
    }
    // Loaded once: what later passes learn is added as they go.
    let mut seen = match seen_for(&config, &account.name, Some(&state)) {
        Ok(seen) => seen,
        Err(e) => {
            tracing::error!(account = %account.name, "{e}: this account is not watched");
            return;
        }
    };
    let mut backoff = Backoff(BACKOFF_MIN);
    let mut next_sweep = Instant::now();
    // Until the first full pass has been carried out in this process.
    let mut first_pass = true;
    // The account's OAuth2 access token, kept across sessions.
    let mut tokens = crate::oauth::TokenCache::default();
    'connect: loop {
        if *stop.borrow() {
            return;
        }
        // Logging in (and a secret helper) may wait; a stop does not.
        let opened = tokio::select! {
            r = super::open_session_with(&account, &mut tokens) => r,
            _ = stop.changed() => return,
        };
        let (mut session, renew_at) = match opened {
            Ok(o) => (o.session, o.renew_at.map(Instant::from_std)),
            Err(e) => {
                let wait = backoff.next();
                tracing::error!(account = %account.name, error = %e, retry_in = ?wait, "{}", e.what());
                if sleep_or_stop(wait, &mut stop).await {
                    return;
                }
                continue 'connect;
            }
        };
        tracing::info!(account = %account.name, "connected");
        let cx = AccountCtx {
            config: &config,
            account: &account,
            state: &state,
        };
        let result: Result<(), Stopped> = async {
            let mut folders = Folders::load(&mut session)
                .await
                .map_err(|e| e.to_string())?;
            reconcile(&mut session, &state, &account.name)
                .await
                .map_err(|e| e.to_string())?;
            let mut fresh = true;
            loop {
                // After a reconnect the new mail is caught up before idling.
                if Instant::now() >= next_sweep {
                    // Folders made by others since the last sweep are seen.
                    if !std::mem::take(&mut fresh) {
                        folders = Folders::load(&mut session)
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                    let reach = if first_pass {
                        Reach::First
                    } else {
                        Reach::Sweep
                    };
                    pass(
                        &cx,
                        &mut session,
                        &mut folders,
                        &mut seen,
                        &all,
                        reach,
                        &stop,
                    )
                    .await?;
                    first_pass = false;
                    next_sweep = Instant::now() + account.sweep;
                }
                // After a sweep too, to leave the IDLE mailbox selected.
                pass(
                    &cx,
                    &mut session,
                    &mut folders,
                    &mut seen,
                    &watched,
                    Reach::NewMail,
                    &stop,
                )
                .await?;
                backoff.reset();
                if *stop.borrow() {
                    return Ok(());
                }
                // After a pass, so that even a token of short life gets one.
                if renew_at.is_some_and(|t| Instant::now() >= t) {
                    return Err(Stopped::Renew);
                }
                // Mail that arrived during the pass was announced with the
                // answer to one of its commands, and IDLE will not announce
                // it again: another pass, not a wait.
                if session.take_new_mail() {
                    continue;
                }
                let until_sweep = next_sweep.saturating_duration_since(Instant::now());
                // IDLE is left every poll_interval, for the other watched
                // mailboxes and because some servers (Courier, Cyrus
                // without idled) tell an idling client of new mail only
                // every minute or so; the pass after it asks with a NOOP.
                // Renewal is also the liveness check: a DONE that is not
                // answered within `timeout` ends the connection.
                let until_renew = renew_at.map_or(Duration::MAX, |t| {
                    t.saturating_duration_since(Instant::now())
                });
                let wait = account
                    .idle_renewal
                    .min(until_sweep)
                    .min(account.poll_interval)
                    .min(until_renew);
                if account.idle
                    && session.has(crate::imap::types::Capability::Idle)
                    && !watched.is_empty()
                {
                    let woke = session
                        .idle(wait, &mut stop)
                        .await
                        .map_err(|e| e.to_string())?;
                    tracing::debug!(account = %account.name, ?woke, "idle ended");
                    if woke == Woke::Stopped {
                        return Ok(());
                    }
                } else if sleep_or_stop(wait, &mut stop).await {
                    return Ok(());
                }
            }
        }
        .await;
        match result {
            Ok(()) => {
                session.logout().await;
                tracing::info!(account = %account.name, "stopped");
                return;
            }
            Err(Stopped::Refused(why)) => {
                session.logout().await;
                tracing::error!(
                    account = %account.name,
                    "{why}: this account is not watched. Check the plan with `mailwarden run --dry-run --account {name}`, let it go ahead once with `mailwarden run --account {name} --no-limit` (or raise max_actions), then restart watch or send it SIGHUP",
                    name = account.name
                );
                return;
            }
            Err(Stopped::Renew) => {
                session.logout().await;
                tracing::info!(account = %account.name, "the access token falls due; logging in again with a fresh one");
            }
            Err(Stopped::Lost(e)) => {
                let wait = backoff.next();
                tracing::error!(account = %account.name, error = %e, retry_in = ?wait, "connection lost or refused; reconnecting");
                if sleep_or_stop(wait, &mut stop).await {
                    return;
                }
            }
        }
    }
}

/// What the daemon is told from outside: SIGTERM or SIGINT stop it, SIGHUP
/// reloads the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Stop,
    Reload,
}

/// How long account tasks get to finish what they are doing after a stop
/// (the command they are waiting on, a logout) before they are cut off:
/// the daemon must end within 2 s whatever it waits on. Cutting a task off
/// is safe: its unfinished actions stay intended in the journal and are
/// settled on the next start.
const STOP_GRACE: Duration = Duration::from_millis(1500);

/// How long a reload lets the running passes finish before it cuts them
/// off, so that a reload does not undo the work of a long sweep.
const RELOAD_GRACE: Duration = Duration::from_secs(30);

/// Runs every account until told to stop; reloads the configuration when
/// told to (an invalid one is reported and the old one kept). `signals`
/// ending is a stop too. The same code `main` runs, driven by a channel.
pub async fn run(
    config_path: PathBuf,
    config: Config,
    state: Arc<State>,
    mut signals: tokio::sync::mpsc::Receiver<Signal>,
) -> Outcome {
    let mut config = Arc::new(config);
    loop {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks: Vec<_> = config
            .accounts
            .iter()
            .map(|a| {
                tokio::spawn(account_loop(
                    config.clone(),
                    a.clone(),
                    state.clone(),
                    stop_rx.clone(),
                ))
            })
            .collect();
        tracing::info!(accounts = tasks.len(), "watching");
        let reload = loop {
            match signals.recv().await {
                None | Some(Signal::Stop) => break None,
                Some(Signal::Reload) => match config::load(&config_path) {
                    Ok(new) => break Some(new),
                    Err(e) => tracing::error!(
                        "the new configuration is invalid; keeping the old one:\n{}",
                        e.report()
                    ),
                },
            }
        };
        let _ = stop_tx.send(true);
        let grace = if reload.is_some() {
            RELOAD_GRACE
        } else {
            STOP_GRACE
        };
        let deadline = tokio::time::Instant::now() + grace;
        for t in &mut tasks {
            if tokio::time::timeout_at(deadline, &mut *t).await.is_err() {
                tracing::warn!("an account did not stop in time; it is cut off");
                // Dropping its future closes its connection and kills a
                // secret helper it may be waiting on.
                t.abort();
                let _ = t.await;
            }
        }
        match reload {
            None => return Outcome::Success,
            Some(new) => {
                tracing::info!("configuration reloaded");
                config = Arc::new(new);
            }
        }
    }
}

/// Turns SIGTERM, SIGINT and SIGHUP into [`Signal`]s.
fn os_signals() -> std::io::Result<tokio::sync::mpsc::Receiver<Signal>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        loop {
            let s = tokio::select! {
                _ = term.recv() => Signal::Stop,
                _ = int.recv() => Signal::Stop,
                _ = hup.recv() => Signal::Reload,
            };
            if tx.send(s).await.is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

pub fn execute_command(args: &WatchArgs) -> Outcome {
    let path = args.config.resolve();
    let config = match super::load_config(&path) {
        Ok(c) => c,
        Err(outcome) => return outcome,
    };
    let state = match super::open_state(args.state.as_ref()) {
        Ok(s) => Arc::new(s),
        Err(outcome) => return outcome,
    };
    let runtime = match super::runtime(2) {
        Ok(rt) => rt,
        Err(outcome) => return outcome,
    };
    runtime.block_on(async {
        match os_signals() {
            Ok(signals) => run(path, config, state, signals).await,
            Err(e) => {
                crate::say!("mailwarden: cannot install signal handlers: {e}");
                Outcome::SomeFailed
            }
        }
    })
}
