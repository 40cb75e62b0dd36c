//! `mailwarden run [--dry-run]`: one pass over the messages now in the
//! rules' mailboxes, one IMAP session per account. Per mailbox: open it
//! (EXAMINE for a dry run), narrow by a server-side SEARCH, FETCH what the
//! rules read, decide with the pure evaluator, then print the plan or hand
//! the very same plan to `execute`.

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::load_config;
use crate::cli::{ConfigArg, Format, Outcome, parse_time};
use crate::config::{Account, Config};
use crate::execute::{Folders, execute};
use crate::imap::conn::{Access, Conn, FetchedMessage, ImapError};
use crate::message::{Arrival, Message, Meta};
use crate::plan::{Fetched, MailboxPlan, decide};
use crate::report::{DecisionJson, actions_text, decision_json};
use crate::rules::{Condition, Rule, same_mailbox};
use crate::search::criteria;
use crate::secret;

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
}

/// Header fields every decision may read, plus those the rules name.
fn header_fields<'r>(rules: impl IntoIterator<Item = &'r Rule>) -> Vec<String> {
    fn walk(c: &Condition, out: &mut BTreeSet<String>) {
        match c {
            Condition::Header(name, _) => {
                out.insert(name.to_ascii_uppercase());
            }
            Condition::Exists(names) => out.extend(names.iter().map(|n| n.to_ascii_uppercase())),
            Condition::All(cs) | Condition::Any(cs) => cs.iter().for_each(|c| walk(c, out)),
            Condition::Not(c) => walk(c, out),
            _ => {}
        }
    }
    let mut out: BTreeSet<String> = [
        "FROM",
        "TO",
        "CC",
        "BCC",
        "SENDER",
        "REPLY-TO",
        "SUBJECT",
        "DATE",
        "MESSAGE-ID",
        "LIST-ID",
        "MIME-VERSION",
        "CONTENT-TYPE",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for r in rules {
        r.conditions.iter().for_each(|c| walk(c, &mut out));
    }
    out.into_iter().collect()
}

/// What to FETCH: the header fields the rules read, or whole messages when
/// a body or attachment condition needs them.
fn fetch_items(rules: &[&Rule]) -> (String, usize) {
    if rules
        .iter()
        .any(|r| r.conditions.iter().any(Condition::needs_body))
    {
        ("UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[]".into(), 50)
    } else {
        let fields = header_fields(rules.iter().copied()).join(" ");
        (
            format!("UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS ({fields})]"),
            1000,
        )
    }
}

fn to_fetched(m: FetchedMessage, whole: bool, now: DateTime<Utc>) -> Fetched {
    let meta = Meta {
        arrival: Arrival::At(m.internal_date.unwrap_or(now)),
        flags: m.flags,
        size: m.size.map(u64::from),
    };
    let parsed = if whole {
        Message::parse(&m.data, meta)
    } else {
        Message::parse_headers(&m.data, meta)
    };
    Fetched {
        uid: m.uid,
        message: parsed.map_err(|e| e.to_string()),
    }
}

/// Reads and decides one mailbox.
async fn plan_mailbox(
    conn: &mut Conn,
    account: &Account,
    mailbox: &str,
    rules: &[&Rule],
    access: Access,
    now: DateTime<Utc>,
) -> Result<(MailboxPlan, u32), ImapError> {
    let status = conn.open(mailbox, access).await?;
    let uids = conn
        .uid_search(&criteria(rules.iter().copied(), now))
        .await?;
    let (items, batch) = fetch_items(rules);
    let whole = items.ends_with("BODY.PEEK[]");
    let progress = std::io::stderr().is_terminal() && uids.len() > batch;
    // Each batch is decided as it arrives, so only the small plan entries
    // stay in memory, not the messages.
    let mut entries = Vec::with_capacity(uids.len());
    for chunk in uids.chunks(batch) {
        for m in conn.uid_fetch(chunk, &items).await? {
            entries.push(decide(mailbox, rules, to_fetched(m, whole, now), now));
        }
        if progress {
            eprint!(
                "\r{}/{}: read {} of {} messages",
                account.name,
                mailbox,
                entries.len(),
                uids.len()
            );
        }
    }
    if progress {
        eprintln!();
    }
    let plan = MailboxPlan {
        account: account.name.clone(),
        mailbox: mailbox.to_string(),
        uid_validity: status.uid_validity,
        entries,
    };
    Ok((plan, status.exists))
}

#[derive(Serialize)]
struct PlanJson<'a> {
    account: &'a str,
    mailbox: &'a str,
    uid: u32,
    message_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    decision: Option<DecisionJson<'a>>,
}

fn truncate(s: &str, width: usize) -> String {
    let clean: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.chars().count() <= width {
        clean
    } else {
        let mut t: String = clean.chars().take(width.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// The dry-run output: what `run` would do, message by message.
pub fn print_plan(
    out: &mut dyn Write,
    p: &MailboxPlan,
    exists: u32,
    format: Format,
) -> std::io::Result<()> {
    if format == Format::Json {
        for e in &p.entries {
            let line = PlanJson {
                account: &p.account,
                mailbox: &p.mailbox,
                uid: e.uid.0,
                message_id: e.message_id.as_deref(),
                error: e.outcome.as_ref().err().map(String::as_str),
                decision: e.outcome.as_ref().ok().map(|d| decision_json(d, false)),
            };
            writeln!(
                out,
                "{}",
                serde_json::to_string(&line).expect("serializable")
            )?;
        }
        return Ok(());
    }
    let decided: Vec<_> = p
        .entries
        .iter()
        .filter(|e| e.outcome.as_ref().map_or(true, |d| d.rule.is_some()))
        .collect();
    writeln!(
        out,
        "{}/{} (UIDVALIDITY {}): {} messages, {} searched, {} to act on",
        p.account,
        p.mailbox,
        p.uid_validity.0,
        exists,
        p.entries.len(),
        decided.len()
    )?;
    if !decided.is_empty() {
        writeln!(
            out,
            "  {:>7}  {:<28}  {:<40}  {:<24}  actions",
            "UID", "From", "Subject", "Rule"
        )?;
    }
    for e in decided {
        let (rule, actions) = match &e.outcome {
            Ok(d) => (d.rule.clone().unwrap_or_default(), actions_text(d)),
            Err(err) => ("(error)".into(), err.clone()),
        };
        writeln!(
            out,
            "  {:>7}  {:<28}  {:<40}  {:<24}  {}",
            e.uid.0,
            truncate(&e.from, 28),
            truncate(&e.subject, 40),
            truncate(&rule, 24),
            actions
        )?;
    }
    let (per_rule, failed) = p.counts();
    for (rule, count) in per_rule {
        writeln!(
            out,
            "  rule \"{rule}\": {count} message{}",
            if count == 1 { "" } else { "s" }
        )?;
    }
    if failed > 0 {
        writeln!(
            out,
            "  {failed} message{} could not be decided",
            if failed == 1 { "" } else { "s" }
        )?;
    }
    for op in p.operations() {
        writeln!(out, "  would {op}")?;
    }
    Ok(())
}

/// The mailboxes the account's rules read, in rule order.
fn mailboxes_of(config: &Config, account: &str, only: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in config.rules.iter().filter(|r| r.account == account) {
        for m in &r.mailboxes {
            if only.is_none_or(|o| same_mailbox(o, m)) && !out.iter().any(|x| same_mailbox(x, m)) {
                out.push(m.clone());
            }
        }
    }
    out
}

/// How one account's pass ended.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AccountResult {
    pub connect_failed: bool,
    pub failed_messages: usize,
}

/// One pass over one account, through one session.
pub async fn run_account(
    config: &Config,
    account: &Account,
    args: &RunArgs,
    now: DateTime<Utc>,
    out: &mut dyn Write,
) -> AccountResult {
    let mut result = AccountResult::default();
    let mailboxes = mailboxes_of(config, &account.name, args.mailbox.as_deref());
    if mailboxes.is_empty() {
        return result;
    }
    let credential = match secret::resolve(&account.secret).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mailwarden: account {}: {e}", account.name);
            result.connect_failed = true;
            return result;
        }
    };
    let mut conn = match crate::imap::connect(account, &credential).await {
        Ok(c) => c,
        Err(e) => {
            // Everything `connect` does is connecting: exit code 3.
            eprintln!("mailwarden: account {}: {e}", account.name);
            result.connect_failed = true;
            return result;
        }
    };
    drop(credential);
    let access = if args.dry_run {
        Access::ReadOnly
    } else {
        Access::ReadWrite
    };
    let mut folders = None;
    for mailbox in &mailboxes {
        let rules: Vec<&Rule> = config.rules_for(&account.name, mailbox).collect();
        let (p, exists) = match plan_mailbox(&mut conn, account, mailbox, &rules, access, now).await
        {
            Ok(x) => x,
            Err(e) => {
                eprintln!("mailwarden: {}/{mailbox}: {e}", account.name);
                result.failed_messages += 1;
                if matches!(e, ImapError::Refused { .. }) {
                    continue;
                }
                break;
            }
        };
        result.failed_messages += p.counts().1;
        for e in &p.entries {
            if let Err(err) = &e.outcome {
                eprintln!(
                    "mailwarden: {}/{mailbox} UID {}: {err}; left where it is",
                    account.name, e.uid
                );
            }
        }
        if args.dry_run {
            let _ = print_plan(out, &p, exists, args.format);
            continue;
        }
        if folders.is_none() {
            match Folders::load(&mut conn).await {
                Ok(f) => folders = Some(f),
                Err(e) => {
                    eprintln!("mailwarden: {}: listing folders: {e}", account.name);
                    result.failed_messages += 1;
                    break;
                }
            }
            // LIST does not change the selected mailbox.
        }
        let folders = folders.as_mut().expect("loaded above");
        match execute(&mut conn, &p, folders, account.create_folders).await {
            Ok(report) => {
                if args.format == Format::Json {
                    let _ = print_plan(out, &p, exists, Format::Json);
                } else {
                    let _ = writeln!(
                        out,
                        "{}/{}: {} messages searched",
                        account.name,
                        mailbox,
                        p.entries.len()
                    );
                    for line in &report.done {
                        let _ = writeln!(out, "  {line}");
                    }
                }
                for problem in &report.problems {
                    eprintln!("mailwarden: {}/{mailbox}: {problem}", account.name);
                }
                result.failed_messages += report.failed.len();
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
    let now = args.now.unwrap_or_else(Utc::now);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mailwarden: cannot start: {e}");
            return Outcome::SomeFailed;
        }
    };
    let mut stdout = std::io::stdout().lock();
    let results: Vec<AccountResult> = runtime.block_on(async {
        let mut results = Vec::new();
        for account in config
            .accounts
            .iter()
            .filter(|a| args.account.as_ref().is_none_or(|x| *x == a.name))
        {
            results.push(run_account(&config, account, args, now, &mut stdout).await);
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
