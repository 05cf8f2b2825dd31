//! The admin socket: a Unix stream socket where scripts and tests talk to the shell
//! (`socat - UNIX-CONNECT:/run/natbox.sock`). Line in, reply out; a client that closes
//! its side gets the replies to everything it sent, then the connection closes.
//! A command may leave its session busy (a `ping` running): the session is then
//! polled every round for more output, and the next line waits until it is free.
//!
//! Everything is non-blocking and polled from the dataplane loop's timer tick, so a
//! slow or hostile client can never stall forwarding: at most `LINES_PER_POLL`
//! command lines run per tick over all clients (the rest wait for the next ticks,
//! and the client served first rotates, so one client cannot starve the others),
//! input per connection is bounded (`MAX_PENDING`), unread output is bounded too (a
//! client that does not read is dropped), and at most `MAX_CLIENTS` connect at once.

use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

const MAX_CLIENTS: usize = 8;
/// Command lines run per `poll`, over all clients.
const LINES_PER_POLL: usize = 16;
/// Bytes of unprocessed input or unsent output kept per connection.
const MAX_PENDING: usize = 1 << 20;

/// What one call of the caller's session handler produced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Served {
    pub text: String,
    /// Close the connection once the output is written.
    pub close: bool,
    /// The session is still working: call again with no line next round.
    pub busy: bool,
}

#[derive(Debug)]
struct Client<S> {
    /// The caller's per-connection state (a shell session).
    session: S,
    stream: UnixStream,
    input: Vec<u8>,
    output: Vec<u8>,
    /// The client closed its side: answer what it sent, then close.
    closing: bool,
    busy: bool,
}

/// The listening socket and its clients, each with a session state `S`.
#[derive(Debug)]
pub struct AdminSocket<S> {
    path: PathBuf,
    listener: UnixListener,
    clients: Vec<Client<S>>,
}

impl<S: Default> AdminSocket<S> {
    /// Listens at `path`, replacing a stale socket file.
    pub fn bind(path: &Path) -> io::Result<AdminSocket<S>> {
        if path.exists() {
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        listener.set_nonblocking(true)?;
        Ok(AdminSocket {
            path: path.to_path_buf(),
            listener,
            clients: Vec::new(),
        })
    }

    /// Accepts, reads, runs each complete line through `run` (with the connection's
    /// session; `None` instead of a line continues a busy session), writes replies.
    /// Never blocks.
    pub fn poll(&mut self, mut run: impl FnMut(&mut S, Option<&str>) -> Served) {
        while self.clients.len() < MAX_CLIENTS {
            match self.listener.accept() {
                Ok((stream, _)) if stream.set_nonblocking(true).is_ok() => {
                    self.clients.push(Client {
                        session: S::default(),
                        stream,
                        input: Vec::new(),
                        output: Vec::new(),
                        closing: false,
                        busy: false,
                    })
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let mut budget = LINES_PER_POLL;
        self.clients.retain_mut(|c| serve(c, &mut run, &mut budget));
        if !self.clients.is_empty() {
            self.clients.rotate_left(1);
        }
    }
}

/// One round for one client, running at most `budget` lines (and counting them
/// off); false when the connection is done.
fn serve<S>(
    c: &mut Client<S>,
    run: &mut impl FnMut(&mut S, Option<&str>) -> Served,
    budget: &mut usize,
) -> bool {
    let mut buf = [0u8; 4096];
    while !c.closing {
        match c.stream.read(&mut buf) {
            Ok(0) => c.closing = true,
            Ok(n) => {
                if c.input.len() + n > MAX_PENDING {
                    let _ = c.stream.write_all(b"error: input too large, closing\n");
                    return false;
                }
                c.input.extend_from_slice(&buf[..n]);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
    if c.busy {
        let served = run(&mut c.session, None);
        c.take(served);
    }
    while !c.busy && *budget > 0 {
        let Some(end) = c.input.iter().position(|&b| b == b'\n') else {
            break;
        };
        *budget -= 1;
        let line: Vec<u8> = c.input.drain(..=end).collect();
        let text = String::from_utf8_lossy(&line[..end]);
        let served = run(&mut c.session, Some(text.trim_end_matches('\r')));
        if served.close {
            c.closing = true;
            c.input.clear();
        }
        c.take(served);
    }
    if c.closing && !c.busy && *budget > 0 && !c.input.is_empty() && !c.input.contains(&b'\n') {
        // A last line without a newline.
        *budget -= 1;
        let line = String::from_utf8_lossy(&std::mem::take(&mut c.input)).into_owned();
        let served = run(&mut c.session, Some(line.trim_end_matches('\r')));
        c.take(served);
    }
    if c.output.len() > MAX_PENDING {
        return false;
    }
    while !c.output.is_empty() {
        match c.stream.write(&c.output) {
            Ok(0) => return false,
            Ok(n) => {
                c.output.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
    !(c.closing && !c.busy && c.input.is_empty() && c.output.is_empty())
}

impl<S> Client<S> {
    /// Queues a reply's text (newline-terminated) and notes whether work goes on.
    fn take(&mut self, served: Served) {
        self.output.extend_from_slice(served.text.as_bytes());
        if !served.text.is_empty() && !served.text.ends_with('\n') {
            self.output.push(b'\n');
        }
        self.busy = served.busy;
    }
}

impl<S> Drop for AdminSocket<S> {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_lines_then_closes_after_eof() {
        let dir = std::env::temp_dir().join(format!("natbox-admin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("admin.sock");
        let mut admin: AdminSocket<u32> = AdminSocket::bind(&path).unwrap();
        let mut client = UnixStream::connect(&path).unwrap();
        client.write_all(b"one\ntwo\nexit\nthree\n").unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        let mut seen = Vec::new();
        for _ in 0..100 {
            admin.poll(|lines_before, line| {
                let line = line.expect("never busy");
                assert_eq!(
                    *lines_before as usize,
                    seen.len(),
                    "one session per connection"
                );
                *lines_before += 1;
                seen.push(line.to_string());
                Served {
                    text: format!("echo {line}"),
                    close: line == "exit",
                    busy: false,
                }
            });
            if admin.clients.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let mut out = String::new();
        client.read_to_string(&mut out).unwrap();
        assert_eq!(out, "echo one\necho two\necho exit\n");
        assert_eq!(seen, vec!["one", "two", "exit"]);
        drop(admin);
        assert!(!path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A client piping in thousands of lines must not hold one tick (and so the
    /// dataplane) for all of them: they run `LINES_PER_POLL` a tick, in order.
    #[test]
    fn admin_runs_a_bounded_number_of_lines_per_tick() {
        let dir = std::env::temp_dir().join(format!("natbox-admin-budget-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("admin.sock");
        let mut admin: AdminSocket<()> = AdminSocket::bind(&path).unwrap();
        let mut flood = UnixStream::connect(&path).unwrap();
        let mut other = UnixStream::connect(&path).unwrap();
        let lines: String = (0..100).map(|i| format!("line {i}\n")).collect();
        flood.write_all(lines.as_bytes()).unwrap();
        flood.shutdown(std::net::Shutdown::Write).unwrap();
        other.write_all(b"mine\n").unwrap();
        other.shutdown(std::net::Shutdown::Write).unwrap();
        let mut seen = Vec::new();
        let mut polls = 0;
        while seen.len() < 101 && polls < 100 {
            let before = seen.len();
            admin.poll(|_, line| {
                seen.push(line.expect("never busy").to_string());
                Served::default()
            });
            assert!(
                seen.len() - before <= LINES_PER_POLL,
                "poll {polls} ran {}",
                seen.len() - before
            );
            polls += 1;
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let flood_lines: Vec<&String> = seen.iter().filter(|l| l.starts_with("line")).collect();
        let in_order: Vec<String> = (0..100).map(|i| format!("line {i}")).collect();
        assert_eq!(flood_lines, in_order.iter().collect::<Vec<_>>());
        let mine = seen
            .iter()
            .position(|l| l == "mine")
            .expect("the other client is served");
        assert!(
            mine < 2 * LINES_PER_POLL,
            "served at {mine}: the flood starved it"
        );
        drop(admin);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
