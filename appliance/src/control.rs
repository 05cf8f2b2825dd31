//! Wires the shell to its front-ends (admin socket, console) and runs the box's own
//! services (metrics, ping, NAT event log) on the dataplane's timer tick, saves
//! committed configurations where they came from, and remembers whether the operator
//! asked to reboot or power off.

use crate::engine::Engine;
use crate::io::admin::{AdminSocket, Served};
use crate::io::console::Terminal;
use crate::io::dataplane::LinkSummary;
use crate::io::power_button::PowerButton;
use crate::services::ping::Pings;
use crate::services::Services;
use crate::shell::terminal::{Backend, TerminalShell};
use crate::shell::{self, Action, Context, Facts, Reply, Session, Store};
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
    /// Host mode: ^C stops the process, unless the shell wants it (a job runs, a page
    /// waits).
    Host,
    /// PID 1 on the serial console: no key may signal the box.
    Appliance,
}

/// The shell on a terminal.
#[derive(Debug)]
struct ConsoleShell {
    terminal: Terminal,
    shell: TerminalShell,
    input: Vec<u8>,
}

/// The shell front-ends and the services of one running box.
#[derive(Default)]
pub struct Control {
    admin: Option<AdminSocket<Session>>,
    console: Option<ConsoleShell>,
    store: Option<Box<dyn Store>>,
    power_button: Option<PowerButton>,
    services: Services,
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

/// What shell commands run against during one tick.
struct Backing<'a> {
    engine: Option<&'a mut Engine>,
    facts: &'a Facts,
    store: Option<&'a mut Box<dyn Store>>,
    pings: &'a mut Pings,
    requested: &'a mut Option<Action>,
}

impl Backend for Backing<'_> {
    fn execute(&mut self, session: &mut Session, line: &str) -> Reply {
        let ctx = Context {
            engine: self.engine.as_deref_mut(),
            facts: self.facts,
            store: self
                .store
                .as_deref_mut()
                .map(|s| &mut **s as &mut dyn Store),
            pings: Some(&mut *self.pings),
        };
        let reply = shell::execute(session, line, ctx);
        if matches!(reply.action, Action::Reboot | Action::Poweroff) {
            *self.requested = Some(reply.action);
        }
        reply
    }

    fn resume(&mut self, session: &mut Session) -> String {
        shell::resume(session, self.pings)
    }

    fn interrupt(&mut self, session: &mut Session) -> String {
        shell::interrupt(session, self.pings)
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
            mode => Some(ConsoleShell {
                terminal: Terminal::open(mode == ConsoleMode::Host)?,
                shell: TerminalShell::new(hostname),
                input: Vec::new(),
            }),
        };
        Ok(Control {
            admin,
            console,
            ..Default::default()
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

    /// Serves every pending command line, then runs the box's services; false once
    /// a reboot or power-off is asked. `engine` is `None` while forwarding is off.
    pub fn tick(&mut self, mut engine: Option<&mut Engine>, links: &LinkSummary) -> bool {
        let facts = Facts {
            devices: links.devices.clone(),
            links: links.states,
            now_ms: links.now_ms,
            io: links.io,
        };
        if self.power_button.as_mut().is_some_and(PowerButton::pressed) {
            log::info!("power button pressed: shutting down");
            self.requested = Some(Action::Poweroff);
        }
        let password_hash = engine
            .as_deref()
            .and_then(|e| e.config().shell.password_hash.clone());
        let mut backing = Backing {
            engine: engine.as_deref_mut(),
            facts: &facts,
            store: self.store.as_mut(),
            pings: &mut self.services.pings,
            requested: &mut self.requested,
        };
        if let Some(admin) = self.admin.as_mut() {
            admin.poll(|session, line| {
                let (text, close) = match line {
                    Some(line) => {
                        let reply = backing.execute(session, line);
                        (reply.text, reply.action != Action::None)
                    }
                    None => (backing.resume(session), false),
                };
                Served {
                    text,
                    close,
                    busy: session.busy(),
                }
            });
        }
        if let Some(c) = self.console.as_mut() {
            c.terminal.read_available(&mut c.input);
            let input = std::mem::take(&mut c.input);
            let screen = c
                .shell
                .feed(&input, password_hash.as_deref(), facts.now_ms, &mut backing);
            // Also with nothing new: sends what a slow terminal has not taken yet.
            c.terminal
                .write(&screen.replace("\r\n", "\n").replace('\n', "\r\n"));
            c.terminal.catch_interrupt(c.shell.wants_interrupt());
        }
        if let Some(engine) = engine {
            self.services.tick(engine, facts.now_ms, &mut |e| {
                shell::metrics::render(e, &facts)
            });
        }
        self.requested.is_none()
    }
}
