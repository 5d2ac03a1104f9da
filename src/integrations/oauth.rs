//! OAuth 2.0 for a desktop app (RFC 8252): the authorization code grant with PKCE (S256), a
//! loopback redirect on `127.0.0.1` at a port the system picks, and a `state` compared in
//! constant time; token refresh and revocation. Built on the `oauth2` crate, whose requests go
//! through Atlas's reqwest client (a closure adapter: `oauth2`'s own reqwest feature is another
//! major version).
//!
//! [`begin`] binds the listener and builds the URL to open; [`Pending::finish`] waits (bounded)
//! for the browser to come back and exchanges the code. Nothing here logs or formats a token:
//! [`TokenSet`]'s `Debug` masks them, and error messages carry only what the server said.

use std::time::Duration;

use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError,
    Scope, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::loopback::{Callback, Loopback};

/// Where a provider's authorization server is, and who Atlas is to it.
#[derive(Clone)]
pub struct Endpoints {
    /// The authorization endpoint the browser opens.
    pub auth_url: String,
    /// The token endpoint.
    pub token_url: String,
    /// The revocation endpoint (RFC 7009 form `token=`), if the provider has one.
    pub revoke_url: Option<String>,
    /// The user's OAuth client id.
    pub client_id: String,
    /// Its secret (Google's desktop clients have one, not confidential, that the token endpoint
    /// still requires).
    pub client_secret: Option<String>,
    /// The scopes asked for.
    pub scopes: Vec<String>,
    /// Extra authorization parameters (Google: `access_type=offline`, `prompt=consent`, without
    /// which no refresh token comes back).
    pub extra: Vec<(String, String)>,
}

impl std::fmt::Debug for Endpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoints")
            .field("auth_url", &self.auth_url)
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// Tokens as the keyring keeps them (JSON). `Debug` shows no token.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenSet {
    /// The bearer token for API calls.
    pub access_token: String,
    /// The token that gets new access tokens, if the server gave one.
    pub refresh_token: Option<String>,
    /// When the access token expires (Unix seconds), if the server said.
    pub expires_at: Option<i64>,
    /// The scopes granted, space-separated, if the server said.
    pub scope: Option<String>,
    /// The secret that goes with a pasted API key (Binance), never sent itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Pasted by the user (`--token`), not granted through OAuth: it cannot be refreshed or
    /// revoked from here.
    #[serde(default)]
    pub pasted: bool,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet")
            .field("access_token", &"***")
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "***"))
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("pasted", &self.pasted)
            .finish()
    }
}

impl TokenSet {
    /// A pasted credential: a token (or API key) and, for key + secret providers, its secret.
    pub fn pasted(token: String, secret: Option<String>) -> TokenSet {
        let set = TokenSet {
            access_token: token,
            refresh_token: None,
            expires_at: None,
            scope: None,
            secret,
            pasted: true,
        };
        set.register();
        set
    }

    /// Registers every credential in it with the process redactor.
    pub fn register(&self) {
        let r = crate::redact::process();
        r.add(&self.access_token);
        for s in [&self.refresh_token, &self.secret].into_iter().flatten() {
            r.add(s);
        }
    }

    /// Whether the access token expires within `margin` of `now` (Unix seconds).
    pub fn expires_within(&self, now: i64, margin: Duration) -> bool {
        self.expires_at
            .is_some_and(|at| at - now <= margin.as_secs() as i64)
    }
}

/// What went wrong in an OAuth step.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OAuthError {
    /// An endpoint in config is not a URL.
    #[error("`{field}` is not a valid URL ({value}): {reason}")]
    BadUrl {
        /// Which setting.
        field: &'static str,
        /// Its value.
        value: String,
        /// Why.
        reason: String,
    },
    /// The loopback listener could not start.
    #[error("cannot listen for the sign-in redirect on 127.0.0.1: {0}")]
    Listen(String),
    /// The browser never came back.
    #[error(
        "no sign-in redirect arrived within {0} s: finish signing in in the browser, or run the command again"
    )]
    Timeout(u64),
    /// The redirect's `state` was not the one sent: a forged or stale redirect.
    #[error(
        "the sign-in redirect carried the wrong `state` (a stale or forged redirect): nothing was stored; run the command again"
    )]
    StateMismatch,
    /// The user (or the server) refused.
    #[error("sign-in was refused: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Denied {
        /// The `error` parameter (`access_denied`).
        error: String,
        /// The `error_description`, if any.
        description: Option<String>,
    },
    /// The redirect had neither a code nor an error.
    #[error("the sign-in redirect carried no authorization code")]
    NoCode,
    /// The token endpoint refused the grant: a reused or expired code, a revoked refresh token.
    #[error("the authorization server refused: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Refused {
        /// The OAuth error code (`invalid_grant`, `invalid_client`, ...).
        error: String,
        /// What the server said, if anything.
        description: Option<String>,
    },
    /// The token endpoint could not be reached or answered something that is not OAuth.
    #[error("the token endpoint failed: {0}")]
    Http(String),
}

impl OAuthError {
    /// Whether this means the grant is dead (revoked or expired refresh token): only a new
    /// sign-in helps.
    pub fn is_invalid_grant(&self) -> bool {
        matches!(self, OAuthError::Refused { error, .. } if error == "invalid_grant")
    }
}

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

fn url<T>(
    field: &'static str,
    value: &str,
    make: fn(String) -> Result<T, oauth2::url::ParseError>,
) -> Result<T, OAuthError> {
    make(value.to_owned()).map_err(|e| OAuthError::BadUrl {
        field,
        value: value.to_owned(),
        reason: e.to_string(),
    })
}

fn client(ep: &Endpoints) -> Result<Client, OAuthError> {
    let mut c = BasicClient::new(ClientId::new(ep.client_id.clone()))
        .set_auth_uri(url("auth_url", &ep.auth_url, AuthUrl::new)?)
        .set_token_uri(url("token_url", &ep.token_url, TokenUrl::new)?)
        // Google and most providers take the client's credentials in the form body.
        .set_auth_type(AuthType::RequestBody);
    if let Some(s) = &ep.client_secret {
        c = c.set_client_secret(ClientSecret::new(s.clone()));
    }
    Ok(c)
}

/// A sign-in under way: the URL to open and the listener waiting for its redirect.
pub struct Pending {
    url: String,
    state: CsrfToken,
    verifier: PkceCodeVerifier,
    redirect: String,
    listener: Loopback,
    endpoints: Endpoints,
}

impl Pending {
    /// The URL the user opens.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The redirect URI (`http://127.0.0.1:PORT/callback`).
    pub fn redirect_uri(&self) -> &str {
        &self.redirect
    }

    /// Waits up to `limit` for the redirect, checks it and exchanges the code for tokens.
    pub async fn finish(
        self,
        http: &reqwest::Client,
        limit: Duration,
    ) -> Result<TokenSet, OAuthError> {
        let expected = self.state.secret().clone();
        let cb = self
            .listener
            .wait(limit, move |cb: &Callback| check(&expected, cb))
            .await?;
        let code = match cb {
            Callback {
                code: Some(code), ..
            } => code,
            _ => return Err(OAuthError::NoCode),
        };
        let client = client(&self.endpoints)?.set_redirect_uri(url(
            "redirect",
            &self.redirect,
            RedirectUrl::new,
        )?);
        let token = client
            .exchange_code(AuthorizationCode::new(code))
            .set_pkce_verifier(self.verifier)
            .request_async(&Http(http.clone()))
            .await
            .map_err(token_error)?;
        Ok(token_set(&token, None))
    }
}

/// Checks a redirect: the state first (a redirect with the wrong state is refused whatever
/// else it says), then the provider's error.
fn check(expected: &str, cb: &Callback) -> Result<(), OAuthError> {
    let got = cb.state.as_deref().unwrap_or("");
    if !bool::from(got.as_bytes().ct_eq(expected.as_bytes())) {
        return Err(OAuthError::StateMismatch);
    }
    if let Some(error) = &cb.error {
        return Err(OAuthError::Denied {
            error: error.clone(),
            description: cb.error_description.clone(),
        });
    }
    if cb.code.is_none() {
        return Err(OAuthError::NoCode);
    }
    Ok(())
}

/// Starts a sign-in: binds `127.0.0.1:0` and builds the authorization URL (PKCE S256, a random
/// state, the scopes and extra parameters).
pub async fn begin(endpoints: &Endpoints) -> Result<Pending, OAuthError> {
    let listener = Loopback::bind().await?;
    let redirect = format!("http://127.0.0.1:{}/callback", listener.port());
    let client = client(endpoints)?.set_redirect_uri(url("redirect", &redirect, RedirectUrl::new)?);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut req = client
        .authorize_url(CsrfToken::new_random)
        .add_scopes(endpoints.scopes.iter().cloned().map(Scope::new))
        .set_pkce_challenge(challenge);
    for (k, v) in &endpoints.extra {
        req = req.add_extra_param(k.clone(), v.clone());
    }
    let (auth_url, state) = req.url();
    Ok(Pending {
        url: auth_url.to_string(),
        state,
        verifier,
        redirect,
        listener,
        endpoints: endpoints.clone(),
    })
}

/// New tokens from a refresh token. A server that sends no new refresh token keeps the old one.
pub async fn refresh(
    endpoints: &Endpoints,
    http: &reqwest::Client,
    refresh_token: &str,
) -> Result<TokenSet, OAuthError> {
    let client = client(endpoints)?;
    let rt = RefreshToken::new(refresh_token.to_owned());
    let token = client
        .exchange_refresh_token(&rt)
        .request_async(&Http(http.clone()))
        .await
        .map_err(token_error)?;
    Ok(token_set(&token, Some(refresh_token)))
}

/// Revokes `token` where the provider has a revocation endpoint (RFC 7009; Google revokes the
/// whole grant). Returns false when there is none.
pub async fn revoke(
    endpoints: &Endpoints,
    http: &reqwest::Client,
    token: &str,
) -> Result<bool, OAuthError> {
    let Some(revoke) = &endpoints.revoke_url else {
        return Ok(false);
    };
    let resp = http
        .post(revoke)
        .form(&[("token", token)])
        .send()
        .await
        .map_err(|e| OAuthError::Http(e.without_url().to_string()))?;
    let status = resp.status();
    // 200: revoked; 400 invalid_token: already dead, which is what was wanted.
    if status.is_success() || status == reqwest::StatusCode::BAD_REQUEST {
        Ok(true)
    } else {
        Err(OAuthError::Http(format!(
            "revocation answered HTTP {status}"
        )))
    }
}

fn token_set(t: &oauth2::basic::BasicTokenResponse, old_refresh: Option<&str>) -> TokenSet {
    let now = chrono::Utc::now().timestamp();
    let set = TokenSet {
        access_token: t.access_token().secret().clone(),
        refresh_token: t
            .refresh_token()
            .map(|r| r.secret().clone())
            .or_else(|| old_refresh.map(str::to_owned)),
        expires_at: t.expires_in().map(|d| now + d.as_secs() as i64),
        scope: t
            .scopes()
            .map(|s| s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")),
        secret: None,
        pasted: false,
    };
    set.register();
    set
}

fn token_error<E: std::error::Error>(
    e: RequestTokenError<E, oauth2::basic::BasicErrorResponse>,
) -> OAuthError {
    match e {
        RequestTokenError::ServerResponse(r) => OAuthError::Refused {
            error: r.error().as_ref().to_owned(),
            description: r.error_description().cloned(),
        },
        RequestTokenError::Request(e) => OAuthError::Http(e.to_string()),
        // Slack answers 200 `{"ok": false, "error": "invalid_code"}`: not OAuth, but it says why.
        RequestTokenError::Parse(e, body) => {
            match serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
            {
                Some(error) => OAuthError::Refused {
                    error,
                    description: None,
                },
                None => OAuthError::Http(format!("the token response is not OAuth JSON: {e}")),
            }
        }
        RequestTokenError::Other(s) => OAuthError::Http(s),
    }
}

/// The adapter from `oauth2`'s requests to reqwest (redirects off, as RFC 6749 wants for the
/// token endpoint; the client's own timeout bounds it). A named type with a boxed `Send` future
/// rather than a closure: a closure's future borrows with a lifetime the compiler cannot prove
/// `Send` for every caller, and these futures run on spawned tasks.
struct Http(reqwest::Client);

impl<'c> oauth2::AsyncHttpClient<'c> for Http {
    type Error = HttpError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<oauth2::HttpResponse, HttpError>> + Send + 'c>,
    >;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(send(self.0.clone(), request))
    }
}

async fn send(
    http: reqwest::Client,
    req: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, HttpError> {
    let (parts, body) = req.into_parts();
    let resp = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|e| HttpError(e.without_url().to_string()))?;
    let mut out = oauth2::http::Response::builder().status(resp.status());
    for (k, v) in resp.headers() {
        out = out.header(k, v);
    }
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| HttpError(e.without_url().to_string()))?;
    out.body(bytes.to_vec())
        .map_err(|e| HttpError(e.to_string()))
}

/// A transport failure talking to the token endpoint.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

/// The HTTP client OAuth and the provider clients use: no redirects, bounded.
pub fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("atlas/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}
