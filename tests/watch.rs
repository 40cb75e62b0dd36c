//! `mailwarden watch`, the journal and recovery, against a real Dovecot:
//! new mail is moved while the daemon idles or polls, SIGTERM stops it
//! cleanly, a second instance is refused, and actions a crash left
//! unfinished are settled without duplicates.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use mailwarden::imap::types::{Mailbox, Uid, UidValidity};
use mailwarden::state::{Action, Intent, State};
use support::{Daemon, FULL, eventually, in_folder, server, text, total};

fn mail(id: &str, headers: &str) -> Vec<u8> {
    format!(
        "Message-ID: <{id}>\r\nDate: Mon, 05 Jan 2026 10:00:00 +0000\r\n{headers}\r\n\r\nbody\r\n"
    )
    .into_bytes()
}

const RULES: &str = "  - name: GitHub\n    match: { from: { domain: github.com } }\n    actions: [move: Notifications]\n";

async fn follows_new_mail(idle: bool) {
    let user = server().user();
    user.deliver(
        "INBOX",
        &mail("old@x", "From: notifications@github.com\r\nSubject: old"),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let extra = format!("    idle: {idle}\n    poll_interval: 1s\n");
    let cfg = user.config(dir.path(), FULL, &extra, RULES);
    let daemon = Daemon::start(&user, &cfg);
    // The first pass moves what was already there.
    daemon.expect_in_folder(&user, "Notifications", 1, 15).await;
    if idle {
        daemon.expect_log("idle started", 5).await;
    } else {
        daemon.expect_log("connected", 5).await;
    }

    // Mail arriving from another connection while the daemon waits.
    let mut latencies = Vec::new();
    for i in 0..3 {
        let t0 = Instant::now();
        user.deliver(
            "INBOX",
            &mail(
                &format!("new{i}@x"),
                "From: GitHub <notifications@github.com>\r\nSubject: new",
            ),
        )
        .await;
        user.deliver(
            "INBOX",
            &mail(
                &format!("keep{i}@x"),
                "From: friend@example.net\r\nSubject: hi",
            ),
        )
        .await;
        let moved = eventually(Duration::from_secs(10), || async {
            in_folder(&user, "Notifications").await == 2 + i
        })
        .await;
        assert!(moved, "message {i} was not moved:\n{}", daemon.log());
        latencies.push(t0.elapsed());
    }
    // One log line per action: where, which message, which rule, what.
    assert!(
        daemon.log_has("move to Notifications account=test mailbox=INBOX uid=2 message_id=\"new0@x\" rule=\"GitHub\""),
        "{}",
        daemon.log()
    );
    assert_eq!(daemon.stop(), Some(0));
    let after = user.snapshot().await;
    assert_eq!(after["INBOX"].len(), 3, "{after:?}");
    assert_eq!(total(&after), 7, "nothing lost, nothing duplicated");
    eprintln!("idle={idle}: arrival to moved, including test polling: {latencies:?}");
}

#[tokio::test]
async fn watch_moves_new_mail_announced_by_idle_and_stops_on_sigterm() {
    follows_new_mail(true).await;
}

#[tokio::test]
async fn watch_moves_new_mail_by_polling_when_idle_is_off() {
    follows_new_mail(false).await;
}

#[tokio::test]
async fn a_second_instance_on_the_same_state_file_is_refused() {
    let user = server().user();
    let dir = tempfile::tempdir().unwrap();
    let cfg = user.config(dir.path(), FULL, "", RULES);
    let daemon = Daemon::start(&user, &cfg);
    daemon.expect_log("watching", 10).await;
    let second = user.mailwarden(&["watch"], &cfg);
    let (_, err) = text(&second);
    assert_eq!(second.status.code(), Some(4), "{err}");
    assert!(err.contains("another mailwarden is using"), "{err}");
    let run = user.mailwarden(&["run"], &cfg);
    assert!(text(&run).1.contains("another mailwarden is using"));
    assert_eq!(daemon.stop(), Some(0));
}

#[tokio::test]
async fn actions_left_unfinished_by_a_crash_are_settled_without_duplicates() {
    let user = server().user();
    // a@x: the crash came after the COPY and before the removal of the
    // original; b@x: after the intent was recorded, before anything was sent.
    user.deliver(
        "INBOX",
        &mail("a@x", "From: notifications@github.com\r\nSubject: a"),
    )
    .await;
    user.deliver(
        "INBOX",
        &mail("b@x", "From: notifications@github.com\r\nSubject: b"),
    )
    .await;
    user.deliver(
        "Notifications",
        &mail("a@x", "From: notifications@github.com\r\nSubject: a"),
    )
    .await;
    let mut c = user.conn(FULL).await;
    let status = c
        .open(&Mailbox::inbox(), mailwarden::imap::Access::ReadOnly)
        .await
        .unwrap();
    c.logout().await;
    {
        let state = State::open(&user.state_file()).unwrap();
        let intent = |uid, id: &str| Intent {
            account: "test".into(),
            mailbox: Mailbox::inbox(),
            uid_validity: status.uid_validity,
            uid: Uid::new(uid).unwrap(),
            message_id: Some(id.into()),
            rule: Some("GitHub".into()),
            action: Action::Move,
            target: Some("Notifications".into()),
            undoes: None,
        };
        state.intend(&[intent(1, "a@x"), intent(2, "b@x")]).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = user.config(dir.path(), FULL, "", RULES);
    let o = user.mailwarden(&["run"], &cfg);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(err.contains("settled actions left unfinished"), "{err}");
    let after = user.snapshot().await;
    let ids: Vec<&str> = after["Notifications"]
        .iter()
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(ids, ["<a@x>", "<b@x>"], "each message once in the target");
    assert!(after["INBOX"].is_empty());
    assert_eq!(total(&after), 2);

    let log = user.mailwarden_bare(&["log", "--format", "json"]);
    let entries: Vec<serde_json::Value> = String::from_utf8_lossy(&log.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let statuses: Vec<(u64, &str)> = entries
        .iter()
        .map(|e| (e["uid"].as_u64().unwrap(), e["status"].as_str().unwrap()))
        .collect();
    // The two recovered intents, then the new move of b@x by the pass.
    assert_eq!(
        statuses,
        [(1, "done"), (2, "abandoned"), (2, "done")],
        "{entries:#?}"
    );
    assert_eq!(
        entries[0]["detail"],
        "finished after a restart: the original removed"
    );
}

#[tokio::test]
async fn log_shows_what_moved_where_and_why() {
    let user = server().user();
    user.deliver(
        "INBOX",
        &mail("l@x", "From: notifications@github.com\r\nSubject: l"),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = user.config(dir.path(), FULL, "", RULES);
    assert_eq!(user.mailwarden(&["run"], &cfg).status.code(), Some(0));
    let o = user.mailwarden_bare(&["log", "--rule", "GitHub"]);
    let (out, _) = text(&o);
    assert!(
        out.contains("done      test/INBOX UID 1 <l@x> rule \"GitHub\": move Notifications"),
        "{out}"
    );
    let none = user.mailwarden_bare(&["log", "--rule", "Other"]);
    assert_eq!(text(&none).0, "");
    // A second run over the unchanged mailbox journals (and sends) nothing.
    assert_eq!(user.mailwarden(&["run"], &cfg).status.code(), Some(0));
    let again = user.mailwarden_bare(&["log"]);
    assert_eq!(text(&again).0.lines().count(), 1);
}

#[tokio::test]
async fn a_changed_uidvalidity_drops_the_mark_and_everything_is_evaluated_again() {
    use mailwarden::duplicates::Seen;
    use mailwarden::imap::Access;
    use mailwarden::pass::{ReadOptions, Source, plan_mailbox};
    use mailwarden::state::Mark;
    let user = server().user();
    for i in 0..3 {
        user.deliver(
            "INBOX",
            &mail(
                &format!("v{i}@x"),
                "From: notifications@github.com\r\nSubject: v",
            ),
        )
        .await;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = mailwarden::config::load(&user.config(dir.path(), FULL, "", RULES)).unwrap();
    let account = cfg.accounts[0].clone();
    let rules: Vec<_> = cfg.rules_for("test", "INBOX").collect();
    let mut conn = user.conn(FULL).await;
    let folders = mailwarden::imap::folders::Folders::load(&mut conn)
        .await
        .unwrap();
    let inbox = Mailbox::inbox();
    let path = mailwarden::rules::FolderPath::inbox();
    let status = conn.open(&inbox, Access::ReadOnly).await.unwrap();
    let now = chrono::Utc::now();

    // The mark of this UIDVALIDITY: only mail above it.
    let same = Mark {
        uid_validity: status.uid_validity,
        last_uid: 2,
        highest_modseq: None,
    };
    let source = Source {
        path: &path,
        mailbox: &inbox,
        rules: &rules,
    };
    let options = ReadOptions {
        access: Access::ReadOnly,
        mark: Some(same),
        now,
    };
    let planned = plan_mailbox(
        &mut conn,
        &folders,
        &account,
        &source,
        options,
        &mut Seen::off(),
    )
    .await
    .unwrap();
    assert_eq!(
        planned
            .plan
            .entries
            .iter()
            .map(|e| e.uid.get())
            .collect::<Vec<_>>(),
        [3]
    );
    assert_eq!(planned.mark.last_uid, 3);

    // A mark from another UIDVALIDITY means nothing: all of it again.
    let stale = Mark {
        uid_validity: UidValidity::new(status.uid_validity.get().wrapping_add(1).max(1)).unwrap(),
        last_uid: 1000,
        highest_modseq: None,
    };
    let source = Source {
        path: &path,
        mailbox: &inbox,
        rules: &rules,
    };
    let options = ReadOptions {
        access: Access::ReadOnly,
        mark: Some(stale),
        now,
    };
    let planned = plan_mailbox(
        &mut conn,
        &folders,
        &account,
        &source,
        options,
        &mut Seen::off(),
    )
    .await
    .unwrap();
    assert_eq!(planned.plan.entries.len(), 3);
    assert_eq!(
        planned.mark,
        Mark {
            uid_validity: status.uid_validity,
            last_uid: 3,
            highest_modseq: status.highest_modseq,
        }
    );
    conn.logout().await;
}

#[tokio::test]
async fn after_the_server_drops_the_connection_watch_reconnects_and_catches_up() {
    let user = server().user();
    let dir = tempfile::tempdir().unwrap();
    let cfg = user.config(dir.path(), FULL, "    poll_interval: 1s\n", RULES);
    let daemon = Daemon::start(&user, &cfg);
    daemon.expect_log("idle started", 10).await;
    // The server ends the session (as a restart or an admin would), and
    // mail arrives before the daemon is back.
    let kick = Command::new("doveadm")
        .arg("-c")
        .arg(server().dir.path().join("dovecot.conf"))
        .args(["kick", &user.name])
        .output()
        .unwrap();
    assert!(kick.status.success(), "{:?}", kick);
    user.deliver(
        "INBOX",
        &mail(
            "during@x",
            "From: notifications@github.com\r\nSubject: while away",
        ),
    )
    .await;
    let caught_up = eventually(Duration::from_secs(20), || async {
        in_folder(&user, "Notifications").await == 1
    })
    .await;
    assert!(caught_up, "{}", daemon.log());
    assert!(daemon.log_has("reconnecting"), "{}", daemon.log());
    assert_eq!(daemon.stop(), Some(0));
    assert_eq!(total(&user.snapshot().await), 1);
}

#[tokio::test]
async fn mail_arriving_during_a_pass_is_not_left_until_the_next_idle_renewal() {
    let user = server().user();
    let dir = tempfile::tempdir().unwrap();
    let cfg = user.config(dir.path(), FULL, "", RULES);
    let daemon = Daemon::start(&user, &cfg);
    daemon.expect_log("idle started", 10).await;
    // Bursts: the first message of each wakes the daemon, the others land
    // while it is reading or moving. None may wait for the IDLE renewal
    // (minutes away). This holds the mark to "only what the pass saw".
    // (Dovecot announces pending mail again when IDLE starts; for servers
    // that announce it only once, the daemon also passes again after any
    // EXISTS seen outside IDLE.)
    let mut writer = user.conn(FULL).await;
    for burst in 0..5 {
        for i in 0..3 {
            let id = format!("b{burst}-{i}@x");
            writer
                .append(
                    &Mailbox::inbox(),
                    &[],
                    None,
                    &mail(&id, "From: notifications@github.com\r\nSubject: burst"),
                )
                .await
                .unwrap();
        }
        let want = 3 * (burst + 1);
        let all = eventually(Duration::from_secs(10), || async {
            in_folder(&user, "Notifications").await == want
        })
        .await;
        assert!(
            all,
            "burst {burst}: a message was stranded\n{}",
            daemon.log()
        );
    }
    writer.logout().await;
    assert_eq!(daemon.stop(), Some(0));
    assert_eq!(total(&user.snapshot().await), 15);
}

#[tokio::test]
async fn one_account_that_cannot_connect_does_not_stall_another() {
    let user = server().user();
    let dir = tempfile::tempdir().unwrap();
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let path = dir.path().join("two.yaml");
    std::fs::write(
        &path,
        format!(
            "version: 1\naccounts:\n  dead:\n    host: 127.0.0.1\n    port: {dead_port}\n    tls: none\n    username: nobody\n    password_env: MAILWARDEN_TEST_PASSWORD\n  test:\n    host: 127.0.0.1\n    port: {}\n    tls: none\n    username: {}\n    password_env: MAILWARDEN_TEST_PASSWORD\nrules:\n  - {{name: Dead, account: dead, actions: [flag: seen]}}\n  - name: GitHub\n    account: test\n    match: {{ from: {{ domain: github.com }} }}\n    actions: [move: Notifications]\n",
            server().plain_port,
            user.name
        ),
    )
    .unwrap();
    let daemon = Daemon::start(&user, &path);
    daemon.expect_log("connected account=test", 10).await;
    user.deliver(
        "INBOX",
        &mail("live@x", "From: notifications@github.com\r\nSubject: s"),
    )
    .await;
    daemon.expect_in_folder(&user, "Notifications", 1, 10).await;
    assert!(
        daemon.log_has("cannot connect account=dead"),
        "{}",
        daemon.log()
    );
    assert_eq!(daemon.stop(), Some(0));
}

#[tokio::test]
async fn sighup_reloads_the_configuration_and_keeps_the_old_one_if_the_new_is_invalid() {
    let user = server().user();
    let dir = tempfile::tempdir().unwrap();
    let cfg = user.config(dir.path(), FULL, "", RULES);
    let daemon = Daemon::start(&user, &cfg);
    daemon.expect_log("connected", 10).await;
    let hup = || {
        Command::new("kill")
            .args(["-HUP", &daemon.child.id().to_string()])
            .status()
            .unwrap()
    };

    // An invalid file is reported; the old rules go on working.
    let good = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, good.replace("actions:", "actoins:")).unwrap();
    hup();
    daemon
        .expect_log("the new configuration is invalid", 5)
        .await;
    user.deliver(
        "INBOX",
        &mail("h1@x", "From: notifications@github.com\r\nSubject: s"),
    )
    .await;
    daemon.expect_in_folder(&user, "Notifications", 1, 10).await;

    // A valid one replaces the rules.
    std::fs::write(&cfg, good.replace("move: Notifications", "move: Elsewhere")).unwrap();
    hup();
    daemon.expect_log("configuration reloaded", 5).await;
    user.deliver(
        "INBOX",
        &mail("h2@x", "From: notifications@github.com\r\nSubject: s"),
    )
    .await;
    daemon.expect_in_folder(&user, "Elsewhere", 1, 10).await;
    assert_eq!(daemon.stop(), Some(0));
    assert_eq!(total(&user.snapshot().await), 2);
}

#[tokio::test]
async fn a_flag_set_by_another_client_is_acted_on_without_waiting_for_the_sweep() {
    let user = server().user();
    user.deliver(
        "INBOX",
        &mail("f1@x", "From: boss@corp.example\r\nSubject: later"),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let rules = "  - name: Flagged\n    match: { flagged: true }\n    actions: [move: Flagged]\n";
    let cfg = user.config(dir.path(), FULL, "", rules);
    let daemon = Daemon::start(&user, &cfg);
    daemon.expect_log("idle started", 10).await;
    assert_eq!(in_folder(&user, "Flagged").await, 0);
    // Another client flags the old message; the sweep is an hour away.
    let mut other = user.conn(FULL).await;
    other
        .open(&Mailbox::inbox(), mailwarden::imap::Access::ReadWrite)
        .await
        .unwrap();
    let uids = other
        .search(&mailwarden::imap::command::SearchKey::All)
        .await
        .unwrap();
    other
        .store(
            &uids,
            mailwarden::imap::command::StoreMode::Add,
            &[mailwarden::rules::Flag::parse("flagged").unwrap()],
        )
        .await
        .unwrap();
    other.logout().await;
    daemon.expect_in_folder(&user, "Flagged", 1, 10).await;
    assert_eq!(daemon.stop(), Some(0));
    assert_eq!(total(&user.snapshot().await), 1);
}

#[tokio::test]
async fn several_watched_mailboxes_share_one_session() {
    let user = server().user();
    user.deliver(
        "Team",
        &mail("seed@x", "From: friend@example.net\r\nSubject: s"),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let rules = "  - name: GitHub\n    mailbox: [INBOX, Team]\n    match: { from: { domain: github.com } }\n    actions: [move: Notifications]\n";
    let cfg = user.config(
        dir.path(),
        FULL,
        "    watch: [INBOX, Team]\n    poll_interval: 1s\n",
        rules,
    );
    let daemon = Daemon::start(&user, &cfg);
    daemon.expect_log("idle started", 10).await;
    // New mail in the mailbox IDLE is not on is found within poll_interval;
    // new mail in the other one wakes IDLE.
    user.deliver(
        "Team",
        &mail("t1@x", "From: notifications@github.com\r\nSubject: s"),
    )
    .await;
    daemon.expect_in_folder(&user, "Notifications", 1, 10).await;
    user.deliver(
        "INBOX",
        &mail("i1@x", "From: notifications@github.com\r\nSubject: s"),
    )
    .await;
    daemon.expect_in_folder(&user, "Notifications", 2, 10).await;
    let log = daemon.log();
    assert_eq!(daemon.stop(), Some(0));
    let after = user.snapshot().await;
    assert_eq!(after["Team"].len(), 1);
    assert_eq!(total(&after), 3);
    // One connection did all of it.
    assert_eq!(log.matches("connected account=test").count(), 1, "{log}");
}

/// A message whose flags are already as the rules want is not acted on,
/// logged or journaled again at every sweep.
#[tokio::test]
async fn sweeps_log_and_journal_only_what_changes() {
    let user = server().user();
    user.deliver(
        "INBOX",
        &mail("f1@x", "From: boss@corp.example\r\nSubject: important"),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let rules = "  - {name: boss, match: {from: boss}, actions: [flag: flagged]}\n";
    let cfg = user.config(
        dir.path(),
        FULL,
        "    sweep: 1s\n    poll_interval: 1s\n",
        rules,
    );
    let daemon = Daemon::start(&user, &cfg);
    // Three sweeps at least: the first flags, the others find it flagged.
    let swept = eventually(Duration::from_secs(20), || async {
        daemon.log().matches("done command=\"SELECT\"").count() >= 4
    })
    .await;
    assert!(swept, "{}", daemon.log());
    let log = daemon.log();
    assert_eq!(daemon.stop(), Some(0));
    assert_eq!(log.matches("flag \\Flagged").count(), 1, "{log}");
    let journal = text(&user.mailwarden_bare(&["log"])).0;
    assert_eq!(journal.lines().count(), 1, "{journal}");
}

/// `log --prune-before` deletes the old journal entries while `watch` runs
/// and holds the lock, and `watch` goes on journaling.
#[tokio::test]
async fn the_journal_is_pruned_beside_a_running_watch() {
    let user = server().user();
    let dir = tempfile::tempdir().unwrap();
    let rules = "  - name: GitHub\n    match: { from: { domain: github.com } }\n    actions: [move: Notifications]\n";
    let cfg = user.config(dir.path(), FULL, "", rules);
    let daemon = Daemon::start(&user, &cfg);
    user.deliver(
        "INBOX",
        &mail("old@x", "From: notifications@github.com\r\nSubject: s"),
    )
    .await;
    daemon.expect_in_folder(&user, "Notifications", 1, 20).await;
    let log = |args: &[&str]| {
        let o = user.mailwarden_bare(&[&["log"], args].concat());
        assert_eq!(o.status.code(), Some(0), "{o:?}");
        String::from_utf8(o.stdout).unwrap()
    };
    assert!(log(&[]).contains("<old@x>"));
    let none = log(&["--prune-before", "1h"]);
    assert!(
        none.starts_with("deleted 0 journal entries from before "),
        "{none}"
    );
    // Everything up to now.
    let pruned = log(&["--prune-before", "0s"]);
    assert!(
        pruned.starts_with("deleted 1 journal entry from before "),
        "{pruned}"
    );
    assert_eq!(log(&[]), "");
    user.deliver(
        "INBOX",
        &mail("new@x", "From: notifications@github.com\r\nSubject: s"),
    )
    .await;
    daemon.expect_in_folder(&user, "Notifications", 2, 20).await;
    let after = log(&[]);
    assert!(
        after.contains("<new@x>") && !after.contains("<old@x>"),
        "{after}"
    );
    assert_eq!(daemon.stop(), Some(0));
}

/// Accounts refused by the server's limit, in one `watch` process:
/// Dovecot takes ten sessions of a user from one address
/// (`mail_max_userip_connections`) and the test holds all ten, so each of
/// the daemon's four accounts is refused with `NO [LIMIT]`. Each says so
/// once, then retries quietly with growing pauses (debug lines only).
/// When the test lets nine sessions go, every account gets in, says it is
/// connected again, and sorts its own mail; SIGTERM ends the whole process
/// cleanly. Nothing is lost or duplicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_refused_by_the_server_limit_retry_quietly_then_get_in() {
    const ACCOUNTS: usize = 4;
    let user = server().user();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = String::from("version: 1\naccounts:\n");
    let mut rules = String::from("rules:\n");
    for n in 1..=ACCOUNTS {
        cfg.push_str(&format!(
            "  a{n}:\n    host: \"{FULL}\"\n    port: {}\n    tls: none\n    username: {}\n    password_env: MAILWARDEN_TEST_PASSWORD\n",
            server().plain_port,
            user.name
        ));
        rules.push_str(&format!(
            "  - name: r{n}\n    account: a{n}\n    match: {{ from: s{n}@example.org }}\n    actions: [move: F{n}]\n"
        ));
    }
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, format!("{cfg}{rules}")).unwrap();
    for n in 1..=ACCOUNTS {
        user.deliver(
            "INBOX",
            &mail(
                &format!("m{n}@x"),
                &format!("From: s{n}@example.org\r\nSubject: for a{n}"),
            ),
        )
        .await;
    }
    // Dovecot's limit, all taken by the test.
    let mut probe = user.conn(FULL).await;
    let mut fillers = Vec::new();
    for _ in 0..9 {
        fillers.push(user.conn(FULL).await);
    }
    let daemon = Daemon::start(&user, &path);
    // Lines about an account, at a level.
    let lines = |account: &str, level: &str| -> usize {
        daemon
            .log()
            .lines()
            .filter(|l| {
                let field = format!("account={account}");
                l.split_whitespace().any(|w| w == field) && l.contains(level)
            })
            .count()
    };
    let accounts: Vec<String> = (1..=ACCOUNTS).map(|n| format!("a{n}")).collect();
    // Three attempts each (pauses of 1 and 2 s, and up to a quarter more):
    // one error line, then quiet ones.
    let retried = eventually(Duration::from_secs(20), || async {
        accounts.iter().all(|a| lines(a, " DEBUG ") >= 2)
    })
    .await;
    assert!(retried, "{}", daemon.log());
    assert!(daemon.log_has("[LIMIT]"), "{}", daemon.log());
    for a in &accounts {
        assert_eq!(
            lines(a, " ERROR ") + lines(a, " WARN "),
            1,
            "{a} is refused at every retry, and said so once:\n{}",
            daemon.log()
        );
    }
    let before = support::snapshot_with(&mut probe).await;
    assert_eq!(before["INBOX"].len(), ACCOUNTS, "{}", daemon.log());
    for f in fillers {
        f.logout().await;
    }
    // The next retry (after 4 or 8 s) gets in.
    let mut sorted = 0;
    for _ in 0..300 {
        let s = support::snapshot_with(&mut probe).await;
        sorted = (1..=ACCOUNTS)
            .filter(|n| s.get(&format!("F{n}")).is_some_and(|m| m.len() == 1))
            .count();
        if sorted == ACCOUNTS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sorted, ACCOUNTS, "{}", daemon.log());
    let told = eventually(Duration::from_secs(5), || async {
        accounts
            .iter()
            .all(|a| lines(a, "connected again, after") == 1)
    })
    .await;
    assert!(told, "{}", daemon.log());
    assert_eq!(daemon.stop(), Some(0));
    let after = support::snapshot_with(&mut probe).await;
    probe.logout().await;
    assert_eq!(total(&after), ACCOUNTS, "nothing lost or duplicated");
    assert!(after["INBOX"].is_empty());
}
