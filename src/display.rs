//! Text from mail and from servers, made safe to show: control characters
//! (which can move the cursor, recolour or retitle a terminal) and
//! invisible or text-direction characters (which can make one name look
//! like another) are written as escapes. Ground floor: used wherever such
//! text reaches a terminal, a log line or an error.

use std::fmt::Write as _;

/// Characters that change how text around them is shown, or show as
/// nothing: zero-width marks and joiners, bidirectional embeddings,
/// overrides and isolates (Unicode UAX #9), the word joiner and invisible
/// operators, the Mongolian vowel separator, the soft hyphen and a
/// byte-order mark.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}'
        | '\u{061C}'
        | '\u{180E}'
        | '\u{FEFF}'
        | '\u{00AD}')
}

/// `text` with every control, invisible or text-direction character
/// written as `\u{...}` (tab, CR and LF as `\t`, `\r`, `\n`).
pub fn escape(text: &str) -> String {
    if !text.chars().any(|c| c.is_control() || is_invisible(c)) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() || is_invisible(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_could_fool_a_reader_is_written_as_an_escape() {
        let cases = [
            ("Lists/rust", "Lists/rust"),
            ("Ümlaut 日本", "Ümlaut 日本"),
            ("evil\u{202E}fdp.exe", "evil\\u{202e}fdp.exe"),
            ("a\u{200B}b", "a\\u{200b}b"),
            ("\u{1b}[2J", "\\u{1b}[2J"),
            ("a\r\nb\tc", "a\\r\\nb\\tc"),
            ("\u{9b}31m", "\\u{9b}31m"),
        ];
        for (text, want) in cases {
            assert_eq!(escape(text), want, "{text:?}");
        }
    }
}
