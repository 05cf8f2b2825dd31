//! Wires the shell to its front-ends (admin socket, console) on the dataplane's timer
//! tick, saves committed configurations where they came from, and remembers whether
//! the operator asked to reboot or power off.

use crate::engine::Engine;
use crate::io::admin::AdminSocket;
use crate::io::console::Terminal;
use crate::io::dataplane::LinkSummary;
use crate::io::power_button::PowerButton;
use crate::shell::editor::Editor;
use crate::shell::{self, Action, Context, Facts, Session, Store};
use firmware_config::Config;
use std::path::{Path, PathBuf};

/// Saves to a metadata disk (device or image): the A/B write of `firmware_config::disk`,
/// so a power cut at any byte leaves a valid configuration.
#[derive(Debug)]
pub struct DiskStore(pub PathBuf);

impl Store for DiskStore {
    fn save(&mut self, config: &Config) -> Result<String, String> {
        firmware_config::disk::write_path(&self.0, config)
            .map(|generation| format!("saved to {} (generation {generation})", self.0.display()))
            .map_err(|e| format!("{}: {e}", self.0.display()))
    }
}

/// Saves to a TOML file: written beside it, synced, then renamed over it (atomic).
#[derive(Debug)]
pub struct TomlStore(pub PathBuf);

impl Store for TomlStore {
    fn save(&mut self, config: &Config) -> Result<String, String> {
        use std::io::Write;
        let tmp = self.0.with_extension("toml.new");
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(firmware_config::to_toml(config).as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.0)
        };
        write()
            .map(|()| format!("saved to {}", self.0.display()))
            .map_err(|e| format!("{}: {e}", self.0.display()))
    }
}

/// Whether the shell runs on the terminal, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleMode {
    Off,
    /// Host mode: ^C still stops the process.
    Host,
    /// PID 1 on the serial console: no key may signal the box.
    Appliance,
}

/// The shell on a terminal: line editor, session, pending input.
#[derive(Debug)]
struct ConsoleShell {
    terminal: Terminal,
    editor: Editor,
    session: Session,
    input: Vec<u8>,
}

/// The shell front-ends of one running box.
#[derive(Default)]
pub struct Control {
    admin: Option<AdminSocket<Session>>,
    console: Option<ConsoleShell>,
    store: Option<Box<dyn Store>>,
    power_button: Option<PowerButton>,
    /// `reboot` or `poweroff` from a shell (or the power button), once asked.
    pub requested: Option<Action>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("requested", &self.requested)
            .finish_non_exhaustive()
    }
}

impl Control {
    /// Opens the admin socket at `admin` and the console shell as `console` says.
    pub fn open(
        admin: Option<&Path>,
        console: ConsoleMode,
        hostname: &str,
    ) -> std::io::Result<Control> {
        let admin = admin.map(AdminSocket::bind).transpose()?;
        let console = match console {
            ConsoleMode::Off => None,
            mode => {
                let mut terminal = Terminal::open(mode == ConsoleMode::Host)?;
                let editor = Editor::new(&format!("{hostname}> "));
                terminal.write(&format!(
                    "natbox shell on {hostname}: `help` lists commands, `?` after a word and Tab help (no password set: open console)\r\n{}",
                    editor.prompt()
                ));
                Some(ConsoleShell {
                    terminal,
                    editor,
                    session: Session::default(),
                    input: Vec::new(),
                })
            }
        };
        Ok(Control {
            admin,
            console,
            store: None,
            power_button: None,
            requested: None,
        })
    }

    /// Treats a press of the ACPI power button as `poweroff`.
    pub fn watch_power_button(&mut self, button: PowerButton) {
        self.power_button = Some(button);
    }

    /// Where `commit` saves configurations from now on.
    pub fn set_store(&mut self, store: Box<dyn Store>) {
        self.store = Some(store);
    }

    /// Serves every pending command line; false once a reboot or power-off is asked.
    /// `engine` is `None` while forwarding is off.
    pub fn tick(&mut self, mut engine: Option<&mut Engine>, links: &LinkSummary) -> bool {
        let facts = Facts {
            devices: links.devices.clone(),
            links: links.states,
            now_ms: links.now_ms,
            socket_drops: links.socket_drops,
        };
        if self.power_button.as_mut().is_some_and(PowerButton::pressed) {
            log::info!("power button pressed: shutting down");
            self.requested = Some(Action::Poweroff);
        }
        let requested = &mut self.requested;
        let store = &mut self.store;
        let mut run = |session: &mut Session, line: &str| {
            let ctx = Context {
                engine: engine.as_deref_mut(),
                facts: &facts,
                store: store.as_deref_mut().map(|s| s as &mut dyn Store),
            };
            let reply = shell::execute(session, line, ctx);
            if matches!(reply.action, Action::Reboot | Action::Poweroff) {
                *requested = Some(reply.action);
            }
            (reply.text, reply.action != Action::None)
        };
        if let Some(admin) = self.admin.as_mut() {
            admin.poll(&mut run);
        }
        if let Some(c) = self.console.as_mut() {
            c.terminal.read_available(&mut c.input);
            let mut screen = String::new();
            for byte in std::mem::take(&mut c.input) {
                if let Some(line) = c.editor.feed(byte, &mut screen) {
                    let (reply, _) = run(&mut c.session, &line);
                    if !reply.is_empty() {
                        screen.push_str(&reply.replace('\n', "\r\n"));
                        screen.push_str("\r\n");
                    }
                    screen.push_str(c.editor.prompt());
                }
            }
            if !screen.is_empty() {
                c.terminal.write(&screen);
            }
        }
        self.requested.is_none()
    }
}
