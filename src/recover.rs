//! Recovery: intents the journal holds without an outcome (the process
//! stopped between recording an action and hearing the server's answer) are
//! settled against the server before anything else is sent. A COPY is never
//! repeated blindly: what the server shows decides.

use std::collections::{BTreeMap, BTreeSet};

use crate::execute::{ExecError, Report, present_in, remove};
use crate::imap::conn::{Access, Conn};
use crate::imap::types::{Uid, UidValidity};
use crate::state::{Entry, State, Status};

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

/// Settles every unfinished intent of `account`. Mailbox switches are per
/// mailbox and per target folder, not per message, so recovering from a
/// crash in the middle of a large move stays quick.
pub async fn reconcile(
    conn: &mut Conn,
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
    for ((mailbox, uid_validity), entries) in by_mailbox {
        let ids: Vec<i64> = entries.iter().map(|e| e.id).collect();
        let status = match conn.open(&mailbox, Access::ReadWrite).await {
            Ok(s) => s,
            Err(e) => {
                state.finish(
                    &ids,
                    Status::Abandoned,
                    Some(&format!("source mailbox: {e}")),
                )?;
                out.abandoned += ids.len();
                continue;
            }
        };
        if status.uid_validity != UidValidity(uid_validity) {
            tracing::warn!(%mailbox, "UIDVALIDITY changed since the unfinished actions; they are dropped");
            state.finish(&ids, Status::Abandoned, Some("UIDVALIDITY changed"))?;
            out.abandoned += ids.len();
            continue;
        }
        // Which of these UIDs are still in the source?
        let set: Vec<Uid> = entries.iter().map(|e| Uid(e.uid)).collect();
        let still: BTreeSet<Uid> = conn
            .uid_search_among(&set, "ALL")
            .await?
            .into_iter()
            .collect();
        // Which Message-IDs are in their target, one visit per target.
        let mut wanted: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for e in &entries {
            if let (Some(t), Some(id)) = (&e.target, &e.message_id)
                && (e.action == "move" || e.action == "copy")
            {
                wanted.entry(t.as_str()).or_default().push(id.as_str());
            }
        }
        let mut found: BTreeSet<(String, String)> = BTreeSet::new();
        for (target, ids) in &wanted {
            // A target that cannot be read holds none of them.
            if let Ok(present) = present_in(conn, target, ids).await {
                found.extend(present.into_iter().map(|id| (target.to_string(), id)));
            }
        }
        if !wanted.is_empty() {
            conn.open(&mailbox, Access::ReadWrite).await?;
        }
        // Decide each intent; originals to remove are removed together.
        let mut removals: Vec<(i64, Uid)> = Vec::new();
        for e in &entries {
            let here = still.contains(&Uid(e.uid));
            let in_target = match (&e.target, &e.message_id) {
                (Some(t), Some(id)) if e.action == "move" || e.action == "copy" => {
                    Some(found.contains(&(t.clone(), id.clone())))
                }
                _ => None,
            };
            let outcome = match (e.action.as_str(), here, in_target) {
                ("move", false, Some(true)) | ("copy", _, Some(true)) | ("expunge", false, _) => {
                    out.done += 1;
                    Some((Status::Done, "found complete after a restart"))
                }
                // The copy exists (or the removal was intended); only the
                // original is left to remove.
                ("move", true, Some(true)) | ("expunge", true, _) => {
                    removals.push((e.id, Uid(e.uid)));
                    None
                }
                ("move", false, _) => {
                    out.abandoned += 1;
                    Some((
                        Status::Abandoned,
                        "the message left the mailbox by other means",
                    ))
                }
                _ => {
                    out.abandoned += 1;
                    Some((
                        Status::Abandoned,
                        "not done before the restart; decided again by the next pass",
                    ))
                }
            };
            if let Some((status, detail)) = outcome {
                state.finish(&[e.id], status, Some(detail))?;
            }
        }
        if !removals.is_empty() {
            let uids: Vec<Uid> = removals.iter().map(|(_, u)| *u).collect();
            let ids: Vec<i64> = removals.iter().map(|(id, _)| *id).collect();
            let mut report = Report::default();
            if remove(conn, &uids, &mut report).await? {
                out.completed += ids.len();
                state.finish(
                    &ids,
                    Status::Done,
                    Some("finished after a restart: the original removed"),
                )?;
            } else {
                out.abandoned += ids.len();
                state.finish(
                    &ids,
                    Status::Abandoned,
                    Some("after a restart the original could not be removed"),
                )?;
            }
        }
    }
    Ok(out)
}
