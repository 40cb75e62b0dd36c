//! The systemd notification protocol (`sd_notify(3)`), for `watch` under a
//! `Type=notify` unit: one datagram per message to the socket named by
//! `$NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace), and the
//! watchdog interval from `$WATCHDOG_USEC` (for this process only when
//! `$WATCHDOG_PID` is unset or names it). Beside `commands::watch`, which
//! says when it is ready, pings the watchdog and publishes its status.
//!
//! A few lines on the standard library's `UnixDatagram` rather than a
//! crate: the protocol is one `sendto` of `KEY=VALUE` lines, and the crates
//! for it bring more than they save.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;
use std::time::Duration;

/// Where notifications go; `None` outside systemd (every call is then a
/// no-op), so the daemon calls it unconditionally.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
    watchdog: Option<Duration>,
}

/// The socket address `$NOTIFY_SOCKET` names: a path, or `@name` for the
/// abstract namespace (Linux).
fn address(name: &str) -> io::Result<SocketAddr> {
    if let Some(abstract_name) = name.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        SocketAddr::from_abstract_name(abstract_name.as_bytes())
    } else if name.starts_with('/') {
        SocketAddr::from_pathname(Path::new(name))
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("NOTIFY_SOCKET {name:?} is neither a path nor @name"),
        ))
    }
}

impl Notifier {
    /// From the environment systemd sets. A `$NOTIFY_SOCKET` that cannot be
    /// used is logged and ignored: the daemon works without it (systemd
    /// will then time the start out, which the log explains).
    pub fn from_env() -> Notifier {
        let socket = std::env::var("NOTIFY_SOCKET").ok();
        let watchdog_usec = std::env::var("WATCHDOG_USEC").ok();
        let watchdog_pid = std::env::var("WATCHDOG_PID").ok();
        Notifier::new(
            socket.as_deref(),
            watchdog_usec.as_deref(),
            watchdog_pid.as_deref(),
            std::process::id(),
        )
    }

    /// From the values of `NOTIFY_SOCKET`, `WATCHDOG_USEC` and
    /// `WATCHDOG_PID`, for the process `pid`.
    pub fn new(
        socket: Option<&str>,
        watchdog_usec: Option<&str>,
        watchdog_pid: Option<&str>,
        pid: u32,
    ) -> Notifier {
        let target = socket.filter(|s| !s.is_empty()).and_then(|name| {
            match address(name).and_then(|addr| Ok((UnixDatagram::unbound()?, addr))) {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::warn!("cannot use NOTIFY_SOCKET {name:?}: {e}");
                    None
                }
            }
        });
        // The watchdog is for the main process only: a WATCHDOG_PID naming
        // another (a wrapper's) means this one is not watched.
        let ours = watchdog_pid.is_none_or(|p| p.trim().parse::<u32>().ok() == Some(pid));
        let watchdog = watchdog_usec
            .and_then(|u| u.trim().parse::<u64>().ok())
            .filter(|&u| u > 0 && ours)
            .map(Duration::from_micros);
        Notifier { target, watchdog }
    }

    /// Whether a service manager listens.
    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// The watchdog interval systemd expects pings within, if any.
    pub fn watchdog(&self) -> Option<Duration> {
        self.watchdog.filter(|_| self.enabled())
    }

    /// Sends `state` (newline-separated `KEY=VALUE` lines). A failure is
    /// logged at debug level and otherwise ignored: the work goes on.
    pub fn send(&self, state: &str) {
        if let Some((socket, addr)) = &self.target
            && let Err(e) = socket.send_to_addr(state.as_bytes(), addr)
        {
            tracing::debug!("sd_notify {state:?}: {e}");
        }
    }

    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={}", one_line(status)));
    }

    pub fn watchdog_ping(&self) {
        self.send("WATCHDOG=1");
    }

    /// Asks for `d` more before the start (or stop) times out.
    pub fn extend_start(&self, d: Duration) {
        self.send(&format!("EXTEND_TIMEOUT_USEC={}", d.as_micros()));
    }

    pub fn reloading(&self) {
        self.send("RELOADING=1");
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }
}

/// A STATUS= value is one line.
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receive(socket: &UnixDatagram) -> String {
        let mut buf = [0u8; 4096];
        let n = socket.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn messages_reach_a_socket_named_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let listener = UnixDatagram::bind(&path).unwrap();
        listener
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let n = Notifier::new(path.to_str(), Some("3000000"), None, 1);
        assert!(n.enabled());
        assert_eq!(n.watchdog(), Some(Duration::from_secs(3)));
        n.ready("1 account: a idle\nsecond line");
        assert_eq!(
            receive(&listener),
            "READY=1\nSTATUS=1 account: a idle second line"
        );
        n.watchdog_ping();
        assert_eq!(receive(&listener), "WATCHDOG=1");
        n.stopping();
        assert_eq!(receive(&listener), "STOPPING=1");
    }

    #[test]
    fn messages_reach_an_abstract_socket() {
        let name = format!("mailwarden-test-{}", std::process::id());
        let addr = address(&format!("@{name}")).unwrap();
        let listener = UnixDatagram::bind_addr(&addr).unwrap();
        listener
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let n = Notifier::new(Some(&format!("@{name}")), None, None, 1);
        n.status("x");
        assert_eq!(receive(&listener), "STATUS=x");
        assert_eq!(n.watchdog(), None);
    }

    #[test]
    fn without_a_socket_nothing_is_sent_and_no_watchdog_is_kept() {
        let n = Notifier::new(None, Some("1000000"), None, 1);
        assert!(!n.enabled());
        assert_eq!(n.watchdog(), None);
        n.ready("nobody listens");
        let n = Notifier::new(Some("relative/path"), None, None, 1);
        assert!(!n.enabled());
    }

    #[test]
    fn the_watchdog_is_for_the_process_it_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.sock");
        let _listener = UnixDatagram::bind(&path).unwrap();
        let socket = path.to_str();
        let other = Notifier::new(socket, Some("1000000"), Some("42"), 7);
        assert_eq!(other.watchdog(), None);
        let mine = Notifier::new(socket, Some("1000000"), Some("7"), 7);
        assert_eq!(mine.watchdog(), Some(Duration::from_secs(1)));
        let zero = Notifier::new(socket, Some("0"), None, 7);
        assert_eq!(zero.watchdog(), None);
    }
}
