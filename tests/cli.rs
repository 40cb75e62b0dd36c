//! The `mailwarden` binary end to end: exit codes, output formats, bad
//! input (each bad file reported, the others still evaluated, no panic), and
//! secret helpers that hang or flood (stopped, nothing left running).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mailwarden"))
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("rules.example.yaml")
}

/// Runs `mailwarden ARGS -c CONFIG INPUTS...`.
fn mailwarden(args: &[&str], config: &Path, inputs: &[&Path]) -> Output {
    bin()
        .args(args)
        .arg("-c")
        .arg(config)
        .args(inputs)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn check_accepts_the_example_and_summarises_it() {
    let o = mailwarden(&["check"], &example(), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("account personal: me@example.org at imap.example.org:993 (implicit TLS)"),
        "{out}"
    );
    assert!(
        out.contains(
            "rule \"GitHub notifications\" (personal: INBOX): from domain is \"github.com\""
        ),
        "{out}"
    );
    assert!(out.trim_end().ends_with("OK, 1 account, 18 rules"), "{out}");
}

#[test]
fn check_reports_errors_with_the_file_name_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.yaml");
    fs::write(&cfg, "version: 1\naccounts:\n  a:\n    host: h\n    username: u\n    password_env: P\nrules:\n  - name: r\n    match: { subjet: x }\n    actions: [move: X]\n").unwrap();
    let o = mailwarden(&["check"], &cfg, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        format!(
            "{0}:9:14: unknown key \"subjet\" in match (did you mean \"subject\"?)\n1 error in {0}\n",
            cfg.display()
        )
    );
    let o = mailwarden(&["check"], &dir.path().join("missing.yaml"), &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("missing.yaml: No such file"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn test_prints_a_decision_per_sample_message() {
    let mail = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/mail");
    let o = mailwarden(
        &["test", "--now", "2026-11-27T00:00:00Z"],
        &example(),
        &[&mail],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("01-github.eml\n    subject: Re: [mailwarden/mailwarden] Add IDLE support (PR #42)\n    rule:    GitHub notifications\n    actions: flag \\Seen; move to Notifications/GitHub\n"), "{out}");
    assert!(
        out.contains(
            "08-personal.eml\n    subject: Coffee tomorrow?\n    no rule matched; stays in INBOX\n"
        ),
        "{out}"
    );
    assert!(
        out.ends_with("9 messages: 6 moved, 2 matched without moving, 1 unmatched, 0 failed\n"),
        "{out}"
    );
}

#[test]
fn explain_shows_each_condition_and_what_it_saw() {
    let mail = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/mail/02-rust-list.eml");
    let o = mailwarden(&["test", "--explain"], &example(), &[&mail]);
    let out = stdout(&o);
    assert!(out.contains("    ✗ rule \"GitHub notifications\"\n        ✗ from domain is \"github.com\"  [Ferris <ferris@rust.example>]\n"), "{out}");
    assert!(out.contains("    ✓ rule \"Mailing lists by List-Id\"\n        ✓ list matches regex \"^(?P<list>[a-z0-9-]+)\\\\.lists\\\\.example\\\\.org$\"  [\"rust-users.lists.example.org\"]\n"), "{out}");
    // Evaluation ended with the move: later rules are not in the trace.
    assert!(!out.contains("rule \"Invoices\""), "{out}");
}

#[test]
fn bad_files_are_reported_one_by_one_and_the_rest_is_evaluated() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("a-empty.eml"), b"").unwrap();
    fs::write(d.join("b-binary.eml"), b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0").unwrap();
    let big = fs::File::create(d.join("c-50mb.eml")).unwrap();
    big.set_len(50 << 20).unwrap();
    fs::write(
        d.join("d-garbage-header.eml"),
        b"From: x@y.example\r\nSubject: caf\xe9\r \x01 evil\rBcc: inject\n\xff\xfe: \xc3\r\n\r\nbody",
    )
    .unwrap();
    fs::write(
        d.join("e-no-header.eml"),
        b"hello world\nthis is not mail\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(d.join("nowhere"), d.join("f-dangling.eml")).unwrap();
    fs::write(
        d.join("g-good.eml"),
        b"From: notifications@github.com\nX-GitHub-Reason: x\nSubject: ok\n\nbody",
    )
    .unwrap();
    let locked = d.join("h-unreadable.eml");
    fs::write(&locked, b"Subject: secret\n\nx").unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut fs::metadata(&locked).unwrap().permissions(),
        0o000,
    );
    fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    // Root reads anything; then this file is simply good.
    let unreadable = fs::File::open(&locked).is_err();

    let o = mailwarden(&["test", "--format", "json"], &example(), &[d]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 8, "{}", stdout(&o));
    let by_name = |n: &str| {
        lines
            .iter()
            .find(|l| l["file"].as_str().unwrap().ends_with(n))
            .unwrap_or_else(|| panic!("{n} missing"))
            .clone()
    };
    assert_eq!(by_name("a-empty.eml")["error"], "empty message");
    // What a server would store and serve is decided as the server reads
    // it, with a warning: no field there, so no rule matches.
    for odd in ["b-binary.eml", "e-no-header.eml"] {
        let l = by_name(odd);
        assert!(l.get("error").is_none(), "{l}");
        assert!(l["rule"].is_null(), "{l}");
        assert!(
            l["warnings"][0]
                .as_str()
                .unwrap()
                .contains("no header field; left out"),
            "{l}"
        );
    }
    assert_eq!(
        by_name("c-50mb.eml")["error"],
        "52428800 bytes is over the 33554432-byte limit (--max-size)"
    );

    assert!(
        by_name("f-dangling.eml")["error"]
            .as_str()
            .unwrap()
            .contains("No such file")
    );
    assert_eq!(by_name("g-good.eml")["rule"], "GitHub notifications");
    // 8-bit bytes and a bare CR in a header: evaluated, with a warning.
    let garbage = by_name("d-garbage-header.eml");
    assert!(garbage.get("error").is_none(), "{garbage}");
    let warnings = garbage["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("not UTF-8")),
        "{garbage}"
    );
    if unreadable {
        assert!(
            by_name("h-unreadable.eml")["error"]
                .as_str()
                .unwrap()
                .contains("ermission denied")
        );
    }
    let err = stderr(&o);
    assert!(err.contains("a-empty.eml: error: empty message"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// Keywords of a Maildir come from Dovecot's keyword file; a loose file
/// has no flags or keywords, and `--explain` says so rather than pretend.
#[test]
fn test_says_what_a_file_cannot_tell() {
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("Mail");
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(md.join(sub)).unwrap();
    }
    fs::write(md.join("dovecot-keywords"), "0 $Junk\n1 $Work\n").unwrap();
    let msg = "From: a@b.example\nSubject: x\n\nx";
    fs::write(md.join("cur/1.M1.h:2,Sb"), msg).unwrap();
    fs::write(md.join("cur/2.M2.h:2,a"), msg).unwrap();
    let loose = dir.path().join("loose.eml");
    fs::write(&loose, msg).unwrap();
    let cfg = dir.path().join("rules.yaml");
    fs::write(&cfg, "version: 1\naccounts:\n  a:\n    host: h\n    username: u\n    password_env: P\nrules:\n  - name: work\n    match: { keyword: $Work }\n    actions: [move: Work]\n").unwrap();
    let o = mailwarden(
        &["test", "--format", "json", "--explain"],
        &cfg,
        &[&md, &loose],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lines = json_lines(&o);
    let rules: Vec<&serde_json::Value> = lines.iter().map(|l| &l["rule"]).collect();
    assert_eq!(
        rules,
        [
            &serde_json::json!("work"),
            &serde_json::Value::Null,
            &serde_json::Value::Null
        ]
    );
    assert!(lines[0].get("unknown").is_none(), "{}", lines[0]);
    assert_eq!(
        lines[2]["unknown"],
        serde_json::json!(["flags", "keywords"])
    );
    let o = mailwarden(&["test", "--explain"], &cfg, &[&loose]);
    assert!(
        stdout(&o).contains("unknown: flags and keywords, taken as unset (a loose file has none; give a Maildir to test them)"),
        "{}",
        stdout(&o)
    );
    // Without the keyword file, a Maildir's keywords are unknown too.
    fs::remove_file(md.join("dovecot-keywords")).unwrap();
    let o = mailwarden(&["test", "--format", "json", "--explain"], &cfg, &[&md]);
    let lines = json_lines(&o);
    assert!(lines.iter().all(|l| l["rule"].is_null()), "{}", stdout(&o));
    assert_eq!(lines[0]["unknown"], serde_json::json!(["keywords"]));
}

#[test]
fn test_decides_duplicates_among_the_files_given_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        fs::write(&p, text).unwrap();
        p
    };
    let date = "Date: Fri, 01 May 2026 10:00:00 +0000\n";
    let first = write(
        "1.eml",
        &format!("From: a@b.example\nMessage-ID: <x@h>\n{date}\nfirst"),
    );
    let again = write(
        "2.eml",
        &format!("From: a@b.example\nMessage-ID: <x@h>\n{date}\nagain, longer"),
    );
    let copy = write(
        "3.eml",
        &format!("From: a@b.example\nMessage-ID: <x@h>\n{date}\nfirst"),
    );
    let other = write(
        "4.eml",
        &format!("From: a@b.example\nMessage-ID: <y@h>\n{date}\nfirst"),
    );
    let cfg = dir.path().join("rules.yaml");
    fs::write(&cfg, "version: 1\naccounts:\n  a:\n    host: h\n    username: u\n    password_env: P\nrules:\n  - name: dups\n    match: { duplicate: true }\n    actions: [move: Duplicates]\n").unwrap();
    let o = mailwarden(
        &["test", "--format", "json"],
        &cfg,
        &[&first, &again, &copy, &other],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let rules: Vec<serde_json::Value> = json_lines(&o).iter().map(|l| l["rule"].clone()).collect();
    // The copy (same bytes, same arrival) is the first message again.
    assert_eq!(
        rules,
        [
            serde_json::Value::Null,
            serde_json::json!("dups"),
            serde_json::Value::Null,
            serde_json::Value::Null
        ]
    );
    // In another order, another message is the first.
    let o = mailwarden(&["test", "--explain"], &cfg, &[&again, &first]);
    let out = stdout(&o);
    assert!(out.contains("<x@h> first seen here"), "{out}");
    assert!(
        out.contains("<x@h> was seen before on another message"),
        "{out}"
    );
}

#[test]
fn maildir_flags_and_arrival_come_from_the_maildir() {
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("Mail");
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(md.join(sub)).unwrap();
    }
    let cfg = dir.path().join("rules.yaml");
    fs::write(&cfg, "version: 1\naccounts:\n  a:\n    host: h\n    username: u\n    password_env: P\nrules:\n  - name: old read mail\n    match: { seen: true, older_than: 30d }\n    actions: [archive: \"Archive/{year}\"]\n").unwrap();
    // Sent (Date) long ago, but arrived (mtime) recently: arrival decides.
    let msg = "Date: Mon, 01 Jan 2018 00:00:00 +0000\nFrom: a@b.example\nSubject: x\n\nx";
    let seen_old = md.join("cur/1.M1.h:2,S");
    let seen_new = md.join("cur/2.M2.h:2,S");
    let unseen_old = md.join("new/3.M3.h");
    for p in [&seen_old, &seen_new, &unseen_old] {
        fs::write(p, msg).unwrap();
    }
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000); // 2023-11-14
    for p in [&seen_old, &unseen_old] {
        fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    let o = mailwarden(
        &["test", "--format", "json", "--now", "2026-01-01T00:00:00Z"],
        &cfg,
        &[&md],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let got: Vec<(String, serde_json::Value)> = json_lines(&o)
        .into_iter()
        .map(|l| {
            (
                Path::new(l["file"].as_str().unwrap())
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into(),
                l["destination"].clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("1.M1.h:2,S".to_string(), serde_json::json!("Archive/2023")),
            ("2.M2.h:2,S".to_string(), serde_json::Value::Null),
            ("3.M3.h".to_string(), serde_json::Value::Null),
        ]
    );
    // --received overrides the arrival time of every message.
    let o = mailwarden(
        &[
            "test",
            "--format",
            "json",
            "--now",
            "2026-01-01T00:00:00Z",
            "--received",
            "2020-05-05",
        ],
        &cfg,
        &[&seen_new],
    );
    assert_eq!(json_lines(&o)[0]["destination"], "Archive/2020");
}

#[test]
fn an_unknown_account_or_a_bad_time_is_a_usage_error() {
    let mail = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/mail/01-github.eml");
    let o = mailwarden(&["test", "--account", "nope"], &example(), &[&mail]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown account \"nope\" (accounts: personal)"),
        "{}",
        stderr(&o)
    );
    // `run` says so before connecting anywhere, for an account and for a
    // mailbox no rule reads (a typo that would otherwise do nothing).
    let o = mailwarden(&["run", "--dry-run", "--account", "nope"], &example(), &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("unknown account \"nope\" (accounts: personal)"),
        "{}",
        stderr(&o)
    );
    let o = mailwarden(&["run", "--mailbox", "Inbx"], &example(), &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no rule reads mailbox \"Inbx\" (the rules read: INBOX"),
        "{}",
        stderr(&o)
    );
    let o = mailwarden(&["test", "--now", "yesterday"], &example(), &[&mail]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("invalid time \"yesterday\""),
        "{}",
        stderr(&o)
    );
}

/// A configuration whose one account reads its password with `command`
/// (never reaching the server: nothing listens on port 9).
fn helper_config(dir: &Path, command: &str, timeout: &str) -> PathBuf {
    let cfg = dir.join("helper.yaml");
    fs::write(
        &cfg,
        format!(
            "version: 1\naccounts:\n  a:\n    host: 127.0.0.1\n    port: 9\n    username: u\n    \
             password_command: '{command}'\n    timeout: {timeout}\nrules:\n  - name: r\n    \
             match: {{ from: x@y.example }}\n    actions: [move: X]\n"
        ),
    )
    .unwrap();
    cfg
}

/// A helper that waits for ever with two children, as a passphrase prompt
/// behind a pipe would. It writes its pid to `helper.pid`, and its children
/// carry `dir` in their environment, so that they can be found whichever
/// process group they are in. Whatever is left of it is killed when the
/// test ends, so that a failing test leaves nothing running either.
struct StuckHelper {
    command: String,
    pid_file: PathBuf,
    mark: String,
}

impl StuckHelper {
    fn new(dir: &Path) -> Self {
        let pid_file = dir.join("helper.pid");
        let mark = format!("MAILWARDEN_HELPER_MARK={}", dir.display());
        let command = format!(
            "export {mark}; echo $$ > \"{}\"; sleep 3600 | sleep 3600",
            pid_file.display()
        );
        StuckHelper {
            command,
            pid_file,
            mark,
        }
    }

    /// Waits for the helper to have started, and returns its pid.
    fn started(&self) -> i32 {
        for _ in 0..1000 {
            if let Ok(text) = fs::read_to_string(&self.pid_file)
                && let Ok(pid) = text.trim().parse()
            {
                return pid;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the helper never wrote {}", self.pid_file.display());
    }

    /// The helper's processes still running (zombies, dead but not yet
    /// reaped by their parent, do not count).
    fn running(&self, shell: i32) -> Vec<i32> {
        let mut live = Vec::new();
        for entry in fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // pid (comm) state ...; comm may hold spaces.
            let zombie = stat
                .rsplit_once(')')
                .is_none_or(|(_, rest)| rest.trim_start().starts_with('Z'));
            let environ = fs::read(entry.path().join("environ")).unwrap_or_default();
            let marked = environ
                .split(|&b| b == 0)
                .any(|var| var == self.mark.as_bytes());
            if !zombie && (pid == shell || marked) {
                live.push(pid);
            }
        }
        live
    }

    /// Asserts that nothing of the helper runs any more; a SIGKILL takes a
    /// moment to land.
    fn assert_gone(&self) {
        let shell = self.started();
        for _ in 0..200 {
            if self.running(shell).is_empty() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("still running: {:?}", self.running(shell));
    }
}

impl Drop for StuckHelper {
    fn drop(&mut self) {
        if let Ok(text) = fs::read_to_string(&self.pid_file)
            && let Ok(shell) = text.trim().parse()
        {
            for pid in self.running(shell) {
                if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
        }
    }
}

/// Runs `cmd` to its end, or kills it after `limit` and fails the test:
/// a hang must be a failure, not a test that never ends.
fn output_within(cmd: &mut Command, limit: Duration) -> (Output, Duration) {
    let t0 = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut v).unwrap();
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut err, &mut v).unwrap();
        v
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = t0.elapsed();
    let output = Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    (output, elapsed)
}

#[test]
fn run_stops_a_password_helper_at_the_account_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let helper = StuckHelper::new(dir.path());
    let command = &helper.command;
    let cfg = helper_config(dir.path(), command, "1s");
    let (o, elapsed) = output_within(
        bin()
            .args(["run", "--state"])
            .arg(dir.path().join("state.db"))
            .arg("-c")
            .arg(&cfg),
        Duration::from_secs(30),
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "password_command `{command}` did not finish within 1s; it was stopped"
        )),
        "{}",
        stderr(&o)
    );
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    helper.assert_gone();
}

#[test]
fn run_stops_a_password_helper_that_prints_without_end() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = helper_config(dir.path(), "yes", "60s");
    let (o, elapsed) = output_within(
        bin()
            .args(["run", "--state"])
            .arg(dir.path().join("state.db"))
            .arg("-c")
            .arg(&cfg),
        Duration::from_secs(10),
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("password_command `yes` printed more than 16 KiB; it was stopped"),
        "{}",
        stderr(&o)
    );
    // At the cap, long before the 60 s deadline.
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
}

#[test]
fn watch_stopped_while_its_password_helper_waits_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let helper = StuckHelper::new(dir.path());
    let cfg = helper_config(dir.path(), &helper.command, "10m");
    let mut watch = bin()
        .args(["watch", "--state"])
        .arg(dir.path().join("state.db"))
        .arg("-c")
        .arg(&cfg)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    helper.started();
    let pid = rustix::process::Pid::from_raw(watch.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    // The daemon gives its accounts 30 s to finish what they are on.
    let t0 = Instant::now();
    let status = loop {
        if let Some(status) = watch.try_wait().unwrap() {
            break status;
        }
        if t0.elapsed() > Duration::from_secs(60) {
            let _ = watch.kill();
            panic!("watch did not stop");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    helper.assert_gone();
}

/// Runs `cmd` with its standard output in a pipe, reads the first line and
/// closes the pipe, as `| head -1` does; then waits for the end. The output
/// must be larger than a pipe holds (64 KiB) for the command to notice.
fn first_line_then_close(cmd: &mut Command) -> (String, Output) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = child.stderr.take().unwrap();
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut err, &mut v).unwrap();
        v
    });
    let mut first = String::new();
    {
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        std::io::BufRead::read_line(&mut out, &mut first).unwrap();
    }
    let t0 = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if t0.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("still running a minute after its output was closed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = Output {
        status,
        stdout: Vec::new(),
        stderr: err.join().unwrap(),
    };
    (first, output)
}

#[test]
fn log_stops_quietly_when_its_reader_goes() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    {
        let s = mailwarden::state::State::open(&state).unwrap();
        let intents: Vec<_> = (1..=20_000)
            .map(|uid| mailwarden::state::Intent {
                account: "personal".into(),
                mailbox: mailwarden::imap::types::Mailbox::inbox(),
                uid_validity: mailwarden::imap::types::UidValidity::new(1).unwrap(),
                uid: mailwarden::imap::types::Uid::new(uid).unwrap(),
                message_id: Some(format!("m{uid}@example.org")),
                rule: Some("GitHub notifications".into()),
                action: mailwarden::state::Action::Move,
                target: Some("Notifications/GitHub".into()),
                undoes: None,
            })
            .collect();
        s.intend(&intents).unwrap();
    }
    for format in ["text", "json"] {
        let (first, o) = first_line_then_close(
            bin()
                .args(["log", "--format", format, "--state"])
                .arg(&state),
        );
        assert!(first.contains("m1@example.org"), "{first}");
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!(stderr(&o), "", "{format}");
    }
}

#[test]
fn test_stops_printing_quietly_when_its_reader_goes() {
    let mail = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/mail");
    let inputs = vec![mail.as_path(); 300];
    let (first, o) = first_line_then_close(
        bin()
            .args(["test", "--explain", "--now", "2026-11-27T00:00:00Z", "-c"])
            .arg(example())
            .args(&inputs),
    );
    assert!(first.ends_with("01-github.eml\n"), "{first}");
    // The outcome a full read would have had: every file was good.
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));

    // A bad file after the reader left still counts.
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("empty.eml"), "").unwrap();
    let mut inputs = inputs;
    let empty = dir.path().join("empty.eml");
    inputs.push(&empty);
    let (_, o) = first_line_then_close(
        bin()
            .args(["test", "--explain", "--format", "json", "-c"])
            .arg(example())
            .args(&inputs),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("empty.eml: error: empty message"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
}

#[test]
fn check_stops_quietly_when_its_reader_goes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("many.yaml");
    let mut text = String::from(
        "version: 1\naccounts:\n  a:\n    host: h\n    username: u\n    password_env: P\nrules:\n",
    );
    // Far more output than a pipe holds, in a file within the size limit.
    for i in 0..1500 {
        text.push_str(&format!(
            "  - name: rule number {i}\n    match: {{ from: {{ domain: d{i}.example }} }}\n    actions: [move: \"Lists/{i}\"]\n"
        ));
    }
    fs::write(&cfg, text).unwrap();
    let (first, o) = first_line_then_close(bin().arg("check").arg("-c").arg(&cfg));
    assert!(first.starts_with("account a: u at h:993"), "{first}");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
}
