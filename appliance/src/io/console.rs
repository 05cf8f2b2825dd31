//! The terminal the shell runs on: the serial console in PID-1 mode, or standard input
//! when it is a terminal in host mode. natbox edits lines itself (`shell::editor`), so
//! the terminal goes to non-canonical mode without echo; its output processing stays
//! on. In PID-1 mode ^C and friends must not signal the box, so ISIG is turned off
//! too. In host mode ^C stops the process, as operators expect of a foreground
//! program, except while the shell itself wants ^C (a `ping` runs, or output waits at
//! `--More--`): then ISIG is off and ^C reaches the shell, as in any shell
//! (`catch_interrupt`). Input is read without blocking, from the dataplane's timer
//! tick. The previous terminal settings come back when the console is dropped.

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::termios::{self, LocalFlags, SetArg, SpecialCharacterIndices, Termios};
use std::io::{self, ErrorKind, Read, Write};

/// Standard input and output as a raw-ish terminal.
#[derive(Debug)]
pub struct Terminal {
    saved: Option<Termios>,
    /// The settings in force, while ^C may still signal the process (host mode).
    signalling: Option<Termios>,
    /// ^C reaches the shell instead of signalling.
    catching: bool,
}

impl Terminal {
    /// Takes over standard input; `keep_signals` leaves ^C/^\ generating signals.
    pub fn open(keep_signals: bool) -> io::Result<Terminal> {
        let stdin = io::stdin();
        let flags = OFlag::from_bits_truncate(fcntl(&stdin, FcntlArg::F_GETFL)?);
        fcntl(&stdin, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        let saved = termios::tcgetattr(&stdin).ok();
        let mut signalling = None;
        if let Some(old) = &saved {
            let mut raw = old.clone();
            raw.local_flags &=
                !(LocalFlags::ICANON | LocalFlags::ECHO | LocalFlags::ECHONL | LocalFlags::IEXTEN);
            if !keep_signals {
                raw.local_flags &= !LocalFlags::ISIG;
            }
            raw.control_chars[SpecialCharacterIndices::VMIN as usize] = 1;
            raw.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
            termios::tcsetattr(&stdin, SetArg::TCSANOW, &raw)?;
            signalling = keep_signals.then_some(raw);
        }
        Ok(Terminal {
            saved,
            signalling,
            catching: false,
        })
    }

    /// Whether ^C goes to the shell (true) or, in host mode, signals the process.
    /// Nothing changes in PID-1 mode, where ^C always goes to the shell.
    pub fn catch_interrupt(&mut self, catch: bool) {
        let Some(signalling) = &self.signalling else {
            return;
        };
        if catch == self.catching {
            return;
        }
        let mut settings = signalling.clone();
        if catch {
            settings.local_flags &= !LocalFlags::ISIG;
        }
        if termios::tcsetattr(io::stdin(), SetArg::TCSANOW, &settings).is_ok() {
            self.catching = catch;
        }
    }

    /// Appends whatever input is available (never blocks).
    pub fn read_available(&mut self, into: &mut Vec<u8>) {
        let mut buf = [0u8; 1024];
        loop {
            match io::stdin().lock().read(&mut buf) {
                Ok(0) => break,
                Ok(n) => into.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    }

    pub fn write(&mut self, text: &str) {
        let mut out = io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = termios::tcsetattr(io::stdin(), SetArg::TCSANOW, saved);
        }
    }
}
