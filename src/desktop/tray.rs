//! The tray icon and its menu. `tray-icon` on Linux needs GTK, so a dedicated thread runs
//! `gtk::init` and `gtk::main`; it polls every 50 ms for updates from the agent (a channel) and
//! for menu clicks (`MenuEvent::receiver`), changing the icon and menu live and forwarding clicks
//! as [`DesktopEvent`]s. AppIndicator has no tooltips, so the first (disabled) menu line shows
//! the state too.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tray_icon::menu::{
    CheckMenuItem, IsMenuItem, Menu, MenuEvent, MenuId, MenuItem, PredefinedMenuItem, Submenu,
};
use tray_icon::{Icon, TrayIcon, TrayIconBuilder};

use super::{AgentState, DesktopError, DesktopEvent, TrayUpdate, icons};

/// How often the GTK thread looks for updates and menu clicks.
const POLL: Duration = Duration::from_millis(50);
/// How long `start` waits for the GTK thread to show the icon.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// Recent runs shown in the "Recent runs" submenu.
const RECENT_SHOWN: usize = 5;

const ID_LISTENING: &str = "atlas.listening";
const ID_OPEN_FOLDER: &str = "atlas.open_workflows_folder";
const ID_QUIT: &str = "atlas.quit";

/// GTK binds itself to the first thread that initialises it, so a process gets one tray thread.
static TRAY_STARTED: AtomicBool = AtomicBool::new(false);

/// A message for the GTK thread.
enum TrayMsg {
    Update(TrayUpdate),
    Stop,
}

/// The agent's side of the tray thread.
pub(super) struct TrayHandle {
    tx: Sender<TrayMsg>,
    thread: JoinHandle<()>,
}

impl TrayHandle {
    /// Starts the GTK thread and waits until the icon is built (or failed to be).
    pub(super) fn start(events: UnboundedSender<DesktopEvent>) -> Result<TrayHandle, DesktopError> {
        if TRAY_STARTED.swap(true, Ordering::SeqCst) {
            return Err(DesktopError::Tray(
                "a tray icon was already started in this process (GTK allows one thread)".into(),
            ));
        }
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("atlas-tray".into())
            .spawn(move || run(rx, events, ready_tx))
            .map_err(|e| DesktopError::Tray(format!("cannot start the tray thread: {e}")))?;
        match ready_rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(())) => Ok(TrayHandle { tx, thread }),
            Ok(Err(reason)) => {
                let _ = thread.join();
                Err(DesktopError::Tray(reason))
            }
            Err(_) => Err(DesktopError::Tray(format!(
                "the GTK thread did not show the icon within {} s",
                START_TIMEOUT.as_secs()
            ))),
        }
    }

    /// Queues an update; never blocks.
    pub(super) fn update(&self, u: TrayUpdate) {
        // The thread has ended only if GTK failed; the agent cannot do anything about it here.
        let _ = self.tx.send(TrayMsg::Update(u));
    }

    /// Ends the GTK loop and waits for the thread.
    pub(super) fn stop(self) {
        let _ = self.tx.send(TrayMsg::Stop);
        if self.thread.join().is_err() {
            tracing::error!("the tray thread panicked");
        }
    }
}

/// The GTK thread: builds the tray, reports readiness, runs the main loop.
fn run(
    rx: Receiver<TrayMsg>,
    events: UnboundedSender<DesktopEvent>,
    ready: mpsc::SyncSender<Result<(), String>>,
) {
    if let Err(err) = gtk::init() {
        let _ = ready.send(Err(format!("GTK could not initialise: {err}")));
        return;
    }
    let mut tray = match Tray::build(events) {
        Ok(tray) => tray,
        Err(reason) => {
            let _ = ready.send(Err(reason));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    glib::timeout_add_local(POLL, move || {
        while let Ok(event) = MenuEvent::receiver().try_recv() {
            tray.clicked(&event.id);
        }
        loop {
            match rx.try_recv() {
                Ok(TrayMsg::Update(u)) => tray.apply(u),
                Ok(TrayMsg::Stop) | Err(TryRecvError::Disconnected) => {
                    gtk::main_quit();
                    return glib::ControlFlow::Break;
                }
                Err(TryRecvError::Empty) => return glib::ControlFlow::Continue,
            }
        }
    });
    gtk::main();
    tracing::debug!("tray thread ended");
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
    /// Menu id of each workflow item -> workflow id.
    workflow_ids: HashMap<MenuId, String>,
    /// Makes workflow item ids unique across menu rebuilds.
    generation: u64,
    events: UnboundedSender<DesktopEvent>,
}

impl Tray {
    fn build(events: UnboundedSender<DesktopEvent>) -> Result<Tray, String> {
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
        let open = MenuItem::with_id(ID_OPEN_FOLDER, "Open workflows folder", true, None);
        let quit = MenuItem::with_id(ID_QUIT, "Quit", true, None);
        let menu = Menu::new();
        let items: [&dyn IsMenuItem; 9] = [
            &status,
            &PredefinedMenuItem::separator(),
            &listening,
            &workflows,
            &next,
            &recent,
            &PredefinedMenuItem::separator(),
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
                    tracing::warn!(%err, ?state, "cannot change the tray icon");
                }
                let text = status_text(state);
                let _ = self.icon.set_tooltip(Some(&text));
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

    /// Forwards a menu click to the agent.
    fn clicked(&self, id: &MenuId) {
        let event = match id.as_ref() {
            ID_LISTENING => DesktopEvent::SetListening(self.listening.is_checked()),
            ID_OPEN_FOLDER => DesktopEvent::OpenWorkflowsFolder,
            ID_QUIT => DesktopEvent::Quit,
            _ => match self.workflow_ids.get(id) {
                Some(workflow) => DesktopEvent::RunWorkflow(workflow.clone()),
                None => return,
            },
        };
        tracing::debug!(?event, "tray menu");
        let _ = self.events.send(event);
    }
}

fn status_text(state: AgentState) -> String {
    format!("Atlas: {}", state.label())
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
        tracing::warn!(%err, "cannot add a tray menu item");
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
