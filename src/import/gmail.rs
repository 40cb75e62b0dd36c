//! `mailwarden import gmail`: Gmail's filter export (`mailFilters.xml`,
//! an Atom feed of `<entry>` elements with `<apps:property name= value=>`)
//! becomes mailwarden rules. Pure; `commands::import` reads the file.
//!
//! Criteria: `from`, `to`, `subject`, `hasTheWord`, `doesNotHaveTheWord`
//! (each a Gmail search: the common operators are translated, see
//! [`Query`]), `hasAttachment`, `size` with `sizeOperator` and `sizeUnit`.
//! Actions: `label`, `shouldArchive`, `shouldMarkAsRead`, `shouldStar`,
//! `shouldTrash`. Everything else (`forwardTo`, `shouldNeverSpam`, the
//! importance markers, categories, canned responses, search operators
//! with no equivalent) is reported by entry number.
//!
//! Gmail applies every filter that matches; mailwarden stops at the first
//! rule that moves a message. The rules that only label (`copy:`), star
//! or mark as read therefore come first, in the order of the export, then
//! those that move, archive or trash.

use quick_xml::events::{BytesStart, Event};

use super::{
    Act, Cond, Import, Item, Layout, ParseError, Rule, Source, Untranslated, Y, render, shorten,
    size_value,
};

/// Translates `text`, a Gmail filter export from the file `name`.
pub fn import(text: &str, name: &str, layout: Layout) -> Result<Import, ParseError> {
    let entries = read_entries(text)?;
    let mut out = Out::default();
    for e in &entries {
        translate(e, &mut out);
    }
    let mut notes = vec![
        "Gmail applies every filter that matches a message; mailwarden stops at the \
         first rule that moves it. So the rules that only label, star or mark as read \
         come first here, in the order of the export, and then those that move, \
         archive or trash: a message that two of those match goes where the first \
         sends it."
            .to_string(),
        "Labels: a filter that labels without archiving kept the message in the inbox, \
         so it is `copy:` here, which on Gmail adds the label and on another server puts \
         a copy in that folder (make it `move:` to file the message away instead). A \
         filter that labels and archives is `move:`."
            .to_string(),
        "Gmail matches whole words; mailwarden's plain strings match any part of a \
         text (`from: ann` also matches `joanne@example.com`)."
            .to_string(),
    ];
    if out.anywhere {
        notes.push(
            "Words without an operator are looked for in the subject and the text of the \
             message (`any: [subject, body]`); Gmail also looks at names, addresses and \
             attachment names."
                .to_string(),
        );
    }
    let mut items = out.labelling;
    items.extend(out.moving);
    let source = Source {
        kind: "Gmail filter export",
        name,
        command: "mailwarden import gmail",
    };
    let yaml = render(&source, layout, &notes, &items, out.untranslated.len());
    Ok(Import {
        yaml,
        untranslated: out.untranslated,
    })
}

// ---------------------------------------------------------------- XML

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// Counted from 1 in file order.
    number: usize,
    /// `(name, value)` of each `<apps:property>`, in file order.
    props: Vec<(String, String)>,
}

fn position(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let col = String::from_utf8_lossy(&before[start..]).chars().count() + 1;
    (line, col)
}

fn xml_error(text: &str, offset: u64, message: impl Into<String>) -> ParseError {
    let (line, col) = position(text, usize::try_from(offset).unwrap_or(usize::MAX));
    ParseError {
        line,
        col,
        message: message.into(),
    }
}

fn local(e: &BytesStart<'_>) -> String {
    e.local_name().as_ref().to_string()
}

/// The `<entry>` elements of the `<feed>`.
fn read_entries(text: &str) -> Result<Vec<Entry>, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = quick_xml::Reader::from_str(text);
    let mut entries: Vec<Entry> = Vec::new();
    // Names of the open elements.
    let mut open: Vec<String> = Vec::new();
    let mut root = false;
    loop {
        let before = reader.buffer_position();
        let event = reader.read_event().map_err(|e| {
            xml_error(
                text,
                reader.error_position(),
                format!("this is not well-formed XML: {e}"),
            )
        })?;
        // Where the element starts: the `<` after any white space.
        let at = {
            let from = usize::try_from(before).unwrap_or(0).min(text.len());
            (text[from..].find('<').map_or(from, |p| from + p)) as u64
        };
        match event {
            Event::Start(e) | Event::Empty(e) => {
                let is_empty = {
                    // Empty elements close at once.
                    let raw = &text[usize::try_from(at).unwrap_or(0)
                        ..usize::try_from(reader.buffer_position()).unwrap_or(0)];
                    raw.ends_with("/>")
                };
                let name = local(&e);
                if open.is_empty() {
                    if root {
                        return Err(xml_error(text, at, "a second top-level element"));
                    }
                    if name != "feed" {
                        return Err(xml_error(
                            text,
                            at,
                            format!(
                                "this is not a Gmail filter export: it is <{name}>, where Gmail's \
                                 export is a <feed> of <entry> elements (Settings, Filters, Export)"
                            ),
                        ));
                    }
                    root = true;
                } else if open.len() == 1 && name == "entry" {
                    entries.push(Entry {
                        number: entries.len() + 1,
                        props: Vec::new(),
                    });
                } else if open.len() == 2 && open[1] == "entry" && name == "property" {
                    let mut pname = None;
                    let mut value = None;
                    for a in e.attributes() {
                        let a = a.map_err(|err| {
                            xml_error(text, at, format!("a broken attribute: {err}"))
                        })?;
                        let v = a
                            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                            .map_err(|err| {
                                xml_error(text, at, format!("a broken attribute value: {err}"))
                            })?
                            .into_owned();
                        match a.key.local_name().as_ref() {
                            "name" => pname = Some(v),
                            "value" => value = Some(v),
                            _ => {}
                        }
                    }
                    let Some(pname) = pname else {
                        return Err(xml_error(text, at, "a filter property without a name"));
                    };
                    if let Some(entry) = entries.last_mut() {
                        entry.props.push((pname, value.unwrap_or_default()));
                    }
                }
                if !is_empty {
                    open.push(name);
                }
            }
            Event::End(_) => {
                open.pop();
            }
            Event::Text(t) if open.is_empty() && !t.as_ref().trim().is_empty() => {
                return Err(xml_error(
                    text,
                    at,
                    "text outside the <feed>: this is not a Gmail filter export",
                ));
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !root {
        return Err(xml_error(
            text,
            text.len() as u64,
            "this is not a Gmail filter export: there is no <feed> element",
        ));
    }
    Ok(entries)
}

// ---------------------------------------------------------------- search

/// What a search term looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    From,
    To,
    Cc,
    Bcc,
    Subject,
    List,
    Filename,
    /// A word without an operator.
    Anywhere,
}

/// A Gmail search, read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Query {
    And(Vec<Query>),
    Or(Vec<Query>),
    Not(Box<Query>),
    Term(Field, String),
    Attachment,
    Larger(u64),
    Smaller(u64),
    /// An operator with no equivalent: as written, and why.
    Unsupported(String, String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum QTok {
    Word(String),
    Phrase(String),
    /// `from:` and what follows it in the same word (may be empty).
    Op(String, String),
    Open(char),
    Close(char),
    Minus,
    Or,
    And,
}

const FIELDS: &[(&str, Field)] = &[
    ("from", Field::From),
    ("to", Field::To),
    ("cc", Field::Cc),
    ("bcc", Field::Bcc),
    ("subject", Field::Subject),
    ("list", Field::List),
    ("filename", Field::Filename),
];

/// Operators of Gmail's search that have no translation, and why.
const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "in",
        "a message's labels and Gmail folders are not conditions in mailwarden",
    ),
    (
        "label",
        "a message's labels and Gmail folders are not conditions in mailwarden",
    ),
    (
        "is",
        "Gmail's states (important, starred, unread, muted...) are not translated; mailwarden has seen: and flagged: for flags",
    ),
    (
        "category",
        "Gmail's categories are Gmail's own; they are not in the message",
    ),
    (
        "after",
        "dates in a search are not translated; mailwarden has sent_after and newer_than",
    ),
    (
        "before",
        "dates in a search are not translated; mailwarden has sent_before and older_than",
    ),
    (
        "older",
        "dates in a search are not translated; mailwarden has sent_before and older_than",
    ),
    (
        "newer",
        "dates in a search are not translated; mailwarden has sent_after and newer_than",
    ),
    (
        "older_than",
        "dates in a search are not translated; mailwarden has older_than",
    ),
    (
        "newer_than",
        "dates in a search are not translated; mailwarden has newer_than",
    ),
    (
        "deliveredto",
        "not translated; `address: { Delivered-To: ... }` tests that header",
    ),
    (
        "rfc822msgid",
        "a search for one message has no use as a rule",
    ),
    ("has", "only has:attachment is translated"),
    ("around", "AROUND has no equivalent"),
    ("badge", "Gmail's own markers are not in the message"),
];

fn tokenize(q: &str) -> Vec<QTok> {
    let chars: Vec<char> = q.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' | '{' => {
                out.push(QTok::Open(c));
                i += 1;
            }
            ')' | '}' => {
                out.push(QTok::Close(c));
                i += 1;
            }
            '"' => {
                let mut j = i + 1;
                while j < chars.len() && chars[j] != '"' {
                    j += 1;
                }
                out.push(QTok::Phrase(chars[i + 1..j].iter().collect()));
                i = j + 1;
            }
            '-' if chars.get(i + 1).is_some_and(|n| !n.is_whitespace()) && starts_term(&out) => {
                out.push(QTok::Minus);
                i += 1;
            }
            _ => {
                let mut j = i;
                while j < chars.len() && !chars[j].is_whitespace() && !"(){}\"".contains(chars[j]) {
                    j += 1;
                }
                let word: String = chars[i..j].iter().collect();
                i = j;
                if word == "OR" || word == "|" {
                    out.push(QTok::Or);
                } else if word == "AND" {
                    out.push(QTok::And);
                } else if let Some((op, rest)) = word.split_once(':')
                    && !op.is_empty()
                    && op.chars().all(|c| c.is_ascii_alphabetic() || c == '_')
                    && (FIELDS.iter().any(|(n, _)| op.eq_ignore_ascii_case(n))
                        || UNSUPPORTED.iter().any(|(n, _)| op.eq_ignore_ascii_case(n))
                        || ["larger", "smaller", "size"]
                            .iter()
                            .any(|n| op.eq_ignore_ascii_case(n)))
                {
                    out.push(QTok::Op(op.to_ascii_lowercase(), rest.to_string()));
                } else {
                    out.push(QTok::Word(word));
                }
            }
        }
    }
    out
}

/// A `-` starts a negated term at the start of a word.
fn starts_term(before: &[QTok]) -> bool {
    !matches!(before.last(), Some(QTok::Op(_, rest)) if rest.is_empty())
}

struct QParser {
    toks: Vec<QTok>,
    pos: usize,
}

/// Gmail sizes: bytes, or with K, M (also KB, MB) and G, 1024-based.
fn gmail_size(text: &str) -> Option<u64> {
    let t = text.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let n: u64 = t[..split].parse().ok()?;
    let shift = match &t[split..] {
        "" | "b" => 0,
        "k" | "kb" => 10,
        "m" | "mb" => 20,
        "g" | "gb" => 30,
        _ => return None,
    };
    n.checked_mul(1 << shift)
}

impl QParser {
    fn peek(&self) -> Option<&QTok> {
        self.toks.get(self.pos)
    }

    fn or(&mut self, field: Field) -> Result<Query, String> {
        let mut items = vec![self.and(field)?];
        while self.peek() == Some(&QTok::Or) {
            self.pos += 1;
            items.push(self.and(field)?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one")
        } else {
            Query::Or(items)
        })
    }

    fn and(&mut self, field: Field) -> Result<Query, String> {
        let mut items = Vec::new();
        loop {
            match self.peek() {
                None | Some(QTok::Or) | Some(QTok::Close(_)) => break,
                Some(QTok::And) => self.pos += 1,
                Some(_) => items.push(self.unary(field)?),
            }
        }
        match items.len() {
            0 => Err("an empty search or group".into()),
            1 => Ok(items.pop().expect("one")),
            _ => Ok(Query::And(items)),
        }
    }

    fn unary(&mut self, field: Field) -> Result<Query, String> {
        if self.peek() == Some(&QTok::Minus) {
            self.pos += 1;
            return Ok(Query::Not(Box::new(self.unary(field)?)));
        }
        self.primary(field)
    }

    fn group(&mut self, open: char, field: Field) -> Result<Query, String> {
        let close = if open == '(' { ')' } else { '}' };
        let inner = if open == '(' {
            self.or(field)?
        } else {
            // `{a b}`: any of them.
            let mut items = Vec::new();
            while !matches!(self.peek(), None | Some(QTok::Close(_))) {
                if self.peek() == Some(&QTok::Or) {
                    self.pos += 1;
                    continue;
                }
                items.push(self.unary(field)?);
            }
            if items.is_empty() {
                return Err("an empty group".into());
            }
            if items.len() == 1 {
                items.pop().expect("one")
            } else {
                Query::Or(items)
            }
        };
        match self.peek() {
            Some(QTok::Close(c)) if *c == close => {
                self.pos += 1;
                Ok(inner)
            }
            _ => Err(format!("a `{open}` is not closed")),
        }
    }

    fn primary(&mut self, field: Field) -> Result<Query, String> {
        let tok = self.peek().cloned().ok_or("the search ends too early")?;
        self.pos += 1;
        match tok {
            QTok::Open(c) => self.group(c, field),
            QTok::Word(w) => Ok(Query::Term(field, w)),
            QTok::Phrase(p) => Ok(Query::Term(field, p)),
            QTok::Op(op, rest) => {
                // The value: the rest of the word, or the next token.
                let value = if !rest.is_empty() {
                    Some(Query::Term(Field::Anywhere, rest.clone()))
                } else {
                    None
                };
                if let Some((_, f)) = FIELDS.iter().find(|(n, _)| *n == op) {
                    return match value {
                        Some(_) => Ok(Query::Term(*f, rest)),
                        None => match self.peek().cloned() {
                            Some(QTok::Open(c)) => {
                                self.pos += 1;
                                self.group(c, *f)
                            }
                            Some(QTok::Phrase(p)) | Some(QTok::Word(p)) => {
                                self.pos += 1;
                                Ok(Query::Term(*f, p))
                            }
                            _ => Err(format!("`{op}:` without a value")),
                        },
                    };
                }
                let mut written = format!("{op}:{rest}");
                if rest.is_empty() {
                    // Take the value along, to report the whole term.
                    match self.peek().cloned() {
                        Some(QTok::Word(w)) | Some(QTok::Phrase(w)) => {
                            self.pos += 1;
                            written.push_str(&w);
                        }
                        Some(QTok::Open(c)) => {
                            self.pos += 1;
                            let _ = self.group(c, Field::Anywhere)?;
                            written.push_str("(...)");
                        }
                        _ => {}
                    }
                }
                let arg = written[op.len() + 1..].to_string();
                match op.as_str() {
                    "has" if arg.eq_ignore_ascii_case("attachment") => Ok(Query::Attachment),
                    "larger" | "smaller" | "size" => match gmail_size(&arg) {
                        Some(n) if op == "smaller" => Ok(Query::Smaller(n)),
                        Some(n) => Ok(Query::Larger(n)),
                        None => Ok(Query::Unsupported(
                            written,
                            "not a size Gmail writes".into(),
                        )),
                    },
                    _ => {
                        let why = UNSUPPORTED
                            .iter()
                            .find(|(n, _)| *n == op)
                            .map_or("not translated", |(_, w)| w);
                        Ok(Query::Unsupported(written, why.into()))
                    }
                }
            }
            QTok::Minus => Ok(Query::Not(Box::new(self.unary(field)?))),
            QTok::Or | QTok::And => Err("OR or AND without a term before it".into()),
            QTok::Close(c) => Err(format!("a `{c}` that closes nothing")),
        }
    }
}

/// Reads a Gmail search; `field` is what words without an operator look
/// at (`from` for the From box of the filter).
fn parse_query(q: &str, field: Field) -> Result<Query, String> {
    let mut p = QParser {
        toks: tokenize(q),
        pos: 0,
    };
    let query = p.or(field)?;
    match p.peek() {
        None => Ok(query),
        Some(QTok::Close(c)) => Err(format!("a `{c}` that closes nothing")),
        Some(_) => Err("cannot read the end of the search".into()),
    }
}

/// The condition of a search; `Err` lists what has no translation.
fn query_cond(q: &Query, anywhere: &mut bool) -> Result<Cond, Vec<(String, String)>> {
    match q {
        Query::Term(field, text) => {
            let v = Y::s(text.clone());
            Ok(match field {
                Field::From => Cond::leaf("from", v),
                Field::To => Cond::leaf("recipient", v),
                Field::Cc => Cond::leaf("cc", v),
                Field::Bcc => Cond::leaf("bcc", v),
                Field::Subject => Cond::leaf("subject", v),
                Field::List => Cond::leaf("list", v),
                Field::Filename => Cond::leaf("attachment", Y::map1("name", v)),
                Field::Anywhere => {
                    *anywhere = true;
                    Cond::any(vec![
                        Cond::leaf("subject", v.clone()),
                        Cond::leaf("body", v),
                    ])
                }
            })
        }
        Query::Attachment => Ok(Cond::leaf("attachment", Y::Bool(true))),
        Query::Larger(n) => Ok(Cond::leaf("size", Y::map1("over", size_value(*n)))),
        Query::Smaller(n) => Ok(Cond::leaf("size", Y::map1("under", size_value(*n)))),
        Query::Unsupported(what, why) => Err(vec![(what.clone(), why.clone())]),
        Query::Not(inner) => Ok(query_cond(inner, anywhere)?.negate()),
        Query::And(items) | Query::Or(items) => {
            let mut conds = Vec::new();
            let mut problems = Vec::new();
            for i in items {
                match query_cond(i, anywhere) {
                    Ok(c) => conds.push(c),
                    Err(p) => problems.extend(p),
                }
            }
            if !problems.is_empty() {
                return Err(problems);
            }
            Ok(if matches!(q, Query::And(_)) {
                Cond::all(conds).expect("a search has terms")
            } else {
                Cond::any(conds)
            })
        }
    }
}

// ---------------------------------------------------------------- filters

#[derive(Default)]
struct Out {
    /// Rules that label, star or mark only, and what became of such filters.
    labelling: Vec<Item>,
    /// Rules that move, archive or trash.
    moving: Vec<Item>,
    untranslated: Vec<Untranslated>,
    anywhere: bool,
}

impl Out {
    fn report(&mut self, entry: usize, what: impl Into<String>, why: impl Into<String>) {
        self.untranslated.push(Untranslated {
            line: entry,
            what: what.into(),
            why: why.into(),
        });
    }
}

const CRITERIA: &[&str] = &[
    "from",
    "to",
    "subject",
    "hasTheWord",
    "doesNotHaveTheWord",
    "hasAttachment",
    "size",
    "sizeOperator",
    "sizeUnit",
    "excludeChats",
];

const ACTIONS: &[&str] = &[
    "label",
    "shouldArchive",
    "shouldMarkAsRead",
    "shouldStar",
    "shouldTrash",
];

/// Actions with no translation, and why.
const OTHER_ACTIONS: &[(&str, &str)] = &[
    (
        "forwardTo",
        "mailwarden sorts mail and sends none: no forwards",
    ),
    (
        "shouldNeverSpam",
        "mailwarden sees mail after the server's spam filter: what Gmail put in Spam never reaches these rules",
    ),
    (
        "shouldAlwaysMarkAsImportant",
        "Gmail's importance marker is Gmail's own; a keyword (`flag: $Important`) would be the nearest",
    ),
    (
        "shouldNeverMarkAsImportant",
        "Gmail's importance marker is Gmail's own",
    ),
    (
        "smartLabelToApply",
        "Gmail's categories (Social, Promotions, Updates, Forums) are Gmail's own; `move:` to a folder of that name would be the nearest",
    ),
    ("cannedResponse", "mailwarden sends no replies"),
];

fn truthy(v: &str) -> bool {
    v.eq_ignore_ascii_case("true")
}

/// The criteria as Gmail shows them, for the rule's name.
fn summary(props: &[(String, String)]) -> String {
    let mut parts = Vec::new();
    for (k, v) in props {
        match k.as_str() {
            "from" | "to" | "subject" => parts.push(format!("{k}:({v})")),
            "hasTheWord" => parts.push(v.clone()),
            "doesNotHaveTheWord" => parts.push(format!("-{{{v}}}")),
            "hasAttachment" if truthy(v) => parts.push("has:attachment".into()),
            "size" => {
                let get = |name: &str| {
                    props
                        .iter()
                        .rev()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.as_str())
                };
                let op = if get("sizeOperator") == Some("s_ss") {
                    "smaller"
                } else {
                    "larger"
                };
                let unit = match get("sizeUnit") {
                    Some("s_smb") => "M",
                    Some("s_skb") => "K",
                    _ => "",
                };
                parts.push(format!("{op}:{v}{unit}"));
            }
            _ => {}
        }
    }
    shorten(&parts.join(" "), 60)
}

fn translate(e: &Entry, out: &mut Out) {
    let n = e.number;
    let get = |name: &str| {
        e.props
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let mut conds = Vec::new();
    let mut problems: Vec<(String, String)> = Vec::new();
    let mut anywhere = false;
    for (k, v) in &e.props {
        let field = match k.as_str() {
            "from" => Some(Field::From),
            "to" => Some(Field::To),
            "subject" => Some(Field::Subject),
            "hasTheWord" | "doesNotHaveTheWord" => Some(Field::Anywhere),
            _ => None,
        };
        if let Some(field) = field {
            if v.trim().is_empty() {
                continue;
            }
            let query = match parse_query(v, field) {
                Ok(q) => q,
                Err(why) => {
                    problems.push((
                        format!("{k} \"{}\"", shorten(v, 50)),
                        format!("cannot read this search: {why}"),
                    ));
                    continue;
                }
            };
            // "Doesn't have: a b" is Gmail's -{a b}: none of them.
            let query = match (k.as_str(), query) {
                ("doesNotHaveTheWord", Query::And(items)) => Query::Not(Box::new(Query::Or(items))),
                ("doesNotHaveTheWord", q) => Query::Not(Box::new(q)),
                (_, q) => q,
            };
            match query_cond(&query, &mut anywhere) {
                Ok(c) => conds.push(c),
                Err(p) => problems.extend(p.into_iter().map(|(term, why)| {
                    (
                        format!("{k} \"{}\"", shorten(v, 50)),
                        format!("`{term}`: {why}"),
                    )
                })),
            }
            continue;
        }
        match k.as_str() {
            "hasAttachment" if truthy(v) => conds.push(Cond::leaf("attachment", Y::Bool(true))),
            "size" => {
                let unit = match get("sizeUnit").unwrap_or("s_sb") {
                    "s_sb" => Some(0),
                    "s_skb" => Some(10),
                    "s_smb" => Some(20),
                    _ => None,
                };
                let over = match get("sizeOperator").unwrap_or("s_sl") {
                    "s_sl" => Some(true),
                    "s_ss" => Some(false),
                    _ => None,
                };
                match (v.trim().parse::<u64>().ok(), unit, over) {
                    (Some(num), Some(shift), Some(over))
                        if num.checked_mul(1 << shift).is_some() =>
                    {
                        let bytes = num << shift;
                        conds.push(Cond::leaf(
                            "size",
                            Y::map1(if over { "over" } else { "under" }, size_value(bytes)),
                        ));
                    }
                    _ => problems.push((
                        format!("size {v}"),
                        "not a size, unit or comparison Gmail writes".into(),
                    )),
                }
            }
            _ => {}
        }
    }
    out.anywhere |= anywhere;

    // Actions.
    let mut flags = Vec::new();
    if get("shouldMarkAsRead").is_some_and(truthy) {
        flags.push("seen".to_string());
    }
    if get("shouldStar").is_some_and(truthy) {
        flags.push("flagged".to_string());
    }
    let mut actions = Vec::new();
    if !flags.is_empty() {
        actions.push(Act::Flag(flags));
    }
    let archive = get("shouldArchive").is_some_and(truthy);
    let trash = get("shouldTrash").is_some_and(truthy);
    let mut dropped = Vec::new();
    let label = match get("label").map(str::trim).filter(|l| !l.is_empty()) {
        Some(l) => match crate::rules::template::check_folder(l) {
            Ok(()) => Some(l.replace('{', "{{").replace('}', "}}")),
            Err(why) => {
                dropped.push((format!("label \"{}\"", super::one_line(l)), why));
                None
            }
        },
        None => None,
    };
    match (label, archive, trash) {
        (label, _, true) => {
            if let Some(l) = label {
                actions.push(Act::Copy(l));
            }
            actions.push(Act::Delete);
        }
        (Some(l), true, false) => actions.push(Act::Move(l)),
        (Some(l), false, false) => actions.push(Act::Copy(l)),
        (None, true, false) => actions.push(Act::Archive),
        (None, false, false) => {}
    }
    for (k, v) in &e.props {
        if CRITERIA.contains(&k.as_str()) || ACTIONS.contains(&k.as_str()) {
            continue;
        }
        let what = if truthy(v) {
            k.clone()
        } else {
            format!("{k} {}", shorten(v, 50))
        };
        match OTHER_ACTIONS.iter().find(|(name, _)| name == k) {
            Some((_, why)) => dropped.push((what, (*why).to_string())),
            None => dropped.push((what, "not a filter property mailwarden knows".to_string())),
        }
    }

    let moves = actions.iter().any(Act::is_final);
    let name = format!("Gmail filter {n}: {}", summary(&e.props));
    let mut comments = Vec::new();
    for (what, why) in &problems {
        comments.push(format!("not translated (entry {n}): {what}: {why}"));
    }
    let left_out = !problems.is_empty();
    if left_out {
        comments.push(format!(
            "Entry {n} ({}) is left out: a rule without that part would match mail the filter did not.",
            summary(&e.props)
        ));
        for (what, why) in problems {
            out.report(n, what, format!("{why}; the filter is left out"));
        }
    }
    for (what, why) in &dropped {
        comments.push(format!("not translated (entry {n}): {what}: {why}"));
    }
    for (what, why) in dropped {
        out.report(n, what, why);
    }
    let target = if moves {
        &mut out.moving
    } else {
        &mut out.labelling
    };
    if left_out || actions.is_empty() {
        if !left_out && actions.is_empty() && comments.is_empty() {
            comments.push(format!("Entry {n} has no actions: no rule."));
        } else if !left_out {
            comments.push(format!(
                "Entry {n}: nothing of what it does was translated: no rule."
            ));
        }
        target.push(Item::Comment(comments));
        return;
    }
    target.push(Item::Rule(Rule {
        name,
        notes: comments,
        cond: Cond::all(conds),
        actions,
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(entries: &[&[(&str, &str)]]) -> String {
        let mut x = String::from(
            "<?xml version='1.0' encoding='UTF-8'?><feed xmlns='http://www.w3.org/2005/Atom' xmlns:apps='http://schemas.google.com/apps/2006'>\n<title>Mail Filters</title>\n",
        );
        for props in entries {
            x.push_str("<entry><category term='filter'></category><title>Mail Filter</title>\n");
            for (k, v) in *props {
                let v = v
                    .replace('&', "&amp;")
                    .replace('\'', "&apos;")
                    .replace('"', "&quot;");
                x.push_str(&format!("<apps:property name='{k}' value='{v}'/>\n"));
            }
            x.push_str("</entry>\n");
        }
        x.push_str("</feed>\n");
        x
    }

    fn rules(entries: &[&[(&str, &str)]]) -> (String, Vec<Untranslated>) {
        let import = import(&feed(entries), "f.xml", Layout::Config).unwrap();
        if import.untranslated.is_empty() {
            crate::config::parse_str(&import.yaml, std::path::Path::new("."))
                .unwrap_or_else(|d| panic!("{}\n{d:?}", import.yaml));
        }
        let body = import.yaml.split_once("rules:\n").unwrap().1.to_string();
        (body, import.untranslated)
    }

    #[test]
    fn searches_are_read() {
        use Field::*;
        use Query::*;
        let t = |f, s: &str| Term(f, s.to_string());
        let cases = [
            ("a@x.example", From, t(From, "a@x.example")),
            ("a OR b", From, Or(vec![t(From, "a"), t(From, "b")])),
            ("{a b}", From, Or(vec![t(From, "a"), t(From, "b")])),
            (
                "foo bar",
                Subject,
                And(vec![t(Subject, "foo"), t(Subject, "bar")]),
            ),
            ("\"foo bar\"", Subject, t(Subject, "foo bar")),
            (
                "from:(a OR b) -subject:x",
                Anywhere,
                And(vec![
                    Or(vec![t(From, "a"), t(From, "b")]),
                    Not(Box::new(t(Subject, "x"))),
                ]),
            ),
            (
                "list:rust.example has:attachment",
                Anywhere,
                And(vec![t(List, "rust.example"), Attachment]),
            ),
            (
                "larger:10M smaller:20k",
                Anywhere,
                And(vec![Larger(10 << 20), Smaller(20 << 10)]),
            ),
            ("filename:pdf", Anywhere, t(Filename, "pdf")),
            (
                "-{a b}",
                Anywhere,
                Not(Box::new(Or(vec![t(Anywhere, "a"), t(Anywhere, "b")]))),
            ),
            (
                "http://x.example/a-b",
                Anywhere,
                t(Anywhere, "http://x.example/a-b"),
            ),
            (
                "is:unread",
                Anywhere,
                Unsupported("is:unread".into(), UNSUPPORTED[2].1.into()),
            ),
        ];
        for (q, field, want) in cases {
            assert_eq!(parse_query(q, field), Ok(want), "{q}");
        }
        for bad in ["(a", "a)", "from:", "OR a", "{}"] {
            assert!(parse_query(bad, Anywhere).is_err(), "{bad}");
        }
    }

    #[test]
    fn actions_map_labels_archive_and_trash() {
        let cases: [(&[(&str, &str)], &str); 6] = [
            (&[("from", "a"), ("label", "L")], "- copy: L"),
            (
                &[("from", "a"), ("label", "L"), ("shouldArchive", "true")],
                "- move: L",
            ),
            (&[("from", "a"), ("shouldArchive", "true")], "- archive"),
            (
                &[("from", "a"), ("label", "L"), ("shouldTrash", "true")],
                "- copy: L\n      - delete",
            ),
            (
                &[
                    ("from", "a"),
                    ("shouldMarkAsRead", "true"),
                    ("shouldStar", "true"),
                ],
                "- flag: [seen, flagged]",
            ),
            (
                &[("from", "a"), ("label", "{x}"), ("shouldArchive", "false")],
                "- copy: '{{x}}'",
            ),
        ];
        for (props, want) in cases {
            let (got, u) = rules(&[props]);
            assert!(u.is_empty(), "{props:?}: {u:?}");
            assert!(got.contains(want), "{props:?}\nwant {want}\ngot:\n{got}");
        }
    }

    #[test]
    fn criteria_become_conditions() {
        let cases: [(&[(&str, &str)], &str); 6] = [
            (&[("to", "me+x@example.org")], "recipient: me+x@example.org"),
            (
                &[("from", "a OR b"), ("subject", "hi there")],
                "from: [a, b]\n      subject: hi\n      all:\n        - subject: there",
            ),
            (
                &[("doesNotHaveTheWord", "foo bar")],
                "not:\n        any:\n          - subject: foo\n          - body: foo\n          - subject: bar",
            ),
            (&[("hasAttachment", "true")], "attachment: true"),
            (
                &[
                    ("size", "3"),
                    ("sizeOperator", "s_ss"),
                    ("sizeUnit", "s_skb"),
                ],
                "size: { under: 3KB }",
            ),
            (
                &[
                    ("size", "100"),
                    ("sizeOperator", "s_sl"),
                    ("sizeUnit", "s_sb"),
                ],
                "size: { over: 100 }",
            ),
        ];
        for (props, want) in cases {
            let mut props = props.to_vec();
            props.push(("label", "L"));
            let (got, u) = rules(&[&props]);
            assert!(u.is_empty(), "{props:?}: {u:?}");
            assert!(got.contains(want), "{props:?}\nwant {want}\ngot:\n{got}");
        }
    }

    #[test]
    fn what_has_no_translation_is_reported_by_entry() {
        let (got, u) = rules(&[
            &[("from", "a"), ("label", "A")],
            &[("hasTheWord", "in:inbox from:b"), ("label", "B")],
            &[
                ("from", "c"),
                ("forwardTo", "x@y"),
                ("shouldNeverSpam", "true"),
            ],
            &[("from", "d"), ("label", "D"), ("weirdProperty", "1")],
        ]);
        let at: Vec<(usize, &str)> = u.iter().map(|u| (u.line, u.what.as_str())).collect();
        assert_eq!(
            at,
            [
                (2, "hasTheWord \"in:inbox from:b\""),
                (3, "forwardTo x@y"),
                (3, "shouldNeverSpam"),
                (4, "weirdProperty 1"),
            ]
        );
        assert!(!got.contains("- copy: B"), "left out: {got}");
        assert!(got.contains("- copy: D"), "{got}");
        assert!(
            got.contains("Entry 3: nothing of what it does was translated"),
            "{got}"
        );
    }

    #[test]
    fn labels_come_before_moves_so_that_every_filter_applies() {
        let (got, _) = rules(&[
            &[("from", "a"), ("label", "First"), ("shouldArchive", "true")],
            &[("from", "a"), ("shouldStar", "true")],
        ]);
        let star = got.find("flag: flagged").unwrap();
        let first = got.find("move: First").unwrap();
        assert!(star < first, "{got}");
    }

    #[test]
    fn what_is_not_a_gmail_export_is_an_error_with_its_position() {
        let cases = [
            ("", (1, 1)),
            ("require \"fileinto\";", (1, 1)),
            ("<html><body/></html>", (1, 1)),
            ("<?xml version='1.0'?>\n<feed>\n  <entry>\n</feed>", (4, 1)),
            ("<feed></feed>\n<feed/>", (2, 1)),
        ];
        for (text, (line, col)) in cases {
            let e = import(text, "f", Layout::Config).expect_err(text);
            assert_eq!((e.line, e.col), (line, col), "{text}: {e}");
        }
        // An export with no filters is an empty rule set.
        let ok = import(&feed(&[]), "f", Layout::Config).unwrap();
        assert!(ok.yaml.contains("rules: []"), "{}", ok.yaml);
    }
}
