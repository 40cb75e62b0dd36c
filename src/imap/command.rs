//! Commands as typed values, and the one place where they become wire text
//! (RFC 3501 9, with the extensions mailwarden uses). Every argument goes
//! through an encoder that cannot produce a second command: a quoted string
//! refuses CR, LF and NUL (RFC 3501 4.3), text that cannot be quoted goes as
//! a literal, and mailbox names are modified UTF-7 (RFC 3501 5.1.3). Pure;
//! `imap::session` sends what [`Command::render`] writes.

use std::fmt::{self, Write as _};

use chrono::{DateTime, NaiveDate, Utc};

use super::types::{Mailbox, UidSet};
use crate::rules::{Flag, SystemFlag};
use crate::secret::Secret;

/// A value that cannot be sent as an IMAP string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} cannot be sent to the server: {why}")]
pub struct EncodeError {
    pub what: &'static str,
    pub value: String,
    pub why: &'static str,
}

/// Whether `value` can be a quoted string (RFC 3501 9, `quoted`): ASCII
/// without CR, LF or NUL.
pub fn is_quotable(value: &str) -> bool {
    value.is_ascii() && !value.contains(['\r', '\n', '\0'])
}

/// A quoted string. CR, LF and NUL are refused rather than sent, so no
/// value can end the command line and start another one; 8-bit text is
/// refused too (it would need a literal, or UTF8=ACCEPT).
pub fn quoted(what: &'static str, value: &str) -> Result<String, EncodeError> {
    let err = |why| EncodeError {
        what,
        value: value.to_string(),
        why,
    };
    if value.contains(['\r', '\n', '\0']) {
        return Err(err("it holds a line break or NUL"));
    }
    if !value.is_ascii() {
        return Err(err("it is not ASCII"));
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Ok(out)
}

/// A mailbox name as a command argument: modified UTF-7, quoted. Control
/// characters are refused: the encoder would hide them in base64, and no
/// folder should be created with them.
pub fn mailbox_arg(name: &Mailbox) -> Result<String, EncodeError> {
    if name.as_str().chars().any(char::is_control) {
        return Err(EncodeError {
            what: "mailbox name",
            value: name.to_string(),
            why: "it holds a control character",
        });
    }
    quoted(
        "mailbox name",
        &utf7_imap::encode_utf7_imap(name.as_str().to_string()),
    )
}

/// A header field name as a SEARCH argument: an atom where it is one, else a
/// quoted string (names may hold characters that atoms cannot).
fn header_name(name: &str) -> Result<String, EncodeError> {
    let atom = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if atom {
        Ok(name.to_string())
    } else {
        quoted("header name", name)
    }
}

/// RFC 3501 date: `1-Feb-2026`.
fn imap_date(d: NaiveDate) -> String {
    d.format("%-d-%b-%Y").to_string()
}

/// A SEARCH key (RFC 3501 6.4.4). `search` builds them from rules; only this
/// module writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    All,
    Undeleted,
    Uid(UidSet),
    /// `UID n:*`: every UID from `n` on, and always the highest one
    /// (RFC 3501 6.4.8), which the caller filters.
    UidFrom(u32),
    /// `FROM`, `TO`, `CC`, `BCC`, `SUBJECT` for those fields, else `HEADER`.
    Header(String, String),
    Body(String),
    Larger(u64),
    Smaller(u64),
    Before(NaiveDate),
    Since(NaiveDate),
    SentBefore(NaiveDate),
    SentSince(NaiveDate),
    Flag(SystemFlag, bool),
    Keyword(String),
    And(Vec<SearchKey>),
    Or(Box<SearchKey>, Box<SearchKey>),
    Not(Box<SearchKey>),
}

impl SearchKey {
    /// The key as the server reads it.
    pub fn render(&self) -> Result<String, EncodeError> {
        let mut out = String::new();
        self.write(&mut out)?;
        Ok(out)
    }

    fn write(&self, out: &mut String) -> Result<(), EncodeError> {
        match self {
            SearchKey::All => out.push_str("ALL"),
            SearchKey::Undeleted => out.push_str("UNDELETED"),
            SearchKey::Uid(set) => {
                let _ = write!(out, "UID {set}");
            }
            SearchKey::UidFrom(n) => {
                let _ = write!(out, "UID {n}:*");
            }
            SearchKey::Header(name, text) => {
                let q = quoted("search text", text)?;
                match name.to_ascii_lowercase().as_str() {
                    field @ ("from" | "to" | "cc" | "bcc" | "subject") => {
                        let _ = write!(out, "{} {q}", field.to_ascii_uppercase());
                    }
                    _ => {
                        let _ = write!(out, "HEADER {} {q}", header_name(name)?);
                    }
                }
            }
            SearchKey::Body(text) => {
                let _ = write!(out, "BODY {}", quoted("search text", text)?);
            }
            SearchKey::Larger(n) => {
                let _ = write!(out, "LARGER {n}");
            }
            SearchKey::Smaller(n) => {
                let _ = write!(out, "SMALLER {n}");
            }
            SearchKey::Before(d) => {
                let _ = write!(out, "BEFORE {}", imap_date(*d));
            }
            SearchKey::Since(d) => {
                let _ = write!(out, "SINCE {}", imap_date(*d));
            }
            SearchKey::SentBefore(d) => {
                let _ = write!(out, "SENTBEFORE {}", imap_date(*d));
            }
            SearchKey::SentSince(d) => {
                let _ = write!(out, "SENTSINCE {}", imap_date(*d));
            }
            SearchKey::Flag(flag, set) => {
                let name = match flag {
                    SystemFlag::Seen => "SEEN",
                    SystemFlag::Flagged => "FLAGGED",
                    SystemFlag::Answered => "ANSWERED",
                    SystemFlag::Draft => "DRAFT",
                };
                if !set {
                    out.push_str("UN");
                }
                out.push_str(name);
            }
            SearchKey::Keyword(k) => {
                let _ = write!(out, "KEYWORD {k}");
            }
            SearchKey::And(keys) => {
                let bracket = keys.len() != 1;
                if bracket {
                    out.push('(');
                }
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    k.write(out)?;
                }
                if bracket {
                    out.push(')');
                }
            }
            SearchKey::Or(a, b) => {
                out.push_str("OR ");
                a.write(out)?;
                out.push(' ');
                b.write(out)?;
            }
            SearchKey::Not(k) => {
                out.push_str("NOT ");
                k.write(out)?;
            }
        }
        Ok(())
    }
}

/// What a FETCH asks for besides UID, FLAGS, INTERNALDATE and RFC822.SIZE.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchItems {
    /// `BODY.PEEK[HEADER.FIELDS (...)]`, upper-case names; empty: none.
    pub header_fields: Vec<String>,
    /// BODYSTRUCTURE (RFC 3501 7.4.2).
    pub structure: bool,
    /// `BODY.PEEK[TEXT]<0.n>`: the text after the header, its first `n`
    /// octets (RFC 3501 6.4.5, partial fetch).
    pub text: Option<u32>,
    /// `MODSEQ` (RFC 7162 3.1.4.1).
    pub modseq: bool,
}

impl FetchItems {
    fn render(&self) -> Result<String, EncodeError> {
        let mut out = String::from("UID FLAGS INTERNALDATE RFC822.SIZE");
        if self.modseq {
            out.push_str(" MODSEQ");
        }
        if self.structure {
            out.push_str(" BODYSTRUCTURE");
        }
        if !self.header_fields.is_empty() {
            let names: Vec<String> = self
                .header_fields
                .iter()
                .map(|n| header_name(n))
                .collect::<Result<_, _>>()?;
            let _ = write!(out, " BODY.PEEK[HEADER.FIELDS ({})]", names.join(" "));
        }
        if let Some(n) = self.text {
            let _ = write!(out, " BODY.PEEK[TEXT]<0.{n}>");
        }
        Ok(out)
    }
}

/// How a flag list changes (RFC 3501 6.4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    Add,
    Remove,
}

/// One command, before it is written.
#[derive(Debug, Clone)]
pub enum Command<'a> {
    Capability,
    Noop,
    Logout,
    StartTls,
    Namespace,
    Login {
        user: &'a str,
        password: &'a Secret,
    },
    /// `AUTHENTICATE mechanism`, with the initial response inline where the
    /// server has SASL-IR (RFC 4959), base64.
    Authenticate {
        mechanism: &'static str,
        initial: Option<&'a str>,
    },
    /// `LIST "" ""`: the hierarchy separator (RFC 3501 6.3.8).
    ListSeparator,
    /// `LIST "" "*"`, with SPECIAL-USE attributes asked for where the
    /// server has LIST-EXTENDED (RFC 6154 2).
    ListAll {
        special_use: bool,
    },
    Select {
        mailbox: &'a Mailbox,
        read_only: bool,
        condstore: bool,
    },
    Create(&'a Mailbox),
    Subscribe(&'a Mailbox),
    UidSearch(&'a SearchKey),
    UidFetch {
        uids: &'a UidSet,
        items: &'a FetchItems,
    },
    /// `UID FETCH 1:* (UID) (CHANGEDSINCE n)` (RFC 7162 3.1.4.1).
    ChangedSince(u64),
    UidStore {
        uids: &'a UidSet,
        mode: StoreMode,
        flags: &'a [Flag],
    },
    UidCopy {
        uids: &'a UidSet,
        to: &'a Mailbox,
    },
    /// RFC 6851.
    UidMove {
        uids: &'a UidSet,
        to: &'a Mailbox,
    },
    /// RFC 4315 2.1: removes exactly these UIDs.
    UidExpunge(&'a UidSet),
    /// RFC 5182: `UID SEARCH RETURN (SAVE) UID <set>`, which the server
    /// keeps as `$`; with `extend`, `... OR $ UID <set>` adds to it. A set
    /// too long for one line is so built up in several short ones.
    SaveUids {
        uids: &'a UidSet,
        extend: bool,
    },
    /// RFC 6851 on the set saved by [`Command::SaveUids`]: `UID MOVE $
    /// <to>`, `count` UIDs.
    UidMoveSaved {
        count: usize,
        to: &'a Mailbox,
    },
    Idle,
    Append {
        mailbox: &'a Mailbox,
        flags: &'a [Flag],
        arrival: Option<DateTime<Utc>>,
        message: &'a [u8],
    },
}

impl Command<'_> {
    /// How many UIDs the command names, for one that acts on a UID set.
    pub fn uid_count(&self) -> usize {
        match self {
            Command::UidFetch { uids, .. }
            | Command::UidStore { uids, .. }
            | Command::UidCopy { uids, .. }
            | Command::UidMove { uids, .. }
            | Command::UidExpunge(uids)
            | Command::SaveUids { uids, .. } => uids.len(),
            Command::UidMoveSaved { count, .. } => *count,
            _ => 0,
        }
    }
}

/// A command as written: text, and literals where a value needs one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The pieces to send after the tag and a space. A literal's length
    /// announcement ends the text before it; the session adds the `+` of
    /// LITERAL+ or waits for the server's go-ahead (RFC 3501 7.5).
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Text(String),
    Literal(Vec<u8>),
}

/// The flags as a parenthesized list.
fn flag_list(flags: &[Flag]) -> String {
    let names: Vec<String> = flags.iter().map(Flag::imap).collect();
    format!("({})", names.join(" "))
}

/// `value` as an astring: quoted where it can be, else a literal.
fn string_parts(value: &str, parts: &mut Vec<Part>, text: &mut String) {
    if is_quotable(value) {
        text.push_str(&quoted("", value).expect("checked quotable"));
    } else {
        parts.push(Part::Text(std::mem::take(text)));
        parts.push(Part::Literal(value.as_bytes().to_vec()));
    }
}

impl Command<'_> {
    /// The command's verb, for logs and errors (`UID MOVE`).
    pub fn name(&self) -> &'static str {
        match self {
            Command::Capability => "CAPABILITY",
            Command::Noop => "NOOP",
            Command::Logout => "LOGOUT",
            Command::StartTls => "STARTTLS",
            Command::Namespace => "NAMESPACE",
            Command::Login { .. } => "LOGIN",
            Command::Authenticate { .. } => "AUTHENTICATE",
            Command::ListSeparator | Command::ListAll { .. } => "LIST",
            Command::Select {
                read_only: true, ..
            } => "EXAMINE",
            Command::Select { .. } => "SELECT",
            Command::Create(_) => "CREATE",
            Command::Subscribe(_) => "SUBSCRIBE",
            Command::UidSearch(_) | Command::SaveUids { .. } => "UID SEARCH",
            Command::UidFetch { .. } | Command::ChangedSince(_) => "UID FETCH",
            Command::UidStore { .. } => "UID STORE",
            Command::UidCopy { .. } => "UID COPY",
            Command::UidMove { .. } | Command::UidMoveSaved { .. } => "UID MOVE",
            Command::UidExpunge(_) => "UID EXPUNGE",
            Command::Idle => "IDLE",
            Command::Append { .. } => "APPEND",
        }
    }

    /// Whether the command carries a secret: its text is never logged.
    pub fn is_secret(&self) -> bool {
        matches!(self, Command::Login { .. } | Command::Authenticate { .. })
    }

    /// The command's text after the tag, without the final CRLF.
    pub fn render(&self) -> Result<Request, EncodeError> {
        let mut parts = Vec::new();
        let mut t = String::new();
        match self {
            Command::Login { user, password } => {
                t.push_str("LOGIN ");
                if user.contains(['\r', '\n', '\0'])
                    || password.expose().contains(['\r', '\n', '\0'])
                {
                    return Err(EncodeError {
                        what: "user name or password",
                        value: "[redacted]".into(),
                        why: "it holds a line break or NUL",
                    });
                }
                string_parts(user, &mut parts, &mut t);
                t.push(' ');
                string_parts(password.expose(), &mut parts, &mut t);
            }
            Command::Authenticate { mechanism, initial } => {
                t.push_str("AUTHENTICATE ");
                t.push_str(mechanism);
                if let Some(i) = initial {
                    // RFC 4959: an empty initial response is written "=".
                    t.push(' ');
                    t.push_str(if i.is_empty() { "=" } else { i });
                }
            }
            Command::ListSeparator => t.push_str("LIST \"\" \"\""),
            Command::ListAll { special_use: true } => {
                t.push_str("LIST \"\" \"*\" RETURN (SPECIAL-USE)")
            }
            Command::ListAll { special_use: false } => t.push_str("LIST \"\" \"*\""),
            Command::Select {
                mailbox, condstore, ..
            } => {
                let _ = write!(t, "{} {}", self.name(), mailbox_arg(mailbox)?);
                // RFC 7162 3.1.8: the CONDSTORE parameter turns
                // mod-sequences on for this mailbox.
                if *condstore {
                    t.push_str(" (CONDSTORE)");
                }
            }
            Command::Create(m) | Command::Subscribe(m) => {
                let _ = write!(t, "{} {}", self.name(), mailbox_arg(m)?);
            }
            Command::UidSearch(key) => {
                let _ = write!(t, "UID SEARCH {}", key.render()?);
            }
            Command::UidFetch { uids, items } => {
                let _ = write!(t, "UID FETCH {uids} ({})", items.render()?);
            }
            Command::ChangedSince(modseq) => {
                let _ = write!(t, "UID FETCH 1:* (UID) (CHANGEDSINCE {modseq})");
            }
            Command::UidStore { uids, mode, flags } => {
                // Not .SILENT: the server answers with each message's new
                // flags, and those answers say which messages it changed.
                let op = match mode {
                    StoreMode::Add => "+FLAGS",
                    StoreMode::Remove => "-FLAGS",
                };
                let _ = write!(t, "UID STORE {uids} {op} {}", flag_list(flags));
            }
            Command::UidCopy { uids, to } => {
                let _ = write!(t, "UID COPY {uids} {}", mailbox_arg(to)?);
            }
            Command::UidMove { uids, to } => {
                let _ = write!(t, "UID MOVE {uids} {}", mailbox_arg(to)?);
            }
            Command::UidExpunge(uids) => {
                let _ = write!(t, "UID EXPUNGE {uids}");
            }
            Command::SaveUids { uids, extend } => {
                let or = if *extend { "OR $ " } else { "" };
                let _ = write!(t, "UID SEARCH RETURN (SAVE) {or}UID {uids}");
            }
            Command::UidMoveSaved { to, .. } => {
                let _ = write!(t, "UID MOVE $ {}", mailbox_arg(to)?);
            }
            Command::Append {
                mailbox,
                flags,
                arrival,
                message,
            } => {
                let _ = write!(t, "APPEND {} {}", mailbox_arg(mailbox)?, flag_list(flags));
                if let Some(d) = arrival {
                    // RFC 3501 9: date-time is a quoted string.
                    let _ = write!(t, " {}", d.format("\"%d-%b-%Y %H:%M:%S +0000\""));
                }
                t.push(' ');
                parts.push(Part::Text(std::mem::take(&mut t)));
                parts.push(Part::Literal(message.to_vec()));
            }
            Command::Capability
            | Command::Noop
            | Command::Logout
            | Command::StartTls
            | Command::Namespace
            | Command::Idle => t.push_str(self.name()),
        }
        if !t.is_empty() || parts.is_empty() {
            parts.push(Part::Text(t));
        }
        Ok(Request { parts })
    }

    /// The text to log: the whole command, or its verb for one that
    /// carries a secret.
    pub fn for_log(&self) -> String {
        if self.is_secret() {
            return format!("{} [redacted]", self.name());
        }
        match self.render() {
            Ok(r) => r
                .parts
                .iter()
                .map(|p| match p {
                    Part::Text(t) => t.clone(),
                    Part::Literal(l) => format!("{{{} octets}}", l.len()),
                })
                .collect(),
            Err(e) => e.to_string(),
        }
    }
}

impl fmt::Display for Command<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::types::uid;

    fn text(c: Command) -> String {
        c.for_log()
    }

    #[test]
    fn quoting_escapes_and_refuses_line_breaks() {
        assert_eq!(quoted("x", "plain").unwrap(), "\"plain\"");
        assert_eq!(quoted("x", r#"a"b\c"#).unwrap(), r#""a\"b\\c""#);
        for bad in [
            "a\r\nb UID STORE 1:* +FLAGS (\\Deleted)",
            "a\nb",
            "a\rb",
            "a\0b",
            "ünï",
        ] {
            assert!(quoted("x", bad).is_err(), "{bad:?}");
            assert!(!is_quotable(bad), "{bad:?}");
        }
    }

    #[test]
    fn mailbox_names_use_modified_utf7() {
        let m = |s: &str| mailbox_arg(&Mailbox::from_server(s));
        assert_eq!(m("Ümlaut/Öl").unwrap(), "\"&ANw-mlaut/&ANY-l\"");
        assert_eq!(m("a&b").unwrap(), "\"a&-b\"");
        assert!(m("a\r\nb").is_err());
        assert!(m("a\u{7}b").is_err());
    }

    #[test]
    fn commands_are_written_as_rfc_3501_asks() {
        let set: UidSet = [1, 2, 3, 7].into_iter().map(uid).collect();
        let to = Mailbox::from_server("INBOX.Lists.rust");
        let seen = [Flag::System(SystemFlag::Seen), Flag::Keyword("$X".into())];
        let items = FetchItems {
            header_fields: vec!["FROM".into(), "X(ODD)".into()],
            structure: true,
            text: Some(1024),
            modseq: false,
        };
        let key = SearchKey::And(vec![
            SearchKey::Undeleted,
            SearchKey::Or(
                Box::new(SearchKey::Header("From".into(), "a\"b".into())),
                Box::new(SearchKey::Header("X-Spam".into(), "yes".into())),
            ),
            SearchKey::Not(Box::new(SearchKey::Flag(SystemFlag::Seen, false))),
            SearchKey::Before(NaiveDate::from_ymd_opt(2026, 3, 2).unwrap()),
        ]);
        let cases = [
            (
                Command::UidMove {
                    uids: &set,
                    to: &to,
                },
                "UID MOVE 1:3,7 \"INBOX.Lists.rust\"",
            ),
            (
                Command::SaveUids {
                    uids: &set,
                    extend: false,
                },
                "UID SEARCH RETURN (SAVE) UID 1:3,7",
            ),
            (
                Command::SaveUids {
                    uids: &set,
                    extend: true,
                },
                "UID SEARCH RETURN (SAVE) OR $ UID 1:3,7",
            ),
            (
                Command::UidMoveSaved { count: 4, to: &to },
                "UID MOVE $ \"INBOX.Lists.rust\"",
            ),
            (
                Command::UidStore {
                    uids: &set,
                    mode: StoreMode::Add,
                    flags: &seen,
                },
                "UID STORE 1:3,7 +FLAGS (\\Seen $X)",
            ),
            (
                Command::UidFetch {
                    uids: &set,
                    items: &items,
                },
                "UID FETCH 1:3,7 (UID FLAGS INTERNALDATE RFC822.SIZE BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS (FROM \"X(ODD)\")] BODY.PEEK[TEXT]<0.1024>)",
            ),
            (
                Command::UidSearch(&key),
                "UID SEARCH (UNDELETED OR FROM \"a\\\"b\" HEADER X-Spam \"yes\" NOT UNSEEN BEFORE 2-Mar-2026)",
            ),
            (
                Command::Select {
                    mailbox: &to,
                    read_only: true,
                    condstore: true,
                },
                "EXAMINE \"INBOX.Lists.rust\" (CONDSTORE)",
            ),
            (
                Command::ChangedSince(77),
                "UID FETCH 1:* (UID) (CHANGEDSINCE 77)",
            ),
            (
                Command::ListAll { special_use: true },
                "LIST \"\" \"*\" RETURN (SPECIAL-USE)",
            ),
        ];
        for (cmd, want) in cases {
            assert_eq!(text(cmd), want);
        }
    }

    #[test]
    fn secrets_stay_out_of_logs_and_odd_ones_go_as_literals() {
        let pw = Secret::new("pä\"ss");
        let login = Command::Login {
            user: "me",
            password: &pw,
        };
        assert_eq!(login.for_log(), "LOGIN [redacted]");
        assert_eq!(
            login.render().unwrap().parts,
            [
                Part::Text("LOGIN \"me\" ".into()),
                Part::Literal("pä\"ss".as_bytes().to_vec())
            ]
        );
        let bad = Secret::new("a\r\nb");
        let err = Command::Login {
            user: "me",
            password: &bad,
        }
        .render()
        .unwrap_err();
        assert!(!err.to_string().contains("a\r\nb"), "{err}");
        let auth = Command::Authenticate {
            mechanism: "PLAIN",
            initial: Some("AG1lAHB3"),
        };
        assert_eq!(auth.for_log(), "AUTHENTICATE [redacted]");
    }

    #[test]
    fn a_search_text_that_cannot_be_quoted_is_refused_not_sent() {
        let key = SearchKey::Header("Subject".into(), "a\r\nb".into());
        assert!(key.render().is_err());
        let key = SearchKey::Header("Sub ject".into(), "x".into());
        assert_eq!(key.render().unwrap(), "HEADER \"Sub ject\" \"x\"");
    }
}
