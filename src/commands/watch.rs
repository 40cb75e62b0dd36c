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
//!
//! Each account reports to `health` as it goes (connected, lost, a pass
//! done): the status in the state file that `mailwarden status` reads, the
//! metrics (`--metrics`), and under systemd (`notify`) `READY=1` once every
//! account has made its first pass or given up, `STATUS=` lines, and
//! watchdog pings while no account task is stuck.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::pace::{Pacer, Say, Spell};
use crate::cli::{ConfigArg, Outcome};
use crate::config::{self, Account, Config};
use crate::duplicates::Seen;
use crate::health::{Health, Heartbeat, Mode};
use crate::imap::folders::Folders;
use crate::imap::{Access, Session, Woke};
use crate::notify::Notifier;
use crate::pass::{
    Carried, Planned, ReadOptions, Source, Telling, carry_out, mailboxes_of, seen_for,
};
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
    /// Serve Prometheus metrics at http://ADDR/metrics; a port alone
    /// listens on 127.0.0.1
    #[arg(long, value_name = "ADDR", value_parser = crate::metrics::parse_addr)]
    pub metrics: Option<std::net::SocketAddr>,
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

/// Logs a failure to connect, or a connection lost, as loudly as `spell`
/// says: the same failure over and over is said once (and once an hour
/// while it goes on), not at every retry.
fn complain(spell: &mut Spell, account: &str, what: &str, error: &str, retry_in: Duration) {
    match spell.failed(&format!("{what}: {error}")) {
        Say::Loud => tracing::error!(account = %account, error, ?retry_in, "{what}"),
        Say::Quiet => tracing::debug!(account = %account, error, ?retry_in, "{what}"),
        Say::Reminder { attempts, since } => tracing::warn!(
            account = %account,
            error,
            ?retry_in,
            "{what} (still, after {attempts} attempts over {} min)",
            since.as_secs() / 60
        ),
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
    health: &'a Health,
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
    let new_only = reach == Reach::NewMail;
    let mut sink = std::io::sink();
    let started = std::time::Instant::now();
    let mut done = Vec::new();
    let mut acted = false;
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
        let mark = if new_only {
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
        let before = state.last_entry_id().map_err(|e| e.to_string())?;
        // When each message acted on arrived, for the latency of new mail.
        let mut arrivals = BTreeMap::new();
        let mut undecided = 0;
        let mut collect = |p: &Planned| {
            undecided += p.plan.entries.iter().filter(|e| e.outcome.is_err()).count();
            if new_only {
                arrivals.extend(
                    p.plan
                        .entries
                        .iter()
                        .filter_map(|e| e.arrival.map(|at| (e.uid, at))),
                );
            }
        };
        let tell = Telling {
            out: &mut sink,
            json: false,
            carried: Some(&mut collect),
        };
        let carried = carry_out(
            session, folders, account, &source, options, seen, state, true, tell,
        )
        .await
        .map_err(|e| format!("{mailbox}: {}", e.error))?;
        if let Carried::Refused { why, .. } = carried {
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
        let journaled = state.entries_after(before).map_err(|e| e.to_string())?;
        acted |= count_actions(account, &arrivals, undecided, &journaled, new_only);
        done.push(mailbox.as_str().to_string());
    }
    if !*stop.borrow() {
        cx.health.pass_done(&account.name, &done, !new_only, acted);
        crate::metrics::global()
            .pass_seconds
            .get_or_create(&crate::metrics::PassLabels {
                account: account.name.clone(),
                kind: if new_only { "new" } else { "sweep" }.into(),
            })
            .observe(started.elapsed().as_secs_f64());
    }
    Ok(())
}

/// Counts what a pass journaled into the metrics: each action by rule and
/// how it ended, failures, and for new mail the time from its arrival to
/// its action. True if something was done.
fn count_actions(
    account: &Account,
    arrivals: &BTreeMap<crate::imap::types::Uid, chrono::DateTime<chrono::Utc>>,
    undecided: usize,
    journaled: &[crate::state::Entry],
    new_mail: bool,
) -> bool {
    let m = crate::metrics::global();
    let now = chrono::Utc::now();
    let mut acted = false;
    let mut timed = std::collections::BTreeSet::new();
    // Other accounts' tasks write to the same journal meanwhile.
    for e in journaled.iter().filter(|e| e.account == account.name) {
        let status = serde_json::to_value(e.status).expect("serializable");
        m.actions
            .get_or_create(&crate::metrics::ActionLabels {
                account: account.name.clone(),
                rule: e.rule.clone().unwrap_or_default(),
                action: e.action.as_str().to_string(),
                status: status.as_str().unwrap_or_default().to_string(),
            })
            .inc();
        if e.status == crate::state::Status::Done {
            acted = true;
            // A message's first action counts for its latency.
            if new_mail
                && timed.insert(e.uid)
                && let Some(uid) = crate::imap::types::Uid::new(e.uid)
                && let Some(arrived) = arrivals.get(&uid)
            {
                let took = (now - *arrived).to_std().unwrap_or_default();
                m.latency_seconds
                    .get_or_create(&crate::metrics::account(&account.name))
                    .observe(took.as_secs_f64());
            }
        }
    }
    let refused = journaled
        .iter()
        .filter(|e| e.account == account.name && e.status == crate::state::Status::Failed)
        .count();
    for _ in 0..refused {
        crate::metrics::failure(&account.name, "action");
    }
    for _ in 0..undecided {
        crate::metrics::failure(&account.name, "undecided");
    }
    acted
}

/// One account, until stopped.
async fn account_loop(
    config: Arc<Config>,
    account: Account,
    state: Arc<State>,
    health: Arc<Health>,
    heartbeat: Arc<Heartbeat>,
    pacer: Arc<Pacer>,
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
    // Failures since the last pass that went through, for the log.
    let mut spell = Spell::default();
    let mut next_sweep = Instant::now();
    // Until the first full pass has been carried out in this process.
    let mut first_pass = true;
    // Sleeps `d` unless stopped, telling the watchdog first.
    let pause = |d: Duration, stop: &mut watch::Receiver<bool>| {
        heartbeat.sleeping(d);
        let mut stop = stop.clone();
        async move { sleep_or_stop(d, &mut stop).await }
    };
    // The account's OAuth2 access token, kept across sessions.
    let mut tokens = crate::oauth::TokenCache::default();
    'connect: loop {
        if *stop.borrow() {
            return;
        }
        // Waiting for a turn behind other accounts' logins is not being
        // stuck: theirs are watched by their own heartbeats.
        heartbeat.done();
        // Logging in (and a secret helper) may wait; a stop does not.
        let opened = tokio::select! {
            r = async {
                let _turn = pacer.turn().await;
                // A secret helper, then connecting and logging in: each has
                // the account's timeout.
                heartbeat.expect_within(account.timeout * 3 + Duration::from_secs(30));
                super::open_session_with(&account, &mut tokens).await
            } => r,
            _ = stop.changed() => return,
        };
        let (mut session, renew_at) = match opened {
            Ok(o) => (o.session, o.renew_at.map(Instant::from_std)),
            Err(e) => {
                let wait = backoff.next();
                complain(&mut spell, &account.name, e.what(), &e.to_string(), wait);
                let kind = match e {
                    super::OpenError::Secret(_) => "secret",
                    super::OpenError::OAuth(_) => "oauth",
                    super::OpenError::Connect(_) => "connect",
                };
                health.failed(&account.name, kind, &format!("{}: {e}", e.what()));
                if pause(wait, &mut stop).await {
                    return;
                }
                continue 'connect;
            }
        };
        heartbeat.working();
        if spell.failing() {
            // Said once the first pass goes through: a server that takes
            // the login and then ends the session is still failing.
            tracing::debug!(account = %account.name, "connected");
        } else {
            tracing::info!(account = %account.name, "connected");
        }
        let idles = account.idle
            && session.has(crate::imap::types::Capability::Idle)
            && !watched.is_empty();
        health.connected(&account.name, if idles { Mode::Idle } else { Mode::Poll });
        let cx = AccountCtx {
            config: &config,
            account: &account,
            state: &state,
            health: &health,
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
                heartbeat.working();
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
                if let Some((attempts, over)) = spell.ended() {
                    tracing::info!(
                        account = %account.name,
                        "connected again, after {attempts} failed attempt{} over {} s",
                        if attempts == 1 { "" } else { "s" },
                        over.as_secs()
                    );
                }
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
                if idles {
                    heartbeat.waiting(wait);
                    let woke = session
                        .idle(wait, &mut stop)
                        .await
                        .map_err(|e| e.to_string())?;
                    tracing::debug!(account = %account.name, ?woke, "idle ended");
                    if woke == Woke::Stopped {
                        return Ok(());
                    }
                } else if pause(wait, &mut stop).await {
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
                health.refused(&account.name, &why);
                return;
            }
            Err(Stopped::Renew) => {
                session.logout().await;
                tracing::info!(account = %account.name, "the access token falls due; logging in again with a fresh one");
            }
            Err(Stopped::Lost(e)) => {
                let wait = backoff.next();
                complain(
                    &mut spell,
                    &account.name,
                    "connection lost or refused; reconnecting",
                    &e,
                    wait,
                );
                health.failed(&account.name, "connection_lost", &e);
                if pause(wait, &mut stop).await {
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
/// ending is a stop too. The same code `main` runs, driven by a channel;
/// systemd is told through `$NOTIFY_SOCKET` when it is set.
pub async fn run(
    config_path: PathBuf,
    config: Config,
    state: Arc<State>,
    signals: tokio::sync::mpsc::Receiver<Signal>,
) -> Outcome {
    run_with(config_path, config, state, signals, Notifier::from_env()).await
}

/// How often the loop looks at the heartbeats: twice per watchdog
/// interval, as `sd_watchdog_enabled(3)` advises, and at least every
/// [`EXTEND_EVERY`] while systemd waits for `READY=1`.
fn tick_every(watchdog: Option<Duration>) -> Duration {
    watchdog.map_or(EXTEND_EVERY, |w| (w / 2).min(EXTEND_EVERY))
}

/// Until `READY=1`, the start timeout is pushed back by twice this at
/// every tick while the accounts make progress: a first pass over a big
/// mailbox may take longer than any fixed `TimeoutStartSec=`, a stuck one
/// still runs into it.
const EXTEND_EVERY: Duration = Duration::from_secs(15);

/// One tick of the watchdog. The pings come from here, the loop that
/// watches the accounts: an account task past its heartbeat's deadline
/// stops them (and is logged once), and systemd restarts the service.
/// True if no account is stuck.
fn watchdog_tick(health: &Health, notifier: &Notifier, reported: &mut bool) -> bool {
    let stuck = health.stuck();
    if stuck.is_empty() {
        *reported = false;
        if notifier.watchdog().is_some() {
            notifier.watchdog_ping();
        }
        return true;
    }
    if !std::mem::replace(reported, true) {
        for (account, late) in &stuck {
            tracing::error!(
                account = %account,
                "the account has shown no progress for {}s past its deadline; the watchdog is no longer pinged",
                late.as_secs()
            );
        }
    }
    false
}

/// [`run`], telling `notifier`.
pub async fn run_with(
    config_path: PathBuf,
    config: Config,
    state: Arc<State>,
    mut signals: tokio::sync::mpsc::Receiver<Signal>,
    notifier: Notifier,
) -> Outcome {
    let mut config = Arc::new(config);
    let health = Health::new(state.clone());
    // One for the process: a reload's logins are paced with the rest.
    let pacer = Arc::new(Pacer::default());
    let mut changes = health.subscribe();
    let mut ticks = tokio::time::interval(tick_every(notifier.watchdog()));
    let mut ready = false;
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Reported once per stuck spell, not at every tick.
    let mut stuck_reported = false;
    loop {
        let (stop_tx, stop_rx) = watch::channel(false);
        let beats = health.begin(
            &config
                .accounts
                .iter()
                .map(|a| (a.name.clone(), a.timeout))
                .collect::<Vec<_>>(),
        );
        let mut tasks: Vec<_> = config
            .accounts
            .iter()
            .zip(beats)
            .map(|(a, beat)| {
                tokio::spawn(crate::health::with_heartbeat(
                    beat.clone(),
                    account_loop(
                        config.clone(),
                        a.clone(),
                        state.clone(),
                        health.clone(),
                        beat,
                        pacer.clone(),
                        stop_rx.clone(),
                    ),
                ))
            })
            .collect();
        tracing::info!(accounts = tasks.len(), "watching");
        let mut shown = String::new();
        let reload = loop {
            tokio::select! {
                signal = signals.recv() => match signal {
                    None | Some(Signal::Stop) => break None,
                    Some(Signal::Reload) => match config::load(&config_path) {
                        Ok(new) => break Some(new),
                        Err(e) => tracing::error!(
                            "the new configuration is invalid; keeping the old one:\n{}",
                            e.report()
                        ),
                    },
                },
                _ = changes.changed() => {
                    let summary = health.summary();
                    if !ready && health.settled() {
                        ready = true;
                        tracing::info!("every account has made its first pass or given up: ready");
                        notifier.ready(&summary);
                    } else if summary != shown {
                        notifier.status(&summary);
                    }
                    shown = summary;
                }
                _ = ticks.tick() => {
                    let moving = watchdog_tick(&health, &notifier, &mut stuck_reported);
                    if !ready && moving {
                        notifier.extend_start(EXTEND_EVERY * 2);
                    }
                }
            }
        };
        if reload.is_some() {
            notifier.reloading();
        } else {
            notifier.stopping();
        }
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
            None => {
                health.stopped();
                return Outcome::Success;
            }
            Some(new) => {
                tracing::info!("configuration reloaded");
                config = Arc::new(new);
                // RELOADING=1 was sent: READY=1 again once the accounts
                // have made their first pass with the new configuration.
                ready = false;
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

/// Each account holds a socket; past about a thousand accounts that is
/// more than the usual soft limit of 1,024 open files. The soft limit is
/// raised to what the accounts need, up to the hard one (as systemd advises
/// services to do for themselves, see `systemd.exec(5)`, LimitNOFILE=),
/// and the user is told when even that is short. At start only: a reload
/// that adds accounts past the limit is told so by the failures to connect.
fn open_files_for(accounts: usize) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    // Sockets, the state file with its WAL, standard streams, a secret
    // helper's pipes, the metrics listener: a margin above one per account.
    let need = accounts as u64 + 64;
    let limit = getrlimit(Resource::Nofile);
    let (Some(soft), hard) = (limit.current, limit.maximum) else {
        return;
    };
    if soft >= need {
        return;
    }
    let raised = hard.map_or(need, |h| h.min(need));
    if raised > soft
        && let Err(e) = setrlimit(
            Resource::Nofile,
            rustix::process::Rlimit {
                current: Some(raised),
                maximum: hard,
            },
        )
    {
        tracing::warn!("cannot raise the open-files limit from {soft}: {e}");
    }
    let now = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    if now < need {
        tracing::warn!(
            "{accounts} accounts need about {need} open files, and the limit is {now}: raise it (ulimit -n, or LimitNOFILE= in the systemd unit)"
        );
    }
}

pub fn execute_command(args: &WatchArgs) -> Outcome {
    let path = args.config.resolve();
    let config = match super::load_config(&path) {
        Ok(c) => c,
        Err(outcome) => return outcome,
    };
    open_files_for(config.accounts.len());
    let state = match super::open_state(args.state.as_ref()) {
        Ok(s) => Arc::new(s),
        Err(outcome) => return outcome,
    };
    let runtime = match super::runtime(2) {
        Ok(rt) => rt,
        Err(outcome) => return outcome,
    };
    runtime.block_on(async {
        // Bound before anything else, so that an address in use is an
        // error at start, not a warning nobody reads.
        let (metrics_stop, metrics_rx) = watch::channel(false);
        if let Some(addr) = args.metrics {
            match tokio::net::TcpListener::bind(addr).await {
                Ok(listener) => {
                    if !addr.ip().is_loopback() {
                        tracing::warn!(%addr, "metrics are served beyond this machine");
                    }
                    tracing::info!(
                        "metrics at http://{}/metrics",
                        listener.local_addr().map_or(addr, |a| a)
                    );
                    tokio::spawn(crate::metrics::serve(listener, metrics_rx));
                }
                Err(e) => {
                    crate::say!("mailwarden: cannot serve metrics on {addr}: {e}");
                    return Outcome::ConfigInvalid;
                }
            }
        }
        let outcome = match os_signals() {
            Ok(signals) => run(path, config, state, signals).await,
            Err(e) => {
                crate::say!("mailwarden: cannot install signal handlers: {e}");
                Outcome::SomeFailed
            }
        };
        let _ = metrics_stop.send(true);
        outcome
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn a_stuck_account_task_stops_the_watchdog_pings() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("notify");
        let systemd = UnixDatagram::bind(&socket).unwrap();
        systemd.set_nonblocking(true).unwrap();
        let notifier = Notifier::new(socket.to_str(), Some("2000000"), None, 1);
        let state = Arc::new(State::open(&dir.path().join("s.db")).unwrap());
        let health = Health::new(state);
        let beats = health.begin(&[
            ("busy".into(), Duration::from_secs(60)),
            ("stuck".into(), Duration::from_secs(60)),
        ]);
        let pings = || {
            let mut buf = [0u8; 256];
            let mut n = 0;
            while let Ok(len) = systemd.recv(&mut buf) {
                assert_eq!(&buf[..len], b"WATCHDOG=1");
                n += 1;
            }
            n
        };
        let mut reported = false;
        assert!(watchdog_tick(&health, &notifier, &mut reported));
        assert_eq!(pings(), 1);
        // One task promised to show life at once and did not.
        beats[1].expect_within(Duration::ZERO);
        std::thread::sleep(Duration::from_millis(10));
        for _ in 0..3 {
            beats[0].working();
            assert!(!watchdog_tick(&health, &notifier, &mut reported));
        }
        assert_eq!(pings(), 0);
        assert!(reported);
        // It moves again: the pings resume.
        beats[1].working();
        watchdog_tick(&health, &notifier, &mut reported);
        assert_eq!(pings(), 1);
        assert!(!reported);
        // A task waiting for the user (refused) or ended is not stuck.
        beats[1].expect_within(Duration::ZERO);
        health.refused("stuck", "over max_actions");
        watchdog_tick(&health, &notifier, &mut reported);
        assert_eq!(pings(), 1);
    }
}
