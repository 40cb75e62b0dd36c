//! Dovecot restarted under a running `mailwarden watch`: the daemon
//! reconnects with backoff and handles the mail that arrived meanwhile.
//! A binary of its own, so that its server can be stopped without
//! disturbing other tests.

mod support;

use support::{Daemon, FULL, server, total};

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
    let daemon = Daemon::start(&user, &cfg);
    // Idling, so the restart comes while it waits in IDLE.
    daemon.expect_log("idle started", 20).await;

    let _restarted = server().restart();
    // Mail that arrives while the daemon is away (backoff starts at 1 s).
    user.deliver("INBOX", &mail("after-restart@x")).await;
    daemon.expect_in_folder(&user, "Notifications", 1, 20).await;
    assert!(daemon.log_has("reconnecting"), "{}", daemon.log());
    assert_eq!(daemon.stop(), Some(0));
    assert_eq!(total(&user.snapshot().await), 1);
}
