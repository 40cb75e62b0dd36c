//! The message as rules see it: decoded headers, addresses, List-Id, body
//! text and attachments, plus what only the mailbox knows (arrival time,
//! flags, size). Built from raw RFC 5322 bytes or from a header block with
//! mail-parser; read by `rules::evaluate`.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use mail_parser::{HeaderValue, MessageParser, MimeHeaders};

use crate::rules::Flag;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub name: Option<String>,
    pub address: Option<String>,
}

impl Address {
    pub fn localpart(&self) -> Option<&str> {
        self.address
            .as_deref()
            .map(|a| a.rsplit_once('@').map_or(a, |(l, _)| l))
    }

    pub fn domain(&self) -> Option<&str> {
        self.address
            .as_deref()
            .and_then(|a| a.rsplit_once('@').map(|(_, d)| d))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub name: Option<String>,
    pub mime_type: String,
}

/// When the message arrived (IMAP INTERNALDATE), or how to find out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    At(DateTime<Utc>),
    /// A loose file: its Date header, else this time (e.g. the file's mtime).
    DateHeaderOr(DateTime<Utc>),
}

/// What the mailbox knows about a message besides its bytes.
#[derive(Debug, Clone)]
pub struct Meta {
    pub arrival: Arrival,
    pub flags: BTreeSet<Flag>,
    /// RFC822.SIZE; the length of the bytes when not given.
    pub size: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Message {
    pub message_id: Option<String>,
    /// Every header field in order: name as written, value unfolded and
    /// RFC 2047-decoded.
    pub headers: Vec<(String, String)>,
    pub from: Vec<Address>,
    pub to: Vec<Address>,
    pub cc: Vec<Address>,
    pub bcc: Vec<Address>,
    pub sender: Vec<Address>,
    pub reply_to: Vec<Address>,
    pub subject: Option<String>,
    /// The List-Id identifier, the part in `<>` (RFC 2919).
    pub list_id: Option<String>,
    /// The Date header, if present and valid.
    pub date: Option<DateTime<Utc>>,
    pub arrival: DateTime<Utc>,
    pub size: u64,
    pub flags: BTreeSet<Flag>,
    /// Decoded text of the text/plain and text/html (tags stripped) parts;
    /// `None` when only the header was read.
    pub text: Option<String>,
    /// `None` when the MIME structure was not read.
    pub attachments: Option<Vec<Attachment>>,
    /// Problems that did not stop evaluation (e.g. 8-bit bytes in a header).
    pub warnings: Vec<String>,
    /// Another message with this Message-ID was seen before
    /// (`duplicates::Seen`); `false` until the pass or `test` says so.
    pub duplicate: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("empty message")]
    Empty,
    #[error("the message could not be parsed")]
    Unparsable,
    #[error("the server sent no {0} for it")]
    Missing(&'static str),
}

/// The header block: everything up to the first empty line.
fn header_block(raw: &[u8]) -> &[u8] {
    let mut i = 0;
    while i < raw.len() {
        let end = raw[i..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |p| i + p + 1);
        let line = &raw[i..end];
        if line == b"\n" || line == b"\r\n" {
            return &raw[..i];
        }
        i = end;
    }
    raw
}

/// Whether a header line starts a field: a name of printable ASCII but
/// the colon, maybe blanks (RFC 822's obsolete syntax), then `:`.
fn is_field(line: &[u8]) -> bool {
    let name = line
        .iter()
        .take_while(|&&b| (33..=126).contains(&b) && b != b':')
        .count();
    let blanks = line[name..]
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    name > 0 && line.get(name + blanks) == Some(&b':')
}

/// A loose file as an IMAP server reads the message it holds: in the
/// header, lines that are no field (a stray line before the first field,
/// an mbox `From ` line, text with no header at all) are left out, and so
/// are NUL bytes; the body is as it is. Servers store such mail and serve
/// its fields this way (Dovecot does), so `test` decides it as `run` does.
/// Returns the message and what was left out.
fn as_served(raw: &[u8]) -> (std::borrow::Cow<'_, [u8]>, Vec<String>) {
    let header = header_block(raw);
    let mut kept = Vec::with_capacity(header.len());
    let (mut dropped, mut nuls, mut in_field) = (0usize, 0usize, false);
    for (i, line) in header.split_inclusive(|&b| b == b'\n').enumerate() {
        let folded = matches!(line.first(), Some(b' ' | b'\t'));
        if is_field(line) || (folded && in_field) {
            in_field = true;
            nuls += line.iter().filter(|&&b| b == 0).count();
            kept.extend(line.iter().filter(|&&b| b != 0));
        } else {
            in_field = false;
            // An mbox separator before the header is what such files are.
            if !(i == 0 && line.starts_with(b"From ")) {
                dropped += 1;
            }
        }
    }
    let mut warnings = Vec::new();
    if dropped > 0 {
        warnings.push(format!(
            "{dropped} line{} in the header {} no header field; left out, as IMAP servers read it",
            if dropped == 1 { "" } else { "s" },
            if dropped == 1 { "is" } else { "are" }
        ));
    }
    if nuls > 0 {
        warnings.push("NUL bytes in the header were left out".to_string());
    }
    if kept.len() == header.len() {
        return (std::borrow::Cow::Borrowed(raw), warnings);
    }
    kept.extend_from_slice(&raw[header.len()..]);
    (std::borrow::Cow::Owned(kept), warnings)
}

fn addresses(addr: Option<&mail_parser::Address>) -> Vec<Address> {
    addr.map(|a| {
        a.iter()
            .map(|x| Address {
                name: x
                    .name
                    .as_deref()
                    .map(str::to_string)
                    .filter(|n| !n.is_empty()),
                address: x
                    .address
                    .as_deref()
                    .map(str::to_string)
                    .filter(|n| !n.is_empty()),
            })
            .collect()
    })
    .unwrap_or_default()
}

fn angle_id(text: &str) -> String {
    match (text.rfind('<'), text.rfind('>')) {
        (Some(a), Some(b)) if a < b => text[a + 1..b].trim().to_string(),
        _ => text.trim().to_string(),
    }
}

/// The attachments of a parsed message, as mail-parser tells them from
/// the bodies: the same rules for a whole message and for a skeleton.
fn attachments_of(parsed: &mail_parser::Message<'_>) -> Vec<Attachment> {
    parsed
        .attachments()
        .map(|p| Attachment {
            name: p.attachment_name().map(str::to_string),
            mime_type: p
                .content_type()
                .map(|ct| match &ct.c_subtype {
                    Some(sub) => format!("{}/{}", ct.c_type, sub),
                    None => ct.c_type.to_string(),
                })
                .unwrap_or_else(|| "application/octet-stream".into())
                .to_ascii_lowercase(),
        })
        .collect()
}

impl Message {
    /// A whole message (headers and body), as a loose file holds it, read
    /// as a server would serve it (`as_served`): only an empty file is no
    /// message.
    pub fn parse(raw: &[u8], meta: Meta) -> Result<Message, MessageError> {
        if raw.iter().all(u8::is_ascii_whitespace) {
            return Err(MessageError::Empty);
        }
        let (served, notes) = as_served(raw);
        let header = header_block(&served);
        let mut m = if header.iter().all(u8::is_ascii_whitespace) {
            // No field at all: the text after the header block, as a server
            // serves BODY[TEXT] of such a message.
            let body = served[header.len()..]
                .strip_prefix(b"\r\n".as_slice())
                .or_else(|| served[header.len()..].strip_prefix(b"\n".as_slice()))
                .unwrap_or(&served[header.len()..]);
            Self::without_fields(
                Some(body),
                Meta {
                    size: meta.size.or(Some(raw.len() as u64)),
                    ..meta
                },
            )
        } else {
            Self::parse_unchecked(
                &served,
                Meta {
                    size: meta.size.or(Some(raw.len() as u64)),
                    ..meta
                },
                false,
            )?
        };
        m.warnings.splice(0..0, notes);
        Ok(m)
    }

    /// What a server sent of a message it holds: some of its header fields
    /// (`BODY.PEEK[HEADER.FIELDS (...)]`, possibly none of them) and, when
    /// fetched, its text. The checks that tell a loose file from a message
    /// do not apply: the server already holds it as one.
    pub fn from_server(
        fields: &[u8],
        text: Option<&[u8]>,
        meta: Meta,
    ) -> Result<Message, MessageError> {
        if fields.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::without_fields(text, meta));
        }
        match text {
            Some(text) => Self::parse_unchecked(&[fields, text].concat(), meta, false),
            None => Self::parse_unchecked(fields, meta, true),
        }
    }

    /// A message with none of the header fields asked for (the parser
    /// wants at least one). Without Content-Type and
    /// Content-Transfer-Encoding its text is plain text as it stands
    /// (RFC 2045 5.2, 6.1).
    fn without_fields(text: Option<&[u8]>, meta: Meta) -> Message {
        let arrival = match meta.arrival {
            Arrival::At(t) | Arrival::DateHeaderOr(t) => t,
        };
        let size = meta
            .size
            .unwrap_or_else(|| text.map_or(0, |t| t.len() as u64));
        let text = text.map(|t| {
            let mut out = String::new();
            push_text(&mut out, false, &String::from_utf8_lossy(t));
            out
        });
        Message {
            message_id: None,
            headers: Vec::new(),
            from: Vec::new(),
            to: Vec::new(),
            cc: Vec::new(),
            bcc: Vec::new(),
            sender: Vec::new(),
            reply_to: Vec::new(),
            subject: None,
            list_id: None,
            date: None,
            arrival,
            size,
            flags: meta.flags,
            attachments: text.as_ref().map(|_| Vec::new()),
            text,
            warnings: Vec::new(),
            duplicate: false,
        }
    }

    fn parse_unchecked(raw: &[u8], meta: Meta, header_only: bool) -> Result<Message, MessageError> {
        let parser = MessageParser::default();
        let parsed = if header_only {
            parser.parse_headers(raw)
        } else {
            parser.parse(raw)
        }
        .ok_or(MessageError::Unparsable)?;

        let mut warnings = Vec::new();
        let mut headers = Vec::new();
        for h in parsed.headers() {
            let slice = raw
                .get(h.offset_start as usize..h.offset_end as usize)
                .unwrap_or_default();
            if std::str::from_utf8(slice).is_err() {
                warnings.push(format!(
                    "header {} holds bytes that are not UTF-8; they were replaced",
                    h.name.as_str()
                ));
            }
            let value = match mail_parser::parsers::MessageStream::new(slice).parse_unstructured() {
                HeaderValue::Text(t) => t.trim().to_string(),
                _ => String::new(),
            };
            headers.push((h.name.as_str().to_string(), value));
        }

        let list_id = match parsed.list_id() {
            HeaderValue::Address(a) => a
                .first()
                .and_then(|x| x.address.as_deref())
                .map(str::to_string),
            HeaderValue::Text(t) => Some(angle_id(t)),
            _ => None,
        }
        .or_else(|| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("List-Id"))
                .map(|(_, v)| angle_id(v))
        })
        .filter(|s| !s.is_empty());

        let date = parsed
            .date()
            .filter(|d| d.is_valid())
            .and_then(|d| DateTime::from_timestamp(d.to_timestamp(), 0));
        let arrival = match meta.arrival {
            Arrival::At(t) => t,
            Arrival::DateHeaderOr(fallback) => date.unwrap_or(fallback),
        };

        let (text, attachments) = if header_only {
            (None, None)
        } else {
            let mut text = String::new();
            for part in parsed.text_bodies() {
                if let Some(t) = part.text_contents() {
                    push_text(&mut text, part.is_text_html(), t);
                }
            }
            for part in parsed.html_bodies() {
                if part.is_text_html()
                    && let Some(t) = part.text_contents()
                {
                    push_text(&mut text, true, t);
                }
            }
            (Some(text), Some(attachments_of(&parsed)))
        };

        Ok(Message {
            message_id: parsed.message_id().map(str::to_string),
            from: addresses(parsed.from()),
            to: addresses(parsed.to()),
            cc: addresses(parsed.cc()),
            bcc: addresses(parsed.bcc()),
            sender: addresses(parsed.sender()),
            reply_to: addresses(parsed.reply_to()),
            subject: parsed.subject().map(str::to_string),
            list_id,
            date,
            arrival,
            size: meta.size.unwrap_or(raw.len() as u64),
            flags: meta.flags,
            text,
            attachments,
            headers,
            warnings,
            duplicate: false,
        })
    }

    /// Adds the attachments found in `skeleton`, the MIME tree of this
    /// message without content (`imap::structure`), to a message read
    /// header-only, so attachment conditions can be decided on it.
    pub fn with_structure(mut self, skeleton: &[u8]) -> Message {
        let parsed = MessageParser::default().parse(skeleton);
        self.attachments = Some(parsed.as_ref().map(attachments_of).unwrap_or_default());
        self
    }

    /// Decoded values of every occurrence of a header (name case-insensitive).
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The addresses of every occurrence of a header, read as an address
    /// list (RFC 5322 3.4): `Delivered-To`, `X-Original-To`, `Resent-To`...
    pub fn addresses_in(&self, name: &str) -> Vec<Address> {
        let mut out = Vec::new();
        for value in self.header_values(name) {
            let line = format!("{value}\r\n");
            let parsed = mail_parser::parsers::MessageStream::new(line.as_bytes()).parse_address();
            if let HeaderValue::Address(a) = parsed {
                out.extend(addresses(Some(&a)));
            }
        }
        out
    }

    pub fn has_header(&self, name: &str) -> bool {
        self.header_values(name).next().is_some()
    }
}

fn push_text(out: &mut String, html: bool, text: &str) {
    if !out.is_empty() {
        out.push('\n');
    }
    if html {
        out.push_str(&mail_parser::decoders::html::html_to_text(text));
    } else {
        out.push_str(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        Meta {
            arrival: Arrival::DateHeaderOr(DateTime::UNIX_EPOCH),
            flags: BTreeSet::new(),
            size: None,
        }
    }

    const MSG: &[u8] = b"From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.org>\r\n\
To: a@example.com, \"Doe, Jane\" <jane@example.com>\r\n\
Cc: Team: x@example.net, y@example.net;\r\n\
Subject: =?ISO-8859-1?B?SWhyZSBSZWNobnVuZyBm/HIgTeRyeg==?=\r\n\
List-Id: Rust users <rust-users.lists.example.org>\r\n\
X-Custom: folded\r\n  =?UTF-8?B?w6R0c2No?=\r\n\
Date: Tue, 04 Mar 2025 10:00:00 +0100\r\n\
Message-ID: <abc@example.org>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\
\r\n\
--b\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<p>Hello <b>world</b></p>\r\n\
--b\r\n\
Content-Type: application/pdf; name=\"=?UTF-8?Q?Rechnung_M=C3=A4rz.pdf?=\"\r\n\
Content-Disposition: attachment\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
JVBERi0=\r\n\
--b--\r\n";

    #[test]
    fn a_full_message_is_decoded() {
        let m = Message::parse(MSG, meta()).unwrap();
        assert_eq!(m.from[0].name.as_deref(), Some("Jürgen Müller"));
        assert_eq!(m.from[0].domain(), Some("example.org"));
        assert_eq!(m.from[0].localpart(), Some("juergen"));
        assert_eq!(m.to.len(), 2);
        assert_eq!(m.to[1].name.as_deref(), Some("Doe, Jane"));
        assert_eq!(m.cc.len(), 2, "group members count as addresses");
        assert_eq!(m.subject.as_deref(), Some("Ihre Rechnung für März"));
        assert_eq!(m.list_id.as_deref(), Some("rust-users.lists.example.org"));
        assert_eq!(
            m.header_values("x-custom").collect::<Vec<_>>(),
            ["folded ätsch"]
        );
        assert_eq!(m.message_id.as_deref(), Some("abc@example.org"));
        assert_eq!(m.date.unwrap().to_rfc3339(), "2025-03-04T09:00:00+00:00");
        assert_eq!(
            m.arrival,
            m.date.unwrap(),
            "a loose file arrives at its Date"
        );
        assert!(
            m.text.as_deref().unwrap().contains("Hello world"),
            "{:?}",
            m.text
        );
        assert_eq!(
            m.attachments.as_deref().unwrap(),
            [Attachment {
                name: Some("Rechnung März.pdf".into()),
                mime_type: "application/pdf".into()
            }]
        );
        assert_eq!(m.size, MSG.len() as u64);
        assert!(m.warnings.is_empty());
    }

    #[test]
    fn a_header_block_alone_has_no_body() {
        let end = MSG.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let m = Message::from_server(
            &MSG[..end],
            None,
            Meta {
                size: Some(9999),
                ..meta()
            },
        )
        .unwrap();
        assert_eq!(m.subject.as_deref(), Some("Ihre Rechnung für März"));
        assert_eq!(m.text, None);
        assert_eq!(m.attachments, None);
        assert_eq!(m.size, 9999);
    }

    #[test]
    fn only_an_empty_file_is_no_message() {
        for raw in [&b""[..], b"\r\n \n"] {
            assert_eq!(
                Message::parse(raw, meta()).unwrap_err(),
                MessageError::Empty
            );
        }
    }

    /// What IMAP servers store and serve is decided, with a warning, as the
    /// server reads it (the fields Dovecot served for each, checked by
    /// hand, are the `from` and `subject` below).
    #[test]
    fn what_a_server_would_accept_is_read_as_the_server_reads_it() {
        // The file, the From address and Subject read, how many warnings.
        type Case<'a> = (&'a [u8], Option<&'a str>, Option<&'a str>, usize);
        let cases: [Case; 8] = [
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0", None, None, 1),
            (b"hello world\r\nthis is not mail\r\n", None, None, 1),
            (
                b"garbage line\r\nFrom: a@b.example\r\nSubject: hi there\r\n\r\nbody\r\n",
                Some("a@b.example"),
                Some("hi there"),
                1,
            ),
            (
                b"X-Od\0d: 1\r\nFrom: c@d.example\r\nSubject: nul\r\n\r\nbody\r\n",
                Some("c@d.example"),
                Some("nul"),
                1,
            ),
            (
                b": no name\r\nFrom: e@f.example\r\nSubject: colon\r\n\r\nbody\r\n",
                Some("e@f.example"),
                Some("colon"),
                1,
            ),
            (
                b"From : g@h.example\r\nSubject : spaced\r\n\r\nbody\r\n",
                Some("g@h.example"),
                Some("spaced"),
                0,
            ),
            (
                b"From foo@bar Mon Jan 1\r\nFrom: i@j.example\r\nSubject: mbox\r\n\r\nx\r\n",
                Some("i@j.example"),
                Some("mbox"),
                0,
            ),
            (
                b"Subject: folded\r\n  on\r\nnot a field\r\n  nor this\r\n\r\nx",
                None,
                Some("folded on"),
                1,
            ),
        ];
        for (raw, from, subject, warnings) in cases {
            let m = Message::parse(raw, meta()).unwrap_or_else(|e| panic!("{raw:?}: {e}"));
            let got_from = m.from.first().and_then(|a| a.address.as_deref());
            assert_eq!((got_from, m.subject.as_deref()), (from, subject), "{raw:?}");
            assert_eq!(m.warnings.len(), warnings, "{raw:?}: {:?}", m.warnings);
            assert_eq!(m.size, raw.len() as u64, "{raw:?}");
        }
        let plain = Message::parse(b"hello world\r\n\r\nthe text\r\n", meta()).unwrap();
        assert!(
            plain.text.as_deref().unwrap().contains("the text"),
            "{:?}",
            plain.text
        );
        let m = Message::parse(b"Subject: caf\xe9 \xff\r\nFrom: a@b\r\n\r\nbody", meta()).unwrap();
        assert_eq!(m.warnings.len(), 1, "{:?}", m.warnings);
        assert!(m.subject.is_some());
        let m = Message::parse(b"From foo@bar Mon Jan 1\nSubject: mbox\n\nx", meta()).unwrap();
        assert_eq!(m.subject.as_deref(), Some("mbox"));
        let m = Message::parse(b"Subject: no date\n\nx", meta()).unwrap();
        assert_eq!(
            (m.date, m.arrival, m.message_id),
            (None, DateTime::UNIX_EPOCH, None)
        );
    }
}
