//! Configuration errors: each class of mistake is reported as
//! `FILE:LINE:COL: message (hint)`, and all of a file's errors at once,
//! whatever the file holds: what reading it costs is bounded.

use std::path::Path;
use std::time::{Duration, Instant};

use mailwarden::config::{MAX_FILE_BYTES, load, parse_str};

const ACCOUNT: &str = "version: 1
accounts:
  personal:
    host: imap.example.org
    username: me
    password_env: PW
";

/// The rendered diagnostics for `text`, as `rules.yaml:LINE:COL: ...`.
fn errors(text: &str) -> Vec<String> {
    match parse_str(text, Path::new("/cfg")) {
        Ok(_) => vec![],
        Err(diags) => diags.iter().map(|d| d.render("rules.yaml")).collect(),
    }
}

/// The report of loading a file holding `bytes`, its path shown as `FILE`;
/// empty when the file is valid.
fn load_report(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, bytes).unwrap();
    match load(&path) {
        Ok(_) => String::new(),
        Err(e) => e.report().replace(&path.display().to_string(), "FILE"),
    }
}

/// `ACCOUNT` plus one rule whose `match:` and `actions:` are given.
fn rule(matches: &str, actions: &str) -> String {
    format!("{ACCOUNT}rules:\n  - name: r\n    match:\n{matches}    actions:\n{actions}")
}

#[test]
fn each_class_of_mistake_has_its_position_and_message() {
    let cases: Vec<(String, &str)> = vec![
        (
            rule("      subjet: hello\n", "      - move: X\n"),
            "rules.yaml:10:7: unknown key \"subjet\" in match (did you mean \"subject\"?)",
        ),
        (
            format!("{ACCOUNT}    prot: 993\nrules: []\n"),
            "rules.yaml:7:5: unknown key \"prot\" (did you mean \"port\"?)",
        ),
        (
            format!("{ACCOUNT}rules:\n  - name: r\n    acitons: [stop]\n    stop: true\n"),
            "rules.yaml:9:5: unknown key \"acitons\" (did you mean \"actions\"?)",
        ),
        (
            rule("      subject: { regex: \"(unclosed\" }\n", "      - move: X\n"),
            "rules.yaml:10:25: invalid regex: unclosed group\n    regex parse error:\n        (unclosed\n        ^\n    error: unclosed group",
        ),
        (
            rule("      list: { regex: '^(?P<list>[a-z]+)' }\n", "      - move: Lists/{lsit}\n"),
            "rules.yaml:12:15: unknown template variable {lsit}: no regex of rule \"r\" captures it (did you mean \"list\"?)",
        ),
        (
            rule("      subject: x\n", "      - move: Lists/{team}\n"),
            "rules.yaml:12:15: unknown template variable {team}: no regex of rule \"r\" captures it (name a group (?P<team>...) in a regex of this rule, or use one of: year, month, day, sent_year, sent_month, sent_day)",
        ),
        (
            rule("      not: { subject: { regex: '(?P<x>a)' } }\n", "      - move: \"{x}\"\n"),
            "rules.yaml:12:15: {x} is captured only under `not`, so it never takes part in a match",
        ),
        (
            rule("      older_than: 90x\n", "      - archive\n"),
            "rules.yaml:10:19: invalid duration \"90x\": unknown unit \"x\" (use s, m, h, d, w or y)",
        ),
        (
            format!("{ACCOUNT}    password_command: pass show x\nrules: []\n"),
            "rules.yaml:7:23: account \"personal\" has two secret sources, password_env and password_command (keep exactly one)",
        ),
        (
            "version: 1\naccounts:\n  p:\n    host: imap.example.org\n    username: me\nrules: []\n".into(),
            "rules.yaml:4:5: account \"p\" has no secret (set one of password_command, password_env, password_file or oauth2)",
        ),
        (
            format!("{ACCOUNT}    tls: none\nrules: []\n"),
            "rules.yaml:7:10: tls: none would send the password for \"personal\" unencrypted to imap.example.org (use tls: implicit or starttls, or set allow_plaintext: true if you really mean it)",
        ),
        (
            format!("{ACCOUNT}    idle_renewal: 45m\nrules: []\n"),
            "rules.yaml:7:19: idle_renewal must be at most 29 minutes (servers may drop an IDLE after 30 minutes (RFC 2177))",
        ),
        (
            format!("{ACCOUNT}    tls: maybe\nrules: []\n"),
            "rules.yaml:7:10: unknown value \"maybe\" for tls (expected implicit, starttls or none)",
        ),
        (
            format!("{ACCOUNT}    port: 99999\nrules: []\n"),
            "rules.yaml:7:11: port 99999 is out of range (1-65535)",
        ),
        (
            format!("{ACCOUNT}    tls: starttsl\nrules: []\n"),
            "rules.yaml:7:10: unknown value \"starttsl\" for tls (did you mean \"starttls\"?)",
        ),
        (
            format!("{ACCOUNT}    port: imap\nrules: []\n"),
            "rules.yaml:7:11: expected a port number (1-65535), found \"imap\"",
        ),
        (
            rule("      size: { over: 5XB }\n", "      - archive\n"),
            "rules.yaml:10:21: invalid size \"5XB\": unknown unit \"XB\" (use B, KB, MB or GB)",
        ),
        (
            rule("      size: { over: 5MB, under: 1MB }\n", "      - archive\n"),
            "rules.yaml:10:13: size over is not below size under: this condition can never hold",
        ),
        (
            rule("      sent_before: 31/01/2025\n", "      - archive\n"),
            "rules.yaml:10:20: invalid date \"31/01/2025\": expected a date like 2025-01-31, a duration like 90d, or start_of_year, start_of_month, start_of_week or today",
        ),
        (
            rule("      seen: yes\n", "      - archive\n"),
            "rules.yaml:10:13: seen takes true or false, found a string",
        ),
        (
            rule("      subject: x\n", "      - flag: [seen, \"two words\"]\n"),
            "rules.yaml:12:22: keyword \"two words\" holds ' ', which IMAP keywords cannot contain",
        ),
        (
            rule("      subject: x\n", "      - mvoe: X\n"),
            "rules.yaml:12:9: unknown action \"mvoe\" (did you mean \"move\"?)",
        ),
        (
            rule("      subject: x\n", "      - move: A\n      - archive\n"),
            "rules.yaml:13:9: a rule can move, archive or delete only once (split it into two rules)",
        ),
        (
            rule("      subject: x\n", "      - move: A//B\n"),
            "rules.yaml:12:15: folder name \"A//B\" has an empty level",
        ),
        (
            rule("      subject: x\n", "      - move: INBOX\n"),
            "rules.yaml:12:15: rule \"r\" moves messages into INBOX, the mailbox it reads",
        ),
        (
            rule("      subject: { regex: a, glob: b }\n", "      - archive\n"),
            "rules.yaml:10:28: a text test takes one of is, contains, glob or regex; write a list for several",
        ),
        (
            format!("{ACCOUNT}rules:\n  - name: r\n    account: work\n    actions: [archive]\n"),
            "rules.yaml:9:14: unknown account \"work\" (expected one of: personal)",
        ),
        (
            format!("{ACCOUNT}rules:\n  - name: r\n    actions: [archive]\n  - name: r\n    actions: [archive]\n"),
            "rules.yaml:10:11: duplicate rule name \"r\" (first used at line 8)",
        ),
        (
            format!("{ACCOUNT}rules:\n  - name: r\n"),
            "rules.yaml:8:5: rule \"r\" has no actions (add `actions:`, or `stop: true` to end evaluation)",
        ),
        (
            ACCOUNT.replace("version: 1\n", "") + "rules: []\n",
            "rules.yaml:1:1: missing key \"version\" (add `version: 1` at the top)",
        ),
        (
            format!("{ACCOUNT}rules:\n  - name: r\n    match: {{ subject: [a, b\n"),
            "rules.yaml:10:1: YAML syntax error: while parsing a flow sequence, expected ',' or ']'",
        ),
        (
            format!("{ACCOUNT}    host: other\nrules: []\n"),
            "rules.yaml:7:5: duplicate key \"host\" (first given at line 4)",
        ),
        ("".into(), "rules.yaml:1:1: the file is empty (start with `version: 1`, then `accounts:` and `rules:`)"),
        // The rule language's additions, and their mistakes.
        (
            rule("      list: { regex: '^(?P<l>.+)$' }\n", "      - move: Lists/{l|lowr}\n"),
            "rules.yaml:12:15: unknown transform \"lowr\" in {l|lowr} (transforms: lower, upper, title, flat)",
        ),
        (
            rule("      header: { X-Spam-Score: { over: high } }\n", "      - junk\n"),
            "rules.yaml:10:39: over takes a number, found \"high\" (for example `X-Spam-Score: { over: 5 }`)",
        ),
        (
            rule("      subject: x\n", "      - move: \\Spam\n"),
            "rules.yaml:12:15: unknown special-use folder \"\\\\Spam\" (one of \\Archive, \\Drafts, \\Junk, \\Sent or \\Trash)",
        ),
        (
            rule("      sent_before: start_of_decade\n", "      - archive\n"),
            "rules.yaml:10:20: invalid date \"start_of_decade\": expected a date like 2025-01-31, a duration like 90d, or start_of_year, start_of_month, start_of_week or today",
        ),
        (
            format!("{ACCOUNT}rules:\n  - name: r\n    mailbox: Trash\n    match: {{ older_than: 30d }}\n    actions: [delete]\n"),
            "rules.yaml:11:15: rule \"r\" reads Trash and moves its messages to \\Trash (Trash): it would move Trash into itself on every pass (read another mailbox, or leave Trash out of `mailbox:`)",
        ),
        (
            rule("      to: { detial: shop }\n", "      - move: X\n"),
            "rules.yaml:10:13: unknown address test \"detial\" (did you mean \"detail\"?)",
        ),
        (
            rule("      from: { file: /cfg/no-such-list.txt }\n", "      - move: X\n"),
            "rules.yaml:10:21: cannot read /cfg/no-such-list.txt: No such file or directory (os error 2)",
        ),
        (
            rule("      from: { file: vip.txt, domain: example.org }\n", "      - move: X\n"),
            "rules.yaml:10:15: file stands alone in an address test (write `all:` with one test per item to combine a list with other tests)",
        ),
        (
            rule("      duplicate: yes\n", "      - move: Duplicates\n"),
            "rules.yaml:10:18: duplicate takes true or false, found a string",
        ),
        (
            rule("      address: Delivered-To\n", "      - move: X\n"),
            "rules.yaml:10:16: address takes a mapping of header names to address tests, found a string (for example `address: { Delivered-To: { detail: shop } }`)",
        ),
    ];
    let mut wrong = Vec::new();
    for (text, want) in &cases {
        let got = errors(text);
        if got != [*want] {
            wrong.push(format!("{text}\n  want: {want}\n  got:  {got:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases differ:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n\n")
    );
}

#[test]
fn all_errors_of_a_file_are_reported_at_once_in_file_order() {
    let text = "version: 1
accounts:
  personal:
    host: imap.example.org
    tls: none
    username: me
    password_command: pass show mail
    password_env: MAIL_PW
    poll_interval: 90x
  work:
    host: mail.work.example
    usrname: me@work
    username: me@work
    password_env: WORK_PW
rules:
  - name: Typo
    account: personal
    match:
      subjet: hello
      form: x
    actions:
      - move: X
  - name: Bad regex
    account: wrok
    match:
      subject: { regex: \"(unclosed\" }
    actions:
      - move: Lists/{list}
";
    let got: Vec<String> = errors(text)
        .iter()
        .map(|e| e.lines().next().unwrap().to_string())
        .collect();
    assert_eq!(
        got,
        [
            "rules.yaml:5:10: tls: none would send the password for \"personal\" unencrypted to imap.example.org (use tls: implicit or starttls, or set allow_plaintext: true if you really mean it)",
            "rules.yaml:8:19: account \"personal\" has two secret sources, password_command and password_env (keep exactly one)",
            "rules.yaml:9:20: invalid duration \"90x\": unknown unit \"x\" (use s, m, h, d, w or y)",
            "rules.yaml:12:5: unknown key \"usrname\" (did you mean \"username\"?)",
            "rules.yaml:19:7: unknown key \"subjet\" in match (did you mean \"subject\"?)",
            "rules.yaml:20:7: unknown key \"form\" in match (did you mean \"from\"?)",
            "rules.yaml:24:14: unknown account \"wrok\" (did you mean \"work\"?)",
            "rules.yaml:26:25: invalid regex: unclosed group",
            "rules.yaml:28:15: unknown template variable {list}: no regex of rule \"Bad regex\" captures it (name a group (?P<list>...) in a regex of this rule, or use one of: year, month, day, sent_year, sent_month, sent_day)",
        ]
    );
}

#[test]
fn the_shipped_example_is_valid() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/rules.example.yaml"))
        .unwrap();
    let config = parse_str(&text, Path::new(".")).unwrap_or_else(|d| panic!("{d:?}"));
    assert_eq!(config.accounts.len(), 1);
    assert!(config.rules.len() >= 10);
}

#[test]
fn loopback_hosts_may_go_without_tls() {
    for host in ["localhost", "127.0.0.1", "::1", "[::1]", "127.5.5.5"] {
        let text = format!(
            "version: 1\naccounts:\n  t:\n    host: \"{host}\"\n    tls: none\n    username: u\n    password_env: P\nrules: []\n"
        );
        assert_eq!(errors(&text), Vec::<String>::new(), "{host}");
    }
    let text = "version: 1\naccounts:\n  t:\n    host: mail.example.org\n    tls: none\n    allow_plaintext: true\n    username: u\n    password_env: P\nrules: []\n";
    assert_eq!(errors(text), Vec::<String>::new());
}

#[test]
fn a_bad_value_hides_no_other_error_of_its_account() {
    let text = format!(
        "{ACCOUNT}    tls: maybe\n    idle: sometimes\n    poll_interval: -5m\nrules: []\n"
    );
    assert_eq!(
        errors(&text),
        [
            "rules.yaml:7:10: unknown value \"maybe\" for tls (expected implicit, starttls or none)",
            "rules.yaml:8:11: expected true or false, found a string",
            "rules.yaml:9:20: invalid duration \"-5m\": expected a number followed by a unit (s, m, h, d, w, y), as in 90d",
        ]
    );
}

#[test]
fn accounts_and_rules_missing_keys_are_still_checked() {
    let text = "version: 1
accounts:
  p:
    port: 0
    password_env: \"\"
rules:
  - nmae: x
    match: {subjet: y}
";
    assert_eq!(
        errors(text),
        [
            "rules.yaml:4:5: missing key \"host\" (or set provider: gmail, outlook, fastmail, icloud or yahoo)",
            "rules.yaml:4:5: missing key \"username\"",
            "rules.yaml:4:11: port 0 is not a port",
            "rules.yaml:5:19: the secret source is empty",
            "rules.yaml:7:5: unknown key \"nmae\" (did you mean \"name\"?)",
            "rules.yaml:7:5: missing key \"name\"",
            "rules.yaml:7:5: the rule at line 7 has no actions (add `actions:`, or `stop: true` to end evaluation)",
            "rules.yaml:8:13: unknown key \"subjet\" in match (did you mean \"subject\"?)",
        ]
    );
}

#[test]
fn a_byte_order_mark_is_skipped_and_takes_no_column() {
    let valid = format!("{ACCOUNT}rules: []\n");
    assert_eq!(errors(&format!("\u{feff}{valid}")), Vec::<String>::new());
    let typo = valid.replace("version", "verison");
    assert_eq!(
        errors(&format!("\u{feff}{typo}")),
        [
            "rules.yaml:1:1: unknown key \"verison\" (did you mean \"version\"?)",
            "rules.yaml:1:1: missing key \"version\" (add `version: 1` at the top)",
        ]
    );
    // In a file it is three bytes, before the first character of line 1.
    assert_eq!(
        load_report(&[b"\xEF\xBB\xBF", valid.as_bytes()].concat()),
        ""
    );
    assert_eq!(
        load_report(b"\xEF\xBB\xBFversion: 1\xFF\n"),
        "FILE:1:11: the file is not valid UTF-8"
    );
}

#[test]
fn a_file_over_256_kib_is_refused_unread() {
    let mut bytes = format!("{ACCOUNT}rules: []\n#").into_bytes();
    bytes.resize(MAX_FILE_BYTES, b'#');
    assert_eq!(
        load_report(&bytes),
        "",
        "a file of exactly the limit is read"
    );
    bytes.push(b'\n');
    assert_eq!(
        load_report(&bytes),
        "FILE: the file is larger than 256 KiB, more than any configuration needs (is it the right file?)"
    );
    // A file that never ends: only the limit and one byte are read.
    #[cfg(unix)]
    assert_eq!(
        load(Path::new("/dev/zero")).unwrap_err().report(),
        "/dev/zero: the file is larger than 256 KiB, more than any configuration needs (is it the right file?)"
    );
}

#[test]
fn aliases_that_expand_exponentially_are_stopped_at_the_alias() {
    // Each level holds nine of the one before: `f` alone stands for 531,441
    // subject tests. The limit is passed at the first alias of `f`.
    let text = format!(
        "{ACCOUNT}rules:
  - name: laughs
    match:
      subject:
        - &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]
        - &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
        - &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
        - &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
        - &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
        - &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
    actions: [stop]
"
    );
    assert_eq!(
        errors(&text),
        [
            "rules.yaml:16:15: aliases expand to more than 100000 values; expansion stops at this one (an alias repeats its anchor's whole value, so aliases of aliases grow exponentially)"
        ]
    );
}

#[test]
fn a_billion_laughs_file_is_refused_quickly() {
    // Ten levels: 9^10 values for `*j`, some 10 GB if they were built.
    let mut text = String::from(
        "version: 1\naccounts:\n  p:\n    host: h\n    username: u\n    password_env: P\n",
    );
    text.push_str("    watch: [&a [lol, lol, lol, lol, lol, lol, lol, lol, lol],\n");
    for (level, prev) in "bcdefghij".chars().zip("abcdefghi".chars()) {
        let nine = vec![format!("*{prev}"); 9].join(", ");
        text.push_str(&format!("      &{level} [{nine}],\n"));
    }
    text.push_str("      *j]\nrules: []\n");
    assert!(text.len() < 700, "{}", text.len());
    let start = Instant::now();
    assert_eq!(
        load_report(text.as_bytes()),
        "FILE:12:11: aliases expand to more than 100000 values; expansion stops at this one (an alias repeats its anchor's whole value, so aliases of aliases grow exponentially)"
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn deep_nesting_is_refused_without_exhausting_the_stack() {
    // Block style: the YAML scanner sets no limit, and the tree is walked
    // recursively.
    let block = format!("{ACCOUNT}rules:\n{}x\n", "- ".repeat(100_000));
    assert_eq!(
        errors(&block),
        ["rules.yaml:8:127: lists and mappings nest more than 64 levels deep here"]
    );
    // Flow style, within the scanner's own limit of 255 levels.
    let flow = format!("{ACCOUNT}rules: {}a{}\n", "[".repeat(100), "]".repeat(100));
    assert_eq!(
        errors(&flow),
        ["rules.yaml:7:71: lists and mappings nest more than 64 levels deep here"]
    );
    // Past it, the scanner stops first; said the same way.
    let flow = format!("{ACCOUNT}rules: {}\n", "[".repeat(100_000));
    assert_eq!(
        errors(&flow),
        ["rules.yaml:7:263: lists and mappings nest more than 64 levels deep here"]
    );
}

#[test]
fn past_1000_errors_the_report_says_where_the_others_begin() {
    let text = format!("{ACCOUNT}rules:\n{}", "  - 1\n".repeat(5000));
    let got = errors(&text);
    assert_eq!(got.len(), 1001);
    assert_eq!(got[0], "rules.yaml:8:5: expected a mapping, found a number");
    assert_eq!(
        got[999],
        "rules.yaml:1007:5: expected a mapping, found a number"
    );
    assert_eq!(
        got[1000],
        "rules.yaml:1008:5: too many errors: only the first 1000 are listed, the others start here"
    );
}

#[test]
fn a_pattern_repeated_by_aliases_is_compiled_once() {
    // Compiling this one fails only after about a megabyte of work.
    let mut text = format!(
        "{ACCOUNT}rules:\n  - name: r0\n    match: &m {{ subject: {{ regex: '\\w{{150}}\\w{{150}}' }} }}\n    actions: [stop]\n"
    );
    for i in 1..300 {
        text.push_str(&format!(
            "  - {{ name: r{i}, match: *m, actions: [stop] }}\n"
        ));
    }
    let start = Instant::now();
    assert_eq!(
        errors(&text)[0],
        "rules.yaml:9:35: invalid regex: Compiled regex exceeds size limit of 1048576 bytes.\n    Compiled regex exceeds size limit of 1048576 bytes."
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

/// What holds but may surprise is said, not refused: a regex with capitals
/// and no `(?i)` (every other text test ignores case).
#[test]
fn a_case_sensitive_regex_is_a_warning_not_an_error() {
    let text = rule(
        "      subject: { regex: '^Re: (?P<Topic>[A-Z]+)' }\n      list: { regex: '(?i)^Rust' }\n      header: { X-Tag: { regex: '\\p{Lu}\\S+' } }\n",
        "      - move: \"{Topic}\"\n",
    );
    let config = parse_str(&text, Path::new("/cfg")).unwrap();
    let warnings: Vec<String> = config
        .warnings
        .iter()
        .map(|d| d.render("rules.yaml"))
        .collect();
    assert_eq!(
        warnings,
        [
            "rules.yaml:10:25: regex \"^Re: (?P<Topic>[A-Z]+)\" is case-sensitive, unlike the other text tests: its 'R' matches only 'R' (start it with (?i) if case should not matter)"
        ]
    );
}

#[test]
fn an_address_list_is_read_beside_the_file_and_its_bad_lines_are_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("vip.txt"),
        "boss@example.org\nnot an address\n",
    )
    .unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(
        &path,
        rule(
            "      from: { file: vip.txt }\n",
            "      - flag: \\Flagged\n",
        ),
    )
    .unwrap();
    let report = match load(&path) {
        Ok(_) => String::new(),
        Err(e) => e.report().replace(&dir.path().display().to_string(), "DIR"),
    };
    assert_eq!(
        report.trim(),
        "DIR/config.yaml:10:21: DIR/vip.txt: line 2: \"not an address\" is not an address or a domain"
    );
    std::fs::write(dir.path().join("vip.txt"), "boss@example.org\n").unwrap();
    assert!(load(&path).is_ok());
    // A list is a list, not a database: a file past the cap is refused.
    let big = "a@example.org\n".repeat(400_000);
    std::fs::write(dir.path().join("vip.txt"), big).unwrap();
    let report = match load(&path) {
        Ok(_) => String::new(),
        Err(e) => e.report().replace(&dir.path().display().to_string(), "DIR"),
    };
    assert!(
        report.contains("DIR/vip.txt is larger than 4 MiB"),
        "{report}"
    );
}

/// Every ```yaml example of the README and docs/ is a valid configuration,
/// or a valid part of one: a block without `version:` is completed with a
/// stub account (and an account fragment with the rest of its account), so
/// that no example shows a key or a form `check` would refuse.
#[test]
fn every_yaml_example_in_the_docs_is_a_checked_configuration() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    files.sort();
    let mut checked = 0;
    let mut wrong = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let mut lines = text.lines().enumerate();
        while let Some((start, line)) = lines.next() {
            if line.trim() != "```yaml" {
                continue;
            }
            let block: Vec<&str> = lines
                .by_ref()
                .map(|(_, l)| l)
                .take_while(|l| l.trim() != "```")
                .collect();
            // What the example is, from its first line that is not a comment.
            let first = block
                .iter()
                .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                .copied()
                .unwrap_or_default();
            // Another program's YAML (a Prometheus rule file) is not ours.
            if !first.starts_with(' ')
                && !["version:", "accounts:", "rules:"]
                    .iter()
                    .any(|k| first.starts_with(k))
            {
                continue;
            }
            let block = block.join("\n") + "\n";
            let whole = if block.contains("version:") {
                block.clone()
            } else if first.starts_with("accounts:") {
                format!("version: 1\n{block}")
                    + if block.contains("\nrules:") {
                        ""
                    } else {
                        "rules: []\n"
                    }
            } else if first.starts_with("rules:") {
                format!("{ACCOUNT}{block}")
            } else if first.starts_with("  - ") {
                format!("{ACCOUNT}rules:\n{block}")
            } else if first.starts_with("  ") && !first.starts_with("    ") {
                format!("version: 1\naccounts:\n{block}rules: []\n")
            } else if first.starts_with("    ") {
                format!("{ACCOUNT}{block}rules: []\n")
            } else {
                wrong.push(format!(
                    "{}:{}: an example of an unknown kind",
                    file.display(),
                    start + 1
                ));
                continue;
            };
            checked += 1;
            let errs = errors(&whole);
            if !errs.is_empty() {
                wrong.push(format!(
                    "{}:{}:\n{whole}{}",
                    file.display(),
                    start + 1,
                    errs.join("\n")
                ));
            }
        }
    }
    assert!(checked >= 6, "only {checked} examples found");
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}
