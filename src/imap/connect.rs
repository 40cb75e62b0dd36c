//! Connecting and logging in: TCP, then implicit TLS (RFC 8314) or a
//! mandatory STARTTLS upgrade (RFC 3501 6.2.1), the greeting, capabilities,
//! and authentication (AUTHENTICATE PLAIN, LOGIN, XOAUTH2 or OAUTHBEARER).
//! Capabilities are read again after TLS and after login. Every step waits
//! at most the account's `timeout`, and any failure here is a failure to
//! connect or log in (exit code 3), never a hang.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, ClientConfig, pki_types::ServerName};

use super::command::Command;
use super::response::{Code, Reply, Status, Untagged};
use super::session::{ImapError, Session, Stream, humanize};
use super::types::{Capabilities, Capability};
use crate::config::{Account, Tls};
use crate::secret::{Credential, Secret};

fn tls_error(host: &str, detail: impl ToString) -> ImapError {
    ImapError::Tls {
        host: host.to_string(),
        detail: detail.to_string(),
    }
}

/// System trust roots plus the account's `ca_file`; TLS 1.2 or 1.3; ring.
/// Also the OAuth2 endpoints' (`oauth::http`): one trust store for both.
pub(crate) fn tls_config(host: &str, ca_file: Option<&Path>) -> Result<ClientConfig, ImapError> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let extra: Vec<CertificateDer<'static>> = match ca_file {
        None => Vec::new(),
        Some(path) => CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| tls_error(host, format!("ca_file {}: {e}", path.display())))?,
    };
    if ca_file.is_some() && extra.is_empty() {
        return Err(tls_error(host, "ca_file holds no certificate"));
    }
    let verifier =
        rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider.clone())
            .map_err(|e| tls_error(host, format!("loading trust roots: {e}")))?;
    Ok(ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| tls_error(host, e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

fn bare_host(host: &str) -> &str {
    host.trim_start_matches('[').trim_end_matches(']')
}

async fn handshake(account: &Account, stream: Stream) -> Result<Stream, ImapError> {
    let host = account.host.as_str();
    let config = tls_config(host, account.ca_file.as_deref())?;
    let name = ServerName::try_from(bare_host(host).to_string()).map_err(|e| tls_error(host, e))?;
    let tls = tokio::time::timeout(
        account.timeout,
        TlsConnector::from(Arc::new(config)).connect(name, stream),
    )
    .await
    .map_err(|_| {
        tls_error(
            host,
            format!("no TLS handshake within {}", humanize(account.timeout)),
        )
    })?
    .map_err(|e| tls_error(host, e))?;
    Ok(Box::new(tls))
}

/// Reads the greeting; returns the capabilities it carried, if any.
/// PREAUTH is refused: on a STARTTLS connection it is the known way to
/// skip the upgrade, and no account here expects it.
async fn greeting(session: &mut Session, host: &str) -> Result<Option<Capabilities>, ImapError> {
    match session.reply("the greeting").await? {
        Reply::Untagged(Untagged::Status {
            status: Status::Ok,
            code,
            ..
        }) => Ok(match code {
            Some(Code::Capabilities(c)) => Some(Capabilities::new(c)),
            _ => None,
        }),
        Reply::Untagged(Untagged::Status {
            status: Status::PreAuth,
            ..
        }) => Err(ImapError::Protocol(format!(
            "{host} greeted with PREAUTH; refusing an unauthenticated upgrade path"
        ))),
        Reply::Untagged(Untagged::Status {
            status: Status::Bye,
            text,
            ..
        }) => Err(ImapError::Protocol(format!("the server said BYE: {text}"))),
        _ => Err(ImapError::Protocol(format!(
            "{host} did not greet as an IMAP server does"
        ))),
    }
}

async fn tcp(account: &Account) -> Result<Stream, String> {
    let tcp = tokio::time::timeout(
        account.timeout,
        TcpStream::connect((bare_host(&account.host), account.port)),
    )
    .await
    .map_err(|_| format!("no connection within {}", humanize(account.timeout)))?
    .map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    // TCP keepalives: a NAT or firewall that silently forgets an idle
    // connection is noticed by the kernel within about two minutes (and
    // the probes keep the mapping alive in the first place), even while
    // the session waits in IDLE.
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(60))
        .with_interval(Duration::from_secs(20))
        .with_retries(3);
    if let Err(e) = socket2::SockRef::from(&tcp).set_tcp_keepalive(&keepalive) {
        tracing::debug!(error = %e, "TCP keepalive not available");
    }
    Ok(Box::new(tcp))
}

/// Connects, secures, logs in and reads the capabilities.
pub async fn connect(account: &Account, credential: &Credential) -> Result<Session, ImapError> {
    let host = account.host.as_str();
    let addr = format!("{}:{}", host, account.port);
    let connect_err = |detail: String| ImapError::Connect {
        addr: addr.clone(),
        detail,
    };
    let stream = tcp(account).await.map_err(connect_err)?;
    // Whatever goes wrong before the login is a failure to connect.
    let before_login = |e: ImapError| {
        if e.is_connect() {
            e
        } else {
            connect_err(e.to_string())
        }
    };
    let (mut session, mut caps) = match account.tls {
        Tls::Implicit => {
            let mut s = Session::new(handshake(account, stream).await?, account.timeout);
            let caps = greeting(&mut s, host).await.map_err(before_login)?;
            (s, caps)
        }
        Tls::StartTls => {
            let mut s = Session::new(stream, account.timeout);
            greeting(&mut s, host).await.map_err(before_login)?;
            // STARTTLS is mandatory once configured: a refusal ends here,
            // before any credential is sent.
            match s.simple(&Command::StartTls).await {
                Ok(_) => {}
                Err(ImapError::Refused { text, .. }) => {
                    return Err(tls_error(
                        host,
                        format!("the server refused STARTTLS: {text}"),
                    ));
                }
                Err(e) => return Err(tls_error(host, format!("STARTTLS: {e}"))),
            }
            let (stream, pending) = s.into_stream();
            if pending > 0 {
                tracing::warn!(
                    bytes = pending,
                    "the server sent data ahead of the TLS handshake; it is dropped unread"
                );
            }
            // RFC 3501 6.2.1: capabilities known before STARTTLS are void.
            (
                Session::new(handshake(account, stream).await?, account.timeout),
                None,
            )
        }
        Tls::None => {
            let mut s = Session::new(stream, account.timeout);
            let caps = greeting(&mut s, host).await.map_err(before_login)?;
            (s, caps)
        }
    };
    if caps.is_none() {
        session.refresh_capabilities().await.map_err(before_login)?;
        caps = Some(session.capabilities().clone());
    }
    let caps = caps.expect("read above");
    session.set_capabilities(caps.clone());

    let user = account.username.as_str();
    let auth_err = |detail: String| ImapError::Auth {
        host: host.to_string(),
        user: user.to_string(),
        detail,
    };
    let login_failed = |e: ImapError| match e {
        ImapError::Refused { code, text, .. } => auth_err(match code {
            Some(Code::Other(c)) if !c.is_empty() => format!("[{c}] {text}"),
            _ => text,
        }),
        e if e.is_connect() => e,
        e => auth_err(e.to_string()),
    };
    let done = match credential {
        Credential::Password(password) => {
            if caps.auth("PLAIN") {
                // RFC 4616: authzid NUL authcid NUL passwd.
                let initial = Secret::new(format!("\0{user}\0{}", password.expose()));
                session
                    .authenticate("PLAIN", &initial)
                    .await
                    .map_err(login_failed)?
            } else if caps.has(&Capability::LoginDisabled) {
                return Err(auth_err(
                    "the server offers neither AUTH=PLAIN nor LOGIN".into(),
                ));
            } else {
                session
                    .simple(&Command::Login { user, password })
                    .await
                    .map_err(login_failed)?
            }
        }
        Credential::OAuth2Token(token) => {
            let (mechanism, initial) = if caps.auth("XOAUTH2") {
                (
                    "XOAUTH2",
                    format!("user={user}\x01auth=Bearer {}\x01\x01", token.expose()),
                )
            } else if caps.auth("OAUTHBEARER") {
                (
                    "OAUTHBEARER",
                    format!(
                        "n,a={user},\x01host={host}\x01port={}\x01auth=Bearer {}\x01\x01",
                        account.port,
                        token.expose()
                    ),
                )
            } else {
                return Err(auth_err(
                    "the server offers neither XOAUTH2 nor OAUTHBEARER".into(),
                ));
            };
            session
                .authenticate(mechanism, &Secret::new(initial))
                .await
                .map_err(login_failed)?
        }
    };
    // Many servers send the new capabilities with the login's OK (RFC 3501
    // 7.1); else they are asked for.
    match done.code {
        Some(Code::Capabilities(c)) => session.set_capabilities(Capabilities::new(c)),
        _ => session.refresh_capabilities().await.map_err(login_failed)?,
    }
    tracing::debug!(account = %account.name, capabilities = %session.capabilities(), "logged in");
    Ok(session)
}

/// Base64 of a SASL message (RFC 4648, as RFC 3501 6.2.2 asks).
pub(crate) fn sasl(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}
