//! How the daemon's accounts are doing, kept in three places at once: the
//! state file (for `mailwarden status`, written when something changes),
//! the metrics (`metrics`), and the summary systemd shows (`notify`). Also
//! each account task's heartbeat, which the watchdog reads. Used by
//! `commands::watch`; the IMAP session reports each command here.
//!
//! A heartbeat is a deadline: before each step an account task says how
//! long the step may take (a command: a few times the account's `timeout`,
//! since every read has that deadline; an IDLE: its length and then some;
//! a backoff: its length), and every IMAP command answered moves the
//! deadline on. A task past its deadline is stuck: `watch` stops pinging
//! the systemd watchdog, which restarts the service.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};

use crate::metrics;
use crate::state::{AccountStatus, State};

/// What every deadline is measured from.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn now_ms() -> u64 {
    EPOCH.elapsed().as_millis() as u64
}

/// Time for what a step does besides waiting on the server (deciding
/// messages, writing the state file).
const SLACK: Duration = Duration::from_secs(30);

/// One account task's promise of when it will next show progress.
#[derive(Debug)]
pub struct Heartbeat {
    /// Milliseconds since [`EPOCH`]; `u64::MAX`: nothing expected (the
    /// task has ended, or waits for the user).
    deadline: AtomicU64,
    /// How long a command may take: a few times the account's `timeout`.
    working: Duration,
}

impl Heartbeat {
    pub fn new(timeout: Duration) -> Heartbeat {
        let working = timeout * 2 + SLACK;
        let h = Heartbeat {
            deadline: AtomicU64::new(0),
            working,
        };
        h.expect_within(working);
        h
    }

    /// The next sign of life is due within `d`.
    pub fn expect_within(&self, d: Duration) {
        let at = now_ms().saturating_add(d.as_millis() as u64);
        self.deadline.store(at, Ordering::Relaxed);
    }

    /// A command answered, or a step begun that talks to the server.
    pub fn working(&self) {
        self.expect_within(self.working);
    }

    /// About to wait `d` for the server (IDLE): then its answer to DONE.
    pub fn waiting(&self, d: Duration) {
        self.expect_within(d + self.working);
    }

    /// About to sleep `d` (polling, backoff).
    pub fn sleeping(&self, d: Duration) {
        self.expect_within(d + SLACK);
    }

    /// Nothing more is expected of the task (it ended, or it waits for
    /// the user, or for a turn that other tasks' progress gives it: a
    /// login slot, which their own heartbeats watch).
    pub fn done(&self) {
        self.deadline.store(u64::MAX, Ordering::Relaxed);
    }

    /// How long past its deadline the task is, if it is.
    pub fn overdue(&self) -> Option<Duration> {
        let (deadline, now) = (self.deadline.load(Ordering::Relaxed), now_ms());
        (now > deadline).then(|| Duration::from_millis(now - deadline))
    }
}

tokio::task_local! {
    /// The heartbeat of the account task this code runs in.
    static CURRENT: Arc<Heartbeat>;
}

/// Runs `task` with `heartbeat` as its current one.
pub async fn with_heartbeat<F: std::future::Future>(
    heartbeat: Arc<Heartbeat>,
    task: F,
) -> F::Output {
    CURRENT.scope(heartbeat, task).await
}

/// Called by the IMAP session for every command answered: its duration
/// goes to the metrics, and the account task it runs in has shown life.
pub fn command_done(command: &str, took: Duration) {
    metrics::global()
        .command_seconds
        .get_or_create(&metrics::CommandLabel {
            command: command.to_string(),
        })
        .observe(took.as_secs_f64());
    let _ = CURRENT.try_with(|h| h.working());
}

/// RFC 3339 to the second, UTC: how the status records times.
pub fn timestamp() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// How an account waits for new mail once connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Idle,
    Poll,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Idle => "idle",
            Mode::Poll => "poll",
        }
    }
}

struct Entry {
    status: AccountStatus,
    heartbeat: Arc<Heartbeat>,
    /// The first pass is done, or the account gave up on it (an error, a
    /// refusal): what `READY=1` waits for.
    settled: bool,
    ever_connected: bool,
    /// When the last pass was written to the state file: a pass that acts
    /// on nothing is written at most once a minute.
    pass_written: Option<Instant>,
    mailbox_written: BTreeMap<String, Instant>,
}

/// The health of every account of one `watch`.
pub struct Health {
    state: Arc<State>,
    pid: u32,
    accounts: Mutex<BTreeMap<String, Entry>>,
    /// Bumped on every change the summary may show.
    changed: tokio::sync::watch::Sender<u64>,
}

/// Up to this many accounts, the summary names each; beyond, only (this
/// many of) those not connected.
const SUMMARY_NAMES: usize = 8;

/// How often an unchanged pass is written to the state file.
const PASS_WRITE_EVERY: Duration = Duration::from_secs(60);

impl Health {
    pub fn new(state: Arc<State>) -> Arc<Health> {
        Arc::new(Health {
            state,
            pid: std::process::id(),
            accounts: Mutex::new(BTreeMap::new()),
            changed: tokio::sync::watch::channel(0).0,
        })
    }

    /// A receiver told of every change.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        self.accounts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts (or, after a reload, restarts) the accounts `names` with their
    /// `timeout`s: the others are forgotten, here and in the state file.
    /// Returns each account's heartbeat, in the order given.
    pub fn begin(&self, accounts: &[(String, Duration)]) -> Vec<Arc<Heartbeat>> {
        let mut map = self.lock();
        map.retain(|name, _| accounts.iter().any(|(n, _)| n == name));
        let names: Vec<&str> = accounts.iter().map(|(n, _)| n.as_str()).collect();
        if let Err(e) = self.state.forget_status_except(&names) {
            tracing::warn!("cannot record the status: {e}");
        }
        let since = timestamp();
        let beats = accounts
            .iter()
            .map(|(name, timeout)| {
                let heartbeat = Arc::new(Heartbeat::new(*timeout));
                let entry = map.entry(name.clone()).or_insert_with(|| Entry {
                    status: AccountStatus {
                        account: name.clone(),
                        pid: self.pid,
                        state: String::new(),
                        since: since.clone(),
                        mode: None,
                        last_pass: None,
                        last_sweep: None,
                        last_error: None,
                        last_error_time: None,
                        errors_in_row: 0,
                        reconnects: 0,
                    },
                    heartbeat: heartbeat.clone(),
                    settled: false,
                    ever_connected: false,
                    pass_written: None,
                    mailbox_written: BTreeMap::new(),
                });
                entry.heartbeat = heartbeat.clone();
                entry.settled = false;
                entry.status.state = "connecting".into();
                entry.status.since = since.clone();
                metrics::global()
                    .connected
                    .get_or_create(&metrics::account(name))
                    .set(0);
                heartbeat
            })
            .collect();
        for e in map.values() {
            self.write(&e.status);
        }
        drop(map);
        self.changed.send_modify(|n| *n += 1);
        beats
    }

    fn write(&self, s: &AccountStatus) {
        if let Err(e) = self.state.put_account_status(s) {
            tracing::warn!(account = %s.account, "cannot record the status: {e}");
        }
    }

    /// Changes `account`'s entry; `write`: record it in the state file.
    fn update(&self, account: &str, write: bool, f: impl FnOnce(&mut Entry)) {
        let mut map = self.lock();
        let Some(entry) = map.get_mut(account) else {
            return;
        };
        f(entry);
        if write {
            self.write(&entry.status);
        }
        drop(map);
        self.changed.send_modify(|n| *n += 1);
    }

    /// Logged in, waiting for new mail by `mode`.
    pub fn connected(&self, account: &str, mode: Mode) {
        let m = metrics::global();
        m.connected.get_or_create(&metrics::account(account)).set(1);
        self.update(account, true, |e| {
            if e.ever_connected {
                e.status.reconnects += 1;
                m.reconnects.get_or_create(&metrics::account(account)).inc();
            }
            e.ever_connected = true;
            e.status.state = "connected".into();
            e.status.since = timestamp();
            e.status.mode = Some(mode.as_str().into());
        });
    }

    /// Could not connect, or the connection was lost: `kind` for the
    /// failure metric, `error` for the status.
    pub fn failed(&self, account: &str, kind: &str, error: &str) {
        metrics::failure(account, kind);
        metrics::global()
            .connected
            .get_or_create(&metrics::account(account))
            .set(0);
        self.update(account, true, |e| {
            let now = timestamp();
            if e.status.state != "disconnected" {
                e.status.since = now.clone();
            }
            e.status.state = "disconnected".into();
            e.status.last_error = Some(error.to_string());
            e.status.last_error_time = Some(now);
            e.status.errors_in_row += 1;
            e.settled = true;
        });
    }

    /// The first pass would act on more messages than `max_actions`: the
    /// account is not watched until the user lets it.
    pub fn refused(&self, account: &str, why: &str) {
        metrics::failure(account, "max_actions");
        metrics::global()
            .connected
            .get_or_create(&metrics::account(account))
            .set(0);
        self.update(account, true, |e| {
            let now = timestamp();
            e.status.state = "refused".into();
            e.status.since = now.clone();
            e.status.last_error = Some(why.to_string());
            e.status.last_error_time = Some(now);
            e.status.errors_in_row += 1;
            e.settled = true;
            e.heartbeat.done();
        });
    }

    /// A pass completed over `mailboxes` (server names); `sweep`: a full
    /// one; `acted`: it did something. Written to the state file when it
    /// is a sweep, acted, or the last write is a minute old.
    pub fn pass_done(&self, account: &str, mailboxes: &[String], sweep: bool, acted: bool) {
        let now = Instant::now();
        let time = timestamp();
        let stale =
            |at: Option<&Instant>| at.is_none_or(|t| now.duration_since(*t) >= PASS_WRITE_EVERY);
        let mut write_mailboxes = Vec::new();
        self.update(account, false, |e| {
            let first = !e.settled;
            e.settled = true;
            e.status.errors_in_row = 0;
            e.status.last_pass = Some(time.clone());
            if sweep {
                e.status.last_sweep = Some(time.clone());
                metrics::global()
                    .last_sweep
                    .get_or_create(&metrics::account(account))
                    .set(Utc::now().timestamp());
            }
            for m in mailboxes {
                if sweep || acted || stale(e.mailbox_written.get(m)) {
                    e.mailbox_written.insert(m.clone(), now);
                    write_mailboxes.push(m.clone());
                }
            }
            if first || sweep || acted || stale(e.pass_written.as_ref()) {
                e.pass_written = Some(now);
                self.write(&e.status);
            }
        });
        for m in write_mailboxes {
            if let Err(e) = self.state.put_mailbox_pass(account, &m, &time, sweep) {
                tracing::warn!(account, mailbox = %m, "cannot record the status: {e}");
            }
        }
    }

    /// Every account of this process has stopped.
    pub fn stopped(&self) {
        let mut map = self.lock();
        for e in map.values_mut() {
            e.status.state = "stopped".into();
            e.heartbeat.done();
            metrics::global()
                .connected
                .get_or_create(&metrics::account(&e.status.account))
                .set(0);
        }
        drop(map);
        if let Err(e) = self.state.stop_status(self.pid, &timestamp()) {
            tracing::warn!("cannot record the status: {e}");
        }
    }

    /// Whether every account has made its first pass or given up on it.
    pub fn settled(&self) -> bool {
        self.lock().values().all(|e| e.settled)
    }

    /// The accounts past their heartbeat's deadline, and by how much.
    pub fn stuck(&self) -> Vec<(String, Duration)> {
        self.lock()
            .iter()
            .filter_map(|(name, e)| e.heartbeat.overdue().map(|d| (name.clone(), d)))
            .collect()
    }

    /// One line for systemd's status: each account's state in a few words.
    pub fn summary(&self) -> String {
        let map = self.lock();
        let connected = map
            .values()
            .filter(|e| e.status.state == "connected")
            .count();
        // With many accounts, the line names only those not connected, and
        // a few of them: systemd keeps a short status.
        let many = map.len() > SUMMARY_NAMES;
        let mut parts = Vec::new();
        let mut left_out = 0;
        for e in map.values() {
            let s = &e.status;
            if many && s.state == "connected" {
                continue;
            }
            if parts.len() == SUMMARY_NAMES {
                left_out += 1;
                continue;
            }
            let mut part = format!("{}: {}", s.account, s.state);
            if s.state == "connected"
                && let Some(mode) = &s.mode
            {
                part.push_str(&format!(" ({mode})"));
            }
            if s.state != "connected"
                && let Some(err) = &s.last_error
            {
                let mut short: String = err.chars().take(80).collect();
                if short.len() < err.len() {
                    short.push('…');
                }
                part.push_str(&format!(" ({short})"));
            }
            parts.push(part);
        }
        if left_out > 0 {
            parts.push(format!("{left_out} more not connected"));
        }
        let mut line = format!(
            "{connected} of {} account{} connected",
            map.len(),
            if map.len() == 1 { "" } else { "s" },
        );
        if !parts.is_empty() {
            line.push_str("; ");
            line.push_str(&parts.join("; "));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heartbeat_is_overdue_only_past_its_deadline() {
        let h = Heartbeat::new(Duration::from_secs(60));
        assert_eq!(h.overdue(), None);
        h.expect_within(Duration::ZERO);
        std::thread::sleep(Duration::from_millis(20));
        assert!(h.overdue().is_some());
        h.waiting(Duration::from_secs(300));
        assert_eq!(h.overdue(), None);
        h.expect_within(Duration::ZERO);
        h.done();
        assert_eq!(h.overdue(), None);
    }

    #[tokio::test]
    async fn a_command_answered_moves_the_deadline_of_its_own_task_only() {
        let mine = Arc::new(Heartbeat::new(Duration::from_secs(1)));
        let other = Arc::new(Heartbeat::new(Duration::from_secs(1)));
        mine.expect_within(Duration::ZERO);
        other.expect_within(Duration::ZERO);
        tokio::time::sleep(Duration::from_millis(20)).await;
        with_heartbeat(mine.clone(), async {
            command_done("NOOP", Duration::from_millis(3));
        })
        .await;
        assert_eq!(mine.overdue(), None);
        assert!(other.overdue().is_some());
    }

    #[test]
    fn with_many_accounts_the_summary_names_a_few_not_connected() {
        let dir = tempfile::tempdir().unwrap();
        let health = Health::new(Arc::new(State::open(&dir.path().join("s.db")).unwrap()));
        let names: Vec<(String, Duration)> = (0..1000)
            .map(|n| (format!("a{n:04}"), Duration::from_secs(60)))
            .collect();
        health.begin(&names);
        for (n, (name, _)) in names.iter().enumerate() {
            if n % 100 == 0 {
                health.failed(name, "connect", "NO [LIMIT] too many");
            } else {
                health.connected(name, Mode::Idle);
            }
        }
        assert_eq!(
            health.summary(),
            "990 of 1000 accounts connected; a0000: disconnected (NO [LIMIT] too many); \
             a0100: disconnected (NO [LIMIT] too many); a0200: disconnected (NO [LIMIT] too many); \
             a0300: disconnected (NO [LIMIT] too many); a0400: disconnected (NO [LIMIT] too many); \
             a0500: disconnected (NO [LIMIT] too many); a0600: disconnected (NO [LIMIT] too many); \
             a0700: disconnected (NO [LIMIT] too many); 2 more not connected"
        );
        for (name, _) in names.iter().step_by(100) {
            health.connected(name, Mode::Idle);
        }
        assert_eq!(health.summary(), "1000 of 1000 accounts connected");
    }

    #[test]
    fn status_is_recorded_as_it_changes_and_summarised() {
        let dir = tempfile::tempdir().unwrap();
        let state = Arc::new(State::open(&dir.path().join("s.db")).unwrap());
        let health = Health::new(state.clone());
        let beats = health.begin(&[
            ("a".into(), Duration::from_secs(60)),
            ("b".into(), Duration::from_secs(60)),
        ]);
        assert_eq!(beats.len(), 2);
        assert!(!health.settled());
        health.connected("a", Mode::Idle);
        health.pass_done("a", &["INBOX".into()], true, false);
        health.failed("b", "connect", "cannot connect to x: refused");
        assert!(health.settled());
        assert_eq!(
            health.summary(),
            "1 of 2 accounts connected; a: connected (idle); b: disconnected (cannot connect to x: refused)"
        );
        let rows = state.account_statuses().unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (
                rows[0].state.as_str(),
                rows[0].mode.as_deref(),
                rows[0].errors_in_row
            ),
            ("connected", Some("idle"), 0)
        );
        assert!(rows[0].last_sweep.is_some());
        assert_eq!(
            (rows[1].state.as_str(), rows[1].errors_in_row),
            ("disconnected", 1)
        );
        // Reconnecting counts; a completed pass clears the run of errors.
        health.failed("a", "connection_lost", "gone");
        health.connected("a", Mode::Poll);
        let a = &state.account_statuses().unwrap()[0];
        assert_eq!((a.reconnects, a.errors_in_row), (1, 1));
        let boxes = state.mailbox_statuses().unwrap();
        assert_eq!(boxes.len(), 1);
        assert_eq!(boxes[0].last_pass, boxes[0].last_sweep);
        // A reload without b forgets it.
        health.begin(&[("a".into(), Duration::from_secs(60))]);
        assert_eq!(state.account_statuses().unwrap().len(), 1);
        health.stopped();
        assert_eq!(state.account_statuses().unwrap()[0].state, "stopped");
    }
}
