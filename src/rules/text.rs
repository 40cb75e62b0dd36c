//! Text tests: the `is` / `contains` / `glob` / `regex` matchers that every
//! header, address and body condition uses, compiled once at load time, and
//! the numeric comparisons (`over`, `under`, `at_least`, `at_most`) spam
//! scores need. Pure; `rules::evaluate` calls [`TextTest::find`].

use std::collections::BTreeMap;
use std::fmt;

use regex::Regex;

/// Named regex captures collected while a rule matches, for templates.
pub type Captures = BTreeMap<String, String>;

/// A compiled text test.
#[derive(Debug, Clone)]
pub enum TextTest {
    /// Case-insensitive substring (Unicode case folding).
    Contains { pattern: String, folded: String },
    /// Case-insensitive whole value.
    Is { pattern: String, folded: String },
    /// `*` and `?` wildcards over the whole value, case-insensitive.
    Glob { pattern: String, regex: Regex },
    /// Rust `regex` syntax, case-sensitive unless `(?i)`.
    Regex { pattern: String, regex: Regex },
    /// The value read as a number (`5.2`, `-0.1`, `+3`, as spam filters
    /// write scores) compared with `limit`; a value that is not a number
    /// never holds (Sieve's `:value` with `i;ascii-numeric`, RFC 5231).
    Number { compare: Compare, limit: f64 },
    /// Any of the tests.
    Any(Vec<TextTest>),
}

/// How a number is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    Over,
    Under,
    AtLeast,
    AtMost,
}

impl Compare {
    pub const KEYS: [(&'static str, Compare); 4] = [
        ("over", Compare::Over),
        ("under", Compare::Under),
        ("at_least", Compare::AtLeast),
        ("at_most", Compare::AtMost),
    ];

    fn holds(self, value: f64, limit: f64) -> bool {
        match self {
            Compare::Over => value > limit,
            Compare::Under => value < limit,
            Compare::AtLeast => value >= limit,
            Compare::AtMost => value <= limit,
        }
    }

    fn words(self) -> &'static str {
        match self {
            Compare::Over => "is over",
            Compare::Under => "is under",
            Compare::AtLeast => "is at least",
            Compare::AtMost => "is at most",
        }
    }
}

/// The number a value starts with, blanks aside: an optional sign, digits
/// and one decimal point (`5.2`, `-0.1`, `+3`, `.5`, `7 (hits)`). `None`
/// where it starts with anything else.
pub fn number(value: &str) -> Option<f64> {
    let t = value.trim_start();
    let bytes = t.as_bytes();
    let mut end = usize::from(matches!(bytes.first(), Some(b'+' | b'-')));
    let (mut digits, mut point) = (0, false);
    while let Some(&b) = bytes.get(end) {
        match b {
            b'0'..=b'9' => digits += 1,
            b'.' if !point => point = true,
            _ => break,
        }
        end += 1;
    }
    if digits == 0 {
        return None;
    }
    t[..end].trim_end_matches('.').parse().ok()
}

/// Limits for user regexes: the `regex` crate matches in linear time, and
/// these caps bound compile time and memory for hostile or careless patterns.
const REGEX_SIZE_LIMIT: usize = 1 << 20;
pub const MAX_PATTERN_LEN: usize = 4096;

/// Folds case for comparison: lower case per character (so a final sigma is
/// not special), with `ς` folded to `σ`. Characters are not expanded (`ß`
/// stays `ß`, not `ss`): IMAP servers fold that way, and the server-side
/// pre-filter must never miss what this test would match.
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            'ς' => out.push('σ'),
            'ẞ' => out.push('ß'),
            c if c.is_ascii() => out.push(c.to_ascii_lowercase()),
            c => out.extend(c.to_lowercase()),
        }
    }
    out
}

pub fn compile_regex(pattern: &str) -> Result<Regex, String> {
    if pattern.len() > MAX_PATTERN_LEN {
        return Err(format!("pattern is longer than {MAX_PATTERN_LEN} bytes"));
    }
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| e.to_string())
}

/// `*` matches any run of characters, `?` one character; the rest is literal.
pub fn compile_glob(pattern: &str) -> Result<Regex, String> {
    let mut re = String::from("(?is)^");
    for c in pattern.chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c => re.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
        }
    }
    re.push('$');
    compile_regex(&re)
}

impl TextTest {
    pub fn contains(pattern: &str) -> Self {
        TextTest::Contains {
            pattern: pattern.to_string(),
            folded: fold(pattern),
        }
    }

    pub fn is(pattern: &str) -> Self {
        TextTest::Is {
            pattern: pattern.to_string(),
            folded: fold(pattern),
        }
    }

    /// Does the test hold for `value`? Named groups of a matching regex are
    /// added to `caps`.
    pub fn find(&self, value: &str, caps: &mut Captures) -> bool {
        match self {
            TextTest::Contains { folded, .. } => fold(value).contains(folded.as_str()),
            TextTest::Is { folded, .. } => fold(value) == *folded,
            TextTest::Glob { regex, .. } => regex.is_match(value),
            TextTest::Regex { regex, .. } => match regex.captures(value) {
                Some(m) => {
                    for name in regex.capture_names().flatten() {
                        if let Some(g) = m.name(name) {
                            caps.insert(name.to_string(), g.as_str().to_string());
                        }
                    }
                    true
                }
                None => false,
            },
            TextTest::Number { compare, limit } => {
                number(value).is_some_and(|n| compare.holds(n, *limit))
            }
            TextTest::Any(tests) => tests.iter().any(|t| t.find(value, caps)),
        }
    }

    /// Whether the test compares numbers (so a value that is none is worth
    /// saying so in `--explain`).
    pub fn is_numeric(&self) -> bool {
        match self {
            TextTest::Number { .. } => true,
            TextTest::Any(tests) => tests.iter().any(TextTest::is_numeric),
            _ => false,
        }
    }

    /// Every named group of the regexes in this test.
    pub fn capture_names(&self, out: &mut Vec<String>) {
        match self {
            TextTest::Regex { regex, .. } => {
                out.extend(regex.capture_names().flatten().map(str::to_string))
            }
            TextTest::Any(tests) => tests.iter().for_each(|t| t.capture_names(out)),
            _ => {}
        }
    }
}

impl fmt::Display for TextTest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TextTest::Contains { pattern, .. } => write!(f, "contains {pattern:?}"),
            TextTest::Is { pattern, .. } => write!(f, "is {pattern:?}"),
            TextTest::Glob { pattern, .. } => write!(f, "matches glob {pattern:?}"),
            TextTest::Regex { pattern, .. } => write!(f, "matches regex {pattern:?}"),
            TextTest::Number { compare, limit } => write!(f, "{} {limit}", compare.words()),
            TextTest::Any(tests) => {
                f.write_str("any of [")?;
                for (i, t) in tests.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{t}")?;
                }
                f.write_str("]")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(p: &str) -> TextTest {
        TextTest::Glob {
            pattern: p.into(),
            regex: compile_glob(p).unwrap(),
        }
    }

    fn re(p: &str) -> TextTest {
        TextTest::Regex {
            pattern: p.into(),
            regex: compile_regex(p).unwrap(),
        }
    }

    #[test]
    fn text_tests() {
        let cases: Vec<(TextTest, &str, bool)> = vec![
            (TextTest::contains("invoice"), "Your INVOICE #42", true),
            (TextTest::contains("invoice"), "Your receipt", false),
            (TextTest::contains("ÄRGER"), "kein ärger hier", true),
            (TextTest::contains("straße"), "STRAẞE 1", true),
            (TextTest::contains("strasse"), "Straße 1", false),
            (TextTest::contains("ΣΟΦΟΣ"), "σοφος", true),
            (TextTest::is("github.com"), "GitHub.com", true),
            (TextTest::is("github.com"), "notgithub.com", false),
            (glob("*.github.com"), "api.GITHUB.com", true),
            (glob("*.github.com"), "github.com", false),
            (glob("a?c"), "abc", true),
            (glob("a?c"), "abbc", false),
            (glob("a.c"), "abc", false),
            (glob("[x]*"), "[x] ok", true),
            (re("^Re: "), "Re: hi", true),
            (re("^re: "), "Re: hi", false),
            (re("(?i)^re: "), "Re: hi", true),
            (
                TextTest::Any(vec![TextTest::is("a"), TextTest::contains("zz")]),
                "xzzx",
                true,
            ),
            (
                TextTest::Any(vec![TextTest::is("a"), TextTest::is("b")]),
                "c",
                false,
            ),
        ];
        for (test, value, want) in cases {
            let mut caps = Captures::new();
            assert_eq!(test.find(value, &mut caps), want, "{test} on {value:?}");
        }
    }

    #[test]
    fn numbers_are_read_as_spam_filters_write_them() {
        let cases = [
            ("5.2", Some(5.2)),
            ("  -0.1", Some(-0.1)),
            ("+3", Some(3.0)),
            (".5", Some(0.5)),
            ("7.", Some(7.0)),
            ("12 (hits)", Some(12.0)),
            ("1.2.3", Some(1.2)),
            ("YES", None),
            ("", None),
            ("-", None),
            ("score=5", None),
        ];
        for (text, want) in cases {
            assert_eq!(number(text), want, "{text:?}");
        }
        let n = |compare, limit| TextTest::Number { compare, limit };
        let checks = [
            (n(Compare::Over, 5.0), "5.1", true),
            (n(Compare::Over, 5.0), "5", false),
            (n(Compare::AtLeast, 5.0), "5.0", true),
            (n(Compare::Under, 0.0), "-0.5", true),
            (n(Compare::AtMost, 2.0), "2", true),
            (n(Compare::AtMost, 2.0), "not a number", false),
            (n(Compare::Under, 10.0), "", false),
        ];
        for (test, value, want) in checks {
            assert_eq!(
                test.find(value, &mut Captures::new()),
                want,
                "{test} on {value:?}"
            );
        }
    }

    #[test]
    fn regex_captures_named_groups_only_when_matched() {
        let t = re(r"^\[(?P<list>[a-z-]+)\](?: (?P<tag>\w+))?");
        let mut caps = Captures::new();
        assert!(t.find("[rust-users] hello", &mut caps));
        assert_eq!(caps.get("list").map(String::as_str), Some("rust-users"));
        assert_eq!(caps.get("tag").map(String::as_str), Some("hello"));
        let mut caps = Captures::new();
        assert!(t.find("[rust-users]", &mut caps));
        assert_eq!(
            caps.get("tag"),
            None,
            "a group that did not take part is absent"
        );
        let mut names = Vec::new();
        t.capture_names(&mut names);
        assert_eq!(names, ["list", "tag"]);
    }

    #[test]
    fn oversized_or_invalid_regexes_are_refused() {
        assert!(compile_regex(&"a".repeat(MAX_PATTERN_LEN + 1)).is_err());
        assert!(compile_regex("a{1000}{1000}").is_err());
        assert!(
            compile_regex("(unclosed")
                .unwrap_err()
                .contains("unclosed group")
        );
    }
}
