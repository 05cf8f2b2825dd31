//! Wires the shell to its front-ends (admin socket, console) and runs the box's own
//! services (metrics, ping, NAT event log) on the dataplane's timer tick, saves
//! committed configurations where they came from, and remembers whether the operator
//! asked to reboot or power off.
//!
//! The console asks for the password of the running configuration; while forwarding
//! is off (the configuration was refused, or its ports are missing) it asks for the
//! one the configuration found at boot names (`set_password_hash`), so an outsider
//! on the console of a box whose dataplane is down cannot reboot or power it off.
//! Only a box that found no readable configuration at all has an open console.
//!
//! A TOML file rewritten by `commit` has mode 0600 (it holds the password hash): the
//! new text is written to a file created 0600 beside it, synced, and renamed over it.
//!
//! The tick never holds an engine: it reaches the engine shards through `Shards`
//! (`shards`), so the shell, the metrics and the services see and reach every shard
//! the same way, one or many.

pub mod shards;
pub mod workers;

use crate::dataplane::LinkSummary;
use crate::host::admin::{AdminSocket, Served};
use crate::host::console::Terminal;
use crate::host::power_button::PowerButton;
use crate::services::ping::Pings;
use crate::services::Services;
use crate::shell::commit::{self, Rollback};
use crate::shell::terminal::{Backend, TerminalShell};
use crate::shell::{self, Action, Context, Facts, Reply, Session, Store};
use firmware_config::Config;
use shards::{Shards, Snapshots};
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

/// Where a configuration from a read-only source (a cloud volume's user-data) is
/// "saved": nowhere. `commit` still applies live (the one place a commit is applied
/// unsaved) and says plainly that the change does not survive a reboot; a blank
/// metadata disk, when the box has one, is a `DiskStore` instead (`init::source`).
#[derive(Debug)]
pub struct Unsaved(pub String);

impl Store for Unsaved {
    fn save(&mut self, _: &Config) -> Result<String, String> {
        Ok(format!(
            "not saved: the configuration came from {}, which natbox cannot write back, so \
             this change is lost at reboot (attach a blank metadata disk, `natbox-config \
             blank`, to keep commits)",
            self.0
        ))
    }
}

/// Saves to a TOML file: written beside it, synced, then renamed over it (atomic).
#[derive(Debug)]
pub struct TomlStore(pub PathBuf);

impl Store for TomlStore {
    fn save(&mut self, config: &Config) -> Result<String, String> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let tmp = self.0.with_extension("toml.new");
        let write = || -> std::io::Result<()> {
            // A leftover from an interrupted commit may have another mode.
            match std::fs::remove_file(&tmp) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(firmware_config::to_toml(config).as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.0)?;
            // The rename itself is durable once the directory is synced.
            let dir = self.0.parent().filter(|d| !d.as_os_str().is_empty());
            std::fs::File::open(dir.unwrap_or(Path::new(".")))?.sync_all()
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
    /// The rollback a `commit confirmed` armed.
    rollback: Rollback,
    /// The console password: the running configuration's, or while forwarding is off
    /// the one of the configuration found at boot.
    password_hash: Option<String>,
    /// Where the configuration came from at boot (`show config` names it).
    source: Option<String>,
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
    shards: Option<&'a mut dyn Shards>,
    facts: &'a Facts,
    store: Option<&'a mut Box<dyn Store>>,
    pings: &'a mut Pings,
    rollback: &'a mut Rollback,
    requested: &'a mut Option<Action>,
}

impl Backend for Backing<'_> {
    fn execute(&mut self, session: &mut Session, line: &str) -> Reply {
        let ctx = Context {
            shards: match self.shards.as_mut() {
                Some(s) => Some(&mut **s),
                None => None,
            },
            facts: self.facts,
            store: self
                .store
                .as_deref_mut()
                .map(|s| &mut **s as &mut dyn Store),
            pings: Some(&mut *self.pings),
            rollback: Some(&mut *self.rollback),
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
    /// Opens the admin socket at `admin` and the console shell as `console` says (a
    /// console that cannot be opened is logged and left out).
    pub fn open(
        admin: Option<&Path>,
        console: ConsoleMode,
        hostname: &str,
    ) -> std::io::Result<Control> {
        let admin = admin.map(AdminSocket::bind).transpose()?;
        // Without a console the admin socket still serves.
        let terminal = match console {
            ConsoleMode::Off => None,
            mode => Terminal::open(mode == ConsoleMode::Host)
                .inspect_err(|e| log::error!("console shell unavailable: {e}"))
                .ok(),
        };
        let console = terminal.map(|terminal| ConsoleShell {
            terminal,
            shell: TerminalShell::new(hostname),
            input: Vec::new(),
        });
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

    /// The console password while forwarding is off: that of the configuration found
    /// at boot, even if it was refused or its ports are missing. The running
    /// configuration's replaces it once forwarding runs.
    pub fn set_password_hash(&mut self, hash: Option<String>) {
        self.password_hash = hash;
    }

    /// Where the configuration came from ("nocloud (/dev/vdb, label cidata)", a file,
    /// a metadata disk and its generation), for `show config`.
    pub fn set_source(&mut self, source: String) {
        self.source = Some(source);
    }

    /// Starts the search for the configuration in the cloud's metadata
    /// (`services::metadata`), over ports of `mtu` bytes.
    pub fn search_metadata(&mut self, mtu: usize) {
        self.services.metadata = Some(crate::services::metadata::Metadata::new(mtu));
    }

    /// The search's outcome, once there is one; that ends the search, and with it the
    /// services of the search dataplane (its DHCP client, its shards' bindings): the
    /// dataplane that follows starts its own, whose DHCP client first asks to keep the
    /// address the search's held (`Dhcp4::handed_over`).
    pub fn metadata_outcome(&mut self) -> Option<firmware_config::sources::metadata::Outcome> {
        let outcome = self.services.metadata.as_mut()?.take_outcome()?;
        let dhcp4 = crate::services::dhcp4::Dhcp4::handed_over(&self.services.dhcp4);
        self.services = Services::default();
        self.services.dhcp4 = dhcp4;
        Some(outcome)
    }

    /// Where `commit` saves configurations from now on.
    pub fn set_store(&mut self, store: Box<dyn Store>) {
        self.store = Some(store);
    }

    /// Serves every pending command line, then runs the box's services; false once
    /// a reboot or power-off is asked. `shards` is `None` while forwarding is off.
    pub fn tick(&mut self, mut shards: Option<&mut dyn Shards>, links: &LinkSummary) -> bool {
        let facts = Facts {
            roles: links.roles.clone(),
            devices: links.devices.clone(),
            links: links.states.clone(),
            now_ms: links.now_ms,
            io: links.io.clone(),
            dhcp4: self.services.dhcp4.snapshots(links.now_ms),
            ipv6: self.services.ipv6.views(links.now_ms),
            source: self.source.clone(),
        };
        if self.power_button.as_mut().is_some_and(PowerButton::pressed) {
            log::info!("power button pressed: shutting down");
            self.requested = Some(Action::Poweroff);
        }
        let running = shards.as_mut().and_then(|s| s.config());
        if let Some(config) = &running {
            if config.shell.password_hash != self.password_hash {
                self.password_hash.clone_from(&config.shell.password_hash);
            }
        }
        let password_hash = self.password_hash.as_deref();
        let mut backing = Backing {
            shards: match shards.as_mut() {
                Some(s) => Some(&mut **s),
                None => None,
            },
            facts: &facts,
            store: self.store.as_mut(),
            pings: &mut self.services.pings,
            rollback: &mut self.rollback,
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
                .feed(&input, password_hash, facts.now_ms, &mut backing);
            // Also with nothing new: sends what a slow terminal has not taken yet.
            c.terminal
                .write(&screen.replace("\r\n", "\n").replace('\n', "\r\n"));
            c.terminal.catch_interrupt(c.shell.wants_interrupt());
        }
        if let Some(shards) = shards {
            if let Some(previous) = self.rollback.due(facts.now_ms) {
                let store = self.store.as_deref_mut().map(|s| s as &mut dyn Store);
                log::warn!("{}", commit::roll_back(&previous, shards, store));
            }
            // After the commands: the services follow what they committed.
            if let Some(config) = shards.config() {
                self.services.tick(shards, &config, facts.now_ms, &mut |s| {
                    shell::metrics::render(s, &facts)
                });
            }
        }
        self.requested.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::AsRawFd;

    /// `openssl passwd -6 -salt natboxsalt secret`
    const HASH: &str =
        "$6$natboxsalt$0HThqMT32bYBWMr7y50qCVP1Y82/Xe.ykuCCfv4DoiyvSO8jnWCN05.QoRohXBxqOIkCHat8ZnUrgOxfDL4hE0";

    fn forwarding_off() -> LinkSummary {
        LinkSummary {
            roles: Vec::new(),
            devices: Vec::new(),
            states: Vec::new(),
            now_ms: 0,
            io: Vec::new(),
        }
    }

    /// What the console showed, read from the pseudo-terminal's master side.
    fn screen(master: &mut std::fs::File) -> String {
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        for _ in 0..100 {
            match master.read(&mut buf) {
                Ok(n) if n > 0 => seen.extend_from_slice(&buf[..n]),
                _ if !seen.is_empty() => break,
                _ => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        }
        String::from_utf8_lossy(&seen).into_owned()
    }

    /// The dataplane is down (configuration refused, ports missing): an outsider on
    /// the console must still not reach the shell (`poweroff`) without the password.
    #[test]
    fn console_password_is_enforced_while_forwarding_is_off() {
        let pty = nix::pty::openpty(None, None).unwrap();
        let slave = format!("/proc/self/fd/{}", pty.slave.as_raw_fd());
        let mut master = std::fs::File::from(pty.master);
        nix::fcntl::fcntl(
            &master,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .unwrap();
        let mut control = Control {
            console: Some(ConsoleShell {
                terminal: Terminal::open_path(Path::new(&slave), false).unwrap(),
                shell: TerminalShell::new("nb"),
                input: Vec::new(),
            }),
            ..Default::default()
        };
        control.set_password_hash(Some(HASH.into()));
        assert!(control.tick(None, &forwarding_off()));
        let greeting = screen(&mut master);
        assert!(greeting.contains("password required"), "{greeting:?}");
        use std::io::Write;
        master.write_all(b"poweroff\r").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(control.tick(None, &forwarding_off()), "poweroff ran");
        assert!(screen(&mut master).contains("login incorrect"));
        assert_eq!(control.requested, None);
    }

    /// A configuration from a cloud volume cannot be written back: the commit applies
    /// and says, in so many words, that it is lost at reboot.
    #[test]
    fn commit_from_a_read_only_source_says_it_does_not_survive_a_reboot() {
        let config = firmware_config::from_toml(include_str!("../../../natbox.toml")).unwrap();
        let said = Unsaved("nocloud (/dev/vdb, label cidata)".into())
            .save(&config)
            .unwrap();
        assert_eq!(
            said,
            "not saved: the configuration came from nocloud (/dev/vdb, label cidata), which \
             natbox cannot write back, so this change is lost at reboot (attach a blank \
             metadata disk, `natbox-config blank`, to keep commits)"
        );
    }

    /// The TOML file holds the console password hash: `commit` must not leave it
    /// world-readable (File::create made it 0666 minus the umask).
    #[test]
    fn toml_commit_rewrites_the_file_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("natbox-toml-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("natbox.toml");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        // A leftover of an interrupted commit, world-readable.
        std::fs::write(dir.join("natbox.toml.new"), "stale").unwrap();
        let config = firmware_config::from_toml(include_str!("../../../natbox.toml")).unwrap();
        let said = TomlStore(path.clone()).save(&config).unwrap();
        assert!(said.starts_with("saved to"), "{said}");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "mode {mode:o}");
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(firmware_config::from_toml(&text).unwrap(), config);
        assert!(!dir.join("natbox.toml.new").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
