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
    config_with(user, dir, port, RULES)
}

fn config_with(user: &User, dir: &std::path::Path, port: u16, rules: &str) -> std::path::PathBuf {
    let path = dir.join("c.yaml");
    std::fs::write(
        &path,
        format!(
            "version: 1\naccounts:\n  test:\n    host: 127.0.0.1\n    port: {port}\n    tls: none\n    username: {}\n    password_env: MAILWARDEN_TEST_PASSWORD\nrules:\n{rules}",
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

/// A message with a PDF attachment (`pdf`) or without.
fn mime_mail(id: &str, pdf: bool) -> Vec<u8> {
    let attachment = if pdf {
        "--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"bill.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n"
    } else {
        ""
    };
    format!(
        "Message-ID: <{id}>\r\nFrom: a@b\r\nSubject: s\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nHello.\r\n{attachment}--b--\r\n"
    )
    .into_bytes()
}

const PDF_RULES: &str =
    "  - {name: pdf, match: {attachment: {name: {glob: '*.pdf'}}}, actions: [move: PDF]}\n";

/// A configuration with PDF_RULES for `user`, through a proxy that makes
/// every BODYSTRUCTURE of the server unparsable.
async fn behind_unreadable_bodystructures(
    user: &User,
    dir: &std::path::Path,
) -> (Proxy, std::path::PathBuf) {
    let garble = Cut::Garble("BODYSTRUCTURE (", "BODYSTRUCTURE (BOGUS ");
    let proxy = Proxy::start(FULL, garble).await;
    let cfg = config_with(user, dir, proxy.port, PDF_RULES);
    (proxy, cfg)
}

/// A server whose BODYSTRUCTURE cannot be parsed (servers build it from
/// the message, and junk mail makes some send malformed ones): the answer
/// is skipped, the session goes on, those messages are read again through
/// their texts, and exactly the messages with a PDF move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_bodystructure_falls_back_to_message_texts() {
    let user = server().user();
    for (id, pdf) in [
        ("a1@x", true),
        ("a2@x", false),
        ("a3@x", true),
        ("a4@x", false),
    ] {
        user.deliver("INBOX", &mime_mail(id, pdf)).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_proxy, cfg) = behind_unreadable_bodystructures(&user, dir.path()).await;
    let o = user.mailwarden_logged(&["run"], &cfg, "mailwarden=debug");
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(
        err.contains("BODYSTRUCTURE could not be read"),
        "the fallback is logged: {err}"
    );
    assert!(!err.contains("connection"), "no session was lost: {err}");
    let after = user.snapshot().await;
    assert_eq!(total(&after), 4, "{after:?}");
    let ids = |mb: &str| -> Vec<&str> { after[mb].iter().map(|(id, _)| id.as_str()).collect() };
    assert_eq!(ids("PDF"), ["<a1@x>", "<a3@x>"]);
    assert_eq!(ids("INBOX"), ["<a2@x>", "<a4@x>"]);
}

/// The same server under `watch`: new mail is sorted through its text, and
/// no session is lost over it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_keeps_reading_texts_after_an_unreadable_bodystructure() {
    let user = server().user();
    user.deliver("INBOX", &mime_mail("w1@x", true)).await;
    let dir = tempfile::tempdir().unwrap();
    let (_proxy, cfg) = behind_unreadable_bodystructures(&user, dir.path()).await;
    let daemon = Daemon::start(&user, &cfg);
    daemon.expect_in_folder(&user, "PDF", 1, 30).await;
    user.deliver("INBOX", &mime_mail("w2@x", true)).await;
    user.deliver("INBOX", &mime_mail("w3@x", false)).await;
    daemon.expect_in_folder(&user, "PDF", 2, 30).await;
    assert!(
        daemon.log_has("BODYSTRUCTURE could not be read"),
        "{}",
        daemon.log()
    );
    let reconnects = daemon.log().matches("reconnecting").count();
    assert_eq!(daemon.stop(), Some(0));
    assert_eq!(reconnects, 0, "no session is lost over a bad answer");
    let after = user.snapshot().await;
    assert_eq!(total(&after), 3);
    assert_eq!(after["INBOX"].len(), 1);
}

/// `undo` killed (SIGKILL) right after one of its journal writes, then run
/// again: every message back in INBOX with its flags as before, nothing
/// lost or doubled, and nothing left for a third undo to do.
async fn undo_killed_then_finished(ip: &'static str, fault: &str) {
    let user = server().user();
    seed(&user).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = user.config(dir.path(), ip, "", RULES);
    let since = chrono::Utc::now().to_rfc3339();
    let run = user.mailwarden(&["run"], &cfg);
    assert_eq!(run.status.code(), Some(0), "{fault}: {:?}", text(&run));
    let killed = std::process::Command::new(env!("CARGO_BIN_EXE_mailwarden"))
        .args(["undo", "--since", &since, "-c"])
        .arg(&cfg)
        .env("MAILWARDEN_TEST_PASSWORD", &user.password)
        .env("XDG_STATE_HOME", user.state_home())
        .env("MAILWARDEN_FAULT", fault)
        .output()
        .unwrap();
    assert_eq!(
        killed.status.code(),
        None,
        "{fault}: the undo must have been killed: {:?}",
        text(&killed)
    );
    assert_nothing_lost(&user, fault).await;
    let again = user.mailwarden(&["undo", "--since", &since], &cfg);
    assert_eq!(again.status.code(), Some(0), "{fault}: {:?}", text(&again));
    let after = user.snapshot().await;
    let inbox: Vec<String> = after["INBOX"]
        .iter()
        .map(|(id, f)| format!("{id} {}", f.join(" ")).trim().to_string())
        .collect();
    assert_eq!(
        inbox,
        ["<g1@x>", "<g2@x>", "<g3@x>", "<p1@x>", "<p2@x>"],
        "{fault}: {after:?}"
    );
    assert_eq!(total(&after), 5, "{fault}: {after:?}");
    let third = user.mailwarden(&["undo", "--since", &since], &cfg);
    assert!(
        text(&third).0.contains("took back 0 actions"),
        "{fault}: {:?}",
        text(&third)
    );
    let log = user.mailwarden_bare(&["log", "--format", "json"]);
    assert!(
        !String::from_utf8_lossy(&log.stdout).contains("\"intended\""),
        "{fault}: {}",
        String::from_utf8_lossy(&log.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_killed_after_each_journal_write() {
    let cases = [
        (FULL, "kill-after-intent:move"),
        (FULL, "kill-after-outcome:move"),
        (FULL, "kill-after-intent:unflag"),
        (FULL, "kill-after-outcome:unflag"),
        (NO_MOVE, "kill-after-intent:move"),
        (NO_MOVE, "kill-after-outcome:move"),
    ];
    for (ip, fault) in cases {
        undo_killed_then_finished(ip, fault).await;
    }
}

/// `total` messages, of which those `moves` picks come from GitHub and
/// move; a server that ends the connection under every UID MOVE naming
/// more than `cut` UIDs (as Dovecot's imap process, out of memory on a
/// large Maildir, does). `run` reconnects, settles the journal and goes on
/// with commands half as long, saying so once per halving (`shorter`, the
/// UIDs per command after each), and ends with every message moved once.
async fn dies_under_long_moves(
    total_msgs: usize,
    moves: fn(usize) -> bool,
    cut: usize,
    shorter: &[usize],
) {
    let user = server().user();
    let msgs: Vec<Vec<u8>> = (0..total_msgs)
        .map(|i| {
            let from = if moves(i) {
                "n@github.com"
            } else {
                "friend@example.net"
            };
            mail(&format!("m{i}@x"), from)
        })
        .collect();
    let moving = (0..total_msgs).filter(|i| moves(*i)).count();
    user.deliver_many("INBOX", &msgs);
    assert_eq!(total(&user.snapshot().await), total_msgs);
    let proxy = Proxy::start(FULL, Cut::Longer("UID MOVE", cut)).await;
    let dir = tempfile::tempdir().unwrap();
    let rules = "  - name: GitHub\n    match: { from: { domain: github.com } }\n    actions: [move: Notifications]\n";
    let cfg = config_with(&user, dir.path(), proxy.port, rules);
    std::fs::write(
        &cfg,
        std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("rules:\n", "    max_actions: unlimited\nrules:\n"),
    )
    .unwrap();
    let o = user.mailwarden(&["run"], &cfg);
    let (out, err) = text(&o);
    assert!(
        proxy.cut_done.load(std::sync::atomic::Ordering::SeqCst),
        "{err}"
    );
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert_eq!(
        err.matches("going on with at most").count(),
        shorter.len(),
        "{err}"
    );
    for n in shorter {
        assert!(
            err.contains(&format!("going on with at most {n} per command")),
            "{err}"
        );
    }
    assert!(
        out.contains(&format!("moved {moving} messages to Notifications")),
        "{out}"
    );
    let after = user.snapshot().await;
    assert_eq!(total(&after), total_msgs, "nothing lost or duplicated");
    assert_eq!(after["Notifications"].len(), moving);
    assert_eq!(after["INBOX"].len(), total_msgs - moving);
    let log = user.mailwarden_bare(&["log", "--format", "json"]);
    let text_log = String::from_utf8_lossy(&log.stdout);
    assert!(!text_log.contains("\"intended\""), "{text_log}");
}

/// 600 UIDs on one line, then 300, then 150 per command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_dies_under_long_commands_gets_shorter_ones() {
    dies_under_long_moves(700, |i| i % 7 != 3, 200, &[300, 150]).await;
}

/// Every other message moves: 2,000 single UIDs, more than one line, so
/// saved as `$` (RFC 5182) and cut under `UID MOVE $`; then 1,000 per
/// command, each within one line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_dies_under_a_long_saved_move_gets_shorter_ones() {
    dies_under_long_moves(4000, |i| i % 2 == 0, 1500, &[1000]).await;
}
