//! Carries out a mailbox's steps (`plan::Step`) on the session that read
//! it: creates missing folders, sends each step's commands, and journals
//! every action before it is sent and, message by message, as the server
//! confirmed it. Safe moves: UID MOVE (RFC 6851) where offered, else UID
//! COPY, \Deleted and UID EXPUNGE of exactly those UIDs (RFC 4315); never a
//! plain EXPUNGE or CLOSE, so messages someone else marked \Deleted are not
//! touched. A message counts as moved when the server says so for it
//! (COPYUID), or when it is gone from the source and found in the target.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::imap::command::{SearchKey, StoreMode, is_quotable};
use crate::imap::folders::Folders;
use crate::imap::response::Code;
use crate::imap::session::Copied;
use crate::imap::types::{Capability, Mailbox, Uid, UidSet, UidValidity};
use crate::imap::{Access, ImapError, Session};
use crate::plan::{MailboxPlan, Operation, Step, flag_list, messages};
use crate::rules::Flag;
use crate::state::{Action, Intent, Outcome, State, StateError, Status};

/// Why a mailbox's steps could not be carried out to the end.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Imap(#[from] ImapError),
    /// An intent that cannot be recorded is not sent.
    #[error(transparent)]
    State(#[from] StateError),
}

/// One line of what was done, `{before}{N messages}{after}`: kept in parts
/// so that the lines of a mailbox carried out in slices add up to one line
/// per kind and destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    before: String,
    count: usize,
    after: String,
}

impl Done {
    pub fn new(before: impl Into<String>, count: usize, after: impl Into<String>) -> Done {
        Done {
            before: before.into(),
            count,
            after: after.into(),
        }
    }

    /// What an operation did, with what the server confirmed: `count` of
    /// its messages.
    fn of(op: &Operation, count: usize) -> Done {
        match op {
            Operation::AddFlags { flags, .. } => {
                Done::new(format!("flag {} on ", flag_list(flags)), count, "")
            }
            Operation::RemoveFlags { flags, .. } => {
                Done::new(format!("unflag {} on ", flag_list(flags)), count, "")
            }
            Operation::Copy { folder, .. } => Done::new("copy ", count, format!(" to {folder}")),
            Operation::Move { target, .. } => Done::new("move ", count, format!(" to {target}")),
            Operation::Expunge { .. } => Done::new("delete ", count, " for good"),
        }
    }
}

impl std::fmt::Display for Done {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}{}", self.before, messages(self.count), self.after)
    }
}

/// What happened, for the user.
#[derive(Debug, Default)]
pub struct Report {
    /// One line per operation done, with what the server confirmed.
    pub done: Vec<Done>,
    /// Messages left in place because an operation on them failed.
    pub failed: BTreeSet<Uid>,
    pub problems: Vec<String>,
    /// Messages another client removed before the action reached them.
    pub gone: BTreeSet<Uid>,
}

impl Report {
    fn fail(&mut self, uids: &UidSet, why: String) {
        self.failed.extend(uids.iter());
        self.problems.push(why);
    }

    fn done(&mut self, line: Done) {
        match self
            .done
            .iter_mut()
            .find(|d| d.before == line.before && d.after == line.after)
        {
            Some(d) => d.count += line.count,
            None => self.done.push(line),
        }
    }

    /// Adds what a later slice of the same mailbox did.
    pub fn merge(&mut self, other: Report) {
        for line in other.done {
            self.done(line);
        }
        self.failed.extend(other.failed);
        self.gone.extend(other.gone);
        self.problems.extend(other.problems);
    }
}

/// The refusal of one command as a reason; an error that ends the session
/// is passed on.
fn refusal(e: ImapError) -> Result<String, ImapError> {
    if e.ends_session() {
        Err(e)
    } else {
        Ok(e.to_string())
    }
}

/// Which Message-IDs among `wanted` are in `folder`: a copy is not made
/// twice, and recovery finds what a crash left done. Opens `folder`
/// read-only; the caller opens its own mailbox again.
pub async fn present_in(
    session: &mut Session,
    folder: &Mailbox,
    wanted: &[&str],
) -> Result<BTreeSet<String>, ImapError> {
    let keys: Vec<SearchKey> = wanted
        .iter()
        .map(|id| format!("<{id}>"))
        .filter(|id| is_quotable(id))
        .map(|id| SearchKey::Header("Message-ID".into(), id))
        .collect();
    let mut found = BTreeSet::new();
    if keys.is_empty() {
        return Ok(found);
    }
    session.open(folder, Access::ReadOnly).await?;
    // Alternatives ORed into searches of a few KB each; the matches'
    // Message-IDs then say which were found.
    let mut uids = Vec::new();
    for group in or_groups(keys, 4000) {
        uids.extend(session.search(&group).await?.iter());
    }
    let items = crate::imap::command::FetchItems {
        header_fields: vec!["MESSAGE-ID".into()],
        ..Default::default()
    };
    let wanted: BTreeSet<&str> = wanted.iter().copied().collect();
    session
        .fetch(&UidSet::new(uids), &items, |d| {
            let header =
                String::from_utf8_lossy(d.header.as_deref().unwrap_or_default()).into_owned();
            let id = header
                .split_once(':')
                .map(|(_, v)| v.trim().trim_start_matches('<').trim_end_matches('>'))
                .unwrap_or_default();
            if wanted.contains(id) {
                found.insert(id.to_string());
            }
        })
        .await?;
    Ok(found)
}

/// `OR a OR b c`, in groups whose written key is at most `max` long.
fn or_groups(keys: Vec<SearchKey>, max: usize) -> Vec<SearchKey> {
    let mut groups: Vec<Vec<SearchKey>> = Vec::new();
    let mut len = 0;
    for k in keys {
        let l = k.render().map_or(max, |t| t.len() + 4);
        if groups.is_empty() || len + l > max {
            groups.push(Vec::new());
            len = 0;
        }
        len += l;
        groups.last_mut().expect("pushed").push(k);
    }
    groups
        .into_iter()
        .filter_map(|g| {
            g.into_iter()
                .rev()
                .reduce(|acc, k| SearchKey::Or(Box::new(k), Box::new(acc)))
        })
        .collect()
}

/// Leaves out of every copy step the messages whose destination already
/// holds one with the same Message-ID: the dry run shows, and `run` does,
/// the same. Reads only (EXAMINE and SEARCH); the source mailbox is opened
/// again with `access` afterwards.
pub async fn skip_present_copies(
    session: &mut Session,
    plan: &MailboxPlan,
    steps: &mut [Step],
    access: Access,
) -> Result<(), ImapError> {
    let ids: HashMap<Uid, &str> = plan
        .entries
        .iter()
        .filter_map(|e| Some((e.uid, e.message_id.as_deref()?)))
        .collect();
    let mut looked = false;
    for step in steps.iter_mut() {
        let (Operation::Copy { uids, .. }, Ok(Some(dest))) = (&step.op, &step.to) else {
            continue;
        };
        if dest.create {
            continue;
        }
        let wanted: Vec<&str> = uids.iter().filter_map(|u| ids.get(&u).copied()).collect();
        if wanted.is_empty() {
            continue;
        }
        let present = present_in(session, &dest.mailbox, &wanted).await?;
        looked = true;
        let skip: UidSet = uids
            .iter()
            .filter(|u| ids.get(u).is_some_and(|id| present.contains(*id)))
            .collect();
        step.skip(&skip);
    }
    if looked {
        let status = session.open(&plan.mailbox, access).await?;
        check_validity(plan, status.uid_validity)?;
    }
    Ok(())
}

fn check_validity(plan: &MailboxPlan, now: UidValidity) -> Result<(), ImapError> {
    if now == plan.uid_validity {
        Ok(())
    } else {
        Err(ImapError::Protocol(format!(
            "the UIDVALIDITY of {} changed during the pass; nothing more is done there",
            plan.mailbox
        )))
    }
}

/// Fault injection for the crash tests: with `MAILWARDEN_FAULT` set to
/// `kill-after-intent:ACTION` or `kill-after-outcome:ACTION` (ACTION being
/// `move`, `copy`, `flag`, `unflag` or `expunge`), the process kills itself
/// with SIGKILL right after that journal write, as a crash there would.
/// Unset, it does nothing.
pub(crate) fn fault_point(moment: &str, action: Action) {
    static FAULT: std::sync::LazyLock<Option<String>> =
        std::sync::LazyLock::new(|| std::env::var("MAILWARDEN_FAULT").ok());
    if FAULT.as_deref() == Some(&format!("{moment}:{}", action.as_str())) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &std::process::id().to_string()])
            .status();
        std::process::abort();
    }
}

/// Records one intent per message of an operation before it is sent, and
/// each message's outcome after.
struct Journal<'a> {
    state: &'a State,
    plan: &'a MailboxPlan,
    /// UID -> (Message-ID, deciding rule).
    about: HashMap<Uid, (Option<String>, Option<String>)>,
}

/// The journal rows of one operation, by UID.
type Ids = BTreeMap<Uid, i64>;

impl Journal<'_> {
    fn intend(
        &self,
        action: Action,
        target: Option<String>,
        uids: &UidSet,
    ) -> Result<Ids, StateError> {
        let intents: Vec<Intent> = uids
            .iter()
            .map(|uid| {
                let (message_id, rule) = self.about.get(&uid).cloned().unwrap_or_default();
                Intent {
                    account: self.plan.account.clone(),
                    mailbox: self.plan.mailbox.clone(),
                    uid_validity: self.plan.uid_validity,
                    uid,
                    message_id,
                    rule,
                    action,
                    target: target.clone(),
                    undoes: None,
                }
            })
            .collect();
        let ids = self.state.intend(&intents)?;
        fault_point("kill-after-intent", action);
        Ok(uids.iter().zip(ids).collect())
    }

    fn record(&self, action: Action, outcomes: &[Outcome]) -> Result<(), StateError> {
        self.state.record(outcomes)?;
        fault_point("kill-after-outcome", action);
        Ok(())
    }

    /// Records that `uids` were to get `action` and could not, before
    /// anything was sent: `log` shows why they stayed.
    fn refuse(
        &self,
        action: Action,
        target: &str,
        uids: &UidSet,
        why: &str,
    ) -> Result<(), StateError> {
        let ids = self.intend(action, Some(target.to_string()), uids)?;
        self.fail(action, &ids, why)
    }

    fn fail(&self, action: Action, ids: &Ids, why: &str) -> Result<(), StateError> {
        let outcomes: Vec<Outcome> = ids
            .values()
            .map(|&id| Outcome {
                id,
                status: Status::Failed,
                detail: Some(why.to_string()),
                new_uid: None,
            })
            .collect();
        self.record(action, &outcomes)
    }
}

fn outcome(
    id: i64,
    status: Status,
    detail: Option<&str>,
    new_uid: Option<(UidValidity, Uid)>,
) -> Outcome {
    Outcome {
        id,
        status,
        detail: detail.map(str::to_string),
        new_uid,
    }
}

const GONE: &str = "gone before the action reached it (another client removed or moved it)";

/// Which of `uids` the selected mailbox still holds.
async fn still_here(session: &mut Session, uids: &UidSet) -> Result<UidSet, ImapError> {
    if uids.is_empty() {
        return Ok(UidSet::default());
    }
    session.search_among(uids, &SearchKey::All).await
}

/// Carries out `steps`, journaling each message's action. The plan's
/// mailbox is opened read-write if it is not the one selected.
pub async fn execute(
    session: &mut Session,
    plan: &MailboxPlan,
    steps: &[Step],
    folders: &mut Folders,
    state: &State,
) -> Result<Report, ExecError> {
    let mut report = Report::default();
    if steps.iter().all(|s| s.op.uids().is_empty() && s.to.is_ok()) {
        return Ok(report);
    }
    if session.selected().is_none_or(|(m, _)| *m != plan.mailbox) {
        let status = session.open(&plan.mailbox, Access::ReadWrite).await?;
        check_validity(plan, status.uid_validity)?;
    }
    let journal = Journal {
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
    // Originals to mark \Deleted and expunge at the end, with their
    // journal rows: one UID EXPUNGE for all, because each expunging
    // command can cost the server a pass over the whole mailbox.
    let mut removals: Vec<(Action, Ids, String)> = Vec::new();
    for step in steps {
        let uids = step.op.uids();
        // What moving or copying would be journaled as, for a refusal.
        let refused_as = match &step.op {
            Operation::Copy { folder, .. } => Some((Action::Copy, folder.to_string())),
            Operation::Move { target, .. } => Some((Action::Move, target.to_string())),
            _ => None,
        };
        let dest = match &step.to {
            Err(why) => {
                // Journaled too, so that `log` shows why these stayed.
                if let Some((action, target)) = &refused_as {
                    journal.refuse(*action, target, uids, why)?;
                }
                report.fail(uids, step.to_string());
                continue;
            }
            Ok(d) => d,
        };
        if !step.already.is_empty()
            && let Ok(Some(d)) = &step.to
        {
            report.done(Done::new(
                "",
                step.already.len(),
                format!(" already in {}: not copied again", d.mailbox),
            ));
        }
        if uids.is_empty() {
            continue;
        }
        if let Some(d) = dest
            && d.create
            && let Err(e) = folders.ensure(session, &d.mailbox).await
        {
            let why = format!("cannot create folder {}: {}", d.mailbox, refusal(e)?);
            if let Some((action, _)) = &refused_as {
                journal.refuse(*action, d.mailbox.as_str(), uids, &why)?;
            }
            report.fail(uids, format!("{why}; the messages stay"));
            continue;
        }
        match &step.op {
            Operation::AddFlags { flags, .. } | Operation::RemoveFlags { flags, .. } => {
                let (action, mode) = match step.op {
                    Operation::AddFlags { .. } => (Action::Flag, StoreMode::Add),
                    _ => (Action::Unflag, StoreMode::Remove),
                };
                let list = flags.iter().map(Flag::imap).collect::<Vec<_>>().join(" ");
                let ids = journal.intend(action, Some(list), uids)?;
                match session.store(uids, mode, flags).await {
                    Ok(answered) => {
                        // A message the server did not answer for is
                        // either gone or already as wanted.
                        let here = still_here(session, &uids.without(&answered)).await?;
                        let mut done = 0;
                        let outcomes: Vec<Outcome> = ids
                            .iter()
                            .map(|(uid, &id)| {
                                if answered.contains(*uid) || here.contains(*uid) {
                                    done += 1;
                                    outcome(id, Status::Done, None, None)
                                } else {
                                    report.gone.insert(*uid);
                                    outcome(id, Status::Gone, Some(GONE), None)
                                }
                            })
                            .collect();
                        journal.record(action, &outcomes)?;
                        if done > 0 {
                            report.done(Done::of(&step.op, done));
                        }
                    }
                    Err(e) => {
                        let why = refusal(e)?;
                        journal.fail(action, &ids, &why)?;
                        report.fail(uids, format!("{}: {why}", step.op));
                    }
                }
            }
            Operation::Copy { .. } | Operation::Move { .. } => {
                let to = &dest
                    .as_ref()
                    .expect("copies and moves have a destination")
                    .mailbox;
                let moving = matches!(step.op, Operation::Move { .. });
                let action = if moving { Action::Move } else { Action::Copy };
                let ids = journal.intend(action, Some(to.to_string()), uids)?;
                let native = moving && session.has(Capability::Move);
                let mut confirmed = HashMap::new();
                let mut refused = None;
                let mut pending = uids.clone();
                // A refusal because another client expunged some of the
                // messages (Dovecot refuses the whole command so) is tried
                // once more with those still there.
                for attempt in 0..2 {
                    match session.transfer(&pending, to, native).await {
                        Ok(copied) => {
                            confirmed.extend(
                                confirm(session, plan, &pending, to, &copied, native, &journal)
                                    .await?,
                            );
                            break;
                        }
                        Err(e) => {
                            let again = expunge_issued(&e);
                            let why = refusal(e)?;
                            let after =
                                after_refusal(session, plan, &pending, to, native, &journal)
                                    .await?;
                            let stayed: UidSet = pending
                                .iter()
                                .filter(|u| after.get(u) == Some(&Confirmed::Stayed))
                                .collect();
                            confirmed.extend(after);
                            if attempt == 0 && again && retry_worth(&pending, &stayed) {
                                pending = stayed;
                                continue;
                            }
                            refused = Some(why);
                            break;
                        }
                    }
                }
                let mut outcomes = Vec::new();
                let mut went = Vec::new();
                for (uid, &id) in &ids {
                    match confirmed.get(uid) {
                        Some(Confirmed::Went(new_uid)) => {
                            went.push(*uid);
                            if moving && !native {
                                // Done once the original is gone (below).
                                continue;
                            }
                            outcomes.push(outcome(id, Status::Done, None, *new_uid));
                        }
                        Some(Confirmed::Stayed) | None => {
                            report.failed.insert(*uid);
                            outcomes.push(outcome(
                                id,
                                Status::Failed,
                                Some(
                                    refused
                                        .as_deref()
                                        .unwrap_or("the server did not carry it out"),
                                ),
                                None,
                            ));
                        }
                        Some(Confirmed::Gone) => {
                            report.gone.insert(*uid);
                            outcomes.push(outcome(id, Status::Gone, Some(GONE), None));
                        }
                    }
                }
                journal.record(action, &outcomes)?;
                let went = UidSet::new(went);
                if moving && !native {
                    if !went.is_empty() {
                        let kept: Ids =
                            ids.into_iter().filter(|(u, _)| went.contains(*u)).collect();
                        removals.push((action, kept, to.to_string()));
                    }
                } else if !went.is_empty() {
                    let verb = if moving { "moved " } else { "copied " };
                    report.done(Done::new(verb, went.len(), format!(" to {to}")));
                }
                let stayed = uids.len()
                    - went.len()
                    - confirmed
                        .values()
                        .filter(|c| **c == Confirmed::Gone)
                        .count();
                if stayed > 0 {
                    let verb = match (moving, native) {
                        (false, _) => "copy",
                        (true, true) => "move",
                        (true, false) => "copy (to move)",
                    };
                    report.problems.push(match &refused {
                        Some(why) => format!(
                            "{verb} of {} to {to}: {why}; the messages stay",
                            messages(stayed)
                        ),
                        None => format!(
                            "{} not {} to {to}: the server did not carry it out; they stay",
                            messages(stayed),
                            if moving { "moved" } else { "copied" }
                        ),
                    });
                }
            }
            Operation::Expunge { .. } => {
                let ids = journal.intend(Action::Expunge, None, uids)?;
                removals.push((Action::Expunge, ids, String::new()));
            }
        }
    }
    if !removals.is_empty() {
        remove(session, &journal, removals, &mut report).await?;
    }
    if !report.gone.is_empty() {
        report.problems.push(format!(
            "{} {GONE}; nothing was done to them",
            messages(report.gone.len())
        ));
    }
    Ok(report)
}

/// What became of one message of a COPY or MOVE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Confirmed {
    /// It is in the target, with this UID where the server said.
    Went(Option<(UidValidity, Uid)>),
    /// The server kept it where it was.
    Stayed,
    /// It was not there to act on.
    Gone,
}

/// Per message, whether a COPY or MOVE took it. COPYUID says so where the
/// server has UIDPLUS; otherwise what the source still holds, and for a
/// MOVE whether the target holds its Message-ID, decide.
async fn confirm(
    session: &mut Session,
    plan: &MailboxPlan,
    uids: &UidSet,
    to: &Mailbox,
    copied: &Copied,
    moved: bool,
    journal: &Journal<'_>,
) -> Result<HashMap<Uid, Confirmed>, ImapError> {
    let mut out = HashMap::new();
    match &copied.pairs {
        Some(pairs) => {
            let news: HashMap<Uid, Uid> = pairs.iter().copied().collect();
            let validity = copied.validity;
            let missing = UidSet::new(uids.iter().filter(|u| !news.contains_key(u)));
            let here = still_here(session, &missing).await?;
            for uid in uids.iter() {
                out.insert(
                    uid,
                    match news.get(&uid) {
                        Some(n) => Confirmed::Went(validity.map(|v| (v, *n))),
                        None if here.contains(uid) => Confirmed::Stayed,
                        None => Confirmed::Gone,
                    },
                );
            }
        }
        None => {
            let here = still_here(session, uids).await?;
            if !moved {
                // The COPY's OK covers every message there was; one still
                // here was there.
                for uid in uids.iter() {
                    out.insert(
                        uid,
                        if here.contains(uid) {
                            Confirmed::Went(None)
                        } else {
                            Confirmed::Gone
                        },
                    );
                }
                return Ok(out);
            }
            let left = uids.without(&here);
            let ids: Vec<&str> = left
                .iter()
                .filter_map(|u| journal.about.get(&u)?.0.as_deref())
                .collect();
            let found = present_in(session, to, &ids).await?;
            let status = session.open(&plan.mailbox, Access::ReadWrite).await?;
            check_validity(plan, status.uid_validity)?;
            for uid in uids.iter() {
                let id = journal.about.get(&uid).and_then(|a| a.0.as_deref());
                out.insert(
                    uid,
                    if here.contains(uid) {
                        Confirmed::Stayed
                    } else if id.is_none_or(|id| found.contains(id)) {
                        // Without a Message-ID, gone from the source
                        // after the server's OK is all there is to go by.
                        Confirmed::Went(None)
                    } else {
                        Confirmed::Gone
                    },
                );
            }
        }
    }
    Ok(out)
}

/// Whether a refusal says that another client expunged some of the
/// messages (RFC 5530 3, EXPUNGEISSUED): the rest may well go through.
fn expunge_issued(e: &ImapError) -> bool {
    matches!(e, ImapError::Refused { code: Some(Code::Other(c)), .. } if c == "EXPUNGEISSUED")
}

/// Whether a refused command is worth sending again for the messages that
/// stayed: some stayed, and some did not (those are why it was refused).
fn retry_worth(sent: &UidSet, stayed: &UidSet) -> bool {
    !stayed.is_empty() && stayed.len() < sent.len()
}

/// What a refused COPY or MOVE left, per message. A refused COPY changed
/// nothing (RFC 3501 6.4.7), so a message no longer in the source was
/// removed by someone else. A MOVE may have moved some before it failed
/// (RFC 6851 3.3): a message gone from the source counts as moved only
/// where the target holds its Message-ID; without one, nothing tells, and
/// it is not claimed as done.
async fn after_refusal(
    session: &mut Session,
    plan: &MailboxPlan,
    uids: &UidSet,
    to: &Mailbox,
    moved: bool,
    journal: &Journal<'_>,
) -> Result<HashMap<Uid, Confirmed>, ImapError> {
    let here = still_here(session, uids).await?;
    let id = |uid: Uid| journal.about.get(&uid).and_then(|a| a.0.as_deref());
    let left: Vec<&str> = uids.without(&here).iter().filter_map(id).collect();
    let mut found = BTreeSet::new();
    if moved && !left.is_empty() {
        found = present_in(session, to, &left).await?;
        let status = session.open(&plan.mailbox, Access::ReadWrite).await?;
        check_validity(plan, status.uid_validity)?;
    }
    Ok(refused_outcome(uids, &here, &found, id))
}

/// The pure part of [`after_refusal`].
fn refused_outcome<'a>(
    uids: &UidSet,
    here: &UidSet,
    found: &BTreeSet<String>,
    id: impl Fn(Uid) -> Option<&'a str>,
) -> HashMap<Uid, Confirmed> {
    uids.iter()
        .map(|uid| {
            let c = if here.contains(uid) {
                Confirmed::Stayed
            } else if id(uid).is_some_and(|i| found.contains(i)) {
                Confirmed::Went(None)
            } else {
                Confirmed::Gone
            };
            (uid, c)
        })
        .collect()
}

/// Marks the originals \Deleted and removes exactly them, where UIDPLUS
/// allows; without it they stay marked and the report says so.
async fn remove(
    session: &mut Session,
    journal: &Journal<'_>,
    removals: Vec<(Action, Ids, String)>,
    report: &mut Report,
) -> Result<(), ExecError> {
    let all: UidSet = removals
        .iter()
        .flat_map(|(_, ids, _)| ids.keys().copied())
        .collect();
    let uidplus = session.has(Capability::UidPlus);
    let result = match session.store(&all, StoreMode::Add, &[Flag::Deleted]).await {
        Ok(_) if !uidplus => Ok(()),
        Ok(_) => session.expunge(&all).await,
        Err(e) => Err(e),
    };
    let why = match result {
        Ok(()) => None,
        Err(e) => Some(refusal(e)?),
    };
    for (action, ids, to) in removals {
        let n = messages(ids.len());
        let uids: UidSet = ids.keys().copied().collect();
        let (status, detail, line) = match (&why, uidplus, action) {
            (Some(why), _, _) => {
                report.fail(&uids, format!("removing {n}: {why}"));
                (Status::Failed, Some(why.clone()), None)
            }
            (None, true, Action::Move) => (
                Status::Done,
                None,
                Some(Done::new(
                    "moved ",
                    ids.len(),
                    format!(" to {to} (COPY, then UID EXPUNGE: the server lacks MOVE)"),
                )),
            ),
            (None, false, Action::Move) => {
                let note = "copied and marked \\Deleted, not expunged: the server lacks MOVE and UIDPLUS (a plain EXPUNGE would also remove messages others marked)";
                report.problems.push(format!("{n} {note}"));
                (
                    Status::Done,
                    Some(note.to_string()),
                    Some(Done::new(
                        "copied ",
                        ids.len(),
                        format!(
                            " to {to} and marked them \\Deleted (the server lacks MOVE and UIDPLUS)"
                        ),
                    )),
                )
            }
            (None, true, _) => (
                Status::Done,
                None,
                Some(Done::new("deleted ", ids.len(), " for good")),
            ),
            (None, false, _) => {
                let note = "marked \\Deleted, not expunged: the server lacks UIDPLUS";
                report.problems.push(format!("{n} {note}"));
                (
                    Status::Done,
                    Some(note.to_string()),
                    Some(Done::new(
                        "marked ",
                        ids.len(),
                        " \\Deleted (the server lacks UIDPLUS)",
                    )),
                )
            }
        };
        let outcomes: Vec<Outcome> = ids
            .values()
            .map(|&id| outcome(id, status, detail.as_deref(), None))
            .collect();
        journal.record(action, &outcomes)?;
        if let Some(line) = line {
            report.done(line);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::response::Status as Said;
    use crate::imap::types::uid;

    #[test]
    fn a_refused_move_is_sorted_out_message_by_message() {
        let set = |v: &[u32]| UidSet::new(v.iter().map(|&n| uid(n)));
        let ids: HashMap<Uid, &str> = [(1, "a"), (2, "b"), (3, "c"), (4, "d")]
            .into_iter()
            .map(|(n, id)| (uid(n), id))
            .collect();
        let found: BTreeSet<String> = ["b".to_string()].into();
        // 1 stayed; 2 went before the refusal; 3 was removed by another
        // client; 5 left and has no Message-ID: not claimed as moved.
        let out = refused_outcome(&set(&[1, 2, 3, 5]), &set(&[1]), &found, |u| {
            ids.get(&u).copied()
        });
        assert_eq!(out[&uid(1)], Confirmed::Stayed);
        assert_eq!(out[&uid(2)], Confirmed::Went(None));
        assert_eq!(out[&uid(3)], Confirmed::Gone);
        assert_eq!(out[&uid(5)], Confirmed::Gone);
        assert_eq!(out.len(), 4);

        // Sent again only for what stayed, and only when not all stayed
        // (then the refusal had another reason) nor none.
        assert!(retry_worth(&set(&[1, 2, 3]), &set(&[1, 3])));
        assert!(!retry_worth(&set(&[1, 2, 3]), &set(&[1, 2, 3])));
        assert!(!retry_worth(&set(&[1, 2, 3]), &set(&[])));

        let refused = |code: Option<Code>| ImapError::Refused {
            command: "UID MOVE",
            status: Said::No,
            text: "Some of the requested messages no longer exist".into(),
            code,
        };
        assert!(expunge_issued(&refused(Some(Code::Other(
            "EXPUNGEISSUED".into()
        )))));
        assert!(!expunge_issued(&refused(Some(Code::TryCreate))));
        assert!(!expunge_issued(&refused(None)));
    }

    #[test]
    fn message_ids_are_searched_for_in_groups_that_fit_a_line() {
        let keys: Vec<SearchKey> = (0..300)
            .map(|i| SearchKey::Header("Message-ID".into(), format!("<m{i}@example.org>")))
            .collect();
        let groups = or_groups(keys, 4000);
        assert!(groups.len() > 1);
        let mut n = 0;
        for g in &groups {
            let text = g.render().unwrap();
            assert!(text.len() <= 4000 + 8, "{}", text.len());
            n += text.matches("HEADER Message-ID").count();
        }
        assert_eq!(n, 300, "every Message-ID searched once");
        assert_eq!(
            or_groups(vec![SearchKey::All], 10),
            vec![SearchKey::All],
            "one key is no OR"
        );
    }
}
