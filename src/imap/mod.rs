//! The IMAP side: typed values and encodings (`types`), connecting and
//! logging in (`connect`), and a session whose every command checks its
//! tagged status (`conn`). Fed by `commands::run`; carries out a `plan::Plan`
//! through `execute`.

pub mod types;
