//! Connecting and logging in: TCP, then implicit TLS (RFC 8314) or a
//! mandatory STARTTLS upgrade (RFC 3501 6.2.1), the greeting, capabilities,
//! and authentication (AUTHENTICATE PLAIN, LOGIN, XOAUTH2 or OAUTHBEARER).
//! Capabilities are read again after TLS and after login.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_imap::imap_proto::{Response, Status};

use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, ClientConfig, pki_types::ServerName};

use super::conn::{Conn, ImapError, Stream};
use crate::config::{Account, Tls};
use crate::secret::{Credential, Secret};

fn tls_error(host: &str, detail: impl ToString) -> ImapError {
    ImapError::Tls {
        host: host.to_string(),
        detail: detail.to_string(),
    }
}

/// System trust roots plus the account's `ca_file`; TLS 1.2 or 1.3; ring.
fn tls_config(host: &str, ca_file: Option<&Path>) -> Result<ClientConfig, ImapError> {
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

async fn handshake(account: &Account, stream: Stream) -> Result<Stream, ImapError> {
    let host = account.host.as_str();
    let config = tls_config(host, account.ca_file.as_deref())?;
    let name = ServerName::try_from(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
    )
    .map_err(|e| tls_error(host, e))?;
    let tls = tokio::time::timeout(
        account.timeout,
        TlsConnector::from(Arc::new(config)).connect(name, stream),
    )
    .await
    .map_err(|_| tls_error(host, "handshake timed out"))?
    .map_err(|e| tls_error(host, e))?;
    Ok(Box::new(tls))
}

/// Reads the greeting. PREAUTH is refused: on a STARTTLS connection it is
/// the known way to skip the upgrade, and no account here expects it.
async fn greeting(
    client: &mut async_imap::Client<Stream>,
    host: &str,
    timeout: Duration,
) -> Result<(), ImapError> {
    let resp = tokio::time::timeout(timeout, client.read_response())
        .await
        .map_err(|_| ImapError::Timeout(timeout))?
        .map_err(|e| ImapError::Protocol(format!("reading the greeting of {host}: {e}")))?
        .ok_or(ImapError::ConnectionLost)?;
    match resp.parsed() {
        Response::Data {
            status: Status::Ok, ..
        } => Ok(()),
        Response::Data {
            status: Status::PreAuth,
            ..
        } => Err(ImapError::Protocol(format!(
            "{host} greeted with PREAUTH; refusing an unauthenticated upgrade path"
        ))),
        Response::Data {
            status: Status::Bye,
            outcome,
        } => Err(ImapError::Connect {
            addr: host.to_string(),
            detail: format!(
                "the server said BYE: {}",
                outcome.information.as_deref().unwrap_or("")
            ),
        }),
        other => Err(ImapError::Protocol(format!(
            "unexpected greeting from {host}: {other:?}"
        ))),
    }
}

struct Plain<'a> {
    user: &'a str,
    password: &'a Secret,
}

impl async_imap::Authenticator for Plain<'_> {
    type Response = Vec<u8>;
    // RFC 4616: authzid NUL authcid NUL passwd.
    fn process(&mut self, _challenge: &[u8]) -> Vec<u8> {
        format!("\0{}\0{}", self.user, self.password.expose()).into_bytes()
    }
}

/// XOAUTH2 (Google, Microsoft) or OAUTHBEARER (RFC 7628). A failed attempt
/// is answered with a challenge; an empty reply ends it (RFC 7628 3.2.3).
struct Bearer<'a> {
    initial: String,
    sent: bool,
    _token: &'a Secret,
}

impl async_imap::Authenticator for Bearer<'_> {
    type Response = Vec<u8>;
    fn process(&mut self, _challenge: &[u8]) -> Vec<u8> {
        if std::mem::replace(&mut self.sent, true) {
            Vec::new()
        } else {
            self.initial.clone().into_bytes()
        }
    }
}

/// Connects, secures, logs in and reads the capabilities.
pub async fn connect(account: &Account, credential: &Credential) -> Result<Conn, ImapError> {
    let host = account.host.as_str();
    let addr = format!("{}:{}", host, account.port);
    let connect_err = |detail: String| ImapError::Connect {
        addr: addr.clone(),
        detail,
    };
    let tcp = tokio::time::timeout(
        account.timeout,
        TcpStream::connect((
            host.trim_start_matches('[').trim_end_matches(']'),
            account.port,
        )),
    )
    .await
    .map_err(|_| connect_err("timed out".into()))?
    .map_err(|e| connect_err(e.to_string()))?;
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
    let tcp: Stream = Box::new(tcp);

    let client = match account.tls {
        Tls::Implicit => {
            let mut c = async_imap::Client::new(handshake(account, tcp).await?);
            greeting(&mut c, host, account.timeout).await?;
            c
        }
        Tls::StartTls => {
            let mut c = async_imap::Client::new(tcp);
            greeting(&mut c, host, account.timeout).await?;
            // STARTTLS is mandatory once configured: a refusal ends here,
            // before any credential is sent.
            c.run_command_and_check_ok("STARTTLS", None)
                .await
                .map_err(|e| tls_error(host, format!("the server refused STARTTLS: {e}")))?;
            // Bytes buffered before the handshake are dropped with the old
            // client, so nothing injected in plaintext survives.
            async_imap::Client::new(handshake(account, c.into_inner()).await?)
        }
        Tls::None => {
            let mut c = async_imap::Client::new(tcp);
            greeting(&mut c, host, account.timeout).await?;
            c
        }
    };

    // Buffered from here on: async-imap writes a command in pieces (tag,
    // space, text, CRLF) and flushes after each command, so this sends one
    // segment per command instead of four. Not before STARTTLS, so that no
    // plaintext byte is carried across the handshake.
    let mut client =
        async_imap::Client::new(Box::new(tokio::io::BufStream::new(client.into_inner())) as Stream);
    let caps = pre_login_capabilities(&mut client, host, account.timeout).await?;
    let user = account.username.as_str();
    let auth_err = |detail: String| ImapError::Auth {
        host: host.to_string(),
        user: user.to_string(),
        detail,
    };
    let session = match credential {
        Credential::Password(password) => {
            if caps.contains("AUTH=PLAIN") {
                client
                    .authenticate("PLAIN", Plain { user, password })
                    .await
                    .map_err(|(e, _)| auth_err(e.to_string()))?
            } else if caps.contains("LOGINDISABLED") {
                return Err(auth_err(
                    "the server offers neither AUTH=PLAIN nor LOGIN".into(),
                ));
            } else {
                if user.contains(['\r', '\n']) || password.expose().contains(['\r', '\n']) {
                    return Err(auth_err(
                        "the user name or password holds a line break".into(),
                    ));
                }
                client
                    .login(user, password.expose())
                    .await
                    .map_err(|(e, _)| auth_err(e.to_string()))?
            }
        }
        Credential::OAuth2Token(token) => {
            let (mechanism, initial) = if caps.contains("AUTH=XOAUTH2") {
                (
                    "XOAUTH2",
                    format!("user={user}\x01auth=Bearer {}\x01\x01", token.expose()),
                )
            } else if caps.contains("AUTH=OAUTHBEARER") {
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
            client
                .authenticate(
                    mechanism,
                    Bearer {
                        initial,
                        sent: false,
                        _token: token,
                    },
                )
                .await
                .map_err(|(e, _)| auth_err(e.to_string()))?
        }
    };
    let mut conn = Conn {
        session,
        caps: BTreeSet::new(),
        timeout: account.timeout,
        selected: None,
        new_mail: false,
        bodystructure_unreadable: false,
    };
    conn.refresh_capabilities().await?;
    tracing::debug!(account = %account.name, capabilities = ?conn.caps, "logged in");
    Ok(conn)
}

/// CAPABILITY before login. The unauthenticated client offers no raw
/// command API, so the answer is collected from its unsolicited channel.
async fn pre_login_capabilities(
    client: &mut async_imap::Client<Stream>,
    host: &str,
    timeout: Duration,
) -> Result<BTreeSet<String>, ImapError> {
    let (tx, rx) = async_channel::unbounded();
    tokio::time::timeout(
        timeout,
        client.run_command_and_check_ok("CAPABILITY", Some(tx)),
    )
    .await
    .map_err(|_| ImapError::Timeout(timeout))?
    .map_err(|e| ImapError::Protocol(format!("{host}: CAPABILITY failed: {e}")))?;
    let mut caps = BTreeSet::new();
    while let Ok(msg) = rx.try_recv() {
        if let async_imap::types::UnsolicitedResponse::Other(data) = msg
            && let Response::Capabilities(list) = data.parsed()
        {
            caps.extend(list.iter().map(super::conn::capability_name));
        }
    }
    if caps.is_empty() {
        return Err(ImapError::Protocol(format!("{host} sent no capabilities")));
    }
    Ok(caps)
}
