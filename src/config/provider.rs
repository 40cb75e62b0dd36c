//! Provider presets, pure data and merging for `validate`: the account key
//! `provider: gmail | outlook | fastmail | icloud | yahoo` fills host, port
//! and TLS, and for Gmail and Outlook the OAuth2 endpoints and scopes of
//! `oauth2.provider: google | microsoft`. Whatever the file says itself wins
//! over the preset. No IO.

use super::Tls;

/// A mail provider whose IMAP settings are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Gmail,
    Outlook,
    Fastmail,
    Icloud,
    Yahoo,
}

pub const PROVIDER_WORDS: &[(&str, Provider)] = &[
    ("gmail", Provider::Gmail),
    ("outlook", Provider::Outlook),
    ("fastmail", Provider::Fastmail),
    ("icloud", Provider::Icloud),
    ("yahoo", Provider::Yahoo),
];

/// What a [`Provider`] fills in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    pub host: &'static str,
    pub port: u16,
    pub tls: Tls,
    /// The identity provider whose OAuth2 endpoints `oauth2:` defaults to.
    pub oauth: Option<OAuthProvider>,
}

impl Provider {
    pub fn name(self) -> &'static str {
        PROVIDER_WORDS
            .iter()
            .find(|(_, p)| *p == self)
            .map_or("?", |(w, _)| w)
    }

    /// Every one of them takes implicit TLS on 993 (RFC 8314).
    pub fn preset(self) -> Preset {
        let (host, oauth) = match self {
            Provider::Gmail => ("imap.gmail.com", Some(OAuthProvider::Google)),
            // Microsoft 365 and Outlook.com alike.
            Provider::Outlook => ("outlook.office365.com", Some(OAuthProvider::Microsoft)),
            Provider::Fastmail => ("imap.fastmail.com", None),
            Provider::Icloud => ("imap.mail.me.com", None),
            Provider::Yahoo => ("imap.mail.yahoo.com", None),
        };
        Preset {
            host,
            port: 993,
            tls: Tls::Implicit,
            oauth,
        }
    }
}

/// An identity provider whose OAuth2 endpoints are built in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthProvider {
    Google,
    Microsoft,
}

pub const OAUTH_PROVIDER_WORDS: &[(&str, OAuthProvider)] = &[
    ("google", OAuthProvider::Google),
    ("microsoft", OAuthProvider::Microsoft),
];

/// The Microsoft tenant when none is given: work, school and personal
/// accounts alike.
pub const DEFAULT_TENANT: &str = "common";

/// Where the flows of RFC 6749 and RFC 8628 go, and what they ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub auth_url: String,
    pub token_url: String,
    pub device_url: Option<String>,
    pub scopes: Vec<String>,
}

impl OAuthProvider {
    pub fn name(self) -> &'static str {
        match self {
            OAuthProvider::Google => "google",
            OAuthProvider::Microsoft => "microsoft",
        }
    }

    /// The provider's endpoints for IMAP. Google offers a device flow, but
    /// not for the mail scope, so it has none here; Microsoft's `tenant` is
    /// a directory id or domain, `common`, `organizations` or `consumers`.
    pub fn endpoints(self, tenant: &str) -> Endpoints {
        match self {
            OAuthProvider::Google => Endpoints {
                auth_url: "https://accounts.google.com/o/oauth2/v2/auth".into(),
                token_url: "https://oauth2.googleapis.com/token".into(),
                device_url: None,
                scopes: vec!["https://mail.google.com/".into()],
            },
            OAuthProvider::Microsoft => {
                let base = format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0");
                Endpoints {
                    auth_url: format!("{base}/authorize"),
                    token_url: format!("{base}/token"),
                    device_url: Some(format!("{base}/devicecode")),
                    // offline_access: without it no refresh token is issued.
                    scopes: vec![
                        "https://outlook.office.com/IMAP.AccessAsUser.All".into(),
                        "offline_access".into(),
                    ],
                }
            }
        }
    }
}

/// The endpoints the file gives itself, each optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GivenEndpoints {
    pub auth_url: Option<String>,
    pub token_url: Option<String>,
    pub device_url: Option<String>,
    pub scopes: Option<Vec<String>>,
}

/// The provider's endpoints overridden by those given; `Err` names the keys
/// still missing when there is no provider to fill them.
pub fn merge_endpoints(
    provider: Option<OAuthProvider>,
    tenant: &str,
    given: GivenEndpoints,
) -> Result<Endpoints, Vec<&'static str>> {
    let base = provider.map(|p| p.endpoints(tenant));
    let base = base.as_ref();
    let auth_url = given.auth_url.or_else(|| base.map(|b| b.auth_url.clone()));
    let token_url = given
        .token_url
        .or_else(|| base.map(|b| b.token_url.clone()));
    let scopes = given.scopes.or_else(|| base.map(|b| b.scopes.clone()));
    let device_url = given
        .device_url
        .or_else(|| base.and_then(|b| b.device_url.clone()));
    match (auth_url, token_url, scopes) {
        (Some(auth_url), Some(token_url), Some(scopes)) => Ok(Endpoints {
            auth_url,
            token_url,
            device_url,
            scopes,
        }),
        (a, t, s) => Err([
            ("auth_url", a.is_none()),
            ("token_url", t.is_none()),
            ("scopes", s.is_none()),
        ]
        .into_iter()
        .filter(|(_, missing)| *missing)
        .map(|(k, _)| k)
        .collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_name_the_real_servers() {
        let cases = [
            (
                Provider::Gmail,
                "imap.gmail.com",
                Some(OAuthProvider::Google),
            ),
            (
                Provider::Outlook,
                "outlook.office365.com",
                Some(OAuthProvider::Microsoft),
            ),
            (Provider::Fastmail, "imap.fastmail.com", None),
            (Provider::Icloud, "imap.mail.me.com", None),
            (Provider::Yahoo, "imap.mail.yahoo.com", None),
        ];
        for (p, host, oauth) in cases {
            let preset = p.preset();
            assert_eq!(
                (preset.host, preset.port, preset.tls),
                (host, 993, Tls::Implicit)
            );
            assert_eq!(preset.oauth, oauth, "{p:?}");
            // Each word reads back as its provider.
            assert_eq!(
                PROVIDER_WORDS
                    .iter()
                    .find(|(w, _)| *w == p.name())
                    .unwrap()
                    .1,
                p
            );
        }
    }

    #[test]
    fn endpoints_of_each_identity_provider() {
        let g = OAuthProvider::Google.endpoints(DEFAULT_TENANT);
        assert_eq!(g.auth_url, "https://accounts.google.com/o/oauth2/v2/auth");
        assert_eq!(g.token_url, "https://oauth2.googleapis.com/token");
        assert_eq!(g.device_url, None);
        assert_eq!(g.scopes, ["https://mail.google.com/"]);
        let m = OAuthProvider::Microsoft.endpoints("contoso.onmicrosoft.com");
        assert_eq!(
            m.auth_url,
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize"
        );
        assert_eq!(
            m.token_url,
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert_eq!(
            m.device_url.as_deref(),
            Some(
                "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/devicecode"
            )
        );
        assert_eq!(
            m.scopes,
            [
                "https://outlook.office.com/IMAP.AccessAsUser.All",
                "offline_access"
            ]
        );
        assert!(
            OAuthProvider::Microsoft
                .endpoints(DEFAULT_TENANT)
                .token_url
                .contains("/common/")
        );
    }

    /// Endpoints as strings, or the keys missing.
    type Merged = Result<
        (
            &'static str,
            &'static str,
            Option<&'static str>,
            Vec<&'static str>,
        ),
        Vec<&'static str>,
    >;

    #[test]
    fn given_endpoints_override_the_provider_and_fill_what_it_lacks() {
        let url = |s: &str| Some(s.to_string());
        let given =
            |a: Option<String>, t: Option<String>, d: Option<String>, s: Option<Vec<String>>| {
                GivenEndpoints {
                    auth_url: a,
                    token_url: t,
                    device_url: d,
                    scopes: s,
                }
            };
        let scopes = Some(vec!["mail".to_string()]);
        let cases: Vec<(Option<OAuthProvider>, GivenEndpoints, Merged)> = vec![
            // Nothing given: the provider's.
            (
                Some(OAuthProvider::Google),
                GivenEndpoints::default(),
                Ok((
                    "https://accounts.google.com/o/oauth2/v2/auth",
                    "https://oauth2.googleapis.com/token",
                    None,
                    vec!["https://mail.google.com/"],
                )),
            ),
            // One given: that one replaced, the rest kept.
            (
                Some(OAuthProvider::Microsoft),
                given(None, url("http://127.0.0.1:1/token"), None, None),
                Ok((
                    "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
                    "http://127.0.0.1:1/token",
                    Some("https://login.microsoftonline.com/common/oauth2/v2.0/devicecode"),
                    vec![
                        "https://outlook.office.com/IMAP.AccessAsUser.All",
                        "offline_access",
                    ],
                )),
            ),
            // A device endpoint added to Google's.
            (
                Some(OAuthProvider::Google),
                given(None, None, url("https://d"), scopes.clone()),
                Ok((
                    "https://accounts.google.com/o/oauth2/v2/auth",
                    "https://oauth2.googleapis.com/token",
                    Some("https://d"),
                    vec!["mail"],
                )),
            ),
            // No provider: everything but the device endpoint is needed.
            (
                None,
                given(url("https://a"), url("https://t"), None, scopes.clone()),
                Ok(("https://a", "https://t", None, vec!["mail"])),
            ),
            (
                None,
                GivenEndpoints::default(),
                Err(vec!["auth_url", "token_url", "scopes"]),
            ),
            (
                None,
                given(url("https://a"), None, url("https://d"), None),
                Err(vec!["token_url", "scopes"]),
            ),
        ];
        for (provider, given, want) in cases {
            let got = merge_endpoints(provider, DEFAULT_TENANT, given.clone());
            let got = got.as_ref().map(|e| {
                (
                    e.auth_url.as_str(),
                    e.token_url.as_str(),
                    e.device_url.as_deref(),
                    e.scopes.iter().map(String::as_str).collect::<Vec<_>>(),
                )
            });
            let want = want.as_ref().map(|(a, t, d, s)| (*a, *t, *d, s.clone()));
            assert_eq!(
                got.map_err(Clone::clone),
                want.map_err(|e| e.clone()),
                "{provider:?} {given:?}"
            );
        }
    }
}
