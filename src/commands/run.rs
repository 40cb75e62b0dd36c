//! `mailwarden run [--dry-run]`: one pass over the messages now in the
//! rules' mailboxes, one IMAP session per account. Unfinished actions of an
//! earlier run are settled first (`recover`); then each mailbox is read and
//! decided (`pass`), and the plan is printed (dry run) or carried out.

use std::io::Write;

use chrono::{DateTime, Utc};

use super::{load_config, open_session};
use crate::cli::{ConfigArg, Format, Outcome, parse_time};
use crate::config::{Account, Config};
use crate::imap::conn::{Access, ImapError};
use crate::pass::{apply, mailboxes_of, plan_mailbox, print_plan, report_undecided};
use crate::recover::reconcile;
use crate::rules::Rule;
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
}

/// How one account's pass ended.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AccountResult {
    pub connect_failed: bool,
    pub failed_messages: usize,
}

/// One pass over one account, through one session. Without a state (a dry
/// run) nothing is journaled and nothing changes.
pub async fn run_account(
    config: &Config,
    account: &Account,
    args: &RunArgs,
    now: DateTime<Utc>,
    out: &mut (dyn Write + Send),
    state: Option<&State>,
) -> AccountResult {
    let mut result = AccountResult::default();
    let mailboxes = mailboxes_of(config, &account.name, args.mailbox.as_deref());
    if mailboxes.is_empty() {
        return result;
    }
    let mut conn = match open_session(account).await {
        Ok(c) => c,
        Err(e) => {
            // Everything `open_session` does is connecting: exit code 3.
            eprintln!("mailwarden: account {}: {e}", account.name);
            result.connect_failed = true;
            return result;
        }
    };
    if let Some(state) = state {
        match reconcile(&mut conn, state, &account.name).await {
            Ok(r) if r != Default::default() => tracing::warn!(
                account = %account.name,
                done = r.done, completed = r.completed, abandoned = r.abandoned,
                "settled actions left unfinished by an earlier run"
            ),
            Ok(_) => {}
            Err(e) => {
                eprintln!(
                    "mailwarden: account {}: settling unfinished actions: {e}",
                    account.name
                );
                result.failed_messages += 1;
                conn.logout().await;
                return result;
            }
        }
    }
    let access = if state.is_some() {
        Access::ReadWrite
    } else {
        Access::ReadOnly
    };
    let mut folders = None;
    'mailboxes: for mailbox in &mailboxes {
        let rules: Vec<&Rule> = config.rules_for(&account.name, mailbox).collect();
        let mut retried = false;
        let (plan, status, mark) = loop {
            match plan_mailbox(&mut conn, account, mailbox, &rules, access, None, now).await {
                Ok(x) => break x,
                Err(e) if !retried && !conn.bodystructure_readable() => {
                    tracing::warn!(
                        account = %account.name, %mailbox, error = %e,
                        "the server sent a BODYSTRUCTURE that cannot be read; reading message texts instead"
                    );
                    retried = true;
                    match open_session(account).await {
                        Ok(mut fresh) => {
                            fresh.distrust_bodystructure();
                            conn = fresh;
                            folders = None;
                        }
                        Err(e) => {
                            eprintln!("mailwarden: account {}: {e}", account.name);
                            result.failed_messages += 1;
                            return result;
                        }
                    }
                }
                Err(e) => {
                    eprintln!("mailwarden: {}/{mailbox}: {e}", account.name);
                    result.failed_messages += 1;
                    if matches!(e, ImapError::Refused { .. }) {
                        continue 'mailboxes;
                    }
                    break 'mailboxes;
                }
            }
        };
        let Some(state) = state else {
            result.failed_messages += report_undecided(&plan);
            let _ = print_plan(out, &plan, status.exists, args.format);
            continue;
        };
        match apply(
            &mut conn,
            &mut folders,
            &plan,
            account,
            state,
            args.format,
            out,
        )
        .await
        {
            Ok(failed) => {
                result.failed_messages += failed;
                if let Err(e) = state.set_mark(&account.name, mailbox, mark) {
                    eprintln!("mailwarden: {e}");
                    result.failed_messages += 1;
                }
            }
            Err(e) => {
                eprintln!("mailwarden: {}/{mailbox}: {e}", account.name);
                result.failed_messages += 1;
                break;
            }
        }
    }
    conn.logout().await;
    result
}

pub fn execute_command(args: &RunArgs) -> Outcome {
    let config = match load_config(&args.config.resolve()) {
        Ok(c) => c,
        Err(outcome) => return outcome,
    };
    if let Some(a) = &args.account
        && config.account(a).is_none()
    {
        eprintln!("mailwarden: unknown account {a:?}");
        return Outcome::ConfigInvalid;
    }
    let state = if args.dry_run {
        None
    } else {
        match super::open_state(args.state.as_ref()) {
            Ok(s) => Some(s),
            Err(outcome) => return outcome,
        }
    };
    let now = args.now.unwrap_or_else(Utc::now);
    let runtime = match super::runtime(1) {
        Ok(rt) => rt,
        Err(outcome) => return outcome,
    };
    let mut stdout = std::io::stdout();
    let results: Vec<AccountResult> = runtime.block_on(async {
        let mut results = Vec::new();
        for account in config
            .accounts
            .iter()
            .filter(|a| args.account.as_ref().is_none_or(|x| *x == a.name))
        {
            results
                .push(run_account(&config, account, args, now, &mut stdout, state.as_ref()).await);
        }
        results
    });
    if results.iter().any(|r| r.connect_failed) {
        Outcome::ConnectFailed
    } else if results.iter().any(|r| r.failed_messages > 0) {
        Outcome::SomeFailed
    } else {
        Outcome::Success
    }
}
