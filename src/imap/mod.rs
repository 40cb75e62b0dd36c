//! The IMAP side: typed values and encodings (`types`), connecting and
//! logging in (`connect`), and a session whose every command checks its
//! tagged status (`conn`). Driven by `commands::run`, which hands a
//! `plan::MailboxPlan` to `execute`.

pub mod conn;
pub mod connect;
pub mod types;

pub use conn::{Access, Conn, ImapError};
pub use connect::connect;
