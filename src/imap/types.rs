//! Typed IMAP values and their wire encodings: [`Uid`], [`UidValidity`],
//! UID sets (range-compressed, chunked), quoted strings that can never carry
//! a second command, and mailbox names mapped from rule paths (`Lists/rust`)
//! to the server's hierarchy and modified UTF-7. Pure; used by `imap::conn`.

use std::fmt;

/// A message UID (RFC 3501 2.3.1.1): non-zero, unique within one
/// UIDVALIDITY of one mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uid(pub u32);

/// The UIDVALIDITY of a mailbox: when it changes, every UID is new.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UidValidity(pub u32);

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// RFC 7162 4 asks clients to keep a command line (literals aside) to about
/// 8192 octets, tag and CRLF included.
pub const MAX_LINE: usize = 8192;

/// Room kept for the tag, the space after it and the closing CRLF.
const TAG_ROOM: usize = 16;

/// One command per slice of `uids`: `command(set)` with a range-compressed
/// UID set, each line within [`MAX_LINE`]. The sets are as long as the rest
/// of the line allows, because on some servers every expunging command has
/// a fixed cost (docs/performance.md).
pub fn uid_commands(uids: &[Uid], command: impl Fn(&str) -> String) -> Vec<String> {
    // A line whose other text alone fills the budget still gets some room,
    // so that every UID is sent; servers accept far longer lines.
    let room = MAX_LINE
        .saturating_sub(command("").len() + TAG_ROOM)
        .max(256);
    uid_sets(uids, room)
        .iter()
        .map(|set| command(set))
        .collect()
}

/// UID sets for `uids`, sorted, ranges compressed (`1:5,9,12:14`), split so
/// that no set is longer than `max_len`.
pub fn uid_sets(uids: &[Uid], max_len: usize) -> Vec<String> {
    let mut sorted: Vec<u32> = uids.iter().map(|u| u.0).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut sets = Vec::new();
    let mut current = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        i += 1;
        let item = if start == end {
            start.to_string()
        } else {
            format!("{start}:{end}")
        };
        if !current.is_empty() && current.len() + 1 + item.len() > max_len {
            sets.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(',');
        }
        current.push_str(&item);
    }
    if !current.is_empty() {
        sets.push(current);
    }
    sets
}

/// A value that cannot be sent as an IMAP string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} cannot be sent to the server: {why}")]
pub struct EncodeError {
    pub what: &'static str,
    pub value: String,
    pub why: &'static str,
}

/// A quoted string (RFC 3501 9, `quoted`). CR, LF and NUL are refused rather
/// than sent, so no value can end the command line and start another one;
/// 8-bit text is refused too (callers encode names as modified UTF-7 and
/// only send ASCII search text).
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

/// How the server names mailboxes: its hierarchy separator and the prefix of
/// the personal namespace (RFC 2342), e.g. `.` and `INBOX.` on Courier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub separator: Option<char>,
    pub prefix: String,
}

impl Hierarchy {
    /// The hierarchy from the separator and the existing mailboxes. There is
    /// no NAMESPACE here (the parser under async-imap cannot read its
    /// answer), so the personal prefix is inferred: when every mailbox but
    /// INBOX lives under `INBOX<sep>`, as on Courier-style servers, new
    /// folders go there too.
    pub fn infer(separator: Option<char>, mailboxes: &[String]) -> Hierarchy {
        let prefix = match separator {
            Some(sep) => {
                let under = format!("INBOX{sep}");
                let others: Vec<&String> = mailboxes
                    .iter()
                    .filter(|m| !m.eq_ignore_ascii_case("INBOX"))
                    .collect();
                if !others.is_empty() && others.iter().all(|m| m.starts_with(&under)) {
                    under
                } else {
                    String::new()
                }
            }
            None => String::new(),
        };
        Hierarchy { separator, prefix }
    }

    /// The server's (decoded) name for a rule path such as `Lists/rust`.
    /// `INBOX` and paths under it are not prefixed. A level that holds the
    /// server's own separator cannot be expressed and is an error.
    pub fn server_name(&self, path: &str) -> Result<String, String> {
        let levels: Vec<&str> = path.split('/').collect();
        let sep = self.separator.unwrap_or('/');
        if let Some(bad) = levels.iter().find(|l| sep != '/' && l.contains(sep)) {
            return Err(format!(
                "folder level {bad:?} holds {sep:?}, the server's hierarchy separator"
            ));
        }
        if self.separator.is_none() && levels.len() > 1 {
            return Err(format!(
                "the server has no folder hierarchy, so {path:?} cannot be created"
            ));
        }
        let joined = levels.join(&sep.to_string());
        if levels[0].eq_ignore_ascii_case("INBOX") {
            let rest = &joined[levels[0].len()..];
            Ok(format!("INBOX{rest}"))
        } else {
            Ok(format!("{}{joined}", self.prefix))
        }
    }
}

/// A mailbox name as a command argument: modified UTF-7 (RFC 3501 5.1.3),
/// quoted.
pub fn mailbox_arg(name: &str) -> Result<String, EncodeError> {
    // The encoder would turn control characters into base64; no real
    // mailbox has them, so refuse rather than create a strange folder.
    if name.chars().any(char::is_control) {
        return Err(EncodeError {
            what: "mailbox name",
            value: name.to_string(),
            why: "it holds a control character",
        });
    }
    quoted(
        "mailbox name",
        &utf7_imap::encode_utf7_imap(name.to_string()),
    )
}

/// A mailbox name as the server sent it, decoded from modified UTF-7.
pub fn decode_mailbox(name: &str) -> String {
    if name.contains('&') {
        utf7_imap::decode_utf7_imap(name.to_string())
    } else {
        name.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uids(v: &[u32]) -> Vec<Uid> {
        v.iter().copied().map(Uid).collect()
    }

    #[test]
    fn uid_sets_are_sorted_compressed_and_chunked() {
        let cases: Vec<(Vec<u32>, usize, Vec<&str>)> = vec![
            (vec![], 100, vec![]),
            (vec![7], 100, vec!["7"]),
            (
                vec![5, 1, 2, 3, 9, 12, 13, 14, 3],
                100,
                vec!["1:3,5,9,12:14"],
            ),
            (vec![1, 3, 5, 7], 4, vec!["1,3", "5,7"]),
            (vec![1, 2, 3, 10, 11], 3, vec!["1:3", "10:11"]),
        ];
        for (input, max, want) in cases {
            assert_eq!(uid_sets(&uids(&input), max), want, "{input:?}");
        }
    }

    #[test]
    fn a_hundred_thousand_scattered_uids_stay_under_the_line_limit() {
        let scattered: Vec<Uid> = (0..100_000u32).map(|i| Uid(i * 3 + 1)).collect();
        let long_name = format!(" \"{}\"", "x".repeat(300));
        let shapes = [
            ("UID MOVE ", long_name.as_str()),
            ("UID STORE ", " +FLAGS.SILENT (\\Seen)"),
            ("UID SEARCH UID ", " UNDELETED OR FROM \"a\" SEEN"),
        ];
        for (prefix, suffix) in shapes {
            let commands = uid_commands(&scattered, |set| format!("{prefix}{set}{suffix}"));
            let longest = commands.iter().map(|c| c.len()).max().unwrap();
            assert!(longest + TAG_ROOM <= MAX_LINE, "{prefix}: {longest}");
            // Full: no line could have taken the next set's first UID.
            assert!(longest + TAG_ROOM + 8 > MAX_LINE, "{prefix}: {longest}");
            let mut sent = Vec::new();
            for c in &commands {
                let set = &c[prefix.len()..c.len() - suffix.len()];
                sent.extend(set.split(',').map(|u| Uid(u.parse().unwrap())));
            }
            assert_eq!(sent, scattered, "{prefix}: every UID once, in order");
        }
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
        }
    }

    #[test]
    fn rule_paths_map_to_the_server_hierarchy() {
        let slash = Hierarchy {
            separator: Some('/'),
            prefix: String::new(),
        };
        let dot = Hierarchy {
            separator: Some('.'),
            prefix: "INBOX.".into(),
        };
        let cases: Vec<(&Hierarchy, &str, Result<&str, &str>)> = vec![
            (&slash, "Lists/rust", Ok("Lists/rust")),
            (&slash, "INBOX", Ok("INBOX")),
            (&dot, "Lists/rust", Ok("INBOX.Lists.rust")),
            (&dot, "INBOX", Ok("INBOX")),
            (&dot, "inbox/sub", Ok("INBOX.sub")),
            (&dot, "Lists/v1.2", Err("hierarchy separator")),
        ];
        for (h, path, want) in cases {
            match (h.server_name(path), want) {
                (Ok(got), Ok(w)) => assert_eq!(got, w, "{path}"),
                (Err(got), Err(w)) => assert!(got.contains(w), "{path}: {got}"),
                (got, w) => panic!("{path}: wanted {w:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn the_personal_prefix_is_inferred_from_existing_mailboxes() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases = [
            (
                Some('.'),
                names(&["INBOX", "INBOX.Sent", "INBOX.Trash"]),
                "INBOX.",
            ),
            (Some('.'), names(&["INBOX", "Sent", "INBOX.Trash"]), ""),
            (Some('/'), names(&["INBOX", "Archive"]), ""),
            (Some('.'), names(&["INBOX"]), ""),
            (None, names(&["INBOX"]), ""),
        ];
        for (sep, boxes, want) in cases {
            assert_eq!(Hierarchy::infer(sep, &boxes).prefix, want, "{boxes:?}");
        }
    }

    #[test]
    fn mailbox_names_use_modified_utf7() {
        assert_eq!(mailbox_arg("Ümlaut/Öl").unwrap(), "\"&ANw-mlaut/&ANY-l\"");
        assert_eq!(mailbox_arg("a&b").unwrap(), "\"a&-b\"");
        assert_eq!(decode_mailbox("&ANw-mlaut"), "Ümlaut");
        assert_eq!(decode_mailbox("a&-b"), "a&b");
        assert!(mailbox_arg("a\r\nb").is_err());
    }
}
