//! The HTTP client of the OAuth2 requests: reqwest, which the `oauth2`
//! crate drives, on the rustls configuration the IMAP connections use
//! (ring, the system's trust store; `imap::connect::tls_config`), so that
//! the binary carries one TLS stack and trusts one set of roots. Redirects
//! are not followed (a token request that is redirected would carry its
//! secrets elsewhere), and every request has the account's deadline.

use std::time::Duration;

use super::OAuthError;
use crate::config::oauth::is_loopback_host;

/// A client for requests to `urls`. A proxy from the environment
/// (`HTTPS_PROXY`) is used, except for endpoints on this machine.
pub fn client(urls: &[&str], timeout: Duration) -> Result<reqwest::Client, OAuthError> {
    let failed = |detail: String| OAuthError::Endpoint {
        endpoint: "HTTP client for the",
        url: urls.first().copied().unwrap_or("").to_string(),
        detail,
    };
    let tls = crate::imap::connect::tls_config("the OAuth2 endpoints", None)
        .map_err(|e| failed(format!("cannot be set up: {e}")))?;
    let loopback = urls.iter().all(|u| {
        oauth2::url::Url::parse(u)
            .ok()
            .and_then(|u| u.host_str().map(is_loopback_host))
            .unwrap_or(false)
    });
    let mut builder = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout)
        .timeout(timeout)
        .user_agent(concat!("mailwarden/", env!("CARGO_PKG_VERSION")));
    if loopback {
        builder = builder.no_proxy();
    }
    builder
        .build()
        .map_err(|e| failed(format!("cannot be set up: {}", describe(&e))))
}

/// A request failure in a few words, with its causes: reqwest's own text
/// says only "error sending request".
pub fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut timed_out = false;
    let mut parts = Vec::new();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        // The `oauth2` crate wraps reqwest's error in a box.
        let reqwest = c
            .downcast_ref::<reqwest::Error>()
            .or_else(|| c.downcast_ref::<Box<reqwest::Error>>().map(|b| &**b));
        match reqwest {
            Some(r) => {
                timed_out |= r.is_timeout();
                // The URL is said once, by the caller.
                parts.push(strip_url(&r.to_string()));
            }
            // The wrapper's own word adds nothing.
            None if c.to_string() == "client error" => {}
            None => parts.push(c.to_string()),
        }
        cause = c.source();
    }
    if timed_out {
        return "did not answer in time".to_string();
    }
    parts.dedup();
    let text = parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(": ");
    format!("cannot be reached: {text}")
}

/// reqwest's "error sending request for url (URL)" without the URL.
fn strip_url(text: &str) -> String {
    match text.find(" for url (") {
        Some(i) => text[..i].to_string(),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_is_left_to_the_caller() {
        let cases = [
            (
                "error sending request for url (http://127.0.0.1:1/t)",
                "error sending request",
            ),
            ("builder error", "builder error"),
        ];
        for (text, want) in cases {
            assert_eq!(strip_url(text), want);
        }
    }

    #[tokio::test]
    async fn a_refused_connection_is_described_with_its_cause() {
        // A port nothing listens on: bound, then closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/token");
        let c = client(&[&url], Duration::from_secs(5)).unwrap();
        let e = c.get(&url).send().await.unwrap_err();
        let text = describe(&e);
        assert!(
            text.starts_with("cannot be reached: error sending request"),
            "{text}"
        );
        assert!(text.to_lowercase().contains("refused"), "{text}");
        assert!(!text.contains(&url), "{text}");
    }
}
