//! One pass over an account's mailboxes through its session, shared by
//! `run` and `watch`: open a mailbox, narrow by SEARCH (and, for new mail,
//! by UID above the mark), FETCH what the rules read, decide each message
//! (`plan`), then print the plan or hand it to `execute`, and record how far
//! evaluation got (`state`).

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::cli::Format;
use crate::config::{Account, Config};
use crate::execute::{ExecError, Folders, execute};
use crate::imap::conn::{Access, Conn, FetchedMessage, ImapError, MailboxStatus};
use crate::message::{Arrival, Message, MessageError, Meta};
use crate::plan::{Fetched, MailboxPlan, decide};
use crate::report::{DecisionJson, actions_text, decision_json};
use crate::rules::{Condition, Rule, same_mailbox};
use crate::search::criteria;
use crate::state::{Mark, State};

/// Header fields every decision may read, plus those the rules name.
pub fn header_fields<'r>(rules: impl IntoIterator<Item = &'r Rule>) -> Vec<String> {
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

/// How much of each message a pass reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// The header fields the rules read.
    Header,
    /// Those and BODYSTRUCTURE, for attachment conditions: no part is
    /// downloaded.
    Structure,
    /// Those, Content-Transfer-Encoding and the text (BODY[TEXT]), for
    /// body conditions: the message without the header fields no rule
    /// reads (Received, DKIM-Signature...).
    Whole,
}

impl Reading {
    /// What `rules` need; texts instead of structures where the server's
    /// BODYSTRUCTURE cannot be read.
    fn for_rules(rules: &[&Rule], structure_readable: bool) -> Reading {
        let any = |f: fn(&Condition) -> bool| rules.iter().any(|r| r.conditions.iter().any(f));
        if any(Condition::needs_text) {
            Reading::Whole
        } else if any(Condition::needs_structure) {
            if structure_readable {
                Reading::Structure
            } else {
                Reading::Whole
            }
        } else {
            Reading::Header
        }
    }

    /// The FETCH items, and how many messages to fetch per batch.
    fn items(self, rules: &[&Rule]) -> (String, usize) {
        let fields = header_fields(rules.iter().copied()).join(" ");
        let (content, batch) = match self {
            Reading::Header => (format!("BODY.PEEK[HEADER.FIELDS ({fields})]"), 1000),
            Reading::Structure => (
                format!("BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS ({fields})]"),
                1000,
            ),
            Reading::Whole => (
                format!(
                    "BODY.PEEK[HEADER.FIELDS ({fields} CONTENT-TRANSFER-ENCODING)] BODY.PEEK[TEXT]"
                ),
                50,
            ),
        };
        (
            format!("UID FLAGS INTERNALDATE RFC822.SIZE {content}"),
            batch,
        )
    }
}

fn to_fetched(m: FetchedMessage, reading: Reading, now: DateTime<Utc>) -> Fetched {
    let meta = Meta {
        arrival: Arrival::At(m.internal_date.unwrap_or(now)),
        flags: m.flags,
        size: m.size.map(u64::from),
    };
    let parsed = match reading {
        // The fields read and the text make the message that `test`
        // would see, less the header fields no rule reads.
        Reading::Whole => m
            .text
            .ok_or(MessageError::Missing("BODY[TEXT]"))
            .and_then(|text| Message::from_server(&m.data, Some(&text), meta)),
        Reading::Header => Message::from_server(&m.data, None, meta),
        Reading::Structure => Message::from_server(&m.data, None, meta).and_then(|msg| {
            let skeleton = m.structure.ok_or(MessageError::Missing("BODYSTRUCTURE"))?;
            Ok(msg.with_structure(&skeleton))
        }),
    };
    Fetched {
        uid: m.uid,
        message: parsed.map_err(|e| e.to_string()),
    }
}

/// Reads and decides one mailbox: all of it, or, given the mark of an
/// earlier pass with the same UIDVALIDITY, only the messages above it.
/// Returns the plan, the mailbox status and the new mark.
pub async fn plan_mailbox(
    conn: &mut Conn,
    account: &Account,
    mailbox: &str,
    rules: &[&Rule],
    access: Access,
    mark: Option<Mark>,
    now: DateTime<Utc>,
) -> Result<(MailboxPlan, MailboxStatus, Mark), ImapError> {
    // New mail in the mailbox already selected needs no new SELECT (the
    // server reports changes on the open connection).
    let status = match conn.selected() {
        Some((m, st)) if mark.is_some() && m == mailbox && access == Access::ReadWrite => *st,
        _ => conn.open(mailbox, access).await?,
    };
    let above = match mark {
        Some(m) if m.uid_validity == status.uid_validity => Some(m.last_uid),
        Some(m) => {
            tracing::warn!(
                account = %account.name, %mailbox, old = m.uid_validity.0, new = status.uid_validity.0,
                "UIDVALIDITY changed: every message is evaluated again"
            );
            None
        }
        None => None,
    };
    let search = criteria(rules.iter().copied(), now);
    let mut modseq = status.highest_modseq;
    let (uids, highest) = match above {
        None => {
            let uids = conn.uid_search(&search).await?;
            let seen = uids.iter().map(|u| u.0).max().unwrap_or(0);
            (
                uids,
                status
                    .uid_next
                    .map_or(seen, |n| n.saturating_sub(1).max(seen)),
            )
        }
        Some(last) => {
            // RFC 3501 6.4.8: "n:*" always includes the highest UID, so
            // the result is filtered; the work is the new mail's, not the
            // mailbox's.
            let mut fresh = conn.uid_search(&format!("UID {}:*", last + 1)).await?;
            fresh.retain(|u| u.0 > last);
            // With CONDSTORE, older messages whose flags changed since the
            // last pass are decided again (a rule on `flagged: true` acts
            // when the user flags a message, not at the next sweep).
            let old_mark = mark.and_then(|m| m.highest_modseq);
            modseq = old_mark;
            if let Some(since) = old_mark.filter(|_| conn.has("CONDSTORE")) {
                let changed = conn.changed_since(since).await?;
                modseq = changed.iter().map(|(_, m)| *m).max().max(Some(since));
                fresh.extend(changed.into_iter().map(|(u, _)| u).filter(|u| u.0 <= last));
                fresh.sort_unstable();
                fresh.dedup();
            }
            let top = fresh.iter().map(|u| u.0).max().unwrap_or(0).max(last);
            if fresh.is_empty() {
                (Vec::new(), last)
            } else {
                (conn.uid_search_among(&fresh, &search).await?, top)
            }
        }
    };
    let reading = Reading::for_rules(rules, conn.bodystructure_readable());
    let (items, batch) = reading.items(rules);
    let progress = std::io::stderr().is_terminal() && uids.len() > batch;
    // Each batch is decided as it arrives, so only the small plan entries
    // stay in memory, not the messages.
    let mut entries = Vec::with_capacity(uids.len());
    for chunk in uids.chunks(batch) {
        let fetched = match conn.uid_fetch(chunk, &items).await {
            Ok(f) => f,
            Err(e) => {
                if reading == Reading::Structure && matches!(e, ImapError::Unreadable(_)) {
                    // The session is lost; a new one reads texts instead.
                    conn.distrust_bodystructure();
                }
                return Err(e);
            }
        };
        for m in fetched {
            entries.push(decide(mailbox, rules, to_fetched(m, reading, now), now));
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
    let mark = Mark {
        uid_validity: status.uid_validity,
        last_uid: highest,
        highest_modseq: modseq,
    };
    Ok((plan, status, mark))
}

/// Carries out a plan and prints what was done; returns the messages that
/// failed.
pub async fn apply(
    conn: &mut Conn,
    folders: &mut Option<Folders>,
    plan: &MailboxPlan,
    account: &Account,
    state: &State,
    format: Format,
    out: &mut (dyn Write + Send),
) -> Result<usize, ExecError> {
    if folders.is_none() {
        // LIST does not change the selected mailbox.
        *folders = Some(Folders::load(conn).await?);
    }
    let folders = folders.as_mut().expect("loaded above");
    let report = execute(conn, plan, folders, account.create_folders, state).await?;
    if format == Format::Json {
        let _ = print_plan(out, plan, 0, Format::Json);
    } else if !report.done.is_empty() {
        let _ = writeln!(
            out,
            "{}/{}: {} messages searched",
            account.name,
            plan.mailbox,
            plan.entries.len()
        );
        for line in &report.done {
            let _ = writeln!(out, "  {line}");
        }
    }
    for e in &plan.entries {
        if let Ok(d) = &e.outcome
            && d.rule.is_some()
            && !report.failed.contains(&e.uid)
        {
            tracing::info!(
                account = %account.name, mailbox = %plan.mailbox, uid = e.uid.0,
                message_id = e.message_id.as_deref().unwrap_or(""), rule = d.rule.as_deref().unwrap_or(""),
                "{}", actions_text(d)
            );
        }
    }
    for problem in &report.problems {
        eprintln!("mailwarden: {}/{}: {problem}", account.name, plan.mailbox);
    }
    Ok(report.failed.len() + report_undecided(plan))
}

/// Reports the messages that could not be read or decided (they stay where
/// they are) and returns how many there were.
pub fn report_undecided(plan: &MailboxPlan) -> usize {
    for e in &plan.entries {
        if let Err(err) = &e.outcome {
            eprintln!(
                "mailwarden: {}/{} UID {}: {err}; left where it is",
                plan.account, plan.mailbox, e.uid
            );
        }
    }
    plan.counts().1
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
    out: &mut (dyn Write + Send),
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
pub fn mailboxes_of(config: &Config, account: &str, only: Option<&str>) -> Vec<String> {
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
