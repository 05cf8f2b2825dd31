//! The shell on a terminal (the serial console, or stdin in host mode): login, line
//! editing, paging and running jobs, as bytes in and screen text out. Transport-free,
//! so it is tested without a terminal; `control` feeds it what the console read.
//!
//! - **Login.** With `shell.password_hash` set in the running configuration (SHA-crypt,
//!   `$6$` or `$5$`, as `openssl passwd -6` or `mkpasswd -m sha-512` print), the console
//!   asks for the password first, without echo. After each wrong password input is
//!   ignored for 1, 2, 4, ... up to 30 seconds (the delay doubles per failure, and
//!   resets after a success), and the failure is logged. `exit` logs out. Without a
//!   hash the console is open, and the greeting says so. A password added while
//!   someone is logged in applies from their next login. The admin socket is
//!   root-only on the host and never asks.
//! - **Paging.** Output longer than the session's terminal length (24 rows unless
//!   `terminal length N` says otherwise; 0 turns paging off) stops at `--More--`:
//!   Space shows the next page, Enter one more line, `q` or ^C the rest is skipped.
//! - **Jobs.** While a job runs (`ping`), typed keys are ignored except ^C, which
//!   stops it; its output appears as it comes, then the prompt.

use super::editor::Editor;
use super::{Action, Reply, Session};
use sha_crypt::password_hash::PasswordVerifier;
use std::collections::VecDeque;

/// The longest delay after failed logins, in seconds.
const MAX_DELAY_S: u64 = 30;
/// Longest password kept; more is ignored.
const MAX_PASSWORD: usize = 256;
const MORE: &str = "--More-- (Space: page, Enter: line, q: quit)";
const CTRL_C: u8 = 0x03;
const CTRL_U: u8 = 0x15;

/// What a terminal's commands run against (the engine shards, the store, the pings).
pub trait Backend {
    fn execute(&mut self, session: &mut Session, line: &str) -> Reply;
    /// Output of the session's job since the last call (see `shell::resume`).
    fn resume(&mut self, session: &mut Session) -> String;
    /// Stops the session's job (see `shell::interrupt`).
    fn interrupt(&mut self, session: &mut Session) -> String;
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Nothing shown yet.
    Fresh,
    Password(Vec<u8>),
    /// Input ignored until this time (ms) after a failed login.
    Locked(u64),
    Ready,
}

/// One terminal's shell.
#[derive(Debug)]
pub struct TerminalShell {
    hostname: String,
    editor: Editor,
    session: Session,
    state: State,
    failures: u32,
    pager: VecDeque<String>,
}

/// Whether `password` matches the SHA-crypt `hash`.
pub fn verify_password(password: &[u8], hash: &str) -> bool {
    sha_crypt::ShaCrypt::default()
        .verify_password(password, hash)
        .is_ok()
}

impl TerminalShell {
    pub fn new(hostname: &str) -> TerminalShell {
        TerminalShell {
            hostname: hostname.to_string(),
            editor: Editor::new(&format!("{hostname}> ")),
            session: Session::default(),
            state: State::Fresh,
            failures: 0,
            pager: VecDeque::new(),
        }
    }

    /// Whether ^C means something to the shell now: it stops a running job or skips
    /// the rest of paged output (at the prompt it only clears the line).
    pub fn wants_interrupt(&self) -> bool {
        self.state == State::Ready && (self.session.busy() || !self.pager.is_empty())
    }

    /// Feeds what the terminal typed; returns what to show. `password_hash` is the
    /// running configuration's; `now` in ms.
    pub fn feed(
        &mut self,
        input: &[u8],
        password_hash: Option<&str>,
        now: u64,
        backend: &mut dyn Backend,
    ) -> String {
        let mut screen = String::new();
        if self.state == State::Fresh {
            self.greet(password_hash, &mut screen);
        }
        for &byte in input {
            match &mut self.state {
                State::Fresh | State::Locked(_) => {}
                State::Password(typed) => match byte {
                    b'\r' | b'\n' => {
                        let typed = std::mem::take(typed);
                        self.login(&typed, password_hash, now, &mut screen);
                    }
                    0x08 | 0x7f => {
                        typed.pop();
                    }
                    CTRL_C | CTRL_U => typed.clear(),
                    0x20..=0x7e | 0x80..=0xff if typed.len() < MAX_PASSWORD => typed.push(byte),
                    _ => {}
                },
                State::Ready if !self.pager.is_empty() => self.page_key(byte, &mut screen),
                State::Ready if self.session.busy() => {
                    if byte == CTRL_C {
                        let last = backend.interrupt(&mut self.session);
                        self.show(&format!("^C\n{last}"), &mut screen);
                    }
                }
                State::Ready => {
                    if let Some(line) = self.editor.feed(byte, &mut screen) {
                        let reply = backend.execute(&mut self.session, &line);
                        self.show(&reply.text, &mut screen);
                        if reply.action == Action::Exit && password_hash.is_some() {
                            self.pager.clear();
                            self.state = State::Password(Vec::new());
                            screen.push_str("logged out\r\nPassword: ");
                        }
                    }
                }
            }
        }
        if let State::Locked(until) = self.state {
            if now >= until {
                self.state = State::Password(Vec::new());
                screen.push_str("Password: ");
            }
        }
        if self.state == State::Ready && self.session.busy() {
            let text = backend.resume(&mut self.session);
            self.show(&text, &mut screen);
        }
        screen
    }

    fn greet(&mut self, password_hash: Option<&str>, screen: &mut String) {
        let host = &self.hostname;
        if password_hash.is_some() {
            screen.push_str(&format!(
                "natbox shell on {host}: password required\r\nPassword: "
            ));
            self.state = State::Password(Vec::new());
        } else {
            screen.push_str(&format!(
                "natbox shell on {host}: `help` lists commands, `?` after a word and Tab help (no password set: open console)\r\n{}",
                self.editor.prompt()
            ));
            self.state = State::Ready;
        }
    }

    fn login(&mut self, typed: &[u8], hash: Option<&str>, now: u64, screen: &mut String) {
        screen.push_str("\r\n");
        if hash.is_none_or(|h| verify_password(typed, h)) {
            if self.failures > 0 {
                log::warn!("console login after {} failed attempt(s)", self.failures);
            }
            self.failures = 0;
            self.state = State::Ready;
            screen.push_str(self.editor.prompt());
            return;
        }
        self.failures += 1;
        let delay = (1u64 << (self.failures - 1).min(5)).min(MAX_DELAY_S);
        log::warn!(
            "console login failed ({} in a row); next try in {delay} s",
            self.failures
        );
        screen.push_str(&format!("login incorrect; wait {delay} s\r\n"));
        self.state = State::Locked(now + delay * 1000);
    }

    /// Shows command output, a page at a time; the prompt follows unless a page or
    /// a job is pending.
    fn show(&mut self, text: &str, screen: &mut String) {
        if !text.is_empty() {
            let rows = self.session.page_length;
            let lines: Vec<&str> = text.split('\n').collect();
            let (now, later) = if rows > 1 && lines.len() >= rows {
                lines.split_at(rows - 1)
            } else {
                (&lines[..], &[][..])
            };
            for line in now {
                screen.push_str(line);
                screen.push_str("\r\n");
            }
            self.pager.extend(later.iter().map(|l| l.to_string()));
        }
        self.after_output(screen);
    }

    fn after_output(&mut self, screen: &mut String) {
        if !self.pager.is_empty() {
            screen.push_str(MORE);
        } else if !self.session.busy() && self.state == State::Ready {
            screen.push_str(self.editor.prompt());
        }
    }

    fn page_key(&mut self, byte: u8, screen: &mut String) {
        let lines = match byte {
            b' ' => self.session.page_length.saturating_sub(1).max(1),
            b'\r' | b'\n' => 1,
            b'q' | b'Q' | CTRL_C => {
                self.pager.clear();
                0
            }
            _ => return,
        };
        screen.push_str("\r\x1b[K");
        for line in self.pager.drain(..lines.min(self.pager.len())) {
            screen.push_str(&line);
            screen.push_str("\r\n");
        }
        self.after_output(screen);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `openssl passwd -6 -salt natboxsalt secret`
    const HASH: &str =
        "$6$natboxsalt$0HThqMT32bYBWMr7y50qCVP1Y82/Xe.ykuCCfv4DoiyvSO8jnWCN05.QoRohXBxqOIkCHat8ZnUrgOxfDL4hE0";

    /// Answers `lines N` with N numbered lines, `job` by starting a 2-step job.
    #[derive(Default)]
    struct Fake {
        job_steps: u32,
    }

    impl Backend for Fake {
        fn execute(&mut self, session: &mut Session, line: &str) -> Reply {
            let text = match line.split_once(' ') {
                Some(("lines", n)) => (1..=n.parse::<u32>().unwrap())
                    .map(|i| format!("line {i}"))
                    .collect::<Vec<_>>()
                    .join("\n"),
                _ if line == "job" => {
                    session.job = Some(1);
                    self.job_steps = 2;
                    "started".into()
                }
                _ if line == "exit" => {
                    return Reply {
                        text: "bye".into(),
                        action: Action::Exit,
                    }
                }
                _ => format!("ran {line}"),
            };
            Reply {
                text,
                action: Action::None,
            }
        }

        fn resume(&mut self, session: &mut Session) -> String {
            self.job_steps -= 1;
            if self.job_steps == 0 {
                session.job = None;
                return "done".into();
            }
            "step".into()
        }

        fn interrupt(&mut self, session: &mut Session) -> String {
            session.job = None;
            "stopped".into()
        }
    }

    #[test]
    fn open_console_says_so() {
        let mut t = TerminalShell::new("nb");
        let out = t.feed(b"", None, 0, &mut Fake::default());
        assert!(out.contains("no password set: open console") && out.ends_with("nb> "));
        let out = t.feed(b"show\r", None, 0, &mut Fake::default());
        assert!(out.contains("ran show\r\nnb> "), "{out:?}");
    }

    #[test]
    fn sha512_crypt_hash_verifies() {
        assert!(verify_password(b"secret", HASH));
        assert!(!verify_password(b"Secret", HASH));
        assert!(!verify_password(b"secret", "not a hash"));
    }

    #[test]
    fn password_without_echo_and_growing_delay() {
        let mut t = TerminalShell::new("nb");
        let b = &mut Fake::default();
        assert!(t.feed(b"", Some(HASH), 0, b).ends_with("Password: "));
        let out = t.feed(b"wrong\r", Some(HASH), 0, b);
        assert!(!out.contains("wrong"), "no echo: {out:?}");
        assert!(out.contains("login incorrect; wait 1 s"));
        // Typed during the delay: ignored, even the right password.
        assert_eq!(t.feed(b"secret\r", Some(HASH), 500, b), "");
        assert_eq!(t.feed(b"", Some(HASH), 1000, b), "Password: ");
        let out = t.feed(b"again\r", Some(HASH), 1000, b);
        assert!(out.contains("wait 2 s"), "{out:?}");
        assert_eq!(t.feed(b"", Some(HASH), 2999, b), "");
        assert_eq!(t.feed(b"", Some(HASH), 3000, b), "Password: ");
        let out = t.feed(b"secrex\x7ft\r", Some(HASH), 3000, b);
        assert!(
            out.ends_with("nb> "),
            "backspace edits the password: {out:?}"
        );
        assert!(t.feed(b"show\r", Some(HASH), 3000, b).contains("ran show"));
        let out = t.feed(b"exit\r", Some(HASH), 3000, b);
        assert!(out.ends_with("logged out\r\nPassword: "), "{out:?}");
    }

    #[test]
    fn long_output_pages() {
        let mut t = TerminalShell::new("nb");
        let b = &mut Fake::default();
        t.feed(b"", None, 0, b);
        let out = t.feed(b"lines 30\r", None, 0, b);
        assert!(out.contains("line 23\r\n") && !out.contains("line 24"));
        assert!(out.ends_with(MORE));
        let out = t.feed(b"\r", None, 0, b);
        assert!(out.contains("line 24\r\n") && !out.contains("line 25"));
        let out = t.feed(b" ", None, 0, b);
        assert!(
            out.contains("line 30\r\n") && out.ends_with("nb> "),
            "{out:?}"
        );
        t.feed(b"lines 30\r", None, 0, b);
        let out = t.feed(b"q", None, 0, b);
        assert!(!out.contains("line 24") && out.ends_with("nb> "));
        t.feed(b"terminal 0\r", None, 0, b);
        t.session.page_length = 0;
        assert!(t.feed(b"lines 30\r", None, 0, b).contains("line 30"));
    }

    #[test]
    fn jobs_stream_and_stop_on_ctrl_c() {
        let mut t = TerminalShell::new("nb");
        let b = &mut Fake::default();
        t.feed(b"", None, 0, b);
        let out = t.feed(b"job\r", None, 0, b);
        assert!(out.ends_with("started\r\nstep\r\n"), "{out:?}");
        assert!(t.feed(b"ignored", None, 0, b).ends_with("done\r\nnb> "));
        t.feed(b"job\r", None, 0, b);
        let out = t.feed(b"\x03", None, 0, b);
        assert!(out.contains("^C\r\nstopped\r\nnb> "), "{out:?}");
    }

    #[test]
    fn ctrl_c_is_wanted_only_by_a_job_or_a_page() {
        let mut t = TerminalShell::new("nb");
        let b = &mut Fake::default();
        assert!(!t.wants_interrupt(), "before the greeting");
        t.feed(b"", None, 0, b);
        assert!(!t.wants_interrupt(), "at the prompt");
        t.feed(b"job\r", None, 0, b);
        assert!(t.wants_interrupt(), "a job runs");
        t.feed(b"\x03", None, 0, b);
        assert!(!t.wants_interrupt(), "the job stopped");
        t.feed(b"lines 30\r", None, 0, b);
        assert!(t.wants_interrupt(), "a page waits");
        t.feed(b"\x03", None, 0, b);
        assert!(!t.wants_interrupt(), "paging skipped");
        let mut locked = TerminalShell::new("nb");
        locked.feed(b"", Some(HASH), 0, b);
        assert!(!locked.wants_interrupt(), "at the password prompt");
    }
}
