//! The admin shell: one command line in, text (or `--json`) out.
//!
//! Transport-free: the console and the admin socket feed it lines and print what it
//! returns. It reads engine state only through the engine's query methods, and every
//! command works on the engine for one call, between two dataplane batches, so the
//! shell never holds the dataplane up for longer than one command (`show sessions`
//! stops at its limit; `clear sessions` walks the table once).
//!
//! Hostile input gets a clear error: lines longer than `MAX_LINE` or containing control
//! characters are refused before parsing.

pub mod grammar;
mod metrics;
mod render;

use crate::engine::Engine;

/// Longest accepted command line, in bytes.
pub const MAX_LINE: usize = 1024;

/// What the caller should do after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    None,
    /// Close this shell session.
    Exit,
    Reboot,
    Poweroff,
}

/// The result of one command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub text: String,
    pub action: Action,
}

impl Reply {
    fn text(text: String) -> Reply {
        Reply {
            text,
            action: Action::None,
        }
    }
}

/// Facts the shell shows that the engine does not own.
#[derive(Debug, Clone)]
pub struct Facts {
    /// Interface names of the inside and outside ports.
    pub devices: [String; 2],
    /// Link state of the ports ("up", "down", "gone").
    pub links: [&'static str; 2],
    /// Engine time now, in milliseconds since the dataplane started.
    pub now_ms: u64,
}

/// Runs one command line against the engine; `None` when forwarding is off (no valid
/// configuration), where only the commands that need no engine work.
pub fn execute(line: &str, engine: Option<&mut Engine>, facts: &Facts) -> Reply {
    if line.len() > MAX_LINE {
        return Reply::text(format!(
            "error: line too long ({} bytes, at most {MAX_LINE})",
            line.len()
        ));
    }
    if line.chars().any(|c| c.is_control() && c != '\t') {
        return Reply::text("error: control characters are not allowed in commands".into());
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    if words.is_empty() {
        return Reply::text(String::new());
    }
    if let Some(prefix) = words.last().and_then(|w| w.strip_suffix('?')) {
        let mut head = words[..words.len() - 1].to_vec();
        if !prefix.is_empty() {
            head.push(prefix);
        }
        return Reply::text(grammar::help(&head));
    }
    match grammar::parse(&words) {
        Ok(parsed) => render::run(&parsed, engine, facts),
        Err(e) => Reply::text(format!("error: {e}")),
    }
}
