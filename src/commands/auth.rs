//! `mailwarden auth ACCOUNT`: the one-time OAuth2 consent for an account
//! with `oauth2: { provider | endpoints, client_id }`. Runs the loopback or
//! the device flow (`oauth::flow`), then stores the refresh token
//! (`oauth::store`), from which `run` and `watch` get access tokens by
//! themselves. Exit 0 when stored, 2 when the account cannot be authorized
//! so (unknown, or no built-in OAuth2), 3 when the consent or the token
//! request failed.

use std::time::Duration;

use crate::cli::{ConfigArg, Outcome};
use crate::config::SecretSource;
use crate::oauth::flow::{self, Flow, Place};
use crate::oauth::store::{self, Stored};

#[derive(Debug, Clone, clap::Args)]
pub struct AuthArgs {
    /// The account, as named under `accounts:`
    pub account: String,
    #[command(flatten)]
    pub config: ConfigArg,
    /// Device flow: enter a code on any device's browser (where the provider has one)
    #[arg(long, conflicts_with = "browser")]
    pub device: bool,
    /// Browser flow: open a URL in a browser on this machine, which comes back to 127.0.0.1
    #[arg(long)]
    pub browser: bool,
    /// How long to wait for the consent
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = crate::config::units::parse_duration)]
    pub timeout: Duration,
}

pub fn execute(args: &AuthArgs) -> Outcome {
    let config = match super::load_config(&args.config.resolve()) {
        Ok(c) => c,
        Err(outcome) => return outcome,
    };
    if let Err(outcome) = super::check_selection(&config, Some(&args.account), None) {
        return outcome;
    }
    let account = config.account(&args.account).expect("checked above");
    let SecretSource::OAuth2Client(client) = &account.secret else {
        crate::say!(
            "mailwarden: account {:?} does not use the built-in OAuth2 flow; give it `oauth2: {{ provider: google | microsoft, client_id: ... }}` (docs/setup.md)",
            account.name
        );
        return Outcome::ConfigInvalid;
    };
    let asked = match (args.device, args.browser) {
        (true, _) => Some(Flow::Device),
        (_, true) => Some(Flow::Loopback),
        _ => None,
    };
    let (flow, why) = match flow::choose(asked, client.device_url.is_some(), Place::here()) {
        Ok(chosen) => chosen,
        Err(e) => {
            crate::say!("mailwarden: {e}");
            return Outcome::ConfigInvalid;
        }
    };
    let mut out = std::io::stdout();
    let _ = std::io::Write::write_fmt(
        &mut out,
        format_args!(
            "Authorizing account {} ({}) with {}, by the {} flow: {why}.\n",
            account.name,
            account.username,
            client
                .provider
                .map_or("the endpoints configured", |p| p.name()),
            match flow {
                Flow::Loopback => "browser",
                Flow::Device => "device code",
            },
        ),
    );
    let runtime = match super::runtime(1) {
        Ok(rt) => rt,
        Err(outcome) => return outcome,
    };
    let granted = runtime.block_on(flow::run(flow, account, client, args.timeout, &mut out));
    let failed = |e: &dyn std::fmt::Display| {
        crate::say!(
            "mailwarden: authorizing account {:?} failed: {e}",
            account.name
        );
        Outcome::ConnectFailed
    };
    let granted = match granted {
        Ok(g) => g,
        Err(e) => return failed(&e),
    };
    let Some(refresh_token) = granted.refresh_token else {
        return failed(
            &"the provider gave an access token but no refresh token, so mailwarden could not log in again later (Microsoft needs the offline_access scope)",
        );
    };
    let stored = Stored {
        refresh_token,
        client_id: client.client_id.clone(),
        token_url: client.token_url.clone(),
    };
    match store::save(&store::default_dir(), &account.name, &stored) {
        Ok(path) => {
            let _ = std::io::Write::write_fmt(
                &mut out,
                format_args!(
                    "Authorized. The refresh token is stored in {} (readable by you alone); `mailwarden run` and `watch` now log in by themselves.\n",
                    path.display()
                ),
            );
            Outcome::Success
        }
        Err(e) => {
            crate::say!("mailwarden: cannot store the refresh token: {e}");
            Outcome::StateFailed
        }
    }
}
