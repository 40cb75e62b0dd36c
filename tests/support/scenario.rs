//! The mailbox scenario every server and layout is tried with: one set of
//! rules using every action kind, ten messages, and where each message must
//! end up, in the server's own names (`Names`). The same rules and mail on
//! Dovecot in each layout, on the Gmail and Exchange dressings and on real
//! Cyrus and Courier must give the same placement.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

/// Every mailbox with its messages as (Message-ID, sorted flags).
pub type Snapshot = BTreeMap<String, Vec<(String, Vec<String>)>>;

/// The time every run of the scenario is told it is (`--now`).
pub const NOW: &str = "2026-02-01T00:00:00Z";

pub fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

/// A message with this Message-ID and these header lines.
pub fn mail(id: &str, headers: &str) -> Vec<u8> {
    format!("Message-ID: <{id}>\r\nDate: Mon, 05 Jan 2026 10:00:00 +0000\r\n{headers}\r\n\r\nbody of {id}\r\n").into_bytes()
}

pub const RULES: &str = r#"  - name: Spam
    match: { header: { X-Spam-Flag: { is: "YES" } } }
    actions: [delete]
  - name: Bounces
    match: { from: MAILER-DAEMON }
    actions: [delete: { expunge: true }]
  - name: Family
    match: { from: { domain: family.example } }
    actions: [unflag: flagged, stop]
  - name: GitHub
    match: { from: { domain: github.com } }
    actions: [flag: seen, move: Notifications/GitHub]
  - name: Lists
    match: { list: { regex: '^(?P<list>[a-z-]+)\.lists\.example\.org$' } }
    actions: [move: "Lists/{list}"]
  - name: Invoices
    match: { subject: invoice }
    actions: [copy: "Receipts/{year}", flag: $Invoice]
  - name: Newsletters
    match: { exists: List-Unsubscribe }
    actions: [archive]
  - name: Old read mail
    match: { seen: true, older_than: 1y }
    actions: [archive: "Old/{year}"]
"#;

/// A message to put in INBOX: its bytes, flags and arrival time.
pub type Fixture = (Vec<u8>, Vec<&'static str>, DateTime<Utc>);

/// The ten messages, in INBOX order.
pub fn messages() -> Vec<Fixture> {
    let jan = t("2026-01-05T10:00:00Z");
    let old = t("2020-06-01T00:00:00Z");
    vec![
        (
            mail(
                "m1@x",
                "From: GitHub <notifications@github.com>\r\nSubject: PR",
            ),
            vec![],
            jan,
        ),
        (
            mail(
                "m2@x",
                "From: a@b.example\r\nList-Id: <rust-users.lists.example.org>\r\nSubject: q",
            ),
            vec![],
            jan,
        ),
        (
            mail("m3@x", "From: shop@c.example\r\nSubject: Your invoice"),
            vec![],
            jan,
        ),
        (
            mail(
                "m4@x",
                "From: news@d.example\r\nList-Unsubscribe: <mailto:x@d.example>\r\nSubject: news",
            ),
            vec![],
            jan,
        ),
        (
            mail("m5@x", "From: old@e.example\r\nSubject: old"),
            vec!["\\Seen"],
            old,
        ),
        (
            mail(
                "m6@x",
                "From: spam@f.example\r\nX-Spam-Flag: YES\r\nSubject: win",
            ),
            vec![],
            jan,
        ),
        (
            mail("m7@x", "From: MAILER-DAEMON@g.example\r\nSubject: bounce"),
            vec![],
            jan,
        ),
        (
            mail("m8@x", "From: mom@family.example\r\nSubject: lunch"),
            vec!["\\Flagged"],
            jan,
        ),
        (
            mail("m9@x", "From: alice@h.example\r\nSubject: hello"),
            vec![],
            jan,
        ),
        // Another client is deleting this one: it must survive our pass.
        (
            mail(
                "m10@x",
                "From: spam@f.example\r\nX-Spam-Flag: YES\r\nSubject: win again",
            ),
            vec!["\\Deleted"],
            jan,
        ),
    ]
}

/// How a server names the scenario's folders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// The personal namespace's prefix (`INBOX.` on Courier).
    pub prefix: &'static str,
    pub separator: char,
    /// Where `delete` goes: the `\Trash` folder, else `Trash` there.
    pub trash: String,
    /// Where `archive` goes: `\Archive` (Gmail: `\All`), else `Archive`.
    pub archive: String,
}

impl Names {
    /// Names on a server with this prefix and separator and no special
    /// folders: the fallbacks `Trash` and `Archive`.
    pub fn plain(prefix: &'static str, separator: char) -> Names {
        let mut n = Names {
            prefix,
            separator,
            trash: String::new(),
            archive: String::new(),
        };
        n.trash = n.of("Trash");
        n.archive = n.of("Archive");
        n
    }

    /// The server's name for a rule path.
    pub fn of(&self, path: &str) -> String {
        let joined = path.replace('/', &self.separator.to_string());
        if path == "INBOX" || path.starts_with("INBOX/") {
            joined
        } else {
            format!("{}{joined}", self.prefix)
        }
    }
}

/// Where every message must be after one run of the scenario: each
/// non-empty mailbox (sorted by name) with its messages as `<id> flags`.
pub fn expected(n: &Names) -> Vec<(String, Vec<String>)> {
    expected_ids(n)
        .into_iter()
        .map(|(k, v)| (k, v.into_iter().map(str::to_string).collect()))
        .collect()
}

fn expected_ids(n: &Names) -> Vec<(String, Vec<&'static str>)> {
    let mut want = vec![
        (n.archive.clone(), vec!["<m4@x>"]),
        (
            "INBOX".to_string(),
            vec!["<m10@x> \\Deleted", "<m3@x> $Invoice", "<m8@x>", "<m9@x>"],
        ),
        (n.of("Lists/rust-users"), vec!["<m2@x>"]),
        (n.of("Notifications/GitHub"), vec!["<m1@x> \\Seen"]),
        (n.of("Old/2020"), vec!["<m5@x> \\Seen"]),
        (n.of("Receipts/2026"), vec!["<m3@x> $Invoice"]),
        (n.trash.clone(), vec!["<m6@x>"]),
    ];
    want.sort();
    want
}

/// `<id> flags` of each message of `mailbox`.
pub fn ids(s: &Snapshot, mailbox: &str) -> Vec<String> {
    s.get(mailbox)
        .map(|v| {
            v.iter()
                .map(|(id, f)| format!("{id} {}", f.join(" ")).trim().to_string())
                .collect()
        })
        .unwrap_or_default()
}

pub fn placement(s: &Snapshot) -> Vec<(String, Vec<String>)> {
    s.iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, _)| (k.clone(), ids(s, k)))
        .collect()
}

/// What a dry run says it would do and what a run says it did, in one
/// shape: (what, how many messages, where).
pub fn operations(out: &str, dry: bool) -> Vec<(String, usize, String)> {
    let mut ops: Vec<(String, usize, String)> = out
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = if dry { l.strip_prefix("would ")? } else { l };
            // Notes in parentheses say how, not what.
            let l = l.split(" (").next().unwrap_or(l);
            let (verb, rest) = l.split_once(' ')?;
            let verb = match verb {
                "move" | "moved" => "move",
                "copy" | "copied" => "copy",
                "delete" | "deleted" => "delete",
                "flag" | "unflag" => verb,
                _ => return None,
            };
            let (what, rest) = if matches!(verb, "flag" | "unflag") {
                let (flags, rest) = rest.split_once(" on ")?;
                (format!("{verb} {flags}"), rest)
            } else {
                (verb.to_string(), rest)
            };
            let (n, rest) = rest.split_once(' ')?;
            let n: usize = n.parse().ok()?;
            let dest = rest
                .split_once(" to ")
                .map(|(_, d)| d.to_string())
                .unwrap_or_default();
            Some((what, n, dest))
        })
        .collect();
    ops.sort();
    ops
}
