//! Documentation that cannot drift from the program:
//!
//! - every `console` block of README.md and docs/*.md is run against the
//!   binary (trycmd): each `$ mailwarden ...` line must print what follows
//!   it and end with the exit code given by a `? N` line (0 without one);
//!   `[..]` in the expected text stands for any text within a line, `...`
//!   for any lines. Blocks that need an IMAP server are `text`, not
//!   `console`, and are not run (tests/operations.rs checks the one error
//!   message such a block quotes);
//! - the man pages in contrib/man/ and the completion scripts in
//!   contrib/completions/ are what the CLI definition generates now.
//!
//! `TRYCMD=overwrite cargo test --test docs` rewrites the quoted outputs,
//! `MAILWARDEN_BLESS=1` the man pages and completion scripts: then review
//! the diff.

use std::path::{Path, PathBuf};
use std::process::Command;

use mailwarden::state::State;

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
    let cases = trycmd::TestCases::new();
    cases
        .register_bin("mailwarden", Path::new(env!("CARGO_BIN_EXE_mailwarden")))
        .env("XDG_STATE_HOME", state_home.to_str().unwrap())
        .env("XDG_CONFIG_HOME", config_home.to_str().unwrap())
        .env("NO_COLOR", "1")
        .env("TZ", "UTC")
        .case("README.md")
        .case("docs/*.md");
    cases.run();
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
