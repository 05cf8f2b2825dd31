//! The admin shell: one command line in, text (or `--json`) out.
//!
//! Transport-free: the console and the admin socket feed it lines and print what it
//! returns. It never holds an engine: it reaches the box through `Shards`
//! (`control::shards`), reading snapshots merged over every shard and broadcasting
//! changes, so it works unchanged with any number of engine shards. Each request runs
//! on a shard between two of its batches, so the shell never holds the dataplane up for
//! longer than one request (`show sessions` stops at its limit in every shard; `clear
//! sessions` walks each table once). `limit` is at most
//! 1000 rows (a larger one is refused, pointing at the filters), so every command's
//! output is bounded while it is produced, not cut afterwards; the front-ends bound
//! how many commands run per tick.
//!
//! Hostile input gets a clear error: lines longer than `MAX_LINE` or containing control
//! characters are refused before parsing.

pub mod commit;
pub mod configure;
mod destinations;
pub mod editor;
mod forwards;
mod gateway;
pub mod grammar;
mod host_limits;
mod ipv6;
pub mod metrics;
mod policy;
mod render;
pub mod terminal;

use crate::control::shards::{Shards, Snapshots};
use crate::services::ping::Pings;

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
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// The ports' role labels, by `PortId` (while forwarding is off, those of the
    /// configuration being started, if any).
    pub roles: Vec<&'static str>,
    /// Interface names of the ports, by `PortId` (while forwarding is off, the names
    /// the configuration gives).
    pub devices: Vec<String>,
    /// Link state of the ports ("up", "down", "gone"; while forwarding is off,
    /// "missing" or "waiting"), by `PortId`.
    pub links: Vec<&'static str>,
    /// The engines' time now, in milliseconds since the dataplane started.
    pub now_ms: u64,
    /// The I/O layer's counters, per port (socket drops, GSO super-frames...).
    pub io: Vec<crate::engine::stats::IoCounters>,
    /// The DHCPv4 clients, by port role (`services::dhcp4`).
    pub dhcp4: Vec<(&'static str, natbox_core::dhcp4::Snapshot)>,
    /// The IPv6 autoconfiguration of the ports, by port role (`services::ipv6`).
    pub ipv6: Vec<(&'static str, crate::services::ipv6::View)>,
    /// Where the configuration came from at boot, if known (`show config` names it
    /// with the digest of the configuration in force).
    pub source: Option<String>,
}

/// Where `commit` persists a configuration (the metadata disk, or the TOML file host
/// mode was started with). Returns a description of what was written.
pub trait Store {
    fn save(&mut self, config: &firmware_config::Config) -> Result<String, String>;
}

/// Rows per page on a terminal unless `terminal length` says otherwise (VT100).
pub const PAGE_LENGTH: usize = 24;
/// Echo requests `ping` sends unless `count` says otherwise.
const PING_COUNT: u16 = 4;

/// One operator's shell session: exec mode, or configuration mode with a candidate;
/// the job it is waiting for (a `ping`); its terminal length.
#[derive(Debug)]
pub struct Session {
    candidate: Option<firmware_config::Config>,
    job: Option<u32>,
    /// Rows per page for a terminal front-end's pager; 0 = no paging.
    pub page_length: usize,
}

impl Default for Session {
    fn default() -> Self {
        Session {
            candidate: None,
            job: None,
            page_length: PAGE_LENGTH,
        }
    }
}

impl Session {
    pub fn configuring(&self) -> bool {
        self.candidate.is_some()
    }

    /// A job (a `ping`) is running: feed no lines until `resume` says it is over.
    pub fn busy(&self) -> bool {
        self.job.is_some()
    }
}

/// What the session's job printed since the last call; the session is free again
/// once the job is over.
pub fn resume(session: &mut Session, pings: &mut Pings) -> String {
    let Some(id) = session.job else {
        return String::new();
    };
    let progress = pings.progress(id);
    if progress.finished {
        session.job = None;
    }
    progress.text
}

/// Stops the session's job (^C, or the operator went away); returns its last words.
pub fn interrupt(session: &mut Session, pings: &mut Pings) -> String {
    session
        .job
        .take()
        .map_or_else(String::new, |id| pings.cancel(id))
}

/// The engine shards (`None` while forwarding is off: only commands that need no
/// engine work), the facts the I/O layer knows, and where commits are saved.
pub struct Context<'a> {
    pub shards: Option<&'a mut dyn Shards>,
    pub facts: &'a Facts,
    pub store: Option<&'a mut dyn Store>,
    /// Where `ping` runs (`None`: `ping` is not available).
    pub pings: Option<&'a mut Pings>,
    /// The box's `commit confirmed` rollback (`None`: not available).
    pub rollback: Option<&'a mut commit::Rollback>,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("facts", self.facts)
            .finish_non_exhaustive()
    }
}

/// No shard answered a read (a shard that stopped).
pub(crate) const NO_ANSWER: &str = "no answer from the dataplane";

/// Runs one command line.
pub fn execute(session: &mut Session, line: &str, ctx: Context<'_>) -> Reply {
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
        Ok(parsed) if parsed.command == ["ping"] => {
            Reply::text(ping(session, &parsed, ctx).unwrap_or_else(|e| format!("error: {e}")))
        }
        Ok(parsed) if parsed.command == ["terminal", "length"] => {
            Reply::text(match parsed.get("value").map(str::parse::<u16>) {
                Some(Ok(n)) => {
                    session.page_length = usize::from(n);
                    String::new()
                }
                _ => "error: terminal length takes a number of rows (0: no paging)".into(),
            })
        }
        Ok(parsed) if parsed.command == ["confirm"] => {
            Reply::text(if ctx.rollback.is_some_and(commit::Rollback::confirm) {
                log::info!("configuration confirmed: the pending rollback is cancelled");
                "configuration confirmed: the pending rollback is cancelled".into()
            } else {
                "nothing to confirm: no `commit confirmed` is pending".into()
            })
        }
        Ok(parsed) if grammar::is_configuration(parsed.command) => Reply::text(
            configuration(session, &parsed, line, ctx).unwrap_or_else(|e| format!("error: {e}")),
        ),
        Ok(parsed) => render::run(&parsed, ctx.shards, ctx.facts),
        Err(e) => Reply::text(format!("error: {e}")),
    }
}

/// `ping ADDR [count N]`: starts the job; `resume` reports its replies.
fn ping(session: &mut Session, p: &grammar::Parsed, ctx: Context<'_>) -> Result<String, String> {
    let raw = p.get("value").unwrap_or_default();
    let dst: std::net::IpAddr = raw
        .parse()
        .map_err(|_| format!("`{raw}`: ping takes an IPv4 or IPv6 address"))?;
    let count = match p.get("count") {
        None => PING_COUNT,
        Some(n) => n
            .parse()
            .map_err(|_| format!("`{n}`: count takes a number"))?,
    };
    let shards = ctx.shards.ok_or("forwarding is off")?;
    let pings = ctx.pings.ok_or("ping is not available here")?;
    let (id, first) = pings.start(shards, dst, count, ctx.facts.now_ms)?;
    session.job = Some(id);
    Ok(first)
}

/// `configure`, `set`, `delete`, `diff`, `commit`, `abort`.
fn configuration(
    session: &mut Session,
    p: &grammar::Parsed,
    line: &str,
    ctx: Context<'_>,
) -> Result<String, String> {
    if p.command == ["configure"] {
        if session.candidate.is_some() {
            return Err("already in configuration mode".into());
        }
        let running = ctx
            .shards
            .ok_or("forwarding is off: no running configuration to edit")?
            .config()
            .ok_or(NO_ANSWER)?;
        session.candidate = Some(running);
        return Ok(
            "configuration mode: `set PATH VALUE`, `delete PATH`, `diff`, `commit`, `abort`".into(),
        );
    }
    let candidate = session
        .candidate
        .as_ref()
        .ok_or("not in configuration mode; type `configure` first")?;
    match p.command {
        ["set"] => {
            // The value is the rest of the line after the path: it may hold spaces.
            let path = p.get("value").unwrap_or_default();
            let after_path = line
                .trim_start()
                .split_once(char::is_whitespace)
                .map_or("", |(_, r)| r.trim_start());
            let raw = after_path.strip_prefix(path).unwrap_or_default().trim();
            if raw.is_empty() {
                return Err(format!("set {path} needs a value"));
            }
            session.candidate = Some(configure::set(candidate, path, raw)?);
            Ok(String::new())
        }
        ["delete"] => {
            session.candidate = Some(configure::delete(
                candidate,
                p.get("value").unwrap_or_default(),
            )?);
            Ok(String::new())
        }
        ["diff"] => {
            let running = ctx
                .shards
                .ok_or("forwarding is off")?
                .config()
                .ok_or(NO_ANSWER)?;
            Ok(configure::diff(&running, candidate))
        }
        ["abort"] => {
            session.candidate = None;
            Ok("candidate discarded".into())
        }
        ["commit"] => {
            let shards = ctx.shards.ok_or("forwarding is off")?;
            let confirmed = p
                .get("confirmed")
                .map(commit::confirm_minutes)
                .transpose()?
                .map(|minutes| (minutes, ctx.facts.now_ms));
            let outcome = commit::commit(candidate, shards, ctx.store, ctx.rollback, confirmed)?;
            session.candidate = None;
            Ok(outcome)
        }
        other => Err(format!("no handler for {}", other.join(" "))),
    }
}
