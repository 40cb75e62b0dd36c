//! Stage one of loading: serde structs that mirror the YAML file, unknown
//! keys reported (see `yaml`). Shapes that vary (`match`, `actions`,
//! `mailbox`) stay positioned [`Value`]s for `validate` to read.

use serde::Deserialize;

use super::yaml::{Spanned, Value};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    pub version: Option<Spanned<Value>>,
    pub accounts: Option<Spanned<Value>>,
    pub rules: Option<Spanned<Value>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RawTls {
    Implicit,
    Starttls,
    None,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccount {
    pub host: Spanned<String>,
    pub port: Option<Spanned<u16>>,
    pub tls: Option<Spanned<RawTls>>,
    pub ca_file: Option<Spanned<String>>,
    pub username: Spanned<String>,
    pub password_command: Option<Spanned<String>>,
    pub password_env: Option<Spanned<String>>,
    pub password_file: Option<Spanned<String>>,
    pub oauth2: Option<Spanned<RawOAuth2>>,
    pub allow_plaintext: Option<bool>,
    pub create_folders: Option<bool>,
    pub watch: Option<Spanned<Value>>,
    pub poll_interval: Option<Spanned<String>>,
    pub idle: Option<bool>,
    pub sweep: Option<Spanned<String>>,
    pub idle_renewal: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOAuth2 {
    pub token_command: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub name: Spanned<String>,
    pub account: Option<Spanned<String>>,
    pub mailbox: Option<Spanned<Value>>,
    #[serde(rename = "match")]
    pub match_: Option<Spanned<Value>>,
    pub actions: Option<Spanned<Value>>,
    pub stop: Option<Spanned<bool>>,
}
