//! The tray icon and its menu, on GTK's main loop. The loop polls every 50 ms for updates from
//! the agent (read from stdin by another thread, handed over on a channel) and for menu clicks
//! (`MenuEvent::receiver`), changing the icon and menu live and writing clicks to stdout as
//! [`DesktopEvent`]s. AppIndicator has no tooltips, so the first (disabled) menu line shows the
//! state too.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Duration;

use atlas::desktop::{AgentState, DesktopEvent, TrayUpdate};
use tray_icon::menu::{
    CheckMenuItem, IsMenuItem, Menu, MenuEvent, MenuId, MenuItem, PredefinedMenuItem, Submenu,
};
use tray_icon::{Icon, TrayIcon, TrayIconBuilder};

use crate::icons;

/// How often the GTK loop looks for updates and menu clicks.
const POLL: Duration = Duration::from_millis(50);
/// Recent runs shown in the "Recent runs" submenu.
const RECENT_SHOWN: usize = 5;

const ID_LISTENING: &str = "atlas.listening";
const ID_OPEN_FOLDER: &str = "atlas.open_workflows_folder";
const ID_OPEN_DASHBOARD: &str = "atlas.open_dashboard";
const ID_QUIT: &str = "atlas.quit";

/// Where menu clicks go; `false` when the agent is gone.
pub type Events = Box<dyn Fn(DesktopEvent) -> bool>;

/// Initialises GTK and shows the icon; `ready` is told the outcome. Then runs GTK's main loop
/// until `updates` is closed (the agent closed stdin) or `events` fails (the agent is gone).
pub fn run(
    updates: Receiver<TrayUpdate>,
    events: Events,
    ready: impl FnOnce(Result<(), String>),
) -> Result<(), String> {
    if let Err(err) = gtk::init() {
        let reason = format!("GTK could not initialise: {err}");
        ready(Err(reason.clone()));
        return Err(reason);
    }
    let mut tray = match Tray::build(events) {
        Ok(tray) => tray,
        Err(reason) => {
            ready(Err(reason.clone()));
            return Err(reason);
        }
    };
    ready(Ok(()));
    glib::timeout_add_local(POLL, move || {
        while let Ok(event) = MenuEvent::receiver().try_recv() {
            if !tray.clicked(&event.id) {
                gtk::main_quit();
                return glib::ControlFlow::Break;
            }
        }
        loop {
            match updates.try_recv() {
                Ok(u) => tray.apply(u),
                Err(TryRecvError::Disconnected) => {
                    gtk::main_quit();
                    return glib::ControlFlow::Break;
                }
                Err(TryRecvError::Empty) => return glib::ControlFlow::Continue,
            }
        }
    });
    gtk::main();
    Ok(())
}

/// The icon, the menu items that change, and what their ids mean.
struct Tray {
    icon: TrayIcon,
    icons: Vec<(AgentState, Icon)>,
    status: MenuItem,
    listening: CheckMenuItem,
    workflows: Submenu,
    next: MenuItem,
    recent: Submenu,
    /// The integrations needing attention (a line; the tooltip says it too).
    accounts: MenuItem,
    /// The tooltip's status part, kept so an accounts line can be added to it.
    state_text: String,
    /// The accounts part of the tooltip.
    accounts_text: Option<String>,
    /// Menu id of each workflow item -> workflow id.
    workflow_ids: HashMap<MenuId, String>,
    /// Makes workflow item ids unique across menu rebuilds.
    generation: u64,
    events: Events,
}

impl Tray {
    fn build(events: Events) -> Result<Tray, String> {
        let mut icons = Vec::new();
        for state in AgentState::ALL {
            let rgba = icons::rgba(state)?;
            let icon = Icon::from_rgba(rgba, icons::SIZE, icons::SIZE)
                .map_err(|e| format!("{state:?} icon: {e}"))?;
            icons.push((state, icon));
        }
        let status = MenuItem::new(status_text(AgentState::Idle), false, None);
        let listening = CheckMenuItem::with_id(ID_LISTENING, "Listening", true, true, None);
        let workflows = Submenu::new("Workflows", true);
        let next = MenuItem::new(next_text(None), false, None);
        let recent = Submenu::new("Recent runs", true);
        // Not clickable (so the keyboard skips it): it tells what to run.
        let accounts = MenuItem::new(accounts_text(&[]), false, None);
        let dashboard = MenuItem::with_id(ID_OPEN_DASHBOARD, "Open dashboard", true, None);
        let open = MenuItem::with_id(ID_OPEN_FOLDER, "Open workflows folder", true, None);
        let quit = MenuItem::with_id(ID_QUIT, "Quit", true, None);
        let menu = Menu::new();
        let items: [&dyn IsMenuItem; 11] = [
            &status,
            &PredefinedMenuItem::separator(),
            &listening,
            &workflows,
            &next,
            &recent,
            &accounts,
            &PredefinedMenuItem::separator(),
            &dashboard,
            &open,
            &quit,
        ];
        menu.append_items(&items)
            .map_err(|e| format!("cannot build the menu: {e}"))?;
        let idle = icons
            .iter()
            .find(|(s, _)| *s == AgentState::Idle)
            .map(|(_, i)| i.clone())
            .ok_or("no idle icon")?;
        let icon = TrayIconBuilder::new()
            .with_id("atlas")
            .with_menu(Box::new(menu))
            .with_icon(idle)
            .with_tooltip(status_text(AgentState::Idle))
            .build()
            .map_err(|e| format!("cannot create the tray icon: {e}"))?;
        let mut tray = Tray {
            icon,
            icons,
            status,
            listening,
            workflows,
            next,
            recent,
            accounts,
            state_text: status_text(AgentState::Idle),
            accounts_text: None,
            workflow_ids: HashMap::new(),
            generation: 0,
            events,
        };
        tray.apply(TrayUpdate::Workflows(Vec::new()));
        tray.apply(TrayUpdate::Recent(Vec::new()));
        Ok(tray)
    }

    /// Shows an update from the agent.
    fn apply(&mut self, u: TrayUpdate) {
        match u {
            TrayUpdate::State(state) => {
                let icon = self.icons.iter().find(|(s, _)| *s == state);
                if let Some((_, icon)) = icon
                    && let Err(err) = self.icon.set_icon(Some(icon.clone()))
                {
                    eprintln!("cannot change the tray icon to {state:?}: {err}");
                }
                let text = status_text(state);
                self.state_text = text.clone();
                self.tooltip();
                self.status.set_text(text);
            }
            TrayUpdate::Listening(on) => self.listening.set_checked(on),
            TrayUpdate::Workflows(list) => {
                clear(&self.workflows);
                self.workflow_ids.clear();
                self.generation += 1;
                if list.is_empty() {
                    append(&self.workflows, &MenuItem::new("(none)", false, None));
                }
                for (n, (id, name)) in list.into_iter().enumerate() {
                    let menu_id = MenuId::new(format!("atlas.workflow.{}.{n}", self.generation));
                    let item = MenuItem::with_id(menu_id.clone(), name, true, None);
                    append(&self.workflows, &item);
                    self.workflow_ids.insert(menu_id, id);
                }
            }
            TrayUpdate::Next(next) => self.next.set_text(next_text(next.as_deref())),
            TrayUpdate::Accounts(lines) => {
                self.accounts.set_text(accounts_text(&lines));
                self.accounts_text = (!lines.is_empty()).then(|| lines.join("; "));
                self.tooltip();
            }
            TrayUpdate::Recent(runs) => {
                clear(&self.recent);
                if runs.is_empty() {
                    append(&self.recent, &MenuItem::new("(none yet)", false, None));
                }
                for run in runs.iter().take(RECENT_SHOWN) {
                    append(&self.recent, &MenuItem::new(run, false, None));
                }
            }
        }
    }

    /// The tooltip: the state, and what needs attention.
    fn tooltip(&self) {
        let text = match &self.accounts_text {
            Some(a) => format!("{} ({a})", self.state_text),
            None => self.state_text.clone(),
        };
        let _ = self.icon.set_tooltip(Some(&text));
    }

    /// Forwards a menu click to the agent; `false` when the agent is gone.
    fn clicked(&self, id: &MenuId) -> bool {
        let event = match id.as_ref() {
            ID_LISTENING => DesktopEvent::SetListening(self.listening.is_checked()),
            ID_OPEN_FOLDER => DesktopEvent::OpenWorkflowsFolder,
            ID_OPEN_DASHBOARD => DesktopEvent::OpenDashboard,
            ID_QUIT => DesktopEvent::Quit,
            _ => match self.workflow_ids.get(id) {
                Some(workflow) => DesktopEvent::RunWorkflow(workflow.clone()),
                None => return true,
            },
        };
        (self.events)(event)
    }
}

fn status_text(state: AgentState) -> String {
    format!("Atlas: {}", state.label())
}

fn accounts_text(lines: &[String]) -> String {
    if lines.is_empty() {
        "Accounts: nothing needs you".to_owned()
    } else {
        format!("Accounts: {}", lines.join("; "))
    }
}

fn next_text(next: Option<&str>) -> String {
    format!("Next: {}", next.unwrap_or("nothing scheduled"))
}

/// Removes every item from a submenu.
fn clear(menu: &Submenu) {
    while menu.remove_at(0).is_some() {}
}

fn append(menu: &Submenu, item: &dyn IsMenuItem) {
    if let Err(err) = menu.append(item) {
        eprintln!("cannot add a tray menu item: {err}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn menu_texts() {
        assert_eq!(status_text(AgentState::Thinking), "Atlas: Thinking");
        assert_eq!(next_text(None), "Next: nothing scheduled");
        assert_eq!(
            next_text(Some("morning_briefing at 07:00")),
            "Next: morning_briefing at 07:00"
        );
    }
}
