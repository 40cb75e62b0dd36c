//! Planning: the decisions for one mailbox's messages, and the grouped IMAP
//! operations that carry them out (one STORE per flag set, one COPY or MOVE
//! per destination). Pure. `run --dry-run` prints a [`MailboxPlan`]; `run`
//! hands the same value to `execute`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use crate::imap::types::{Uid, UidValidity};
use crate::message::Message;
use crate::rules::evaluate::Decision;
use crate::rules::{Flag, Rule, Target, evaluate, same_mailbox};

/// One message of the mailbox and what the rules decided for it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub uid: Uid,
    pub message_id: Option<String>,
    pub from: String,
    pub subject: String,
    /// `Err`: the message could not be read or decided; it is left alone.
    pub outcome: Result<Decision, String>,
    /// Flags to add that the message does not have yet.
    pub add: BTreeSet<Flag>,
    /// Flags to remove that the message has.
    pub remove: BTreeSet<Flag>,
}

#[derive(Debug, Clone)]
pub struct MailboxPlan {
    pub account: String,
    pub mailbox: String,
    pub uid_validity: UidValidity,
    pub entries: Vec<Entry>,
}

/// What is sent to the server, in this order: flags first (so they travel
/// with moved messages), then copies, then moves and expunges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    AddFlags { flags: Vec<Flag>, uids: Vec<Uid> },
    RemoveFlags { flags: Vec<Flag>, uids: Vec<Uid> },
    Copy { folder: String, uids: Vec<Uid> },
    Move { target: Target, uids: Vec<Uid> },
    Expunge { uids: Vec<Uid> },
}

/// A message as fetched: its UID and either the parsed view or why it could
/// not be read.
pub struct Fetched {
    pub uid: Uid,
    pub message: Result<Message, String>,
}

fn show_from(from: &[crate::message::Address]) -> String {
    from.first()
        .map(|a| a.address.clone().or(a.name.clone()).unwrap_or_default())
        .unwrap_or_default()
}

/// Decides one message. A move into the mailbox being read is no move.
pub fn decide(mailbox: &str, rules: &[&Rule], fetched: Fetched, now: DateTime<Utc>) -> Entry {
    let (message_id, from, subject, outcome, current) = match fetched.message {
        Ok(m) => {
            let outcome = evaluate(rules.iter().copied(), &m, now, false)
                .map(|mut d| {
                    if let Some(dest) = &d.destination
                        && matches!(&dest.target, Target::Folder(f) if same_mailbox(f, mailbox))
                    {
                        d.destination = None;
                    }
                    d
                })
                .map_err(|e| e.to_string());
            (
                m.message_id,
                show_from(&m.from),
                m.subject.unwrap_or_default(),
                outcome,
                m.flags,
            )
        }
        Err(e) => (None, String::new(), String::new(), Err(e), BTreeSet::new()),
    };
    let (add, remove) = match &outcome {
        Ok(d) => (
            d.flags_added.difference(&current).cloned().collect(),
            d.flags_removed.intersection(&current).cloned().collect(),
        ),
        Err(_) => Default::default(),
    };
    Entry {
        uid: fetched.uid,
        message_id,
        from,
        subject,
        outcome,
        add,
        remove,
    }
}

impl MailboxPlan {
    /// The operations, grouped so that each distinct flag set, copy folder
    /// and destination is one command (chunked later by UID-set length).
    pub fn operations(&self) -> Vec<Operation> {
        let mut add: BTreeMap<Vec<Flag>, Vec<Uid>> = BTreeMap::new();
        let mut remove: BTreeMap<Vec<Flag>, Vec<Uid>> = BTreeMap::new();
        let mut copies: BTreeMap<String, Vec<Uid>> = BTreeMap::new();
        let mut moves: Vec<(Target, Vec<Uid>)> = Vec::new();
        let mut expunge = Vec::new();
        for e in &self.entries {
            let Ok(d) = &e.outcome else { continue };
            let expunged = matches!(&d.destination, Some(x) if x.target == Target::Expunge);
            if !expunged {
                if !e.add.is_empty() {
                    add.entry(e.add.iter().cloned().collect())
                        .or_default()
                        .push(e.uid);
                }
                if !e.remove.is_empty() {
                    remove
                        .entry(e.remove.iter().cloned().collect())
                        .or_default()
                        .push(e.uid);
                }
            }
            for c in &d.copies {
                if !same_mailbox(c, &self.mailbox) {
                    copies.entry(c.clone()).or_default().push(e.uid);
                }
            }
            match &d.destination {
                None => {}
                Some(x) if x.target == Target::Expunge => expunge.push(e.uid),
                Some(x) => match moves.iter_mut().find(|(t, _)| *t == x.target) {
                    Some((_, uids)) => uids.push(e.uid),
                    None => moves.push((x.target.clone(), vec![e.uid])),
                },
            }
        }
        moves.sort_by_key(|(target, _)| target.to_string());
        let mut ops = Vec::new();
        ops.extend(
            remove
                .into_iter()
                .map(|(flags, uids)| Operation::RemoveFlags { flags, uids }),
        );
        ops.extend(
            add.into_iter()
                .map(|(flags, uids)| Operation::AddFlags { flags, uids }),
        );
        ops.extend(
            copies
                .into_iter()
                .map(|(folder, uids)| Operation::Copy { folder, uids }),
        );
        ops.extend(
            moves
                .into_iter()
                .map(|(target, uids)| Operation::Move { target, uids }),
        );
        if !expunge.is_empty() {
            ops.push(Operation::Expunge { uids: expunge });
        }
        ops
    }

    /// Messages per deciding rule, in first-seen order, and the failures.
    pub fn counts(&self) -> (Vec<(String, usize)>, usize) {
        let mut per_rule: Vec<(String, usize)> = Vec::new();
        let mut failed = 0;
        for e in &self.entries {
            match &e.outcome {
                Ok(d) => {
                    if let Some(rule) = &d.rule {
                        match per_rule.iter_mut().find(|(r, _)| r == rule) {
                            Some((_, n)) => *n += 1,
                            None => per_rule.push((rule.clone(), 1)),
                        }
                    }
                }
                Err(_) => failed += 1,
            }
        }
        (per_rule, failed)
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = |uids: &[Uid]| {
            format!(
                "{} message{}",
                uids.len(),
                if uids.len() == 1 { "" } else { "s" }
            )
        };
        let list = |flags: &[Flag]| flags.iter().map(Flag::imap).collect::<Vec<_>>().join(" ");
        match self {
            Operation::AddFlags { flags, uids } => write!(f, "flag {} on {}", list(flags), n(uids)),
            Operation::RemoveFlags { flags, uids } => {
                write!(f, "unflag {} on {}", list(flags), n(uids))
            }
            Operation::Copy { folder, uids } => write!(f, "copy {} to {folder}", n(uids)),
            Operation::Move { target, uids } => write!(f, "move {} to {target}", n(uids)),
            Operation::Expunge { uids } => write!(f, "delete {} for good", n(uids)),
        }
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::config::with_rules;
    use crate::message::{Arrival, Meta};
    use crate::rules::SystemFlag;

    fn msg(headers: &str, flags: &[Flag]) -> Message {
        Message::parse(
            format!("{headers}\n\nbody").as_bytes(),
            Meta {
                arrival: Arrival::At(DateTime::UNIX_EPOCH),
                flags: flags.iter().cloned().collect(),
                size: None,
            },
        )
        .unwrap()
    }

    #[test]
    fn operations_are_grouped_and_skip_what_is_already_true() {
        let cfg = with_rules(
            "  - {name: spam, match: {subject: spam}, actions: [flag: seen, move: Junk]}
  - {name: gh, match: {from: github}, actions: [flag: [seen, $GH], move: GitHub]}
  - {name: keep, match: {from: boss}, actions: [copy: Boss, flag: flagged]}
  - {name: self, match: {subject: {regex: '^(?P<box>INBOX)'}}, actions: [flag: seen, move: '{box}']}
  - {name: gone, match: {subject: bounce}, actions: [flag: seen, delete: {expunge: true}]}
",
        );
        let rules: Vec<&Rule> = cfg.rules_for("a", "INBOX").collect();
        let seen = Flag::System(SystemFlag::Seen);
        let fetched = vec![
            Fetched {
                uid: Uid(1),
                message: Ok(msg("From: a@github.com\nSubject: pr", &[])),
            },
            Fetched {
                uid: Uid(2),
                message: Ok(msg(
                    "From: b@github.com\nSubject: issue",
                    std::slice::from_ref(&seen),
                )),
            },
            Fetched {
                uid: Uid(3),
                message: Ok(msg("From: x@y\nSubject: spam", &[])),
            },
            Fetched {
                uid: Uid(4),
                message: Ok(msg("From: boss@corp\nSubject: hi", &[])),
            },
            Fetched {
                uid: Uid(5),
                message: Ok(msg(
                    "From: me@home\nSubject: INBOX note",
                    std::slice::from_ref(&seen),
                )),
            },
            Fetched {
                uid: Uid(6),
                message: Ok(msg("From: mailer@x\nSubject: bounce", &[])),
            },
            Fetched {
                uid: Uid(7),
                message: Err("unreadable".into()),
            },
            Fetched {
                uid: Uid(8),
                message: Ok(msg("From: z@z\nSubject: other", &[])),
            },
        ];
        let now = DateTime::UNIX_EPOCH;
        let p = MailboxPlan {
            account: "a".into(),
            mailbox: "INBOX".into(),
            uid_validity: UidValidity(9),
            entries: fetched
                .into_iter()
                .map(|f| decide("INBOX", &rules, f, now))
                .collect(),
        };
        let kw = Flag::Keyword("$GH".into());
        let flagged = Flag::System(SystemFlag::Flagged);
        assert_eq!(
            p.operations(),
            [
                Operation::AddFlags {
                    flags: vec![seen.clone()],
                    uids: vec![Uid(3)]
                },
                Operation::AddFlags {
                    flags: vec![seen, kw.clone()],
                    uids: vec![Uid(1)]
                },
                Operation::AddFlags {
                    flags: vec![flagged],
                    uids: vec![Uid(4)]
                },
                Operation::AddFlags {
                    flags: vec![kw],
                    uids: vec![Uid(2)]
                },
                Operation::Copy {
                    folder: "Boss".into(),
                    uids: vec![Uid(4)]
                },
                Operation::Move {
                    target: Target::Folder("GitHub".into()),
                    uids: vec![Uid(1), Uid(2)]
                },
                Operation::Move {
                    target: Target::Folder("Junk".into()),
                    uids: vec![Uid(3)]
                },
                Operation::Expunge { uids: vec![Uid(6)] },
            ]
        );
        let (per_rule, failed) = p.counts();
        assert_eq!(
            per_rule,
            [
                ("gh".to_string(), 2),
                ("spam".into(), 1),
                ("keep".into(), 1),
                ("self".into(), 1),
                ("gone".into(), 1)
            ]
        );
        assert_eq!(failed, 1);
        // A second pass over the result would have nothing to do for UID 5.
        assert!(p.entries[4].add.is_empty());
        assert_eq!(p.entries[4].outcome.as_ref().unwrap().destination, None);
    }
}
