//! The account's `oauth2:` mapping, read for `validate` into a
//! [`SecretSource`]: either `token_command` (a helper prints the access
//! token, as before) or the built-in flow (`provider`, `client_id`, an
//! optional client secret, endpoints and scopes, merged with the provider's
//! by `provider::merge_endpoints`). Every problem is a positioned
//! diagnostic; nothing is fetched or opened here.

use std::net::IpAddr;

use super::diagnostic::{Diagnostic, Diagnostics, Pos, quoted};
use super::provider::{
    DEFAULT_TENANT, GivenEndpoints, OAUTH_PROVIDER_WORDS, OAuthProvider, merge_endpoints,
};
use super::read;
use super::yaml::{Node, Value};
use super::{ClientSecret, OAuth2Client, SecretSource};
use crate::secret::Secret;

const OAUTH2_KEYS: &[&str] = &[
    "token_command",
    "provider",
    "tenant",
    "client_id",
    "client_secret",
    "client_secret_command",
    "auth_url",
    "token_url",
    "device_url",
    "scopes",
];

/// Is `host` (as a URL names it) this machine?
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost") || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// An endpoint: an absolute `https://` URL, or `http://` to this machine
/// only (as `tls: none` is only for loopback): the token endpoint receives
/// the client secret and the refresh token, which must not cross a network
/// unencrypted (RFC 6749 3.1, 3.2: TLS is required).
pub fn check_endpoint(text: &str) -> Result<(), String> {
    let url = oauth2::url::Url::parse(text).map_err(|e| format!("not a URL: {e}"))?;
    let host = url.host_str().unwrap_or("");
    match url.scheme() {
        "https" if !host.is_empty() => Ok(()),
        "http" if is_loopback_host(host) => Ok(()),
        "http" => Err(format!(
            "http:// is only allowed to this machine (127.0.0.1, ::1, localhost), not to {host}; use https://"
        )),
        _ => Err("the URL must start with https://".into()),
    }
}

/// Reads `oauth2:`. `default_provider` is what the account's `provider:`
/// preset implies (Gmail: Google, Outlook: Microsoft).
pub fn read_oauth2(
    node: &Node,
    default_provider: Option<OAuthProvider>,
    d: &mut Diagnostics,
) -> Option<SecretSource> {
    let f = read::fields(node, OAUTH2_KEYS, d)?;
    let text = |key: &str, d: &mut Diagnostics| f.get(key).and_then(|n| read::text(n, d));

    if let Some(command) = f.get("token_command") {
        // A helper gives the token; the flow's keys would be silently unused.
        let mut others: Vec<(&str, Pos)> = OAUTH2_KEYS[1..]
            .iter()
            .filter_map(|k| f.get(k).map(|n| (*k, n.pos)))
            .collect();
        others.sort_by_key(|(_, p)| *p);
        for (key, pos) in others {
            d.push(
                Diagnostic::new(pos, format!("token_command and {key} cannot be combined"))
                    .hint("token_command prints the access token itself; remove it to use the built-in OAuth2 flow"),
            );
        }
        let command = read::text(command, d)?;
        if command.value.trim().is_empty() {
            d.push(Diagnostic::new(command.pos, "the secret source is empty"));
        }
        return Some(SecretSource::OAuth2 {
            token_command: command.value,
        });
    }

    let provider = match f.get("provider") {
        Some(n) => read::word(n, "provider", OAUTH_PROVIDER_WORDS, d),
        None => default_provider,
    };
    let tenant = match (text("tenant", d), provider) {
        (None, _) => DEFAULT_TENANT.to_string(),
        (Some(t), Some(OAuthProvider::Microsoft)) => {
            let ok = !t.value.is_empty()
                && t.value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
            if !ok {
                d.push(
                    Diagnostic::new(t.pos, format!("invalid tenant {}", quoted(&t.value))).hint(
                        "a directory (tenant) id, a domain, common, organizations or consumers",
                    ),
                );
            }
            t.value
        }
        (Some(t), _) => {
            d.push(Diagnostic::new(
                t.pos,
                "tenant applies to provider: microsoft only",
            ));
            DEFAULT_TENANT.to_string()
        }
    };

    let client_id = match f.get("client_id") {
        Some(n) => read::text(n, d),
        None => {
            d.push(
                Diagnostic::new(node.pos, "oauth2 needs client_id (the built-in flow) or token_command (a helper)")
                    .hint("client_id is the id of the app registered with the provider, see docs/setup.md"),
            );
            None
        }
    };
    if let Some(id) = &client_id
        && id.value.trim().is_empty()
    {
        d.push(Diagnostic::new(id.pos, "client_id cannot be empty"));
    }

    let client_secret = match (f.get("client_secret"), f.get("client_secret_command")) {
        (Some(inline), Some(command)) => {
            let later = inline.pos.max(command.pos);
            d.push(
                Diagnostic::new(
                    later,
                    "client_secret and client_secret_command cannot both be given",
                )
                .hint("keep exactly one"),
            );
            None
        }
        (Some(inline), None) => {
            read::text(inline, d).map(|s| ClientSecret::Inline(Secret::new(s.value)))
        }
        (None, Some(command)) => read::text(command, d).map(|c| {
            if c.value.trim().is_empty() {
                d.push(Diagnostic::new(c.pos, "client_secret_command is empty"));
            }
            ClientSecret::Command(c.value)
        }),
        (None, None) => None,
    };

    let url = |key: &str, d: &mut Diagnostics| {
        let t = text(key, d)?;
        match check_endpoint(&t.value) {
            Ok(()) => Some(t.value),
            Err(e) => {
                d.push(Diagnostic::new(t.pos, format!("{key}: {e}")));
                None
            }
        }
    };
    let given = GivenEndpoints {
        auth_url: url("auth_url", d),
        token_url: url("token_url", d),
        device_url: url("device_url", d),
        scopes: f.get("scopes").and_then(|n| scopes(n, d)),
    };
    // A key written but wrong was reported; it is not "missing" too.
    let written = |k: &str| f.get(k).is_some();
    let endpoints = match merge_endpoints(provider, &tenant, given) {
        Ok(e) => Some(e),
        Err(missing) => {
            let missing: Vec<&str> = missing.into_iter().filter(|k| !written(k)).collect();
            // A provider written wrong was reported; what it would have
            // filled is not missing.
            if !missing.is_empty() && !written("provider") {
                d.push(
                    Diagnostic::new(
                        node.pos,
                        format!("oauth2 without a provider needs {}", all_of(&missing)),
                    )
                    .hint("or set provider: google | microsoft"),
                );
            }
            None
        }
    }?;
    Some(SecretSource::OAuth2Client(Box::new(OAuth2Client {
        provider,
        client_id: client_id?.value.trim().to_string(),
        client_secret,
        auth_url: endpoints.auth_url,
        token_url: endpoints.token_url,
        device_url: endpoints.device_url,
        scopes: endpoints.scopes,
    })))
}

/// `a`, `a and b`, `a, b and c`.
fn all_of(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// `scopes:` as a list, or one string of space-separated scopes (as RFC
/// 6749 3.3 writes them).
fn scopes(node: &Node, d: &mut Diagnostics) -> Option<Vec<String>> {
    let items: Vec<(Pos, String)> = match &node.value {
        Value::Seq(items) => items
            .iter()
            .filter_map(|i| read::text(i, d).map(|t| (t.pos, t.value)))
            .collect(),
        _ => {
            let t = read::text(node, d)?;
            t.value
                .split_whitespace()
                .map(|s| (t.pos, s.to_string()))
                .collect()
        }
    };
    let mut out = Vec::new();
    for (pos, scope) in items {
        // RFC 6749 3.3: printable ASCII but space, `"` and `\`.
        if scope.is_empty()
            || !scope
                .bytes()
                .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
        {
            d.push(Diagnostic::new(
                pos,
                format!("invalid scope {}", quoted(&scope)),
            ));
        } else {
            out.push(scope);
        }
    }
    if out.is_empty() {
        d.push(Diagnostic::new(node.pos, "scopes cannot be empty"));
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{Account, SecretSource, Tls, parse_str};

    /// One account whose body is `account` (indented four spaces).
    fn config(account: &str) -> String {
        format!("version: 1\naccounts:\n  a:\n{account}rules: []\n")
    }

    fn errors(account: &str) -> Vec<String> {
        match parse_str(&config(account), Path::new(".")) {
            Ok(_) => vec![],
            Err(d) => d.iter().map(|d| d.render("c.yaml")).collect(),
        }
    }

    fn account(text: &str) -> Account {
        match parse_str(&config(text), Path::new(".")) {
            Ok(c) => c.accounts[0].clone(),
            Err(d) => panic!("{d:?}"),
        }
    }

    #[test]
    fn mistakes_in_oauth2_are_pointed_at() {
        let cases: &[(&str, &[&str])] = &[
            (
                "    provider: gmail\n    username: u\n    oauth2: { client_id: x, token_command: t }\n",
                &[
                    "c.yaml:6:26: token_command and client_id cannot be combined (token_command prints the access token itself; remove it to use the built-in OAuth2 flow)",
                ],
            ),
            (
                "    provider: gmail\n    username: u\n    oauth2: { provider: gogle }\n",
                &[
                    "c.yaml:6:13: oauth2 needs client_id (the built-in flow) or token_command (a helper) (client_id is the id of the app registered with the provider, see docs/setup.md)",
                    "c.yaml:6:25: unknown value \"gogle\" for provider (did you mean \"google\"?)",
                ],
            ),
            (
                "    host: h\n    username: u\n    oauth2: { client_id: x }\n",
                &[
                    "c.yaml:6:13: oauth2 without a provider needs auth_url, token_url and scopes (or set provider: google | microsoft)",
                ],
            ),
            (
                "    host: h\n    username: u\n    oauth2: { client_id: x, auth_url: \"http://auth.example/\", token_url: \"ftp://t\", scopes: [a] }\n",
                &[
                    "c.yaml:6:39: auth_url: http:// is only allowed to this machine (127.0.0.1, ::1, localhost), not to auth.example; use https://",
                    "c.yaml:6:74: token_url: the URL must start with https://",
                ],
            ),
            (
                "    host: h\n    username: u\n    oauth2: { client_id: x, auth_url: \"https://a\", token_url: \"not a url\", scopes: \"\" }\n",
                &[
                    "c.yaml:6:63: token_url: not a URL: relative URL without a base",
                    "c.yaml:6:84: scopes cannot be empty",
                ],
            ),
            (
                "    provider: gmail\n    username: u\n    oauth2: { client_id: x, tenant: contoso }\n",
                &["c.yaml:6:37: tenant applies to provider: microsoft only"],
            ),
            (
                "    provider: outlook\n    username: u\n    oauth2: { client_id: x, tenant: \"a/b\" }\n",
                &[
                    "c.yaml:6:37: invalid tenant \"a/b\" (a directory (tenant) id, a domain, common, organizations or consumers)",
                ],
            ),
            (
                "    provider: gmail\n    username: u\n    oauth2: { client_id: x, client_secret: s, client_secret_command: c }\n",
                &[
                    "c.yaml:6:70: client_secret and client_secret_command cannot both be given (keep exactly one)",
                ],
            ),
            (
                "    provider: gmail\n    username: u\n    oauth2: { client_id: \" \", scopes: [\"a b\"] }\n",
                &[
                    "c.yaml:6:26: client_id cannot be empty",
                    "c.yaml:6:39: scopes cannot be empty",
                    "c.yaml:6:40: invalid scope \"a b\"",
                ],
            ),
            (
                "    provider: gmial\n    username: u\n    password_env: P\n",
                &["c.yaml:4:15: unknown value \"gmial\" for provider (did you mean \"gmail\"?)"],
            ),
            (
                "    username: u\n    password_env: P\n",
                &[
                    "c.yaml:4:5: missing key \"host\" (or set provider: gmail, outlook, fastmail, icloud or yahoo)",
                ],
            ),
            // A device endpoint alone does not need the others.
            (
                "    host: h\n    username: u\n    oauth2: { client_id: x, device_url: \"http://127.0.0.1:9/d\" }\n",
                &[
                    "c.yaml:6:13: oauth2 without a provider needs auth_url, token_url and scopes (or set provider: google | microsoft)",
                ],
            ),
        ];
        for (text, want) in cases {
            assert_eq!(errors(text), *want, "{text}");
        }
    }

    #[test]
    fn a_preset_fills_the_server_and_the_oauth2_endpoints_and_the_file_wins() {
        let a = account(
            "    provider: gmail\n    username: me@gmail.com\n    oauth2: { client_id: id.apps, client_secret: not-so-secret }\n",
        );
        assert_eq!(
            (a.host.as_str(), a.port, a.tls),
            ("imap.gmail.com", 993, Tls::Implicit)
        );
        assert_eq!(a.preset_filled, ["host", "port", "tls", "oauth2 endpoints"]);
        let SecretSource::OAuth2Client(c) = &a.secret else {
            panic!("{:?}", a.secret)
        };
        assert_eq!(c.token_url, "https://oauth2.googleapis.com/token");
        assert_eq!(c.client_id, "id.apps");
        assert!(c.client_secret.is_some());
        assert_eq!(c.device_url, None);

        // Explicit keys win; what is left is still the preset's.
        let a = account(
            "    provider: outlook\n    port: 10993\n    username: me@example.org\n    oauth2: { client_id: id, tenant: contoso.example, token_url: \"http://127.0.0.1:8/token\" }\n",
        );
        assert_eq!((a.host.as_str(), a.port), ("outlook.office365.com", 10993));
        assert_eq!(a.preset_filled, ["host", "tls", "oauth2 endpoints"]);
        let SecretSource::OAuth2Client(c) = &a.secret else {
            panic!()
        };
        assert_eq!(c.token_url, "http://127.0.0.1:8/token");
        assert_eq!(
            c.auth_url,
            "https://login.microsoftonline.com/contoso.example/oauth2/v2.0/authorize"
        );
        assert_eq!(
            c.scopes,
            [
                "https://outlook.office.com/IMAP.AccessAsUser.All",
                "offline_access"
            ]
        );

        // A preset without OAuth2 endpoints, with a password: only the server.
        let a =
            account("    provider: fastmail\n    username: me@fastmail.com\n    password_env: P\n");
        assert_eq!(a.host, "imap.fastmail.com");
        assert_eq!(a.preset_filled, ["host", "port", "tls"]);
        // tls given: the port follows it unless the preset says otherwise;
        // the preset's port is for its TLS.
        let a = account(
            "    provider: yahoo\n    host: 127.0.0.1\n    tls: none\n    username: u\n    password_env: P\n",
        );
        assert_eq!(
            (a.host.as_str(), a.port, a.tls),
            ("127.0.0.1", 143, Tls::None)
        );
        assert_eq!(a.preset_filled, Vec::<&str>::new());

        // oauth2.provider without an account preset; scopes as one string.
        let a = account(
            "    host: 127.0.0.1\n    tls: none\n    username: u\n    oauth2: { provider: microsoft, client_id: id, scopes: \"a b\" }\n",
        );
        let SecretSource::OAuth2Client(c) = &a.secret else {
            panic!()
        };
        assert_eq!(c.scopes, ["a", "b"]);
        assert!(c.device_url.is_some());
        // token_command stays as it was.
        let a = account(
            "    provider: gmail\n    username: u\n    oauth2: { token_command: \"echo t\" }\n",
        );
        assert_eq!(
            a.secret,
            SecretSource::OAuth2 {
                token_command: "echo t".into()
            }
        );
    }

    #[test]
    fn endpoints_are_https_or_loopback_http() {
        let cases = [
            ("https://oauth2.googleapis.com/token", true),
            ("http://127.0.0.1:8080/token", true),
            ("http://127.1.2.3/token", true),
            ("http://[::1]:9/t", true),
            ("http://localhost:9/t", true),
            ("http://10.0.0.1/t", false),
            ("http://example.org/t", false),
            ("https://", false),
            ("file:///etc/passwd", false),
            ("token", false),
        ];
        for (url, ok) in cases {
            assert_eq!(super::check_endpoint(url).is_ok(), ok, "{url}");
        }
    }
}
