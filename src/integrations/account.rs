//! One connected account: its tokens in the keyring, its status on disk, and the one way to get
//! an access token ([`Account::access_token`]) that refreshes before expiry and, after a 401,
//! once ([`Account::after_unauthorized`]).
//!
//! **Invariant**: at most one refresh per account at a time. An async mutex serialises the
//! refreshes of this process and an exclusive `flock` on `integrations/NAME.lock` those of
//! other Atlas processes (the daemon and a CLI run); whoever waited re-reads the keyring and
//! uses the token the other refreshed instead of refreshing again.
//!
//! **Invariant**: a dead grant (`invalid_grant` on refresh) marks the account `needs_reauth`
//! (status file, an `integration.needs_reauth` event, a desktop notification, each once), and
//! from then on every call fails at once with [`AccountError::NeedsReauth`] without asking the
//! server again: never a refresh loop. Only a new `atlas integration connect` clears it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::oauth::{self, Endpoints, OAuthError, TokenSet};
use super::pace::Pacer;
use crate::secrets::{SecretError, SecretVault};
use crate::triggers::events::{Event, EventHub};

/// Refresh an access token this long before it expires.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(120);

/// How long to wait for another process's refresh.
const LOCK_LIMIT: Duration = Duration::from_secs(30);

/// An account's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Never connected, or disconnected.
    Disconnected,
    /// Tokens present and last check fine.
    Connected,
    /// The grant is dead: `atlas integration connect NAME` again.
    NeedsReauth,
    /// The last check failed for another reason (network, server), see `reason`.
    Error,
}

impl State {
    /// As status shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Disconnected => "disconnected",
            State::Connected => "connected",
            State::NeedsReauth => "needs_reauth",
            State::Error => "error",
        }
    }
}

/// What the status file holds: nothing secret.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Status {
    /// The state.
    pub state: State,
    /// Why, for `needs_reauth` and `error`.
    pub reason: Option<String>,
    /// When the account was connected (RFC 3339).
    pub connected_at: Option<String>,
    /// The last health check (RFC 3339), if any.
    pub last_check: Option<String>,
    /// Consecutive failed checks (for the reconnect backoff).
    #[serde(default)]
    pub failures: u32,
}

impl Default for Status {
    fn default() -> Self {
        Status {
            state: State::Disconnected,
            reason: None,
            connected_at: None,
            last_check: None,
            failures: 0,
        }
    }
}

/// What can go wrong using an account.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AccountError {
    /// Not connected.
    #[error("{0} is not connected: run `atlas integration connect {0}`")]
    NotConnected(String),
    /// The grant is dead.
    #[error("{name} needs you to sign in again ({reason}): run `atlas integration connect {name}`")]
    NeedsReauth {
        /// The integration.
        name: String,
        /// What the server said.
        reason: String,
    },
    /// OAuth failed for another reason.
    #[error("{name}: {source}")]
    OAuth {
        /// The integration.
        name: String,
        /// What failed.
        source: OAuthError,
    },
    /// The keyring failed.
    #[error("{0}")]
    Secrets(String),
    /// The status file or lock could not be used.
    #[error("{name}: cannot use {path}: {reason}")]
    File {
        /// The integration.
        name: String,
        /// Which file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl From<SecretError> for AccountError {
    fn from(e: SecretError) -> Self {
        AccountError::Secrets(e.to_string())
    }
}

/// Where an account says what happened to it (an event and a desktop notification).
pub trait Announce: Send + Sync + 'static {
    /// The account `name` needs a new sign-in because of `reason`.
    fn needs_reauth(&self, name: &str, reason: &str);
}

/// Announces as a desktop notification (the manager adds the `integration.needs_reauth` event).
#[derive(Debug, Clone, Default)]
pub struct DesktopAnnounce;

impl Announce for DesktopAnnounce {
    fn needs_reauth(&self, name: &str, reason: &str) {
        let (title, body) = (
            format!("Atlas: sign in to {name} again"),
            format!("{reason}. Run `atlas integration connect {name}`."),
        );
        // Off the caller's thread; no notification service is not an error here.
        std::thread::spawn(move || {
            let _ = notify_rust::Notification::new()
                .appname("Atlas")
                .summary(&title)
                .body(&body)
                .show();
        });
    }
}

/// Publishes `integration.needs_reauth` on the hub, then passes the news on.
pub(crate) struct EventAnnounce {
    pub(crate) hub: Arc<std::sync::OnceLock<EventHub>>,
    pub(crate) next: Arc<dyn Announce>,
}

impl Announce for EventAnnounce {
    fn needs_reauth(&self, name: &str, reason: &str) {
        if let Some(hub) = self.hub.get() {
            hub.publish(Event::new(
                name,
                "integration.needs_reauth",
                json!({ "integration": name, "reason": reason }),
            ));
        }
        self.next.needs_reauth(name, reason);
    }
}

/// One account; see the module docs.
pub struct Account {
    name: String,
    endpoints: Option<Endpoints>,
    pacer: Pacer,
    vault: Arc<dyn SecretVault>,
    http: reqwest::Client,
    dir: PathBuf,
    announce: Arc<dyn Announce>,
    refresh: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Account {
    /// The account `name`, its files under `dir` (`integrations/` in the data dir); `endpoints`
    /// are its OAuth server's (`None` for a pasted token, which cannot be refreshed).
    pub fn new(
        name: &str,
        endpoints: Option<Endpoints>,
        vault: Arc<dyn SecretVault>,
        http: reqwest::Client,
        dir: &Path,
        announce: Arc<dyn Announce>,
    ) -> Account {
        Account {
            name: name.to_owned(),
            endpoints,
            pacer: Pacer::default(),
            vault,
            http,
            dir: dir.to_path_buf(),
            announce,
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    /// The integration's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its OAuth endpoints, if it signs in with OAuth.
    pub fn endpoints(&self) -> Option<&Endpoints> {
        self.endpoints.as_ref()
    }

    /// The pacing of its calls.
    pub fn pacer(&self) -> &Pacer {
        &self.pacer
    }

    /// The HTTP client it uses.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The keyring item of its tokens.
    pub fn token_item(&self) -> String {
        format!("integration.{}.token", self.name)
    }

    fn status_path(&self) -> PathBuf {
        self.dir.join(format!("{}.json", self.name))
    }

    /// The status on disk (the default when there is none).
    pub fn status(&self) -> Status {
        std::fs::read(self.status_path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Writes the status (atomically: a temp file renamed).
    pub fn set_status(&self, status: &Status) -> Result<(), AccountError> {
        let path = self.status_path();
        let file_err = |e: std::io::Error| AccountError::File {
            name: self.name.clone(),
            path: path.clone(),
            reason: e.to_string(),
        };
        std::fs::create_dir_all(&self.dir).map_err(file_err)?;
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(status).unwrap_or_default();
        std::fs::write(&tmp, text).map_err(file_err)?;
        std::fs::rename(&tmp, &path).map_err(file_err)
    }

    /// The stored tokens.
    pub fn tokens(&self) -> Result<Option<TokenSet>, AccountError> {
        let Some(text) = self.vault.get(&self.token_item())? else {
            return Ok(None);
        };
        let set: TokenSet = serde_json::from_str(&text).map_err(|_| {
            AccountError::Secrets(format!(
                "the keyring item {} is not Atlas's token format: run `atlas integration connect {}`",
                self.token_item(),
                self.name
            ))
        })?;
        set.register();
        Ok(Some(set))
    }

    /// Stores new tokens and marks the account connected.
    pub fn store_connected(&self, tokens: &TokenSet) -> Result<(), AccountError> {
        self.save_tokens(tokens)?;
        let now = chrono::Utc::now().to_rfc3339();
        self.set_status(&Status {
            state: State::Connected,
            reason: None,
            connected_at: Some(now.clone()),
            last_check: Some(now),
            failures: 0,
        })
    }

    fn save_tokens(&self, tokens: &TokenSet) -> Result<(), AccountError> {
        let text = serde_json::to_string(tokens).unwrap_or_default();
        Ok(self.vault.set(&self.token_item(), &text)?)
    }

    /// Forgets the credentials without revoking them (a pasted token the provider refused).
    pub fn forget(&self) -> Result<(), AccountError> {
        self.vault.delete(&self.token_item())?;
        self.set_status(&Status::default())
    }

    /// Forgets the tokens (revoking them first where the provider can; a failed revocation is
    /// returned as a note, the tokens are deleted anyway).
    pub async fn disconnect(&self) -> Result<Option<String>, AccountError> {
        let note = match self.tokens()? {
            Some(t) if !t.pasted => {
                let token = t.refresh_token.as_deref().unwrap_or(&t.access_token);
                match &self.endpoints {
                    None => Some("no OAuth client is configured to revoke it with".to_owned()),
                    Some(ep) => match oauth::revoke(ep, &self.http, token).await {
                        Ok(true) => None,
                        Ok(false) => Some("the provider has no revocation endpoint".to_owned()),
                        Err(e) => Some(format!("revocation failed ({e}); the tokens are deleted")),
                    },
                }
            }
            // A pasted token: only its owner can revoke it, at the provider.
            Some(_) => Some(format!(
                "the token is forgotten here; revoke it in {}'s settings if it should die",
                self.name
            )),
            None => None,
        };
        self.vault.delete(&self.token_item())?;
        self.set_status(&Status::default())?;
        Ok(note)
    }

    /// A valid access token: the stored one, or a refreshed one when it expires within
    /// [`REFRESH_MARGIN`].
    pub async fn access_token(&self) -> Result<String, AccountError> {
        self.fail_if_dead()?;
        let tokens = self.require_tokens()?;
        let now = chrono::Utc::now().timestamp();
        if !tokens.expires_within(now, REFRESH_MARGIN) {
            return Ok(tokens.access_token);
        }
        self.refresh_unless(|t| !t.expires_within(now, REFRESH_MARGIN))
            .await
    }

    /// After the API answered 401 to `rejected`: a new access token, refreshed once (or the one
    /// another run refreshed meanwhile). The caller retries once with it and gives up on a
    /// second 401.
    pub async fn after_unauthorized(&self, rejected: &str) -> Result<String, AccountError> {
        self.fail_if_dead()?;
        let rejected = rejected.to_owned();
        self.refresh_unless(move |t| t.access_token != rejected)
            .await
    }

    fn fail_if_dead(&self) -> Result<(), AccountError> {
        let status = self.status();
        if status.state == State::NeedsReauth {
            return Err(AccountError::NeedsReauth {
                name: self.name.clone(),
                reason: status.reason.unwrap_or_else(|| "sign-in expired".into()),
            });
        }
        Ok(())
    }

    fn require_tokens(&self) -> Result<TokenSet, AccountError> {
        self.tokens()?
            .ok_or_else(|| AccountError::NotConnected(self.name.clone()))
    }

    /// Under both locks: re-reads the tokens and returns them when `fresh` says another
    /// refresh already happened, else refreshes.
    async fn refresh_unless(
        &self,
        fresh: impl Fn(&TokenSet) -> bool,
    ) -> Result<String, AccountError> {
        let _here = self.refresh.lock().await;
        let _there = self.file_lock().await?;
        self.fail_if_dead()?;
        let tokens = self.require_tokens()?;
        if fresh(&tokens) {
            return Ok(tokens.access_token);
        }
        let (Some(refresh_token), Some(endpoints)) =
            (tokens.refresh_token.clone(), self.endpoints.as_ref())
        else {
            let why = if tokens.pasted {
                "the provider refused the token (revoked, expired or lacking a permission)"
            } else {
                "no refresh token was granted"
            };
            return Err(self.dead(why.into()));
        };
        tracing::info!(integration = %self.name, "refreshing the access token");
        match oauth::refresh(endpoints, &self.http, &refresh_token).await {
            Ok(new) => {
                self.save_tokens(&new)?;
                Ok(new.access_token)
            }
            Err(e) if e.is_invalid_grant() => Err(self.dead(e.to_string())),
            Err(source) => Err(AccountError::OAuth {
                name: self.name.clone(),
                source,
            }),
        }
    }

    /// Marks the grant dead, announces it once, and returns the error to give.
    fn dead(&self, reason: String) -> AccountError {
        let mut status = self.status();
        let first = status.state != State::NeedsReauth;
        status.state = State::NeedsReauth;
        status.reason = Some(reason.clone());
        status.last_check = Some(chrono::Utc::now().to_rfc3339());
        if let Err(e) = self.set_status(&status) {
            tracing::warn!(integration = %self.name, error = %e, "cannot record needs_reauth");
        }
        if first {
            tracing::warn!(integration = %self.name, reason = %reason, "sign-in needed again");
            self.announce.needs_reauth(&self.name, &reason);
        }
        AccountError::NeedsReauth {
            name: self.name.clone(),
            reason,
        }
    }

    /// An exclusive lock on `NAME.lock` (other Atlas processes), waited for up to
    /// [`LOCK_LIMIT`].
    async fn file_lock(&self) -> Result<FileLock, AccountError> {
        let path = self.dir.join(format!("{}.lock", self.name));
        let name = self.name.clone();
        let err = move |path: &Path, reason: String| AccountError::File {
            name: name.clone(),
            path: path.to_path_buf(),
            reason,
        };
        std::fs::create_dir_all(&self.dir).map_err(|e| err(&self.dir, e.to_string()))?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| err(&path, e.to_string()))?;
        let deadline = tokio::time::Instant::now() + LOCK_LIMIT;
        loop {
            use std::os::fd::AsRawFd;
            // SAFETY: flock on a descriptor this function owns.
            let got = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
            if got {
                return Ok(FileLock(file));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(err(
                    &path,
                    format!(
                        "another Atlas process held the refresh lock for {} s",
                        LOCK_LIMIT.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Held while refreshing; the lock goes with the descriptor.
struct FileLock(#[allow(dead_code)] std::fs::File);
