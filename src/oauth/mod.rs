//! Built-in OAuth2 (RFC 6749) for accounts with `oauth2: { provider,
//! client_id }`: the one-time consent of `mailwarden auth` (`flow`), the
//! refresh tokens it stores (`store`), and access tokens had from them as
//! needed and kept in memory until four fifths of their life (`expiry`,
//! [`TokenCache`]). `commands::open_session_with` asks the cache for a token
//! before each login; `watch` ends a session when its token falls due.
//!
//! The protocol work is the `oauth2` crate's (PKCE, the device flow's
//! polling with `slow_down`, token and error responses), a well-kept crate
//! rather than our own code for a security protocol; its HTTP goes through
//! reqwest on our own rustls configuration (ring, the system's trust store),
//! so no OpenSSL and no second TLS stack come in (`http`).
//!
//! Tokens are [`Secret`]s from the moment they arrive: never logged (the
//! HTTP libraries are held at `info` in `main`), never in an error message
//! (a response body is never quoted), never given to a child process.

pub mod expiry;
pub mod flow;
pub mod http;
pub mod store;

use std::time::{Duration, Instant};

use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AuthType, AuthUrl, ClientId, DeviceAuthorizationUrl, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, RefreshToken, RequestTokenError, Scope, TokenResponse, TokenUrl,
};

use crate::config::{Account, ClientSecret, OAuth2Client, OAuthProvider};
use crate::secret::{Secret, SecretError};
use expiry::Lifetime;
use store::Stored;

/// Why no access token could be had.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error(
        "no refresh token is stored for account \"{account}\"; run `mailwarden auth {account}` once"
    )]
    NotAuthorized { account: String },
    #[error(
        "the provider refused the refresh token of account \"{account}\" ({detail}): it has expired or was revoked; run `mailwarden auth {account}`"
    )]
    Revoked { account: String, detail: String },
    #[error(
        "the stored refresh token of account \"{account}\" was issued to another client_id or token_url than the configuration names; run `mailwarden auth {account}`"
    )]
    OtherClient { account: String },
    #[error("refresh token store {0}")]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    ClientSecret(#[from] SecretError),
    /// An endpoint could not be reached, did not answer in time, or
    /// answered with something other than OAuth2.
    #[error("the {endpoint} {url} {detail}")]
    Endpoint {
        endpoint: &'static str,
        url: String,
        detail: String,
    },
    /// The provider said no: an RFC 6749 5.2 (or RFC 8628 3.5) error.
    #[error("the {endpoint} refused: {detail}")]
    Refused {
        endpoint: &'static str,
        detail: String,
    },
    /// `mailwarden auth` did not complete.
    #[error("{0}")]
    Flow(String),
}

/// The client as the `oauth2` crate builds requests for it: authorization
/// and token endpoints always, a device endpoint where there is one.
pub(crate) type Client =
    BasicClient<EndpointSet, EndpointMaybeSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// Habits of the identity providers that the RFCs leave open.
impl OAuth2Client {
    /// The host a loopback redirect names (RFC 8252 7.3). RFC 8252 8.3
    /// prefers the IP literal; Microsoft registers desktop redirects as
    /// `http://localhost` (any port), and matches the host as written.
    pub fn redirect_host(&self) -> &'static str {
        match self.provider {
            Some(OAuthProvider::Microsoft) => "localhost",
            _ => "127.0.0.1",
        }
    }

    /// RFC 6749 2.3.1: servers must take the client's credentials by HTTP
    /// Basic authentication, and may in the request body. Google and
    /// Microsoft document the body.
    fn auth_type(&self) -> AuthType {
        match self.provider {
            Some(_) => AuthType::RequestBody,
            None => AuthType::BasicAuth,
        }
    }

    /// Whether a refresh names the scopes again (RFC 6749 6 allows it):
    /// Microsoft's v2.0 endpoint wants them; Google's documentation sends
    /// none, and it keeps the scopes of the grant.
    fn scopes_on_refresh(&self) -> bool {
        self.provider != Some(OAuthProvider::Google)
    }

    pub fn scopes(&self) -> impl Iterator<Item = Scope> + '_ {
        self.scopes.iter().map(|s| Scope::new(s.clone()))
    }
}

/// The client secret, read from its source (a command runs now, with the
/// account's deadline).
pub(crate) async fn client_secret(
    c: &OAuth2Client,
    deadline: Duration,
) -> Result<Option<Secret>, SecretError> {
    match &c.client_secret {
        None => Ok(None),
        Some(ClientSecret::Inline(s)) => Ok(Some(s.clone())),
        Some(ClientSecret::Command(command)) => {
            let s =
                crate::secret::command_output("oauth2.client_secret_command", command, deadline)
                    .await?;
            if s.trim().is_empty() {
                return Err(SecretError::Empty("oauth2.client_secret_command"));
            }
            Ok(Some(Secret::new(s.trim())))
        }
    }
}

/// The `oauth2` client for `c`. The URLs were checked by `config::oauth`.
pub(crate) fn client(c: &OAuth2Client, secret: Option<&Secret>) -> Result<Client, OAuthError> {
    let bad = |what: &'static str, url: &str| OAuthError::Endpoint {
        endpoint: what,
        url: url.to_string(),
        detail: "is not a valid URL".into(),
    };
    let auth =
        AuthUrl::new(c.auth_url.clone()).map_err(|_| bad("authorization endpoint", &c.auth_url))?;
    let token =
        TokenUrl::new(c.token_url.clone()).map_err(|_| bad("token endpoint", &c.token_url))?;
    let device = match &c.device_url {
        None => None,
        Some(u) => Some(
            DeviceAuthorizationUrl::new(u.clone())
                .map_err(|_| bad("device authorization endpoint", u))?,
        ),
    };
    let mut client = BasicClient::new(ClientId::new(c.client_id.clone()))
        .set_auth_type(c.auth_type())
        .set_auth_uri(auth)
        .set_token_uri(token)
        .set_device_authorization_url_option(device);
    if let Some(s) = secret {
        client = client.set_client_secret(oauth2::ClientSecret::new(s.expose().to_string()));
    }
    Ok(client)
}

/// What a failed request to an endpoint becomes. A response body is never
/// quoted: it could hold a token.
pub(crate) fn request_failed<RE, T>(
    endpoint: &'static str,
    url: &str,
    e: RequestTokenError<oauth2::HttpClientError<RE>, oauth2::StandardErrorResponse<T>>,
) -> OAuthError
where
    RE: std::error::Error + 'static,
    T: oauth2::ErrorResponseType + std::fmt::Display,
{
    let endpoint_err = |detail: String| OAuthError::Endpoint {
        endpoint,
        url: url.to_string(),
        detail,
    };
    match e {
        RequestTokenError::ServerResponse(r) => OAuthError::Refused {
            endpoint,
            detail: describe_refusal(&r.error().to_string(), r.error_description()),
        },
        RequestTokenError::Request(e) => endpoint_err(http::describe(&e)),
        RequestTokenError::Parse(..) => {
            endpoint_err("answered with something that is not an OAuth2 response".into())
        }
        RequestTokenError::Other(detail) => endpoint_err(format!("answered wrongly: {detail}")),
    }
}

/// `invalid_grant: Token has been expired or revoked.`, the provider's
/// description cut to a line of sensible length.
fn describe_refusal(code: &str, description: Option<&String>) -> String {
    match description.map(|d| d.trim()).filter(|d| !d.is_empty()) {
        None => code.to_string(),
        Some(d) => {
            let first = d.lines().next().unwrap_or("");
            let cut: String = first.chars().take(200).collect();
            let more = if cut.len() < d.len() { "..." } else { "" };
            format!("{code}: {cut}{more}")
        }
    }
}

/// An access token and how long it lives.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: Secret,
    pub lifetime: Lifetime,
}

/// The access token of one account, kept in memory between logins (a
/// `watch` account loop owns one) and refreshed when it falls due.
#[derive(Debug, Default)]
pub struct TokenCache {
    current: Option<AccessToken>,
}

impl TokenCache {
    /// A token good for a login now: the cached one while it is
    /// [`Lifetime::usable`], else a fresh one from the refresh token.
    /// `fresh` says which, for a retry after a refused login.
    pub async fn get(
        &mut self,
        account: &Account,
        c: &OAuth2Client,
    ) -> Result<(AccessToken, bool), OAuthError> {
        if let Some(t) = &self.current
            && t.lifetime.usable(Instant::now())
        {
            return Ok((t.clone(), false));
        }
        self.current = None;
        let t = refresh(account, c, &store::default_dir()).await?;
        self.current = Some(t.clone());
        Ok((t, true))
    }

    /// Drops the cached token (the server refused it).
    pub fn forget(&mut self) {
        self.current = None;
    }
}

/// A new access token from the stored refresh token (RFC 6749 6). A new
/// refresh token in the answer replaces the stored one (rotation, RFC 6749
/// 10.4); `invalid_grant` means the stored one is dead.
pub async fn refresh(
    account: &Account,
    c: &OAuth2Client,
    dir: &std::path::Path,
) -> Result<AccessToken, OAuthError> {
    let name = &account.name;
    let stored = store::load(dir, name)?.ok_or_else(|| OAuthError::NotAuthorized {
        account: name.clone(),
    })?;
    if stored.client_id != c.client_id || stored.token_url != c.token_url {
        return Err(OAuthError::OtherClient {
            account: name.clone(),
        });
    }
    let secret = client_secret(c, account.timeout).await?;
    let client = client(c, secret.as_ref())?;
    let http = http::client(&[&c.token_url], account.timeout)?;
    let refresh_token = RefreshToken::new(stored.refresh_token.expose().to_string());
    let mut request = client.exchange_refresh_token(&refresh_token);
    if c.scopes_on_refresh() {
        request = request.add_scopes(c.scopes());
    }
    let requested = Instant::now();
    let response = request.request_async(&http).await.map_err(|e| {
        if let RequestTokenError::ServerResponse(r) = &e
            && *r.error() == BasicErrorResponseType::InvalidGrant
        {
            return OAuthError::Revoked {
                account: name.clone(),
                detail: describe_refusal("invalid_grant", r.error_description()),
            };
        }
        request_failed("token endpoint", &c.token_url, e)
    })?;
    if let Some(new) = response.refresh_token()
        && new.secret() != stored.refresh_token.expose()
    {
        store::save(
            dir,
            name,
            &Stored {
                refresh_token: Secret::new(new.secret().clone()),
                client_id: stored.client_id.clone(),
                token_url: stored.token_url.clone(),
            },
        )?;
        tracing::info!(account = %name, "the provider rotated the refresh token; the new one is stored");
    }
    let lifetime = Lifetime {
        requested,
        expires_in: response.expires_in(),
    };
    tracing::debug!(account = %name, expires_in = ?lifetime.expires_in, "access token refreshed");
    Ok(AccessToken {
        token: Secret::new(response.access_token().secret().clone()),
        lifetime,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_one_short_line() {
        let long = "x".repeat(300);
        let cases = [
            ("invalid_grant", None, "invalid_grant".to_string()),
            ("invalid_grant", Some("  "), "invalid_grant".to_string()),
            (
                "invalid_grant",
                Some("Token has been expired or revoked."),
                "invalid_grant: Token has been expired or revoked.".to_string(),
            ),
            (
                "invalid_client",
                Some("AADSTS7000218: no secret\r\nTrace ID: 1"),
                "invalid_client: AADSTS7000218: no secret...".to_string(),
            ),
            (
                "access_denied",
                Some(long.as_str()),
                format!("access_denied: {}...", "x".repeat(200)),
            ),
        ];
        for (code, description, want) in cases {
            let d = description.map(str::to_string);
            assert_eq!(describe_refusal(code, d.as_ref()), want);
        }
    }

    #[test]
    fn provider_habits() {
        let mut c = OAuth2Client {
            provider: Some(OAuthProvider::Microsoft),
            client_id: "id".into(),
            client_secret: None,
            auth_url: "https://a".into(),
            token_url: "https://t".into(),
            device_url: None,
            scopes: vec!["s".into()],
        };
        assert_eq!(c.redirect_host(), "localhost");
        assert!(c.scopes_on_refresh());
        assert!(matches!(c.auth_type(), AuthType::RequestBody));
        c.provider = Some(OAuthProvider::Google);
        assert_eq!(c.redirect_host(), "127.0.0.1");
        assert!(!c.scopes_on_refresh());
        assert!(matches!(c.auth_type(), AuthType::RequestBody));
        c.provider = None;
        assert_eq!(c.redirect_host(), "127.0.0.1");
        assert!(c.scopes_on_refresh());
        assert!(matches!(c.auth_type(), AuthType::BasicAuth));
    }
}
