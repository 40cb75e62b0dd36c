//! The IMAP side, under the pure stages and above the socket. Bytes are cut
//! into whole responses (`wire`) and parsed (`response`); commands are typed
//! values written in one place (`command`); a `session` drives both over
//! one connection, which `connect` opens and logs in. `types` holds the
//! values the rest of mailwarden speaks in (UIDs, UID sets, capabilities,
//! server mailbox names), `folders` the one way from a rule path to a
//! server name, and `structure` turns BODYSTRUCTURE into a skeleton MIME
//! message. Driven by `pass`, `execute` and `recover`.

pub mod command;
pub mod connect;
pub mod folders;
pub mod response;
pub mod session;
pub mod structure;
pub mod types;
pub mod wire;

pub use connect::connect;
pub use session::{Access, ImapError, MailboxStatus, Session, Woke};
