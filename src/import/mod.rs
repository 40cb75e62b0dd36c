//! Importers: rules written for another filter become mailwarden rules.
//! `gmail` reads Gmail's filter export (`mailFilters.xml`), `sieve` a Sieve
//! script (RFC 5228 and the extensions that map). Both are pure: text in,
//! the YAML of a configuration (or of its rules only) and the list of what
//! could not be translated out. `commands::import` reads the file and
//! prints; the YAML is meant for `config` to read, once the user has looked
//! at it.
//!
//! Both translators build the small model here ([`Rule`], [`Cond`],
//! [`Act`]) and [`render`] writes it. What they cannot translate they
//! never guess at: a rule whose condition cannot be written is left out (a
//! rule that matched more than the original could move mail the original
//! left alone), an action that cannot be written is dropped from its rule,
//! and each is reported as an [`Untranslated`] and as a comment in the YAML
//! where it would have been.

pub mod gmail;
pub mod sieve;

use std::collections::HashSet;
use std::fmt::Write as _;

/// Something of the input that has no translation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Untranslated {
    /// The line of a Sieve script, or the number of a Gmail filter
    /// (`<entry>`), counted from 1.
    pub line: usize,
    /// What it is, as written in the input (shortened).
    pub what: String,
    /// Why it was not translated, and what was done instead.
    pub why: String,
}

/// The input is not what the importer reads: not a Gmail export, not Sieve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.col, self.message)
    }
}

/// What an importer produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// Commented YAML: a configuration, or its `rules:` items.
    pub yaml: String,
    /// In input order.
    pub untranslated: Vec<Untranslated>,
}

/// What to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// A whole configuration with a placeholder account to edit.
    Config,
    /// Only the items of `rules:`, to paste under an existing `rules:`.
    RulesOnly,
}

/// A YAML value as the importers write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Y {
    Str(String),
    Int(i64),
    Bool(bool),
    Seq(Vec<Y>),
    Map(Vec<(String, Y)>),
}

impl Y {
    pub fn s(text: impl Into<String>) -> Y {
        Y::Str(text.into())
    }

    pub fn map1(key: &str, value: Y) -> Y {
        Y::Map(vec![(key.to_string(), value)])
    }
}

/// A condition. `Leaf` is one key of a `match:` mapping and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    Leaf(String, Y),
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
}

impl Cond {
    pub fn leaf(key: &str, value: Y) -> Cond {
        Cond::Leaf(key.to_string(), value)
    }

    /// The conjunction, flattened; `None` for no condition at all.
    pub fn all(items: Vec<Cond>) -> Option<Cond> {
        let mut flat = Vec::new();
        for c in items {
            match c {
                Cond::All(inner) => flat.extend(inner),
                c => flat.push(c),
            }
        }
        match flat.len() {
            0 => None,
            1 => flat.pop(),
            _ => Some(Cond::All(flat)),
        }
    }

    pub fn any(items: Vec<Cond>) -> Cond {
        let mut flat = Vec::new();
        for c in items {
            match c {
                Cond::Any(inner) => flat.extend(inner),
                c => flat.push(c),
            }
        }
        if flat.len() == 1 {
            flat.pop().expect("one item")
        } else {
            Cond::Any(flat)
        }
    }

    pub fn negate(self) -> Cond {
        match self {
            Cond::Not(inner) => *inner,
            c => Cond::Not(Box::new(c)),
        }
    }
}

/// An action of an imported rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Act {
    /// A folder template (`{match1}` for a capture).
    Move(String),
    Copy(String),
    Archive,
    Delete,
    Flag(Vec<String>),
    Unflag(Vec<String>),
    Stop,
}

impl Act {
    /// Moves the message: the first such rule that matches ends evaluation.
    pub fn is_final(&self) -> bool {
        matches!(self, Act::Move(_) | Act::Archive | Act::Delete)
    }

    fn yaml(&self) -> Y {
        let flags = |f: &[String]| match f {
            [one] => Y::s(one.clone()),
            many => Y::Seq(many.iter().map(|f| Y::s(f.clone())).collect()),
        };
        match self {
            Act::Move(f) => Y::map1("move", Y::s(f.clone())),
            Act::Copy(f) => Y::map1("copy", Y::s(f.clone())),
            Act::Archive => Y::s("archive"),
            Act::Delete => Y::s("delete"),
            Act::Flag(f) => Y::map1("flag", flags(f)),
            Act::Unflag(f) => Y::map1("unflag", flags(f)),
            Act::Stop => Y::s("stop"),
        }
    }
}

/// One rule to write, or a comment where the input had something that
/// became no rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Rule(Rule),
    Comment(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    /// Comment lines written above the rule.
    pub notes: Vec<String>,
    /// `None`: every message.
    pub cond: Option<Cond>,
    pub actions: Vec<Act>,
}

/// Where the rules came from, for the comment at the top.
pub struct Source<'a> {
    /// "Gmail filter export" or "Sieve script".
    pub kind: &'a str,
    /// The file name as the user gave it.
    pub name: &'a str,
    /// The command that made it (`mailwarden import sieve`).
    pub command: &'a str,
}

/// Writes the YAML: a header comment (where from, `notes`, how many things
/// were not translated), then a configuration or the rule items. Rule
/// names are made unique by a number in brackets.
pub fn render(
    source: &Source<'_>,
    layout: Layout,
    notes: &[String],
    items: &[Item],
    untranslated: usize,
) -> String {
    let mut out = String::new();
    comment(
        &mut out,
        "",
        &format!(
            "mailwarden rules from the {} {}, written by `{}`.",
            source.kind,
            one_line(source.name),
            source.command
        ),
    );
    out.push_str(
        "# Read them before use: check with `mailwarden check -c FILE`, try them on\n\
         # mail with `mailwarden test -c FILE MSG.eml` and `mailwarden run --dry-run`.\n",
    );
    for n in notes {
        comment(&mut out, "", n);
    }
    match untranslated {
        0 => out.push_str("# Everything was translated.\n"),
        n => {
            let _ = writeln!(
                out,
                "# {n} thing{} could not be translated: see the \"not translated\" comments\n\
                 # below, and the list on standard error.",
                if n == 1 { "" } else { "s" }
            );
        }
    }
    out.push('\n');
    let rules = items.iter().any(|i| matches!(i, Item::Rule(_)));
    if layout == Layout::Config {
        out.push_str(
            "version: 1\n\
             \n\
             accounts:\n\
             \x20 personal:                       # edit: your server, login and secret\n\
             \x20   host: imap.example.org\n\
             \x20   username: me@example.org\n\
             \x20   password_command: \"pass show mail/personal\"\n\
             \n",
        );
        out.push_str(if rules { "rules:\n" } else { "rules: []\n" });
    } else {
        out.push_str("# Paste these under `rules:` in your configuration.\n");
    }
    let mut names = HashSet::new();
    let mut first = true;
    for item in items {
        if !first {
            out.push('\n');
        }
        first = false;
        match item {
            Item::Comment(lines) => {
                for l in lines {
                    comment(&mut out, "  ", l);
                }
            }
            Item::Rule(r) => {
                for n in &r.notes {
                    comment(&mut out, "  ", n);
                }
                let mut name = r.name.clone();
                let mut k = 2;
                while !names.insert(name.clone()) {
                    name = format!("{} ({k})", r.name);
                    k += 1;
                }
                let _ = writeln!(out, "  - name: {}", scalar(&name));
                if let Some(c) = &r.cond {
                    let m = match_map(c);
                    write_entries(&mut out, &[("match".to_string(), m)], 4);
                }
                let acts = Y::Seq(r.actions.iter().map(Act::yaml).collect());
                write_entries(&mut out, &[("actions".to_string(), acts)], 4);
            }
        }
    }
    out
}

/// Writes `text` as comment lines, wrapped at about 80 columns.
fn comment(out: &mut String, indent: &str, text: &str) {
    if text.is_empty() {
        let _ = writeln!(out, "{indent}#");
        return;
    }
    let width = 78usize.saturating_sub(indent.len() + 2).max(40);
    for para in text.lines() {
        let mut line = String::new();
        for word in para.split(' ') {
            if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
                let _ = writeln!(out, "{indent}# {line}");
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        let _ = writeln!(out, "{indent}# {}", line.trim_end());
    }
}

/// Text on one line, control characters escaped, for names in comments.
pub fn one_line(text: &str) -> String {
    crate::display::escape(text)
}

/// Shortens `text` to about `max` characters for names and reports.
pub fn shorten(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        let cut: String = flat.chars().take(max.saturating_sub(1)).collect();
        format!("{}…", cut.trim_end())
    }
}

/// A size in bytes as rules write it: `5MB` where it is whole megabytes.
pub(crate) fn size_text(n: u64) -> String {
    for (shift, unit) in [(30, "GB"), (20, "MB"), (10, "KB")] {
        if n >= 1 << shift && n.is_multiple_of(1 << shift) {
            return format!("{}{unit}", n >> shift);
        }
    }
    n.to_string()
}

/// A size as a YAML value: `5MB`, or a number of bytes.
pub(crate) fn size_value(n: u64) -> Y {
    let text = size_text(n);
    match text.parse::<i64>() {
        Ok(i) => Y::Int(i),
        Err(_) => Y::Str(text),
    }
}

/// Keys whose value is a text or address test, where a list means "any".
const LISTABLE: &[&str] = &[
    "from",
    "to",
    "cc",
    "bcc",
    "sender",
    "reply_to",
    "recipient",
    "subject",
    "list",
    "body",
];

/// Keys whose value is a mapping of header names, merged when they are
/// and-ed and the names differ.
const MERGEABLE: &[&str] = &["header", "address"];

/// The `match:` mapping of a condition.
pub fn match_map(c: &Cond) -> Y {
    match c {
        Cond::All(items) => {
            let mut entries: Vec<(String, Y)> = Vec::new();
            let mut rest: Vec<Y> = Vec::new();
            for item in items {
                let m = match_map(item);
                let Y::Map(pairs) = m else { unreachable!() };
                for (k, v) in pairs {
                    match entries.iter_mut().find(|(key, _)| *key == k) {
                        None => entries.push((k, v)),
                        Some((_, Y::Map(existing)))
                            if MERGEABLE.contains(&k.as_str())
                                && matches!(&v, Y::Map(new) if new.iter().all(|(n, _)| !existing.iter().any(|(e, _)| e.eq_ignore_ascii_case(n)))) =>
                        {
                            let Y::Map(new) = v else { unreachable!() };
                            existing.extend(new);
                        }
                        // `exists: [A, B]`: all of them, as an and.
                        Some((_, existing)) if k == "exists" => {
                            let mut names = match std::mem::replace(existing, Y::Seq(Vec::new())) {
                                Y::Seq(items) => items,
                                one => vec![one],
                            };
                            match v {
                                Y::Seq(items) => names.extend(items),
                                one => names.push(one),
                            }
                            *existing = Y::Seq(names);
                        }
                        Some(_) => rest.push(Y::map1(&k, v)),
                    }
                }
            }
            if !rest.is_empty() {
                match entries.iter_mut().find(|(k, _)| k == "all") {
                    Some((_, Y::Seq(list))) => list.extend(rest),
                    _ => entries.push(("all".into(), Y::Seq(rest))),
                }
            }
            Y::Map(entries)
        }
        Cond::Any(items) => {
            // `from: [a, b]` for any of several tests of one key.
            if let Some(Cond::Leaf(key, _)) = items.first()
                && LISTABLE.contains(&key.as_str())
                && items
                    .iter()
                    .all(|i| matches!(i, Cond::Leaf(k, _) if k == key))
            {
                let mut values = Vec::new();
                for i in items {
                    if let Cond::Leaf(_, v) = i {
                        match v {
                            Y::Seq(inner) => values.extend(inner.iter().cloned()),
                            v => values.push(v.clone()),
                        }
                    }
                }
                return Y::map1(key, Y::Seq(values));
            }
            Y::map1("any", Y::Seq(items.iter().map(match_map).collect()))
        }
        Cond::Not(inner) => Y::map1("not", match_map(inner)),
        Cond::Leaf(k, v) => Y::map1(k, v.clone()),
    }
}

/// The widest a value written on one line may be.
const FLOW_WIDTH: usize = 72;

/// The value on one line (`{ domain: x }`, `[a, b]`), when it is short
/// and holds no `all`, `any` or `not`.
fn flow(v: &Y) -> Option<String> {
    let text = match v {
        Y::Str(s) => scalar_in(s, true),
        Y::Int(i) => i.to_string(),
        Y::Bool(b) => b.to_string(),
        Y::Seq(items) => {
            let parts: Option<Vec<String>> = items.iter().map(flow).collect();
            format!("[{}]", parts?.join(", "))
        }
        Y::Map(entries) => {
            if entries
                .iter()
                .any(|(k, _)| matches!(k.as_str(), "all" | "any" | "not"))
            {
                return None;
            }
            let parts: Option<Vec<String>> = entries
                .iter()
                .map(|(k, v)| Some(format!("{}: {}", scalar_in(k, true), flow(v)?)))
                .collect();
            format!("{{ {} }}", parts?.join(", "))
        }
    };
    (text.chars().count() <= FLOW_WIDTH).then_some(text)
}

fn write_entries(out: &mut String, entries: &[(String, Y)], indent: usize) {
    let pad = " ".repeat(indent);
    for (k, v) in entries {
        let key = scalar(k);
        let block = matches!(k.as_str(), "actions" | "match" | "all" | "any");
        match v {
            Y::Str(s) => {
                let _ = writeln!(out, "{pad}{key}: {}", scalar(s));
            }
            Y::Int(i) => {
                let _ = writeln!(out, "{pad}{key}: {i}");
            }
            Y::Bool(b) => {
                let _ = writeln!(out, "{pad}{key}: {b}");
            }
            Y::Map(_) | Y::Seq(_) if !block && flow(v).is_some() => {
                let _ = writeln!(out, "{pad}{key}: {}", flow(v).unwrap_or_default());
            }
            Y::Map(inner) => {
                let _ = writeln!(out, "{pad}{key}:");
                write_entries(out, inner, indent + 2);
            }
            Y::Seq(items) => {
                let _ = writeln!(out, "{pad}{key}:");
                write_items(out, items, indent + 2);
            }
        }
    }
}

fn write_items(out: &mut String, items: &[Y], indent: usize) {
    let pad = " ".repeat(indent);
    for item in items {
        match item {
            // `- key: value`, the first entry on the dash's line.
            Y::Map(entries) if !entries.is_empty() => {
                let mut inner = String::new();
                write_entries(&mut inner, entries, indent + 2);
                let _ = write!(out, "{pad}- {}", &inner[indent + 2..]);
            }
            Y::Seq(inner) if flow(item).is_none() => {
                let _ = writeln!(out, "{pad}-");
                write_items(out, inner, indent + 2);
            }
            Y::Str(s) => {
                let _ = writeln!(out, "{pad}- {}", scalar(s));
            }
            other => {
                let text = flow(other).unwrap_or_default();
                let _ = writeln!(out, "{pad}- {text}");
            }
        }
    }
}

/// A string as a YAML scalar in block context.
pub fn scalar(s: &str) -> String {
    scalar_in(s, false)
}

/// A string as a YAML scalar: plain where that reads back as the same
/// string, else single-quoted (regexes keep their backslashes), else
/// double-quoted with escapes (control characters).
fn scalar_in(s: &str, in_flow: bool) -> String {
    if plain_ok(s, in_flow) {
        return s.to_string();
    }
    if !s.chars().any(|c| c.is_control() || c == '\u{feff}') {
        if s.contains('\'') && !s.contains(['"', '\\']) {
            return format!("\"{s}\"");
        }
        return format!("'{}'", s.replace('\'', "''"));
    }
    let mut q = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\t' => q.push_str("\\t"),
            c if c.is_control() || c == '\u{feff}' => {
                let _ = write!(q, "\\u{:04x}", c as u32);
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

fn plain_ok(s: &str, in_flow: bool) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if !(first.is_alphanumeric() || matches!(first, '_' | '.' | '/' | '$' | '+'))
        || s.ends_with(' ')
        || s.ends_with(':')
        || s.contains(": ")
        || s.contains(" #")
        || s.chars().any(|c| {
            c.is_control()
                || c == '\\'
                || c == '\u{feff}'
                || in_flow && matches!(c, '{' | '}' | '[' | ']' | ',')
        })
    {
        return false;
    }
    let lower = s.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    let reserved = matches!(
        lower.as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "~"
    );
    // Anything a YAML reader could take for a number.
    let numeric = s.parse::<f64>().is_ok()
        || unsigned.starts_with("0x")
        || unsigned.starts_with("0o")
        || matches!(unsigned, ".inf" | ".nan");
    !reserved && !numeric
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml_str(text: &str) -> String {
        let doc = format!("k: {text}\n");
        let root = crate::config::yaml::parse(&doc).unwrap_or_else(|d| panic!("{doc}: {d:?}"));
        match &root.value {
            crate::config::yaml::Value::Map(entries) => entries[0].1.value.as_text().unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn scalars_read_back_as_the_same_string() {
        for s in [
            "plain",
            "Lists/{match1}",
            "(?i)^\\[(?P<list>[^]]+)\\]",
            "it's",
            "a: b",
            "#hash",
            "x #y",
            "yes",
            "No",
            "null",
            "~",
            "5",
            "1.5",
            "0x1A",
            "1e3",
            "-2",
            "5MB",
            "\\Seen",
            "$Work",
            "@home",
            "*.pdf",
            "- dash",
            "Ärger",
            "tab\there",
            "new\nline",
            "\"quoted\"",
            "a, b",
            "[x]",
            "trailing ",
            " leading",
            "",
            "me@example.org",
            "?",
            "%x",
            "!tag",
            "&anchor",
        ] {
            assert_eq!(yaml_str(&scalar(s)), s, "{s:?} written as {}", scalar(s));
            let flow = format!("[{}]", scalar_in(s, true));
            let doc = format!("k: {flow}\n");
            let root = crate::config::yaml::parse(&doc).unwrap();
            let crate::config::yaml::Value::Map(e) = &root.value else {
                panic!()
            };
            let crate::config::yaml::Value::Seq(items) = &e[0].1.value else {
                panic!("{doc}")
            };
            assert_eq!(items[0].value.as_text().unwrap(), s, "{doc}");
        }
        assert_eq!(scalar("Lists/rust"), "Lists/rust");
        assert_eq!(scalar("me@example.org"), "me@example.org");
        assert_eq!(scalar("yes"), "'yes'");
    }

    #[test]
    fn conditions_merge_into_one_mapping_where_keys_differ() {
        let c = Cond::all(vec![
            Cond::leaf("from", Y::s("a")),
            Cond::leaf("subject", Y::s("b")),
            Cond::leaf("subject", Y::s("c")),
            Cond::leaf("header", Y::map1("X-A", Y::s("1"))),
            Cond::leaf("header", Y::map1("X-B", Y::s("2"))),
            Cond::leaf("header", Y::map1("x-a", Y::s("3"))),
            Cond::leaf("from", Y::s("z")).negate(),
        ])
        .unwrap();
        let mut out = String::new();
        write_entries(&mut out, &[("match".into(), match_map(&c))], 0);
        assert_eq!(
            out,
            "match:\n  from: a\n  subject: b\n  header: { X-A: '1', X-B: '2' }\n  not: { from: z }\n  all:\n    - subject: c\n    - header: { x-a: '3' }\n"
        );
    }

    #[test]
    fn any_of_one_key_becomes_a_list() {
        let c = Cond::any(vec![
            Cond::leaf("from", Y::s("a")),
            Cond::leaf("from", Y::Seq(vec![Y::s("b"), Y::map1("is", Y::s("c"))])),
        ]);
        assert_eq!(
            match_map(&c),
            Y::map1(
                "from",
                Y::Seq(vec![Y::s("a"), Y::s("b"), Y::map1("is", Y::s("c"))])
            )
        );
        let mixed = Cond::any(vec![
            Cond::leaf("from", Y::s("a")),
            Cond::leaf("subject", Y::s("b")),
        ]);
        let mut out = String::new();
        write_entries(&mut out, &[("match".into(), match_map(&mixed))], 0);
        assert_eq!(out, "match:\n  any:\n    - from: a\n    - subject: b\n");
    }

    #[test]
    fn rule_names_are_made_unique_and_comments_wrapped() {
        let rule = |name: &str| {
            Item::Rule(Rule {
                name: name.into(),
                notes: vec!["a note ".repeat(20).trim_end().to_string()],
                cond: None,
                actions: vec![Act::Flag(vec!["seen".into()])],
            })
        };
        let yaml = render(
            &Source {
                kind: "Sieve script",
                name: "x.sieve",
                command: "mailwarden import sieve",
            },
            Layout::Config,
            &[],
            &[rule("R"), rule("R"), Item::Comment(vec!["gone".into()])],
            1,
        );
        assert!(yaml.contains("  - name: R\n"), "{yaml}");
        assert!(yaml.contains("  - name: R (2)\n"), "{yaml}");
        assert!(yaml.contains("\n  # gone\n"), "{yaml}");
        assert!(yaml.lines().all(|l| l.chars().count() <= 80), "{yaml}");
        let config = crate::config::parse_str(&yaml, std::path::Path::new("."))
            .unwrap_or_else(|d| panic!("{yaml}\n{d:?}"));
        assert_eq!(config.rules.len(), 2);
    }
}
