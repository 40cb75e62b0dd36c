//! Durable state in one SQLite file: per account and mailbox the
//! UIDVALIDITY and the highest UID evaluated, and a journal of every action
//! (intended before it is sent, done once the server confirms it). The last
//! stage of the data flow; `execute` writes the journal, `watch` the marks.
//! One process per state file, enforced by an OS lock on the file itself;
//! the file, and the folder created for it, are private to their owner
//! (they hold the subjects and addresses of the mail acted on).

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};

use crate::duplicates::{Fingerprint, MEMORY_DAYS};
use crate::imap::types::{Mailbox, Uid, UidValidity};

/// What went wrong with the state file, in terms of what to do about it.
/// Every variant names the file; the command line gives them all an exit
/// code of their own.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "another mailwarden is using {path} (one process per state file): stop it first, or give this one another --state"
    )]
    Locked { path: String },
    #[error(
        "{path} is not a mailwarden state file ({detail}): move it away to start afresh; the journal in it is lost"
    )]
    NotState { path: String, detail: String },
    #[error(
        "cannot write the state file {path} ({detail}): the file and its folder must be writable by this user (SQLite adds files beside it); or give another --state"
    )]
    ReadOnly { path: String, detail: String },
    #[error("cannot read the state file {path} ({detail}): run this as the user who owns it")]
    Unreadable { path: String, detail: String },
    #[error(
        "cannot write the state file {path}: the disk is full ({detail}); make room and run again (what was recorded so far is kept)"
    )]
    DiskFull { path: String, detail: String },
    #[error("state file {path}: {detail}")]
    Other { path: String, detail: String },
}

impl StateError {
    /// An error of SQLite's on the file at `path`.
    fn sqlite(path: &Path, e: rusqlite::Error) -> StateError {
        let path = path.display().to_string();
        let (code, detail) = match &e {
            rusqlite::Error::SqliteFailure(f, None) => (
                Some(f.code),
                rusqlite::ffi::code_to_str(f.extended_code).to_string(),
            ),
            rusqlite::Error::SqliteFailure(f, Some(message)) => (Some(f.code), message.clone()),
            _ => (None, e.to_string()),
        };
        match code {
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
                StateError::NotState { path, detail }
            }
            Some(ErrorCode::ReadOnly | ErrorCode::PermissionDenied | ErrorCode::CannotOpen) => {
                StateError::ReadOnly { path, detail }
            }
            Some(ErrorCode::DiskFull) => StateError::DiskFull { path, detail },
            _ => StateError::Other { path, detail },
        }
    }

    /// An error of the system's on the file at `path` (or its folder).
    fn io(path: &Path, e: &io::Error) -> StateError {
        let path = path.display().to_string();
        let detail = e.to_string();
        match e.kind() {
            io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
                StateError::ReadOnly { path, detail }
            }
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
                StateError::DiskFull { path, detail }
            }
            _ => StateError::Other { path, detail },
        }
    }
}

/// `$XDG_STATE_HOME/mailwarden/state.db`, else `~/.local/state/...`.
pub fn default_path() -> PathBuf {
    crate::config::xdg_path("XDG_STATE_HOME", ".local/state", "state.db")
}

pub use crate::marks::Mark;

/// What the journal records doing to a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Move,
    Copy,
    Flag,
    Unflag,
    Expunge,
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Padded where a table asks for it.
        f.pad(self.as_str())
    }
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Move => "move",
            Action::Copy => "copy",
            Action::Flag => "flag",
            Action::Unflag => "unflag",
            Action::Expunge => "expunge",
        }
    }

    fn parse(text: &str) -> Option<Action> {
        [
            Action::Move,
            Action::Copy,
            Action::Flag,
            Action::Unflag,
            Action::Expunge,
        ]
        .into_iter()
        .find(|a| a.as_str() == text)
    }
}

/// An action about to be sent for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    pub account: String,
    /// The source mailbox, as the server names it.
    pub mailbox: Mailbox,
    pub uid_validity: UidValidity,
    pub uid: Uid,
    pub message_id: Option<String>,
    pub rule: Option<String>,
    pub action: Action,
    /// The destination mailbox (server name), or the flags.
    pub target: Option<String>,
    /// For an action of `mailwarden undo`: the journal row it takes back.
    pub undoes: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Intended,
    /// The server confirmed it for this message.
    Done,
    Failed,
    /// Found unfinished after a crash and not completed: the next pass
    /// decides the message afresh.
    Abandoned,
    /// The message was gone before the action reached it (another client
    /// removed or moved it): nothing was done.
    Gone,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Intended => "intended",
            Status::Done => "done",
            Status::Failed => "failed",
            Status::Abandoned => "abandoned",
            Status::Gone => "gone",
        }
    }

    fn parse(text: &str) -> Option<Status> {
        [
            Status::Intended,
            Status::Done,
            Status::Failed,
            Status::Abandoned,
            Status::Gone,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// How one intent ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub id: i64,
    pub status: Status,
    pub detail: Option<String>,
    /// The message's UIDVALIDITY and UID in the destination, where the
    /// server said (COPYUID, RFC 4315): what `undo` finds it by.
    pub new_uid: Option<(UidValidity, Uid)>,
}

/// One row of the journal, as `mailwarden log` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    pub id: i64,
    pub time: String,
    pub account: String,
    pub mailbox: String,
    pub uid_validity: u32,
    pub uid: u32,
    pub message_id: Option<String>,
    pub rule: Option<String>,
    pub action: Action,
    pub target: Option<String>,
    pub status: Status,
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_uid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_uid_validity: Option<u32>,
    /// For an action of `mailwarden undo`: the row it takes back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub undoes: Option<i64>,
}

/// Shared by the account tasks of `watch`: every method locks the database
/// only for its own statements, never across an await.
pub struct State {
    // Declared before the lock so that it is closed first: closing any
    // descriptor of the file drops every POSIX lock this process holds on
    // it, SQLite's included, so ours must outlive the connection.
    db: std::sync::Mutex<Connection>,
    /// The single-instance lock; none for a read-only view.
    _lock: Option<File>,
    path: PathBuf,
}

/// How long a write waits for another process's transaction on the file.
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Who may use the state file and the folder made for it: its owner only.
const FILE_MODE: u32 = 0o600;
const DIR_MODE: u32 = 0o700;

/// The files SQLite keeps beside the database in WAL mode.
fn companions(path: &Path) -> [PathBuf; 2] {
    ["-wal", "-shm"].map(|suffix| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    })
}

/// Takes group and other permissions away from `file` (at `path`), with a
/// warning: a state file from before they were set, or one copied around.
fn tighten(file: &File, path: &Path) {
    let Ok(meta) = file.metadata() else { return };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return;
    }
    match file.set_permissions(std::fs::Permissions::from_mode(mode & 0o700)) {
        Ok(()) => tracing::warn!(
            "{} was readable by others (mode {mode:o}); it holds the journal of your mail, so it is now {:o}",
            path.display(),
            mode & 0o700
        ),
        Err(e) => tracing::warn!(
            "{} is readable by others (mode {mode:o}) and could not be changed: {e}",
            path.display()
        ),
    }
}

/// `path` as an SQLite URI (`file:` and the path, percent-encoded), to
/// which query parameters can be added.
fn sqlite_uri(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut uri = String::from("file:");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/._-~".contains(&b) {
            uri.push(b as char);
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS marks (
    account TEXT NOT NULL,
    mailbox TEXT NOT NULL,
    uid_validity INTEGER NOT NULL,
    last_uid INTEGER NOT NULL,
    highest_modseq INTEGER,
    PRIMARY KEY (account, mailbox)
);
CREATE TABLE IF NOT EXISTS journal (
    id INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    account TEXT NOT NULL,
    mailbox TEXT NOT NULL,
    uid_validity INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    message_id TEXT,
    rule TEXT,
    action TEXT NOT NULL,
    target TEXT,
    status TEXT NOT NULL,
    detail TEXT,
    new_uid INTEGER,
    new_uid_validity INTEGER,
    undoes INTEGER
);
CREATE INDEX IF NOT EXISTS journal_status ON journal (status, account);
CREATE TABLE IF NOT EXISTS seen_ids (
    account TEXT NOT NULL,
    message_id TEXT NOT NULL,
    size INTEGER NOT NULL,
    arrival INTEGER NOT NULL,
    first_seen INTEGER NOT NULL,
    PRIMARY KEY (account, message_id)
);
CREATE INDEX IF NOT EXISTS journal_time ON journal (time);
CREATE TABLE IF NOT EXISTS account_status (
    account TEXT PRIMARY KEY,
    pid INTEGER NOT NULL,
    state TEXT NOT NULL,
    since TEXT NOT NULL,
    mode TEXT,
    last_pass TEXT,
    last_sweep TEXT,
    last_error TEXT,
    last_error_time TEXT,
    errors_in_row INTEGER NOT NULL,
    reconnects INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS mailbox_status (
    account TEXT NOT NULL,
    mailbox TEXT NOT NULL,
    last_pass TEXT,
    last_sweep TEXT,
    PRIMARY KEY (account, mailbox)
);
";

/// What `watch` last recorded about one account, for `mailwarden status`
/// (written when it changes: a connection made or lost, a pass or sweep
/// completed, an error; never on an IDLE wake-up that changes nothing).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AccountStatus {
    pub account: String,
    /// The `watch` process that wrote it.
    pub pid: u32,
    /// `connecting`, `connected`, `disconnected` (waiting to reconnect),
    /// `refused` (its first pass was over `max_actions`: not watched) or
    /// `stopped` (the process ended).
    pub state: String,
    /// Since when it has been in that state (RFC 3339).
    pub since: String,
    /// How new mail is waited for once connected: `idle` or `poll`.
    pub mode: Option<String>,
    /// The last pass completed over the watched mailboxes or all of them.
    pub last_pass: Option<String>,
    /// The last full pass (at start and every `sweep`).
    pub last_sweep: Option<String>,
    pub last_error: Option<String>,
    pub last_error_time: Option<String>,
    /// Errors since the last completed pass.
    pub errors_in_row: u32,
    /// Connections made again after one was lost, since `watch` started.
    pub reconnects: u32,
}

/// What `watch` last recorded about one mailbox (as the rules name it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MailboxStatus {
    pub account: String,
    pub mailbox: String,
    pub last_pass: Option<String>,
    pub last_sweep: Option<String>,
}

impl State {
    /// Opens (creating if needed) the state file and takes its lock.
    pub fn open(path: &Path) -> Result<State, StateError> {
        let io = |e: io::Error| StateError::io(path, &e);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(dir)
                .map_err(io)?;
        }
        // Created here, private, before SQLite opens it: SQLite gives the
        // -wal and -shm files it adds the mode of the database.
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(FILE_MODE)
            .open(path)
            .map_err(io)?;
        // The lock is on the file itself (its inode), so that no other
        // path to it (a symlink, `..`, a hard link) gets in unlocked. It is
        // a flock lock: on Linux independent of the POSIX (fcntl) locks
        // SQLite takes on the same file, so it neither blocks SQLite here
        // nor `log` reading beside us. (On NFS, Linux turns flock into a
        // POSIX lock; SQLite's WAL mode is not for network filesystems
        // anyway.)
        file.try_lock().map_err(|e| match e {
            std::fs::TryLockError::WouldBlock => StateError::Locked {
                path: path.display().to_string(),
            },
            std::fs::TryLockError::Error(e) => io(e),
        })?;
        tighten(&file, path);
        for companion in companions(path) {
            if let Ok(f) = File::open(&companion) {
                tighten(&f, &companion);
            }
        }
        let sqlite = |e| StateError::sqlite(path, e);
        let db = Connection::open(path).map_err(sqlite)?;
        // `log --prune-before` writes beside a running `watch`: each waits
        // for the other's transaction rather than failing.
        db.busy_timeout(BUSY_WAIT).map_err(sqlite)?;
        // An intent must be on disk before its command is sent.
        db.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
            .map_err(sqlite)?;
        db.execute_batch(SCHEMA).map_err(sqlite)?;
        // Files from before these were recorded gain the columns: marks'
        // mod-sequences, the journal's destination UIDs and undo links.
        for (table, column) in [
            ("marks", "highest_modseq"),
            ("journal", "new_uid"),
            ("journal", "new_uid_validity"),
            ("journal", "undoes"),
        ] {
            let has = db
                .prepare(&format!(
                    "SELECT 1 FROM pragma_table_info('{table}') WHERE name = '{column}'"
                ))
                .and_then(|mut s| s.exists([]))
                .map_err(sqlite)?;
            if !has {
                db.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} INTEGER"))
                    .map_err(sqlite)?;
            }
        }
        Ok(State {
            db: std::sync::Mutex::new(db),
            _lock: Some(file),
            path: path.to_path_buf(),
        })
    }

    /// Opens the state file to read the journal, without the lock, so that
    /// it works while `watch` runs (WAL lets readers in beside the writer),
    /// and without writing anything, so that it works for a user who may
    /// only read the file. `None`: there is no journal yet.
    pub fn open_read_only(path: &Path) -> Result<Option<State>, StateError> {
        match std::fs::metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StateError::io(path, &e)),
            Ok(_) => {}
        }
        // SQLite's own error for an unreadable file is only "unable to
        // open database file".
        if let Err(e) = File::open(path) {
            let detail = e.to_string();
            let path = path.display().to_string();
            return Err(match e.kind() {
                io::ErrorKind::PermissionDenied => StateError::Unreadable { path, detail },
                _ => StateError::Other { path, detail },
            });
        }
        let open = |name: &str| -> rusqlite::Result<Connection> {
            let db = Connection::open_with_flags(
                name,
                OpenFlags::SQLITE_OPEN_READ_ONLY
                    | OpenFlags::SQLITE_OPEN_URI
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            // Opening reads nothing; this does, and fails as reading would.
            db.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))?;
            Ok(db)
        };
        // A reader of a WAL database needs the -shm file beside it, and
        // creates it when no writer has: impossible for a user who may not
        // write the folder (or read the owner's -shm), which SQLite reports
        // as "cannot open" or "read-only". Then the file is read as it is on
        // disk, without the -shm, as SQLite's `immutable` does: what a
        // running writer has not yet copied from its -wal into the file is
        // missed (and a copy made while reading can make the read fail),
        // which for a look at the journal is the lesser evil.
        let db = match open(&sqlite_uri(path)) {
            Ok(db) => db,
            Err(e)
                if !matches!(
                    e.sqlite_error_code(),
                    Some(ErrorCode::CannotOpen | ErrorCode::ReadOnly | ErrorCode::PermissionDenied)
                ) =>
            {
                return Err(StateError::sqlite(path, e));
            }
            Err(e) => open(&format!("{}?immutable=1", sqlite_uri(path)))
                .map_err(|_| StateError::sqlite(path, e))?,
        };
        let has_journal = db
            .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'journal'")
            .and_then(|mut s| s.exists([]))
            .map_err(|e| StateError::sqlite(path, e))?;
        if !has_journal {
            return Ok(None);
        }
        Ok(Some(State {
            db: std::sync::Mutex::new(db),
            _lock: None,
            path: path.to_path_buf(),
        }))
    }

    /// Opens an existing state file to prune its journal, without the
    /// lock, so that it works while `watch` runs: SQLite's own locking
    /// orders the two processes' writes. `None`: there is no journal.
    pub fn open_for_pruning(path: &Path) -> Result<Option<State>, StateError> {
        if State::open_read_only(path)?.is_none() {
            return Ok(None);
        }
        let sqlite = |e| StateError::sqlite(path, e);
        let db = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sqlite)?;
        db.busy_timeout(BUSY_WAIT).map_err(sqlite)?;
        Ok(Some(State {
            db: std::sync::Mutex::new(db),
            _lock: None,
            path: path.to_path_buf(),
        }))
    }

    /// Runs `f` on the database (locked for its duration); an error names
    /// the file and says what to do.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StateError> {
        // A panic while holding the lock leaves SQLite consistent (its own
        // transactions roll back), so a poisoned lock is still usable.
        let mut db = self.db.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut db).map_err(|e| StateError::sqlite(&self.path, e))
    }

    /// The mark of `mailbox` (server name); a row that could not have been
    /// written by mailwarden (UIDVALIDITY 0) is no mark.
    pub fn mark(&self, account: &str, mailbox: &Mailbox) -> Result<Option<Mark>, StateError> {
        self.with(|db| {
            db.query_row(
                "SELECT uid_validity, last_uid, highest_modseq FROM marks WHERE account = ?1 AND mailbox = ?2",
                params![account, mailbox.as_str()],
                |r| {
                    let (validity, last_uid, modseq): (u32, u32, Option<i64>) =
                        (r.get(0)?, r.get(1)?, r.get(2)?);
                    Ok(UidValidity::new(validity).map(|uid_validity| Mark {
                        uid_validity,
                        last_uid,
                        highest_modseq: modseq.map(|m| m as u64),
                    }))
                },
            )
            .optional()
            .map(Option::flatten)
        })
    }

    pub fn set_mark(&self, account: &str, mailbox: &Mailbox, mark: Mark) -> Result<(), StateError> {
        self.with(|db| {
            db.execute(
                "INSERT INTO marks (account, mailbox, uid_validity, last_uid, highest_modseq) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (account, mailbox) DO UPDATE SET uid_validity = ?3, last_uid = ?4, highest_modseq = ?5",
                params![account, mailbox.as_str(), mark.uid_validity.get(), mark.last_uid, mark.highest_modseq.map(|m| m as i64)],
            )
            .map(drop)
        })
    }

    /// The Message-IDs `account` has seen, for `duplicate` conditions. A
    /// state file from before they were recorded (read-only) has none.
    pub fn seen_ids(&self, account: &str) -> Result<HashMap<String, Fingerprint>, StateError> {
        self.with(|db| {
            let has = db
                .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'seen_ids'")?
                .exists([])?;
            if !has {
                return Ok(HashMap::new());
            }
            let mut q =
                db.prepare("SELECT message_id, size, arrival FROM seen_ids WHERE account = ?1")?;
            let rows = q.query_map([account], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    Fingerprint {
                        size: r.get::<_, i64>(1)? as u64,
                        arrival: r.get(2)?,
                    },
                ))
            })?;
            rows.collect()
        })
    }

    /// Records Message-IDs seen for the first time (one transaction), and
    /// forgets those seen first more than [`MEMORY_DAYS`] ago.
    pub fn remember(
        &self,
        account: &str,
        fresh: &[(String, Fingerprint)],
    ) -> Result<(), StateError> {
        if fresh.is_empty() {
            return Ok(());
        }
        let now = Utc::now().timestamp();
        self.with(|db| {
            let tx = db.transaction()?;
            {
                let mut insert = tx.prepare(
                    "INSERT OR IGNORE INTO seen_ids (account, message_id, size, arrival, first_seen)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                for (id, print) in fresh {
                    insert.execute(params![account, id, print.size as i64, print.arrival, now])?;
                }
            }
            tx.execute(
                "DELETE FROM seen_ids WHERE account = ?1 AND first_seen < ?2",
                params![account, now - MEMORY_DAYS * 86_400],
            )?;
            tx.commit()
        })
    }

    /// Records intents (one transaction, synced) and returns their ids.
    pub fn intend(&self, intents: &[Intent]) -> Result<Vec<i64>, StateError> {
        let now = Utc::now().to_rfc3339();
        self.with(|db| {
            let tx = db.transaction()?;
            let mut ids = Vec::with_capacity(intents.len());
            {
                let mut insert = tx.prepare(
                    "INSERT INTO journal (time, account, mailbox, uid_validity, uid, message_id, rule, action, target, status, undoes)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'intended', ?10)",
                )?;
                for i in intents {
                    insert.execute(params![
                        now,
                        i.account,
                        i.mailbox.as_str(),
                        i.uid_validity.get(),
                        i.uid.get(),
                        i.message_id,
                        i.rule,
                        i.action.as_str(),
                        i.target,
                        i.undoes
                    ])?;
                    ids.push(tx.last_insert_rowid());
                }
            }
            tx.commit()?;
            Ok(ids)
        })
    }

    /// Sets the same outcome for intents.
    pub fn finish(
        &self,
        ids: &[i64],
        status: Status,
        detail: Option<&str>,
    ) -> Result<(), StateError> {
        let outcomes: Vec<Outcome> = ids
            .iter()
            .map(|&id| Outcome {
                id,
                status,
                detail: detail.map(str::to_string),
                new_uid: None,
            })
            .collect();
        self.record(&outcomes)
    }

    /// Records how intents ended, each its own way, in one transaction.
    pub fn record(&self, outcomes: &[Outcome]) -> Result<(), StateError> {
        let now = Utc::now().to_rfc3339();
        self.with(|db| {
            let tx = db.transaction()?;
            {
                let mut update = tx.prepare(
                    "UPDATE journal SET status = ?1, detail = ?2, time = ?3, new_uid = ?4, new_uid_validity = ?5 WHERE id = ?6",
                )?;
                for o in outcomes {
                    update.execute(params![
                        o.status.as_str(),
                        o.detail,
                        now,
                        o.new_uid.map(|(_, u)| u.get()),
                        o.new_uid.map(|(v, _)| v.get()),
                        o.id
                    ])?;
                }
            }
            tx.commit()
        })
    }

    fn select(
        &self,
        filter: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<Entry>, StateError> {
        let sql = format!(
            "SELECT id, time, account, mailbox, uid_validity, uid, message_id, rule, action, target, status, detail, new_uid, new_uid_validity, undoes
             FROM journal {filter} ORDER BY id"
        );
        self.with(|db| {
            let mut stmt = db.prepare(&sql)?;
            let rows = stmt.query_map(args, |r| {
                let action: String = r.get(8)?;
                let status: String = r.get(10)?;
                let (Some(action), Some(status)) = (Action::parse(&action), Status::parse(&status))
                else {
                    return Ok(None);
                };
                Ok(Some(Entry {
                    id: r.get(0)?,
                    time: r.get(1)?,
                    account: r.get(2)?,
                    mailbox: r.get(3)?,
                    uid_validity: r.get(4)?,
                    uid: r.get(5)?,
                    message_id: r.get(6)?,
                    rule: r.get(7)?,
                    action,
                    target: r.get(9)?,
                    status,
                    detail: r.get(11)?,
                    new_uid: r.get(12)?,
                    new_uid_validity: r.get(13)?,
                    undoes: r.get(14)?,
                }))
            })?;
            // A row no mailwarden wrote (an action or status it does not
            // know) is left out rather than misread.
            let rows: Vec<Option<Entry>> = rows.collect::<rusqlite::Result<_>>()?;
            Ok(rows.into_iter().flatten().collect())
        })
    }

    /// Intents of `account` that never got an outcome: the process stopped
    /// between recording and confirming them.
    pub fn unfinished(&self, account: &str) -> Result<Vec<Entry>, StateError> {
        self.select("WHERE status = 'intended' AND account = ?1", &[&account])
    }

    /// Every row of `account`, oldest first: what `undo` reads to find
    /// where each message went and what was taken back already.
    pub fn history(&self, account: &str) -> Result<Vec<Entry>, StateError> {
        self.select("WHERE account = ?1", &[&account])
    }

    /// Records what `watch` knows of an account now (the whole row).
    pub fn put_account_status(&self, s: &AccountStatus) -> Result<(), StateError> {
        self.with(|db| {
            db.execute(
                "INSERT OR REPLACE INTO account_status (account, pid, state, since, mode, last_pass, last_sweep, last_error, last_error_time, errors_in_row, reconnects)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![s.account, s.pid, s.state, s.since, s.mode, s.last_pass, s.last_sweep, s.last_error, s.last_error_time, s.errors_in_row, s.reconnects],
            )
            .map(drop)
        })
    }

    /// Records a completed pass over a mailbox (`sweep`: a full one).
    pub fn put_mailbox_pass(
        &self,
        account: &str,
        mailbox: &str,
        time: &str,
        sweep: bool,
    ) -> Result<(), StateError> {
        self.with(|db| {
            db.execute(
                "INSERT INTO mailbox_status (account, mailbox, last_pass, last_sweep) VALUES (?1, ?2, ?3, CASE WHEN ?4 THEN ?3 END)
                 ON CONFLICT (account, mailbox) DO UPDATE SET last_pass = ?3, last_sweep = CASE WHEN ?4 THEN ?3 ELSE last_sweep END",
                params![account, mailbox, time, sweep],
            )
            .map(drop)
        })
    }

    /// Forgets the status of accounts (and their mailboxes) not in `keep`:
    /// accounts taken out of the configuration.
    pub fn forget_status_except(&self, keep: &[&str]) -> Result<(), StateError> {
        let keep = serde_json::to_string(keep).expect("serializable");
        self.with(|db| {
            let tx = db.transaction()?;
            for table in ["account_status", "mailbox_status"] {
                tx.execute(
                    &format!(
                        "DELETE FROM {table} WHERE account NOT IN (SELECT value FROM json_each(?1))"
                    ),
                    [&keep],
                )?;
            }
            tx.commit()
        })
    }

    /// Marks every account of process `pid` stopped at `time`.
    pub fn stop_status(&self, pid: u32, time: &str) -> Result<(), StateError> {
        self.with(|db| {
            db.execute(
                "UPDATE account_status SET state = 'stopped', since = ?2 WHERE pid = ?1",
                params![pid, time],
            )
            .map(drop)
        })
    }

    /// Whether this state file has the status tables (`watch` of a version
    /// that records them has run on it).
    fn has_table(db: &Connection, name: &str) -> rusqlite::Result<bool> {
        db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1")?
            .exists([name])
    }

    /// What `watch` recorded of each account, by name.
    pub fn account_statuses(&self) -> Result<Vec<AccountStatus>, StateError> {
        self.with(|db| {
            if !Self::has_table(db, "account_status")? {
                return Ok(Vec::new());
            }
            let mut stmt = db.prepare(
                "SELECT account, pid, state, since, mode, last_pass, last_sweep, last_error, last_error_time, errors_in_row, reconnects
                 FROM account_status ORDER BY account",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(AccountStatus {
                    account: r.get(0)?,
                    pid: r.get(1)?,
                    state: r.get(2)?,
                    since: r.get(3)?,
                    mode: r.get(4)?,
                    last_pass: r.get(5)?,
                    last_sweep: r.get(6)?,
                    last_error: r.get(7)?,
                    last_error_time: r.get(8)?,
                    errors_in_row: r.get(9)?,
                    reconnects: r.get(10)?,
                })
            })?;
            rows.collect()
        })
    }

    /// What `watch` recorded of each mailbox, by account and name.
    pub fn mailbox_statuses(&self) -> Result<Vec<MailboxStatus>, StateError> {
        self.with(|db| {
            if !Self::has_table(db, "mailbox_status")? {
                return Ok(Vec::new());
            }
            let mut stmt = db.prepare(
                "SELECT account, mailbox, last_pass, last_sweep FROM mailbox_status ORDER BY account, mailbox",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(MailboxStatus {
                    account: r.get(0)?,
                    mailbox: r.get(1)?,
                    last_pass: r.get(2)?,
                    last_sweep: r.get(3)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Per account and source mailbox (the server's name), how many
    /// messages were acted on (an action journaled done) since `since`.
    pub fn acted_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(String, String, i64)>, StateError> {
        self.with(|db| {
            let mut stmt = db.prepare(
                "SELECT account, mailbox, count(DISTINCT uid_validity || ':' || uid) FROM journal
                 WHERE status = 'done' AND time >= ?1 AND undoes IS NULL GROUP BY account, mailbox ORDER BY account, mailbox",
            )?;
            let rows = stmt.query_map([since.to_rfc3339()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect()
        })
    }

    /// The highest journal row id (0 for an empty journal): rows written
    /// after it are read back with [`State::entries_after`].
    pub fn last_entry_id(&self) -> Result<i64, StateError> {
        self.with(|db| db.query_row("SELECT coalesce(max(id), 0) FROM journal", [], |r| r.get(0)))
    }

    /// Journal rows with an id above `id`, oldest first.
    pub fn entries_after(&self, id: i64) -> Result<Vec<Entry>, StateError> {
        self.select("WHERE id > ?1", &[&id])
    }

    /// Deletes journal rows last changed before `before`, except actions
    /// still intended (the next start settles those); returns how many.
    /// `undo` can no longer take back what is deleted.
    pub fn prune_before(&self, before: DateTime<Utc>) -> Result<usize, StateError> {
        self.with(|db| {
            db.execute(
                "DELETE FROM journal WHERE time < ?1 AND status != 'intended'",
                [before.to_rfc3339()],
            )
        })
    }

    /// The journal, oldest first, optionally since a time and for one rule.
    pub fn entries(
        &self,
        since: Option<DateTime<Utc>>,
        rule: Option<&str>,
    ) -> Result<Vec<Entry>, StateError> {
        let since = since.map(|t| t.to_rfc3339()).unwrap_or_default();
        let rule = rule.unwrap_or("");
        self.select(
            "WHERE time >= ?1 AND (?2 = '' OR rule = ?2)",
            &[&since, &rule],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intent(uid: u32) -> Intent {
        Intent {
            account: "a".into(),
            mailbox: Mailbox::inbox(),
            uid_validity: UidValidity::new(7).unwrap(),
            uid: Uid::new(uid).unwrap(),
            message_id: Some(format!("m{uid}@x")),
            rule: Some("r".into()),
            action: Action::Move,
            target: Some("X".into()),
            undoes: None,
        }
    }

    #[test]
    fn marks_intents_and_outcomes_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.db");
        let inbox = Mailbox::inbox();
        {
            let s = State::open(&path).unwrap();
            assert_eq!(s.mark("a", &inbox).unwrap(), None);
            let m = Mark {
                uid_validity: UidValidity::new(7).unwrap(),
                last_uid: 42,
                highest_modseq: Some(1 << 40),
            };
            s.set_mark("a", &inbox, m).unwrap();
            s.set_mark("a", &inbox, Mark { last_uid: 43, ..m }).unwrap();
            let ids = s.intend(&[intent(1), intent(2), intent(3)]).unwrap();
            s.record(&[Outcome {
                id: ids[0],
                status: Status::Done,
                detail: None,
                new_uid: Some((UidValidity::new(3).unwrap(), Uid::new(99).unwrap())),
            }])
            .unwrap();
            s.finish(&ids[1..2], Status::Failed, Some("NO")).unwrap();
        }
        let s = State::open(&path).unwrap();
        let m = s.mark("a", &inbox).unwrap().unwrap();
        assert_eq!((m.last_uid, m.highest_modseq), (43, Some(1 << 40)));
        let open: Vec<u32> = s.unfinished("a").unwrap().iter().map(|e| e.uid).collect();
        assert_eq!(open, [3]);
        assert!(s.unfinished("other").unwrap().is_empty());
        let all = s.entries(None, Some("r")).unwrap();
        assert_eq!(
            all.iter().map(|e| e.status).collect::<Vec<_>>(),
            [Status::Done, Status::Failed, Status::Intended]
        );
        assert_eq!(
            (all[0].new_uid_validity, all[0].new_uid),
            (Some(3), Some(99))
        );
        assert_eq!(all[0].action, Action::Move);
        assert_eq!(all[1].detail.as_deref(), Some("NO"));
        assert!(s.entries(None, Some("other rule")).unwrap().is_empty());
        let later = Utc::now() + chrono::Duration::hours(1);
        assert!(s.entries(Some(later), None).unwrap().is_empty());
    }

    #[test]
    fn message_ids_are_remembered_per_account_once_and_forgotten_after_a_year() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let s = State::open(&path).unwrap();
        let print = |size| Fingerprint { size, arrival: 7 };
        s.remember("a", &[("x@h".into(), print(1)), ("y@h".into(), print(2))])
            .unwrap();
        // The first is kept: a later message with the id is no original.
        s.remember("a", &[("x@h".into(), print(9))]).unwrap();
        s.remember("b", &[("x@h".into(), print(3))]).unwrap();
        let a = s.seen_ids("a").unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a["x@h"], print(1));
        assert_eq!(s.seen_ids("b").unwrap()["x@h"], print(3));
        assert!(s.seen_ids("c").unwrap().is_empty());
        // Seen first 366 days ago: forgotten at the next recording.
        s.with(|db| {
            db.execute(
                "UPDATE seen_ids SET first_seen = first_seen - 366 * 86400 WHERE message_id = 'y@h'",
                [],
            )
        })
        .unwrap();
        s.remember("a", &[("z@h".into(), print(4))]).unwrap();
        let a = s.seen_ids("a").unwrap();
        assert_eq!(
            a.keys()
                .map(String::as_str)
                .collect::<std::collections::BTreeSet<_>>(),
            ["x@h", "z@h"].into()
        );
        // A read-only look (a dry run) sees the same.
        drop(s);
        let ro = State::open_read_only(&path).unwrap().unwrap();
        assert_eq!(ro.seen_ids("a").unwrap().len(), 2);
    }

    #[test]
    fn pruning_deletes_old_entries_but_not_unfinished_ones_and_needs_no_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let s = State::open(&path).unwrap();
        let ids = s.intend(&[intent(1), intent(2), intent(3)]).unwrap();
        s.finish(&ids[..2], Status::Done, None).unwrap();
        // Beside the holder of the lock.
        let pruner = State::open_for_pruning(&path).unwrap().unwrap();
        let past = Utc::now() - chrono::Duration::hours(1);
        assert_eq!(pruner.prune_before(past).unwrap(), 0);
        let later = Utc::now() + chrono::Duration::seconds(1);
        assert_eq!(pruner.prune_before(later).unwrap(), 2);
        let left: Vec<u32> = s
            .entries(None, None)
            .unwrap()
            .iter()
            .map(|e| e.uid)
            .collect();
        assert_eq!(left, [3]);
        // The holder still writes.
        s.finish(&ids[2..], Status::Done, None).unwrap();
        assert!(
            State::open_for_pruning(&dir.path().join("none.db"))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_state_file_from_before_modseq_and_new_uid_tracking_is_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let db = Connection::open(&path).unwrap();
            db.execute_batch(
                "CREATE TABLE marks (account TEXT NOT NULL, mailbox TEXT NOT NULL,
                 uid_validity INTEGER NOT NULL, last_uid INTEGER NOT NULL, PRIMARY KEY (account, mailbox));
                 INSERT INTO marks VALUES ('a', 'INBOX', 9, 77);
                 CREATE TABLE journal (id INTEGER PRIMARY KEY, time TEXT NOT NULL, account TEXT NOT NULL,
                 mailbox TEXT NOT NULL, uid_validity INTEGER NOT NULL, uid INTEGER NOT NULL, message_id TEXT,
                 rule TEXT, action TEXT NOT NULL, target TEXT, status TEXT NOT NULL, detail TEXT);
                 INSERT INTO journal VALUES (1, '2026-01-01T00:00:00+00:00', 'a', 'INBOX', 9, 5, 'm@x', 'r', 'move', 'X', 'done', NULL);
                 INSERT INTO journal VALUES (2, '2026-01-01T00:00:00+00:00', 'a', 'INBOX', 9, 6, 'n@x', 'r', 'teleport', 'X', 'done', NULL);",
            )
            .unwrap();
        }
        let s = State::open(&path).unwrap();
        let want = Mark {
            uid_validity: UidValidity::new(9).unwrap(),
            last_uid: 77,
            highest_modseq: None,
        };
        assert_eq!(s.mark("a", &Mailbox::inbox()).unwrap(), Some(want));
        // Old rows read back without a destination UID; a row no
        // mailwarden wrote is left out.
        let rows = s.entries(None, None).unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(
            (rows[0].uid, rows[0].action, rows[0].new_uid),
            (5, Action::Move, None)
        );
    }

    #[test]
    fn the_lock_is_on_the_file_whatever_the_path_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w/state.db");
        let first = State::open(&path).unwrap();
        first.intend(&[intent(1)]).unwrap();
        let symlink = dir.path().join("l.db");
        std::os::unix::fs::symlink(&path, &symlink).unwrap();
        let hard_link = dir.path().join("h.db");
        std::fs::hard_link(&path, &hard_link).unwrap();
        let dotdot = dir.path().join("w/../w/state.db");
        for other in [&path, &symlink, &hard_link, &dotdot] {
            let err = State::open(other).err().expect("second open must fail");
            assert_eq!(
                err.to_string(),
                format!(
                    "another mailwarden is using {} (one process per state file): stop it first, or give this one another --state",
                    other.display()
                )
            );
        }
        // The lock (flock) does not get in the way of SQLite's own: a
        // reader reads beside the holder, and the holder still writes.
        let reader = State::open_read_only(&symlink).unwrap().unwrap();
        first.intend(&[intent(2)]).unwrap();
        assert_eq!(reader.entries(None, None).unwrap().len(), 2);
        drop(reader);
        drop(first);
        State::open(&symlink).unwrap();
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_state_file_and_the_folder_made_for_it_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new/sub/state.db");
        let s = State::open(&path).unwrap();
        s.intend(&[intent(1)]).unwrap();
        let [wal, shm] = companions(&path);
        let got: Vec<u32> = [
            dir.path().join("new"),
            dir.path().join("new/sub"),
            path.clone(),
            wal,
            shm,
        ]
        .iter()
        .map(|p| mode(p))
        .collect();
        assert_eq!(got, [0o700, 0o700, 0o600, 0o600, 0o600]);
    }

    #[test]
    fn a_state_file_readable_by_others_is_made_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        State::open(&path).unwrap().intend(&[intent(1)]).unwrap();
        let [wal, _] = companions(&path);
        // As an older mailwarden, or a copy, left them.
        std::fs::write(&wal, b"").unwrap();
        for p in [&path, &wal] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let s = State::open(&path).unwrap();
        assert_eq!((mode(&path), mode(&wal)), (0o600, 0o600));
        assert_eq!(s.entries(None, None).unwrap().len(), 1);
    }

    #[test]
    fn a_file_that_is_not_a_state_file_is_named_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        std::fs::write(&path, "not a database\n".repeat(500)).unwrap();
        let want = format!(
            "{} is not a mailwarden state file (file is not a database): move it away to start afresh; the journal in it is lost",
            path.display()
        );
        let err = State::open(&path).err().unwrap();
        assert!(matches!(err, StateError::NotState { .. }));
        assert_eq!(err.to_string(), want);
        let err = State::open_read_only(&path).err().unwrap();
        assert_eq!(err.to_string(), want);
    }

    #[test]
    fn state_errors_say_what_they_are_about() {
        let path = Path::new("/s/state.db");
        let sqlite = |code| {
            StateError::sqlite(
                path,
                rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None),
            )
        };
        assert!(matches!(
            sqlite(rusqlite::ffi::SQLITE_FULL),
            StateError::DiskFull { .. }
        ));
        assert!(matches!(
            sqlite(rusqlite::ffi::SQLITE_READONLY),
            StateError::ReadOnly { .. }
        ));
        assert!(matches!(
            sqlite(rusqlite::ffi::SQLITE_CORRUPT),
            StateError::NotState { .. }
        ));
        assert!(matches!(
            sqlite(rusqlite::ffi::SQLITE_IOERR),
            StateError::Other { .. }
        ));
        let io = |kind| StateError::io(path, &io::Error::from(kind));
        assert!(matches!(
            io(io::ErrorKind::StorageFull),
            StateError::DiskFull { .. }
        ));
        assert!(matches!(
            io(io::ErrorKind::PermissionDenied),
            StateError::ReadOnly { .. }
        ));
        assert_eq!(
            sqlite(rusqlite::ffi::SQLITE_FULL).to_string(),
            "cannot write the state file /s/state.db: the disk is full (database or disk is full); make room and run again (what was recorded so far is kept)"
        );
    }

    #[test]
    fn reading_a_journal_that_is_not_there_finds_nothing_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.db");
        assert!(State::open_read_only(&path).unwrap().is_none());
        assert!(!dir.path().join("sub").exists());
        // A file the first open created, before SQLite wrote anything.
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(&path, b"").unwrap();
        assert!(State::open_read_only(&path).unwrap().is_none());
    }

    #[test]
    fn sqlite_uris_escape_what_is_not_plain() {
        assert_eq!(
            sqlite_uri(Path::new("/a b/s?t#1%.db")),
            "file:/a%20b/s%3Ft%231%25.db"
        );
        assert_eq!(sqlite_uri(Path::new("rel/state.db")), "file:rel/state.db");
    }
}
