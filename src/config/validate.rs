//! Stage two of loading: the positioned YAML tree -> typed [`Config`] with
//! compiled rules. Collects every problem as a positioned [`Diagnostic`]
//! instead of stopping at the first. No file is opened (paths are resolved,
//! `~/` from `$HOME`, not read).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;

use super::diagnostic::{Diagnostic, Diagnostics, Pos, quoted};
use super::provider::{PROVIDER_WORDS, Provider};
use super::read::{self, Fields};
use super::units::{parse_date_bound, parse_duration, parse_size};
use super::yaml::{Node, Spanned, Value};
use super::{Account, Config, SecretSource, Tls};
use crate::rules::template::{Template, builtin_names, check_folder};
use crate::rules::text::{Compare, TextTest, compile_glob, compile_regex};
use crate::rules::{
    ARCHIVE, Action, AddressField, AddressList, AddressPart, AddressTest, AttachmentTest,
    Condition, Flag, JUNK, Rule, RuleAccounts, SPECIAL_TARGETS, SystemFlag, TRASH, Target,
    same_mailbox,
};

const FILE_KEYS: &[&str] = &["version", "accounts", "rules"];
const ACCOUNT_KEYS: &[&str] = &[
    "provider",
    "host",
    "port",
    "tls",
    "ca_file",
    "username",
    "password_command",
    "password_env",
    "password_file",
    "oauth2",
    "allow_plaintext",
    "create_folders",
    "watch",
    "poll_interval",
    "idle",
    "sweep",
    "idle_renewal",
    "timeout",
    "max_actions",
];
const TLS_WORDS: &[(&str, Tls)] = &[
    ("implicit", Tls::Implicit),
    ("starttls", Tls::StartTls),
    ("none", Tls::None),
];
const RULE_KEYS: &[&str] = &["name", "account", "mailbox", "match", "actions", "stop"];
const CONDITION_KEYS: &[&str] = &[
    "from",
    "to",
    "cc",
    "bcc",
    "sender",
    "reply_to",
    "recipient",
    "address",
    "subject",
    "header",
    "exists",
    "list",
    "body",
    "attachment",
    "size",
    "older_than",
    "newer_than",
    "sent_before",
    "sent_after",
    "received_before",
    "received_after",
    "seen",
    "flagged",
    "answered",
    "draft",
    "keyword",
    "duplicate",
    "all",
    "any",
    "not",
];
const TEXT_KEYS: &[&str] = &[
    "is", "contains", "glob", "regex", "over", "under", "at_least", "at_most",
];
const ADDRESS_KEYS: &[&str] = &[
    "is",
    "contains",
    "glob",
    "regex",
    "domain",
    "localpart",
    "user",
    "detail",
    "file",
];
const ACTION_KEYS: &[&str] = &[
    "move", "copy", "archive", "flag", "unflag", "delete", "junk", "stop",
];

const DEFAULT_POLL: Duration = Duration::from_secs(120);
const DEFAULT_SWEEP: Duration = Duration::from_secs(3600);
const DEFAULT_IDLE_RENEWAL: Duration = Duration::from_secs(300);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// RFC 2177: servers may end an IDLE after 30 minutes of inactivity.
const MAX_IDLE_RENEWAL: Duration = Duration::from_secs(29 * 60);

struct Ctx {
    diags: Diagnostics,
    /// What holds but may surprise (a case-sensitive regex).
    warnings: Vec<Diagnostic>,
    /// Globs and regexes compiled so far, by pattern. A pattern written
    /// again, or repeated by an alias, is compiled once: a large one takes
    /// milliseconds.
    globs: HashMap<String, Result<Regex, String>>,
    regexes: HashMap<String, Result<Regex, String>>,
    /// The configuration file's folder: list files are found from here.
    base: PathBuf,
    /// Address lists read so far, by path: a list named by several rules
    /// is read once.
    lists: HashMap<PathBuf, Arc<AddressList>>,
}

impl Ctx {
    fn err(&mut self, pos: Pos, msg: impl Into<String>) {
        self.diags.push(Diagnostic::new(pos, msg));
    }

    fn err_hint(&mut self, pos: Pos, msg: impl Into<String>, hint: impl Into<String>) {
        self.diags.push(Diagnostic::new(pos, msg).hint(hint));
    }

    fn compile(&mut self, glob: bool, pattern: &str) -> Result<Regex, String> {
        let cache = if glob {
            &mut self.globs
        } else {
            &mut self.regexes
        };
        if let Some(compiled) = cache.get(pattern) {
            return compiled.clone();
        }
        let compiled = if glob {
            compile_glob(pattern)
        } else {
            compile_regex(pattern)
        };
        cache.insert(pattern.to_string(), compiled.clone());
        compiled
    }

    /// `given` is not one of `known`: the hint says which one it may mean.
    fn unknown(&mut self, pos: Pos, msg: impl Into<String>, given: &str, known: &[&str]) {
        let hint = self.diags.suggest(pos, given, known);
        self.err_hint(pos, msg, hint);
    }
}

/// Validates a parsed YAML document. `base` is the configuration file's
/// folder, against which relative paths are resolved.
pub fn validate(root: &Node, base: &Path) -> Result<Config, Vec<Diagnostic>> {
    let mut cx = Ctx {
        diags: Diagnostics::default(),
        warnings: Vec::new(),
        globs: HashMap::new(),
        regexes: HashMap::new(),
        base: base.to_path_buf(),
        lists: HashMap::new(),
    };
    let start = Pos { line: 1, col: 1 };
    let Some(file) = read::fields(root, FILE_KEYS, &mut cx.diags) else {
        return Err(cx.diags.into_vec());
    };

    match file.get("version") {
        None => cx.err_hint(
            start,
            "missing key \"version\"",
            "add `version: 1` at the top",
        ),
        Some(Spanned {
            value: Value::Int(1),
            ..
        }) => {}
        Some(v) => cx.err(
            v.pos,
            format!(
                "unsupported version {} (this mailwarden reads version 1)",
                v.value.as_text().unwrap_or_else(|| v.value.kind().into())
            ),
        ),
    }

    let mut accounts = Vec::new();
    match file.get("accounts") {
        None => cx.err(start, "missing key \"accounts\""),
        Some(Spanned {
            value: Value::Map(entries),
            pos,
        }) => {
            if entries.is_empty() {
                cx.err(*pos, "no accounts defined");
            }
            for (name, node) in entries.iter() {
                // One that cannot be read keeps its name, so that rules
                // naming it do not report a second, misleading error.
                let a = account(&mut cx, name, node, base)
                    .unwrap_or_else(|| placeholder_account(&name.value));
                accounts.push(a);
            }
        }
        Some(other) => cx.err(
            other.pos,
            format!(
                "\"accounts\" must be a mapping of account names, found {}",
                other.value.kind()
            ),
        ),
    }

    let mut rules = Vec::new();
    match file.get("rules") {
        None => cx.err_hint(
            start,
            "missing key \"rules\"",
            "add `rules:` with a list of rules",
        ),
        Some(Spanned {
            value: Value::Seq(items),
            ..
        }) => {
            let names = AccountNames::of(&accounts);
            let mut seen: HashMap<String, u32> = HashMap::new();
            for node in items.iter() {
                let Some(f) = read::fields(node, RULE_KEYS, &mut cx.diags) else {
                    continue;
                };
                let name = f
                    .require("name", &mut cx.diags)
                    .and_then(|n| read::text(n, &mut cx.diags));
                if let Some(name) = &name {
                    if let Some(first) = seen.get(&name.value) {
                        cx.err_hint(
                            name.pos,
                            format!("duplicate rule name \"{}\"", name.value),
                            format!("first used at line {first}"),
                        );
                    } else {
                        seen.insert(name.value.clone(), name.pos.line);
                    }
                }
                if let Some(r) = rule(&mut cx, name, &f, node.pos, &names) {
                    rules.push(r);
                }
            }
        }
        Some(other) => cx.err(
            other.pos,
            format!(
                "\"rules\" must be a list of rules, found {}",
                other.value.kind()
            ),
        ),
    }

    if cx.diags.is_empty() {
        Ok(Config {
            accounts,
            rules,
            warnings: cx.warnings,
        })
    } else {
        Err(cx.diags.into_vec())
    }
}

fn placeholder_account(name: &str) -> Account {
    Account {
        name: name.to_string(),
        host: String::new(),
        port: 0,
        tls: Tls::Implicit,
        ca_file: None,
        username: String::new(),
        secret: SecretSource::Env(String::new()),
        provider: None,
        preset_filled: Vec::new(),
        allow_plaintext: false,
        create_folders: true,
        watch: vec!["INBOX".into()],
        poll_interval: DEFAULT_POLL,
        idle: true,
        sweep: DEFAULT_SWEEP,
        idle_renewal: DEFAULT_IDLE_RENEWAL,
        timeout: DEFAULT_TIMEOUT,
        max_actions: Some(super::DEFAULT_MAX_ACTIONS),
    }
}

/// `max_actions`: a number of messages, 1 or more, or `unlimited`.
fn max_actions(cx: &mut Ctx, node: Option<&Node>) -> Option<usize> {
    let Some(node) = node else {
        return Some(super::DEFAULT_MAX_ACTIONS);
    };
    match &node.value {
        Value::Int(n) if *n >= 1 => Some(usize::try_from(*n).unwrap_or(usize::MAX)),
        Value::Str(s) if s == "unlimited" => None,
        other => {
            let found = other.as_text().unwrap_or_else(|| other.kind().to_string());
            cx.err(
                node.pos,
                format!(
                    "max_actions takes a number of messages (1 or more) or unlimited, found {found}"
                ),
            );
            Some(super::DEFAULT_MAX_ACTIONS)
        }
    }
}

fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost") || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn expand_path(text: &str, base: &Path) -> PathBuf {
    if let Some(rest) = text.strip_prefix("~/")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    base.join(text)
}

fn duration_field(cx: &mut Ctx, node: Option<&Node>, default: Duration) -> Duration {
    let Some(s) = node.and_then(|n| read::text(n, &mut cx.diags)) else {
        return default;
    };
    match parse_duration(&s.value) {
        Ok(d) if d.is_zero() => {
            cx.err(s.pos, "the interval must be longer than 0s");
            default
        }
        Ok(d) => d,
        Err(e) => {
            cx.err(s.pos, e);
            default
        }
    }
}

/// Reads and checks one account. Every key is read even when another is
/// wrong; `None` when a key it cannot do without is missing or unreadable.
fn account(cx: &mut Ctx, name: &Spanned<String>, node: &Node, base: &Path) -> Option<Account> {
    if name.value.trim().is_empty() {
        cx.err(name.pos, "an account name cannot be empty");
    }
    let f = read::fields(node, ACCOUNT_KEYS, &mut cx.diags)?;
    let pos = node.pos;
    let d = &mut cx.diags;
    // A preset fills what the file leaves out (`provider.rs`).
    let provider = f
        .get("provider")
        .and_then(|n| read::word(n, "provider", PROVIDER_WORDS, d));
    let preset = provider.map(Provider::preset);
    let mut preset_filled = Vec::new();
    let host = match (f.get("host"), preset) {
        (Some(n), _) => read::text(n, d),
        (None, Some(p)) => {
            preset_filled.push("host");
            Some(Spanned {
                pos,
                value: p.host.to_string(),
            })
        }
        // Not known whether it would have been: no hint then.
        (None, None) if f.get("provider").is_some() => None,
        (None, None) => {
            d.push(Diagnostic::new(pos, "missing key \"host\"").hint(format!(
                "or set provider: {}",
                read::either(&PROVIDER_WORDS.iter().map(|(w, _)| *w).collect::<Vec<_>>())
            )));
            None
        }
    };
    let username = f.require("username", d).and_then(|n| read::text(n, d));
    let tls_node = f.get("tls");
    let tls = match (tls_node, preset) {
        (Some(n), _) => read::word(n, "tls", TLS_WORDS, d).unwrap_or(Tls::Implicit),
        (None, Some(p)) => {
            preset_filled.push("tls");
            p.tls
        }
        (None, None) => Tls::Implicit,
    };
    let flag = |key, default, d: &mut Diagnostics| {
        f.get(key)
            .and_then(|n| read::boolean(n, d))
            .unwrap_or(default)
    };
    let allow_plaintext = flag("allow_plaintext", false, d);
    let create_folders = flag("create_folders", true, d);
    let idle = flag("idle", true, d);
    let port = match f.get("port") {
        Some(n) => read::port(n, d).unwrap_or(0),
        // The preset's port is for its own TLS setting.
        None if preset.is_some_and(|p| p.tls == tls) => {
            preset_filled.push("port");
            preset.map_or(993, |p| p.port)
        }
        None if tls == Tls::Implicit => 993,
        None => 143,
    };
    let ca_file = f
        .get("ca_file")
        .and_then(|n| read::text(n, d))
        .map(|c| expand_path(&c.value, base));

    if let Some(host) = &host {
        if host.value.trim().is_empty() {
            cx.err(host.pos, "the host cannot be empty");
        }
        if tls == Tls::None && !allow_plaintext && !is_loopback(&host.value) {
            let at = tls_node.map_or(pos, |t| t.pos);
            cx.err_hint(
                at,
                format!(
                    "tls: none would send the password for \"{}\" unencrypted to {}",
                    name.value, host.value
                ),
                "use tls: implicit or starttls, or set allow_plaintext: true if you really mean it",
            );
        }
    }

    // Every source given, with what it names when it could be read.
    let mut sources: Vec<(&str, Pos, Option<SecretSource>)> = Vec::new();
    for key in ["password_command", "password_env", "password_file"] {
        let Some(n) = f.get(key) else { continue };
        let source = read::text(n, &mut cx.diags).map(|t| match key {
            "password_command" => SecretSource::Command(t.value),
            "password_env" => SecretSource::Env(t.value),
            _ => SecretSource::File(expand_path(&t.value, base)),
        });
        sources.push((key, n.pos, source));
    }
    if let Some(n) = f.get("oauth2") {
        let source = super::oauth::read_oauth2(n, preset.and_then(|p| p.oauth), &mut cx.diags);
        let names_provider =
            matches!(&n.value, Value::Map(e) if e.iter().any(|(k, _)| k.value == "provider"));
        if matches!(source, Some(SecretSource::OAuth2Client(_)))
            && preset.is_some_and(|p| p.oauth.is_some())
            && !names_provider
        {
            preset_filled.push("oauth2 endpoints");
        }
        sources.push(("oauth2", n.pos, source));
    }
    // The later one in the file is the one to point at.
    sources.sort_by_key(|(_, pos, _)| *pos);
    let secret = match sources.as_slice() {
        [] => {
            cx.err_hint(
                pos,
                format!("account \"{}\" has no secret", name.value),
                "set one of password_command, password_env, password_file or oauth2",
            );
            None
        }
        [(_, _, s)] => s.clone(),
        [(first, _, s), rest @ ..] => {
            for (key, at, _) in rest {
                cx.err_hint(
                    *at,
                    format!(
                        "account \"{}\" has two secret sources, {first} and {key}",
                        name.value
                    ),
                    "keep exactly one",
                );
            }
            s.clone()
        }
    };
    for (_, at, s) in &sources {
        let empty = match s {
            Some(SecretSource::Command(c) | SecretSource::Env(c)) => c.trim().is_empty(),
            // Reported by `read_oauth2`.
            Some(SecretSource::OAuth2 { .. } | SecretSource::OAuth2Client(_)) => false,
            Some(SecretSource::File(_)) | None => false,
        };
        if empty {
            cx.err(*at, "the secret source is empty");
        }
    }

    let watch = match f.get("watch") {
        None => vec!["INBOX".to_string()],
        Some(node) => mailbox_list(cx, node),
    };
    let poll_interval = duration_field(cx, f.get("poll_interval"), DEFAULT_POLL);
    let sweep = duration_field(cx, f.get("sweep"), DEFAULT_SWEEP);
    let idle_renewal = duration_field(cx, f.get("idle_renewal"), DEFAULT_IDLE_RENEWAL);
    if idle_renewal > MAX_IDLE_RENEWAL {
        let at = f.get("idle_renewal").map_or(pos, |r| r.pos);
        cx.err_hint(
            at,
            "idle_renewal must be at most 29 minutes",
            "servers may drop an IDLE after 30 minutes (RFC 2177)",
        );
    }
    let timeout = duration_field(cx, f.get("timeout"), DEFAULT_TIMEOUT);
    let max_actions = max_actions(cx, f.get("max_actions"));
    Some(Account {
        name: name.value.clone(),
        host: host?.value.trim().to_string(),
        port,
        tls,
        ca_file,
        username: username?.value,
        secret: secret?,
        provider,
        preset_filled: {
            // In the order the keys are written in the docs.
            let order = ["host", "port", "tls", "oauth2 endpoints"];
            preset_filled.sort_by_key(|k| order.iter().position(|o| o == k));
            preset_filled
        },
        allow_plaintext,
        create_folders,
        watch,
        poll_interval,
        idle,
        sweep,
        idle_renewal,
        timeout,
        max_actions,
    })
}

/// A mailbox name or a list of them.
fn mailbox_list(cx: &mut Ctx, node: &Node) -> Vec<String> {
    let items: Vec<&Node> = match &node.value {
        Value::Seq(items) => items.iter().collect(),
        _ => vec![node],
    };
    if items.is_empty() {
        cx.err(node.pos, "the list of mailboxes is empty");
    }
    let mut out = Vec::new();
    for item in items {
        match item.value.as_text() {
            Some(name) => match check_folder(&name) {
                Ok(()) => out.push(name),
                Err(e) => cx.err(item.pos, e),
            },
            None => cx.err(
                item.pos,
                format!("expected a mailbox name, found {}", item.value.kind()),
            ),
        }
    }
    out
}

/// The accounts' names, in file order and for lookup.
struct AccountNames<'a> {
    list: Vec<&'a str>,
    set: HashSet<&'a str>,
}

impl<'a> AccountNames<'a> {
    fn of(accounts: &'a [Account]) -> Self {
        let list: Vec<&str> = accounts.iter().map(|a| a.name.as_str()).collect();
        let set = list.iter().copied().collect();
        AccountNames { list, set }
    }
}

/// Reads and checks one rule. `name` is `None` when it is missing or not
/// text (reported already): the rest is still checked, and messages call it
/// by its line.
fn rule(
    cx: &mut Ctx,
    name: Option<Spanned<String>>,
    f: &Fields,
    pos: Pos,
    accounts: &AccountNames,
) -> Option<Rule> {
    let trimmed = name.as_ref().map(|n| n.value.trim().to_string());
    if let (Some(n), Some("")) = (&name, trimmed.as_deref()) {
        cx.err(n.pos, "a rule name cannot be empty");
    }
    let (who, who_as_written) = match &name {
        Some(n) => (
            format!("rule \"{}\"", n.value.trim()),
            format!("rule \"{}\"", n.value),
        ),
        None => {
            let line = format!("the rule at line {}", pos.line);
            (line.clone(), line)
        }
    };
    // A name, a list of names, or (left out) every account.
    let accounts_read = match f.get("account") {
        Some(node) => {
            let names = name_list(cx, node, "an account name").unwrap_or_default();
            for (pos, a) in &names {
                if !accounts.set.contains(a.as_str()) {
                    cx.unknown(*pos, format!("unknown account \"{a}\""), a, &accounts.list);
                }
            }
            RuleAccounts::Only(names.into_iter().map(|(_, a)| a).collect())
        }
        None => RuleAccounts::Every,
    };
    let mailboxes = match f.get("mailbox") {
        None => vec!["INBOX".to_string()],
        Some(node) => mailbox_list(cx, node),
    };
    let conditions = match f.get("match") {
        None => Vec::new(),
        Some(node) => condition_map(cx, node),
    };

    let actions_node = f.get("actions");
    let mut actions = Vec::new();
    match actions_node {
        None => {}
        Some(Spanned {
            value: Value::Seq(items),
            ..
        }) => {
            for item in items.iter() {
                if let Some(a) = action(cx, item) {
                    // Point at the value (`X` of `- move: X`), where the
                    // problem usually is.
                    let at = match &item.value {
                        Value::Map(e) if e.len() == 1 => e[0].1.pos,
                        _ => item.pos,
                    };
                    actions.push((at, a));
                }
            }
        }
        Some(other) => cx.err_hint(
            other.pos,
            format!("\"actions\" must be a list, found {}", other.value.kind()),
            "write each action on its own line starting with `- `",
        ),
    }
    let stop = f
        .get("stop")
        .and_then(|n| read::boolean(n, &mut cx.diags))
        .unwrap_or(false)
        || actions.iter().any(|(_, a)| matches!(a, Action::Stop));
    // An invalid action was reported already; "no actions" would repeat it.
    let written =
        matches!(actions_node, Some(Spanned { value: Value::Seq(items), .. }) if !items.is_empty());
    if actions.is_empty() && !stop && !written {
        let at = actions_node.map_or(pos, |a| a.pos);
        cx.err_hint(
            at,
            format!("{who} has no actions"),
            "add `actions:`, or `stop: true` to end evaluation",
        );
    }
    let mut finals = actions.iter().filter(|(_, a)| a.is_final());
    if finals.next().is_some() {
        for (at, _) in finals {
            cx.err_hint(
                *at,
                "a rule can move, archive or delete only once",
                "split it into two rules",
            );
        }
    }

    // Templates may only name captures that can take part in a match.
    let (mut live, mut negated) = (Vec::new(), Vec::new());
    for c in &conditions {
        capture_names(c, false, &mut live, &mut negated);
    }
    // A rule can hold thousands of captures, actions and mailboxes; each
    // check below is one lookup, not a scan.
    let live_set: HashSet<&str> = live.iter().map(String::as_str).collect();
    let negated_set: HashSet<&str> = negated.iter().map(String::as_str).collect();
    let mut known: Vec<&str> = builtin_names().collect();
    known.extend(&live_set);
    let reads: HashSet<&str> = mailboxes.iter().map(String::as_str).collect();
    let reads_inbox = mailboxes.iter().any(|m| same_mailbox(m, "INBOX"));
    for (at, a) in &actions {
        // Moving a mailbox into itself on every sweep: `delete` on a rule
        // reading Trash, `archive` on one reading Archive, `junk` on Junk.
        let special_target = match a {
            Action::MoveTo(t) => Some(t.clone()),
            Action::Archive(None) => Some(ARCHIVE),
            Action::Delete { expunge: false } => Some(TRASH),
            _ => None,
        };
        if let Some(Target::SpecialUse {
            attribute,
            fallback,
        }) = special_target
            && reads.contains(fallback)
        {
            cx.err_hint(
                *at,
                format!("{who} reads {fallback} and moves its messages to {attribute} ({fallback}): it would move {fallback} into itself on every pass"),
                format!("read another mailbox, or leave {fallback} out of `mailbox:`"),
            );
        }
        let Some(t) = a.templates() else { continue };
        for name in t.captures() {
            if live_set.contains(name) {
                continue;
            }
            if negated_set.contains(name) {
                cx.err(
                    *at,
                    format!(
                        "{{{name}}} is captured only under `not`, so it never takes part in a match"
                    ),
                );
            } else {
                let close = cx.diags.close_match(*at, name, &known);
                cx.err_hint(
                    *at,
                    format!(
                        "unknown template variable {{{name}}}: no regex of {who_as_written} captures it"
                    ),
                    match close {
                        Some(c) => format!("did you mean \"{c}\"?"),
                        None => format!(
                            "name a group (?P<{name}>...) in a regex of this rule, or use one of: {}",
                            builtin_names().collect::<Vec<_>>().join(", ")
                        ),
                    },
                );
            }
        }
        if let Action::Move(t) = a
            && t.is_literal()
            // As `mailboxes.iter().any(|m| same_mailbox(m, t.source()))`.
            && if same_mailbox(t.source(), "INBOX") {
                reads_inbox
            } else {
                reads.contains(t.source())
            }
        {
            cx.err(
                *at,
                format!(
                    "{who} moves messages into {}, the mailbox it reads",
                    t.source()
                ),
            );
        }
    }
    Some(Rule {
        name: trimmed?,
        accounts: accounts_read,
        mailboxes,
        conditions,
        actions: actions.into_iter().map(|(_, a)| a).collect(),
        stop,
        line: pos.line,
    })
}

fn capture_names(c: &Condition, negated: bool, live: &mut Vec<String>, neg: &mut Vec<String>) {
    let out = if negated { &mut *neg } else { &mut *live };
    match c {
        Condition::Address(_, t) | Condition::AddressIn(_, t) => address_capture_names(t, out),
        Condition::Subject(t)
        | Condition::Header(_, t)
        | Condition::List(t)
        | Condition::Body(t) => t.capture_names(out),
        Condition::Attachment(a) => {
            a.name
                .iter()
                .chain(&a.mime_type)
                .for_each(|t| t.capture_names(out));
        }
        Condition::All(cs) | Condition::Any(cs) => {
            cs.iter().for_each(|c| capture_names(c, negated, live, neg))
        }
        Condition::Not(c) => capture_names(c, true, live, neg),
        // Named here, not by `_`, so that a new condition with text tests
        // cannot be forgotten.
        Condition::Exists(_)
        | Condition::Size { .. }
        | Condition::OlderThan(_)
        | Condition::NewerThan(_)
        | Condition::SentBefore(_)
        | Condition::SentAfter(_)
        | Condition::ReceivedBefore(_)
        | Condition::ReceivedAfter(_)
        | Condition::Flag(..)
        | Condition::Keyword(_)
        | Condition::Duplicate => {}
    }
}

fn address_capture_names(t: &AddressTest, out: &mut Vec<String>) {
    match t {
        AddressTest::Parts { text, parts } => text
            .iter()
            .chain(parts.iter().map(|(_, t)| t))
            .for_each(|t| t.capture_names(out)),
        AddressTest::Any(ts) => ts.iter().for_each(|t| address_capture_names(t, out)),
        AddressTest::In(_) => {}
    }
}

/// A `match:` mapping (or an item of `all`/`any`): every key must hold.
fn condition_map(cx: &mut Ctx, node: &Node) -> Vec<Condition> {
    match &node.value {
        Value::Null => Vec::new(),
        Value::Map(entries) => entries
            .iter()
            .filter_map(|(k, v)| condition(cx, k, v))
            .collect(),
        other => {
            cx.err_hint(
                node.pos,
                format!("expected a mapping of conditions, found {}", other.kind()),
                "for example `subject: invoice`",
            );
            Vec::new()
        }
    }
}

fn group(mut conds: Vec<Condition>) -> Condition {
    if conds.len() == 1 {
        conds.pop().expect("one element")
    } else {
        Condition::All(conds)
    }
}

fn condition(cx: &mut Ctx, key: &Spanned<String>, v: &Node) -> Option<Condition> {
    let field = |f| Some((f, ()));
    let address_field = match key.value.as_str() {
        "from" => field(AddressField::From),
        "to" => field(AddressField::To),
        "cc" => field(AddressField::Cc),
        "bcc" => field(AddressField::Bcc),
        "sender" => field(AddressField::Sender),
        "reply_to" => field(AddressField::ReplyTo),
        "recipient" => field(AddressField::Recipient),
        _ => None,
    };
    if let Some((f, ())) = address_field {
        return address_test(cx, v).map(|t| Condition::Address(f, t));
    }
    let flag = |f| Some(f);
    let system = match key.value.as_str() {
        "seen" => flag(SystemFlag::Seen),
        "flagged" => flag(SystemFlag::Flagged),
        "answered" => flag(SystemFlag::Answered),
        "draft" => flag(SystemFlag::Draft),
        _ => None,
    };
    // `seen: false`, `duplicate: true`: a condition or its negation.
    let yes_no = |cx: &mut Ctx| match v.value {
        Value::Bool(b) => Some(b),
        _ => {
            let found = v.value.kind();
            cx.err(
                v.pos,
                format!("{} takes true or false, found {found}", key.value),
            );
            None
        }
    };
    if let Some(f) = system {
        return yes_no(cx).map(|b| Condition::Flag(f, b));
    }
    match key.value.as_str() {
        "subject" => text_test(cx, v, false).map(Condition::Subject),
        "list" => text_test(cx, v, false).map(Condition::List),
        "body" => text_test(cx, v, false).map(Condition::Body),
        "header" => match &v.value {
            Value::Map(entries) if !entries.is_empty() => {
                let mut out = Vec::new();
                for (name, test) in entries.iter() {
                    if let Err(e) = header_name(&name.value) {
                        cx.err(name.pos, e);
                        continue;
                    }
                    if let Some(t) = text_test(cx, test, false) {
                        out.push(Condition::Header(name.value.clone(), t));
                    }
                }
                Some(group(out))
            }
            _ => {
                cx.err_hint(
                    v.pos,
                    format!(
                        "header takes a mapping of header names to text tests, found {}",
                        v.value.kind()
                    ),
                    "for example `header: { X-Spam-Flag: \"YES\" }`",
                );
                None
            }
        },
        "duplicate" => yes_no(cx).map(|b| match b {
            true => Condition::Duplicate,
            false => Condition::Not(Box::new(Condition::Duplicate)),
        }),
        "address" => match &v.value {
            Value::Map(entries) if !entries.is_empty() => {
                let mut out = Vec::new();
                for (name, test) in entries.iter() {
                    if let Err(e) = header_name(&name.value) {
                        cx.err(name.pos, e);
                        continue;
                    }
                    if let Some(t) = address_test(cx, test) {
                        out.push(Condition::AddressIn(name.value.clone(), t));
                    }
                }
                Some(group(out))
            }
            _ => {
                cx.err_hint(
                    v.pos,
                    format!(
                        "address takes a mapping of header names to address tests, found {}",
                        v.value.kind()
                    ),
                    "for example `address: { Delivered-To: { detail: shop } }`",
                );
                None
            }
        },
        "exists" => {
            let names = name_list(cx, v, "a header name")?;
            for (pos, n) in &names {
                if let Err(e) = header_name(n) {
                    cx.err(*pos, e);
                }
            }
            Some(Condition::Exists(
                names.into_iter().map(|(_, n)| n).collect(),
            ))
        }
        "keyword" => {
            let mut keys = Vec::new();
            for (pos, n) in name_list(cx, v, "a keyword")? {
                match Flag::parse(&n) {
                    Ok(Flag::Keyword(k)) => keys.push(k),
                    Ok(_) => cx.err_hint(
                        pos,
                        format!("{n} is a system flag, not a keyword"),
                        format!("use `{}: true`", n.trim_start_matches('\\').to_lowercase()),
                    ),
                    Err(e) => cx.err(pos, e),
                }
            }
            Some(Condition::Keyword(keys))
        }
        "attachment" => attachment(cx, v),
        "size" => size(cx, v),
        "older_than" => parsed(cx, v, DURATION, parse_duration).map(Condition::OlderThan),
        "newer_than" => parsed(cx, v, DURATION, parse_duration).map(Condition::NewerThan),
        "sent_before" => parsed(cx, v, DATE, parse_date_bound).map(Condition::SentBefore),
        "sent_after" => parsed(cx, v, DATE, parse_date_bound).map(Condition::SentAfter),
        "received_before" => parsed(cx, v, DATE, parse_date_bound).map(Condition::ReceivedBefore),
        "received_after" => parsed(cx, v, DATE, parse_date_bound).map(Condition::ReceivedAfter),
        "all" | "any" => match &v.value {
            Value::Seq(items) if !items.is_empty() => {
                let conds = items.iter().map(|i| group(condition_map(cx, i))).collect();
                Some(if key.value == "all" {
                    Condition::All(conds)
                } else {
                    Condition::Any(conds)
                })
            }
            _ => {
                cx.err_hint(
                    v.pos,
                    format!(
                        "{} takes a non-empty list of conditions, found {}",
                        key.value,
                        v.value.kind()
                    ),
                    "for example `any: [ {from: a@x.org}, {subject: urgent} ]`",
                );
                None
            }
        },
        "not" => match &v.value {
            Value::Map(_) => Some(Condition::Not(Box::new(group(condition_map(cx, v))))),
            _ => {
                cx.err_hint(
                    v.pos,
                    format!(
                        "not takes a mapping of conditions, found {}",
                        v.value.kind()
                    ),
                    "for example `not: { from: { domain: example.org } }`",
                );
                None
            }
        },
        other => {
            cx.unknown(
                key.pos,
                format!("unknown key \"{other}\" in match"),
                other,
                CONDITION_KEYS,
            );
            None
        }
    }
}

/// RFC 5322 2.2: printable US-ASCII except colon.
fn header_name(name: &str) -> Result<(), String> {
    if !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b) && b != b':') {
        Ok(())
    } else {
        Err(format!("{} is not a header name", quoted(name)))
    }
}

const DURATION: &str = "a duration such as 90d";
const DATE: &str = "a date such as 2025-01-31, a duration such as 90d, or start_of_year";

/// A scalar read by `parse`; either failure is reported at the value.
fn parsed<T>(
    cx: &mut Ctx,
    v: &Node,
    what: &str,
    parse: fn(&str) -> Result<T, String>,
) -> Option<T> {
    let text = scalar(cx, v, what)?;
    parse(&text).map_err(|e| cx.err(v.pos, e)).ok()
}

fn scalar(cx: &mut Ctx, v: &Node, what: &str) -> Option<String> {
    match &v.value {
        Value::Str(_) | Value::Int(_) => v.value.as_text(),
        other => {
            cx.err(v.pos, format!("expected {what}, found {}", other.kind()));
            None
        }
    }
}

/// A name or a list of names.
fn name_list(cx: &mut Ctx, v: &Node, what: &str) -> Option<Vec<(Pos, String)>> {
    let items: Vec<&Node> = match &v.value {
        Value::Seq(items) if !items.is_empty() => items.iter().collect(),
        Value::Str(_) | Value::Int(_) => vec![v],
        other => {
            cx.err(
                v.pos,
                format!("expected {what} or a list of them, found {}", other.kind()),
            );
            return None;
        }
    };
    let mut out = Vec::new();
    for item in items {
        out.push((item.pos, scalar(cx, item, what)?));
    }
    Some(out)
}

/// A text test; `plain_is` makes a plain string mean the whole value (used
/// for `domain:` and `localpart:`).
fn text_test(cx: &mut Ctx, v: &Node, plain_is: bool) -> Option<TextTest> {
    match &v.value {
        Value::Str(_) | Value::Int(_) => {
            let s = v.value.as_text().unwrap_or_default();
            Some(if plain_is {
                TextTest::is(&s)
            } else {
                TextTest::contains(&s)
            })
        }
        Value::Seq(items) if !items.is_empty() => {
            let tests: Vec<TextTest> = items
                .iter()
                .filter_map(|i| text_test(cx, i, plain_is))
                .collect();
            (tests.len() == items.len()).then_some(TextTest::Any(tests))
        }
        Value::Map(entries) => {
            let mut found = None;
            for (k, val) in entries.iter() {
                if !TEXT_KEYS.contains(&k.value.as_str()) {
                    cx.unknown(
                        k.pos,
                        format!("unknown text test \"{}\"", k.value),
                        &k.value,
                        TEXT_KEYS,
                    );
                    continue;
                }
                if found.is_some() {
                    cx.err(k.pos, "a text test takes one of is, contains, glob or regex; write a list for several");
                    continue;
                }
                found = Some((k, val));
            }
            let (k, val) = found?;
            text_test_kind(cx, &k.value, val)
        }
        other => {
            cx.err_hint(
                v.pos,
                format!("expected a text test, found {}", other.kind()),
                "a string, a list, or one of is/contains/glob/regex",
            );
            None
        }
    }
}

fn text_test_kind(cx: &mut Ctx, kind: &str, v: &Node) -> Option<TextTest> {
    if let Some((_, compare)) = Compare::KEYS.iter().find(|(k, _)| *k == kind) {
        let text = scalar(cx, v, "a number")?;
        return match text.trim().parse::<f64>() {
            Ok(limit) if limit.is_finite() => Some(TextTest::Number {
                compare: *compare,
                limit,
            }),
            _ => {
                cx.err_hint(
                    v.pos,
                    format!("{kind} takes a number, found {}", quoted(&text)),
                    "for example `X-Spam-Score: { over: 5 }`",
                );
                None
            }
        };
    }
    let pattern = scalar(cx, v, "text")?;
    match kind {
        "is" => Some(TextTest::is(&pattern)),
        "contains" => Some(TextTest::contains(&pattern)),
        "glob" => match cx.compile(true, &pattern) {
            Ok(regex) => Some(TextTest::Glob { pattern, regex }),
            Err(e) => {
                cx.err(v.pos, format!("invalid glob: {e}"));
                None
            }
        },
        _ => match cx.compile(false, &pattern) {
            Ok(regex) => {
                if let Some(letter) = case_surprise(&pattern) {
                    cx.warnings.push(
                        Diagnostic::new(
                            v.pos,
                            format!(
                                "regex {} is case-sensitive, unlike the other text tests: its {letter:?} matches only {letter:?}",
                                quoted(&pattern)
                            ),
                        )
                        .hint("start it with (?i) if case should not matter"),
                    );
                }
                Some(TextTest::Regex { pattern, regex })
            }
            Err(e) => {
                let first = e
                    .lines()
                    .last()
                    .unwrap_or("")
                    .trim_start_matches("error: ")
                    .to_string();
                cx.diags
                    .push(Diagnostic::new(v.pos, format!("invalid regex: {first}")).detail(e));
                None
            }
        },
    }
}

/// The first literal upper-case letter of a regex that does not ignore
/// case: what would make `^Re:` miss `RE:` (the `regex` crate, like the
/// format, is case-sensitive unless `(?i)`, while every other text test
/// ignores case). Letters in character classes, escapes (`\S`, `\p{Lu}`)
/// and group names are the writer's intent, not a surprise.
fn case_surprise(pattern: &str) -> Option<char> {
    if pattern.starts_with("(?i") {
        return None;
    }
    let mut chars = pattern.chars().peekable();
    let mut class = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                // `\p{...}` and `\P{...}` name a class; other escapes are
                // one character.
                if let Some(e) = chars.next()
                    && matches!(e, 'p' | 'P')
                    && chars.peek() == Some(&'{')
                {
                    for x in chars.by_ref() {
                        if x == '}' {
                            break;
                        }
                    }
                }
            }
            '[' => class += 1,
            ']' if class > 0 => class -= 1,
            '(' if chars.peek() == Some(&'?') => {
                // `(?P<name>` and `(?<name>`: the name is no text.
                let rest: String = chars.clone().take(3).collect();
                if rest.starts_with("?P<") || rest.starts_with("?<") {
                    for x in chars.by_ref() {
                        if x == '>' {
                            break;
                        }
                    }
                } else if rest.starts_with("?i") {
                    return None;
                }
            }
            c if class == 0 && c.is_uppercase() => return Some(c),
            _ => {}
        }
    }
    None
}

fn address_test(cx: &mut Ctx, v: &Node) -> Option<AddressTest> {
    match &v.value {
        Value::Seq(items) if !items.is_empty() => {
            let tests: Vec<AddressTest> =
                items.iter().filter_map(|i| address_test(cx, i)).collect();
            (tests.len() == items.len()).then_some(AddressTest::Any(tests))
        }
        Value::Map(entries) => {
            if let Some((k, val)) = entries.iter().find(|(k, _)| k.value == "file") {
                if entries.len() > 1 {
                    cx.err_hint(
                        k.pos,
                        "file stands alone in an address test",
                        "write `all:` with one test per item to combine a list with other tests",
                    );
                    return None;
                }
                return address_list(cx, val).map(AddressTest::In);
            }
            let mut text = None;
            let mut parts = Vec::new();
            let mut ok = true;
            for (k, val) in entries.iter() {
                let part = AddressPart::KEYS
                    .iter()
                    .find(|(key, _)| *key == k.value)
                    .map(|(_, p)| *p);
                match k.value.as_str() {
                    _ if part.is_some() => match text_test(cx, val, true) {
                        Some(t) => parts.extend(part.map(|p| (p, t))),
                        None => ok = false,
                    },
                    kind if TEXT_KEYS.contains(&kind) => {
                        if text.is_some() {
                            cx.err(k.pos, "an address test takes one of is, contains, glob or regex; write a list for several");
                            ok = false;
                        } else {
                            text = text_test_kind(cx, kind, val).or_else(|| {
                                ok = false;
                                None
                            });
                        }
                    }
                    other => {
                        cx.unknown(
                            k.pos,
                            format!("unknown address test \"{other}\""),
                            other,
                            ADDRESS_KEYS,
                        );
                        ok = false;
                    }
                }
            }
            if entries.is_empty() {
                cx.err(v.pos, "empty address test");
                ok = false;
            }
            ok.then_some(AddressTest::Parts { text, parts })
        }
        _ => text_test(cx, v, false).map(|t| AddressTest::Parts {
            text: Some(t),
            parts: Vec::new(),
        }),
    }
}

/// `file: safelist.txt`: one address or domain per line, read now so that
/// `check` reports a missing or malformed list, and once per path.
fn address_list(cx: &mut Ctx, v: &Node) -> Option<Arc<AddressList>> {
    let name = read::text(v, &mut cx.diags)?;
    let path = expand_path(&name.value, &cx.base);
    if let Some(list) = cx.lists.get(&path) {
        return Some(list.clone());
    }
    let read = std::fs::File::open(&path).and_then(|f| {
        use std::io::Read;
        let mut text = String::new();
        f.take(AddressList::MAX_BYTES + 1)
            .read_to_string(&mut text)?;
        Ok(text)
    });
    let parsed = match read {
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        Ok(t) if t.len() as u64 > AddressList::MAX_BYTES => Err(format!(
            "{} is larger than {} MiB; an address list is a safelist or blocklist, not a database",
            path.display(),
            AddressList::MAX_BYTES >> 20
        )),
        Ok(t) => {
            AddressList::parse(path.clone(), &t).map_err(|e| format!("{}: {e}", path.display()))
        }
    };
    match parsed {
        Ok(list) => {
            let list = Arc::new(list);
            cx.lists.insert(path, list.clone());
            Some(list)
        }
        Err(e) => {
            cx.err(v.pos, e);
            None
        }
    }
}

fn attachment(cx: &mut Ctx, v: &Node) -> Option<Condition> {
    match &v.value {
        Value::Bool(true) => Some(Condition::Attachment(AttachmentTest::default())),
        Value::Bool(false) => Some(Condition::Not(Box::new(Condition::Attachment(
            AttachmentTest::default(),
        )))),
        Value::Map(entries) if !entries.is_empty() => {
            let mut a = AttachmentTest::default();
            for (k, val) in entries.iter() {
                match k.value.as_str() {
                    "name" => a.name = Some(text_test(cx, val, false)?),
                    "type" => a.mime_type = Some(text_test(cx, val, false)?),
                    other => {
                        cx.unknown(
                            k.pos,
                            format!("unknown attachment test \"{other}\""),
                            other,
                            &["name", "type"],
                        );
                        return None;
                    }
                }
            }
            Some(Condition::Attachment(a))
        }
        other => {
            cx.err_hint(
                v.pos,
                format!(
                    "attachment takes true, false or a mapping, found {}",
                    other.kind()
                ),
                "for example `attachment: { name: { glob: \"*.pdf\" } }`",
            );
            None
        }
    }
}

fn size(cx: &mut Ctx, v: &Node) -> Option<Condition> {
    let Value::Map(entries) = &v.value else {
        cx.err_hint(
            v.pos,
            format!("size takes a mapping, found {}", v.value.kind()),
            "for example `size: { over: 5MB }`",
        );
        return None;
    };
    let (mut over, mut under) = (None, None);
    let mut invalid = false;
    for (k, val) in entries.iter() {
        let slot = match k.value.as_str() {
            "over" => &mut over,
            "under" => &mut under,
            other => {
                cx.unknown(
                    k.pos,
                    format!("unknown size test \"{other}\""),
                    other,
                    &["over", "under"],
                );
                continue;
            }
        };
        match parsed(cx, val, "a size such as 5MB", parse_size) {
            Some(n) => *slot = Some(n),
            None => invalid = true,
        }
    }
    match (over, under) {
        _ if invalid => None,
        (None, None) => {
            cx.err(v.pos, "size needs over, under or both");
            None
        }
        (Some(o), Some(u)) if o >= u => {
            cx.err(
                v.pos,
                "size over is not below size under: this condition can never hold",
            );
            None
        }
        _ => Some(Condition::Size { over, under }),
    }
}

fn folder_template(cx: &mut Ctx, v: &Node, action: &str) -> Option<Template> {
    let text = match &v.value {
        Value::Str(_) | Value::Int(_) => v.value.as_text()?,
        other => {
            cx.err(
                v.pos,
                format!("{action} takes a folder name, found {}", other.kind()),
            );
            return None;
        }
    };
    match Template::parse(&text) {
        Ok(t) => {
            // A literal name can be checked now; a template when it renders.
            if t.is_literal()
                && let Err(e) = check_folder(&text)
            {
                cx.err(v.pos, e);
                return None;
            }
            if text.split('/').any(str::is_empty) {
                cx.err(
                    v.pos,
                    format!("folder name {} has an empty level", quoted(&text)),
                );
                return None;
            }
            Some(t)
        }
        Err(e) => {
            cx.err(v.pos, e);
            None
        }
    }
}

/// `\Junk` and the other SPECIAL-USE folders (RFC 6154) a move may name.
fn special(cx: &mut Ctx, v: &Node, name: &str) -> Option<Target> {
    let found = SPECIAL_TARGETS.iter().find(|t| {
        matches!(t, Target::SpecialUse { attribute, .. } if attribute.eq_ignore_ascii_case(name))
    });
    if found.is_none() {
        let names: Vec<&str> = SPECIAL_TARGETS
            .iter()
            .filter_map(|t| match t {
                Target::SpecialUse { attribute, .. } => Some(*attribute),
                _ => None,
            })
            .collect();
        cx.err_hint(
            v.pos,
            format!("unknown special-use folder {}", quoted(name)),
            format!("one of {}", read::either(&names)),
        );
    }
    found.cloned()
}

fn flag_list(cx: &mut Ctx, v: &Node, action: &str) -> Option<Vec<Flag>> {
    let names = name_list(cx, v, &format!("a flag for {action}"))?;
    let mut flags = Vec::new();
    for (pos, n) in names {
        match Flag::parse(&n) {
            Ok(f) => flags.push(f),
            Err(e) => cx.err(pos, e),
        }
    }
    Some(flags)
}

fn action(cx: &mut Ctx, item: &Node) -> Option<Action> {
    let (key, v) = match &item.value {
        Value::Str(word) => {
            return match word.as_str() {
                "archive" => Some(Action::Archive(None)),
                "delete" => Some(Action::Delete { expunge: false }),
                "junk" => Some(Action::MoveTo(JUNK)),
                "stop" => Some(Action::Stop),
                "move" | "copy" | "flag" | "unflag" => {
                    cx.err_hint(
                        item.pos,
                        format!("{word} needs a value"),
                        format!("write `{word}: ...`"),
                    );
                    None
                }
                other => {
                    cx.unknown(
                        item.pos,
                        format!("unknown action \"{other}\""),
                        other,
                        ACTION_KEYS,
                    );
                    None
                }
            };
        }
        Value::Map(entries) if entries.len() == 1 => (&entries[0].0, &entries[0].1),
        Value::Map(entries) if entries.len() > 1 => {
            cx.err_hint(
                entries[1].0.pos,
                "each action is a mapping with one key",
                "start each action on its own line with `- `",
            );
            return None;
        }
        other => {
            cx.err_hint(
                item.pos,
                format!("expected an action, found {}", other.kind()),
                "for example `- move: Folder`",
            );
            return None;
        }
    };
    match key.value.as_str() {
        "move" => match v.value.as_text() {
            Some(name) if name.starts_with('\\') => special(cx, v, &name).map(Action::MoveTo),
            _ => folder_template(cx, v, "move").map(Action::Move),
        },
        "copy" => folder_template(cx, v, "copy").map(Action::Copy),
        "archive" => match v.value {
            Value::Null => Some(Action::Archive(None)),
            _ => folder_template(cx, v, "archive").map(|t| Action::Archive(Some(t))),
        },
        "flag" => flag_list(cx, v, "flag").map(Action::Flag),
        "unflag" => flag_list(cx, v, "unflag").map(Action::Unflag),
        "delete" => match &v.value {
            Value::Null => Some(Action::Delete { expunge: false }),
            Value::Map(entries) => {
                let mut expunge = false;
                for (k, val) in entries.iter() {
                    match (k.value.as_str(), &val.value) {
                        ("expunge", Value::Bool(b)) => expunge = *b,
                        ("expunge", other) => {
                            cx.err(
                                val.pos,
                                format!("expunge takes true or false, found {}", other.kind()),
                            );
                            return None;
                        }
                        (other, _) => {
                            cx.unknown(
                                k.pos,
                                format!("unknown key \"{other}\""),
                                other,
                                &["expunge"],
                            );
                            return None;
                        }
                    }
                }
                Some(Action::Delete { expunge })
            }
            other => {
                cx.err_hint(
                    v.pos,
                    format!(
                        "delete takes nothing or {{ expunge: true }}, found {}",
                        other.kind()
                    ),
                    "write `- delete` to move to Trash",
                );
                None
            }
        },
        "stop" => match v.value {
            Value::Null | Value::Bool(true) => Some(Action::Stop),
            _ => {
                cx.err(v.pos, "stop takes no value");
                None
            }
        },
        other => {
            cx.unknown(
                key.pos,
                format!("unknown action \"{other}\""),
                other,
                ACTION_KEYS,
            );
            None
        }
    }
}
