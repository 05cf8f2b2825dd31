//! The ACPI power button (what a hypervisor's "shut down" presses: QEMU's
//! `system_powerdown`, a cloud's stop action), read as an evdev input device: the
//! kernel's `button` driver reports it as `KEY_POWER` on the input device named
//! "Power Button". Read without blocking from the dataplane's timer tick.

use std::fs::{self, File};
use std::io::{ErrorKind, Read};
use std::os::unix::fs::OpenOptionsExt;

const EV_KEY: u16 = 1;
const KEY_POWER: u16 = 116;
/// `struct input_event` on 64-bit Linux: a timeval (16 bytes), type, code, value.
const EVENT_LEN: usize = 24;

/// An open power-button input device.
#[derive(Debug)]
pub struct PowerButton {
    device: File,
}

impl PowerButton {
    /// Finds and opens the input device named "Power Button", if there is one.
    pub fn find() -> Option<PowerButton> {
        let mut names: Vec<String> = fs::read_dir("/sys/class/input")
            .ok()?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("event"))
            .collect();
        names.sort();
        names.into_iter().find_map(|n| {
            let name = fs::read_to_string(format!("/sys/class/input/{n}/device/name")).ok()?;
            if name.trim() != "Power Button" {
                return None;
            }
            let device = fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(format!("/dev/input/{n}"))
                .ok()?;
            Some(PowerButton { device })
        })
    }

    /// Whether the button was pressed since the last call.
    pub fn pressed(&mut self) -> bool {
        let mut buf = [0u8; EVENT_LEN * 16];
        let mut pressed = false;
        loop {
            match self.device.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => pressed |= buf[..n].chunks_exact(EVENT_LEN).any(is_power_press),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        pressed
    }
}

fn is_power_press(event: &[u8]) -> bool {
    let kind = u16::from_ne_bytes([event[16], event[17]]);
    let code = u16::from_ne_bytes([event[18], event[19]]);
    let value = i32::from_ne_bytes([event[20], event[21], event[22], event[23]]);
    kind == EV_KEY && code == KEY_POWER && value == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: u16, code: u16, value: i32) -> Vec<u8> {
        let mut e = vec![0u8; 16];
        e.extend_from_slice(&kind.to_ne_bytes());
        e.extend_from_slice(&code.to_ne_bytes());
        e.extend_from_slice(&value.to_ne_bytes());
        e
    }

    #[test]
    fn only_a_power_key_press_counts() {
        assert!(is_power_press(&event(EV_KEY, KEY_POWER, 1)));
        assert!(!is_power_press(&event(EV_KEY, KEY_POWER, 0)), "release");
        assert!(!is_power_press(&event(EV_KEY, 30, 1)), "another key");
        assert!(!is_power_press(&event(0, 0, 0)), "sync report");
    }
}
