//! Spotify (Web API, `https://api.spotify.com/v1`): OAuth 2.0 with PKCE and no client secret
//! (the user's own Spotify app; its redirect URI `http://127.0.0.1/callback`, as Spotify allows
//! any port on the loopback address). Refresh tokens may be single-use: a refresh that returns a
//! new one replaces it ([`super::oauth::refresh`]). Operations of the `spotify` action, all on
//! `/me/player`:
//!
//! - `play`, `pause`, `next`, `previous`: `{done: OP}`.
//! - `now_playing`: `{playing, track, artist, album}` (`playing: false` and no track when
//!   nothing plays: Spotify's 204).
//! - `volume` (`percent`, 0 to 100): `{volume}`.
//! - `playlist` (`name`): the user's playlists (`next` followed, up to 200) matched by name,
//!   exactly (case aside) first, then the first that contains it; `{playlist, uri}`.
//!
//! Spotify's refusals become sentences: `NO_ACTIVE_DEVICE` (404: open Spotify on a device),
//! `PREMIUM_REQUIRED` (403: control needs Premium).

use reqwest::Method;
use serde_json::{Value, json};

use super::api::Request;
use super::services::{self, ServiceError, need, unknown_op};
use super::{AuthHeader, Health, Integrations, OAuthSpec, Provider, Spec};
use crate::actions::{ServiceKind, ServiceOp, op};

/// Spotify's declaration in the registry.
pub const SPEC: Spec = Spec {
    name: "spotify",
    title: "Spotify",
    oauth: Some(OAuthSpec {
        auth_url: "https://accounts.spotify.com/authorize",
        token_url: "https://accounts.spotify.com/api/token",
        revoke_url: None,
        scopes: &[
            "user-read-playback-state",
            "user-modify-playback-state",
            "user-read-currently-playing",
            "playlist-read-private",
        ],
        extra: &[],
        client_hint: "your Spotify app's client id (no secret: PKCE), with http://127.0.0.1/callback as its redirect URI",
    }),
    token: None,
    api_url: "https://api.spotify.com/v1",
    auth: AuthHeader::Bearer,
    headers: &[],
    ok_field: false,
    health: Health::Get("/me"),
    run: Some(run_boxed),
    watch: None,
    mail: None,
    calendar: None,
};

const P: Provider = Provider::Spotify;

/// The `spotify` action kind's operations (see the module docs).
#[linkme::distributed_slice(crate::actions::SERVICE_KINDS)]
static KIND: ServiceKind = ServiceKind {
    name: "spotify",
    doc: "Spotify: play, pause, next, previous, now_playing, volume, playlist (atlas integration connect spotify).",
    ops: &[
        op("play", &[], &[]),
        op("pause", &[], &[]),
        op("next", &[], &[]),
        op("previous", &[], &[]),
        op("now_playing", &[], &[]),
        op("volume", &["percent"], &[]),
        op("playlist", &["name"], &[]),
    ],
};

super::boxed_run!(run);

/// Carries out one operation; see the module docs.
pub async fn run(all: &Integrations, op: &ServiceOp) -> Result<Value, ServiceError> {
    let player = |method: Method, path: &str| {
        P.request(method, services::url(all, P, &format!("/me/player{path}")))
    };
    let done = |what: &str| json!({ "done": what });
    match op.op.as_str() {
        "play" => control(all, player(Method::PUT, "/play").json(json!({})))
            .await
            .map(|_| done("play")),
        "pause" => control(all, player(Method::PUT, "/pause"))
            .await
            .map(|_| done("pause")),
        "next" => control(all, player(Method::POST, "/next"))
            .await
            .map(|_| done("next")),
        "previous" => control(all, player(Method::POST, "/previous"))
            .await
            .map(|_| done("previous")),
        "now_playing" => {
            let v = services::call(all, P, &player(Method::GET, "/currently-playing")).await?;
            if v.is_null() || v["item"].is_null() {
                return Ok(
                    json!({ "playing": false, "track": null, "artist": null, "album": null }),
                );
            }
            let artists: Vec<&str> = v["item"]["artists"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a["name"].as_str())
                .collect();
            Ok(
                json!({ "playing": v["is_playing"].as_bool().unwrap_or(false), "track": v["item"]["name"],
                "artist": artists.join(", "), "album": v["item"]["album"]["name"] }),
            )
        }
        "volume" => {
            let percent = op
                .number("percent")
                .ok_or_else(|| ServiceError::Input("`percent` is not a number".into()))?
                .clamp(0.0, 100.0)
                .round() as u32;
            control(
                all,
                player(Method::PUT, "/volume").query("volume_percent", percent.to_string()),
            )
            .await?;
            Ok(json!({ "volume": percent }))
        }
        "playlist" => {
            let name = need(op, "name")?;
            let (title, uri) = find_playlist(all, &name).await?;
            control(
                all,
                player(Method::PUT, "/play").json(json!({ "context_uri": uri })),
            )
            .await?;
            Ok(json!({ "playlist": title, "uri": uri }))
        }
        _ => Err(unknown_op("spotify", op)),
    }
}

/// A player command, its refusals said as what to do.
async fn control(all: &Integrations, req: Request) -> Result<Value, ServiceError> {
    match services::call(all, P, &req).await {
        Err(e) => Err(match e.api().and_then(|a| a.reason()) {
            Some("NO_ACTIVE_DEVICE") => ServiceError::Provider(
                "Spotify has no active device: start playing on a phone or computer first".into(),
            ),
            Some("PREMIUM_REQUIRED") => {
                ServiceError::Provider("Spotify lets only Premium accounts control playback".into())
            }
            _ => e,
        }),
        ok => ok,
    }
}

async fn find_playlist(all: &Integrations, name: &str) -> Result<(String, String), ServiceError> {
    let wanted = name.to_lowercase();
    let mut url = services::url(all, P, "/me/playlists?limit=50");
    let mut seen: Vec<(String, String)> = Vec::new();
    for _ in 0..4 {
        let v = services::call(all, P, &P.request(Method::GET, url.clone())).await?;
        for p in v["items"].as_array().into_iter().flatten() {
            if let (Some(n), Some(u)) = (p["name"].as_str(), p["uri"].as_str()) {
                seen.push((n.to_owned(), u.to_owned()));
            }
        }
        match v["next"].as_str() {
            Some(next) if next.starts_with(&all.api_url(P)) => url = next.to_owned(),
            _ => break,
        }
    }
    let exact = seen.iter().find(|(n, _)| n.to_lowercase() == wanted);
    exact
        .or_else(|| {
            seen.iter()
                .find(|(n, _)| n.to_lowercase().contains(&wanted))
        })
        .cloned()
        .ok_or_else(|| ServiceError::Input(format!("you have no Spotify playlist called {name}")))
}
