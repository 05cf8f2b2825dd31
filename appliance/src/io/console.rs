//! The shell on a terminal: the serial console in PID-1 mode, or standard input when
//! it is a terminal in host mode. The terminal stays in canonical mode, so the kernel's
//! line discipline does the editing any serial terminal supports (backspace, ^U, ^W);
//! natbox reads whole lines, never blocking (the fd is non-blocking and polled from the
//! dataplane's timer tick). A line longer than the bound is discarded with an error.

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use std::io::{self, ErrorKind, Read, Write};

const MAX_LINE: usize = 4096;

/// The console front-end, with one session state `S`.
#[derive(Debug)]
pub struct Console<S> {
    session: S,
    input: Vec<u8>,
    prompt: String,
    overflow: bool,
}

impl<S: Default> Console<S> {
    /// Takes over standard input (non-blocking) and prints the first prompt.
    pub fn open(prompt: &str, greeting: &str) -> io::Result<Console<S>> {
        let stdin = io::stdin();
        let flags = OFlag::from_bits_truncate(fcntl(&stdin, FcntlArg::F_GETFL)?);
        fcntl(&stdin, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        let console = Console {
            session: S::default(),
            input: Vec::new(),
            prompt: prompt.to_string(),
            overflow: false,
        };
        print!("{greeting}\n{}", console.prompt);
        io::stdout().flush()?;
        Ok(console)
    }

    /// Runs every complete line through `run` and prints the replies.
    pub fn poll(&mut self, mut run: impl FnMut(&mut S, &str) -> (String, bool)) {
        let mut buf = [0u8; 1024];
        loop {
            match io::stdin().lock().read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    self.input.extend_from_slice(&buf[..n]);
                    if self.input.len() > MAX_LINE && !self.input.contains(&b'\n') {
                        self.input.clear();
                        self.overflow = true;
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        let mut out = io::stdout().lock();
        while let Some(end) = self.input.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.input.drain(..=end).collect();
            let reply = if std::mem::take(&mut self.overflow) {
                format!("error: line too long (at most {MAX_LINE} bytes)")
            } else {
                run(
                    &mut self.session,
                    String::from_utf8_lossy(&line[..end]).trim_end_matches('\r'),
                )
                .0
            };
            if !reply.is_empty() {
                let _ = writeln!(out, "{reply}");
            }
            let _ = write!(out, "{}", self.prompt);
        }
        let _ = out.flush();
    }
}
