//! Logging to standard error (the serial console in PID-1 mode) via `env_logger`:
//! level from the configuration, overridable with `RUST_LOG`, millisecond timestamps.
//! Every line is also kept in a bounded in-memory ring for the shell's `show log`.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

/// Lines kept for `show log`.
pub const RING_LINES: usize = 512;

static RING: OnceLock<Mutex<VecDeque<String>>> = OnceLock::new();

fn ring() -> &'static Mutex<VecDeque<String>> {
    RING.get_or_init(|| Mutex::new(VecDeque::with_capacity(RING_LINES)))
}

/// Writes each formatted record to stderr and into the ring.
struct Tee;

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // The ring gets the line even if the console refuses it (and an error here
        // would be dropped by the logger anyway).
        let _ = std::io::stderr().write_all(buf);
        let text = String::from_utf8_lossy(buf);
        let mut ring = ring().lock().unwrap_or_else(|e| e.into_inner());
        for line in text.lines().filter(|l| !l.is_empty()) {
            if ring.len() == RING_LINES {
                ring.pop_front();
            }
            ring.push_back(line.to_string());
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Installs the logger. Safe to call once per process.
pub fn init(level: &str) {
    env_logger::Builder::new()
        .parse_filters(level)
        .parse_env("RUST_LOG")
        .format_timestamp_millis()
        .write_style(env_logger::WriteStyle::Never)
        .target(env_logger::Target::Pipe(Box::new(Tee)))
        .init();
}

/// The last `n` log lines, oldest first.
pub fn recent(n: usize) -> Vec<String> {
    let ring = ring().lock().unwrap_or_else(|e| e.into_inner());
    ring.iter()
        .skip(ring.len().saturating_sub(n))
        .cloned()
        .collect()
}
