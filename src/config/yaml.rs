//! YAML with positions: builds a tree of [`Node`]s, each with its line and
//! column, from yaml-rust2's events. First step of `config`; `read` and
//! `validate` walk the tree.
//!
//! Why a tree of our own rather than serde straight into structs: serde stops
//! at the first error, and later checks (a bad regex, a duration) would have
//! no position to point at. Here every node keeps its position, so all the
//! problems of a file can be reported at once.
//!
//! The file is read unattended (again on every SIGHUP of `watch`), so building
//! the tree is bounded whatever the file holds:
//! - aliases may expand to at most [`MAX_ALIAS_NODES`] values and
//!   [`MAX_ALIAS_TEXT`] bytes of text in all. Each alias stands for its
//!   anchor's whole value, so aliases of aliases grow exponentially: 600 bytes
//!   can stand for gigabytes ("billion laughs"). The tree shares an anchored
//!   value rather than copying it, but `validate` walks every expansion;
//! - lists and mappings nest at most [`MAX_DEPTH`] levels, since the tree is
//!   dropped and walked recursively;
//! - events are pulled one at a time instead of through `Parser::load`, which
//!   recurses once per level of nesting (a deep file would overflow the stack)
//!   and cannot be stopped at a limit.
//!
//! The size of the text itself is bounded by the caller (`config::load`).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::rc::Rc;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, ScanError, TScalarStyle};

use super::diagnostic::{Diagnostic, Diagnostics, Pos};

/// How deeply lists and mappings may nest. A configuration needs about 10
/// (`rules` > rule > `match` > `any` > condition > text test).
pub const MAX_DEPTH: usize = 64;
/// How many values aliases may stand for in all. Sharing a `match:` block
/// among a few hundred rules stays far below it.
pub const MAX_ALIAS_NODES: usize = 100_000;
/// How many bytes of text (keys and scalars) aliases may stand for in all:
/// as much as the largest file (`config::MAX_FILE_BYTES`), so that aliases
/// can at most double what `validate` reads.
pub const MAX_ALIAS_TEXT: usize = 256 << 10;

/// A value together with where it starts in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub pos: Pos,
    pub value: T,
}

/// A YAML value. Plain scalars resolve as YAML 1.2's core schema does for the
/// types the configuration uses (null, booleans, decimal integers); everything
/// else stays text, so `0042` or `1.5MB` keep their spelling. Lists and
/// mappings are shared, so that an alias costs no copy.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    Seq(Rc<[Node]>),
    Map(Rc<[(Spanned<String>, Node)]>),
}

pub type Node = Spanned<Value>;

impl Value {
    /// What the user wrote, named the way error messages name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "nothing",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// The text of a scalar (numbers and booleans as written).
    pub fn as_text(&self) -> Option<String> {
        match self {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
}

fn pos_of(m: &Marker) -> Pos {
    Pos {
        line: m.line() as u32,
        col: m.col() as u32 + 1,
    }
}

fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        _ => {
            let digits = text.strip_prefix('-').unwrap_or(text);
            let canonical = !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
                && (digits == "0" || !digits.starts_with('0'));
            match text.parse::<i64>() {
                Ok(i) if canonical => Value::Int(i),
                _ => Value::Str(text.to_string()),
            }
        }
    }
}

/// What a subtree holds, with every alias in it expanded: its values, its
/// bytes of text (keys and scalars), and its levels of lists and mappings.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Size {
    nodes: usize,
    text: usize,
    depth: usize,
}

enum Items {
    Seq(Vec<Node>),
    Map {
        entries: Vec<(Spanned<String>, Node)>,
        /// Line of each key so far, to find a duplicate without a scan.
        lines: HashMap<String, u32>,
        /// A key whose value has not come yet.
        key: Option<Node>,
        /// The values of a merge key (`<<`), merged in when the mapping
        /// ends.
        merges: Vec<Node>,
    },
}

struct Frame {
    pos: Pos,
    anchor: usize,
    size: Size,
    items: Items,
}

/// A limit was reached and reported; the tree is not built further.
struct Stop;

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, (Node, Size)>,
    /// What the aliases so far stand for.
    expanded: Size,
    docs: Vec<Node>,
    errors: Diagnostics,
}

impl Builder {
    fn event(&mut self, ev: Event, mark: Marker) -> Result<(), Stop> {
        let pos = pos_of(&mark);
        match ev {
            Event::Scalar(text, style, anchor, _tag) => {
                let size = Size {
                    nodes: 1,
                    text: text.len(),
                    depth: 0,
                };
                let value = if style == TScalarStyle::Plain {
                    resolve_plain(&text)
                } else {
                    Value::Str(text)
                };
                self.finish(Spanned { pos, value }, size, anchor);
            }
            Event::SequenceStart(anchor, _) => self.open(pos, anchor, Items::Seq(Vec::new()))?,
            Event::MappingStart(anchor, _) => self.open(
                pos,
                anchor,
                Items::Map {
                    entries: Vec::new(),
                    lines: HashMap::new(),
                    key: None,
                    merges: Vec::new(),
                },
            )?,
            Event::SequenceEnd | Event::MappingEnd => self.close(),
            Event::Alias(id) => self.alias(id, pos)?,
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
        Ok(())
    }

    fn open(&mut self, pos: Pos, anchor: usize, items: Items) -> Result<(), Stop> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(self.too_deep(pos));
        }
        self.stack.push(Frame {
            pos,
            anchor,
            size: Size {
                nodes: 1,
                text: 0,
                depth: 1,
            },
            items,
        });
        Ok(())
    }

    fn close(&mut self) {
        let Some(frame) = self.stack.pop() else {
            return;
        };
        let node = match frame.items {
            Items::Seq(items) => Spanned {
                pos: frame.pos,
                value: Value::Seq(items.into()),
            },
            // The start marker of a block mapping sits at its first value;
            // users expect the first key.
            Items::Map {
                mut entries,
                mut lines,
                merges,
                ..
            } => {
                self.merge(&mut entries, &mut lines, merges);
                Spanned {
                    pos: entries
                        .first()
                        .map_or(frame.pos, |(k, _)| k.pos.min(frame.pos)),
                    value: Value::Map(entries.into()),
                }
            }
        };
        self.finish(node, frame.size, frame.anchor);
    }

    /// The merge key of YAML 1.1 (`<<: *common`, or a list of aliases),
    /// which YAML 1.2 dropped but Docker Compose, GitLab CI and most users
    /// of anchors expect: the keys of the merged mappings that the mapping
    /// does not give itself, the earlier of several mappings winning. The
    /// merged entries keep their positions, so an error in one points at
    /// the anchor's text.
    fn merge(
        &mut self,
        entries: &mut Vec<(Spanned<String>, Node)>,
        lines: &mut HashMap<String, u32>,
        merges: Vec<Node>,
    ) {
        let mut sources = Vec::new();
        for m in merges {
            match m.value {
                Value::Map(_) => sources.push(m),
                Value::Seq(items) if items.iter().all(|i| matches!(i.value, Value::Map(_))) => {
                    sources.extend(items.iter().cloned())
                }
                other => self.errors.push(
                    Diagnostic::new(
                        m.pos,
                        format!(
                            "a merge key (<<) takes a mapping or a list of mappings, found {}",
                            other.kind()
                        ),
                    )
                    .hint("for example `<<: *common`"),
                ),
            }
        }
        for source in sources {
            let Value::Map(merged) = source.value else {
                continue;
            };
            for (k, v) in merged.iter() {
                if let Entry::Vacant(slot) = lines.entry(k.value.clone()) {
                    slot.insert(k.pos.line);
                    entries.push((k.clone(), v.clone()));
                }
            }
        }
    }

    fn alias(&mut self, id: usize, pos: Pos) -> Result<(), Stop> {
        let Some(&(_, size)) = self.anchors.get(&id) else {
            self.errors
                .push(Diagnostic::new(pos, "alias to an unknown anchor"));
            return Ok(());
        };
        if self.expanded.nodes + size.nodes > MAX_ALIAS_NODES {
            return Err(self.too_big(pos, &format!("{MAX_ALIAS_NODES} values")));
        }
        if self.expanded.text + size.text > MAX_ALIAS_TEXT {
            return Err(self.too_big(pos, &format!("{} KiB of text", MAX_ALIAS_TEXT >> 10)));
        }
        if self.stack.len() + size.depth > MAX_DEPTH {
            return Err(self.too_deep(pos));
        }
        self.expanded.nodes += size.nodes;
        self.expanded.text += size.text;
        let mut node = self.anchors[&id].0.clone();
        node.pos = pos;
        self.finish(node, size, 0);
        Ok(())
    }

    fn too_deep(&mut self, pos: Pos) -> Stop {
        self.errors.push(too_deep(pos));
        Stop
    }

    fn too_big(&mut self, pos: Pos, limit: &str) -> Stop {
        self.errors.push(
            Diagnostic::new(
                pos,
                format!("aliases expand to more than {limit}; expansion stops at this one"),
            )
            .hint("an alias repeats its anchor's whole value, so aliases of aliases grow exponentially"),
        );
        Stop
    }

    fn finish(&mut self, node: Node, size: Size, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, (node.clone(), size));
        }
        let Some(parent) = self.stack.last_mut() else {
            self.docs.push(node);
            return;
        };
        parent.size.nodes += size.nodes;
        parent.size.text += size.text;
        parent.size.depth = parent.size.depth.max(size.depth + 1);
        match &mut parent.items {
            Items::Seq(items) => items.push(node),
            Items::Map {
                entries,
                lines,
                key,
                merges,
            } => {
                let Some(key) = key.take() else {
                    *key = Some(node);
                    return;
                };
                if key.value == Value::Str("<<".into()) {
                    merges.push(node);
                    return;
                }
                let Some(text) = key.value.as_text() else {
                    self.errors.push(Diagnostic::new(
                        key.pos,
                        format!("a key must be text, not {}", key.value.kind()),
                    ));
                    return;
                };
                match lines.entry(text) {
                    Entry::Occupied(first) => self.errors.push(
                        Diagnostic::new(key.pos, format!("duplicate key \"{}\"", first.key()))
                            .hint(format!("first given at line {}", first.get())),
                    ),
                    Entry::Vacant(slot) => {
                        let value = slot.key().clone();
                        slot.insert(key.pos.line);
                        entries.push((
                            Spanned {
                                pos: key.pos,
                                value,
                            },
                            node,
                        ));
                    }
                }
            }
        }
    }
}

fn syntax_error(e: &ScanError) -> Diagnostic {
    let m = e.marker();
    let pos = Pos {
        line: (m.line() as u32).max(1),
        col: m.col() as u32 + 1,
    };
    // The scanner looks ahead up to 1024 characters on a line, so on
    // `[[[[...` its own limit of 255 levels can come before ours.
    if e.info() == "recursion limit exceeded" {
        return too_deep(pos);
    }
    Diagnostic::new(pos, format!("YAML syntax error: {}", e.info()))
}

fn too_deep(pos: Pos) -> Diagnostic {
    Diagnostic::new(
        pos,
        format!("lists and mappings nest more than {MAX_DEPTH} levels deep here"),
    )
}

/// Parses one YAML document. Syntax errors come back with their position;
/// duplicate keys are reported too (YAML forbids them, and silently keeping
/// the last one would hide a rule the user thinks is there).
pub fn parse(text: &str) -> Result<Node, Vec<Diagnostic>> {
    // A byte order mark may open the stream (YAML 1.2, 5.2). Editors show no
    // column for it, so positions are counted after it.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    loop {
        match parser.next_token() {
            Ok((Event::StreamEnd, _)) => break,
            Ok((ev, mark)) => {
                if builder.event(ev, mark).is_err() {
                    return Err(builder.errors.into_vec());
                }
            }
            Err(e) => return Err(vec![syntax_error(&e)]),
        }
    }
    if builder.docs.len() > 1 {
        let pos = builder.docs[1].pos;
        builder.errors.push(Diagnostic::new(
            pos,
            "the file holds more than one YAML document; only one is read",
        ));
    }
    if !builder.errors.is_empty() {
        return Err(builder.errors.into_vec());
    }
    match builder.docs.into_iter().next() {
        Some(doc) if doc.value != Value::Null => Ok(doc),
        _ => Err(vec![
            Diagnostic::new(Pos { line: 1, col: 1 }, "the file is empty")
                .hint("start with `version: 1`, then `accounts:` and `rules:`"),
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: u32, col: u32) -> Pos {
        Pos { line, col }
    }

    fn errors(text: &str) -> Vec<String> {
        parse(text)
            .err()
            .unwrap_or_default()
            .iter()
            .map(|d| d.to_string())
            .collect()
    }

    #[test]
    fn positions_are_one_based_line_and_column() {
        let doc = parse("a: 1\nb:\n  - x\n  - 'y'\n").unwrap();
        let Value::Map(entries) = &doc.value else {
            panic!()
        };
        assert_eq!(entries[0].0.pos, p(1, 1));
        assert_eq!(entries[0].1.pos, p(1, 4));
        assert_eq!(entries[1].0.pos, p(2, 1));
        let Value::Seq(items) = &entries[1].1.value else {
            panic!()
        };
        assert_eq!(items[0].pos, p(3, 5));
        assert_eq!(
            items[1],
            Spanned {
                pos: p(4, 5),
                value: Value::Str("y".into())
            }
        );
    }

    #[test]
    fn a_byte_order_mark_is_skipped_and_takes_no_column() {
        let doc = parse("\u{feff}a: 1\nb: 2\n").unwrap();
        let Value::Map(entries) = &doc.value else {
            panic!()
        };
        assert_eq!(entries[0].0.value, "a");
        assert_eq!(entries[0].0.pos, p(1, 1));
        assert_eq!(entries[0].1.pos, p(1, 4));
        // Only at the start: anywhere else it is text.
        assert!(parse("a: \u{feff}x\n").is_ok());
    }

    #[test]
    fn plain_scalars_resolve_like_yaml_core_schema() {
        let cases = [
            ("", Value::Null),
            ("~", Value::Null),
            ("true", Value::Bool(true)),
            ("False", Value::Bool(false)),
            ("42", Value::Int(42)),
            ("-7", Value::Int(-7)),
            ("0042", Value::Str("0042".into())),
            ("1.5MB", Value::Str("1.5MB".into())),
            ("yes", Value::Str("yes".into())),
            (
                "99999999999999999999",
                Value::Str("99999999999999999999".into()),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(resolve_plain(text), want, "{text:?}");
        }
    }

    #[test]
    fn merge_keys_add_what_the_mapping_does_not_give_itself() {
        /// `key=value` pairs of the mapping under `m`, in order.
        fn pairs(text: &str) -> Vec<String> {
            let doc = parse(text).unwrap();
            let Value::Map(top) = &doc.value else {
                panic!()
            };
            let (_, m) = top.iter().find(|(k, _)| k.value == "m").unwrap();
            let Value::Map(entries) = &m.value else {
                panic!()
            };
            entries
                .iter()
                .map(|(k, v)| format!("{}={}", k.value, v.value.as_text().unwrap_or_default()))
                .collect()
        }
        let cases = [
            (
                "a: &a {x: 1, y: 2}\nm: {<<: *a, z: 3}\n",
                vec!["z=3", "x=1", "y=2"],
            ),
            // The mapping's own key wins, before or after the merge.
            (
                "a: &a {x: 1, y: 2}\nm: {y: 9, <<: *a}\n",
                vec!["y=9", "x=1"],
            ),
            (
                "a: &a {x: 1, y: 2}\nm: {<<: *a, y: 9}\n",
                vec!["y=9", "x=1"],
            ),
            // Of several, the earlier wins.
            (
                "a: &a {x: 1}\nb: &b {x: 2, w: 3}\nm: {<<: [*a, *b]}\n",
                vec!["x=1", "w=3"],
            ),
        ];
        for (text, want) in cases {
            assert_eq!(pairs(text), want, "{text}");
        }
        assert_eq!(
            errors("a: &a 5\nm: {<<: *a}\n"),
            [
                "2:9: a merge key (<<) takes a mapping or a list of mappings, found a number (for example `<<: *common`)"
            ]
        );
    }

    #[test]
    fn duplicate_keys_and_syntax_errors_are_reported_with_position() {
        assert_eq!(
            errors("a: 1\nb: 2\na: 3\nb: 4\n"),
            [
                "3:1: duplicate key \"a\" (first given at line 1)",
                "4:1: duplicate key \"b\" (first given at line 2)"
            ]
        );
        // The first one is kept.
        let doc = parse("a: 1\nb: 2\n").unwrap();
        let Value::Map(entries) = &doc.value else {
            panic!()
        };
        assert_eq!(entries.len(), 2);
        let errs = errors("a: [1, 2\n");
        assert!(errs[0].starts_with("2:1: YAML syntax error"), "{errs:?}");
        assert_eq!(
            errors(""),
            ["1:1: the file is empty (start with `version: 1`, then `accounts:` and `rules:`)"]
        );
        assert_eq!(errors("[a]: 1\n"), ["1:1: a key must be text, not a list"]);
        assert_eq!(
            errors("a: 1\n---\nb: 2\n"),
            ["3:1: the file holds more than one YAML document; only one is read"]
        );
    }

    #[test]
    fn aliases_stand_for_the_anchored_value_at_the_alias() {
        let doc = parse("a: &x [1, {b: 2}]\nc: *x\n").unwrap();
        let Value::Map(entries) = &doc.value else {
            panic!()
        };
        assert_eq!(entries[1].1.value, entries[0].1.value);
        assert_eq!(entries[1].1.pos, p(2, 4));
        assert_eq!(
            errors("a: *x\n"),
            ["1:4: YAML syntax error: while parsing node, found unknown anchor"]
        );
    }

    /// `levels` anchors, each a list of nine aliases of the one before.
    fn laughs(levels: usize) -> String {
        let mut text = String::from("l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 1..levels {
            let p = i - 1;
            text.push_str(&format!(
                "l{i}: &l{i} [*l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}]\n"
            ));
        }
        text
    }

    #[test]
    fn alias_expansion_is_bounded() {
        // Five levels expand to about 74,000 values: allowed.
        assert!(parse(&laughs(5)).is_ok());
        // The sixth level passes the limit at its first alias.
        assert_eq!(
            errors(&laughs(30)),
            [
                "6:10: aliases expand to more than 100000 values; expansion stops at this one (an alias repeats its anchor's whole value, so aliases of aliases grow exponentially)"
            ]
        );
        // Text counts too: the 257th alias of 1 KiB.
        let mut text = format!("a: &a {}\nb: [", "x".repeat(1024));
        text.push_str(&"*a, ".repeat(300));
        text.push_str("]\n");
        assert_eq!(
            errors(&text),
            [
                "2:1029: aliases expand to more than 256 KiB of text; expansion stops at this one (an alias repeats its anchor's whole value, so aliases of aliases grow exponentially)"
            ]
        );
    }

    #[test]
    fn nesting_is_bounded_in_flow_and_block_style_and_through_aliases() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
        let flow = format!("{}a{}", "[".repeat(100), "]".repeat(100));
        assert_eq!(
            errors(&flow),
            ["1:65: lists and mappings nest more than 64 levels deep here"]
        );
        // The scanner stops at its own limit first, on a long line of them.
        assert_eq!(
            errors(&"[".repeat(100_000)),
            ["1:256: lists and mappings nest more than 64 levels deep here"]
        );
        // Block style has no limit in the YAML scanner, and `Parser::load`
        // would recurse once per level.
        let block = "- ".repeat(500_000);
        assert_eq!(
            errors(&block),
            ["1:129: lists and mappings nest more than 64 levels deep here"]
        );
        // 40 levels, copied into 40 levels.
        let half = format!("{}{}", "[".repeat(40), "]".repeat(40));
        let text = format!("a: &a {half}\nb: {}*a{}\n", "[".repeat(39), "]".repeat(39));
        assert_eq!(
            errors(&text),
            ["2:43: lists and mappings nest more than 64 levels deep here"]
        );
    }
}
