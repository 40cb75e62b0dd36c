//! One pass over a mailbox through the account's session, shared by `run`
//! and `watch`: open it, narrow by SEARCH (and, for new mail, by UID above
//! the mark, `marks`), FETCH what the rules read (`rules::Needs`), decide
//! each message (`plan`), and resolve the steps on the server. The dry run
//! prints those steps (`report`); `run` and `watch` hand them to `execute`
//! ([`apply`]) and then record the new mark (`state`).

use std::io::{IsTerminal, Write};

use chrono::{DateTime, Utc};

use crate::config::{Account, Config};
use crate::execute::{ExecError, execute, skip_present_copies};
use crate::imap::command::{FetchItems, SearchKey};
use crate::imap::folders::Folders;
use crate::imap::response::FetchData;
use crate::imap::types::{Capability, Mailbox, UidSet};
use crate::imap::{Access, ImapError, MailboxStatus, Session};
use crate::marks::{self, Mark, Scope};
use crate::message::{Arrival, Message, MessageError, Meta};
use crate::plan::{Entry, Fetched, MailboxPlan, Step, decide, messages};
use crate::report::{changes_text, plan_json};
use crate::rules::{FolderPath, Needs, Rule, same_mailbox};
use crate::search::criteria;
use crate::state::State;

/// The most of a message's text that body conditions read: a partial fetch
/// (RFC 3501 6.4.5), so that one huge message cannot take the memory. Text
/// parts come first in mail; beyond this, attachments are what is left.
pub const MAX_BODY: u32 = 16 << 20;

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
    Text,
}

impl Reading {
    fn of(needs: &Needs) -> Reading {
        if needs.text {
            Reading::Text
        } else if needs.structure {
            Reading::Structure
        } else {
            Reading::Header
        }
    }

    /// The FETCH items, and how many messages to fetch per command.
    fn items(self, needs: &Needs) -> (FetchItems, usize) {
        let items = FetchItems {
            header_fields: needs.header_fields.clone(),
            structure: self == Reading::Structure,
            text: (self == Reading::Text).then_some(MAX_BODY),
            modseq: false,
        };
        (items, if self == Reading::Text { 50 } else { 1000 })
    }
}

fn to_fetched(d: FetchData, reading: Reading, now: DateTime<Utc>) -> Fetched {
    let meta = Meta {
        arrival: Arrival::At(d.internal_date.unwrap_or(now)),
        flags: d.flags.unwrap_or_default(),
        size: d.size.map(u64::from),
    };
    let header = d.header.unwrap_or_default();
    let parsed = match reading {
        // The fields read and the text make the message that `test`
        // would see, less the header fields no rule reads.
        Reading::Text => d
            .text
            .ok_or(MessageError::Missing("BODY[TEXT]"))
            .and_then(|text| Message::from_server(&header, Some(&text), meta)),
        Reading::Header => Message::from_server(&header, None, meta),
        Reading::Structure => Message::from_server(&header, None, meta).and_then(|msg| {
            let skeleton = d.structure.ok_or(MessageError::Missing("BODYSTRUCTURE"))?;
            Ok(msg.with_structure(&skeleton))
        }),
    };
    Fetched {
        uid: d
            .uid
            .expect("the session passes on only answers with a UID"),
        message: parsed.map_err(|e| e.to_string()),
    }
}

/// One mailbox to read: as the rules name it, as the server names it, and
/// the rules that read it.
pub struct Source<'a> {
    pub path: &'a FolderPath,
    pub mailbox: &'a Mailbox,
    pub rules: &'a [&'a Rule],
}

/// How to read it: read-only (a dry run) or not, all of it or only above
/// an earlier pass's mark, and the time the rules compare against.
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions {
    pub access: Access,
    pub mark: Option<Mark>,
    pub now: DateTime<Utc>,
}

/// A mailbox read and decided, ready to print or to carry out.
pub struct Planned {
    pub plan: MailboxPlan,
    pub steps: Vec<Step>,
    pub status: MailboxStatus,
    /// The mark to record once the steps are carried out.
    pub mark: Mark,
    /// When each message read arrived (INTERNALDATE), for the daemon's
    /// arrival-to-action latency.
    pub arrivals: std::collections::BTreeMap<crate::imap::types::Uid, DateTime<Utc>>,
}

impl Planned {
    /// How many messages the steps act on.
    pub fn acting(&self) -> usize {
        let mut uids = std::collections::BTreeSet::new();
        for s in &self.steps {
            uids.extend(s.op.uids().iter());
        }
        uids.len()
    }

    /// Why this pass must not go ahead: more messages to act on than the
    /// account's `max_actions`.
    pub fn over_limit(&self, account: &Account) -> Option<String> {
        let max = account.max_actions?;
        let n = self.acting();
        (n > max).then(|| {
            format!(
                "this pass would act on {} in {}, more than max_actions ({max}) allows",
                messages(n),
                self.plan.mailbox
            )
        })
    }
}

/// Reads and decides one mailbox (`path` as the rules name it, `mailbox` as
/// the server does): all of it, or, given the mark of an earlier pass with
/// the same UIDVALIDITY, only the messages above it and those whose flags
/// changed. The steps are resolved against `folders`, with copies already
/// made left out, exactly as `run` would send them.
pub async fn plan_mailbox(
    session: &mut Session,
    folders: &Folders,
    account: &Account,
    source: &Source<'_>,
    options: ReadOptions,
) -> Result<Planned, ImapError> {
    let ReadOptions { access, mark, now } = options;
    let (mailbox, rules) = (source.mailbox, source.rules);
    // New mail in the mailbox already selected needs no new SELECT: a
    // NOOP has the server report it (RFC 3501 6.1.2), also on servers that
    // announce new mail to an idling client late.
    let status = match session.selected() {
        Some((m, st)) if mark.is_some() && m == mailbox && access == Access::ReadWrite => {
            session.noop().await?;
            session.selected().map_or(st, |(_, s)| s)
        }
        _ => session.open(mailbox, access).await?,
    };
    let (scope, reset) = marks::scope(mark, &status, session.has(Capability::CondStore));
    if reset {
        tracing::warn!(
            account = %account.name, %mailbox, new = %status.uid_validity,
            "UIDVALIDITY changed: every message is evaluated again"
        );
    }
    let key = criteria(rules.iter().copied(), now);
    let (uids, mark) = match (scope, mark) {
        (
            Scope::Above {
                last,
                changed_since,
            },
            Some(old),
        ) => {
            let fresh = session
                .search(&SearchKey::UidFrom(last.saturating_add(1)))
                .await?;
            // With CONDSTORE, older messages whose flags changed since the
            // last pass are decided again (a rule on `flagged: true` acts
            // when the user flags a message, not at the next sweep).
            let changed = match changed_since {
                Some(since) => session.changed_since(since).await?,
                None => Vec::new(),
            };
            let (candidates, mark) = marks::after_new(old, &fresh, &changed);
            let uids = if candidates.is_empty() {
                candidates
            } else {
                session.search_among(&candidates, &key).await?
            };
            (uids, mark)
        }
        _ => {
            let found = session.search(&key).await?;
            let mark = marks::after_all(&status, &found);
            (found, mark)
        }
    };
    let needs = Needs::of(rules.iter().copied());
    let mut arrivals = std::collections::BTreeMap::new();
    let entries = read(session, account, source, &uids, &needs, now, &mut arrivals).await?;
    let plan = MailboxPlan {
        account: account.name.clone(),
        mailbox: mailbox.clone(),
        uid_validity: status.uid_validity,
        entries,
    };
    let mut steps = plan.steps(folders, account.create_folders);
    skip_present_copies(session, &plan, &mut steps, access).await?;
    Ok(Planned {
        plan,
        steps,
        status,
        mark,
        arrivals,
    })
}

/// Fetches and decides `uids`, a batch at a time; each message is decided
/// as it arrives, so only the small plan entries stay in memory. A message
/// whose answer could not be read (a BODYSTRUCTURE some servers get wrong)
/// is read again from its text; one the server still does not answer for
/// is reported, unless another client removed it meanwhile.
async fn read(
    session: &mut Session,
    account: &Account,
    source: &Source<'_>,
    uids: &UidSet,
    needs: &Needs,
    now: DateTime<Utc>,
    arrivals: &mut std::collections::BTreeMap<crate::imap::types::Uid, DateTime<Utc>>,
) -> Result<Vec<Entry>, ImapError> {
    let (path, mailbox, rules) = (source.path, source.mailbox, source.rules);
    let reading = Reading::of(needs);
    let (items, batch) = reading.items(needs);
    let progress = std::io::stderr().is_terminal() && uids.len() > batch;
    let mut entries = Vec::with_capacity(uids.len());
    for chunk in uids.as_slice().chunks(batch) {
        let chunk: UidSet = chunk.iter().copied().collect();
        // Answers without the BODYSTRUCTURE asked for (a server sent one
        // the parser could not read) are read again from the text.
        let mut unread = Vec::new();
        let answered = session
            .fetch(&chunk, &items, |d| {
                if let (Some(uid), Some(at)) = (d.uid, d.internal_date) {
                    arrivals.insert(uid, at);
                }
                if reading == Reading::Structure && d.structure.is_none() {
                    unread.extend(d.uid);
                } else {
                    entries.push(decide(path, rules, to_fetched(d, reading, now), now));
                }
            })
            .await?;
        let mut missing = UidSet::new(chunk.without(&answered).iter().chain(unread));
        if !missing.is_empty() && reading == Reading::Structure {
            tracing::warn!(
                account = %account.name, %mailbox, messages = missing.len(),
                "the server's BODYSTRUCTURE could not be read; reading those messages' texts instead"
            );
            let (text_items, _) = Reading::Text.items(needs);
            let again = session
                .fetch(&missing, &text_items, |d| {
                    entries.push(decide(path, rules, to_fetched(d, Reading::Text, now), now));
                })
                .await?;
            missing = missing.without(&again);
        }
        if !missing.is_empty() {
            let here = session.search_among(&missing, &SearchKey::All).await?;
            for uid in here.iter() {
                entries.push(decide(
                    path,
                    rules,
                    Fetched {
                        uid,
                        message: Err(
                            "the server's answer for this message could not be read".into()
                        ),
                    },
                    now,
                ));
            }
        }
        if progress {
            eprint!(
                "\r{}/{}: read {} of {} messages",
                account.name,
                crate::display::escape(mailbox.as_str()),
                entries.len(),
                uids.len()
            );
        }
    }
    if progress {
        crate::say!("");
    }
    entries.sort_by_key(|e| e.uid);
    Ok(entries)
}

/// Carries out a mailbox's steps and tells what was done: the summary (or
/// JSON lines) on `out`, each action in the log, problems on standard
/// error. Returns how many messages failed.
pub async fn apply(
    session: &mut Session,
    folders: &mut Folders,
    planned: &Planned,
    account: &Account,
    state: &State,
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<usize, ExecError> {
    let plan = &planned.plan;
    let report = execute(session, plan, &planned.steps, folders, state).await?;
    // Output closed early stops the printing, never the work.
    if json {
        let _ = plan_json(out, plan);
    } else if !report.done.is_empty() {
        let _ = writeln!(
            out,
            "{}/{}: {} searched",
            account.name,
            crate::display::escape(plan.mailbox.as_str()),
            messages(plan.entries.len())
        );
        for line in &report.done {
            let _ = writeln!(out, "  {}", crate::display::escape(line));
        }
    }
    // One line per message that something was done to: a message whose
    // flags were already as the rules want is not logged on every pass.
    for e in &plan.entries {
        let changes = changes_text(e);
        if let Ok(d) = &e.outcome
            && !changes.is_empty()
            && !report.failed.contains(&e.uid)
            && !report.gone.contains(&e.uid)
        {
            tracing::info!(
                account = %account.name, mailbox = %plan.mailbox, uid = e.uid.get(),
                message_id = e.message_id.as_deref().unwrap_or(""), rule = d.rule.as_deref().unwrap_or(""),
                "{changes}"
            );
        }
    }
    for problem in &report.problems {
        crate::say!(
            "mailwarden: {}/{}: {}",
            account.name,
            crate::display::escape(plan.mailbox.as_str()),
            crate::display::escape(problem)
        );
    }
    Ok(report.failed.len() + report_undecided(plan))
}

/// Reports the messages that could not be read or decided (they stay where
/// they are) and returns how many there were.
pub fn report_undecided(plan: &MailboxPlan) -> usize {
    for e in &plan.entries {
        if let Err(err) = &e.outcome {
            crate::say!(
                "mailwarden: {}/{} UID {}: {}; left where it is",
                plan.account,
                crate::display::escape(plan.mailbox.as_str()),
                e.uid,
                crate::display::escape(err)
            );
        }
    }
    plan.counts().1
}

/// The mailboxes the account's rules read, as the rules name them, in rule
/// order; with `only`, just that one.
pub fn mailboxes_of(config: &Config, account: &str, only: Option<&str>) -> Vec<FolderPath> {
    let mut out: Vec<FolderPath> = Vec::new();
    for r in config.rules.iter().filter(|r| r.account == account) {
        for m in &r.mailboxes {
            if only.is_none_or(|o| same_mailbox(o, m))
                && !out.iter().any(|x| same_mailbox(x.as_str(), m))
            {
                out.push(FolderPath::parse(m).expect("checked when the configuration was read"));
            }
        }
    }
    out
}
