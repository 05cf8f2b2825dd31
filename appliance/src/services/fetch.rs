//! One HTTP/1.1 exchange the box makes as a client (RFC 9112): a TCP connection
//! (smoltcp over the engine, `tcp`) from one of the box's addresses to a server, the
//! request written whole, the response read until the server closes, at most
//! `max_response` bytes, all of it within a deadline. Used at boot to read the cloud's
//! metadata (`metadata`); the request asks `Connection: close`, so the server's FIN
//! ends the response, and the caller may also end it early once the bytes parse.
//!
//! The engine delivers the connection's segments through a `Binding::TcpPeer` (both
//! endpoints), taken before NAT: the box opens one only before forwarding starts.
//! The local port is drawn from the dynamic range (49152-65535, RFC 6335 §6) with
//! the interface's seeded generator, so it is not predictable either.

use super::packet;
use super::tcp::{interface, random_seed, Queues};
use crate::engine::local::Binding;
use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use std::net::{IpAddr, SocketAddr};

/// Datagrams waiting in the receive queue at most.
const RX_QUEUE: usize = 64;

/// A connection in progress, or its end.
pub struct Exchange {
    local: SocketAddr,
    peer: SocketAddr,
    iface: Interface,
    sockets: SocketSet<'static>,
    handle: SocketHandle,
    dev: Queues,
    request: Vec<u8>,
    sent: usize,
    response: Vec<u8>,
    max_response: usize,
    deadline_ms: u64,
    /// Whether the server has sent its whole response (FIN).
    closed: bool,
    error: Option<String>,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchange")
            .field("local", &self.local)
            .field("peer", &self.peer)
            .field("received", &self.response.len())
            .finish_non_exhaustive()
    }
}

impl Exchange {
    /// Connects from `local` to `peer` and sends `request`; the whole exchange must
    /// end within `timeout_ms` of `now` (ms), with at most `max_response` bytes.
    pub fn start(
        local: IpAddr,
        peer: SocketAddr,
        request: Vec<u8>,
        max_response: usize,
        mtu: usize,
        now: u64,
        timeout_ms: u64,
    ) -> Exchange {
        let mut dev = Queues::new(mtu);
        let mut iface = interface(local, &mut dev, now, "the metadata fetch");
        let port = 49152 + (random_seed("the metadata fetch") % 16384) as u16;
        let mut socket = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; 64 * 1024]),
            tcp::SocketBuffer::new(vec![0; request.len().max(1)]),
        );
        let error = socket
            .connect(iface.context(), (peer.ip(), peer.port()), port)
            .err()
            .map(|e| format!("cannot connect to {peer}: {e}"));
        let mut sockets = SocketSet::new(Vec::new());
        let handle = sockets.add(socket);
        Exchange {
            local: SocketAddr::new(local, port),
            peer,
            iface,
            sockets,
            handle,
            dev,
            request,
            sent: 0,
            response: Vec::new(),
            max_response,
            deadline_ms: now.saturating_add(timeout_ms),
            closed: false,
            error,
        }
    }

    /// What the engine must deliver to this exchange.
    pub fn binding(&self) -> Binding {
        Binding::TcpPeer {
            local: self.local,
            peer: self.peer,
        }
    }

    /// Takes a delivered datagram if it is one of this connection's segments.
    pub fn receive(&mut self, ip: &[u8]) -> bool {
        let ours = packet::tcp4_endpoints(ip) == Some((self.peer, self.local));
        if ours {
            self.dev.push(ip, RX_QUEUE);
        }
        ours
    }

    /// Runs TCP: sends the request, reads the response. Returns the datagrams to send.
    pub fn poll(&mut self, now: u64) -> Vec<Vec<u8>> {
        // Polled on after the end too, so the closing segments go out.
        let at = Instant::from_millis(now as i64);
        for _ in 0..2 {
            self.iface.poll(at, &mut self.dev, &mut self.sockets);
            if !self.finished() {
                self.step();
            }
        }
        if !self.finished() && now >= self.deadline_ms {
            self.fail(format!(
                "no complete answer from {} within the deadline ({} bytes received)",
                self.peer,
                self.response.len()
            ));
        }
        std::mem::take(&mut self.dev.tx)
    }

    fn step(&mut self) {
        let socket = self.sockets.get_mut::<tcp::Socket<'_>>(self.handle);
        while self.sent < self.request.len() && socket.can_send() {
            match socket.send_slice(&self.request[self.sent..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => self.sent += n,
            }
        }
        let mut buf = [0u8; 4096];
        while socket.can_recv() {
            match socket.recv_slice(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => self.response.extend_from_slice(&buf[..n]),
            }
            if self.response.len() > self.max_response {
                let max = self.max_response;
                socket.abort();
                self.fail(format!(
                    "the answer is longer than {max} bytes, the most natbox reads"
                ));
                return;
            }
        }
        let state = socket.state();
        if self.sent > 0 && !socket.may_recv() && state != tcp::State::SynSent {
            if state == tcp::State::Closed && self.response.is_empty() {
                self.fail(format!("{} reset the connection", self.peer));
            } else {
                self.closed = true;
                socket.close();
            }
        } else if state == tcp::State::Closed && self.sent == 0 {
            self.fail(format!("{} refused the connection", self.peer));
        }
    }

    fn fail(&mut self, message: String) {
        self.error.get_or_insert(message);
        self.sockets.get_mut::<tcp::Socket<'_>>(self.handle).abort();
    }

    /// The bytes of the response received so far.
    pub fn received(&self) -> &[u8] {
        &self.response
    }

    /// Whether the server closed its side after the response.
    pub fn closed(&self) -> bool {
        self.closed
    }

    /// The reason the exchange failed, if it did.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    fn finished(&self) -> bool {
        self.closed || self.error.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::super::http::MetricsServer;
    use super::*;

    const SERVER: &str = "10.10.0.1:9100";

    fn request(path: &str) -> Vec<u8> {
        format!("GET {path} HTTP/1.1\r\nHost: 10.10.0.1\r\nConnection: close\r\n\r\n").into_bytes()
    }

    fn exchange(path: &str, max: usize) -> Exchange {
        let local = "10.10.0.2".parse().unwrap();
        Exchange::start(
            local,
            SERVER.parse().unwrap(),
            request(path),
            max,
            1500,
            0,
            2000,
        )
    }

    /// Runs `ex` against a metrics responder until it ends or 3 s pass.
    fn run(ex: &mut Exchange, body: &str) {
        let mut server = MetricsServer::new(SERVER.parse().unwrap(), 1500, 0);
        for now in (0..3000).step_by(10) {
            for ip in ex.poll(now) {
                server.receive(&ip);
            }
            for ip in server.poll(now, &mut || body.to_string()) {
                assert!(ex.receive(&ip), "every segment is the exchange's");
            }
            if ex.finished() {
                return;
            }
        }
    }

    #[test]
    fn rfc9112_response_is_read_until_the_server_closes() {
        let mut ex = exchange("/metrics", 4096);
        assert_eq!(
            ex.binding(),
            Binding::TcpPeer {
                local: ex.local,
                peer: SERVER.parse().unwrap()
            }
        );
        assert!((49152..=65535).contains(&ex.local.port()));
        run(&mut ex, "m 1\n");
        assert!(ex.closed(), "{:?}", ex.error());
        let text = String::from_utf8_lossy(ex.received()).into_owned();
        assert!(
            text.starts_with("HTTP/1.1 200 OK\r\n") && text.ends_with("\r\n\r\nm 1\n"),
            "{text}"
        );
    }

    #[test]
    fn a_response_longer_than_the_bound_ends_the_exchange_with_an_error() {
        let mut ex = exchange("/metrics", 100);
        run(&mut ex, &"x".repeat(1000));
        assert!(!ex.closed());
        assert!(
            ex.error()
                .is_some_and(|e| e.contains("longer than 100 bytes")),
            "{:?}",
            ex.error()
        );
    }

    #[test]
    fn a_silent_server_ends_the_exchange_at_its_deadline() {
        let mut ex = exchange("/metrics", 4096);
        let mut sent = 0;
        for now in (0..=2000).step_by(100) {
            sent += ex.poll(now).len(); // SYNs into the void
        }
        assert!(sent >= 1);
        assert!(
            ex.error()
                .is_some_and(|e| e.contains("within the deadline")),
            "{:?}",
            ex.error()
        );
    }

    #[test]
    fn segments_of_other_connections_are_not_taken() {
        let mut ex = exchange("/metrics", 4096);
        let other = packet::udp(
            "10.10.0.1".parse().unwrap(),
            "10.10.0.2".parse().unwrap(),
            9100,
            ex.local.port(),
            b"x",
        )
        .unwrap();
        assert!(!ex.receive(&other));
    }
}
