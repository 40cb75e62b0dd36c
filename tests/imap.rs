//! `mailwarden run` against a real Dovecot (see `support`): long UID sets,
//! the server without UIDPLUS, `run` deciding as `test` does, MIME
//! structure, TLS, login failures, and message counts before and after
//! every mutating pass. The scenario over every layout is `layouts.rs`.

mod support;

use std::collections::BTreeMap;
use std::process::Output;

use chrono::DateTime;
use mailwarden::imap::Access;
use mailwarden::imap::command::{FetchItems, SearchKey};
use mailwarden::imap::types::{Mailbox, Uid, UidSet};
use support::scenario::{self, NOW, mail};
use support::script::{Answer, Script};
use support::{FULL, NO_MOVE_NO_UIDPLUS, User, server, text, total};

async fn fill(user: &User) {
    for (raw, flags, date) in scenario::messages() {
        user.append("INBOX", &raw, &flags, Some(date)).await;
    }
}

fn ids(s: &BTreeMap<String, Vec<(String, Vec<String>)>>, mailbox: &str) -> Vec<String> {
    s.get(mailbox)
        .map(|v| {
            v.iter()
                .map(|(id, f)| format!("{id} {}", f.join(" ")).trim().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Runs mailwarden with `args` and this user's configuration, logging at
/// trace level; returns the output and every command line it sent.
fn run_traced(user: &User, cfg: &std::path::Path, args: &[&str]) -> (Output, Vec<String>) {
    let o = user.mailwarden_logged(args, cfg, "mailwarden=trace");
    let sent = String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter(|l| l.contains(" send "))
        .filter_map(|l| l.split_once("command=").map(|(_, c)| c.to_string()))
        .collect();
    (o, sent)
}

/// 4,000 messages, every other one to move: its 2,000 scattered UIDs do not
/// fit one 8 KB command line (RFC 7162 4), so every UID command is split,
/// and still each message ends up in exactly one place.
#[tokio::test]
async fn scattered_uid_sets_are_split_under_the_line_limit_and_lose_nothing() {
    let user = server().user();
    let msgs: Vec<Vec<u8>> = (0..4_000)
        .map(|i| {
            let parity = if i % 2 == 0 { "even" } else { "odd" };
            mail(
                &format!("s{i}@x"),
                &format!("From: a@b\r\nSubject: {parity} {i}"),
            )
        })
        .collect();
    user.deliver_many("INBOX", &msgs);
    let odd: UidSet = (1..=4_000u32)
        .filter(|u| u % 2 == 0)
        .filter_map(Uid::new)
        .collect();

    // A search among scattered UIDs is split too, and finds each of them.
    let mut c = user.conn(FULL).await;
    c.open(&Mailbox::inbox(), Access::ReadOnly).await.unwrap();
    let subject = |s: &str| SearchKey::Header("Subject".into(), s.into());
    assert_eq!(c.search_among(&odd, &subject("odd")).await.unwrap(), odd);
    assert!(
        c.search_among(&odd, &subject("even"))
            .await
            .unwrap()
            .is_empty()
    );
    c.logout().await;

    let dir = tempfile::tempdir().unwrap();
    // 2,000 messages to act on at once, past the default max_actions.
    let cfg = user.config(
        dir.path(),
        FULL,
        "    max_actions: unlimited\n",
        "  - {name: odd, match: {subject: odd}, actions: [flag: seen, move: Odd]}\n",
    );
    let (o, sent) = run_traced(&user, &cfg, &["run"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    let sent: Vec<&String> = sent.iter().filter(|c| c.starts_with("UID ")).collect();
    // On the wire: tag (at most ten octets with its space), text, CRLF.
    let longest = sent.iter().map(|c| c.len()).max().unwrap();
    assert!(longest + 10 + 2 <= 8192, "a line of {longest} octets");
    let count = |prefix: &str| sent.iter().filter(|c| c.starts_with(prefix)).count();
    assert!(count("UID STORE") >= 2, "UID STORE not split");
    // The move's set is saved as `$` over several lines (SEARCHRES, RFC
    // 5182), and moved with one command.
    assert!(count("UID SEARCH RETURN (SAVE) ") >= 2, "{sent:?}");
    assert_eq!(count("UID MOVE "), 1, "{sent:?}");
    assert_eq!(count("UID MOVE $ "), 1, "{sent:?}");

    let after = user.snapshot().await;
    assert_eq!(total(&after), 4_000, "messages lost or duplicated");
    assert_eq!(after["Odd"].len(), 2_000);
    assert_eq!(after["INBOX"].len(), 2_000);
    assert!(
        after["Odd"]
            .iter()
            .all(|(_, flags)| flags.iter().any(|f| f == "\\Seen"))
    );
    assert!(after["INBOX"].iter().all(|(id, _)| {
        let n: u32 = id
            .trim_matches(['<', '>', 's'])
            .trim_end_matches("@x")
            .parse()
            .unwrap();
        n.is_multiple_of(2)
    }));
}

#[tokio::test]
async fn without_uidplus_messages_are_copied_and_marked_but_not_expunged() {
    let user = server().user();
    fill(&user).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = user.config(dir.path(), NO_MOVE_NO_UIDPLUS, "", scenario::RULES);
    let o = user.mailwarden(&["run", "--now", NOW], &cfg);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(err.contains("the server lacks UIDPLUS"), "{err}");
    assert!(out.contains("copied 1 message to Notifications/GitHub and marked them \\Deleted (the server lacks MOVE and UIDPLUS)"), "{out}");
    let after = user.snapshot().await;
    // Nothing left INBOX for good: moved ones are copied and marked \Deleted.
    let inbox = ids(&after, "INBOX");
    assert!(
        inbox.contains(&"<m1@x> \\Seen \\Deleted".to_string()),
        "{inbox:?}"
    );
    assert!(inbox.contains(&"<m7@x> \\Deleted".to_string()), "{inbox:?}");
    assert_eq!(ids(&after, "Notifications/GitHub"), ["<m1@x> \\Seen"]);
    // 10 originals stay in INBOX, plus the copies made.
    assert_eq!(after["INBOX"].len(), 10);
}

/// Appends every file of `mail_dir` to INBOX (arriving at its Date, else
/// its mtime, as `test` assumes for a loose file), then asserts that `run --dry-run`
/// decides each message exactly as `test` decides the file.
async fn run_decides_as_test(user: &User, mail_dir: &std::path::Path, rules: &str) {
    let mut files: Vec<_> = std::fs::read_dir(mail_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in &files {
        let raw = std::fs::read(f).unwrap();
        // `test` takes a file without a Date header to arrive at its mtime.
        let mtime: DateTime<chrono::Utc> = std::fs::metadata(f).unwrap().modified().unwrap().into();
        let m = mailwarden::message::Message::parse(
            &raw,
            mailwarden::message::Meta {
                arrival: mailwarden::message::Arrival::DateHeaderOr(mtime),
                flags: Default::default(),
                size: None,
            },
        )
        .unwrap();
        user.append("INBOX", &raw, &[], Some(m.arrival)).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = user.config(dir.path(), FULL, "", rules);
    let now = "2026-11-27T00:00:00Z";
    let run = user.mailwarden(
        &["run", "--dry-run", "--format", "json", "--now", now],
        &cfg,
    );
    let test = user.mailwarden(
        &[
            "test",
            "--format",
            "json",
            "--now",
            now,
            mail_dir.to_str().unwrap(),
        ],
        &cfg,
    );
    assert_eq!(run.status.code(), Some(0), "{:?}", text(&run));
    assert_eq!(test.status.code(), Some(0), "{:?}", text(&test));
    // Messages in append order (UIDs), files in name order: the same.
    let strip = |mut v: serde_json::Value| {
        for k in ["file", "uid", "account", "mailbox", "warnings"] {
            v.as_object_mut().unwrap().remove(k);
        }
        v
    };
    let parse = |o: &std::process::Output| -> Vec<serde_json::Value> {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| strip(serde_json::from_str(l).unwrap()))
            .collect()
    };
    let (from_run, from_test) = (parse(&run), parse(&test));
    assert_eq!(from_run.len(), files.len(), "every message is in the plan");
    for ((run, test), file) in from_run.iter().zip(&from_test).zip(&files) {
        assert_eq!(run, test, "{}", file.display());
    }
}

fn example_rules() -> String {
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules.example.yaml"),
    )
    .unwrap();
    example[example.find("rules:\n").unwrap() + "rules:\n".len()..].to_string()
}

#[tokio::test]
async fn run_decides_exactly_as_test_does_on_the_same_messages() {
    let user = server().user();
    let mail_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/mail");
    run_decides_as_test(&user, &mail_dir, &example_rules()).await;
}

/// Files that are hardly mail (a PNG, text without a header, a stray line
/// before the header, a NUL in a field name...) are stored and served by
/// the server, and `run` decides them: `test` decides them the same way.
#[tokio::test]
async fn what_the_server_accepts_test_decides_as_run_does() {
    let user = server().user();
    let mail_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/odd");
    run_decides_as_test(&user, &mail_dir, &example_rules()).await;
}

/// The MIME fixtures in `tests/fixtures/<set>` (`mime`: RFC 2231 and 2047
/// names, inline images, forwarded messages, single-part attachments, odd
/// parameters...), appended to `user`.
async fn mime_fixtures(user: &User, set: &str) -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(set);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let raw = std::fs::read(&f).unwrap();
        user.deliver("INBOX", &raw).await;
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        out.push((format!("{name}@mime.test"), raw));
    }
    out
}

/// Attachments found in BODYSTRUCTURE, as Dovecot sends it, are exactly
/// those found in the whole message.
#[tokio::test]
async fn attachments_from_bodystructure_equal_those_of_the_whole_message() {
    use mailwarden::message::{Arrival, Message, Meta};
    let user = server().user();
    let fixtures = mime_fixtures(&user, "mime").await;
    let meta = || Meta {
        arrival: Arrival::At(DateTime::UNIX_EPOCH),
        flags: Default::default(),
        size: None,
    };
    let mut c = user.conn(FULL).await;
    c.open(&Mailbox::inbox(), Access::ReadOnly).await.unwrap();
    let uids = c.search(&SearchKey::All).await.unwrap();
    let items = FetchItems {
        header_fields: mailwarden::rules::Needs::of([]).header_fields,
        structure: true,
        ..FetchItems::default()
    };
    let mut fetched = Vec::new();
    c.fetch(&uids, &items, |d| fetched.push(d)).await.unwrap();
    c.logout().await;
    assert_eq!(fetched.len(), fixtures.len());
    let mut with_attachments = 0;
    for m in fetched {
        let skeleton = m.structure.expect("BODYSTRUCTURE was fetched");
        let from_structure =
            Message::from_server(m.header.as_deref().unwrap_or_default(), None, meta())
                .unwrap()
                .with_structure(&skeleton);
        let id = from_structure.message_id.clone().unwrap();
        let raw = &fixtures.iter().find(|(i, _)| *i == id).unwrap().1;
        let whole = Message::parse(raw, meta()).unwrap();
        assert_eq!(
            from_structure.attachments,
            whole.attachments,
            "{id}: skeleton\n{}",
            String::from_utf8_lossy(&skeleton)
        );
        with_attachments += usize::from(!whole.attachments.unwrap().is_empty());
    }
    assert!(with_attachments >= 10, "the fixtures exercise attachments");
}

/// Where a message's MIME structure is broken (a multipart without a
/// boundary, a boundary never closed), the server's reading of it decides,
/// and it can differ from the parser `test` uses (docs/rules.md). Each
/// such message is still decided; nothing fails.
#[tokio::test]
async fn broken_mime_structure_is_read_as_the_server_reads_it() {
    let user = server().user();
    mime_fixtures(&user, "mime-broken").await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = user.config(dir.path(), FULL, "", ATTACHMENT_RULES);
    let (run, _) = run_traced(&user, &cfg, &["run", "--dry-run", "--format", "json"]);
    let (out, err) = text(&run);
    assert_eq!(run.status.code(), Some(0), "{err}");
    let rules: BTreeMap<String, String> = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| {
            let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
            (s("message_id"), s("rule"))
        })
        .collect();
    // Dovecot reads the first as one text part, and finds the image the
    // second ends with.
    assert_eq!(
        rules,
        BTreeMap::from([
            (
                "01-multipart-without-boundary.eml@mime.test".into(),
                "none".into()
            ),
            ("02-unclosed-nested.eml@mime.test".into(), "images".into()),
        ])
    );
}

const ATTACHMENT_RULES: &str = r#"  - name: euro invoice
    match: { attachment: { name: { regex: '^€' } } }
    actions: [move: Euro]
  - name: umlaut
    match: { attachment: { name: über } }
    actions: [move: Umlaut]
  - name: pdf
    match: { attachment: { name: { glob: '*.pdf' }, type: application/pdf } }
    actions: [move: PDF]
  - name: images
    match: { attachment: { type: image/ } }
    actions: [move: Images]
  - name: any other
    match: { attachment: true }
    actions: [flag: flagged]
  - name: none
    match: { attachment: false }
    actions: [flag: seen]
"#;

/// A dry run over the MIME fixtures with `rules`: its UID FETCHes each pass
/// `fetch_ok`, it changes nothing, it decides every message as `test` does
/// on the files, and every rule named in `decisive` decides some message.
async fn decides_as_test_on_mime_fixtures(
    rules: &str,
    fetch_ok: impl Fn(&str) -> bool,
    decisive: &[&str],
) {
    let user = server().user();
    let fixtures = mime_fixtures(&user, "mime").await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = user.config(dir.path(), FULL, "", rules);
    let before = user.snapshot().await;
    let (run, sent) = run_traced(&user, &cfg, &["run", "--dry-run", "--format", "json"]);
    let (out, err) = text(&run);
    assert_eq!(run.status.code(), Some(0), "{err}");
    let fetches: Vec<&String> = sent.iter().filter(|c| c.starts_with("UID FETCH")).collect();
    assert!(!fetches.is_empty(), "{err}");
    assert!(fetches.iter().all(|c| fetch_ok(c)), "{fetches:?}");
    assert_eq!(
        user.snapshot().await,
        before,
        "a dry run changed the mailbox"
    );

    let mime_dir = dir.path().join("mime");
    std::fs::create_dir(&mime_dir).unwrap();
    for (id, raw) in &fixtures {
        std::fs::write(mime_dir.join(id.trim_end_matches("@mime.test")), raw).unwrap();
    }
    let test = user.mailwarden(
        &["test", "--format", "json", mime_dir.to_str().unwrap()],
        &cfg,
    );
    let decisions = |text: &str| -> BTreeMap<String, (String, Vec<String>, String)> {
        text.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .map(|v| {
                let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
                let flags = v["flags_added"]
                    .as_array()
                    .map(|a| a.iter().map(|f| f.as_str().unwrap().to_string()).collect())
                    .unwrap_or_default();
                (s("message_id"), (s("rule"), flags, s("destination")))
            })
            .collect()
    };
    let from_run = decisions(&out);
    let from_test = decisions(&text(&test).0);
    assert_eq!(from_run.len(), fixtures.len(), "{out}");
    assert_eq!(from_run, from_test);
    let rules_hit: std::collections::BTreeSet<&str> =
        from_run.values().map(|(r, _, _)| r.as_str()).collect();
    for rule in decisive {
        assert!(
            rules_hit.contains(rule),
            "no fixture decided by {rule}: {from_run:?}"
        );
    }
}

/// With attachment conditions and no body condition, `run` reads
/// BODYSTRUCTURE and never a message's content.
#[tokio::test]
async fn attachment_rules_read_the_structure_only_and_decide_as_test_does() {
    decides_as_test_on_mime_fixtures(
        ATTACHMENT_RULES,
        |c| c.contains("BODYSTRUCTURE") && !c.contains("BODY.PEEK[]") && !c.contains("[TEXT]"),
        &[
            "euro invoice",
            "umlaut",
            "pdf",
            "images",
            "any other",
            "none",
        ],
    )
    .await;
}

/// With a body condition, `run` reads the header fields the rules use,
/// Content-Transfer-Encoding and BODY[TEXT], never the whole message, and
/// still decodes the text (a base64 body) as `test` does.
#[tokio::test]
async fn body_rules_read_the_text_not_the_whole_message_and_decide_as_test_does() {
    let rules = format!(
        "  - {{name: secret, match: {{body: Geheimnis}}, actions: [move: Secrets]}}\n{ATTACHMENT_RULES}"
    );
    decides_as_test_on_mime_fixtures(
        &rules,
        |c| {
            c.contains("BODY.PEEK[TEXT]")
                && c.contains("CONTENT-TRANSFER-ENCODING")
                && !c.contains("BODY.PEEK[]")
        },
        &["secret", "euro invoice", "pdf", "any other", "none"],
    )
    .await;
}

/// A message that has none of the header fields mailwarden reads is still
/// a message: `run` decides it as `test` does, in every reading mode,
/// instead of calling it empty.
#[tokio::test]
async fn a_message_without_the_fields_read_is_decided_not_refused() {
    let user = server().user();
    let raw = b"X-Only: this\r\n\r\nNothing else is here.\r\n";
    user.deliver("INBOX", raw).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bare.eml"), raw).unwrap();
    for (rule, flag) in [
        ("{not: {subject: x}}", "\\Flagged"),
        ("{attachment: false}", "\\Seen"),
        ("{body: Nothing}", "\\Answered"),
    ] {
        let cfg = user.config(
            dir.path(),
            FULL,
            "",
            &format!("  - {{name: r, match: {rule}, actions: [flag: '{flag}']}}\n"),
        );
        let run = user.mailwarden(&["run", "--dry-run", "--format", "json"], &cfg);
        let (out, err) = text(&run);
        assert_eq!(run.status.code(), Some(0), "{rule}: {out}\n{err}");
        let test = user.mailwarden(
            &[
                "test",
                "--format",
                "json",
                dir.path().join("bare.eml").to_str().unwrap(),
            ],
            &cfg,
        );
        let rule_of = |text: &str| -> String {
            let v: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
            v["rule"].as_str().unwrap_or("").to_string()
        };
        assert_eq!(rule_of(&out), "r", "{rule}: {out}");
        assert_eq!(rule_of(&text(&test).0), "r", "{rule}");
    }
}

/// A configuration with a TLS account for `user`.
fn tls_config(
    dir: &std::path::Path,
    user: &User,
    tls: &str,
    port: u16,
    ca_file: &std::path::Path,
) -> std::path::PathBuf {
    let path = dir.join("tls.yaml");
    std::fs::write(
        &path,
        format!(
            "version: 1\naccounts:\n  test:\n    host: 127.0.0.1\n    port: {port}\n    tls: {tls}\n    ca_file: {}\n    username: {}\n    password_env: MAILWARDEN_TEST_PASSWORD\nrules:\n  - name: r\n    match: {{ subject: hello }}\n    actions: [flag: seen]\n",
            ca_file.display(),
            user.name
        ),
    )
    .unwrap();
    path
}

#[tokio::test]
async fn implicit_tls_and_starttls_verify_the_server_with_the_accounts_ca() {
    let user = server().user();
    user.deliver("INBOX", &mail("t1@x", "From: a@b\r\nSubject: hello"))
        .await;
    let dir = tempfile::tempdir().unwrap();
    for (tls, port) in [
        ("implicit", server().tls_port),
        ("starttls", server().plain_port),
    ] {
        let cfg = tls_config(dir.path(), &user, tls, port, &server().ca_file());
        let o = user.mailwarden(&["run"], &cfg);
        assert_eq!(o.status.code(), Some(0), "{tls}: {:?}", text(&o));
    }
    assert_eq!(ids(&user.snapshot().await, "INBOX"), ["<t1@x> \\Seen"]);
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused_before_login() {
    let user = server().user();
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other-ca.pem");
    std::fs::write(&other, support::certificate().0).unwrap();
    for (tls, port) in [
        ("implicit", server().tls_port),
        ("starttls", server().plain_port),
    ] {
        let cfg = tls_config(dir.path(), &user, tls, port, &other);
        let o = user.mailwarden(&["run", "--dry-run"], &cfg);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(3), "{tls}: {err}");
        assert!(
            err.contains("TLS with 127.0.0.1 failed") && err.contains("certificate"),
            "{tls}: {err}"
        );
    }
}

#[tokio::test]
async fn a_wrong_password_is_exit_3_with_a_clear_message() {
    let user = server().user();
    let dir = tempfile::tempdir().unwrap();
    let cfg = user.config(
        dir.path(),
        FULL,
        "",
        "  - {name: r, actions: [flag: seen]}\n",
    );
    let wrong = User {
        password: "not-the-password".into(),
        ..user.clone()
    };
    let o = wrong.mailwarden(&["run"], &cfg);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!(
            "account test: login to 127.0.0.1 as {} failed",
            user.name
        )) && err.contains("AUTHENTICATIONFAILED"),
        "{err}"
    );
}

#[tokio::test]
async fn the_password_never_appears_in_logs_at_the_most_verbose_level() {
    let user = server().user();
    user.deliver("INBOX", &mail("p1@x", "From: a@b\r\nSubject: hello"))
        .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = user.config(
        dir.path(),
        FULL,
        "",
        "  - {name: r, match: {subject: hello}, actions: [flag: seen]}\n",
    );
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_mailwarden"))
        .args(["run", "-c"])
        .arg(&cfg)
        .env("MAILWARDEN_TEST_PASSWORD", &user.password)
        .env("XDG_STATE_HOME", user.state_home())
        .env("MAILWARDEN_LOG", "trace")
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("UID STORE"), "trace logging is on: {err}");
    // AUTHENTICATE PLAIN sends base64("\0user\0password").
    let plain = format!("\0{}\0{}", user.name, user.password);
    let b64 = base64_encode(plain.as_bytes());
    for secret in [user.password.as_str(), b64.as_str()] {
        assert!(
            !err.contains(secret) && !out.contains(secret),
            "secret {secret:?} leaked:\n{err}"
        );
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test]
async fn starttls_that_fails_or_is_skipped_never_sends_credentials() {
    let cases = [
        (
            Script::new()
                .caps("IMAP4rev1 STARTTLS AUTH=PLAIN")
                .on("STARTTLS", Answer::tagged("BAD STARTTLS not available")),
            "refused STARTTLS",
        ),
        (
            Script::new().greeting(Answer::Text(
                "* PREAUTH [CAPABILITY IMAP4rev1] already in\r\n".into(),
            )),
            "PREAUTH",
        ),
    ];
    for (script, want) in cases {
        let server = script.start().await;
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.yaml");
        std::fs::write(
            &cfg,
            format!("version: 1\naccounts:\n  test:\n    host: 127.0.0.1\n    port: {}\n    tls: starttls\n    username: someone\n    password_env: MAILWARDEN_TEST_PASSWORD\nrules:\n  - {{name: r, actions: [flag: seen]}}\n", server.port),
        )
        .unwrap();
        let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_mailwarden"))
            .args(["run", "-c"])
            .arg(&cfg)
            .env("MAILWARDEN_TEST_PASSWORD", "hunter2")
            .env("XDG_STATE_HOME", dir.path())
            .output()
            .await
            .unwrap();
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(3), "{err}");
        assert!(err.contains(want), "{err}");
        let seen = server.commands();
        assert!(
            seen.iter().all(|l| !l.contains("hunter2")
                && !l.to_uppercase().contains("LOGIN")
                && !l.to_uppercase().contains("AUTHENTICATE")),
            "credentials were sent: {seen:?}"
        );
    }
}

fn base64_decode(s: &str) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.trim().bytes().filter(|&c| c != b'=') {
        bits = bits << 6 | A.iter().position(|&x| x == c).unwrap() as u32;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn oauth2_tokens_are_sent_with_xoauth2_or_oauthbearer() {
    for (mechanism, want) in [
        ("XOAUTH2", "user=someone@example.org\x01auth=Bearer tok-123\x01\x01".to_string()),
        ("OAUTHBEARER", "n,a=someone@example.org,\x01host=127.0.0.1\x01port=PORT\x01auth=Bearer tok-123\x01\x01".to_string()),
    ] {
        // No SASL-IR: the token goes in the line after AUTHENTICATE, in
        // answer to the server's `+` (RFC 3501 6.2.2).
        let server = Script::new()
            .caps(&format!("IMAP4rev1 AUTH={mechanism}"))
            .start()
            .await;
        let port = server.port;
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.yaml");
        std::fs::write(
            &cfg,
            format!("version: 1\naccounts:\n  test:\n    host: 127.0.0.1\n    port: {port}\n    tls: none\n    username: someone@example.org\n    oauth2: {{ token_command: \"echo tok-123\" }}\nrules:\n  - {{name: r, actions: [flag: seen]}}\n"),
        )
        .unwrap();
        let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_mailwarden"))
            .args(["run", "--dry-run", "-c"])
            .arg(&cfg)
            .output()
            .await
            .unwrap();
        // The client's response is the line after AUTHENTICATE.
        let lines = server.commands();
        let sent = lines
            .iter()
            .position(|l| l.to_uppercase().contains("AUTHENTICATE"))
            .and_then(|i| lines.get(i + 1))
            .map(|l| base64_decode(l));
        assert_eq!(sent, Some(want.replace("PORT", &port.to_string())), "{mechanism}: {:?}", text(&o));
        // Logged in, and the pass went on.
        assert!(!text(&o).1.contains("login to"), "{mechanism}: {:?}", text(&o));
        assert_eq!(o.status.code(), Some(0), "{mechanism}: {:?}", text(&o));
    }
}

/// `duplicate: true` on the server. The first message with a Message-ID
/// stays and later deliveries of it move; the same message in two folders
/// the rule reads (same size and arrival: a copy) is no duplicate of
/// itself. What was seen is remembered across runs; a dry run decides from
/// that memory without adding to it. Counted before and after each pass.
#[tokio::test]
async fn later_deliveries_of_a_message_id_are_duplicates_across_runs_not_its_copies() {
    let user = server().user();
    let at = |s: &str| Some(DateTime::parse_from_rfc3339(s).unwrap().to_utc());
    let mail = |id: &str, body: &str| {
        format!("From: a@example.org\r\nMessage-ID: <{id}>\r\nSubject: s\r\n\r\n{body}\r\n")
            .into_bytes()
    };
    user.append(
        "INBOX",
        &mail("x@h", "first"),
        &[],
        at("2026-05-01T10:00:00Z"),
    )
    .await;
    user.append(
        "INBOX",
        &mail("x@h", "again, by the list"),
        &[],
        at("2026-05-01T10:00:07Z"),
    )
    .await;
    user.append(
        "INBOX",
        &mail("y@h", "other"),
        &[],
        at("2026-05-01T11:00:00Z"),
    )
    .await;
    user.append(
        "Lists",
        &mail("y@h", "other"),
        &[],
        at("2026-05-01T11:00:00Z"),
    )
    .await;
    let rules = "  - name: dups\n    mailbox: [INBOX, Lists]\n    match: { duplicate: true }\n    actions: [move: Duplicates]\n";
    let dir = tempfile::tempdir().unwrap();
    let cfg = user.config(dir.path(), FULL, "    create_folders: true\n", rules);
    let run = |args: &[&str]| {
        let o = user.mailwarden(args, &cfg);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{args:?}\n{out}\n{err}");
        out
    };
    assert_eq!(total(&user.snapshot().await), 4);
    run(&["run"]);
    let after = user.snapshot().await;
    assert_eq!(total(&after), 4, "{after:?}");
    assert_eq!(ids(&after, "INBOX"), ["<x@h>", "<y@h>"]);
    assert_eq!(ids(&after, "Lists"), ["<y@h>"]);
    assert_eq!(ids(&after, "Duplicates"), ["<x@h>"]);

    // A third delivery, another day: the memory of the first run decides.
    user.append(
        "INBOX",
        &mail("x@h", "and once more"),
        &[],
        at("2026-05-02T09:00:00Z"),
    )
    .await;
    let out = run(&["run", "--dry-run"]);
    assert!(out.contains("Duplicates"), "{out}");
    assert_eq!(total(&user.snapshot().await), 5);
    run(&["run"]);
    let after = user.snapshot().await;
    assert_eq!(total(&after), 5, "{after:?}");
    assert_eq!(ids(&after, "INBOX"), ["<x@h>", "<y@h>"]);
    assert_eq!(ids(&after, "Duplicates"), ["<x@h>", "<x@h>"]);
    // Again: the originals are still not duplicates of themselves.
    let out = run(&["run"]);
    assert_eq!(total(&user.snapshot().await), 5, "{out}");
    assert_eq!(ids(&user.snapshot().await, "INBOX"), ["<x@h>", "<y@h>"]);
}

/// A rule without `account:` reads every account; `account:` may list
/// several. Two users on the server, one run: each mailbox sorted by the
/// shared rule, the listed rule only where listed, counts kept.
#[tokio::test]
async fn a_rule_without_account_reads_every_account_and_a_list_reads_those_listed() {
    let (first, second) = (server().user(), server().user());
    let github = b"From: GitHub <notifications@github.com>\r\nMessage-ID: <gh@x>\r\nSubject: PR\r\n\r\nx\r\n";
    let invoice = b"From: Shop <billing@shop.example>\r\nMessage-ID: <inv@x>\r\nSubject: Invoice\r\n\r\nx\r\n";
    for user in [&first, &second] {
        user.deliver("INBOX", github).await;
        user.deliver("INBOX", invoice).await;
    }
    let other = format!(
        "  other:\n    host: \"{FULL}\"\n    port: {}\n    tls: none\n    username: {}\n    password_command: \"printf %s {}\"\n",
        server().plain_port,
        second.name,
        second.password
    );
    let rules = "  - name: GitHub\n    match: { from: { domain: github.com } }\n    actions: [move: Notifications]\n  - name: Invoices\n    account: [other]\n    match: { subject: invoice }\n    actions: [flag: $Invoice]\n";
    let dir = tempfile::tempdir().unwrap();
    let cfg = first.config(dir.path(), FULL, &other, rules);
    let check = first.mailwarden(&["check"], &cfg);
    let (out, err) = text(&check);
    assert_eq!(check.status.code(), Some(0), "{out}\n{err}");
    assert!(
        out.contains("rule \"GitHub\" (every account: INBOX)"),
        "{out}"
    );
    assert!(out.contains("rule \"Invoices\" (other: INBOX)"), "{out}");

    let o = first.mailwarden(&["run"], &cfg);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    let (a, b) = (first.snapshot().await, second.snapshot().await);
    assert_eq!((total(&a), total(&b)), (2, 2));
    assert_eq!(ids(&a, "Notifications"), ["<gh@x>"]);
    assert_eq!(ids(&b, "Notifications"), ["<gh@x>"]);
    assert_eq!(ids(&a, "INBOX"), ["<inv@x>"]);
    assert_eq!(ids(&b, "INBOX"), ["<inv@x> $Invoice"]);
}

/// A mailbox read in slices (here of 3 messages, `MAILWARDEN_SLICE`) ends
/// exactly where one read whole ends: every message in its place, one
/// summary line per destination with the counts of all slices, and a
/// journal entry per action.
#[tokio::test]
async fn a_mailbox_carried_out_in_slices_ends_as_one_carried_out_whole() {
    let user = server().user();
    fill(&user).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = user.config(
        dir.path(),
        FULL,
        "    max_actions: unlimited\n",
        scenario::RULES,
    );
    let o = user
        .command(&["run", "--now", NOW], &cfg)
        .env("MAILWARDEN_SLICE", "3")
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    let after = user.snapshot().await;
    assert_eq!(total(&after), 10);
    assert_eq!(
        scenario::placement(&after),
        scenario::expected(&user.layout.names())
    );
    // One line per destination, not one per slice.
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("  ")).collect();
    let mut unique = lines.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(lines.len(), unique.len(), "{out}");
    // And the same as a whole pass over another user's copy says.
    let other = server().user();
    fill(&other).await;
    let dir2 = tempfile::tempdir().unwrap();
    let cfg2 = other.config(
        dir2.path(),
        FULL,
        "    max_actions: unlimited\n",
        scenario::RULES,
    );
    let whole = other.mailwarden(&["run", "--now", NOW], &cfg2);
    let (whole_out, _) = text(&whole);
    let body = |s: &str| s.lines().map(str::to_string).collect::<Vec<_>>();
    let mut a = body(&out);
    let mut b = body(&whole_out);
    a.sort();
    b.sort();
    assert_eq!(a, b, "sliced:\n{out}\nwhole:\n{whole_out}");
    let log = |u: &User| {
        let o = u.mailwarden_bare(&["log", "--format", "json"]);
        String::from_utf8_lossy(&o.stdout).lines().count()
    };
    assert_eq!(log(&user), log(&other));
}

/// A move whose UIDs do not fit one 8 KB line: where the server keeps
/// search results (Dovecot has SEARCHRES), the set is saved as `$` over
/// several short `UID SEARCH RETURN (SAVE)` lines and moved with one
/// `UID MOVE $`; without MOVE (127.0.0.2) it is copied line by line. Both
/// end with every message where the rules say, once, and a journal of
/// every move done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_longer_than_a_line_is_one_command_on_a_saved_set() {
    for ip in [FULL, support::NO_MOVE] {
        let user = server().user();
        // Every other message moves: 2,000 single UIDs, 2 lines' worth.
        let msgs: Vec<Vec<u8>> = (0..4000)
            .map(|i| {
                let from = if i % 2 == 0 {
                    "notifications@github.com"
                } else {
                    "friend@example.net"
                };
                format!("Message-ID: <s{i}@x>\r\nFrom: {from}\r\nSubject: s\r\n\r\nb\r\n")
                    .into_bytes()
            })
            .collect();
        user.deliver_many("INBOX", &msgs);
        let dir = tempfile::tempdir().unwrap();
        let cfg = user.config(
            dir.path(),
            ip,
            "    max_actions: unlimited\n",
            "  - name: GitHub\n    match: { from: { domain: github.com } }\n    actions: [move: Notifications]\n",
        );
        let o = user.mailwarden_logged(&["run"], &cfg, "mailwarden=debug");
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
        let commands = |name: &str| {
            err.lines()
                .filter(|l| l.contains(&format!("done command=\"{name}\"")))
                .count()
        };
        if ip == FULL {
            assert_eq!(commands("UID MOVE"), 1, "{err}");
            // The pre-filter SEARCH, and the saved set's lines.
            assert!(commands("UID SEARCH") >= 3, "{err}");
        } else {
            assert!(commands("UID COPY") >= 2, "{err}");
        }
        assert!(
            out.contains("moved 2000 messages to Notifications"),
            "{out}"
        );
        let after = user.snapshot().await;
        assert_eq!(total(&after), 4000, "nothing lost or duplicated");
        assert_eq!(after["Notifications"].len(), 2000);
        assert!(after["Notifications"].iter().all(|(id, _)| {
            id.trim_matches(['<', '>', 's', '@', 'x'])
                .parse::<u32>()
                .unwrap()
                % 2
                == 0
        }));
        let log = user.mailwarden_bare(&["log", "--format", "json"]);
        let log = String::from_utf8_lossy(&log.stdout);
        assert_eq!(log.matches("\"done\"").count(), 2000, "{log}");
    }
}
