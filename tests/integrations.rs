//! The service integrations (GitHub, Slack, Discord, Notion, Spotify, Binance) against a local
//! fake of each ([`fake`]: the real services cannot be reached from here) and, for the OAuth
//! ones, the strict authorization fake of the accounts tests: every operation, the polling
//! triggers, each failure mode (a refused, expired or revoked credential, rate limits with
//! `Retry-After`, a provider that is down), the bundled workflows from a typed command and from a
//! schedule, and the command line with the keyring, scanned for leaked secrets.

mod binance;
mod chat;
mod cli;
mod failures;
mod fake;
mod fake_collab;
mod fake_personal;
mod github;
mod harness;
mod notion;
mod spotify;
mod workflows;
