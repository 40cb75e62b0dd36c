//! How decisions and plans are shown: one JSON object per message, or text
//! lines with an optional `--explain` trace, and the dry-run table. Shared
//! by `mailwarden test` and `run` so both print the same fields; mail text
//! is escaped before it reaches a terminal.

use serde::Serialize;

use crate::plan::{MailboxPlan, Step, messages};
use crate::rules::evaluate::{CondTrace, Decision, Disposition, RuleTrace};
use crate::rules::{Flag, Target};

/// The JSON shape of one decision. `destination` is null when the message
/// stays; for SPECIAL-USE targets it is the fallback name and `special_use`
/// names the attribute the server is asked for first.
#[derive(Debug, Serialize)]
pub struct DecisionJson<'a> {
    pub rule: Option<&'a str>,
    pub rules: &'a [String],
    pub action: Option<Disposition>,
    pub destination: Option<&'a str>,
    pub special_use: Option<&'a str>,
    pub expunge: bool,
    pub flags_added: Vec<String>,
    pub flags_removed: Vec<String>,
    pub copies: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<Vec<TraceJson<'a>>>,
}

#[derive(Debug, Serialize)]
pub struct TraceJson<'a> {
    pub rule: &'a str,
    pub matched: bool,
    pub conditions: Vec<CondJson<'a>>,
}

#[derive(Debug, Serialize)]
pub struct CondJson<'a> {
    pub condition: &'a str,
    pub held: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seen: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<CondJson<'a>>,
}

fn flags(set: &std::collections::BTreeSet<Flag>) -> Vec<String> {
    set.iter().map(Flag::imap).collect()
}

fn cond_json(c: &CondTrace) -> CondJson<'_> {
    CondJson {
        condition: &c.label,
        held: c.held,
        seen: c.seen.as_deref(),
        children: c.children.iter().map(cond_json).collect(),
    }
}

pub fn decision_json(d: &Decision, explain: bool) -> DecisionJson<'_> {
    let (destination, special_use, expunge) = match d.destination.as_ref().map(|x| &x.target) {
        None => (None, None, false),
        Some(Target::Folder(f)) => (Some(f.as_str()), None, false),
        Some(Target::SpecialUse {
            attribute,
            fallback,
        }) => (Some(*fallback), Some(*attribute), false),
        Some(Target::Expunge) => (None, None, true),
    };
    DecisionJson {
        rule: d.rule.as_deref(),
        rules: &d.matched,
        action: d.destination.as_ref().map(|x| x.disposition),
        destination,
        special_use,
        expunge,
        flags_added: flags(&d.flags_added),
        flags_removed: flags(&d.flags_removed),
        copies: d.copies.iter().map(|c| c.as_str()).collect(),
        trace: explain.then(|| {
            d.trace
                .iter()
                .map(|t| TraceJson {
                    rule: &t.rule,
                    matched: t.matched,
                    conditions: t.conditions.iter().map(cond_json).collect(),
                })
                .collect()
        }),
    }
}

/// The actions in words: `flag \Seen; copy to X; move to Y`.
pub fn actions_text(d: &Decision) -> String {
    let parts = words(&d.flags_added, &d.flags_removed, d);
    if parts.is_empty() {
        "no actions".into()
    } else {
        parts.join("; ")
    }
}

/// What a pass does to one message, in words: the flags it adds and
/// removes (not those the message has already), the copies, where it goes.
/// Empty when nothing changes.
pub fn changes_text(e: &crate::plan::Entry) -> String {
    let Ok(d) = &e.outcome else {
        return String::new();
    };
    words(&e.add, &e.remove, d).join("; ")
}

/// Flags added and removed, then the decision's copies and destination.
fn words(
    add: &std::collections::BTreeSet<Flag>,
    remove: &std::collections::BTreeSet<Flag>,
    d: &Decision,
) -> Vec<String> {
    let mut parts = Vec::new();
    if !add.is_empty() {
        parts.push(format!("flag {}", flags(add).join(" ")));
    }
    if !remove.is_empty() {
        parts.push(format!("unflag {}", flags(remove).join(" ")));
    }
    for c in &d.copies {
        parts.push(format!("copy to {c}"));
    }
    if let Some(dest) = &d.destination {
        parts.push(match (&dest.disposition, &dest.target) {
            (_, Target::Expunge) => "delete for good (expunge)".to_string(),
            (Disposition::Move, t) => format!("move to {t}"),
            (Disposition::Archive, t) => format!("archive to {t}"),
            (Disposition::Delete, t) => format!("delete to {t}"),
        });
    }
    parts
}

/// The `--explain` trace as indented lines.
pub fn trace_text(trace: &[RuleTrace], out: &mut String) {
    for t in trace {
        let mark = if t.matched { "✓" } else { "✗" };
        out.push_str(&format!("    {mark} rule \"{}\"\n", t.rule));
        if t.conditions.is_empty() {
            out.push_str("        (no conditions: matches every message)\n");
        }
        for c in &t.conditions {
            cond_text(c, 2, out);
        }
    }
}

fn cond_text(c: &CondTrace, depth: usize, out: &mut String) {
    let mark = if c.held { "✓" } else { "✗" };
    let indent = "    ".repeat(depth);
    match &c.seen {
        Some(seen) => out.push_str(&format!("{indent}{mark} {}  [{seen}]\n", c.label)),
        None => out.push_str(&format!("{indent}{mark} {}\n", c.label)),
    }
    for child in &c.children {
        cond_text(child, depth + 1, out);
    }
}

/// The dry-run plan of one mailbox as JSON lines, one per message read.
#[derive(Serialize)]
struct PlanJson<'a> {
    account: &'a str,
    mailbox: &'a str,
    uid: u32,
    message_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    decision: Option<DecisionJson<'a>>,
}

/// Mail text for a table cell: escaped (`display::escape`) and cut to
/// `width` characters.
fn cell(s: &str, width: usize) -> String {
    let clean = crate::display::escape(s);
    if clean.chars().count() <= width {
        clean
    } else {
        let mut t: String = clean.chars().take(width.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// One JSON line per message of a plan.
pub fn plan_json(out: &mut dyn std::io::Write, p: &MailboxPlan) -> std::io::Result<()> {
    for e in &p.entries {
        let line = PlanJson {
            account: &p.account,
            mailbox: p.mailbox.as_str(),
            uid: e.uid.get(),
            message_id: e.message_id.as_deref(),
            error: e.outcome.as_ref().err().map(String::as_str),
            decision: e.outcome.as_ref().ok().map(|d| decision_json(d, false)),
        };
        writeln!(
            out,
            "{}",
            serde_json::to_string(&line).expect("serializable")
        )?;
    }
    Ok(())
}

/// The dry-run output: what `run` would do, message by message, then the
/// steps as `run` would send them (server names, folders to create, copies
/// already made, and what it would refuse).
pub fn plan_text(
    out: &mut dyn std::io::Write,
    p: &MailboxPlan,
    steps: &[Step],
    exists: u32,
) -> std::io::Result<()> {
    let decided: Vec<_> = p
        .entries
        .iter()
        .filter(|e| e.outcome.as_ref().map_or(true, |d| d.rule.is_some()))
        .collect();
    writeln!(
        out,
        "{}/{} (UIDVALIDITY {}): {}, {} searched, {} to act on",
        p.account,
        cell(p.mailbox.as_str(), 200),
        p.uid_validity,
        messages(exists as usize),
        p.searched,
        decided.len()
    )?;
    if !decided.is_empty() {
        writeln!(
            out,
            "  {:>7}  {:<28}  {:<40}  {:<24}  actions",
            "UID", "From", "Subject", "Rule"
        )?;
    }
    for e in decided {
        let (rule, actions) = match &e.outcome {
            Ok(d) => (d.rule.clone().unwrap_or_default(), actions_text(d)),
            Err(err) => ("(error)".into(), err.clone()),
        };
        writeln!(
            out,
            "  {:>7}  {:<28}  {:<40}  {:<24}  {}",
            // The number: Uid's Display does not pad.
            e.uid.get(),
            cell(&e.from, 28),
            cell(&e.subject, 40),
            cell(&rule, 24),
            crate::display::escape(&actions)
        )?;
    }
    let (per_rule, failed) = p.counts();
    for (rule, count) in per_rule {
        writeln!(out, "  rule \"{}\": {}", cell(&rule, 200), messages(count))?;
    }
    if failed > 0 {
        writeln!(out, "  {} could not be decided", messages(failed))?;
    }
    for step in steps {
        if !step.op.uids().is_empty() || step.to.is_err() || !step.already.is_empty() {
            writeln!(out, "  would {}", crate::display::escape(&step.to_string()))?;
        }
    }
    Ok(())
}
