//! One module per subcommand; each `execute` returns a [`crate::cli::Outcome`].

pub mod check;
pub mod log;
pub mod run;
pub mod test;
pub mod watch;

use std::path::Path;

use crate::cli::Outcome;
use crate::config::{self, Config, LoadError};

/// Loads the configuration, printing every problem; `Err` carries the
/// outcome to exit with.
pub fn load_config(path: &Path) -> Result<Config, Outcome> {
    config::load(path).map_err(|e| {
        eprintln!("{}", e.report());
        match e {
            LoadError::Invalid { diagnostics, .. } => {
                eprintln!(
                    "{} error{} in {}",
                    diagnostics.len(),
                    if diagnostics.len() == 1 { "" } else { "s" },
                    path.display()
                );
            }
            LoadError::Io { .. } => {}
        }
        Outcome::ConfigInvalid
    })
}
