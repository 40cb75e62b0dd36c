//! `mailwarden import` end to end.
//!
//! Golden tests: every file in `tests/fixtures/import/gmail/` and
//! `.../sieve/` is imported by the real binary; its standard output must
//! equal `NAME.yaml` beside it, and its exit code and standard error
//! `NAME.report`. A mismatch writes `NAME.yaml.new` / `NAME.report.new` for
//! review; `MAILWARDEN_BLESS=1` writes the expected files instead (review
//! the diff!).
//!
//! Round trips: the imported configuration passes `mailwarden check`, and
//! `mailwarden test` decides each message under `.../mail/SAMPLE/` as the
//! original filter does. The Sieve expectations were taken from Dovecot
//! Pigeonhole's `sieve-test` (0.5.19) on the same script and message;
//! where a translation cannot agree (an action mailwarden does not take,
//! Sieve's numeric comparator), the test says so beside the expectation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const NOW: &str = "2026-02-01T00:00:00Z";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import")
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mailwarden"))
}

/// `mailwarden import KIND FILE [ARGS]`, run in the file's folder so that
/// the report names the file as the user typed it.
fn import(kind: &str, file: &Path, args: &[&str]) -> Output {
    bin()
        .current_dir(file.parent().unwrap())
        .args(["import", kind])
        .arg(file.file_name().unwrap())
        .args(args)
        .output()
        .unwrap()
}

fn report(o: &Output) -> String {
    format!(
        "exit: {}\n{}",
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Compares `got` with the file `want`, or writes it when blessing.
fn golden(want: &Path, got: &str, failures: &mut Vec<String>) {
    if std::env::var_os("MAILWARDEN_BLESS").is_some() {
        std::fs::write(want, got).unwrap();
        return;
    }
    if std::fs::read_to_string(want).ok().as_deref() != Some(got) {
        let mut new = want.as_os_str().to_owned();
        new.push(".new");
        std::fs::write(&new, got).unwrap();
        failures.push(format!(
            "{} differs; see {}",
            want.display(),
            Path::new(&new).display()
        ));
    }
}

fn inputs(kind: &str, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures().join(kind))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

#[test]
fn imports_match_the_golden_files() {
    let mut failures = Vec::new();
    let mut seen = 0;
    for (kind, ext) in [("gmail", "xml"), ("sieve", "sieve")] {
        for file in inputs(kind, ext) {
            seen += 1;
            let o = import(kind, &file, &[]);
            golden(
                &with_suffix(&file, ".yaml"),
                &String::from_utf8(o.stdout.clone()).unwrap(),
                &mut failures,
            );
            golden(&with_suffix(&file, ".report"), &report(&o), &mut failures);
        }
    }
    // The rules alone, to paste under `rules:`.
    let file = fixtures().join("gmail/mailFilters.xml");
    let o = import("gmail", &file, &["--rules-only"]);
    golden(
        &with_suffix(&file, ".rules-only.yaml"),
        &String::from_utf8(o.stdout).unwrap(),
        &mut failures,
    );
    assert!(seen >= 9, "fixtures missing: {seen}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn exit_codes_say_whether_everything_was_translated() {
    let sieve = fixtures().join("sieve");
    let gmail = fixtures().join("gmail");
    let code = |kind: &str, file: PathBuf| import(kind, &file, &[]).status.code();
    assert_eq!(code("sieve", sieve.join("simple.sieve")), Some(0));
    assert_eq!(code("sieve", sieve.join("cyrus-dotted.sieve")), Some(1));
    assert_eq!(code("gmail", gmail.join("mailFilters.xml")), Some(1));
    for bad in ["bad-missing-semicolon.sieve", "bad-gmail-export.sieve"] {
        let o = import("sieve", &sieve.join(bad), &[]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
        assert!(o.stdout.is_empty(), "{bad}: nothing is written");
        // FILE:LINE:COL: why
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.starts_with(&format!("{bad}:")), "{err}");
        assert!(
            err.split(':').nth(1).unwrap().parse::<u32>().is_ok(),
            "{err}"
        );
    }
    for bad in ["bad-html.xml", "bad-unclosed.xml"] {
        let o = import("gmail", &gmail.join(bad), &[]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
        assert!(o.stdout.is_empty(), "{bad}");
    }
    let o = bin()
        .args(["import", "sieve", "/nonexistent/script.sieve"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("/nonexistent/script.sieve: "),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// What the original filter does with a message: where it ends up ("" for
/// the inbox, `\Trash` and such for special-use folders), the flags it
/// gets and loses, and the folders that get a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expect {
    to: String,
    flags: Vec<String>,
    removed: Vec<String>,
    copies: Vec<String>,
}

fn e(to: &str, flags: &[&str], removed: &[&str], copies: &[&str]) -> Expect {
    let own = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    Expect {
        to: to.into(),
        flags: own(flags),
        removed: own(removed),
        copies: own(copies),
    }
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

/// Imports `input`, checks the result, and tests every message of
/// `mail/SAMPLE` against `expected`.
fn round_trip(kind: &str, input: &str, sample: &str, expected: &[(&str, Expect)]) {
    let dir = tempfile::tempdir().unwrap();
    let o = import(kind, &fixtures().join(kind).join(input), &[]);
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, &o.stdout).unwrap();
    let check = bin().arg("check").arg("-c").arg(&config).output().unwrap();
    assert_eq!(
        check.status.code(),
        Some(0),
        "the imported configuration does not check:\n{}\n{}",
        String::from_utf8_lossy(&check.stderr),
        String::from_utf8_lossy(&o.stdout)
    );

    let mail = fixtures().join("mail").join(sample);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&mail)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let listed: Vec<&str> = expected.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, listed, "every sample message has an expectation");

    let out = bin()
        .args(["test", "--format", "json", "--now", NOW, "-c"])
        .arg(&config)
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: BTreeMap<String, Expect> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let file = Path::new(v["file"].as_str().unwrap())
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let to = match (&v["action"], &v["special_use"], &v["destination"]) {
                (serde_json::Value::Null, _, _) => String::new(),
                (_, serde_json::Value::String(s), _) => s.clone(),
                (_, _, serde_json::Value::String(d)) => d.clone(),
                _ => panic!("{l}"),
            };
            let flags = strings(&v["flags_added"]);
            let removed = strings(&v["flags_removed"]);
            let copies = strings(&v["copies"]);
            (
                file,
                Expect {
                    to,
                    flags,
                    removed,
                    copies,
                },
            )
        })
        .collect();
    let mut wrong = Vec::new();
    for (name, want) in expected {
        let mut want = want.clone();
        want.flags.sort();
        want.removed.sort();
        want.copies.sort();
        match got.get(*name) {
            Some(g) if *g == want => {}
            other => wrong.push(format!("{name}: want {want:?}\n    got {other:?}")),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn gmail_filters_decide_as_gmail_does() {
    round_trip(
        "gmail",
        "mailFilters.xml",
        "gmail",
        &[
            ("01-github.eml", e("GitHub", &[], &[], &[])),
            ("02-rust-users.eml", e("Lists/rust-users", &[], &[], &[])),
            // shouldAlwaysMarkAsImportant is not translated.
            ("03-boss.eml", e("", &["\\Flagged"], &[], &[])),
            ("04-invoice.eml", e("", &[], &[], &["Receipts"])),
            ("05-amazon-order.eml", e("Shopping", &["\\Seen"], &[], &[])),
            ("06-newsletter.eml", e("Newsletters", &[], &[], &[])),
            ("07-linkedin.eml", e("\\Trash", &[], &[], &[])),
            ("08-plus-shop.eml", e("", &[], &[], &["Shopping"])),
            (
                "09-bank-statement.eml",
                e("", &["\\Flagged"], &[], &["Bank"]),
            ),
            // forwardTo is not translated; the label is.
            ("10-bank-alert.eml", e("", &[], &[], &["Bank"])),
            // Two filters label it: Gmail applies both.
            (
                "11-ci-team.eml",
                e("", &["\\Flagged"], &[], &["CI", "Team"]),
            ),
            (
                "12-security.eml",
                e("", &["\\Flagged"], &[], &["Security & Alerts"]),
            ),
            // Marked read by one filter, labelled and archived by another.
            (
                "13-shop-newsletter.eml",
                e("Newsletters", &["\\Seen"], &[], &[]),
            ),
            ("14-friend.eml", e("", &[], &[], &[])),
        ],
    );
}

#[test]
fn the_rules_alone_paste_under_rules() {
    let file = fixtures().join("gmail/mailFilters.xml");
    let whole = import("gmail", &file, &[]);
    let alone = import("gmail", &file, &["--rules-only"]);
    let alone = String::from_utf8(alone.stdout).unwrap();
    assert!(!alone.contains("accounts:"), "{alone}");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "version: 1\naccounts:\n  a:\n    host: h\n    username: u\n    password_env: P\nrules:\n{alone}"
        ),
    )
    .unwrap();
    let check = bin().arg("check").arg("-c").arg(&config).output().unwrap();
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let rules = |text: &str| text.lines().filter(|l| l.starts_with("  - name:")).count();
    assert_eq!(
        rules(&alone),
        rules(&String::from_utf8(whole.stdout).unwrap())
    );
    assert_eq!(rules(&alone), 15);
}

#[test]
fn a_sieve_script_for_cyrus_decides_as_pigeonhole_does() {
    round_trip(
        "sieve",
        "cyrus-dotted.sieve",
        "cyrus-dotted",
        &[
            // `stop` after the flag: the digest rule does not see it.
            ("01-family-digest.eml", e("", &["\\Flagged"], &[], &[])),
            ("02-cron.eml", e("Admin/Cron", &["\\Seen"], &[], &[])),
            ("03-nagios-urgent.eml", e("", &[], &[], &[])),
            ("04-urgent.eml", e("", &["\\Flagged"], &[], &[])),
            // i;octet: "urgent" is not "URGENT".
            ("05-urgent-lower.eml", e("", &[], &[], &[])),
            ("06-work.eml", e("Work", &[], &[], &["Work/Archive"])),
            ("07-work-large.eml", e("Work/Large", &[], &[], &[])),
            ("08-spam-level.eml", e("Spam", &[], &[], &[])),
            ("09-spam-level-low.eml", e("", &[], &[], &[])),
            ("10-digest.eml", e("Lists", &[], &["\\Seen"], &[])),
            // Sieve refuses it (reject, not translated) and stops; here
            // it stays, and the later rule for lists does not take it.
            ("11-recruiter.eml", e("", &[], &[], &[])),
        ],
    );
}

#[test]
fn a_fully_translated_script_decides_as_pigeonhole_does() {
    let dir = tempfile::tempdir().unwrap();
    let mail = |name: &str, headers: &str| {
        let p = dir.path().join(name);
        std::fs::write(
            &p,
            format!("{headers}Subject: s\nMessage-ID: <{name}@x>\nDate: Tue, 13 Jan 2026 10:00:00 +0000\n\nbody\n"),
        )
        .unwrap();
        p
    };
    let list = mail(
        "a.eml",
        "From: x@lists.example\nTo: me@example.org\nList-Id: <announce.example.com>\n",
    );
    let status = mail(
        "b.eml",
        "From: Status <bot@status.example.com>\nTo: me@example.org\n",
    );
    let other = mail(
        "c.eml",
        "From: Bot <bot@status.example.net>\nTo: me@example.org\n",
    );
    let o = import("sieve", &fixtures().join("sieve/simple.sieve"), &[]);
    assert_eq!(o.status.code(), Some(0));
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, &o.stdout).unwrap();
    let out = bin()
        .args(["test", "--format", "json", "--now", NOW, "-c"])
        .arg(&config)
        .args([&list, &status, &other])
        .output()
        .unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["destination"], "Lists/Announce");
    assert_eq!(lines[1]["destination"], "Status");
    assert_eq!(strings(&lines[1]["flags_added"]), ["\\Seen"]);
    assert_eq!(lines[2]["action"], serde_json::Value::Null);
}

#[test]
fn a_dovecot_script_with_a_spam_score_and_list_folders_decides_as_pigeonhole_does() {
    round_trip(
        "sieve",
        "dovecot-lists.sieve",
        "dovecot-lists",
        &[
            ("01-spam-flag.eml", e("Junk", &[], &[], &[])),
            ("02-spam-score.eml", e("Junk", &[], &[], &[])),
            ("03-list.eml", e("Lists/rust-users", &[], &[], &[])),
            (
                "04-github.eml",
                e("Notifications/GitHub", &["\\Seen"], &[], &[]),
            ),
            ("05-ticket.eml", e("Tickets/PROJ", &[], &[], &[])),
            // The vacation reply is not translated.
            ("06-boss.eml", e("", &["\\Flagged"], &[], &[])),
            ("07-newsletter.eml", e("Newsletters", &[], &[], &[])),
            // Where they differ: Pigeonhole files a score of "-1.3" into Junk
            // (i;ascii-numeric takes it for infinitely large); mailwarden
            // compares the number and leaves it.
            ("08-score-low.eml", e("", &[], &[], &[])),
        ],
    );
}

#[test]
fn a_script_with_subaddresses_decides_as_pigeonhole_does() {
    round_trip(
        "sieve",
        "subaddress.sieve",
        "subaddress",
        &[
            ("01-shop.eml", e("Shopping", &[], &[], &[])),
            ("02-plus-tag.eml", e("Plus/rustconf", &[], &[], &[])),
            // Pigeonhole 0.5 has no :specialuse; with it the message goes to
            // the folder marked \Junk.
            ("03-spammer.eml", e("\\Junk", &[], &[], &[])),
            ("04-receipt.eml", e("", &["$Receipt"], &[], &["Receipts"])),
            // Sieve redirects it (not translated); the flag is kept here.
            ("05-old-address.eml", e("", &["$Old"], &[], &[])),
            ("06-plain.eml", e("", &[], &[], &[])),
        ],
    );
}
