//! Logging to standard error (the serial console in PID-1 mode) via `env_logger`:
//! level from the configuration, overridable with `RUST_LOG`, millisecond timestamps.

/// Installs the logger. Safe to call once per process.
pub fn init(level: &str) {
    env_logger::Builder::new()
        .parse_filters(level)
        .parse_env("RUST_LOG")
        .format_timestamp_millis()
        .init();
}
