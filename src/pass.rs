//! One pass over a mailbox through the account's session, shared by `run`
//! and `watch`: open it, narrow by SEARCH (and, for new mail, by UID above
//! the mark, `marks`), FETCH what the rules read (`rules::Needs`), decide
//! each message (`plan`), and resolve the steps on the server. The dry run
//! prints those steps (`report`); `run` and `watch` hand them to `execute`
//! ([`apply`]) and then record the new mark (`state`).

use std::io::{IsTerminal, Write};

use chrono::{DateTime, Utc};

use crate::config::{Account, Config};
use crate::duplicates::Seen;
use crate::execute::{ExecError, Report, execute, skip_present_copies};
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
use crate::search::{Narrow, criteria};
use crate::state::{State, StateError};

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
        // Texts are large; a header block is small, and every command
        // costs the server a round of its own (a FETCH of 5,000 header
        // blocks answers as fast per message as one of 20,000).
        let batch = match self {
            Reading::Text => 50,
            Reading::Structure => 1000,
            Reading::Header => 5000,
        };
        (items, batch)
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
}

impl Planned {
    /// How many messages the steps act on.
    pub fn acting(&self) -> usize {
        crate::plan::acted_on(&self.steps)
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

/// A mailbox selected and searched: the messages to read, and the mark to
/// record once all of them are carried out.
pub struct Opened {
    pub status: MailboxStatus,
    pub uids: UidSet,
    pub mark: Mark,
}

/// Which decisions a plan keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Every message read: a dry run shows each.
    All,
    /// Only messages acted on or not decided ([`Entry::matters`]); the
    /// others are counted. `run` prints only what it did, and a pass over
    /// a large mailbox that changes little holds little.
    Acting,
}

/// Opens one mailbox (`path` as the rules name it, `mailbox` as the server
/// does) and finds what to read: all of it, or, given the mark of an
/// earlier pass with the same UIDVALIDITY, only the messages above it and
/// those whose flags changed.
pub async fn open_mailbox(
    session: &mut Session,
    account: &Account,
    source: &Source<'_>,
    options: ReadOptions,
) -> Result<Opened, ImapError> {
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
    let needs = Needs::of(rules.iter().copied());
    let narrow = Narrow::choose(session.has(Capability::GmailExt1), &needs);
    let key = criteria(rules.iter().copied(), now, narrow);
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
    Ok(Opened { status, uids, mark })
}

/// Reads and decides `uids` of an opened mailbox, and resolves the steps on
/// the server: against `folders`, with copies already made left out,
/// exactly as `run` would send them.
#[allow(clippy::too_many_arguments)]
pub async fn plan_uids(
    session: &mut Session,
    folders: &Folders,
    account: &Account,
    source: &Source<'_>,
    opened: &Opened,
    uids: &UidSet,
    options: ReadOptions,
    seen: &mut Seen,
    keep: Keep,
) -> Result<Planned, ImapError> {
    let (entries, searched) = read(session, account, source, uids, options.now, seen, keep).await?;
    let plan = MailboxPlan {
        account: account.name.clone(),
        mailbox: source.mailbox.clone(),
        uid_validity: opened.status.uid_validity,
        entries,
        searched,
    };
    let mut steps = plan.steps(folders, account.create_folders);
    skip_present_copies(session, &plan, &mut steps, options.access).await?;
    Ok(Planned {
        plan,
        steps,
        status: opened.status,
        mark: opened.mark,
    })
}

/// Reads and decides one mailbox whole ([`open_mailbox`], then
/// [`plan_uids`] keeping every decision): what a dry run prints, and what
/// `watch` does with new mail.
pub async fn plan_mailbox(
    session: &mut Session,
    folders: &Folders,
    account: &Account,
    source: &Source<'_>,
    options: ReadOptions,
    seen: &mut Seen,
) -> Result<Planned, ImapError> {
    let opened = open_mailbox(session, account, source, options).await?;
    plan_uids(
        session,
        folders,
        account,
        source,
        &opened,
        &opened.uids,
        options,
        seen,
        Keep::All,
    )
    .await
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
    now: DateTime<Utc>,
    seen: &mut Seen,
    keep: Keep,
) -> Result<(Vec<Entry>, usize), ImapError> {
    let (path, mailbox, rules) = (source.path, source.mailbox, source.rules);
    let needs = &Needs::of(rules.iter().copied());
    let mut searched = 0;
    // Not sized by `uids` up front: that is the server's SEARCH answer,
    // and an entry is far larger than a UID. Entries come with answers.
    let mut entries = Vec::new();
    // Messages are decided in the order the server answers, ascending UIDs
    // in practice: of two with one Message-ID, the first read is the
    // original.
    let mut decide = |mut f: Fetched| {
        if let Ok(m) = &mut f.message {
            m.duplicate = seen.check(m);
        }
        searched += 1;
        let entry = decide(path, rules, f, now);
        if keep == Keep::All || entry.matters() {
            entries.push(entry);
        }
    };
    let reading = Reading::of(needs);
    let (items, batch) = reading.items(needs);
    let progress = std::io::stderr().is_terminal() && uids.len() > batch;
    let mut read = 0;
    for chunk in uids.as_slice().chunks(batch) {
        let chunk: UidSet = chunk.iter().copied().collect();
        // Answers without the BODYSTRUCTURE asked for (a server sent one
        // the parser could not read) are read again from the text.
        let mut unread = Vec::new();
        let answered = session
            .fetch(&chunk, &items, |d| {
                if reading == Reading::Structure && d.structure.is_none() {
                    unread.extend(d.uid);
                } else {
                    decide(to_fetched(d, reading, now));
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
                    decide(to_fetched(d, Reading::Text, now));
                })
                .await?;
            missing = missing.without(&again);
        }
        if !missing.is_empty() {
            let here = session.search_among(&missing, &SearchKey::All).await?;
            for uid in here.iter() {
                decide(Fetched {
                    uid,
                    message: Err("the server's answer for this message could not be read".into()),
                });
            }
        }
        read += chunk.len();
        if progress {
            eprint!(
                "\r{}/{}: read {} of {} messages",
                account.name,
                crate::display::escape(mailbox.as_str()),
                read,
                uids.len()
            );
        }
    }
    if progress {
        crate::say!("");
    }
    entries.sort_by_key(|e| e.uid);
    Ok((entries, searched))
}

/// What the account's `duplicate` conditions start from: the Message-IDs
/// the state remembers (none without a state, as in a first dry run), or
/// nothing at all for an account whose rules never ask.
pub fn seen_for(config: &Config, account: &str, state: Option<&State>) -> Result<Seen, StateError> {
    let asks = config
        .rules
        .iter()
        .any(|r| r.accounts.contains(account) && r.reads_duplicates());
    match (asks, state) {
        (false, _) => Ok(Seen::off()),
        (true, None) => Ok(Seen::from(Default::default())),
        (true, Some(state)) => state.seen_ids(account).map(Seen::from),
    }
}

/// Records that a mailbox's pass was carried out: its mark, and the
/// Message-IDs seen for the first time.
pub fn record(
    state: &State,
    account: &str,
    mailbox: &Mailbox,
    mark: Mark,
    seen: &mut Seen,
) -> Result<(), StateError> {
    state.set_mark(account, mailbox, mark)?;
    state.remember(account, &seen.take_fresh())
}

/// Carries out the steps of a mailbox, or of one slice of it: each action
/// in the log, problems on standard error, and with `json` the decisions on
/// `out`. Returns what was done, for [`print_done`] once the mailbox is
/// done, and how many messages failed.
pub async fn apply(
    session: &mut Session,
    folders: &mut Folders,
    planned: &Planned,
    account: &Account,
    state: &State,
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<(Report, usize), ExecError> {
    let plan = &planned.plan;
    let report = execute(session, plan, &planned.steps, folders, state).await?;
    // Output closed early stops the printing, never the work.
    if json {
        let _ = plan_json(out, plan);
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
    let failed = report.failed.len() + report_undecided(plan);
    Ok((report, failed))
}

/// What was done in a mailbox, one line per kind and destination, under
/// how many messages were read.
pub fn print_done(
    out: &mut (dyn Write + Send),
    account: &Account,
    mailbox: &Mailbox,
    searched: usize,
    report: &Report,
) {
    if report.done.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "{}/{}: {} searched",
        account.name,
        crate::display::escape(mailbox.as_str()),
        messages(searched)
    );
    for line in &report.done {
        let _ = writeln!(out, "  {}", crate::display::escape(&line.to_string()));
    }
}

/// The most messages a pass reads and decides before carrying them out,
/// where no `max_actions` limit needs the whole count first. What a pass
/// holds then does not grow with the mailbox; the price is a few more
/// commands (each slice moves its own messages, so a destination takes one
/// more command line per slice).
/// `MAILWARDEN_SLICE` sets another size (docs/performance.md).
pub const SLICE: usize = 50_000;

fn slice_size() -> usize {
    std::env::var("MAILWARDEN_SLICE")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(SLICE)
}

/// Where a pass carried out tells what it did: the summary or the JSON
/// decisions on `out`, and each slice once carried out to `carried`
/// (`watch` counts its actions for the metrics).
pub struct Telling<'a> {
    pub out: &'a mut (dyn Write + Send),
    pub json: bool,
    pub carried: Option<&'a mut (dyn FnMut(&Planned) + Send)>,
}

/// How carrying out a pass over one mailbox ended.
#[derive(Debug)]
pub enum Carried {
    /// Done and recorded: how many messages failed.
    Done(usize),
    /// It would act on more messages than `max_actions` allows: nothing
    /// was done. Why, and how many messages each rule would have taken.
    Refused {
        why: String,
        per_rule: Vec<(String, usize)>,
    },
}

/// A pass over one mailbox that could not go on, and how many messages of
/// what it had planned were left undone.
#[derive(Debug)]
pub struct Interrupted {
    pub error: ExecError,
    pub not_handled: usize,
}

impl From<ImapError> for Interrupted {
    fn from(e: ImapError) -> Self {
        Interrupted {
            error: ExecError::Imap(e),
            not_handled: 0,
        }
    }
}

/// One pass over one mailbox, carried out: opened, read and decided in
/// slices of [`SLICE`] messages, each carried out before the next is read
/// (or all at once where `max_actions` applies, which needs the count
/// before anything is done), what was done printed, and the mark and the
/// Message-IDs seen recorded.
#[allow(clippy::too_many_arguments)]
pub async fn carry_out(
    session: &mut Session,
    folders: &mut Folders,
    account: &Account,
    source: &Source<'_>,
    options: ReadOptions,
    seen: &mut Seen,
    state: &State,
    limited: bool,
    tell: Telling<'_>,
) -> Result<Carried, Interrupted> {
    let Telling {
        out,
        json,
        mut carried,
    } = tell;
    let opened = open_mailbox(session, account, source, options).await?;
    let limit = account.max_actions.filter(|_| limited);
    let slice = if limit.is_some() {
        usize::MAX
    } else {
        slice_size()
    };
    // `run --format json` prints every message's decision.
    let keep = if json { Keep::All } else { Keep::Acting };
    let (mut report, mut failed, mut searched) = (Report::default(), 0, 0);
    for chunk in opened.uids.as_slice().chunks(slice) {
        let uids = UidSet::new(chunk.iter().copied());
        let planned = plan_uids(
            session, folders, account, source, &opened, &uids, options, seen, keep,
        )
        .await?;
        if limit.is_some()
            && let Some(why) = planned.over_limit(account)
        {
            return Ok(Carried::Refused {
                why,
                per_rule: planned.plan.counts().0,
            });
        }
        searched += planned.plan.searched;
        if planned.plan.entries.is_empty() {
            continue;
        }
        let (done, f) = apply(session, folders, &planned, account, state, json, out)
            .await
            .map_err(|error| Interrupted {
                error,
                not_handled: planned.acting(),
            })?;
        report.merge(done);
        failed += f;
        if let Some(f) = carried.as_mut() {
            f(&planned);
        }
    }
    if !json {
        print_done(out, account, source.mailbox, searched, &report);
    }
    record(state, &account.name, source.mailbox, opened.mark, seen).map_err(|e| Interrupted {
        error: ExecError::State(e),
        not_handled: 0,
    })?;
    Ok(Carried::Done(failed))
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
    for r in config.rules.iter().filter(|r| r.accounts.contains(account)) {
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
