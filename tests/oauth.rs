//! Built-in OAuth2 end to end, against a fake provider (`support::oauth`)
//! and the scripted IMAP server (`support::script`), which lets a login in
//! only with a bearer token the provider issued and has not expired, and
//! ends a session at its first command after that token's expiry. The
//! binary is run as a user would: `auth` (loopback redirect driven by
//! making the browser's requests, device flow approved after a few polls),
//! then `run` and `watch`. Every token the provider issued is looked for in
//! everything the binary printed, at `MAILWARDEN_LOG=trace`. Network:
//! 127.0.0.1 only; every wait is bounded.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

use support::oauth::{Behaviour, CLIENT_ID, Provider, bearer};
use support::script::{Script, Server};
use support::text;

const USER: &str = "me@example.org";
const CAPS_XOAUTH2: &str = "IMAP4rev1 LITERAL+ NAMESPACE MOVE UIDPLUS IDLE AUTH=XOAUTH2";
const CAPS_OAUTHBEARER: &str = "IMAP4rev1 LITERAL+ NAMESPACE MOVE UIDPLUS IDLE AUTH=OAUTHBEARER";
const BIN: &str = env!("CARGO_BIN_EXE_mailwarden");

/// A configuration with one OAuth2 account `work` on the scripted server
/// at `imap_port`; `preset` is `gmail` or `outlook`, `oauth2` the rest of
/// the `oauth2:` mapping; `more` is added under `accounts:`.
fn config(dir: &Path, preset: &str, imap_port: u16, oauth2: &str, more: &str) -> PathBuf {
    let path = dir.join("config.yaml");
    std::fs::write(
        &path,
        format!(
            "version: 1\naccounts:\n  work:\n    provider: {preset}\n    host: 127.0.0.1\n    port: {imap_port}\n    tls: none\n    username: {USER}\n    timeout: 3s\n    poll_interval: 1s\n    oauth2: {{ {oauth2} }}\n{more}rules:\n  - {{name: r, actions: [flag: seen]}}\n"
        ),
    )
    .unwrap();
    path
}

/// The provider's endpoints; `device` adds the device endpoint.
fn endpoints(p: &Provider, device: bool) -> String {
    let mut e = format!(
        "client_id: {CLIENT_ID}, auth_url: \"{}\", token_url: \"{}\"",
        p.url("authorize"),
        p.url("token")
    );
    if device {
        e.push_str(&format!(", device_url: \"{}\"", p.url("device")));
    }
    e
}

/// Runs the binary to its end (at most a minute) with the state in `dir`.
async fn mailwarden(args: &[&str], cfg: &Path, dir: &Path) -> (Output, Duration) {
    let t0 = Instant::now();
    let child = Command::new(BIN)
        .args(args)
        .arg("-c")
        .arg(cfg)
        .env("XDG_STATE_HOME", dir)
        .env("MAILWARDEN_LOG", "trace")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let o = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("mailwarden did not end within a minute")
        .unwrap();
    (o, t0.elapsed())
}

/// No token the provider issued, nor the one its broken page echoes, is in
/// `printed`.
fn assert_no_secret(printed: &str, provider: &Provider) {
    for token in provider.issued() {
        assert!(!printed.contains(&token), "a token was printed: {printed}");
    }
    assert!(
        !printed.contains("mwtest-"),
        "a secret was printed: {printed}"
    );
}

fn token_file(dir: &Path) -> PathBuf {
    dir.join("mailwarden/oauth/work.json")
}

/// The refresh token stored for `work`.
fn stored(dir: &Path) -> String {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(token_file(dir)).unwrap()).unwrap();
    v["refresh_token"].as_str().unwrap().to_string()
}

/// Stores `token` for `work` as `mailwarden auth` would have.
fn store(dir: &Path, token: &str, provider: &Provider) {
    let oauth = dir.join("mailwarden/oauth");
    std::fs::create_dir_all(&oauth).unwrap();
    std::fs::set_permissions(&oauth, std::fs::Permissions::from_mode(0o700)).unwrap();
    let path = token_file(dir);
    std::fs::write(
        &path,
        serde_json::json!({"refresh_token": token, "client_id": CLIENT_ID, "token_url": provider.url("token")})
            .to_string(),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// An IMAP server that lets in only the provider's live tokens for USER.
async fn imap(provider: &Arc<Provider>, caps: &str) -> Server {
    Script::new()
        .caps(caps)
        .check_auth(provider.imap_check(USER))
        .start()
        .await
}

/// A GET as a browser makes it; the status line and the Location header.
async fn browser_get(url: &str) -> (String, Option<String>) {
    let u = oauth2::url::Url::parse(url).unwrap();
    let port = u.port().unwrap();
    // localhost is this machine; the listener is on 127.0.0.1 at least.
    let mut sock = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let target = match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_string(),
    };
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {}:{port}\r\nConnection: close\r\n\r\n",
        u.host_str().unwrap()
    );
    sock.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), sock.read_to_string(&mut answer))
        .await
        .expect("no answer within 10 s")
        .unwrap();
    let status = answer.lines().next().unwrap_or("").to_string();
    let location = answer.lines().find_map(|l| {
        l.strip_prefix("Location: ")
            .or_else(|| l.strip_prefix("location: "))
            .map(str::to_string)
    });
    (status, location)
}

fn param(url: &str, name: &str) -> Option<String> {
    oauth2::url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `mailwarden auth work` with `flags`, driven by `drive` (given the lines
/// printed so far, it acts as the user once they hold what it needs).
async fn auth(cfg: &Path, dir: &Path, flags: &[&str]) -> tokio::process::Child {
    Command::new(BIN)
        .arg("auth")
        .arg("work")
        .args(flags)
        .arg("-c")
        .arg(cfg)
        .env("XDG_STATE_HOME", dir)
        .env("MAILWARDEN_LOG", "trace")
        .env_remove("SSH_CONNECTION")
        .env_remove("SSH_TTY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// Reads the child's standard output until a line satisfies `want`.
async fn line_where(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    seen: &mut String,
    want: impl Fn(&str) -> bool,
) -> String {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let line = lines.next_line().await.unwrap().expect("output ended");
            seen.push_str(&line);
            seen.push('\n');
            if want(&line) {
                return line.trim().to_string();
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("never printed the line wanted: {seen}"))
}

/// Waits for the child's end; its exit code, and all it printed.
async fn finish(
    mut child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    mut seen: String,
) -> (Option<i32>, String) {
    let mut rest = String::new();
    let mut stdout = lines.into_inner();
    let mut stderr = child.stderr.take().unwrap();
    let mut err = String::new();
    let status = tokio::time::timeout(Duration::from_secs(30), async {
        stdout.read_to_string(&mut rest).await.unwrap();
        stderr.read_to_string(&mut err).await.unwrap();
        child.wait().await.unwrap()
    })
    .await
    .expect("auth did not end");
    seen.push_str(&rest);
    seen.push_str(&err);
    (status.code(), seen)
}

/// First consent by the loopback redirect with PKCE (Google's habits: the
/// redirect names 127.0.0.1, a refresh token is asked for with
/// access_type=offline), a redirect with another state refused, then `run`
/// logs in by XOAUTH2 with an access token from the stored refresh token.
#[tokio::test]
async fn consent_by_the_browser_then_run_logs_in_with_xoauth2() {
    let provider = Arc::new(Provider::start(Behaviour::default()).await);
    let server = imap(&provider, CAPS_XOAUTH2).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        "gmail",
        server.port,
        &endpoints(&provider, false),
        "",
    );

    let mut child = auth(&cfg, dir.path(), &["--browser"]).await;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    let url = line_where(&mut lines, &mut seen, |l| l.contains("/authorize?")).await;
    let redirect = param(&url, "redirect_uri").unwrap();
    assert!(redirect.starts_with("http://127.0.0.1:"), "{redirect}");
    assert_eq!(
        param(&url, "scope").as_deref(),
        Some("https://mail.google.com/")
    );
    assert_eq!(param(&url, "login_hint").as_deref(), Some(USER));
    assert_eq!(param(&url, "access_type").as_deref(), Some("offline"));
    assert_eq!(
        param(&url, "code_challenge_method").as_deref(),
        Some("S256")
    );

    // The browser at the consent page: redirected back with code and state.
    let (status, location) = browser_get(&url).await;
    assert!(status.contains("302"), "{status}");
    let location = location.unwrap();
    assert!(location.starts_with(&redirect), "{location}");
    // A redirect with another state (RFC 6749 10.12) is turned away, and
    // the wait goes on.
    let state = param(&location, "state").unwrap();
    let forged = location.replace(&format!("state={state}"), "state=forged");
    let (status, _) = browser_get(&forged).await;
    assert!(status.contains("400"), "{status}");
    let (status, _) = browser_get(&location).await;
    assert!(status.contains("200"), "{status}");

    let (code, printed) = finish(child, lines, seen).await;
    assert_eq!(code, Some(0), "{printed}");
    assert!(printed.contains("was ignored"), "{printed}");
    assert!(printed.contains("Authorized."), "{printed}");
    assert_no_secret(&printed, &provider);
    // The code was exchanged once, with the PKCE verifier (checked by the
    // provider), and the refresh token stored privately.
    assert_eq!(provider.grants("authorization_code").len(), 1);
    assert_eq!(mode(&token_file(dir.path())), 0o600);
    assert_eq!(mode(&dir.path().join("mailwarden/oauth")), 0o700);
    assert!(stored(dir.path()).starts_with("mwtest-refresh-"));

    let (o, _) = mailwarden(&["run"], &cfg, dir.path()).await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert_no_secret(&format!("{out}{err}"), &provider);
    let logins = server.logins();
    assert_eq!(logins.len(), 1, "{logins:?}");
    assert!(logins[0].accepted, "{logins:?}");
    assert_eq!(logins[0].mechanism, "XOAUTH2");
    let token = bearer("XOAUTH2", &logins[0].response, USER).unwrap();
    assert!(provider.valid(&token).is_some());
    // Google keeps the grant's scopes: the refresh names none.
    let refreshes = provider.grants("refresh_token");
    assert_eq!(refreshes.len(), 1);
    assert_eq!(refreshes[0].form.get("scope"), None);
}

/// The device flow (Microsoft's habits) for a machine without a browser:
/// the code is shown, the token endpoint is polled no faster than
/// `interval`, 5 s slower after `slow_down` (RFC 8628 3.5), until the
/// provider approves; then `run` logs in with OAUTHBEARER (RFC 7628).
#[tokio::test]
async fn consent_by_device_code_polls_at_the_pace_asked_then_run_logs_in_with_oauthbearer() {
    let provider = Arc::new(
        Provider::start(Behaviour {
            pending_polls: 1,
            slow_down_at: Some(2),
            interval: 1,
            ..Behaviour::default()
        })
        .await,
    );
    let server = imap(&provider, CAPS_OAUTHBEARER).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        "outlook",
        server.port,
        &endpoints(&provider, true),
        "",
    );

    let t0 = Instant::now();
    let mut child = auth(&cfg, dir.path(), &["--device"]).await;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    line_where(&mut lines, &mut seen, |l| l.contains("WDJB-MJHT")).await;
    assert!(seen.contains("http://127.0.0.1/devicelogin"), "{seen}");
    let (code, printed) = finish(child, lines, seen).await;
    let took = t0.elapsed();
    assert_eq!(code, Some(0), "{printed}");
    assert_no_secret(&printed, &provider);
    let polls: Vec<Instant> = provider
        .grants("urn:ietf:params:oauth:grant-type:device_code")
        .iter()
        .map(|r| r.at)
        .collect();
    assert_eq!(polls.len(), 3, "pending, slow_down, granted");
    let gaps = [polls[1] - polls[0], polls[2] - polls[1]];
    println!("device flow: polls {gaps:?} apart, {took:?} in all");
    assert!(gaps[0] >= Duration::from_millis(990), "{gaps:?}");
    assert!(gaps[1] >= Duration::from_millis(5990), "{gaps:?}");
    assert!(took < Duration::from_secs(20), "{took:?}");

    let (o, _) = mailwarden(&["run"], &cfg, dir.path()).await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    let logins = server.logins();
    assert_eq!(logins.len(), 1, "{logins:?}");
    assert!(logins[0].accepted, "{logins:?}");
    assert_eq!(logins[0].mechanism, "OAUTHBEARER");
    assert!(
        logins[0]
            .response
            .contains(&format!("\x01host=127.0.0.1\x01port={}\x01", server.port)),
        "{:?}",
        logins[0].response
    );
    // Microsoft's refresh names the scopes again.
    let refreshes = provider.grants("refresh_token");
    assert_eq!(
        refreshes[0].form.get("scope").map(String::as_str),
        Some("https://outlook.office.com/IMAP.AccessAsUser.All offline_access")
    );
}

/// Each `run` refreshes silently from the stored token; a provider that
/// rotates refresh tokens has its new one stored (0600) in place of the
/// old, which it no longer takes, so the next run works only if the
/// rotation was kept.
#[tokio::test]
async fn a_rotated_refresh_token_replaces_the_stored_one() {
    let provider = Arc::new(
        Provider::start(Behaviour {
            rotate: true,
            ..Behaviour::default()
        })
        .await,
    );
    let server = imap(&provider, CAPS_XOAUTH2).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        "outlook",
        server.port,
        &endpoints(&provider, true),
        "",
    );
    let first = provider.grant();
    store(dir.path(), &first, &provider);
    let mut used = vec![first];
    for _ in 0..3 {
        let (o, _) = mailwarden(&["run"], &cfg, dir.path()).await;
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
        assert_no_secret(&format!("{out}{err}"), &provider);
        let now = stored(dir.path());
        assert!(!used.contains(&now), "not rotated: {now}");
        assert_eq!(mode(&token_file(dir.path())), 0o600);
        used.push(now);
    }
    // Each refresh presented the token the one before it stored.
    let presented: Vec<String> = provider
        .grants("refresh_token")
        .iter()
        .map(|r| r.form["refresh_token"].clone())
        .collect();
    assert_eq!(presented, used[..3]);
    assert_eq!(server.logins().iter().filter(|l| l.accepted).count(), 3);
    // No temporary file is left beside the token.
    let names: Vec<_> = std::fs::read_dir(dir.path().join("mailwarden/oauth"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["work.json"]);
}

/// A revoked refresh token, or none stored: exit 3, a message naming
/// `mailwarden auth work`, no login tried, nothing secret printed.
#[tokio::test]
async fn a_revoked_or_missing_refresh_token_is_exit_3_naming_mailwarden_auth() {
    let provider = Arc::new(Provider::start(Behaviour::default()).await);
    let server = imap(&provider, CAPS_XOAUTH2).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        "gmail",
        server.port,
        &endpoints(&provider, false),
        "",
    );

    let (o, _) = mailwarden(&["run"], &cfg, dir.path()).await;
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains(
            "no refresh token is stored for account \"work\"; run `mailwarden auth work` once"
        ),
        "{err}"
    );

    store(dir.path(), &provider.grant(), &provider);
    provider.revoke_all();
    let (o, _) = mailwarden(&["run"], &cfg, dir.path()).await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{out}\n{err}");
    assert!(
        err.contains("the provider refused the refresh token of account \"work\" (invalid_grant: Token has been expired or revoked.): it has expired or was revoked; run `mailwarden auth work`"),
        "{err}"
    );
    assert_no_secret(&format!("{out}{err}"), &provider);
    assert!(server.logins().is_empty());
}

/// A token endpoint that does not answer within the account's timeout, and
/// one that answers an HTML error page which quotes a secret: exit 3 in
/// time, and the page is not shown.
#[tokio::test]
async fn a_slow_or_broken_token_endpoint_fails_in_time_without_quoting_it() {
    let provider = Arc::new(
        Provider::start(Behaviour {
            token_delay: Some(Duration::from_secs(30)),
            ..Behaviour::default()
        })
        .await,
    );
    let server = imap(&provider, CAPS_XOAUTH2).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        "gmail",
        server.port,
        &endpoints(&provider, false),
        "",
    );
    store(dir.path(), &provider.grant(), &provider);
    let (o, took) = mailwarden(&["run"], &cfg, dir.path()).await;
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains(&format!(
            "the token endpoint {} did not answer in time",
            provider.url("token")
        )),
        "{err}"
    );
    // The account's timeout is 3 s.
    assert!(took < Duration::from_secs(10), "{took:?}");

    provider.set(|b| {
        b.token_delay = None;
        b.broken = true;
    });
    let (o, _) = mailwarden(&["run"], &cfg, dir.path()).await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains("answered with something that is not an OAuth2 response"),
        "{err}"
    );
    assert_no_secret(&format!("{out}{err}"), &provider);
    assert!(server.logins().is_empty());
}

/// The consent declined on the provider's page; a provider that gives no
/// refresh token; `--device` where there is no device endpoint; an account
/// without the built-in flow.
#[tokio::test]
async fn auth_says_what_went_wrong() {
    let provider = Arc::new(
        Provider::start(Behaviour {
            deny: true,
            ..Behaviour::default()
        })
        .await,
    );
    let dir = tempfile::tempdir().unwrap();
    let other = "  pw:\n    host: 127.0.0.1\n    tls: none\n    username: u\n    password_env: P\n";
    let cfg = config(dir.path(), "gmail", 1, &endpoints(&provider, false), other);
    let declined = async |provider: &Provider| {
        let mut child = auth(&cfg, dir.path(), &["--browser"]).await;
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = String::new();
        let url = line_where(&mut lines, &mut seen, |l| l.contains("/authorize?")).await;
        let (_, location) = browser_get(&url).await;
        browser_get(&location.unwrap()).await;
        let r = finish(child, lines, seen).await;
        assert_no_secret(&r.1, provider);
        r
    };
    let (code, printed) = declined(&provider).await;
    assert_eq!(code, Some(3), "{printed}");
    assert!(
        printed.contains(
            "the provider did not authorize mailwarden: access_denied: The user declined"
        ),
        "{printed}"
    );
    assert!(!token_file(dir.path()).exists());

    provider.set(|b| {
        b.deny = false;
        b.refresh_tokens = false;
    });
    let (code, printed) = declined(&provider).await;
    assert_eq!(code, Some(3), "{printed}");
    assert!(printed.contains("no refresh token"), "{printed}");
    assert!(!token_file(dir.path()).exists());

    for (args, want) in [
        (
            vec!["auth", "work", "--device"],
            "this provider has no device flow configured",
        ),
        (
            vec!["auth", "pw"],
            "account \"pw\" does not use the built-in OAuth2 flow",
        ),
        (vec!["auth", "nobody"], "unknown account \"nobody\""),
    ] {
        let (o, _) = mailwarden(&args, &cfg, dir.path()).await;
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

/// `check` shows what a preset filled in, and how the account logs in.
#[tokio::test]
async fn check_shows_what_the_preset_filled() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yaml");
    std::fs::write(
        &cfg,
        "version: 1\naccounts:\n  g:\n    provider: gmail\n    username: me@gmail.com\n    oauth2: { client_id: 123.apps.example, client_secret: GOCSPX-shipped }\n  m:\n    provider: outlook\n    username: me@example.org\n    port: 993\n    oauth2: { client_id: 0000-1111, tenant: organizations }\nrules: []\n",
    )
    .unwrap();
    let (o, _) = mailwarden(&["check"], &cfg, dir.path()).await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(out.contains("account g: me@gmail.com at imap.gmail.com:993 (implicit TLS, preset gmail filled host, port, tls, oauth2 endpoints), OAuth2 with google (client 123.apps.example; `mailwarden auth g` once), watches INBOX"), "{out}");
    assert!(out.contains("account m: me@example.org at outlook.office365.com:993 (implicit TLS, preset outlook filled host, tls, oauth2 endpoints), OAuth2 with microsoft (client 0000-1111; `mailwarden auth m` once), watches INBOX"), "{out}");
    assert!(
        !out.contains("GOCSPX-shipped") && !err.contains("GOCSPX-shipped"),
        "{out}"
    );
}

/// `watch` over several lifetimes of a short-lived token (3 s, rotated at
/// each refresh): it logs in afresh before each expiry, so that no session
/// outlives its token (the server would end it) and no login is refused;
/// the access token comes from the cache in between. Then the refresh
/// token is revoked: that account says so at each backoff step (not a
/// flood), naming `mailwarden auth`, while the other account goes on; a
/// new consent stored meanwhile is picked up without a restart. Last, an
/// access token the provider ends early is replaced after one refused login.
#[tokio::test]
async fn watch_renews_before_each_expiry_and_waits_out_a_revocation() {
    let provider = Arc::new(
        Provider::start(Behaviour {
            lifetime: 3,
            rotate: true,
            ..Behaviour::default()
        })
        .await,
    );
    let server = imap(&provider, CAPS_XOAUTH2).await;
    let plain = Script::new().start().await;
    let dir = tempfile::tempdir().unwrap();
    let other = format!(
        "  other:\n    host: 127.0.0.1\n    port: {}\n    tls: none\n    username: u\n    password_env: MAILWARDEN_TEST_PASSWORD\n    poll_interval: 1s\n",
        plain.port
    );
    let cfg = config(
        dir.path(),
        "outlook",
        server.port,
        &endpoints(&provider, true),
        &other,
    );
    store(dir.path(), &provider.grant(), &provider);

    let t0 = Instant::now();
    let mut child = Command::new(BIN)
        .args(["watch", "-c"])
        .arg(&cfg)
        .env("XDG_STATE_HOME", dir.path())
        .env("MAILWARDEN_LOG", "trace")
        .env("MAILWARDEN_TEST_PASSWORD", "pw")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let log = tokio::spawn(async move {
        let mut all = String::new();
        let _ = stderr.read_to_string(&mut all).await;
        all
    });

    // Four lifetimes of the token.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let refreshed = provider.grants("refresh_token").len();
    let logins = server.logins();
    println!(
        "watch: {refreshed} refreshes and {} logins in {:?}",
        logins.len(),
        t0.elapsed()
    );
    assert!(refreshed >= 4, "{refreshed} refreshes");
    assert!(logins.len() >= 4, "{logins:?}");
    assert!(
        logins.iter().all(|l| l.accepted),
        "a login was refused: {logins:?}"
    );
    assert_eq!(server.expired(), 0, "a session outlived its token");
    // One refresh per login at most: the cached token is used until due.
    assert!(
        refreshed <= logins.len() + 1,
        "{refreshed} refreshes for {} logins",
        logins.len()
    );

    // Revoked: no more logins; the other account is still served.
    provider.revoke_all();
    let revoked_at = Instant::now();
    let plain_before = plain.commands().len();
    tokio::time::sleep(Duration::from_secs(7)).await;
    let logins_after = server.logins().len();
    assert!(
        plain.commands().len() > plain_before + 3,
        "the other account stopped"
    );

    // A new consent, stored as `mailwarden auth` would: picked up at the
    // next attempt. Its tokens live longer, so that the cache holds one
    // for what follows.
    provider.set(|b| b.lifetime = 60);
    store(dir.path(), &provider.grant(), &provider);
    let deadline = Instant::now() + Duration::from_secs(15);
    while server.logins().len() == logins_after && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let resumed = server.logins().len() > logins_after;

    // The provider ends the access token early: the session is dropped by
    // the server, and the login with the cached token is refused once,
    // then made with a fresh one.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = server.logins().len();
    provider.expire_access();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !server.logins()[before..].iter().any(|l| l.accepted) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let retried: Vec<bool> = server.logins()[before..]
        .iter()
        .map(|l| l.accepted)
        .collect();

    let pid = child.id().unwrap() as i32;
    unsafe_free_kill(pid);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("watch did not stop")
        .unwrap();
    let all = log.await.unwrap();
    println!("watch: wall time {:?}", t0.elapsed());
    assert!(resumed, "the new consent was not picked up:\n{all}");
    assert_eq!(retried, [false, true], "{all}");
    assert!(
        all.contains("the login with the cached access token was refused; refreshing it"),
        "{all}"
    );
    assert_eq!(status.code(), Some(0), "{all}");
    assert!(
        all.contains("the access token falls due; logging in again"),
        "{all}"
    );
    let warned = all.matches("run `mailwarden auth work`").count();
    println!(
        "watch: {warned} warnings about the revoked token over {:?}",
        revoked_at.elapsed()
    );
    // Backoff 1 s, 2 s, 4 s, 8 s...: a handful in the ~10 s, not a flood.
    assert!((1..=6).contains(&warned), "{warned} warnings:\n{all}");
    // Only the session whose token the provider ended early.
    assert_eq!(server.expired(), 1, "a session outlived its token");
    assert_no_secret(&all, &provider);
    assert_eq!(mode(&token_file(dir.path())), 0o600);
}

/// SIGTERM to the watch under test (pid from the child we started).
fn unsafe_free_kill(pid: i32) {
    let status = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}
