//! Responses as typed values: one whole frame (from `imap::wire`) in, one
//! [`Reply`] out, owned. imap-proto parses what it knows; NAMESPACE (RFC
//! 2342), which it does not, is read here; anything else it cannot read
//! becomes [`Untagged::Malformed`] and the session goes on with the next
//! response. Pure; used by `imap::session`.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use imap_proto::{
    AttributeValue, MailboxDatum, MessageSection, Response, ResponseCode, SectionPath,
};

use super::types::{Capability, Uid, UidValidity, decode_mailbox};
use crate::rules::Flag;

/// The status word of a response (RFC 3501 7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bad,
    PreAuth,
    Bye,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::No => "NO",
            Status::Bad => "BAD",
            Status::PreAuth => "PREAUTH",
            Status::Bye => "BYE",
        }
    }
}

/// A response code (RFC 3501 7.1), the ones mailwarden acts on named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    TryCreate,
    UidValidity(UidValidity),
    UidNext(u32),
    HighestModSeq(u64),
    /// RFC 4315 3: the source UIDs and their new UIDs, pair by pair.
    CopyUid {
        validity: UidValidity,
        pairs: Vec<(Uid, Uid)>,
    },
    Capabilities(Vec<Capability>),
    ReadOnly,
    ReadWrite,
    Alert,
    /// Any other code, as its first word (`AUTHENTICATIONFAILED`).
    Other(String),
}

/// The personal namespace (RFC 2342 5), the first one the server lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceReply {
    /// `(prefix, separator)` of each personal namespace; empty for NIL.
    pub personal: Vec<(String, Option<char>)>,
    /// Those of other users' and shared namespaces: never used to name
    /// personal folders, kept so that a folder in them is recognised.
    pub others: Vec<(String, Option<char>)>,
}

/// One mailbox of a LIST answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// Decoded from modified UTF-7.
    pub name: String,
    /// As the server wrote them (`\Noselect`, `\Trash`, ...).
    pub attributes: Vec<String>,
    pub separator: Option<char>,
}

impl ListEntry {
    pub fn has(&self, attribute: &str) -> bool {
        self.attributes
            .iter()
            .any(|a| a.eq_ignore_ascii_case(attribute))
    }
}

/// What one FETCH response carried.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchData {
    pub seq: u32,
    pub uid: Option<Uid>,
    pub flags: Option<BTreeSet<Flag>>,
    pub internal_date: Option<DateTime<Utc>>,
    pub size: Option<u32>,
    /// The header fields asked for (`BODY[HEADER.FIELDS (...)]`), or a
    /// whole message (`BODY[]`).
    pub header: Option<Vec<u8>>,
    /// `BODY[TEXT]`: the body after the header.
    pub text: Option<Vec<u8>>,
    /// BODYSTRUCTURE as a skeleton MIME message (`imap::structure`).
    pub structure: Option<Vec<u8>>,
    pub modseq: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Untagged {
    Status {
        status: Status,
        code: Option<Code>,
        text: String,
    },
    Capabilities(Vec<Capability>),
    Exists(u32),
    Recent(u32),
    Expunge(u32),
    Search(Vec<Uid>),
    List(ListEntry),
    Namespace(NamespaceReply),
    Fetch(Box<FetchData>),
    /// Something else a server may say (FLAGS, STATUS, ENABLED...).
    Other,
    /// A response that could not be read; the start of it, for the log.
    Malformed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Tagged {
        tag: String,
        status: Status,
        code: Option<Code>,
        text: String,
    },
    Untagged(Untagged),
    /// `+`: the server waits for more (a literal, an AUTHENTICATE step,
    /// or IDLE has begun).
    Continue(String),
}

/// Reads one whole response.
pub fn parse(frame: &[u8]) -> Reply {
    let frame = code_text_spaced(frame);
    let frame = frame.as_ref();
    match Response::parse(frame) {
        Ok((b"", response)) => convert(response),
        _ => match namespace(frame) {
            Some(ns) => Reply::Untagged(Untagged::Namespace(ns)),
            None => Reply::Untagged(Untagged::Malformed(excerpt(frame))),
        },
    }
}

/// The frame with a space after each `]` of its first line that a
/// non-ASCII byte follows. imap-proto 0.17 takes the character after a
/// response code's `]` to be the space RFC 3501 9 puts there (`resp-text`)
/// and cuts it off by byte: a multi-byte character there (`* OK [ALERT]ä`,
/// or an invalid byte) made it panic. With an ASCII character it only
/// loses that character, as before.
fn code_text_spaced(frame: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let line = frame
        .iter()
        .position(|&b| b == b'\n')
        .map_or(frame.len(), |n| n + 1);
    let risky = |i: usize| frame[i] == b']' && frame.get(i + 1).is_some_and(|&b| b >= 0x80);
    if !(0..line).any(risky) {
        return std::borrow::Cow::Borrowed(frame);
    }
    let mut out = Vec::with_capacity(frame.len() + 4);
    for (i, &b) in frame.iter().enumerate() {
        out.push(b);
        if i < line && risky(i) {
            out.push(b' ');
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The start of a frame, printable, for a log line.
pub fn excerpt(frame: &[u8]) -> String {
    let text = String::from_utf8_lossy(&frame[..frame.len().min(120)]);
    let mut out: String = text
        .trim_end()
        .chars()
        .map(|c| if c.is_control() { '.' } else { c })
        .collect();
    if frame.len() > 120 {
        out.push('…');
    }
    out
}

fn status(s: &imap_proto::Status) -> Status {
    match s {
        imap_proto::Status::Ok => Status::Ok,
        imap_proto::Status::No => Status::No,
        imap_proto::Status::Bad => Status::Bad,
        imap_proto::Status::PreAuth => Status::PreAuth,
        imap_proto::Status::Bye => Status::Bye,
    }
}

fn capability(c: &imap_proto::Capability) -> Capability {
    match c {
        imap_proto::Capability::Imap4rev1 => Capability::Imap4rev1,
        imap_proto::Capability::Auth(a) => Capability::Auth(a.to_ascii_uppercase()),
        imap_proto::Capability::Atom(a) => Capability::parse(a),
    }
}

fn expand(set: &[imap_proto::rfc4315::UidSetMember]) -> Vec<u32> {
    let mut out = Vec::new();
    for m in set {
        match m {
            imap_proto::rfc4315::UidSetMember::Uid(u) => out.push(*u),
            // Ranges may be written high:low (RFC 3501 9, seq-range); the
            // pairing of COPYUID is by order of the UIDs (RFC 4315 3).
            imap_proto::rfc4315::UidSetMember::UidRange(r) => {
                let (a, b) = (*r.start(), *r.end());
                // A server cannot have copied more than it was asked to;
                // a range larger than that is not believed.
                if a.abs_diff(b) > 10_000_000 {
                    return Vec::new();
                }
                if a <= b {
                    out.extend(a..=b)
                } else {
                    out.extend((b..=a).rev())
                }
            }
        }
    }
    out
}

/// The code of a response, and its text without the code.
fn outcome(o: &imap_proto::Outcome) -> (Option<Code>, String) {
    let text = o.information.as_deref().unwrap_or("").trim().to_string();
    let code = match &o.code {
        Some(ResponseCode::TryCreate) => Some(Code::TryCreate),
        Some(ResponseCode::UidValidity(v)) => UidValidity::new(*v).map(Code::UidValidity),
        Some(ResponseCode::UidNext(n)) => Some(Code::UidNext(*n)),
        Some(ResponseCode::HighestModSeq(m)) => Some(Code::HighestModSeq(*m)),
        Some(ResponseCode::CopyUid(v, from, to)) => {
            let (from, to) = (expand(from), expand(to));
            match UidValidity::new(*v) {
                Some(validity) if from.len() == to.len() => Some(Code::CopyUid {
                    validity,
                    pairs: from
                        .into_iter()
                        .zip(to)
                        .filter_map(|(a, b)| Some((Uid::new(a)?, Uid::new(b)?)))
                        .collect(),
                }),
                _ => None,
            }
        }
        Some(ResponseCode::Capabilities(c)) => {
            Some(Code::Capabilities(c.iter().map(capability).collect()))
        }
        Some(ResponseCode::ReadOnly) => Some(Code::ReadOnly),
        Some(ResponseCode::ReadWrite) => Some(Code::ReadWrite),
        Some(ResponseCode::Alert) => Some(Code::Alert),
        Some(_) => Some(Code::Other(String::new())),
        None => None,
    };
    // Codes imap-proto does not know stay in the text: `[NONEXISTENT] ...`.
    if code.is_none()
        && let Some(rest) = text.strip_prefix('[')
        && let Some((inner, after)) = rest.split_once(']')
    {
        let word = inner.split(' ').next().unwrap_or("").to_ascii_uppercase();
        return (Some(Code::Other(word)), after.trim().to_string());
    }
    (code, text)
}

/// RFC 3501 date-time: `17-Jul-1996 02:44:25 -0700` (day may be space-padded).
fn internal_date(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(s.trim(), "%d-%b-%Y %H:%M:%S %z")
        .ok()
        .map(|d| d.to_utc())
}

fn flags(names: &[std::borrow::Cow<str>]) -> BTreeSet<Flag> {
    // \Recent and unknown system flags are not ours to act on.
    names.iter().filter_map(|n| Flag::parse(n).ok()).collect()
}

fn name_attribute(a: &imap_proto::NameAttribute) -> String {
    use imap_proto::NameAttribute as N;
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
        _ => String::new(),
    }
}

fn fetch(seq: u32, attrs: &[AttributeValue]) -> FetchData {
    let mut d = FetchData {
        seq,
        ..FetchData::default()
    };
    for a in attrs {
        match a {
            AttributeValue::Uid(u) => d.uid = Uid::new(*u),
            AttributeValue::Flags(f) => d.flags = Some(flags(f)),
            AttributeValue::InternalDate(s) => d.internal_date = internal_date(s),
            AttributeValue::Rfc822Size(s) => d.size = Some(*s),
            AttributeValue::ModSeq(m) => d.modseq = Some(*m),
            AttributeValue::BodySection {
                section: Some(SectionPath::Full(MessageSection::Text)),
                data,
                ..
            } => d.text = Some(data.as_deref().unwrap_or_default().to_vec()),
            AttributeValue::BodySection { data, .. }
            | AttributeValue::Rfc822Header(data)
            | AttributeValue::Rfc822(data) => {
                d.header = Some(data.as_deref().unwrap_or_default().to_vec())
            }
            AttributeValue::BodyStructure(b) => d.structure = Some(super::structure::skeleton(b)),
            _ => {}
        }
    }
    d
}

fn convert(r: Response) -> Reply {
    let u = |x| Reply::Untagged(x);
    match r {
        Response::Done {
            tag,
            status: s,
            outcome: o,
        } => {
            let (code, text) = outcome(&o);
            Reply::Tagged {
                tag: tag.0,
                status: status(&s),
                code,
                text,
            }
        }
        Response::Continue(o) => Reply::Continue(outcome(&o).1),
        Response::Data {
            status: s,
            outcome: o,
        } => {
            let (code, text) = outcome(&o);
            u(Untagged::Status {
                status: status(&s),
                code,
                text,
            })
        }
        Response::Capabilities(list) => u(Untagged::Capabilities(
            list.iter().map(capability).collect(),
        )),
        Response::Expunge(n) => u(Untagged::Expunge(n)),
        Response::Fetch(seq, attrs) => u(Untagged::Fetch(Box::new(fetch(seq, &attrs)))),
        Response::MailboxData(MailboxDatum::Exists(n)) => u(Untagged::Exists(n)),
        Response::MailboxData(MailboxDatum::Recent(n)) => u(Untagged::Recent(n)),
        Response::MailboxData(MailboxDatum::Search(found)) => u(Untagged::Search(
            found.into_iter().filter_map(Uid::new).collect(),
        )),
        Response::MailboxData(MailboxDatum::List(l)) => u(Untagged::List(ListEntry {
            name: decode_mailbox(&l.name),
            attributes: l
                .name_attributes
                .iter()
                .map(name_attribute)
                .filter(|a| !a.is_empty())
                .collect(),
            separator: l.delimiter.as_deref().and_then(|d| d.chars().next()),
        })),
        _ => u(Untagged::Other),
    }
}

/// A parenthesized value of a response: enough of RFC 3501's grammar for
/// NAMESPACE.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sexp {
    Nil,
    Str(String),
    Atom(String),
    List(Vec<Sexp>),
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
    depth: usize,
}

impl Reader<'_> {
    fn skip_spaces(&mut self) {
        while self.b.get(self.i) == Some(&b' ') {
            self.i += 1;
        }
    }

    fn value(&mut self) -> Option<Sexp> {
        self.skip_spaces();
        match *self.b.get(self.i)? {
            b'(' => {
                // Nesting deeper than any real answer is not followed.
                self.depth += 1;
                if self.depth > 16 {
                    return None;
                }
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_spaces();
                    if *self.b.get(self.i)? == b')' {
                        self.i += 1;
                        self.depth -= 1;
                        return Some(Sexp::List(items));
                    }
                    items.push(self.value()?);
                }
            }
            b'"' => {
                self.i += 1;
                let mut s = Vec::new();
                loop {
                    match *self.b.get(self.i)? {
                        b'"' => break,
                        b'\\' => {
                            self.i += 1;
                            s.push(*self.b.get(self.i)?);
                        }
                        b'\r' | b'\n' => return None,
                        c => s.push(c),
                    }
                    self.i += 1;
                }
                self.i += 1;
                Some(Sexp::Str(String::from_utf8_lossy(&s).into_owned()))
            }
            b'{' => {
                let close = self.i + self.b[self.i..].iter().position(|&c| c == b'}')?;
                let n: usize = std::str::from_utf8(&self.b[self.i + 1..close])
                    .ok()?
                    .trim_end_matches('+')
                    .parse()
                    .ok()?;
                let start = close + 1 + self.b.get(close + 1..close + 3)?.len();
                let data = self.b.get(start..start + n)?;
                self.i = start + n;
                Some(Sexp::Str(String::from_utf8_lossy(data).into_owned()))
            }
            _ => {
                let start = self.i;
                while let Some(&c) = self.b.get(self.i) {
                    if c == b' ' || c == b'(' || c == b')' || c == b'\r' || c == b'\n' {
                        break;
                    }
                    self.i += 1;
                }
                let word = String::from_utf8_lossy(&self.b[start..self.i]).into_owned();
                if word.is_empty() {
                    None
                } else if word.eq_ignore_ascii_case("NIL") {
                    Some(Sexp::Nil)
                } else {
                    Some(Sexp::Atom(word))
                }
            }
        }
    }
}

/// `* NAMESPACE personal other shared` (RFC 2342 5), each NIL or a list of
/// `(prefix delimiter extension...)`.
fn namespace(frame: &[u8]) -> Option<NamespaceReply> {
    let head = b"* NAMESPACE ";
    if frame.len() < head.len() || !frame[..head.len()].eq_ignore_ascii_case(head) {
        return None;
    }
    let mut r = Reader {
        b: frame,
        i: head.len(),
        depth: 0,
    };
    let mut groups = Vec::new();
    for _ in 0..3 {
        groups.push(r.value()?);
    }
    r.skip_spaces();
    if !matches!(&frame[r.i..], b"\r\n" | b"\n") {
        return None;
    }
    let read = |g: &Sexp| -> Option<Vec<(String, Option<char>)>> {
        match g {
            Sexp::Nil => Some(Vec::new()),
            Sexp::List(items) => items
                .iter()
                .map(|item| match item {
                    Sexp::List(parts) => {
                        let prefix = match parts.first()? {
                            Sexp::Str(s) | Sexp::Atom(s) => decode_mailbox(s),
                            _ => return None,
                        };
                        let sep = match parts.get(1)? {
                            Sexp::Str(s) => s.chars().next(),
                            _ => None,
                        };
                        Some((prefix, sep))
                    }
                    _ => None,
                })
                .collect(),
            _ => None,
        }
    };
    let personal = read(&groups[0])?;
    let mut others = read(&groups[1])?;
    others.extend(read(&groups[2])?);
    Some(NamespaceReply { personal, others })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::types::uid;

    fn untagged(s: &str) -> Untagged {
        match parse(s.as_bytes()) {
            Reply::Untagged(u) => u,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn namespaces_of_real_servers() {
        let ns = |personal: &[(&str, Option<char>)], others: &[(&str, Option<char>)]| {
            Untagged::Namespace(NamespaceReply {
                personal: personal.iter().map(|(p, s)| (p.to_string(), *s)).collect(),
                others: others.iter().map(|(p, s)| (p.to_string(), *s)).collect(),
            })
        };
        let cases = [
            // Dovecot's default, Gmail, Exchange.
            (
                "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n",
                ns(&[("", Some('/'))], &[]),
            ),
            // Courier, Cyrus with Debian's naming.
            (
                "* NAMESPACE ((\"INBOX.\" \".\")) NIL ((\"#shared.\" \".\")(\"shared.\" \".\"))\r\n",
                ns(
                    &[("INBOX.", Some('.'))],
                    &[("#shared.", Some('.')), ("shared.", Some('.'))],
                ),
            ),
            // Cyrus upstream: other users, shared, with an extension.
            (
                "* NAMESPACE ((\"\" \"/\")) ((\"Other Users/\" \"/\")) ((\"Shared Folders/\" \"/\" \"X-PARAM\" (\"a\" \"b\")))\r\n",
                ns(
                    &[("", Some('/'))],
                    &[("Other Users/", Some('/')), ("Shared Folders/", Some('/'))],
                ),
            ),
            // A flat server, and a literal prefix.
            (
                "* NAMESPACE ((\"\" NIL)) NIL NIL\r\n",
                ns(&[("", None)], &[]),
            ),
            (
                "* NAMESPACE (({6}\r\nINBOX. \".\")) NIL NIL\r\n",
                ns(&[("INBOX.", Some('.'))], &[]),
            ),
            ("* namespace NIL NIL NIL\r\n", ns(&[], &[])),
        ];
        for (text, want) in cases {
            assert_eq!(untagged(text), want, "{text}");
        }
        for bad in [
            "* NAMESPACE ((\"\" \"/\")) NIL\r\n",
            "* NAMESPACE ((\"\" \"/\")) NIL NIL junk\r\n",
            "* NAMESPACE ((((((((((((((((((\"\")))))))))))))))))) NIL NIL\r\n",
            "* NAMESPACE ((\"unterminated)) NIL NIL\r\n",
        ] {
            assert!(matches!(untagged(bad), Untagged::Malformed(_)), "{bad}");
        }
    }

    #[test]
    fn text_after_a_code_may_start_with_any_byte() {
        // These made imap-proto panic.
        for (frame, want) in [
            (&b"* OK [ALERT]\xc3\xa4rger\r\n"[..], "\u{e4}rger"),
            (
                &b"* OK [PERMANENTFLAGS (\\Seen)]\x80Flags permitted.\r\n"[..],
                "\u{fffd}Flags permitted.",
            ),
            (&b"a1 NO [ALERT]\xff\r\n"[..], "\u{fffd}"),
        ] {
            let text = match parse(frame) {
                Reply::Untagged(Untagged::Status { text, .. }) | Reply::Tagged { text, .. } => text,
                other => panic!("{other:?}"),
            };
            assert_eq!(text, want, "{:?}", String::from_utf8_lossy(frame));
        }
        // Elsewhere the bytes are left alone.
        assert_eq!(
            code_text_spaced(b"* 1 FETCH (BODY[] {2}\r\n]\xc3)\r\n"),
            &b"* 1 FETCH (BODY[] {2}\r\n]\xc3)\r\n"[..]
        );
    }

    #[test]
    fn codes_are_read_known_or_not() {
        let tagged = |s: &str| match parse(s.as_bytes()) {
            Reply::Tagged {
                status, code, text, ..
            } => (status, code, text),
            other => panic!("{s}: {other:?}"),
        };
        assert_eq!(
            tagged("a1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"),
            (
                Status::No,
                Some(Code::Other("AUTHENTICATIONFAILED".into())),
                "Authentication failed.".into()
            )
        );
        assert_eq!(
            tagged("a2 NO [TRYCREATE] no such mailbox\r\n").1,
            Some(Code::TryCreate)
        );
        assert_eq!(
            tagged("a3 OK [COPYUID 9 4:6,2 10:13] Moved\r\n").1,
            Some(Code::CopyUid {
                validity: UidValidity::new(9).unwrap(),
                pairs: vec![
                    (uid(4), uid(10)),
                    (uid(5), uid(11)),
                    (uid(6), uid(12)),
                    (uid(2), uid(13))
                ]
            })
        );
        // A COPYUID whose two sets differ in length is not believed.
        assert_eq!(tagged("a4 OK [COPYUID 9 1:3 10] x\r\n").1, None);
        assert_eq!(tagged("a5 OK done\r\n").1, None);
    }

    #[test]
    fn fetch_data_is_kept_and_garbage_is_named_not_fatal() {
        let f = untagged(
            "* 3 FETCH (UID 17 FLAGS (\\Seen $X \\Recent) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 44 BODY[HEADER.FIELDS (FROM)] {9}\r\nFrom: a\r\n BODY[TEXT]<0> {2}\r\nhi)\r\n",
        );
        let Untagged::Fetch(d) = f else {
            panic!("{f:?}")
        };
        assert_eq!(d.uid, Some(uid(17)));
        assert_eq!(d.flags.as_ref().map(BTreeSet::len), Some(2));
        assert_eq!(d.size, Some(44));
        assert_eq!(d.header.as_deref(), Some(&b"From: a\r\n"[..]));
        assert_eq!(d.text.as_deref(), Some(&b"hi"[..]));
        assert_eq!(
            d.internal_date.unwrap().to_rfc3339(),
            "1996-07-17T09:44:25+00:00"
        );
        // An attribute the parser does not know is left out...
        let odd = untagged(
            "* 3 FETCH (UID 17 BODYSTRUCTURE (BOGUS \"text\" \"plain\" NIL NIL NIL \"7bit\" 2 1))\r\n",
        );
        assert!(
            matches!(&odd, Untagged::Fetch(d) if d.uid == Some(uid(17)) && d.structure.is_none()),
            "{odd:?}"
        );
        // ...and a response it cannot read at all is named, not fatal.
        let bad = untagged("* 3 FETCH (UID 17 FLAGS (\\Seen)\r\n");
        assert!(
            matches!(&bad, Untagged::Malformed(s) if s.starts_with("* 3 FETCH")),
            "{bad:?}"
        );
        assert_eq!(untagged("* 0 EXISTS\r\n"), Untagged::Exists(0));
        assert_eq!(
            untagged("* SEARCH 3 0 1\r\n"),
            Untagged::Search(vec![uid(3), uid(1)])
        );
    }

    #[test]
    fn list_entries_decode_names_and_keep_attributes() {
        assert_eq!(
            untagged("* LIST (\\HasNoChildren \\Trash) \"/\" \"Deleted &AOQ-\"\r\n"),
            Untagged::List(ListEntry {
                name: "Deleted ä".into(),
                attributes: vec!["\\HasNoChildren".into(), "\\Trash".into()],
                separator: Some('/'),
            })
        );
    }
}
