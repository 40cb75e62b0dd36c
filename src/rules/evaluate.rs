//! The evaluator: rules x message x now -> [`Decision`]. Pure (no IO, no
//! clock), so `mailwarden test`, the dry-run plan and the live run all reach
//! the same decision for the same message. Semantics: spec, "Evaluation".

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::template::TemplateInput;
use super::text::{Captures, TextTest};
use super::{
    ARCHIVE, Action, AddressField, AddressTest, Condition, Flag, Rule, SystemFlag, TRASH, Target,
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
    pub copies: Vec<String>,
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
    let eval = Eval { msg, now, explain };
    let mut d = Decision {
        matched: Vec::new(),
        rule: None,
        destination: None,
        flags_added: BTreeSet::new(),
        flags_removed: BTreeSet::new(),
        copies: Vec::new(),
        trace: Vec::new(),
    };
    for rule in rules {
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
                shown.push(quote(v));
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
            Condition::SentAfter(b) => match m.date {
                Some(date) => (
                    date > b.resolve(self.now),
                    ex.then(|| format!("sent {}", date.to_rfc3339())),
                ),
                None => (false, ex.then(|| "no Date header".to_string())),
            },
            Condition::Flag(flag, want) => {
                let has = m.flags.contains(&Flag::System(*flag));
                (
                    has == *want,
                    ex.then(|| format!("{}{}", if has { "" } else { "not " }, flag_word(*flag))),
                )
            }
            Condition::Keyword(keys) => {
                let has = |k: &String| {
                    m.flags
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
        AddressTest::Parts {
            text,
            domain,
            localpart,
        } => {
            let mut local = Captures::new();
            let text_ok = text.as_ref().is_none_or(|t| {
                a.address.as_deref().is_some_and(|v| t.find(v, &mut local))
                    || a.name.as_deref().is_some_and(|v| t.find(v, &mut local))
            });
            let held = text_ok
                && domain
                    .as_ref()
                    .is_none_or(|t| a.domain().is_some_and(|v| t.find(v, &mut local)))
                && localpart
                    .as_ref()
                    .is_none_or(|t| a.localpart().is_some_and(|v| t.find(v, &mut local)));
            if held {
                caps.extend(local);
            }
            held
        }
    }
}
