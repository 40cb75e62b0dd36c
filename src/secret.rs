//! Secrets: a password or OAuth2 token in a type that never shows itself in
//! logs or debug output, read from the account's one secret source just
//! before logging in. Used by `commands::open_session`, before
//! `imap::connect`. A command source runs as a helper process with a
//! deadline and a cap on its output, and it is killed with everything it
//! started when it overruns either or when its future is dropped.

use std::fmt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

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
    /// `what` is the configuration key (`password_command`,
    /// `oauth2.token_command`), `detail` what happened, as a sentence end.
    #[error("{what} `{command}` {detail}")]
    Command {
        what: &'static str,
        command: String,
        detail: String,
    },
    #[error("environment variable {0} is not set (password_env)")]
    Env(String),
    #[error("password_file {path}: {detail}")]
    File { path: String, detail: String },
    #[error("the secret from {0} is empty")]
    Empty(&'static str),
}

/// The most a secret helper may print on standard output. A password or
/// token is far shorter; more means the command is not what was meant (a
/// `yes`, a `cat` of the wrong file), and reading it all could exhaust
/// memory.
pub const HELPER_OUTPUT_LIMIT: usize = 16 * 1024;

/// How much of a helper's standard error is kept for the error message;
/// the rest is read and dropped so that the helper never blocks on it.
const STDERR_KEPT: usize = 2 * 1024;

/// Kills a helper's process group (SIGKILL) when dropped, unless disarmed
/// once the helper has been waited for. The helper is the leader of its own
/// group, so the group's id is its pid; while the leader is not yet reaped
/// (we only reap it after disarming, or after the kill), that id cannot
/// have been reused by an unrelated group.
struct KillGroupOnDrop(Option<rustix::process::Pid>);

impl KillGroupOnDrop {
    fn new(pid: Option<u32>) -> Self {
        // Never 0 or 1: kill(0) and kill(-1) would reach far more than the
        // helper (our own group, or every process we may signal).
        let pid = pid
            .and_then(|p| i32::try_from(p).ok())
            .filter(|&p| p > 1)
            .and_then(rustix::process::Pid::from_raw);
        KillGroupOnDrop(pid)
    }

    fn kill(&mut self) {
        if let Some(pid) = self.0.take() {
            // ESRCH (everyone already gone) is the only expected failure.
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }

    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for KillGroupOnDrop {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How a helper's run ended, short of success.
enum Stop {
    TooMuchOutput,
    Io(std::io::Error),
}

/// Reads `r` to its end, failing as soon as it gives more than `limit`
/// bytes, so that memory stays bounded whatever the helper does.
async fn read_capped(r: impl AsyncRead + Unpin, limit: usize) -> Result<Vec<u8>, Stop> {
    let mut buf = Vec::new();
    r.take(limit as u64 + 1)
        .read_to_end(&mut buf)
        .await
        .map_err(Stop::Io)?;
    if buf.len() > limit {
        return Err(Stop::TooMuchOutput);
    }
    Ok(buf)
}

/// Reads `r` to its end, keeping the first `keep` bytes.
async fn read_head(mut r: impl AsyncRead + Unpin, keep: usize) -> Result<Vec<u8>, Stop> {
    let mut kept = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = r.read(&mut chunk).await.map_err(Stop::Io)?;
        if n == 0 {
            return Ok(kept);
        }
        let room = keep.saturating_sub(kept.len());
        kept.extend_from_slice(&chunk[..n.min(room)]);
    }
}

/// `60s`, or `300ms` when not whole seconds: the deadline is short, and
/// seconds are what the default (`timeout: 60s`) is written in.
fn show_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// The first line of a command's output; commands like `pass show` print
/// the password first and notes after it. `what` names the configuration
/// key in errors. The command runs with `sh -c`, no standard input, in a
/// process group of its own so that everything it starts (`a | b` has
/// children) can be stopped together: when `deadline` passes, when it
/// prints more than [`HELPER_OUTPUT_LIMIT`], or when this future is dropped
/// (a shutdown). A helper waiting for a terminal (a passphrase prompt) thus
/// fails at the deadline instead of hanging the account for ever.
pub(crate) async fn command_output(
    what: &'static str,
    command: &str,
    deadline: Duration,
) -> Result<String, SecretError> {
    let err = |detail: String| SecretError::Command {
        what,
        command: command.to_string(),
        detail,
    };
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| err(format!("could not be started: {e}")))?;
    let mut group = KillGroupOnDrop::new(child.id());
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let finished = tokio::time::timeout(deadline, async {
        // Both pipes at once: a helper blocked on a full stderr pipe would
        // otherwise never close its stdout.
        let (out, errors) = tokio::try_join!(
            read_capped(stdout, HELPER_OUTPUT_LIMIT),
            read_head(stderr, STDERR_KEPT)
        )?;
        let status: ExitStatus = child.wait().await.map_err(Stop::Io)?;
        Ok::<_, Stop>((out, errors, status))
    })
    .await;
    let stopped = match finished {
        Ok(Ok(done)) => {
            // Reaped: from here on the group id may be reused.
            group.disarm();
            Ok(done)
        }
        Err(_) => Err(format!(
            "did not finish within {}; it was stopped",
            show_duration(deadline)
        )),
        Ok(Err(Stop::TooMuchOutput)) => Err(format!(
            "printed more than {} KiB; it was stopped (only the first line, the secret, is read)",
            HELPER_OUTPUT_LIMIT / 1024
        )),
        Ok(Err(Stop::Io(e))) => Err(format!("could not be read: {e}; it was stopped")),
    };
    let (out, errors, status) = match stopped {
        Ok(done) => done,
        Err(detail) => {
            group.kill();
            // Reap the killed shell now rather than leave a zombie; a
            // process stuck in the kernel must not hold us up, though.
            let _ = tokio::time::timeout(Duration::from_secs(1), child.wait()).await;
            return Err(err(detail));
        }
    };
    if !status.success() {
        let stderr = String::from_utf8_lossy(&errors);
        let said = match stderr.trim() {
            "" => String::new(),
            said => format!(" ({said})"),
        };
        return Err(err(format!("failed: {status}{said}")));
    }
    let text = String::from_utf8(out).map_err(|_| err("printed text that is not UTF-8".into()))?;
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

/// Reads the secret from its source. A command (`password_command`,
/// `oauth2.token_command`) must finish within `deadline` (callers pass the
/// account's `timeout`); the other sources do not wait on anything.
pub async fn resolve(source: &SecretSource, deadline: Duration) -> Result<Credential, SecretError> {
    let (value, what) = match source {
        SecretSource::Command(c) => (
            command_output("password_command", c, deadline).await?,
            "password_command",
        ),
        SecretSource::Env(name) => (
            std::env::var(name).map_err(|_| SecretError::Env(name.clone()))?,
            "password_env",
        ),
        SecretSource::File(path) => (read_file(path)?, "password_file"),
        SecretSource::OAuth2Client(_) => {
            // Its tokens come from `oauth::TokenCache`, which
            // `commands::open_session_with` asks instead.
            return Err(SecretError::Empty(
                "oauth2 (the built-in flow has no static secret)",
            ));
        }
        SecretSource::OAuth2 { token_command } => {
            let token = command_output("oauth2.token_command", token_command, deadline).await?;
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
    use std::time::Instant;

    const DEADLINE: Duration = Duration::from_secs(20);

    #[test]
    fn deadlines_are_shown_in_seconds() {
        assert_eq!(show_duration(Duration::from_secs(60)), "60s");
        assert_eq!(show_duration(Duration::from_millis(1500)), "1500ms");
    }

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
        let err = resolve(&SecretSource::File(file.clone()), DEADLINE)
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
            got(resolve(&SecretSource::File(file), DEADLINE).await.unwrap()),
            "from-file"
        );
        let cmd = SecretSource::Command("printf 'from-cmd\\nsecond line'".into());
        assert_eq!(got(resolve(&cmd, DEADLINE).await.unwrap()), "from-cmd");
        let failing = SecretSource::Command("echo nope >&2; exit 3".into());
        let err = resolve(&failing, DEADLINE).await.unwrap_err().to_string();
        assert_eq!(
            err,
            "password_command `echo nope >&2; exit 3` failed: exit status: 3 (nope)"
        );
        let err = resolve(
            &SecretSource::Env("MAILWARDEN_SURELY_UNSET".into()),
            DEADLINE,
        )
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
            resolve(&oauth, DEADLINE).await.unwrap(),
            Credential::OAuth2Token(_)
        ));
        let oauth = SecretSource::OAuth2 {
            token_command: "exit 1".into(),
        };
        let err = resolve(&oauth, DEADLINE).await.unwrap_err().to_string();
        assert!(
            err.starts_with("oauth2.token_command `exit 1` failed"),
            "{err}"
        );
    }

    /// A helper that waits for ever with two children, as a passphrase
    /// prompt behind a pipe would. It writes its pid to `helper.pid`, and
    /// its children carry `dir` in their environment, so that they can be
    /// found whichever process group they are in.
    struct StuckHelper {
        command: String,
        pid_file: std::path::PathBuf,
        mark: String,
    }

    impl StuckHelper {
        fn new(dir: &Path) -> Self {
            let pid_file = dir.join("helper.pid");
            let mark = format!("MAILWARDEN_HELPER_MARK={}", dir.display());
            let command = format!(
                "export {mark}; echo $$ > '{}'; sleep 3600 | sleep 3600",
                pid_file.display()
            );
            StuckHelper {
                command,
                pid_file,
                mark,
            }
        }

        /// Waits for the helper to have started, and returns its pid.
        async fn started(&self) -> i32 {
            for _ in 0..500 {
                if let Ok(text) = std::fs::read_to_string(&self.pid_file)
                    && let Ok(pid) = text.trim().parse()
                {
                    return pid;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("the helper never wrote {}", self.pid_file.display());
        }

        /// The helper's processes still running (zombies, dead but not
        /// yet reaped by their parent, do not count).
        fn running(&self, shell: i32) -> Vec<i32> {
            let mut live = Vec::new();
            for entry in std::fs::read_dir("/proc").unwrap().flatten() {
                let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                    continue;
                };
                let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                    continue;
                };
                // pid (comm) state ...; comm may hold spaces.
                let zombie = stat
                    .rsplit_once(')')
                    .is_none_or(|(_, rest)| rest.trim_start().starts_with('Z'));
                let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
                let marked = environ
                    .split(|&b| b == 0)
                    .any(|var| var == self.mark.as_bytes());
                if !zombie && (pid == shell || marked) {
                    live.push(pid);
                }
            }
            live
        }

        /// Asserts that nothing of the helper runs any more; a SIGKILL
        /// takes a moment to land.
        async fn assert_gone(&self) {
            let shell = self.started().await;
            for _ in 0..200 {
                if self.running(shell).is_empty() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("still running: {:?}", self.running(shell));
        }
    }

    impl Drop for StuckHelper {
        /// A failing test leaves nothing running either.
        fn drop(&mut self) {
            if let Ok(text) = std::fs::read_to_string(&self.pid_file)
                && let Ok(shell) = text.trim().parse()
            {
                for pid in self.running(shell) {
                    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                    }
                }
            }
        }
    }

    #[tokio::test]
    async fn a_helper_past_its_deadline_is_stopped_with_everything_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let helper = StuckHelper::new(dir.path());
        let command = helper.command.clone();
        let t0 = Instant::now();
        let result = tokio::time::timeout(
            Duration::from_secs(10),
            resolve(
                &SecretSource::Command(command.clone()),
                Duration::from_millis(300),
            ),
        )
        .await
        .expect("the deadline was not kept");
        let elapsed = t0.elapsed();
        let err = result.unwrap_err().to_string();
        assert_eq!(
            err,
            format!("password_command `{command}` did not finish within 300ms; it was stopped")
        );
        assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
        helper.assert_gone().await;
    }

    #[tokio::test]
    async fn a_helper_that_prints_without_end_is_stopped_at_the_cap() {
        let t0 = Instant::now();
        let token = SecretSource::OAuth2 {
            token_command: "yes".into(),
        };
        let err = resolve(&token, DEADLINE).await.unwrap_err().to_string();
        assert_eq!(
            err,
            "oauth2.token_command `yes` printed more than 16 KiB; it was stopped \
             (only the first line, the secret, is read)"
        );
        // Stopped at the cap, not at the deadline.
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
        // Just under the cap is fine, and only the first line counts.
        let big = SecretSource::Command(format!(
            "echo pw; head -c {} /dev/zero | tr '\\0' x",
            HELPER_OUTPUT_LIMIT - 3
        ));
        match resolve(&big, DEADLINE).await.unwrap() {
            Credential::Password(s) => assert_eq!(s.expose(), "pw"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_helper_whose_future_is_dropped_is_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let helper = StuckHelper::new(dir.path());
        let source = SecretSource::Command(helper.command.clone());
        tokio::select! {
            _ = resolve(&source, DEADLINE) => panic!("the helper cannot finish"),
            _ = helper.started() => {}
        };
        // The select dropped the unfinished `resolve` future.
        helper.assert_gone().await;
    }

    #[tokio::test]
    async fn a_helper_is_not_held_up_by_what_it_writes_on_standard_error() {
        // 1 MiB on stderr before the secret: read, mostly dropped.
        let noisy = SecretSource::Command("head -c 1048576 /dev/zero >&2; echo pw".into());
        match resolve(&noisy, DEADLINE).await.unwrap() {
            Credential::Password(s) => assert_eq!(s.expose(), "pw"),
            other => panic!("{other:?}"),
        }
    }
}
