//! Benchmark: from arrival to action under `mailwarden watch`.
//!
//! `cargo bench --bench latency` (needs dovecot-imapd). Puts a few thousand
//! messages in the watched INBOX, starts `mailwarden watch`, then appends
//! messages one at a time from a second connection and measures, for each,
//! the time from the APPEND's completion until the message is in its target
//! folder (polled with STATUS every 2 ms on a third connection). Prints
//! p50, p90, p99 and the maximum, next to the same figures for the server alone:
//! how long after an APPEND an idling connection hears EXISTS (Dovecot
//! delays IDLE notifications by about half a second). The difference is
//! mailwarden's own share. `MAILWARDEN_BENCH_BACKLOG` and
//! `MAILWARDEN_BENCH_ARRIVALS` change the counts.

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{mail, percentiles, server_notification};
use mailwarden::imap::Access;
use support::{FULL, server};

const RULES: &str = "  - name: GitHub\n    match: { from: { domain: github.com } }\n    actions: [move: Notifications]\n";

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (backlog, arrivals) = (
        env("MAILWARDEN_BENCH_BACKLOG", 3000),
        env("MAILWARDEN_BENCH_ARRIVALS", 50),
    );
    let user = server().user();
    let old: Vec<Vec<u8>> = (0..backlog)
        .map(|i| mail(&format!("old{i}@x"), "friend@example.net"))
        .collect();
    user.deliver_many("INBOX", &old);
    let mut writer = user.conn(FULL).await;
    writer
        .create(&mailwarden::imap::types::Mailbox::verbatim("Notifications"))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = user.config(dir.path(), FULL, "    max_actions: unlimited\n", RULES);
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_mailwarden"))
        .args(["watch", "-c"])
        .arg(&cfg)
        .env("MAILWARDEN_TEST_PASSWORD", &user.password)
        .env("XDG_STATE_HOME", user.state_home())
        .env("MAILWARDEN_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Let the first pass over the backlog finish and IDLE begin.
    let mut watcher = user.conn(FULL).await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let mut times = Vec::with_capacity(arrivals);
    for i in 0..arrivals {
        writer
            .append(
                &mailwarden::imap::types::Mailbox::inbox(),
                &[],
                None,
                &mail(&format!("new{i}@x"), "notifications@github.com"),
            )
            .await
            .unwrap();
        let t0 = Instant::now();
        let mut arrived = false;
        while t0.elapsed() < Duration::from_secs(10) {
            if watcher
                .open(
                    &mailwarden::imap::types::Mailbox::verbatim("Notifications"),
                    Access::ReadOnly,
                )
                .await
                .unwrap()
                .exists as usize
                == i + 1
            {
                arrived = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert!(arrived, "message {i} was not moved within 10 s");
        times.push(t0.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status();
    let _ = daemon.wait();
    let ours = percentiles(times);
    let alone = percentiles(server_notification(arrivals.min(20)).await);
    println!("{arrivals} arrivals into an INBOX of {backlog} messages, Dovecot on loopback:");
    for (what, s) in [
        ("server alone, APPEND to EXISTS while idling:     ", &alone),
        ("mailwarden watch, APPEND to moved (2 ms polling):", &ours),
    ] {
        println!(
            "  {what} p50 {:6.1} ms  p90 {:6.1} ms  p99 {:6.1} ms  max {:6.1} ms",
            s.p50, s.p90, s.p99, s.max
        );
    }
    println!(
        "  mailwarden's own share at p50: {:.1} ms",
        ours.p50 - alone.p50
    );
}
