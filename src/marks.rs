//! Where evaluation of a mailbox stands (the mark: UIDVALIDITY, the highest
//! UID evaluated, and with CONDSTORE the highest mod-sequence seen), and
//! what a pass reads next. Pure arithmetic over the mark and what the
//! server reported; `pass` does the reading, `state` keeps the marks.

use crate::imap::MailboxStatus;
use crate::imap::types::{Uid, UidSet, UidValidity};

/// Where evaluation of a mailbox stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub uid_validity: UidValidity,
    /// Every message with a UID up to this one has been evaluated.
    pub last_uid: u32,
    /// With CONDSTORE: changes up to this mod-sequence have been seen.
    pub highest_modseq: Option<u64>,
}

/// What a pass reads of a mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every message (a sweep, a first pass, or a new UIDVALIDITY).
    All,
    /// Messages above `last`, and with CONDSTORE those whose flags changed
    /// since `changed_since` (RFC 7162 3.1.4.1).
    Above {
        last: u32,
        changed_since: Option<u64>,
    },
}

/// What to read, given the mark of an earlier pass (none for a sweep) and
/// what SELECT said. The second value is true when the mark is void
/// because UIDVALIDITY changed (RFC 3501 2.3.1.1: every UID is new).
pub fn scope(mark: Option<Mark>, status: &MailboxStatus, condstore: bool) -> (Scope, bool) {
    match mark {
        None => (Scope::All, false),
        Some(m) if m.uid_validity != status.uid_validity => (Scope::All, true),
        Some(m) => (
            Scope::Above {
                last: m.last_uid,
                changed_since: m.highest_modseq.filter(|_| condstore),
            },
            false,
        ),
    }
}

/// The mark after reading every message: up to the highest UID the server
/// has assigned (UIDNEXT - 1, or the highest found where it gave none),
/// and the mailbox's mod-sequence at SELECT.
pub fn after_all(status: &MailboxStatus, found: &UidSet) -> Mark {
    let seen = found.max().map_or(0, Uid::get);
    Mark {
        uid_validity: status.uid_validity,
        last_uid: status
            .uid_next
            .map_or(seen, |n| n.saturating_sub(1).max(seen)),
        highest_modseq: status.highest_modseq,
    }
}

/// The messages to decide after a read above the mark, and the mark after
/// it. `fresh` is what `UID last+1:*` found, which always includes the
/// highest UID (RFC 3501 6.4.8), so it is filtered; `changed` is what
/// CHANGEDSINCE found, with mod-sequences.
pub fn after_new(old: Mark, fresh: &UidSet, changed: &[(Uid, u64)]) -> (UidSet, Mark) {
    let fresh: Vec<Uid> = fresh.iter().filter(|u| u.get() > old.last_uid).collect();
    let top = fresh
        .iter()
        .map(|u| u.get())
        .max()
        .unwrap_or(0)
        .max(old.last_uid);
    let highest_modseq = match old.highest_modseq {
        Some(since) if !changed.is_empty() => {
            changed.iter().map(|(_, m)| *m).max().max(Some(since))
        }
        m => m,
    };
    let older_changed = changed
        .iter()
        .map(|(u, _)| *u)
        .filter(|u| u.get() <= old.last_uid);
    (
        fresh.into_iter().chain(older_changed).collect(),
        Mark {
            uid_validity: old.uid_validity,
            last_uid: top,
            highest_modseq,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::types::uid;

    fn v(n: u32) -> UidValidity {
        UidValidity::new(n).unwrap()
    }

    fn status(validity: u32, uid_next: Option<u32>, modseq: Option<u64>) -> MailboxStatus {
        MailboxStatus {
            uid_validity: v(validity),
            exists: 3,
            uid_next,
            highest_modseq: modseq,
        }
    }

    fn mark(validity: u32, last: u32, modseq: Option<u64>) -> Mark {
        Mark {
            uid_validity: v(validity),
            last_uid: last,
            highest_modseq: modseq,
        }
    }

    fn set(v: &[u32]) -> UidSet {
        v.iter().map(|&n| uid(n)).collect()
    }

    #[test]
    fn what_a_pass_reads() {
        let st = status(7, Some(20), Some(500));
        let cases = [
            (None, true, (Scope::All, false)),
            (Some(mark(6, 10, Some(100))), true, (Scope::All, true)),
            (
                Some(mark(7, 10, Some(100))),
                true,
                (
                    Scope::Above {
                        last: 10,
                        changed_since: Some(100),
                    },
                    false,
                ),
            ),
            // Without CONDSTORE, flag changes cannot be asked for.
            (
                Some(mark(7, 10, Some(100))),
                false,
                (
                    Scope::Above {
                        last: 10,
                        changed_since: None,
                    },
                    false,
                ),
            ),
            (
                Some(mark(7, 10, None)),
                true,
                (
                    Scope::Above {
                        last: 10,
                        changed_since: None,
                    },
                    false,
                ),
            ),
        ];
        for (m, condstore, want) in cases {
            assert_eq!(scope(m, &st, condstore), want, "{m:?} {condstore}");
        }
    }

    #[test]
    fn the_mark_after_a_full_read() {
        let cases = [
            // UIDNEXT says how far the server has counted, found or not.
            (
                status(7, Some(20), Some(5)),
                set(&[3, 9]),
                mark(7, 19, Some(5)),
            ),
            // A UIDNEXT below a found UID is not believed.
            (status(7, Some(5), None), set(&[3, 9]), mark(7, 9, None)),
            (status(7, None, None), set(&[3, 9]), mark(7, 9, None)),
            (status(7, None, None), set(&[]), mark(7, 0, None)),
        ];
        for (st, found, want) in cases {
            assert_eq!(after_all(&st, &found), want, "{st:?} {found:?}");
        }
    }

    #[test]
    fn the_mark_after_a_read_above_it() {
        let old = mark(7, 10, Some(100));
        type Case = (UidSet, Vec<(u32, u64)>, UidSet, Mark);
        let cases: Vec<Case> = vec![
            // `11:*` with nothing new still answers the highest UID.
            (set(&[10]), vec![], set(&[]), mark(7, 10, Some(100))),
            (
                set(&[11, 14]),
                vec![],
                set(&[11, 14]),
                mark(7, 14, Some(100)),
            ),
            // Older messages whose flags changed are decided again; new
            // ones that changed are there once.
            (
                set(&[12]),
                vec![(3, 130), (12, 140)],
                set(&[3, 12]),
                mark(7, 12, Some(140)),
            ),
            (set(&[]), vec![(4, 90)], set(&[4]), mark(7, 10, Some(100))),
        ];
        for (fresh, changed, want_set, want_mark) in cases {
            let changed: Vec<(Uid, u64)> = changed.into_iter().map(|(u, m)| (uid(u), m)).collect();
            assert_eq!(
                after_new(old, &fresh, &changed),
                (want_set, want_mark),
                "{fresh:?} {changed:?}"
            );
        }
    }
}
