//! Planning an undo, pure: from an account's journal, which actions to take
//! back (done, not taken back already, in the range asked for), newest
//! first, and where each message should be now. `commands::undo` finds
//! each message there on the server, checks it is the one the journal
//! names, and carries the steps out, journaling them as it goes.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use crate::rules::Flag;
use crate::state::{Action, Entry, Status};

/// Where the journal says a message is: a mailbox (server name) and, where
/// the server said, its UIDVALIDITY and UID there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub mailbox: String,
    pub uid: Option<(u32, u32)>,
}

/// One action to take back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A move (or archive, or delete to Trash): the message goes back
    /// from where it is to the mailbox it came from.
    MoveBack { row: Entry, at: Location },
    /// A copy: the copy is removed (UID EXPUNGE of exactly it).
    RemoveCopy { row: Entry, at: Location },
    /// Flags mailwarden added are removed (`add: false`), flags it removed
    /// are set again (`add: true`).
    Flags {
        row: Entry,
        at: Location,
        flags: Vec<Flag>,
        add: bool,
    },
    /// What cannot be taken back, and why.
    Cannot { row: Entry, why: String },
}

impl Step {
    pub fn row(&self) -> &Entry {
        match self {
            Step::MoveBack { row, .. }
            | Step::RemoveCopy { row, .. }
            | Step::Flags { row, .. }
            | Step::Cannot { row, .. } => row,
        }
    }
}

/// Which journal rows to take back.
#[derive(Debug, Clone, Default)]
pub struct Range<'a> {
    pub since: Option<DateTime<Utc>>,
    pub rule: Option<&'a str>,
}

fn time_of(e: &Entry) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(&e.time)
        .ok()
        .map(|t| t.to_utc())
}

/// Whether `later` moved the message that is at `at` (as the journal
/// knows it) somewhere else.
fn moves_from(later: &Entry, at: &Location, message_id: Option<&str>) -> bool {
    if later.action != Action::Move || later.status != Status::Done || later.mailbox != at.mailbox {
        return false;
    }
    match at.uid {
        Some((validity, uid)) => later.uid_validity == validity && later.uid == uid,
        // Without a UID, the same Message-ID in the same mailbox.
        None => message_id.is_some() && later.message_id.as_deref() == message_id,
    }
}

/// Where a move or copy put the message.
fn destination(e: &Entry) -> Option<Location> {
    Some(Location {
        mailbox: e.target.clone()?,
        uid: e.new_uid_validity.zip(e.new_uid),
    })
}

/// The steps that take back the journal rows in `range`, newest first.
/// `history` is every row of the account, oldest first.
pub fn plan(history: &[Entry], range: &Range) -> Vec<Step> {
    let undone: HashSet<i64> = history
        .iter()
        .filter(|e| e.status == Status::Done)
        .filter_map(|e| e.undoes)
        .collect();
    let selected: Vec<&Entry> = history
        .iter()
        .rev()
        .filter(|e| e.status == Status::Done && e.undoes.is_none() && !undone.contains(&e.id))
        .filter(|e| {
            range
                .since
                .is_none_or(|s| time_of(e).is_some_and(|t| t >= s))
        })
        .filter(|e| range.rule.is_none_or(|r| e.rule.as_deref() == Some(r)))
        .collect();
    let chosen: HashSet<i64> = selected.iter().map(|e| e.id).collect();
    // A later move that this undo does not take back, and that was not
    // taken back before: the message is not where the row left it.
    let moved_on = |row: &Entry, at: &Location| -> Option<&Entry> {
        history.iter().find(|later| {
            later.id > row.id
                && later.undoes.is_none()
                && !chosen.contains(&later.id)
                && !undone.contains(&later.id)
                && moves_from(later, at, row.message_id.as_deref())
        })
    };
    let mut steps = Vec::new();
    for row in selected {
        let row = row.clone();
        let step = match row.action {
            Action::Move | Action::Copy => match destination(&row) {
                None => Step::Cannot {
                    why: "the journal does not say where it went".into(),
                    row,
                },
                Some(at) if at.uid.is_none() && row.message_id.is_none() => Step::Cannot {
                    why: "neither its new UID nor a Message-ID ties it to this action".into(),
                    row,
                },
                Some(at) => match moved_on(&row, &at) {
                    Some(later) => Step::Cannot {
                        why: format!(
                            "moved on since to {} (journal row {}); take that back first",
                            later.target.as_deref().unwrap_or("?"),
                            later.id
                        ),
                        row,
                    },
                    None if row.action == Action::Move => Step::MoveBack { row, at },
                    None => Step::RemoveCopy { row, at },
                },
            },
            Action::Flag | Action::Unflag => {
                let flags: Vec<Flag> = row
                    .target
                    .as_deref()
                    .unwrap_or("")
                    .split_whitespace()
                    .filter_map(|f| Flag::parse(f).ok())
                    .collect();
                // Flags travel with the message: follow it through moves
                // that are not taken back.
                let mut at = Location {
                    mailbox: row.mailbox.clone(),
                    uid: Some((row.uid_validity, row.uid)),
                };
                while let Some(later) = moved_on(&row, &at) {
                    match destination(later) {
                        Some(next) => at = next,
                        None => break,
                    }
                }
                if flags.is_empty() {
                    Step::Cannot {
                        why: "the journal does not say which flags".into(),
                        row,
                    }
                } else {
                    let add = row.action == Action::Unflag;
                    Step::Flags {
                        row,
                        at,
                        flags,
                        add,
                    }
                }
            }
            Action::Expunge => Step::Cannot {
                why: "it was deleted for good (expunged); that cannot be taken back".into(),
                row,
            },
        };
        steps.push(step);
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, action: Action, mailbox: &str, uid: u32, target: &str) -> Entry {
        Entry {
            id,
            time: format!("2026-03-0{}T10:00:00+00:00", id.min(9)),
            account: "a".into(),
            mailbox: mailbox.into(),
            uid_validity: 7,
            uid,
            message_id: Some(format!("m{uid}@x")),
            rule: Some("r".into()),
            action,
            target: Some(target.into()),
            status: Status::Done,
            detail: None,
            new_uid: None,
            new_uid_validity: None,
            undoes: None,
        }
    }

    fn moved(id: i64, mailbox: &str, uid: u32, to: &str, new_uid: u32) -> Entry {
        Entry {
            new_uid: Some(new_uid),
            new_uid_validity: Some(9),
            ..row(id, Action::Move, mailbox, uid, to)
        }
    }

    fn kinds(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .map(|s| match s {
                Step::MoveBack { row, at } => {
                    format!("back {} from {}:{:?}", row.id, at.mailbox, at.uid)
                }
                Step::RemoveCopy { row, at } => {
                    format!("uncopy {} at {}:{:?}", row.id, at.mailbox, at.uid)
                }
                Step::Flags { row, at, add, .. } => {
                    format!("flags {} {add} at {}:{:?}", row.id, at.mailbox, at.uid)
                }
                Step::Cannot { row, why } => format!("cannot {}: {why}", row.id),
            })
            .collect()
    }

    #[test]
    fn newest_first_and_each_message_found_where_it_went() {
        // One pass: flag, copy and move of message 5; an expunge of 6.
        let history = vec![
            row(1, Action::Flag, "INBOX", 5, "\\Seen"),
            Entry {
                new_uid: Some(3),
                new_uid_validity: Some(8),
                ..row(2, Action::Copy, "INBOX", 5, "Receipts")
            },
            moved(3, "INBOX", 5, "Archive", 40),
            row(4, Action::Expunge, "INBOX", 6, ""),
        ];
        assert_eq!(
            kinds(&plan(&history, &Range::default())),
            [
                "cannot 4: it was deleted for good (expunged); that cannot be taken back",
                "back 3 from Archive:Some((9, 40))",
                "uncopy 2 at Receipts:Some((8, 3))",
                // The move is taken back first: the flags are undone where
                // the message is then, back in INBOX.
                "flags 1 false at INBOX:Some((7, 5))",
            ]
        );
    }

    #[test]
    fn what_was_taken_back_is_not_taken_back_again() {
        let mut history = vec![moved(1, "INBOX", 5, "Archive", 40)];
        history.push(Entry {
            undoes: Some(1),
            ..moved(2, "Archive", 40, "INBOX", 6)
        });
        assert!(plan(&history, &Range::default()).is_empty());
        // Unless that undo did not get done.
        history[1].status = Status::Abandoned;
        assert_eq!(plan(&history, &Range::default()).len(), 1);
    }

    #[test]
    fn a_message_moved_on_is_left_alone_unless_that_move_is_taken_back_too() {
        let history = vec![
            moved(1, "INBOX", 5, "Lists", 40),
            Entry {
                rule: Some("later".into()),
                // Lists's UIDVALIDITY, as the first move's COPYUID said.
                uid_validity: 9,
                ..moved(2, "Lists", 40, "Archive", 77)
            },
            row(3, Action::Flag, "INBOX", 8, "$X"),
            moved(4, "INBOX", 8, "Work", 12),
        ];
        let only_r = Range {
            rule: Some("r"),
            ..Range::default()
        };
        assert_eq!(
            kinds(&plan(&history, &only_r)),
            [
                "back 4 from Work:Some((9, 12))",
                "flags 3 false at INBOX:Some((7, 8))",
                "cannot 1: moved on since to Archive (journal row 2); take that back first",
            ]
        );
        // Both moves taken back: the newer first, then the older.
        assert_eq!(
            kinds(&plan(&history, &Range::default()))[2..],
            [
                "back 2 from Archive:Some((9, 77))".to_string(),
                "back 1 from Lists:Some((9, 40))".to_string()
            ]
        );
        // Flags follow a move that is not taken back.
        let flags_only = Range {
            since: time_of(&history[2]),
            rule: None,
        };
        let mut h = history.clone();
        h[3].rule = Some("other".into());
        let steps = plan(
            &h,
            &Range {
                rule: Some("r"),
                ..flags_only
            },
        );
        assert_eq!(kinds(&steps)[0], "flags 3 false at Work:Some((9, 12))");
    }

    #[test]
    fn rows_the_journal_cannot_tie_to_a_message_are_said_so() {
        let history = vec![
            Entry {
                message_id: None,
                ..row(1, Action::Move, "INBOX", 5, "Archive")
            },
            // An older journal: no new UID, but a Message-ID to find it by.
            row(2, Action::Move, "INBOX", 6, "Archive"),
        ];
        assert_eq!(
            kinds(&plan(&history, &Range::default())),
            [
                "back 2 from Archive:None",
                "cannot 1: neither its new UID nor a Message-ID ties it to this action",
            ]
        );
    }
}
