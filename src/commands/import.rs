//! `mailwarden import gmail FILE` / `import sieve FILE`: reads a Gmail
//! filter export or a Sieve script, prints the rules `import` made of it
//! as YAML on standard output (a whole configuration, or with
//! `--rules-only` the rules alone) and lists on standard error, by line or
//! entry, what could not be translated and why. The translating is in
//! `crate::import`; this is the IO.
//!
//! Exit codes: 0 everything translated; 1 something was not (the YAML is
//! written all the same); 2 the file cannot be read or is not what the
//! command reads (`FILE:LINE:COL: why`).

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::cli::Outcome;
use crate::import::{Import, Layout, ParseError, gmail, sieve};
use crate::output::{Stdout, stderr_line};

#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    #[command(subcommand)]
    pub from: ImportFrom,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum ImportFrom {
    /// Gmail's filter export (Settings, Filters and Blocked Addresses, Export)
    Gmail(FileArgs),
    /// A Sieve script (RFC 5228)
    Sieve(FileArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct FileArgs {
    /// The file to translate
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Write only the rules, to paste under `rules:`, not a whole configuration
    #[arg(long)]
    pub rules_only: bool,
}

/// Larger files are refused: real exports and scripts are a few hundred
/// kilobytes at most.
pub const MAX_INPUT_BYTES: u64 = 16 << 20;

pub fn execute(args: &ImportArgs) -> Outcome {
    let (file, gmail) = match &args.from {
        ImportFrom::Gmail(f) => (f, true),
        ImportFrom::Sieve(f) => (f, false),
    };
    let shown = file.file.display().to_string();
    let text = match read(&file.file) {
        Ok(t) => t,
        Err(e) => {
            stderr_line(format_args!("{shown}: {e}"));
            return Outcome::ConfigInvalid;
        }
    };
    let layout = if file.rules_only {
        Layout::RulesOnly
    } else {
        Layout::Config
    };
    let name = file
        .file
        .file_name()
        .map_or_else(|| shown.clone(), |n| n.to_string_lossy().into_owned());
    let result = if gmail {
        gmail::import(&text, &name, layout)
    } else {
        sieve::import(&text, &name, layout)
    };
    match result {
        Ok(import) => finish(&shown, gmail, &import),
        Err(ParseError { line, col, message }) => {
            stderr_line(format_args!("{shown}:{line}:{col}: {message}"));
            Outcome::ConfigInvalid
        }
    }
}

fn read(path: &Path) -> Result<String, String> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(format!(
            "the file is larger than {} MiB (is it the right file?)",
            MAX_INPUT_BYTES >> 20
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        let start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
        let col = String::from_utf8_lossy(&valid[start..]).chars().count() + 1;
        format!("{line}:{col}: the file is not UTF-8 text")
    })
}

fn finish(shown: &str, gmail: bool, import: &Import) -> Outcome {
    // The report first: it is what the user must act on, and it is shown
    // whatever becomes of standard output.
    for u in &import.untranslated {
        let at = if gmail {
            format!("{shown}: entry {}", u.line)
        } else {
            format!("{shown}:{}", u.line)
        };
        stderr_line(format_args!(
            "{at}: not translated: {}: {}",
            crate::display::escape(&u.what),
            u.why
        ));
    }
    let mut out = Stdout::new();
    let _ = out.print(&import.yaml).and_then(|()| out.flush());
    match import.untranslated.len() {
        0 => Outcome::Success,
        n => {
            stderr_line(format_args!(
                "{n} thing{} not translated (listed above); the rules that were are on standard output",
                if n == 1 { "" } else { "s" }
            ));
            Outcome::SomeFailed
        }
    }
}
