//! Typed IMAP values: [`Uid`] and [`UidValidity`] (never zero), [`UidSet`]
//! (sorted, range-compressed, split to fit a command line), [`Capability`],
//! and [`Mailbox`], a name as the server knows it. Pure; the rest of `imap`
//! and the stages above it (`plan`, `execute`, `state`) speak in these.

use std::collections::BTreeSet;
use std::fmt;
use std::num::NonZeroU32;

/// A message UID (RFC 3501 2.3.1.1): non-zero, unique within one
/// UIDVALIDITY of one mailbox.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uid(NonZeroU32);

impl Uid {
    /// `None` for 0, which is no UID.
    pub fn new(n: u32) -> Option<Uid> {
        NonZeroU32::new(n).map(Uid)
    }

    pub fn get(self) -> u32 {
        self.0.get()
    }

    /// The next UID, if there is one.
    pub fn next(self) -> Option<Uid> {
        self.0.checked_add(1).map(Uid)
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uid({})", self.0)
    }
}

/// The UIDVALIDITY of a mailbox (RFC 3501 2.3.1.1, a non-zero number): when
/// it changes, every UID is new.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UidValidity(NonZeroU32);

impl UidValidity {
    pub fn new(n: u32) -> Option<UidValidity> {
        NonZeroU32::new(n).map(UidValidity)
    }

    pub fn get(self) -> u32 {
        self.0.get()
    }
}

impl fmt::Display for UidValidity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for UidValidity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UidValidity({})", self.0)
    }
}

/// RFC 7162 4 asks clients to keep a command line (literals aside) to about
/// 8192 octets, tag and CRLF included.
pub const MAX_LINE: usize = 8192;

/// A set of UIDs: sorted, each once, written range-compressed (`1:5,9`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct UidSet(Vec<Uid>);

impl UidSet {
    pub fn new(uids: impl IntoIterator<Item = Uid>) -> UidSet {
        let mut v: Vec<Uid> = uids.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        UidSet(v)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn contains(&self, uid: Uid) -> bool {
        self.0.binary_search(&uid).is_ok()
    }

    pub fn iter(&self) -> impl Iterator<Item = Uid> + '_ {
        self.0.iter().copied()
    }

    pub fn as_slice(&self) -> &[Uid] {
        &self.0
    }

    pub fn max(&self) -> Option<Uid> {
        self.0.last().copied()
    }

    /// The UIDs of `self` that are not in `other`.
    pub fn without(&self, other: &UidSet) -> UidSet {
        UidSet(self.iter().filter(|u| !other.contains(*u)).collect())
    }

    /// The ranges, in order: `1:3,5` is `[(1, 3), (5, 5)]`.
    fn ranges(&self) -> Vec<(u32, u32)> {
        let mut out: Vec<(u32, u32)> = Vec::new();
        for u in self.iter().map(Uid::get) {
            match out.last_mut() {
                Some((_, end)) if *end + 1 == u => *end = u,
                _ => out.push((u, u)),
            }
        }
        out
    }

    /// Splits the set so that each part, written out, is at most `max_len`
    /// characters: one command per part keeps every line short.
    pub fn chunks(&self, max_len: usize) -> Vec<UidSet> {
        self.chunks_of(max_len, usize::MAX)
    }

    /// Like [`UidSet::chunks`], each part also holding at most `max_uids`
    /// UIDs (at least one).
    pub fn chunks_of(&self, max_len: usize, max_uids: usize) -> Vec<UidSet> {
        let max_uids = max_uids.max(1);
        let mut parts = Vec::new();
        let mut current: Vec<Uid> = Vec::new();
        let mut len = 0;
        for (start, end) in self.ranges() {
            let mut start = start;
            loop {
                // What of this range still fits the count.
                let room = (max_uids - current.len()) as u32;
                let last = end.min(start.saturating_add(room - 1));
                let item = if start == last {
                    digits(start)
                } else {
                    digits(start) + 1 + digits(last)
                };
                let extra = if current.is_empty() { item } else { item + 1 };
                if !current.is_empty() && len + extra > max_len {
                    parts.push(UidSet(std::mem::take(&mut current)));
                    len = 0;
                    continue;
                }
                len += if current.is_empty() { item } else { item + 1 };
                current.extend((start..=last).filter_map(Uid::new));
                if current.len() >= max_uids {
                    parts.push(UidSet(std::mem::take(&mut current)));
                    len = 0;
                }
                if last == end {
                    break;
                }
                start = last + 1;
            }
        }
        if !current.is_empty() {
            parts.push(UidSet(current));
        }
        parts
    }
}

fn digits(n: u32) -> usize {
    n.checked_ilog10().unwrap_or(0) as usize + 1
}

impl fmt::Display for UidSet {
    /// The IMAP `sequence-set` of UIDs (RFC 3501 9), e.g. `1:3,5`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (start, end)) in self.ranges().into_iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if start == end {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}:{end}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for UidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UidSet({self})")
    }
}

impl FromIterator<Uid> for UidSet {
    fn from_iter<I: IntoIterator<Item = Uid>>(iter: I) -> Self {
        UidSet::new(iter)
    }
}

/// What the server can do (RFC 3501 7.2.1), the ones mailwarden acts on
/// named, the rest kept as written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    Imap4rev1,
    Imap4rev2,
    StartTls,
    LoginDisabled,
    /// `AUTH=<mechanism>`, the mechanism upper-cased.
    Auth(String),
    SaslIr,
    /// RFC 7888 non-synchronizing literals, any size.
    LiteralPlus,
    /// RFC 7888 non-synchronizing literals up to 4096 octets.
    LiteralMinus,
    Idle,
    Move,
    UidPlus,
    Namespace,
    SpecialUse,
    ListExtended,
    CondStore,
    Unselect,
    /// Gmail's extensions; there `archive` means the `\All` folder.
    GmailExt1,
    /// RFC 5182: a SEARCH result kept by the server as `$`.
    SearchRes,
    Other(String),
}

impl Capability {
    pub fn parse(word: &str) -> Capability {
        let up = word.to_ascii_uppercase();
        match up.as_str() {
            "IMAP4REV1" => Capability::Imap4rev1,
            "IMAP4REV2" => Capability::Imap4rev2,
            "STARTTLS" => Capability::StartTls,
            "LOGINDISABLED" => Capability::LoginDisabled,
            "SASL-IR" => Capability::SaslIr,
            "LITERAL+" => Capability::LiteralPlus,
            "LITERAL-" => Capability::LiteralMinus,
            "IDLE" => Capability::Idle,
            "MOVE" => Capability::Move,
            "UIDPLUS" => Capability::UidPlus,
            "NAMESPACE" => Capability::Namespace,
            "SPECIAL-USE" => Capability::SpecialUse,
            "LIST-EXTENDED" => Capability::ListExtended,
            "CONDSTORE" => Capability::CondStore,
            "UNSELECT" => Capability::Unselect,
            "X-GM-EXT-1" => Capability::GmailExt1,
            "SEARCHRES" => Capability::SearchRes,
            _ => match up.strip_prefix("AUTH=") {
                Some(mech) => Capability::Auth(mech.to_string()),
                None => Capability::Other(up),
            },
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = match self {
            Capability::Imap4rev1 => "IMAP4rev1",
            Capability::Imap4rev2 => "IMAP4rev2",
            Capability::StartTls => "STARTTLS",
            Capability::LoginDisabled => "LOGINDISABLED",
            Capability::Auth(m) => return write!(f, "AUTH={m}"),
            Capability::SaslIr => "SASL-IR",
            Capability::LiteralPlus => "LITERAL+",
            Capability::LiteralMinus => "LITERAL-",
            Capability::Idle => "IDLE",
            Capability::Move => "MOVE",
            Capability::UidPlus => "UIDPLUS",
            Capability::Namespace => "NAMESPACE",
            Capability::SpecialUse => "SPECIAL-USE",
            Capability::ListExtended => "LIST-EXTENDED",
            Capability::CondStore => "CONDSTORE",
            Capability::Unselect => "UNSELECT",
            Capability::GmailExt1 => "X-GM-EXT-1",
            Capability::SearchRes => "SEARCHRES",
            Capability::Other(o) => o,
        };
        f.write_str(word)
    }
}

/// The capabilities a server announced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities(BTreeSet<Capability>);

/// More capabilities than any server has: a server that announces more is
/// not believed (and its list is not kept growing).
pub const MAX_CAPABILITIES: usize = 1000;

impl Capabilities {
    pub fn new(caps: impl IntoIterator<Item = Capability>) -> Capabilities {
        Capabilities(caps.into_iter().take(MAX_CAPABILITIES).collect())
    }

    pub fn has(&self, c: &Capability) -> bool {
        self.0.contains(c)
    }

    /// Whether `AUTHENTICATE mechanism` is offered.
    pub fn auth(&self, mechanism: &str) -> bool {
        self.0
            .contains(&Capability::Auth(mechanism.to_ascii_uppercase()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Capability> {
        self.0.iter()
    }
}

impl fmt::Display for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&words.join(" "))
    }
}

/// A mailbox name as the server knows it, decoded from modified UTF-7:
/// `INBOX.Lists.rust` on a server whose personal folders live under
/// `INBOX.`. Rule paths become mailboxes only through
/// `imap::folders::Folders::resolve`; names the server listed or answered
/// with are mailboxes as they are. INBOX, case-insensitive (RFC 3501 5.1),
/// is always spelled `INBOX`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mailbox(String);

impl Mailbox {
    pub fn inbox() -> Mailbox {
        Mailbox("INBOX".into())
    }

    /// A name the server gave (LIST, a journal row written from one), or a
    /// name the server's own namespace rules produced.
    pub(crate) fn from_server(name: impl Into<String>) -> Mailbox {
        let name = name.into();
        if name.eq_ignore_ascii_case("INBOX") {
            Mailbox::inbox()
        } else {
            Mailbox(name)
        }
    }

    /// A server name read back from the journal, where an earlier run
    /// recorded it as the server had it. Not for rule paths: those go
    /// through `Folders::resolve`.
    pub fn verbatim(name: impl Into<String>) -> Mailbox {
        Mailbox::from_server(name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_inbox(&self) -> bool {
        self.0 == "INBOX"
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mailbox({:?})", self.0)
    }
}

/// A mailbox name on the wire, decoded from modified UTF-7 (RFC 3501
/// 5.1.3). A name that is not valid modified UTF-7 is kept as the server
/// wrote it: its mistake must not stop the run (the decoder of the
/// utf7-imap crate panics on such a name).
pub(crate) fn decode_mailbox(name: &str) -> String {
    modified_utf7(name).unwrap_or_else(|| name.to_string())
}

/// RFC 3501 5.1.3: `&` starts modified BASE64 (`,` for `/`, no padding)
/// of UTF-16BE, `-` ends it; `&-` is `&`.
fn modified_utf7(name: &str) -> Option<String> {
    use base64::Engine as _;
    const B64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::general_purpose::NO_PAD,
    );
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(start) = rest.find('&') {
        out.push_str(&rest[..start]);
        let (shifted, after) = rest[start + 1..].split_once('-')?;
        if shifted.is_empty() {
            out.push('&');
        } else {
            let bytes = B64.decode(shifted.replace(',', "/")).ok()?;
            if bytes.len() % 2 != 0 {
                return None;
            }
            let units: Vec<u16> = bytes
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            out.push_str(&String::from_utf16(&units).ok()?);
        }
        rest = after;
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
pub(crate) fn uid(n: u32) -> Uid {
    Uid::new(n).expect("non-zero")
}

#[cfg(test)]
mod tests {
    #[test]
    fn chunks_respect_both_the_line_and_the_count() {
        let set = |v: &[u32]| UidSet::new(v.iter().filter_map(|&n| Uid::new(n)));
        let all = set(&(1..=10).chain([20, 22, 24]).collect::<Vec<_>>());
        let shown = |parts: Vec<UidSet>| parts.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        assert_eq!(
            shown(all.chunks_of(1000, 4)),
            ["1:4", "5:8", "9:10,20,22", "24"]
        );
        assert_eq!(shown(all.chunks_of(1000, 100)), ["1:10,20,22,24"]);
        assert_eq!(shown(all.chunks_of(8, 100)), ["1:10,20", "22,24"]);
        assert_eq!(
            shown(all.chunks_of(8, 3)),
            ["1:3", "4:6", "7:9", "10,20,22", "24"]
        );
        assert_eq!(shown(all.chunks_of(1000, 0)).len(), 13);
        // Nothing lost, nothing twice, in order.
        for (len, n) in [(4, 1), (8, 2), (5, 7), (1000, 13)] {
            let joined: Vec<Uid> = all
                .chunks_of(len, n)
                .iter()
                .flat_map(|p| p.iter())
                .collect();
            assert_eq!(joined, all.iter().collect::<Vec<_>>(), "{len} {n}");
        }
    }

    use super::*;

    fn set(v: &[u32]) -> UidSet {
        v.iter().map(|&n| uid(n)).collect()
    }

    #[test]
    fn zero_is_no_uid() {
        assert_eq!(Uid::new(0), None);
        assert_eq!(UidValidity::new(0), None);
        assert_eq!(Uid::new(u32::MAX).unwrap().next(), None);
        assert_eq!(uid(7).next(), Some(uid(8)));
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
            (vec![1, 3, 5, 7], 3, vec!["1,3", "5,7"]),
            (vec![1, 2, 3, 10, 11], 5, vec!["1:3", "10:11"]),
            (vec![1, 2, 3, 10, 11], 9, vec!["1:3,10:11"]),
        ];
        for (input, max, want) in cases {
            let got: Vec<String> = set(&input)
                .chunks(max)
                .iter()
                .map(ToString::to_string)
                .collect();
            assert_eq!(got, want, "{input:?} in {max}");
        }
    }

    #[test]
    fn a_hundred_thousand_scattered_uids_fill_each_chunk() {
        let scattered: UidSet = (0..100_000u32).map(|i| uid(i * 3 + 1)).collect();
        let chunks = scattered.chunks(8000);
        let mut back = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            let text = c.to_string();
            assert!(text.len() <= 8000, "{}", text.len());
            if i + 1 < chunks.len() {
                // Full: the next chunk's first UID would not have fitted.
                let next = chunks[i + 1].as_slice()[0].to_string();
                assert!(text.len() + 1 + next.len() > 8000);
            }
            back.extend(c.iter());
        }
        assert_eq!(back, scattered.as_slice(), "every UID once, in order");
    }

    #[test]
    fn set_arithmetic() {
        let a = set(&[1, 2, 3, 4]);
        assert_eq!(a.without(&set(&[2, 4, 9])), set(&[1, 3]));
        assert!(a.contains(uid(3)) && !a.contains(uid(5)));
        assert_eq!(a.max(), Some(uid(4)));
    }

    #[test]
    fn capabilities_parse_case_insensitively() {
        let caps = Capabilities::new(
            ["imap4rev1", "Move", "AUTH=plain", "X-GM-EXT-1", "XYZZY"]
                .iter()
                .map(|w| Capability::parse(w)),
        );
        assert!(caps.has(&Capability::Move));
        assert!(caps.has(&Capability::GmailExt1));
        assert!(caps.auth("PLAIN") && caps.auth("plain"));
        assert!(!caps.auth("XOAUTH2"));
        assert!(caps.has(&Capability::Other("XYZZY".into())));
        assert_eq!(
            caps.to_string(),
            "IMAP4rev1 AUTH=PLAIN MOVE X-GM-EXT-1 XYZZY"
        );
        let flood = (0..5000).map(|i| Capability::Other(format!("X{i}")));
        assert_eq!(Capabilities::new(flood).iter().count(), MAX_CAPABILITIES);
    }

    #[test]
    fn inbox_is_one_name_in_any_case() {
        assert_eq!(Mailbox::from_server("Inbox"), Mailbox::inbox());
        assert!(Mailbox::verbatim("inbox").is_inbox());
        assert_ne!(Mailbox::from_server("INBOX.x"), Mailbox::inbox());
        assert_eq!(decode_mailbox("&ANw-mlaut"), "Ümlaut");
        assert_eq!(decode_mailbox("a&-b"), "a&b");
        assert_eq!(
            decode_mailbox("&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-"),
            "Отправленные"
        );
        assert_eq!(decode_mailbox("&AOQ-&APY-x&-"), "äöx&");
        assert_eq!(decode_mailbox("&2D3eAA-"), "😀");
        // Not modified UTF-7: kept as written, never a panic.
        for bad in ["Bad &!!-", "&AOQ", "&A-", "&AOQA-", "&2D0-", "x&\u{ef}-"] {
            assert_eq!(decode_mailbox(bad), bad, "{bad}");
        }
    }
}
