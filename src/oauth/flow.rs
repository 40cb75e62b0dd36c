//! The one-time consent of `mailwarden auth`: the authorization code grant
//! with PKCE through a loopback redirect (RFC 6749 4.1, RFC 7636, RFC 8252
//! 7.3), or the device authorization grant (RFC 8628) for a machine without
//! a browser. Which one, and reading the browser's redirect, are plain
//! functions ([`choose`], [`read_redirect`]); the rest drives the `oauth2`
//! crate and a listener on the loopback interface, within one deadline.
//!
//! What the user must do is written to `out`; no token ever is.

use std::borrow::Cow;
use std::io::Write;
use std::time::{Duration, Instant};

use oauth2::{
    AuthorizationCode, CsrfToken, PkceCodeChallenge, RedirectUrl,
    StandardDeviceAuthorizationResponse, TokenResponse,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::expiry::Lifetime;
use super::{AccessToken, OAuthError, client, client_secret, request_failed};
use crate::config::{Account, OAuth2Client, OAuthProvider};
use crate::secret::Secret;

/// How the consent is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// A browser on this machine opens the printed URL; the provider sends
    /// it back to our listener on 127.0.0.1.
    Loopback,
    /// A code is entered on any device's browser while we poll.
    Device,
}

/// What is known of where `mailwarden auth` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    /// Over SSH (`SSH_CONNECTION` or `SSH_TTY`): a browser here cannot be
    /// the user's.
    pub ssh: bool,
    /// A graphical session (`DISPLAY`, `WAYLAND_DISPLAY`; always on macOS).
    pub display: bool,
}

impl Place {
    pub fn here() -> Place {
        let set = |v: &str| std::env::var_os(v).is_some_and(|x| !x.is_empty());
        Place {
            ssh: set("SSH_CONNECTION") || set("SSH_TTY"),
            display: cfg!(target_os = "macos") || set("DISPLAY") || set("WAYLAND_DISPLAY"),
        }
    }
}

/// The flow to use, and why, or why the one asked for cannot be. A flag
/// decides; without one, the device flow where the provider offers it and
/// no browser is likely here (an SSH session, no display), else the
/// loopback flow, which every provider has.
pub fn choose(
    asked: Option<Flow>,
    has_device: bool,
    place: Place,
) -> Result<(Flow, &'static str), String> {
    match asked {
        Some(Flow::Device) if !has_device => Err(
            "this provider has no device flow configured (Google offers none for mail); use the browser flow, over `ssh -L` from another machine if need be"
                .into(),
        ),
        Some(Flow::Device) => Ok((Flow::Device, "as asked (--device)")),
        Some(Flow::Loopback) => Ok((Flow::Loopback, "as asked (--browser)")),
        None if has_device && place.ssh => {
            Ok((Flow::Device, "this is an SSH session, so the browser is elsewhere"))
        }
        None if has_device && !place.display => {
            Ok((Flow::Device, "there is no graphical session here for a browser"))
        }
        None => Ok((Flow::Loopback, "a browser on this machine receives the answer")),
    }
}

/// What one request to the loopback listener says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redirect {
    /// The authorization code, with the state we sent.
    Code(String),
    /// The provider's error (RFC 6749 4.1.2.1), with the state we sent.
    Denied(String),
    /// A redirect whose state is not ours (RFC 6749 10.12): ignored.
    WrongState,
    /// Anything else (a favicon, a stray request): ignored.
    Other,
}

/// Reads the request line of what the browser sent to `http://HOST:PORT/`.
pub fn read_redirect(head: &str, state: &str) -> Redirect {
    let line = head.lines().next().unwrap_or("");
    let mut words = line.split(' ');
    let (Some("GET"), Some(target)) = (words.next(), words.next()) else {
        return Redirect::Other;
    };
    let Ok(url) = oauth2::url::Url::parse(&format!("http://loopback{target}")) else {
        return Redirect::Other;
    };
    if url.path() != "/" {
        return Redirect::Other;
    }
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let (code, error) = (param("code"), param("error"));
    if code.is_none() && error.is_none() {
        return Redirect::Other;
    }
    if param("state").as_deref() != Some(state) {
        return Redirect::WrongState;
    }
    match (code, error) {
        (_, Some(error)) => Redirect::Denied(match param("error_description") {
            Some(d) if !d.trim().is_empty() => format!("{error}: {}", d.trim()),
            _ => error,
        }),
        (Some(code), None) => Redirect::Code(code),
        (None, None) => Redirect::Other,
    }
}

/// What the consent yields.
#[derive(Debug)]
pub struct Granted {
    pub refresh_token: Option<Secret>,
    pub access: AccessToken,
}

fn say(out: &mut dyn Write, text: std::fmt::Arguments<'_>) {
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

fn timed_out(deadline: Duration) -> OAuthError {
    OAuthError::Flow(format!(
        "no consent within {}; run `mailwarden auth` again (--timeout gives more time)",
        crate::imap::session::humanize(deadline)
    ))
}

/// Runs `flow` for `account` until consent is given, refused, or
/// `deadline` passes.
pub async fn run(
    flow: Flow,
    account: &Account,
    c: &OAuth2Client,
    deadline: Duration,
    out: &mut dyn Write,
) -> Result<Granted, OAuthError> {
    let secret = client_secret(c, account.timeout).await?;
    let client = client(c, secret.as_ref())?;
    let urls: Vec<&str> = [Some(c.token_url.as_str()), c.device_url.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    let http = super::http::client(&urls, account.timeout)?;
    let work = async {
        match flow {
            Flow::Loopback => loopback(account, c, &client, &http, out).await,
            Flow::Device => device(c, &client, &http, deadline, out).await,
        }
    };
    tokio::time::timeout(deadline, work)
        .await
        .map_err(|_| timed_out(deadline))?
}

fn granted(response: &oauth2::basic::BasicTokenResponse, requested: Instant) -> Granted {
    Granted {
        refresh_token: response
            .refresh_token()
            .map(|t| Secret::new(t.secret().clone())),
        access: AccessToken {
            token: Secret::new(response.access_token().secret().clone()),
            lifetime: Lifetime {
                requested,
                expires_in: response.expires_in(),
            },
        },
    }
}

/// The page the browser shows once redirected to us.
fn page(status: &str, text: &str) -> String {
    let body =
        format!("<!doctype html><meta charset=utf-8><title>mailwarden</title><p>{text}</p>\n");
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nCache-Control: no-store\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// The most of a request head read from the browser.
const MAX_HEAD: usize = 16 * 1024;
/// How long one connection to the listener may take to send its request.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads a request head (up to the blank line), bounded in size and time.
async fn read_head(sock: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    let read = async {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < MAX_HEAD {
            let n = sock.read(&mut chunk).await.ok()?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Some(())
    };
    tokio::time::timeout(HEAD_TIMEOUT, read).await.ok()??;
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// RFC 8252 7.3: a listener on a port the system picks; the redirect URI
/// names it. With `localhost` (Microsoft) the browser may try IPv6 first,
/// so `[::1]` listens on the same port where it can.
async fn listen(host: &str) -> Result<(Vec<TcpListener>, u16), OAuthError> {
    let v4 = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| OAuthError::Flow(format!("cannot listen on 127.0.0.1: {e}")))?;
    let port = v4
        .local_addr()
        .map_err(|e| OAuthError::Flow(format!("cannot listen on 127.0.0.1: {e}")))?
        .port();
    let mut listeners = vec![v4];
    if host == "localhost"
        && let Ok(v6) = TcpListener::bind(("::1", port)).await
    {
        listeners.push(v6);
    }
    Ok((listeners, port))
}

async fn accept(listeners: &[TcpListener]) -> std::io::Result<TcpStream> {
    match listeners {
        [one] => one.accept().await.map(|(s, _)| s),
        [a, b, ..] => tokio::select! {
            r = a.accept() => r.map(|(s, _)| s),
            r = b.accept() => r.map(|(s, _)| s),
        },
        [] => std::future::pending().await,
    }
}

async fn loopback(
    account: &Account,
    c: &OAuth2Client,
    client: &super::Client,
    http: &reqwest::Client,
    out: &mut dyn Write,
) -> Result<Granted, OAuthError> {
    let host = c.redirect_host();
    let (listeners, port) = listen(host).await?;
    let redirect = RedirectUrl::new(format!("http://{host}:{port}/"))
        .map_err(|e| OAuthError::Flow(format!("redirect URI: {e}")))?;
    // RFC 7636: the verifier stays here; the provider sees its hash.
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(CsrfToken::new_random)
        .add_scopes(c.scopes())
        .set_pkce_challenge(challenge)
        .set_redirect_uri(Cow::Borrowed(&redirect));
    if c.provider.is_some() {
        // Which account to sign in with, filled in on the provider's page.
        request = request.add_extra_param("login_hint", account.username.clone());
    }
    if c.provider == Some(OAuthProvider::Google) {
        // A refresh token every time, also for an app consented to before.
        request = request
            .add_extra_param("access_type", "offline")
            .add_extra_param("prompt", "consent");
    }
    let (url, state) = request.url();
    say(
        out,
        format_args!(
            "Open this address in a browser on this machine and sign in as {}:\n\n  {url}\n",
            account.username
        ),
    );
    if Place::here().ssh {
        say(
            out,
            format_args!(
                "This is an SSH session: forward the port first (`ssh -L {port}:127.0.0.1:{port} THIS-HOST`) and open the address on your own machine."
            ),
        );
    }
    say(
        out,
        format_args!("Waiting for the browser to come back to http://{host}:{port}/ ..."),
    );
    let code = loop {
        let Ok(mut sock) = accept(&listeners).await else {
            continue;
        };
        let Some(head) = read_head(&mut sock).await else {
            continue;
        };
        let (answer, result) = match read_redirect(&head, state.secret()) {
            Redirect::Code(code) => (
                page(
                    "200 OK",
                    "mailwarden is authorized. You can close this tab.",
                ),
                Some(Ok(code)),
            ),
            Redirect::Denied(why) => (
                page(
                    "200 OK",
                    "The provider did not authorize mailwarden. You can close this tab.",
                ),
                Some(Err(why)),
            ),
            Redirect::WrongState => {
                say(
                    out,
                    format_args!(
                        "A redirect with a state that is not this run's was ignored (an old tab, or another program)."
                    ),
                );
                (
                    page(
                        "400 Bad Request",
                        "This is not the sign-in mailwarden is waiting for.",
                    ),
                    None,
                )
            }
            Redirect::Other => (page("404 Not Found", "Nothing here."), None),
        };
        let _ = tokio::time::timeout(HEAD_TIMEOUT, sock.write_all(answer.as_bytes())).await;
        let _ = sock.shutdown().await;
        match result {
            Some(Ok(code)) => break code,
            Some(Err(why)) => {
                return Err(OAuthError::Flow(format!(
                    "the provider did not authorize mailwarden: {why}"
                )));
            }
            None => continue,
        }
    };
    drop(listeners);
    say(out, format_args!("Signed in; asking for the tokens ..."));
    let requested = Instant::now();
    let response = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .set_redirect_uri(Cow::Borrowed(&redirect))
        .request_async(http)
        .await
        .map_err(|e| request_failed("token endpoint", &c.token_url, e))?;
    Ok(granted(&response, requested))
}

async fn device(
    c: &OAuth2Client,
    client: &super::Client,
    http: &reqwest::Client,
    deadline: Duration,
    out: &mut dyn Write,
) -> Result<Granted, OAuthError> {
    let device_url = c.device_url.as_deref().unwrap_or("");
    let details: StandardDeviceAuthorizationResponse = client
        .exchange_device_code()
        .map_err(|e| OAuthError::Flow(e.to_string()))?
        .add_scopes(c.scopes())
        .request_async(http)
        .await
        .map_err(|e| request_failed("device authorization endpoint", device_url, e))?;
    // The user code is meant to be shown: it is typed in by the user, and
    // is worthless without the device code, which stays here.
    say(
        out,
        format_args!(
            "On any device with a browser, open\n\n  {}\n\nand enter the code\n\n  {}\n",
            details.verification_uri().as_str(),
            details.user_code().secret()
        ),
    );
    if let Some(complete) = details.verification_uri_complete() {
        say(
            out,
            format_args!("(or open {} , which carries the code)", complete.secret()),
        );
    }
    let wait = deadline.min(details.expires_in());
    say(
        out,
        format_args!(
            "Waiting up to {} for the sign-in ...",
            crate::imap::session::humanize(wait)
        ),
    );
    let requested = Instant::now();
    // The crate polls at the given interval, 5 s more after each
    // `slow_down` (RFC 8628 3.5), until the code expires or `wait` passes.
    let response = client
        .exchange_device_access_token(&details)
        .request_async(http, tokio::time::sleep, Some(wait))
        .await
        .map_err(|e| match &e {
            oauth2::RequestTokenError::ServerResponse(r) => match r.error() {
                oauth2::DeviceCodeErrorResponseType::ExpiredToken => timed_out(wait),
                oauth2::DeviceCodeErrorResponseType::AccessDenied => {
                    OAuthError::Flow("the sign-in was declined on the provider's page".into())
                }
                _ => request_failed("token endpoint", &c.token_url, e),
            },
            _ => request_failed("token endpoint", &c.token_url, e),
        })?;
    Ok(granted(&response, requested))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flow_is_the_one_asked_for_or_the_one_that_fits_the_place() {
        let desk = Place {
            ssh: false,
            display: true,
        };
        let ssh = Place {
            ssh: true,
            display: true,
        };
        let server = Place {
            ssh: false,
            display: false,
        };
        use Flow::*;
        let cases = [
            // (asked, has device endpoint, place, flow or error)
            (None, true, desk, Ok(Loopback)),
            (None, true, ssh, Ok(Device)),
            (None, true, server, Ok(Device)),
            (None, false, ssh, Ok(Loopback)),
            (None, false, server, Ok(Loopback)),
            (Some(Loopback), true, ssh, Ok(Loopback)),
            (Some(Device), true, desk, Ok(Device)),
            (
                Some(Device),
                false,
                server,
                Err("this provider has no device flow"),
            ),
        ];
        for (asked, has_device, place, want) in cases {
            let got = choose(asked, has_device, place);
            match (got, want) {
                (Ok((flow, why)), Ok(want)) => {
                    assert_eq!(flow, want, "{asked:?} {has_device} {place:?}");
                    assert!(!why.is_empty());
                }
                (Err(e), Err(want)) => assert!(e.starts_with(want), "{e}"),
                (got, want) => panic!("{asked:?} {has_device} {place:?}: {got:?}, wanted {want:?}"),
            }
        }
    }

    #[test]
    fn redirects_are_read_and_the_state_checked() {
        let s = "st8";
        let cases = [
            (
                "GET /?code=abc&state=st8 HTTP/1.1\r\nHost: x\r\n\r\n",
                Redirect::Code("abc".into()),
            ),
            // Percent-encoded values are decoded.
            (
                "GET /?state=st8&code=a%2Fb%3D HTTP/1.1\r\n\r\n",
                Redirect::Code("a/b=".into()),
            ),
            (
                "GET /?code=abc&state=other HTTP/1.1\r\n\r\n",
                Redirect::WrongState,
            ),
            ("GET /?code=abc HTTP/1.1\r\n\r\n", Redirect::WrongState),
            (
                "GET /?error=access_denied&error_description=The+user+said+no&state=st8 HTTP/1.1\r\n\r\n",
                Redirect::Denied("access_denied: The user said no".into()),
            ),
            (
                "GET /?error=access_denied&state=st8 HTTP/1.1\r\n\r\n",
                Redirect::Denied("access_denied".into()),
            ),
            // Someone else's error is not ours to act on.
            (
                "GET /?error=access_denied&state=x HTTP/1.1\r\n\r\n",
                Redirect::WrongState,
            ),
            ("GET /favicon.ico HTTP/1.1\r\n\r\n", Redirect::Other),
            (
                "GET /other?code=abc&state=st8 HTTP/1.1\r\n\r\n",
                Redirect::Other,
            ),
            (
                "POST /?code=abc&state=st8 HTTP/1.1\r\n\r\n",
                Redirect::Other,
            ),
            ("GET / HTTP/1.1\r\n\r\n", Redirect::Other),
            ("", Redirect::Other),
            ("garbage", Redirect::Other),
        ];
        for (head, want) in cases {
            assert_eq!(read_redirect(head, s), want, "{head:?}");
        }
    }
}
