//! Response framing, sans IO: cuts the bytes a server sends into whole
//! responses (a line, and the literals it announces, RFC 3501 4.3 and 7.5),
//! within limits, before anything is parsed. The session (`imap::session`)
//! feeds it what it reads and parses each frame it gives back.
//!
//! Why frame first: a parser that has to see a whole response before it can
//! say it is incomplete buffers whatever a server sends; here no line may
//! grow past [`Limits::line`] and no literal past [`Limits::literal`], so a
//! server that never ends a line, or announces a literal of a terabyte, is
//! refused with a reason after a bounded read. And since the frame's end is
//! known without parsing, a response the parser cannot read is skipped
//! alone: the next one starts at a known byte.

use std::fmt;

/// How large one response may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// One line of a response, literals excluded, CRLF included.
    pub line: usize,
    /// One literal.
    pub literal: usize,
    /// Every line and literal of one response together.
    pub frame: usize,
}

impl Limits {
    /// Limits for ordinary responses: a line of a LIST, FETCH or CAPABILITY
    /// response is far below 1 MiB, and no literal the rules read is above
    /// [`MAX_LITERAL`] (bodies are fetched in a bounded partial, see
    /// `rules::MAX_BODY`).
    pub const DEFAULT: Limits = Limits {
        line: 1 << 20,
        literal: MAX_LITERAL,
        frame: MAX_LITERAL + (2 << 20),
    };

    /// Room for a SEARCH answer over a mailbox of `messages` messages: every
    /// UID is at most ten digits and a space. Never below the default line,
    /// never above [`MAX_SEARCH_LINE`].
    pub fn for_search(messages: u32) -> Limits {
        let line = (messages as usize)
            .saturating_add(1)
            .saturating_mul(11)
            .saturating_add(64)
            .clamp(Limits::DEFAULT.line, MAX_SEARCH_LINE);
        Limits {
            line,
            frame: line + Limits::DEFAULT.frame,
            ..Limits::DEFAULT
        }
    }
}

/// From this size on a response is handed out without a copy.
const LARGE: usize = 1 << 20;

/// The largest literal accepted: a body read in part plus its header fields.
pub const MAX_LITERAL: usize = 32 << 20;

/// The longest SEARCH answer accepted: about 1.2 million UIDs of seven
/// or eight digits. Held while read (up to twice over, as the buffer
/// grows) and parsed into four octets per UID (up to six million, were a
/// server to send `1 1 1 ...`), it keeps a session under 100 MB whatever
/// the server claims its mailbox holds.
pub const MAX_SEARCH_LINE: usize = 12 << 20;

/// Why the server's bytes cannot be framed; the session cannot go on past it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    LineTooLong { limit: usize },
    LiteralTooLarge { size: u64, limit: usize },
    FrameTooLarge { limit: usize },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::LineTooLong { limit } => write!(
                f,
                "the server sent a line longer than {} without ending it",
                bytes(*limit as u64)
            ),
            FrameError::LiteralTooLarge { size, limit } => write!(
                f,
                "the server announced a literal of {}, more than the {} accepted",
                bytes(*size),
                bytes(*limit as u64)
            ),
            FrameError::FrameTooLarge { limit } => write!(
                f,
                "the server sent a response larger than {}",
                bytes(*limit as u64)
            ),
        }
    }
}

fn bytes(n: u64) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / f64::from(1 << 20))
    } else if n >= 1 << 10 {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

/// The framer's buffer and where it stands in the response being read.
#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    /// Where the response being read starts; what is before it was
    /// returned already and goes when the buffer is next compacted.
    start: usize,
    /// Where the current line starts.
    line_start: usize,
    /// Bytes of a literal still to come before the line goes on.
    literal_left: usize,
    /// Up to here, the buffer has been looked at for a line end.
    scanned: usize,
    limits: Limits,
}

impl Default for Framer {
    fn default() -> Self {
        Framer::new(Limits::DEFAULT)
    }
}

impl Framer {
    pub fn new(limits: Limits) -> Framer {
        Framer {
            buf: Vec::new(),
            start: 0,
            line_start: 0,
            literal_left: 0,
            scanned: 0,
            limits,
        }
    }

    /// Limits for the responses from now on (e.g. a SEARCH answer's).
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Adds bytes read from the server.
    pub fn feed(&mut self, data: &[u8]) {
        // Returned responses are dropped here, once per read rather than
        // once per response, so that many small responses in one read do
        // not move the rest of the buffer each time.
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.line_start -= self.start;
            self.scanned -= self.start;
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Bytes received but not yet part of a whole response: what a
    /// STARTTLS upgrade must throw away (RFC 3501 6.2.1: nothing sent in
    /// plaintext may be taken as said under TLS).
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Forgets every byte received and not yet returned.
    pub fn discard(&mut self) {
        *self = Framer::new(self.limits);
    }

    /// The next whole response, if the bytes fed hold one. An error means
    /// the server broke a limit; the framer cannot be used after it.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        loop {
            if self.literal_left > 0 {
                let available = self.buf.len() - self.scanned;
                let step = available.min(self.literal_left);
                self.scanned += step;
                self.literal_left -= step;
                if self.literal_left > 0 {
                    return Ok(None);
                }
                self.line_start = self.scanned;
            }
            let Some(nl) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') else {
                self.scanned = self.buf.len();
                if self.buf.len() - self.line_start > self.limits.line {
                    return Err(FrameError::LineTooLong {
                        limit: self.limits.line,
                    });
                }
                self.check_frame()?;
                return Ok(None);
            };
            let end = self.scanned + nl + 1;
            if end - self.line_start > self.limits.line {
                return Err(FrameError::LineTooLong {
                    limit: self.limits.line,
                });
            }
            self.scanned = end;
            match literal_size(&self.buf[self.line_start..end]) {
                Some(size) => {
                    if size > self.limits.literal as u64 {
                        return Err(FrameError::LiteralTooLarge {
                            size,
                            limit: self.limits.literal,
                        });
                    }
                    self.literal_left = size as usize;
                    self.line_start = end;
                    if end - self.start + self.literal_left > self.limits.frame {
                        return Err(FrameError::FrameTooLarge {
                            limit: self.limits.frame,
                        });
                    }
                    if self.literal_left == 0 {
                        continue;
                    }
                }
                None => {
                    // A large response that starts the buffer (it took
                    // many reads, each of which compacted the buffer) is
                    // handed out as the buffer itself, not copied: a SEARCH
                    // answer of tens of MiB is held once, not twice.
                    if self.start == 0 && end >= LARGE {
                        let rest = self.buf.split_off(end);
                        let frame = std::mem::replace(&mut self.buf, rest);
                        self.line_start = 0;
                        self.scanned = 0;
                        return Ok(Some(frame));
                    }
                    let frame = self.buf[self.start..end].to_vec();
                    self.start = end;
                    self.line_start = end;
                    return Ok(Some(frame));
                }
            }
        }
    }

    fn check_frame(&self) -> Result<(), FrameError> {
        if self.buf.len() - self.start > self.limits.frame {
            return Err(FrameError::FrameTooLarge {
                limit: self.limits.frame,
            });
        }
        Ok(())
    }
}

/// The size of the literal a line announces at its end (`{123}` or the
/// non-synchronizing `{123+}` of RFC 7888), if it does.
fn literal_size(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\n")?;
    // A bare LF ends a line too: servers are not all strict (RFC 3501 2.2
    // asks for CRLF).
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = inner[open + 1..]
        .strip_suffix(b"+")
        .unwrap_or(&inner[open + 1..]);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // More than u64 holds is too large, not "no literal".
    Some(
        std::str::from_utf8(digits)
            .ok()?
            .parse()
            .unwrap_or(u64::MAX),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(limits: Limits, chunks: &[&[u8]]) -> Result<Vec<String>, FrameError> {
        let mut f = Framer::new(limits);
        let mut out = Vec::new();
        for c in chunks {
            f.feed(c);
            while let Some(frame) = f.next_frame()? {
                out.push(String::from_utf8_lossy(&frame).into_owned());
            }
        }
        Ok(out)
    }

    #[test]
    fn whole_responses_come_out_however_the_bytes_arrive() {
        let stream: &[u8] = b"* OK hi\r\n* 1 FETCH (UID 5 BODY[] {5}\r\na\r\nb} FLAGS ())\r\nA1 OK done\r\n* 0 FETCH (X {0}\r\n)\r\n";
        let want = vec![
            "* OK hi\r\n",
            "* 1 FETCH (UID 5 BODY[] {5}\r\na\r\nb} FLAGS ())\r\n",
            "A1 OK done\r\n",
            "* 0 FETCH (X {0}\r\n)\r\n",
        ];
        // All at once, byte by byte, and in every two-piece split.
        assert_eq!(frames(Limits::DEFAULT, &[stream]).unwrap(), want);
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(frames(Limits::DEFAULT, &bytes).unwrap(), want);
        for cut in 0..stream.len() {
            let (a, b) = stream.split_at(cut);
            assert_eq!(frames(Limits::DEFAULT, &[a, b]).unwrap(), want, "{cut}");
        }
    }

    #[test]
    fn a_literal_may_hold_what_looks_like_a_line_end_or_a_literal() {
        let got = frames(
            Limits::DEFAULT,
            &[b"* 2 FETCH (BODY[] {12}\r\nx {99}\r\ny\r\nz)\r\n* 3 EXISTS\r\n"],
        )
        .unwrap();
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[1].starts_with("* 3 EXISTS"));
    }

    #[test]
    fn literal_announcements_are_read_strictly() {
        let cases: &[(&[u8], Option<u64>)] = &[
            (b"* 1 FETCH (BODY[] {12}\r\n", Some(12)),
            (b"A1 APPEND x {3+}\r\n", Some(3)),
            (b"* 1 FETCH (BODY[] {12}\n", Some(12)),
            (b"* OK {}\r\n", None),
            (b"* OK {12 }\r\n", None),
            (b"* OK {-1}\r\n", None),
            (b"* OK {99999999999999999999}\r\n", Some(u64::MAX)),
            (b"* OK text}\r\n", None),
            (b"* OK {12}x\r\n", None),
        ];
        for (line, want) in cases {
            assert_eq!(
                literal_size(line),
                *want,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn limits_are_enforced_before_the_bytes_pile_up() {
        let small = Limits {
            line: 64,
            literal: 100,
            frame: 200,
        };
        let endless = vec![b'x'; 65];
        assert_eq!(
            frames(small, &[&endless]),
            Err(FrameError::LineTooLong { limit: 64 })
        );
        assert_eq!(
            frames(small, &[b"* 1 FETCH (BODY[] {101}\r\n"]),
            Err(FrameError::LiteralTooLarge {
                size: 101,
                limit: 100
            })
        );
        assert_eq!(
            frames(small, &[b"* 1 FETCH (BODY[] {18446744073709551615}\r\n"]),
            Err(FrameError::LiteralTooLarge {
                size: u64::MAX,
                limit: 100
            })
        );
        // Many literals in one response, each within its limit.
        let mut many = Vec::new();
        for _ in 0..5 {
            many.extend_from_slice(b"* X {60}\r\n");
            many.extend_from_slice(&[b'a'; 60]);
        }
        assert_eq!(
            frames(small, &[&many]),
            Err(FrameError::FrameTooLarge { limit: 200 })
        );
        // Within the limits, all is well.
        assert_eq!(
            frames(
                small,
                &[b"* 1 FETCH (BODY[] {100}\r\n", &[b'a'; 100], b")\r\n"]
            )
            .unwrap()
            .len(),
            1
        );
    }

    #[test]
    fn a_large_response_comes_out_whole_and_what_follows_it_too() {
        let mut big = b"* SEARCH".to_vec();
        for uid in 0..400_000 {
            big.extend_from_slice(format!(" {uid}").as_bytes());
        }
        big.extend_from_slice(b"\r\n");
        assert!(big.len() > LARGE);
        let mut stream = b"* 1 EXISTS\r\n".to_vec();
        stream.extend_from_slice(&big);
        stream.extend_from_slice(b"m1 OK done\r\n* 2 EXISTS\r\n");
        let want = [
            b"* 1 EXISTS\r\n".to_vec(),
            big,
            b"m1 OK done\r\n".to_vec(),
            b"* 2 EXISTS\r\n".to_vec(),
        ];
        for size in [1 << 10, 64 << 10, stream.len()] {
            let mut f = Framer::new(Limits::for_search(1_000_000));
            let mut got = Vec::new();
            for chunk in stream.chunks(size) {
                f.feed(chunk);
                while let Some(frame) = f.next_frame().unwrap() {
                    got.push(frame);
                }
            }
            assert!(got == want, "in chunks of {size}");
            assert_eq!(f.pending(), 0);
        }
    }

    #[test]
    fn search_answers_get_room_for_the_mailbox() {
        assert_eq!(Limits::for_search(0), Limits::for_search(1000));
        assert_eq!(Limits::for_search(0).line, Limits::DEFAULT.line);
        assert!(Limits::for_search(1_000_000).line >= 11_000_000);
        assert!(Limits::for_search(1_100_000).line < MAX_SEARCH_LINE);
        assert_eq!(Limits::for_search(u32::MAX).line, MAX_SEARCH_LINE);
    }

    #[test]
    fn limit_errors_say_what_the_server_did() {
        assert_eq!(
            FrameError::LiteralTooLarge {
                size: 5 << 30,
                limit: MAX_LITERAL
            }
            .to_string(),
            "the server announced a literal of 5120 MiB, more than the 32 MiB accepted"
        );
        assert_eq!(
            FrameError::LineTooLong { limit: 1 << 20 }.to_string(),
            "the server sent a line longer than 1 MiB without ending it"
        );
    }
}
