//! Secrets: a password or OAuth2 token in a type that never shows itself in
//! logs or debug output, read from the account's one secret source just
//! before logging in. Used by `imap::connect`.

use std::fmt;
use std::path::Path;

use crate::config::SecretSource;

/// A secret string. `Debug` and `Display` print `[redacted]`; the value is
/// reachable only through [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A secret as the account's source gives it: a password, or an OAuth2
/// access token.
#[derive(Debug, Clone)]
pub enum Credential {
    Password(Secret),
    OAuth2Token(Secret),
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("password_command `{command}` failed: {detail}")]
    Command { command: String, detail: String },
    #[error("environment variable {0} is not set (password_env)")]
    Env(String),
    #[error("password_file {path}: {detail}")]
    File { path: String, detail: String },
    #[error("the secret from {0} is empty")]
    Empty(&'static str),
}

/// The first line of a command's output; commands like `pass show` print
/// the password first and notes after it.
async fn command_output(command: &str) -> Result<String, SecretError> {
    let err = |detail: String| SecretError::Command {
        command: command.to_string(),
        detail,
    };
    let out = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| err(e.to_string()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(err(format!("{} ({})", out.status, stderr.trim())));
    }
    let text = String::from_utf8(out.stdout).map_err(|_| err("its output is not UTF-8".into()))?;
    Ok(text.lines().next().unwrap_or("").to_string())
}

fn read_file(path: &Path) -> Result<String, SecretError> {
    let err = |detail: String| SecretError::File {
        path: path.display().to_string(),
        detail,
    };
    let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(err(format!(
                "readable by others (mode {mode:o}); run `chmod 600 {}`",
                path.display()
            )));
        }
    }
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    Ok(text.lines().next().unwrap_or("").to_string())
}

/// Reads the secret from its source.
pub async fn resolve(source: &SecretSource) -> Result<Credential, SecretError> {
    let (value, what) = match source {
        SecretSource::Command(c) => (command_output(c).await?, "password_command"),
        SecretSource::Env(name) => (
            std::env::var(name).map_err(|_| SecretError::Env(name.clone()))?,
            "password_env",
        ),
        SecretSource::File(path) => (read_file(path)?, "password_file"),
        SecretSource::OAuth2 { token_command } => {
            let token = command_output(token_command).await?;
            if token.trim().is_empty() {
                return Err(SecretError::Empty("oauth2.token_command"));
            }
            return Ok(Credential::OAuth2Token(Secret::new(token.trim())));
        }
    };
    if value.is_empty() {
        return Err(SecretError::Empty(what));
    }
    Ok(Credential::Password(Secret::new(value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_show_themselves() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "Secret([redacted]) [redacted]");
        let c = Credential::Password(s);
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[tokio::test]
    async fn every_source_is_read_and_a_loose_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-file\nnote\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = resolve(&SecretSource::File(file.clone()))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("readable by others (mode 644); run `chmod 600"),
            "{err}"
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let got = |c: Credential| match c {
            Credential::Password(s) | Credential::OAuth2Token(s) => s.expose().to_string(),
        };
        assert_eq!(
            got(resolve(&SecretSource::File(file)).await.unwrap()),
            "from-file"
        );
        let cmd = SecretSource::Command("printf 'from-cmd\\nsecond line'".into());
        assert_eq!(got(resolve(&cmd).await.unwrap()), "from-cmd");
        let failing = SecretSource::Command("echo nope >&2; exit 3".into());
        let err = resolve(&failing).await.unwrap_err().to_string();
        assert!(
            err.contains("exit status: 3") && err.contains("nope"),
            "{err}"
        );
        let err = resolve(&SecretSource::Env("MAILWARDEN_SURELY_UNSET".into()))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable MAILWARDEN_SURELY_UNSET is not set (password_env)"
        );
        let oauth = SecretSource::OAuth2 {
            token_command: "echo tok".into(),
        };
        assert!(matches!(
            resolve(&oauth).await.unwrap(),
            Credential::OAuth2Token(_)
        ));
    }
}
