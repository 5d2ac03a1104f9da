use super::*;

/// A header lookup over fixed pairs (names lowercase, as the server hands them over).
fn headers(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let owned: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| {
        owned
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

const SLACK_BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";

#[test]
fn githubs_published_vector_verifies() {
    let h = headers(&[
        (
            "x-hub-signature-256",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        ),
        ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
    ]);
    let ok = verify(
        Scheme::Github,
        "It's a Secret to Everybody",
        h,
        b"Hello, World!",
        0,
    )
    .unwrap();
    assert_eq!(
        ok.delivery.as_deref(),
        Some("72d3162e-cc78-11e3-81ab-4c9367dc0958")
    );
}

#[test]
fn slacks_published_vector_verifies_within_the_window_only() {
    let h = || {
        headers(&[
            ("x-slack-request-timestamp", "1531420618"),
            (
                "x-slack-signature",
                "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
            ),
        ])
    };
    let secret = "8f742231b10e8888abcd99yyyzzz85a5";
    let body = SLACK_BODY.as_bytes();
    assert!(verify(Scheme::Slack, secret, h(), body, 1531420618 + 60).is_ok());
    assert_eq!(
        verify(Scheme::Slack, secret, h(), body, 1531420618 + 301),
        Err(Refusal::Stale { age: 301 })
    );
    assert_eq!(
        verify(Scheme::Slack, secret, h(), body, 1531420618 - 301),
        Err(Refusal::Stale { age: -301 })
    );
}

#[test]
fn standard_webhooks_reference_vector_verifies_among_several_signatures() {
    let body = br#"{"email":"test@example.com","username":"test_user"}"#;
    let secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let h = headers(&[
        ("webhook-id", "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk"),
        ("webhook-timestamp", "1649367553"),
        (
            "webhook-signature",
            "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
        ),
    ]);
    let ok = verify(Scheme::Standard, secret, h, body, 1649367553).unwrap();
    assert_eq!(
        ok.delivery.as_deref(),
        Some("msg_27UH4WbU6Z5A5EzD8u03UvzRbpk")
    );
}

#[test]
fn a_changed_byte_a_wrong_secret_or_a_missing_header_is_refused() {
    let signed = sign(Scheme::Github, "s3cret", b"{\"a\":1}", "d1", 0);
    let pairs: Vec<(&str, &str)> = signed
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let h = || headers(&pairs);
    assert!(verify(Scheme::Github, "s3cret", h(), b"{\"a\":1}", 0).is_ok());
    assert_eq!(
        verify(Scheme::Github, "s3cret", h(), b"{\"a\":2}", 0),
        Err(Refusal::Mismatch)
    );
    assert_eq!(
        verify(Scheme::Github, "other", h(), b"{\"a\":1}", 0),
        Err(Refusal::Mismatch)
    );
    assert_eq!(
        verify(Scheme::Github, "s3cret", headers(&[]), b"", 0),
        Err(Refusal::Missing("x-hub-signature-256"))
    );
    let short = headers(&[("x-hub-signature-256", "sha256=abcd")]);
    assert_eq!(
        verify(Scheme::Github, "s3cret", short, b"", 0),
        Err(Refusal::Mismatch),
        "a truncated signature is a mismatch, not a prefix match"
    );
    let bare = headers(&[("x-hub-signature-256", "757107ea")]);
    assert!(matches!(
        verify(Scheme::Github, "s3cret", bare, b"", 0),
        Err(Refusal::Malformed { .. })
    ));
}

#[test]
fn what_sign_produces_verifies_for_every_scheme() {
    let now = 1_700_000_000;
    for scheme in [
        Scheme::Github,
        Scheme::Slack,
        Scheme::Standard,
        Scheme::None,
    ] {
        let secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
        let signed = sign(scheme, secret, b"payload", "id-1", now);
        let pairs: Vec<(&str, &str)> = signed
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let got = verify(scheme, secret, headers(&pairs), b"payload", now + 5);
        assert!(got.is_ok(), "{scheme:?}: {got:?}");
        if scheme != Scheme::None {
            let bad = verify(scheme, secret, headers(&pairs), b"payloaD", now + 5);
            assert_eq!(bad, Err(Refusal::Mismatch), "{scheme:?}");
        }
    }
}

#[test]
fn refusals_name_headers_but_never_the_secret_or_signature() {
    let secret = "hunter2-very-secret";
    let signed = sign(Scheme::Slack, secret, b"x", "", 100);
    let pairs: Vec<(&str, &str)> = signed
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    for err in [
        verify(Scheme::Slack, secret, headers(&pairs), b"y", 100).unwrap_err(),
        verify(Scheme::Slack, secret, headers(&pairs), b"x", 10_000).unwrap_err(),
        verify(
            Scheme::Standard,
            "whsec_%%%",
            headers(&[
                ("webhook-id", "i"),
                ("webhook-timestamp", "1"),
                ("webhook-signature", "v1,AA=="),
            ]),
            b"",
            1,
        )
        .unwrap_err(),
    ] {
        let text = err.to_string();
        assert!(!text.contains(secret), "{text}");
        assert!(!text.contains(&signed[1].1), "{text}");
    }
}
