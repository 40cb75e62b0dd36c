//! `mailwarden import sieve`: a Sieve script (RFC 5228) becomes mailwarden
//! rules. Pure; `commands::import` reads the file. The part of Sieve that
//! maps: `header`, `address`, `exists`, `size`, `body` and `duplicate`
//! tests with `:is`, `:contains`, `:matches` and `:regex` (and `:value`
//! with `i;ascii-numeric`), `allof`/`anyof`/`not`, `if`/`elsif`/`else`,
//! `fileinto` (`:copy`, `:flags`, `:specialuse`), `keep`, `discard`,
//! `stop`, `addflag`/`setflag`/`removeflag`, and match captures (`${1}`,
//! also through `set :lower`/`:upper`) in folder names. Everything else is
//! reported with its line.
//!
//! The parser is our own, for the whole RFC 5228 grammar (the translation
//! decides what it understands). The crates there are do not fit:
//! `sieve-rs` (Stalwart) is AGPL-3.0, which mailwarden's MIT/Apache
//! licence cannot take in, and it compiles a script into a private
//! instruction list (jumps, no line numbers) with no public syntax tree;
//! `sieve-parser` is AGPL too; `mailrs-sieve-core` has a tree but no
//! positions (errors name a token index), and the untranslated parts must
//! be reported by line.

use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use super::{
    Act, Cond, Import, Item, Layout, ParseError, Rule, Source, Untranslated, Y, render, shorten,
    size_value,
};

/// How deep blocks and tests may nest: far beyond real scripts, and
/// bounded so that a hostile file cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

/// Translates `text`, a Sieve script from the file `name`.
pub fn import(text: &str, name: &str, layout: Layout) -> Result<Import, ParseError> {
    let tokens = lex(text)?;
    let commands = Parser { tokens, pos: 0 }.script()?;
    check_structure(&commands)?;
    let mut t = Translator::new(&commands);
    t.block(&commands, &Path::default());
    let source = Source {
        kind: "Sieve script",
        name,
        command: "mailwarden import sieve",
    };
    let yaml = render(&source, layout, &t.notes(), &t.items, t.untranslated.len());
    Ok(Import {
        yaml,
        untranslated: t.untranslated,
    })
}

// ---------------------------------------------------------------- lexer

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Tag(String),
    Num(u64),
    Str(String),
    Punct(char),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
    col: usize,
    /// The `#` comment lines just before this token.
    comment: Vec<String>,
}

fn err(line: usize, col: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        col,
        message: message.into(),
    }
}

fn lex(text: &str) -> Result<Vec<Token>, ParseError> {
    let chars: Vec<char> = text
        .strip_prefix('\u{feff}')
        .unwrap_or(text)
        .chars()
        .collect();
    let mut tokens = Vec::new();
    let (mut i, mut line, mut col) = (0, 1, 1);
    let mut comment: Vec<String> = Vec::new();
    // Advances to character `to`, counting lines.
    let step = |i: &mut usize, line: &mut usize, col: &mut usize, to: usize| {
        while *i < to {
            if chars[*i] == '\n' {
                *line += 1;
                *col = 1;
            } else {
                *col += 1;
            }
            *i += 1;
        }
    };
    while i < chars.len() {
        let c = chars[i];
        let (tl, tc) = (line, col);
        match c {
            ' ' | '\t' | '\r' | '\n' => {
                // A blank line ends a comment block: it belongs to nothing.
                if c == '\n' && chars.get(i + 1) == Some(&'\n') {
                    comment.clear();
                }
                {
                    let to = i + 1;
                    step(&mut i, &mut line, &mut col, to);
                }
            }
            '#' => {
                let start = i + 1;
                let mut end = start;
                while end < chars.len() && chars[end] != '\n' {
                    end += 1;
                }
                comment.push(chars[start..end].iter().collect());
                step(&mut i, &mut line, &mut col, end);
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                let mut j = i + 2;
                loop {
                    if j + 1 >= chars.len() {
                        return Err(err(tl, tc, "this comment is never closed (`*/`)"));
                    }
                    if chars[j] == '*' && chars[j + 1] == '/' {
                        break;
                    }
                    j += 1;
                }
                let inner: String = chars[i + 2..j].iter().collect();
                comment.extend(inner.lines().map(str::to_string));
                step(&mut i, &mut line, &mut col, j + 2);
            }
            '"' => {
                let mut s = String::new();
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => return Err(err(tl, tc, "this string is never closed (`\"`)")),
                        Some('"') => break,
                        Some('\\') => {
                            if let Some(&n) = chars.get(j + 1) {
                                s.push(n);
                            }
                            j += 2;
                        }
                        Some(&ch) => {
                            s.push(ch);
                            j += 1;
                        }
                    }
                }
                step(&mut i, &mut line, &mut col, j + 1);
                tokens.push(Token {
                    tok: Tok::Str(s.replace("\r\n", "\n")),
                    line: tl,
                    col: tc,
                    comment: std::mem::take(&mut comment),
                });
            }
            ':' => {
                let mut j = i + 1;
                while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                if j == i + 1 || chars[i + 1].is_ascii_digit() {
                    return Err(err(tl, tc, "a tag is `:` and a name, such as `:contains`"));
                }
                let name: String = chars[i + 1..j].iter().collect();
                step(&mut i, &mut line, &mut col, j);
                tokens.push(Token {
                    tok: Tok::Tag(name.to_ascii_lowercase()),
                    line: tl,
                    col: tc,
                    comment: std::mem::take(&mut comment),
                });
            }
            '0'..='9' => {
                let mut j = i;
                let mut n: u64 = 0;
                while j < chars.len() && chars[j].is_ascii_digit() {
                    n = n
                        .checked_mul(10)
                        .and_then(|n| n.checked_add(u64::from(chars[j] as u8 - b'0')))
                        .ok_or_else(|| err(tl, tc, "this number is too large"))?;
                    j += 1;
                }
                let shift = match chars.get(j).map(|c| c.to_ascii_uppercase()) {
                    Some('K') => 10,
                    Some('M') => 20,
                    Some('G') => 30,
                    _ => 0,
                };
                if shift > 0 {
                    j += 1;
                    n = n
                        .checked_mul(1 << shift)
                        .ok_or_else(|| err(tl, tc, "this number is too large"))?;
                }
                step(&mut i, &mut line, &mut col, j);
                tokens.push(Token {
                    tok: Tok::Num(n),
                    line: tl,
                    col: tc,
                    comment: std::mem::take(&mut comment),
                });
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut j = i;
                while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                let word: String = chars[i..j].iter().collect::<String>().to_ascii_lowercase();
                if word == "text" && chars.get(j) == Some(&':') {
                    // A multi-line string: to the end of this line (spaces
                    // and a comment allowed), then lines up to a lone ".".
                    let mut k = j + 1;
                    while k < chars.len() && matches!(chars[k], ' ' | '\t') {
                        k += 1;
                    }
                    if chars.get(k) == Some(&'#') {
                        while k < chars.len() && chars[k] != '\n' {
                            k += 1;
                        }
                    }
                    if chars.get(k) == Some(&'\r') {
                        k += 1;
                    }
                    if chars.get(k) != Some(&'\n') {
                        return Err(err(tl, tc, "`text:` must end its line"));
                    }
                    k += 1;
                    let mut body = String::new();
                    loop {
                        if k >= chars.len() {
                            return Err(err(tl, tc, "this `text:` is never ended by a line \".\""));
                        }
                        let mut e = k;
                        while e < chars.len() && chars[e] != '\n' {
                            e += 1;
                        }
                        let mut l: String = chars[k..e].iter().collect();
                        if l.ends_with('\r') {
                            l.pop();
                        }
                        k = (e + 1).min(chars.len());
                        if l == "." {
                            break;
                        }
                        body.push_str(
                            l.strip_prefix('.')
                                .filter(|_| l.starts_with(".."))
                                .unwrap_or(&l),
                        );
                        body.push('\n');
                    }
                    step(&mut i, &mut line, &mut col, k);
                    tokens.push(Token {
                        tok: Tok::Str(body),
                        line: tl,
                        col: tc,
                        comment: std::mem::take(&mut comment),
                    });
                } else {
                    step(&mut i, &mut line, &mut col, j);
                    tokens.push(Token {
                        tok: Tok::Ident(word),
                        line: tl,
                        col: tc,
                        comment: std::mem::take(&mut comment),
                    });
                }
            }
            '[' | ']' | '(' | ')' | '{' | '}' | ',' | ';' => {
                {
                    let to = i + 1;
                    step(&mut i, &mut line, &mut col, to);
                }
                tokens.push(Token {
                    tok: Tok::Punct(c),
                    line: tl,
                    col: tc,
                    comment: std::mem::take(&mut comment),
                });
            }
            other => {
                return Err(err(
                    tl,
                    tc,
                    format!(
                        "{} cannot start anything in Sieve (is this a Sieve script?)",
                        shown_char(other)
                    ),
                ));
            }
        }
    }
    Ok(tokens)
}

fn shown_char(c: char) -> String {
    if c.is_control() || crate::display::is_invisible(c) {
        format!("U+{:04X}", c as u32)
    } else {
        format!("\"{c}\"")
    }
}

// ---------------------------------------------------------------- parser

#[derive(Debug, Clone, PartialEq, Eq)]
enum Arg {
    Tag(String),
    Num(u64),
    /// A string, or a string list (`[...]`).
    Strs(Vec<String>, bool),
}

#[derive(Debug, Clone)]
struct Test {
    name: String,
    line: usize,
    args: Vec<Arg>,
    tests: Vec<Test>,
}

#[derive(Debug, Clone)]
struct Command {
    name: String,
    line: usize,
    col: usize,
    args: Vec<Arg>,
    tests: Vec<Test>,
    block: Option<Vec<Command>>,
    /// The line of the closing `}` (or of the command).
    end_line: usize,
    comment: Vec<String>,
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn at_end_error(&self, what: &str) -> ParseError {
        let (line, col) = self.tokens.last().map_or((1, 1), |t| (t.line, t.col));
        err(
            line,
            col,
            format!("the script ends where {what} was expected"),
        )
    }

    fn script(mut self) -> Result<Vec<Command>, ParseError> {
        let commands = self.commands(0)?;
        if let Some(t) = self.peek() {
            return Err(err(
                t.line,
                t.col,
                format!("{} closes nothing", shown(&t.tok)),
            ));
        }
        Ok(commands)
    }

    fn commands(&mut self, depth: usize) -> Result<Vec<Command>, ParseError> {
        if depth > MAX_DEPTH {
            let t = self.peek().expect("inside a block");
            return Err(err(t.line, t.col, "blocks nest too deeply"));
        }
        let mut out = Vec::new();
        while let Some(t) = self.peek() {
            if t.tok == Tok::Punct('}') {
                break;
            }
            out.push(self.command(depth)?);
        }
        Ok(out)
    }

    fn command(&mut self, depth: usize) -> Result<Command, ParseError> {
        let t = self.peek().cloned().expect("a token");
        let Tok::Ident(name) = t.tok else {
            return Err(err(
                t.line,
                t.col,
                format!(
                    "expected a command such as `if` or `fileinto`, found {}",
                    shown(&t.tok)
                ),
            ));
        };
        self.pos += 1;
        let (args, tests) = self.arguments(depth)?;
        match self.peek().cloned() {
            Some(Token {
                tok: Tok::Punct(';'),
                line,
                ..
            }) => {
                self.pos += 1;
                Ok(Command {
                    name,
                    line: t.line,
                    col: t.col,
                    args,
                    tests,
                    block: None,
                    end_line: line,
                    comment: t.comment,
                })
            }
            Some(Token {
                tok: Tok::Punct('{'),
                ..
            }) => {
                self.pos += 1;
                let block = self.commands(depth + 1)?;
                match self.peek() {
                    Some(Token {
                        tok: Tok::Punct('}'),
                        line,
                        ..
                    }) => {
                        let end_line = *line;
                        self.pos += 1;
                        Ok(Command {
                            name,
                            line: t.line,
                            col: t.col,
                            args,
                            tests,
                            block: Some(block),
                            end_line,
                            comment: t.comment,
                        })
                    }
                    _ => Err(self.at_end_error("`}`")),
                }
            }
            Some(other) => Err(err(
                other.line,
                other.col,
                format!(
                    "expected `;` or `{{` after `{name}`, found {}",
                    shown(&other.tok)
                ),
            )),
            None => Err(self.at_end_error("`;`")),
        }
    }

    /// Arguments, then an optional test or test list.
    fn arguments(&mut self, depth: usize) -> Result<(Vec<Arg>, Vec<Test>), ParseError> {
        if depth > MAX_DEPTH {
            let t = self.peek().expect("inside a test");
            return Err(err(t.line, t.col, "tests nest too deeply"));
        }
        let mut args = Vec::new();
        loop {
            let Some(t) = self.peek().cloned() else {
                return Ok((args, Vec::new()));
            };
            match t.tok {
                Tok::Tag(name) => {
                    self.pos += 1;
                    args.push(Arg::Tag(name));
                }
                Tok::Num(n) => {
                    self.pos += 1;
                    args.push(Arg::Num(n));
                }
                Tok::Str(s) => {
                    self.pos += 1;
                    args.push(Arg::Strs(vec![s], false));
                }
                Tok::Punct('[') => {
                    self.pos += 1;
                    let mut list = Vec::new();
                    loop {
                        match self.peek().cloned() {
                            Some(Token {
                                tok: Tok::Str(s), ..
                            }) => {
                                self.pos += 1;
                                list.push(s);
                            }
                            Some(other) => {
                                return Err(err(
                                    other.line,
                                    other.col,
                                    format!(
                                        "expected a string in the list, found {}",
                                        shown(&other.tok)
                                    ),
                                ));
                            }
                            None => return Err(self.at_end_error("a string")),
                        }
                        match self.peek().cloned() {
                            Some(Token {
                                tok: Tok::Punct(','),
                                ..
                            }) => self.pos += 1,
                            Some(Token {
                                tok: Tok::Punct(']'),
                                ..
                            }) => {
                                self.pos += 1;
                                break;
                            }
                            Some(other) => {
                                return Err(err(
                                    other.line,
                                    other.col,
                                    format!(
                                        "expected `,` or `]` in the list, found {}",
                                        shown(&other.tok)
                                    ),
                                ));
                            }
                            None => return Err(self.at_end_error("`]`")),
                        }
                    }
                    args.push(Arg::Strs(list, true));
                }
                Tok::Ident(_) => {
                    let test = self.test(depth + 1)?;
                    return Ok((args, vec![test]));
                }
                Tok::Punct('(') => {
                    self.pos += 1;
                    let mut tests = vec![self.test(depth + 1)?];
                    loop {
                        match self.peek().cloned() {
                            Some(Token {
                                tok: Tok::Punct(','),
                                ..
                            }) => {
                                self.pos += 1;
                                tests.push(self.test(depth + 1)?);
                            }
                            Some(Token {
                                tok: Tok::Punct(')'),
                                ..
                            }) => {
                                self.pos += 1;
                                break;
                            }
                            Some(other) => {
                                return Err(err(
                                    other.line,
                                    other.col,
                                    format!(
                                        "expected `,` or `)` between tests, found {}",
                                        shown(&other.tok)
                                    ),
                                ));
                            }
                            None => return Err(self.at_end_error("`)`")),
                        }
                    }
                    return Ok((args, tests));
                }
                Tok::Punct(_) => return Ok((args, Vec::new())),
            }
        }
    }

    fn test(&mut self, depth: usize) -> Result<Test, ParseError> {
        match self.peek().cloned() {
            Some(Token {
                tok: Tok::Ident(name),
                line,
                ..
            }) => {
                self.pos += 1;
                let (args, tests) = self.arguments(depth)?;
                Ok(Test {
                    name,
                    line,
                    args,
                    tests,
                })
            }
            Some(other) => Err(err(
                other.line,
                other.col,
                format!(
                    "expected a test such as `header`, found {}",
                    shown(&other.tok)
                ),
            )),
            None => Err(self.at_end_error("a test")),
        }
    }
}

fn shown(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("`{s}`"),
        Tok::Tag(s) => format!("`:{s}`"),
        Tok::Num(n) => format!("the number {n}"),
        Tok::Str(s) => format!("the string \"{}\"", shorten(s, 30)),
        Tok::Punct(c) => format!("`{c}`"),
    }
}

/// What the grammar alone does not say: `if`, `elsif` and `else` take a
/// block, `elsif` and `else` follow an `if`, a test is where one belongs.
fn check_structure(commands: &[Command]) -> Result<(), ParseError> {
    let mut after_if = false;
    for c in commands {
        let control = matches!(c.name.as_str(), "if" | "elsif" | "else");
        if matches!(c.name.as_str(), "elsif" | "else") && !after_if {
            return Err(err(
                c.line,
                c.col,
                format!("`{}` without an `if` before it", c.name),
            ));
        }
        if control {
            if c.block.is_none() {
                return Err(err(
                    c.line,
                    c.col,
                    format!("`{}` needs a block `{{ ... }}`", c.name),
                ));
            }
            let tests = if c.name == "else" { 0 } else { 1 };
            if c.tests.len() != tests || !c.args.is_empty() {
                return Err(err(
                    c.line,
                    c.col,
                    if tests == 1 {
                        format!("`{}` takes one test", c.name)
                    } else {
                        "`else` takes no test".to_string()
                    },
                ));
            }
        } else if c.block.is_some() && !matches!(c.name.as_str(), "foreverypart") {
            return Err(err(c.line, c.col, format!("`{}` takes no block", c.name)));
        }
        after_if = matches!(c.name.as_str(), "if" | "elsif");
        if let Some(b) = &c.block {
            check_structure(b)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- tests

/// What a text test looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Subject,
    Header(String),
    Body,
    /// `key` is `from`, `to`, ... or, for other headers, `address` with
    /// the header's name in `header`.
    Address {
        key: &'static str,
        header: Option<String>,
        part: Part,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    All,
    Localpart,
    Domain,
    User,
    Detail,
}

impl Part {
    fn key(self) -> &'static str {
        match self {
            Part::All => "all",
            Part::Localpart => "localpart",
            Part::Domain => "domain",
            Part::User => "user",
            Part::Detail => "detail",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Is,
    Contains,
    Matches,
    Regex,
}

/// A text test: `targets` (any of them) against `keys` (any of them).
#[derive(Debug, Clone)]
struct TextLeaf {
    id: usize,
    line: usize,
    targets: Vec<Target>,
    keys: Vec<String>,
    kind: Kind,
    /// `i;octet`: compare bytes, not ignoring case.
    case_sensitive: bool,
}

/// A test, translated as far as its captures allow: those are known only
/// once the actions that use them are.
#[derive(Debug, Clone)]
enum T {
    True,
    False,
    All(Vec<T>),
    Any(Vec<T>),
    Not(Box<T>),
    Fixed(Cond),
    Text(Rc<TextLeaf>),
}

/// The captures a rule asks of one text test: the numbers of `${N}`.
struct Wanted<'a> {
    id: usize,
    numbers: &'a BTreeSet<usize>,
}

/// A condition, or always / never.
enum Tri {
    True,
    False,
    C(Cond),
}

impl T {
    fn build(&self, want: Option<&Wanted<'_>>) -> Tri {
        match self {
            T::True => Tri::True,
            T::False => Tri::False,
            T::Fixed(c) => Tri::C(c.clone()),
            T::Text(leaf) => {
                let numbers = want.filter(|w| w.id == leaf.id).map(|w| w.numbers);
                Tri::C(text_cond(leaf, numbers))
            }
            T::Not(inner) => match inner.build(None) {
                Tri::True => Tri::False,
                Tri::False => Tri::True,
                Tri::C(c) => Tri::C(c.negate()),
            },
            T::All(items) => {
                let mut out = Vec::new();
                for i in items {
                    match i.build(want) {
                        Tri::False => return Tri::False,
                        Tri::True => {}
                        Tri::C(c) => out.push(c),
                    }
                }
                Cond::all(out).map_or(Tri::True, Tri::C)
            }
            T::Any(items) => {
                let mut out = Vec::new();
                for i in items {
                    match i.build(want) {
                        Tri::True => return Tri::True,
                        Tri::False => {}
                        Tri::C(c) => out.push(c),
                    }
                }
                if out.is_empty() {
                    Tri::False
                } else {
                    Tri::C(Cond::any(out))
                }
            }
        }
    }

    /// The text test whose captures `${N}` refer to when this test holds:
    /// Sieve keeps those of the last `:matches` or `:regex` test that held.
    /// `Err` when that depends on which of several held.
    fn capture_source(&self) -> Result<Option<Rc<TextLeaf>>, ()> {
        match self {
            T::Text(l) if matches!(l.kind, Kind::Matches | Kind::Regex) => Ok(Some(l.clone())),
            T::All(items) => {
                let mut last = None;
                for i in items {
                    if let Some(l) = i.capture_source()? {
                        last = Some(l);
                    }
                }
                Ok(last)
            }
            T::Any(items) => {
                let mut found = None;
                for i in items {
                    if let Some(l) = i.capture_source()? {
                        if found.is_some() {
                            return Err(());
                        }
                        found = Some(l);
                    }
                }
                Ok(found)
            }
            _ => Ok(None),
        }
    }
}

/// Sieve's `*` and `?` as a regex, `\` quoting the next character. Each
/// wildcard is a group numbered from `first`; those in `want` are named
/// `matchN` (the template name of `${N}`). Wildcards match as little as
/// they can, as RFC 5229 has it. Returns the regex body and the next
/// number.
fn wildcard_regex(pattern: &str, first: usize, want: &BTreeSet<usize>) -> (String, usize) {
    let mut re = String::new();
    let mut n = first;
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '*' | '?' => {
                let inner = if c == '*' { ".*?" } else { "." };
                if want.contains(&n) {
                    re.push_str(&format!("(?P<match{n}>{inner})"));
                } else {
                    re.push_str(inner);
                }
                n += 1;
            }
            '\\' => {
                if let Some(next) = chars.next() {
                    re.push_str(&regex::escape(next.encode_utf8(&mut [0; 4])));
                }
            }
            c => re.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
        }
    }
    (re, n)
}

/// Unquotes a `:matches` pattern without wildcards: `None` if it has any.
fn literal_pattern(pattern: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '*' | '?' => return None,
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    Some(out)
}

/// A `:regex` (POSIX extended) with its groups named `matchN` where
/// wanted; `${0}`, the whole match, wraps it.
fn named_groups(pattern: &str, want: &BTreeSet<usize>) -> String {
    let mut out = String::new();
    let mut n = 1;
    let mut class = false;
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push(c);
                out.extend(chars.next());
            }
            '[' if !class => {
                class = true;
                out.push(c);
                // `]` right after `[` or `[^` is a member, not the end.
                if chars.peek() == Some(&'^') {
                    out.extend(chars.next());
                }
                if chars.peek() == Some(&']') {
                    out.extend(chars.next());
                }
            }
            ']' if class => {
                class = false;
                out.push(c);
            }
            '(' if !class && chars.peek() != Some(&'?') => {
                if want.contains(&n) {
                    out.push_str(&format!("(?P<match{n}>"));
                } else {
                    out.push('(');
                }
                n += 1;
            }
            c => out.push(c),
        }
    }
    if want.contains(&0) {
        format!("(?P<match0>{out})")
    } else {
        out
    }
}

/// The value of one key for one target, as a mailwarden text test.
/// `whole`: a plain string means the whole value (address parts).
fn text_value(
    kind: Kind,
    key: &str,
    cs: bool,
    whole: bool,
    want: &BTreeSet<usize>,
    next: &mut usize,
) -> Y {
    let ci = if cs { "" } else { "(?i)" };
    match kind {
        Kind::Is if cs => Y::map1("regex", Y::s(format!("^{}$", regex::escape(key)))),
        Kind::Is if whole => Y::s(key),
        Kind::Is => Y::map1("is", Y::s(key)),
        Kind::Contains if cs => Y::map1("regex", Y::s(regex::escape(key))),
        Kind::Contains if whole => Y::map1("contains", Y::s(key)),
        Kind::Contains => Y::s(key),
        Kind::Matches => {
            let wildcards = key.chars().filter(|c| matches!(c, '*' | '?')).count();
            let wanted = (*next..*next + wildcards).any(|n| want.contains(&n)) || want.contains(&0);
            if !cs && !wanted {
                if let Some(lit) = literal_pattern(key) {
                    *next += wildcards;
                    return text_value(Kind::Is, &lit, cs, whole, want, next);
                }
                if !key.contains('\\') {
                    *next += wildcards;
                    return Y::map1("glob", Y::s(key));
                }
            }
            let (body, after) = wildcard_regex(key, *next, want);
            *next = after;
            let body = if want.contains(&0) {
                format!("(?P<match0>{body})")
            } else {
                body
            };
            Y::map1("regex", Y::s(format!("{ci}^{body}$")))
        }
        Kind::Regex => Y::map1("regex", Y::s(format!("{ci}{}", named_groups(key, want)))),
    }
}

/// Splits an address pattern at its one `@` that is not quoted by `\`.
fn split_at(key: &str) -> Option<(String, String)> {
    let mut at = None;
    let mut escaped = false;
    for (i, c) in key.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '@' if at.is_some() => return None,
            '@' => at = Some(i),
            _ => {}
        }
    }
    at.map(|i| (key[..i].to_string(), key[i + 1..].to_string()))
}

/// A text test of the whole address, written where it can be as tests of
/// its parts, which look at the address only (a text test of the whole
/// also looks at the display name). `None`: cannot be split.
fn whole_address(
    kind: Kind,
    key: &str,
    cs: bool,
    want: &BTreeSet<usize>,
    next: &mut usize,
) -> Option<Y> {
    let (l, d) = split_at(key)?;
    let mut parts = Vec::new();
    match kind {
        Kind::Is => {
            if l.is_empty() || d.is_empty() {
                return None;
            }
            parts.push(("localpart", text_value(Kind::Is, &l, cs, true, want, next)));
            parts.push(("domain", text_value(Kind::Is, &d, cs, true, want, next)));
        }
        Kind::Contains => {
            // "...l@d...": the local part ends with l, the domain starts with d.
            let ci = if cs { "" } else { "(?i)" };
            if !l.is_empty() {
                let v = if cs || l.contains(['*', '?']) {
                    Y::map1("regex", Y::s(format!("{ci}{}$", regex::escape(&l))))
                } else {
                    Y::map1("glob", Y::s(format!("*{l}")))
                };
                parts.push(("localpart", v));
            }
            if !d.is_empty() {
                let v = if cs || d.contains(['*', '?']) {
                    Y::map1("regex", Y::s(format!("{ci}^{}", regex::escape(&d))))
                } else {
                    Y::map1("glob", Y::s(format!("{d}*")))
                };
                parts.push(("domain", v));
            }
            if parts.is_empty() {
                return None;
            }
        }
        Kind::Matches => {
            for (part, side) in [("localpart", &l), ("domain", &d)] {
                let n = side.chars().filter(|c| matches!(c, '*' | '?')).count();
                // A lone `*` holds for every address: left out, unless its
                // capture is wanted.
                if side == "*" && !want.contains(next) {
                    *next += n;
                    continue;
                }
                parts.push((part, text_value(Kind::Matches, side, cs, true, want, next)));
            }
            if parts.is_empty() {
                return None;
            }
        }
        Kind::Regex => return None,
    }
    Some(Y::Map(
        parts.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
    ))
}

fn text_cond(leaf: &TextLeaf, want: Option<&BTreeSet<usize>>) -> Cond {
    let none = BTreeSet::new();
    let want = want.unwrap_or(&none);
    let mut alternatives = Vec::new();
    for target in &leaf.targets {
        let mut values = Vec::new();
        for key in &leaf.keys {
            let mut next = 1;
            let v = match target {
                Target::Address {
                    part: Part::All, ..
                } => whole_address(leaf.kind, key, leaf.case_sensitive, want, &mut next)
                    .unwrap_or_else(|| {
                        let mut next = 1;
                        text_value(leaf.kind, key, leaf.case_sensitive, false, want, &mut next)
                    }),
                Target::Address { part, .. } => Y::map1(
                    part.key(),
                    text_value(leaf.kind, key, leaf.case_sensitive, true, want, &mut next),
                ),
                _ => text_value(leaf.kind, key, leaf.case_sensitive, false, want, &mut next),
            };
            values.push(v);
        }
        let value = if values.len() == 1 {
            values.pop().expect("one value")
        } else {
            Y::Seq(values)
        };
        alternatives.push(match target {
            Target::Subject => Cond::leaf("subject", value),
            Target::Body => Cond::leaf("body", value),
            Target::Header(h) => Cond::leaf("header", Y::map1(h, value)),
            Target::Address {
                key,
                header: Some(h),
                ..
            } => Cond::leaf(key, Y::map1(h, value)),
            Target::Address { key, .. } => Cond::leaf(key, value),
        });
    }
    Cond::any(alternatives)
}

/// Does the whole-address test of `kind` and `key` also look at the
/// display name once translated?
fn looks_at_display_name(kind: Kind, key: &str) -> bool {
    let mut next = 1;
    whole_address(kind, key, false, &BTreeSet::new(), &mut next).is_none()
}

// ---------------------------------------------------------------- translation

/// A folder template, the capture numbers it uses, and the tests their
/// variables took captures from (`None`: the one in force where used).
type Folder = (String, BTreeSet<usize>, Vec<Option<usize>>);

/// One condition on the way to a block, with what to say about it.
#[derive(Debug, Clone)]
struct Step {
    t: T,
    notes: Vec<String>,
}

/// The conditions under which a block runs, outermost first, and the
/// comment that names its rules.
#[derive(Debug, Clone, Default)]
struct Path {
    steps: Vec<Step>,
    name: Option<String>,
    /// Variables set by `set` in this block or around it: name ->
    /// (template text, capture numbers, capture source, line).
    vars: HashMap<String, Var>,
}

#[derive(Debug, Clone)]
enum Var {
    Known {
        template: String,
        numbers: BTreeSet<usize>,
        source: Option<usize>,
    },
    Untranslated(usize),
}

/// The actions of a run of commands between two `if`s.
#[derive(Debug, Default)]
struct Run {
    first_line: usize,
    first: Option<String>,
    name: Option<String>,
    flags: Vec<Act>,
    fileinto: Vec<(String, BTreeSet<usize>, Vec<Option<usize>>)>,
    special: Option<String>,
    keep: bool,
    discard: bool,
    stop: bool,
    notes: Vec<String>,
}

struct Translator {
    items: Vec<Item>,
    untranslated: Vec<Untranslated>,
    next_id: usize,
    variables: bool,
    /// Folder names are written with `.` between levels (`INBOX.Lists`).
    dots: bool,
    dotted_names: bool,
    discards: bool,
}

fn strs(args: &[Arg]) -> Vec<&Vec<String>> {
    args.iter()
        .filter_map(|a| match a {
            Arg::Strs(s, _) => Some(s),
            _ => None,
        })
        .collect()
}

fn tags(args: &[Arg]) -> Vec<&str> {
    args.iter()
        .filter_map(|a| match a {
            Arg::Tag(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

/// The test as written, shortened.
fn describe_test(t: &Test) -> String {
    let mut s = t.name.clone();
    describe_args(&mut s, &t.args);
    if !t.tests.is_empty() {
        let inner: Vec<String> = t.tests.iter().map(describe_test).collect();
        if matches!(t.name.as_str(), "allof" | "anyof") {
            s.push_str(&format!("({})", inner.join(", ")));
        } else {
            s.push(' ');
            s.push_str(&inner.join(", "));
        }
    }
    shorten(&s, 70)
}

fn describe_command(c: &Command) -> String {
    let mut s = c.name.clone();
    describe_args(&mut s, &c.args);
    shorten(&s, 70)
}

fn describe_args(s: &mut String, args: &[Arg]) {
    for a in args {
        s.push(' ');
        match a {
            Arg::Tag(t) => s.push_str(&format!(":{t}")),
            Arg::Num(n) => s.push_str(&n.to_string()),
            Arg::Strs(list, false) => s.push_str(&format!("\"{}\"", list[0])),
            Arg::Strs(list, true) => {
                let q: Vec<String> = list.iter().map(|x| format!("\"{x}\"")).collect();
                s.push_str(&format!("[{}]", q.join(", ")));
            }
        }
    }
}

/// A name for rules from the comment above a command: its last line with
/// words in it.
fn comment_name(lines: &[String]) -> Option<String> {
    lines.iter().rev().find_map(|l| {
        let t = l.trim_matches(|c: char| c.is_whitespace() || "#-=*/".contains(c));
        (t.chars().any(char::is_alphanumeric)).then(|| shorten(t, 72))
    })
}

const ADDRESS_HEADERS: &[(&str, &str)] = &[
    ("from", "from"),
    ("to", "to"),
    ("cc", "cc"),
    ("bcc", "bcc"),
    ("sender", "sender"),
    ("reply-to", "reply_to"),
];

impl Translator {
    fn new(commands: &[Command]) -> Self {
        let mut requires = Vec::new();
        let mut folders = Vec::new();
        collect(commands, &mut requires, &mut folders);
        let dots = folders
            .iter()
            .any(|f| f.len() > 6 && f.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("INBOX.")));
        let dotted_names = !dots && folders.iter().any(|f| f.contains('.'));
        Translator {
            items: Vec::new(),
            untranslated: Vec::new(),
            next_id: 0,
            variables: requires.iter().any(|r| r == "variables"),
            dots,
            dotted_names,
            discards: false,
        }
    }

    /// What the top of the YAML says about the whole script.
    fn notes(&self) -> Vec<String> {
        let mut n = vec![
            "How the rules differ from Sieve: the first rule that moves a message \
             decides where it goes, where Sieve files a message into every folder of \
             every `fileinto` it reaches; and a rule set runs on the mail in the \
             server's mailboxes, when `mailwarden run` or `watch` does, not at \
             delivery."
                .to_string(),
        ];
        if self.dots {
            n.push(
                "The script names folders with `.` between levels under `INBOX.`: they \
                 are written here with `/`, and without `INBOX.`, which mailwarden adds \
                 again on a server that keeps folders under INBOX."
                    .into(),
            );
        }
        if self.dotted_names {
            n.push(
                "Some folder names hold a `.`: they were kept as written. If your server \
                 separates folder levels with `.`, write those levels with `/`."
                    .into(),
            );
        }
        if self.discards {
            n.push(
                "`discard` became `delete`, which moves the message to Trash: mailwarden \
                 never removes mail for good unless told to (`delete: { expunge: true }`)."
                    .into(),
            );
        }
        n
    }

    fn report(&mut self, line: usize, what: impl Into<String>, why: impl Into<String>) {
        let (what, why) = (what.into(), why.into());
        self.items.push(Item::Comment(vec![format!(
            "not translated (line {line}): {what}: {why}"
        )]));
        self.untranslated.push(Untranslated { line, what, why });
    }

    /// Translates the commands of one block; true when every message that
    /// reaches its end has been moved or stopped.
    fn block(&mut self, commands: &[Command], path: &Path) -> bool {
        let mut path = path.clone();
        let mut run = Run::default();
        let mut i = 0;
        while i < commands.len() {
            let c = &commands[i];
            match c.name.as_str() {
                "require" => {}
                "if" => {
                    let mut end = i + 1;
                    while end < commands.len()
                        && matches!(commands[end].name.as_str(), "elsif" | "else")
                    {
                        end += 1;
                        if commands[end - 1].name == "else" {
                            break;
                        }
                    }
                    let ended = self.flush(&mut run, &path);
                    if ended {
                        return true;
                    }
                    if self.chain(&commands[i..end], &path) {
                        return true;
                    }
                    i = end;
                    continue;
                }
                _ => {
                    if run.first.is_none() {
                        run.first_line = c.line;
                        run.first = Some(describe_command(c));
                        run.name = comment_name(&c.comment);
                    }
                    self.action(c, &mut run, &mut path);
                    if run.stop {
                        self.flush(&mut run, &path);
                        return true;
                    }
                }
            }
            i += 1;
        }
        self.flush(&mut run, &path)
    }

    /// An `if` with its `elsif`s and `else`.
    fn chain(&mut self, branches: &[Command], path: &Path) -> bool {
        // The tests of the branches before, which the later ones must not
        // meet (unless their branch moved the message): `None` when one
        // could not be translated.
        let mut before: Vec<(usize, Option<T>)> = Vec::new();
        let mut all_end = true;
        let if_name = comment_name(&branches[0].comment);
        for b in branches {
            let (t, notes) = if b.name == "else" {
                (Ok(T::True), Vec::new())
            } else {
                let mut notes = Vec::new();
                let t = self.test(&b.tests[0], &mut notes);
                (t, notes)
            };
            let block = b.block.as_deref().unwrap_or_default();
            let lines = if b.end_line > b.line {
                format!("lines {}-{}", b.line, b.end_line)
            } else {
                format!("line {}", b.line)
            };
            let t = match t {
                Ok(t) => t,
                Err(problems) => {
                    for (line, what, why) in problems {
                        self.report(
                            line,
                            what,
                            format!("{why}; the `{}` at {lines} is left out", b.name),
                        );
                    }
                    before.push((b.line, None));
                    all_end = false;
                    continue;
                }
            };
            if let Some((line, _)) = before.iter().find(|(_, t)| t.is_none()) {
                let what = if b.name == "else" {
                    "else".to_string()
                } else {
                    format!("elsif {}", describe_test(&b.tests[0]))
                };
                self.report(
                    b.line,
                    what,
                    format!(
                        "it runs only when the test at line {line} does not hold, and that test \
                         was not translated; the `{}` at {lines} is left out",
                        b.name
                    ),
                );
                before.push((b.line, Some(t)));
                all_end = false;
                continue;
            }
            let mut inner = path.clone();
            for (_, prior) in &before {
                let prior = prior.clone().expect("checked above");
                inner.steps.push(Step {
                    t: T::Not(Box::new(prior)),
                    notes: Vec::new(),
                });
            }
            inner.steps.push(Step {
                t: t.clone(),
                notes,
            });
            inner.name = comment_name(&b.comment)
                .or_else(|| if_name.clone())
                .or_else(|| path.name.clone());
            let ended = self.block(block, &inner);
            if !ended {
                before.push((b.line, Some(t)));
                all_end = false;
            }
        }
        // Without an `else`, a message that meets none of the tests goes on.
        all_end && branches.last().is_some_and(|b| b.name == "else")
    }

    /// Translates a test; `Err` lists (line, what, why) of each part that
    /// has no translation.
    #[allow(clippy::type_complexity)]
    fn test(
        &mut self,
        t: &Test,
        notes: &mut Vec<String>,
    ) -> Result<T, Vec<(usize, String, String)>> {
        let no = |why: &str| Err(vec![(t.line, describe_test(t), why.to_string())]);
        match t.name.as_str() {
            "true" => Ok(T::True),
            "false" => Ok(T::False),
            "not" => {
                if t.tests.len() != 1 {
                    return no("`not` takes one test");
                }
                Ok(T::Not(Box::new(self.test(&t.tests[0], notes)?)))
            }
            "allof" | "anyof" => {
                let mut items = Vec::new();
                let mut problems = Vec::new();
                for inner in &t.tests {
                    match self.test(inner, notes) {
                        Ok(x) => items.push(x),
                        Err(p) => problems.extend(p),
                    }
                }
                if !problems.is_empty() {
                    return Err(problems);
                }
                Ok(if t.name == "allof" {
                    T::All(items)
                } else {
                    T::Any(items)
                })
            }
            "exists" => {
                let s = strs(&t.args);
                if s.len() != 1 || !tags(&t.args).is_empty() {
                    return no("`exists` takes a list of header names");
                }
                Ok(T::Fixed(exists(s[0])))
            }
            "size" => {
                let nums: Vec<u64> = t
                    .args
                    .iter()
                    .filter_map(|a| match a {
                        Arg::Num(n) => Some(*n),
                        _ => None,
                    })
                    .collect();
                let key = match tags(&t.args).as_slice() {
                    ["over"] => "over",
                    ["under"] => "under",
                    _ => return no("`size` takes :over or :under and a number"),
                };
                if nums.len() != 1 {
                    return no("`size` takes :over or :under and a number");
                }
                Ok(T::Fixed(Cond::leaf(
                    "size",
                    Y::map1(key, size_value(nums[0])),
                )))
            }
            "header" | "address" | "body" => self.text_test(t, notes),
            "duplicate" => {
                if t.args.is_empty() {
                    Ok(T::Fixed(Cond::leaf("duplicate", Y::Bool(true))))
                } else {
                    no(
                        "mailwarden's `duplicate: true` compares Message-IDs over the account's \
                        whole history; :header, :uniqueid, :handle and :seconds have no equivalent",
                    )
                }
            }
            "envelope" => no(
                "IMAP keeps no envelope; if your server records the recipient in \
                 Delivered-To or X-Original-To, test that with `address: { Delivered-To: ... }`",
            ),
            "spamtest" | "virustest" => no(
                "the score comes from the server's own scanner settings; test the header \
                 the scanner writes instead, e.g. `header: { X-Spam-Score: { over: 5 } }`",
            ),
            "date" | "currentdate" => no(
                "date tests are not translated; mailwarden has sent_before/sent_after \
                 (the Date header) and older_than/newer_than (arrival)",
            ),
            "hasflag" => no(
                "hasflag tests the flags the script has set so far; mailwarden's seen, \
                 flagged and keyword test the flags the message has on the server",
            ),
            "string"
            | "environment"
            | "ihave"
            | "metadata"
            | "metadataexists"
            | "servermetadata"
            | "servermetadataexists"
            | "mailboxexists"
            | "valid_notify_method"
            | "notify_method_capability"
            | "specialuse_exists"
            | "valid_ext_list" => no("this test has no equivalent in mailwarden"),
            other => {
                let why = format!("`{other}` is no Sieve test mailwarden knows");
                no(&why)
            }
        }
    }

    fn text_test(
        &mut self,
        t: &Test,
        notes: &mut Vec<String>,
    ) -> Result<T, Vec<(usize, String, String)>> {
        let no = |why: String| Err(vec![(t.line, describe_test(t), why)]);
        let mut kind = None;
        let mut part = None;
        let mut comparator = None;
        let mut relation = None;
        let mut args = t.args.iter().peekable();
        let mut body_transform = None;
        let mut positional: Vec<&Vec<String>> = Vec::new();
        while let Some(a) = args.next() {
            match a {
                Arg::Tag(tag) => match tag.as_str() {
                    "is" | "contains" | "matches" | "regex" => {
                        kind = Some(match tag.as_str() {
                            "is" => Kind::Is,
                            "contains" => Kind::Contains,
                            "matches" => Kind::Matches,
                            _ => Kind::Regex,
                        })
                    }
                    "all" | "localpart" | "domain" | "user" | "detail" if t.name == "address" => {
                        part = Some(match tag.as_str() {
                            "all" => Part::All,
                            "localpart" => Part::Localpart,
                            "domain" => Part::Domain,
                            "user" => Part::User,
                            _ => Part::Detail,
                        })
                    }
                    "comparator" => match args.next() {
                        Some(Arg::Strs(c, false)) => comparator = Some(c[0].to_ascii_lowercase()),
                        _ => return no(":comparator takes a string".into()),
                    },
                    "value" => match args.next() {
                        Some(Arg::Strs(r, false)) => relation = Some(r[0].to_ascii_lowercase()),
                        _ => return no(":value takes a string".into()),
                    },
                    "count" => {
                        return no(
                            "counting headers (:count) has no equivalent in mailwarden".into()
                        );
                    }
                    "text" if t.name == "body" => body_transform = Some("text"),
                    "raw" | "content" if t.name == "body" => {
                        return no(format!(
                            "mailwarden's `body` tests the decoded text of the message; \
                             :{tag} has no equivalent"
                        ));
                    }
                    "mime" | "anychild" | "type" | "subtype" | "contenttype" | "param" => {
                        return no(format!(
                            ":{tag} (MIME parts) has no equivalent in mailwarden"
                        ));
                    }
                    "index" | "last" => {
                        return no(format!(
                            ":{tag} (one occurrence of a header) has no equivalent; mailwarden \
                             tests every occurrence"
                        ));
                    }
                    other => return no(format!(":{other} is not translated")),
                },
                Arg::Strs(s, _) => positional.push(s),
                Arg::Num(_) => return no("a number where strings were expected".into()),
            }
        }
        let _ = body_transform;
        let (headers, keys): (Vec<String>, Vec<String>) =
            match (t.name.as_str(), positional.as_slice()) {
                ("body", [keys]) => (Vec::new(), (*keys).clone()),
                ("header" | "address", [h, keys]) => ((*h).clone(), (*keys).clone()),
                _ => return no(format!("`{}` has the wrong number of arguments", t.name)),
            };
        let (case_sensitive, numeric) = match comparator.as_deref() {
            None | Some("i;ascii-casemap") | Some("i;unicode-casemap") => (false, false),
            Some("i;octet") => (true, false),
            Some("i;ascii-numeric") => (false, true),
            Some(other) => return no(format!("the comparator \"{other}\" is not translated")),
        };
        if let Some(rel) = relation {
            let op = match rel.as_str() {
                "gt" => "over",
                "ge" => "at_least",
                "lt" => "under",
                "le" => "at_most",
                _ => {
                    return no(format!(
                        ":value \"{rel}\" is not translated; mailwarden compares numbers \
                         with over, under, at_least and at_most"
                    ));
                }
            };
            if !numeric || t.name != "header" {
                return no(":value is translated only for headers compared as numbers \
                     (:comparator \"i;ascii-numeric\")"
                    .into());
            }
            let mut values = Vec::new();
            for k in &keys {
                match k.parse::<i64>() {
                    Ok(n) if k.bytes().all(|b| b.is_ascii_digit()) => {
                        values.push(Y::map1(op, Y::Int(n)))
                    }
                    _ => return no(format!("\"{k}\" is not a number")),
                }
            }
            let value = if values.len() == 1 {
                values.pop().expect("one")
            } else {
                Y::Seq(values)
            };
            notes.push(format!(
                "Line {}: Sieve's \"i;ascii-numeric\" reads only the leading digits (\"5.9\" \
                 is 5) and takes a value that does not start with a digit, such as \"-1.3\", \
                 as infinitely large; mailwarden compares the number as written, and a \
                 value that is no number never matches.",
                t.line
            ));
            let alts = headers
                .iter()
                .map(|h| Cond::leaf("header", Y::map1(h, value.clone())))
                .collect();
            return Ok(T::Fixed(Cond::any(alts)));
        }
        if numeric {
            return no(
                "\"i;ascii-numeric\" is translated only with :value \"gt\", \"ge\", \"lt\" or \"le\""
                    .into(),
            );
        }
        let kind = kind.unwrap_or(Kind::Is);
        if kind == Kind::Regex {
            for k in &keys {
                let pattern = if case_sensitive {
                    k.clone()
                } else {
                    format!("(?i){k}")
                };
                if let Err(e) = crate::rules::text::compile_regex(&pattern) {
                    let first = e.lines().last().unwrap_or(&e).trim().to_string();
                    return no(format!(
                        "the regex \"{k}\" is not one mailwarden's regex syntax reads ({first})"
                    ));
                }
            }
        }
        if keys.iter().any(|k| k.contains("${")) && self.variables {
            return no("a test that uses variables is not translated".into());
        }
        // `:contains ""` and `:matches "*"` hold for any header there is.
        if t.name == "header"
            && !case_sensitive
            && keys.iter().any(|k| {
                (kind == Kind::Contains && k.is_empty())
                    || (kind == Kind::Matches && !k.is_empty() && k.chars().all(|c| c == '*'))
            })
        {
            return Ok(T::Fixed(exists(&headers)));
        }
        let part = part.unwrap_or(Part::All);
        let mut targets = Vec::new();
        match t.name.as_str() {
            "body" => targets.push(Target::Body),
            "header" => {
                for h in &headers {
                    if h.eq_ignore_ascii_case("subject") {
                        targets.push(Target::Subject);
                    } else if let Err(e) = header_name(h) {
                        return no(e);
                    } else {
                        targets.push(Target::Header(h.clone()));
                    }
                }
            }
            _ => {
                for h in &headers {
                    let lower = h.to_ascii_lowercase();
                    let target = match ADDRESS_HEADERS.iter().find(|(n, _)| *n == lower) {
                        Some((_, key)) => Target::Address {
                            key,
                            header: None,
                            part,
                        },
                        None => {
                            if let Err(e) = header_name(h) {
                                return no(e);
                            }
                            Target::Address {
                                key: "address",
                                header: Some(h.clone()),
                                part,
                            }
                        }
                    };
                    targets.push(target);
                }
                if part == Part::All && keys.iter().any(|k| looks_at_display_name(kind, k)) {
                    notes.push(format!(
                        "Line {}: `{}` looked at the address only; here the test of the \
                         whole address also looks at the display name (`Name <address>`).",
                        t.line,
                        describe_test(t)
                    ));
                }
            }
        }
        if kind == Kind::Regex && !case_sensitive {
            notes.push(format!(
                "Line {}: Sieve's :regex ignores case unless :comparator \"i;octet\"; \
                 mailwarden's regex does not, hence the (?i).",
                t.line
            ));
        }
        if targets.is_empty() || keys.is_empty() {
            return no("an empty list of headers or keys never holds".into());
        }
        let id = self.next_id;
        self.next_id += 1;
        Ok(T::Text(Rc::new(TextLeaf {
            id,
            line: t.line,
            targets,
            keys,
            kind,
            case_sensitive,
        })))
    }

    /// A folder name from a `fileinto`: `${N}` becomes `{matchN}`, a
    /// variable its value; literal braces are doubled. `Err`: why not.
    fn folder(&self, name: &str, path: &Path) -> Result<Folder, String> {
        let name = match name.get(..6) {
            Some(p) if self.dots && p.eq_ignore_ascii_case("INBOX.") => &name[6..],
            _ => name,
        };
        let (template, numbers, sources) =
            self.expand(name, path, &|lit: &str| lit.to_string(), self.dots)?;
        let folder = template;
        if folder.is_empty() {
            return Err("an empty folder name".into());
        }
        crate::rules::template::Template::parse(&folder)?;
        let literal = folder.replace("{{", "{").replace("}}", "}");
        if numbers.is_empty()
            && let Err(e) = crate::rules::template::check_folder(&literal)
        {
            return Err(e);
        }
        Ok((folder, numbers, sources))
    }

    /// Expands `${...}` in `text`: the literal parts through `lit`.
    #[allow(clippy::type_complexity)]
    fn expand(
        &self,
        text: &str,
        path: &Path,
        lit: &dyn Fn(&str) -> String,
        dots: bool,
    ) -> Result<Folder, String> {
        let mut out = String::new();
        let mut numbers = BTreeSet::new();
        let mut sources = Vec::new();
        let mut rest = text;
        let push_lit = |out: &mut String, s: &str| {
            let mut s = lit(s);
            if dots {
                s = s.replace('.', "/");
            }
            out.push_str(&s.replace('{', "{{").replace('}', "}}"));
        };
        while let Some(start) = rest.find("${").filter(|_| self.variables) {
            let Some(len) = rest[start + 2..].find('}') else {
                break;
            };
            let name = &rest[start + 2..start + 2 + len];
            let valid = !name.is_empty()
                && (name.bytes().all(|b| b.is_ascii_digit())
                    || name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.'));
            if !valid {
                push_lit(&mut out, &rest[..start + 2]);
                rest = &rest[start + 2..];
                continue;
            }
            push_lit(&mut out, &rest[..start]);
            if name.bytes().all(|b| b.is_ascii_digit()) {
                let n: usize = name
                    .parse()
                    .map_err(|_| format!("${{{name}}} is too large"))?;
                if n > 9 {
                    return Err(format!(
                        "${{{name}}}: Sieve has match variables 0 to 9 only"
                    ));
                }
                out.push_str(&format!("{{match{n}}}"));
                numbers.insert(n);
                sources.push(None);
            } else {
                match path.vars.get(&name.to_ascii_lowercase()) {
                    Some(Var::Known {
                        template,
                        numbers: n,
                        source,
                    }) => {
                        out.push_str(template);
                        numbers.extend(n.iter().copied());
                        if !n.is_empty() {
                            sources.push(*source);
                        }
                    }
                    Some(Var::Untranslated(line)) => {
                        return Err(format!(
                            "it uses ${{{name}}}, set at line {line}, which was not translated"
                        ));
                    }
                    None => {
                        return Err(format!(
                            "it uses ${{{name}}}, which is not set by a `set` before it in \
                             this block (variables are translated only there)"
                        ));
                    }
                }
            }
            rest = &rest[start + 3 + len..];
        }
        push_lit(&mut out, rest);
        Ok((out, numbers, sources))
    }

    /// One action command into `run`.
    fn action(&mut self, c: &Command, run: &mut Run, path: &mut Path) {
        let what = describe_command(c);
        let t = tags(&c.args);
        let s = strs(&c.args);
        match c.name.as_str() {
            "keep" => {
                run.keep = true;
                if let Some(flags) = self.tagged_flags(c)
                    && !flags.is_empty()
                {
                    run.flags.push(Act::Flag(flags));
                }
            }
            "discard" => {
                run.discard = true;
                self.discards = true;
            }
            "stop" => run.stop = true,
            "fileinto" => {
                let mut special = None;
                let mut copy = false;
                let mut args = c.args.iter();
                let mut folder = None;
                let mut flags = Vec::new();
                while let Some(a) = args.next() {
                    match a {
                        Arg::Tag(tag) if tag == "copy" => copy = true,
                        Arg::Tag(tag) if tag == "create" => {}
                        Arg::Tag(tag) if tag == "flags" => match args.next() {
                            Some(Arg::Strs(list, _)) => flags = list.clone(),
                            _ => {
                                self.report(c.line, what, ":flags takes a list of flags");
                                return;
                            }
                        },
                        Arg::Tag(tag) if tag == "specialuse" => match args.next() {
                            Some(Arg::Strs(list, false)) => special = Some(list[0].clone()),
                            _ => {
                                self.report(c.line, what, ":specialuse takes a string");
                                return;
                            }
                        },
                        Arg::Strs(list, false) if folder.is_none() => {
                            folder = Some(list[0].clone())
                        }
                        other => {
                            let shown = match other {
                                Arg::Tag(t) => format!(":{t}"),
                                _ => "an argument".into(),
                            };
                            self.report(c.line, what, format!("{shown} is not translated"));
                            return;
                        }
                    }
                }
                let Some(folder) = folder else {
                    self.report(c.line, what, "`fileinto` needs a folder name");
                    return;
                };
                if !flags.is_empty() {
                    if copy {
                        self.report(
                            c.line,
                            what,
                            ":flags with :copy sets flags on the copy only; mailwarden's \
                             flags are those of the message itself",
                        );
                        return;
                    }
                    match self.flag_names(&flags) {
                        Ok(f) => run.flags.push(Act::Flag(f)),
                        Err(why) => {
                            self.report(c.line, what, why);
                            return;
                        }
                    }
                }
                if folder.eq_ignore_ascii_case("INBOX") && special.is_none() {
                    // Filing into INBOX is keeping it.
                    run.keep = true;
                    return;
                }
                if let Some(su) = special {
                    let known = ["\\junk", "\\sent", "\\drafts", "\\archive", "\\trash"];
                    if copy || !known.contains(&su.to_ascii_lowercase().as_str()) {
                        self.report(
                            c.line,
                            what,
                            format!(
                                ":specialuse \"{su}\" is translated for a move to \\Junk, \
                                 \\Sent, \\Drafts, \\Archive or \\Trash only"
                            ),
                        );
                        return;
                    }
                    let mut name = su[..2].to_ascii_uppercase();
                    name.push_str(&su[2..].to_ascii_lowercase());
                    run.notes.push(format!(
                        "Line {}: `move: {name}` is the folder the server marks {name}; \
                         where there is none, mailwarden's own name for it, not \"{}\".",
                        c.line,
                        super::one_line(&folder)
                    ));
                    run.special = Some(name);
                    return;
                }
                match self.folder(&folder, path) {
                    Ok((f, numbers, sources)) => {
                        if copy {
                            run.fileinto.push((format!("copy:{f}"), numbers, sources));
                        } else {
                            run.fileinto.push((f, numbers, sources));
                        }
                    }
                    Err(why) => self.report(c.line, what, why),
                }
            }
            "addflag" | "setflag" | "removeflag" => {
                if s.len() != 1 || !t.is_empty() {
                    self.report(
                        c.line,
                        what,
                        "flags kept in a variable (a second argument) are not translated",
                    );
                    return;
                }
                match self.flag_names(s[0]) {
                    Ok(flags) if flags.is_empty() => {}
                    Ok(flags) => {
                        if c.name == "removeflag" {
                            run.flags.push(Act::Unflag(flags));
                        } else {
                            if c.name == "setflag" {
                                run.notes.push(format!(
                                    "Line {}: setflag replaces the flags Sieve was to set; \
                                     `flag:` adds to the flags the message has.",
                                    c.line
                                ));
                            }
                            run.flags.push(Act::Flag(flags));
                        }
                    }
                    Err(why) => self.report(c.line, what, why),
                }
            }
            "set" => self.set(c, path),
            "redirect" | "reject" | "ereject" | "vacation" | "notify" => self.report(
                c.line,
                what,
                "mailwarden sorts mail and sends none: no replies, refusals, forwards or \
                 notifications",
            ),
            "include" | "return" | "global" => self.report(
                c.line,
                what,
                "scripts that include others are not followed: import each script",
            ),
            "pipe" | "filter" | "execute" => {
                self.report(c.line, what, "mailwarden runs no programs on messages")
            }
            "addheader" | "deleteheader" | "replace" | "enclose" | "convert" => {
                self.report(c.line, what, "mailwarden does not change messages")
            }
            "foreverypart" | "break" | "extracttext" => self.report(
                c.line,
                what,
                "MIME part loops have no equivalent in mailwarden",
            ),
            "error" => self.report(c.line, what, "mailwarden has no equivalent of `error`"),
            other => self.report(
                c.line,
                what,
                format!("`{other}` is no Sieve command mailwarden knows"),
            ),
        }
    }

    /// The flags of `keep :flags`.
    fn tagged_flags(&mut self, c: &Command) -> Option<Vec<String>> {
        let mut args = c.args.iter();
        while let Some(a) = args.next() {
            if matches!(a, Arg::Tag(t) if t == "flags")
                && let Some(Arg::Strs(list, _)) = args.next()
            {
                match self.flag_names(list) {
                    Ok(f) => return Some(f),
                    Err(why) => {
                        self.report(c.line, describe_command(c), why);
                        return None;
                    }
                }
            }
        }
        Some(Vec::new())
    }

    /// Sieve flag strings (several in one, separated by spaces) as
    /// mailwarden flag names.
    fn flag_names(&self, list: &[String]) -> Result<Vec<String>, String> {
        let mut out: Vec<String> = Vec::new();
        for s in list {
            if self.variables && s.contains("${") {
                return Err("flags from variables are not translated".into());
            }
            for f in s.split_whitespace() {
                let flag = crate::rules::Flag::parse(f).map_err(|e| format!("flag {f:?}: {e}"))?;
                let name = flag.key().to_string();
                if !out.contains(&name) {
                    out.push(name);
                }
            }
        }
        Ok(out)
    }

    /// `set [:lower|:upper] NAME VALUE`: a name for a folder template.
    fn set(&mut self, c: &Command, path: &mut Path) {
        let what = describe_command(c);
        let t = tags(&c.args);
        let s = strs(&c.args);
        let (name, value) = match s.as_slice() {
            [n, v] if n.len() == 1 && v.len() == 1 => (n[0].to_ascii_lowercase(), v[0].clone()),
            _ => {
                self.report(c.line, what, "`set` takes a name and a value");
                return;
            }
        };
        let transform = match t.as_slice() {
            [] => None,
            ["lower"] => Some("lower"),
            ["upper"] => Some("upper"),
            _ => {
                self.report(
                    c.line,
                    what,
                    "`set` is translated with :lower or :upper only (as `{name|lower}`)",
                );
                path.vars.insert(name, Var::Untranslated(c.line));
                return;
            }
        };
        let lit = move |s: &str| match transform {
            Some("lower") => s.to_lowercase(),
            Some("upper") => s.to_uppercase(),
            _ => s.to_string(),
        };
        // The literal parts are not folder levels yet: no `.` to `/` here,
        // that happens where the folder name is made.
        match self.expand(&value, path, &lit, false) {
            Ok((mut template, numbers, sources)) => {
                if let Some(tr) = transform {
                    for n in &numbers {
                        template = template
                            .replace(&format!("{{match{n}}}"), &format!("{{match{n}|{tr}}}"));
                    }
                }
                let source = if sources.iter().any(Option::is_none) {
                    // Captures: the test they come from is the one in force here.
                    match self.source_of(path) {
                        Ok(Some(l)) => Some(l.id),
                        _ => {
                            self.report(
                                c.line,
                                what,
                                "its ${N} come from no single :matches or :regex test before it",
                            );
                            path.vars.insert(name, Var::Untranslated(c.line));
                            return;
                        }
                    }
                } else {
                    sources.into_iter().flatten().next()
                };
                path.vars.insert(
                    name,
                    Var::Known {
                        template,
                        numbers,
                        source,
                    },
                );
            }
            Err(why) => {
                self.report(c.line, what, why);
                path.vars.insert(name, Var::Untranslated(c.line));
            }
        }
    }

    /// The text test whose captures hold in `path`: the innermost step
    /// with a `:matches` or `:regex` test.
    fn source_of(&self, path: &Path) -> Result<Option<Rc<TextLeaf>>, ()> {
        for step in path.steps.iter().rev() {
            if let Some(l) = step.t.capture_source()? {
                return Ok(Some(l));
            }
        }
        Ok(None)
    }

    /// Writes the rule of a run of actions; true when it moves or stops
    /// every message that reaches it.
    fn flush(&mut self, run: &mut Run, path: &Path) -> bool {
        let run = std::mem::take(run);
        let mut actions = run.flags.clone();
        let mut final_act = None;
        let mut numbers = BTreeSet::new();
        let mut sources = Vec::new();
        let count = run.fileinto.len();
        for (i, (f, n, s)) in run.fileinto.iter().enumerate() {
            numbers.extend(n.iter().copied());
            sources.extend(s.iter().copied());
            match f.strip_prefix("copy:") {
                Some(copy) => actions.push(Act::Copy(copy.to_string())),
                None if i + 1 == count && !run.keep && run.special.is_none() => {
                    final_act = Some(Act::Move(f.clone()))
                }
                // Sieve files the message into every folder: all but the last
                // are copies, and the last a copy too when it also stays.
                None => actions.push(Act::Copy(f.clone())),
            }
        }
        if let Some(su) = &run.special {
            if run.keep {
                // Copies to special-use folders are not translated above.
            } else {
                final_act = Some(Act::Move(su.clone()));
            }
        }
        if final_act.is_none()
            && run.discard
            && !run.keep
            && !run.fileinto.iter().any(|(f, _, _)| f.starts_with("copy:"))
        {
            final_act = Some(Act::Delete);
        }
        let moves = final_act.is_some();
        actions.extend(final_act);
        if run.stop && !moves {
            actions.push(Act::Stop);
        }
        if actions.is_empty() {
            return false;
        }
        let first = run.first.clone().unwrap_or_default();
        let name = run
            .name
            .clone()
            .or_else(|| path.name.clone())
            .unwrap_or_else(|| format!("line {}: {first}", run.first_line));
        // Which test the captures come from.
        let mut want = None;
        if !numbers.is_empty() {
            match self.source_of(path) {
                Ok(Some(leaf))
                    if leaf.targets.len() == 1
                        && leaf.keys.len() == 1
                        && sources.iter().all(|s| s.is_none_or(|id| id == leaf.id)) =>
                {
                    if leaf.kind == Kind::Matches {
                        let wildcards = leaf.keys[0]
                            .chars()
                            .filter(|c| matches!(c, '*' | '?'))
                            .count();
                        if let Some(n) = numbers.iter().find(|&&n| n > wildcards) {
                            self.report(
                                run.first_line,
                                first,
                                format!(
                                    "it uses ${{{n}}}, but the :matches pattern at line {} has {wildcards} wildcards",
                                    leaf.line
                                ),
                            );
                            return false;
                        }
                    }
                    want = Some(leaf.id);
                }
                _ => {
                    self.report(
                        run.first_line,
                        first,
                        "its ${N} must come from one :matches or :regex test of one header \
                         and one key in the `if` around it; here they do not",
                    );
                    return false;
                }
            }
        }
        let wanted = want.map(|id| Wanted {
            id,
            numbers: &numbers,
        });
        let mut conds = Vec::new();
        let mut notes = Vec::new();
        for step in &path.steps {
            notes.extend(step.notes.iter().cloned());
            match step.t.build(wanted.as_ref()) {
                Tri::True => {}
                Tri::False => {
                    self.items.push(Item::Comment(vec![format!(
                        "Line {}: its test never holds (`false`): no rule.",
                        run.first_line
                    )]));
                    return false;
                }
                Tri::C(c) => conds.push(c),
            }
        }
        notes.extend(run.notes.iter().cloned());
        let cond = Cond::all(conds);
        let every = cond.is_none();
        self.items.push(Item::Rule(Rule {
            name,
            notes,
            cond,
            actions,
        }));
        let _ = every;
        moves || run.stop
    }
}

fn exists(names: &[String]) -> Cond {
    if names.len() == 1 {
        Cond::leaf("exists", Y::s(names[0].clone()))
    } else {
        Cond::leaf(
            "exists",
            Y::Seq(names.iter().map(|n| Y::s(n.clone())).collect()),
        )
    }
}

fn header_name(name: &str) -> Result<(), String> {
    if !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b) && b != b':') {
        Ok(())
    } else {
        Err(format!(
            "\"{}\" is not a header name",
            super::one_line(name)
        ))
    }
}

/// The `require`d extensions and every literal `fileinto` folder.
fn collect(commands: &[Command], requires: &mut Vec<String>, folders: &mut Vec<String>) {
    for c in commands {
        match c.name.as_str() {
            "require" => {
                for s in strs(&c.args) {
                    requires.extend(s.iter().map(|r| r.to_ascii_lowercase()));
                }
            }
            "fileinto" => {
                if let Some(f) = strs(&c.args).last() {
                    folders.extend(f.iter().cloned());
                }
            }
            _ => {}
        }
        if let Some(b) = &c.block {
            collect(b, requires, folders);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rules of `script` (without the comments at the top), and what
    /// was reported.
    fn rules(script: &str) -> (String, Vec<Untranslated>) {
        let import = import(script, "t.sieve", Layout::RulesOnly)
            .unwrap_or_else(|e| panic!("{script}: {e}"));
        let body = import
            .yaml
            .split_once("# Paste these under `rules:` in your configuration.\n")
            .unwrap()
            .1
            .to_string();
        (body, import.untranslated)
    }

    /// Checks that the rules load as a configuration (the syntax of today).
    fn loads(script: &str) {
        let import = import(script, "t.sieve", Layout::Config).unwrap();
        if let Err(d) = crate::config::parse_str(&import.yaml, std::path::Path::new(".")) {
            panic!("{}\n{d:?}", import.yaml);
        }
    }

    #[test]
    fn tests_translate_to_conditions() {
        let cases = [
            (
                r#"if header :is "subject" "Hi" { stop; }"#,
                "subject: { is: Hi }",
            ),
            (
                r#"if header "subject" "Hi" { stop; }"#,
                "subject: { is: Hi }",
            ),
            (
                r#"if header :contains ["Subject", "X-Tag"] ["a", "b"] { stop; }"#,
                "any:\n        - subject: [a, b]\n        - header: { X-Tag: [a, b] }",
            ),
            (
                r#"if header :matches "subject" "Re: *" { stop; }"#,
                "subject: { glob: 'Re: *' }",
            ),
            (
                r#"if header :matches "subject" "plain" { stop; }"#,
                "subject: { is: plain }",
            ),
            (
                r#"if header :matches "X-Foo" "*" { stop; }"#,
                "exists: X-Foo",
            ),
            (
                r#"if header :contains "X-Foo" "" { stop; }"#,
                "exists: X-Foo",
            ),
            (
                r#"if header :comparator "i;octet" :is "subject" "a.b" { stop; }"#,
                r#"subject: { regex: '^a\.b$' }"#,
            ),
            (
                r#"if header :regex "subject" "^x+" { stop; }"#,
                "subject: { regex: '(?i)^x+' }",
            ),
            (
                r#"if address :is "from" "a@b.example" { stop; }"#,
                "from: { localpart: a, domain: b.example }",
            ),
            (
                r#"if address :contains "from" "@b.example" { stop; }"#,
                "from: { domain: { glob: b.example* } }",
            ),
            (
                r#"if address :matches "from" "*@*.example" { stop; }"#,
                "from: { domain: { glob: '*.example' } }",
            ),
            (
                r#"if address :domain "to" "x.example" { stop; }"#,
                "to: { domain: x.example }",
            ),
            (
                r#"if address :localpart :contains "reply-to" "no" { stop; }"#,
                "reply_to: { localpart: { contains: 'no' } }",
            ),
            (
                r#"if address :detail "to" "lists" { stop; }"#,
                "to: { detail: lists }",
            ),
            (
                r#"if address :user "Delivered-To" "me" { stop; }"#,
                "address: { Delivered-To: { user: me } }",
            ),
            (r#"if exists ["A", "B"] { stop; }"#, "exists: [A, B]"),
            (r#"if size :over 100K { stop; }"#, "size: { over: 100KB }"),
            (r#"if size :under 1000 { stop; }"#, "size: { under: 1000 }"),
            (
                r#"if body :contains "unsubscribe" { stop; }"#,
                "body: unsubscribe",
            ),
            (
                r#"if header :value "gt" :comparator "i;ascii-numeric" "X-Spam-Score" "5" { stop; }"#,
                "header: { X-Spam-Score: { over: 5 } }",
            ),
            (
                r#"if not anyof (exists "A", allof (exists "B", exists "C")) { stop; }"#,
                "not:\n        any:\n          - exists: A\n          - exists: [B, C]",
            ),
            (r#"if duplicate { stop; }"#, "duplicate: true"),
        ];
        for (script, want) in cases {
            let (got, untranslated) = rules(script);
            assert!(untranslated.is_empty(), "{script}: {untranslated:?}");
            assert!(got.contains(want), "{script}\nwant: {want}\ngot:\n{got}");
        }
    }

    #[test]
    fn actions_translate_as_sieve_files_messages() {
        let cases = [
            (
                r#"fileinto "A"; fileinto "B";"#,
                "- copy: A\n      - move: B",
            ),
            (r#"fileinto "A"; keep;"#, "- copy: A\n"),
            (r#"fileinto :copy "A";"#, "- copy: A\n"),
            (
                r#"fileinto :flags "\\Seen $Work" "A";"#,
                "- flag: [seen, $Work]\n      - move: A",
            ),
            (
                r#"addflag ["\\Flagged", "\\Answered"];"#,
                "- flag: [flagged, answered]",
            ),
            (r#"removeflag "\\Seen";"#, "- unflag: seen"),
            (r#"discard;"#, "- delete\n"),
            (r#"fileinto "A"; discard;"#, "- move: A\n"),
            (
                r#"addflag "x"; stop; fileinto "never";"#,
                "- flag: x\n      - stop\n",
            ),
            (r#"fileinto "Lists/{x}";"#, "- move: Lists/{{x}}"),
            // Without "variables", ${1} is text.
            (r#"fileinto "A${1}";"#, "- move: A${{1}}"),
        ];
        for (script, want) in cases {
            let (got, untranslated) = rules(script);
            assert!(untranslated.is_empty(), "{script}: {untranslated:?}");
            assert!(got.contains(want), "{script}\nwant: {want}\ngot:\n{got}");
        }
        // Filing into INBOX is keeping: no rule at all.
        assert!(!rules(r#"fileinto "INBOX";"#).0.contains("- name:"));
        loads(r#"require "fileinto"; fileinto "A"; fileinto "B"; addflag "x";"#);
    }

    #[test]
    fn elsif_and_else_exclude_the_branches_before_unless_those_moved() {
        let (got, _) = rules(
            r#"require ["fileinto", "imap4flags"];
            if exists "A" { addflag "a"; }
            elsif exists "B" { fileinto "B"; }
            elsif exists "C" { fileinto "C"; }
            else { fileinto "Rest"; }"#,
        );
        // B must not be A (whose branch only flags); C must not be A (B moved).
        assert!(
            got.contains("match:\n      exists: A\n    actions:\n      - flag: a"),
            "{got}"
        );
        assert!(got.contains("not: { exists: A }\n      exists: B"), "{got}");
        assert!(got.contains("not: { exists: A }\n      exists: C"), "{got}");
        assert!(
            got.contains("match:\n      not: { exists: A }\n    actions:\n      - move: Rest"),
            "{got}"
        );
        loads(
            r#"require "fileinto"; if exists "A" { keep; } elsif exists "B" { fileinto "B"; } else { fileinto "R"; }"#,
        );
    }

    #[test]
    fn captures_become_named_groups() {
        let (got, u) = rules(
            r#"require ["fileinto", "variables"];
            if header :matches "List-Id" "*<*.example.org>" { fileinto "Lists/${2}"; }"#,
        );
        assert!(u.is_empty(), "{u:?}");
        assert!(
            got.contains(r#"List-Id: { regex: '(?i)^.*?<(?P<match2>.*?)\.example\.org>$' }"#),
            "{got}"
        );
        assert!(got.contains("- move: Lists/{match2}"), "{got}");
        let (got, _) = rules(
            r#"require ["fileinto", "variables", "regex"];
            if header :regex "subject" "^\\[([a-z]+)\\] (.*)" { set :lower "p" "${1}"; fileinto "P/${p}"; }"#,
        );
        assert!(
            got.contains(r#"subject: { regex: '(?i)^\[(?P<match1>[a-z]+)\] (.*)' }"#),
            "{got}"
        );
        assert!(got.contains("- move: P/{match1|lower}"), "{got}");
        loads(
            r#"require ["fileinto", "variables"];
            if address :localpart :matches "to" "*-list" { fileinto "L/${1}"; }"#,
        );
        // Captures from one of two tests: which one held decides.
        let (_, u) = rules(
            r#"require ["fileinto", "variables"];
            if anyof (header :matches "X-A" "*", header :matches "X-B" "*") { fileinto "${1}"; }"#,
        );
        assert_eq!(u.len(), 1, "{u:?}");
        // A capture the pattern does not have.
        let (_, u) = rules(
            r#"require ["fileinto", "variables"];
            if header :matches "subject" "*" { fileinto "${3}"; }"#,
        );
        assert_eq!(u.len(), 1, "{u:?}");
    }

    #[test]
    fn what_has_no_translation_is_reported_and_never_widens_a_rule() {
        let (got, u) = rules(
            r#"require ["fileinto", "envelope"];
            if envelope :is "to" "a@x" { fileinto "A"; }
            elsif header :contains "subject" "b" { fileinto "B"; }
            if header :contains "subject" "c" { redirect "x@y"; fileinto "C"; }
            vacation "away";"#,
        );
        let lines: Vec<usize> = u.iter().map(|u| u.line).collect();
        assert_eq!(lines, [2, 3, 4, 5], "{u:?}");
        assert!(
            !got.contains("move: A") && !got.contains("move: B"),
            "{got}"
        );
        assert!(
            got.contains("subject: c\n    actions:\n      - move: C"),
            "{got}"
        );
        assert!(u[1].why.contains("line 2"), "{u:?}");
        for (script, line) in [
            (r#"if header :count "ge" "Received" "5" { stop; }"#, 1),
            (
                r#"if header :value "eq" :comparator "i;ascii-numeric" "X" "5" { stop; }"#,
                1,
            ),
            (r#"if header :value "gt" "X" "5" { stop; }"#, 1),
            (r#"if header :regex "subject" "(a)\\1" { stop; }"#, 1),
            (r#"if spamtest :value "ge" "5" { stop; }"#, 1),
            (
                r#"if allof (true,
                          date :is "date" "year" "2026") { stop; }"#,
                2,
            ),
            (r#"notify "mailto:x@y";"#, 1),
            (r#"foo;"#, 1),
        ] {
            let (_, u) = rules(script);
            assert_eq!(u.len(), 1, "{script}: {u:?}");
            assert_eq!(u[0].line, line, "{script}: {u:?}");
        }
    }

    #[test]
    fn names_come_from_the_comment_above() {
        let (got, _) = rules(
            "# ---- Spam ----\n# Junk it\nif exists \"X-Spam\" { stop; }\n\n# stray\n\nif exists \"B\" { stop; }",
        );
        assert!(got.contains("- name: Junk it\n"), "{got}");
        assert!(got.contains("- name: 'line 7: stop'\n"), "{got}");
    }

    #[test]
    fn what_is_not_sieve_is_an_error_with_its_position() {
        let cases = [
            ("<?xml version='1.0'?>", (1, 1)),
            ("if true {\n  fileinto \"x\"\n}", (3, 1)),
            ("fileinto \"never closed;", (1, 10)),
            ("/* open", (1, 1)),
            ("keep;\nelsif true { keep; }", (2, 1)),
            ("if true keep;", (1, 1)),
            ("reject text:\nno end\n", (1, 8)),
            ("if header :contains [\"a\" \"b\"] { stop; }", (1, 26)),
            ("size :over 99999999999999999999K;", (1, 12)),
        ];
        for (text, (line, col)) in cases {
            let e = import(text, "t", Layout::Config).expect_err(text);
            assert_eq!((e.line, e.col), (line, col), "{text}: {e}");
        }
        let deep = format!("{}{}", "if true {".repeat(200), "}".repeat(200));
        assert!(import(&deep, "t", Layout::Config).is_err());
        let deep = format!("if {}true{} {{ stop; }}", "not ".repeat(500), "");
        assert!(import(&deep, "t", Layout::Config).is_err());
    }

    #[test]
    fn multi_line_strings_and_escapes_are_read() {
        let tokens = lex("\"a\\\"b\\\\c\\d\" text: # x\r\n..dot\nline\n.\r\n").unwrap();
        assert_eq!(tokens[0].tok, Tok::Str("a\"b\\cd".into()));
        assert_eq!(tokens[1].tok, Tok::Str(".dot\nline\n".into()));
    }

    #[test]
    fn dotted_folders_under_inbox_become_paths() {
        let (got, _) = rules(
            r#"require "fileinto"; if exists "A" { fileinto "INBOX.Lists.rust"; } fileinto "INBOX.Other";"#,
        );
        assert!(got.contains("- move: Lists/rust"), "{got}");
        assert!(got.contains("- move: Other"), "{got}");
    }
}
