//! The rule model: validated, compiled rules (conditions and actions) as
//! `config` produces them and `evaluate` consumes them. Pure data, no IO.

pub mod evaluate;
pub mod template;
pub mod text;

use std::fmt;
use std::time::Duration;

use crate::config::units::{DateBound, format_duration};
use template::Template;
use text::TextTest;

pub use evaluate::{Decision, EvalError, evaluate};

/// One rule, in file order.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub accounts: RuleAccounts,
    /// Source mailboxes, as written (levels separated by `/`).
    pub mailboxes: Vec<String>,
    /// All of these must hold; empty matches every message.
    pub conditions: Vec<Condition>,
    pub actions: Vec<Action>,
    /// `stop: true`, or a `stop` action.
    pub stop: bool,
    /// Line of the rule in the configuration file.
    pub line: u32,
}

/// Which accounts' mail a rule reads: `account:` as a name or a list, or,
/// left out, every account of the file (as a Sieve script or a Gmail filter
/// applies to all the mail it sees).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleAccounts {
    Every,
    Only(Vec<String>),
}

impl RuleAccounts {
    pub fn contains(&self, account: &str) -> bool {
        match self {
            RuleAccounts::Every => true,
            RuleAccounts::Only(names) => names.iter().any(|n| n == account),
        }
    }
}

impl fmt::Display for RuleAccounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleAccounts::Every => f.write_str("every account"),
            RuleAccounts::Only(names) => f.write_str(&names.join(", ")),
        }
    }
}

impl Rule {
    /// Does this rule look at messages in `mailbox` of `account`? Mailbox
    /// names compare as IMAP does: INBOX in any case, other names exactly.
    pub fn applies_to(&self, account: &str, mailbox: &str) -> bool {
        self.accounts.contains(account) && self.mailboxes.iter().any(|m| same_mailbox(m, mailbox))
    }

    /// Does this rule ask whether a message is a duplicate?
    pub fn reads_duplicates(&self) -> bool {
        self.conditions.iter().any(Condition::reads_duplicates)
    }
}

/// A folder path as rules write it: levels separated by `/` (spec: Folder
/// names), every level a name a person can see and tell apart
/// ([`template::check_folder`]). The server's name for it comes from
/// `imap::folders::Folders::resolve`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FolderPath(String);

impl FolderPath {
    pub fn parse(path: &str) -> Result<FolderPath, String> {
        template::check_folder(path)?;
        Ok(FolderPath(path.to_string()))
    }

    pub fn inbox() -> FolderPath {
        FolderPath("INBOX".into())
    }

    /// One of the built-in fallback names (`Archive`, `Trash`).
    pub(crate) fn fallback(name: &'static str) -> FolderPath {
        FolderPath(name.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn levels(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// Whether both name one folder (INBOX in any case, RFC 3501 5.1).
    pub fn same(&self, other: &FolderPath) -> bool {
        same_mailbox(&self.0, &other.0)
    }
}

impl fmt::Display for FolderPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for FolderPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FolderPath({:?})", self.0)
    }
}

/// RFC 3501 5.1: INBOX is case-insensitive, every other name is not.
pub fn same_mailbox(a: &str, b: &str) -> bool {
    if a.eq_ignore_ascii_case("INBOX") {
        b.eq_ignore_ascii_case("INBOX")
    } else {
        a == b
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressField {
    From,
    To,
    Cc,
    Bcc,
    Sender,
    ReplyTo,
    /// To, Cc and Bcc together.
    Recipient,
}

impl AddressField {
    pub fn key(self) -> &'static str {
        match self {
            AddressField::From => "from",
            AddressField::To => "to",
            AddressField::Cc => "cc",
            AddressField::Bcc => "bcc",
            AddressField::Sender => "sender",
            AddressField::ReplyTo => "reply_to",
            AddressField::Recipient => "recipient",
        }
    }
}

/// A test on one address: every part given must hold for the same address.
#[derive(Debug, Clone)]
pub enum AddressTest {
    Parts {
        /// Against the address and against the display name.
        text: Option<TextTest>,
        /// Against parts of the address, each must hold.
        parts: Vec<(AddressPart, TextTest)>,
    },
    Any(Vec<AddressTest>),
    /// The address is in a list read from a file (`from: { file: ... }`).
    In(std::sync::Arc<AddressList>),
}

/// A part of `user+detail@domain` (RFC 5233 for user and detail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressPart {
    Domain,
    /// Everything before the `@`.
    Localpart,
    /// The local part before the first `+`.
    User,
    /// After the first `+` of the local part; an address without one has
    /// no detail, and no detail test holds for it.
    Detail,
}

impl AddressPart {
    pub const KEYS: [(&'static str, AddressPart); 4] = [
        ("domain", AddressPart::Domain),
        ("localpart", AddressPart::Localpart),
        ("user", AddressPart::User),
        ("detail", AddressPart::Detail),
    ];

    pub fn key(self) -> &'static str {
        AddressPart::KEYS
            .iter()
            .find(|(_, p)| *p == self)
            .map_or("?", |(k, _)| *k)
    }

    /// This part of `address`, if it has one.
    pub fn of(self, address: &str) -> Option<&str> {
        let (local, domain) = address.rsplit_once('@')?;
        match self {
            AddressPart::Domain => Some(domain),
            AddressPart::Localpart => Some(local),
            AddressPart::User => Some(local.split_once('+').map_or(local, |(u, _)| u)),
            AddressPart::Detail => local.split_once('+').map(|(_, d)| d),
        }
    }
}

/// Addresses and domains read from a file: one per line, `#` starts a
/// comment. A line with `@` is one address (`@example.org` is the
/// domain); a line without is a domain, which also covers its subdomains.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddressList {
    pub path: std::path::PathBuf,
    /// Lower-case.
    pub addresses: std::collections::HashSet<String>,
    /// Lower-case.
    pub domains: std::collections::HashSet<String>,
}

impl AddressList {
    /// The most addresses and domains a list file may hold, and its size:
    /// a safelist or blocklist, not a database.
    pub const MAX_LINES: usize = 100_000;
    pub const MAX_BYTES: u64 = 4 << 20;

    /// Reads a list's text; an invalid line is named by its number.
    pub fn parse(path: std::path::PathBuf, text: &str) -> Result<AddressList, String> {
        let mut list = AddressList {
            path,
            ..Default::default()
        };
        for (n, line) in text.lines().enumerate() {
            let entry = line.split('#').next().unwrap_or("").trim().to_lowercase();
            if entry.is_empty() {
                continue;
            }
            if list.addresses.len() + list.domains.len() >= AddressList::MAX_LINES {
                return Err(format!("more than {} entries", AddressList::MAX_LINES));
            }
            if entry.contains(char::is_whitespace) {
                return Err(format!(
                    "line {}: {entry:?} is not an address or a domain",
                    n + 1
                ));
            }
            match entry.split_once('@') {
                Some(("", domain)) => list.domains.insert(domain.to_string()),
                Some(_) => list.addresses.insert(entry),
                None => list.domains.insert(entry),
            };
        }
        Ok(list)
    }

    /// Whether `address` is listed, by itself or by its domain or a
    /// domain above it.
    pub fn contains(&self, address: &str) -> bool {
        let address = address.to_lowercase();
        if self.addresses.contains(&address) {
            return true;
        }
        let Some((_, mut domain)) = address.rsplit_once('@') else {
            return false;
        };
        loop {
            if self.domains.contains(domain) {
                return true;
            }
            match domain.split_once('.') {
                Some((_, parent)) => domain = parent,
                None => return false,
            }
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct AttachmentTest {
    pub name: Option<TextTest>,
    pub mime_type: Option<TextTest>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SystemFlag {
    Seen,
    Flagged,
    Answered,
    Draft,
}

#[derive(Debug, Clone)]
pub enum Condition {
    Address(AddressField, AddressTest),
    /// An address test on any header that holds addresses
    /// (`Delivered-To`, `X-Original-To`, `Resent-To`...).
    AddressIn(String, AddressTest),
    Subject(TextTest),
    Header(String, TextTest),
    Exists(Vec<String>),
    List(TextTest),
    Body(TextTest),
    Attachment(AttachmentTest),
    Size {
        over: Option<u64>,
        under: Option<u64>,
    },
    OlderThan(Duration),
    NewerThan(Duration),
    SentBefore(DateBound),
    SentAfter(DateBound),
    /// Arrival (INTERNALDATE) before or after a date bound.
    ReceivedBefore(DateBound),
    ReceivedAfter(DateBound),
    Flag(SystemFlag, bool),
    Keyword(Vec<String>),
    /// Another message with this Message-ID was seen before by the
    /// account (`duplicates`).
    Duplicate,
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
}

/// What deciding messages by some rules needs of each message besides its
/// flags, arrival time and size: the fields of the header they read, the
/// MIME structure (attachment conditions), the text (body conditions).
/// The IMAP side fetches no more than this, and no less.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needs {
    /// Upper-case, sorted, each once.
    pub header_fields: Vec<String>,
    pub structure: bool,
    pub text: bool,
}

/// Header fields read whatever the rules: what the plan, the journal and
/// the log show of a message (From, Subject) and what names it
/// (Message-ID: the journal, duplicates).
const ALWAYS_READ: [&str; 3] = ["FROM", "SUBJECT", "MESSAGE-ID"];

/// What the MIME structure is told by, for reading a body or attachments
/// (a single-part attachment read from its text is named by its
/// Content-Disposition).
const MIME_FIELDS: [&str; 3] = ["MIME-VERSION", "CONTENT-TYPE", "CONTENT-DISPOSITION"];

impl Condition {
    /// The header fields deciding this condition (and those inside it)
    /// reads. Only these are fetched: a field more costs the server a cache
    /// entry per message (Dovecot caches each field a client fetches), and
    /// the client its parsing.
    fn header_fields(&self, out: &mut std::collections::BTreeSet<String>) {
        let mut add = |names: &[&str]| out.extend(names.iter().map(|n| n.to_string()));
        match self {
            Condition::Address(field, _) => add(match field {
                AddressField::From => &["FROM"],
                AddressField::To => &["TO"],
                AddressField::Cc => &["CC"],
                AddressField::Bcc => &["BCC"],
                AddressField::Sender => &["SENDER"],
                AddressField::ReplyTo => &["REPLY-TO"],
                AddressField::Recipient => &["TO", "CC", "BCC"],
            }),
            Condition::Subject(_) => add(&["SUBJECT"]),
            Condition::List(_) => add(&["LIST-ID"]),
            Condition::SentBefore(_) | Condition::SentAfter(_) => add(&["DATE"]),
            Condition::Body(_) => {
                add(&MIME_FIELDS);
                // The text is decoded as its header says.
                add(&["CONTENT-TRANSFER-ENCODING"]);
            }
            Condition::Attachment(_) => add(&MIME_FIELDS),
            Condition::Header(name, _) | Condition::AddressIn(name, _) => {
                out.insert(name.to_ascii_uppercase());
            }
            Condition::Exists(names) => out.extend(names.iter().map(|n| n.to_ascii_uppercase())),
            Condition::All(cs) | Condition::Any(cs) => cs.iter().for_each(|c| c.header_fields(out)),
            Condition::Not(c) => c.header_fields(out),
            Condition::Size { .. }
            | Condition::OlderThan(_)
            | Condition::NewerThan(_)
            | Condition::ReceivedBefore(_)
            | Condition::ReceivedAfter(_)
            | Condition::Flag(..)
            | Condition::Keyword(_)
            | Condition::Duplicate => {}
        }
    }
}

impl Needs {
    pub fn of<'r>(rules: impl IntoIterator<Item = &'r Rule>) -> Needs {
        let mut fields: std::collections::BTreeSet<String> =
            ALWAYS_READ.iter().map(|s| s.to_string()).collect();
        let (mut structure, mut text) = (false, false);
        for r in rules {
            for c in &r.conditions {
                c.header_fields(&mut fields);
                structure |= c.needs_structure();
                text |= c.needs_text();
            }
            // A folder named by `{sent_year}` and the like reads Date.
            if r.actions
                .iter()
                .filter_map(Action::templates)
                .any(Template::reads_sent)
            {
                fields.insert("DATE".into());
            }
        }
        Needs {
            header_fields: fields.into_iter().collect(),
            structure,
            text,
        }
    }
}

impl Condition {
    /// Does deciding this condition need the message's text? The IMAP
    /// layer uses it, and [`Condition::needs_structure`], to fetch no more
    /// than needed.
    pub fn needs_text(&self) -> bool {
        self.any(&|c| matches!(c, Condition::Body(_)))
    }

    /// Does deciding this condition read the message's flags or keywords?
    pub fn reads_flags(&self) -> bool {
        self.any(&|c| matches!(c, Condition::Flag(..) | Condition::Keyword(_)))
    }

    /// Does deciding this condition need the Message-IDs seen before?
    pub fn reads_duplicates(&self) -> bool {
        self.any(&|c| matches!(c, Condition::Duplicate))
    }

    /// Does deciding this condition need the MIME structure (attachments)?
    pub fn needs_structure(&self) -> bool {
        self.any(&|c| matches!(c, Condition::Attachment(_)))
    }

    /// Does `test` hold for this condition or any inside it?
    fn any(&self, test: &dyn Fn(&Condition) -> bool) -> bool {
        test(self)
            || match self {
                Condition::All(cs) | Condition::Any(cs) => cs.iter().any(|c| c.any(test)),
                Condition::Not(c) => c.any(test),
                _ => false,
            }
    }
}

impl fmt::Display for AddressTest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressTest::Parts { text, parts } => {
                let mut shown = Vec::new();
                if let Some(t) = text {
                    shown.push(t.to_string());
                }
                for (part, t) in parts {
                    shown.push(format!("{} {t}", part.key()));
                }
                f.write_str(&shown.join(" and "))
            }
            AddressTest::Any(tests) => {
                let parts: Vec<String> = tests.iter().map(ToString::to_string).collect();
                write!(f, "any of [{}]", parts.join(", "))
            }
            AddressTest::In(list) => write!(f, "listed in {}", list.path.display()),
        }
    }
}

fn size_text(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{bytes}B")
}

fn date_text(d: &DateBound) -> String {
    match d {
        DateBound::At(t) => t.format("%Y-%m-%d %H:%M:%SZ").to_string(),
        DateBound::Ago(d) => format!("{} ago", format_duration(*d)),
        DateBound::Start(c) => crate::config::units::CALENDAR_WORDS
            .iter()
            .find(|(_, x)| x == c)
            .map_or("?", |(w, _)| *w)
            .to_string(),
    }
}

/// The label shown in `--explain` traces: the condition as the rule wrote it.
impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Address(field, t) => write!(f, "{} {t}", field.key()),
            Condition::AddressIn(name, t) => write!(f, "address {name} {t}"),
            Condition::Subject(t) => write!(f, "subject {t}"),
            Condition::Header(name, t) => write!(f, "header {name} {t}"),
            Condition::Exists(names) => write!(f, "exists {}", names.join(", ")),
            Condition::List(t) => write!(f, "list {t}"),
            Condition::Body(t) => write!(f, "body {t}"),
            Condition::Attachment(a) => {
                f.write_str("attachment")?;
                if let Some(n) = &a.name {
                    write!(f, " name {n}")?;
                }
                if let Some(t) = &a.mime_type {
                    write!(f, " type {t}")?;
                }
                Ok(())
            }
            Condition::Size { over, under } => {
                f.write_str("size")?;
                if let Some(o) = over {
                    write!(f, " over {}", size_text(*o))?;
                }
                if let Some(u) = under {
                    write!(f, " under {}", size_text(*u))?;
                }
                Ok(())
            }
            Condition::OlderThan(d) => write!(f, "older_than {}", format_duration(*d)),
            Condition::NewerThan(d) => write!(f, "newer_than {}", format_duration(*d)),
            Condition::SentBefore(d) => write!(f, "sent_before {}", date_text(d)),
            Condition::SentAfter(d) => write!(f, "sent_after {}", date_text(d)),
            Condition::ReceivedBefore(d) => write!(f, "received_before {}", date_text(d)),
            Condition::ReceivedAfter(d) => write!(f, "received_after {}", date_text(d)),
            Condition::Flag(flag, set) => write!(f, "{}: {set}", Flag::System(*flag).key()),
            Condition::Keyword(k) => write!(f, "keyword {}", k.join(", ")),
            Condition::Duplicate => write!(f, "duplicate"),
            Condition::All(_) => f.write_str("all of"),
            Condition::Any(_) => f.write_str("any of"),
            Condition::Not(_) => f.write_str("not"),
        }
    }
}

/// A message flag: a system flag or a keyword (RFC 3501 2.3.2).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Flag {
    System(SystemFlag),
    Deleted,
    Keyword(String),
}

impl Flag {
    /// The word rules use for it (`seen`) or the keyword itself.
    pub fn key(&self) -> &str {
        match self {
            Flag::System(SystemFlag::Seen) => "seen",
            Flag::System(SystemFlag::Flagged) => "flagged",
            Flag::System(SystemFlag::Answered) => "answered",
            Flag::System(SystemFlag::Draft) => "draft",
            Flag::Deleted => "deleted",
            Flag::Keyword(k) => k,
        }
    }

    /// The IMAP spelling (`\Seen`, `$Work`).
    pub fn imap(&self) -> String {
        match self {
            Flag::System(SystemFlag::Seen) => "\\Seen".into(),
            Flag::System(SystemFlag::Flagged) => "\\Flagged".into(),
            Flag::System(SystemFlag::Answered) => "\\Answered".into(),
            Flag::System(SystemFlag::Draft) => "\\Draft".into(),
            Flag::Deleted => "\\Deleted".into(),
            Flag::Keyword(k) => k.clone(),
        }
    }

    /// Parses `seen`, `\Seen`, `$Work`, `Important`: system flags by name in
    /// any case, anything else as a keyword, which must be an IMAP atom.
    pub fn parse(text: &str) -> Result<Flag, String> {
        let bare = text.strip_prefix('\\').unwrap_or(text);
        let flag = match bare.to_ascii_lowercase().as_str() {
            "seen" | "read" => Flag::System(SystemFlag::Seen),
            "flagged" | "starred" => Flag::System(SystemFlag::Flagged),
            "answered" => Flag::System(SystemFlag::Answered),
            "draft" => Flag::System(SystemFlag::Draft),
            "deleted" => Flag::Deleted,
            _ if text.starts_with('\\') => {
                return Err(format!(
                    "unknown system flag {text:?} (system flags are seen, flagged, answered, draft, deleted)"
                ));
            }
            _ => {
                // RFC 3501 9: atom-char excludes ( ) { SP CTL % * " \ ]
                let bad = text.chars().find(|c| {
                    c.is_control()
                        || c.is_whitespace()
                        || "(){%*\"\\]".contains(*c)
                        || !c.is_ascii()
                });
                if text.is_empty() {
                    return Err("empty flag name".into());
                }
                if let Some(c) = bad {
                    return Err(format!(
                        "keyword {text:?} holds {c:?}, which IMAP keywords cannot contain"
                    ));
                }
                Flag::Keyword(text.to_string())
            }
        };
        Ok(flag)
    }
}

/// Where the deciding action sends the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A folder path as rules write it (`/` between levels).
    Folder(FolderPath),
    /// The folder with this SPECIAL-USE attribute (RFC 6154), else `fallback`.
    SpecialUse {
        attribute: &'static str,
        fallback: &'static str,
    },
    /// Removed for good.
    Expunge,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Folder(p) => write!(f, "{p}"),
            Target::SpecialUse {
                attribute,
                fallback,
            } => write!(f, "{attribute} (else {fallback})"),
            Target::Expunge => f.write_str("(expunged)"),
        }
    }
}

pub const ARCHIVE: Target = Target::SpecialUse {
    attribute: "\\Archive",
    fallback: "Archive",
};
pub const TRASH: Target = Target::SpecialUse {
    attribute: "\\Trash",
    fallback: "Trash",
};
pub const JUNK: Target = Target::SpecialUse {
    attribute: "\\Junk",
    fallback: "Junk",
};
pub const SENT: Target = Target::SpecialUse {
    attribute: "\\Sent",
    fallback: "Sent",
};
pub const DRAFTS: Target = Target::SpecialUse {
    attribute: "\\Drafts",
    fallback: "Drafts",
};

/// The SPECIAL-USE folders (RFC 6154) a rule may name as `move: \Junk`.
pub const SPECIAL_TARGETS: [Target; 5] = [ARCHIVE, DRAFTS, JUNK, SENT, TRASH];

#[derive(Debug, Clone)]
pub enum Action {
    Move(Template),
    /// `move: \Junk`, or the bare `junk`: to a SPECIAL-USE folder.
    MoveTo(Target),
    Copy(Template),
    /// `None`: the SPECIAL-USE archive folder.
    Archive(Option<Template>),
    Flag(Vec<Flag>),
    Unflag(Vec<Flag>),
    Delete {
        expunge: bool,
    },
    Stop,
}

impl Action {
    /// Move, archive and delete end evaluation (spec: Evaluation).
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Action::Move(_) | Action::MoveTo(_) | Action::Archive(_) | Action::Delete { .. }
        )
    }

    pub fn templates(&self) -> Option<&Template> {
        match self {
            Action::Move(t) | Action::Copy(t) | Action::Archive(Some(t)) => Some(t),
            _ => None,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |flags: &[Flag]| flags.iter().map(Flag::imap).collect::<Vec<_>>().join(" ");
        match self {
            Action::Move(t) => write!(f, "move to {t}"),
            Action::MoveTo(t) => write!(f, "move to {t}"),
            Action::Copy(t) => write!(f, "copy to {t}"),
            Action::Archive(Some(t)) => write!(f, "archive to {t}"),
            Action::Archive(None) => write!(f, "archive to {ARCHIVE}"),
            Action::Flag(flags) => write!(f, "flag {}", list(flags)),
            Action::Unflag(flags) => write!(f, "unflag {}", list(flags)),
            Action::Delete { expunge: false } => write!(f, "delete to {TRASH}"),
            Action::Delete { expunge: true } => f.write_str("delete for good (expunge)"),
            Action::Stop => f.write_str("stop"),
        }
    }
}

/// One line describing a rule's conditions, for `check` and logs.
pub fn describe_conditions(conds: &[Condition]) -> String {
    fn one(c: &Condition) -> String {
        match c {
            Condition::All(cs) => format!(
                "all of ({})",
                cs.iter().map(one).collect::<Vec<_>>().join(", ")
            ),
            Condition::Any(cs) => format!(
                "any of ({})",
                cs.iter().map(one).collect::<Vec<_>>().join(", ")
            ),
            Condition::Not(c) => format!("not ({})", one(c)),
            c => c.to_string(),
        }
    }
    if conds.is_empty() {
        "every message".into()
    } else {
        conds.iter().map(one).collect::<Vec<_>>().join(" and ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_header_fields_the_rules_read_are_fetched() {
        let base = "FROM MESSAGE-ID SUBJECT";
        let cases = [
            ("{flagged: true}", "actions: [move: X]", base),
            (
                "{to: a@b}",
                "actions: [move: X]",
                "FROM MESSAGE-ID SUBJECT TO",
            ),
            (
                "{recipient: a@b}",
                "actions: [move: X]",
                "BCC CC FROM MESSAGE-ID SUBJECT TO",
            ),
            (
                "{any: [{reply_to: a@b}, {not: {sender: c@d}}]}",
                "actions: [move: X]",
                "FROM MESSAGE-ID REPLY-TO SENDER SUBJECT",
            ),
            (
                "{list: rust}",
                "actions: [move: X]",
                "FROM LIST-ID MESSAGE-ID SUBJECT",
            ),
            (
                "{sent_before: 2026-01-01}",
                "actions: [move: X]",
                "DATE FROM MESSAGE-ID SUBJECT",
            ),
            ("{older_than: 30d}", "actions: [move: X]", base),
            (
                "{header: {X-Spam-Flag: {is: YES}}, exists: List-Unsubscribe}",
                "actions: [move: X]",
                "FROM LIST-UNSUBSCRIBE MESSAGE-ID SUBJECT X-SPAM-FLAG",
            ),
            (
                "{body: invoice}",
                "actions: [move: X]",
                "CONTENT-DISPOSITION CONTENT-TRANSFER-ENCODING CONTENT-TYPE FROM MESSAGE-ID MIME-VERSION SUBJECT",
            ),
            (
                "{attachment: true}",
                "actions: [move: X]",
                "CONTENT-DISPOSITION CONTENT-TYPE FROM MESSAGE-ID MIME-VERSION SUBJECT",
            ),
            (
                "{flagged: true}",
                "actions: [move: \"Sent/{sent_year}\"]",
                "DATE FROM MESSAGE-ID SUBJECT",
            ),
            ("{flagged: true}", "actions: [move: \"Old/{year}\"]", base),
        ];
        for (cond, actions, want) in cases {
            let cfg = crate::config::with_rules(&format!(
                "  - name: r\n    match: {cond}\n    {actions}\n"
            ));
            assert_eq!(
                Needs::of(&cfg.rules).header_fields.join(" "),
                want,
                "{cond} {actions}"
            );
        }
    }

    #[test]
    fn flag_parsing() {
        let ok = [
            ("seen", Flag::System(SystemFlag::Seen)),
            ("\\Seen", Flag::System(SystemFlag::Seen)),
            ("FLAGGED", Flag::System(SystemFlag::Flagged)),
            ("answered", Flag::System(SystemFlag::Answered)),
            ("draft", Flag::System(SystemFlag::Draft)),
            ("deleted", Flag::Deleted),
            ("$Work", Flag::Keyword("$Work".into())),
            ("Important", Flag::Keyword("Important".into())),
        ];
        for (text, want) in ok {
            assert_eq!(Flag::parse(text), Ok(want), "{text}");
        }
        for bad in ["\\Bogus", "two words", "a(b", "", "x]", "ünï", "a\r\nb"] {
            assert!(Flag::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Flag::parse("seen").unwrap().imap(), "\\Seen");
    }

    #[test]
    fn mailbox_names_compare_like_imap() {
        assert!(same_mailbox("INBOX", "inbox"));
        assert!(same_mailbox("Lists/rust", "Lists/rust"));
        assert!(!same_mailbox("Lists/Rust", "Lists/rust"));
    }

    #[test]
    fn sizes_render_in_the_largest_exact_unit() {
        for (b, t) in [
            (5 << 20, "5MB"),
            (102_400, "100KB"),
            (1500, "1500B"),
            (3 << 30, "3GB"),
        ] {
            assert_eq!(size_text(b), t);
        }
    }
}
