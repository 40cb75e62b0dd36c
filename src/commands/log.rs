//! `mailwarden log`: shows the action journal (what was done to which
//! message, by which rule, and how it ended), oldest first. It only reads
//! the state file: no lock, nothing written, nothing created. With
//! `--prune-before` it deletes the older entries instead (still without
//! the lock, so beside a running `watch`).

use std::path::PathBuf;

use chrono::{DateTime, Utc};

use crate::cli::{Format, Outcome, parse_time};
use crate::output::Stdout;
use crate::state::{self, State};

#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// Only entries from this time on
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub since: Option<DateTime<Utc>>,
    /// Only entries of this rule
    #[arg(long, value_name = "NAME")]
    pub rule: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// State file [default: $XDG_STATE_HOME/mailwarden/state.db]
    #[arg(long, value_name = "PATH")]
    pub state: Option<PathBuf>,
    /// Delete the entries from before this time (or this long ago:
    /// 400d) instead of showing any; undo can no longer take those back,
    /// and actions still unfinished are kept
    #[arg(long, value_parser = parse_bound, value_name = "TIME", conflicts_with_all = ["since", "rule"])]
    pub prune_before: Option<DateTime<Utc>>,
}

/// A time, or a duration meaning that long before now (for a timer that
/// keeps the last year: `--prune-before 1y`).
fn parse_bound(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(ago) = crate::config::units::parse_duration(text) {
        return chrono::Duration::from_std(ago)
            .ok()
            .and_then(|ago| Utc::now().checked_sub_signed(ago))
            .ok_or_else(|| format!("{text:?} is too long ago"));
    }
    parse_time(text).map_err(|e| format!("{e}, or a duration such as 400d"))
}

fn prune(path: &std::path::Path, before: DateTime<Utc>) -> Outcome {
    let deleted = match State::open_for_pruning(path) {
        Ok(Some(s)) => s.prune_before(before),
        Ok(None) => Ok(0),
        Err(e) => Err(e),
    };
    match deleted {
        Ok(n) => {
            let mut out = Stdout::new();
            let _ = writeln!(
                out,
                "deleted {n} journal entr{} from before {}",
                if n == 1 { "y" } else { "ies" },
                before.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            );
            Outcome::Success
        }
        Err(e) => super::state_failed(&e),
    }
}

pub fn execute(args: &LogArgs) -> Outcome {
    let path = args.state.clone().unwrap_or_else(state::default_path);
    if let Some(before) = args.prune_before {
        return prune(&path, before);
    }
    // No state file, or none with a journal: nothing has been done yet.
    let entries = match State::open_read_only(&path).and_then(|s| match s {
        Some(s) => s.entries(args.since, args.rule.as_deref()),
        None => Ok(Vec::new()),
    }) {
        Ok(e) => e,
        Err(e) => return super::state_failed(&e),
    };
    let mut out = Stdout::new();
    for e in &entries {
        let printed = match args.format {
            Format::Json => writeln!(out, "{}", serde_json::to_string(e).expect("serializable")),
            Format::Text => {
                let target = e
                    .target
                    .as_deref()
                    .map(|t| format!(" {t}"))
                    .unwrap_or_default();
                let detail = e
                    .detail
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "{} {:<9} {}/{} UID {} <{}> rule \"{}\": {}{}{}",
                    e.time,
                    e.status,
                    e.account,
                    e.mailbox,
                    e.uid,
                    e.message_id.as_deref().unwrap_or(""),
                    e.rule.as_deref().unwrap_or(""),
                    e.action,
                    target,
                    detail
                )
            }
        };
        // Whoever reads has seen enough (`| head`): a normal end.
        if printed.is_err() {
            break;
        }
    }
    let _ = out.flush();
    Outcome::Success
}
