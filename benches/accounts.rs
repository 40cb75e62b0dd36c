//! Benchmark: many accounts in one `mailwarden watch`.
//!
//! `cargo bench --bench accounts` (needs dovecot-imapd). For each size in
//! `MAILWARDEN_BENCH_ACCOUNTS` (default `100,250,500,1000`), that many
//! Dovecot users each get one account in one configuration, with one rule
//! that no `account:` limits (so it is every account's). It starts
//! `mailwarden watch` and measures:
//!
//! - start: until every account is connected, has made its first pass
//!   (`READY=1`, read from a `NOTIFY_SOCKET` as systemd would) and idles;
//! - memory: peak RSS of the process (VmHWM), per account;
//! - arrival to action: one new message per account, appended from another
//!   connection at `MAILWARDEN_BENCH_RATE` per second (default 100), timed
//!   from the APPEND's completion to the log line of its move; next to it,
//!   how long the server itself takes to tell an idling client of new mail
//!   (measured while all those sessions idle);
//! - stop: from SIGTERM to exit, and the exit code.
//!
//! Dovecot's limits are raised in its throwaway configuration (processes,
//! clients). Each idling imap process takes an inotify instance; past
//! `fs.inotify.max_user_instances` (128 by default) Dovecot checks idling
//! mailboxes only every 30 s, so as root the bench raises it first.

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::{Spread, mail, percentiles, server_notification};
use support::{FULL, Raw, Settings, User, server};

const RULES: &str = "rules:\n  - name: GitHub\n    match: { from: { domain: github.com } }\n    actions: [move: Notifications]\n";

/// The daemon's standard error, line by line, with when each was read.
type Lines = Arc<Mutex<Vec<(Instant, String)>>>;

struct Row {
    accounts: usize,
    connected: f64,
    ready: f64,
    idling: f64,
    rss_idle_kib: u64,
    peak_kib: u64,
    arrival: Spread,
    server: Spread,
    stop: f64,
    exit: Option<i32>,
    loud: usize,
}

fn status_kib(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Waits (at most `max`) until `count` lines contain `needle`; when the
/// last of them was read.
fn wait_lines(lines: &Lines, needle: &str, count: usize, max: Duration) -> Option<Instant> {
    let t0 = Instant::now();
    while t0.elapsed() < max {
        {
            let l = lines.lock().unwrap();
            let hits: Vec<Instant> = l
                .iter()
                .filter(|(_, s)| s.contains(needle))
                .map(|(t, _)| *t)
                .collect();
            if hits.len() >= count {
                return Some(hits[count - 1]);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn spawn_daemon(
    users: &[User],
    cfg: &std::path::Path,
    state: &std::path::Path,
) -> (Child, Lines, Arc<Mutex<Option<Instant>>>) {
    let socket_path = state.join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    let ready = Arc::new(Mutex::new(None));
    let ready_at = ready.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = socket.recv(&mut buf) {
            if String::from_utf8_lossy(&buf[..n])
                .lines()
                .any(|l| l == "READY=1")
            {
                ready_at.lock().unwrap().get_or_insert(Instant::now());
            }
        }
    });
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mailwarden"));
    cmd.args(["watch", "-c"])
        .arg(cfg)
        .env("XDG_STATE_HOME", state)
        .env("NOTIFY_SOCKET", &socket_path)
        // Each move at info; the session's own lines ("idle started").
        .env("MAILWARDEN_LOG", "info,mailwarden::imap::session=debug")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (i, u) in users.iter().enumerate() {
        cmd.env(format!("MW_PW_{i}"), &u.password);
    }
    let mut child = cmd.spawn().unwrap();
    let lines: Lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push((Instant::now(), line));
        }
    });
    (child, lines, ready)
}

async fn one_size(n: usize, rate: f64) -> Row {
    let users: Vec<User> = (0..n).map(|_| server().user()).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = String::from("version: 1\naccounts:\n");
    for (i, u) in users.iter().enumerate() {
        cfg.push_str(&format!(
            "  a{i:04}:\n    host: \"{FULL}\"\n    port: {}\n    tls: none\n    username: {}\n    password_env: MW_PW_{i}\n",
            server().plain_port,
            u.name
        ));
    }
    cfg.push_str(RULES);
    let cfg_path = dir.path().join("config.yaml");
    std::fs::write(&cfg_path, cfg).unwrap();

    let t0 = Instant::now();
    let (mut child, lines, ready) = spawn_daemon(&users, &cfg_path, dir.path());
    let pid = child.id();
    let within = Duration::from_secs(120);
    let secs = |t: Option<Instant>, what: &str| -> f64 {
        t.unwrap_or_else(|| panic!("{n} accounts: not all {what} within {within:?}"))
            .duration_since(t0)
            .as_secs_f64()
    };
    let connected = secs(
        wait_lines(&lines, "INFO connected account=", n, within),
        "connected",
    );
    let idling = secs(wait_lines(&lines, "idle started", n, within), "idling");
    let ready = {
        let deadline = Instant::now() + within;
        loop {
            if let Some(t) = *ready.lock().unwrap() {
                break t.duration_since(t0).as_secs_f64();
            }
            assert!(Instant::now() < deadline, "no READY=1");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    std::thread::sleep(Duration::from_secs(1));
    let rss_idle_kib = status_kib(pid, "VmRSS:");

    // One new message per account, at a steady rate.
    let gap = Duration::from_secs_f64(1.0 / rate);
    let mut appended: Vec<DateTime<Utc>> = Vec::with_capacity(n);
    let start = Instant::now();
    for (i, u) in users.iter().enumerate() {
        let due = start + gap * i as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let mut raw = Raw::login(u);
        let m = mail(&format!("new{i}@bench"), "notifications@github.com");
        raw.command("APPEND INBOX", &[(&m, " ")]);
        appended.push(Utc::now());
        raw.command("LOGOUT", &[]);
    }
    assert!(
        wait_lines(&lines, "move to Notifications", n, Duration::from_secs(60)).is_some(),
        "{n} accounts: not every new message was moved within 60 s"
    );
    let server = percentiles(server_notification(20).await);
    let moved: Vec<Duration> = {
        let l = lines.lock().unwrap();
        l.iter()
            .filter(|(_, s)| s.contains("move to Notifications"))
            .map(|(_, s)| {
                let at: DateTime<Utc> = s.split_whitespace().next().unwrap().parse().unwrap();
                let account = s
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("account=a"))
                    .unwrap();
                let i: usize = account.parse().unwrap();
                (at - appended[i]).to_std().unwrap_or_default()
            })
            .collect()
    };
    assert_eq!(moved.len(), n, "one move per account");
    let peak_kib = status_kib(pid, "VmHWM:");

    let stopping = Instant::now();
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let mut exit = None;
    for _ in 0..3000 {
        if let Some(status) = child.try_wait().unwrap() {
            exit = status.code();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let stop = stopping.elapsed().as_secs_f64();
    let _ = child.kill();
    let loud = lines
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, s)| s.contains(" WARN ") || s.contains(" ERROR "))
        .count();
    // Every message once, in Notifications: nothing lost or doubled.
    for u in users.iter().step_by((n / 20).max(1)) {
        let s = u.snapshot().await;
        assert_eq!(s.get("Notifications").map_or(0, Vec::len), 1, "{}", u.name);
        assert_eq!(support::total(&s), 1, "{}", u.name);
    }
    Row {
        accounts: n,
        connected,
        ready,
        idling,
        rss_idle_kib,
        peak_kib,
        arrival: percentiles(moved),
        server,
        stop,
        exit,
        loud,
    }
}

/// As root, lets every idling imap process have its inotify instance.
fn raise_inotify(sessions: usize) {
    let path = "/proc/sys/fs/inotify/max_user_instances";
    let now: usize = std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let want = sessions * 2 + 256;
    if now >= want {
        return;
    }
    match std::fs::write(path, want.to_string()) {
        Ok(()) => println!("fs.inotify.max_user_instances raised from {now} to {want}"),
        Err(e) => println!(
            "fs.inotify.max_user_instances is {now} and cannot be raised ({e}): past it, Dovecot tells idling clients of new mail only every 30 s"
        ),
    }
}

fn main() {
    let sizes: Vec<usize> = std::env::var("MAILWARDEN_BENCH_ACCOUNTS")
        .unwrap_or_else(|_| "100,250,500,1000".into())
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .expect("MAILWARDEN_BENCH_ACCOUNTS: sizes, comma-separated")
        })
        .collect();
    let rate: f64 = std::env::var("MAILWARDEN_BENCH_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100.0);
    let most = sizes.iter().copied().max().unwrap_or(0);
    raise_inotify(most);
    // Every size's users, and two for the server's own notification delay
    // at each size.
    let users = sizes.iter().sum::<usize>() + 2 * sizes.len() + 2;
    support::configure(Settings {
        users: users as u32,
        extra: format!(
            "default_process_limit = {procs}\ndefault_client_limit = {clients}\nservice imap {{\n  process_limit = {procs}\n}}\n",
            procs = most + 200,
            clients = 4 * most + 1000,
        ),
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    for &n in &sizes {
        let row = runtime.block_on(one_size(n, rate));
        println!(
            "{n} accounts: connected {:.1} s, ready {:.1} s, idling {:.1} s; RSS idle {:.1} MiB, peak {:.1} MiB; arrival to moved p50 {:.0} ms p99 {:.0} ms; SIGTERM to exit {:.2} s (exit {:?}); warnings and errors logged: {}",
            row.connected,
            row.ready,
            row.idling,
            row.rss_idle_kib as f64 / 1024.0,
            row.peak_kib as f64 / 1024.0,
            row.arrival.p50,
            row.arrival.p99,
            row.stop,
            row.exit,
            row.loud
        );
        rows.push(row);
    }
    println!();
    println!(
        "One `mailwarden watch`, one account per Dovecot user on loopback, one rule shared by every account; one new message per account at {rate}/s:"
    );
    println!(
        "| accounts | all connected | READY=1 | all idling | RSS idle | peak RSS | peak per account | arrival to moved p50 / p90 / p99 / max | server's IDLE notice p50 / max | SIGTERM to exit | exit | warnings |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {:.1} s | {:.1} s | {:.1} s | {:.1} MiB | {:.1} MiB | {:.3} MiB | {:.0} / {:.0} / {:.0} / {:.0} ms | {:.0} / {:.0} ms | {:.2} s | {} | {} |",
            r.accounts,
            r.connected,
            r.ready,
            r.idling,
            r.rss_idle_kib as f64 / 1024.0,
            r.peak_kib as f64 / 1024.0,
            r.peak_kib as f64 / 1024.0 / r.accounts as f64,
            r.arrival.p50,
            r.arrival.p90,
            r.arrival.p99,
            r.arrival.max,
            r.server.p50,
            r.server.max,
            r.stop,
            r.exit.map_or("killed".to_string(), |c| c.to_string()),
            r.loud
        );
    }
    if let (Some(first), Some(last)) = (rows.first(), rows.last())
        && last.accounts > first.accounts
    {
        println!(
            "memory per added account: {:.3} MiB (peak RSS from {} to {} accounts)",
            (last.peak_kib as f64 - first.peak_kib as f64)
                / 1024.0
                / (last.accounts - first.accounts) as f64,
            first.accounts,
            last.accounts
        );
    }
}
