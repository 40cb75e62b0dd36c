//! Configuration: reads the file (bounded, [`load`]), builds a positioned
//! YAML tree (`yaml`), then reads and validates it (`read`, `validate`) into
//! the typed [`Config`] with compiled rules. First stage of the data flow:
//! config -> rules -> plan -> imap/execute -> state.

pub mod diagnostic;
pub mod oauth;
pub mod provider;
pub mod read;
pub mod units;
pub mod validate;
pub mod yaml;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use diagnostic::{Diagnostic, Pos};
pub use provider::{OAuthProvider, Provider};

use crate::rules::Rule;
use crate::secret::Secret;

/// `$VAR/mailwarden/FILE`, or `~/DEFAULT/mailwarden/FILE` when the
/// variable is unset or empty (XDG Base Directory Specification).
pub fn xdg_path(var: &str, default_under_home: &str, file: &str) -> PathBuf {
    let base = std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(default_under_home)))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("mailwarden").join(file)
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub accounts: Vec<Account>,
    /// In file order.
    pub rules: Vec<Rule>,
    /// What holds but may surprise (`check` shows them; nothing fails).
    pub warnings: Vec<Diagnostic>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// TLS from the first byte (RFC 8314), port 993.
    Implicit,
    /// Plain connection upgraded by STARTTLS (RFC 3501 6.2.1), port 143.
    StartTls,
    /// No encryption: loopback hosts or `allow_plaintext: true` only.
    None,
}

/// Where the password or token comes from; the secret itself is read only
/// when connecting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Command(String),
    Env(String),
    File(PathBuf),
    /// A helper prints an access token.
    OAuth2 {
        token_command: String,
    },
    /// The built-in flow: `mailwarden auth` stores a refresh token, from
    /// which access tokens are had as needed (`crate::oauth`).
    OAuth2Client(Box<OAuth2Client>),
}

/// An OAuth2 client registered with a provider (RFC 6749 2), with the
/// endpoints and scopes it uses: the provider's (`provider::Endpoints`)
/// where the file gives none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuth2Client {
    /// Google or Microsoft, whose habits the flows follow; `None` for
    /// another provider given by its endpoints.
    pub provider: Option<OAuthProvider>,
    pub client_id: String,
    /// Public clients (Microsoft's "Allow public client flows") have none.
    pub client_secret: Option<ClientSecret>,
    pub auth_url: String,
    pub token_url: String,
    /// RFC 8628 device authorization endpoint, where the provider has one
    /// for mail.
    pub device_url: Option<String>,
    pub scopes: Vec<String>,
}

/// Where an OAuth2 client secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientSecret {
    /// Written in the file. Acceptable for an "installed app" (RFC 8252
    /// 8.5): its secret ships with every copy of the program and protects
    /// nothing; Google gives desktop clients one all the same.
    Inline(Secret),
    /// The first line a command prints, as `password_command`.
    Command(String),
}

#[derive(Debug, Clone)]
pub struct Account {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    pub ca_file: Option<PathBuf>,
    pub username: String,
    pub secret: SecretSource,
    /// The `provider:` preset, if any, and the keys it filled in (for
    /// `check`: those the file did not give).
    pub provider: Option<Provider>,
    pub preset_filled: Vec<&'static str>,
    pub allow_plaintext: bool,
    pub create_folders: bool,
    pub watch: Vec<String>,
    pub poll_interval: Duration,
    pub idle: bool,
    pub sweep: Duration,
    /// How often IDLE is ended and begun again (RFC 2177: under 29 min).
    pub idle_renewal: Duration,
    /// How long any answer from the server may take.
    pub timeout: Duration,
    /// The most messages one pass over a mailbox may act on before it
    /// stops and asks (`run --no-limit`); `None`: no limit.
    pub max_actions: Option<usize>,
}

/// The default of `max_actions`: more than a busy day brings, far fewer
/// than a first pass over years of mail would touch.
pub const DEFAULT_MAX_ACTIONS: usize = 500;

impl Config {
    pub fn account(&self, name: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.name == name)
    }

    /// The rules that read `mailbox` of `account`, in file order.
    pub fn rules_for<'a>(
        &'a self,
        account: &'a str,
        mailbox: &'a str,
    ) -> impl Iterator<Item = &'a Rule> + 'a {
        self.rules
            .iter()
            .filter(move |r| r.applies_to(account, mailbox))
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: invalid configuration")]
    Invalid {
        path: String,
        diagnostics: Vec<Diagnostic>,
    },
}

impl LoadError {
    /// Every line to show the user, `FILE:LINE:COL: message`.
    pub fn report(&self) -> String {
        match self {
            LoadError::Io { .. } => self.to_string(),
            LoadError::Invalid { path, diagnostics } => diagnostics
                .iter()
                .map(|d| d.render(path))
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

/// The largest configuration file [`load`] reads: 256 KiB, where real ones
/// are a few kilobytes (the shipped example, twelve rules with comments, is
/// 3.4 KB). The cap keeps a wrong `-c` (a mailbox, a disk image, a device)
/// from being read into memory, and bounds what parsing costs: the YAML
/// scanner holds a whole flow collection (`[a, a, ...]`) in memory, at about
/// 130 bytes a byte, before it yields its first item.
pub const MAX_FILE_BYTES: usize = 256 << 10;

/// Parses and validates configuration text; `base` resolves relative paths.
/// Memory and time grow with the text, so the caller bounds its size as
/// [`load`] does.
pub fn parse_str(text: &str, base: &Path) -> Result<Config, Vec<Diagnostic>> {
    let root = yaml::parse(text)?;
    validate::validate(&root, base)
}

/// For table tests: a configuration with one account `a` and `rules`;
/// panics with every diagnostic when it is invalid.
#[cfg(test)]
pub(crate) fn with_rules(rules: &str) -> Config {
    let text = format!(
        "version: 1\naccounts:\n  a:\n    host: h\n    username: u\n    password_env: P\nrules:\n{rules}"
    );
    parse_str(&text, Path::new(".")).unwrap_or_else(|d| {
        let all: Vec<String> = d.iter().map(|d| d.to_string()).collect();
        panic!("{text}\n{}", all.join("\n"))
    })
}

/// Reads, parses and validates the configuration file at `path`. A file
/// over [`MAX_FILE_BYTES`] is refused after reading one byte more than that.
pub fn load(path: &Path) -> Result<Config, LoadError> {
    let shown = path.display().to_string();
    let io_error = |source| LoadError::Io {
        path: shown.clone(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE_BYTES as u64 + 1).read_to_end(&mut bytes))
        .map_err(io_error)?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(io_error(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!(
                "the file is larger than {} KiB, more than any configuration needs (is it the right file?)",
                MAX_FILE_BYTES >> 10
            ),
        )));
    }
    // A byte order mark is allowed (see `yaml::parse`); it takes no column.
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        bytes.drain(..3);
    }
    let text = String::from_utf8(bytes).map_err(|e| LoadError::Invalid {
        path: shown.clone(),
        diagnostics: vec![Diagnostic::new(
            line_col_of(e.as_bytes(), e.utf8_error().valid_up_to()),
            "the file is not valid UTF-8",
        )],
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse_str(&text, base).map_err(|diagnostics| LoadError::Invalid {
        path: shown,
        diagnostics,
    })
}

/// The position of byte `offset`, which follows valid UTF-8. Columns count
/// characters, as the YAML positions do.
fn line_col_of(bytes: &[u8], offset: usize) -> Pos {
    let before = &bytes[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() as u32 + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let col = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count() as u32
        + 1;
    Pos { line, col }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_of_bytes_count_lines_and_characters() {
        let cases: [(&[u8], usize, (u32, u32)); 5] = [
            (b"", 0, (1, 1)),
            (b"abc", 3, (1, 4)),
            (b"a\nbc", 4, (2, 3)),
            (b"a\n", 2, (2, 1)),
            // Two characters of two bytes each before the offset.
            ("x\n\u{e9}\u{e9}".as_bytes(), 6, (2, 3)),
        ];
        for (bytes, offset, (line, col)) in cases {
            assert_eq!(line_col_of(bytes, offset), Pos { line, col }, "{bytes:?}");
        }
    }
}
