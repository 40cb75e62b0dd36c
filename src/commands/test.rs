//! `mailwarden test`: evaluates the rules on message files offline and
//! prints, per message, the deciding rule, the actions and (with
//! `--explain`) which conditions held. A file that cannot be read or parsed
//! is reported and the others are still evaluated.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::load_config;
use crate::cli::{ConfigArg, Format, Outcome, parse_time};
use crate::config::Config;
use crate::config::units::parse_size;
use crate::duplicates::Seen;
use crate::message::{Arrival, Message, Meta};
use crate::output::{Stdout, stderr_line};
use crate::report::{DecisionJson, actions_text, decision_json, trace_text};
use crate::rules::{Decision, Flag, SystemFlag, evaluate};

#[derive(Debug, Clone, clap::Args)]
pub struct TestArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Message files (.eml), directories of them, or Maildirs
    #[arg(required = true, value_name = "MSG")]
    pub paths: Vec<PathBuf>,
    /// The time rules compare against [default: the current time]
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub now: Option<DateTime<Utc>>,
    /// Arrival time of every message [default: its Date header; in a Maildir, the file's mtime]
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub received: Option<DateTime<Utc>>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Show which conditions of each rule held
    #[arg(long)]
    pub explain: bool,
    /// Evaluate as this account [default: the only, or first, account]
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,
    /// Evaluate as if the messages were in this mailbox
    #[arg(long, default_value = "INBOX", value_name = "NAME")]
    pub mailbox: String,
    /// Larger files are reported, not read
    #[arg(long, default_value = "32MB", value_parser = parse_size, value_name = "SIZE")]
    pub max_size: u64,
}

/// A file to evaluate and what its location says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub path: PathBuf,
    /// In a Maildir: the flags from its name (and arrival = mtime).
    pub maildir_flags: Option<BTreeSet<Flag>>,
    /// What the file cannot tell, and `test` therefore took as unset: a
    /// loose `.eml` has no flags and no keywords; a Maildir without
    /// Dovecot's keyword file has no keyword names.
    pub unknown: Vec<&'static str>,
}

/// Maildir info flags (`:2,FRS`): D draft, F flagged, R replied, S seen,
/// T trashed; lower-case letters are keywords, `a` the first name in the
/// folder's `dovecot-keywords` file (`keywords`), `b` the second...
pub fn maildir_flags(file_name: &str, keywords: &[(usize, String)]) -> BTreeSet<Flag> {
    let mut flags = BTreeSet::new();
    if let Some((_, info)) = file_name.rsplit_once(":2,") {
        for c in info.chars() {
            match c {
                'D' => flags.insert(Flag::System(SystemFlag::Draft)),
                'F' => flags.insert(Flag::System(SystemFlag::Flagged)),
                'R' => flags.insert(Flag::System(SystemFlag::Answered)),
                'S' => flags.insert(Flag::System(SystemFlag::Seen)),
                'T' => flags.insert(Flag::Deleted),
                'a'..='z' => {
                    let index = c as usize - 'a' as usize;
                    match keywords.iter().find(|(i, _)| *i == index) {
                        Some((_, name)) => Flag::parse(name).is_ok_and(|f| flags.insert(f)),
                        None => false,
                    }
                }
                _ => false,
            };
        }
    }
    flags
}

/// Dovecot's keyword names of a Maildir (`dovecot-keywords`: one
/// `INDEX NAME` per line); `None` where the file is not there.
pub fn maildir_keywords(maildir: &Path) -> Option<Vec<(usize, String)>> {
    let text = fs::read_to_string(maildir.join("dovecot-keywords")).ok()?;
    Some(
        text.lines()
            .filter_map(|l| {
                let (i, name) = l.split_once(' ')?;
                Some((i.trim().parse().ok()?, name.trim().to_string()))
            })
            .filter(|(i, _)| *i < 26)
            .collect(),
    )
}

fn is_maildir(dir: &Path) -> bool {
    dir.join("cur").is_dir() && dir.join("new").is_dir()
}

fn in_maildir(file: &Path) -> bool {
    let parent = file.parent();
    let leaf = parent.and_then(Path::file_name).and_then(|n| n.to_str());
    matches!(leaf, Some("cur" | "new")) && parent.and_then(Path::parent).is_some_and(is_maildir)
}

/// Expands the command-line paths into files, in a stable order. Problems
/// (a missing path, an unreadable folder) are returned in place.
pub fn collect(paths: &[PathBuf]) -> Vec<Result<Input, (PathBuf, String)>> {
    let mut out = Vec::new();
    for p in paths {
        walk(p, 0, &mut out);
    }
    out
}

const MAX_DEPTH: usize = 32;

fn walk(path: &Path, depth: usize, out: &mut Vec<Result<Input, (PathBuf, String)>>) {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return out.push(Err((path.to_path_buf(), e.to_string()))),
    };
    if meta.is_file() {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let (maildir_flags, unknown) = if in_maildir(path) {
            let root = path.parent().and_then(Path::parent).unwrap_or(path);
            match maildir_keywords(root) {
                Some(k) => (Some(maildir_flags(&name, &k)), vec![]),
                None => (Some(maildir_flags(&name, &[])), vec!["keywords"]),
            }
        } else {
            (None, vec!["flags", "keywords"])
        };
        return out.push(Ok(Input {
            path: path.to_path_buf(),
            maildir_flags,
            unknown,
        }));
    }
    if !meta.is_dir() {
        return out.push(Err((path.to_path_buf(), "not a file or folder".into())));
    }
    if depth >= MAX_DEPTH {
        return out.push(Err((path.to_path_buf(), "folders nested too deep".into())));
    }
    let children: Vec<PathBuf> = if is_maildir(path) {
        vec![path.join("cur"), path.join("new")]
    } else {
        match fs::read_dir(path) {
            Ok(entries) => {
                let mut v: Vec<PathBuf> = entries
                    .filter_map(Result::ok)
                    // Symlinked folders are not followed (no cycles); a
                    // dangling link is kept so that it is reported.
                    .filter(|e| !(e.file_type().is_ok_and(|t| t.is_symlink()) && e.path().is_dir()))
                    .map(|e| e.path())
                    .collect();
                v.sort();
                v
            }
            Err(e) => return out.push(Err((path.to_path_buf(), e.to_string()))),
        }
    };
    for child in children {
        walk(&child, depth + 1, out);
    }
}

/// Reads and evaluates one file.
pub fn evaluate_file(
    config: &Config,
    input: &Input,
    account: &str,
    args: &TestArgs,
    now: DateTime<Utc>,
    seen: &mut Seen,
) -> Result<(Message, Decision), String> {
    let meta = fs::metadata(&input.path).map_err(|e| e.to_string())?;
    if meta.len() > args.max_size {
        return Err(format!(
            "{} bytes is over the {}-byte limit (--max-size)",
            meta.len(),
            args.max_size
        ));
    }
    let raw = fs::read(&input.path).map_err(|e| e.to_string())?;
    let mtime: DateTime<Utc> = meta.modified().map(Into::into).unwrap_or(now);
    let arrival = match (args.received, &input.maildir_flags) {
        (Some(t), _) => Arrival::At(t),
        (None, Some(_)) => Arrival::At(mtime),
        (None, None) => Arrival::DateHeaderOr(mtime),
    };
    let mut msg = Message::parse(
        &raw,
        Meta {
            arrival,
            flags: input.maildir_flags.clone().unwrap_or_default(),
            size: None,
        },
    )
    .map_err(|e| e.to_string())?;
    msg.duplicate = seen.check(&msg);
    let decision = evaluate(
        config.rules_for(account, &args.mailbox),
        &msg,
        now,
        args.explain,
    )
    .map_err(|e| format!("{e}; the message would be left where it is"))?;
    Ok((msg, decision))
}

#[derive(Serialize)]
struct FileJson<'a> {
    file: String,
    message_id: Option<&'a str>,
    #[serde(flatten)]
    decision: DecisionJson<'a>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    warnings: &'a [String],
    /// With `--explain`: what the file could not tell.
    #[serde(skip_serializing_if = "Option::is_none")]
    unknown: Option<&'a [&'static str]>,
}

/// The `--explain` note on what a file cannot tell, when a rule reads it.
fn unknown_note(unknown: &[&str], reads_flags: bool) -> Option<String> {
    if unknown.is_empty() || !reads_flags {
        return None;
    }
    let what = unknown.join(" and ");
    let why = if unknown.contains(&"flags") {
        "a loose file has none; give a Maildir to test them"
    } else {
        "the Maildir has no dovecot-keywords file naming them"
    };
    Some(format!(
        "    unknown: {what}, taken as unset ({why}); seen:, flagged: and keyword: conditions are decided on that\n"
    ))
}

#[derive(Serialize)]
struct ErrorJson {
    file: String,
    error: String,
}

pub fn execute(args: &TestArgs) -> Outcome {
    let config = match load_config(&args.config.resolve()) {
        Ok(c) => c,
        Err(outcome) => return outcome,
    };
    let account = match &args.account {
        Some(a) if config.account(a).is_none() => {
            let names: Vec<&str> = config.accounts.iter().map(|a| a.name.as_str()).collect();
            stderr_line(format_args!(
                "mailwarden: unknown account {a:?} (accounts: {})",
                names.join(", ")
            ));
            return Outcome::ConfigInvalid;
        }
        Some(a) => a.clone(),
        None => {
            let first = config.accounts[0].name.clone();
            if config.accounts.len() > 1 {
                stderr_line(format_args!(
                    "note: evaluating as account {first:?}; use --account to pick another"
                ));
            }
            first
        }
    };
    let now = args.now.unwrap_or_else(Utc::now);

    // Once nobody reads standard output (`| head`), every file is still
    // evaluated, and problems still reported on standard error, so that
    // the exit code is the one a full read would have seen.
    let mut out = Stdout::new();
    let (mut moved, mut flagged, mut stayed, mut failed) = (0, 0, 0, 0);
    // `duplicate` is decided among the files given, in the order read: no
    // state is consulted, so that a test is repeatable.
    let mut seen = crate::pass::seen_for(&config, &account, None).unwrap_or_default();
    for item in collect(&args.paths) {
        let result = item.and_then(|input| {
            evaluate_file(&config, &input, &account, args, now, &mut seen)
                .map(|r| (input.path.clone(), input.unknown.clone(), r))
                .map_err(|e| (input.path, e))
        });
        match result {
            Ok((path, unknown, (msg, d))) => {
                if d.destination.is_some() {
                    moved += 1;
                } else if !d.matched.is_empty() {
                    flagged += 1;
                } else {
                    stayed += 1;
                }
                for w in &msg.warnings {
                    stderr_line(format_args!("{}: warning: {w}", path.display()));
                }
                let reads_flags = config.rules_for(&account, &args.mailbox).any(|r| {
                    r.conditions
                        .iter()
                        .any(crate::rules::Condition::reads_flags)
                });
                let shown = Shown {
                    path: &path,
                    unknown: &unknown,
                    reads_flags,
                };
                print_decision(&mut out, args, &shown, &msg, &d);
            }
            Err((path, error)) => {
                failed += 1;
                stderr_line(format_args!("{}: error: {error}", path.display()));
                if args.format == Format::Json && !out.is_closed() {
                    let line = ErrorJson {
                        file: path.display().to_string(),
                        error,
                    };
                    let _ = writeln!(
                        out,
                        "{}",
                        serde_json::to_string(&line).expect("serializable")
                    );
                }
            }
        }
    }
    if args.format == Format::Text {
        let _ = writeln!(
            out,
            "{} message{}: {moved} moved, {flagged} matched without moving, {stayed} unmatched, {failed} failed",
            moved + flagged + stayed + failed,
            if moved + flagged + stayed + failed == 1 {
                ""
            } else {
                "s"
            },
        );
    }
    let _ = out.flush();
    if failed > 0 {
        Outcome::SomeFailed
    } else {
        Outcome::Success
    }
}

/// A file's decision as it is shown, with what the file could not tell.
struct Shown<'a> {
    path: &'a Path,
    unknown: &'a [&'static str],
    /// Whether a rule reads flags or keywords, so that not knowing them
    /// matters.
    reads_flags: bool,
}

fn print_decision(out: &mut Stdout, args: &TestArgs, shown: &Shown, msg: &Message, d: &Decision) {
    let path = shown.path;
    if out.is_closed() {
        return;
    }
    // A closed output has nothing more to show; the caller goes on.
    let _ = match args.format {
        Format::Json => {
            let line = FileJson {
                file: path.display().to_string(),
                message_id: msg.message_id.as_deref(),
                decision: decision_json(d, args.explain),
                warnings: &msg.warnings,
                unknown: (args.explain && !shown.unknown.is_empty()).then_some(shown.unknown),
            };
            writeln!(
                out,
                "{}",
                serde_json::to_string(&line).expect("serializable")
            )
        }
        Format::Text => {
            let mut text = format!("{}\n", path.display());
            if let Some(s) = &msg.subject {
                text.push_str(&format!("    subject: {s}\n"));
            }
            match &d.rule {
                Some(rule) => {
                    text.push_str(&format!("    rule:    {rule}\n"));
                    if d.matched.len() > 1 {
                        text.push_str(&format!("    matched: {}\n", d.matched.join(", ")));
                    }
                    text.push_str(&format!("    actions: {}\n", actions_text(d)));
                }
                None => text.push_str(&format!("    no rule matched; stays in {}\n", args.mailbox)),
            }
            if args.explain {
                if let Some(note) = unknown_note(shown.unknown, shown.reads_flags) {
                    text.push_str(&note);
                }
                trace_text(&d.trace, &mut text);
            }
            out.print(&text)
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maildir_flag_letters() {
        let seen = Flag::System(SystemFlag::Seen);
        let cases: Vec<(&str, Vec<Flag>)> = vec![
            ("1700000000.M1P2.host:2,S", vec![seen.clone()]),
            (
                "1.M1.h:2,DFRST",
                vec![
                    Flag::System(SystemFlag::Draft),
                    Flag::System(SystemFlag::Flagged),
                    Flag::System(SystemFlag::Answered),
                    seen.clone(),
                    Flag::Deleted,
                ],
            ),
            ("1.M1.h:2,", vec![]),
            (
                "1.M1.h:2,Sab",
                vec![seen.clone(), Flag::Keyword("$Work".into())],
            ),
            // A letter the keyword file does not name is no keyword.
            ("1.M1.h:2,Sz", vec![seen]),
            ("1.M1.h", vec![]),
        ];
        let keywords = vec![(0, "$Work".to_string()), (2, "Later".to_string())];
        for (name, want) in cases {
            assert_eq!(
                maildir_flags(name, &keywords),
                want.into_iter().collect(),
                "{name}"
            );
        }
        assert_eq!(
            maildir_flags("1.M1.h:2,c", &keywords),
            [Flag::Keyword("Later".into())].into_iter().collect()
        );
    }

    #[test]
    fn collect_walks_folders_and_maildirs_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let md = dir.path().join("box");
        for sub in ["cur", "new", "tmp"] {
            fs::create_dir_all(md.join(sub)).unwrap();
        }
        fs::write(md.join("cur/1.M1.h:2,S"), "Subject: a\n\nx").unwrap();
        fs::write(md.join("new/2.M2.h"), "Subject: b\n\nx").unwrap();
        fs::write(md.join("tmp/3.M3.h"), "Subject: half-written\n").unwrap();
        fs::write(dir.path().join("a.eml"), "Subject: c\n\nx").unwrap();
        let got = collect(&[dir.path().to_path_buf(), dir.path().join("missing.eml")]);
        let names: Vec<String> = got
            .iter()
            .map(|r| match r {
                Ok(i) => format!(
                    "{} {:?}",
                    i.path.strip_prefix(dir.path()).unwrap().display(),
                    i.maildir_flags.as_ref().map(|f| f.len())
                ),
                Err((p, _)) => format!("error {}", p.file_name().unwrap().to_string_lossy()),
            })
            .collect();
        assert_eq!(
            names,
            [
                "a.eml None",
                "box/cur/1.M1.h:2,S Some(1)",
                "box/new/2.M2.h Some(0)",
                "error missing.eml"
            ]
        );
    }
}
