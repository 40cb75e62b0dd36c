//! YAML with positions: builds a tree from yaml-rust2's marked events and lets
//! serde-derived raw structs deserialize from it. Sits under `config::raw`.
//!
//! Why not `serde_yaml::from_str` straight into the raw structs: it stops at
//! the first error, and later checks (a bad regex, a duration) would have no
//! position to point at. Here every node keeps its line and column, unknown
//! keys are recorded and skipped (so one typo does not hide the next one), and
//! [`Spanned`] lets a raw struct keep the position of any value it holds.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use serde::de::{
    self, DeserializeSeed, Error as _, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};
use serde::{Deserialize, Deserializer};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::diagnostic::{Diagnostic, Pos, suggest};

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

/// Deserializes `T` from a node. Unknown keys of structs are pushed to
/// `diags` and skipped; a hard error (wrong type, missing key) is pushed too
/// and gives `None`, so the caller can go on with the next item.
pub fn from_node<'de, T: Deserialize<'de>>(
    node: &'de Node,
    diags: &mut Vec<Diagnostic>,
) -> Option<T> {
    let sink = RefCell::new(Vec::new());
    let result = T::deserialize(De { node, sink: &sink });
    diags.extend(sink.into_inner());
    match result {
        Ok(v) => Some(v),
        Err(e) => {
            diags.push(e.into_diagnostic(node.pos));
            None
        }
    }
}

/// A deserialization error that picks up the position of the innermost node
/// it passes through.
#[derive(Debug)]
pub struct Error {
    pos: Option<Pos>,
    message: String,
    hint: Option<String>,
}

impl Error {
    fn at(mut self, pos: Pos) -> Self {
        self.pos.get_or_insert(pos);
        self
    }

    fn into_diagnostic(self, fallback: Pos) -> Diagnostic {
        let d = Diagnostic::new(self.pos.unwrap_or(fallback), self.message);
        match self.hint {
            Some(h) => d.hint(h),
            None => d,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error {
            pos: None,
            message: msg.to_string(),
            hint: None,
        }
    }

    fn invalid_type(unexp: de::Unexpected, exp: &dyn de::Expected) -> Self {
        Self::custom(format_args!("expected {exp}, found {}", describe(unexp)))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        Error {
            pos: None,
            message: format!("unknown value \"{variant}\""),
            hint: Some(suggest(variant, expected)),
        }
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        Error {
            pos: None,
            message: format!("unknown key \"{field}\""),
            hint: Some(suggest(field, expected)),
        }
    }

    fn missing_field(field: &'static str) -> Self {
        Self::custom(format_args!("missing key \"{field}\""))
    }
}

fn describe(u: de::Unexpected) -> String {
    match u {
        de::Unexpected::Unit => "nothing".into(),
        de::Unexpected::Map => "a mapping".into(),
        de::Unexpected::Seq => "a list".into(),
        de::Unexpected::Str(s) => format!("\"{s}\""),
        other => other.to_string(),
    }
}

const SPANNED: &str = "$mailwarden::Spanned";
const SPANNED_POS: &str = "$pos";
const SPANNED_VALUE: &str = "$value";

#[derive(Clone, Copy)]
struct De<'de, 's> {
    node: &'de Node,
    sink: &'s RefCell<Vec<Diagnostic>>,
}

impl<'de, 's> De<'de, 's> {
    fn with(self, node: &'de Node) -> Self {
        De { node, ..self }
    }

    fn type_error(&self, expected: &str) -> Error {
        Error::custom(format_args!(
            "expected {expected}, found {}",
            self.node.value.kind()
        ))
        .at(self.node.pos)
    }
}

impl<'de> Deserializer<'de> for De<'de, '_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        let r = match &self.node.value {
            Value::Null => v.visit_unit(),
            Value::Bool(b) => v.visit_bool(*b),
            Value::Int(i) => v.visit_i64(*i),
            Value::Str(s) => v.visit_str(s),
            Value::Seq(items) => v.visit_seq(Seq {
                de: self,
                items: items.iter(),
            }),
            Value::Map(entries) => v.visit_map(Map {
                de: self,
                entries: entries.iter(),
                value: None,
                fields: None,
            }),
        };
        r.map_err(|e| e.at(self.node.pos))
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match &self.node.value {
            Value::Str(s) => v.visit_str(s),
            Value::Int(_) | Value::Bool(_) => {
                v.visit_string(self.node.value.as_text().unwrap_or_default())
            }
            _ => Err(self.type_error("text")),
        }
        .map_err(|e| e.at(self.node.pos))
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_str(v)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_str(v)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self.node.value {
            Value::Bool(b) => v.visit_bool(b).map_err(|e: Error| e.at(self.node.pos)),
            _ => Err(self.type_error("true or false")),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self.node.value {
            Value::Null => v.visit_none(),
            _ => v.visit_some(self),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match &self.node.value {
            Value::Seq(_) => self.deserialize_any(v),
            _ => Err(self.type_error("a list")),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match &self.node.value {
            Value::Map(_) => self.deserialize_any(v),
            _ => Err(self.type_error("a mapping")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        if name == SPANNED {
            return v.visit_map(SpannedAccess::new(self.node.pos, self));
        }
        match &self.node.value {
            Value::Map(entries) => v
                .visit_map(Map {
                    de: self,
                    entries: entries.iter(),
                    value: None,
                    fields: Some(fields),
                })
                .map_err(|e| e.at(self.node.pos)),
            _ => Err(self.type_error("a mapping")),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        match &self.node.value {
            Value::Str(s) => v
                .visit_enum(s.as_str().into_deserializer())
                .map_err(|e: Error| e.at(self.node.pos)),
            _ => Err(self.type_error("one word")),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, Error> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf
        unit unit_struct tuple tuple_struct
    }
}

struct Seq<'de, 's> {
    de: De<'de, 's>,
    items: std::slice::Iter<'de, Node>,
}

impl<'de> SeqAccess<'de> for Seq<'de, '_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.items.next() {
            Some(node) => seed
                .deserialize(self.de.with(node))
                .map(Some)
                .map_err(|e| e.at(node.pos)),
            None => Ok(None),
        }
    }
}

struct Map<'de, 's> {
    de: De<'de, 's>,
    entries: std::slice::Iter<'de, (Spanned<String>, Node)>,
    value: Option<&'de Node>,
    /// For structs: the keys the struct knows. Others are reported and skipped.
    fields: Option<&'static [&'static str]>,
}

impl<'de> MapAccess<'de> for Map<'de, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        for (key, value) in self.entries.by_ref() {
            if let Some(fields) = self.fields
                && !fields.contains(&key.value.as_str())
            {
                let diag = Diagnostic::new(key.pos, format!("unknown key \"{}\"", key.value))
                    .hint(suggest(&key.value, fields));
                self.de.sink.borrow_mut().push(diag);
                continue;
            }
            self.value = Some(value);
            return seed
                .deserialize(KeyDe(key))
                .map(Some)
                .map_err(|e| e.at(key.pos));
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let node = self
            .value
            .take()
            .expect("next_value_seed after next_key_seed");
        seed.deserialize(self.de.with(node))
            .map_err(|e| e.at(node.pos))
    }
}

/// Keys are always text; a `Spanned<String>` key keeps its position.
struct KeyDe<'de>(&'de Spanned<String>);

impl<'de> Deserializer<'de> for KeyDe<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_str(&self.0.value)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        if name == SPANNED {
            return v.visit_map(SpannedAccess::new(self.0.pos, self));
        }
        Err(Error::custom("a key must be text"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

fn encode_pos(p: Pos) -> u64 {
    ((p.line as u64) << 32) | p.col as u64
}

fn decode_pos(v: u64) -> Pos {
    Pos {
        line: (v >> 32) as u32,
        col: v as u32,
    }
}

/// Hands a `Spanned<T>` its position and then its value (read through `D`,
/// a node or a key), as a two-key map.
struct SpannedAccess<D> {
    pos: Pos,
    value: Option<D>,
    state: u8,
}

impl<D> SpannedAccess<D> {
    fn new(pos: Pos, value: D) -> Self {
        SpannedAccess {
            pos,
            value: Some(value),
            state: 0,
        }
    }
}

impl<'de, D: Deserializer<'de, Error = Error>> MapAccess<'de> for SpannedAccess<D> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let key = match self.state {
            0 => SPANNED_POS,
            1 => SPANNED_VALUE,
            _ => return Ok(None),
        };
        seed.deserialize(key.into_deserializer()).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        self.state += 1;
        if self.state == 1 {
            return seed.deserialize(encode_pos(self.pos).into_deserializer());
        }
        match self.value.take() {
            Some(value) => seed.deserialize(value),
            None => Err(Error::custom("a position's value was read twice")),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Spanned<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value with its position")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Spanned<T>, A::Error> {
                let _: Option<de::IgnoredAny> = map.next_key()?;
                let pos = decode_pos(map.next_value()?);
                let _: Option<de::IgnoredAny> = map.next_key()?;
                let value = map.next_value()?;
                Ok(Spanned { pos, value })
            }
        }
        d.deserialize_struct(
            SPANNED,
            &[SPANNED_POS, SPANNED_VALUE],
            V(std::marker::PhantomData),
        )
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_unit<E>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
                Ok(Value::Bool(b))
            }
            fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
                Ok(Value::Int(i))
            }
            fn visit_str<E>(self, s: &str) -> Result<Value, E> {
                Ok(Value::Str(s.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Value::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key()? {
                    entries.push((key, map.next_value()?));
                }
                Ok(Value::Map(entries))
            }
        }
        d.deserialize_any(V)
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

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct S {
        name: Spanned<String>,
        port: Option<u16>,
        on: Option<bool>,
    }

    #[test]
    fn unknown_keys_are_all_reported_and_the_rest_still_parses() {
        let doc = parse("nmae: x\nname: y\nport: 10\nprot: 3\n").unwrap();
        let mut diags = Vec::new();
        let s: S = from_node(&doc, &mut diags).unwrap();
        assert_eq!(s.name.value, "y");
        assert_eq!(s.name.pos, p(2, 7));
        assert_eq!(s.port, Some(10));
        assert_eq!(s.on, None);
        let msgs: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            msgs,
            [
                "1:1: unknown key \"nmae\" (did you mean \"name\"?)",
                "4:1: unknown key \"prot\" (did you mean \"port\"?)"
            ]
        );
    }

    #[test]
    fn type_errors_point_at_the_value() {
        let doc = parse("name: y\nport: big\n").unwrap();
        let mut diags = Vec::new();
        assert!(from_node::<S>(&doc, &mut diags).is_none());
        assert_eq!(diags[0].pos, p(2, 7));
        assert!(
            diags[0].message.contains("expected u16"),
            "{}",
            diags[0].message
        );
        let doc = parse("name: y\non: 3\n").unwrap();
        let mut diags = Vec::new();
        assert!(from_node::<S>(&doc, &mut diags).is_none());
        assert_eq!(
            diags[0].to_string(),
            "2:5: expected true or false, found a number"
        );
        let doc = parse("port: 3\n").unwrap();
        let mut diags = Vec::new();
        assert!(from_node::<S>(&doc, &mut diags).is_none());
        assert_eq!(diags[0].to_string(), "1:1: missing key \"name\"");
    }
}
