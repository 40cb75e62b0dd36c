//! The mailbox tests over every layout (`support::layout`): Dovecot's
//! default, folders under `INBOX.` with `.` (a shared namespace visible in
//! both), and Dovecot dressed as Gmail and as Exchange. The same rules and
//! mail must give exit 0, every message where the rules say in the
//! server's own names, nothing lost or duplicated, a dry run that shows
//! exactly what the run then does, and a second run that changes nothing.

mod support;

use support::scenario::{self, NOW, expected, ids, mail, operations, placement};
use support::{FULL, Layout, NO_MOVE, User, server, text, total};

/// One test per layout, each with a fresh user in it.
macro_rules! per_layout {
    ($(#[$doc:meta])* async fn $name:ident($user:ident, $names:ident) $body:block $(only [$($only:ident),+])?) => {
        mod $name {
            use super::*;
            $(#[$doc])*
            async fn body($user: User) {
                let $names = $user.layout.names();
                $body
            }
            per_layout!(@each $($($only),+)?);
        }
    };
    (@each) => { per_layout!(@each Plain, Dotted, Gmail, Exchange); };
    (@each $($layout:ident),+) => {
        $(
            #[tokio::test]
            #[allow(non_snake_case)]
            async fn $layout() {
                body(server().user_in(Layout::$layout).await).await
            }
        )+
    };
}

async fn fill(user: &User) {
    for (raw, flags, date) in scenario::messages() {
        user.append("INBOX", &raw, &flags, Some(date)).await;
    }
}

per_layout! {
    /// Every action kind, with counts before and after; the dry run names
    /// the server's folders and is what the run does.
    async fn every_action_kind(user, names) {
        fill(&user).await;
        let dir = tempfile::tempdir().unwrap();
        let cfg = user.config(dir.path(), FULL, "", scenario::RULES);
        let before = user.snapshot().await;
        assert_eq!(total(&before), 10);

        let dry = user.mailwarden(&["run", "--dry-run", "--now", NOW], &cfg);
        let (dry_out, err) = text(&dry);
        assert_eq!(dry.status.code(), Some(0), "{dry_out}\n{err}");
        let github = names.of("Notifications/GitHub");
        assert!(
            dry_out.contains(&format!("would move 1 message to {github} (a new folder)")),
            "{dry_out}"
        );
        assert_eq!(user.snapshot().await, before, "the dry run changed the mailbox");

        let o = user.mailwarden(&["run", "--now", NOW], &cfg);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
        assert_eq!(operations(&dry_out, true), operations(&out, false), "dry run:\n{dry_out}\nrun:\n{out}");
        let after = user.snapshot().await;
        assert_eq!(placement(&after), expected(&names));
        // 10 messages, one expunged for good, one copied: 10 again, and
        // each original exactly once outside the copies' folder.
        assert_eq!(total(&after), 10);

        // A second pass over the result changes nothing and journals
        // nothing; its dry run has nothing to do either.
        let journal = user.mailwarden_bare(&["log"]);
        let o = user.mailwarden(&["run", "--now", NOW], &cfg);
        assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
        assert_eq!(user.snapshot().await, after, "the second run changed something");
        assert_eq!(user.mailwarden_bare(&["log"]).stdout, journal.stdout);
        let dry = user.mailwarden(&["run", "--dry-run", "--now", NOW], &cfg);
        assert_eq!(operations(&text(&dry).0, true), vec![], "{:?}", text(&dry));
    }
}

per_layout! {
    /// Without MOVE: COPY, then UID EXPUNGE of exactly the moved UIDs.
    async fn without_move_the_fallback_expunges_exactly_the_moved_uids(user, names) {
        fill(&user).await;
        let dir = tempfile::tempdir().unwrap();
        let cfg = user.config(dir.path(), NO_MOVE, "", scenario::RULES);
        let o = user.mailwarden(&["run", "--now", NOW], &cfg);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
        assert!(
            out.contains("(COPY, then UID EXPUNGE: the server lacks MOVE)"),
            "{out}"
        );
        let after = user.snapshot().await;
        assert_eq!(placement(&after), expected(&names));
        assert_eq!(total(&after), 10);
    }
    only [Plain, Dotted]
}

per_layout! {
    /// `create_folders: false`: the messages stay, the dry run says so as
    /// the run does, and both exit 1.
    async fn a_folder_that_may_not_be_created_keeps_its_messages(user, names) {
        fill(&user).await;
        let dir = tempfile::tempdir().unwrap();
        let cfg = user.config(dir.path(), FULL, "    create_folders: false\n", scenario::RULES);
        let before = user.snapshot().await;
        let refusal = format!(
            "folder {} does not exist and create_folders is false",
            names.of("Notifications/GitHub")
        );
        let dry = user.mailwarden(&["run", "--dry-run", "--now", NOW], &cfg);
        let (out, err) = text(&dry);
        assert_eq!(dry.status.code(), Some(1), "{out}\n{err}");
        assert!(err.contains(&refusal), "{err}");
        let o = user.mailwarden(&["run", "--now", NOW], &cfg);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
        assert!(err.contains(&refusal), "{err}");
        let after = user.snapshot().await;
        assert!(
            ids(&after, "INBOX").iter().any(|m| m.starts_with("<m1@x>")),
            "GitHub mail must stay"
        );
        // The journal tells why it stayed, not only the run's output.
        let log = text(&user.mailwarden_bare(&["log"])).0;
        assert!(
            log.lines().any(|l| l.contains("failed") && l.contains("<m1@x>") && l.contains(&refusal)),
            "{log}"
        );
        // Only the expunged bounce is gone; messages that had somewhere to
        // go (the special folders of Gmail and Exchange exist) went.
        assert_eq!(total(&after), total(&before) - 1);
    }
}

per_layout! {
    /// Folder names from mail: non-ASCII names in modified UTF-7; a line
    /// break, an invisible or a text-direction character, or a level of
    /// blanks is refused for that message, which stays; the table shows
    /// such text escaped.
    async fn folder_names_from_mail_are_checked_before_they_are_made(user, names) {
        let tagged = [
            ("u1@x", "[Öl] price"),
            ("u2@x", "=?UTF-8?Q?[x=0D=0AA1_DELETE_INBOX]_y?="),
            ("u3@x", "=?UTF-8?Q?[a=E2=80=8Bb]_zero_width?="),
            ("u4@x", "=?UTF-8?Q?[evil=E2=80=AEfdp.exe]_bidi?="),
            ("u5@x", "[ ] blank"),
        ];
        for (id, subject) in tagged {
            user.deliver("INBOX", &mail(id, &format!("From: a@b\r\nSubject: {subject}"))).await;
        }
        let dir = tempfile::tempdir().unwrap();
        let rules = "  - name: Tagged\n    match: { subject: { regex: '^\\[(?P<tag>[^]]+)\\]' } }\n    actions: [move: \"Ümlaut/{tag}\"]\n";
        let cfg = user.config(dir.path(), FULL, "", rules);
        let dry = user.mailwarden(&["run", "--dry-run"], &cfg);
        let (out, err) = text(&dry);
        assert_eq!(dry.status.code(), Some(1), "{out}\n{err}");
        assert!(!out.contains('\u{202e}') && !err.contains('\u{202e}'), "raw text-direction character printed:\n{out}\n{err}");
        assert!(err.contains("U+202E, an invisible or text-direction character"), "{err}");
        let o = user.mailwarden(&["run"], &cfg);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
        for why in ["control character", "U+200B", "U+202E", "blank level"] {
            assert!(err.contains(why), "{why}: {err}");
        }
        let after = user.snapshot().await;
        assert_eq!(ids(&after, &names.of("Ümlaut/Öl")), ["<u1@x>"]);
        assert_eq!(ids(&after, "INBOX"), ["<u2@x>", "<u3@x>", "<u4@x>", "<u5@x>"], "the odd ones stay");
        assert_eq!(total(&after), 5);
    }
}

per_layout! {
    /// Rules on another mailbox, and a capture holding the server's
    /// separator: the source is opened by its server name, and a level the
    /// server cannot express is refused for that message, in the dry run
    /// as in the run. (Where `/` separates levels, Dovecot's Maildir++
    /// still refuses a `.` in a name, for reasons of its own that only
    /// its answer to CREATE tells: the message stays there too.)
    async fn source_mailboxes_and_captures_are_named_as_the_server_names_them(user, names) {
        let work = names.of("Work");
        user.append(&work, &mail("w1@x", "From: a@b\r\nList-Id: <rust-users.lists.example.org>\r\nSubject: one"), &[], None).await;
        user.append(&work, &mail("w2@x", "From: a@b\r\nList-Id: <v1.2.lists.example.org>\r\nSubject: two"), &[], None).await;
        let dir = tempfile::tempdir().unwrap();
        let rules = "  - name: Lists\n    mailbox: Work\n    match: { list: { regex: '^(?P<list>[a-z0-9.-]+)\\.lists\\.example\\.org$' } }\n    actions: [move: \"Lists/{list}\"]\n";
        let cfg = user.config(dir.path(), FULL, "", rules);
        let dotted = names.separator == '.';
        let dry = user.mailwarden(&["run", "--dry-run"], &cfg);
        let (out, err) = text(&dry);
        assert_eq!(dry.status.code(), Some(if dotted { 1 } else { 0 }), "{out}\n{err}");
        assert!(out.contains(&format!("test/{work} (UIDVALIDITY")), "{out}");
        let refused = if dotted {
            "folder level \"v1.2\" holds '.'"
        } else {
            "cannot create folder Lists/v1.2: CREATE refused by the server"
        };
        assert_eq!(err.contains(refused), dotted, "{err}");
        let o = user.mailwarden(&["run"], &cfg);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
        assert!(err.contains(refused), "{err}");
        let after = user.snapshot().await;
        assert_eq!(ids(&after, &names.of("Lists/rust-users")), ["<w1@x>"]);
        assert_eq!(ids(&after, &work), ["<w2@x>"]);
        assert_eq!(total(&after), 2);
    }
}

/// The shared namespace really is there, in both Dovecot layouts: the
/// tests above ran beside it.
#[tokio::test]
async fn a_shared_namespace_is_visible_beside_the_personal_one() {
    for (layout, shared) in [
        (Layout::Plain, "Public/shared-lists"),
        (Layout::Dotted, "Public.shared-lists"),
    ] {
        let user = server().user_in(layout).await;
        let mut c = user.conn(FULL).await;
        let names: Vec<String> = c
            .list_all()
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        c.logout().await;
        assert!(names.iter().any(|n| n == shared), "{layout:?}: {names:?}");
    }
}

per_layout! {
    /// `watch` follows new mail in every layout: the first pass, IDLE,
    /// and a move into a folder named as the server names it.
    async fn watch_moves_new_mail_into_server_named_folders(user, names) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = user.config(dir.path(), FULL, "    poll_interval: 30s\n", scenario::RULES);
        let daemon = support::Daemon::start(&user, &cfg);
        daemon.expect_log("idle started", 20).await;
        user.deliver(
            "INBOX",
            &mail("n1@x", "From: notifications@github.com\r\nSubject: new"),
        )
        .await;
        daemon
            .expect_in_folder(&user, &names.of("Notifications/GitHub"), 1, 20)
            .await;
        assert_eq!(daemon.stop(), Some(0));
        let after = user.snapshot().await;
        assert_eq!(total(&after), 1);
        assert_eq!(ids(&after, &names.of("Notifications/GitHub")), ["<n1@x> \\Seen"]);
    }
}

per_layout! {
    /// `undo` after a run that moved, flagged, copied and deleted: every
    /// message back in INBOX with its flags as before, the copy gone, the
    /// expunged one said to be beyond reach; the dry run shows what the
    /// undo then does, and a second undo does nothing.
    async fn undo_takes_back_a_whole_run(user, names) {
        fill(&user).await;
        let dir = tempfile::tempdir().unwrap();
        let cfg = user.config(dir.path(), FULL, "", scenario::RULES);
        let before = user.snapshot().await;
        let since = chrono::Utc::now().to_rfc3339();
        let o = user.mailwarden(&["run", "--now", NOW], &cfg);
        assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
        assert_eq!(placement(&user.snapshot().await), expected(&names));

        let dry = user.mailwarden(&["undo", "--dry-run", "--since", &since], &cfg);
        let (dry_out, err) = text(&dry);
        assert_eq!(dry.status.code(), Some(0), "{dry_out}\n{err}");
        assert!(err.contains("deleted for good (expunged); that cannot be taken back"), "{err}");
        let o = user.mailwarden(&["undo", "--since", &since], &cfg);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
        // What the dry run said, the undo did.
        let would: Vec<String> = dry_out
            .lines()
            .filter(|l| !l.starts_with("would take back"))
            .filter_map(|l| l.strip_prefix("would "))
            .map(|l| {
                let (verb, rest) = l.split_once(' ').unwrap();
                let done = match verb {
                    "move" => "moved",
                    "remove" => "removed",
                    "flag" => "flagged",
                    "unflag" => "unflagged",
                    other => other,
                };
                format!("{done} {rest}")
            })
            .collect();
        let did: Vec<&str> = out.lines().filter(|l| !l.starts_with("took back")).collect();
        assert_eq!(would, did, "dry run:\n{dry_out}\nundo:\n{out}");
        // Five moves, a copy, two flags and an unflag; not the expunge.
        assert!(out.contains("took back 9 actions"), "{out}");

        let after = user.snapshot().await;
        // Everything but the bounce (expunged for good) is back, flags and
        // all; the copy and the folders' contents are gone.
        let mut want: Vec<String> = ids(&before, "INBOX")
            .into_iter()
            .filter(|m| !m.starts_with("<m7@x>"))
            .collect();
        want.sort();
        let mut got = ids(&after, "INBOX");
        got.sort();
        assert_eq!(got, want);
        assert_eq!(total(&after), 9, "{after:?}");

        // Taken back once is taken back: nothing more to do.
        let journal = user.mailwarden_bare(&["log"]).stdout;
        let o = user.mailwarden(&["undo", "--since", &since], &cfg);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
        assert!(out.contains("took back 0 actions"), "{out}");
        assert_eq!(user.snapshot().await, after);
        assert_eq!(user.mailwarden_bare(&["log"]).stdout, journal);
    }
}

per_layout! {
    /// A first pass over more mail than `max_actions` allows is no
    /// surprise: `run` shows the summary and stops, the dry run says it
    /// would, `watch` does not start the account and says how to accept,
    /// and `run --no-limit` goes ahead.
    async fn a_pass_over_more_than_max_actions_stops_until_accepted(user, names) {
        fill(&user).await;
        let dir = tempfile::tempdir().unwrap();
        let cfg = user.config(dir.path(), FULL, "    max_actions: 3\n", scenario::RULES);
        let before = user.snapshot().await;
        let dry = user.mailwarden(&["run", "--dry-run", "--now", NOW], &cfg);
        let (out, err) = text(&dry);
        assert_eq!(dry.status.code(), Some(1), "{out}\n{err}");
        assert!(err.contains("this pass would act on 8 messages in INBOX, more than max_actions (3) allows"), "{err}");
        assert!(out.contains("would move 1 message to"), "the plan is still shown: {out}");
        let o = user.mailwarden(&["run", "--now", NOW], &cfg);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
        assert!(err.contains("nothing was done there"), "{err}");
        assert!(out.contains("stopped before acting: rule \"GitHub\": 1 message, rule \"Lists\": 1 message"), "{out}");
        assert_eq!(user.snapshot().await, before, "nothing may change");

        let daemon = support::Daemon::start(&user, &cfg);
        daemon.expect_log("this account is not watched", 20).await;
        assert!(daemon.log_has("mailwarden run --account test --no-limit"), "{}", daemon.log());
        assert_eq!(daemon.stop(), Some(0));
        assert_eq!(user.snapshot().await, before, "nothing may change");

        let o = user.mailwarden(&["run", "--no-limit", "--now", NOW], &cfg);
        assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
        assert_eq!(placement(&user.snapshot().await), expected(&names));
        // After that, a pass has nothing left to do, well within the limit.
        let o = user.mailwarden(&["run", "--now", NOW], &cfg);
        assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    }
    only [Plain, Dotted]
}

per_layout! {
    /// A message moved again by hand after mailwarden moved it is left
    /// where the user put it; the undo says so and takes back the rest.
    async fn undo_leaves_a_message_moved_by_hand_alone(user, names) {
        fill(&user).await;
        let dir = tempfile::tempdir().unwrap();
        let cfg = user.config(dir.path(), FULL, "", scenario::RULES);
        let since = chrono::Utc::now().to_rfc3339();
        let o = user.mailwarden(&["run", "--now", NOW], &cfg);
        assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
        // The user files the GitHub message somewhere else by hand.
        let github = names.of("Notifications/GitHub");
        let mine = names.of("Mine");
        {
            use mailwarden::imap::command::SearchKey;
            use mailwarden::imap::types::Mailbox;
            let mut c = user.conn(FULL).await;
            c.create(&Mailbox::verbatim(mine.as_str())).await.unwrap();
            c.open(&Mailbox::verbatim(github.as_str()), mailwarden::imap::Access::ReadWrite)
                .await
                .unwrap();
            let all = c.search(&SearchKey::All).await.unwrap();
            c.transfer(&all, &Mailbox::verbatim(mine.as_str()), true).await.unwrap();
            c.logout().await;
        }
        let o = user.mailwarden(&["undo", "--since", &since], &cfg);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
        assert!(
            err.contains(&format!("cannot undo the move of <m1@x> from INBOX to {github}")) && err.contains("moved or deleted since; left alone"),
            "{err}"
        );
        let after = user.snapshot().await;
        assert_eq!(ids(&after, &mine), ["<m1@x> \\Seen"], "{after:?}");
        assert_eq!(ids(&after, "INBOX").len(), 8, "{after:?}");
        assert_eq!(total(&after), 9);
    }
    only [Plain, Dotted]
}

per_layout! {
    /// The rule language where it meets the server: `junk` finds each
    /// server's junk folder; a Delivered-To detail with dots becomes one
    /// folder level through `|flat` (a `.` server would otherwise refuse
    /// it); a keyword set by one rule sorts the message in the next; a
    /// second delivery of a Message-ID is a duplicate. Counted before and
    /// after, and a second run changes nothing.
    async fn the_rule_language_on_the_server(user, names) {
        let at = |s: &str| Some(chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc());
        let mail = |id: &str, extra: &str| {
            format!("From: a@example.org\r\nTo: me@example.org\r\nMessage-ID: <{id}>\r\nSubject: s\r\n{extra}\r\nbody {id}\r\n").into_bytes()
        };
        let msgs = [
            (mail("spam@x", "X-Spam-Score: 9.1\r\n"), "2026-05-01T10:00:00Z"),
            (mail("plus@x", "Delivered-To: me+lists.rust@example.org\r\n"), "2026-05-01T10:01:00Z"),
            (mail("ci@x", "X-Build: failed\r\n"), "2026-05-01T10:02:00Z"),
            (mail("twice@x", ""), "2026-05-01T10:03:00Z"),
            (mail("twice@x", "X-Again: yes\r\n"), "2026-05-01T10:04:00Z"),
            (mail("plain@x", "X-Spam-Score: 1.0\r\n"), "2026-05-01T10:05:00Z"),
        ];
        for (raw, date) in &msgs {
            user.append("INBOX", raw, &[], at(date)).await;
        }
        let rules = r#"  - name: junk
    match: { header: { X-Spam-Score: { over: 5 } } }
    actions: [junk]
  - name: plus
    match: { address: { Delivered-To: { detail: { regex: '^(?P<l>.+)$' } } } }
    actions: [move: "Plus/{l|flat|title}"]
  - name: tag
    match: { header: { X-Build: failed } }
    actions: [flag: $CI]
  - name: ci
    match: { keyword: $CI }
    actions: [move: CI]
  - name: dups
    match: { duplicate: true }
    actions: [move: Duplicates]
"#;
        let dir = tempfile::tempdir().unwrap();
        let cfg = user.config(dir.path(), FULL, "", rules);
        assert_eq!(total(&user.snapshot().await), 6);
        let o = user.mailwarden(&["run"], &cfg);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
        let after = user.snapshot().await;
        assert_eq!(total(&after), 6, "{after:?}");
        let junk = match user.layout {
            Layout::Gmail => "[Gmail]/Spam".to_string(),
            Layout::Exchange => "Junk Email".to_string(),
            _ => names.of("Junk"),
        };
        assert_eq!(ids(&after, &junk), ["<spam@x>"], "{after:?}");
        assert_eq!(ids(&after, &names.of("Plus/Lists-Rust")), ["<plus@x>"], "{after:?}");
        assert_eq!(ids(&after, &names.of("CI")), ["<ci@x> $CI"], "{after:?}");
        assert_eq!(ids(&after, &names.of("Duplicates")), ["<twice@x>"], "{after:?}");
        assert_eq!(ids(&after, "INBOX"), ["<plain@x>", "<twice@x>"], "{after:?}");
        let o = user.mailwarden(&["run"], &cfg);
        assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
        assert_eq!(user.snapshot().await, after, "the second run changed something");
    }
}
