//! `mailwarden status`: how each account and mailbox of `watch` is doing,
//! as `watch` recorded it in the state file (`health` writes it): connected
//! or not and since when, in which mode, the last pass and sweep, the last
//! error and how many in a row, reconnects, and the messages acted on
//! today (from the journal). Like `log`, it only reads: no lock, nothing
//! written, so it can run beside `watch` and as a user who may only read.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Local, Utc};

use crate::cli::{Format, Outcome};
use crate::output::Stdout;
use crate::state::{self, AccountStatus, State};

#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// State file [default: $XDG_STATE_HOME/mailwarden/state.db]
    #[arg(long, value_name = "PATH")]
    pub state: Option<PathBuf>,
}

#[derive(Debug, serde::Serialize)]
struct MailboxView {
    mailbox: String,
    last_pass: Option<String>,
    last_sweep: Option<String>,
    acted_today: i64,
}

#[derive(Debug, serde::Serialize)]
struct AccountView {
    #[serde(flatten)]
    status: Option<AccountStatus>,
    /// The account, also when no `watch` has recorded it (only `run`).
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<String>,
    /// Whether the `watch` that recorded it is still running.
    running: bool,
    acted_today: i64,
    mailboxes: Vec<MailboxView>,
}

#[derive(Debug, serde::Serialize)]
struct View {
    state_file: String,
    /// The `watch` process that last recorded a status, if one did.
    watch: Option<WatchView>,
    accounts: Vec<AccountView>,
}

#[derive(Debug, serde::Serialize)]
struct WatchView {
    pid: u32,
    running: bool,
}

/// Whether `pid` is a running mailwarden (not another program that got
/// the number after the daemon ended).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .is_ok_and(|comm| comm.trim_end().starts_with("mailwarden"))
}

/// The start of today, local time.
fn start_of_today() -> DateTime<Utc> {
    let midnight = Local::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists");
    midnight
        .and_local_timezone(Local)
        .earliest()
        .map_or_else(Utc::now, |t| t.to_utc())
}

fn view(path: &std::path::Path, s: Option<&State>) -> Result<View, crate::state::StateError> {
    let (accounts, mailboxes, acted) = match s {
        Some(s) => (
            s.account_statuses()?,
            s.mailbox_statuses()?,
            s.acted_since(start_of_today())?,
        ),
        None => (Vec::new(), Vec::new(), Vec::new()),
    };
    let watch = accounts.first().map(|a| WatchView {
        pid: a.pid,
        running: running(a.pid),
    });
    // Every account that `watch` recorded or that the journal shows acting
    // today, by name; per account every mailbox of either.
    let mut by_account: BTreeMap<String, AccountView> = BTreeMap::new();
    for a in accounts {
        by_account.insert(
            a.account.clone(),
            AccountView {
                running: running(a.pid),
                status: Some(a),
                account: None,
                acted_today: 0,
                mailboxes: Vec::new(),
            },
        );
    }
    let mut boxes: BTreeMap<(String, String), MailboxView> = BTreeMap::new();
    for m in mailboxes {
        boxes.insert(
            (m.account.clone(), m.mailbox.clone()),
            MailboxView {
                mailbox: m.mailbox,
                last_pass: m.last_pass,
                last_sweep: m.last_sweep,
                acted_today: 0,
            },
        );
    }
    for (account, mailbox, n) in acted {
        boxes
            .entry((account, mailbox.clone()))
            .or_insert(MailboxView {
                mailbox,
                last_pass: None,
                last_sweep: None,
                acted_today: 0,
            })
            .acted_today = n;
    }
    for ((account, _), m) in boxes {
        let a = by_account.entry(account.clone()).or_insert(AccountView {
            status: None,
            account: Some(account),
            running: false,
            acted_today: 0,
            mailboxes: Vec::new(),
        });
        a.acted_today += m.acted_today;
        a.mailboxes.push(m);
    }
    Ok(View {
        state_file: path.display().to_string(),
        watch,
        accounts: by_account.into_values().collect(),
    })
}

fn or_never(t: &Option<String>) -> &str {
    t.as_deref().unwrap_or("never")
}

fn messages(n: i64) -> String {
    format!("{n} message{}", if n == 1 { "" } else { "s" })
}

fn text(v: &View, out: &mut Stdout) -> Result<(), crate::output::Closed> {
    match &v.watch {
        None if v.accounts.is_empty() => {
            writeln!(out, "nothing recorded in {} yet", v.state_file)?;
            return Ok(());
        }
        None => writeln!(out, "watch: has not run on {}", v.state_file)?,
        Some(w) if w.running => writeln!(out, "watch: running (pid {})", w.pid)?,
        Some(w) => writeln!(out, "watch: not running (pid {} has ended)", w.pid)?,
    }
    for a in &v.accounts {
        match &a.status {
            Some(s) => {
                // A process that ended without saying so (killed) left its
                // last state behind: say what it was.
                let state = if a.running || s.state == "stopped" {
                    format!("{} since {}", s.state, s.since)
                } else {
                    format!("{} since {}, as its watch left it", s.state, s.since)
                };
                let mode = match (s.state.as_str(), s.mode.as_deref()) {
                    ("connected", Some("idle")) => ", new mail by IDLE",
                    ("connected", Some(_)) => ", new mail by polling",
                    _ => "",
                };
                writeln!(out, "{}: {state}{mode}", s.account)?;
                writeln!(out, "  last pass    {}", or_never(&s.last_pass))?;
                writeln!(out, "  last sweep   {}", or_never(&s.last_sweep))?;
                match (&s.last_error, &s.last_error_time) {
                    (Some(e), Some(t)) => writeln!(
                        out,
                        "  last error   {t} ({} in a row): {}",
                        s.errors_in_row,
                        crate::display::escape(e)
                    )?,
                    _ => writeln!(out, "  last error   none")?,
                }
                writeln!(out, "  reconnects   {}", s.reconnects)?;
            }
            None => writeln!(
                out,
                "{}: not watched (only `run` has acted)",
                a.account.as_deref().unwrap_or("")
            )?,
        }
        writeln!(out, "  acted today  {}", messages(a.acted_today))?;
        for m in &a.mailboxes {
            writeln!(
                out,
                "  {}: last pass {}, last sweep {}, {} acted on today",
                crate::display::escape(&m.mailbox),
                or_never(&m.last_pass),
                or_never(&m.last_sweep),
                messages(m.acted_today)
            )?;
        }
    }
    Ok(())
}

pub fn execute(args: &StatusArgs) -> Outcome {
    let path = args.state.clone().unwrap_or_else(state::default_path);
    let v = match State::open_read_only(&path).and_then(|s| view(&path, s.as_ref())) {
        Ok(v) => v,
        Err(e) => return super::state_failed(&e),
    };
    let mut out = Stdout::new();
    let _ = match args.format {
        Format::Json => writeln!(out, "{}", serde_json::to_string(&v).expect("serializable")),
        Format::Text => text(&v, &mut out),
    };
    let _ = out.flush();
    Outcome::Success
}
