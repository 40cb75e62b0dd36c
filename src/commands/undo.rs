//! `mailwarden undo`: takes back journaled actions, newest first (`undo`
//! plans which and where each message should be). Each message is found
//! where the journal says it went, by the UID the server gave it there
//! (COPYUID) while that mailbox's UIDVALIDITY is unchanged, else by its
//! Message-ID, and never taken back if it cannot be tied to the action.
//! Every step is journaled as an action of its own that names the row it
//! takes back, so a second undo does nothing, and a kill in the middle is
//! settled at the next start like any other action (`recover`).

use std::collections::HashMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::{check_selection, load_config, open_session};
use crate::cli::{ConfigArg, Outcome, parse_time};
use crate::config::Account;
use crate::execute::fault_point;
use crate::imap::command::{FetchItems, SearchKey, StoreMode, is_quotable};
use crate::imap::types::{Capability, Mailbox, Uid, UidSet, UidValidity};
use crate::imap::{Access, ImapError, Session};
use crate::output::Stdout;
use crate::recover::reconcile;
use crate::rules::Flag;
use crate::state::{self, Action, Entry, Intent, Outcome as Ended, State, StateError, Status};
use crate::undo::{Location, Range, Step, plan};

#[derive(Debug, Clone, clap::Args)]
pub struct UndoArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Only actions from this time on
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub since: Option<DateTime<Utc>>,
    /// Only actions of this rule
    #[arg(long, value_name = "NAME")]
    pub rule: Option<String>,
    /// Only this account
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,
    /// Print what would be taken back and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// State file [default: $XDG_STATE_HOME/mailwarden/state.db]
    #[arg(long, value_name = "PATH")]
    pub state: Option<PathBuf>,
}

/// Why one step could not be taken; the others go on.
#[derive(Debug)]
enum Failure {
    /// The message is not where the journal says, or not the one it names.
    NotTied(String),
    Imap(ImapError),
}

impl From<ImapError> for Failure {
    fn from(e: ImapError) -> Self {
        Failure::Imap(e)
    }
}

/// How the account's undo went.
#[derive(Debug, Default)]
struct Tally {
    done: usize,
    not_done: usize,
    connect_failed: bool,
    state_failed: bool,
}

/// What a journal row did, in words.
fn what(row: &Entry) -> String {
    let id = row
        .message_id
        .as_deref()
        .map(|i| format!("<{i}>"))
        .unwrap_or_else(|| format!("UID {}", row.uid));
    let rule = row.rule.as_deref().unwrap_or("?");
    let target = row.target.as_deref().unwrap_or("");
    let did = match row.action {
        Action::Move => format!("move of {id} from {} to {target}", row.mailbox),
        Action::Copy => format!("copy of {id} to {target}"),
        Action::Flag => format!("flag {target} on {id} in {}", row.mailbox),
        Action::Unflag => format!("unflag {target} on {id} in {}", row.mailbox),
        Action::Expunge => format!("deletion of {id} from {}", row.mailbox),
    };
    crate::display::escape(&format!("{did} (rule \"{rule}\", {})", row.time))
}

/// Finds the message a step is about: where `relocated` says an earlier
/// step of this undo put it, else at its UID while the UIDVALIDITY is the
/// same and the Message-ID agrees, else by its Message-ID alone when
/// exactly one message there carries it.
async fn locate(
    session: &mut Session,
    at: &Location,
    message_id: Option<&str>,
    relocated: &HashMap<(String, String), (UidValidity, Uid)>,
    access: Access,
) -> Result<(Mailbox, UidValidity, Uid), Failure> {
    let mailbox = Mailbox::verbatim(at.mailbox.as_str());
    let status = match session.open(&mailbox, access).await {
        Ok(s) => s,
        Err(e) if !e.ends_session() => {
            return Err(Failure::NotTied(format!("{mailbox} cannot be opened: {e}")));
        }
        Err(e) => return Err(e.into()),
    };
    let here = |uid| (mailbox.clone(), status.uid_validity, uid);
    if let Some(id) = message_id
        && let Some((v, uid)) = relocated.get(&(at.mailbox.clone(), id.to_string()))
        && *v == status.uid_validity
    {
        return Ok(here(*uid));
    }
    if let Some((v, u)) = at.uid
        && UidValidity::new(v) == Some(status.uid_validity)
        && let Some(uid) = Uid::new(u)
    {
        let items = FetchItems {
            header_fields: vec!["MESSAGE-ID".into()],
            ..FetchItems::default()
        };
        let mut found: Option<String> = None;
        session
            .fetch(&UidSet::new([uid]), &items, |d| {
                let header =
                    String::from_utf8_lossy(d.header.as_deref().unwrap_or_default()).into_owned();
                found = Some(
                    header
                        .split_once(':')
                        .map(|(_, v)| {
                            v.trim()
                                .trim_start_matches('<')
                                .trim_end_matches('>')
                                .to_string()
                        })
                        .unwrap_or_default(),
                );
            })
            .await?;
        match (&found, message_id) {
            (Some(got), Some(id)) if got == id => return Ok(here(uid)),
            (Some(_), None) => return Ok(here(uid)),
            _ => {}
        }
    }
    let Some(id) = message_id.filter(|id| is_quotable(&format!("<{id}>"))) else {
        return Err(Failure::NotTied(format!(
            "not at its UID in {mailbox} any more, and no Message-ID to find it by"
        )));
    };
    let key = SearchKey::Header("Message-ID".into(), format!("<{id}>"));
    let found = session.search(&key).await?;
    match found.len() {
        1 => Ok(here(found.as_slice()[0])),
        0 => Err(Failure::NotTied(format!(
            "not in {mailbox} any more: moved or deleted since; left alone"
        ))),
        n => Err(Failure::NotTied(format!(
            "{n} messages in {mailbox} carry its Message-ID; which one is not known, so none is touched"
        ))),
    }
}

/// The journal row of one undo step, before it is sent.
fn intent(
    account: &str,
    row: &Entry,
    (mailbox, validity, uid): &(Mailbox, UidValidity, Uid),
    action: Action,
    target: Option<String>,
) -> Intent {
    Intent {
        account: account.to_string(),
        mailbox: mailbox.clone(),
        uid_validity: *validity,
        uid: *uid,
        message_id: row.message_id.clone(),
        rule: row.rule.clone(),
        action,
        target,
        undoes: Some(row.id),
    }
}

/// Sends one step between its intent and its outcome; returns the
/// message's new place when it moved.
async fn carry_out(
    session: &mut Session,
    state: &State,
    account: &str,
    step: &Step,
    found: &(Mailbox, UidValidity, Uid),
) -> Result<Option<(String, UidValidity, Uid)>, Failure> {
    let (_, _, uid) = found;
    let one = UidSet::new([*uid]);
    let record = |id: i64, status: Status, detail: Option<String>, new_uid| {
        state.record(&[Ended {
            id,
            status,
            detail,
            new_uid,
        }])
    };
    let state_err = |e: StateError| Failure::NotTied(e.to_string());
    match step {
        Step::MoveBack { row, .. } => {
            let back = Mailbox::verbatim(row.mailbox.as_str());
            let ids = state
                .intend(&[intent(
                    account,
                    row,
                    found,
                    Action::Move,
                    Some(back.to_string()),
                )])
                .map_err(state_err)?;
            fault_point("kill-after-intent", Action::Move);
            let native = session.has(Capability::Move);
            let copied = session.transfer(&one, &back, native).await?;
            let new_uid = copied
                .pairs
                .as_ref()
                .and_then(|p| p.iter().find(|(from, _)| from == uid).map(|(_, to)| *to))
                .zip(copied.validity)
                .map(|(u, v)| (v, u));
            if !native {
                // No MOVE: the copy is made; the original goes by UID
                // EXPUNGE of exactly it (UIDPLUS), else stays marked.
                session
                    .store(&one, StoreMode::Add, &[Flag::Deleted])
                    .await?;
                if session.has(Capability::UidPlus) {
                    session.expunge(&one).await?;
                }
            }
            record(ids[0], Status::Done, None, new_uid).map_err(state_err)?;
            fault_point("kill-after-outcome", Action::Move);
            Ok(new_uid.map(|(v, u)| (row.mailbox.clone(), v, u)))
        }
        Step::RemoveCopy { row, .. } => {
            let ids = state
                .intend(&[intent(account, row, found, Action::Expunge, None)])
                .map_err(state_err)?;
            fault_point("kill-after-intent", Action::Expunge);
            session
                .store(&one, StoreMode::Add, &[Flag::Deleted])
                .await?;
            let detail = if session.has(Capability::UidPlus) {
                session.expunge(&one).await?;
                None
            } else {
                Some("marked \\Deleted, not expunged: the server lacks UIDPLUS".to_string())
            };
            record(ids[0], Status::Done, detail, None).map_err(state_err)?;
            fault_point("kill-after-outcome", Action::Expunge);
            Ok(None)
        }
        Step::Flags {
            row, flags, add, ..
        } => {
            let action = if *add { Action::Flag } else { Action::Unflag };
            let list = flags.iter().map(Flag::imap).collect::<Vec<_>>().join(" ");
            let ids = state
                .intend(&[intent(account, row, found, action, Some(list))])
                .map_err(state_err)?;
            fault_point("kill-after-intent", action);
            let mode = if *add {
                StoreMode::Add
            } else {
                StoreMode::Remove
            };
            session.store(&one, mode, flags).await?;
            record(ids[0], Status::Done, None, None).map_err(state_err)?;
            fault_point("kill-after-outcome", action);
            Ok(None)
        }
        Step::Cannot { why, .. } => Err(Failure::NotTied(why.clone())),
    }
}

/// What a step would do, for the dry run and the report.
fn describe(step: &Step, found: &(Mailbox, UidValidity, Uid), done: bool) -> String {
    let (mailbox, _, uid) = found;
    let row = step.row();
    let id = row
        .message_id
        .as_deref()
        .map(|i| format!("<{i}>"))
        .unwrap_or_else(|| format!("UID {uid}"));
    let (would, did) = match step {
        Step::MoveBack { .. } => (
            format!("move {id} back from {mailbox} to {}", row.mailbox),
            format!("moved {id} back from {mailbox} to {}", row.mailbox),
        ),
        Step::RemoveCopy { .. } => (
            format!("remove the copy of {id} from {mailbox}"),
            format!("removed the copy of {id} from {mailbox}"),
        ),
        Step::Flags { flags, add, .. } => {
            let list = flags.iter().map(Flag::imap).collect::<Vec<_>>().join(" ");
            if *add {
                (
                    format!("flag {list} again on {id} in {mailbox}"),
                    format!("flagged {list} again on {id} in {mailbox}"),
                )
            } else {
                (
                    format!("unflag {list} on {id} in {mailbox}"),
                    format!("unflagged {list} on {id} in {mailbox}"),
                )
            }
        }
        Step::Cannot { .. } => (String::new(), String::new()),
    };
    crate::display::escape(if done { &did } else { &would })
}

async fn undo_account(
    account: &Account,
    state: &State,
    range: &Range<'_>,
    dry_run: bool,
    out: &mut Stdout,
) -> Tally {
    let mut tally = Tally::default();
    let history = match state.history(&account.name) {
        Ok(h) => h,
        Err(e) => {
            crate::say!("mailwarden: {e}");
            tally.state_failed = true;
            return tally;
        }
    };
    if plan(&history, range).is_empty() {
        return tally;
    }
    let mut session = match open_session(account).await {
        Ok(s) => s,
        Err(e) => {
            crate::say!("mailwarden: account {}: {e}", account.name);
            tally.connect_failed = true;
            return tally;
        }
    };
    // An undo (or a run) cut off earlier is settled first; then the plan
    // is made from what the journal says now.
    let mut steps = plan(&history, range);
    if !dry_run {
        if let Err(e) = reconcile(&mut session, state, &account.name).await {
            crate::say!(
                "mailwarden: account {}: settling unfinished actions: {e}",
                account.name
            );
            tally.not_done += 1;
            session.logout().await;
            return tally;
        }
        match state.history(&account.name) {
            Ok(h) => steps = plan(&h, range),
            Err(e) => {
                crate::say!("mailwarden: {e}");
                tally.state_failed = true;
                return tally;
            }
        }
    }
    let access = if dry_run {
        Access::ReadOnly
    } else {
        Access::ReadWrite
    };
    let mut relocated: HashMap<(String, String), (UidValidity, Uid)> = HashMap::new();
    // In a dry run nothing moves back; a later step about a message that
    // would be back by then is shown where it would be.
    let mut predicted: HashMap<(String, String), (Mailbox, UidValidity, Uid)> = HashMap::new();
    for step in &steps {
        let row = step.row();
        let at = match step {
            Step::MoveBack { at, .. } | Step::RemoveCopy { at, .. } | Step::Flags { at, .. } => at,
            // Said, but no failure of this undo: nothing can bring it back.
            Step::Cannot { why, .. } if row.action == Action::Expunge => {
                crate::say!("mailwarden: note: the {}: {why}", what(row));
                continue;
            }
            Step::Cannot { why, .. } => {
                crate::say!("mailwarden: cannot undo the {}: {why}", what(row));
                tally.not_done += 1;
                continue;
            }
        };
        let key = row.message_id.clone().map(|id| (at.mailbox.clone(), id));
        let result = async {
            let found = match key.as_ref().and_then(|k| predicted.get(k)) {
                Some((_, v, u)) => (Mailbox::verbatim(at.mailbox.as_str()), *v, *u),
                None => {
                    locate(
                        &mut session,
                        at,
                        row.message_id.as_deref(),
                        &relocated,
                        access,
                    )
                    .await?
                }
            };
            if dry_run {
                let _ = writeln!(out, "would {}", describe(step, &found, false));
                if let (Step::MoveBack { row, .. }, Some(id)) = (step, &row.message_id) {
                    predicted.insert((row.mailbox.clone(), id.clone()), found.clone());
                }
                return Ok(None);
            }
            let moved = carry_out(&mut session, state, &account.name, step, &found).await?;
            let _ = writeln!(out, "{}", describe(step, &found, true));
            Ok::<_, Failure>(moved)
        }
        .await;
        match result {
            Ok(moved) => {
                tally.done += 1;
                if let (Some((mailbox, v, u)), Some(id)) = (moved, &row.message_id) {
                    relocated.insert((mailbox, id.clone()), (v, u));
                }
            }
            Err(Failure::NotTied(why)) => {
                crate::say!("mailwarden: cannot undo the {}: {why}", what(row));
                tally.not_done += 1;
            }
            Err(Failure::Imap(e)) if !e.ends_session() => {
                crate::say!("mailwarden: cannot undo the {}: {e}", what(row));
                tally.not_done += 1;
            }
            Err(Failure::Imap(e)) => {
                crate::say!(
                    "mailwarden: account {}: {e}; undo stopped, run it again",
                    account.name
                );
                tally.not_done += 1;
                return tally;
            }
        }
    }
    session.logout().await;
    tally
}

pub fn execute(args: &UndoArgs) -> Outcome {
    let config = match load_config(&args.config.resolve()) {
        Ok(c) => c,
        Err(outcome) => return outcome,
    };
    if let Err(outcome) = check_selection(&config, args.account.as_deref(), None) {
        return outcome;
    }
    let path = args.state.clone().unwrap_or_else(state::default_path);
    // A dry run reads the journal only; an undo takes the state's lock.
    let state = if args.dry_run {
        match State::open_read_only(&path) {
            Ok(Some(s)) => s,
            Ok(None) => return Outcome::Success,
            Err(e) => return super::state_failed(&e),
        }
    } else {
        match super::open_state(args.state.as_ref()) {
            Ok(s) => s,
            Err(outcome) => return outcome,
        }
    };
    let runtime = match super::runtime(1) {
        Ok(rt) => rt,
        Err(outcome) => return outcome,
    };
    let range = Range {
        since: args.since,
        rule: args.rule.as_deref(),
    };
    let mut out = Stdout::new();
    let tallies: Vec<Tally> = runtime.block_on(async {
        let mut all = Vec::new();
        for account in config
            .accounts
            .iter()
            .filter(|a| args.account.as_ref().is_none_or(|x| *x == a.name))
        {
            all.push(undo_account(account, &state, &range, args.dry_run, &mut out).await);
        }
        all
    });
    let done: usize = tallies.iter().map(|t| t.done).sum();
    let not_done: usize = tallies.iter().map(|t| t.not_done).sum();
    let verb = if args.dry_run {
        "would take back"
    } else {
        "took back"
    };
    let _ = writeln!(
        out,
        "{verb} {done} action{}{}",
        if done == 1 { "" } else { "s" },
        if not_done > 0 {
            format!("; {not_done} could not be taken back (see above)")
        } else {
            String::new()
        }
    );
    if tallies.iter().any(|t| t.state_failed) {
        Outcome::StateFailed
    } else if tallies.iter().any(|t| t.connect_failed) {
        Outcome::ConnectFailed
    } else if not_done > 0 {
        Outcome::SomeFailed
    } else {
        Outcome::Success
    }
}
