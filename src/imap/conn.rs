//! An authenticated IMAP session whose every command checks its tagged
//! status: async-imap reports a refused SEARCH, FETCH, STORE or EXPUNGE as an
//! empty success, so all commands here go through [`Conn::command`], which
//! reads responses until the tag and turns NO/BAD into an error. Only UID
//! forms of commands are offered (RFC 3501 6.4.8).

use std::collections::BTreeSet;
use std::time::Duration;

use async_imap::imap_proto::{
    AttributeValue, MailboxDatum, MessageSection, Response, ResponseCode, SectionPath, Status,
};
use chrono::{DateTime, Utc};

use super::types::{EncodeError, Uid, UidValidity, decode_mailbox, mailbox_arg, uid_commands};
use crate::rules::Flag;

/// The byte stream under a session: TCP, or TLS over TCP.
pub trait Io:
    tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + std::fmt::Debug
{
}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + std::fmt::Debug> Io for T {}
pub type Stream = Box<dyn Io>;

#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("cannot connect to {addr}: {detail}")]
    Connect { addr: String, detail: String },
    #[error("TLS with {host} failed: {detail}")]
    Tls { host: String, detail: String },
    #[error("login to {host} as {user} failed: {detail}")]
    Auth {
        host: String,
        user: String,
        detail: String,
    },
    #[error("{command} refused by the server: {status} {text}")]
    Refused {
        command: String,
        status: &'static str,
        text: String,
        /// The response code, e.g. `TRYCREATE`.
        code: Option<String>,
    },
    #[error("the server closed the connection")]
    ConnectionLost,
    #[error("no answer from the server within {0:?}")]
    Timeout(Duration),
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A response the parser could not read. The session cannot go on: the
    /// parser would stop at the same bytes again.
    #[error("unreadable response: {0}")]
    Unreadable(String),
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

impl ImapError {
    /// Errors of connecting or logging in (exit code 3), as opposed to
    /// errors of one command.
    pub fn is_connect(&self) -> bool {
        matches!(
            self,
            ImapError::Connect { .. } | ImapError::Tls { .. } | ImapError::Auth { .. }
        )
    }
}

/// The next response within the command timeout; `what` names it in an
/// error. (A macro because the
/// response type of async-imap cannot be named here.)
macro_rules! next_response {
    ($conn:expr, $what:expr) => {
        tokio::time::timeout($conn.timeout, $conn.session.read_response())
            .await
            .map_err(|_| ImapError::Timeout($conn.timeout))?
            .map_err(|e| read_error($what, e))?
            .ok_or(ImapError::ConnectionLost)?
    };
}

/// A failed read: unreadable data, or a broken stream. async-imap tells a
/// parse failure only by its message.
fn read_error(what: impl std::fmt::Display, e: std::io::Error) -> ImapError {
    let text = format!("{what}: {e}");
    if e.kind() == std::io::ErrorKind::Other && text.contains("during parsing of") {
        ImapError::Unreadable(text)
    } else {
        ImapError::Protocol(text)
    }
}

/// Why IDLE ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woke {
    /// The server reported new, changed or removed messages.
    Changed,
    Timeout,
    Stopped,
}

/// What SELECT or EXAMINE reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxStatus {
    pub uid_validity: UidValidity,
    pub exists: u32,
    pub uid_next: Option<u32>,
    /// With CONDSTORE (RFC 7162): the highest mod-sequence in the mailbox.
    pub highest_modseq: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// EXAMINE: nothing can change, not even \Recent or \Seen.
    ReadOnly,
    /// SELECT.
    ReadWrite,
}

/// One message as FETCH returned it.
#[derive(Debug, Clone)]
pub struct FetchedMessage {
    pub uid: Uid,
    pub flags: BTreeSet<Flag>,
    pub internal_date: Option<DateTime<Utc>>,
    pub size: Option<u32>,
    pub data: Vec<u8>,
    /// BODY[TEXT], when fetched: the body after the header.
    pub text: Option<Vec<u8>>,
    /// BODYSTRUCTURE, when fetched, as a skeleton MIME message.
    pub structure: Option<Vec<u8>>,
}

/// A mailbox as LIST returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// Decoded from modified UTF-7.
    pub name: String,
    pub attributes: Vec<String>,
    pub separator: Option<char>,
}

pub struct Conn {
    pub(super) session: async_imap::Session<Stream>,
    pub(super) caps: BTreeSet<String>,
    pub(super) timeout: Duration,
    /// The mailbox opened read-write last, and what SELECT said.
    pub(super) selected: Option<(String, MailboxStatus)>,
    /// An EXISTS arrived with the answer to some command: new mail that
    /// IDLE will not announce again (RFC 3501 7.3.1).
    pub(super) new_mail: bool,
    /// This server sent a BODYSTRUCTURE the parser could not read: ask it
    /// for message texts instead.
    pub(super) bodystructure_unreadable: bool,
}

fn status_word(s: &Status) -> &'static str {
    match s {
        Status::Ok => "OK",
        Status::No => "NO",
        Status::Bad => "BAD",
        Status::PreAuth => "PREAUTH",
        Status::Bye => "BYE",
    }
}

fn code_text(code: &ResponseCode) -> String {
    match code {
        ResponseCode::TryCreate => "TRYCREATE".into(),
        ResponseCode::Alert => "ALERT".into(),
        ResponseCode::Parse => "PARSE".into(),
        ResponseCode::ReadOnly => "READ-ONLY".into(),
        other => format!("{other:?}").to_uppercase(),
    }
}

/// RFC 3501 date-time: `17-Jul-1996 02:44:25 -0700` (day may be space-padded).
fn parse_internal_date(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(s.trim(), "%d-%b-%Y %H:%M:%S %z")
        .ok()
        .map(|d| d.to_utc())
}

fn flags_of(names: &[std::borrow::Cow<str>]) -> BTreeSet<Flag> {
    // \Recent and unknown system flags are not ours to act on.
    names.iter().filter_map(|n| Flag::parse(n).ok()).collect()
}

impl Conn {
    /// The mailbox selected read-write, if the last one opened was.
    pub fn selected(&self) -> Option<&(String, MailboxStatus)> {
        self.selected.as_ref()
    }

    pub fn has(&self, capability: &str) -> bool {
        self.caps.contains(&capability.to_ascii_uppercase())
    }

    /// Can attachments be found from BODYSTRUCTURE on this server? Not once
    /// it sent one that could not be read: servers build BODYSTRUCTURE
    /// from messages, and junk mail makes some of them send malformed ones.
    pub fn bodystructure_readable(&self) -> bool {
        !self.bodystructure_unreadable
    }

    /// Remembers that this server's BODYSTRUCTURE cannot be relied on (also
    /// for a new session to it: the caller carries this over).
    pub fn distrust_bodystructure(&mut self) {
        self.bodystructure_unreadable = true;
    }

    /// Sends `cmd` and reads until its tagged response; `on_data` sees every
    /// untagged response on the way. NO and BAD are errors.
    pub async fn command(
        &mut self,
        cmd: &str,
        mut on_data: impl FnMut(&Response<'_>),
    ) -> Result<Option<String>, ImapError> {
        let name: String = cmd.split(' ').take(2).collect::<Vec<_>>().join(" ");
        tracing::trace!(command = %cmd, "send");
        let started = std::time::Instant::now();
        let id = self
            .session
            .run_command(cmd)
            .await
            .map_err(|e| ImapError::Protocol(format!("sending {name}: {e}")))?;
        loop {
            let resp = next_response!(self, format!("reading the answer to {name}"));
            match resp.parsed() {
                Response::Done {
                    tag,
                    status,
                    outcome,
                } if *tag == id => {
                    tracing::debug!(command = %name, ms = started.elapsed().as_millis() as u64, "done");
                    let code = outcome.code.as_ref().map(code_text);
                    return match status {
                        Status::Ok => Ok(code),
                        s => Err(ImapError::Refused {
                            command: name,
                            status: status_word(s),
                            text: outcome.information.as_deref().unwrap_or("").to_string(),
                            code,
                        }),
                    };
                }
                Response::Done { tag, .. } => {
                    return Err(ImapError::Protocol(format!(
                        "answer for unknown tag {tag:?} to {name}"
                    )));
                }
                Response::Data {
                    status: Status::Bye,
                    outcome,
                } => {
                    // Expected in answer to LOGOUT; otherwise the server is
                    // about to close the connection.
                    if name == "LOGOUT" {
                        tracing::debug!(text = ?outcome.information, "server said BYE");
                    } else {
                        tracing::warn!(text = ?outcome.information, "server said BYE");
                    }
                }
                other => {
                    if let Response::MailboxData(MailboxDatum::Exists(_)) = other
                        && !(name.starts_with("SELECT") || name.starts_with("EXAMINE"))
                    {
                        self.new_mail = true;
                    }
                    on_data(other)
                }
            }
        }
    }

    /// Whether the server reported new mail since the last call.
    pub fn take_new_mail(&mut self) -> bool {
        std::mem::take(&mut self.new_mail)
    }

    /// CAPABILITY, replacing what was known (RFC 3501 6.2.1: capabilities
    /// change after STARTTLS and after login).
    pub async fn refresh_capabilities(&mut self) -> Result<(), ImapError> {
        let mut caps = BTreeSet::new();
        self.command("CAPABILITY", |r| {
            if let Response::Capabilities(list) = r {
                for c in list {
                    caps.insert(capability_name(c));
                }
            }
        })
        .await?;
        self.caps = caps;
        Ok(())
    }

    /// The hierarchy separator (RFC 3501 6.3.8: `LIST "" ""`).
    pub async fn separator(&mut self) -> Result<Option<char>, ImapError> {
        let mut separator = None;
        self.command("LIST \"\" \"\"", |r| {
            if let Response::MailboxData(MailboxDatum::List(l)) = r {
                separator = l.delimiter.as_deref().and_then(|d| d.chars().next());
            }
        })
        .await?;
        Ok(separator)
    }

    /// Every mailbox, with its attributes (SPECIAL-USE ones included where
    /// the server has RFC 6154).
    pub async fn list_all(&mut self) -> Result<Vec<ListEntry>, ImapError> {
        let cmd = if self.has("SPECIAL-USE") && self.has("LIST-EXTENDED") {
            "LIST \"\" \"*\" RETURN (SPECIAL-USE)"
        } else {
            "LIST \"\" \"*\""
        };
        let mut out = Vec::new();
        self.command(cmd, |r| {
            if let Response::MailboxData(MailboxDatum::List(l)) = r {
                out.push(ListEntry {
                    name: decode_mailbox(&l.name),
                    attributes: l.name_attributes.iter().map(name_attribute).collect(),
                    separator: l.delimiter.as_deref().and_then(|d| d.chars().next()),
                });
            }
        })
        .await?;
        Ok(out)
    }

    pub async fn open(
        &mut self,
        mailbox: &str,
        access: Access,
    ) -> Result<MailboxStatus, ImapError> {
        self.selected = None;
        let verb = match access {
            Access::ReadOnly => "EXAMINE",
            Access::ReadWrite => "SELECT",
        };
        let (mut uid_validity, mut exists, mut uid_next, mut highest_modseq) =
            (None, 0, None, None);
        // RFC 7162 3.1.8: the CONDSTORE parameter turns mod-sequences on.
        let condstore = if self.has("CONDSTORE") {
            " (CONDSTORE)"
        } else {
            ""
        };
        self.command(
            &format!("{verb} {}{condstore}", mailbox_arg(mailbox)?),
            |r| match r {
                Response::MailboxData(MailboxDatum::Exists(n)) => exists = *n,
                Response::Data { outcome, .. } => match outcome.code {
                    Some(ResponseCode::UidValidity(v)) => uid_validity = Some(v),
                    Some(ResponseCode::UidNext(n)) => uid_next = Some(n),
                    Some(ResponseCode::HighestModSeq(m)) => highest_modseq = Some(m),
                    _ => {}
                },
                _ => {}
            },
        )
        .await?;
        let uid_validity = uid_validity
            .ok_or_else(|| ImapError::Protocol(format!("{verb} {mailbox} gave no UIDVALIDITY")))?;
        let status = MailboxStatus {
            uid_validity: UidValidity(uid_validity),
            exists,
            uid_next,
            highest_modseq,
        };
        self.selected = (access == Access::ReadWrite).then(|| (mailbox.to_string(), status));
        Ok(status)
    }

    /// UID SEARCH with ASCII criteria (so no CHARSET is needed); sorted.
    pub async fn uid_search(&mut self, criteria: &str) -> Result<Vec<Uid>, ImapError> {
        self.searches(vec![format!("UID SEARCH {criteria}")]).await
    }

    /// UID SEARCH among `uids` only, one command per UID set.
    pub async fn uid_search_among(
        &mut self,
        uids: &[Uid],
        criteria: &str,
    ) -> Result<Vec<Uid>, ImapError> {
        let commands = uid_commands(uids, |set| format!("UID SEARCH UID {set} {criteria}"));
        self.searches(commands).await
    }

    /// The union of the UIDs that `commands` find, sorted.
    async fn searches(&mut self, commands: Vec<String>) -> Result<Vec<Uid>, ImapError> {
        let mut uids = Vec::new();
        for command in commands {
            self.command(&command, |r| {
                if let Response::MailboxData(MailboxDatum::Search(found)) = r {
                    uids.extend(found.iter().map(|u| Uid(*u)));
                }
            })
            .await?;
        }
        uids.sort_unstable();
        uids.dedup();
        Ok(uids)
    }

    /// UID FETCH of `items` for `uids`, in chunks; `body_section` names the
    /// section whose bytes become [`FetchedMessage::data`].
    pub async fn uid_fetch(
        &mut self,
        uids: &[Uid],
        items: &str,
    ) -> Result<Vec<FetchedMessage>, ImapError> {
        let mut out = Vec::with_capacity(uids.len());
        for command in uid_commands(uids, |set| format!("UID FETCH {set} ({items})")) {
            self.command(&command, |r| {
                if let Response::Fetch(_, attrs) = r {
                    let mut m = FetchedMessage {
                        uid: Uid(0),
                        flags: BTreeSet::new(),
                        internal_date: None,
                        size: None,
                        data: Vec::new(),
                        text: None,
                        structure: None,
                    };
                    for a in attrs {
                        match a {
                            AttributeValue::Uid(u) => m.uid = Uid(*u),
                            AttributeValue::Flags(f) => m.flags = flags_of(f),
                            AttributeValue::InternalDate(d) => {
                                m.internal_date = parse_internal_date(d)
                            }
                            AttributeValue::Rfc822Size(s) => m.size = Some(*s),
                            AttributeValue::BodySection {
                                section: Some(SectionPath::Full(MessageSection::Text)),
                                data: Some(d),
                                ..
                            } => m.text = Some(d.to_vec()),
                            AttributeValue::BodySection { data: Some(d), .. }
                            | AttributeValue::Rfc822(Some(d))
                            | AttributeValue::Rfc822Header(Some(d)) => m.data = d.to_vec(),
                            AttributeValue::BodyStructure(b) => {
                                m.structure = Some(super::structure::skeleton(b))
                            }
                            _ => {}
                        }
                    }
                    // A FETCH without UID is an unsolicited flag update.
                    if m.uid.0 != 0 {
                        out.push(m);
                    }
                }
            })
            .await?;
        }
        Ok(out)
    }

    /// Messages whose mod-sequence is above `modseq` (RFC 7162 3.1.4.1,
    /// CHANGEDSINCE), with their mod-sequences. CONDSTORE only.
    pub async fn changed_since(&mut self, modseq: u64) -> Result<Vec<(Uid, u64)>, ImapError> {
        let mut out = Vec::new();
        self.command(
            &format!("UID FETCH 1:* (UID) (CHANGEDSINCE {modseq})"),
            |r| {
                if let Response::Fetch(_, attrs) = r {
                    let uid = attrs.iter().find_map(|a| match a {
                        AttributeValue::Uid(u) => Some(Uid(*u)),
                        _ => None,
                    });
                    let m = attrs.iter().find_map(|a| match a {
                        AttributeValue::ModSeq(m) => Some(*m),
                        _ => None,
                    });
                    if let (Some(uid), Some(m)) = (uid, m) {
                        out.push((uid, m));
                    }
                }
            },
        )
        .await?;
        Ok(out)
    }

    /// Sends `command(set)` for each UID set of `uids`, range-compressed and
    /// split so that no command line is too long.
    async fn per_uid_set(
        &mut self,
        uids: &[Uid],
        command: impl Fn(&str) -> String,
    ) -> Result<(), ImapError> {
        for command in uid_commands(uids, command) {
            self.command(&command, |_| {}).await?;
        }
        Ok(())
    }

    /// `UID STORE set +FLAGS.SILENT (...)` (or `-FLAGS.SILENT`).
    pub async fn uid_store(
        &mut self,
        uids: &[Uid],
        add: bool,
        flags: &[Flag],
    ) -> Result<(), ImapError> {
        let list = flags.iter().map(Flag::imap).collect::<Vec<_>>().join(" ");
        let op = if add {
            "+FLAGS.SILENT"
        } else {
            "-FLAGS.SILENT"
        };
        self.per_uid_set(uids, |set| format!("UID STORE {set} {op} ({list})"))
            .await
    }

    pub async fn uid_copy(&mut self, uids: &[Uid], mailbox: &str) -> Result<(), ImapError> {
        let target = mailbox_arg(mailbox)?;
        self.per_uid_set(uids, |set| format!("UID COPY {set} {target}"))
            .await
    }

    /// RFC 6851 UID MOVE; only when the server offers MOVE.
    pub async fn uid_move(&mut self, uids: &[Uid], mailbox: &str) -> Result<(), ImapError> {
        let target = mailbox_arg(mailbox)?;
        self.per_uid_set(uids, |set| format!("UID MOVE {set} {target}"))
            .await
    }

    /// RFC 4315 UID EXPUNGE: removes exactly these UIDs, never other
    /// messages marked \Deleted by someone else. Only with UIDPLUS.
    pub async fn uid_expunge(&mut self, uids: &[Uid]) -> Result<(), ImapError> {
        self.per_uid_set(uids, |set| format!("UID EXPUNGE {set}"))
            .await
    }

    /// CREATE; "already exists" counts as success (another client may have
    /// created it in the meantime).
    pub async fn create(&mut self, mailbox: &str) -> Result<(), ImapError> {
        match self
            .command(&format!("CREATE {}", mailbox_arg(mailbox)?), |_| {})
            .await
        {
            Ok(_) => Ok(()),
            Err(ImapError::Refused { text, code, .. })
                if code.as_deref() == Some("ALREADYEXISTS")
                    || text.to_lowercase().contains("already exists") =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    pub async fn subscribe(&mut self, mailbox: &str) -> Result<(), ImapError> {
        self.command(&format!("SUBSCRIBE {}", mailbox_arg(mailbox)?), |_| {})
            .await
            .map(|_| ())
    }

    /// APPEND (RFC 3501 6.3.11) with flags and an arrival time.
    pub async fn append(
        &mut self,
        mailbox: &str,
        flags: &[Flag],
        arrival: Option<DateTime<Utc>>,
        content: &[u8],
    ) -> Result<(), ImapError> {
        mailbox_arg(mailbox)?;
        let name = utf7_imap::encode_utf7_imap(mailbox.to_string());
        let flags = format!(
            "({})",
            flags.iter().map(Flag::imap).collect::<Vec<_>>().join(" ")
        );
        // RFC 3501 9: date-time is a quoted string.
        let date = arrival.map(|d| d.format("\"%d-%b-%Y %H:%M:%S +0000\"").to_string());
        tokio::time::timeout(
            self.timeout,
            self.session
                .append(&name, Some(&flags), date.as_deref(), content),
        )
        .await
        .map_err(|_| ImapError::Timeout(self.timeout))?
        .map_err(|e| ImapError::Protocol(format!("APPEND to {mailbox}: {e}")))
    }

    /// IDLE (RFC 2177) on the selected mailbox until the server reports a
    /// change, `max` passes, or `stop` changes; then DONE. A DONE that is
    /// not answered within the command timeout means the connection is dead
    /// (a NAT that dropped it silently), so renewing IDLE every few minutes
    /// is also the liveness check.
    pub async fn idle(
        &mut self,
        max: Duration,
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Result<Woke, ImapError> {
        let id = self
            .session
            .run_command("IDLE")
            .await
            .map_err(|e| ImapError::Protocol(format!("sending IDLE: {e}")))?;
        loop {
            let resp = next_response!(self, "IDLE");
            match resp.parsed() {
                Response::Continue { .. } => break,
                Response::Done {
                    status, outcome, ..
                } => {
                    return Err(ImapError::Refused {
                        command: "IDLE".into(),
                        status: status_word(status),
                        text: outcome.information.as_deref().unwrap_or("").to_string(),
                        code: None,
                    });
                }
                _ => {}
            }
        }
        let deadline = tokio::time::Instant::now() + max;
        let woke = loop {
            tokio::select! {
                r = self.session.read_response() => {
                    let resp = r
                        .map_err(|e| read_error("while idling", e))?
                        .ok_or(ImapError::ConnectionLost)?;
                    match resp.parsed() {
                        Response::MailboxData(MailboxDatum::Exists(_) | MailboxDatum::Recent(_))
                        | Response::Expunge(_)
                        | Response::Fetch(..) => break Woke::Changed,
                        Response::Data { status: Status::Bye, .. } => return Err(ImapError::ConnectionLost),
                        // "* OK Still here" keepalives and the like.
                        _ => {}
                    }
                }
                _ = tokio::time::sleep_until(deadline) => break Woke::Timeout,
                _ = stop.changed() => break Woke::Stopped,
            }
        };
        self.session
            .run_command_untagged("DONE")
            .await
            .map_err(|e| ImapError::Protocol(format!("sending DONE: {e}")))?;
        loop {
            let resp = next_response!(self, "IDLE");
            if let Response::Done { tag, status, .. } = resp.parsed()
                && *tag == id
            {
                return match status {
                    Status::Ok => Ok(woke),
                    s => Err(ImapError::Protocol(format!(
                        "IDLE ended with {}",
                        status_word(s)
                    ))),
                };
            }
        }
    }

    /// LOGOUT; errors are irrelevant by then.
    pub async fn logout(mut self) {
        let _ = self.command("LOGOUT", |_| {}).await;
    }
}

/// `\\Archive`, `\\Noselect`, ... as the server wrote it.
fn name_attribute(a: &async_imap::imap_proto::NameAttribute) -> String {
    use async_imap::imap_proto::NameAttribute as N;
    match a {
        N::NoInferiors => "\\Noinferiors".into(),
        N::NoSelect => "\\Noselect".into(),
        N::Marked => "\\Marked".into(),
        N::Unmarked => "\\Unmarked".into(),
        N::All => "\\All".into(),
        N::Archive => "\\Archive".into(),
        N::Drafts => "\\Drafts".into(),
        N::Flagged => "\\Flagged".into(),
        N::Junk => "\\Junk".into(),
        N::Sent => "\\Sent".into(),
        N::Trash => "\\Trash".into(),
        N::Extension(s) => s.to_string(),
        _ => format!("{a:?}"),
    }
}

pub(super) fn capability_name(c: &async_imap::imap_proto::Capability) -> String {
    use async_imap::imap_proto::Capability;
    match c {
        Capability::Imap4rev1 => "IMAP4REV1".into(),
        Capability::Auth(a) => format!("AUTH={}", a.to_ascii_uppercase()),
        Capability::Atom(a) => a.to_ascii_uppercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_dates_parse() {
        let d = parse_internal_date(" 7-Jul-1996 02:44:25 -0700").unwrap();
        assert_eq!(d.to_rfc3339(), "1996-07-07T09:44:25+00:00");
        assert!(parse_internal_date("yesterday").is_none());
    }
}
