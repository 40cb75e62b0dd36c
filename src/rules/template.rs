//! Folder-name templates such as `Archive/{year}/{list}`: parsed at load time,
//! rendered per message from its dates and the rule's regex captures. Pure;
//! used by `config::validate` (parse, check names) and `rules::evaluate`.

use chrono::{DateTime, Datelike, Utc};
use std::fmt;

use super::text::Captures;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Var {
    Year,
    Month,
    Day,
    SentYear,
    SentMonth,
    SentDay,
    Capture(String),
}

const BUILTINS: [(&str, Var); 6] = [
    ("year", Var::Year),
    ("month", Var::Month),
    ("day", Var::Day),
    ("sent_year", Var::SentYear),
    ("sent_month", Var::SentMonth),
    ("sent_day", Var::SentDay),
];

pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    BUILTINS.iter().map(|(n, _)| *n)
}

/// What is done to a variable's value before it goes into the name:
/// `{list|lower}`, `{list|lower|flat}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    Lower,
    Upper,
    /// The first letter of each word upper-case, the rest lower-case.
    Title,
    /// One folder level whatever the server: `/` and `.` (the hierarchy
    /// separators servers use) become `-`.
    Flat,
}

const TRANSFORMS: [(&str, Transform); 4] = [
    ("lower", Transform::Lower),
    ("upper", Transform::Upper),
    ("title", Transform::Title),
    ("flat", Transform::Flat),
];

impl Transform {
    fn apply(self, value: &str) -> String {
        match self {
            Transform::Lower => value.to_lowercase(),
            Transform::Upper => value.to_uppercase(),
            Transform::Title => {
                let mut out = String::with_capacity(value.len());
                let mut start = true;
                for c in value.chars() {
                    if start {
                        out.extend(c.to_uppercase());
                    } else {
                        out.extend(c.to_lowercase());
                    }
                    start = !c.is_alphanumeric();
                }
                out
            }
            Transform::Flat => value.replace(['/', '.'], "-"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Var(Var, Vec<Transform>),
}

/// A folder name with `{variables}`; `{{` and `}}` stand for literal braces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

/// What a template is rendered from.
pub struct TemplateInput<'a> {
    pub arrival: DateTime<Utc>,
    pub sent: Option<DateTime<Utc>>,
    pub captures: &'a Captures,
}

impl Template {
    pub fn parse(source: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = source.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => return Err(format!("unclosed \"{{\" in {source:?}")),
                        }
                    }
                    let mut pieces = name.split('|').map(str::trim);
                    let name = pieces.next().unwrap_or_default();
                    if name.is_empty() {
                        return Err(format!("empty \"{{}}\" in {source:?}"));
                    }
                    let mut transforms = Vec::new();
                    for t in pieces {
                        match TRANSFORMS.iter().find(|(n, _)| *n == t) {
                            Some((_, t)) => transforms.push(*t),
                            None => {
                                let names: Vec<&str> = TRANSFORMS.iter().map(|(n, _)| *n).collect();
                                return Err(format!(
                                    "unknown transform \"{t}\" in {{{name}|{t}}} (transforms: {})",
                                    names.join(", ")
                                ));
                            }
                        }
                    }
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    let var = BUILTINS
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_else(|| Var::Capture(name.to_string()));
                    parts.push(Part::Var(var, transforms));
                }
                '}' => {
                    return Err(format!(
                        "stray \"}}\" in {source:?} (write \"}}}}\" for a literal brace)"
                    ));
                }
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(Template {
            source: source.to_string(),
            parts,
        })
    }

    /// Names of the regex captures this template uses.
    pub fn captures(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(Var::Capture(n), _) => Some(n.as_str()),
            _ => None,
        })
    }

    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Lit(_)))
    }

    /// Does rendering read the message's Date header (`{sent_...}`)?
    pub fn reads_sent(&self) -> bool {
        self.parts.iter().any(|p| {
            matches!(
                p,
                Part::Var(Var::SentYear | Var::SentMonth | Var::SentDay, _)
            )
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders the folder path (levels separated by `/`) and checks it is a
    /// usable name: no empty level, no control characters.
    pub fn render(&self, input: &TemplateInput) -> Result<super::FolderPath, String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Var(var, transforms) => {
                    let value = render_var(var, input)?;
                    let value = transforms.iter().fold(value, |v, t| t.apply(&v));
                    out.push_str(&value);
                }
            }
        }
        super::FolderPath::parse(&out)
    }
}

fn render_var(var: &Var, input: &TemplateInput) -> Result<String, String> {
    let sent = || {
        input
            .sent
            .ok_or_else(|| "the message has no usable Date header for {sent_...}".to_string())
    };
    Ok(match var {
        Var::Year => format!("{:04}", input.arrival.year()),
        Var::Month => format!("{:02}", input.arrival.month()),
        Var::Day => format!("{:02}", input.arrival.day()),
        Var::SentYear => format!("{:04}", sent()?.year()),
        Var::SentMonth => format!("{:02}", sent()?.month()),
        Var::SentDay => format!("{:02}", sent()?.day()),
        Var::Capture(name) => match input.captures.get(name) {
            Some(v) => v.clone(),
            None => return Err(format!("capture {{{name}}} did not take part in the match")),
        },
    })
}

/// A folder path as rules write it: levels separated by `/`, each level
/// visible and distinct: no empty or all-blank level, no control
/// character, no zero-width or bidirectional-control character (a header
/// value could otherwise make folders that look empty or like another).
pub fn check_folder(path: &str) -> Result<(), String> {
    let shown = crate::display::escape(path);
    if path.is_empty() {
        return Err("empty folder name".into());
    }
    if path.split('/').any(str::is_empty) {
        return Err(format!("folder name \"{shown}\" has an empty level"));
    }
    if path.chars().any(char::is_control) {
        return Err(format!("folder name \"{shown}\" holds a control character"));
    }
    if let Some(c) = path.chars().find(|&c| crate::display::is_invisible(c)) {
        return Err(format!(
            "folder name \"{shown}\" holds U+{:04X}, an invisible or text-direction character",
            c as u32
        ));
    }
    if path.split('/').any(|l| l.chars().all(char::is_whitespace)) {
        return Err(format!("folder name \"{shown}\" has a blank level"));
    }
    Ok(())
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn rendering() {
        let mut caps = Captures::new();
        caps.insert("list".into(), "rust-users".into());
        caps.insert("path".into(), "a/b".into());
        caps.insert("empty".into(), "".into());
        caps.insert("nl".into(), "x\ny".into());
        caps.insert("dotted".into(), "v1.2/x/y".into());
        caps.insert("shout".into(), "ÄRGER".into());
        let input = TemplateInput {
            arrival: at("2025-03-04T23:30:00-02:00"),
            sent: Some(at("2024-12-31T10:00:00Z")),
            captures: &caps,
        };
        let no_date = TemplateInput {
            sent: None,
            ..TemplateInput { ..input }
        };
        let cases: Vec<(&str, &TemplateInput, Result<&str, &str>)> = vec![
            ("Archive/{year}/{month}", &input, Ok("Archive/2025/03")),
            (
                "Archive/{year}-{month}-{day}",
                &input,
                Ok("Archive/2025-03-05"),
            ),
            (
                "Sent/{sent_year}/{sent_month}/{sent_day}",
                &input,
                Ok("Sent/2024/12/31"),
            ),
            ("Lists/{list}", &input, Ok("Lists/rust-users")),
            ("Lists/{ list }", &input, Ok("Lists/rust-users")),
            ("Lists/{list|upper}", &input, Ok("Lists/RUST-USERS")),
            ("Lists/{list | title}", &input, Ok("Lists/Rust-Users")),
            ("Lists/{dotted|flat}", &input, Ok("Lists/v1-2-x-y")),
            ("Lists/{dotted|flat|upper}", &input, Ok("Lists/V1-2-X-Y")),
            ("Lists/{dotted}", &input, Ok("Lists/v1.2/x/y")),
            ("Lists/{shout|lower}", &input, Ok("Lists/ärger")),
            ("X/{path}", &input, Ok("X/a/b")),
            ("{{literal}}", &input, Ok("{literal}")),
            ("X/{empty}", &input, Err("empty level")),
            ("X/{nl}", &input, Err("control character")),
            ("X/{missing}", &input, Err("did not take part")),
            ("S/{sent_year}", &no_date, Err("no usable Date header")),
        ];
        for (src, inp, want) in cases {
            let got = Template::parse(src).unwrap().render(inp);
            match (want, got) {
                (Ok(w), Ok(g)) => assert_eq!(g.as_str(), w, "{src}"),
                (Err(w), Err(g)) => assert!(g.contains(w), "{src}: {g}"),
                (w, g) => panic!("{src}: wanted {w:?}, got {g:?}"),
            }
        }
    }

    #[test]
    fn parse_errors_and_capture_names() {
        assert!(Template::parse("A/{year").unwrap_err().contains("unclosed"));
        assert!(Template::parse("A/{}").unwrap_err().contains("empty"));
        assert!(Template::parse("A/}").unwrap_err().contains("stray"));
        assert_eq!(
            Template::parse("L/{l|lowr}").unwrap_err(),
            "unknown transform \"lowr\" in {l|lowr} (transforms: lower, upper, title, flat)"
        );
        let t = Template::parse("L/{list|lower}/{year|flat}").unwrap();
        assert_eq!(t.captures().collect::<Vec<_>>(), ["list"]);
        let t = Template::parse("L/{list}/{year}/{tag}").unwrap();
        assert_eq!(t.captures().collect::<Vec<_>>(), ["list", "tag"]);
        assert!(!t.is_literal());
        assert!(Template::parse("Plain/Folder").unwrap().is_literal());
    }
}
