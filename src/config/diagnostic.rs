//! Configuration diagnostics: a position in the user's file, a message and a
//! hint, rendered as `FILE:LINE:COL: message (hint)`. Used by every stage of
//! `config` so that all errors of a file are reported at once.

use std::fmt;

/// A 1-based line and column in the configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

/// One problem in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// The candidate a misspelt name most likely meant, if one is close enough.
pub fn close_match<'a>(given: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lower = given.to_lowercase();
    let len = given.chars().count();
    candidates
        .iter()
        .filter(|c| !c.starts_with('$'))
        .map(|c| (distance(&lower, c), *c))
        .min()
        .filter(|(d, _)| *d <= 1.max(len / 3) && *d < len)
        .map(|(_, c)| c)
}

/// "did you mean" for a misspelt name, else the list of valid names.
pub fn suggest(given: &str, candidates: &[&str]) -> String {
    match close_match(given, candidates) {
        Some(c) => format!("did you mean \"{c}\"?"),
        None => {
            let names: Vec<&str> = candidates
                .iter()
                .copied()
                .filter(|c| !c.starts_with('$'))
                .collect();
            format!("expected one of: {}", names.join(", "))
        }
    }
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
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
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
