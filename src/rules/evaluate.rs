//! The evaluator: rules x message x now -> [`Decision`]. Pure (no IO, no
//! clock), so `mailwarden test`, the dry-run plan and the live run all reach
//! the same decision for the same message. Semantics: spec, "Evaluation".

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::template::TemplateInput;
use super::text::{Captures, TextTest};
use super::{
    ARCHIVE, Action, AddressField, AddressTest, Condition, Flag, FolderPath, Rule, SystemFlag,
    TRASH, Target,
};
use crate::message::{Address, Message};

/// What the deciding action does with the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Disposition {
    Move,
    Archive,
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub disposition: Disposition,
    pub target: Target,
}

/// The outcome of running the rules over one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Every rule whose conditions held, in file order.
    pub matched: Vec<String>,
    /// The rule that decided where the message goes; when none moves it, the
    /// first rule that matched.
    pub rule: Option<String>,
    /// `None`: the message stays where it is.
    pub destination: Option<Destination>,
    pub flags_added: BTreeSet<Flag>,
    pub flags_removed: BTreeSet<Flag>,
    /// Folders a copy goes to (rendered templates), in rule order.
    pub copies: Vec<FolderPath>,
    /// Per rule, which conditions held; filled only when asked for.
    pub trace: Vec<RuleTrace>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleTrace {
    pub rule: String,
    pub matched: bool,
    pub conditions: Vec<CondTrace>,
}

/// One condition of the trace: its label, whether it held, and what was
/// looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CondTrace {
    pub label: String,
    pub held: bool,
    pub seen: Option<String>,
    pub children: Vec<CondTrace>,
}

/// A message the rules could not decide; it is left where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule \"{rule}\": {message}")]
pub struct EvalError {
    pub rule: String,
    pub message: String,
}

/// Runs `rules` (already narrowed to the message's account and mailbox) over
/// `msg`, in order. `explain` fills [`Decision::trace`].
pub fn evaluate<'r>(
    rules: impl IntoIterator<Item = &'r Rule>,
    msg: &Message,
    now: DateTime<Utc>,
    explain: bool,
) -> Result<Decision, EvalError> {
    let mut d = Decision {
        matched: Vec::new(),
        rule: None,
        destination: None,
        flags_added: BTreeSet::new(),
        flags_removed: BTreeSet::new(),
        copies: Vec::new(),
        trace: Vec::new(),
    };
    // Flags and keywords as earlier rules of this pass leave them: a later
    // rule's `keyword:` or `seen:` sees what an earlier one set (Sieve's
    // `hasflag` after `addflag`).
    let mut flags = msg.flags.clone();
    for rule in rules {
        let eval = Eval {
            msg,
            now,
            explain,
            flags: &flags,
        };
        let mut caps = Captures::new();
        let mut trace = Vec::new();
        let held = eval
            .all(&rule.conditions, &mut caps, &mut trace)
            .map_err(|message| EvalError {
                rule: rule.name.clone(),
                message,
            })?;
        if explain {
            d.trace.push(RuleTrace {
                rule: rule.name.clone(),
                matched: held,
                conditions: trace,
            });
        }
        if !held {
            continue;
        }
        d.matched.push(rule.name.clone());
        if d.rule.is_none() {
            d.rule = Some(rule.name.clone());
        }
        let input = TemplateInput {
            arrival: msg.arrival,
            sent: msg.date,
            captures: &caps,
        };
        let render = |t: &super::template::Template| {
            t.render(&input).map_err(|message| EvalError {
                rule: rule.name.clone(),
                message: format!("folder {:?}: {message}", t.source()),
            })
        };
        let mut stop = rule.stop;
        for action in &rule.actions {
            match action {
                Action::Flag(flags) => {
                    for f in flags {
                        d.flags_removed.remove(f);
                        d.flags_added.insert(f.clone());
                    }
                }
                Action::Unflag(flags) => {
                    for f in flags {
                        d.flags_added.remove(f);
                        d.flags_removed.insert(f.clone());
                    }
                }
                Action::Copy(t) => d.copies.push(render(t)?),
                Action::Move(t) => {
                    d.destination = Some(Destination {
                        disposition: Disposition::Move,
                        target: Target::Folder(render(t)?),
                    })
                }
                Action::MoveTo(target) => {
                    d.destination = Some(Destination {
                        disposition: Disposition::Move,
                        target: target.clone(),
                    })
                }
                Action::Archive(t) => {
                    let target = match t {
                        Some(t) => Target::Folder(render(t)?),
                        None => ARCHIVE,
                    };
                    d.destination = Some(Destination {
                        disposition: Disposition::Archive,
                        target,
                    })
                }
                Action::Delete { expunge } => {
                    d.destination = Some(Destination {
                        disposition: Disposition::Delete,
                        target: if *expunge { Target::Expunge } else { TRASH },
                    })
                }
                Action::Stop => stop = true,
            }
        }
        flags = msg
            .flags
            .union(&d.flags_added)
            .filter(|f| !d.flags_removed.contains(*f))
            .cloned()
            .collect();
        if d.destination.is_some() {
            d.rule = Some(rule.name.clone());
            break;
        }
        if stop {
            break;
        }
    }
    Ok(d)
}

struct Eval<'m> {
    msg: &'m Message,
    now: DateTime<Utc>,
    explain: bool,
    /// The message's flags with those earlier rules added or removed.
    flags: &'m BTreeSet<Flag>,
}

fn quote(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() > MAX {
        let cut: String = s.chars().take(MAX).collect();
        format!("{cut:?}…")
    } else {
        format!("{s:?}")
    }
}

fn show_address(a: &Address) -> String {
    match (&a.name, &a.address) {
        (Some(n), Some(addr)) => format!("{n} <{addr}>"),
        (None, Some(addr)) => addr.clone(),
        (Some(n), None) => n.clone(),
        (None, None) => "(empty)".into(),
    }
}

impl Eval<'_> {
    /// All conditions hold. Captures of the children count only if all held.
    fn all(
        &self,
        conds: &[Condition],
        caps: &mut Captures,
        out: &mut Vec<CondTrace>,
    ) -> Result<bool, String> {
        let mut local = Captures::new();
        for c in conds {
            if !self.cond(c, &mut local, out)? {
                return Ok(false);
            }
        }
        caps.extend(local);
        Ok(true)
    }

    fn cond(
        &self,
        c: &Condition,
        caps: &mut Captures,
        out: &mut Vec<CondTrace>,
    ) -> Result<bool, String> {
        let mut children = Vec::new();
        let (held, seen) = match c {
            Condition::All(cs) => (self.all(cs, caps, &mut children)?, None),
            Condition::Any(cs) => {
                let mut held = false;
                for c in cs {
                    let mut local = Captures::new();
                    if self.cond(c, &mut local, &mut children)? {
                        caps.extend(local);
                        held = true;
                        break;
                    }
                }
                (held, None)
            }
            Condition::Not(inner) => {
                // A negated condition holds when the inner one fails, so no
                // capture of it can take part in the match.
                (
                    !self.cond(inner, &mut Captures::new(), &mut children)?,
                    None,
                )
            }
            _ => self.leaf(c, caps)?,
        };
        out.push(CondTrace {
            label: if self.explain {
                c.to_string()
            } else {
                String::new()
            },
            held,
            seen,
            children,
        });
        Ok(held)
    }

    fn text_values<'a, I>(
        &self,
        t: &TextTest,
        values: I,
        caps: &mut Captures,
        what: &str,
    ) -> (bool, Option<String>)
    where
        I: IntoIterator<Item = &'a str>,
    {
        let mut shown = Vec::new();
        for v in values {
            if t.find(v, caps) {
                return (true, self.explain.then(|| quote(v)));
            }
            if self.explain {
                // A comparison of numbers on a value that is none says so.
                if t.is_numeric() && crate::rules::text::number(v).is_none() {
                    shown.push(format!("{} (not a number)", quote(v)));
                } else {
                    shown.push(quote(v));
                }
            }
        }
        let seen = self.explain.then(|| {
            if shown.is_empty() {
                format!("no {what}")
            } else {
                shown.join(", ")
            }
        });
        (false, seen)
    }

    fn addresses(&self, field: AddressField) -> Vec<&Address> {
        let m = self.msg;
        match field {
            AddressField::From => m.from.iter().collect(),
            AddressField::To => m.to.iter().collect(),
            AddressField::Cc => m.cc.iter().collect(),
            AddressField::Bcc => m.bcc.iter().collect(),
            AddressField::Sender => m.sender.iter().collect(),
            AddressField::ReplyTo => m.reply_to.iter().collect(),
            AddressField::Recipient => m.to.iter().chain(&m.cc).chain(&m.bcc).collect(),
        }
    }

    fn leaf(&self, c: &Condition, caps: &mut Captures) -> Result<(bool, Option<String>), String> {
        let m = self.msg;
        let ex = self.explain;
        Ok(match c {
            Condition::AddressIn(name, test) => {
                let addrs = m.addresses_in(name);
                match addrs.iter().find(|a| address_matches(test, a, caps)) {
                    Some(a) => (true, ex.then(|| show_address(a))),
                    None => (
                        false,
                        ex.then(|| {
                            if addrs.is_empty() {
                                format!("no {name} address")
                            } else {
                                addrs
                                    .iter()
                                    .map(show_address)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            }
                        }),
                    ),
                }
            }
            Condition::Address(field, test) => {
                let addrs = self.addresses(*field);
                match addrs.iter().find(|a| address_matches(test, a, caps)) {
                    Some(a) => (true, ex.then(|| show_address(a))),
                    None => {
                        let seen = ex.then(|| {
                            if addrs.is_empty() {
                                format!("no {} address", field.key())
                            } else {
                                addrs
                                    .iter()
                                    .map(|a| show_address(a))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            }
                        });
                        (false, seen)
                    }
                }
            }
            Condition::Subject(t) => self.text_values(t, m.subject.as_deref(), caps, "Subject"),
            Condition::Header(name, t) => self.text_values(t, m.header_values(name), caps, name),
            Condition::Exists(names) => {
                let missing: Vec<&str> = names
                    .iter()
                    .filter(|n| !m.has_header(n))
                    .map(String::as_str)
                    .collect();
                (
                    missing.is_empty(),
                    ex.then(|| format!("missing: {}", missing.join(", ")))
                        .filter(|_| !missing.is_empty()),
                )
            }
            Condition::List(t) => self.text_values(t, m.list_id.as_deref(), caps, "List-Id"),
            Condition::Body(t) => {
                let text = m
                    .text
                    .as_deref()
                    .ok_or("the body is needed but only the header was read")?;
                let held = t.find(text, caps);
                (held, None)
            }
            Condition::Attachment(a) => {
                let atts = m
                    .attachments
                    .as_deref()
                    .ok_or("the MIME structure is needed but only the header was read")?;
                let hit = atts.iter().find(|att| {
                    a.name
                        .as_ref()
                        .is_none_or(|t| att.name.as_deref().is_some_and(|n| t.find(n, caps)))
                        && a.mime_type
                            .as_ref()
                            .is_none_or(|t| t.find(&att.mime_type, caps))
                });
                let seen = ex.then(|| {
                    let list: Vec<String> = atts
                        .iter()
                        .map(|x| {
                            format!(
                                "{} ({})",
                                x.name.as_deref().unwrap_or("unnamed"),
                                x.mime_type
                            )
                        })
                        .collect();
                    if list.is_empty() {
                        "no attachments".into()
                    } else {
                        list.join(", ")
                    }
                });
                (hit.is_some(), seen)
            }
            Condition::Size { over, under } => {
                let held = over.is_none_or(|o| m.size > o) && under.is_none_or(|u| m.size < u);
                (held, ex.then(|| format!("{} bytes", m.size)))
            }
            Condition::OlderThan(d) => {
                let cutoff =
                    self.now - chrono::Duration::from_std(*d).unwrap_or(chrono::TimeDelta::MAX);
                (
                    m.arrival < cutoff,
                    ex.then(|| format!("arrived {}", m.arrival.to_rfc3339())),
                )
            }
            Condition::NewerThan(d) => {
                let cutoff =
                    self.now - chrono::Duration::from_std(*d).unwrap_or(chrono::TimeDelta::MAX);
                (
                    m.arrival > cutoff,
                    ex.then(|| format!("arrived {}", m.arrival.to_rfc3339())),
                )
            }
            Condition::SentBefore(b) => match m.date {
                Some(date) => (
                    date < b.resolve(self.now),
                    ex.then(|| format!("sent {}", date.to_rfc3339())),
                ),
                None => (false, ex.then(|| "no Date header".to_string())),
            },
            Condition::ReceivedBefore(b) => (
                m.arrival < b.resolve(self.now),
                ex.then(|| format!("arrived {}", m.arrival.to_rfc3339())),
            ),
            Condition::ReceivedAfter(b) => (
                m.arrival > b.resolve(self.now),
                ex.then(|| format!("arrived {}", m.arrival.to_rfc3339())),
            ),
            Condition::SentAfter(b) => match m.date {
                Some(date) => (
                    date > b.resolve(self.now),
                    ex.then(|| format!("sent {}", date.to_rfc3339())),
                ),
                None => (false, ex.then(|| "no Date header".to_string())),
            },
            Condition::Duplicate => (
                m.duplicate,
                ex.then(|| match &m.message_id {
                    None => "no Message-ID".to_string(),
                    Some(id) if m.duplicate => format!("<{id}> was seen before on another message"),
                    Some(id) => format!("<{id}> first seen here"),
                }),
            ),
            Condition::Flag(flag, want) => {
                let has = self.flags.contains(&Flag::System(*flag));
                (
                    has == *want,
                    ex.then(|| format!("{}{}", if has { "" } else { "not " }, flag_word(*flag))),
                )
            }
            Condition::Keyword(keys) => {
                let has = |k: &String| {
                    self.flags
                        .iter()
                        .any(|f| matches!(f, Flag::Keyword(x) if x.eq_ignore_ascii_case(k)))
                };
                let missing: Vec<&str> = keys
                    .iter()
                    .filter(|k| !has(k))
                    .map(String::as_str)
                    .collect();
                (
                    missing.is_empty(),
                    ex.then(|| format!("missing: {}", missing.join(", ")))
                        .filter(|_| !missing.is_empty()),
                )
            }
            Condition::All(_) | Condition::Any(_) | Condition::Not(_) => {
                unreachable!("combinators are handled by Eval::cond")
            }
        })
    }
}

fn flag_word(f: SystemFlag) -> &'static str {
    match f {
        SystemFlag::Seen => "seen",
        SystemFlag::Flagged => "flagged",
        SystemFlag::Answered => "answered",
        SystemFlag::Draft => "draft",
    }
}

fn address_matches(test: &AddressTest, a: &Address, caps: &mut Captures) -> bool {
    match test {
        AddressTest::Any(tests) => tests.iter().any(|t| address_matches(t, a, caps)),
        AddressTest::In(list) => a.address.as_deref().is_some_and(|v| list.contains(v)),
        AddressTest::Parts { text, parts } => {
            let mut local = Captures::new();
            let text_ok = text.as_ref().is_none_or(|t| {
                a.address.as_deref().is_some_and(|v| t.find(v, &mut local))
                    || a.name.as_deref().is_some_and(|v| t.find(v, &mut local))
            });
            let held = text_ok
                && parts.iter().all(|(part, t)| {
                    a.address
                        .as_deref()
                        .and_then(|v| part.of(v))
                        .is_some_and(|v| t.find(v, &mut local))
                });
            if held {
                caps.extend(local);
            }
            held
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use chrono::{DateTime, Utc};

    use super::*;
    use crate::message::{Arrival, Meta};

    use crate::config::with_rules as config;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    const NOW: &str = "2026-06-01T00:00:00Z";

    /// A message with the given extra header lines; arrival 2026-05-01 unless
    /// `arrival` says otherwise, flags from `flags` (IMAP spelling).
    #[derive(Clone, Copy)]
    struct Msg<'a> {
        headers: &'a str,
        body: &'a str,
        flags: &'a [&'a str],
        arrival: &'a str,
    }

    const BASE: Msg = Msg {
        headers: "",
        body: "hello",
        flags: &[],
        arrival: "2026-05-01T00:00:00Z",
    };

    fn message(m: &Msg) -> Message {
        let mut raw = String::from(m.headers);
        if !m.headers.contains("From:") {
            raw.push_str("From: Alice Example <alice@example.org>\n");
        }
        raw.push('\n');
        raw.push_str(m.body);
        let flags: BTreeSet<Flag> = m.flags.iter().map(|f| Flag::parse(f).unwrap()).collect();
        Message::parse(
            raw.as_bytes(),
            Meta {
                arrival: Arrival::At(t(m.arrival)),
                flags,
                size: None,
            },
        )
        .unwrap()
    }

    /// `rule=NAME move:X +[..] -[..] copies=[..]`, `stay`, or `error: ...`.
    fn summary(rules: &str, m: &Msg) -> String {
        let cfg = config(rules);
        let msg = message(m);
        match evaluate(cfg.rules_for("a", "INBOX"), &msg, t(NOW), false) {
            Err(e) => format!("error: {e}"),
            Ok(d) if d.rule.is_none() => "stay".into(),
            Ok(d) => {
                let mut s = format!("rule={}", d.rule.unwrap());
                if let Some(dest) = d.destination {
                    s.push_str(&format!(" {:?}:{}", dest.disposition, dest.target).to_lowercase());
                }
                let f =
                    |set: &BTreeSet<Flag>| set.iter().map(Flag::imap).collect::<Vec<_>>().join(",");
                if !d.flags_added.is_empty() {
                    s.push_str(&format!(" +[{}]", f(&d.flags_added)));
                }
                if !d.flags_removed.is_empty() {
                    s.push_str(&format!(" -[{}]", f(&d.flags_removed)));
                }
                if !d.copies.is_empty() {
                    let copies: Vec<&str> = d.copies.iter().map(FolderPath::as_str).collect();
                    s.push_str(&format!(" copies=[{}]", copies.join(",")));
                }
                s
            }
        }
    }

    /// One rule named `r` that moves to `X` when `cond` (a `match:` body)
    /// holds: "rule=r move:x" or "stay".
    fn holds(cond: &str, m: &Msg) -> bool {
        let rules = format!("  - name: r\n    match: {cond}\n    actions: [move: X]\n");
        match summary(&rules, m).as_str() {
            "rule=r move:x" => true,
            "stay" => false,
            other => panic!("{cond}: {other}"),
        }
    }

    #[test]
    fn address_lists() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("vip.txt");
        std::fs::write(
            &list,
            "# people first\nBoss@Example.org\n\n@partner.example  # a whole domain\nexample.net\n",
        )
        .unwrap();
        let cond = format!("{{from: {{file: {}}}}}", list.display());
        let h = |headers| Msg { headers, ..BASE };
        let cases = [
            ("From: boss@example.org\n", true),
            ("From: BOSS@EXAMPLE.ORG\n", true),
            ("From: intern@example.org\n", false),
            ("From: a@partner.example\n", true),
            ("From: a@eu.partner.example\n", true),
            ("From: a@notpartner.example\n", false),
            ("From: a@example.net\n", true),
            ("From: example.net <a@example.com>\n", false),
        ];
        for (headers, want) in cases {
            assert_eq!(holds(&cond, &h(headers)), want, "{headers}");
        }
    }

    #[test]
    fn conditions() {
        let h = |headers| Msg { headers, ..BASE };
        let gh = h("From: GitHub <notifications@github.com>\n");
        let cases: Vec<(&str, Msg, bool)> = vec![
            // address tests: plain string on address and display name
            ("{from: alice@example.org}", BASE, true),
            ("{from: ALICE}", BASE, true),
            ("{from: bob}", BASE, false),
            ("{from: {domain: github.com}}", gh, true),
            (
                "{from: {domain: github.com}}",
                h("From: x@notgithub.com\n"),
                false,
            ),
            (
                "{from: {domain: {glob: \"*.github.com\"}}}",
                h("From: x@api.github.com\n"),
                true,
            ),
            ("{from: {domain: {glob: \"*.github.com\"}}}", gh, false),
            ("{from: {localpart: notifications}}", gh, true),
            ("{from: {localpart: notif}}", gh, false),
            (
                "{from: {localpart: notifications, domain: example.org}}",
                gh,
                false,
            ),
            ("{from: {regex: '^notif.*@github\\.com$'}}", gh, true),
            // subaddresses (RFC 5233): user before the first `+`, detail after
            ("{to: {detail: shop}}", h("To: me+shop@example.org\n"), true),
            ("{to: {detail: shop}}", h("To: me@example.org\n"), false),
            (
                "{to: {detail: {is: \"\"}}}",
                h("To: me+@example.org\n"),
                true,
            ),
            (
                "{to: {user: me, detail: {glob: \"sh*\"}}}",
                h("To: me+shop+x@example.org\n"),
                true,
            ),
            ("{to: {user: me}}", h("To: me+shop@example.org\n"), true),
            (
                "{to: {localpart: me}}",
                h("To: me+shop@example.org\n"),
                false,
            ),
            // any header read as addresses
            (
                "{address: {Delivered-To: {detail: lists}}}",
                h("Delivered-To: me+lists@example.org\nTo: x@example.org\n"),
                true,
            ),
            (
                "{address: {Delivered-To: {detail: lists}}}",
                h("Delivered-To: me@example.org\n"),
                false,
            ),
            (
                "{address: {X-Original-To: {domain: example.net}}}",
                h("X-Original-To: a@example.org, b@example.net\n"),
                true,
            ),
            ("{address: {X-Original-To: anything}}", BASE, false),
            // numbers in headers, as spam filters write them
            (
                "{header: {X-Spam-Score: {over: 5}}}",
                h("X-Spam-Score: 7.3\n"),
                true,
            ),
            (
                "{header: {X-Spam-Score: {over: 5}}}",
                h("X-Spam-Score: 5\n"),
                false,
            ),
            (
                "{header: {X-Spam-Score: {at_least: 5}}}",
                h("X-Spam-Score: 5.0\n"),
                true,
            ),
            (
                "{header: {X-Spam-Score: {under: 0}}}",
                h("X-Spam-Score: -1.5\n"),
                true,
            ),
            (
                "{header: {X-Spam-Score: {at_most: 2}}}",
                h("X-Spam-Score: high\n"),
                false,
            ),
            ("{header: {X-Spam-Score: {over: 5}}}", BASE, false),
            // arrival against the calendar: BASE arrived 2026-05-01, now is
            // 2026-06-01
            ("{received_before: start_of_month}", BASE, true),
            ("{received_after: start_of_year}", BASE, true),
            ("{received_before: start_of_year}", BASE, false),
            (
                "{sent_before: start_of_year}",
                h("Date: Wed, 31 Dec 2025 23:00:00 +0000\n"),
                true,
            ),
            (
                "{sent_before: start_of_year}",
                h("Date: Thu, 01 Jan 2026 01:00:00 +0000\n"),
                false,
            ),
            ("{from: {is: GitHub}}", gh, true),
            ("{from: [bob, github]}", gh, true),
            ("{to: bob@x.org}", h("To: Bob <bob@x.org>, c@y.org\n"), true),
            ("{to: bob@x.org}", h("Cc: bob@x.org\n"), false),
            ("{cc: {domain: y.org}}", h("Cc: team: c@y.org;\n"), true),
            ("{bcc: hidden}", h("Bcc: hidden@x.org\n"), true),
            (
                "{sender: list-bounces}",
                h("Sender: list-bounces@x.org\n"),
                true,
            ),
            (
                "{reply_to: {domain: x.org}}",
                h("Reply-To: r@x.org\n"),
                true,
            ),
            ("{recipient: bob}", h("Bcc: bob@x.org\n"), true),
            ("{recipient: bob}", h("Cc: bob@x.org\n"), true),
            ("{recipient: bob}", h("Reply-To: bob@x.org\n"), false),
            // subject: decoded RFC 2047, Unicode case folding
            (
                "{subject: für}",
                h("Subject: =?ISO-8859-1?Q?F=FCR_Sie?=\n"),
                true,
            ),
            ("{subject: {is: 'hello'}}", h("Subject: HELLO\n"), true),
            ("{subject: {is: 'hell'}}", h("Subject: HELLO\n"), false),
            (
                "{subject: {glob: 'Re: *'}}",
                h("Subject: re: lunch\n"),
                true,
            ),
            (
                "{subject: {regex: '^Re:'}}",
                h("Subject: re: lunch\n"),
                false,
            ),
            (
                "{subject: {regex: '(?i)^Re:'}}",
                h("Subject: re: lunch\n"),
                true,
            ),
            ("{subject: x}", BASE, false),
            // header: any occurrence, decoded; exists: all names
            ("{header: {X-Tag: b}}", h("X-Tag: a\nX-Tag: b\n"), true),
            (
                "{header: {x-tag: {is: ä}}}",
                h("X-Tag: =?UTF-8?B?w6Q=?=\n"),
                true,
            ),
            ("{header: {X-Tag: a, X-Other: z}}", h("X-Tag: a\n"), false),
            ("{exists: X-Tag}", h("x-tag: 1\n"), true),
            ("{exists: [X-Tag, X-Other]}", h("X-Tag: 1\n"), false),
            // list: the List-Id identifier
            (
                "{list: {is: rust.lists.x.org}}",
                h("List-Id: Rust <rust.lists.x.org>\n"),
                true,
            ),
            (
                "{list: Rust}",
                h("List-Id: Rust <rust.lists.x.org>\n"),
                true,
            ),
            ("{list: rust}", BASE, false),
            // size, dates (now = 2026-06-01, arrival = 2026-05-01)
            ("{size: {over: 10}}", BASE, true),
            ("{size: {under: 10}}", BASE, false),
            ("{size: {over: 1KB}}", BASE, false),
            ("{older_than: 30d}", BASE, true),
            ("{older_than: 32d}", BASE, false),
            ("{newer_than: 32d}", BASE, true),
            ("{newer_than: 30d}", BASE, false),
            (
                "{sent_before: 2026-01-01}",
                h("Date: Wed, 31 Dec 2025 23:00:00 +0000\n"),
                true,
            ),
            (
                "{sent_before: 2026-01-01}",
                h("Date: Thu, 01 Jan 2026 00:30:00 +0000\n"),
                false,
            ),
            (
                "{sent_before: 2026-01-01}",
                h("Date: Thu, 01 Jan 2026 00:30:00 +0100\n"),
                true,
            ),
            // "before" and "after" are strict: the very instant is neither
            (
                "{sent_before: 2026-01-01}",
                h("Date: Thu, 01 Jan 2026 00:00:00 +0000\n"),
                false,
            ),
            (
                "{sent_after: 2026-01-01}",
                h("Date: Thu, 01 Jan 2026 00:00:00 +0000\n"),
                false,
            ),
            (
                "{sent_after: 2026-01-01}",
                h("Date: Thu, 01 Jan 2026 00:00:01 +0000\n"),
                true,
            ),
            (
                "{sent_after: 10d}",
                h("Date: Sat, 30 May 2026 00:00:00 +0000\n"),
                true,
            ),
            (
                "{sent_after: 10d}",
                h("Date: Sat, 02 May 2026 00:00:00 +0000\n"),
                false,
            ),
            ("{sent_before: 2099-01-01}", BASE, false),
            ("{sent_after: 2000-01-01}", BASE, false),
            // flags and keywords
            (
                "{seen: true}",
                Msg {
                    flags: &["\\Seen"],
                    ..BASE
                },
                true,
            ),
            (
                "{seen: false}",
                Msg {
                    flags: &["\\Seen"],
                    ..BASE
                },
                false,
            ),
            ("{seen: false}", BASE, true),
            (
                "{flagged: true}",
                Msg {
                    flags: &["\\Flagged"],
                    ..BASE
                },
                true,
            ),
            ("{answered: true}", BASE, false),
            (
                "{draft: true}",
                Msg {
                    flags: &["\\Draft"],
                    ..BASE
                },
                true,
            ),
            (
                "{keyword: $work}",
                Msg {
                    flags: &["$Work"],
                    ..BASE
                },
                true,
            ),
            (
                "{keyword: [$Work, $Done]}",
                Msg {
                    flags: &["$Work"],
                    ..BASE
                },
                false,
            ),
            // combinators
            ("{all: [{from: alice}, {seen: false}]}", BASE, true),
            ("{all: [{from: alice}, {seen: true}]}", BASE, false),
            ("{any: [{from: bob}, {seen: false}]}", BASE, true),
            ("{any: [{from: bob}, {seen: true}]}", BASE, false),
            ("{not: {from: bob}}", BASE, true),
            ("{not: {from: alice, seen: true}}", BASE, true),
            ("{not: {from: alice, seen: false}}", BASE, false),
            (
                "{any: [{not: {from: alice}}, {all: [{size: {over: 1}}, {subject: x}]}]}",
                BASE,
                false,
            ),
            ("{from: alice, seen: true}", BASE, false),
            ("{}", BASE, true),
            ("", BASE, true),
        ];
        for (cond, msg, want) in cases {
            assert_eq!(holds(cond, &msg), want, "{cond} on {:?}", msg.headers);
        }
    }

    const MIME: &str = "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n";
    const MIME_BODY: &str = "--b\nContent-Type: text/html\n\n<p>Please <b>unsubscribe</b> me</p>\n\
--b\nContent-Type: application/pdf\nContent-Disposition: attachment; filename=\"bill.PDF\"\n\nxx\n--b--\n";

    #[test]
    fn body_and_attachment_conditions() {
        let mime = Msg {
            headers: MIME,
            body: MIME_BODY,
            ..BASE
        };
        let cases: Vec<(&str, &Msg, bool)> = vec![
            ("{body: UNSUBSCRIBE}", &mime, true),
            ("{body: '<b>'}", &mime, false),
            ("{body: {regex: 'Please\\s+unsubscribe'}}", &mime, true),
            ("{body: hello}", &BASE, true),
            ("{attachment: true}", &mime, true),
            ("{attachment: true}", &BASE, false),
            ("{attachment: false}", &BASE, true),
            ("{attachment: {name: {glob: '*.pdf'}}}", &mime, true),
            ("{attachment: {name: {glob: '*.doc'}}}", &mime, false),
            ("{attachment: {type: application/pdf}}", &mime, true),
            ("{attachment: {type: image/, name: bill}}", &mime, false),
        ];
        for (cond, msg, want) in cases {
            assert_eq!(holds(cond, msg), want, "{cond}");
        }
    }

    #[test]
    fn body_conditions_on_a_header_only_message_are_an_error_not_a_guess() {
        let cfg = config("  - name: r\n    match: {body: x}\n    actions: [move: X]\n");
        let msg = Message::from_server(
            b"From: a@b\n\n",
            None,
            Meta {
                arrival: Arrival::At(t(NOW)),
                flags: BTreeSet::new(),
                size: None,
            },
        )
        .unwrap();
        let err = evaluate(cfg.rules_for("a", "INBOX"), &msg, t(NOW), false).unwrap_err();
        assert_eq!(err.rule, "r");
        assert!(err.message.contains("only the header was read"));
    }

    #[test]
    fn evaluation_order() {
        let r = |s: &str| s.replace('|', "\n");
        let cases: Vec<(String, &str)> = vec![
            // flags of every matching rule accumulate, then the move applies
            (
                r(
                    "  - {name: one, actions: [flag: seen]}|  - {name: two, actions: [flag: [$A]]}|  - {name: three, actions: [move: Dest]}|",
                ),
                "rule=three move:dest +[\\Seen,$A]",
            ),
            // the first move wins; later rules are not evaluated
            (
                r(
                    "  - {name: one, actions: [move: First]}|  - {name: two, actions: [flag: seen, move: Second]}|",
                ),
                "rule=one move:first",
            ),
            // copy does not end evaluation
            (
                r("  - {name: one, actions: [copy: Keep]}|  - {name: two, actions: [archive]}|"),
                "rule=two archive:\\archive (else archive) copies=[Keep]",
            ),
            // stop as an action and as a rule key
            (
                r(
                    "  - {name: one, actions: [flag: seen, stop]}|  - {name: two, actions: [move: X]}|",
                ),
                "rule=one +[\\Seen]",
            ),
            (
                r(
                    "  - {name: one, stop: true, actions: [flag: seen]}|  - {name: two, actions: [move: X]}|",
                ),
                "rule=one +[\\Seen]",
            ),
            (
                r("  - {name: one, stop: true}|  - {name: two, actions: [move: X]}|"),
                "rule=one",
            ),
            // a rule that does not match does not stop anything
            (
                r(
                    "  - {name: one, match: {from: bob}, stop: true}|  - {name: two, actions: [move: X]}|",
                ),
                "rule=two move:x",
            ),
            // flags and keywords set by an earlier rule are seen by a later
            // one (Sieve's hasflag after addflag), and removed ones are not
            (
                r(
                    "  - {name: tag, match: {from: alice}, actions: [flag: $ci-cd]}|  - {name: file, match: {keyword: $ci-cd}, actions: [move: CI]}|",
                ),
                "rule=file move:ci +[$ci-cd]",
            ),
            (
                r(
                    "  - {name: read, actions: [flag: seen]}|  - {name: unread, match: {seen: false}, actions: [move: Unread]}|  - {name: wasread, match: {seen: true}, actions: [move: Read]}|",
                ),
                "rule=wasread move:read +[\\Seen]",
            ),
            (
                r(
                    "  - {name: a, actions: [flag: $x]}|  - {name: b, actions: [unflag: $x]}|  - {name: c, match: {keyword: $x}, actions: [move: X]}|",
                ),
                "rule=a -[$x]",
            ),
            // special-use targets, and the bare junk action
            (
                r("  - {name: one, actions: [junk]}|"),
                "rule=one move:\\junk (else junk)",
            ),
            (
                r("  - {name: one, actions: [move: \\Sent]}|"),
                "rule=one move:\\sent (else sent)",
            ),
            // a later unflag cancels an earlier flag, and the reverse
            (
                r(
                    "  - {name: one, actions: [flag: [seen, flagged]]}|  - {name: two, actions: [unflag: seen]}|",
                ),
                "rule=one +[\\Flagged] -[\\Seen]",
            ),
            (
                r(
                    "  - {name: one, actions: [unflag: seen]}|  - {name: two, actions: [flag: seen]}|",
                ),
                "rule=one +[\\Seen]",
            ),
            // flags of the deciding rule count even when written after the move
            (
                r("  - {name: one, actions: [move: X, flag: seen]}|"),
                "rule=one move:x +[\\Seen]",
            ),
            // delete: to Trash, or for good
            (
                r("  - {name: one, actions: [delete]}|"),
                "rule=one delete:\\trash (else trash)",
            ),
            (
                r("  - {name: one, actions: [delete: {expunge: true}]}|"),
                "rule=one delete:(expunged)",
            ),
            // rules of another mailbox do not apply
            (
                r("  - {name: one, mailbox: Other, actions: [move: X]}|"),
                "stay",
            ),
            (
                r("  - {name: one, mailbox: [Other, inbox], actions: [move: X]}|"),
                "rule=one move:x",
            ),
        ];
        for (rules, want) in cases {
            assert_eq!(summary(&rules, &BASE), want, "{rules}");
        }
    }

    #[test]
    fn templates() {
        let m = Msg {
            headers: "Subject: [rust-users] hi\nList-Id: <rust-users.lists.x.org>\nDate: Sun, 31 Dec 2023 23:30:00 -0200\n",
            arrival: "2025-01-02T03:04:05Z",
            ..BASE
        };
        let no_date = Msg {
            headers: "Subject: [rust-users] hi\n",
            ..BASE
        };
        let rule = |cond: &str, folder: &str| {
            format!("  - name: r\n    match: {cond}\n    actions: [move: \"{folder}\"]\n")
        };
        let cases: Vec<(String, &Msg, &str)> = vec![
            (
                rule("{}", "A/{year}/{month}/{day}"),
                &m,
                "rule=r move:a/2025/01/02",
            ),
            (
                rule("{}", "S/{sent_year}-{sent_month}-{sent_day}"),
                &m,
                "rule=r move:s/2024-01-01",
            ),
            (
                rule(
                    "{list: {regex: '^(?P<name>[a-z-]+)\\.lists'}}",
                    "Lists/{name}",
                ),
                &m,
                "rule=r move:lists/rust-users",
            ),
            (
                rule(
                    "{subject: {regex: '^\\[(?P<l>[^]]+)\\] (?P<rest>.*)'}}",
                    "L/{l}/{rest}",
                ),
                &m,
                "rule=r move:l/rust-users/hi",
            ),
            // a capture value with "/" makes a level
            (
                rule(
                    "{subject: {regex: '^\\[(?P<a>rust)-(?P<b>users)'}}",
                    "{a}/{b}",
                ),
                &m,
                "rule=r move:rust/users",
            ),
            // an optional group that did not take part: left alone, reported
            (
                rule("{subject: {regex: '(?P<x>zzz)?hi'}}", "X/{x}"),
                &m,
                "error: rule \"r\": folder \"X/{x}\": capture {x} did not take part in the match",
            ),
            // the failed branch of `any` contributes no capture
            (
                rule(
                    "{any: [{all: [{subject: {regex: '(?P<x>rust)'}}, {from: nobody}]}, {subject: {regex: '(?P<x>hi)'}}]}",
                    "X/{x}",
                ),
                &m,
                "rule=r move:x/hi",
            ),
            (
                rule("{}", "S/{sent_year}"),
                &no_date,
                "error: rule \"r\": folder \"S/{sent_year}\": the message has no usable Date header for {sent_...}",
            ),
        ];
        for (rules, msg, want) in cases {
            assert_eq!(summary(&rules, msg), want, "{rules}");
        }
    }

    #[test]
    fn explain_records_what_each_condition_saw() {
        let cfg = config(
            "  - name: r\n    match: {from: {domain: github.com}, seen: false}\n    actions: [move: X]\n",
        );
        let msg = message(&BASE);
        let d = evaluate(cfg.rules_for("a", "INBOX"), &msg, t(NOW), true).unwrap();
        assert_eq!(d.trace.len(), 1);
        let c = &d.trace[0].conditions;
        assert_eq!(
            c.len(),
            1,
            "evaluation stops at the first failing condition"
        );
        assert_eq!(c[0].label, "from domain is \"github.com\"");
        assert!(!c[0].held);
        assert_eq!(
            c[0].seen.as_deref(),
            Some("Alice Example <alice@example.org>")
        );
        let quiet = evaluate(cfg.rules_for("a", "INBOX"), &msg, t(NOW), false).unwrap();
        assert!(quiet.trace.is_empty());
    }

    #[test]
    fn explain_says_when_a_header_is_not_a_number() {
        let cfg = config(
            "  - name: r\n    match: {header: {X-Spam-Score: {over: 5}}}\n    actions: [junk]\n",
        );
        let msg = message(&Msg {
            headers: "X-Spam-Score: unknown\nX-Spam-Score: 2.5\n",
            ..BASE
        });
        let d = evaluate(cfg.rules_for("a", "INBOX"), &msg, t(NOW), true).unwrap();
        let c = &d.trace[0].conditions[0];
        assert_eq!(c.label, "header X-Spam-Score is over 5");
        assert_eq!(
            c.seen.as_deref(),
            Some("\"unknown\" (not a number), \"2.5\"")
        );
    }
}
