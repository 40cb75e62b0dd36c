//! Hostile servers: the real binary (`mailwarden run` and `watch`) against
//! the scripted server of `support::script`, one test per thing a server
//! can do to a client that runs unattended: say nothing, say too much, say
//! it without end, refuse, or go away in the middle. Each test asserts the
//! exit code (3 when logging in never completed), an error text that says
//! what the server did and shows no Rust internals, a bound on the wall
//! time, and a bound on memory: the binary runs with its data segment
//! limited to [`MEMORY_LIMIT`] (RLIMIT_DATA, so a runaway allocation aborts
//! the run), and its peak resident set, as GNU time reports it, must stay
//! below that too.
//!
//! The last test is against the real Dovecot of `support`: another client
//! expunges messages while `run` moves them.
//!
//! With `--nocapture` every run prints its exit code, wall time and peak
//! RSS (`hostile: ...` lines): the figures docs/operations.md quotes.

mod support;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::script::{Answer, CAPS, Flood, Script, Server, message};

/// The data segment the binary may have, and the peak RSS it must stay
/// below: 100 MB.
const MEMORY_LIMIT: u64 = 100_000_000;
/// The account's `timeout` here, so that the tests are quick.
const TIMEOUT: &str = "2s";
/// A run still going after this is killed, and its test fails.
const KILL_AFTER: Duration = Duration::from_secs(40);
/// A wait the account's timeout ends: 2 s, and room for a busy machine.
const TIMED_OUT: Duration = Duration::from_secs(6);
/// What a flood of 200,000 responses may take, parsed in a debug build on
/// a busy machine.
const FLOODED: Duration = Duration::from_secs(20);

/// What parsing a SEARCH answer of millions of UIDs may take in a debug
/// build on a busy machine.
const PARSED: Duration = Duration::from_secs(30);

/// One rule over INBOX: what the scripted server's messages match.
const RULES: &str = "  - {name: news, match: {from: {domain: example.org}}, actions: [flag: seen, move: Archive]}\n";

/// Text that only Rust's Debug formatting writes.
const DEBUG_TEXT: &[&str] = &["Some(", "None", "Error {", "[42,", "Os {", "kind:"];

fn config(dir: &Path, port: u16, account: &str, rules: &str) -> PathBuf {
    let path = dir.join("config.yaml");
    std::fs::write(
        &path,
        format!(
            "version: 1\naccounts:\n  test:\n    host: 127.0.0.1\n    port: {port}\n    username: someone\n{account}rules:\n{rules}"
        ),
    )
    .unwrap();
    path
}

/// The account settings of most tests: plain IMAP on loopback, the
/// password from the environment, a 2 s timeout.
fn plain() -> String {
    format!("    tls: none\n    password_env: MAILWARDEN_TEST_PASSWORD\n    timeout: {TIMEOUT}\n")
}

/// A running binary under `/usr/bin/time`, its output collected as it
/// comes.
struct Proc {
    /// `time`'s; mailwarden is its child.
    pid: libc::pid_t,
    started: Instant,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    /// Where `time` writes the peak RSS.
    usage: tempfile::NamedTempFile,
}

/// How a run ended.
#[derive(Debug)]
struct Ran {
    code: Option<i32>,
    signal: Option<i32>,
    stdout: String,
    stderr: String,
    wall: Duration,
    /// Bytes.
    peak_rss: u64,
}

/// Reads a pipe to its end (the child's exit), keeping the first MiB.
fn collect(mut pipe: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let out = Arc::new(Mutex::new(Vec::new()));
    let sink = out.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        // Bounded by the child's life, which KILL_AFTER bounds.
        for _ in 0..1_000_000 {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    let mut s = sink.lock().unwrap();
                    if s.len() < 1 << 20 {
                        s.extend_from_slice(&buf[..n]);
                    }
                }
            }
        }
    });
    out
}

/// Starts `mailwarden ARGS -c CONFIG` under the memory limit, with its
/// state in `state`. It runs under GNU time (`-f %M`), which reports the
/// peak RSS of its child alone: wait4's figure for a child of the test
/// process would include the test process's own pages, which a child
/// holds between fork and exec.
fn spawn(args: &[&str], config: &Path, state: &Path) -> Proc {
    let usage = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = Command::new("/usr/bin/time");
    cmd.args(["-f", "%M", "-o"])
        .arg(usage.path())
        .arg(env!("CARGO_BIN_EXE_mailwarden"))
        .args(args)
        .arg("-c")
        .arg(config)
        .env("MAILWARDEN_TEST_PASSWORD", "hostile-pw")
        .env("XDG_STATE_HOME", state)
        // The default log level of each command: what a user sees.
        .env_remove("MAILWARDEN_LOG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: between fork and exec only setrlimit, which is
    // async-signal-safe, is called. `time` and mailwarden inherit it.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: MEMORY_LIMIT,
                rlim_max: MEMORY_LIMIT,
            };
            if libc::setrlimit(libc::RLIMIT_DATA, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .expect("/usr/bin/time (Debian package time) is needed");
    let proc = Proc {
        pid: child.id() as libc::pid_t,
        started,
        stdout: collect(child.stdout.take().unwrap()),
        stderr: collect(child.stderr.take().unwrap()),
        usage,
    };
    // Reaped below with waitpid; `Child` is only dropped.
    drop(child);
    proc
}

impl Proc {
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// mailwarden's pid: `time`'s child.
    async fn mailwarden(&self) -> libc::pid_t {
        let children = format!("/proc/{0}/task/{0}/children", self.pid);
        for _ in 0..200 {
            let text = std::fs::read_to_string(&children).unwrap_or_default();
            if let Some(pid) = text.split_whitespace().next() {
                return pid.parse().unwrap();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("time never started mailwarden");
    }

    /// Sends `signal` to mailwarden (not to `time`).
    async fn signal(&self, signal: libc::c_int) {
        let pid = self.mailwarden().await;
        // SAFETY: a plain syscall on our own grandchild, alive as long as
        // `time`, our unreaped child, waits for it.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }

    /// Waits for the exit (killing mailwarden after `limit`).
    async fn finish(self, limit: Duration) -> Ran {
        let mut status = 0;
        let polls = limit.as_millis() / 10;
        let mut exited = false;
        for _ in 0..polls {
            // SAFETY: waitpid on our own child with a valid out-pointer.
            let r = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
            assert!(r >= 0, "waitpid: {}", std::io::Error::last_os_error());
            if r == self.pid {
                exited = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let wall = self.started.elapsed();
        if !exited {
            self.signal(libc::SIGKILL).await;
            // SAFETY: as above; `time` ends once mailwarden is dead.
            unsafe { libc::waitpid(self.pid, &mut status, 0) };
        }
        // The pipes close with the process; give the readers a moment.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let text =
            |b: &Arc<Mutex<Vec<u8>>>| String::from_utf8_lossy(&b.lock().unwrap()).into_owned();
        // `time` writes "Command terminated by signal N" for a killed
        // child, then the figure asked for: KiB.
        let usage = std::fs::read_to_string(self.usage.path()).unwrap_or_default();
        let signal = usage
            .lines()
            .find_map(|l| l.strip_prefix("Command terminated by signal "))
            .and_then(|n| n.trim().parse().ok());
        let peak_kib: u64 = usage
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0);
        Ran {
            code: if signal.is_some() {
                None
            } else {
                libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status))
            },
            signal,
            stdout: text(&self.stdout),
            stderr: text(&self.stderr),
            wall,
            peak_rss: peak_kib * 1024,
        }
    }
}

/// `mailwarden run` to its end.
async fn run(config: &Path, state: &Path) -> Ran {
    spawn(&["run"], config, state).finish(KILL_AFTER).await
}

impl Ran {
    /// The run ended with `code` within `within`, under the memory bound,
    /// saying each of `says` on standard error, and nothing of Rust's
    /// Debug output.
    fn check(&self, case: &str, code: i32, says: &[&str], within: Duration) {
        eprintln!(
            "hostile: {case}: exit {}, {:.2} s, peak RSS {:.1} MB",
            self.code
                .map_or_else(|| format!("signal {:?}", self.signal), |c| c.to_string()),
            self.wall.as_secs_f64(),
            self.peak_rss as f64 / 1e6
        );
        let context = format!(
            "{case}: exit {:?} (signal {:?}) after {:?}, peak RSS {} bytes\nstdout:\n{}\nstderr:\n{}",
            self.code, self.signal, self.wall, self.peak_rss, self.stdout, self.stderr
        );
        assert_eq!(self.code, Some(code), "{context}");
        for s in says {
            assert!(self.stderr.contains(s), "{case}: no {s:?} in\n{context}");
        }
        for d in DEBUG_TEXT {
            assert!(
                !self.stderr.contains(d),
                "{case}: Debug text {d:?} in\n{context}"
            );
        }
        assert!(
            self.wall < within,
            "{case}: took {:?}\n{context}",
            self.wall
        );
        assert!(
            self.peak_rss > 0 && self.peak_rss < MEMORY_LIMIT,
            "{case}: peak RSS {} bytes\n{context}",
            self.peak_rss
        );
    }

    /// The lines of standard error that report a problem (`mailwarden:`),
    /// as opposed to log lines.
    fn problems(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("mailwarden:"))
            .collect()
    }
}

/// The journal as `mailwarden log --format json` shows it.
fn journal(state: &Path) -> Vec<serde_json::Value> {
    let o = Command::new(env!("CARGO_BIN_EXE_mailwarden"))
        .args(["log", "--format", "json"])
        .env("XDG_STATE_HOME", state)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Runs `run` against `script` with the usual account and rules.
async fn run_against(script: Script) -> (Ran, Server, tempfile::TempDir) {
    let server = script.start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), server.port, &plain(), RULES);
    let ran = run(&cfg, dir.path()).await;
    (ran, server, dir)
}

/// No credential left the client: nothing was sent after (or as) LOGIN or
/// AUTHENTICATE.
fn no_login(server: &Server) {
    let sent = server.commands();
    assert!(
        sent.iter().all(|c| !c.contains("hostile-pw")
            && !c.to_uppercase().starts_with("LOGIN")
            && !c.to_uppercase().starts_with("AUTHENTICATE")),
        "{sent:?}"
    );
}

/// The scripted INBOX is as it was: nothing moved, nothing journaled.
fn untouched(server: &Server, state: &Path) {
    assert_eq!(server.folder("INBOX").len(), 3);
    assert!(server.folder("Archive").is_empty());
    assert!(server.count("UID MOVE") == 0, "{:?}", server.commands());
    assert_eq!(journal(state), Vec::<serde_json::Value>::new());
}

// --- Waits that never end -------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_greeting_that_never_comes_is_exit_3_after_the_timeout() {
    let (ran, server, _dir) = run_against(Script::new().greeting(Answer::Silence)).await;
    ran.check(
        "silent greeting",
        3,
        &["no answer from the server within 2s during the greeting"],
        TIMED_OUT,
    );
    assert!(ran.wall >= Duration::from_secs(2), "{ran:?}");
    assert!(server.commands().is_empty(), "{:?}", server.commands());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_starttls_never_answered_is_exit_3_and_no_credential_is_sent() {
    let server = Script::new()
        .caps(&format!("{CAPS} STARTTLS"))
        .on("STARTTLS", Answer::Silence)
        .start()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let account = format!(
        "    tls: starttls\n    password_env: MAILWARDEN_TEST_PASSWORD\n    timeout: {TIMEOUT}\n"
    );
    let cfg = config(dir.path(), server.port, &account, RULES);
    let ran = run(&cfg, dir.path()).await;
    ran.check(
        "silent STARTTLS",
        3,
        &["no answer from the server within 2s during STARTTLS"],
        TIMED_OUT,
    );
    assert_eq!(server.count("STARTTLS"), 1);
    no_login(&server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_never_answered_is_exit_3_after_the_timeout() {
    let (ran, server, _dir) = run_against(Script::new().on("LOGIN", Answer::Silence)).await;
    ran.check(
        "silent LOGIN",
        3,
        &["login to 127.0.0.1 as someone failed: no answer from the server within 2s during LOGIN"],
        TIMED_OUT,
    );
    assert_eq!(server.count("LOGIN"), 1);
    assert_eq!(server.commands().len(), 1, "{:?}", server.commands());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authenticate_never_answered_is_exit_3_after_the_timeout() {
    let (ran, server, _dir) = run_against(
        Script::new()
            .caps(&format!("{CAPS} AUTH=PLAIN"))
            .on("AUTHENTICATE", Answer::Silence),
    )
    .await;
    ran.check(
        "silent AUTHENTICATE",
        3,
        &["login to 127.0.0.1 as someone failed: no answer from the server within 2s during AUTHENTICATE"],
        TIMED_OUT,
    );
    assert_eq!(server.count("AUTHENTICATE"), 1);
}

// --- Too much ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_capability_lines_before_login_are_cut_off() {
    let (ran, server, _dir) = run_against(Script::new().plain_greeting().on(
        "CAPABILITY",
        Answer::Flood(Flood::Lines(
            "* CAPABILITY IMAP4rev1 LITERAL+ X-FLOOD-{n}\r\n".into(),
        )),
    ))
    .await;
    ran.check(
        "endless CAPABILITY",
        3,
        &[
            "cannot connect to 127.0.0.1",
            "the server sent more than 200000 responses nobody asked for during CAPABILITY",
        ],
        FLOODED,
    );
    no_login(&server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_fetch_responses_for_other_messages_are_cut_off() {
    let (ran, server, dir) = run_against(
        Script::new().on(
            "UID FETCH",
            Answer::NormalThen(Flood::Lines(
                "* {n} FETCH (UID {u} FLAGS (\\Seen) BODY[HEADER] {{12}}\r\nFrom: x@y\r\n\r\n)\r\n"
                    .into(),
            )),
        ),
    )
    .await;
    ran.check(
        "endless unasked FETCH",
        1,
        &[
            "the server sent more than 200000 responses nobody asked for during UID FETCH",
            "run again",
        ],
        FLOODED,
    );
    untouched(&server, dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_exists_after_select_is_cut_off() {
    let (ran, server, dir) = run_against(Script::new().on(
        "SELECT",
        Answer::NormalThen(Flood::Lines("* 1 EXISTS\r\n".into())),
    ))
    .await;
    ran.check(
        "EXISTS flood after SELECT",
        1,
        &["the server sent more than 200000 responses nobody asked for during SELECT"],
        FLOODED,
    );
    untouched(&server, dir.path());
}

/// What SELECT answers besides EXISTS (FLAGS, OK with a code, RECENT),
/// without end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_flags_and_ok_after_select_is_cut_off() {
    let flood = "* FLAGS (\\Seen \\X{n})\r\n* OK [UNSEEN {n}] first unseen\r\n* 0 RECENT\r\n";
    let (ran, server, dir) =
        run_against(Script::new().on("SELECT", Answer::NormalThen(Flood::Lines(flood.into()))))
            .await;
    ran.check(
        "FLAGS/OK flood after SELECT",
        1,
        &["the server sent more than 200000 responses nobody asked for during SELECT"],
        FLOODED,
    );
    untouched(&server, dir.path());
}

/// A LIST without end, each name 100 bytes: nothing grows past its
/// limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_list_is_cut_off_within_the_memory_bound() {
    let flood = format!("* LIST () \"/\" \"Folder{{n}}-{}\"\r\n", "x".repeat(100));
    let (ran, server, dir) =
        run_against(Script::new().on("LIST", Answer::NormalThen(Flood::Lines(flood)))).await;
    ran.check(
        "endless LIST",
        1,
        &[
            "the server sent more than 200000 responses nobody asked for during LIST",
            "not reached: INBOX; run again",
        ],
        FLOODED,
    );
    untouched(&server, dir.path());
}

/// EXPUNGEs without end in answer to a MOVE of three messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_expunges_during_a_move_are_cut_off() {
    let (ran, _server, _dir) = run_against(Script::new().on(
        "UID MOVE",
        Answer::NormalThen(Flood::Lines("* 1 EXPUNGE\r\n".into())),
    ))
    .await;
    ran.check(
        "endless EXPUNGE during UID MOVE",
        1,
        &["the server sent more than 200000 responses nobody asked for during UID MOVE; the connection was closed; 3 messages in INBOX not handled"],
        FLOODED,
    );
}

/// The same message's new flags, again and again, in answer to UID STORE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_store_answer_without_end_is_cut_off() {
    let (ran, server, _dir) = run_against(Script::new().on(
        "UID STORE",
        Answer::NormalThen(Flood::Lines("* 1 FETCH (UID 1 FLAGS (\\Seen))\r\n".into())),
    ))
    .await;
    ran.check(
        "endless STORE answers",
        1,
        &["the server sent more than 200000 responses nobody asked for during UID STORE"],
        FLOODED,
    );
    assert_eq!(server.count("UID MOVE"), 0);
}

/// `+` after `+` in answer to AUTHENTICATE: the credentials go once, an
/// empty answer once, and then the login fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authenticate_that_keeps_asking_is_exit_3() {
    let (ran, server, _dir) = run_against(
        Script::new()
            .caps(&format!("{CAPS} AUTH=PLAIN"))
            .on("AUTHENTICATE", Answer::Flood(Flood::Lines("+ \r\n".into()))),
    )
    .await;
    ran.check(
        "endless AUTHENTICATE challenges",
        3,
        &["login to 127.0.0.1 as someone failed: unexpected answer from the server: it asked for more during AUTHENTICATE"],
        TIMED_OUT,
    );
    assert_eq!(server.count("AUTHENTICATE"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_that_never_ends_is_cut_off_at_1_mib() {
    let (ran, server, dir) =
        run_against(Script::new().on("UID SEARCH", Answer::Flood(Flood::Unending))).await;
    ran.check(
        "unending line",
        1,
        &["the server sent a line longer than 1 MiB without ending it during UID SEARCH"],
        TIMED_OUT,
    );
    untouched(&server, dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_literal_announced_at_5_gb_is_refused_unread() {
    let (ran, server, dir) =
        run_against(Script::new().on("UID FETCH", Answer::Flood(Flood::Literal(5 << 30)))).await;
    ran.check(
        "5 GB literal",
        1,
        &["the server announced a literal of 5120 MiB, more than the 32 MiB accepted during UID FETCH"],
        TIMED_OUT,
    );
    untouched(&server, dir.path());
}

// --- Refusals and departures --------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_search_is_an_error_not_an_empty_mailbox() {
    for status in ["NO", "BAD"] {
        let (ran, server, dir) = run_against(Script::new().on(
            "UID SEARCH",
            Answer::tagged(&format!("{status} [SERVERBUG] search failed")),
        ))
        .await;
        ran.check(
            &format!("UID SEARCH {status}"),
            1,
            &[&format!(
                "test/INBOX: UID SEARCH refused by the server: {status} search failed"
            )],
            TIMED_OUT,
        );
        assert_eq!(server.count("UID FETCH"), 0, "{:?}", server.commands());
        untouched(&server, dir.path());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_fetch_is_an_error_and_no_message_counts_as_absent() {
    for status in ["NO", "BAD"] {
        let (ran, server, dir) = run_against(Script::new().on(
            "UID FETCH",
            Answer::tagged(&format!("{status} [SERVERBUG] fetch failed")),
        ))
        .await;
        ran.check(
            &format!("UID FETCH {status}"),
            1,
            &[&format!(
                "test/INBOX: UID FETCH refused by the server: {status} fetch failed"
            )],
            TIMED_OUT,
        );
        untouched(&server, dir.path());
        assert_eq!(server.count("UID STORE"), 0, "{:?}", server.commands());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bye_in_the_middle_of_a_command_is_reported_with_its_text() {
    let (ran, server, dir) =
        run_against(Script::new().on("UID FETCH", Answer::Bye("server shutting down".into())))
            .await;
    ran.check(
        "BYE mid-command",
        1,
        &["the server closed the connection during UID FETCH (it said: server shutting down); INBOX not finished; run again"],
        TIMED_OUT,
    );
    assert_eq!(ran.problems().len(), 1, "{}", ran.stderr);
    untouched(&server, dir.path());
}

/// The connection closes during the first mailbox's UID MOVE: one line
/// tells what was lost (the messages of the mailbox being worked on, the
/// mailboxes not reached), not one line per mailbox left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cut_mid_pass_is_one_line_naming_what_was_lost() {
    let more = |prefix: &str| {
        (1..=2)
            .map(|u| message(u, &format!("{prefix}{u}@x"), "news@example.org"))
            .collect()
    };
    let server = Script::new()
        .folder("Lists", more("l"))
        .folder("Work", more("w"))
        .on_nth("UID MOVE", 1, Answer::Close)
        .start()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let rules = "  - {name: news, mailbox: [INBOX, Lists, Work], match: {from: {domain: example.org}}, actions: [flag: seen, move: Archive]}\n";
    let cfg = config(dir.path(), server.port, &plain(), rules);
    let ran = run(&cfg, dir.path()).await;
    ran.check(
        "cut mid-pass",
        1,
        &["mailwarden: account test: the server closed the connection during UID MOVE; 3 messages in INBOX not handled; not reached: Lists, Work; run again"],
        TIMED_OUT,
    );
    assert_eq!(ran.problems(), [ran.stderr.trim()], "one line only");
    assert_eq!(server.count("UID MOVE"), 1);
    assert_eq!(server.folder("INBOX").len(), 3);
}

// --- The daemon -------------------------------------------------------------

/// Waits (at most `secs`) until `done` holds.
async fn until(secs: u64, mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..secs * 20 {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    done()
}

/// `watch` against a server that never answers LOGIN: each attempt ends
/// at the timeout, the next comes after a backoff that grows, and SIGTERM
/// in the middle of a login ends the daemon at once, without waiting for
/// the login's timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_retries_a_silent_login_with_backoff_and_stops_at_once() {
    let server = Script::new().on("LOGIN", Answer::Silence).start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), server.port, &plain(), RULES);
    let daemon = spawn(&["watch"], &cfg, dir.path());
    let third = until(20, || server.count("LOGIN") >= 3).await;
    let log = daemon.stderr();
    assert!(third, "{log}");
    let at = server.connections();
    let (first, second) = (at[1] - at[0], at[2] - at[1]);
    // The timeout (2 s), then 1 s and then 2 s of backoff (plus jitter).
    assert!(first >= Duration::from_millis(2900), "{first:?}\n{log}");
    assert!(second >= Duration::from_millis(3900), "{second:?}\n{log}");
    assert!(second > first, "the backoff grows: {first:?} {second:?}");
    assert!(
        log.contains(
            "login to 127.0.0.1 as someone failed: no answer from the server within 2s during LOGIN"
        ),
        "{log}"
    );
    // The third login is waiting on the server now.
    let stopping = Instant::now();
    daemon.signal(libc::SIGTERM).await;
    let ran = daemon.finish(Duration::from_secs(10)).await;
    let stopped = stopping.elapsed();
    eprintln!(
        "hostile: stopped {:.2} s after SIGTERM",
        stopped.as_secs_f64()
    );
    ran.check("watch: silent LOGIN, SIGTERM", 0, &[], KILL_AFTER);
    // Not the stop grace (1.5 s) nor the login timeout: the login is
    // dropped on the spot.
    assert!(
        stopped < Duration::from_secs(1),
        "{stopped:?}\n{}",
        ran.stderr
    );
    assert_eq!(server.connections().len(), 3);
}

/// Processes whose command line is exactly `words`.
fn processes(words: &[&str]) -> Vec<u32> {
    let want: Vec<u8> = words
        .iter()
        .flat_map(|w| [w.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
        .collect()
}

/// `watch` whose password helper never ends: SIGTERM ends the daemon at
/// once and the helper with it, its children included (the `sleep` runs
/// under `sh -c`, which waits for it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_stuck_in_the_password_helper_stops_at_once_and_kills_it() {
    let server = Script::new().start().await;
    let dir = tempfile::tempdir().unwrap();
    // A sleep this test alone runs; the long timeout (the helper's
    // deadline too) leaves the stop as the only way out.
    let seconds = format!("3600.{:06}", std::process::id() % 1_000_000);
    let account = format!(
        "    tls: none\n    password_command: 'sleep {seconds} && echo never'\n    timeout: 5m\n"
    );
    let cfg = config(dir.path(), server.port, &account, RULES);
    let daemon = spawn(&["watch"], &cfg, dir.path());
    let started = until(10, || !processes(&["sleep", &seconds]).is_empty()).await;
    assert!(started, "the helper never started: {}", daemon.stderr());
    let stopping = Instant::now();
    daemon.signal(libc::SIGTERM).await;
    let ran = daemon.finish(Duration::from_secs(10)).await;
    let stopped = stopping.elapsed();
    eprintln!(
        "hostile: stopped {:.2} s after SIGTERM",
        stopped.as_secs_f64()
    );
    ran.check("watch: password helper, SIGTERM", 0, &[], KILL_AFTER);
    assert!(
        stopped < Duration::from_secs(1),
        "{stopped:?}\n{}",
        ran.stderr
    );
    let gone = until(2, || processes(&["sleep", &seconds]).is_empty()).await;
    assert!(gone, "the helper's sleep outlived the daemon");
    assert!(server.commands().is_empty(), "{:?}", server.commands());
}

// --- Another client, against the real Dovecot -----------------------------

/// While `run` moves five messages, another client expunges two of them
/// just before the UID MOVE reaches the server (a proxy holds the command
/// back until it has). Dovecot refuses the MOVE with EXPUNGEISSUED (RFC
/// 5530) and moves nothing. The two are journaled `gone`, never `done`;
/// the other three are moved after all and the summary counts those
/// three; every other message is where it was, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_expunged_by_another_client_during_a_move_are_journaled_gone() {
    use mailwarden::imap::Access;
    use mailwarden::imap::command::StoreMode;
    use mailwarden::imap::types::{Mailbox, Uid, UidSet};
    use mailwarden::rules::Flag;
    use support::{FULL, Proxy, server, text, total};

    let user = server().user();
    let mail = |id: &str, from: &str| {
        format!("Message-ID: <{id}>\r\nFrom: {from}\r\nSubject: s\r\nDate: Mon, 05 Jan 2026 10:00:00 +0000\r\n\r\nbody\r\n").into_bytes()
    };
    // UIDs 1 to 5 match the rule; 6 does not.
    for i in 1..=5 {
        user.deliver("INBOX", &mail(&format!("n{i}@x"), "news@example.org"))
            .await;
    }
    user.deliver("INBOX", &mail("p1@x", "friend@example.net"))
        .await;
    let before = user.snapshot().await;
    assert_eq!(total(&before), 6);

    let other = user.clone();
    let hook: support::Hook = Arc::new(move |line: String| {
        let other = other.clone();
        Box::pin(async move {
            assert!(line.contains("UID MOVE 1:5 "), "{line}");
            let gone = UidSet::new([2, 4].map(|n| Uid::new(n).unwrap()));
            let mut c = other.conn(FULL).await;
            c.open(&Mailbox::inbox(), Access::ReadWrite).await.unwrap();
            c.store(&gone, StoreMode::Add, &[Flag::Deleted])
                .await
                .unwrap();
            c.expunge(&gone).await.unwrap();
            c.logout().await;
        })
    });
    let proxy = Proxy::with_hook(FULL, "UID MOVE", hook).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yaml");
    std::fs::write(
        &cfg,
        format!(
            "version: 1\naccounts:\n  test:\n    host: 127.0.0.1\n    port: {}\n    tls: none\n    username: {}\n    password_env: MAILWARDEN_TEST_PASSWORD\n    timeout: {TIMEOUT}\nrules:\n{RULES}",
            proxy.port, user.name
        ),
    )
    .unwrap();
    let o = user.mailwarden(&["run"], &cfg);
    let (out, err) = text(&o);
    assert!(
        proxy.cut_done.load(std::sync::atomic::Ordering::SeqCst),
        "the other client never acted: {out}\n{err}"
    );
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(out.contains("moved 3 messages to Archive"), "{out}");
    assert!(!out.contains("moved 5"), "{out}");
    assert!(
        err.contains("2 messages gone before the action reached it"),
        "{err}"
    );

    let moves: Vec<(u64, String)> = user
        .mailwarden_bare(&["log", "--format", "json"])
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice::<serde_json::Value>(l).unwrap())
        .filter(|e| e["action"] == "move")
        .map(|e| {
            (
                e["uid"].as_u64().unwrap(),
                e["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let status = |uid: u64| -> Vec<&str> {
        moves
            .iter()
            .filter(|(u, _)| *u == uid)
            .map(|(_, s)| s.as_str())
            .collect()
    };
    for uid in [2, 4] {
        assert_eq!(status(uid), ["gone"], "UID {uid}: {moves:?}");
    }
    for uid in [1, 3, 5] {
        assert!(status(uid).contains(&"done"), "UID {uid}: {moves:?}");
    }

    // Nothing lost but what the other client removed, nothing twice.
    let after = user.snapshot().await;
    let ids = |m: &str| -> Vec<&str> {
        after
            .get(m)
            .map(|v| v.iter().map(|(id, _)| id.as_str()).collect())
            .unwrap_or_default()
    };
    assert_eq!(ids("Archive"), ["<n1@x>", "<n3@x>", "<n5@x>"], "{after:?}");
    assert_eq!(ids("INBOX"), ["<p1@x>"], "{after:?}");
    assert_eq!(total(&after), 4, "{after:?}");
}

/// A server that claims four billion messages, so that its SEARCH answer
/// may be as long as the limit allows, and then answers with `answer`
/// (the untagged SEARCH line). Its SELECT is scripted text, so the fake
/// account has nothing selected and refuses the FETCH that follows: the
/// memory at stake is the SEARCH answer's.
async fn claimed_search(answer: String) -> Ran {
    let (ran, _server, _dir) = run_against(
        Script::new()
            .on(
                "SELECT",
                Answer::Text(
                    "* 4000000000 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n{tag} OK [READ-WRITE] selected\r\n"
                        .into(),
                ),
            )
            .on("UID SEARCH", Answer::Text(answer + "{tag} OK done\r\n")),
    )
    .await;
    ran
}

/// `* SEARCH` and `words` until the line is `len` octets long (CRLF
/// included), or as close below as whole words allow.
fn search_line(len: usize, mut words: impl Iterator<Item = String>) -> String {
    let mut line = String::with_capacity(len);
    line.push_str("* SEARCH");
    for w in words.by_ref() {
        if line.len() + 1 + w.len() + 2 > len {
            break;
        }
        line.push(' ');
        line.push_str(&w);
    }
    line.push_str("\r\n");
    line
}

/// A SEARCH answer just under its 12 MiB limit: 1.3 million distinct
/// UIDs, or six million times the same one (the most UIDs a line that
/// long can hold). Both stay under the memory bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_answer_as_long_as_the_limit_stays_under_the_memory_bound() {
    let limit = 12 << 20;
    let distinct = search_line(limit, (10_000_000u32..).map(|u| u.to_string()));
    let ran = claimed_search(distinct).await;
    ran.check(
        "SEARCH: 1.3 million UIDs",
        1,
        &["UID FETCH refused"],
        PARSED,
    );
    let same = search_line(limit, std::iter::repeat_n("1".to_string(), usize::MAX));
    let ran = claimed_search(same).await;
    ran.check(
        "SEARCH: one UID six million times",
        1,
        &["UID FETCH refused"],
        PARSED,
    );
    // One UID more is refused, unparsed.
    let over = search_line(limit + 9, (10_000_000u32..).map(|u| u.to_string()));
    let ran = claimed_search(over).await;
    ran.check(
        "SEARCH over its limit",
        1,
        &["the server sent a line longer than 12 MiB without ending it during UID SEARCH"],
        FLOODED,
    );
}

/// A mailbox name that is not valid modified UTF-7 (RFC 3501 5.1.3) in a
/// LIST answer: kept as written, and the pass goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailbox_name_that_is_not_modified_utf7_does_not_stop_the_run() {
    let (ran, server, _dir) = run_against(Script::new().folder("Bad &!!-", Vec::new())).await;
    ran.check("invalid modified UTF-7 in LIST", 0, &[], TIMED_OUT);
    assert_eq!(server.folder("Archive").len(), 3, "{:?}", server.commands());
}

/// A response code followed at once by a non-ASCII character
/// (`[CAPABILITY ...]ä`, RFC 3501 9 puts a space there): read, and the
/// pass goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_right_after_a_response_code_does_not_stop_the_run() {
    let (ran, server, _dir) = run_against(Script::new().greeting(Answer::Text(format!(
        "* OK [CAPABILITY {CAPS}]\u{e4}rger-free server ready\r\n"
    ))))
    .await;
    ran.check("non-ASCII text after a code", 0, &[], TIMED_OUT);
    assert_eq!(server.folder("Archive").len(), 3, "{:?}", server.commands());
}
