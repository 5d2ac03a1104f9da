//! Accounts: secrets in a real Secret Service (gnome-keyring-daemon on a private session bus, see
//! src/test_keyring.rs) and the refusal when no keyring is reachable, through the real `atlas`
//! binary.

mod calendar;
pub(crate) mod connect;
pub(crate) mod fake_auth;
mod fake_graph_calendar;
mod fake_microsoft;
mod gmail;
mod keyring;
pub(crate) mod microsoft;
mod microsoft_day;
mod oauth;
