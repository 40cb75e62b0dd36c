//! Operating `mailwarden watch` as systemd and a monitoring system see it,
//! against a real Dovecot: `READY=1` once every account has made its first
//! pass or given up, watchdog pings, `STATUS=` lines, and `mailwarden
//! status` and the metrics endpoint showing an account disconnected and
//! reconnected while Dovecot restarts. A binary of its own, so that its
//! server can be restarted without disturbing other tests (the server the
//! restart leaves is stopped at the end of that test: no other test here
//! uses Dovecot).

mod support;

use std::io::{Read, Write};
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{Daemon, FULL, User, eventually, free_port, server};

fn mail(id: &str) -> Vec<u8> {
    format!("Message-ID: <{id}>\r\nFrom: notifications@github.com\r\nSubject: s\r\n\r\nbody\r\n")
        .into_bytes()
}

/// What the daemon sent to the notify socket, with when it arrived.
type Notes = Arc<Mutex<Vec<(Instant, String)>>>;

fn listen(socket: UnixDatagram, stop: Arc<AtomicBool>) -> Notes {
    let notes: Notes = Arc::default();
    let sink = notes.clone();
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 8192];
        while !stop.load(Ordering::Relaxed) {
            if let Ok(n) = socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                sink.lock().unwrap().push((Instant::now(), text));
            }
        }
    });
    notes
}

fn status(user: &User) -> serde_json::Value {
    let o = Command::new(env!("CARGO_BIN_EXE_mailwarden"))
        .args(["status", "--format", "json"])
        .env("XDG_STATE_HOME", user.state_home())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    serde_json::from_slice(&o.stdout).unwrap()
}

fn account<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    status["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["account"] == name)
        .unwrap_or_else(|| panic!("no account {name} in {status}"))
}

/// GET `path` from the metrics server: the status line and the body.
fn get(port: u16, path: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

fn metric(body: &str, sample: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn systemd_status_and_metrics_follow_the_accounts_through_a_server_restart() {
    let user = server().user();
    let dir = tempfile::tempdir().unwrap();
    // A second account whose server is not there: READY must not wait
    // for it, and it shows as disconnected.
    let nobody = free_port();
    let cfg = dir.path().join("config.yaml");
    std::fs::write(
        &cfg,
        format!(
            "version: 1\naccounts:\n  test:\n    host: \"{FULL}\"\n    port: {}\n    tls: none\n    username: {}\n    password_env: MAILWARDEN_TEST_PASSWORD\n  down:\n    host: \"{FULL}\"\n    port: {nobody}\n    tls: none\n    username: nobody\n    password_env: MAILWARDEN_TEST_PASSWORD\nrules:\n  - name: GitHub\n    account: test\n    match: {{ from: {{ domain: github.com }} }}\n    actions: [move: Notifications]\n  - name: Nothing\n    account: down\n    actions: [flag: seen]\n",
            server().plain_port,
            user.name
        ),
    )
    .unwrap();
    let socket_path = dir.path().join("notify.sock");
    let stop_listening = Arc::new(AtomicBool::new(false));
    let notes = listen(
        UnixDatagram::bind(&socket_path).unwrap(),
        stop_listening.clone(),
    );
    let metrics_port = free_port();
    let started = Instant::now();
    let daemon = Daemon::start_with(
        &user,
        &cfg,
        &["--metrics", &metrics_port.to_string()],
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "1000000"),
        ],
    );
    let ready = || {
        notes
            .lock()
            .unwrap()
            .iter()
            .find(|(_, n)| n.starts_with("READY=1"))
            .cloned()
    };
    assert!(
        eventually(Duration::from_secs(20), || async { ready().is_some() }).await,
        "no READY=1: {:?}\n{}",
        notes.lock().unwrap(),
        daemon.log()
    );
    let (ready_at, ready_text) = ready().unwrap();
    eprintln!(
        "READY=1 {} ms after start: {ready_text:?}",
        (ready_at - started).as_millis()
    );
    assert!(
        ready_text.contains("STATUS=1 of 2 accounts connected;")
            && ready_text.contains("down: disconnected (cannot connect:")
            && ready_text.contains("test: connected (idle)"),
        "{ready_text}"
    );
    // The first pass was made before READY (its sweep is recorded).
    let s = status(&user);
    assert!(account(&s, "test")["last_sweep"].is_string(), "{s}");

    // Pings every half WATCHDOG_USEC.
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let pings: Vec<Instant> = notes
        .lock()
        .unwrap()
        .iter()
        .filter(|(at, n)| n == "WATCHDOG=1" && *at > ready_at)
        .map(|(at, _)| *at)
        .collect();
    eprintln!(
        "{} watchdog pings in the {} ms after READY",
        pings.len(),
        ready_at.elapsed().as_millis()
    );
    assert!(pings.len() >= 4, "{:?}", notes.lock().unwrap());
    assert!(
        pings
            .windows(2)
            .all(|w| w[1] - w[0] < Duration::from_millis(900)),
        "pings too far apart: {pings:?}"
    );

    // Status and metrics while connected; an action counted.
    user.deliver("INBOX", &mail("one@x")).await;
    daemon.expect_in_folder(&user, "Notifications", 1, 20).await;
    let s = status(&user);
    eprintln!("status before the restart: {s}");
    assert_eq!(s["watch"]["running"], true, "{s}");
    let test = account(&s, "test");
    assert_eq!(
        (&test["state"], &test["mode"], &test["acted_today"]),
        (
            &serde_json::json!("connected"),
            &serde_json::json!("idle"),
            &serde_json::json!(1)
        ),
        "{s}"
    );
    let down = account(&s, "down");
    assert_eq!(down["state"], "disconnected", "{s}");
    assert!(down["errors_in_row"].as_u64().unwrap() >= 1, "{s}");
    assert!(
        down["last_error"]
            .as_str()
            .unwrap()
            .starts_with("cannot connect: cannot connect to 127.0.0.1:"),
        "{s}"
    );
    // The text form says the same, as docs/cli.md describes it.
    let o = Command::new(env!("CARGO_BIN_EXE_mailwarden"))
        .arg("status")
        .env("XDG_STATE_HOME", user.state_home())
        .output()
        .unwrap();
    let text = String::from_utf8(o.stdout).unwrap();
    eprintln!("{text}");
    assert!(
        text.starts_with(&format!("watch: running (pid {})\n", daemon.child.id()))
            && text.contains("\ntest: connected since ")
            && text.contains(", new mail by IDLE\n")
            && text.contains("\ndown: disconnected since ")
            && text.contains("  acted today  1 message\n")
            && text.contains("  INBOX: last pass "),
        "{text}"
    );
    let (line, body) = get(metrics_port, "/metrics");
    assert_eq!(line, "HTTP/1.1 200 OK");
    assert_eq!(
        metric(&body, "mailwarden_connected{account=\"test\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric(&body, "mailwarden_connected{account=\"down\"}"),
        Some(0.0)
    );
    assert_eq!(
        metric(
            &body,
            "mailwarden_actions_total{account=\"test\",rule=\"GitHub\",action=\"move\",status=\"done\"}"
        ),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        metric(
            &body,
            "mailwarden_arrival_to_action_seconds_count{account=\"test\"}"
        ),
        Some(1.0),
        "{body}"
    );
    assert!(
        metric(
            &body,
            "mailwarden_failures_total{account=\"down\",kind=\"connect\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "{body}"
    );
    for command in ["SELECT", "UID MOVE"] {
        let count =
            format!("mailwarden_imap_command_duration_seconds_count{{command=\"{command}\"}}");
        assert!(
            metric(&body, &count).is_some_and(|n| n >= 1.0),
            "{count}: {body}"
        );
    }
    assert!(
        metric(
            &body,
            "mailwarden_pass_duration_seconds_count{account=\"test\",kind=\"sweep\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "{body}"
    );
    assert_eq!(get(metrics_port, "/").0, "HTTP/1.1 404 Not Found");

    // Watch status and metrics while Dovecot restarts.
    let watching = Arc::new(AtomicBool::new(true));
    let seen = {
        let (watching, user) = (watching.clone(), user.clone());
        std::thread::spawn(move || {
            let (mut in_status, mut in_metrics) = (None, None);
            while watching.load(Ordering::Relaxed) {
                let s = status(&user);
                if in_status.is_none() && account(&s, "test")["state"] == "disconnected" {
                    in_status = Some(s);
                }
                let (_, body) = get(metrics_port, "/metrics");
                if in_metrics.is_none()
                    && metric(&body, "mailwarden_connected{account=\"test\"}") == Some(0.0)
                {
                    in_metrics = Some(body);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            (in_status, in_metrics)
        })
    };
    let restarted_at = Instant::now();
    let _restarted = server().restart();
    let back = eventually(Duration::from_secs(30), || async {
        let s = status(&user);
        let t = account(&s, "test");
        t["state"] == "connected" && t["reconnects"] == 1
    })
    .await;
    let back_after = restarted_at.elapsed();
    watching.store(false, Ordering::Relaxed);
    let (in_status, in_metrics) = seen.join().unwrap();
    assert!(
        back,
        "never reconnected: {}\n{}",
        status(&user),
        daemon.log()
    );
    eprintln!(
        "reconnected {} ms after the restart began",
        back_after.as_millis()
    );
    let in_status = in_status.expect("status never showed the account disconnected");
    eprintln!("status during the restart: {in_status}");
    let t = account(&in_status, "test");
    assert!(t["errors_in_row"].as_u64().unwrap() >= 1, "{in_status}");
    assert!(
        t["last_error"].as_str().unwrap().contains("connection")
            || t["last_error"].as_str().unwrap().contains("cannot connect"),
        "{in_status}"
    );
    let in_metrics = in_metrics.expect("the metrics never showed the account disconnected");
    assert_eq!(
        metric(&in_metrics, "mailwarden_connected{account=\"test\"}"),
        Some(0.0)
    );
    let s = status(&user);
    eprintln!("status after the restart: {s}");
    let (_, body) = get(metrics_port, "/metrics");
    for sample in [
        "mailwarden_connected{account=\"test\"}",
        "mailwarden_reconnects_total{account=\"test\"}",
        "mailwarden_failures_total{account=\"test\",kind=\"connection_lost\"}",
    ] {
        eprintln!("after the restart: {sample} {:?}", metric(&body, sample));
    }
    assert_eq!(
        metric(&body, "mailwarden_connected{account=\"test\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric(&body, "mailwarden_reconnects_total{account=\"test\"}"),
        Some(1.0)
    );
    assert!(
        metric(
            &body,
            "mailwarden_failures_total{account=\"test\",kind=\"connection_lost\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "{body}"
    );
    // Mail after the restart is still handled; the pings went on.
    user.deliver("INBOX", &mail("two@x")).await;
    daemon.expect_in_folder(&user, "Notifications", 2, 20).await;
    let late_pings = notes
        .lock()
        .unwrap()
        .iter()
        .filter(|(at, n)| n == "WATCHDOG=1" && *at > restarted_at + back_after)
        .count();
    assert!(late_pings >= 1, "{:?}", notes.lock().unwrap());

    // A clean stop says so, to systemd and in the status.
    assert_eq!(daemon.stop(), Some(0));
    stop_listening.store(true, Ordering::Relaxed);
    assert!(notes.lock().unwrap().iter().any(|(_, n)| n == "STOPPING=1"));
    // A clean stop leaves the state file alone, without SQLite's
    // companions (what docs/operations.md says to back up).
    let mut left: Vec<String> = std::fs::read_dir(user.state_file().parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["state.db"]);
    let s = status(&user);
    assert_eq!(s["watch"]["running"], false, "{s}");
    assert_eq!(account(&s, "test")["state"], "stopped", "{s}");
    assert_eq!(account(&s, "test")["acted_today"], 2, "{s}");
}

/// `--metrics` on an address that cannot be bound ends `watch` at once
/// (exit 2, saying so) rather than running without the metrics asked for;
/// an address that is none is refused by the command line.
#[test]
fn metrics_on_an_address_in_use_is_an_error_at_start() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let watch = |metrics: &str| {
        Command::new(env!("CARGO_BIN_EXE_mailwarden"))
            .args(["watch", "--metrics", metrics, "-c"])
            .arg(root.join("rules.example.yaml"))
            .arg("--state")
            .arg(dir.path().join("state.db"))
            .output()
            .unwrap()
    };
    let o = watch(&port);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "mailwarden: cannot serve metrics on 127.0.0.1:{port}: "
        )),
        "{err}"
    );
    let o = watch("localhost:80");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("use PORT (on 127.0.0.1)"));
}
