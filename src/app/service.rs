//! `atlas service install|uninstall`: start the daemon with the desktop session.
//!
//! With a systemd user session, a unit `~/.config/systemd/user/atlas.service` (enabled for
//! `graphical-session.target`); otherwise an XDG autostart entry `~/.config/autostart/atlas.desktop`.

use std::path::PathBuf;
use std::process::Command;

use anyhow::Context;

fn config_home() -> anyhow::Result<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|x| !x.is_empty()) {
        return Ok(PathBuf::from(x));
    }
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    Ok(PathBuf::from(home).join(".config"))
}

fn systemd_user_available() -> bool {
    Command::new("systemctl")
        .args(["--user", "show-environment"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn unit_path() -> anyhow::Result<PathBuf> {
    Ok(config_home()?.join("systemd/user/atlas.service"))
}

fn autostart_path() -> anyhow::Result<PathBuf> {
    Ok(config_home()?.join("autostart/atlas.desktop"))
}

/// Quotes a path for a systemd `ExecStart=` or a desktop entry's `Exec=` (both accept double
/// quotes with backslash escapes).
fn quoted(path: &std::path::Path) -> String {
    let s = path.display().to_string();
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c))
    {
        return s;
    }
    let escaped = s
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('$', "$$")
        .replace('%', "%%");
    format!("\"{escaped}\"")
}

fn unit_text(exe: &str) -> String {
    format!(
        "[Unit]\nDescription=Atlas voice assistant\nPartOf=graphical-session.target\nAfter=graphical-session.target\n\n[Service]\nExecStart={exe} daemon\nRestart=on-failure\nRestartSec=3\n\n[Install]\nWantedBy=graphical-session.target\n"
    )
}

fn autostart_text(exe: &str) -> String {
    format!(
        "[Desktop Entry]\nType=Application\nName=Atlas\nComment=Voice assistant with workflows\nExec={exe} daemon\nTerminal=false\nX-GNOME-Autostart-enabled=true\n"
    )
}

/// Runs `systemctl --user ARGS`; a warning when it fails (the files are what matter).
fn systemctl(args: &[&str]) -> Option<String> {
    match Command::new("systemctl").arg("--user").args(args).output() {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "`systemctl --user {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("cannot run systemctl: {e}")),
    }
}

/// What `install` or `uninstall` did.
#[derive(Debug, Default)]
pub struct Done {
    /// Files written or removed.
    pub files: Vec<PathBuf>,
    /// What did not work, or what to do next.
    pub notes: Vec<String>,
}

/// Writes the unit (systemd user session) or the autostart entry (none).
pub fn install() -> anyhow::Result<Done> {
    let exe = std::env::current_exe().context("cannot find the atlas program's path")?;
    let exe = quoted(&exe);
    let mut done = Done::default();
    let (path, text) = if systemd_user_available() {
        (unit_path()?, unit_text(&exe))
    } else {
        (autostart_path()?, autostart_text(&exe))
    };
    std::fs::create_dir_all(path.parent().context("service path")?)
        .with_context(|| format!("cannot create the folder of {}", path.display()))?;
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    if path.extension().is_some_and(|e| e == "service") {
        done.notes.extend(systemctl(&["daemon-reload"]));
        match systemctl(&["enable", "atlas.service"]) {
            Some(warning) => done.notes.push(warning),
            None => done.notes.push(
                "enabled: Atlas starts with your desktop session; start it now with \
                 `systemctl --user start atlas`"
                    .into(),
            ),
        }
    } else {
        done.notes
            .push("no systemd user session: Atlas starts at your next desktop login".into());
    }
    done.files.push(path);
    Ok(done)
}

/// Removes whatever `install` wrote.
pub fn uninstall() -> anyhow::Result<Done> {
    let mut done = Done::default();
    let unit = unit_path()?;
    if unit.exists() {
        done.notes.extend(systemctl(&["disable", "atlas.service"]));
        std::fs::remove_file(&unit).with_context(|| format!("cannot remove {}", unit.display()))?;
        done.notes.extend(systemctl(&["daemon-reload"]));
        done.files.push(unit);
    }
    let auto = autostart_path()?;
    if auto.exists() {
        std::fs::remove_file(&auto).with_context(|| format!("cannot remove {}", auto.display()))?;
        done.files.push(auto);
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_with_spaces_and_specials_are_quoted() {
        assert_eq!(
            quoted(std::path::Path::new("/usr/bin/atlas")),
            "/usr/bin/atlas"
        );
        assert_eq!(
            quoted(std::path::Path::new("/home/me/my apps/at%las")),
            "\"/home/me/my apps/at%%las\""
        );
        assert!(unit_text("/x/atlas").contains("ExecStart=/x/atlas daemon\n"));
        assert!(autostart_text("/x/atlas").contains("Exec=/x/atlas daemon\n"));
    }
}
