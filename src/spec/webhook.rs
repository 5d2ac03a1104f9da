//! How a webhook trigger proves who sent a delivery: the scheme named in a workflow file
//! (`scheme: github`), shared by `workflow` (which reads it) and `triggers` (which verifies it).

use serde::{Deserialize, Serialize};

/// A webhook signature scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    /// GitHub's `X-Hub-Signature-256`.
    Github,
    /// Slack's `X-Slack-Signature` over `v0:timestamp:body`.
    Slack,
    /// Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
    Standard,
    /// No signature: anyone who can reach the port may start the workflow (said explicitly).
    None,
}

impl Scheme {
    /// The name as written in YAML.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Github => "github",
            Scheme::Slack => "slack",
            Scheme::Standard => "standard",
            Scheme::None => "none",
        }
    }
}

/// The secret name in a reference `{{ secrets.NAME }}` (spaces inside the braces optional), or
/// `None` when `text` is not exactly one such reference.
pub fn secret_ref(text: &str) -> Option<&str> {
    let inner = text
        .trim()
        .strip_prefix("{{")?
        .strip_suffix("}}")?
        .trim()
        .strip_prefix("secrets.")?;
    let ok = !inner.is_empty()
        && inner
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    ok.then_some(inner)
}

/// The path a webhook trigger is served at, without the `/hooks/` prefix: `/deploy`,
/// `/hooks/deploy` and `deploy/` all give `deploy`.
pub fn hook_path(path: &str) -> &str {
    let p = path.trim_matches('/');
    p.strip_prefix("hooks/").unwrap_or(p).trim_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_references_name_one_secret() {
        assert_eq!(secret_ref("{{ secrets.gh_hook }}"), Some("gh_hook"));
        assert_eq!(secret_ref("{{secrets.a-b}}"), Some("a-b"));
        assert_eq!(secret_ref("hunter2"), None);
        assert_eq!(secret_ref("{{ secrets.a }} x"), None);
        assert_eq!(secret_ref("{{ env.a }}"), None);
        assert_eq!(secret_ref("{{ secrets. }}"), None);
    }

    #[test]
    fn hook_paths_lose_the_prefix_and_slashes() {
        assert_eq!(hook_path("/deploy"), "deploy");
        assert_eq!(hook_path("/hooks/deploy"), "deploy");
        assert_eq!(hook_path("/gh/push/"), "gh/push");
    }
}
