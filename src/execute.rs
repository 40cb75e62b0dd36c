//! Carries out a [`MailboxPlan`] on the session that read it: resolves rule
//! paths and SPECIAL-USE targets to server names, creates missing folders,
//! then sends the plan's grouped operations. Safe moves: UID MOVE (RFC 6851)
//! where offered, else UID COPY, \Deleted and UID EXPUNGE of exactly those
//! UIDs (RFC 4315); never a plain EXPUNGE or CLOSE, so messages someone else
//! marked \Deleted are not touched.

use std::collections::{BTreeSet, HashMap};

use crate::imap::conn::{Access, Conn, ImapError, ListEntry};
use crate::imap::types::{Hierarchy, Uid, quoted};
use crate::plan::{MailboxPlan, Operation};
use crate::rules::{Flag, Target, same_mailbox};
use crate::state::{Intent, State, StateError, Status};

/// Why a mailbox's plan could not be carried out to the end.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Imap(#[from] ImapError),
    /// An intent that cannot be recorded is not sent.
    #[error(transparent)]
    State(#[from] StateError),
}

/// The account's folders as the server has them.
pub struct Folders {
    hierarchy: Hierarchy,
    existing: BTreeSet<String>,
    /// SPECIAL-USE attribute (`\Archive`) -> mailbox name.
    special: HashMap<String, String>,
}

impl Folders {
    pub async fn load(conn: &mut Conn) -> Result<Folders, ImapError> {
        let separator = conn.separator().await?;
        let entries: Vec<ListEntry> = conn.list_all().await?;
        // A \Noselect or \NonExistent name (RFC 5258) is only a level of
        // the hierarchy; nothing can be moved into it.
        let selectable = |e: &&ListEntry| {
            !e.attributes.iter().any(|a| {
                a.eq_ignore_ascii_case("\\Noselect") || a.eq_ignore_ascii_case("\\NonExistent")
            })
        };
        let names: Vec<String> = entries
            .iter()
            .filter(selectable)
            .map(|e| e.name.clone())
            .collect();
        let mut special = HashMap::new();
        for e in &entries {
            for a in &e.attributes {
                special
                    .entry(a.to_ascii_lowercase())
                    .or_insert_with(|| e.name.clone());
            }
        }
        Ok(Folders {
            hierarchy: Hierarchy::infer(separator, &names),
            existing: names.into_iter().collect(),
            special,
        })
    }

    pub fn exists(&self, name: &str) -> bool {
        self.existing.iter().any(|n| same_mailbox(name, n))
    }

    /// The server's name for a target.
    pub fn resolve(&self, target: &Target) -> Result<String, String> {
        match target {
            Target::Folder(path) => self.hierarchy.server_name(path),
            Target::SpecialUse {
                attribute,
                fallback,
            } => match self.special.get(&attribute.to_ascii_lowercase()) {
                Some(name) => Ok(name.clone()),
                None => self.hierarchy.server_name(fallback),
            },
            Target::Expunge => Err("expunged messages have no folder".into()),
        }
    }

    /// Makes sure `name` exists: CREATE and SUBSCRIBE it when missing
    /// (RFC 3501 6.3.3 creates missing parents too).
    async fn ensure(&mut self, conn: &mut Conn, name: &str, create: bool) -> Result<(), String> {
        if self.exists(name) {
            return Ok(());
        }
        if !create {
            return Err(format!(
                "folder {name} does not exist and create_folders is false"
            ));
        }
        conn.create(name)
            .await
            .map_err(|e| format!("cannot create folder {name}: {e}"))?;
        if let Err(e) = conn.subscribe(name).await {
            tracing::warn!(folder = name, error = %e, "created but could not subscribe");
        }
        self.existing.insert(name.to_string());
        Ok(())
    }
}

/// What happened, for the user.
#[derive(Debug, Default)]
pub struct Report {
    /// One line per operation done.
    pub done: Vec<String>,
    /// Messages left in place because an operation on them failed.
    pub failed: BTreeSet<Uid>,
    pub problems: Vec<String>,
}

impl Report {
    fn fail(&mut self, uids: &[Uid], why: String) {
        self.failed.extend(uids.iter().copied());
        self.problems.push(why);
    }
}

/// An error of the connection (not of one command) ends the mailbox.
fn fatal(e: ImapError) -> Result<String, ImapError> {
    match e {
        ImapError::Refused { .. } | ImapError::Encode(_) => Ok(e.to_string()),
        e => Err(e),
    }
}

fn n(uids: &[Uid]) -> String {
    format!(
        "{} message{}",
        uids.len(),
        if uids.len() == 1 { "" } else { "s" }
    )
}

/// Marks `uids` \Deleted and removes exactly them, where UIDPLUS allows;
/// without it they stay marked and the report says so.
pub async fn remove(conn: &mut Conn, uids: &[Uid], report: &mut Report) -> Result<bool, ImapError> {
    if let Err(e) = conn.uid_store(uids, true, &[Flag::Deleted]).await {
        let why = fatal(e)?;
        report.fail(uids, format!("marking {} \\Deleted: {why}", n(uids)));
        return Ok(false);
    }
    if !conn.has("UIDPLUS") {
        report.problems.push(format!(
            "the server lacks UIDPLUS: {} marked \\Deleted but not expunged (a plain EXPUNGE would also remove messages others marked)",
            n(uids)
        ));
        return Ok(true);
    }
    if let Err(e) = conn.uid_expunge(uids).await {
        let why = fatal(e)?;
        report.fail(uids, format!("UID EXPUNGE of {}: {why}", n(uids)));
        return Ok(false);
    }
    Ok(true)
}

/// Message-IDs already in `folder`, among `wanted`: a copy is not made
/// twice when the pass runs again.
pub async fn present_in(
    conn: &mut Conn,
    folder: &str,
    wanted: &[&str],
) -> Result<BTreeSet<String>, ImapError> {
    conn.open(folder, Access::ReadOnly).await?;
    let mut found = BTreeSet::new();
    for id in wanted {
        let Ok(q) = quoted("Message-ID", &format!("<{id}>")) else {
            continue;
        };
        if !conn
            .uid_search(&format!("HEADER Message-ID {q}"))
            .await?
            .is_empty()
        {
            found.insert(id.to_string());
        }
    }
    Ok(found)
}

/// Fault injection for the crash tests: with `MAILWARDEN_FAULT` set to
/// `kill-after-intent:ACTION` or `kill-after-outcome:ACTION` (ACTION being
/// `move`, `copy`, `flag`, `unflag` or `expunge`), the process kills itself
/// with SIGKILL right after that journal write, as a crash there would.
/// Unset, it does nothing.
fn fault_point(moment: &str, action: &str) {
    static FAULT: std::sync::LazyLock<Option<String>> =
        std::sync::LazyLock::new(|| std::env::var("MAILWARDEN_FAULT").ok());
    if FAULT.as_deref() == Some(&format!("{moment}:{action}")) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &std::process::id().to_string()])
            .status();
        std::process::abort();
    }
}

/// Records one intent per message of an operation, before it is sent.
struct Journal<'a> {
    state: &'a State,
    plan: &'a MailboxPlan,
    /// UID -> (Message-ID, deciding rule).
    about: HashMap<Uid, (Option<String>, Option<String>)>,
}

impl Journal<'_> {
    fn intend(
        &mut self,
        action: &str,
        target: Option<String>,
        uids: &[Uid],
    ) -> Result<Vec<i64>, StateError> {
        let intents: Vec<Intent> = uids
            .iter()
            .map(|uid| {
                let (message_id, rule) = self.about.get(uid).cloned().unwrap_or_default();
                Intent {
                    account: self.plan.account.clone(),
                    mailbox: self.plan.mailbox.clone(),
                    uid_validity: self.plan.uid_validity,
                    uid: *uid,
                    message_id,
                    rule,
                    action: action.to_string(),
                    target: target.clone(),
                }
            })
            .collect();
        let ids = self.state.intend(&intents)?;
        fault_point("kill-after-intent", action);
        Ok(ids)
    }

    fn finish(
        &mut self,
        ids: &[i64],
        action: &str,
        result: &Result<(), String>,
    ) -> Result<(), StateError> {
        match result {
            Ok(()) => self.state.finish(ids, Status::Done, None)?,
            Err(why) => self.state.finish(ids, Status::Failed, Some(why))?,
        }
        fault_point("kill-after-outcome", action);
        Ok(())
    }

    /// Sends one command for `uids` between its intent and its outcome.
    /// `words` says what happened: what was done, or from the refusal's
    /// reason why the messages stay. A refusal is reported against `uids`
    /// and the pass goes on; a broken connection ends it.
    async fn send(
        &mut self,
        report: &mut Report,
        (action, target): (&str, Option<String>),
        uids: &[Uid],
        command: impl Future<Output = Result<(), ImapError>>,
        words: impl FnOnce(Result<(), &str>) -> String,
    ) -> Result<(), ExecError> {
        let ids = self.intend(action, target, uids)?;
        let result = match command.await {
            Ok(()) => {
                report.done.push(words(Ok(())));
                Ok(())
            }
            Err(e) => {
                let why = fatal(e)?;
                report.fail(uids, words(Err(&why)));
                Err(why)
            }
        };
        self.finish(&ids, action, &result)?;
        Ok(())
    }
}

/// Sends the plan's operations, journaling each before it is sent and
/// after the server answers. The mailbox must be open read-write.
pub async fn execute(
    conn: &mut Conn,
    plan: &MailboxPlan,
    folders: &mut Folders,
    create_folders: bool,
    state: &State,
) -> Result<Report, ExecError> {
    let mut report = Report::default();
    let mut journal = Journal {
        state,
        plan,
        about: plan
            .entries
            .iter()
            .map(|e| {
                let rule = e.outcome.as_ref().ok().and_then(|d| d.rule.clone());
                (e.uid, (e.message_id.clone(), rule))
            })
            .collect(),
    };
    let message_id: HashMap<Uid, &str> = plan
        .entries
        .iter()
        .filter_map(|e| Some((e.uid, e.message_id.as_deref()?)))
        .collect();
    // UIDs to mark \Deleted and expunge at the end, and what to report
    // once that worked.
    let mut removals: Vec<Uid> = Vec::new();
    let mut removal_ids: Vec<i64> = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    for op in plan.operations() {
        match &op {
            Operation::AddFlags { flags, uids } | Operation::RemoveFlags { flags, uids } => {
                let add = matches!(op, Operation::AddFlags { .. });
                let list = flags.iter().map(Flag::imap).collect::<Vec<_>>().join(" ");
                let action = if add { "flag" } else { "unflag" };
                journal
                    .send(
                        &mut report,
                        (action, Some(list)),
                        uids,
                        conn.uid_store(uids, add, flags),
                        |r| match r {
                            Ok(()) => op.to_string(),
                            Err(why) => format!("{op}: {why}"),
                        },
                    )
                    .await?;
            }
            Operation::Copy { folder, uids } => {
                let name = match folders.resolve(&Target::Folder(folder.clone())) {
                    Ok(name) => name,
                    Err(why) => {
                        report.fail(uids, format!("{op}: {why}"));
                        continue;
                    }
                };
                if let Err(why) = folders.ensure(conn, &name, create_folders).await {
                    report.fail(uids, format!("{op}: {why}; the messages stay"));
                    continue;
                }
                let ids: Vec<&str> = uids
                    .iter()
                    .filter_map(|u| message_id.get(u).copied())
                    .collect();
                let present = present_in(conn, &name, &ids).await?;
                let status = conn.open(&plan.mailbox, Access::ReadWrite).await?;
                if status.uid_validity != plan.uid_validity {
                    return Err(ImapError::Protocol(format!(
                        "UIDVALIDITY of {} changed during the pass; nothing more is done there",
                        plan.mailbox
                    ))
                    .into());
                }
                let todo: Vec<Uid> = uids
                    .iter()
                    .copied()
                    .filter(|u| message_id.get(u).is_none_or(|id| !present.contains(*id)))
                    .collect();
                if todo.len() < uids.len() {
                    report.done.push(format!(
                        "{} already in {folder}: not copied again",
                        n(&uids[..uids.len() - todo.len()])
                    ));
                }
                if todo.is_empty() {
                    continue;
                }
                journal
                    .send(
                        &mut report,
                        ("copy", Some(name.clone())),
                        &todo,
                        conn.uid_copy(&todo, &name),
                        |r| match r {
                            Ok(()) => format!("copied {} to {folder}", n(&todo)),
                            Err(why) => format!("copy to {folder}: {why}"),
                        },
                    )
                    .await?;
            }
            Operation::Move { target, uids } => {
                let name = match folders.resolve(target) {
                    Ok(name) => name,
                    Err(why) => {
                        report.fail(uids, format!("{op}: {why}; the messages stay"));
                        continue;
                    }
                };
                if let Err(why) = folders.ensure(conn, &name, create_folders).await {
                    report.fail(uids, format!("{op}: {why}; the messages stay"));
                    continue;
                }
                if conn.has("MOVE") {
                    journal
                        .send(
                            &mut report,
                            ("move", Some(name.clone())),
                            uids,
                            conn.uid_move(uids, &name),
                            |r| match r {
                                Ok(()) => format!("moved {} to {name}", n(uids)),
                                Err(why) => format!("move to {name}: {why}; the messages stay"),
                            },
                        )
                        .await?;
                    continue;
                }
                let ids = journal.intend("move", Some(name.clone()), uids)?;
                // No MOVE: copy now, remove later. Only a confirmed copy is
                // removed, and all removals share one UID EXPUNGE, because
                // each expunging command can cost the server a pass over
                // the whole mailbox.
                if let Err(e) = conn.uid_copy(uids, &name).await {
                    let why = fatal(e)?;
                    report.fail(uids, format!("copy to {name}: {why}; the messages stay"));
                    journal.finish(&ids, "move", &Err(why))?;
                    continue;
                }
                // Done only once the originals are gone (below).
                removal_ids.extend(ids);
                removals.extend_from_slice(uids);
                pending.push(if conn.has("UIDPLUS") {
                    format!("moved {} to {name} (COPY, then UID EXPUNGE: the server lacks MOVE)", n(uids))
                } else {
                    format!("copied {} to {name} and marked them \\Deleted (the server lacks MOVE and UIDPLUS)", n(uids))
                });
            }
            Operation::Expunge { uids } => {
                removal_ids.extend(journal.intend("expunge", None, uids)?);
                removals.extend_from_slice(uids);
                pending.push(if conn.has("UIDPLUS") {
                    format!("deleted {} for good", n(uids))
                } else {
                    format!("marked {} \\Deleted (the server lacks UIDPLUS)", n(uids))
                });
            }
        }
    }
    if !removals.is_empty() {
        let result = if remove(conn, &removals, &mut report).await? {
            report.done.extend(pending);
            Ok(())
        } else {
            Err("the originals could not be removed".to_string())
        };
        journal.finish(&removal_ids, "move", &result)?;
    }
    Ok(report)
}
