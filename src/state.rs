//! Durable state in one SQLite file: per account and mailbox the
//! UIDVALIDITY and the highest UID evaluated, and a journal of every action
//! (intended before it is sent, done once the server confirms it). The last
//! stage of the data flow; `execute` writes the journal, `watch` the marks.
//! One process per state file, enforced by an OS lock.

use std::fs::File;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use crate::imap::types::{Uid, UidValidity};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("another mailwarden is using {0} (only one process per state file)")]
    Locked(String),
    #[error("state file {path}: {detail}")]
    Io { path: String, detail: String },
    #[error("state database: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// `$XDG_STATE_HOME/mailwarden/state.db`, else `~/.local/state/...`.
pub fn default_path() -> PathBuf {
    crate::config::xdg_path("XDG_STATE_HOME", ".local/state", "state.db")
}

/// Where evaluation of a mailbox stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub uid_validity: UidValidity,
    /// Every message with a UID up to this one has been evaluated.
    pub last_uid: u32,
    /// With CONDSTORE: changes up to this mod-sequence have been seen.
    pub highest_modseq: Option<u64>,
}

/// An action about to be sent for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    pub account: String,
    pub mailbox: String,
    pub uid_validity: UidValidity,
    pub uid: Uid,
    pub message_id: Option<String>,
    pub rule: Option<String>,
    /// `move`, `copy`, `flag`, `unflag` or `expunge`.
    pub action: String,
    /// The destination folder (server name), or the flags.
    pub target: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Intended,
    Done,
    Failed,
    /// Found unfinished after a crash and not completed: the next pass
    /// decides the message afresh.
    Abandoned,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Intended => "intended",
            Status::Done => "done",
            Status::Failed => "failed",
            Status::Abandoned => "abandoned",
        }
    }
}

/// One row of the journal.
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
    pub action: String,
    pub target: Option<String>,
    pub status: String,
    pub detail: Option<String>,
}

/// Shared by the account tasks of `watch`: every method locks the database
/// only for its own statements, never across an await.
pub struct State {
    db: std::sync::Mutex<Connection>,
    /// The single-instance lock; none for a read-only view.
    _lock: Option<File>,
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
    detail TEXT
);
CREATE INDEX IF NOT EXISTS journal_status ON journal (status, account);
";

impl State {
    /// Opens (creating if needed) the state file and takes its lock.
    pub fn open(path: &Path) -> Result<State, StateError> {
        let io = |e: std::io::Error| StateError::Io {
            path: path.display().to_string(),
            detail: e.to_string(),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let lock_path = path.with_extension("lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io)?;
        lock.try_lock().map_err(|e| match e {
            std::fs::TryLockError::WouldBlock => StateError::Locked(path.display().to_string()),
            std::fs::TryLockError::Error(e) => io(e),
        })?;
        let db = Connection::open(path)?;
        // An intent must be on disk before its command is sent.
        db.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")?;
        db.execute_batch(SCHEMA)?;
        // Files from before mod-sequences were tracked gain the column.
        let has_modseq = db
            .prepare("SELECT 1 FROM pragma_table_info('marks') WHERE name = 'highest_modseq'")?
            .exists([])?;
        if !has_modseq {
            db.execute_batch("ALTER TABLE marks ADD COLUMN highest_modseq INTEGER")?;
        }
        Ok(State {
            db: std::sync::Mutex::new(db),
            _lock: Some(lock),
        })
    }

    /// Opens the state file to read the journal, without the lock, so that
    /// it works while `watch` runs (WAL lets readers in beside the writer).
    pub fn open_read_only(path: &Path) -> Result<State, StateError> {
        if !path.exists() {
            return Err(StateError::Io {
                path: path.display().to_string(),
                detail: "no state file yet (nothing has been run)".into(),
            });
        }
        let db = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        Ok(State {
            db: std::sync::Mutex::new(db),
            _lock: None,
        })
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (its own
        // transactions roll back), so a poisoned lock is still usable.
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn mark(&self, account: &str, mailbox: &str) -> Result<Option<Mark>, StateError> {
        Ok(self
            .db()
            .query_row(
                "SELECT uid_validity, last_uid, highest_modseq FROM marks WHERE account = ?1 AND mailbox = ?2",
                params![account, mailbox],
                |r| {
                    Ok(Mark {
                        uid_validity: UidValidity(r.get(0)?),
                        last_uid: r.get(1)?,
                        highest_modseq: r.get::<_, Option<i64>>(2)?.map(|m| m as u64),
                    })
                },
            )
            .optional()?)
    }

    pub fn set_mark(&self, account: &str, mailbox: &str, mark: Mark) -> Result<(), StateError> {
        self.db().execute(
            "INSERT INTO marks (account, mailbox, uid_validity, last_uid, highest_modseq) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (account, mailbox) DO UPDATE SET uid_validity = ?3, last_uid = ?4, highest_modseq = ?5",
            params![account, mailbox, mark.uid_validity.0, mark.last_uid, mark.highest_modseq.map(|m| m as i64)],
        )?;
        Ok(())
    }

    /// Records intents (one transaction, synced) and returns their ids.
    pub fn intend(&self, intents: &[Intent]) -> Result<Vec<i64>, StateError> {
        let now = Utc::now().to_rfc3339();
        let mut db = self.db();
        let tx = db.transaction()?;
        let mut ids = Vec::with_capacity(intents.len());
        {
            let mut insert = tx.prepare(
                "INSERT INTO journal (time, account, mailbox, uid_validity, uid, message_id, rule, action, target, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'intended')",
            )?;
            for i in intents {
                insert.execute(params![
                    now,
                    i.account,
                    i.mailbox,
                    i.uid_validity.0,
                    i.uid.0,
                    i.message_id,
                    i.rule,
                    i.action,
                    i.target
                ])?;
                ids.push(tx.last_insert_rowid());
            }
        }
        tx.commit()?;
        Ok(ids)
    }

    /// Sets the outcome of intents.
    pub fn finish(
        &self,
        ids: &[i64],
        status: Status,
        detail: Option<&str>,
    ) -> Result<(), StateError> {
        let now = Utc::now().to_rfc3339();
        let mut db = self.db();
        let tx = db.transaction()?;
        {
            let mut update =
                tx.prepare("UPDATE journal SET status = ?1, detail = ?2, time = ?3 WHERE id = ?4")?;
            for id in ids {
                update.execute(params![status.as_str(), detail, now, id])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn select(
        &self,
        filter: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<Entry>, StateError> {
        let sql = format!(
            "SELECT id, time, account, mailbox, uid_validity, uid, message_id, rule, action, target, status, detail
             FROM journal {filter} ORDER BY id"
        );
        let db = self.db();
        let mut stmt = db.prepare(&sql)?;
        let rows = stmt.query_map(args, |r| {
            Ok(Entry {
                id: r.get(0)?,
                time: r.get(1)?,
                account: r.get(2)?,
                mailbox: r.get(3)?,
                uid_validity: r.get(4)?,
                uid: r.get(5)?,
                message_id: r.get(6)?,
                rule: r.get(7)?,
                action: r.get(8)?,
                target: r.get(9)?,
                status: r.get(10)?,
                detail: r.get(11)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Intents of `account` that never got an outcome: the process stopped
    /// between recording and confirming them.
    pub fn unfinished(&self, account: &str) -> Result<Vec<Entry>, StateError> {
        self.select("WHERE status = 'intended' AND account = ?1", &[&account])
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
            mailbox: "INBOX".into(),
            uid_validity: UidValidity(7),
            uid: Uid(uid),
            message_id: Some(format!("m{uid}@x")),
            rule: Some("r".into()),
            action: "move".into(),
            target: Some("X".into()),
        }
    }

    #[test]
    fn marks_intents_and_outcomes_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.db");
        {
            let s = State::open(&path).unwrap();
            assert_eq!(s.mark("a", "INBOX").unwrap(), None);
            let m = Mark {
                uid_validity: UidValidity(7),
                last_uid: 42,
                highest_modseq: Some(1 << 40),
            };
            s.set_mark("a", "INBOX", m).unwrap();
            s.set_mark("a", "INBOX", Mark { last_uid: 43, ..m })
                .unwrap();
            let ids = s.intend(&[intent(1), intent(2), intent(3)]).unwrap();
            s.finish(&ids[..1], Status::Done, None).unwrap();
            s.finish(&ids[1..2], Status::Failed, Some("NO")).unwrap();
        }
        let s = State::open(&path).unwrap();
        let m = s.mark("a", "INBOX").unwrap().unwrap();
        assert_eq!((m.last_uid, m.highest_modseq), (43, Some(1 << 40)));
        let open: Vec<u32> = s.unfinished("a").unwrap().iter().map(|e| e.uid).collect();
        assert_eq!(open, [3]);
        assert!(s.unfinished("other").unwrap().is_empty());
        let all = s.entries(None, Some("r")).unwrap();
        assert_eq!(
            all.iter().map(|e| e.status.as_str()).collect::<Vec<_>>(),
            ["done", "failed", "intended"]
        );
        assert_eq!(all[1].detail.as_deref(), Some("NO"));
        assert!(s.entries(None, Some("other rule")).unwrap().is_empty());
        let later = Utc::now() + chrono::Duration::hours(1);
        assert!(s.entries(Some(later), None).unwrap().is_empty());
    }

    #[test]
    fn a_state_file_from_before_modseq_tracking_is_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let db = Connection::open(&path).unwrap();
            db.execute_batch(
                "CREATE TABLE marks (account TEXT NOT NULL, mailbox TEXT NOT NULL,
                 uid_validity INTEGER NOT NULL, last_uid INTEGER NOT NULL, PRIMARY KEY (account, mailbox));
                 INSERT INTO marks VALUES ('a', 'INBOX', 9, 77);",
            )
            .unwrap();
        }
        let s = State::open(&path).unwrap();
        let want = Mark {
            uid_validity: UidValidity(9),
            last_uid: 77,
            highest_modseq: None,
        };
        assert_eq!(s.mark("a", "INBOX").unwrap(), Some(want));
    }

    #[test]
    fn a_second_process_on_the_same_state_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let first = State::open(&path).unwrap();
        let err = State::open(&path)
            .err()
            .expect("second open must fail")
            .to_string();
        assert!(err.contains("another mailwarden is using"), "{err}");
        drop(first);
        State::open(&path).unwrap();
    }
}
