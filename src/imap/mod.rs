//! The IMAP side: typed values and encodings (`types`), connecting and
//! logging in (`connect`), a session whose every command checks its
//! tagged status (`conn`), and BODYSTRUCTURE as a skeleton MIME message
//! (`structure`). Driven by `commands::run`, which hands a
//! `plan::MailboxPlan` to `execute`.

pub mod conn;
pub mod connect;
pub mod structure;
pub mod types;

pub use conn::{Access, Conn, ImapError};
pub use connect::connect;
