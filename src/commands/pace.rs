//! How `watch` starts many accounts without storming their servers, and
//! how an account that cannot connect retries without filling the log.
//! Used by `commands::watch` around every connection attempt.
//!
//! Logins are paced: at most [`LOGINS_AT_ONCE`] in progress, each start at
//! least [`START_GAP`] after the one before. A thousand accounts are then
//! logged in within seconds, yet the server sees a few logins at a time (a
//! TLS handshake and an authentication each cost it a process or a thread),
//! and a restarted server is not met by every account at once.

use std::time::Duration;

use tokio::sync::{Mutex, Semaphore, SemaphorePermit};
use tokio::time::Instant;

/// Logins in progress at once, over all accounts of one process.
pub const LOGINS_AT_ONCE: usize = 8;

/// The least time between two connection starts.
pub const START_GAP: Duration = Duration::from_millis(4);

/// Hands out turns to connect.
pub struct Pacer {
    logins: Semaphore,
    next_start: Mutex<Instant>,
    gap: Duration,
}

/// A turn to connect and log in; the next waiting account may start when
/// it is dropped (logged in or failed).
pub struct Turn<'a> {
    _permit: SemaphorePermit<'a>,
}

impl Pacer {
    pub fn new(at_once: usize, gap: Duration) -> Pacer {
        Pacer {
            logins: Semaphore::new(at_once.max(1)),
            next_start: Mutex::new(Instant::now()),
            gap,
        }
    }

    /// Waits for a turn: a free login slot, then the start gap.
    pub async fn turn(&self) -> Turn<'_> {
        let permit = self
            .logins
            .acquire()
            .await
            .expect("the pacer's semaphore is never closed");
        let at = {
            let mut next = self.next_start.lock().await;
            let at = (*next).max(Instant::now());
            *next = at + self.gap;
            at
        };
        tokio::time::sleep_until(at).await;
        Turn { _permit: permit }
    }
}

impl Default for Pacer {
    fn default() -> Pacer {
        Pacer::new(LOGINS_AT_ONCE, START_GAP)
    }
}

/// How loudly to report a failure to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Say {
    /// The first failure of a spell, or one unlike the one before: an
    /// error line.
    Loud,
    /// The same failure again: a debug line only.
    Quiet,
    /// The same failure for [`REMIND_EVERY`] since the last line above
    /// debug: a warning that it goes on, with how many attempts.
    Reminder { attempts: u32, since: Duration },
}

/// How often a failure that goes on is mentioned again.
pub const REMIND_EVERY: Duration = Duration::from_secs(3600);

/// One account's run of failures to connect (or to keep a connection until
/// its first pass is done), for deciding what reaches the log. A server
/// that refuses sessions past its limit (Dovecot's
/// `mail_max_userip_connections`, a hosting panel's cap) refuses the same
/// way at every retry: one line says so, and the next lines come only when
/// the error changes, once an hour while it goes on, and when the account
/// gets through.
#[derive(Debug, Default)]
pub struct Spell {
    current: Option<Current>,
}

#[derive(Debug)]
struct Current {
    error: String,
    began: Instant,
    last_said: Instant,
    attempts: u32,
}

impl Spell {
    /// A failure with text `error`, now.
    pub fn failed(&mut self, error: &str) -> Say {
        self.failed_at(error, Instant::now())
    }

    fn failed_at(&mut self, error: &str, now: Instant) -> Say {
        match &mut self.current {
            Some(c) if c.error == error => {
                c.attempts += 1;
                if now.duration_since(c.last_said) >= REMIND_EVERY {
                    c.last_said = now;
                    Say::Reminder {
                        attempts: c.attempts,
                        since: now.duration_since(c.began),
                    }
                } else {
                    Say::Quiet
                }
            }
            other => {
                let (began, attempts) = other
                    .as_ref()
                    .map_or((now, 1), |c| (c.began, c.attempts + 1));
                *other = Some(Current {
                    error: error.to_string(),
                    began,
                    last_said: now,
                    attempts,
                });
                Say::Loud
            }
        }
    }

    /// Whether failures have been reported since the last success.
    pub fn failing(&self) -> bool {
        self.current.is_some()
    }

    /// The account got through: how many attempts failed before, and over
    /// how long, if any did.
    pub fn ended(&mut self) -> Option<(u32, Duration)> {
        self.current.take().map(|c| (c.attempts, c.began.elapsed()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_repeated_is_said_once_then_reminded_hourly() {
        let t0 = Instant::now();
        let mut s = Spell::default();
        let refused = "NO [LIMIT] too many connections";
        let table: &[(u64, &str, Say)] = &[
            (0, refused, Say::Loud),
            (1, refused, Say::Quiet),
            (3, refused, Say::Quiet),
            (3599, refused, Say::Quiet),
            (
                3600,
                refused,
                Say::Reminder {
                    attempts: 5,
                    since: Duration::from_secs(3600),
                },
            ),
            (3700, refused, Say::Quiet),
            // Another error is news; so is the first one coming back.
            (3800, "connection refused", Say::Loud),
            (3801, "connection refused", Say::Quiet),
            (3900, refused, Say::Loud),
        ];
        for (at, error, want) in table {
            assert_eq!(
                s.failed_at(error, t0 + Duration::from_secs(*at)),
                *want,
                "at {at} s: {error}"
            );
        }
        assert!(s.failing());
        let (attempts, _) = s.ended().unwrap();
        assert_eq!(attempts, 9);
        assert!(!s.failing());
        assert_eq!(s.ended(), None);
        assert_eq!(s.failed_at(refused, t0), Say::Loud);
    }

    #[tokio::test(start_paused = true)]
    async fn turns_are_spaced_and_few_at_once() {
        let pacer = std::sync::Arc::new(Pacer::new(2, Duration::from_millis(10)));
        let t0 = Instant::now();
        let in_flight = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let (pacer, in_flight, most) = (pacer.clone(), in_flight.clone(), most.clone());
            tasks.push(tokio::spawn(async move {
                let _turn = pacer.turn().await;
                let started = Instant::now();
                let now = in_flight.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                most.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                // A login that takes 100 ms.
                tokio::time::sleep(Duration::from_millis(100)).await;
                in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                started
            }));
        }
        let mut starts = Vec::new();
        for t in tasks {
            starts.push(t.await.unwrap().duration_since(t0));
        }
        starts.sort();
        assert_eq!(most.load(std::sync::atomic::Ordering::SeqCst), 2);
        // Two at once, 10 ms apart; the next two when the first finish.
        let ms: Vec<u128> = starts.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [0, 10, 100, 110, 200, 210]);
    }
}
