//! What the benchmarks that time arrivals share: a message from a sender,
//! percentiles, and the server's own delay in telling an idling client of
//! new mail (the part of any arrival-to-action time no client can remove).

use std::time::{Duration, Instant};

use mailwarden::imap::Access;

use crate::support::{FULL, server};

/// A small message with `id` as its Message-ID, from `from`.
pub fn mail(id: &str, from: &str) -> Vec<u8> {
    format!("Message-ID: <{id}>\r\nDate: Mon, 05 Jan 2026 10:00:00 +0000\r\nFrom: {from}\r\nSubject: s\r\n\r\nbody\r\n").into_bytes()
}

/// The spread of a set of times, in milliseconds.
pub struct Spread {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

pub fn percentiles(mut times: Vec<Duration>) -> Spread {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: usize| ms(times[(times.len() * q / 100).min(times.len() - 1)]);
    Spread {
        p50: at(50),
        p90: at(90),
        p99: at(99),
        max: ms(*times.last().unwrap()),
    }
}

/// APPEND to EXISTS on an idling connection, without mailwarden.
pub async fn server_notification(arrivals: usize) -> Vec<Duration> {
    let user = server().user();
    let mut writer = user.conn(FULL).await;
    let mut idler = user.conn(FULL).await;
    idler
        .open(
            &mailwarden::imap::types::Mailbox::inbox(),
            Access::ReadWrite,
        )
        .await
        .unwrap();
    let (_stop_tx, mut stop) = tokio::sync::watch::channel(false);
    let mut times = Vec::new();
    for i in 0..arrivals {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let wait = async {
            let woke = idler
                .idle(Duration::from_secs(10), &mut stop)
                .await
                .unwrap();
            let _ = tx.send(Instant::now());
            woke
        };
        let append = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            writer
                .append(
                    &mailwarden::imap::types::Mailbox::inbox(),
                    &[],
                    None,
                    &mail(&format!("b{i}@x"), "a@b"),
                )
                .await
                .unwrap();
            Instant::now()
        };
        let (woke, appended) = tokio::join!(wait, append);
        assert_eq!(woke, mailwarden::imap::Woke::Changed);
        times.push(rx.await.unwrap().saturating_duration_since(appended));
    }
    times
}
