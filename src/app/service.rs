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

/// Writes the unit or autostart entry; returns what was written.
pub fn install() -> anyhow::Result<Vec<PathBuf>> {
    let exe = std::env::current_exe().context("cannot find the atlas program's path")?;
    let exe = exe.display();
    let mut written = Vec::new();
    if systemd_user_available() {
        let path = unit_path()?;
        std::fs::create_dir_all(path.parent().context("unit path")?)?;
        std::fs::write(
            &path,
            format!(
                "[Unit]\nDescription=Atlas voice assistant\nPartOf=graphical-session.target\nAfter=graphical-session.target\n\n[Service]\nExecStart={exe} daemon\nRestart=on-failure\nRestartSec=3\n\n[Install]\nWantedBy=graphical-session.target\n"
            ),
        )
        .with_context(|| format!("cannot write {}", path.display()))?;
        let _ = Command::new("systemctl")
            .args(["--user", "daemon-reload"])
            .status();
        let _ = Command::new("systemctl")
            .args(["--user", "enable", "atlas.service"])
            .status();
        written.push(path);
    } else {
        let path = autostart_path()?;
        std::fs::create_dir_all(path.parent().context("autostart path")?)?;
        std::fs::write(
            &path,
            format!(
                "[Desktop Entry]\nType=Application\nName=Atlas\nComment=Voice assistant with workflows\nExec={exe} daemon\nTerminal=false\nX-GNOME-Autostart-enabled=true\n"
            ),
        )
        .with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// Removes whatever `install` wrote; returns what was removed.
pub fn uninstall() -> anyhow::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let unit = unit_path()?;
    if unit.exists() {
        let _ = Command::new("systemctl")
            .args(["--user", "disable", "atlas.service"])
            .status();
        std::fs::remove_file(&unit)?;
        let _ = Command::new("systemctl")
            .args(["--user", "daemon-reload"])
            .status();
        removed.push(unit);
    }
    let auto = autostart_path()?;
    if auto.exists() {
        std::fs::remove_file(&auto)?;
        removed.push(auto);
    }
    Ok(removed)
}
