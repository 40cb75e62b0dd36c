//! YAML with positions: builds a tree of [`Node`]s, each with its line and
//! column, from yaml-rust2's marked events. First step of `config`; `read`
//! and `validate` walk the tree.
//!
//! Why a tree of our own rather than serde straight into structs: serde stops
//! at the first error, and later checks (a bad regex, a duration) would have
//! no position to point at. Here every node keeps its position, so all the
//! problems of a file can be reported at once.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::diagnostic::{Diagnostic, Pos};

/// A value together with where it starts in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub pos: Pos,
    pub value: T,
}

/// A YAML value. Plain scalars resolve as YAML 1.2's core schema does for the
/// types the configuration uses (null, booleans, decimal integers); everything
/// else stays text, so `0042` or `1.5MB` keep their spelling.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Spanned<String>, Node)>),
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

enum Frame {
    Seq(Pos, usize, Vec<Node>),
    Map(Pos, usize, Vec<(Spanned<String>, Node)>, Option<Node>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    docs: Vec<Node>,
    errors: Vec<Diagnostic>,
}

impl Builder {
    fn finish(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq(_, _, items)) => items.push(node),
            Some(Frame::Map(_, _, entries, pending)) => match pending.take() {
                None => *pending = Some(node),
                Some(key) => {
                    let key = match key.value.as_text() {
                        Some(text) => Spanned {
                            pos: key.pos,
                            value: text,
                        },
                        None => {
                            self.errors.push(Diagnostic::new(
                                key.pos,
                                format!("a key must be text, not {}", key.value.kind()),
                            ));
                            return;
                        }
                    };
                    if let Some((first, _)) = entries.iter().find(|(k, _)| k.value == key.value) {
                        self.errors.push(
                            Diagnostic::new(key.pos, format!("duplicate key \"{}\"", key.value))
                                .hint(format!("first given at line {}", first.pos.line)),
                        );
                    } else {
                        entries.push((key, node));
                    }
                }
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let pos = pos_of(&mark);
        match ev {
            Event::Scalar(text, style, anchor, _tag) => {
                let value = if style == TScalarStyle::Plain {
                    resolve_plain(&text)
                } else {
                    Value::Str(text)
                };
                self.finish(Spanned { pos, value }, anchor);
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq(pos, anchor, Vec::new())),
            Event::MappingStart(anchor, _) => {
                self.stack.push(Frame::Map(pos, anchor, Vec::new(), None))
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Frame::Seq(pos, anchor, items)) => (
                        Spanned {
                            pos,
                            value: Value::Seq(items),
                        },
                        anchor,
                    ),
                    // The start marker of a block mapping sits at its first
                    // value; users expect the first key.
                    Some(Frame::Map(pos, anchor, entries, _)) => (
                        Spanned {
                            pos: entries.first().map_or(pos, |(k, _)| k.pos.min(pos)),
                            value: Value::Map(entries),
                        },
                        anchor,
                    ),
                    None => return,
                };
                self.finish(node, anchor);
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(mut node) => {
                    node.pos = pos;
                    self.finish(node, 0);
                }
                None => self
                    .errors
                    .push(Diagnostic::new(pos, "alias to an unknown anchor")),
            },
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

/// Parses one YAML document. Syntax errors come back with their position;
/// duplicate keys are reported too (YAML forbids them, and silently keeping
/// the last one would hide a rule the user thinks is there).
pub fn parse(text: &str) -> Result<Node, Vec<Diagnostic>> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut builder, true) {
        let m = e.marker();
        let pos = Pos {
            line: (m.line() as u32).max(1),
            col: m.col() as u32 + 1,
        };
        return Err(vec![Diagnostic::new(
            pos,
            format!("YAML syntax error: {}", e.info()),
        )]);
    }
    if builder.docs.len() > 1 {
        let pos = builder.docs[1].pos;
        builder.errors.push(Diagnostic::new(
            pos,
            "the file holds more than one YAML document; only one is read",
        ));
    }
    if !builder.errors.is_empty() {
        return Err(builder.errors);
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
        ];
        for (text, want) in cases {
            assert_eq!(resolve_plain(text), want, "{text:?}");
        }
    }

    #[test]
    fn duplicate_keys_and_syntax_errors_are_reported_with_position() {
        let errs = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(errs[0].pos, p(3, 1));
        assert!(errs[0].message.contains("duplicate key \"a\""));
        let errs = parse("a: [1, 2\n").unwrap_err();
        assert!(
            errs[0].message.starts_with("YAML syntax error"),
            "{:?}",
            errs
        );
        assert_eq!(parse("").unwrap_err()[0].message, "the file is empty");
    }

    #[test]
    fn aliases_copy_the_anchored_node() {
        let doc = parse("a: &x [1]\nb: *x\n").unwrap();
        let Value::Map(entries) = &doc.value else {
            panic!()
        };
        assert_eq!(entries[1].1.value, entries[0].1.value);
    }
}
