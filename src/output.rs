//! Printing for the commands: standard output through [`Stdout`], which
//! notices when nobody reads it any more (`mailwarden log | head -1`) and
//! from then on prints nothing instead of failing, and lines on standard
//! error through [`stderr_line`], which never fails. Beside `cli`; used by
//! `commands`.
//!
//! `println!` and `eprintln!` panic when the write fails; for a command
//! whose reader has gone that is a crash (exit 101) instead of the quiet
//! end that `head` expects, and for `run` it would stop the work half-way.

use std::fmt;
use std::io::{self, Write};

/// Standard output is closed: its reader has gone, or it cannot be written
/// at all. Nothing more will be shown; a command that only prints can stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

/// Standard output (or, for tests, any writer) that turns a failed write
/// into "closed". Two ways to use it:
///
/// - `writeln!(out, ...)` (the inherent [`Stdout::write_fmt`]) and
///   [`Stdout::print`] return `Err(Closed)`, for commands that only print
///   (`log`, `check`) and can stop there;
/// - as an [`io::Write`] it never fails: once closed it drops what it is
///   given. For code whose printing is a report on work that must go on
///   whatever becomes of the output (`run` carrying out its plan).
///
/// A closed pipe (EPIPE) is a normal end and is not reported; any other
/// failure (a full disk under `> file`) is reported once on standard error.
pub struct Stdout<W: Write = io::Stdout> {
    inner: W,
    closed: bool,
}

impl Stdout<io::Stdout> {
    pub fn new() -> Self {
        Stdout::to(io::stdout())
    }
}

impl Default for Stdout<io::Stdout> {
    fn default() -> Self {
        Stdout::new()
    }
}

impl<W: Write> Stdout<W> {
    pub fn to(inner: W) -> Self {
        Stdout {
            inner,
            closed: false,
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Prints `text` as it is (no newline added).
    pub fn print(&mut self, text: &str) -> Result<(), Closed> {
        self.attempt(|w| w.write_all(text.as_bytes()))
    }

    /// What `write!` and `writeln!` call: formats straight into the output,
    /// and nothing at all once it is closed.
    pub fn write_fmt(&mut self, args: fmt::Arguments<'_>) -> Result<(), Closed> {
        self.attempt(|w| w.write_fmt(args))
    }

    /// Flushes what is buffered (a line not yet ended).
    pub fn flush(&mut self) -> Result<(), Closed> {
        self.attempt(|w| w.flush())
    }

    fn attempt(&mut self, op: impl FnOnce(&mut W) -> io::Result<()>) -> Result<(), Closed> {
        if self.closed {
            return Err(Closed);
        }
        match op(&mut self.inner) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.close(&e);
                Err(Closed)
            }
        }
    }

    fn close(&mut self, e: &io::Error) {
        self.closed = true;
        if e.kind() != io::ErrorKind::BrokenPipe {
            stderr_line(format_args!(
                "mailwarden: cannot write to standard output ({e}); printing stops here"
            ));
        }
    }
}

impl<W: Write> Write for Stdout<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.closed
            && let Err(e) = self.inner.write_all(buf)
        {
            self.close(&e);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = Stdout::flush(self);
        Ok(())
    }
}

/// Writes `line` and a newline on standard error. A failure is ignored:
/// there is nowhere left to report it, and it must not end the command.
pub fn stderr_line(line: impl fmt::Display) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer whose reader goes away after `room` bytes.
    struct Pipe {
        written: Vec<u8>,
        room: usize,
        kind: io::ErrorKind,
        attempts: usize,
        failures: usize,
    }

    impl Pipe {
        fn new(room: usize, kind: io::ErrorKind) -> Self {
            Pipe {
                written: Vec::new(),
                room,
                kind,
                attempts: 0,
                failures: 0,
            }
        }
    }

    impl Write for Pipe {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.attempts += 1;
            if self.written.len() + buf.len() > self.room {
                self.failures += 1;
                return Err(io::Error::from(self.kind));
            }
            self.written.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn printing_reports_closed_once_the_reader_has_gone_and_then_stays_quiet() {
        let mut out = Stdout::to(Pipe::new(8, io::ErrorKind::BrokenPipe));
        assert_eq!(writeln!(out, "line {}", 1), Ok(()));
        assert!(!out.is_closed());
        assert_eq!(writeln!(out, "line {}", 2), Err(Closed));
        assert!(out.is_closed());
        assert_eq!(out.print("more\n"), Err(Closed));
        assert_eq!(out.flush(), Err(Closed));
        // Nothing is even attempted once closed.
        assert_eq!(out.inner.failures, 1);
        let attempts = out.inner.attempts;
        assert_eq!(writeln!(out, "line {}", 3), Err(Closed));
        assert_eq!(out.inner.attempts, attempts);
        assert_eq!(out.inner.written, b"line 1\n");
    }

    #[test]
    fn as_a_writer_it_never_fails_so_that_work_goes_on() {
        let mut out = Stdout::to(Pipe::new(8, io::ErrorKind::BrokenPipe));
        let report = |w: &mut dyn Write| -> io::Result<()> {
            for i in 0..5 {
                writeln!(w, "moved {i}")?;
            }
            w.flush()
        };
        report(&mut out).expect("a closed output is not the work's failure");
        assert!(out.is_closed());
        assert_eq!(out.inner.written, b"moved 0\n");
        assert_eq!(out.inner.failures, 1);
    }

    #[test]
    fn other_write_failures_close_it_too() {
        let mut out = Stdout::to(Pipe::new(0, io::ErrorKind::StorageFull));
        assert_eq!(out.print("x"), Err(Closed));
        assert!(out.is_closed());
    }
}
