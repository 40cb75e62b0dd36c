//! The server-side pre-filter: translates the rules' conditions into one
//! IMAP `UID SEARCH` key (RFC 3501 6.4.4) that every message the rules could
//! match satisfies. It only narrows what is fetched; the decision is always
//! `rules::evaluate`'s, so a loose key costs bandwidth, never correctness.
//! Pure; used by `pass` before fetching; `imap::command` writes the key.

use chrono::{DateTime, Duration as TimeDelta, Utc};

use crate::imap::command::{SearchKey, is_quotable};
use crate::rules::text::TextTest;
use crate::rules::{AddressField, AddressTest, Condition, Rule};

/// A search key. `exact` keys select exactly the messages the condition
/// holds for (flags, sizes, header presence), so they may be negated.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    key: SearchKey,
    exact: bool,
}

fn key(key: SearchKey, exact: bool) -> Option<Key> {
    Some(Key { key, exact })
}

fn and(keys: Vec<Key>) -> Option<Key> {
    match keys.len() {
        0 => None,
        1 => keys.into_iter().next(),
        _ => {
            let exact = keys.iter().all(|k| k.exact);
            key(
                SearchKey::And(keys.into_iter().map(|k| k.key).collect()),
                exact,
            )
        }
    }
}

/// `OR a (OR b c)`; `None` (no restriction) if any part is unrestricted.
fn or(keys: Vec<Option<Key>>) -> Option<Key> {
    let keys: Vec<Key> = keys.into_iter().collect::<Option<_>>()?;
    let exact = keys.iter().all(|k| k.exact);
    let mut iter = keys.into_iter().rev();
    let mut acc = iter.next()?.key;
    for k in iter {
        acc = SearchKey::Or(Box::new(k.key), Box::new(acc));
    }
    key(acc, exact)
}

/// Text every match must contain, if it can be searched for: ASCII (servers
/// fold case of ASCII alike), and sendable as a quoted string.
fn literal(t: &TextTest) -> Option<Vec<String>> {
    let one = |s: &str| -> Option<Vec<String>> {
        (!s.is_empty() && is_quotable(s)).then(|| vec![s.to_string()])
    };
    match t {
        TextTest::Contains { pattern, .. } | TextTest::Is { pattern, .. } => one(pattern),
        // The longest run between wildcards must appear in every match.
        TextTest::Glob { pattern, .. } => {
            let run = pattern
                .split(['*', '?'])
                .max_by_key(|s| s.len())
                .unwrap_or("");
            one(run)
        }
        // SEARCH compares text, not numbers.
        TextTest::Regex { .. } | TextTest::Number { .. } => None,
        TextTest::Any(tests) => {
            let mut all = Vec::new();
            for t in tests {
                all.extend(literal(t)?);
            }
            Some(all)
        }
    }
}

/// `criterion "text"` for each alternative, ORed.
fn text_key(t: &TextTest, criterion: &dyn Fn(String) -> SearchKey) -> Option<Key> {
    let alternatives = literal(t)?;
    or(alternatives
        .into_iter()
        .map(|s| key(criterion(s), false))
        .collect())
}

fn header_key(name: &str) -> impl Fn(String) -> SearchKey + '_ {
    move |text| SearchKey::Header(name.to_string(), text)
}

fn address_key(headers: &[&str], t: &AddressTest) -> Option<Key> {
    match t {
        AddressTest::Any(tests) => or(tests.iter().map(|t| address_key(headers, t)).collect()),
        // A list of addresses could be ORed, but may be long: no key.
        AddressTest::In(_) => None,
        AddressTest::Parts { text, parts } => {
            let parts: Vec<Key> = text
                .iter()
                .chain(parts.iter().map(|(_, t)| t))
                .filter_map(|t| {
                    or(headers
                        .iter()
                        .map(|h| text_key(t, &header_key(h)))
                        .collect())
                })
                .collect();
            and(parts)
        }
    }
}

/// Day-granular date searches use the server's time zone; a two-day margin
/// keeps the key a superset wherever the server is.
const MARGIN: TimeDelta = TimeDelta::days(2);

fn ago(now: DateTime<Utc>, d: std::time::Duration) -> DateTime<Utc> {
    now - TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// Which criteria are worth sending. A server answers flag, arrival-date
/// and size criteria from its mailbox index; header and text criteria it
/// answers by reading each message (Dovecot, Cyrus and Courier without a
/// full-text index), which the FETCH that follows then does again. So
/// where the FETCH reads only header fields, a header criterion costs
/// about what it saves (docs/performance.md measures it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Narrow {
    /// Every criterion the rules allow: the server indexes headers and text
    /// (Gmail), or the FETCH reads more per message than its header (a
    /// text, a MIME structure), which the search then spares.
    Everything,
    /// Only the criteria the mailbox index answers.
    Indexed,
}

impl Narrow {
    /// The choice for a server and for what the rules read of a message.
    pub fn choose(header_search_indexed: bool, needs: &crate::rules::Needs) -> Narrow {
        if header_search_indexed || needs.text || needs.structure {
            Narrow::Everything
        } else {
            Narrow::Indexed
        }
    }
}

/// Is this condition's criterion one the server answers by reading each
/// message's header or text?
fn reads_messages(c: &Condition) -> bool {
    matches!(
        c,
        Condition::Address(..)
            | Condition::AddressIn(..)
            | Condition::Subject(_)
            | Condition::Header(..)
            | Condition::List(_)
            | Condition::Exists(_)
            | Condition::Body(_)
            | Condition::SentBefore(_)
            | Condition::SentAfter(_)
    )
}

fn condition(c: &Condition, now: DateTime<Utc>, narrow: Narrow) -> Option<Key> {
    if narrow == Narrow::Indexed && reads_messages(c) {
        return None;
    }
    let condition = |c: &Condition, now| condition(c, now, narrow);
    match c {
        Condition::Address(field, t) => {
            let headers: &[&str] = match field {
                AddressField::From => &["From"],
                AddressField::To => &["To"],
                AddressField::Cc => &["Cc"],
                AddressField::Bcc => &["Bcc"],
                AddressField::Sender => &["Sender"],
                AddressField::ReplyTo => &["Reply-To"],
                AddressField::Recipient => &["To", "Cc", "Bcc"],
            };
            address_key(headers, t)
        }
        Condition::AddressIn(name, t) => address_key(&[name.as_str()], t),
        Condition::Subject(t) => text_key(t, &header_key("Subject")),
        Condition::Header(name, t) => text_key(t, &header_key(name)),
        Condition::List(t) => text_key(t, &header_key("List-Id")),
        // RFC 3501: HEADER with an empty string matches every message that
        // has the field.
        Condition::Exists(names) => and(names
            .iter()
            .filter_map(|n| key(SearchKey::Header(n.clone(), String::new()), true))
            .collect()),
        // The server searches the decoded parts, HTML source included; only
        // plain words are sure to appear there as they do in our text.
        Condition::Body(t) => {
            let simple = |s: &String| {
                s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
            };
            if literal(t)?.iter().all(simple) {
                text_key(t, &SearchKey::Body)
            } else {
                None
            }
        }
        Condition::Attachment(_) => None,
        Condition::Size { over, under } => and([
            over.and_then(|o| key(SearchKey::Larger(o), true)),
            under.and_then(|u| key(SearchKey::Smaller(u), true)),
        ]
        .into_iter()
        .flatten()
        .collect()),
        Condition::OlderThan(d) => key(
            SearchKey::Before((ago(now, *d) + MARGIN).date_naive()),
            false,
        ),
        Condition::NewerThan(d) => key(
            SearchKey::Since((ago(now, *d) - MARGIN).date_naive()),
            false,
        ),
        Condition::SentBefore(b) => key(
            SearchKey::SentBefore((b.resolve(now) + MARGIN).date_naive()),
            false,
        ),
        Condition::ReceivedBefore(b) => key(
            SearchKey::Before((b.resolve(now) + MARGIN).date_naive()),
            false,
        ),
        Condition::ReceivedAfter(b) => key(
            SearchKey::Since((b.resolve(now) - MARGIN).date_naive()),
            false,
        ),
        Condition::SentAfter(b) => key(
            SearchKey::SentSince((b.resolve(now) - MARGIN).date_naive()),
            false,
        ),
        Condition::Flag(flag, set) => key(SearchKey::Flag(*flag, *set), true),
        Condition::Keyword(ks) => and(ks
            .iter()
            .filter_map(|k| key(SearchKey::Keyword(k.clone()), true))
            .collect()),
        // What the account saw before is not on the server.
        Condition::Duplicate => None,
        Condition::All(cs) => {
            let keys: Vec<Option<Key>> = cs.iter().map(|c| condition(c, now)).collect();
            let complete = keys.iter().all(|k| k.as_ref().is_some_and(|k| k.exact));
            let mut k = and(keys.into_iter().flatten().collect())?;
            k.exact = complete;
            Some(k)
        }
        Condition::Any(cs) => or(cs.iter().map(|c| condition(c, now)).collect()),
        Condition::Not(c) => match condition(c, now) {
            Some(k) if k.exact => key(SearchKey::Not(Box::new(k.key)), true),
            _ => None,
        },
    }
}

/// Longest pre-filter kept; a longer one would cost the server more to
/// parse than it saves, and must leave room for a UID set on the line.
const MAX_KEY: usize = 4000;

/// The search criteria for one mailbox: messages any of `rules` could match,
/// not already marked \Deleted (another client is deleting those; they are
/// left alone). Falls back to all undeleted messages where a rule cannot be
/// expressed, or the key would make an overlong command.
pub fn criteria<'r>(
    rules: impl IntoIterator<Item = &'r Rule>,
    now: DateTime<Utc>,
    narrow: Narrow,
) -> SearchKey {
    let per_rule: Vec<Option<Key>> = rules
        .into_iter()
        .map(|r| {
            let keys: Vec<Key> = r
                .conditions
                .iter()
                .filter_map(|c| condition(c, now, narrow))
                .collect();
            and(keys)
        })
        .collect();
    match or(per_rule) {
        Some(k) if k.key.render().is_ok_and(|t| t.len() < MAX_KEY) => {
            SearchKey::And(vec![SearchKey::Undeleted, k.key])
        }
        _ => SearchKey::Undeleted,
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::config::with_rules;
    use crate::rules::Needs;

    fn search(rules: &str) -> String {
        search_with(rules, Narrow::Everything)
    }

    fn search_with(rules: &str, narrow: Narrow) -> String {
        let cfg = with_rules(rules);
        let now = DateTime::parse_from_rfc3339("2026-03-10T12:00:00Z")
            .unwrap()
            .to_utc();
        let key = criteria(&cfg.rules, now, narrow);
        // The one key the server sees is `UNDELETED` and the rest, ANDed.
        match key {
            SearchKey::And(keys) => keys
                .iter()
                .map(|k| k.render().unwrap())
                .collect::<Vec<_>>()
                .join(" "),
            k => k.render().unwrap(),
        }
    }

    fn one(cond: &str) -> String {
        search(&format!(
            "  - name: r\n    match: {cond}\n    actions: [move: X]\n"
        ))
    }

    #[test]
    fn where_headers_are_not_indexed_only_index_criteria_are_sent() {
        let rule = |cond: &str| format!("  - name: r\n    match: {cond}\n    actions: [move: X]\n");
        let cases = [
            ("{from: github.com}", "UNDELETED"),
            ("{from: github.com, seen: true}", "UNDELETED SEEN"),
            (
                "{subject: x, older_than: 10d, size: {over: 1KB}}",
                "UNDELETED (BEFORE 2-Mar-2026 LARGER 1024)",
            ),
            ("{any: [{from: a}, {seen: false}]}", "UNDELETED"),
            (
                "{any: [{flagged: true}, {seen: false}]}",
                "UNDELETED OR FLAGGED UNSEEN",
            ),
            ("{not: {exists: List-Id}}", "UNDELETED"),
            (
                "{sent_before: 2026-01-01, keyword: $A}",
                "UNDELETED KEYWORD $A",
            ),
        ];
        for (cond, want) in cases {
            assert_eq!(search_with(&rule(cond), Narrow::Indexed), want, "{cond}");
        }
        // Which servers and rules get which.
        let needs = |rules: &str| Needs::of(&with_rules(rules).rules);
        let headers = needs(&rule("{from: a}"));
        let body = needs(&rule("{body: a}"));
        let attachment = needs(&rule("{attachment: true}"));
        assert_eq!(Narrow::choose(false, &headers), Narrow::Indexed);
        assert_eq!(Narrow::choose(true, &headers), Narrow::Everything);
        assert_eq!(Narrow::choose(false, &body), Narrow::Everything);
        assert_eq!(Narrow::choose(false, &attachment), Narrow::Everything);
    }

    #[test]
    fn conditions_translate_to_superset_keys() {
        let cases = [
            ("{from: github.com}", "UNDELETED FROM \"github.com\""),
            (
                "{from: {domain: github.com}}",
                "UNDELETED FROM \"github.com\"",
            ),
            (
                "{from: {domain: {glob: '*.github.com'}}}",
                "UNDELETED FROM \".github.com\"",
            ),
            ("{from: {regex: '^a'}}", "UNDELETED"),
            (
                "{from: {localpart: a, domain: b.org}}",
                "UNDELETED (FROM \"a\" FROM \"b.org\")",
            ),
            ("{to: {detail: shop}}", "UNDELETED TO \"shop\""),
            (
                "{address: {Delivered-To: {user: me}}}",
                "UNDELETED HEADER Delivered-To \"me\"",
            ),
            ("{from: {file: /dev/null}}", "UNDELETED"),
            ("{duplicate: true}", "UNDELETED"),
            ("{duplicate: false}", "UNDELETED"),
            (
                "{recipient: bob}",
                "UNDELETED OR TO \"bob\" OR CC \"bob\" BCC \"bob\"",
            ),
            ("{reply_to: x}", "UNDELETED HEADER Reply-To \"x\""),
            (
                "{subject: [a, b]}",
                "UNDELETED OR SUBJECT \"a\" SUBJECT \"b\"",
            ),
            ("{subject: für}", "UNDELETED"),
            (
                "{subject: 'say \"hi\"'}",
                "UNDELETED SUBJECT \"say \\\"hi\\\"\"",
            ),
            ("{subject: \"a\\r\\nb\"}", "UNDELETED"),
            ("{header: {X-Spam: yes}}", "UNDELETED HEADER X-Spam \"yes\""),
            (
                "{header: {'X(odd)': yes}}",
                "UNDELETED HEADER \"X(odd)\" \"yes\"",
            ),
            ("{list: rust}", "UNDELETED HEADER List-Id \"rust\""),
            (
                "{exists: [A, B]}",
                "UNDELETED (HEADER A \"\" HEADER B \"\")",
            ),
            ("{body: unsubscribe}", "UNDELETED BODY \"unsubscribe\""),
            ("{body: 'two words'}", "UNDELETED"),
            ("{attachment: true}", "UNDELETED"),
            (
                "{size: {over: 1KB, under: 2KB}}",
                "UNDELETED (LARGER 1024 SMALLER 2048)",
            ),
            ("{older_than: 10d}", "UNDELETED BEFORE 2-Mar-2026"),
            ("{newer_than: 10d}", "UNDELETED SINCE 26-Feb-2026"),
            (
                "{sent_before: 2026-01-01}",
                "UNDELETED SENTBEFORE 3-Jan-2026",
            ),
            (
                "{sent_after: 2026-01-01}",
                "UNDELETED SENTSINCE 30-Dec-2025",
            ),
            ("{seen: true, flagged: false}", "UNDELETED (SEEN UNFLAGGED)"),
            ("{keyword: $Work}", "UNDELETED KEYWORD $Work"),
            (
                "{any: [{seen: true}, {from: a}]}",
                "UNDELETED OR SEEN FROM \"a\"",
            ),
            ("{any: [{seen: true}, {attachment: true}]}", "UNDELETED"),
            (
                "{all: [{seen: true}, {attachment: true}]}",
                "UNDELETED SEEN",
            ),
            ("{not: {seen: true}}", "UNDELETED NOT SEEN"),
            (
                "{not: {exists: List-Id}}",
                "UNDELETED NOT HEADER List-Id \"\"",
            ),
            // Negating a superset would drop matching messages: not translated.
            ("{not: {from: a}}", "UNDELETED"),
            (
                "{not: {all: [{seen: true}, {attachment: true}]}}",
                "UNDELETED",
            ),
            ("{}", "UNDELETED"),
        ];
        for (cond, want) in cases {
            assert_eq!(one(cond), want, "{cond}");
        }
    }

    #[test]
    fn rules_are_ored_and_one_unrestricted_rule_opens_everything() {
        let two = "  - {name: a, match: {from: x}, actions: [move: A]}\n  - {name: b, match: {seen: true}, actions: [flag: flagged]}\n";
        assert_eq!(search(two), "UNDELETED OR FROM \"x\" SEEN");
        let open =
            format!("{two}  - {{name: c, match: {{attachment: true}}, actions: [move: C]}}\n");
        assert_eq!(search(&open), "UNDELETED");
    }
}
