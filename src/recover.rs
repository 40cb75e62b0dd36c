//! Recovery: intents the journal holds without an outcome (the process
//! stopped between recording an action and hearing the server's answer) are
//! settled against the server before anything else is sent. A COPY is never
//! repeated blindly: what the server shows decides.

use std::collections::BTreeMap;

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

/// Settles every unfinished intent of `account`. Leaves no mailbox selected
/// that the caller relies on.
pub async fn reconcile(
    conn: &mut Conn,
    state: &State,
    account: &str,
) -> Result<Recovered, ExecError> {
    let mut out = Recovered::default();
    let open = state.unfinished(account)?;
    let mut by_mailbox: BTreeMap<(String, u32), Vec<Entry>> = BTreeMap::new();
    for e in open {
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
        let still = conn
            .uid_search(&format!(
                "UID {}",
                crate::imap::types::uid_sets(&set, 7000).join(",")
            ))
            .await?;
        for e in entries {
            let here = still.contains(&Uid(e.uid));
            let in_target = match (&e.target, &e.message_id) {
                (Some(t), Some(id)) if e.action == "move" || e.action == "copy" => {
                    let found = present_in(conn, t, &[id.as_str()]).await;
                    conn.open(&mailbox, Access::ReadWrite).await?;
                    match found {
                        Ok(f) => Some(!f.is_empty()),
                        Err(_) => Some(false),
                    }
                }
                _ => None,
            };
            let (status, detail) = match (e.action.as_str(), here, in_target) {
                ("move", false, Some(true)) | ("copy", _, Some(true)) | ("expunge", false, _) => {
                    out.done += 1;
                    (Status::Done, "found complete after a restart")
                }
                ("move", true, Some(true)) | ("expunge", true, _) => {
                    // The copy exists; only the original is left to remove.
                    let mut report = Report::default();
                    if remove(conn, &[Uid(e.uid)], &mut report).await? {
                        out.completed += 1;
                        (
                            Status::Done,
                            "finished after a restart: the original removed",
                        )
                    } else {
                        out.abandoned += 1;
                        (
                            Status::Abandoned,
                            "after a restart the original could not be removed",
                        )
                    }
                }
                ("move", false, _) => {
                    out.abandoned += 1;
                    (
                        Status::Abandoned,
                        "the message left the mailbox by other means",
                    )
                }
                _ => {
                    out.abandoned += 1;
                    (
                        Status::Abandoned,
                        "not done before the restart; decided again by the next pass",
                    )
                }
            };
            state.finish(&[e.id], status, Some(detail))?;
        }
    }
    Ok(out)
}
