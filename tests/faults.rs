//! Faults: the connection cut (by a loopback proxy) just before a mutating
//! command reaches the server, or just after the server carried it out but
//! before its answer arrived. The next run settles the journal and ends in
//! exactly the intended state: every message once, nothing lost.

mod support;

use support::{Cut, Daemon, FULL, NO_MOVE, Proxy, User, eventually, server, text, total};

fn mail(id: &str, from: &str) -> Vec<u8> {
    format!("Message-ID: <{id}>\r\nDate: Mon, 05 Jan 2026 10:00:00 +0000\r\nFrom: {from}\r\nSubject: s\r\n\r\nbody\r\n").into_bytes()
}

const RULES: &str = "  - name: GitHub\n    match: { from: { domain: github.com } }\n    actions: [flag: seen, move: Notifications]\n";

fn config(user: &User, dir: &std::path::Path, port: u16) -> std::path::PathBuf {
    let path = dir.join("c.yaml");
    std::fs::write(
        &path,
        format!(
            "version: 1\naccounts:\n  test:\n    host: 127.0.0.1\n    port: {port}\n    tls: none\n    username: {}\n    password_env: MAILWARDEN_TEST_PASSWORD\nrules:\n{RULES}",
            user.name
        ),
    )
    .unwrap();
    path
}

/// Five messages: three that the rule flags and moves, two that stay.
async fn seed(user: &User) {
    for (id, from) in [
        ("g1@x", "notifications@github.com"),
        ("g2@x", "noreply@github.com"),
        ("p1@x", "friend@example.net"),
        ("g3@x", "x@github.com"),
        ("p2@x", "aunt@example.net"),
    ] {
        user.deliver("INBOX", &mail(id, from)).await;
    }
}

/// After a fault: every message still exists somewhere (a copy may exist
/// twice until recovery removes the original).
async fn assert_nothing_lost(user: &User, fault: &str) {
    let middle = user.snapshot().await;
    let present: std::collections::BTreeSet<&str> = middle
        .values()
        .flatten()
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(present.len(), 5, "{fault}: {middle:?}");
}

/// The run after a fault: exactly the intended state, and no intent left
/// unfinished in the journal.
async fn assert_recovered(user: &User, cfg: &std::path::Path, fault: &str) {
    let second = user.mailwarden(&["run"], cfg);
    assert_eq!(
        second.status.code(),
        Some(0),
        "{fault}: {:?}",
        text(&second)
    );
    let after = user.snapshot().await;
    let ids = |m: &str| {
        after
            .get(m)
            .map(|v| {
                v.iter()
                    .map(|(id, f)| format!("{id} {}", f.join(" ")))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        ids("Notifications"),
        ["<g1@x> \\Seen", "<g2@x> \\Seen", "<g3@x> \\Seen"],
        "{fault}: {after:?}"
    );
    assert_eq!(ids("INBOX"), ["<p1@x> ", "<p2@x> "], "{fault}");
    assert_eq!(total(&after), 5, "{fault}");
    let log = user.mailwarden_bare(&["log", "--format", "json"]);
    let entries: Vec<serde_json::Value> = String::from_utf8_lossy(&log.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        entries.iter().all(|e| e["status"] != "intended"),
        "{fault}: {entries:#?}"
    );
}

async fn cut_then_recover(ip: &'static str, cut: Cut) {
    let user = server().user();
    seed(&user).await;
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(ip, cut).await;
    let cfg = config(&user, dir.path(), proxy.port);
    let first = user.mailwarden(&["run"], &cfg);
    let label = format!("{cut:?}");
    assert!(
        proxy.cut_done.load(std::sync::atomic::Ordering::SeqCst),
        "{label} never happened: {:?}",
        text(&first)
    );
    assert_ne!(
        first.status.code(),
        Some(0),
        "{label}: the cut must be reported: {:?}",
        text(&first)
    );
    assert_nothing_lost(&user, &label).await;
    assert_recovered(&user, &cfg, &label).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_before_move() {
    cut_then_recover(FULL, Cut::Before("UID MOVE")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_after_move() {
    cut_then_recover(FULL, Cut::AfterReplyTo("UID MOVE")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_before_store() {
    cut_then_recover(FULL, Cut::Before("UID STORE")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_after_store() {
    cut_then_recover(FULL, Cut::AfterReplyTo("UID STORE")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_before_copy_without_move() {
    cut_then_recover(NO_MOVE, Cut::Before("UID COPY")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_after_copy_without_move() {
    cut_then_recover(NO_MOVE, Cut::AfterReplyTo("UID COPY")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_before_expunge_without_move() {
    cut_then_recover(NO_MOVE, Cut::Before("UID EXPUNGE")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_after_expunge_without_move() {
    cut_then_recover(NO_MOVE, Cut::AfterReplyTo("UID EXPUNGE")).await;
}

/// The process is killed (SIGKILL) right after a journal write; the next
/// run ends in the intended state.
async fn killed_then_recover(ip: &'static str, fault: &str) {
    let user = server().user();
    seed(&user).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = user.config(dir.path(), ip, "", RULES);
    let first = std::process::Command::new(env!("CARGO_BIN_EXE_mailwarden"))
        .args(["run", "-c"])
        .arg(&cfg)
        .env("MAILWARDEN_TEST_PASSWORD", &user.password)
        .env("XDG_STATE_HOME", user.state_home())
        .env("MAILWARDEN_FAULT", fault)
        .output()
        .unwrap();
    assert_eq!(
        first.status.code(),
        None,
        "{fault}: the process must have been killed: {:?}",
        text(&first)
    );
    assert_nothing_lost(&user, fault).await;
    assert_recovered(&user, &cfg, fault).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_each_journal_write() {
    let cases = [
        (FULL, "kill-after-intent:flag"),
        (FULL, "kill-after-outcome:flag"),
        (FULL, "kill-after-intent:move"),
        (FULL, "kill-after-outcome:move"),
        (NO_MOVE, "kill-after-intent:move"),
        (NO_MOVE, "kill-after-outcome:move"),
    ];
    for (ip, fault) in cases {
        killed_then_recover(ip, fault).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_goes_silent_while_idling_is_replaced() {
    let user = server().user();
    let proxy = Proxy::start(FULL, Cut::Blackhole("IDLE")).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yaml");
    std::fs::write(
        &cfg,
        format!(
            "version: 1\naccounts:\n  test:\n    host: 127.0.0.1\n    port: {}\n    tls: none\n    username: {}\n    password_env: MAILWARDEN_TEST_PASSWORD\n    idle_renewal: 2s\n    timeout: 2s\nrules:\n{RULES}",
            proxy.port, user.name
        ),
    )
    .unwrap();
    let daemon = Daemon::start(&user, &cfg);
    // Once the daemon idles into the black hole, mail arrives.
    let holed = eventually(std::time::Duration::from_secs(10), || async {
        proxy.cut_done.load(std::sync::atomic::Ordering::SeqCst)
    })
    .await;
    assert!(holed, "{}", daemon.log());
    user.deliver("INBOX", &mail("silent@x", "notifications@github.com"))
        .await;
    daemon.expect_in_folder(&user, "Notifications", 1, 15).await;
    assert!(daemon.log_has("reconnecting"), "{}", daemon.log());
    assert_eq!(daemon.stop(), Some(0));
}
