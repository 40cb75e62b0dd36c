//! `mailwarden check`: validates the configuration and, when it is valid,
//! prints one line per account and per rule so the user sees what was read.

use std::path::Path;

use super::load_config;
use crate::cli::Outcome;
use crate::config::{Config, SecretSource, Tls};
use crate::output::{Closed, Stdout};
use crate::rules::{RuleAccounts, describe_conditions};

pub fn execute(path: &Path) -> Outcome {
    let config = match load_config(path) {
        Ok(c) => c,
        Err(outcome) => return outcome,
    };
    // What holds but may surprise: said, not refused.
    for w in &config.warnings {
        let mut w = w.clone();
        w.message = format!("warning: {}", w.message);
        crate::say!("{}", w.render(&path.display().to_string()));
    }
    // The configuration is valid whether or not all of the summary was
    // read (`| head`).
    let _ = summarise(&config, path, &mut Stdout::new());
    Outcome::Success
}

fn summarise(config: &Config, path: &Path, out: &mut Stdout) -> Result<(), Closed> {
    for a in &config.accounts {
        let tls = match a.tls {
            Tls::Implicit => "implicit TLS",
            Tls::StartTls => "STARTTLS",
            Tls::None => "no TLS",
        };
        let secret = match &a.secret {
            SecretSource::Command(_) => "secret from password_command".to_string(),
            SecretSource::Env(_) => "secret from password_env".to_string(),
            SecretSource::File(_) => "secret from password_file".to_string(),
            SecretSource::OAuth2 { .. } => "secret from oauth2 token_command".to_string(),
            SecretSource::OAuth2Client(c) => format!(
                "OAuth2 with {} (client {}; `mailwarden auth {}` once)",
                c.provider.map_or("the endpoints given", |p| p.name()),
                c.client_id,
                a.name
            ),
        };
        // What a `provider:` preset filled in, so that nothing is hidden.
        let preset = match a.provider {
            Some(p) if !a.preset_filled.is_empty() => {
                format!(
                    ", preset {} filled {}",
                    p.name(),
                    a.preset_filled.join(", ")
                )
            }
            Some(p) => format!(", preset {} (all given)", p.name()),
            None => String::new(),
        };
        writeln!(
            out,
            "account {}: {} at {}:{} ({tls}{preset}), {secret}, watches {}",
            a.name,
            a.username,
            a.host,
            a.port,
            a.watch.join(", ")
        )?;
    }
    for r in &config.rules {
        let actions: Vec<String> = r.actions.iter().map(ToString::to_string).collect();
        let mut line = format!(
            "rule \"{}\" ({}: {}): {} -> {}",
            r.name,
            match (&r.accounts, config.accounts.as_slice()) {
                (RuleAccounts::Every, [only]) => only.name.clone(),
                (accounts, _) => accounts.to_string(),
            },
            r.mailboxes.join(", "),
            describe_conditions(&r.conditions),
            if actions.is_empty() {
                "no actions".into()
            } else {
                actions.join("; ")
            }
        );
        if r.stop
            && !r
                .actions
                .iter()
                .any(|a| matches!(a, crate::rules::Action::Stop))
        {
            line.push_str("; stop");
        }
        writeln!(out, "{line}")?;
    }
    writeln!(
        out,
        "{}: OK, {} account{}, {} rule{}",
        path.display(),
        config.accounts.len(),
        if config.accounts.len() == 1 { "" } else { "s" },
        config.rules.len(),
        if config.rules.len() == 1 { "" } else { "s" }
    )?;
    out.flush()
}
