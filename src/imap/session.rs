//! An IMAP session over one connection: the thin driver that writes typed
//! commands (`imap::command`), reads whole responses through the framer
//! (`imap::wire`) and parses them (`imap::response`). Every command checks
//! its tagged status, every read has a deadline (no progress for the
//! account's `timeout` ends the session), and responses nobody asked for
//! are counted, so that a server that floods the connection is left, not
//! followed. Only UID forms of message commands exist (RFC 3501 6.4.8).

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::command::{Command, EncodeError, FetchItems, Part, SearchKey, StoreMode};
use super::response::{self, Code, FetchData, ListEntry, NamespaceReply, Reply, Status, Untagged};
use super::types::{Capabilities, Capability, MAX_LINE, Mailbox, Uid, UidSet, UidValidity};
use super::wire::{FrameError, Framer, Limits};
use crate::rules::Flag;

/// The byte stream under a session: TCP, or TLS over TCP.
pub trait Io:
    tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + std::fmt::Debug
{
}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + std::fmt::Debug> Io for T {}
pub type Stream = Box<dyn Io>;

/// Responses nobody asked for that one command may bring before the server
/// is taken to be flooding the connection. Far above what another client's
/// work shows (an EXPUNGE per message it removes), far below what would
/// keep a session busy for long.
pub const MAX_IGNORED: usize = 200_000;

/// The most mailboxes a LIST answer may hold, and the most bytes of their
/// names together: far above the folders of a real account, far below
/// what would take the memory. A server that lists more is refused.
pub const MAX_MAILBOXES: usize = 100_000;
pub const MAX_MAILBOX_BYTES: usize = 8 << 20;

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
    #[error("{command} refused by the server: {status} {text}", status = status.word())]
    Refused {
        command: &'static str,
        status: Status,
        text: String,
        code: Option<Code>,
    },
    #[error("the server closed the connection during {during}{}", bye.as_ref().map(|b| format!(" (it said: {b})")).unwrap_or_default())]
    ConnectionLost { during: String, bye: Option<String> },
    #[error("no answer from the server within {} during {during}", humanize(*after))]
    Timeout { after: Duration, during: String },
    #[error("{what} during {during}; the connection was closed")]
    Limit { during: String, what: String },
    #[error("the connection broke during {during}: {detail}")]
    Io { during: String, detail: String },
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

pub(crate) fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    if d.subsec_millis() != 0 && s < 10 {
        format!("{}ms", d.as_millis())
    } else if s.is_multiple_of(60) && s > 0 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

impl ImapError {
    /// Errors of connecting or logging in (exit code 3), as opposed to
    /// errors of one command or of a session already open.
    pub fn is_connect(&self) -> bool {
        matches!(
            self,
            ImapError::Connect { .. } | ImapError::Tls { .. } | ImapError::Auth { .. }
        )
    }

    /// Errors that end the session: anything but one refused or
    /// unsendable command.
    pub fn ends_session(&self) -> bool {
        !matches!(self, ImapError::Refused { .. } | ImapError::Encode(_))
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

/// Whether a handler used an untagged response or had no use for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heed {
    Used,
    Ignored,
}

/// A command's tagged OK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    pub code: Option<Code>,
    pub text: String,
}

/// What a COPY or MOVE did, where the server says (UIDPLUS, RFC 4315 3):
/// each source UID with its new UID in the target.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Copied {
    pub pairs: Option<Vec<(Uid, Uid)>>,
    /// The target's UIDVALIDITY the new UIDs belong to.
    pub validity: Option<UidValidity>,
}

pub struct Session {
    stream: Stream,
    rbuf: Vec<u8>,
    framer: Framer,
    next_tag: u32,
    caps: Capabilities,
    timeout: Duration,
    /// The mailbox open now, how, and what SELECT said of it.
    selected: Option<(Mailbox, Access, MailboxStatus)>,
    /// An EXISTS arrived with the answer to some command: new mail that
    /// IDLE will not announce again (RFC 3501 7.3.1).
    new_mail: bool,
    /// What the server said with its BYE, if it said one.
    bye: Option<String>,
    /// [`MAX_IGNORED`]; smaller in tests.
    max_ignored: usize,
    /// The most UIDs one command carries, once a server has shown it
    /// cannot take a full line of them ([`Session::cap_uids`]).
    uid_cap: Option<usize>,
    /// How many UIDs the latest command sent named.
    last_uids: usize,
    /// A saved set (SEARCHRES) was refused once: moves go line by line.
    no_saving: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("caps", &self.caps)
            .field("selected", &self.selected)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session on a fresh connection, before the greeting is read.
    pub fn new(stream: Stream, timeout: Duration) -> Session {
        Session {
            stream,
            rbuf: vec![0; 64 << 10],
            framer: Framer::default(),
            next_tag: 1,
            caps: Capabilities::default(),
            timeout,
            selected: None,
            new_mail: false,
            bye: None,
            max_ignored: MAX_IGNORED,
            uid_cap: None,
            last_uids: 0,
            no_saving: false,
        }
    }

    /// Counts one response nobody asked for; too many end the command.
    fn ignore(&self, ignored: &mut usize, during: &str) -> Result<(), ImapError> {
        *ignored += 1;
        if *ignored > self.max_ignored {
            return Err(ImapError::Limit {
                during: during.to_string(),
                what: format!(
                    "the server sent more than {} responses nobody asked for",
                    self.max_ignored
                ),
            });
        }
        Ok(())
    }

    /// The connection under the session, for a STARTTLS upgrade. Bytes
    /// the server sent ahead of the handshake are dropped with the
    /// framer: nothing said in plaintext counts once TLS is up.
    pub fn into_stream(self) -> (Stream, usize) {
        (self.stream, self.framer.pending())
    }

    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// How many UIDs the latest command sent named: after a session
    /// ended under a command, how long that command was.
    pub fn last_uids(&self) -> usize {
        self.last_uids
    }

    /// Sends at most `n` UIDs in one command from now on: for a server
    /// that closed the connection under a long command (Dovecot's imap
    /// process can run out of memory moving thousands of messages out of a
    /// large Maildir).
    pub fn cap_uids(&mut self, n: usize) {
        self.uid_cap = Some(n.max(1));
    }

    pub fn has(&self, c: Capability) -> bool {
        self.caps.has(&c)
    }

    pub(crate) fn set_capabilities(&mut self, caps: Capabilities) {
        self.caps = caps;
    }

    /// The mailbox opened read-write last, and what SELECT said, if it is
    /// still the one open.
    pub fn selected(&self) -> Option<(&Mailbox, MailboxStatus)> {
        match &self.selected {
            Some((m, Access::ReadWrite, s)) => Some((m, *s)),
            _ => None,
        }
    }

    /// Whether the server reported new mail since the last call.
    pub fn take_new_mail(&mut self) -> bool {
        std::mem::take(&mut self.new_mail)
    }

    /// The next whole response, within the timeout.
    pub(crate) async fn reply(&mut self, during: &str) -> Result<Reply, ImapError> {
        loop {
            match self.framer.next_frame() {
                Ok(Some(frame)) => {
                    let reply = response::parse(&frame);
                    if let Reply::Untagged(Untagged::Malformed(text)) = &reply {
                        tracing::debug!(during, response = %text, "the server sent a response that cannot be read; it is skipped");
                    }
                    return Ok(reply);
                }
                Ok(None) => {}
                Err(e) => return Err(limit(during, e)),
            }
            let n = tokio::time::timeout(self.timeout, self.stream.read(&mut self.rbuf))
                .await
                .map_err(|_| ImapError::Timeout {
                    after: self.timeout,
                    during: during.to_string(),
                })?
                .map_err(|e| ImapError::Io {
                    during: during.to_string(),
                    detail: e.to_string(),
                })?;
            if n == 0 {
                return Err(ImapError::ConnectionLost {
                    during: during.to_string(),
                    bye: self.bye.take(),
                });
            }
            self.framer.feed(&self.rbuf[..n]);
        }
    }

    async fn write(&mut self, bytes: &[u8], during: &str) -> Result<(), ImapError> {
        let io = |e: std::io::Error| ImapError::Io {
            during: during.to_string(),
            detail: e.to_string(),
        };
        let timeout = |_| ImapError::Timeout {
            after: self.timeout,
            during: during.to_string(),
        };
        tokio::time::timeout(self.timeout, async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        })
        .await
        .map_err(timeout)?
        .map_err(io)
    }

    /// Notes what every untagged response tells about the session, before
    /// the command's own handler sees it.
    fn observe(&mut self, u: &Untagged, selecting: bool) {
        match u {
            Untagged::Exists(n) => {
                if let Some((_, _, s)) = &mut self.selected {
                    if !selecting && *n > s.exists {
                        self.new_mail = true;
                    }
                    s.exists = *n;
                }
            }
            Untagged::Expunge(_) => {
                if let Some((_, _, s)) = &mut self.selected {
                    s.exists = s.exists.saturating_sub(1);
                }
            }
            Untagged::Status {
                status: Status::Bye,
                text,
                ..
            } => {
                tracing::debug!(%text, "the server said BYE");
                self.bye = Some(text.clone());
            }
            _ => {}
        }
    }

    /// Sends `cmd` and reads until its tagged answer; `on` sees every
    /// untagged response on the way and says whether it was of use. NO and
    /// BAD are errors.
    pub async fn run(
        &mut self,
        cmd: &Command<'_>,
        mut on: impl FnMut(Untagged) -> Heed,
    ) -> Result<Done, ImapError> {
        let request = cmd.render()?;
        self.last_uids = cmd.uid_count();
        let tag = format!("m{}", self.next_tag);
        self.next_tag += 1;
        let name = cmd.name();
        let selecting = matches!(cmd, Command::Select { .. });
        if selecting {
            self.selected = None;
        }
        if tracing::enabled!(tracing::Level::TRACE) {
            tracing::trace!(command = %cmd.for_log(), "send");
        }
        let started = std::time::Instant::now();
        let mut ignored = 0usize;
        let mut out = format!("{tag} ").into_bytes();
        let literal_plus = self.has(Capability::LiteralPlus);
        let literal_minus = self.has(Capability::LiteralMinus);
        for part in &request.parts {
            match part {
                Part::Text(t) => out.extend_from_slice(t.as_bytes()),
                Part::Literal(data) => {
                    // RFC 7888: `{n+}` needs no go-ahead (LITERAL- only up
                    // to 4096 octets); otherwise wait for the server's `+`.
                    if literal_plus || (literal_minus && data.len() <= 4096) {
                        out.extend_from_slice(format!("{{{}+}}\r\n", data.len()).as_bytes());
                    } else {
                        out.extend_from_slice(format!("{{{}}}\r\n", data.len()).as_bytes());
                        self.write(&out, name).await?;
                        out.clear();
                        loop {
                            match self.reply(name).await? {
                                Reply::Continue(_) => break,
                                Reply::Tagged {
                                    tag: t,
                                    status,
                                    code,
                                    text,
                                } if t == tag => {
                                    return Err(ImapError::Refused {
                                        command: name,
                                        status,
                                        text,
                                        code,
                                    });
                                }
                                Reply::Tagged { tag: t, .. } => {
                                    return Err(ImapError::Protocol(format!(
                                        "an answer tagged {t:?} to a command never sent, during {name}"
                                    )));
                                }
                                Reply::Untagged(u) => {
                                    self.observe(&u, selecting);
                                    if on(u) == Heed::Ignored {
                                        self.ignore(&mut ignored, name)?;
                                    }
                                }
                            }
                        }
                    }
                    out.extend_from_slice(data);
                }
            }
        }
        out.extend_from_slice(b"\r\n");
        self.write(&out, name).await?;
        drop(out);
        loop {
            match self.reply(name).await? {
                Reply::Tagged {
                    tag: t,
                    status,
                    code,
                    text,
                } if t == tag => {
                    tracing::debug!(
                        command = name,
                        ms = started.elapsed().as_millis() as u64,
                        "done"
                    );
                    crate::health::command_done(name, started.elapsed());
                    return match status {
                        Status::Ok => Ok(Done { code, text }),
                        status => Err(ImapError::Refused {
                            command: name,
                            status,
                            text,
                            code,
                        }),
                    };
                }
                Reply::Tagged { tag: t, .. } => {
                    return Err(ImapError::Protocol(format!(
                        "an answer tagged {t:?} to a command never sent, during {name}"
                    )));
                }
                Reply::Continue(_) => {
                    return Err(ImapError::Protocol(format!(
                        "the server asked for more during {name}, which has nothing more to send"
                    )));
                }
                Reply::Untagged(u) => {
                    self.observe(&u, selecting);
                    if on(u) == Heed::Ignored {
                        self.ignore(&mut ignored, name)?;
                    }
                }
            }
        }
    }

    /// AUTHENTICATE (RFC 3501 6.2.2) with one initial response: inline
    /// where the server has SASL-IR (RFC 4959), else after its first `+`.
    /// A further challenge (XOAUTH2 and OAUTHBEARER send their error as
    /// one, RFC 7628 3.2.3) gets an empty response, and the server then
    /// answers NO.
    pub async fn authenticate(
        &mut self,
        mechanism: &'static str,
        initial: &crate::secret::Secret,
    ) -> Result<Done, ImapError> {
        let encoded = super::connect::sasl(initial.expose().as_bytes());
        let inline = self.has(Capability::SaslIr);
        let cmd = Command::Authenticate {
            mechanism,
            initial: inline.then_some(encoded.as_str()),
        };
        let tag = format!("m{}", self.next_tag);
        self.next_tag += 1;
        let Some(Part::Text(text)) = cmd.render()?.parts.into_iter().next() else {
            unreachable!("AUTHENTICATE is one line")
        };
        self.write(format!("{tag} {text}\r\n").as_bytes(), "AUTHENTICATE")
            .await?;
        let mut sent = inline;
        let mut challenged = false;
        let mut ignored = 0usize;
        loop {
            match self.reply("AUTHENTICATE").await? {
                Reply::Continue(_) => {
                    // The mechanisms here have one step: after the
                    // credentials and an empty answer to an error
                    // challenge the server has nothing left to ask.
                    if challenged {
                        return Err(ImapError::Protocol(
                            "it asked for more during AUTHENTICATE after the credentials and an empty answer to its challenge".into(),
                        ));
                    }
                    challenged = sent;
                    let line = if sent { String::new() } else { encoded.clone() };
                    sent = true;
                    self.write(format!("{line}\r\n").as_bytes(), "AUTHENTICATE")
                        .await?;
                }
                Reply::Tagged {
                    tag: t,
                    status,
                    code,
                    text,
                } if t == tag => {
                    return match status {
                        Status::Ok => Ok(Done { code, text }),
                        status => Err(ImapError::Refused {
                            command: "AUTHENTICATE",
                            status,
                            text,
                            code,
                        }),
                    };
                }
                Reply::Tagged { tag: t, .. } => {
                    return Err(ImapError::Protocol(format!(
                        "an answer tagged {t:?} to a command never sent, during AUTHENTICATE"
                    )));
                }
                Reply::Untagged(u) => {
                    self.observe(&u, false);
                    self.ignore(&mut ignored, "AUTHENTICATE")?;
                }
            }
        }
    }

    /// A command whose untagged responses are of no use.
    pub async fn simple(&mut self, cmd: &Command<'_>) -> Result<Done, ImapError> {
        self.run(cmd, |_| Heed::Ignored).await
    }

    /// CAPABILITY, replacing what was known (RFC 3501 6.2.1: capabilities
    /// change after STARTTLS and after login).
    pub async fn refresh_capabilities(&mut self) -> Result<(), ImapError> {
        let mut caps = None;
        self.run(&Command::Capability, |u| match u {
            Untagged::Capabilities(list) if caps.is_none() => {
                caps = Some(Capabilities::new(list));
                Heed::Used
            }
            _ => Heed::Ignored,
        })
        .await?;
        self.caps =
            caps.ok_or_else(|| ImapError::Protocol("CAPABILITY gave no capabilities".into()))?;
        Ok(())
    }

    /// NAMESPACE (RFC 2342), where the server has it.
    pub async fn namespace(&mut self) -> Result<Option<NamespaceReply>, ImapError> {
        if !self.has(Capability::Namespace) {
            return Ok(None);
        }
        let mut reply = None;
        self.run(&Command::Namespace, |u| match u {
            Untagged::Namespace(ns) if reply.is_none() => {
                reply = Some(ns);
                Heed::Used
            }
            _ => Heed::Ignored,
        })
        .await?;
        Ok(reply)
    }

    /// The hierarchy separator (RFC 3501 6.3.8: `LIST "" ""`).
    pub async fn separator(&mut self) -> Result<Option<char>, ImapError> {
        let mut separator = None;
        let mut answered = false;
        self.run(&Command::ListSeparator, |u| match u {
            Untagged::List(l) if !answered => {
                answered = true;
                separator = l.separator;
                Heed::Used
            }
            _ => Heed::Ignored,
        })
        .await?;
        Ok(separator)
    }

    /// Every mailbox, with its attributes (SPECIAL-USE ones where the
    /// server has RFC 6154; some servers send them unasked).
    pub async fn list_all(&mut self) -> Result<Vec<ListEntry>, ImapError> {
        let special_use = self.has(Capability::SpecialUse) && self.has(Capability::ListExtended);
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut over = false;
        self.run(&Command::ListAll { special_use }, |u| match u {
            Untagged::List(l) if !over => {
                bytes += l.name.len();
                if out.len() >= MAX_MAILBOXES || bytes > MAX_MAILBOX_BYTES {
                    // Past the limit nothing more is kept; the rest of an
                    // endless answer counts toward the flood limit.
                    over = true;
                    out = Vec::new();
                    Heed::Ignored
                } else {
                    out.push(l);
                    Heed::Used
                }
            }
            _ => Heed::Ignored,
        })
        .await?;
        if over {
            return Err(ImapError::Limit {
                during: "LIST".into(),
                what: format!(
                    "the server listed more than {MAX_MAILBOXES} mailboxes or {} MiB of their names",
                    MAX_MAILBOX_BYTES >> 20
                ),
            });
        }
        Ok(out)
    }

    /// SELECT or EXAMINE.
    pub async fn open(
        &mut self,
        mailbox: &Mailbox,
        access: Access,
    ) -> Result<MailboxStatus, ImapError> {
        let (mut uid_validity, mut exists, mut uid_next, mut highest_modseq) =
            (None, None, None, None);
        let cmd = Command::Select {
            mailbox,
            read_only: access == Access::ReadOnly,
            condstore: self.has(Capability::CondStore),
        };
        // Each value once; FLAGS, PERMANENTFLAGS, RECENT and the like are
        // of no use, and a SELECT brings a handful of them (RFC 3501
        // 6.3.1): a stream of them is a flood like any other.
        self.run(&cmd, |u| match u {
            Untagged::Exists(n) if exists.is_none() => {
                exists = Some(n);
                Heed::Used
            }
            Untagged::Status {
                code: Some(Code::UidValidity(v)),
                ..
            } if uid_validity.is_none() => {
                uid_validity = Some(v);
                Heed::Used
            }
            Untagged::Status {
                code: Some(Code::UidNext(n)),
                ..
            } if uid_next.is_none() => {
                uid_next = Some(n);
                Heed::Used
            }
            Untagged::Status {
                code: Some(Code::HighestModSeq(m)),
                ..
            } if highest_modseq.is_none() => {
                highest_modseq = Some(m);
                Heed::Used
            }
            _ => Heed::Ignored,
        })
        .await?;
        let uid_validity = uid_validity.ok_or_else(|| {
            ImapError::Protocol(format!("{} {mailbox} gave no UIDVALIDITY", cmd.name()))
        })?;
        let status = MailboxStatus {
            uid_validity,
            exists: exists.unwrap_or(0),
            uid_next,
            highest_modseq,
        };
        self.selected = Some((mailbox.clone(), access, status));
        Ok(status)
    }

    /// The messages in the open mailbox, for a SEARCH answer's limit.
    fn exists(&self) -> u32 {
        self.selected.as_ref().map_or(0, |(_, _, s)| s.exists)
    }

    /// UID SEARCH; sorted. The answer may be as long as the mailbox is
    /// large, and no longer.
    pub async fn search(&mut self, key: &SearchKey) -> Result<UidSet, ImapError> {
        self.searches(vec![key.clone()]).await
    }

    /// UID SEARCH among `uids` only, one command per UID set that fits a
    /// line.
    pub async fn search_among(
        &mut self,
        uids: &UidSet,
        key: &SearchKey,
    ) -> Result<UidSet, ImapError> {
        let with = |set: &UidSet| SearchKey::And(vec![SearchKey::Uid(set.clone()), key.clone()]);
        let keys: Vec<SearchKey> = chunks(uids, self.uid_cap, |set| {
            with(set).render().map(|s| s.len() + 11)
        })?
        .iter()
        .map(with)
        .collect();
        self.searches(keys).await
    }

    async fn searches(&mut self, keys: Vec<SearchKey>) -> Result<UidSet, ImapError> {
        let mut found = Vec::new();
        self.framer.set_limits(Limits::for_search(self.exists()));
        let mut result = Ok(());
        for key in &keys {
            let mut answered = false;
            let r = self
                .run(&Command::UidSearch(key), |u| match u {
                    Untagged::Search(uids) if !answered => {
                        answered = true;
                        // Taken over, not copied, when it is the only
                        // answer (one key): it may hold millions.
                        if found.is_empty() {
                            found = uids;
                        } else {
                            found.extend(uids);
                        }
                        Heed::Used
                    }
                    _ => Heed::Ignored,
                })
                .await;
            if let Err(e) = r {
                result = Err(e);
                break;
            }
        }
        self.framer.set_limits(Limits::DEFAULT);
        result?;
        Ok(UidSet::new(found))
    }

    /// UID FETCH of `items` for `uids`, in commands that fit a line; each
    /// message's data goes to `on_message` as it arrives, so that only one
    /// message at a time is held. Answers for UIDs not asked for, or for
    /// one UID twice, are not passed on. Returns the UIDs answered for.
    pub async fn fetch(
        &mut self,
        uids: &UidSet,
        items: &FetchItems,
        mut on_message: impl FnMut(FetchData),
    ) -> Result<UidSet, ImapError> {
        // Not sized by `uids` up front: those may be a server's SEARCH
        // answer, far larger than what it then answers for.
        let mut answered: Vec<Uid> = Vec::new();
        let sets = chunks(uids, self.uid_cap, |set| {
            Command::UidFetch { uids: set, items }
                .render()
                .map(|r| request_len(&r))
        })?;
        for set in &sets {
            let mut seen = std::collections::HashSet::new();
            self.run(&Command::UidFetch { uids: set, items }, |u| match u {
                Untagged::Fetch(d) => match d.uid {
                    Some(uid) if set.contains(uid) && seen.insert(uid) => {
                        on_message(*d);
                        Heed::Used
                    }
                    _ => Heed::Ignored,
                },
                _ => Heed::Ignored,
            })
            .await?;
            answered.extend(seen);
        }
        Ok(UidSet::new(answered))
    }

    /// Messages whose mod-sequence is above `modseq` (RFC 7162 3.1.4.1,
    /// CHANGEDSINCE), with their mod-sequences. CONDSTORE only.
    pub async fn changed_since(&mut self, modseq: u64) -> Result<Vec<(Uid, u64)>, ImapError> {
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        // Each message once, and no more messages than the mailbox holds:
        // answers past that count toward the flood limit.
        let most = self.exists() as usize;
        self.run(&Command::ChangedSince(modseq), |u| match u {
            Untagged::Fetch(d) => match (d.uid, d.modseq) {
                (Some(uid), Some(m)) if out.len() < most && seen.insert(uid) => {
                    out.push((uid, m));
                    Heed::Used
                }
                _ => Heed::Ignored,
            },
            _ => Heed::Ignored,
        })
        .await?;
        Ok(out)
    }

    /// UID STORE of `flags`; returns the UIDs the server answered for (the
    /// messages it holds; one removed meanwhile by another client has no
    /// answer).
    pub async fn store(
        &mut self,
        uids: &UidSet,
        mode: StoreMode,
        flags: &[Flag],
    ) -> Result<UidSet, ImapError> {
        let mut answered = Vec::new();
        for set in chunks(uids, self.uid_cap, |set| {
            Command::UidStore {
                uids: set,
                mode,
                flags,
            }
            .render()
            .map(|r| request_len(&r))
        })? {
            let mut seen = std::collections::HashSet::new();
            self.run(
                &Command::UidStore {
                    uids: &set,
                    mode,
                    flags,
                },
                // Each message once: the same answer again is of no use.
                |u| match u {
                    Untagged::Fetch(d) => match d.uid {
                        Some(uid) if set.contains(uid) && seen.insert(uid) => {
                            answered.push(uid);
                            Heed::Used
                        }
                        _ => Heed::Ignored,
                    },
                    _ => Heed::Ignored,
                },
            )
            .await?;
        }
        Ok(UidSet::new(answered))
    }

    /// UID COPY (`moving`: false) or UID MOVE (RFC 6851, only where the
    /// server offers MOVE). The COPYUID of each command (tagged for COPY,
    /// untagged before the EXPUNGEs for MOVE, RFC 6851 4.3) says which
    /// messages went and their new UIDs.
    ///
    /// A set longer than one line (RFC 7162 section 4: about 8192 octets)
    /// is split. Where the server keeps search results (SEARCHRES, RFC
    /// 5182) and says where each message went (UIDPLUS), a move is not:
    /// the set is built up as `$` over short `UID SEARCH RETURN (SAVE)`
    /// lines, which cost the server an index lookup each, and moved with
    /// one `UID MOVE $`. Every expunging command costs a Maildir server a
    /// rewrite of the mailbox's index, so on a big mailbox one MOVE instead
    /// of dozens is most of the time saved. The COPYUID still names each
    /// message that went, so a message `$` missed is found still here, as
    /// after any move. Only a move: a COPY without its own COPYUID for each
    /// message could be taken as done when it was not.
    pub async fn transfer(
        &mut self,
        uids: &UidSet,
        to: &Mailbox,
        moving: bool,
    ) -> Result<Copied, ImapError> {
        fn make<'a>(uids: &'a UidSet, to: &'a Mailbox, moving: bool) -> Command<'a> {
            if moving {
                Command::UidMove { uids, to }
            } else {
                Command::UidCopy { uids, to }
            }
        }
        let can_save = moving
            && !self.no_saving
            && self.has(Capability::SearchRes)
            && self.has(Capability::UidPlus);
        // Sized for the longer of the two lines a set may go on.
        let lines = chunks(uids, self.uid_cap, |set| {
            let direct = request_len(&make(set, to, moving).render()?);
            let saved = if can_save {
                let save = Command::SaveUids {
                    uids: set,
                    extend: true,
                };
                request_len(&save.render()?)
            } else {
                0
            };
            Ok(direct.max(saved))
        })?;
        let saving = can_save && lines.len() > 1;
        // What each command moves: one line's set, or several lines' saved
        // as `$` (as many UIDs as the cap, if one was set, allows).
        let mut loads: Vec<Vec<UidSet>> = Vec::new();
        let mut in_load = 0;
        // Dovecot commits a MOVE every 1,000 messages but names what went
        // (COPYUID) only when all went: a load is kept to what a refusal
        // halfway may leave to be looked for message by message.
        let cap = self.uid_cap.unwrap_or(MAX_SAVED).min(MAX_SAVED);
        for set in lines {
            match loads.last_mut() {
                Some(load) if saving && in_load + set.len() <= cap => {
                    in_load += set.len();
                    load.push(set);
                }
                _ => {
                    in_load = set.len();
                    loads.push(vec![set]);
                }
            }
        }
        let mut pairs = Some(Vec::new());
        let mut target_validity = None;
        let mut queue: std::collections::VecDeque<Vec<UidSet>> = loads.into();
        while let Some(load) = queue.pop_front() {
            let load_set = UidSet::new(load.iter().flat_map(|s| s.iter()));
            let found = if let [set] = load.as_slice() {
                self.transfer_one(&make(set, to, moving), set).await?
            } else {
                let all = &load_set;
                match self.save(&load).await {
                    Ok(()) => {
                        let command = Command::UidMoveSaved {
                            count: all.len(),
                            to,
                        };
                        let found = self.transfer_one(&command, all).await?;
                        // `$` held what it was told to, or the server moved
                        // messages nobody asked it to: stop, and say so.
                        if let Some((_, p)) = &found
                            && let Some((from, _)) = p.iter().find(|(from, _)| !all.contains(*from))
                        {
                            return Err(ImapError::Protocol(format!(
                                "the server moved UID {from} out of a saved set (SEARCHRES, RFC 5182) that did not hold it"
                            )));
                        }
                        found
                    }
                    // Refused before anything moved (NOTSAVED, RFC 9051
                    // 6.4.4.3, or a server that does not take `$`): this
                    // load and every later one go line by line.
                    Err(ImapError::Refused { text, .. }) => {
                        tracing::debug!(%text, "the server refused to save a search result; moving line by line");
                        self.no_saving = true;
                        let lines: Vec<Vec<UidSet>> = std::iter::once(load)
                            .chain(queue.drain(..))
                            .flatten()
                            .map(|set| vec![set])
                            .collect();
                        queue.extend(lines);
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            };
            match (&mut pairs, found) {
                (Some(all), Some((validity, p))) => {
                    target_validity = Some(validity);
                    all.extend(p.into_iter().filter(|(from, _)| load_set.contains(*from)));
                }
                (all, _) => *all = None,
            }
        }
        Ok(Copied {
            validity: target_validity.filter(|_| pairs.is_some()),
            pairs,
        })
    }

    /// Saves the UIDs of `lines` as `$` (RFC 5182), one short line each.
    async fn save(&mut self, lines: &[UidSet]) -> Result<(), ImapError> {
        for (i, set) in lines.iter().enumerate() {
            let save = Command::SaveUids {
                uids: set,
                extend: i > 0,
            };
            // With SAVE alone the server answers nothing but OK.
            self.run(&save, |_| Heed::Ignored).await?;
        }
        Ok(())
    }

    /// One command of [`Session::transfer`] for `set`: the COPYUID's target
    /// UIDVALIDITY and the pairs it names, if it came (a server may name
    /// more than it was asked about; the caller keeps those of `set`).
    async fn transfer_one(
        &mut self,
        command: &Command<'_>,
        set: &UidSet,
    ) -> Result<Option<(UidValidity, Vec<(Uid, Uid)>)>, ImapError> {
        let mut found = None;
        // One EXPUNGE per message moved; any beyond are another client's,
        // and count toward the flood limit.
        let mut expunged = 0;
        let done = self
            .run(command, |u| match u {
                Untagged::Status {
                    code: Some(Code::CopyUid { pairs, validity }),
                    ..
                } if found.is_none() => {
                    found = Some((validity, pairs));
                    Heed::Used
                }
                Untagged::Expunge(_) if expunged < set.len() => {
                    expunged += 1;
                    Heed::Used
                }
                _ => Heed::Ignored,
            })
            .await?;
        if let Some(Code::CopyUid { pairs, validity }) = done.code {
            found = Some((validity, pairs));
        }
        Ok(found)
    }

    /// RFC 4315 UID EXPUNGE: removes exactly these UIDs, never other
    /// messages marked \Deleted by someone else. Only with UIDPLUS.
    pub async fn expunge(&mut self, uids: &UidSet) -> Result<(), ImapError> {
        for set in chunks(uids, self.uid_cap, |set| {
            Command::UidExpunge(set).render().map(|r| request_len(&r))
        })? {
            let mut expunged = 0;
            self.run(&Command::UidExpunge(&set), |u| match u {
                Untagged::Expunge(_) if expunged < set.len() => {
                    expunged += 1;
                    Heed::Used
                }
                _ => Heed::Ignored,
            })
            .await?;
        }
        Ok(())
    }

    /// CREATE; "already exists" counts as success (another client may have
    /// created it in the meantime).
    pub async fn create(&mut self, mailbox: &Mailbox) -> Result<(), ImapError> {
        match self.simple(&Command::Create(mailbox)).await {
            Ok(_) => Ok(()),
            Err(ImapError::Refused { text, code, .. })
                if code == Some(Code::Other("ALREADYEXISTS".into()))
                    || text.to_lowercase().contains("already exists") =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    pub async fn subscribe(&mut self, mailbox: &Mailbox) -> Result<(), ImapError> {
        self.simple(&Command::Subscribe(mailbox)).await.map(|_| ())
    }

    /// APPEND (RFC 3501 6.3.11) with flags and an arrival time.
    pub async fn append(
        &mut self,
        mailbox: &Mailbox,
        flags: &[Flag],
        arrival: Option<DateTime<Utc>>,
        message: &[u8],
    ) -> Result<(), ImapError> {
        self.simple(&Command::Append {
            mailbox,
            flags,
            arrival,
            message,
        })
        .await
        .map(|_| ())
    }

    /// NOOP: the server reports what changed (RFC 3501 6.1.2), which
    /// `observe` notes. Those reports count toward the flood limit like any
    /// other unasked response: far more than another client's work brings
    /// is a server that does not stop.
    pub async fn noop(&mut self) -> Result<(), ImapError> {
        self.simple(&Command::Noop).await.map(|_| ())
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
        let tag = format!("m{}", self.next_tag);
        self.next_tag += 1;
        self.write(format!("{tag} IDLE\r\n").as_bytes(), "IDLE")
            .await?;
        let mut ignored = 0usize;
        let mut changed = false;
        loop {
            match self.reply("IDLE").await? {
                Reply::Continue(_) => break,
                Reply::Tagged {
                    status, text, code, ..
                } => {
                    return Err(ImapError::Refused {
                        command: "IDLE",
                        status,
                        text,
                        code,
                    });
                }
                Reply::Untagged(u) => changed |= self.idle_event(&u, &mut ignored)?,
            }
        }
        tracing::debug!("idle started");
        let deadline = tokio::time::Instant::now() + max;
        let woke = if changed {
            Woke::Changed
        } else {
            loop {
                let timeout = self.timeout;
                // The command timeout does not apply while idling: a quiet
                // mailbox is no fault. The renewal (`max`) bounds the wait.
                self.timeout = Duration::MAX;
                enum Event {
                    Reply(Result<Reply, ImapError>),
                    Deadline,
                    Stop,
                }
                let event = tokio::select! {
                    r = self.reply("IDLE") => Event::Reply(r),
                    _ = tokio::time::sleep_until(deadline) => Event::Deadline,
                    _ = stop.changed() => Event::Stop,
                };
                self.timeout = timeout;
                match event {
                    Event::Stop => break Woke::Stopped,
                    Event::Deadline => break Woke::Timeout,
                    Event::Reply(r) => match r? {
                        Reply::Untagged(u) => {
                            if self.idle_event(&u, &mut ignored)? {
                                break Woke::Changed;
                            }
                        }
                        Reply::Tagged { status, text, .. } => {
                            return Err(ImapError::Protocol(format!(
                                "IDLE ended by the server: {} {text}",
                                status.word()
                            )));
                        }
                        Reply::Continue(_) => {}
                    },
                }
            }
        };
        self.write(b"DONE\r\n", "IDLE").await?;
        loop {
            match self.reply("DONE").await? {
                Reply::Tagged { tag: t, status, .. } if t == tag => {
                    return match status {
                        Status::Ok => Ok(woke),
                        s => Err(ImapError::Protocol(format!("IDLE ended with {}", s.word()))),
                    };
                }
                Reply::Tagged { tag: t, .. } => {
                    return Err(ImapError::Protocol(format!(
                        "an answer tagged {t:?} to a command never sent, during IDLE"
                    )));
                }
                Reply::Untagged(u) => {
                    self.idle_event(&u, &mut ignored)?;
                }
                Reply::Continue(_) => {}
            }
        }
    }

    /// Whether an untagged response during IDLE reports a change. Every
    /// one counts toward the flood limit: while idling a change ends the
    /// wait, so only keepalives ("* OK Still here") add up there; before
    /// the go-ahead and after DONE, changes too would go on for ever.
    fn idle_event(&mut self, u: &Untagged, ignored: &mut usize) -> Result<bool, ImapError> {
        self.observe(u, false);
        self.ignore(ignored, "IDLE")?;
        Ok(matches!(
            u,
            Untagged::Exists(_) | Untagged::Recent(_) | Untagged::Expunge(_) | Untagged::Fetch(_)
        ))
    }

    /// LOGOUT; errors are irrelevant by then.
    pub async fn logout(mut self) {
        let _ = self.simple(&Command::Logout).await;
    }
}

fn limit(during: &str, e: FrameError) -> ImapError {
    ImapError::Limit {
        during: during.to_string(),
        what: e.to_string(),
    }
}

/// Room kept for the tag, the space after it and the closing CRLF.
const TAG_ROOM: usize = 16;

/// The text length of a request, literals aside.
fn request_len(r: &super::command::Request) -> usize {
    r.parts
        .iter()
        .map(|p| match p {
            Part::Text(t) => t.len(),
            Part::Literal(_) => 0,
        })
        .sum()
}

/// `uids` in parts such that the command `len_with(part)` measures stays
/// within [`MAX_LINE`]. The parts are as long as the rest of the line
/// allows, because on some servers every expunging command has a fixed cost
/// (docs/performance.md).
/// The most UIDs one `UID MOVE $` carries.
const MAX_SAVED: usize = 10_000;

pub(crate) fn chunks(
    uids: &UidSet,
    cap: Option<usize>,
    len_with: impl Fn(&UidSet) -> Result<usize, EncodeError>,
) -> Result<Vec<UidSet>, EncodeError> {
    if uids.is_empty() {
        return Ok(Vec::new());
    }
    let rest = len_with(&UidSet::default())?;
    // A line whose other text alone fills the budget still gets some room,
    // so that every UID is sent; servers accept far longer lines.
    let room = MAX_LINE.saturating_sub(rest + TAG_ROOM).max(256);
    Ok(uids.chunks_of(room, cap.unwrap_or(usize::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::types::uid;

    /// A session whose server sends `head`, then `flood` again and again
    /// until the session stops reading; what the client writes is read
    /// and dropped. The flood limit is 1,000 here.
    fn flooded(head: &str, flood: &str) -> Session {
        let (client, server) = tokio::io::duplex(64 << 10);
        let (mut r, mut w) = tokio::io::split(server);
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = r.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        });
        let (head, flood) = (head.to_string(), flood.repeat(100));
        tokio::spawn(async move {
            if w.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            // Bounded: far more than any limit below lets through.
            for _ in 0..100_000 {
                if w.write_all(flood.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
        let mut session = Session::new(Box::new(client), Duration::from_secs(5));
        session.max_ignored = 1000;
        session
    }

    /// `result` is the flood limit's error during `during`, reached
    /// before the test's own deadline.
    async fn cut_off<T: std::fmt::Debug>(
        during: &str,
        result: impl std::future::Future<Output = Result<T, ImapError>>,
    ) {
        let r = tokio::time::timeout(Duration::from_secs(20), result)
            .await
            .unwrap_or_else(|_| panic!("{during}: never cut off"));
        match r {
            Err(ImapError::Limit { during: d, what }) => {
                assert_eq!(d, during);
                assert_eq!(
                    what,
                    "the server sent more than 1000 responses nobody asked for"
                );
            }
            other => panic!("{during}: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_stream_of_responses_nothing_needs_ends_every_command() {
        let inbox = Mailbox::inbox();
        let mut s = flooded(
            "",
            "* OK [UNSEEN 1] x\r\n* FLAGS (\\Seen)\r\n* 1 RECENT\r\n",
        );
        cut_off("SELECT", s.open(&inbox, Access::ReadWrite)).await;
        let mut s = flooded("", "* LIST (\\Noselect) \"/\" \"\"\r\n");
        cut_off("LIST", s.separator()).await;
        let mut s = flooded("", "* 4 EXISTS\r\n* 1 EXPUNGE\r\n* 2 FETCH (FLAGS ())\r\n");
        cut_off("NOOP", s.noop()).await;
        // A MOVE of two messages brings two EXPUNGEs (RFC 6851 3.3), not
        // a thousand.
        let two = UidSet::new([uid(1), uid(2)]);
        let mut s = flooded("", "* 1 EXPUNGE\r\n");
        s.set_capabilities(Capabilities::new([Capability::Move]));
        cut_off("UID MOVE", s.transfer(&two, &inbox, true)).await;
        let mut s = flooded("", "* 1 EXPUNGE\r\n");
        cut_off("UID EXPUNGE", s.expunge(&two)).await;
        // Before IDLE's go-ahead, and after DONE.
        let (_stop, mut stop) = tokio::sync::watch::channel(false);
        let mut s = flooded("", "* 9 EXISTS\r\n");
        cut_off("IDLE", s.idle(Duration::from_secs(60), &mut stop)).await;
        let mut s = flooded("+ idling\r\n", "* 9 EXISTS\r\n");
        cut_off("IDLE", s.idle(Duration::from_secs(60), &mut stop)).await;
        // Waiting for the go-ahead to send a literal (no LITERAL+).
        let mut s = flooded("", "* 9 EXISTS\r\n");
        cut_off("APPEND", s.append(&inbox, &[], None, b"x")).await;
    }

    #[tokio::test]
    async fn answers_kept_in_memory_are_bounded() {
        // The same message answered again and again.
        let one = UidSet::new([uid(1)]);
        let seen = [Flag::System(crate::rules::SystemFlag::Seen)];
        let mut s = flooded("", "* 1 FETCH (UID 1 FLAGS (\\Seen))\r\n");
        cut_off("UID STORE", s.store(&one, StoreMode::Add, &seen)).await;
        let mut s = flooded("", "* 1 FETCH (UID 1 MODSEQ (5))\r\n");
        cut_off("UID FETCH", s.changed_since(4)).await;
        // Mailboxes without end, each name 1,000 bytes.
        let long = format!("* LIST () \"/\" \"{}\"\r\n", "x".repeat(1000));
        let mut s = flooded("", &long);
        cut_off("LIST", s.list_all()).await;
        // A finished answer larger than accepted is refused, not cut short.
        let answer = long.repeat(MAX_MAILBOX_BYTES / 1000 + 1) + "m1 OK done\r\n";
        let mut s = flooded(&answer, "");
        match s.list_all().await {
            Err(e @ ImapError::Limit { .. }) => assert_eq!(
                e.to_string(),
                "the server listed more than 100000 mailboxes or 8 MiB of their names during LIST; the connection was closed"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn authenticate_answers_one_challenge_and_no_more() {
        let mut s = flooded("", "+ \r\n");
        let initial = crate::secret::Secret::new("\0me\0pw");
        let r = tokio::time::timeout(Duration::from_secs(20), s.authenticate("PLAIN", &initial))
            .await
            .expect("never cut off");
        match r {
            Err(e @ ImapError::Protocol(_)) => assert_eq!(
                e.to_string(),
                "unexpected answer from the server: it asked for more during AUTHENTICATE after the credentials and an empty answer to its challenge"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_command_line_fits_8_kb_and_is_full() {
        let scattered: UidSet = (0..100_000u32).map(|i| uid(i * 3 + 1)).collect();
        let to = Mailbox::from_server(format!("x{}", "y".repeat(300)));
        let key = SearchKey::And(vec![
            SearchKey::Undeleted,
            SearchKey::Header("From".into(), "a".into()),
        ]);
        let items = FetchItems {
            header_fields: vec!["FROM".into(), "SUBJECT".into()],
            ..FetchItems::default()
        };
        let seen = [Flag::System(crate::rules::SystemFlag::Seen)];
        type Make<'a> = Box<dyn Fn(&UidSet) -> String + 'a>;
        let shapes: Vec<Make> = vec![
            Box::new(|s| Command::UidMove { uids: s, to: &to }.for_log()),
            Box::new(|s| {
                Command::SaveUids {
                    uids: s,
                    extend: true,
                }
                .for_log()
            }),
            Box::new(|s| {
                Command::UidStore {
                    uids: s,
                    mode: StoreMode::Add,
                    flags: &seen,
                }
                .for_log()
            }),
            Box::new(|s| {
                Command::UidSearch(&SearchKey::And(vec![
                    SearchKey::Uid(s.clone()),
                    key.clone(),
                ]))
                .for_log()
            }),
            Box::new(|s| {
                Command::UidFetch {
                    uids: s,
                    items: &items,
                }
                .for_log()
            }),
        ];
        for make in shapes {
            let parts = chunks(&scattered, None, |s| Ok(make(s).len())).unwrap();
            let lines: Vec<String> = parts.iter().map(&make).collect();
            let longest = lines.iter().map(String::len).max().unwrap();
            assert!(
                longest + TAG_ROOM <= MAX_LINE,
                "{}: {longest}",
                &lines[0][..20]
            );
            assert!(
                longest + TAG_ROOM + 8 > MAX_LINE,
                "{}: {longest}",
                &lines[0][..20]
            );
            let back: Vec<Uid> = parts.iter().flat_map(|p| p.iter()).collect();
            assert_eq!(back, scattered.as_slice(), "every UID once, in order");
        }
    }
}
