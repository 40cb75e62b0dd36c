//! Configuration diagnostics: a position in the user's file, a message and a
//! hint, rendered as `FILE:LINE:COL: message (hint)`, and the bounded set of
//! them that a file yields. Used by every stage of `config`, so that all the
//! errors of a file are reported at once.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

/// A 1-based line and column in the configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

/// One problem in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Diagnostic {
    pub pos: Pos,
    pub message: String,
    /// A short hint shown in parentheses after the message.
    pub hint: Option<String>,
    /// Longer explanation (e.g. the regex engine's report), shown indented below.
    pub detail: Option<String>,
}

impl Diagnostic {
    pub fn new(pos: Pos, message: impl Into<String>) -> Self {
        Diagnostic {
            pos,
            message: message.into(),
            hint: None,
            detail: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        let hint = hint.into();
        if !hint.is_empty() {
            self.hint = Some(hint);
        }
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// The full report line(s), prefixed with the file name.
    pub fn render(&self, file: &str) -> String {
        let mut out = format!("{file}:{self}");
        if let Some(detail) = &self.detail {
            for line in detail.lines() {
                out.push_str("\n    ");
                out.push_str(line);
            }
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.pos.line, self.pos.col, self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

/// How many problems of a file are listed. A file can hold hundreds of
/// thousands (`rules: [a, a, a, ...]`): listing them all would cost far more
/// memory than the file, and help nobody.
pub const MAX_LISTED: usize = 1000;

/// How many names "did you mean" may compare in all, for one file. A
/// configuration needs a few thousand; a file with thousands of accounts and
/// thousands of rules naming unknown ones would need millions.
const MAX_COMPARISONS: usize = 100_000;

/// The problems found so far: in file order (at one position, in the order
/// found), each once, and only the first [`MAX_LISTED`] of them in the file,
/// plus where the others begin.
#[derive(Debug)]
pub struct Diagnostics {
    listed: BTreeMap<(Pos, usize), Diagnostic>,
    /// The listed ones again, to drop a problem found twice (an alias repeats
    /// the problems of its anchor).
    seen: HashSet<Diagnostic>,
    found: usize,
    /// The position of the first problem not listed.
    unlisted: Option<Pos>,
    /// What is left of [`MAX_COMPARISONS`].
    comparisons: usize,
}

impl Default for Diagnostics {
    fn default() -> Self {
        Diagnostics {
            listed: BTreeMap::new(),
            seen: HashSet::new(),
            found: 0,
            unlisted: None,
            comparisons: MAX_COMPARISONS,
        }
    }
}

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        if !self.wants(d.pos) {
            self.not_listed(d.pos);
            return;
        }
        if !self.seen.insert(d.clone()) {
            return;
        }
        self.listed.insert((d.pos, self.found), d);
        self.found += 1;
        if self.listed.len() > MAX_LISTED
            && let Some((_, last)) = self.listed.pop_last()
        {
            self.seen.remove(&last);
            self.not_listed(last.pos);
        }
    }

    /// Whether a problem at `pos` would be listed. Past the cap a hint is
    /// not worth computing: "did you mean" compares with every candidate.
    pub fn wants(&self, pos: Pos) -> bool {
        self.listed.len() < MAX_LISTED
            || self
                .listed
                .last_key_value()
                .is_some_and(|((last, _), _)| pos <= *last)
    }

    /// [`suggest`] for a problem at `pos`; no hint when it is not listed.
    pub fn suggest(&mut self, pos: Pos, given: &str, candidates: &[&str]) -> String {
        if !self.wants(pos) {
            return String::new();
        }
        match self.close_match(pos, given, candidates) {
            Some(c) => format!("did you mean \"{c}\"?"),
            None => format!("expected one of: {}", listing(&shown(candidates))),
        }
    }

    /// [`close_match`] for a problem at `pos`, while the file's budget of
    /// comparisons lasts; `None` when the problem is not listed.
    pub fn close_match<'a>(
        &mut self,
        pos: Pos,
        given: &str,
        candidates: &[&'a str],
    ) -> Option<&'a str> {
        if !self.wants(pos) || candidates.len() > self.comparisons {
            return None;
        }
        self.comparisons -= candidates.len();
        close_match(given, candidates)
    }

    fn not_listed(&mut self, pos: Pos) {
        self.unlisted = Some(self.unlisted.map_or(pos, |p| p.min(pos)));
    }

    pub fn is_empty(&self) -> bool {
        self.listed.is_empty()
    }

    /// The problems in file order; when some are not listed, a last line
    /// points at the first of them.
    pub fn into_vec(self) -> Vec<Diagnostic> {
        let mut out: Vec<Diagnostic> = self.listed.into_values().collect();
        if let Some(pos) = self.unlisted {
            out.push(Diagnostic::new(
                pos,
                format!(
                    "too many errors: only the first {MAX_LISTED} are listed, the others start here"
                ),
            ));
        }
        out
    }
}

/// Names longer than this get no "did you mean": typos are made in short
/// names, and the comparison costs the product of the two lengths.
const MAX_SUGGESTED_LEN: usize = 64;

/// How many names a hint lists; the rest are counted. Account names come from
/// the file, and a hint per rule listing thousands of them would make the
/// report quadratic in the file's size.
const MAX_NAMES: usize = 30;

/// The candidate a misspelt name most likely meant, if one is close enough.
pub fn close_match<'a>(given: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lower = given.to_lowercase();
    let len = given.chars().count();
    if len > MAX_SUGGESTED_LEN {
        return None;
    }
    let allowed = 1.max(len / 3);
    let lower_len = lower.chars().count();
    candidates
        .iter()
        .filter(|c| !c.starts_with('$'))
        // The distance is at least the difference in length; a character
        // takes at most 4 bytes, so a long name is passed over uncounted.
        .filter(|c| {
            c.len() <= 4 * (lower_len + allowed) && c.chars().count().abs_diff(lower_len) <= allowed
        })
        .map(|c| (distance(&lower, c), *c))
        .min()
        .filter(|(d, _)| *d <= allowed && *d < len)
        .map(|(_, c)| c)
}

/// "did you mean" for a misspelt name, else the list of valid names.
pub fn suggest(given: &str, candidates: &[&str]) -> String {
    match close_match(given, candidates) {
        Some(c) => format!("did you mean \"{c}\"?"),
        None => format!("expected one of: {}", listing(&shown(candidates))),
    }
}

/// The candidates a user may write (`$`-names are internal).
fn shown<'a>(candidates: &[&'a str]) -> Vec<&'a str> {
    candidates
        .iter()
        .copied()
        .filter(|c| !c.starts_with('$'))
        .collect()
}

/// `names` joined with commas, at most [`MAX_NAMES`] of them.
pub fn listing(names: &[&str]) -> String {
    let mut out = names[..names.len().min(MAX_NAMES)].join(", ");
    if names.len() > MAX_NAMES {
        out.push_str(&format!(", and {} more", names.len() - MAX_NAMES));
    }
    out
}

/// `text` in double quotes, for a message. `"`, `\` and control characters
/// are escaped as a YAML double-quoted string writes them, so the user can
/// search for it or paste it back into the file.
pub fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            // Control characters are U+0000-U+001F and U+007F-U+009F.
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Optimal string alignment distance: Levenshtein plus adjacent swaps, so
/// `form` is one edit from `from`.
fn distance(a: &str, b: &str) -> usize {
    if a.is_ascii() && b.is_ascii() {
        osa(a.as_bytes(), b.as_bytes())
    } else {
        let a: Vec<char> = a.chars().collect();
        let b: Vec<char> = b.chars().collect();
        osa(&a, &b)
    }
}

fn osa<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    // Three rows of the table are enough: the swap looks two rows back.
    let mut two_back = vec![0usize; b.len() + 1];
    let mut back: Vec<usize> = (0..=b.len()).collect();
    let mut row = vec![0usize; b.len() + 1];
    for i in 1..=a.len() {
        row[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (back[j] + 1).min(row[j - 1] + 1).min(back[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(two_back[j - 2] + 1);
            }
            row[j] = best;
        }
        std::mem::swap(&mut two_back, &mut back);
        std::mem::swap(&mut back, &mut row);
    }
    back[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let keys = ["from", "subject", "size", "seen"];
        let cases = [
            ("subjet", "did you mean \"subject\"?"),
            ("form", "did you mean \"from\"?"),
            ("Subject", "did you mean \"subject\"?"),
            ("sise", "did you mean \"size\"?"),
            ("xyzzy", "expected one of: from, subject, size, seen"),
            ("a", "expected one of: from, subject, size, seen"),
        ];
        for (given, want) in cases {
            assert_eq!(suggest(given, &keys), want, "{given}");
        }
    }

    #[test]
    fn distances() {
        let cases = [
            ("", "", 0),
            ("abc", "", 3),
            ("", "abc", 3),
            ("from", "from", 0),
            ("form", "from", 1),
            ("subjet", "subject", 1),
            ("kitten", "sitting", 3),
            ("ca", "abc", 3),
            ("starttsl", "starttls", 1),
        ];
        for (a, b, want) in cases {
            assert_eq!(distance(a, b), want, "{a} {b}");
        }
    }

    #[test]
    fn long_names_get_no_suggestion_and_cost_nothing() {
        let long = "a".repeat(200_000);
        let other = format!("{long}b");
        assert_eq!(close_match(&long, &[&other]), None);
        assert_eq!(
            close_match(&"a".repeat(64), &[&"a".repeat(65)]),
            Some(&*"a".repeat(65))
        );
        assert_eq!(close_match(&"a".repeat(65), &[&"a".repeat(66)]), None);
    }

    #[test]
    fn listings_are_capped() {
        let names: Vec<String> = (1..=32).map(|i| format!("n{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        assert_eq!(listing(&names[..2]), "n1, n2");
        assert_eq!(listing(&names[..30]).matches(", ").count(), 29);
        let all = listing(&names);
        assert!(all.starts_with("n1, n2, "), "{all}");
        assert!(all.ends_with(", n30, and 2 more"), "{all}");
        assert_eq!(listing(&[]), "");
    }

    #[test]
    fn quoting() {
        let cases = [
            ("A//B", r#""A//B""#),
            ("", r#""""#),
            ("say \"hi\"", r#""say \"hi\"""#),
            ("a\\b", r#""a\\b""#),
            ("two\nlines\tand\r", r#""two\nlines\tand\r""#),
            (
                "bell\u{7} del\u{7f} c1\u{85}",
                r#""bell\x07 del\x7f c1\x85""#,
            ),
            // Letters of any script, combining marks included, stay as written.
            ("Cafe\u{301} Ärger 日本", "\"Cafe\u{301} Ärger 日本\""),
        ];
        for (text, want) in cases {
            assert_eq!(quoted(text), want, "{text}");
        }
    }

    fn at(line: u32, message: &str) -> Diagnostic {
        Diagnostic::new(Pos { line, col: 1 }, message)
    }

    #[test]
    fn diagnostics_come_out_in_file_order_each_once() {
        let mut d = Diagnostics::default();
        for (line, message) in [(3, "c"), (1, "b"), (3, "c"), (1, "a"), (2, "x")] {
            d.push(at(line, message));
        }
        let got: Vec<String> = d.into_vec().iter().map(|d| d.to_string()).collect();
        assert_eq!(got, ["1:1: b", "1:1: a", "2:1: x", "3:1: c"]);
    }

    #[test]
    fn only_the_first_problems_in_the_file_are_listed() {
        let mut d = Diagnostics::default();
        // Pushed last to first: the first in the file are kept all the same.
        for line in (1..=MAX_LISTED as u32 + 50).rev() {
            d.push(at(line, "bad"));
        }
        // A copy of a listed one does not count as another.
        d.push(at(1, "bad"));
        assert!(d.wants(Pos { line: 7, col: 1 }));
        assert!(!d.wants(Pos { line: 1001, col: 1 }));
        assert_eq!(d.suggest(Pos { line: 2000, col: 1 }, "from", &["from"]), "");
        let all = d.into_vec();
        assert_eq!(all.len(), MAX_LISTED + 1);
        assert_eq!(all[MAX_LISTED - 1].to_string(), "1000:1: bad");
        assert_eq!(
            all[MAX_LISTED].to_string(),
            "1001:1: too many errors: only the first 1000 are listed, the others start here"
        );

        let mut d = Diagnostics::default();
        for line in 1..=MAX_LISTED as u32 {
            d.push(at(line, "bad"));
        }
        d.push(at(5, "bad"));
        assert_eq!(
            d.into_vec().len(),
            MAX_LISTED,
            "a full list, and nothing more"
        );
    }

    #[test]
    fn did_you_mean_stops_when_its_budget_is_spent() {
        let mut d = Diagnostics::default();
        let pos = Pos { line: 1, col: 1 };
        let many: Vec<String> = (0..MAX_COMPARISONS / 2).map(|i| format!("a{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(d.close_match(pos, "a7x", &many), Some("a7"));
        assert_eq!(d.close_match(pos, "a7x", &many), Some("a7"));
        // Spent: the hint lists names instead.
        assert_eq!(d.close_match(pos, "a7x", &many), None);
        assert_eq!(d.close_match(pos, "subjet", &["subject"]), None);
        let hint = d.suggest(pos, "a7x", &many[..3]);
        assert_eq!(hint, "expected one of: a0, a1, a2");
    }

    #[test]
    fn render_puts_detail_on_indented_lines() {
        let d = Diagnostic::new(Pos { line: 3, col: 9 }, "invalid regex")
            .hint("see below")
            .detail("a(\n ^\nerror: unclosed group");
        assert_eq!(
            d.render("r.yaml"),
            "r.yaml:3:9: invalid regex (see below)\n    a(\n     ^\n    error: unclosed group"
        );
    }
}
