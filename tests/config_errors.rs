//! Configuration errors: each class of mistake is reported as
//! `FILE:LINE:COL: message (hint)`, and all of a file's errors at once.

use std::path::Path;

use mailwarden::config::parse_str;

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
            "rules.yaml:7:19: idle_renewal must be under 29 minutes (servers may drop an IDLE after 30 minutes (RFC 2177))",
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
            "rules.yaml:10:20: invalid date \"31/01/2025\": expected a date like 2025-01-31 or a duration like 90d",
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
            "rules.yaml:4:5: missing key \"host\"",
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
