//! What PID 1 (or the host-mode process) talks to besides packets: the admin socket,
//! the serial console, the ACPI power button and signals. Nothing here touches a data
//! port. `unsafe` is permitted here; each `unsafe` block states why it is sound.

pub mod admin;
pub mod console;
pub mod power_button;
pub mod signals;
