//! Typed reading of the positioned YAML tree (`yaml`), for `validate`: the
//! keys of a mapping, with unknown ones reported ("did you mean"), and a
//! scalar as text, boolean, port or one of a few words. Every problem becomes
//! a [`Diagnostic`] at the value and the caller goes on with the next key, so
//! that one bad value never hides the problems of the others.

use super::diagnostic::{Diagnostic, Diagnostics, close_match, quoted};
use super::yaml::{Node, Spanned, Value};

/// The entries of a mapping, read by key.
pub struct Fields<'a> {
    node: &'a Node,
    entries: &'a [(Spanned<String>, Node)],
}

/// The entries of `node`, which must be a mapping whose keys are all in
/// `known`: each other key is reported (with the closest known one) and
/// left out. `None`, reported, when `node` is not a mapping.
pub fn fields<'a>(node: &'a Node, known: &[&str], diags: &mut Diagnostics) -> Option<Fields<'a>> {
    let Value::Map(entries) = &node.value else {
        diags.push(Diagnostic::new(
            node.pos,
            format!("expected a mapping, found {}", node.value.kind()),
        ));
        return None;
    };
    for (key, _) in entries.iter() {
        if !known.contains(&key.value.as_str()) {
            let hint = diags.suggest(key.pos, &key.value, known);
            diags.push(
                Diagnostic::new(key.pos, format!("unknown key \"{}\"", key.value)).hint(hint),
            );
        }
    }
    Some(Fields { node, entries })
}

impl<'a> Fields<'a> {
    fn entry(&self, key: &str) -> Option<&'a Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.value == key)
            .map(|(_, v)| v)
    }

    /// The value of an optional key. A key written without a value (`port:`)
    /// counts as left out, so that a commented-out value means the default.
    pub fn get(&self, key: &str) -> Option<&'a Node> {
        self.entry(key).filter(|v| v.value != Value::Null)
    }

    /// The value of a key that must be given; reported at the mapping when
    /// it is not.
    pub fn require(&self, key: &str, diags: &mut Diagnostics) -> Option<&'a Node> {
        let found = self.entry(key);
        if found.is_none() {
            diags.push(Diagnostic::new(
                self.node.pos,
                format!("missing key \"{key}\""),
            ));
        }
        found
    }
}

/// A scalar as text; numbers and booleans as written (`username: 1234`).
pub fn text(node: &Node, diags: &mut Diagnostics) -> Option<Spanned<String>> {
    match node.value.as_text() {
        Some(value) => Some(Spanned {
            pos: node.pos,
            value,
        }),
        None => {
            diags.push(Diagnostic::new(
                node.pos,
                format!("expected text, found {}", node.value.kind()),
            ));
            None
        }
    }
}

/// `true` or `false`.
pub fn boolean(node: &Node, diags: &mut Diagnostics) -> Option<bool> {
    match node.value {
        Value::Bool(b) => Some(b),
        _ => {
            diags.push(Diagnostic::new(
                node.pos,
                format!("expected true or false, found {}", node.value.kind()),
            ));
            None
        }
    }
}

/// A TCP port, 1 to 65535.
pub fn port(node: &Node, diags: &mut Diagnostics) -> Option<u16> {
    let problem = match &node.value {
        Value::Int(0) => "port 0 is not a port".to_string(),
        Value::Int(n) => match u16::try_from(*n) {
            Ok(port) => return Some(port),
            Err(_) => format!("port {n} is out of range (1-65535)"),
        },
        Value::Str(s) => format!("expected a port number (1-65535), found {}", quoted(s)),
        other => format!("expected a port number (1-65535), found {}", other.kind()),
    };
    diags.push(Diagnostic::new(node.pos, problem));
    None
}

/// One of `words`, written exactly; `key` names the setting in messages.
pub fn word<T: Copy>(
    node: &Node,
    key: &str,
    words: &[(&str, T)],
    diags: &mut Diagnostics,
) -> Option<T> {
    let names: Vec<&str> = words.iter().map(|(w, _)| *w).collect();
    let Some(given) = node.value.as_text() else {
        diags.push(Diagnostic::new(
            node.pos,
            format!(
                "{key} takes {}, found {}",
                either(&names),
                node.value.kind()
            ),
        ));
        return None;
    };
    if let Some((_, value)) = words.iter().find(|(w, _)| *w == given) {
        return Some(*value);
    }
    let hint = match close_match(&given, &names) {
        Some(c) => format!("did you mean \"{c}\"?"),
        None => format!("expected {}", either(&names)),
    };
    diags.push(
        Diagnostic::new(
            node.pos,
            format!("unknown value {} for {key}", quoted(&given)),
        )
        .hint(hint),
    );
    None
}

/// `a`, `a or b`, `a, b or c`.
pub fn either(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::yaml::parse;

    /// The value of `key: VALUE`, parsed.
    fn node(value: &str) -> Node {
        let doc = parse(&format!("key: {value}\n")).unwrap();
        let Value::Map(entries) = doc.value else {
            panic!()
        };
        entries[0].1.clone()
    }

    fn shown(diags: Diagnostics) -> Vec<String> {
        diags.into_vec().iter().map(|d| d.to_string()).collect()
    }

    #[test]
    fn fields_reports_every_unknown_key_and_reads_the_rest() {
        let doc = parse("nmae: x\nname: y\nport: 10\nprot: 3\nempty:\n").unwrap();
        let mut diags = Diagnostics::default();
        let f = fields(&doc, &["name", "port", "empty", "on"], &mut diags).unwrap();
        assert_eq!(
            shown(diags),
            [
                "1:1: unknown key \"nmae\" (did you mean \"name\"?)",
                "4:1: unknown key \"prot\" (did you mean \"port\"?)"
            ]
        );
        assert_eq!(f.get("name").unwrap().value, Value::Str("y".into()));
        assert_eq!(f.get("name").unwrap().pos.col, 7);
        assert_eq!(f.get("on"), None);
        // Written without a value: left out for `get`, there for `require`.
        assert_eq!(f.get("empty"), None);
        let mut diags = Diagnostics::default();
        assert_eq!(f.require("empty", &mut diags).unwrap().value, Value::Null);
        assert_eq!(f.require("on", &mut diags), None);
        assert_eq!(shown(diags), ["1:1: missing key \"on\""]);
    }

    #[test]
    fn fields_of_what_is_not_a_mapping() {
        let cases = [
            ("[a]", "1:6: expected a mapping, found a list"),
            ("x", "1:6: expected a mapping, found a string"),
            ("", "2:1: expected a mapping, found nothing"),
            ("3", "1:6: expected a mapping, found a number"),
        ];
        for (value, want) in cases {
            let mut diags = Diagnostics::default();
            assert!(
                fields(&node(value), &["a"], &mut diags).is_none(),
                "{value}"
            );
            assert_eq!(shown(diags), [want], "{value}");
        }
    }

    /// Each reader on each kind of value: what it gives, or what it says.
    #[test]
    fn readers() {
        type Reader = fn(&Node, &mut Diagnostics) -> Option<String>;
        let text_of: Reader = |n, d| text(n, d).map(|s| s.value);
        let bool_of: Reader = |n, d| boolean(n, d).map(|b| b.to_string());
        let port_of: Reader = |n, d| port(n, d).map(|p| p.to_string());
        let tls_of: Reader = |n, d| {
            word(
                n,
                "tls",
                &[("implicit", 1), ("starttls", 2), ("none", 3)],
                d,
            )
            .map(|w| w.to_string())
        };
        let cases: &[(Reader, &str, Result<&str, &str>)] = &[
            (text_of, "imap.example.org", Ok("imap.example.org")),
            (text_of, "'quoted'", Ok("quoted")),
            (text_of, "1234", Ok("1234")),
            (text_of, "true", Ok("true")),
            (text_of, "[a]", Err("1:6: expected text, found a list")),
            (
                text_of,
                "{a: b}",
                Err("1:6: expected text, found a mapping"),
            ),
            (text_of, "", Err("2:1: expected text, found nothing")),
            (bool_of, "true", Ok("true")),
            (bool_of, "False", Ok("false")),
            (
                bool_of,
                "yes",
                Err("1:6: expected true or false, found a string"),
            ),
            (
                bool_of,
                "1",
                Err("1:6: expected true or false, found a number"),
            ),
            (port_of, "993", Ok("993")),
            (port_of, "1", Ok("1")),
            (port_of, "65535", Ok("65535")),
            (port_of, "0", Err("1:6: port 0 is not a port")),
            (
                port_of,
                "65536",
                Err("1:6: port 65536 is out of range (1-65535)"),
            ),
            (
                port_of,
                "99999",
                Err("1:6: port 99999 is out of range (1-65535)"),
            ),
            (port_of, "-5", Err("1:6: port -5 is out of range (1-65535)")),
            (
                port_of,
                "imap",
                Err("1:6: expected a port number (1-65535), found \"imap\""),
            ),
            (
                port_of,
                "\"993\"",
                Err("1:6: expected a port number (1-65535), found \"993\""),
            ),
            (
                port_of,
                "true",
                Err("1:6: expected a port number (1-65535), found a boolean"),
            ),
            (
                port_of,
                "[993]",
                Err("1:6: expected a port number (1-65535), found a list"),
            ),
            (tls_of, "implicit", Ok("1")),
            (tls_of, "none", Ok("3")),
            (
                tls_of,
                "maybe",
                Err("1:6: unknown value \"maybe\" for tls (expected implicit, starttls or none)"),
            ),
            (
                tls_of,
                "starttsl",
                Err("1:6: unknown value \"starttsl\" for tls (did you mean \"starttls\"?)"),
            ),
            (
                tls_of,
                "STARTTLS",
                Err("1:6: unknown value \"STARTTLS\" for tls (did you mean \"starttls\"?)"),
            ),
            (
                tls_of,
                "3",
                Err("1:6: unknown value \"3\" for tls (expected implicit, starttls or none)"),
            ),
            (
                tls_of,
                "[none]",
                Err("1:6: tls takes implicit, starttls or none, found a list"),
            ),
        ];
        for (read, value, want) in cases {
            let mut diags = Diagnostics::default();
            let got = read(&node(value), &mut diags);
            match want {
                Ok(v) => {
                    assert_eq!(got.as_deref(), Some(*v), "{value}");
                    assert_eq!(shown(diags), Vec::<String>::new(), "{value}");
                }
                Err(e) => {
                    assert_eq!(got, None, "{value}");
                    assert_eq!(shown(diags), [*e], "{value}");
                }
            }
        }
    }

    #[test]
    fn either_joins_the_last_with_or() {
        assert_eq!(either(&[]), "");
        assert_eq!(either(&["a"]), "a");
        assert_eq!(either(&["a", "b"]), "a or b");
        assert_eq!(either(&["a", "b", "c"]), "a, b or c");
    }
}
