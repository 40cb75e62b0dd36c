//! Dovecot restarted under a running `mailwarden watch`: the daemon
//! reconnects with backoff and handles the mail that arrived meanwhile.
//! A binary of its own, so that its server can be stopped without
//! disturbing other tests.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{FULL, server, total};

fn mail(id: &str) -> Vec<u8> {
    format!("Message-ID: <{id}>\r\nFrom: notifications@github.com\r\nSubject: s\r\n\r\nbody\r\n")
        .into_bytes()
}

#[tokio::test]
async fn watch_survives_a_server_restart_while_idling() {
    let user = server().user();
    let dir = tempfile::tempdir().unwrap();
    let rules = "  - name: GitHub\n    match: { from: { domain: github.com } }\n    actions: [move: Notifications]\n";
    let cfg = user.config(dir.path(), FULL, "", rules);
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailwarden"))
        .args(["watch", "-c"])
        .arg(&cfg)
        .env("MAILWARDEN_TEST_PASSWORD", &user.password)
        .env("XDG_STATE_HOME", user.state_home())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let sink = log.clone();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push_str(&(line + "\n"));
        }
    });
    let wait_for = |needle: &str| {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if log.lock().unwrap().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        false
    };
    assert!(wait_for("connected"), "{}", log.lock().unwrap());
    std::thread::sleep(Duration::from_millis(300));

    let _restarted = server().restart();
    // Mail that arrives while the daemon is away (backoff starts at 1 s).
    user.append("INBOX", &mail("after-restart@x"), &[], None)
        .await;
    let start = Instant::now();
    let mut moved = false;
    while start.elapsed() < Duration::from_secs(20) {
        if user
            .snapshot()
            .await
            .get("Notifications")
            .is_some_and(|v| v.len() == 1)
        {
            moved = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(moved, "{}", log.lock().unwrap());
    assert!(
        log.lock().unwrap().contains("reconnecting"),
        "{}",
        log.lock().unwrap()
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let mut code = None;
    for _ in 0..100 {
        if let Some(status) = child.try_wait().unwrap() {
            code = status.code();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(code, Some(0), "{}", log.lock().unwrap());
    assert_eq!(total(&user.snapshot().await), 1);
}
