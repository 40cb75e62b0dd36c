//! Durable state in one SQLite file: per account and mailbox the
//! UIDVALIDITY and the highest UID evaluated, and a journal of every action
//! (intended before it is sent, done once the server confirms it). The last
//! stage of the data flow; `execute` writes the journal, `watch` the marks.
//! One process per state file, enforced by an OS lock.

use std::fs::File;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use crate::imap::types::{Mailbox, Uid, UidValidity};

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
    /// The message's UID in the destination, where the server said
    /// (COPYUID, RFC 4315).
    pub new_uid: Option<Uid>,
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
    detail TEXT,
    new_uid INTEGER
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
        // Journals from before destination UIDs were recorded gain them.
        let has_new_uid = db
            .prepare("SELECT 1 FROM pragma_table_info('journal') WHERE name = 'new_uid'")?
            .exists([])?;
        if !has_new_uid {
            db.execute_batch("ALTER TABLE journal ADD COLUMN new_uid INTEGER")?;
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

    /// The mark of `mailbox` (server name); a row that could not have been
    /// written by mailwarden (UIDVALIDITY 0) is no mark.
    pub fn mark(&self, account: &str, mailbox: &Mailbox) -> Result<Option<Mark>, StateError> {
        Ok(self
            .db()
            .query_row(
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
            .optional()?
            .flatten())
    }

    pub fn set_mark(&self, account: &str, mailbox: &Mailbox, mark: Mark) -> Result<(), StateError> {
        self.db().execute(
            "INSERT INTO marks (account, mailbox, uid_validity, last_uid, highest_modseq) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (account, mailbox) DO UPDATE SET uid_validity = ?3, last_uid = ?4, highest_modseq = ?5",
            params![account, mailbox.as_str(), mark.uid_validity.get(), mark.last_uid, mark.highest_modseq.map(|m| m as i64)],
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
                    i.mailbox.as_str(),
                    i.uid_validity.get(),
                    i.uid.get(),
                    i.message_id,
                    i.rule,
                    i.action.as_str(),
                    i.target
                ])?;
                ids.push(tx.last_insert_rowid());
            }
        }
        tx.commit()?;
        Ok(ids)
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
        let mut db = self.db();
        let tx = db.transaction()?;
        {
            let mut update = tx.prepare(
                "UPDATE journal SET status = ?1, detail = ?2, time = ?3, new_uid = ?4 WHERE id = ?5",
            )?;
            for o in outcomes {
                update.execute(params![
                    o.status.as_str(),
                    o.detail,
                    now,
                    o.new_uid.map(Uid::get),
                    o.id
                ])?;
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
            "SELECT id, time, account, mailbox, uid_validity, uid, message_id, rule, action, target, status, detail, new_uid
             FROM journal {filter} ORDER BY id"
        );
        let db = self.db();
        let mut stmt = db.prepare(&sql)?;
        let rows = stmt.query_map(args, |r| {
            let action: String = r.get(8)?;
            let status: String = r.get(10)?;
            Ok(Action::parse(&action)
                .zip(Status::parse(&status))
                .map(|(action, status)| Entry {
                    id: r.get(0).unwrap_or_default(),
                    time: r.get(1).unwrap_or_default(),
                    account: r.get(2).unwrap_or_default(),
                    mailbox: r.get(3).unwrap_or_default(),
                    uid_validity: r.get(4).unwrap_or_default(),
                    uid: r.get(5).unwrap_or_default(),
                    message_id: r.get(6).unwrap_or_default(),
                    rule: r.get(7).unwrap_or_default(),
                    action,
                    target: r.get(9).unwrap_or_default(),
                    status,
                    detail: r.get(11).unwrap_or_default(),
                    new_uid: r.get(12).unwrap_or_default(),
                }))
        })?;
        // A row no mailwarden wrote (an action or status it does not
        // know) is not shown rather than misread.
        Ok(rows
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect())
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
            mailbox: Mailbox::inbox(),
            uid_validity: UidValidity::new(7).unwrap(),
            uid: Uid::new(uid).unwrap(),
            message_id: Some(format!("m{uid}@x")),
            rule: Some("r".into()),
            action: Action::Move,
            target: Some("X".into()),
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
                new_uid: Uid::new(99),
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
        assert_eq!(all[0].new_uid, Some(99));
        assert_eq!(all[0].action, Action::Move);
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
            uid_validity: UidValidity::new(9).unwrap(),
            last_uid: 77,
            highest_modseq: None,
        };
        assert_eq!(s.mark("a", &Mailbox::inbox()).unwrap(), Some(want));
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
