//! The terminal the shell runs on: the serial console in PID-1 mode, or standard input
//! when it is a terminal in host mode. natbox edits lines itself (`shell::editor`), so
//! the terminal goes to non-canonical mode without echo; its output processing stays
//! on. In PID-1 mode ^C and friends must not signal the box, so ISIG is turned off
//! too. In host mode ^C stops the process, as operators expect of a foreground
//! program, except while the shell itself wants ^C (a `ping` runs, or output waits at
//! `--More--`): then ISIG is off and ^C reaches the shell, as in any shell
//! (`catch_interrupt`). The previous terminal settings come back when the console is
//! dropped.
//!
//! **Never blocking, never panicking.** The shell reads and writes the terminal from
//! the dataplane's timer tick, so neither may block; and natbox is PID 1 with
//! panic=abort, so no write may panic (`print!` does on any write error, `EAGAIN`
//! included). Standard input, output and error are one open file description of
//! `/dev/console` in PID-1 mode: setting `O_NONBLOCK` on stdin would make stdout
//! non-blocking too, and the next `println!` could panic on `EAGAIN`. So the shell
//! opens the terminal anew (`/proc/self/fd/0`: a file description of its own) with
//! `O_NONBLOCK`, and standard output and error stay blocking. Input is read at most
//! `MAX_INPUT` bytes per tick; output waits in a buffer of at most `MAX_OUTPUT` bytes
//! while the terminal is slower than the shell (a 115200-baud serial line), and what
//! does not fit is dropped with a note. Lines PID 1 prints itself (the banner, the
//! shutdown line) go through `say`, which ignores write errors.

use nix::sys::termios::{self, LocalFlags, SetArg, SpecialCharacterIndices, Termios};
use std::fs::{File, OpenOptions};
use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Bytes of input read per call of `read_available`.
const MAX_INPUT: usize = 64 * 1024;
/// Bytes of output waiting for a slow terminal.
const MAX_OUTPUT: usize = 64 * 1024;
/// Shown where output was dropped because the terminal did not keep up.
const DROPPED: &[u8] = b"\r\n[console output dropped: the terminal is too slow]\r\n";

/// Prints `line` and a newline on standard output, ignoring errors: PID 1's own lines
/// (the boot banner, the shutdown line) must not abort the box as `println!` would.
pub fn say(line: &str) {
    let _ = write_line(&mut io::stdout().lock(), line);
}

fn write_line(out: &mut impl Write, line: &str) -> io::Result<()> {
    out.write_all(line.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Standard input and output as a raw-ish terminal.
#[derive(Debug)]
pub struct Terminal {
    /// The terminal, opened with a file description of its own, non-blocking.
    tty: File,
    /// Output the terminal has not taken yet.
    pending: Vec<u8>,
    saved: Option<Termios>,
    /// The settings in force, while ^C may still signal the process (host mode).
    signalling: Option<Termios>,
    /// ^C reaches the shell instead of signalling.
    catching: bool,
}

impl Terminal {
    /// Takes over the terminal on standard input; `keep_signals` leaves ^C/^\
    /// generating signals.
    pub fn open(keep_signals: bool) -> io::Result<Terminal> {
        Terminal::open_path(Path::new("/proc/self/fd/0"), keep_signals)
    }

    /// Takes over the terminal (or any readable and writable file) at `path`.
    pub(crate) fn open_path(path: &Path, keep_signals: bool) -> io::Result<Terminal> {
        let tty = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)?;
        let saved = termios::tcgetattr(&tty).ok();
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
            termios::tcsetattr(&tty, SetArg::TCSANOW, &raw)?;
            signalling = keep_signals.then_some(raw);
        }
        Ok(Terminal {
            tty,
            pending: Vec::new(),
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
        if termios::tcsetattr(&self.tty, SetArg::TCSANOW, &settings).is_ok() {
            self.catching = catch;
        }
    }

    /// Appends the input available now, at most `MAX_INPUT` bytes (never blocks).
    pub fn read_available(&mut self, into: &mut Vec<u8>) {
        let mut buf = [0u8; 1024];
        let mut taken = 0;
        while taken < MAX_INPUT {
            match self.tty.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    into.extend_from_slice(&buf[..n]);
                    taken += n;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    }

    /// Queues `text` and writes what the terminal takes now (never blocks); an empty
    /// `text` only sends what still waits.
    pub fn write(&mut self, text: &str) {
        // The note always has room: text may fill the buffer only up to its size.
        let room = (MAX_OUTPUT - DROPPED.len()).saturating_sub(self.pending.len());
        if text.len() <= room {
            self.pending.extend_from_slice(text.as_bytes());
        } else if !self.pending.ends_with(DROPPED) {
            // room < text.len() here, so the slice is in bounds.
            self.pending.extend_from_slice(&text.as_bytes()[..room]);
            self.pending.extend_from_slice(DROPPED);
        }
        while !self.pending.is_empty() {
            match self.tty.write(&self.pending) {
                Ok(0) => break,
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                // Gone (hung up): nobody will read it.
                Err(_) => self.pending.clear(),
            }
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = termios::tcsetattr(&self.tty, SetArg::TCSANOW, saved);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    use std::os::fd::{AsFd, AsRawFd};

    fn pipe() -> (File, File) {
        let (r, w) = nix::unistd::pipe().unwrap();
        (File::from(r), File::from(w))
    }

    fn nonblocking(f: impl AsFd) -> bool {
        OFlag::from_bits_truncate(fcntl(f, FcntlArg::F_GETFL).unwrap()).contains(OFlag::O_NONBLOCK)
    }

    /// The console's O_NONBLOCK once leaked into stdout (one file description of
    /// /dev/console), and the next `println!` could panic PID 1 on EAGAIN.
    #[test]
    fn console_reads_without_blocking_and_leaves_the_shared_stream_blocking() {
        let (r, w) = pipe();
        let path = format!("/proc/self/fd/{}", r.as_raw_fd());
        let mut t = Terminal::open_path(Path::new(&path), false).unwrap();
        assert!(
            !nonblocking(&r) && !nonblocking(&w),
            "the original fds stay blocking"
        );
        let mut input = Vec::new();
        t.read_available(&mut input); // would hang here if it blocked
        assert!(input.is_empty());
        (&w).write_all(b"show version\r").unwrap();
        t.read_available(&mut input);
        assert_eq!(input, b"show version\r");
    }

    #[test]
    fn console_output_to_a_terminal_that_does_not_read_is_bounded_and_never_blocks() {
        let (r, _w) = pipe();
        let path = format!("/proc/self/fd/{}", r.as_raw_fd());
        let mut t = Terminal::open_path(Path::new(&path), false).unwrap();
        let line = "x".repeat(1023) + "\n";
        for _ in 0..1024 {
            t.write(&line); // 1 MiB into a 64 KiB pipe nobody reads
        }
        assert!(t.pending.len() <= MAX_OUTPUT, "{}", t.pending.len());
        assert!(t.pending.ends_with(DROPPED), "the loss is shown");
        let mut drained = vec![0u8; 64 * 1024];
        (&r).read_exact(&mut drained).unwrap();
        let before = t.pending.len();
        t.write("");
        assert!(
            t.pending.len() < before,
            "what waited goes out once there is room"
        );
    }

    #[test]
    fn say_into_a_full_or_closed_stream_returns_an_error_instead_of_panicking() {
        let (r, mut w) = pipe();
        fcntl(&w, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).unwrap();
        let full = "y".repeat(1 << 20);
        let e = write_line(&mut w, &full).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::WouldBlock);
        drop(r);
        let e = write_line(&mut w, "natbox: clean shutdown").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BrokenPipe);
    }
}
