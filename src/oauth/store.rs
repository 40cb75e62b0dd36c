//! The refresh tokens `mailwarden auth` obtains: one file per account under
//! `$XDG_STATE_HOME/mailwarden/oauth/` (directory 0700, files 0600), JSON
//! with the token and the client it was issued to. Written whole to a
//! temporary file and renamed over the old one, so that a crash leaves the
//! old token or the new one, never half of either (a provider that rotates
//! refresh tokens has already voided the old one). Read by the token cache
//! (`oauth`) before each refresh, so that a new `mailwarden auth` is picked
//! up by a running `watch`.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::secret::Secret;

/// The default folder of the token files.
pub fn default_dir() -> PathBuf {
    crate::config::xdg_path("XDG_STATE_HOME", ".local/state", "oauth")
}

/// The file name for an account: its name, with every byte other than
/// ASCII letters, digits, `-` and `_` written `%XX`, so that any name (`a/b`,
/// `..`, `.hidden`) stays one file inside the folder, and two names never
/// share one.
pub fn file_name(account: &str) -> String {
    let mut out = String::new();
    for b in account.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out.push_str(".json");
    out
}

/// What is kept for an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub refresh_token: Secret,
    /// The client and token endpoint it was issued for: a refresh token is
    /// bound to its client (RFC 6749 6), so a changed configuration needs a
    /// new `mailwarden auth` rather than a refusal from the provider.
    pub client_id: String,
    pub token_url: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{path}: {detail}")]
pub struct StoreError {
    pub path: String,
    pub detail: String,
}

fn err(path: &Path, detail: impl ToString) -> StoreError {
    StoreError {
        path: path.display().to_string(),
        detail: detail.to_string(),
    }
}

/// The stored token of `account`, `None` when there is none. A file that
/// others can read is refused, as `password_file` is.
pub fn load(dir: &Path, account: &str) -> Result<Option<Stored>, StoreError> {
    let path = dir.join(file_name(account));
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(&path, e)),
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(err(
            &path,
            format!(
                "readable by others (mode {mode:o}); run `chmod 600 {}`",
                path.display()
            ),
        ));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| err(&path, e))?;
    // Never the parser's message: it may quote the file.
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|_| {
        err(
            &path,
            "not a token file (it is not JSON); run `mailwarden auth` again",
        )
    })?;
    let field = |k: &str| value.get(k).and_then(|v| v.as_str()).map(str::to_string);
    match (
        field("refresh_token"),
        field("client_id"),
        field("token_url"),
    ) {
        (Some(token), Some(client_id), Some(token_url)) if !token.is_empty() => Ok(Some(Stored {
            refresh_token: Secret::new(token),
            client_id,
            token_url,
        })),
        _ => Err(err(
            &path,
            "not a token file (a field is missing); run `mailwarden auth` again",
        )),
    }
}

/// Stores `stored` for `account`, replacing what was there atomically.
/// Returns the file's path.
pub fn save(dir: &Path, account: &str, stored: &Stored) -> Result<PathBuf, StoreError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| err(dir, e))?;
    // A folder made earlier with a looser mode (by hand, or by an umask)
    // is ours: tighten it.
    let mode = std::fs::metadata(dir)
        .map_err(|e| err(dir, e))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| err(dir, e))?;
    }
    let path = dir.join(file_name(account));
    let temp = dir.join(format!(
        ".{}.{}.tmp",
        file_name(account),
        std::process::id()
    ));
    let body = serde_json::json!({
        "refresh_token": stored.refresh_token.expose(),
        "client_id": stored.client_id,
        "token_url": stored.token_url,
        "saved": chrono::Utc::now().to_rfc3339(),
    })
    .to_string();
    let written = (|| {
        let _ = std::fs::remove_file(&temp);
        // 0600 from creation: never a moment readable by others.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        f.write_all(body.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&temp, &path)?;
        // The rename itself is durable once the folder is synced.
        std::fs::File::open(dir)?.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(err(&path, e));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_keep_each_account_to_one_file_of_its_own() {
        let cases = [
            ("personal", "personal.json"),
            ("work-2_x", "work-2_x.json"),
            ("a/b", "a%2Fb.json"),
            ("..", "%2E%2E.json"),
            (".hidden", "%2Ehidden.json"),
            ("a.json", "a%2Ejson.json"),
            ("me@example.org", "me%40example%2Eorg.json"),
            ("été", "%C3%A9t%C3%A9.json"),
            ("%2F", "%252F.json"),
        ];
        for (account, want) in cases {
            assert_eq!(file_name(account), want, "{account}");
        }
    }

    fn stored(token: &str) -> Stored {
        Stored {
            refresh_token: Secret::new(token),
            client_id: "id".into(),
            token_url: "https://t".into(),
        }
    }

    #[test]
    fn saved_tokens_are_private_replaced_whole_and_read_back() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("mailwarden/oauth");
        assert_eq!(load(&dir, "a/b").unwrap(), None);
        let path = save(&dir, "a/b", &stored("first")).unwrap();
        assert_eq!(path, dir.join("a%2Fb.json"));
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&path), 0o600);
        assert_eq!(load(&dir, "a/b").unwrap(), Some(stored("first")));
        save(&dir, "a/b", &stored("second")).unwrap();
        assert_eq!(load(&dir, "a/b").unwrap(), Some(stored("second")));
        assert_eq!(mode(&path), 0o600);
        // Nothing but the token file is left behind.
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a%2Fb.json"]);

        // A loose folder is tightened; a loose file is refused.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        save(&dir, "a/b", &stored("third")).unwrap();
        assert_eq!(mode(&dir), 0o700);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load(&dir, "a/b").unwrap_err().to_string();
        assert!(e.contains("readable by others (mode 644)"), "{e}");

        // A damaged file is reported without quoting it.
        std::fs::write(&path, "refresh-token-text {").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = load(&dir, "a/b").unwrap_err().to_string();
        assert!(
            e.ends_with("not a token file (it is not JSON); run `mailwarden auth` again"),
            "{e}"
        );
        assert!(!e.contains("refresh-token-text"), "{e}");
        std::fs::write(&path, "{\"refresh_token\": \"x\"}").unwrap();
        let e = load(&dir, "a/b").unwrap_err().to_string();
        assert!(e.contains("a field is missing"), "{e}");
    }
}
