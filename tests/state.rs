//! The state file from the command line, without a server: one process per
//! file whatever the path to it, private permissions, every way it can be
//! unusable ending with exit code 4 and a message naming the file and what
//! to do, and `log` reading it without writing anything.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use mailwarden::imap::types::{Mailbox, Uid, UidValidity};
use mailwarden::state::{Action, Intent, State};

const BIN: &str = env!("CARGO_BIN_EXE_mailwarden");

/// The user the "another user" tests run as when we are root, for whom
/// permission bits do not count.
const NOBODY: u32 = 65534;

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A folder for one test that another user may enter and read (not write).
fn test_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// One account whose server is never reached (nothing listens on port 9):
/// enough for `run` and `watch` to open the state first.
fn config(dir: &Path) -> PathBuf {
    let cfg = dir.join("config.yaml");
    fs::write(
        &cfg,
        "version: 1\naccounts:\n  a:\n    host: 127.0.0.1\n    port: 9\n    username: u\n    \
         password_env: MAILWARDEN_TEST_PASSWORD\nrules:\n  - name: r\n    \
         match: { from: x@y.example }\n    actions: [move: X]\n",
    )
    .unwrap();
    fs::set_permissions(&cfg, fs::Permissions::from_mode(0o644)).unwrap();
    cfg
}

/// `mailwarden ARGS`, as this user (`other: false`) or as another one: as
/// `nobody` when we are root, else as ourselves (the tests then take the
/// permissions away from us instead).
fn mailwarden(other: bool, args: &[&str], paths: &[&Path]) -> Output {
    let mut cmd = if other && is_root() {
        let mut c = Command::new("setpriv");
        c.args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
            BIN,
        ]);
        c
    } else {
        Command::new(BIN)
    };
    cmd.args(args)
        .args(paths)
        .env("MAILWARDEN_TEST_PASSWORD", "x")
        .output()
        .unwrap()
}

fn run(state: &Path, cfg: &Path) -> Output {
    mailwarden(false, &["run", "--state"], &[state, Path::new("-c"), cfg])
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn companion(state: &Path, suffix: &str) -> PathBuf {
    let mut name = state.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// A `watch` holding the state file (its server unreachable, it retries),
/// started with the common umask 022, its log in `watch.log` beside the
/// configuration; stopped when dropped.
struct Watch(Child);

impl Watch {
    fn start(state: &Path, cfg: &Path) -> Watch {
        let log = fs::File::create(cfg.with_file_name("watch.log")).unwrap();
        let child = Command::new("sh")
            .args([
                "-c",
                "umask 022; exec \"$0\" \"$@\"",
                BIN,
                "watch",
                "--state",
            ])
            .arg(state)
            .arg("-c")
            .arg(cfg)
            .env("MAILWARDEN_TEST_PASSWORD", "x")
            .env("NO_COLOR", "1")
            .stderr(log)
            .spawn()
            .unwrap();
        // Open once SQLite has added its files beside the database.
        let t0 = Instant::now();
        while !companion(state, "-shm").exists() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "watch did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Watch(child)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Makes a folder writable again when the test ends, so that the test's
/// temporary folder can be removed even when we are not root.
struct WritableAgain(PathBuf);

impl Drop for WritableAgain {
    fn drop(&mut self) {
        let _ = fs::set_permissions(&self.0, fs::Permissions::from_mode(0o755));
    }
}

fn journal_of(state: &Path, n: u32) {
    let s = State::open(state).unwrap();
    let intents: Vec<Intent> = (1..=n)
        .map(|uid| Intent {
            account: "a".into(),
            mailbox: Mailbox::inbox(),
            uid_validity: UidValidity::new(1).unwrap(),
            uid: Uid::new(uid).unwrap(),
            message_id: Some(format!("m{uid}@example.org")),
            rule: Some("r".into()),
            action: Action::Move,
            target: Some("X".into()),
            undoes: None,
        })
        .collect();
    s.intend(&intents).unwrap();
}

#[test]
fn a_state_file_in_use_is_refused_whatever_the_path_to_it() {
    let dir = test_dir();
    let cfg = config(dir.path());
    let state = dir.path().join("w/state.db");
    let _watch = Watch::start(&state, &cfg);
    let symlink = dir.path().join("l.db");
    std::os::unix::fs::symlink(&state, &symlink).unwrap();
    let hard_link = dir.path().join("h.db");
    fs::hard_link(&state, &hard_link).unwrap();
    let dotdot = dir.path().join("w/../w/state.db");
    for path in [&state, &symlink, &hard_link, &dotdot] {
        let o = run(path, &cfg);
        assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
        assert_eq!(
            stderr(&o),
            format!(
                "mailwarden: another mailwarden is using {} (one process per state file): \
                 stop it first, or give this one another --state\n",
                path.display()
            )
        );
    }
    // The journal can be read meanwhile.
    let o = mailwarden(false, &["log", "--state"], &[&symlink]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn the_state_file_its_companions_and_its_new_folder_are_private() {
    let dir = test_dir();
    let cfg = config(dir.path());
    let state = dir.path().join("new/sub/state.db");
    let _watch = Watch::start(&state, &cfg);
    let got: Vec<(String, u32)> = [
        dir.path().join("new"),
        dir.path().join("new/sub"),
        state.clone(),
        companion(&state, "-wal"),
        companion(&state, "-shm"),
    ]
    .iter()
    .map(|p| (p.display().to_string(), mode(p)))
    .collect();
    let want: Vec<(String, u32)> = got
        .iter()
        .zip([0o700, 0o700, 0o600, 0o600, 0o600])
        .map(|((p, _), m)| (p.clone(), m))
        .collect();
    assert_eq!(got, want);
    // Private from the start: nothing had to be tightened (which happens,
    // with a warning, before SQLite adds its files).
    let log = fs::read_to_string(dir.path().join("watch.log")).unwrap();
    assert!(!log.contains("readable by others"), "{log}");
}

#[test]
fn a_state_file_readable_by_others_is_made_private_with_a_warning() {
    let dir = test_dir();
    let cfg = config(dir.path());
    let state = dir.path().join("state.db");
    journal_of(&state, 1);
    fs::set_permissions(&state, fs::Permissions::from_mode(0o644)).unwrap();
    let o = run(&state, &cfg);
    // It went on to connect: the state was fine.
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(mode(&state), 0o600);
    assert!(
        stderr(&o).contains(&format!(
            "{} was readable by others (mode 644); it holds the journal of your mail, so it is now 600",
            state.display()
        )),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_file_that_is_not_a_state_file_exits_4_saying_what_to_do() {
    let dir = test_dir();
    let cfg = config(dir.path());
    let state = dir.path().join("state.db");
    fs::write(&state, "these are my notes, not a database\n".repeat(200)).unwrap();
    let want = format!(
        "mailwarden: {} is not a mailwarden state file (file is not a database): \
         move it away to start afresh; the journal in it is lost\n",
        state.display()
    );
    let o = run(&state, &cfg);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).ends_with(&want), "{}", stderr(&o));
    let o = mailwarden(false, &["log", "--state"], &[&state]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert_eq!(stderr(&o), want);
}

#[test]
fn a_state_folder_that_cannot_be_written_exits_4_saying_what_to_do() {
    let dir = test_dir();
    let cfg = config(dir.path());
    let folder = dir.path().join("ro");
    fs::create_dir(&folder).unwrap();
    // One state file there already (SQLite needs to add its own beside
    // it), and one still to be made.
    let existing = folder.join("existing.db");
    fs::write(&existing, b"").unwrap();
    fs::set_permissions(&existing, fs::Permissions::from_mode(0o600)).unwrap();
    if is_root() {
        std::os::unix::fs::chown(&existing, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    fs::set_permissions(&folder, fs::Permissions::from_mode(0o555)).unwrap();
    let _writable_again = WritableAgain(folder.clone());
    for (state, why) in [
        (folder.join("state.db"), "Permission denied (os error 13)"),
        (existing, "attempt to write a readonly database"),
    ] {
        let o = mailwarden(true, &["run", "--state"], &[&state, Path::new("-c"), &cfg]);
        assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
        assert_eq!(
            stderr(&o),
            format!(
                "mailwarden: cannot write the state file {} ({why}): the file and its folder \
                 must be writable by this user (SQLite adds files beside it); or give another --state\n",
                state.display()
            )
        );
    }
}

#[test]
fn a_full_disk_exits_4_saying_what_to_do() {
    // A small filesystem of our own: a tmpfs in a mount namespace of our
    // own (as root, or as an unprivileged user where user namespaces are
    // allowed), filled up.
    if !Command::new("unshare")
        .args(["-rm", "true"])
        .status()
        .is_ok_and(|s| s.success())
    {
        eprintln!("skipped: `unshare -rm` is not allowed here, so no filesystem can be filled");
        return;
    }
    let dir = test_dir();
    let cfg = config(dir.path());
    let disk = dir.path().join("disk");
    fs::create_dir(&disk).unwrap();
    let state = disk.join("state.db");
    let o = Command::new("unshare")
        .args(["-rm", "sh", "-c"])
        .arg(
            "mount -t tmpfs -o size=64k tmpfs \"$1\" || exit 99; \
             head -c 1000000 /dev/zero > \"$1/filler\" 2>/dev/null; \
             \"$0\" run --state \"$1/state.db\" -c \"$2\"",
        )
        .arg(BIN)
        .arg(&disk)
        .arg(&cfg)
        .env("MAILWARDEN_TEST_PASSWORD", "x")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        format!(
            "mailwarden: cannot write the state file {}: the disk is full (database or disk is full); \
             make room and run again (what was recorded so far is kept)\n",
            state.display()
        )
    );
}

#[test]
fn log_without_a_state_file_prints_an_empty_journal() {
    let dir = test_dir();
    let state = dir.path().join("never/state.db");
    for format in ["text", "json"] {
        let o = mailwarden(false, &["log", "--format", format, "--state"], &[&state]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert_eq!((stdout(&o), stderr(&o)), (String::new(), String::new()));
    }
    assert!(!dir.path().join("never").exists(), "log created something");
}

#[test]
fn log_works_for_a_user_who_may_only_read_the_state_file() {
    let dir = test_dir();
    let folder = dir.path().join("state");
    fs::create_dir(&folder).unwrap();
    let state = folder.join("state.db");
    journal_of(&state, 3);
    // Closed cleanly: no -shm beside it, and the reader may not make one.
    assert!(!companion(&state, "-shm").exists());
    fs::set_permissions(&state, fs::Permissions::from_mode(0o644)).unwrap();
    fs::set_permissions(&folder, fs::Permissions::from_mode(0o555)).unwrap();
    let _writable_again = WritableAgain(folder.clone());
    let o = mailwarden(true, &["log", "--state"], &[&state]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lines: Vec<String> = stdout(&o).lines().map(String::from).collect();
    assert_eq!(lines.len(), 3, "{}", stdout(&o));
    assert!(
        lines[2].contains("a/INBOX UID 3 <m3@example.org>"),
        "{lines:?}"
    );
    // Nothing was written, nothing was tightened.
    assert_eq!(mode(&state), 0o644);
    assert!(!companion(&state, "-shm").exists());
}

#[test]
fn log_refuses_a_user_who_may_not_read_the_state_file_saying_why() {
    let dir = test_dir();
    let state = dir.path().join("state.db");
    journal_of(&state, 1);
    if !is_root() {
        fs::set_permissions(&state, fs::Permissions::from_mode(0o000)).unwrap();
    }
    let o = mailwarden(true, &["log", "--state"], &[&state]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        format!(
            "mailwarden: cannot read the state file {} (Permission denied (os error 13)): \
             run this as the user who owns it\n",
            state.display()
        )
    );
}
