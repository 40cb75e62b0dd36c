//! Benchmark: mailwarden against imapfilter on the same 20,000 messages.
//!
//! `cargo bench --bench sort` (needs dovecot-imapd, imapfilter and GNU time:
//! `apt-get install dovecot-imapd imapfilter time`). Starts a throwaway
//! Dovecot, writes the same generated mailbox (lists, notifications,
//! newsletters, spam, encoded subjects, PDF attachments, three years of
//! arrival dates) for two users, sorts one with mailwarden and the other
//! with imapfilter using the same eight rules, prints wall time and peak
//! RSS of each and their ratio, and checks message by message that both put
//! every message where the rules say. `MAILWARDEN_BENCH_MESSAGES` changes
//! the count.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use support::{FULL, User, server};

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

/// Writes the messages straight into the user's Maildir (arrival time =
/// file mtime, as Dovecot reads it), which is much faster than APPEND.
fn write_maildir(user: &User, msgs: &[Generated]) {
    let home = server()
        .dir
        .path()
        .join("home")
        .join(&user.name)
        .join("Maildir");
    let owner = std::fs::metadata(home.parent().unwrap()).unwrap();
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(home.join(sub)).unwrap();
    }
    let now = SystemTime::now();
    for (i, m) in msgs.iter().enumerate() {
        let name = format!(
            "{}.M{i}P1.bench:2,{}",
            1_700_000_000 + i,
            if m.seen { "S" } else { "" }
        );
        let path = home.join("cur").join(name);
        std::fs::write(&path, &m.raw).unwrap();
        let mtime = now - Duration::from_secs(m.age_days * DAY + 3600);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
    }
    let chown =
        |p: &Path| std::os::unix::fs::chown(p, Some(owner.uid()), Some(owner.gid())).unwrap();
    chown(&home);
    for sub in ["cur", "new", "tmp"] {
        chown(&home.join(sub));
        for e in std::fs::read_dir(home.join(sub)).unwrap() {
            chown(&e.unwrap().path());
        }
    }
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
    c.open("INBOX", mailwarden::imap::Access::ReadOnly)
        .await
        .unwrap();
    c.uid_search("ALL").await.unwrap();
    c.logout().await;
}

/// Sorts a fresh copy of the mailbox with mailwarden on `ip` (which picks
/// the server's capability set) and returns (wall s, peak KiB, log).
fn run_mailwarden(user: &User, ip: &str, dir: &Path) -> (f64, u64, String) {
    let cfg = user.config(dir, ip, "", MAILWARDEN_RULES);
    let mut mw = Command::new(env!("CARGO_BIN_EXE_mailwarden"));
    mw.args(["run", "-c"])
        .arg(&cfg)
        .env("MAILWARDEN_TEST_PASSWORD", &user.password);
    if let Ok(level) = std::env::var("MAILWARDEN_BENCH_LOG") {
        mw.env("MAILWARDEN_LOG", level);
    }
    timed(mw)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n: usize = std::env::var("MAILWARDEN_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let msgs = generate(n);
    let users = [server().user(), server().user(), server().user()];
    for u in &users {
        write_maildir(u, &msgs);
        warm_up(u).await;
    }
    let [mw_move, mw_copy, imf_user] = &users;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mv_secs, mv_kib, mv_log) = run_mailwarden(mw_move, FULL, dir_a.path());
    let (cp_secs, cp_kib, cp_log) = run_mailwarden(mw_copy, support::NO_MOVE, dir_b.path());

    let if_cfg = dir_a.path().join("imapfilter.lua");
    std::fs::write(&if_cfg, imapfilter_config(imf_user)).unwrap();
    let mut imf = Command::new("imapfilter");
    imf.arg("-c").arg(&if_cfg);
    let (if_secs, if_kib, if_log) = timed(imf);
    if std::env::var("MAILWARDEN_BENCH_LOG").is_ok() {
        eprintln!("{mv_log}\n{cp_log}");
    }
    let cpu = |log: &str| log.lines().last().unwrap_or("").to_string();

    let want: BTreeMap<String, String> = msgs
        .iter()
        .map(|m| (m.id.clone(), expected(m).to_string()))
        .collect();
    for (tool, user, log) in [
        ("mailwarden (MOVE)", mw_move, &mv_log),
        ("mailwarden (COPY)", mw_copy, &cp_log),
        ("imapfilter", imf_user, &if_log),
    ] {
        let got = placement(user).await;
        assert_eq!(got.len(), n, "{tool}: messages lost or duplicated\n{log}");
        let wrong: Vec<_> = want
            .iter()
            .filter(|(id, mb)| got.get(*id) != Some(*mb))
            .take(5)
            .collect();
        assert!(
            wrong.is_empty(),
            "{tool} misplaced messages, e.g. {wrong:?} (got {:?})",
            wrong.iter().map(|(id, _)| got.get(*id)).collect::<Vec<_>>()
        );
    }
    let mut per_folder: BTreeMap<&str, usize> = BTreeMap::new();
    for m in &msgs {
        *per_folder.entry(expected(m)).or_default() += 1;
    }
    println!(
        "{n} messages, 8 rules, Dovecot (Maildir) on loopback; every message's folder verified for each run:"
    );
    for (folder, count) in &per_folder {
        println!("  {folder:<22} {count}");
    }
    let line = |name: &str, secs: f64, kib: u64, log: &str| {
        println!(
            "{name:<44} wall {secs:>6.2} s   peak RSS {:>5.1} MiB   {}",
            kib as f64 / 1024.0,
            cpu(log)
        );
    };
    line(
        "mailwarden, server with MOVE (UID MOVE)",
        mv_secs,
        mv_kib,
        &mv_log,
    );
    line(
        "mailwarden, server without MOVE (COPY+EXPUNGE)",
        cp_secs,
        cp_kib,
        &cp_log,
    );
    line("imapfilter 2.8", if_secs, if_kib, &if_log);
    println!(
        "ratio mailwarden/imapfilter wall time: {:.2} with MOVE, {:.2} without",
        mv_secs / if_secs,
        cp_secs / if_secs
    );
}
