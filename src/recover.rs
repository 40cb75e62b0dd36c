//! Recovery: intents the journal holds without an outcome (the process
//! stopped between recording an action and hearing the server's answer) are
//! settled against the server before anything else is sent. A COPY is never
//! repeated blindly: what the server shows decides ([`settle`], pure). The
//! journal holds server names, so nothing here is resolved again.

use std::collections::{BTreeMap, BTreeSet};

use crate::execute::{ExecError, present_in};
use crate::imap::command::{SearchKey, StoreMode};
use crate::imap::types::{Capability, Mailbox, Uid, UidSet, UidValidity};
use crate::imap::{Access, Session};
use crate::rules::Flag;
use crate::state::{Action, Entry, State, Status};

/// What happened to the unfinished intents of an account.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Found complete on the server.
    pub done: usize,
    /// Completed now (a copy that was made, whose original is removed now).
    pub completed: usize,
    /// Not done; the next pass decides these messages afresh.
    pub abandoned: usize,
}

/// What to do with one unfinished intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// The server shows it done.
    Done,
    /// The copy exists (or the removal was intended); only the original is
    /// left to remove.
    RemoveOriginal,
    /// Not done; the next pass decides the message afresh.
    Abandoned(&'static str),
}

/// Decides an unfinished intent from what the server shows: whether the
/// message is still in its source mailbox, and, for copies and moves,
/// whether its Message-ID is in the target (`None`: not known, e.g. no
/// Message-ID).
pub fn settle(action: Action, in_source: bool, in_target: Option<bool>) -> Settlement {
    match (action, in_source, in_target) {
        (Action::Move, false, Some(true))
        | (Action::Copy, _, Some(true))
        | (Action::Expunge, false, _) => Settlement::Done,
        (Action::Move, true, Some(true)) | (Action::Expunge, true, _) => Settlement::RemoveOriginal,
        (Action::Move, false, _) => {
            Settlement::Abandoned("the message left the mailbox by other means")
        }
        _ => Settlement::Abandoned("not done before the restart; decided again by the next pass"),
    }
}

/// Settles every unfinished intent of `account`. Mailbox switches are per
/// mailbox and per target folder, not per message, so recovering from a
/// crash in the middle of a large move stays quick.
pub async fn reconcile(
    session: &mut Session,
    state: &State,
    account: &str,
) -> Result<Recovered, ExecError> {
    let mut out = Recovered::default();
    let mut by_mailbox: BTreeMap<(String, u32), Vec<Entry>> = BTreeMap::new();
    for e in state.unfinished(account)? {
        by_mailbox
            .entry((e.mailbox.clone(), e.uid_validity))
            .or_default()
            .push(e);
    }
    for ((name, uid_validity), entries) in by_mailbox {
        let mailbox = Mailbox::verbatim(name);
        let ids: Vec<i64> = entries.iter().map(|e| e.id).collect();
        let status = match session.open(&mailbox, Access::ReadWrite).await {
            Ok(s) => s,
            Err(e) if !e.ends_session() => {
                state.finish(
                    &ids,
                    Status::Abandoned,
                    Some(&format!("source mailbox: {e}")),
                )?;
                out.abandoned += ids.len();
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if UidValidity::new(uid_validity) != Some(status.uid_validity) {
            tracing::warn!(%mailbox, "UIDVALIDITY changed since the unfinished actions; they are dropped");
            state.finish(&ids, Status::Abandoned, Some("UIDVALIDITY changed"))?;
            out.abandoned += ids.len();
            continue;
        }
        // Which of these UIDs are still in the source?
        let set: UidSet = entries.iter().filter_map(|e| Uid::new(e.uid)).collect();
        let still = session.search_among(&set, &SearchKey::All).await?;
        // Which Message-IDs are in their target, one visit per target.
        let moves = |e: &Entry| matches!(e.action, Action::Move | Action::Copy);
        let mut wanted: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for e in entries.iter().filter(|e| moves(e)) {
            if let (Some(t), Some(id)) = (&e.target, &e.message_id) {
                wanted.entry(t.as_str()).or_default().push(id.as_str());
            }
        }
        let mut found: BTreeSet<(String, String)> = BTreeSet::new();
        for (target, ids) in &wanted {
            match present_in(session, &Mailbox::verbatim(*target), ids).await {
                Ok(present) => found.extend(present.into_iter().map(|id| (target.to_string(), id))),
                // A target that cannot be read holds none of them.
                Err(e) if !e.ends_session() => {}
                Err(e) => return Err(e.into()),
            }
        }
        if !wanted.is_empty() {
            session.open(&mailbox, Access::ReadWrite).await?;
        }
        // Decide each intent; originals to remove are removed together.
        let mut removals: Vec<(i64, Uid)> = Vec::new();
        for e in &entries {
            let Some(uid) = Uid::new(e.uid) else { continue };
            let in_target = match (&e.target, &e.message_id) {
                (Some(t), Some(id)) if moves(e) => Some(found.contains(&(t.clone(), id.clone()))),
                _ => None,
            };
            match settle(e.action, still.contains(uid), in_target) {
                Settlement::Done => {
                    out.done += 1;
                    state.finish(
                        &[e.id],
                        Status::Done,
                        Some("found complete after a restart"),
                    )?;
                }
                Settlement::RemoveOriginal => removals.push((e.id, uid)),
                Settlement::Abandoned(why) => {
                    out.abandoned += 1;
                    state.finish(&[e.id], Status::Abandoned, Some(why))?;
                }
            }
        }
        if !removals.is_empty() {
            let uids: UidSet = removals.iter().map(|(_, u)| *u).collect();
            let ids: Vec<i64> = removals.iter().map(|(id, _)| *id).collect();
            let mut removed = session.store(&uids, StoreMode::Add, &[Flag::Deleted]).await;
            if removed.is_ok() && session.has(Capability::UidPlus) {
                removed = session.expunge(&uids).await.map(|()| uids.clone());
            }
            match removed {
                Ok(_) => {
                    out.completed += ids.len();
                    state.finish(
                        &ids,
                        Status::Done,
                        Some("finished after a restart: the original removed"),
                    )?;
                }
                Err(e) if !e.ends_session() => {
                    out.abandoned += ids.len();
                    state.finish(
                        &ids,
                        Status::Abandoned,
                        Some("after a restart the original could not be removed"),
                    )?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfinished_actions_are_settled_by_what_the_server_shows() {
        use Settlement::*;
        let cases = [
            // A move the server finished.
            (Action::Move, false, Some(true), Done),
            // A copy made, its original not yet removed (no MOVE).
            (Action::Move, true, Some(true), RemoveOriginal),
            // Not copied: decided again, never copied blindly.
            (Action::Move, true, Some(false), Abandoned("")),
            (Action::Move, true, None, Abandoned("")),
            // Gone from the source, not in the target: someone else.
            (Action::Move, false, Some(false), Abandoned("")),
            (Action::Copy, true, Some(true), Done),
            (Action::Copy, false, Some(true), Done),
            (Action::Copy, true, Some(false), Abandoned("")),
            (Action::Expunge, false, None, Done),
            (Action::Expunge, true, None, RemoveOriginal),
            // Flags are decided again: a second STORE is harmless.
            (Action::Flag, true, None, Abandoned("")),
            (Action::Unflag, false, None, Abandoned("")),
        ];
        for (action, here, there, want) in cases {
            let got = settle(action, here, there);
            let same = match (got, want) {
                (Abandoned(_), Abandoned(_)) => true,
                (g, w) => g == w,
            };
            assert!(
                same,
                "{action:?} in source {here} in target {there:?}: {got:?}"
            );
        }
    }
}
