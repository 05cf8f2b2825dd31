//! The metrics responder: `GET /metrics` over HTTP/1.1 (RFC 9112) on one address and
//! TCP port of the inside port, for a Prometheus scraper in the private network.
//!
//! TCP is smoltcp's over the engine (`tcp`), fed the datagrams the engine shards
//! deliver for the bound address and port. Deliberately small: at most `CONNECTIONS`
//! connections at once, one request per connection (`Connection: close`), requests
//! up to `MAX_REQUEST` bytes, and only `GET /metrics` (404 for other paths, 405 for
//! other methods, 400 for anything unparsable). The response body is rendered only
//! when a complete request arrived, and the connection is closed after it; idle
//! connections time out after 10 s, and every connection is reset `LIFETIME_MS`
//! after it opened however it trickles, so a slowloris client (a byte every few
//! seconds) cannot hold the few connections and lock the scraper out.
//!
//! Runs on the control tick (every 100 ms), so a scrape takes a few ticks; plenty
//! for a scrape interval of seconds.

use super::tcp::{interface, Queues};
use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use std::net::SocketAddr;

/// Connections served at once; more wait in their SYN retransmissions.
pub const CONNECTIONS: usize = 4;
/// Longest request head accepted.
pub const MAX_REQUEST: usize = 4096;
const TX_BUFFER: usize = 64 * 1024;
const IDLE: Duration = Duration::from_secs(10);
/// A connection's whole life, from its SYN, in ms: a scrape needs a few ticks.
pub const LIFETIME_MS: u64 = 10_000;

/// One connection's progress.
#[derive(Debug, Default)]
struct Exchange {
    request: Vec<u8>,
    /// The response and how much of it is in the socket already.
    response: Option<(Vec<u8>, usize)>,
    /// When the connection was first seen active, in ms.
    opened_ms: Option<u64>,
}

/// The responder for one listen address.
pub struct MetricsServer {
    listen: SocketAddr,
    iface: Interface,
    sockets: SocketSet<'static>,
    conns: Vec<(SocketHandle, Exchange)>,
    dev: Queues,
}

impl std::fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsServer")
            .field("listen", &self.listen)
            .finish_non_exhaustive()
    }
}

impl MetricsServer {
    /// A responder on `listen`, for a port of `mtu` bytes; `now` in ms.
    pub fn new(listen: SocketAddr, mtu: usize, now: u64) -> MetricsServer {
        let mut dev = Queues::new(mtu);
        let iface = interface(listen.ip(), &mut dev, now, "the metrics responder");
        let mut sockets = SocketSet::new(Vec::new());
        let conns = (0..CONNECTIONS)
            .map(|_| {
                let mut socket = tcp::Socket::new(
                    tcp::SocketBuffer::new(vec![0; MAX_REQUEST]),
                    tcp::SocketBuffer::new(vec![0; TX_BUFFER]),
                );
                socket.set_timeout(Some(IDLE));
                (sockets.add(socket), Exchange::default())
            })
            .collect();
        MetricsServer {
            listen,
            iface,
            sockets,
            conns,
            dev,
        }
    }

    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// Takes a datagram the engine delivered for the listen address.
    pub fn receive(&mut self, ip: &[u8]) {
        self.dev.push(ip, 4 * CONNECTIONS * 8);
    }

    /// Runs TCP and the exchanges; `body` renders the metrics when a request needs
    /// them. Returns the datagrams to send.
    pub fn poll(&mut self, now: u64, body: &mut dyn FnMut() -> String) -> Vec<Vec<u8>> {
        let at = Instant::from_millis(now as i64);
        let port = self.listen.port();
        for (handle, _) in &self.conns {
            let socket = self.sockets.get_mut::<tcp::Socket<'_>>(*handle);
            if !socket.is_open() {
                let _ = socket.listen(port);
            }
        }
        // Bounded: the first poll takes the received datagrams, the second sends
        // the responses queued in between.
        for _ in 0..2 {
            self.iface.poll(at, &mut self.dev, &mut self.sockets);
            for (handle, exchange) in &mut self.conns {
                let socket = self.sockets.get_mut::<tcp::Socket<'_>>(*handle);
                serve(socket, exchange, now, body);
            }
        }
        std::mem::take(&mut self.dev.tx)
    }
}

/// Reads the request, queues the response, closes when it is all in the socket;
/// resets a connection older than `LIFETIME_MS` (`now` in ms).
fn serve(
    socket: &mut tcp::Socket<'_>,
    ex: &mut Exchange,
    now: u64,
    body: &mut dyn FnMut() -> String,
) {
    if !socket.is_active() {
        *ex = Exchange::default();
        return;
    }
    let opened = *ex.opened_ms.get_or_insert(now);
    if now.saturating_sub(opened) >= LIFETIME_MS {
        socket.abort();
        *ex = Exchange::default();
        return;
    }
    if ex.response.is_none() {
        let mut buf = [0u8; 1024];
        while socket.can_recv() {
            match socket.recv_slice(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => ex.request.extend_from_slice(&buf[..n]),
            }
            if ex.request.len() > MAX_REQUEST {
                break;
            }
        }
        let complete = ex.request.windows(4).any(|w| w == b"\r\n\r\n");
        let too_big = ex.request.len() > MAX_REQUEST;
        let peer_done = !socket.may_recv() && !ex.request.is_empty();
        if complete || too_big || peer_done {
            ex.response = Some((respond(&ex.request, too_big, body), 0));
        }
    }
    if let Some((response, sent)) = ex.response.as_mut() {
        while *sent < response.len() && socket.can_send() {
            match socket.send_slice(&response[*sent..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => *sent += n,
            }
        }
        if *sent == response.len() {
            socket.close();
        }
    }
}

/// The response to a request head.
fn respond(request: &[u8], too_big: bool, body: &mut dyn FnMut() -> String) -> Vec<u8> {
    let line = request
        .split(|&b| b == b'\n')
        .next()
        .map(|l| String::from_utf8_lossy(l).trim_end().to_string())
        .unwrap_or_default();
    let mut words = line.split(' ');
    let (method, target, version) = (words.next(), words.next(), words.next());
    let (status, content_type, text) = match (method, target, version) {
        _ if too_big => (
            "431 Request Header Fields Too Large",
            "text/plain",
            String::new(),
        ),
        (Some("GET"), Some("/metrics"), Some(v)) if v.starts_with("HTTP/1.") => {
            ("200 OK", "text/plain; version=0.0.4; charset=utf-8", body())
        }
        (Some("GET" | "HEAD"), Some(_), Some(v)) if v.starts_with("HTTP/1.") => (
            "404 Not Found",
            "text/plain",
            "natbox serves /metrics only\n".to_string(),
        ),
        (Some(_), Some(_), Some(v)) if v.starts_with("HTTP/1.") => (
            "405 Method Not Allowed",
            "text/plain",
            "GET /metrics\n".to_string(),
        ),
        _ => ("400 Bad Request", "text/plain", String::new()),
    };
    let allow = if status.starts_with("405") {
        "Allow: GET\r\n"
    } else {
        ""
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n",
        text.len()
    )
    .into_bytes();
    out.extend_from_slice(text.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(request: &str) -> String {
        let out = respond(request.as_bytes(), false, &mut || "m 1\n".to_string());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn rfc9112_status_lines() {
        let ok = status("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("Content-Length: 4\r\n") && ok.ends_with("\r\n\r\nm 1\n"));
        assert!(status("GET / HTTP/1.0\r\n\r\n").starts_with("HTTP/1.1 404"));
        let post = status("POST /metrics HTTP/1.1\r\n\r\n");
        assert!(post.starts_with("HTTP/1.1 405") && post.contains("Allow: GET\r\n"));
        assert!(status("\x16\x03\x01 garbage").starts_with("HTTP/1.1 400"));
        let big = respond(b"GET /", true, &mut String::new);
        assert!(String::from_utf8(big).unwrap().starts_with("HTTP/1.1 431"));
    }

    const SERVER: &str = "10.10.0.1:9100";

    /// A smoltcp client at 10.10.0.2 talking to a responder through queues.
    struct Client {
        iface: Interface,
        sockets: SocketSet<'static>,
        handle: SocketHandle,
        dev: Queues,
    }

    impl Client {
        fn connect(now: u64) -> Client {
            let mut dev = Queues::new(1500);
            let mut iface = interface("10.10.0.2".parse().unwrap(), &mut dev, now, "the client");
            let mut sockets = SocketSet::new(Vec::new());
            let mut socket = tcp::Socket::new(
                tcp::SocketBuffer::new(vec![0; 4096]),
                tcp::SocketBuffer::new(vec![0; 4096]),
            );
            let server: SocketAddr = SERVER.parse().unwrap();
            socket
                .connect(
                    iface.context(),
                    (smoltcp::wire::IpAddress::from(server.ip()), server.port()),
                    40000,
                )
                .unwrap();
            let handle = sockets.add(socket);
            Client {
                iface,
                sockets,
                handle,
                dev,
            }
        }

        fn socket(&mut self) -> &mut tcp::Socket<'static> {
            self.sockets.get_mut::<tcp::Socket<'static>>(self.handle)
        }

        /// One exchange of datagrams both ways at `now` ms.
        fn round(&mut self, server: &mut MetricsServer, now: u64) {
            let at = Instant::from_millis(now as i64);
            self.iface.poll(at, &mut self.dev, &mut self.sockets);
            for ip in std::mem::take(&mut self.dev.tx) {
                server.receive(&ip);
            }
            let replies = server.poll(now, &mut || "m 1\n".to_string());
            self.dev.rx.extend(replies);
            self.iface.poll(at, &mut self.dev, &mut self.sockets);
        }
    }

    /// Slowloris: a request sent a byte at a time, each within the idle timeout,
    /// would hold a connection for ever; it is reset at `LIFETIME_MS`.
    #[test]
    fn slowloris_connection_is_reset_at_its_absolute_deadline() {
        let mut server = MetricsServer::new(SERVER.parse().unwrap(), 1500, 0);
        let mut client = Client::connect(0);
        client.round(&mut server, 0);
        client.round(&mut server, 100);
        assert_eq!(client.socket().state(), tcp::State::Established);
        let mut now = 100;
        for byte in b"GET /metrics HTTP/1.1\r\n".iter().cycle().take(40) {
            now += 1000; // well within the 10 s idle timeout
            if client.socket().can_send() {
                client.socket().send_slice(&[*byte]).unwrap();
            }
            client.round(&mut server, now);
            if now < LIFETIME_MS {
                assert!(client.socket().is_open(), "closed early at {now} ms");
            }
        }
        assert_eq!(
            client.socket().state(),
            tcp::State::Closed,
            "still open after {now} ms"
        );
    }

    /// RFC 6528: initial sequence numbers must not be predictable; with smoltcp's
    /// default seed every responder (every boot) answered a SYN with the same one.
    #[test]
    fn rfc6528_responders_pick_unpredictable_initial_sequence_numbers() {
        let isn = || {
            let mut server = MetricsServer::new(SERVER.parse().unwrap(), 1500, 0);
            let mut client = Client::connect(0);
            client.iface.poll(
                Instant::from_millis(0),
                &mut client.dev,
                &mut client.sockets,
            );
            for ip in std::mem::take(&mut client.dev.tx) {
                server.receive(&ip);
            }
            let syn_ack = server.poll(0, &mut String::new).remove(0);
            // IPv4 header without options (20 bytes), then the TCP sequence number.
            u32::from_be_bytes(syn_ack[24..28].try_into().unwrap())
        };
        assert_ne!(isn(), isn());
    }
}
