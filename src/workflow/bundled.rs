//! The bundled workflows, built into the program so that an installed binary has them wherever
//! it runs (never read from the machine it was built on). Their paths in messages start with
//! [`BUNDLED_PREFIX`], e.g. `<bundled>/hello.yaml`.

use std::path::{Path, PathBuf};

/// How the bundled workflows' paths begin in messages and in `Workflow::source`.
pub const BUNDLED_PREFIX: &str = "<bundled>";

/// `workflows/*.yaml` of the source tree, by file name. A test checks the list is complete.
const FILES: &[(&str, &str)] = &[
    (
        "add-to-calendar.yaml",
        include_str!("../../workflows/add-to-calendar.yaml"),
    ),
    (
        "crypto-alert.yaml",
        include_str!("../../workflows/crypto-alert.yaml"),
    ),
    (
        "crypto-portfolio.yaml",
        include_str!("../../workflows/crypto-portfolio.yaml"),
    ),
    (
        "email-digest.yaml",
        include_str!("../../workflows/email-digest.yaml"),
    ),
    ("hello.yaml", include_str!("../../workflows/hello.yaml")),
    (
        "meeting-reminder.yaml",
        include_str!("../../workflows/meeting-reminder.yaml"),
    ),
    (
        "morning-briefing.yaml",
        include_str!("../../workflows/morning-briefing.yaml"),
    ),
    ("music.yaml", include_str!("../../workflows/music.yaml")),
    (
        "next-meeting.yaml",
        include_str!("../../workflows/next-meeting.yaml"),
    ),
    (
        "reply-last-email.yaml",
        include_str!("../../workflows/reply-last-email.yaml"),
    ),
    (
        "stretch-reminder.yaml",
        include_str!("../../workflows/stretch-reminder.yaml"),
    ),
    ("weather.yaml", include_str!("../../workflows/weather.yaml")),
    (
        "what-needs-me.yaml",
        include_str!("../../workflows/what-needs-me.yaml"),
    ),
];

/// The bundled files as (path for messages, text).
pub(super) fn files() -> Vec<(PathBuf, Option<&'static str>)> {
    FILES
        .iter()
        .map(|(name, text)| (Path::new(BUNDLED_PREFIX).join(name), Some(*text)))
        .collect()
}

/// The text of a bundled workflow by its message path, if `path` names one.
pub(super) fn text_of(path: &Path) -> Option<&'static str> {
    let name = path.strip_prefix(BUNDLED_PREFIX).ok()?;
    FILES
        .iter()
        .find(|(n, _)| Path::new(n) == name)
        .map(|(_, text)| *text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_of_the_workflows_folder_is_built_in_and_identical() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .expect("workflows/")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
            .collect();
        on_disk.sort();
        let built_in: Vec<&str> = FILES.iter().map(|(n, _)| *n).collect();
        assert_eq!(on_disk, built_in, "add new bundled workflows to FILES");
        for (name, text) in FILES {
            let disk = std::fs::read_to_string(dir.join(name)).expect("read");
            assert_eq!(&disk, text, "{name}");
        }
        assert_eq!(
            text_of(&Path::new(BUNDLED_PREFIX).join("hello.yaml")),
            FILES
                .iter()
                .find(|(n, _)| *n == "hello.yaml")
                .map(|(_, t)| *t)
        );
        assert_eq!(text_of(Path::new("/elsewhere/hello.yaml")), None);
    }
}
