//! Which messages are duplicates, for the `duplicate` condition (after
//! RFC 7352's test): a message whose Message-ID this account saw earlier on
//! another message. Pure: a pass hands it what the state remembers and each
//! message it reads; `run` and `watch` record what it learnt with the mark
//! (`pass::record`), `test` keeps it for the files of one invocation.

use std::collections::HashMap;

use crate::message::Message;

/// How long a Message-ID is remembered. RFC 7352 leaves the period to the
/// implementation; Sieve's is days because it runs once, at delivery. An
/// IMAP sorter sees the original sit in a mailbox for months, and a second
/// copy (a mailing list and a Cc, a resend) can come long after.
pub const MEMORY_DAYS: i64 = 365;

/// What tells a message from another with the same Message-ID. A copy of
/// one message keeps both: COPY and MOVE preserve the internal date
/// (RFC 3501 6.4.7, RFC 6851), and Gmail's labels are one message seen in
/// several folders. A second delivery differs in one or the other (its own
/// Received fields, its own arrival). So a message moved by hand, by
/// mailwarden, or read again in another folder is never its own duplicate;
/// the price is that two deliveries identical to the byte within one
/// second count as one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    pub size: u64,
    /// Seconds since the epoch: INTERNALDATE has no finer unit.
    pub arrival: i64,
}

impl Fingerprint {
    pub fn of(msg: &Message) -> Fingerprint {
        Fingerprint {
            size: msg.size,
            arrival: msg.arrival.timestamp(),
        }
    }
}

/// The Message-IDs one account has seen, and those learnt since the last
/// [`Seen::take_fresh`].
#[derive(Debug, Default)]
pub struct Seen {
    /// `false` for an account without a `duplicate` rule: nothing is
    /// remembered, nothing is a duplicate.
    on: bool,
    known: HashMap<String, Fingerprint>,
    fresh: Vec<(String, Fingerprint)>,
}

impl Seen {
    /// Remembers nothing: for an account whose rules never ask.
    pub fn off() -> Seen {
        Seen::default()
    }

    /// Starts from what the state remembers.
    pub fn from(known: HashMap<String, Fingerprint>) -> Seen {
        Seen {
            on: true,
            known,
            fresh: Vec::new(),
        }
    }

    /// Whether `msg` is a duplicate, remembering its Message-ID when it is
    /// the first with it. A message without one is never a duplicate.
    pub fn check(&mut self, msg: &Message) -> bool {
        let Some(id) = msg.message_id.as_deref().map(str::trim) else {
            return false;
        };
        if !self.on || id.is_empty() {
            return false;
        }
        let print = Fingerprint::of(msg);
        match self.known.get(id) {
            Some(first) => *first != print,
            None => {
                self.known.insert(id.to_string(), print);
                self.fresh.push((id.to_string(), print));
                false
            }
        }
    }

    /// What was learnt since the last call, to record.
    pub fn take_fresh(&mut self) -> Vec<(String, Fingerprint)> {
        std::mem::take(&mut self.fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Arrival, Meta};
    use chrono::{TimeZone, Utc};

    fn msg(id: Option<&str>, body: &str, arrival: i64) -> Message {
        let mut raw = String::from("From: a@example.org\n");
        if let Some(id) = id {
            raw.push_str(&format!("Message-ID: <{id}>\n"));
        }
        raw.push('\n');
        raw.push_str(body);
        let meta = Meta {
            arrival: Arrival::At(Utc.timestamp_opt(arrival, 0).unwrap()),
            flags: Default::default(),
            size: None,
        };
        Message::parse(raw.as_bytes(), meta).unwrap()
    }

    #[test]
    fn the_first_with_an_id_is_no_duplicate_and_a_copy_of_it_neither() {
        let cases: Vec<(&str, Vec<Message>, Vec<bool>)> = vec![
            (
                "a second delivery (another arrival) is a duplicate",
                vec![msg(Some("x@h"), "hi", 100), msg(Some("x@h"), "hi", 160)],
                vec![false, true],
            ),
            (
                "a second delivery (other bytes) is a duplicate",
                vec![msg(Some("x@h"), "hi", 100), msg(Some("x@h"), "hi!", 100)],
                vec![false, true],
            ),
            (
                "the same message read again, in this folder or another",
                vec![msg(Some("x@h"), "hi", 100), msg(Some("x@h"), "hi", 100)],
                vec![false, false],
            ),
            (
                "other ids",
                vec![msg(Some("x@h"), "hi", 100), msg(Some("y@h"), "hi", 160)],
                vec![false, false],
            ),
            (
                "no Message-ID is never a duplicate",
                vec![msg(None, "hi", 100), msg(None, "hi", 160)],
                vec![false, false],
            ),
            (
                "a third copy is a duplicate of the first",
                vec![
                    msg(Some("x@h"), "hi", 100),
                    msg(Some("x@h"), "hi", 160),
                    msg(Some("x@h"), "hi", 220),
                ],
                vec![false, true, true],
            ),
        ];
        for (what, messages, want) in cases {
            let mut seen = Seen::from(HashMap::new());
            let got: Vec<bool> = messages.iter().map(|m| seen.check(m)).collect();
            assert_eq!(got, want, "{what}");
        }
    }

    #[test]
    fn what_is_learnt_is_handed_over_once_and_still_known() {
        let mut seen = Seen::from(HashMap::new());
        assert!(!seen.check(&msg(Some("x@h"), "hi", 100)));
        let fresh = seen.take_fresh();
        assert_eq!(fresh.len(), 1);
        assert_eq!(fresh[0].0, "x@h");
        assert!(seen.take_fresh().is_empty());
        assert!(seen.check(&msg(Some("x@h"), "hi", 999)));
        // From the state, as the next run starts.
        let mut next = Seen::from(fresh.into_iter().collect());
        assert!(next.check(&msg(Some("x@h"), "hi", 999)));
        assert!(!next.check(&msg(Some("x@h"), "hi", 100)));
        assert!(next.take_fresh().is_empty());
    }

    #[test]
    fn off_remembers_nothing() {
        let mut seen = Seen::off();
        assert!(!seen.check(&msg(Some("x@h"), "hi", 100)));
        assert!(!seen.check(&msg(Some("x@h"), "hi", 160)));
        assert!(seen.take_fresh().is_empty());
    }
}
