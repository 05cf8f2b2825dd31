//! Wires the shell to its front-ends (admin socket, console) on the dataplane's timer
//! tick, and remembers whether the operator asked to reboot or power off.

use crate::engine::Engine;
use crate::io::admin::AdminSocket;
use crate::io::console::Console;
use crate::io::dataplane::LinkSummary;
use crate::shell::{self, Action, Facts};
use std::path::Path;

/// The shell front-ends of one running box.
#[derive(Debug, Default)]
pub struct Control {
    admin: Option<AdminSocket>,
    console: Option<Console>,
    /// `reboot` or `poweroff` from a shell, once asked.
    pub requested: Option<Action>,
}

impl Control {
    /// Opens the admin socket at `admin` and, if `console`, the console shell.
    pub fn open(admin: Option<&Path>, console: bool, hostname: &str) -> std::io::Result<Control> {
        let admin = admin.map(AdminSocket::bind).transpose()?;
        let console = if console {
            let greeting = format!("natbox shell on {hostname}: `help` lists commands, `?` after a word helps (no password set: open console)");
            Some(Console::open(&format!("{hostname}> "), &greeting)?)
        } else {
            None
        };
        Ok(Control {
            admin,
            console,
            requested: None,
        })
    }

    /// Serves every pending command line; false once a reboot or power-off is asked.
    /// `engine` is `None` while forwarding is off.
    pub fn tick(&mut self, mut engine: Option<&mut Engine>, links: &LinkSummary) -> bool {
        let facts = Facts {
            devices: links.devices.clone(),
            links: links.states,
            now_ms: links.now_ms,
        };
        let requested = &mut self.requested;
        let mut run = |line: &str| {
            let reply = shell::execute(line, engine.as_deref_mut(), &facts);
            if matches!(reply.action, Action::Reboot | Action::Poweroff) {
                *requested = Some(reply.action);
            }
            (reply.text, reply.action != Action::None)
        };
        if let Some(admin) = self.admin.as_mut() {
            admin.poll(&mut run);
        }
        if let Some(console) = self.console.as_mut() {
            console.poll(&mut run);
        }
        self.requested.is_none()
    }
}
