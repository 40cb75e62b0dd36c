//! Cyrus IMAP 3.6 (Debian's naming and upstream's) and Courier-IMAP 5
//! (`support::interop`), first as servers: they take logins on both ports,
//! say what tests/servers/README.md's table says they say, keep users apart,
//! and poll for new mail during IDLE as configured. Then with mailwarden:
//! the scenario every layout passes (`support::scenario`, as
//! tests/layouts.rs runs it on Dovecot) gives the same placement in each
//! server's own names, over STARTTLS; and `watch` acts on new mail within
//! its `poll_interval` although these servers tell an idling client of it
//! only every minute. They need the servers installed
//! (`tests/servers/install.sh`) and root.

mod support;

use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::interop::{
    Client, Flavour, Interop, InteropUser, Listed, Port, is_personal, namespace_prefixes, quote,
    server,
};
use support::scenario::{self, NOW, Names, Snapshot, ids, mail, operations, placement};
use support::{text, total};

/// What a flavour is expected to say.
struct Expected {
    /// In the greeting: which server answered.
    greeting: &'static str,
    /// The personal part of the NAMESPACE reply.
    personal: &'static str,
    /// MOVE, UIDPLUS, SPECIAL-USE, CONDSTORE.
    caps: [(&'static str, bool); 4],
}

fn expected(flavour: Flavour) -> Expected {
    match flavour {
        Flavour::CyrusDebian => Expected {
            greeting: "Cyrus IMAP 3.6",
            personal: r#"(("INBOX." "."))"#,
            caps: [
                ("MOVE", true),
                ("UIDPLUS", true),
                ("SPECIAL-USE", true),
                ("CONDSTORE", true),
            ],
        },
        Flavour::CyrusUpstream => Expected {
            greeting: "Cyrus IMAP 3.6",
            personal: r#"(("" "/"))"#,
            caps: [
                ("MOVE", true),
                ("UIDPLUS", true),
                ("SPECIAL-USE", true),
                ("CONDSTORE", true),
            ],
        },
        Flavour::Courier => Expected {
            greeting: "Courier-IMAP ready",
            personal: r#"(("INBOX." "."))"#,
            caps: [
                ("MOVE", false),
                ("UIDPLUS", true),
                ("SPECIAL-USE", false),
                ("CONDSTORE", false),
            ],
        },
    }
}

fn ok(c: &mut Client, s: &Interop, command: &str) -> support::interop::Reply {
    let reply = c
        .command(command)
        .unwrap_or_else(|e| panic!("{}: {command}: {e}\n{}", s.flavour, s.log()));
    assert!(reply.is_ok(), "{}: {command}: {reply:?}", s.flavour);
    reply
}

/// The mailbox names a LIST "" "*" shows, with their separators.
fn list(c: &mut Client, s: &Interop) -> Vec<(String, String)> {
    c.list()
        .unwrap_or_else(|e| panic!("{}: LIST: {e}", s.flavour))
        .into_iter()
        .map(|l| (l.name, l.separator.map(String::from).unwrap_or_default()))
        .collect()
}

/// Logs a fresh user in over `kind` and checks the greeting, the transport,
/// the capabilities after login, the namespace, where folders may be made,
/// and an empty INBOX.
fn smoke(flavour: Flavour, kind: Port) {
    let s = server(flavour);
    let want = expected(flavour);
    let user = s.user();
    let mut c = s.client(kind);
    assert!(
        c.greeting.starts_with("* OK") && c.greeting.contains(want.greeting),
        "{flavour}: greeting {:?}",
        c.greeting
    );
    assert_eq!(c.is_tls(), kind != Port::Plain, "{flavour} {kind:?}");
    if kind != Port::Tls {
        // Asked again on a new connection: STARTTLS is offered in clear.
        let caps = s.client(Port::Plain).capabilities().unwrap();
        assert!(caps.iter().any(|c| c == "STARTTLS"), "{flavour}: {caps:?}");
    }
    let reply = c.login(&user.name, &user.password).unwrap();
    assert!(
        reply.is_ok(),
        "{flavour} {kind:?} login: {reply:?}\n{}",
        s.log()
    );

    let caps = c.capabilities().unwrap();
    for (cap, present) in want.caps {
        assert_eq!(
            caps.iter().any(|c| c == cap),
            present,
            "{flavour}: {cap} in {caps:?}"
        );
    }
    assert!(caps.iter().any(|c| c == "IDLE"), "{flavour}: {caps:?}");

    let namespace = ok(&mut c, s, "NAMESPACE");
    let namespace = namespace.data("NAMESPACE");
    assert!(
        namespace.len() == 1 && namespace[0].starts_with(want.personal),
        "{flavour}: NAMESPACE {namespace:?}"
    );

    let status = ok(&mut c, s, "SELECT INBOX");
    assert!(
        status.untagged.iter().any(|l| l == "0 EXISTS"),
        "{flavour}: a fresh INBOX: {status:?}"
    );

    // A folder two levels down in the personal namespace.
    let folder = flavour.folder(&["Lists", "rust"]);
    ok(&mut c, s, &format!("CREATE {}", quote(&folder)));
    let names = list(&mut c, s);
    let sep = flavour.separator().to_string();
    assert!(
        names.contains(&(folder.clone(), sep.clone())),
        "{flavour}: {folder} with {sep:?} in {names:?}"
    );
    if flavour.personal_prefix().is_empty() {
        // Upstream naming: folders sit beside INBOX.
        assert!(!folder.starts_with("INBOX"), "{folder}");
    } else {
        // Outside the personal prefix: refused, not a syntax error.
        let reply = c.command("CREATE Outside").unwrap();
        assert_eq!(reply.status, "NO", "{flavour}: CREATE Outside: {reply:?}");
        assert!(
            !list(&mut c, s).iter().any(|(n, _)| n == "Outside"),
            "{flavour}"
        );
    }
    ok(&mut c, s, "LOGOUT");
}

#[test]
fn cyrus_debian_plain_and_starttls() {
    smoke(Flavour::CyrusDebian, Port::Plain);
    smoke(Flavour::CyrusDebian, Port::StartTls);
}

#[test]
fn cyrus_debian_implicit_tls() {
    smoke(Flavour::CyrusDebian, Port::Tls);
}

#[test]
fn cyrus_upstream_plain_and_starttls() {
    smoke(Flavour::CyrusUpstream, Port::Plain);
    smoke(Flavour::CyrusUpstream, Port::StartTls);
}

#[test]
fn cyrus_upstream_implicit_tls() {
    smoke(Flavour::CyrusUpstream, Port::Tls);
}

#[test]
fn courier_plain_and_starttls() {
    smoke(Flavour::Courier, Port::Plain);
    smoke(Flavour::Courier, Port::StartTls);
}

#[test]
fn courier_implicit_tls() {
    smoke(Flavour::Courier, Port::Tls);
}

/// Two users at once: each sees only the mail and folders it made, cannot
/// open the other's INBOX, and cannot log in with the other's password.
fn isolation(flavour: Flavour) {
    let s = server(flavour);
    let made: Vec<InteropUser> = std::thread::scope(|scope| {
        let a = scope.spawn(|| s.user());
        let b = scope.spawn(|| s.user());
        vec![a.join().unwrap(), b.join().unwrap()]
    });
    assert_ne!(made[0].name, made[1].name);
    let written = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for (me, other) in [(&made[0], &made[1]), (&made[1], &made[0])] {
            let written = &written;
            scope.spawn(move || {
                let mut c = s.login(me, Port::Plain);
                let mail = format!(
                    "Message-ID: <{0}@interop.test>\r\nSubject: for {0}\r\n\r\nhello\r\n",
                    me.name
                );
                let reply = c.append("INBOX", mail.as_bytes()).unwrap();
                assert!(reply.is_ok(), "{flavour}: APPEND: {reply:?}");
                ok(
                    &mut c,
                    s,
                    &format!("CREATE {}", quote(&flavour.folder(&[&me.name]))),
                );
                // Both have written before either looks (bounded: the
                // other thread may have failed).
                written.fetch_add(1, Ordering::SeqCst);
                let deadline = Instant::now() + Duration::from_secs(30);
                while written.load(Ordering::SeqCst) < 2 {
                    assert!(
                        Instant::now() < deadline,
                        "{flavour}: the other user never wrote"
                    );
                    std::thread::sleep(Duration::from_millis(10));
                }
                let status = ok(&mut c, s, "SELECT INBOX");
                assert!(
                    status.untagged.iter().any(|l| l == "1 EXISTS"),
                    "{flavour} {}: {status:?}",
                    me.name
                );
                let fetch = ok(&mut c, s, "FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]");
                let text = fetch.untagged.join("\n");
                assert!(text.contains(&format!("for {}", me.name)), "{text}");
                assert!(!text.contains(&other.name), "{text}");
                let names = list(&mut c, s);
                assert!(
                    !names.iter().any(|(n, _)| n.contains(&other.name)),
                    "{flavour} {} sees {}: {names:?}",
                    me.name,
                    other.name
                );
                if flavour.is_cyrus() {
                    let theirs = format!("user{}{}", flavour.separator(), other.name);
                    let reply = c.command(&format!("SELECT {}", quote(&theirs))).unwrap();
                    assert_eq!(reply.status, "NO", "{flavour}: SELECT {theirs}: {reply:?}");
                }
                ok(&mut c, s, "LOGOUT");
                let mut c = s.client(Port::Plain);
                let reply = c.login(&me.name, &other.password).unwrap();
                assert_eq!(reply.status, "NO", "{flavour}: wrong password: {reply:?}");
            });
        }
    });
}

#[test]
fn cyrus_debian_users_are_apart() {
    isolation(Flavour::CyrusDebian);
}

#[test]
fn cyrus_upstream_users_are_apart() {
    isolation(Flavour::CyrusUpstream);
}

#[test]
fn courier_users_are_apart() {
    isolation(Flavour::Courier);
}

/// An instance of its own polling every second announces an APPEND to an
/// idling client within about that; dropped, it is gone, port and
/// directory.
fn idle_poll(flavour: Flavour) {
    let poll = Duration::from_secs(1);
    let s = Interop::start(flavour, poll);
    assert_eq!(s.idle_poll(), poll);
    let user = s.user();
    let mut idler = s.login(&user, Port::Plain);
    ok(&mut idler, &s, "SELECT INBOX");
    let continuation = idler.start_idle().unwrap();
    assert!(continuation.starts_with('+'), "{flavour}: {continuation}");
    let mut writer = s.login(&user, Port::Plain);
    let sent = Instant::now();
    let reply = writer
        .append("INBOX", b"Subject: ping\r\n\r\nping\r\n")
        .unwrap();
    assert!(reply.is_ok(), "{flavour}: {reply:?}");
    let mut seen = None;
    // Bounded: lines come at least every poll; 20 s of them at most.
    while sent.elapsed() < Duration::from_secs(20) {
        let line = idler.read_line().unwrap();
        if line.ends_with(" EXISTS") {
            seen = Some((line, sent.elapsed()));
            break;
        }
    }
    let (line, after) = seen.unwrap_or_else(|| panic!("{flavour}: no EXISTS while idling"));
    assert_eq!(line, "* 1 EXISTS", "{flavour}");
    assert!(
        after < poll + Duration::from_secs(3),
        "{flavour}: {after:?}"
    );
    let done = idler.done_idle().unwrap();
    assert!(done.is_ok(), "{flavour}: DONE: {done:?}");

    let (port, dir) = (s.plain_port, s.dir().to_path_buf());
    drop((idler, writer));
    drop(s);
    assert!(
        std::net::TcpStream::connect((support::interop::HOST, port)).is_err(),
        "{flavour}: still listening on {port} once dropped"
    );
    assert!(!dir.exists(), "{flavour}: {} left behind", dir.display());
}

#[test]
fn cyrus_debian_idle_poll() {
    idle_poll(Flavour::CyrusDebian);
}

#[test]
fn cyrus_upstream_idle_poll() {
    idle_poll(Flavour::CyrusUpstream);
}

#[test]
fn courier_idle_poll() {
    idle_poll(Flavour::Courier);
}

/// The harness reads LIST and NAMESPACE answers as the servers write them.
#[test]
fn list_and_namespace_answers_are_read() {
    let l = Listed::parse(r#"(\HasNoChildren \Trash) "." "INBOX.a \"b\"""#).unwrap();
    assert_eq!(l.name, "INBOX.a \"b\"");
    assert_eq!(l.separator, Some('.'));
    assert!(l.has("\\trash"));
    assert_eq!(Listed::parse("() NIL INBOX").unwrap().separator, None);
    assert_eq!(
        Listed::parse("() \"/\" {5}\r\nA b c").unwrap().name,
        "A b c"
    );
    // As Cyrus (both namings) and Courier answer NAMESPACE.
    let debian = namespace_prefixes(r#"(("INBOX." ".")) (("user." ".")) (("" "."))"#).unwrap();
    assert_eq!(
        debian,
        [
            vec!["INBOX.".to_string()],
            vec!["user.".into()],
            vec!["".into()]
        ]
    );
    let upstream =
        namespace_prefixes(r#"(("" "/")) (("Other Users/" "/")) (("Shared Folders/" "/"))"#)
            .unwrap();
    let courier =
        namespace_prefixes(r##"(("INBOX." ".")) NIL (("#shared." ".")("shared." "."))"##).unwrap();
    assert_eq!(courier[1], Vec::<String>::new());
    assert_eq!(courier[2], ["#shared.", "shared."]);
    assert!(namespace_prefixes(r#"(("" "/"))"#).is_none());
    for (name, ns, personal) in [
        ("INBOX", &debian, true),
        ("INBOX.Trash", &debian, true),
        ("user.bob", &debian, false),
        ("Shared", &debian, false),
        ("Trash", &upstream, true),
        ("Other Users/bob", &upstream, false),
        ("Shared Folders/x", &upstream, false),
        ("INBOX.Trash", &courier, true),
        ("shared.x", &courier, false),
    ] {
        assert_eq!(is_personal(name, ns), personal, "{name} in {ns:?}");
    }
}

// ---- The scenario, with mailwarden

/// How the flavour names the scenario's folders. A fresh user has INBOX
/// alone (the scenario checks it): no `\Trash` or `\Archive` folder, so
/// `delete` and `archive` fall back to `Trash` and `Archive` in the
/// personal namespace, which mailwarden creates.
fn names(flavour: Flavour) -> Names {
    Names::plain(flavour.personal_prefix(), flavour.separator())
}

/// Exit code 0, or a failure showing what mailwarden said.
fn succeeded(flavour: Flavour, what: &str, o: &Output) -> (String, String) {
    let (out, err) = text(o);
    assert_eq!(o.status.code(), Some(0), "{flavour}: {what}:\n{out}\n{err}");
    (out, err)
}

/// Messages per mailbox, for the figures a run prints.
fn counts(s: &Snapshot) -> Vec<(String, usize)> {
    s.iter().map(|(k, v)| (k.clone(), v.len())).collect()
}

/// The scenario on one flavour, mailwarden connecting as `kind` says:
/// the same placement as on every Dovecot layout, in the server's names.
fn scenario_on(flavour: Flavour, kind: Port) {
    let s = server(flavour);
    let user = s.user();
    let names = names(flavour);

    // What a fresh user has: INBOX alone, no special-use folder.
    let mut c = s.login(&user, Port::Plain);
    let listed = c.list().unwrap();
    assert_eq!(
        listed.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
        ["INBOX"],
        "{flavour}: a fresh user's folders: {listed:?}"
    );
    let special = c.command(r#"LIST "" "*" RETURN (SPECIAL-USE)"#).unwrap();
    assert!(
        !special
            .untagged
            .iter()
            .any(|l| ["\\Trash", "\\Archive", "\\All"]
                .iter()
                .any(|a| l.contains(a))),
        "{flavour}: special-use folders of a fresh user: {special:?}"
    );
    for (raw, flags, arrival) in scenario::messages() {
        let reply = c.append_with("INBOX", &flags, Some(arrival), &raw).unwrap();
        assert!(reply.is_ok(), "{flavour}: APPEND: {reply:?}");
    }
    let _ = c.command("LOGOUT");
    let before = s.snapshot(&user);
    assert_eq!(total(&before), 10, "{flavour}: {before:?}");
    assert_eq!(before.len(), 1, "{flavour}: {before:?}");
    for flagged in ["<m5@x> \\Seen", "<m8@x> \\Flagged", "<m10@x> \\Deleted"] {
        assert!(
            ids(&before, "INBOX").iter().any(|m| m == flagged),
            "{flavour}: {flagged} in {before:?}"
        );
    }

    let agent = s.agent(&user, kind, "", scenario::RULES);
    let dry = agent.run(&["run", "--dry-run", "--now", NOW]);
    let (dry_out, _) = succeeded(flavour, "dry run", &dry);
    let github = names.of("Notifications/GitHub");
    assert!(
        dry_out.contains(&format!("would move 1 message to {github} (a new folder)")),
        "{flavour}: {dry_out}"
    );
    assert_eq!(
        s.snapshot(&user),
        before,
        "{flavour}: the dry run changed the mailbox"
    );

    let run = agent.run(&["run", "--now", NOW]);
    let (out, _) = succeeded(flavour, "run", &run);
    let done = operations(&out, false);
    assert!(!done.is_empty(), "{flavour}: the run did nothing:\n{out}");
    assert_eq!(
        operations(&dry_out, true),
        done,
        "{flavour}: dry run:\n{dry_out}\nrun:\n{out}"
    );
    // Without MOVE (Courier), moves are COPY, \Deleted and UID EXPUNGE of
    // exactly those UIDs: m10, \Deleted by another client, stays.
    let fallback = "(COPY, then UID EXPUNGE: the server lacks MOVE)";
    assert_eq!(
        out.contains(fallback),
        flavour == Flavour::Courier,
        "{flavour}: {out}"
    );
    let after = s.snapshot(&user);
    assert_eq!(
        placement(&after),
        scenario::expected(&names),
        "{flavour}: run:\n{out}"
    );
    // One bounce expunged for good, one invoice copied: 10 again.
    assert_eq!(total(&after), 10, "{flavour}: {after:?}");

    // A second run over the result changes nothing and journals nothing;
    // a dry run then has nothing to do.
    let journal = agent.bare(&["log"]);
    let (journal_text, _) = succeeded(flavour, "log", &journal);
    assert!(
        journal_text.contains("m1@x") && journal_text.contains("rule \"GitHub\""),
        "{flavour}: the first run's journal: {journal_text}"
    );
    let again = agent.run(&["run", "--now", NOW]);
    let (again_out, _) = succeeded(flavour, "second run", &again);
    assert_eq!(
        operations(&again_out, false),
        vec![],
        "{flavour}: {again_out}"
    );
    assert_eq!(
        s.snapshot(&user),
        after,
        "{flavour}: the second run changed something"
    );
    assert_eq!(
        text(&agent.bare(&["log"])).0,
        journal_text,
        "{flavour}: the second run journaled"
    );
    let dry_again = agent.run(&["run", "--dry-run", "--now", NOW]);
    let (dry_out, _) = succeeded(flavour, "second dry run", &dry_again);
    assert_eq!(operations(&dry_out, true), vec![], "{flavour}: {dry_out}");

    eprintln!(
        "{flavour} over {kind:?}: before {:?}; after {:?}; exit codes: dry run {:?}, run {:?}, second run {:?}, second dry run {:?}",
        counts(&before),
        counts(&after),
        dry.status.code(),
        run.status.code(),
        again.status.code(),
        dry_again.status.code()
    );
}

#[test]
fn cyrus_debian_scenario() {
    scenario_on(Flavour::CyrusDebian, Port::StartTls);
}

#[test]
fn cyrus_upstream_scenario() {
    scenario_on(Flavour::CyrusUpstream, Port::StartTls);
}

#[test]
fn courier_scenario() {
    scenario_on(Flavour::Courier, Port::StartTls);
}

// ---- Late IDLE, with mailwarden

/// What the server's IDLE waits before it looks for new mail: 60 s, as
/// Debian ships both servers (Courier's IMAP_IDLE_TIMEOUT, Cyrus's
/// imapidlepoll without idled).
const LATE_IDLE: Duration = Duration::from_secs(60);

/// The `poll_interval` the daemon is given, and how soon after its APPEND
/// new mail must have been moved: a few intervals, well under the
/// server's own minute.
const POLL_INTERVAL: &str = "    poll_interval: 2s\n";
const MOVED_WITHIN: Duration = Duration::from_secs(10);

const WATCH_RULES: &str = "  - name: GitHub\n    match: { from: { domain: github.com } }\n    actions: [move: Notifications]\n";

fn github(id: &str) -> Vec<u8> {
    mail(
        id,
        "From: GitHub <notifications@github.com>\r\nSubject: new",
    )
}

/// The MESSAGES count STATUS gives for `mailbox`.
fn messages_in(c: &mut Client, s: &Interop, mailbox: &str) -> usize {
    let reply = ok(c, s, &format!("STATUS {} (MESSAGES)", quote(mailbox)));
    let line = reply.data("STATUS").first().copied().unwrap_or_default();
    line.split_once("MESSAGES ")
        .and_then(|(_, n)| n.trim_end_matches(')').trim().parse().ok())
        .unwrap_or_else(|| panic!("{}: STATUS {mailbox}: {reply:?}", s.flavour))
}

/// `mailwarden watch` with a 2 s `poll_interval` over implicit TLS moves a
/// message APPENDed by another connection within a few seconds, while the
/// server has not yet told an idling client of its own about it.
fn late_idle(flavour: Flavour) {
    // The shared server, unless MAILWARDEN_INTEROP_IDLE_POLL made it
    // prompt: then the test would not show what it is for.
    let own;
    let s = if server(flavour).idle_poll() >= LATE_IDLE {
        server(flavour)
    } else {
        own = Interop::start(flavour, LATE_IDLE);
        &own
    };
    let user = s.user();
    let notifications = flavour.folder(&["Notifications"]);
    // The first pass moves this one, and so makes the folder.
    let mut writer = s.login(&user, Port::Plain);
    let reply = writer.append("INBOX", &github("w0@x")).unwrap();
    assert!(reply.is_ok(), "{flavour}: APPEND: {reply:?}");

    let agent = s.agent(&user, Port::Tls, POLL_INTERVAL, WATCH_RULES);
    let started = Instant::now();
    let watcher = agent.watch();
    // Idling means the first pass is done.
    let idling = watcher
        .wait_log("idle started", started, Duration::from_secs(30))
        .unwrap_or_else(|| panic!("{flavour}: the daemon never idled:\n{}", watcher.log()));
    assert_eq!(
        messages_in(&mut writer, s, &notifications),
        1,
        "{flavour}: the first pass:\n{}",
        watcher.log()
    );
    assert_eq!(messages_in(&mut writer, s, "INBOX"), 0, "{flavour}");

    // A client of our own, idling on INBOX from before the new mail.
    let mut idler = s.login(&user, Port::Plain);
    ok(&mut idler, s, "SELECT INBOX");
    let continuation = idler.start_idle().unwrap();
    assert!(continuation.starts_with('+'), "{flavour}: {continuation}");

    let sent = Instant::now();
    let reply = writer.append("INBOX", &github("w1@x")).unwrap();
    assert!(reply.is_ok(), "{flavour}: APPEND: {reply:?}");
    let mut moved = None;
    // Bounded: MOVED_WITHIN, a STATUS every 100 ms.
    while sent.elapsed() < MOVED_WITHIN {
        if messages_in(&mut writer, s, &notifications) == 2 {
            moved = Some(sent.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let delay = moved.unwrap_or_else(|| {
        panic!(
            "{flavour}: new mail not moved within {MOVED_WITHIN:?}:\n{}",
            watcher.log()
        )
    });
    // Meanwhile the server has told the idling client nothing: a daemon
    // that waited for IDLE to announce the mail would still be waiting.
    let mut told = Vec::new();
    for _ in 0..50 {
        match idler.read_line_within(Duration::from_millis(200)).unwrap() {
            Some(line) => told.push(line),
            None => break,
        }
    }
    assert!(
        !told
            .iter()
            .any(|l| l.ends_with(" EXISTS") || l.ends_with(" EXPUNGE")),
        "{flavour}: the server announced the mail to an idler within {:?}: {told:?}",
        sent.elapsed()
    );
    let done = idler.done_idle().unwrap();
    assert!(done.is_ok(), "{flavour}: DONE: {done:?}");

    // The daemon moved it after an IDLE it ended itself (its
    // poll_interval), not after one the server ended by announcing mail.
    // It logs the action once the journal has it on disk, which a loaded
    // machine's fsync can hold back after the move: bounded wait.
    for _ in 0..100 {
        if watcher.log().contains("message_id=\"w1@x\"") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = watcher.lines();
    let moved_at = log
        .iter()
        .position(|l| l.contains("message_id=\"w1@x\" rule=\"GitHub\""))
        .unwrap_or_else(|| panic!("{flavour}: no action logged:\n{}", watcher.log()));
    let woke = log[..moved_at]
        .iter()
        .rev()
        .find(|l| l.contains("idle ended"));
    assert!(
        woke.is_some_and(|l| l.contains("woke=Timeout")),
        "{flavour}: {woke:?}\n{}",
        watcher.log()
    );
    assert_eq!(watcher.stop(), Some(0), "{flavour}");
    let after = s.snapshot(&user);
    assert_eq!(ids(&after, "INBOX"), Vec::<String>::new(), "{flavour}");
    assert_eq!(
        ids(&after, &notifications),
        ["<w0@x>", "<w1@x>"],
        "{flavour}: {after:?}"
    );
    assert_eq!(total(&after), 2, "{flavour}: {after:?}");
    eprintln!(
        "{flavour}: late IDLE: moved {delay:?} after the APPEND (server IDLE poll {:?}, poll_interval 2s; first pass done {:?} after the start)",
        s.idle_poll(),
        idling - started
    );
}

#[test]
fn cyrus_debian_late_idle() {
    late_idle(Flavour::CyrusDebian);
}

#[test]
fn cyrus_upstream_late_idle() {
    late_idle(Flavour::CyrusUpstream);
}

#[test]
fn courier_late_idle() {
    late_idle(Flavour::Courier);
}

const FLAGGED_RULES: &str =
    "  - name: Starred\n    match: { flagged: true }\n    actions: [move: Starred]\n";

/// Another client flags a message the daemon has already decided. With
/// CONDSTORE (Cyrus) the next pass asks for flags changed since the last
/// and moves it within a few `poll_interval`s; without it (Courier) only
/// mail above the mark is read between sweeps, so the message waits for
/// the next sweep (here an hour away) or `run`, which then moves it.
fn flag_changed_by_another_client(flavour: Flavour) {
    let s = server(flavour);
    let user = s.user();
    let starred = flavour.folder(&["Starred"]);
    let mut writer = s.login(&user, Port::Plain);
    let reply = writer.append("INBOX", &github("f1@x")).unwrap();
    assert!(reply.is_ok(), "{flavour}: APPEND: {reply:?}");
    let condstore = writer
        .capabilities()
        .unwrap()
        .iter()
        .any(|c| c == "CONDSTORE");
    assert_eq!(condstore, flavour.is_cyrus(), "{flavour}");

    let agent = s.agent(&user, Port::Tls, POLL_INTERVAL, FLAGGED_RULES);
    let started = Instant::now();
    let watcher = agent.watch();
    watcher
        .wait_log("idle started", started, Duration::from_secs(30))
        .unwrap_or_else(|| panic!("{flavour}: the daemon never idled:\n{}", watcher.log()));
    ok(&mut writer, s, "SELECT INBOX");
    ok(&mut writer, s, "STORE 1 +FLAGS (\\Flagged)");
    let flagged = Instant::now();
    let window = if condstore {
        MOVED_WITHIN
    } else {
        // Three passes at least: enough for any of them to have acted.
        Duration::from_secs(7)
    };
    let mut moved = None;
    // Bounded: the window, a STATUS every 100 ms.
    while flagged.elapsed() < window {
        if messages_in(&mut writer, s, "INBOX") == 0 {
            moved = Some(flagged.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = watcher.log();
    let passes = watcher
        .lines()
        .iter()
        .filter(|l| l.contains("idle ended"))
        .count();
    assert_eq!(watcher.stop(), Some(0), "{flavour}");
    if condstore {
        let delay = moved
            .unwrap_or_else(|| panic!("{flavour}: flagged, not moved within {window:?}:\n{log}"));
        eprintln!("{flavour}: a message flagged by another client moved {delay:?} later");
    } else {
        assert_eq!(moved, None, "{flavour}: moved without CONDSTORE");
        // The window held passes enough for one of them to act.
        assert!(passes >= 3, "{flavour}: {passes} passes:\n{log}");
        let o = agent.run(&["run"]);
        succeeded(flavour, "run", &o);
        eprintln!("{flavour}: a message flagged by another client stays until a sweep or run");
    }
    let after = s.snapshot(&user);
    assert_eq!(
        ids(&after, &starred),
        ["<f1@x> \\Flagged"],
        "{flavour}: {after:?}"
    );
    assert_eq!(total(&after), 1, "{flavour}: {after:?}");
}

#[test]
fn cyrus_debian_flag_changed_by_another_client() {
    flag_changed_by_another_client(Flavour::CyrusDebian);
}

#[test]
fn cyrus_upstream_flag_changed_by_another_client() {
    flag_changed_by_another_client(Flavour::CyrusUpstream);
}

#[test]
fn courier_flag_changed_by_another_client() {
    flag_changed_by_another_client(Flavour::Courier);
}

// ---- More of what tests/layouts.rs asks of every layout

/// Puts `raw` in `mailbox` (made first unless it exists) as `user`.
fn put(s: &Interop, user: &InteropUser, mailbox: &str, raw: &[u8]) {
    let mut c = s.login(user, Port::Plain);
    if !list(&mut c, s).iter().any(|(name, _)| name == mailbox) {
        ok(&mut c, s, &format!("CREATE {}", quote(mailbox)));
    }
    let reply = c.append(mailbox, raw).unwrap();
    assert!(
        reply.is_ok(),
        "{}: APPEND to {mailbox}: {reply:?}",
        s.flavour
    );
    let _ = c.command("LOGOUT");
}

/// `create_folders: false`: the messages stay, the dry run says so as the
/// run does, and both exit 1.
fn folders_may_not_be_created(flavour: Flavour) {
    let s = server(flavour);
    let user = s.user();
    let names = names(flavour);
    let mut c = s.login(&user, Port::Plain);
    for (raw, flags, arrival) in scenario::messages() {
        let reply = c.append_with("INBOX", &flags, Some(arrival), &raw).unwrap();
        assert!(reply.is_ok(), "{flavour}: APPEND: {reply:?}");
    }
    let _ = c.command("LOGOUT");
    let agent = s.agent(
        &user,
        Port::Plain,
        "    create_folders: false\n",
        scenario::RULES,
    );
    let before = s.snapshot(&user);
    let refusal = format!(
        "folder {} does not exist and create_folders is false",
        names.of("Notifications/GitHub")
    );
    for args in [
        &["run", "--dry-run", "--now", NOW][..],
        &["run", "--now", NOW],
    ] {
        let o = agent.run(args);
        let (out, err) = text(&o);
        assert_eq!(
            o.status.code(),
            Some(1),
            "{flavour} {args:?}:\n{out}\n{err}"
        );
        assert!(err.contains(&refusal), "{flavour} {args:?}: {err}");
    }
    let after = s.snapshot(&user);
    assert!(
        ids(&after, "INBOX").iter().any(|m| m.starts_with("<m1@x>")),
        "{flavour}: GitHub mail must stay: {after:?}"
    );
    // Only the expunged bounce is gone: no folder exists to move to.
    assert_eq!(total(&after), total(&before) - 1, "{flavour}: {after:?}");
    assert_eq!(after.len(), 1, "{flavour}: a folder was made: {after:?}");
}

/// Folder names from mail: non-ASCII in modified UTF-7 (Cyrus and Courier
/// answer with it as they were sent it); a line break, an
/// invisible or text-direction character, or a blank level is refused for
/// that message, which stays.
fn folder_names_from_mail(flavour: Flavour) {
    let s = server(flavour);
    let user = s.user();
    let names = names(flavour);
    // Encoded: Cyrus stores raw 8-bit header bytes as `X` (its munge8bit
    // default), so "[Öl]" would reach every client as "[XXl]".
    let tagged = [
        ("u1@x", "=?UTF-8?Q?[=C3=96l]_price?="),
        ("u2@x", "=?UTF-8?Q?[x=0D=0AA1_DELETE_INBOX]_y?="),
        ("u3@x", "=?UTF-8?Q?[a=E2=80=8Bb]_zero_width?="),
        ("u4@x", "=?UTF-8?Q?[evil=E2=80=AEfdp.exe]_bidi?="),
        ("u5@x", "[ ] blank"),
    ];
    for (id, subject) in tagged {
        put(
            s,
            &user,
            "INBOX",
            &mail(id, &format!("From: a@b\r\nSubject: {subject}")),
        );
    }
    let rules = "  - name: Tagged\n    match: { subject: { regex: '^\\[(?P<tag>[^]]+)\\]' } }\n    actions: [move: \"Ümlaut/{tag}\"]\n";
    let agent = s.agent(&user, Port::Plain, "", rules);
    let dry = agent.run(&["run", "--dry-run"]);
    let (out, err) = text(&dry);
    assert_eq!(dry.status.code(), Some(1), "{flavour}:\n{out}\n{err}");
    assert!(
        err.contains("U+202E, an invisible or text-direction character"),
        "{flavour}: {err}"
    );
    let o = agent.run(&["run"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{flavour}:\n{out}\n{err}");
    for why in ["control character", "U+200B", "U+202E", "blank level"] {
        assert!(err.contains(why), "{flavour}: {why}: {err}");
    }
    let after = s.snapshot(&user);
    assert_eq!(
        ids(&after, &names.of("Ümlaut/Öl")),
        ["<u1@x>"],
        "{flavour}: {after:?}"
    );
    assert_eq!(
        ids(&after, "INBOX"),
        ["<u2@x>", "<u3@x>", "<u4@x>", "<u5@x>"],
        "{flavour}: the odd ones stay"
    );
    assert_eq!(total(&after), 5, "{flavour}: {after:?}");
}

/// Rules on another mailbox, and a capture holding a `.`: the source is
/// opened by its server name; where `.` separates levels the capture
/// cannot be a level and that message stays, in the dry run as in the
/// run; where `/` does (Cyrus's upstream naming), `v1.2` is a folder.
fn source_mailbox_and_captures(flavour: Flavour) {
    let s = server(flavour);
    let user = s.user();
    let names = names(flavour);
    let work = names.of("Work");
    put(
        s,
        &user,
        &work,
        &mail(
            "w1@x",
            "From: a@b\r\nList-Id: <rust-users.lists.example.org>\r\nSubject: one",
        ),
    );
    put(
        s,
        &user,
        &work,
        &mail(
            "w2@x",
            "From: a@b\r\nList-Id: <v1.2.lists.example.org>\r\nSubject: two",
        ),
    );
    let rules = "  - name: Lists\n    mailbox: Work\n    match: { list: { regex: '^(?P<list>[a-z0-9.-]+)\\.lists\\.example\\.org$' } }\n    actions: [move: \"Lists/{list}\"]\n";
    let agent = s.agent(&user, Port::Plain, "", rules);
    let dotted = names.separator == '.';
    let refused = "folder level \"v1.2\" holds '.'";
    for args in [&["run", "--dry-run"][..], &["run"]] {
        let o = agent.run(args);
        let (out, err) = text(&o);
        assert_eq!(
            o.status.code(),
            Some(if dotted { 1 } else { 0 }),
            "{flavour} {args:?}:\n{out}\n{err}"
        );
        assert_eq!(err.contains(refused), dotted, "{flavour} {args:?}: {err}");
        if args.len() == 2 {
            assert!(
                out.contains(&format!("test/{work} (UIDVALIDITY")),
                "{flavour}: {out}"
            );
        }
    }
    let after = s.snapshot(&user);
    assert_eq!(
        ids(&after, &names.of("Lists/rust-users")),
        ["<w1@x>"],
        "{flavour}: {after:?}"
    );
    if dotted {
        assert_eq!(ids(&after, &work), ["<w2@x>"], "{flavour}: {after:?}");
    } else {
        assert_eq!(
            ids(&after, &names.of("Lists/v1.2")),
            ["<w2@x>"],
            "{flavour}: {after:?}"
        );
    }
    assert_eq!(total(&after), 2, "{flavour}: {after:?}");
}

#[test]
fn cyrus_debian_folders_may_not_be_created() {
    folders_may_not_be_created(Flavour::CyrusDebian);
}

#[test]
fn cyrus_upstream_folders_may_not_be_created() {
    folders_may_not_be_created(Flavour::CyrusUpstream);
}

#[test]
fn courier_folders_may_not_be_created() {
    folders_may_not_be_created(Flavour::Courier);
}

#[test]
fn cyrus_debian_folder_names_from_mail() {
    folder_names_from_mail(Flavour::CyrusDebian);
}

#[test]
fn cyrus_upstream_folder_names_from_mail() {
    folder_names_from_mail(Flavour::CyrusUpstream);
}

#[test]
fn courier_folder_names_from_mail() {
    folder_names_from_mail(Flavour::Courier);
}

#[test]
fn cyrus_debian_source_mailbox_and_captures() {
    source_mailbox_and_captures(Flavour::CyrusDebian);
}

#[test]
fn cyrus_upstream_source_mailbox_and_captures() {
    source_mailbox_and_captures(Flavour::CyrusUpstream);
}

#[test]
fn courier_source_mailbox_and_captures() {
    source_mailbox_and_captures(Flavour::Courier);
}
