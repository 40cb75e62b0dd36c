//! Smoke tests of the other IMAP servers the suite starts
//! (`support::interop`): Cyrus IMAP 3.6 with Debian's and upstream's naming
//! and Courier-IMAP 5 take logins on both ports, say what
//! tests/servers/README.md's table says they say, keep users apart, and
//! poll for new mail during IDLE as configured. They need the servers
//! installed (`tests/servers/install.sh`).

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::interop::{Client, Flavour, Interop, InteropUser, Port, quote, server};

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
    ok(c, s, r#"LIST "" "*""#)
        .data("LIST")
        .iter()
        .map(|l| {
            // (\Attrs) "sep" name
            let rest = &l[l.find(')').unwrap() + 2..];
            let (sep, name) = rest.split_once(' ').unwrap();
            (
                name.trim_matches('"').to_string(),
                sep.trim_matches('"').to_string(),
            )
        })
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
