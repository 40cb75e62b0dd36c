//! A fake OAuth2 provider for the tests, plain HTTP on 127.0.0.1:0: the
//! authorization endpoint (`/authorize`, answering as a provider's consent
//! page would, with a redirect carrying a code and the state), the token
//! endpoint (`/token`: authorization code with PKCE S256, refresh token,
//! device code), and the device authorization endpoint (`/device`). It
//! keeps what it issued, so that the scripted IMAP server can ask whether
//! an access token is one of its own and still alive ([`Provider::valid`]),
//! and can be told to revoke, rotate, slow down or break.
//!
//! Bounded like the scripted server: at most [`MAX_CONNECTIONS`], a request
//! head and body of bounded size read within [`READ_LIMIT`]; its task ends
//! when the [`Provider`] is dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::Digest as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const MAX_CONNECTIONS: usize = 400;
const READ_LIMIT: Duration = Duration::from_secs(10);
const MAX_REQUEST: usize = 64 << 10;

/// The client the tests register.
pub const CLIENT_ID: &str = "mailwarden-test-client";

/// How the provider behaves; changed while it runs by [`Provider::set`].
#[derive(Debug, Clone)]
pub struct Behaviour {
    /// `expires_in` of each access token, in seconds.
    pub lifetime: u64,
    /// A refresh answers with a new refresh token, and the old one dies.
    pub rotate: bool,
    /// The device flow: this many polls are answered
    /// `authorization_pending` before the grant...
    pub pending_polls: usize,
    /// ...and this poll (from 1) is answered `slow_down` instead.
    pub slow_down_at: Option<usize>,
    /// The device flow's `interval`, in seconds.
    pub interval: u64,
    /// The token endpoint answers only after this long.
    pub token_delay: Option<Duration>,
    /// The token endpoint answers 500 with an HTML page.
    pub broken: bool,
    /// The consent page declines.
    pub deny: bool,
    /// Refresh tokens in answers (false: a provider that gives none).
    pub refresh_tokens: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            lifetime: 3600,
            rotate: false,
            pending_polls: 0,
            slow_down_at: None,
            interval: 1,
            token_delay: None,
            broken: false,
            deny: false,
            refresh_tokens: true,
        }
    }
}

/// One request to the token endpoint, as received.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub at: Instant,
    pub form: HashMap<String, String>,
}

#[derive(Default)]
struct State {
    behaviour: Behaviour,
    /// Code -> (code_challenge, redirect_uri, scope).
    codes: HashMap<String, (String, String, String)>,
    /// Refresh token -> alive.
    refresh: HashMap<String, bool>,
    /// Access token -> when it expires.
    access: HashMap<String, Instant>,
    /// Device code -> polls so far.
    devices: HashMap<String, usize>,
    token_requests: Vec<TokenRequest>,
    serial: u32,
}

impl State {
    fn next(&mut self, kind: &str) -> String {
        self.serial += 1;
        format!(
            "mwtest-{kind}-{:04}-{:08x}",
            self.serial,
            self.serial.wrapping_mul(2654435761)
        )
    }
}

pub struct Provider {
    pub port: u16,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Provider {
    pub async fn start(behaviour: Behaviour) -> Provider {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            behaviour,
            ..State::default()
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            for _ in 0..MAX_CONNECTIONS {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                conns.spawn(serve(sock, shared.clone()));
            }
            while conns.join_next().await.is_some() {}
        });
        Provider { port, state, task }
    }

    /// `http://127.0.0.1:PORT/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    /// The `oauth2:` keys that point a configuration here.
    pub fn endpoints(&self) -> String {
        format!(
            "client_id: {CLIENT_ID}, auth_url: \"{}\", token_url: \"{}\", device_url: \"{}\"",
            self.url("authorize"),
            self.url("token"),
            self.url("device")
        )
    }

    pub fn set(&self, change: impl FnOnce(&mut Behaviour)) {
        change(&mut self.state.lock().unwrap().behaviour);
    }

    /// Issues a refresh token as a consent would have (for tests that
    /// start from a stored one).
    pub fn grant(&self) -> String {
        let mut s = self.state.lock().unwrap();
        let token = s.next("refresh");
        s.refresh.insert(token.clone(), true);
        token
    }

    /// Every refresh token dies (the user revoked the app's access).
    pub fn revoke_all(&self) {
        for alive in self.state.lock().unwrap().refresh.values_mut() {
            *alive = false;
        }
    }

    /// Every access token issued so far dies now (a password change, a
    /// session revoked), before the end of its announced life.
    pub fn expire_access(&self) {
        let now = Instant::now();
        for until in self.state.lock().unwrap().access.values_mut() {
            *until = now;
        }
    }

    /// When `token` expires, if it is an access token issued here.
    pub fn valid(&self, token: &str) -> Option<Instant> {
        self.state.lock().unwrap().access.get(token).copied()
    }

    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.state.lock().unwrap().token_requests.clone()
    }

    /// The token requests of one grant type (`refresh_token`, ...).
    pub fn grants(&self, grant_type: &str) -> Vec<TokenRequest> {
        self.token_requests()
            .into_iter()
            .filter(|r| r.form.get("grant_type").map(String::as_str) == Some(grant_type))
            .collect()
    }

    /// Every token issued so far, access and refresh: what must never show.
    pub fn issued(&self) -> Vec<String> {
        let s = self.state.lock().unwrap();
        s.access.keys().chain(s.refresh.keys()).cloned().collect()
    }

    /// A check for the scripted IMAP server: a bearer token in an XOAUTH2 or
    /// OAUTHBEARER response must be one issued here and not expired; the
    /// session lasts while it lives.
    pub fn imap_check(
        self: &Arc<Self>,
        user: &str,
    ) -> impl Fn(&str, &str) -> Result<Option<super::script::Alive>, String> + Send + Sync + 'static
    {
        let me = self.clone();
        let user = user.to_string();
        move |mechanism: &str, response: &str| {
            let token = bearer(mechanism, response, &user)?;
            match me.valid(&token) {
                Some(until) if Instant::now() < until => {
                    let me = me.clone();
                    Ok(Some(Box::new(move || {
                        me.valid(&token).is_some_and(|t| Instant::now() < t)
                    })))
                }
                Some(_) => Err("the access token has expired".into()),
                None => Err("not a token of this provider".into()),
            }
        }
    }
}

/// The token of an XOAUTH2 or OAUTHBEARER initial response for `user`, its
/// form checked (the Google and Microsoft XOAUTH2 format; RFC 7628 3.1).
pub fn bearer(mechanism: &str, response: &str, user: &str) -> Result<String, String> {
    let fields: Vec<&str> = match mechanism {
        "XOAUTH2" => {
            let f = response
                .strip_suffix("\x01\x01")
                .ok_or("XOAUTH2 response must end with ^A^A")?;
            let f: Vec<&str> = f.split('\x01').collect();
            if f.first() != Some(&format!("user={user}").as_str()) {
                return Err(format!("XOAUTH2 user is not {user}"));
            }
            f
        }
        "OAUTHBEARER" => {
            let f = response
                .strip_suffix("\x01\x01")
                .ok_or("OAUTHBEARER response must end with ^A^A")?;
            let (gs2, rest) = f.split_once('\x01').ok_or("no GS2 header")?;
            if gs2 != format!("n,a={user},") {
                return Err(format!("OAUTHBEARER GS2 header is not for {user}"));
            }
            let f: Vec<&str> = rest.split('\x01').collect();
            if !f.iter().any(|x| x.starts_with("host="))
                || !f.iter().any(|x| x.starts_with("port="))
            {
                return Err("OAUTHBEARER without host and port".into());
            }
            f
        }
        other => return Err(format!("unexpected mechanism {other}")),
    };
    fields
        .iter()
        .find_map(|f| f.strip_prefix("auth=Bearer "))
        .map(str::to_string)
        .ok_or_else(|| "no auth=Bearer".to_string())
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `a=1&b=2`, decoded.
pub fn form(text: &str) -> HashMap<String, String> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn respond(status: &str, content_type: &str, body: &str, extra: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
        body.len()
    )
}

fn json(status: &str, body: serde_json::Value) -> String {
    respond(status, "application/json", &body.to_string(), "")
}

fn oauth_error(code: &str, description: &str) -> String {
    json(
        "400 Bad Request",
        serde_json::json!({"error": code, "error_description": description}),
    )
}

async fn serve(mut sock: TcpStream, state: Arc<Mutex<State>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let read = async {
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_string();
                let length = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if buf.len() >= end + 4 + length {
                    let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + length]).to_string();
                    return Some((head, body));
                }
            }
            if buf.len() > MAX_REQUEST {
                return None;
            }
            let n = sock.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    let Ok(Some((head, body))) = tokio::time::timeout(READ_LIMIT, read).await else {
        return;
    };
    let line = head.lines().next().unwrap_or("").to_string();
    let mut words = line.split(' ');
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let basic = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        if !k.eq_ignore_ascii_case("authorization") {
            return None;
        }
        let b64 = v.trim().strip_prefix("Basic ")?;
        let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        let text = String::from_utf8(raw).ok()?;
        Some(decode(text.split_once(':')?.0))
    });
    let answer = match (method, path) {
        ("GET", "/authorize") => authorize(&state, &form(query)),
        ("POST", "/device") => device(&state, &form(&body)),
        ("POST", "/token") => {
            let (delay, broken) = {
                let s = state.lock().unwrap();
                (s.behaviour.token_delay, s.behaviour.broken)
            };
            if let Some(d) = delay {
                tokio::time::sleep(d).await;
            }
            if broken {
                respond(
                    "500 Internal Server Error",
                    "text/html",
                    "<html>upstream failure; request was grant_type=refresh_token&refresh_token=mwtest-echoed-secret</html>",
                    "",
                )
            } else {
                token(&state, form(&body), basic)
            }
        }
        _ => respond("404 Not Found", "text/plain", "no", ""),
    };
    let _ = sock.write_all(answer.as_bytes()).await;
    let _ = sock.shutdown().await;
}

/// The consent page, consented to at once: a redirect to the client's
/// `redirect_uri` with a code (RFC 6749 4.1.2) and the state as given.
fn authorize(state: &Mutex<State>, q: &HashMap<String, String>) -> String {
    let mut s = state.lock().unwrap();
    let redirect = q.get("redirect_uri").cloned().unwrap_or_default();
    let st = q.get("state").cloned().unwrap_or_default();
    if q.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || q.get("response_type").map(String::as_str) != Some("code")
        || q.get("code_challenge_method").map(String::as_str) != Some("S256")
        || q.get("code_challenge").is_none_or(|c| c.len() < 43)
        || !(redirect.starts_with("http://127.0.0.1:") || redirect.starts_with("http://localhost:"))
    {
        return respond(
            "400 Bad Request",
            "text/plain",
            "bad authorization request",
            "",
        );
    }
    let location = if s.behaviour.deny {
        format!("{redirect}?error=access_denied&error_description=The+user+declined&state={st}")
    } else {
        let code = s.next("code");
        let challenge = q["code_challenge"].clone();
        let scope = q.get("scope").cloned().unwrap_or_default();
        s.codes
            .insert(code.clone(), (challenge, redirect.clone(), scope));
        format!("{redirect}?code={code}&state={st}")
    };
    respond(
        "302 Found",
        "text/plain",
        "",
        &format!("Location: {location}\r\n"),
    )
}

fn device(state: &Mutex<State>, f: &HashMap<String, String>) -> String {
    let mut s = state.lock().unwrap();
    if f.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
        return oauth_error("invalid_client", "unknown client");
    }
    let code = s.next("device");
    s.devices.insert(code.clone(), 0);
    json(
        "200 OK",
        serde_json::json!({
            "device_code": code,
            "user_code": "WDJB-MJHT",
            "verification_uri": "http://127.0.0.1/devicelogin",
            "expires_in": 900,
            "interval": s.behaviour.interval,
        }),
    )
}

fn token(state: &Mutex<State>, f: HashMap<String, String>, basic: Option<String>) -> String {
    let mut s = state.lock().unwrap();
    s.token_requests.push(TokenRequest {
        at: Instant::now(),
        form: f.clone(),
    });
    let client = f.get("client_id").cloned().or(basic);
    if client.as_deref() != Some(CLIENT_ID) {
        return oauth_error("invalid_client", "unknown client");
    }
    let grant = f.get("grant_type").map(String::as_str).unwrap_or("");
    let mut old_refresh = None;
    match grant {
        "authorization_code" => {
            let code = f.get("code").cloned().unwrap_or_default();
            let Some((challenge, redirect, _)) = s.codes.remove(&code) else {
                return oauth_error("invalid_grant", "unknown or used code");
            };
            // RFC 7636 4.6: BASE64URL(SHA256(verifier)) == challenge.
            let verifier = f.get("code_verifier").cloned().unwrap_or_default();
            let hashed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(sha2::Sha256::digest(verifier.as_bytes()));
            if hashed != challenge {
                return oauth_error("invalid_grant", "PKCE verification failed");
            }
            if f.get("redirect_uri") != Some(&redirect) {
                return oauth_error("invalid_grant", "redirect_uri differs");
            }
        }
        "refresh_token" => {
            let rt = f.get("refresh_token").cloned().unwrap_or_default();
            if s.refresh.get(&rt) != Some(&true) {
                return oauth_error("invalid_grant", "Token has been expired or revoked.");
            }
            if s.behaviour.rotate {
                old_refresh = Some(rt);
            }
        }
        "urn:ietf:params:oauth:grant-type:device_code" => {
            let code = f.get("device_code").cloned().unwrap_or_default();
            let (pending, slow) = (s.behaviour.pending_polls, s.behaviour.slow_down_at);
            let Some(polls) = s.devices.get_mut(&code) else {
                return oauth_error("expired_token", "unknown device code");
            };
            *polls += 1;
            let n = *polls;
            if slow == Some(n) {
                return oauth_error("slow_down", "polling too fast");
            }
            // The slow_down answer does not count as one of the pending.
            let counted = n - usize::from(slow.is_some_and(|k| k < n));
            if counted <= pending {
                return oauth_error("authorization_pending", "waiting for the user");
            }
            s.devices.remove(&code);
        }
        _ => return oauth_error("unsupported_grant_type", grant),
    }
    let access = s.next("access");
    let lifetime = s.behaviour.lifetime;
    s.access.insert(
        access.clone(),
        Instant::now() + Duration::from_secs(lifetime),
    );
    let mut body = serde_json::json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": lifetime,
        "scope": "mail",
    });
    let give_refresh =
        s.behaviour.refresh_tokens && (grant != "refresh_token" || old_refresh.is_some());
    if give_refresh {
        let rt = s.next("refresh");
        s.refresh.insert(rt.clone(), true);
        body["refresh_token"] = rt.into();
    }
    if let Some(old) = old_refresh {
        s.refresh.insert(old, false);
    }
    json("200 OK", body)
}
