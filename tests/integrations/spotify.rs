//! Spotify against the fake, signed in through the strict OAuth fake: now playing (and its 204),
//! the player commands, volume, a playlist found by name across pages, `NO_ACTIVE_DEVICE` and
//! `PREMIUM_REQUIRED` said as what to do, an expired access token refreshed, Spotify down.

use atlas::integrations::Provider;
use serde_json::json;

use super::harness::setup;

#[tokio::test]
async fn spotify_plays_pauses_skips_and_finds_playlists() {
    let s = setup().await;
    s.sign_in(Provider::Spotify).await;
    let asked = s.auth.get(|i| i.seen_auth_params[0].clone());
    assert!(
        asked["scope"].contains("user-modify-playback-state"),
        "{asked:?}"
    );
    let v = s.op("spotify", "now_playing", &[]).await.unwrap();
    assert_eq!(v["playing"], false);
    s.fake.set(|i| {
        i.playing = Some(json!({"is_playing": true, "item": {"name": "Clair de lune", "artists": [{"name": "Claude Debussy"}, {"name": "Alexis Weissenberg"}], "album": {"name": "Suite bergamasque"}}}));
        i.playlists = ["Morning", "Focus", "Road trip", "Deep Focus", "Jazz"].iter().enumerate()
            .map(|(n, name)| json!({"name": name, "uri": format!("spotify:playlist:{n}")})).collect();
    });
    let v = s.op("spotify", "now_playing", &[]).await.unwrap();
    assert_eq!(v["track"], "Clair de lune");
    assert_eq!(v["artist"], "Claude Debussy, Alexis Weissenberg");
    for op in ["next", "pause", "play", "previous"] {
        assert_eq!(s.op("spotify", op, &[]).await.unwrap()["done"], op);
    }
    assert_eq!(
        s.op("spotify", "volume", &[("percent", json!("140"))])
            .await
            .unwrap()["volume"],
        100
    );
    // "focus" is exactly "Focus", not "Deep Focus"; "jazz" is on the third page.
    assert_eq!(
        s.op("spotify", "playlist", &[("name", json!("focus"))])
            .await
            .unwrap()["playlist"],
        "Focus"
    );
    assert_eq!(
        s.op("spotify", "playlist", &[("name", json!("jazz"))])
            .await
            .unwrap()["uri"],
        "spotify:playlist:4"
    );
    assert_eq!(
        s.fake.get(|i| i.player.clone()),
        [
            "next",
            "pause",
            "play",
            "previous",
            "volume 100",
            "play spotify:playlist:1",
            "play spotify:playlist:4"
        ]
    );
    let err = s
        .op("spotify", "playlist", &[("name", json!("metal"))])
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "you have no Spotify playlist called metal");
}

#[tokio::test]
async fn spotify_refusals_expiry_and_outage() {
    let s = setup().await;
    s.sign_in(Provider::Spotify).await;
    s.fake.set(|i| i.device = false);
    let err = s.op("spotify", "next", &[]).await.unwrap_err();
    assert!(err.to_string().contains("no active device"), "{err}");
    s.fake.set(|i| i.premium = false);
    let err = s.op("spotify", "pause", &[]).await.unwrap_err();
    assert!(err.to_string().contains("Premium"), "{err}");
    s.fake.set(|i| {
        i.premium = true;
        i.device = true;
    });
    // Expired: 401, one refresh, the retry.
    s.auth.set(|i| i.access.clear());
    assert!(s.op("spotify", "next", &[]).await.is_ok());
    assert_eq!(s.auth.get(|i| i.refreshes), 1);
    s.fake.set(|i| i.down = true);
    let err = s.op("spotify", "now_playing", &[]).await.unwrap_err();
    assert!(err.to_string().contains("HTTP 503"), "{err}");
}
