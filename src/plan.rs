//! Planning: the decisions for one mailbox's messages, the grouped IMAP
//! operations that carry them out (one STORE per flag set, one COPY or MOVE
//! per destination), and the steps: each operation with its destination as
//! the server names it, a folder to create, or the reason it cannot be
//! done. Pure. `run --dry-run` prints the steps; `run` hands the same steps
//! to `execute`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Utc};

use crate::imap::folders::Folders;
use crate::imap::types::{Mailbox, Uid, UidSet, UidValidity};
use crate::message::Message;
use crate::rules::evaluate::Decision;
use crate::rules::{Flag, FolderPath, Rule, Target, evaluate};

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
    /// When it arrived (INTERNALDATE), for the daemon's arrival-to-action
    /// latency; `None` when it could not be read.
    pub arrival: Option<DateTime<Utc>>,
}

impl Entry {
    /// Does carrying out the plan touch this message, or report it? A
    /// message that stays as it is needs no entry in `run`'s plan.
    pub fn matters(&self) -> bool {
        match &self.outcome {
            Err(_) => true,
            Ok(d) => {
                d.destination.is_some()
                    || !d.copies.is_empty()
                    || !self.add.is_empty()
                    || !self.remove.is_empty()
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct MailboxPlan {
    pub account: String,
    /// The mailbox read, as the server names it.
    pub mailbox: Mailbox,
    pub uid_validity: UidValidity,
    /// What the rules decided, message by message: every message read, or
    /// (for `run`, which prints only what it did) those acted on or not
    /// decided.
    pub entries: Vec<Entry>,
    /// How many messages were read and decided.
    pub searched: usize,
}

/// What is sent to the server, in this order: flags first (so they travel
/// with moved messages), then copies, then moves and expunges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    AddFlags { flags: Vec<Flag>, uids: UidSet },
    RemoveFlags { flags: Vec<Flag>, uids: UidSet },
    Copy { folder: FolderPath, uids: UidSet },
    Move { target: Target, uids: UidSet },
    Expunge { uids: UidSet },
}

impl Operation {
    pub fn uids(&self) -> &UidSet {
        match self {
            Operation::AddFlags { uids, .. }
            | Operation::RemoveFlags { uids, .. }
            | Operation::Copy { uids, .. }
            | Operation::Move { uids, .. }
            | Operation::Expunge { uids } => uids,
        }
    }

    fn uids_mut(&mut self) -> &mut UidSet {
        match self {
            Operation::AddFlags { uids, .. }
            | Operation::RemoveFlags { uids, .. }
            | Operation::Copy { uids, .. }
            | Operation::Move { uids, .. }
            | Operation::Expunge { uids } => uids,
        }
    }
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
pub fn decide(
    mailbox: &FolderPath,
    rules: &[&Rule],
    fetched: Fetched,
    now: DateTime<Utc>,
) -> Entry {
    let arrival = fetched.message.as_ref().ok().map(|m| m.arrival);
    let (message_id, from, subject, outcome, current) = match fetched.message {
        Ok(m) => {
            let outcome = evaluate(rules.iter().copied(), &m, now, false)
                .map(|mut d| {
                    if let Some(dest) = &d.destination
                        && matches!(&dest.target, Target::Folder(f) if f.same(mailbox))
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
        arrival,
    }
}

/// Where an operation's messages go, as the server names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub mailbox: Mailbox,
    /// The folder does not exist yet and will be created.
    pub create: bool,
}

/// One operation as it will be sent: with its destination, or why it
/// cannot be sent (the messages then stay where they are).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub op: Operation,
    /// `Ok(None)` for flags and expunges, which go nowhere.
    pub to: Result<Option<Destination>, String>,
    /// Copies the destination holds already (by Message-ID): not made
    /// again. Filled by `execute::skip_present_copies`.
    pub already: UidSet,
}

impl MailboxPlan {
    /// The operations, grouped so that each distinct flag set, copy folder
    /// and destination is one command (split later by UID-set length).
    pub fn operations(&self) -> Vec<Operation> {
        let mut add: BTreeMap<Vec<Flag>, Vec<Uid>> = BTreeMap::new();
        let mut remove: BTreeMap<Vec<Flag>, Vec<Uid>> = BTreeMap::new();
        let mut copies: BTreeMap<FolderPath, Vec<Uid>> = BTreeMap::new();
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
                copies.entry(c.clone()).or_default().push(e.uid);
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
        let set = |uids: Vec<Uid>| UidSet::new(uids);
        let mut ops = Vec::new();
        ops.extend(
            remove
                .into_iter()
                .map(|(flags, uids)| Operation::RemoveFlags {
                    flags,
                    uids: set(uids),
                }),
        );
        ops.extend(add.into_iter().map(|(flags, uids)| Operation::AddFlags {
            flags,
            uids: set(uids),
        }));
        ops.extend(copies.into_iter().map(|(folder, uids)| Operation::Copy {
            folder,
            uids: set(uids),
        }));
        ops.extend(moves.into_iter().map(|(target, uids)| Operation::Move {
            target,
            uids: set(uids),
        }));
        if !expunge.is_empty() {
            ops.push(Operation::Expunge { uids: set(expunge) });
        }
        ops
    }

    /// The operations with their destinations resolved on the server, as
    /// both the dry run shows them and `run` sends them. A copy or move
    /// into the mailbox being read is no operation.
    pub fn steps(&self, folders: &Folders, create_folders: bool) -> Vec<Step> {
        let mut steps = Vec::new();
        for op in self.operations() {
            let target = match &op {
                Operation::Copy { folder, .. } => Some(Target::Folder(folder.clone())),
                Operation::Move { target, .. } => Some(target.clone()),
                _ => None,
            };
            let to = match target {
                None => Ok(None),
                Some(t) => match folders.resolve(&t) {
                    Err(e) => Err(e.to_string()),
                    Ok(m) if m == self.mailbox => continue,
                    Ok(m) if !folders.exists(&m) && !create_folders => Err(format!(
                        "folder {m} does not exist and create_folders is false"
                    )),
                    Ok(m) => Ok(Some(Destination {
                        create: !folders.exists(&m),
                        mailbox: m,
                    })),
                },
            };
            steps.push(Step {
                op,
                to,
                already: UidSet::default(),
            });
        }
        steps
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

/// How many messages `steps` act on: a message flagged and moved is in two
/// steps, and one message still.
pub fn acted_on(steps: &[Step]) -> usize {
    UidSet::new(steps.iter().flat_map(|s| s.op.uids().iter())).len()
}

impl Step {
    /// Leaves out copies the destination already holds.
    pub fn skip(&mut self, present: &UidSet) {
        let uids = self.op.uids_mut();
        self.already = uids.iter().filter(|u| present.contains(*u)).collect();
        *uids = uids.without(present);
    }
}

/// `n message` or `n messages`.
pub fn messages(n: usize) -> String {
    format!("{n} message{}", if n == 1 { "" } else { "s" })
}

pub(crate) fn flag_list(flags: &[Flag]) -> String {
    flags.iter().map(Flag::imap).collect::<Vec<_>>().join(" ")
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = messages(self.uids().len());
        match self {
            Operation::AddFlags { flags, .. } => write!(f, "flag {} on {n}", flag_list(flags)),
            Operation::RemoveFlags { flags, .. } => write!(f, "unflag {} on {n}", flag_list(flags)),
            Operation::Copy { folder, .. } => write!(f, "copy {n} to {folder}"),
            Operation::Move { target, .. } => write!(f, "move {n} to {target}"),
            Operation::Expunge { .. } => write!(f, "delete {n} for good"),
        }
    }
}

impl fmt::Display for Step {
    /// `copy 3 messages to INBOX.Receipts.2026 (a new folder; 2 already
    /// there)`, with server names.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = messages(self.op.uids().len());
        match (&self.op, &self.to) {
            (Operation::Copy { .. }, Ok(Some(d))) if self.op.uids().is_empty() => {
                return write!(
                    f,
                    "copy none to {}: {} already there",
                    d.mailbox,
                    messages(self.already.len())
                );
            }
            (op, Ok(None)) => write!(f, "{op}")?,
            (Operation::Copy { .. }, Ok(Some(d))) => write!(f, "copy {n} to {}", d.mailbox)?,
            (_, Ok(Some(d))) => write!(f, "move {n} to {}", d.mailbox)?,
            (op, Err(why)) => return write!(f, "cannot {op}: {why}; the messages stay"),
        }
        let mut notes = Vec::new();
        if matches!(&self.to, Ok(Some(d)) if d.create) {
            notes.push("a new folder".to_string());
        }
        if !self.already.is_empty() {
            notes.push(format!("{} already there", messages(self.already.len())));
        }
        if !notes.is_empty() {
            write!(f, " ({})", notes.join("; "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::with_rules;
    use crate::imap::folders::Namespace;
    use crate::imap::response::ListEntry;
    use crate::imap::types::uid;
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

    fn set(v: &[u32]) -> UidSet {
        v.iter().map(|&n| uid(n)).collect()
    }

    fn plan(rules: &str, messages: Vec<(u32, Result<Message, String>)>) -> MailboxPlan {
        let cfg = with_rules(rules);
        let rules: Vec<&Rule> = cfg.rules_for("a", "INBOX").collect();
        let now = DateTime::UNIX_EPOCH;
        MailboxPlan {
            searched: messages.len(),
            account: "a".into(),
            mailbox: Mailbox::inbox(),
            uid_validity: UidValidity::new(9).unwrap(),
            entries: messages
                .into_iter()
                .map(|(u, message)| {
                    decide(
                        &FolderPath::inbox(),
                        &rules,
                        Fetched {
                            uid: uid(u),
                            message,
                        },
                        now,
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn operations_are_grouped_and_skip_what_is_already_true() {
        let seen = Flag::System(SystemFlag::Seen);
        let p = plan(
            "  - {name: spam, match: {subject: spam}, actions: [flag: seen, move: Junk]}
  - {name: gh, match: {from: github}, actions: [flag: [seen, $GH], move: GitHub]}
  - {name: keep, match: {from: boss}, actions: [copy: Boss, flag: flagged]}
  - {name: self, match: {subject: {regex: '^(?P<box>INBOX)'}}, actions: [flag: seen, move: '{box}']}
  - {name: gone, match: {subject: bounce}, actions: [flag: seen, delete: {expunge: true}]}
",
            vec![
                (1, Ok(msg("From: a@github.com\nSubject: pr", &[]))),
                (
                    2,
                    Ok(msg(
                        "From: b@github.com\nSubject: issue",
                        std::slice::from_ref(&seen),
                    )),
                ),
                (3, Ok(msg("From: x@y\nSubject: spam", &[]))),
                (4, Ok(msg("From: boss@corp\nSubject: hi", &[]))),
                (
                    5,
                    Ok(msg(
                        "From: me@home\nSubject: INBOX note",
                        std::slice::from_ref(&seen),
                    )),
                ),
                (6, Ok(msg("From: mailer@x\nSubject: bounce", &[]))),
                (7, Err("unreadable".into())),
                (8, Ok(msg("From: z@z\nSubject: other", &[]))),
            ],
        );
        let kw = Flag::Keyword("$GH".into());
        let flagged = Flag::System(SystemFlag::Flagged);
        let folder = |p: &str| FolderPath::parse(p).unwrap();
        assert_eq!(
            p.operations(),
            [
                Operation::AddFlags {
                    flags: vec![seen.clone()],
                    uids: set(&[3])
                },
                Operation::AddFlags {
                    flags: vec![seen, kw.clone()],
                    uids: set(&[1])
                },
                Operation::AddFlags {
                    flags: vec![flagged],
                    uids: set(&[4])
                },
                Operation::AddFlags {
                    flags: vec![kw],
                    uids: set(&[2])
                },
                Operation::Copy {
                    folder: folder("Boss"),
                    uids: set(&[4])
                },
                Operation::Move {
                    target: Target::Folder(folder("GitHub")),
                    uids: set(&[1, 2])
                },
                Operation::Move {
                    target: Target::Folder(folder("Junk")),
                    uids: set(&[3])
                },
                Operation::Expunge { uids: set(&[6]) },
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

    #[test]
    fn steps_name_server_folders_and_say_what_cannot_be_done() {
        let p = plan(
            "  - {name: list, match: {subject: {regex: '^\\[(?P<l>[^]]+)\\]'}}, actions: [move: 'Lists/{l}']}
  - {name: keep, match: {from: boss}, actions: [copy: Boss, copy: INBOX]}
  - {name: old, match: {subject: old}, actions: [archive]}
  - {name: bin, match: {subject: junk}, actions: [delete]}
",
            vec![
                (1, Ok(msg("From: a@b\nSubject: [rust] hi", &[]))),
                (2, Ok(msg("From: a@b\nSubject: [v1.2] hi", &[]))),
                (3, Ok(msg("From: boss@corp\nSubject: x", &[]))),
                (4, Ok(msg("From: a@b\nSubject: old", &[]))),
                (5, Ok(msg("From: a@b\nSubject: junk", &[]))),
            ],
        );
        let entry = |name: &str, attrs: &[&str]| ListEntry {
            name: name.into(),
            attributes: attrs.iter().map(|a| a.to_string()).collect(),
            separator: Some('.'),
        };
        let courier = Folders::new(
            Namespace {
                prefix: "INBOX.".into(),
                separator: Some('.'),
            },
            &[
                entry("INBOX", &[]),
                entry("INBOX.Boss", &[]),
                entry("INBOX.Bin", &["\\Trash"]),
            ],
            false,
        );
        let shown = |create: bool| -> Vec<String> {
            p.steps(&courier, create)
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(
            shown(true),
            [
                "copy 1 message to INBOX.Boss",
                "move 1 message to INBOX.Lists.rust (a new folder)",
                "cannot move 1 message to Lists/v1.2: folder level \"v1.2\" holds '.', the server's hierarchy separator (rules separate levels with \"/\"); the messages stay",
                "move 1 message to INBOX.Archive (a new folder)",
                "move 1 message to INBOX.Bin",
            ]
        );
        assert_eq!(
            shown(false)[3],
            "cannot move 1 message to \\Archive (else Archive): folder INBOX.Archive does not exist and create_folders is false; the messages stay"
        );
        let mut step = p.steps(&courier, true).remove(0);
        step.skip(&set(&[3]));
        assert_eq!(
            step.to_string(),
            "copy none to INBOX.Boss: 1 message already there"
        );
        let mut step = p.steps(&courier, true).remove(0);
        step.skip(&set(&[]));
        assert_eq!(step.to_string(), "copy 1 message to INBOX.Boss");
    }

    #[test]
    fn a_message_in_several_steps_is_acted_on_once() {
        let step = |op| Step {
            op,
            to: Ok(None),
            already: UidSet::default(),
        };
        let steps = [
            step(Operation::AddFlags {
                flags: vec![Flag::Deleted],
                uids: set(&[1, 2, 3]),
            }),
            step(Operation::Expunge { uids: set(&[2, 3]) }),
            step(Operation::Copy {
                folder: FolderPath::parse("Receipts").unwrap(),
                uids: set(&[4]),
            }),
        ];
        assert_eq!(acted_on(&steps), 4);
        assert_eq!(acted_on(&[]), 0);
    }
}
