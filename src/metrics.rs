//! Metrics of the daemon in the Prometheus text format (version 0.0.4),
//! and the small HTTP server that `watch --metrics ADDR` runs for them:
//! `GET /metrics` and nothing else. Beside `commands::watch` and `health`,
//! which count into it; the IMAP session reports each command's duration.
//!
//! The counters live in one process-wide registry, counted whether or not
//! they are served (an atomic add each), so that no code path needs to know
//! whether `--metrics` was given.
//!
//! Crates: `prometheus-client`, the Prometheus project's own Rust client
//! (typed label sets, its 0.0.4 text encoder, few dependencies), and
//! `hyper` (HTTP/1 server only) on the tokio runtime the daemon already
//! has: no thread of its own, header and connection deadlines, and the
//! best-kept HTTP implementation in Rust.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::LazyLock;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::sync::watch;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    pub account: String,
    pub rule: String,
    /// `move`, `copy`, `flag`, `unflag`, `expunge`.
    pub action: String,
    /// How the journal ended it (its `status`): `done`, `failed`, `gone`.
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    pub account: String,
    /// `connect`, `secret`, `connection_lost`, `max_actions`, `action`
    /// (an action the server refused), `undecided` (a message that could
    /// not be read or decided).
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AccountLabel {
    pub account: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PassLabels {
    pub account: String,
    /// `new` (the new mail of the watched mailboxes) or `sweep`.
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CommandLabel {
    pub command: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Everything counted.
pub struct Metrics {
    registry: Registry,
    pub actions: Family<ActionLabels, Counter>,
    pub failures: Family<FailureLabels, Counter>,
    pub connected: Family<AccountLabel, Gauge>,
    pub reconnects: Family<AccountLabel, Counter>,
    pub last_sweep: Family<AccountLabel, Gauge>,
    pub pass_seconds: Histograms<PassLabels>,
    pub command_seconds: Histograms<CommandLabel>,
    pub latency_seconds: Histograms<AccountLabel>,
}

fn seconds_histogram() -> Histogram {
    // 1 ms to about 9 minutes.
    Histogram::new(exponential_buckets(0.001, 2.0, 20))
}

fn latency_histogram() -> Histogram {
    // Arrival times are whole seconds (INTERNALDATE): 0.5 s to about 4 h.
    Histogram::new(exponential_buckets(0.5, 2.0, 15))
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::default();
        let m = Metrics {
            actions: Family::default(),
            failures: Family::default(),
            connected: Family::default(),
            reconnects: Family::default(),
            last_sweep: Family::default(),
            pass_seconds: Family::new_with_constructor(seconds_histogram as fn() -> Histogram),
            command_seconds: Family::new_with_constructor(seconds_histogram as fn() -> Histogram),
            latency_seconds: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            registry: Registry::default(),
        };
        registry.register(
            "mailwarden_actions",
            "Actions on messages, by account, rule, action and status (how the journal ended them)",
            m.actions.clone(),
        );
        registry.register(
            "mailwarden_failures",
            "Failures, by account and kind",
            m.failures.clone(),
        );
        registry.register(
            "mailwarden_connected",
            "1 while the account's IMAP session is up, else 0",
            m.connected.clone(),
        );
        registry.register(
            "mailwarden_reconnects",
            "Connections made again after one was lost",
            m.reconnects.clone(),
        );
        registry.register(
            "mailwarden_last_sweep_timestamp_seconds",
            "When the account's last full pass completed (Unix time)",
            m.last_sweep.clone(),
        );
        registry.register(
            "mailwarden_pass_duration_seconds",
            "How long passes took, by account and kind (new mail, sweep)",
            m.pass_seconds.clone(),
        );
        registry.register(
            "mailwarden_imap_command_duration_seconds",
            "How long IMAP commands took until their tagged answer",
            m.command_seconds.clone(),
        );
        registry.register(
            "mailwarden_arrival_to_action_seconds",
            "From a message's arrival (INTERNALDATE) to its action being confirmed, for new mail of the watched mailboxes",
            m.latency_seconds.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The text a scrape gets.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
            .expect("writing to a String does not fail");
        out
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn global() -> &'static Metrics {
    &METRICS
}

/// A label set of one account.
pub fn account(name: &str) -> AccountLabel {
    AccountLabel {
        account: name.to_string(),
    }
}

/// Counts a failure of `kind` for `account`.
pub fn failure(account: &str, kind: &str) {
    global()
        .failures
        .get_or_create(&FailureLabels {
            account: account.to_string(),
            kind: kind.to_string(),
        })
        .inc();
}

/// Where `--metrics` serves: `PORT` alone is loopback (127.0.0.1), so that
/// nothing is exposed unless an address says so.
pub fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.parse::<SocketAddr>().map_err(|_| {
        format!("invalid address {text:?}: use PORT (on 127.0.0.1), 127.0.0.1:PORT or [::1]:PORT")
    })
}

/// One request: `/metrics` (GET or HEAD) is the metrics, any other path
/// 404, another method on it 405.
async fn answer(
    request: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        r
    };
    if request.uri().path() != "/metrics" {
        return Ok(reply(StatusCode::NOT_FOUND, "not found\n".into()));
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut r = reply(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n".into());
        r.headers_mut()
            .insert(hyper::header::ALLOW, "GET, HEAD".parse().expect("valid"));
        return Ok(r);
    }
    let mut r = reply(StatusCode::OK, global().render());
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        prometheus_client::encoding::prometheus_text::CONTENT_TYPE
            .parse()
            .expect("valid"),
    );
    Ok(r)
}

/// A slow or stuck client is dropped after this: a scrape takes
/// milliseconds.
const CONNECTION_DEADLINE: Duration = Duration::from_secs(30);

/// Serves the metrics on `listener` until `stop` turns true. Each
/// connection is its own task, bounded in time; at most `MAX_CONNECTIONS`
/// at once (more wait in the listen queue).
pub async fn serve(listener: tokio::net::TcpListener, mut stop: watch::Receiver<bool>) {
    const MAX_CONNECTIONS: usize = 16;
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.changed() => return,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors, say: wait rather than spin.
                tracing::warn!("metrics: cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        tokio::spawn(async move {
            let _permit = permit;
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .keep_alive(false)
                .serve_connection(
                    hyper_util::rt::TokioIo::new(stream),
                    hyper::service::service_fn(answer),
                );
            let _ = tokio::time::timeout(CONNECTION_DEADLINE, connection).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_alone_is_loopback() {
        assert_eq!(parse_addr("9898").unwrap().to_string(), "127.0.0.1:9898");
        assert_eq!(
            parse_addr("0.0.0.0:9898").unwrap().to_string(),
            "0.0.0.0:9898"
        );
        assert_eq!(parse_addr("[::1]:80").unwrap().to_string(), "[::1]:80");
        assert!(parse_addr("localhost:80").is_err());
        assert!(parse_addr("99999").is_err());
    }

    async fn get(addr: SocketAddr, request: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut out = String::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut out))
            .await
            .unwrap()
            .unwrap();
        out
    }

    #[tokio::test]
    async fn serves_the_metrics_and_nothing_else() {
        failure("served-account", "connect");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop) = watch::channel(false);
        let server = tokio::spawn(serve(listener, stop));

        let ok = get(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(
            ok.contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
            "{ok}"
        );
        assert!(
            ok.contains("mailwarden_failures_total{account=\"served-account\",kind=\"connect\"} 1"),
            "{ok}"
        );
        assert!(ok.contains("# TYPE mailwarden_imap_command_duration_seconds histogram"));

        let other = get(addr, "GET /metrics/x HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(other.starts_with("HTTP/1.1 404 Not Found\r\n"), "{other}");
        let root = get(addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(root.starts_with("HTTP/1.1 404 Not Found\r\n"), "{root}");
        let post = get(
            addr,
            "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        )
        .await;
        assert!(
            post.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
            "{post}"
        );
        let garbage = get(addr, "HELLO\r\n\r\n").await;
        assert!(
            garbage.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{garbage}"
        );

        stop_tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
    }
}
