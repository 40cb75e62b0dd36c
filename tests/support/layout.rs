//! Mailbox layouts the IMAP tests run over, all on the test Dovecot:
//!
//! - `Plain`: Dovecot's default, personal folders beside INBOX, `/`;
//! - `Dotted`: a hosting panel's (and Courier's, and Cyrus's Debian)
//!   naming: personal folders under `INBOX.`, separator `.` (per-user
//!   namespace settings in the passwd file);
//! - `Gmail` and `Exchange`: Dovecot behind a dressing proxy that answers
//!   as those servers do where mailwarden can tell: their capabilities
//!   before and after login, their NAMESPACE, and their LIST (Gmail's
//!   `[Gmail]/` folders with `\All`, `\Trash`, `\Junk`...; Exchange's
//!   `Inbox`, `Deleted Items`, `Junk Email`, and special-use attributes
//!   without SPECIAL-USE). Dovecot does the mailbox work itself.
//!
//! Every layout also sees a shared namespace (`Public/`, or `Public.`):
//! folders outside the personal namespace must never change how personal
//! folders are named. The dressings hide it, as those servers have none.

use std::sync::LazyLock;

use mailwarden::imap::wire::Framer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::scenario::Names;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Plain,
    Dotted,
    Gmail,
    Exchange,
}

impl Layout {
    pub const ALL: [Layout; 4] = [
        Layout::Plain,
        Layout::Dotted,
        Layout::Gmail,
        Layout::Exchange,
    ];

    /// How this layout names the scenario's folders.
    pub fn names(self) -> Names {
        match self {
            Layout::Plain => Names::plain("", '/'),
            Layout::Dotted => Names::plain("INBOX.", '.'),
            Layout::Gmail => Names {
                trash: "[Gmail]/Trash".into(),
                archive: "[Gmail]/All Mail".into(),
                ..Names::plain("", '/')
            },
            Layout::Exchange => Names {
                trash: "Deleted Items".into(),
                ..Names::plain("", '/')
            },
        }
    }

    /// Folders a fresh account of this kind has.
    pub fn initial_folders(self) -> &'static [&'static str] {
        match self {
            Layout::Plain | Layout::Dotted => &[],
            Layout::Gmail => &[
                "[Gmail]/All Mail",
                "[Gmail]/Drafts",
                "[Gmail]/Sent Mail",
                "[Gmail]/Spam",
                "[Gmail]/Starred",
                "[Gmail]/Trash",
            ],
            Layout::Exchange => &[
                "Archive",
                "Deleted Items",
                "Drafts",
                "Junk Email",
                "Sent Items",
            ],
        }
    }

    /// The port mailwarden connects to for this layout: Dovecot's, or the
    /// dressing proxy's in front of it.
    pub fn port(self) -> u16 {
        match self {
            Layout::Plain | Layout::Dotted => super::server().plain_port,
            Layout::Gmail => *GMAIL_PORT,
            Layout::Exchange => *EXCHANGE_PORT,
        }
    }
}

static GMAIL_PORT: LazyLock<u16> = LazyLock::new(|| dress(Layout::Gmail));
static EXCHANGE_PORT: LazyLock<u16> = LazyLock::new(|| dress(Layout::Exchange));

/// Capabilities before and after login, as the real servers announce them.
fn capabilities(layout: Layout, logged_in: bool) -> &'static str {
    match (layout, logged_in) {
        (Layout::Gmail, false) => {
            "IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN X-GM-EXT-1 XYZZY SASL-IR AUTH=XOAUTH2 AUTH=PLAIN AUTH=PLAIN-CLIENTTOKEN AUTH=OAUTHBEARER AUTH=XOAUTH"
        }
        (Layout::Gmail, true) => {
            "IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN X-GM-EXT-1 UIDPLUS COMPRESS=DEFLATE ENABLE MOVE CONDSTORE ESEARCH UTF8=ACCEPT LIST-EXTENDED LIST-STATUS LITERAL- SPECIAL-USE APPENDLIMIT=35651584"
        }
        (Layout::Exchange, false) => {
            "IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR UIDPLUS ID UNSELECT CHILDREN IDLE NAMESPACE LITERAL+"
        }
        (Layout::Exchange, true) => {
            "IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR UIDPLUS MOVE ID UNSELECT CLIENTACCESSRULES CLIENTNETWORKPRESENCELOCATION BACKENDAUTHENTICATE CHILDREN IDLE NAMESPACE LITERAL+"
        }
        _ => unreachable!("only dressed layouts rewrite capabilities"),
    }
}

/// The special-use attribute each dressed server gives a folder.
fn special_use(layout: Layout, name: &str) -> Option<&'static str> {
    match (layout, name) {
        (Layout::Gmail, "[Gmail]/All Mail") => Some("\\All"),
        (Layout::Gmail, "[Gmail]/Drafts") => Some("\\Drafts"),
        (Layout::Gmail, "[Gmail]/Sent Mail") => Some("\\Sent"),
        (Layout::Gmail, "[Gmail]/Spam") => Some("\\Junk"),
        (Layout::Gmail, "[Gmail]/Starred") => Some("\\Flagged"),
        (Layout::Gmail, "[Gmail]/Trash") => Some("\\Trash"),
        (Layout::Exchange, "Deleted Items") => Some("\\Trash"),
        (Layout::Exchange, "Drafts") => Some("\\Drafts"),
        (Layout::Exchange, "Junk Email") => Some("\\Junk"),
        (Layout::Exchange, "Sent Items") => Some("\\Sent"),
        // Exchange's Archive folder carries no attribute.
        _ => None,
    }
}

/// Splits `* LIST (attrs) "sep" name` into its parts (name unquoted).
fn list_parts(line: &str) -> Option<(Vec<String>, String, String)> {
    let rest = line.strip_prefix("* LIST (")?;
    let (attrs, rest) = rest.split_once(") ")?;
    let (sep, name) = if let Some(r) = rest.strip_prefix("NIL ") {
        ("NIL".to_string(), r)
    } else {
        let r = rest.strip_prefix('"')?;
        let (sep, r) = r.split_at(r.find('"')?);
        (format!("\"{sep}\""), r[1..].trim_start())
    };
    let name = name.trim_end();
    let name = name
        .strip_prefix('"')
        .and_then(|n| n.strip_suffix('"'))
        .map(|n| n.replace("\\\"", "\"").replace("\\\\", "\\"))
        .unwrap_or_else(|| name.to_string());
    Some((
        attrs.split_whitespace().map(str::to_string).collect(),
        sep,
        name,
    ))
}

/// One server response as the dressed server would send it; `None`: not
/// sent at all.
fn dress_response(layout: Layout, frame: &[u8], logged_in: bool) -> Option<Vec<u8>> {
    let Ok(text) = std::str::from_utf8(frame) else {
        return Some(frame.to_vec());
    };
    let caps = capabilities(layout, logged_in);
    if text.starts_with("* CAPABILITY ") {
        return Some(format!("* CAPABILITY {caps}\r\n").into_bytes());
    }
    if text.starts_with("* NAMESPACE ") {
        return Some(b"* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n".to_vec());
    }
    if let Some((attrs, sep, name)) = list_parts(text) {
        if name == "Public" || name.starts_with("Public/") {
            return None;
        }
        // Structure from Dovecot; special use from the dressed server.
        let mut kept: Vec<String> = attrs
            .into_iter()
            .filter(|a| {
                [
                    "\\HasChildren",
                    "\\HasNoChildren",
                    "\\Noselect",
                    "\\NoInferiors",
                    "\\Marked",
                    "\\Unmarked",
                    "\\NonExistent",
                    "\\Subscribed",
                ]
                .iter()
                .any(|k| k.eq_ignore_ascii_case(a))
            })
            .collect();
        if layout == Layout::Gmail && name == "[Gmail]" && !kept.iter().any(|a| a == "\\Noselect") {
            kept.push("\\Noselect".into());
        }
        kept.extend(special_use(layout, &name).map(str::to_string));
        let shown = if layout == Layout::Exchange && name == "INBOX" {
            "Inbox".to_string()
        } else {
            name
        };
        return Some(
            format!(
                "* LIST ({}) {sep} \"{}\"\r\n",
                kept.join(" "),
                shown.replace('\\', "\\\\").replace('"', "\\\"")
            )
            .into_bytes(),
        );
    }
    if let Some(start) = text.find("[CAPABILITY ") {
        let end = start + text[start..].find(']')?;
        return Some(format!("{}[CAPABILITY {caps}{}", &text[..start], &text[end..]).into_bytes());
    }
    Some(frame.to_vec())
}

/// Starts a dressing proxy for `layout` in front of Dovecot and returns its
/// port. It runs on a thread of its own for the rest of the test binary.
fn dress(layout: Layout) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let upstream = super::server().plain_port;
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect((super::FULL, upstream)).await
                    else {
                        return;
                    };
                    serve(layout, client, server).await;
                });
            }
        });
    });
    port
}

/// Passes one connection through, dressing what the server says.
async fn serve(layout: Layout, client: tokio::net::TcpStream, server: tokio::net::TcpStream) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    // Tags of the client's LOGIN and AUTHENTICATE commands: once the server
    // accepts one, the capabilities are those after login.
    let logins = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = logins.clone();
    let up = async move {
        let mut framer = Framer::default();
        let mut buf = vec![0u8; 65536];
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            framer.feed(&buf[..n]);
            while let Ok(Some(frame)) = framer.next_frame() {
                let line = String::from_utf8_lossy(&frame);
                let mut words = line.split_whitespace();
                if let (Some(tag), Some(verb)) = (words.next(), words.next())
                    && (verb.eq_ignore_ascii_case("LOGIN")
                        || verb.eq_ignore_ascii_case("AUTHENTICATE"))
                {
                    seen.lock().unwrap().push(tag.to_string());
                }
            }
            if sw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let down = async move {
        let mut framer = Framer::default();
        let mut buf = vec![0u8; 65536];
        let mut logged_in = false;
        loop {
            let n = match sr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            framer.feed(&buf[..n]);
            let mut out = Vec::new();
            while let Ok(Some(frame)) = framer.next_frame() {
                let tag = frame.split(|&b| b == b' ').next().unwrap_or_default();
                let ok = frame.windows(4).take(64).any(|w| w == b" OK ");
                if ok && logins.lock().unwrap().iter().any(|t| t.as_bytes() == tag) {
                    logged_in = true;
                }
                out.extend(dress_response(layout, &frame, logged_in).unwrap_or_default());
            }
            if cw.write_all(&out).await.is_err() {
                return;
            }
        }
    };
    tokio::select! { _ = up => {}, _ = down => {} }
}
