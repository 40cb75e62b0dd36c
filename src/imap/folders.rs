//! The account's folders as the server has them, and the one way from a
//! rule path (`Lists/rust`) to a server mailbox name (`INBOX.Lists.rust`):
//! [`Folders::resolve`]. The personal namespace's prefix and separator come
//! from NAMESPACE (RFC 2342) where the server has it, else from LIST (RFC
//! 3501 6.3.8); SPECIAL-USE folders (RFC 6154) from LIST's attributes.
//! Everything but [`Folders::load`] and [`Folders::ensure`] is pure.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use super::response::ListEntry;
use super::session::{ImapError, Session};
use super::types::{Capability, Mailbox};
use crate::rules::{FolderPath, Target};

/// How personal folders are named on the server: `INBOX.` and `.` on
/// Courier, `""` and `/` on Dovecot's default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    pub prefix: String,
    /// `None`: a flat server, no levels.
    pub separator: Option<char>,
}

impl Namespace {
    /// The personal namespace where NAMESPACE gave none: the separator
    /// from LIST, and the prefix inferred from the mailboxes there are
    /// (when every one but INBOX lives under `INBOX<sep>`, new ones go
    /// there too).
    pub fn infer(separator: Option<char>, names: &[String]) -> Namespace {
        let prefix = match separator {
            Some(sep) => {
                let under = format!("INBOX{sep}");
                let mut others = names
                    .iter()
                    .filter(|m| !m.eq_ignore_ascii_case("INBOX"))
                    .peekable();
                if others.peek().is_some() && others.all(|m| m.starts_with(&under)) {
                    under
                } else {
                    String::new()
                }
            }
            None => String::new(),
        };
        Namespace { prefix, separator }
    }

    /// The server's name for a rule path. `INBOX` and paths under it are
    /// not prefixed. A level that holds the server's own separator cannot
    /// be expressed, and neither can levels on a flat server.
    pub fn resolve(&self, path: &FolderPath) -> Result<Mailbox, ResolveError> {
        let levels: Vec<&str> = path.levels().collect();
        let sep = match self.separator {
            Some(sep) => sep,
            None if levels.len() == 1 => '/',
            None => {
                return Err(ResolveError::Flat {
                    path: path.to_string(),
                });
            }
        };
        if let Some(level) = levels.iter().find(|l| sep != '/' && l.contains(sep)) {
            return Err(ResolveError::Separator {
                level: level.to_string(),
                separator: sep,
            });
        }
        let joined = levels.join(&sep.to_string());
        if levels[0].eq_ignore_ascii_case("INBOX") {
            let rest = &joined[levels[0].len()..];
            Ok(Mailbox::from_server(format!("INBOX{rest}")))
        } else {
            Ok(Mailbox::from_server(format!("{}{joined}", self.prefix)))
        }
    }
}

/// A rule path the server cannot name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    Separator { level: String, separator: char },
    Flat { path: String },
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolveError::Separator { level, separator } => write!(
                f,
                "folder level {level:?} holds {separator:?}, the server's hierarchy separator (rules separate levels with \"/\")"
            ),
            ResolveError::Flat { path } => write!(
                f,
                "the server has no folder hierarchy, so {path:?} cannot be a folder there"
            ),
        }
    }
}

impl std::error::Error for ResolveError {}

/// The account's folders as the server listed them.
#[derive(Debug, Clone)]
pub struct Folders {
    namespace: Namespace,
    existing: BTreeSet<Mailbox>,
    /// SPECIAL-USE attribute, lower-case (`\archive`) -> mailbox.
    special: HashMap<String, Mailbox>,
    /// Gmail (X-GM-EXT-1): folders are labels, and archiving is leaving
    /// INBOX for `\All`.
    gmail: bool,
}

impl Folders {
    /// NAMESPACE (or LIST's separator) and the list of every mailbox. LIST
    /// does not change the selected mailbox.
    pub async fn load(session: &mut Session) -> Result<Folders, ImapError> {
        let personal = session
            .namespace()
            .await?
            .and_then(|ns| ns.personal.into_iter().next());
        let entries = session.list_all().await?;
        let namespace = match personal {
            Some((prefix, separator)) => Namespace { prefix, separator },
            None => {
                let separator = session.separator().await?;
                let names: Vec<String> = entries.iter().map(|e| e.name.clone()).collect();
                Namespace::infer(separator, &names)
            }
        };
        Ok(Folders::new(
            namespace,
            &entries,
            session.has(Capability::GmailExt1),
        ))
    }

    pub fn new(namespace: Namespace, entries: &[ListEntry], gmail: bool) -> Folders {
        // A \Noselect or \NonExistent name (RFC 5258) is only a level of
        // the hierarchy; nothing can be moved into it.
        let selectable = |e: &&ListEntry| !e.has("\\Noselect") && !e.has("\\NonExistent");
        let mut special = HashMap::new();
        for e in entries.iter().filter(selectable) {
            for a in &e.attributes {
                special
                    .entry(a.to_ascii_lowercase())
                    .or_insert_with(|| Mailbox::from_server(e.name.as_str()));
            }
        }
        Folders {
            namespace,
            existing: entries
                .iter()
                .filter(selectable)
                .map(|e| Mailbox::from_server(e.name.as_str()))
                .collect(),
            special,
            gmail,
        }
    }

    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    pub fn exists(&self, name: &Mailbox) -> bool {
        self.existing.contains(name)
    }

    /// The server's name for a rule path.
    pub fn resolve_path(&self, path: &FolderPath) -> Result<Mailbox, ResolveError> {
        self.namespace.resolve(path)
    }

    /// The server's name for where a rule sends a message. `archive` on
    /// Gmail is the `\All` folder where no `\Archive` folder exists: there,
    /// archiving means leaving INBOX (its label), not a label "Archive".
    pub fn resolve(&self, target: &Target) -> Result<Mailbox, ResolveError> {
        match target {
            Target::Folder(path) => self.resolve_path(path),
            Target::SpecialUse {
                attribute,
                fallback,
            } => {
                let found = self
                    .special
                    .get(&attribute.to_ascii_lowercase())
                    .or_else(|| {
                        (self.gmail && attribute.eq_ignore_ascii_case("\\Archive"))
                            .then(|| self.special.get("\\all"))
                            .flatten()
                    });
                match found {
                    Some(name) => Ok(name.clone()),
                    None => self.resolve_path(&FolderPath::fallback(fallback)),
                }
            }
            Target::Expunge => unreachable!("expunged messages have no folder"),
        }
    }

    /// Makes sure `name` exists: CREATE and SUBSCRIBE it when missing
    /// (RFC 3501 6.3.3 creates missing parents too).
    pub async fn ensure(&mut self, session: &mut Session, name: &Mailbox) -> Result<(), ImapError> {
        if self.exists(name) {
            return Ok(());
        }
        session.create(name).await?;
        if let Err(e) = session.subscribe(name).await {
            if e.ends_session() {
                return Err(e);
            }
            tracing::warn!(folder = %name, error = %e, "created but could not subscribe");
        }
        self.existing.insert(name.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> FolderPath {
        FolderPath::parse(p).unwrap()
    }

    fn entry(name: &str, attrs: &[&str]) -> ListEntry {
        ListEntry {
            name: name.into(),
            attributes: attrs.iter().map(|a| a.to_string()).collect(),
            separator: Some('/'),
        }
    }

    #[test]
    fn rule_paths_map_to_the_server_namespace() {
        let slash = Namespace {
            prefix: String::new(),
            separator: Some('/'),
        };
        let dot = Namespace {
            prefix: "INBOX.".into(),
            separator: Some('.'),
        };
        let flat = Namespace {
            prefix: String::new(),
            separator: None,
        };
        let cases: Vec<(&Namespace, &str, Result<&str, &str>)> = vec![
            (&slash, "Lists/rust", Ok("Lists/rust")),
            (&slash, "INBOX", Ok("INBOX")),
            (&slash, "Lists/v1.2", Ok("Lists/v1.2")),
            (&dot, "Lists/rust", Ok("INBOX.Lists.rust")),
            (&dot, "INBOX", Ok("INBOX")),
            (&dot, "inbox/sub", Ok("INBOX.sub")),
            (&dot, "Archive", Ok("INBOX.Archive")),
            (&dot, "Lists/v1.2", Err("holds '.'")),
            (&dot, "INBOX.Lists", Err("rules separate levels with \"/\"")),
            (&flat, "Archive", Ok("Archive")),
            (&flat, "Lists/rust", Err("no folder hierarchy")),
        ];
        for (ns, p, want) in cases {
            match (ns.resolve(&path(p)), want) {
                (Ok(got), Ok(w)) => assert_eq!(got.as_str(), w, "{p}"),
                (Err(got), Err(w)) => assert!(got.to_string().contains(w), "{p}: {got}"),
                (got, w) => panic!("{p}: wanted {w:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn without_namespace_the_prefix_is_inferred_from_the_mailboxes() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases = [
            (
                Some('.'),
                names(&["INBOX", "INBOX.Sent", "INBOX.Trash"]),
                "INBOX.",
            ),
            (Some('.'), names(&["INBOX", "Sent", "INBOX.Trash"]), ""),
            (Some('/'), names(&["INBOX", "Archive"]), ""),
            (Some('.'), names(&["INBOX"]), ""),
            (None, names(&["INBOX"]), ""),
        ];
        for (sep, boxes, want) in cases {
            assert_eq!(Namespace::infer(sep, &boxes).prefix, want, "{boxes:?}");
        }
    }

    #[test]
    fn special_use_targets_and_gmail_archive() {
        use crate::rules::{ARCHIVE, TRASH};
        let ns = Namespace {
            prefix: String::new(),
            separator: Some('/'),
        };
        let gmail_list = [
            entry("INBOX", &[]),
            entry("[Gmail]", &["\\Noselect", "\\HasChildren"]),
            entry("[Gmail]/All Mail", &["\\All", "\\HasNoChildren"]),
            entry("[Gmail]/Trash", &["\\Trash"]),
            entry("[Gmail]/Spam", &["\\Junk"]),
        ];
        let gmail = Folders::new(ns.clone(), &gmail_list, true);
        assert_eq!(
            gmail.resolve(&ARCHIVE).unwrap().as_str(),
            "[Gmail]/All Mail"
        );
        assert_eq!(gmail.resolve(&TRASH).unwrap().as_str(), "[Gmail]/Trash");
        assert!(!gmail.exists(&Mailbox::from_server("[Gmail]")));
        // The same folders on a server that is not Gmail: \All is not an
        // archive there.
        let other = Folders::new(ns.clone(), &gmail_list, false);
        assert_eq!(other.resolve(&ARCHIVE).unwrap().as_str(), "Archive");
        let exchange = Folders::new(
            ns,
            &[
                entry("Inbox", &[]),
                entry("Deleted Items", &["\\Trash"]),
                entry("Archive", &[]),
            ],
            false,
        );
        assert_eq!(exchange.resolve(&TRASH).unwrap().as_str(), "Deleted Items");
        assert_eq!(exchange.resolve(&ARCHIVE).unwrap().as_str(), "Archive");
        assert!(exchange.exists(&Mailbox::inbox()));
        let courier = Folders::new(
            Namespace {
                prefix: "INBOX.".into(),
                separator: Some('.'),
            },
            &[entry("INBOX", &[])],
            false,
        );
        assert_eq!(courier.resolve(&TRASH).unwrap().as_str(), "INBOX.Trash");
    }
}
