//! Documentation that cannot drift from the program:
//!
//! - every `console` block of README.md and docs/*.md is run against the
//!   binary: each `$ mailwarden ...` line must print (standard output and
//!   error together) what follows it, and end with the exit code given by
//!   a `? N` line right after it (0 without one). In the expected text
//!   `[..]` stands for any text within a line, a line `...` for any lines.
//!   Blocks that need an IMAP server are `text`, not `console`; the ones
//!   that quote output are compared below with what `run` prints against
//!   the test Dovecot;
//! - the man pages in contrib/man/ and the completion scripts in
//!   contrib/completions/ are what the CLI definition generates now
//!   (`MAILWARDEN_BLESS=1 cargo test --test docs` rewrites them: review
//!   the diff).
//!
//! A runner of its own rather than trycmd: trycmd turns every `\` of the
//! output into `/` before comparing (for Windows paths), and IMAP flags
//! (`\Seen`) and regexes are full of them.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use mailwarden::state::State;
use support::{FULL, User, server};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bless() -> bool {
    std::env::var_os("MAILWARDEN_BLESS").is_some()
}

/// The state file the documentation's `log` and `status` examples read:
/// a few journaled actions and what a `watch` that has since stopped
/// recorded, all at fixed times (2026-11-27).
fn documented_state(state_home: &Path) {
    let path = state_home.join("mailwarden").join("state.db");
    drop(State::open(&path).unwrap());
    let db = rusqlite::Connection::open(&path).unwrap();
    db.execute_batch(
        "INSERT INTO journal (time, account, mailbox, uid_validity, uid, message_id, rule, action, target, status, detail, new_uid, new_uid_validity)
         VALUES ('2026-11-27T10:52:01.204518113+00:00', 'personal', 'INBOX', 1795774999, 4211, 'abc@github.com', 'GitHub', 'flag', '\\Seen', 'done', NULL, NULL, NULL),
                ('2026-11-27T10:52:01.311842210+00:00', 'personal', 'INBOX', 1795774999, 4211, 'abc@github.com', 'GitHub', 'move', 'Notifications/GitHub', 'done', NULL, 87, 1795775001),
                ('2026-11-27T10:58:12.019773504+00:00', 'personal', 'INBOX', 1795774999, 4215, 'x1@lists.example.org', 'Lists', 'move', 'Lists/rust-users', 'failed', 'NO [OVERQUOTA] Quota exceeded', NULL, NULL);
         INSERT INTO account_status (account, pid, state, since, mode, last_pass, last_sweep, last_error, last_error_time, errors_in_row, reconnects)
         VALUES ('personal', 4242, 'stopped', '2026-11-27T11:00:00Z', 'idle', '2026-11-27T10:58:12Z', '2026-11-27T10:00:03Z',
                 'the server closed the connection during IDLE (it said: Server shutting down.)', '2026-11-27T10:31:40Z', 0, 1);
         INSERT INTO mailbox_status (account, mailbox, last_pass, last_sweep)
         VALUES ('personal', 'INBOX', '2026-11-27T10:58:12Z', '2026-11-27T10:00:03Z'),
                ('personal', 'Lists', '2026-11-27T10:00:03Z', '2026-11-27T10:00:03Z');",
    )
    .unwrap();
}

/// One `$` line of a console block and what it must print.
struct Case {
    file: String,
    line: usize,
    argv: Vec<String>,
    code: i32,
    expected: Vec<String>,
}

/// Splits a command line as a shell would for words, 'single' and
/// "double" quotes (no variables, no globs: the blocks need none).
fn words(line: &str) -> Vec<String> {
    let (mut out, mut word, mut quote, mut started) = (Vec::new(), String::new(), None, false);
    for c in line.chars() {
        match (quote, c) {
            (None, '\'' | '"') => {
                quote = Some(c);
                started = true;
            }
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if started {
                    out.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            (_, c) => {
                word.push(c);
                started = true;
            }
        }
    }
    assert!(quote.is_none(), "unclosed quote in {line:?}");
    if started {
        out.push(word);
    }
    out
}

/// The cases of every ```console block of `file`.
fn cases(file: &Path) -> Vec<Case> {
    let text = std::fs::read_to_string(file).unwrap();
    let name = file.strip_prefix(root()).unwrap().display().to_string();
    let mut out: Vec<Case> = Vec::new();
    // Inside a console block: its indentation (a block in a list item).
    let mut block: Option<usize> = None;
    let mut in_other = false;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") {
            if block.is_some() || in_other {
                (block, in_other) = (None, false);
            } else if trimmed == "```console" {
                block = Some(line.len() - trimmed.len());
            } else {
                in_other = true;
            }
            continue;
        }
        let Some(indent) = block else { continue };
        let line = line.get(indent..).unwrap_or("");
        if let Some(command) = line.strip_prefix("$ ") {
            let argv = words(command);
            assert_eq!(
                argv[0],
                "mailwarden",
                "{name}:{}: runs only mailwarden",
                n + 1
            );
            out.push(Case {
                file: name.clone(),
                line: n + 1,
                argv,
                code: 0,
                expected: Vec::new(),
            });
        } else {
            let case = out
                .last_mut()
                .unwrap_or_else(|| panic!("{name}:{}: output before any `$` line", n + 1));
            match line.strip_prefix("? ") {
                Some(code) if case.expected.is_empty() => case.code = code.parse().unwrap(),
                _ => case.expected.push(line.to_string()),
            }
        }
    }
    out
}

/// Whether `line` matches `pattern`, where `[..]` is any text.
fn line_matches(pattern: &str, line: &str) -> bool {
    let parts: Vec<&str> = pattern.split("[..]").collect();
    if parts.len() == 1 {
        return pattern == line;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !line.starts_with(first) || !line[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &line[first.len()..line.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

/// Whether `lines` match `pattern`, where a line `...` is any lines.
fn lines_match(pattern: &[String], lines: &[&str]) -> bool {
    match pattern.split_first() {
        None => lines.is_empty(),
        Some((p, rest)) if p == "..." => (0..=lines.len()).any(|i| lines_match(rest, &lines[i..])),
        Some((p, rest)) => {
            !lines.is_empty() && line_matches(p, lines[0]) && lines_match(rest, &lines[1..])
        }
    }
}

/// Runs `case` with `env`; its output as one text (standard output and
/// error into one pipe, in the order written) and its exit code.
fn run(case: &Case, env: &[(&str, &Path)]) -> (String, Option<i32>) {
    let (mut reader, writer) = std::io::pipe().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailwarden"))
        .args(&case.argv[1..])
        .current_dir(root())
        .env_remove("MAILWARDEN_LOG")
        .envs(env.iter().map(|(k, v)| (k, v.as_os_str())))
        .env("TZ", "UTC")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(writer.try_clone().unwrap())
        .stderr(writer)
        .spawn()
        .unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut reader, &mut text).unwrap();
    (text, child.wait().unwrap().code())
}

#[test]
fn the_commands_quoted_in_the_docs_print_what_the_docs_say() {
    let homes = tempfile::tempdir().unwrap();
    let state_home = homes.path().join("state");
    documented_state(&state_home);
    // `mailwarden check` without -c reads the default configuration: the
    // example one.
    let config_home = homes.path().join("config");
    std::fs::create_dir_all(config_home.join("mailwarden")).unwrap();
    std::fs::copy(
        root().join("rules.example.yaml"),
        config_home.join("mailwarden").join("config.yaml"),
    )
    .unwrap();
    let env = [
        ("XDG_STATE_HOME", state_home.as_path()),
        ("XDG_CONFIG_HOME", config_home.as_path()),
    ];
    let mut files = vec![root().join("README.md")];
    for entry in std::fs::read_dir(root().join("docs")).unwrap() {
        files.push(entry.unwrap().path());
    }
    files.sort();
    let mut failures = Vec::new();
    let mut ran = 0;
    for file in &files {
        for case in cases(file) {
            ran += 1;
            let (text, code) = run(&case, &env);
            let lines: Vec<&str> = text.lines().collect();
            if code != Some(case.code) || !lines_match(&case.expected, &lines) {
                failures.push(format!(
                    "{}:{}: $ {}\n  exit code {code:?}, the docs say {}; it printed:\n{text}",
                    case.file,
                    case.line,
                    case.argv.join(" "),
                    case.code
                ));
            }
        }
    }
    assert!(ran >= 10, "only {ran} commands found in the docs");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_matcher_takes_wildcards_and_nothing_else() {
    let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(lines_match(&p(&["a [..] c", "..."]), &["a b c", "x", "y"]));
    assert!(lines_match(&p(&["...", "z"]), &["z"]));
    assert!(!lines_match(&p(&["a [..] c"]), &["a b d"]));
    assert!(!lines_match(&p(&["a"]), &["a", "b"]));
    assert!(!lines_match(&p(&["a\\Seen"]), &["a/Seen"]));
    assert_eq!(
        words(r#"mailwarden test --rule "Old read mail" 'x y' z"#),
        ["mailwarden", "test", "--rule", "Old read mail", "x y", "z"]
    );
}

/// Compares what is generated with what is checked in at `dir`, file for
/// file; with MAILWARDEN_BLESS set, writes it there instead.
fn same_as_checked_in(dir: &Path, generated: &[(String, Vec<u8>)]) {
    if bless() {
        std::fs::create_dir_all(dir).unwrap();
        for (name, bytes) in generated {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
    let mut checked_in: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    checked_in.sort();
    let mut names: Vec<String> = generated.iter().map(|(n, _)| n.clone()).collect();
    names.sort();
    assert_eq!(
        checked_in,
        names,
        "{} holds other files than are generated (MAILWARDEN_BLESS=1 cargo test --test docs, then remove the stale ones)",
        dir.display()
    );
    for (name, bytes) in generated {
        let on_disk = std::fs::read(dir.join(name)).unwrap();
        assert!(
            on_disk == *bytes,
            "{} is not what the CLI definition generates now: run MAILWARDEN_BLESS=1 cargo test --test docs and review the diff",
            dir.join(name).display()
        );
    }
}

#[test]
fn the_man_pages_are_generated_from_the_cli_definition() {
    let out = tempfile::tempdir().unwrap();
    clap_mangen::generate_to(mailwarden::cli::command(), out.path()).unwrap();
    let mut generated = Vec::new();
    for entry in std::fs::read_dir(out.path()).unwrap() {
        let entry = entry.unwrap();
        generated.push((
            entry.file_name().to_string_lossy().into_owned(),
            std::fs::read(entry.path()).unwrap(),
        ));
    }
    // One page per command, every page naming the program.
    assert!(generated.len() >= 9, "{generated:?}");
    for (name, page) in &generated {
        assert!(name.starts_with("mailwarden") && name.ends_with(".1"));
        assert!(String::from_utf8_lossy(page).contains(".TH mailwarden"));
    }
    same_as_checked_in(&root().join("contrib/man"), &generated);
}

#[test]
fn the_completion_scripts_are_what_the_binary_prints() {
    let mut generated = Vec::new();
    for (shell, file) in [
        ("bash", "mailwarden.bash"),
        ("zsh", "_mailwarden"),
        ("fish", "mailwarden.fish"),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_mailwarden"))
            .args(["completions", shell])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{o:?}");
        let script = String::from_utf8(o.stdout).unwrap();
        // Every command completes.
        for command in [
            "check",
            "test",
            "run",
            "watch",
            "log",
            "undo",
            "status",
            "completions",
        ] {
            assert!(script.contains(command), "{shell}: no {command}");
        }
        generated.push((file.to_string(), script.into_bytes()));
    }
    same_as_checked_in(&root().join("contrib/completions"), &generated);
}

/// The shard configurations of the Kubernetes example are valid
/// configurations, and the container recipe runs what exists.
#[test]
fn the_container_examples_hold_valid_configurations() {
    let text = std::fs::read_to_string(root().join("contrib/kubernetes/mailwarden.yaml")).unwrap();
    let docs = yaml_rust2::YamlLoader::load_from_str(&text).unwrap();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ConfigMap", "Service", "StatefulSet"]);
    let data = docs[0]["data"].as_hash().unwrap();
    assert_eq!(
        docs[2]["spec"]["replicas"].as_i64().unwrap() as usize,
        data.len(),
        "one configuration per replica"
    );
    let dir = tempfile::tempdir().unwrap();
    for (i, (name, config)) in data.iter().enumerate() {
        assert_eq!(name.as_str().unwrap(), format!("mailwarden-{i}.yaml"));
        let path = dir.path().join(name.as_str().unwrap());
        std::fs::write(&path, config.as_str().unwrap()).unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_mailwarden"))
            .arg("check")
            .arg("-c")
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{name:?}: {o:?}");
    }
    // The container's command line is one `watch` accepts.
    let dockerfile = std::fs::read_to_string(root().join("contrib/Dockerfile")).unwrap();
    let cmd = dockerfile.lines().find(|l| l.starts_with("CMD ")).unwrap();
    let argv: Vec<String> = serde_json::from_str(&cmd["CMD ".len()..]).unwrap();
    let parsed = <mailwarden::cli::Cli as clap::Parser>::try_parse_from(
        std::iter::once("mailwarden".to_string()).chain(argv),
    );
    assert!(parsed.is_ok(), "{parsed:?}");
}

/// The block of `file` (under the repository) that starts with the line
/// `first`, up to its closing fence.
fn doc_block(file: &str, first: &str) -> String {
    let text = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file))
        .unwrap();
    let start = text
        .find(&format!("{first}\n"))
        .unwrap_or_else(|| panic!("{file} has no line {first:?}"));
    let rest = &text[start + first.len() + 1..];
    rest[..rest.find("```").unwrap()].to_string()
}

/// The login failure that docs/setup.md quotes is the one `run` prints.
#[tokio::test]
async fn a_wrong_password_is_reported_as_the_setup_guide_says() {
    let user = server().user();
    let dir = tempfile::tempdir().unwrap();
    let cfg = user.config(
        dir.path(),
        FULL,
        "",
        "  - {name: r, actions: [flag: seen]}\n",
    );
    let wrong = User {
        password: "not-the-password".into(),
        ..user.clone()
    };
    let o = wrong.mailwarden(&["run"], &cfg);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(3), "{err}");
    let quoted = doc_block(
        "docs/setup.md",
        "$ mailwarden run   # with a wrong password",
    )
    .replace("account personal", "account test")
    .replace("imap.example.org", FULL)
    .replace("me@example.org", &user.name);
    assert_eq!(err, quoted);
}

/// The dry run docs/cli.md quotes is what `run --dry-run` prints for the
/// sample mail and the example rules (its UIDVALIDITY aside), and one
/// message is "1 message".
#[tokio::test]
async fn the_dry_run_quoted_in_the_cli_guide_is_what_run_prints() {
    let user = server().user();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(root.join("examples/mail"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    // Arrived the day before the --now given: {year} and older_than do
    // not depend on when the test runs.
    let arrival = chrono::DateTime::parse_from_rfc3339("2026-11-30T12:00:00Z")
        .unwrap()
        .to_utc();
    for f in &files {
        user.append("INBOX", &std::fs::read(f).unwrap(), &[], Some(arrival))
            .await;
    }
    let example = std::fs::read_to_string(root.join("rules.example.yaml")).unwrap();
    let rules = &example[example.find("\nrules:\n").unwrap() + 1..];
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.yaml");
    std::fs::write(
        &cfg,
        format!(
            "version: 1\naccounts:\n  personal:\n    host: \"{FULL}\"\n    port: {}\n    tls: none\n    username: {}\n    password_env: MAILWARDEN_TEST_PASSWORD\n{rules}",
            server().plain_port,
            user.name
        ),
    )
    .unwrap();
    let command = "mailwarden run --dry-run --now 2026-12-01T00:00:00Z";
    let o = user.mailwarden(&["run", "--dry-run", "--now", "2026-12-01T00:00:00Z"], &cfg);
    let printed = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let validity = regex::Regex::new(r"UIDVALIDITY \d+").unwrap();
    let quoted = doc_block("docs/cli.md", &format!("$ {command}"));
    assert_eq!(
        validity.replace_all(&printed, "UIDVALIDITY N"),
        validity.replace_all(&quoted, "UIDVALIDITY N"),
        "docs/cli.md quotes another output than {command} prints:\n{printed}"
    );

    let one = server().user();
    one.deliver("INBOX", &std::fs::read(&files[0]).unwrap())
        .await;
    let cfg = one.config(
        dir.path(),
        FULL,
        "",
        "  - {name: r, match: {from: github}, actions: [flag: seen]}\n",
    );
    let o = one.mailwarden(&["run", "--dry-run"], &cfg);
    let printed = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        printed.starts_with("test/INBOX (UIDVALIDITY ")
            && printed.contains("): 1 message, 1 searched, 1 to act on\n"),
        "{printed}"
    );
}
