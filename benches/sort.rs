//! Benchmark: mailwarden against imapfilter on the same 20,000 messages.
//!
//! `cargo bench --bench sort` (needs dovecot-imapd, imapfilter and GNU time:
//! `apt-get install dovecot-imapd imapfilter time`). Starts a throwaway
//! Dovecot, delivers the same generated mailbox (lists, notifications,
//! newsletters, spam, encoded subjects, PDF attachments, three years of
//! arrival dates) to four users, and sorts it with the same eight rules:
//! mailwarden against the server with MOVE, mailwarden against the server
//! without MOVE, imapfilter, and a floor client that asks the least work of
//! the server any sort can. Prints wall time and peak RSS of each and the
//! ratios to imapfilter, and checks message by message that each put every
//! message where the rules say. `MAILWARDEN_BENCH_MESSAGES` changes the
//! count.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use mailwarden::imap::command::SearchKey;
use mailwarden::imap::types::{Mailbox, Uid, UidSet};
use support::{Appendix, FULL, Raw, User, server};

/// A small deterministic generator, so every run sorts the same mailbox.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    GitHub,
    RustList,
    PythonList,
    Spam,
    Invoice,
    Newsletter,
    Personal,
}

struct Generated {
    id: String,
    raw: Vec<u8>,
    seen: bool,
    age_days: u64,
    kind: Kind,
}

const DAY: u64 = 86_400;

fn generate(n: usize) -> Vec<Generated> {
    let mut rng = Lcg(42);
    let pdf: String = (0..300).map(|i| format!("{:076}\r\n", i)).collect();
    (0..n)
        .map(|i| {
            let kind = match rng.below(100) {
                0..=14 => Kind::GitHub,
                15..=26 => Kind::RustList,
                27..=34 => Kind::PythonList,
                35..=39 => Kind::Spam,
                40..=44 => Kind::Invoice,
                45..=54 => Kind::Newsletter,
                _ => Kind::Personal,
            };
            // Three years of arrivals, none near the 730-day boundary.
            let mut age_days = rng.below(1095);
            if (715..745).contains(&age_days) {
                age_days += 40;
            }
            let seen = rng.below(2) == 0;
            let id = format!("bench-{i}@mailwarden.test");
            let (headers, body) = match kind {
                Kind::GitHub => (
                    format!("From: GitHub <notifications@github.com>\r\nSubject: [org/repo{}] Issue #{i}\r\nX-GitHub-Reason: subscribed\r\n", i % 7),
                    "A new comment.\r\n".to_string(),
                ),
                Kind::RustList => (
                    "From: Someone <someone@rust.example>\r\nList-Id: Rust users <rust-users.lists.example.org>\r\nSubject: [rust-users] borrow question\r\n".to_string(),
                    "Why?\r\n".to_string(),
                ),
                Kind::PythonList => (
                    "From: Guido <g@python.example>\r\nList-Id: <python-dev.lists.example.org>\r\nSubject: =?UTF-8?Q?PEP_=E2=80=93_discussion?=\r\n".to_string(),
                    "Thoughts.\r\n".to_string(),
                ),
                Kind::Spam => (
                    "From: Winner <win@lottery.example>\r\nSubject: You WON\r\nX-Spam-Flag: YES\r\n".to_string(),
                    "Claim now.\r\n".to_string(),
                ),
                Kind::Invoice => (
                    format!(
                        "From: =?ISO-8859-1?Q?Stadtwerke_M=FCnchen?= <billing@utility.example>\r\nSubject: =?UTF-8?Q?Your_invoice_=E2=84=96_{i}?=\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b{i}\"\r\n"
                    ),
                    format!(
                        "--b{i}\r\nContent-Type: text/plain\r\n\r\nAttached.\r\n--b{i}\r\nContent-Type: application/pdf; name=\"invoice-{i}.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{pdf}--b{i}--\r\n"
                    ),
                ),
                Kind::Newsletter => (
                    "From: Weekly <news@letters.example>\r\nList-Unsubscribe: <https://letters.example/u>\r\nSubject: This week\r\nContent-Type: text/html\r\n".to_string(),
                    "<html><body><p>Ten things.</p><a href=\"https://letters.example/u\">unsubscribe</a></body></html>\r\n".to_string(),
                ),
                Kind::Personal => (
                    format!("From: Friend {} <friend{}@example.net>\r\nSubject: hello {i}\r\n", i % 50, i % 50),
                    "How are you?\r\n".to_string(),
                ),
            };
            let raw = format!(
                "Message-ID: <{id}>\r\nDate: Mon, 05 Jan 2026 10:00:00 +0000\r\nTo: me@example.org\r\n{headers}\r\n{body}"
            )
            .into_bytes();
            Generated { id, raw, seen, age_days, kind }
        })
        .collect()
}

/// Where the eight rules put a message (first move wins).
fn expected(m: &Generated) -> &'static str {
    match m.kind {
        Kind::GitHub => "Notifications/GitHub",
        Kind::RustList => "Lists/rust",
        Kind::PythonList => "Lists/python",
        Kind::Spam => "Junk",
        Kind::Invoice => "Receipts",
        Kind::Newsletter => "Newsletters",
        Kind::Personal if m.seen && m.age_days > 730 => "Archive/Old",
        Kind::Personal => "INBOX",
    }
}

const MAILWARDEN_RULES: &str = r#"  - name: GitHub
    match: { from: { domain: github.com } }
    actions: [flag: seen, move: Notifications/GitHub]
  - name: Rust list
    match: { list: rust-users.lists.example.org }
    actions: [move: Lists/rust]
  - name: Python list
    match: { list: python-dev.lists.example.org }
    actions: [move: Lists/python]
  - name: Spam
    match: { header: { X-Spam-Flag: "YES" } }
    actions: [move: Junk]
  - name: Invoices
    match: { subject: invoice }
    actions: [move: Receipts]
  - name: Newsletters
    match: { from: letters.example, exists: List-Unsubscribe }
    actions: [move: Newsletters]
  - name: Old read mail
    match: { seen: true, older_than: 730d }
    actions: [move: Archive/Old]
  - name: Flag mail from friend 7
    match: { from: friend7@example.net }
    actions: [flag: flagged]
"#;

fn imapfilter_config(user: &User) -> String {
    format!(
        r#"options.timeout = 300
options.create = true
options.subscribe = true
options.expunge = true
options.info = false
options.starttls = false
account = IMAP {{ server = '127.0.0.1', port = {port}, username = '{name}', password = '{pw}' }}
inbox = account.INBOX
r = inbox:contain_from('github.com')
r:add_flags({{ '\\Seen' }})
r:move_messages(account['Notifications/GitHub'])
inbox:contain_field('List-Id', 'rust-users.lists.example.org'):move_messages(account['Lists/rust'])
inbox:contain_field('List-Id', 'python-dev.lists.example.org'):move_messages(account['Lists/python'])
inbox:contain_field('X-Spam-Flag', 'YES'):move_messages(account['Junk'])
inbox:contain_subject('invoice'):move_messages(account['Receipts'])
news = inbox:contain_from('letters.example') * inbox:contain_field('List-Unsubscribe', '')
news:move_messages(account['Newsletters'])
old = inbox:is_seen() * inbox:is_older(730)
old:move_messages(account['Archive/Old'])
inbox:contain_from('friend7@example.net'):add_flags({{ '\\Flagged' }})
"#,
        port = server().plain_port,
        name = user.name,
        pw = user.password,
    )
}

/// Delivers the messages through IMAP MULTIAPPEND (RFC 3502) with their
/// flags and arrival dates, so Dovecot names and indexes the Maildir files
/// itself, as it does for mail delivered by LMTP or an IMAP client.
///
/// Files written straight into `cur/` under made-up names are not what a
/// Dovecot mailbox looks like, and cost Dovecot a rescan of the whole
/// directory on every expunging command (see docs/performance.md).
fn deliver_all(user: &User, msgs: &[Generated]) {
    let now = chrono::Utc::now();
    let appended: Vec<Appendix> = msgs
        .iter()
        .map(|m| {
            let flags: &[&str] = if m.seen { &["\\Seen"] } else { &[] };
            let arrival = now - chrono::Duration::seconds((m.age_days * DAY + 3600) as i64);
            (m.raw.as_slice(), flags, Some(arrival))
        })
        .collect();
    user.append_many("INBOX", &appended);
}

/// The least a client can ask of the server for this sort: select, read
/// the header fields the rules need once (no SEARCH), flag, and one UID
/// MOVE per destination with no limit on the command line. No client can
/// sort the mailbox with less server work; its time is the floor for any
/// ratio to imapfilter. Returns wall seconds.
/// Without `lines`, a command line is only kept within what Dovecot
/// accepts (64 KiB, `Too long argument` beyond), and the header FETCH goes
/// in ranges of 10,000 UIDs (one FETCH of 200,000 answers is slower than
/// twenty). With `lines` (RFC 7162 section 4's 8192 octets, as mailwarden
/// keeps them), every UID command is split as mailwarden splits it: what
/// that limit costs any client. With `MAILWARDEN_BENCH_LOG` set, each
/// step's time is printed.
/// Dovecot's `imap_max_line_length` (64 KiB), less room for the tag.
const DOVECOT_MAX_LINE: usize = 64 * 1024 - 64;

fn floor_client(user: &User, msgs: &[Generated], lines: bool) -> f64 {
    let started = std::time::Instant::now();
    let log = std::env::var("MAILWARDEN_BENCH_LOG").is_ok();
    let mut raw = Raw::login(user);
    let mut send = |text: &str| {
        // Split `UID <verb> <set> <rest>` as mailwarden would.
        let parts: Vec<String> = match text.strip_prefix("UID ") {
            Some(rest) if !rest.starts_with("FETCH") => {
                let mut words = rest.splitn(3, ' ');
                let (verb, set, tail) = (
                    words.next().unwrap(),
                    words.next().unwrap(),
                    words.next().unwrap(),
                );
                let uids: UidSet = set
                    .split(',')
                    .flat_map(|r| match r.split_once(':') {
                        Some((a, b)) => a.parse::<u32>().unwrap()..=b.parse::<u32>().unwrap(),
                        None => r.parse::<u32>().unwrap()..=r.parse::<u32>().unwrap(),
                    })
                    .filter_map(Uid::new)
                    .collect();
                let limit = if lines {
                    mailwarden::imap::types::MAX_LINE
                } else {
                    DOVECOT_MAX_LINE
                };
                let room = limit - (verb.len() + tail.len() + 24);
                uids.chunks(room)
                    .into_iter()
                    .map(|c| format!("UID {verb} {c} {tail}"))
                    .collect()
            }
            _ => vec![text.to_string()],
        };
        for part in parts {
            let t = std::time::Instant::now();
            raw.command(&part, &[]);
            if log {
                let verb: String = part.split(' ').take(2).collect::<Vec<_>>().join(" ");
                eprintln!("floor: {verb} {} ms", t.elapsed().as_millis());
            }
        }
    };
    send("SELECT INBOX");
    for first in (1..=msgs.len()).step_by(10_000) {
        send(&format!(
            "UID FETCH {first}:{} (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (FROM LIST-ID LIST-UNSUBSCRIBE SUBJECT X-SPAM-FLAG MESSAGE-ID)])",
            (first + 9_999).min(msgs.len())
        ));
    }
    // Messages were appended in order to an empty mailbox: UID = index + 1.
    let uids = |keep: &dyn Fn(usize, &Generated) -> bool| -> String {
        let set: UidSet = msgs
            .iter()
            .enumerate()
            .filter(|(i, m)| keep(*i, m))
            .filter_map(|(i, _)| Uid::new(i as u32 + 1))
            .collect();
        set.to_string()
    };
    send(&format!(
        "UID STORE {} +FLAGS.SILENT (\\Seen)",
        uids(&|_, m| m.kind == Kind::GitHub)
    ));
    send(&format!(
        "UID STORE {} +FLAGS.SILENT (\\Flagged)",
        uids(&|i, m| m.kind == Kind::Personal && i % 50 == 7)
    ));
    let folders: std::collections::BTreeSet<&str> = msgs.iter().map(expected).collect();
    for folder in folders.into_iter().filter(|f| *f != "INBOX") {
        send(&format!("CREATE \"{folder}\""));
        send(&format!(
            "UID MOVE {} \"{folder}\"",
            uids(&|_, m| expected(m) == folder)
        ));
    }
    send("LOGOUT");
    started.elapsed().as_secs_f64()
}

/// Runs `cmd` under GNU time: (wall seconds, peak RSS in KiB, log).
fn timed(cmd: Command) -> (f64, u64, String) {
    let report = tempfile::NamedTempFile::new().unwrap();
    let program = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let envs: Vec<_> = cmd
        .get_envs()
        .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned())))
        .collect();
    let log_times = std::env::var("MAILWARDEN_BENCH_LOG").is_ok();
    if log_times {
        eprintln!("started {}", chrono::Utc::now().format("%H:%M:%S%.6f"));
    }
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%e %M %U %S")
        .arg("-o")
        .arg(report.path())
        .arg(program)
        .args(args)
        .envs(envs)
        .output()
        .expect("GNU time is needed: apt-get install time");
    if log_times {
        eprintln!("ended {}", chrono::Utc::now().format("%H:%M:%S%.6f"));
    }
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "command failed:\n{log}");
    let text = std::fs::read_to_string(report.path()).unwrap();
    let mut parts = text.split_whitespace();
    let (wall, rss) = (
        parts.next().unwrap().parse().unwrap(),
        parts.next().unwrap().parse().unwrap(),
    );
    let cpu: Vec<&str> = parts.collect();
    (
        wall,
        rss,
        format!("{log}\nCPU user {} s, system {} s", cpu[0], cpu[1]),
    )
}

/// Message-ID -> mailbox, over all mailboxes.
async fn placement(user: &User) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (mailbox, msgs) in user.snapshot().await {
        for (id, _) in msgs {
            let prev = out.insert(id.trim_matches(['<', '>']).to_string(), mailbox.clone());
            assert!(prev.is_none(), "{id} is in two mailboxes");
        }
    }
    out
}

async fn warm_up(user: &User) {
    // Both users start from an indexed mailbox, so neither pays for it.
    let mut c = user.conn(FULL).await;
    c.open(&Mailbox::inbox(), mailwarden::imap::Access::ReadOnly)
        .await
        .unwrap();
    c.search(&SearchKey::All).await.unwrap();
    c.logout().await;
}

/// Sorts a fresh copy of the mailbox with mailwarden on `ip` (which picks
/// the server's capability set) and returns (wall s, peak KiB, log).
fn run_mailwarden(user: &User, ip: &str, dir: &Path) -> (f64, u64, String) {
    // The benchmark's pass acts on 12,563 messages at once, on purpose.
    let cfg = user.config(dir, ip, "    max_actions: unlimited\n", MAILWARDEN_RULES);
    let mut mw = Command::new(env!("CARGO_BIN_EXE_mailwarden"));
    mw.args(["run", "-c"])
        .arg(&cfg)
        .env("MAILWARDEN_TEST_PASSWORD", &user.password)
        .env("XDG_STATE_HOME", user.state_home());
    if let Ok(level) = std::env::var("MAILWARDEN_BENCH_LOG") {
        mw.env("MAILWARDEN_LOG", level);
    }
    timed(mw)
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Client {
    MailwardenMove,
    MailwardenCopy,
    Imapfilter,
    Floor,
    FloorLines,
}

impl Client {
    const ALL: [Client; 5] = [
        Client::MailwardenMove,
        Client::MailwardenCopy,
        Client::Imapfilter,
        Client::Floor,
        Client::FloorLines,
    ];

    fn label(self) -> &'static str {
        match self {
            Client::MailwardenMove => "mailwarden, server with MOVE (UID MOVE)",
            Client::MailwardenCopy => "mailwarden, server without MOVE (COPY+EXPUNGE)",
            Client::Imapfilter => "imapfilter 2.8",
            Client::Floor => "floor: least server work for this sort",
            Client::FloorLines => "floor with mailwarden's 8 KB command lines",
        }
    }
}

/// One timed sort: wall seconds, peak RSS in KiB (not for the in-process
/// floor client) and the client's log.
struct Measured {
    secs: f64,
    kib: Option<u64>,
    log: String,
    /// A second run over the sorted mailbox, which has nothing left to do.
    again: Option<f64>,
}

/// Copies the template user's Maildir (Dovecot's own file names, uidlist
/// and indexes) to `to`, so every sort starts from the same mailbox.
fn clone_mailbox(from: &User, to: &User) {
    let home = |u: &User| server().dir.path().join("home").join(&u.name);
    let status = Command::new("cp")
        .arg("-a")
        .arg(home(from).join("Maildir"))
        .arg(home(to))
        .status()
        .unwrap();
    assert!(status.success(), "cp -a failed");
}

/// Sorts a fresh copy of the template with `client`, then checks that
/// every message is where the rules say, once.
async fn measure(client: Client, template: &User, msgs: &[Generated]) -> Measured {
    let user = server().user();
    clone_mailbox(template, &user);
    warm_up(&user).await;
    let dir = tempfile::tempdir().unwrap();
    let measured = match client {
        Client::MailwardenMove | Client::MailwardenCopy => {
            let ip = if client == Client::MailwardenMove {
                FULL
            } else {
                support::NO_MOVE
            };
            let (secs, kib, log) = run_mailwarden(&user, ip, dir.path());
            let again =
                (client == Client::MailwardenMove).then(|| run_mailwarden(&user, ip, dir.path()).0);
            Measured {
                secs,
                kib: Some(kib),
                log,
                again,
            }
        }
        Client::Imapfilter => {
            let cfg = dir.path().join("imapfilter.lua");
            std::fs::write(&cfg, imapfilter_config(&user)).unwrap();
            let mut imf = Command::new("imapfilter");
            imf.arg("-c").arg(&cfg);
            let (secs, kib, log) = timed(imf);
            let mut imf = Command::new("imapfilter");
            imf.arg("-c").arg(&cfg);
            let again = Some(timed(imf).0);
            Measured {
                secs,
                kib: Some(kib),
                log,
                again,
            }
        }
        Client::Floor | Client::FloorLines => Measured {
            secs: floor_client(&user, msgs, client == Client::FloorLines),
            kib: None,
            log: String::new(),
            again: None,
        },
    };
    let got = placement(&user).await;
    let tool = client.label();
    assert_eq!(
        got.len(),
        msgs.len(),
        "{tool}: messages lost or duplicated\n{}",
        measured.log
    );
    let wrong: Vec<_> = msgs
        .iter()
        .filter(|m| got.get(&m.id).map(String::as_str) != Some(expected(m)))
        .take(5)
        .map(|m| (&m.id, expected(m), got.get(&m.id)))
        .collect();
    assert!(
        wrong.is_empty(),
        "{tool} misplaced messages, e.g. {wrong:?}"
    );
    measured
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let setting = |name: &str, default: usize| -> usize {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let n = setting("MAILWARDEN_BENCH_MESSAGES", 20_000);
    // Run-to-run noise on a shared machine is about 20 %; medians of
    // interleaved rounds compare the clients under the same conditions.
    let rounds = setting("MAILWARDEN_BENCH_ROUNDS", 5).max(1);
    let msgs = generate(n);
    let template = server().user();
    deliver_all(&template, &msgs);
    warm_up(&template).await;

    // `MAILWARDEN_BENCH_CLIENTS=move,floor` runs only those (move, copy,
    // imapfilter, floor, floor-lines).
    let chosen: Vec<Client> = match std::env::var("MAILWARDEN_BENCH_CLIENTS") {
        Err(_) => Client::ALL.to_vec(),
        Ok(list) => list
            .split(',')
            .map(|w| match w.trim() {
                "move" => Client::MailwardenMove,
                "copy" => Client::MailwardenCopy,
                "imapfilter" => Client::Imapfilter,
                "floor" => Client::Floor,
                "floor-lines" => Client::FloorLines,
                other => panic!("unknown client {other:?}"),
            })
            .collect(),
    };
    let mut results: BTreeMap<Client, Vec<Measured>> = BTreeMap::new();
    for round in 0..rounds {
        // Each round starts with a different client, so slow drift of the
        // machine does not favour one of them.
        for i in 0..chosen.len() {
            let client = chosen[(i + round) % chosen.len()];
            let m = measure(client, &template, &msgs).await;
            if std::env::var("MAILWARDEN_BENCH_LOG").is_ok() {
                eprintln!("{}:\n{}", client.label(), m.log);
            }
            results.entry(client).or_default().push(m);
        }
    }

    let mut per_folder: BTreeMap<&str, usize> = BTreeMap::new();
    for m in &msgs {
        *per_folder.entry(expected(m)).or_default() += 1;
    }
    println!(
        "{n} messages, 8 rules, Dovecot (Maildir) on loopback, {rounds} rounds; every message's folder verified after every sort:"
    );
    for (folder, count) in &per_folder {
        println!("  {folder:<22} {count}");
    }
    let wall = |c: Client| median(results[&c].iter().map(|m| m.secs).collect());
    for (client, runs) in &results {
        let all: Vec<String> = runs.iter().map(|m| format!("{:.2}", m.secs)).collect();
        let rss = runs.iter().filter_map(|m| m.kib).max().map_or_else(
            || "(in process)".to_string(),
            |kib| format!("peak RSS {:>5.1} MiB", kib as f64 / 1024.0),
        );
        let cpu = runs.last().and_then(|m| m.log.lines().last()).unwrap_or("");
        println!(
            "{:<48} median wall {:>5.2} s ({})   {rss}   {cpu}",
            client.label(),
            wall(*client),
            all.join(", ")
        );
    }
    let again = |c: Client| -> Option<f64> {
        let runs: Vec<f64> = results.get(&c)?.iter().filter_map(|m| m.again).collect();
        (!runs.is_empty()).then(|| median(runs))
    };
    for client in [Client::MailwardenMove, Client::Imapfilter] {
        if let Some(secs) = again(client) {
            println!(
                "{:<48} second run over the sorted mailbox (nothing to do): median {secs:.2} s",
                client.label()
            );
        }
    }
    if let (Some(mw), Some(imf)) = (again(Client::MailwardenMove), again(Client::Imapfilter)) {
        println!(
            "ratio of second runs: mailwarden {:.2} of imapfilter",
            mw / imf
        );
    }
    if chosen.len() < Client::ALL.len() {
        let has = |c: Client| results.contains_key(&c);
        if has(Client::MailwardenMove) && has(Client::Floor) {
            println!(
                "ratio to the floor: mailwarden {:.2} with MOVE{}",
                wall(Client::MailwardenMove) / wall(Client::Floor),
                if has(Client::FloorLines) {
                    format!(
                        "; the floor with 8 KB lines {:.2}",
                        wall(Client::FloorLines) / wall(Client::Floor)
                    )
                } else {
                    String::new()
                }
            );
        }
        return;
    }
    let imapfilter = wall(Client::Imapfilter);
    println!(
        "ratio of median wall times to imapfilter: mailwarden {:.2} with MOVE, {:.2} without; floor {:.2}",
        wall(Client::MailwardenMove) / imapfilter,
        wall(Client::MailwardenCopy) / imapfilter,
        wall(Client::Floor) / imapfilter
    );
    let floor = wall(Client::Floor);
    println!(
        "ratio to the floor: mailwarden {:.2} with MOVE, {:.2} without; the floor with 8 KB lines {:.2}; imapfilter {:.2}",
        wall(Client::MailwardenMove) / floor,
        wall(Client::MailwardenCopy) / floor,
        wall(Client::FloorLines) / floor,
        imapfilter / floor
    );
    println!(
        "(floor: one header FETCH, no SEARCH, one UID MOVE per folder with no line limit: the least work any client can ask of the server)"
    );
}
