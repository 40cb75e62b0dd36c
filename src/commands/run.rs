//! `mailwarden run [--dry-run]`: one pass over the messages now in the
//! rules' mailboxes, one IMAP session per account. Unfinished actions of an
//! earlier run are settled first (`recover`); then each mailbox is read and
//! decided (`pass`), and the plan is printed (dry run) or carried out.

use std::io::Write;

use chrono::{DateTime, Utc};

use super::{load_config, open_session};
use crate::cli::{ConfigArg, Format, Outcome, parse_time};
use crate::config::{Account, Config};
use crate::duplicates::Seen;
use crate::execute::ExecError;
use crate::imap::folders::Folders;
use crate::imap::{Access, ImapError};
use crate::pass::{
    Carried, Interrupted, ReadOptions, Source, Telling, carry_out, mailboxes_of, plan_mailbox,
    report_undecided, seen_for,
};
use crate::plan::messages;
use crate::recover::reconcile;
use crate::report::{plan_json, plan_text};
use crate::rules::{FolderPath, Rule};
use crate::state::State;

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Print the plan and change nothing (mailboxes are opened read-only)
    #[arg(long)]
    pub dry_run: bool,
    /// Only this account
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,
    /// Only this source mailbox
    #[arg(long, value_name = "NAME")]
    pub mailbox: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// The time rules compare against [default: the current time]
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub now: Option<DateTime<Utc>>,
    /// State file [default: $XDG_STATE_HOME/mailwarden/state.db]
    #[arg(long, value_name = "PATH")]
    pub state: Option<std::path::PathBuf>,
    /// Go ahead even where a pass acts on more messages than the account's
    /// max_actions (check them with --dry-run first)
    #[arg(long)]
    pub no_limit: bool,
}

/// How one account's pass ended.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AccountResult {
    pub connect_failed: bool,
    /// The state file could not be written: the pass stopped.
    pub state_failed: bool,
    pub failed_messages: usize,
}

/// Where a pass was when its session ended: the mailbox being worked on,
/// and how many of its messages had steps still to carry out (0 while it
/// was still being read).
type Unfinished<'a> = Option<(&'a FolderPath, usize)>;

/// One line for a session that ended in the middle of a pass: what was
/// being done, and what was left.
fn lost(account: &Account, e: &ImapError, current: Unfinished, left: &[FolderPath]) {
    crate::say!("{}", lost_line(&account.name, e, current, left));
}

fn lost_line(account: &str, e: &ImapError, current: Unfinished, left: &[FolderPath]) -> String {
    let mut rest = Vec::new();
    match current {
        Some((path, 0)) => rest.push(format!("{path} not finished")),
        Some((path, n)) => rest.push(format!("{} in {path} not handled", messages(n))),
        None => {}
    }
    if !left.is_empty() {
        let names: Vec<&str> = left.iter().map(FolderPath::as_str).collect();
        rest.push(format!("not reached: {}", names.join(", ")));
    }
    let rest = if rest.is_empty() {
        String::new()
    } else {
        format!("; {}", rest.join("; "))
    };
    format!("mailwarden: account {account}: {e}{rest}; run again")
}

/// A connection lost under a command of at least this many UIDs is taken
/// for a server that could not digest it, and the pass goes on with
/// commands half as long, up to [`MAX_RESUMES`] times. A cut under a
/// shorter command is a fault of the network or the server, reported for
/// the next run to settle.
const MIN_RESUMED: usize = 128;
const MAX_RESUMES: usize = 4;

/// A new session for `account` after one was lost: at most `cap` UIDs per
/// command, folders read again, and what the lost one left unfinished
/// settled from the journal.
async fn reopen(
    account: &Account,
    state: &State,
    cap: usize,
) -> Result<(crate::imap::Session, Folders), String> {
    let mut session = open_session(account).await.map_err(|e| e.to_string())?;
    session.cap_uids(cap);
    let folders = Folders::load(&mut session)
        .await
        .map_err(|e| e.to_string())?;
    reconcile(&mut session, state, &account.name)
        .await
        .map_err(|e| e.to_string())?;
    Ok((session, folders))
}

/// `rule "A": 3 messages, rule "B": 1 message`.
fn rule_counts(per_rule: &[(String, usize)]) -> String {
    per_rule
        .iter()
        .map(|(rule, n)| {
            format!(
                "rule \"{}\": {}",
                crate::display::escape(rule),
                messages(*n)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A dry run over one mailbox: the plan printed, what `run` would refuse
/// and why on standard error, nothing changed.
#[allow(clippy::too_many_arguments)]
async fn dry_run(
    session: &mut crate::imap::Session,
    folders: &Folders,
    account: &Account,
    source: &Source<'_>,
    options: ReadOptions,
    seen: &mut Seen,
    args: &RunArgs,
    out: &mut (dyn Write + Send),
    result: &mut AccountResult,
) -> Result<(), crate::imap::ImapError> {
    let mailbox = crate::display::escape(source.mailbox.as_str());
    let planned = match plan_mailbox(session, folders, account, source, options, seen).await {
        Ok(p) => p,
        Err(e) if !e.ends_session() => {
            crate::say!("mailwarden: {}/{mailbox}: {e}", account.name);
            result.failed_messages += 1;
            return Ok(());
        }
        Err(e) => {
            result.failed_messages += 1;
            return Err(e);
        }
    };
    if let Some(why) = planned.over_limit(account).filter(|_| !args.no_limit) {
        crate::say!(
            "mailwarden: {}/{mailbox}: {why}; `mailwarden run` would stop there; `mailwarden run --no-limit` goes ahead",
            account.name
        );
        result.failed_messages += 1;
    }
    result.failed_messages += report_undecided(&planned.plan);
    for step in planned.steps.iter().filter(|s| s.to.is_err()) {
        result.failed_messages += step.op.uids().len();
        crate::say!(
            "mailwarden: {}/{mailbox}: {}",
            account.name,
            crate::display::escape(&step.to_string())
        );
    }
    let _ = if args.format == Format::Json {
        plan_json(out, &planned.plan)
    } else {
        plan_text(out, &planned.plan, &planned.steps, planned.status.exists)
    };
    Ok(())
}

/// What one account's pass works with besides its configuration: the time
/// the rules compare against, the state (none in a dry run), and the
/// Message-IDs seen before (`pass::seen_for`).
pub struct Run<'a> {
    pub now: DateTime<Utc>,
    pub state: Option<&'a State>,
    pub seen: Seen,
}

/// One pass over one account, through one session. Without a state (a dry
/// run) nothing is journaled and nothing changes.
pub async fn run_account(
    config: &Config,
    account: &Account,
    args: &RunArgs,
    run: Run<'_>,
    out: &mut (dyn Write + Send),
) -> AccountResult {
    let Run {
        now,
        state,
        mut seen,
    } = run;
    let mut result = AccountResult::default();
    let paths = mailboxes_of(config, &account.name, args.mailbox.as_deref());
    if paths.is_empty() {
        return result;
    }
    let mut session = match open_session(account).await {
        Ok(c) => c,
        Err(e) => {
            // Everything `open_session` does is connecting: exit code 3.
            crate::say!("mailwarden: account {}: {e}", account.name);
            result.connect_failed = true;
            return result;
        }
    };
    let mut folders = match Folders::load(&mut session).await {
        Ok(f) => f,
        Err(e) => {
            lost(account, &e, None, &paths);
            result.failed_messages += 1;
            return result;
        }
    };
    if let Some(state) = state {
        match reconcile(&mut session, state, &account.name).await {
            Ok(r) if r != Default::default() => tracing::warn!(
                account = %account.name,
                done = r.done, completed = r.completed, abandoned = r.abandoned,
                "settled actions left unfinished by an earlier run"
            ),
            Ok(_) => {}
            Err(e) => {
                crate::say!(
                    "mailwarden: account {}: settling unfinished actions: {e}",
                    account.name
                );
                match e {
                    ExecError::State(_) => result.state_failed = true,
                    ExecError::Imap(_) => result.failed_messages += 1,
                }
                session.logout().await;
                return result;
            }
        }
    }
    let access = if state.is_some() {
        Access::ReadWrite
    } else {
        Access::ReadOnly
    };
    let json = args.format == Format::Json;
    for (i, path) in paths.iter().enumerate() {
        let left = &paths[i + 1..];
        let rules: Vec<&Rule> = config.rules_for(&account.name, path.as_str()).collect();
        let mailbox = match folders.resolve_path(path) {
            Ok(m) => m,
            Err(e) => {
                crate::say!("mailwarden: {}/{path}: {e}", account.name);
                result.failed_messages += 1;
                continue;
            }
        };
        let source = Source {
            path,
            mailbox: &mailbox,
            rules: &rules,
        };
        let options = ReadOptions {
            access,
            mark: None,
            now,
        };
        let Some(state) = state else {
            let planned = dry_run(
                &mut session,
                &folders,
                account,
                &source,
                options,
                &mut seen,
                args,
                out,
                &mut result,
            );
            if let Err(e) = planned.await {
                lost(account, &e, Some((path, 0)), left);
                return result;
            }
            continue;
        };
        // A server that closes the connection under a long command (an
        // imap process out of memory on a large Maildir) gets shorter ones
        // on a new session: the journal settles what the cut one left
        // unfinished, and the mailbox is read again, so nothing is done
        // twice.
        let mut resumed = 0;
        let carried = loop {
            let carried = carry_out(
                &mut session,
                &mut folders,
                account,
                &source,
                options,
                &mut seen,
                state,
                !args.no_limit,
                Telling {
                    out,
                    json,
                    carried: None,
                },
            )
            .await;
            let Err(Interrupted {
                error: ExecError::Imap(e),
                ..
            }) = &carried
            else {
                break carried;
            };
            let sent = session.last_uids();
            if !e.ends_session() || sent < MIN_RESUMED || resumed == MAX_RESUMES {
                break carried;
            }
            resumed += 1;
            let cap = sent / 2;
            crate::say!(
                "mailwarden: account {}: {e} (a command of {}); going on with at most {cap} per command",
                account.name,
                messages(sent)
            );
            match reopen(account, state, cap).await {
                Ok((s, f)) => (session, folders) = (s, f),
                Err(why) => {
                    crate::say!("mailwarden: account {}: {why}", account.name);
                    break carried;
                }
            }
        };
        match carried {
            Ok(Carried::Done(failed)) => result.failed_messages += failed,
            // A pass that would act on more than the account allows stops
            // before acting and says so: no surprise when first pointed at
            // years of mail.
            Ok(Carried::Refused { why, per_rule }) => {
                crate::say!(
                    "mailwarden: {}/{}: {why}; nothing was done there. Check with `mailwarden run --dry-run`, then go ahead with `mailwarden run --no-limit`, or raise max_actions",
                    account.name,
                    crate::display::escape(mailbox.as_str()),
                );
                result.failed_messages += 1;
                let _ = writeln!(
                    out,
                    "{}/{}: stopped before acting: {}",
                    account.name,
                    crate::display::escape(mailbox.as_str()),
                    rule_counts(&per_rule)
                );
            }
            Err(Interrupted {
                error: ExecError::Imap(e),
                ..
            }) if !e.ends_session() => {
                crate::say!("mailwarden: {}/{}: {e}", account.name, mailbox);
                result.failed_messages += 1;
            }
            Err(Interrupted {
                error: ExecError::Imap(e),
                not_handled,
            }) => {
                lost(account, &e, Some((path, not_handled)), left);
                result.failed_messages += 1;
                return result;
            }
            Err(Interrupted {
                error: ExecError::State(e),
                ..
            }) => {
                crate::say!("mailwarden: {}/{}: {e}", account.name, mailbox);
                result.state_failed = true;
                break;
            }
        }
    }
    session.logout().await;
    result
}

pub fn execute_command(args: &RunArgs) -> Outcome {
    let config = match load_config(&args.config.resolve()) {
        Ok(c) => c,
        Err(outcome) => return outcome,
    };
    if let Err(outcome) =
        super::check_selection(&config, args.account.as_deref(), args.mailbox.as_deref())
    {
        return outcome;
    }
    let state = if args.dry_run {
        None
    } else {
        match super::open_state(args.state.as_ref()) {
            Ok(s) => Some(s),
            Err(outcome) => return outcome,
        }
    };
    // A dry run decides `duplicate` from what the state remembers, read
    // without the lock, as `log` reads it.
    let remembered = match &state {
        None if config.rules.iter().any(Rule::reads_duplicates) => {
            let path = args
                .state
                .clone()
                .unwrap_or_else(crate::state::default_path);
            match State::open_read_only(&path) {
                Ok(s) => s,
                Err(e) => return super::state_failed(&e),
            }
        }
        _ => None,
    };
    let memory = state.as_ref().or(remembered.as_ref());
    let now = args.now.unwrap_or_else(Utc::now);
    let runtime = match super::runtime(1) {
        Ok(rt) => rt,
        Err(outcome) => return outcome,
    };
    // A closed standard output stops the printing, never the work.
    let mut stdout = crate::output::Stdout::new();
    let results: Vec<AccountResult> = runtime.block_on(async {
        let mut results = Vec::new();
        for account in config
            .accounts
            .iter()
            .filter(|a| args.account.as_ref().is_none_or(|x| *x == a.name))
        {
            let seen = match seen_for(&config, &account.name, memory) {
                Ok(seen) => seen,
                Err(e) => {
                    crate::say!("mailwarden: {e}");
                    results.push(AccountResult {
                        state_failed: true,
                        ..Default::default()
                    });
                    continue;
                }
            };
            let run = Run {
                now,
                state: state.as_ref(),
                seen,
            };
            results.push(run_account(&config, account, args, run, &mut stdout).await);
        }
        results
    });
    if results.iter().any(|r| r.state_failed) {
        Outcome::StateFailed
    } else if results.iter().any(|r| r.connect_failed) {
        Outcome::ConnectFailed
    } else if results.iter().any(|r| r.failed_messages > 0) {
        Outcome::SomeFailed
    } else {
        Outcome::Success
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_session_is_one_line_naming_what_is_left() {
        let path = |p: &str| FolderPath::parse(p).unwrap();
        let e = ImapError::ConnectionLost {
            during: "UID MOVE".into(),
            bye: None,
        };
        let left = [path("Lists"), path("Work")];
        assert_eq!(
            lost_line("me", &e, Some((&path("INBOX"), 3)), &left),
            "mailwarden: account me: the server closed the connection during UID MOVE; 3 messages in INBOX not handled; not reached: Lists, Work; run again"
        );
        assert_eq!(
            lost_line("me", &e, Some((&path("INBOX"), 0)), &[]),
            "mailwarden: account me: the server closed the connection during UID MOVE; INBOX not finished; run again"
        );
        assert_eq!(
            lost_line("me", &e, None, &left),
            "mailwarden: account me: the server closed the connection during UID MOVE; not reached: Lists, Work; run again"
        );
    }
}
