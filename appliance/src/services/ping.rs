//! `ping` from the box: echo requests (RFC 792 / RFC 4443 section 4.1) sent from the
//! box's own address toward the destination's route (the outside address for the
//! Internet, the inside address for private hosts), one a second, and the replies
//! with their round-trip times.
//!
//! A ping is a job the shell starts and then polls between batches, so the dataplane
//! never waits for it. Each job has an identifier that no NAT mapping uses on its
//! source address when it starts (on any shard), and binds echo replies carrying that
//! identifier from its destination (see `engine::local`). Round-trip times come from
//! the engine's clock at send (queued) and at arrival, in milliseconds. Requests leave
//! through `Snapshots::originate` (one shard).

use super::packet;
use crate::control::shards::{Shards, Snapshots};
use crate::engine::local::Binding;
use std::fmt::Write;
use std::net::IpAddr;

/// Jobs running at once.
pub const MAX_JOBS: usize = 4;
/// Echo requests per job, at most.
pub const MAX_COUNT: u16 = 100;
const INTERVAL_MS: u64 = 1000;
/// How long to wait for the last reply.
const LAST_WAIT_MS: u64 = 2000;
/// Echo identifiers asked of the shards per request while looking for a free one: a
/// pool address full of ICMP mappings costs 64 requests, not 65536.
const IDENT_WINDOW: u16 = 1024;
/// Bytes after the ICMP header, as Linux's ping sends by default.
const DATA_LEN: usize = 56;

/// One running `ping`.
#[derive(Debug)]
struct Job {
    id: u32,
    dst: IpAddr,
    src: IpAddr,
    ident: u16,
    count: u16,
    /// Send time of each request, by sequence number - 1.
    sent_at: Vec<u64>,
    next_at: u64,
    /// Lines not yet shown.
    lines: Vec<String>,
    /// Round-trip time of each reply, in ms.
    rtts: Vec<u64>,
    finished: bool,
}

/// What a shell learns when it polls its job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub text: String,
    pub finished: bool,
}

/// The running jobs.
#[derive(Debug, Default)]
pub struct Pings {
    jobs: Vec<Job>,
    next_id: u32,
    next_ident: u16,
}

impl Pings {
    /// Starts pinging `dst` `count` times; returns the job's id and its first line.
    pub fn start(
        &mut self,
        shards: &mut dyn Shards,
        dst: IpAddr,
        count: u16,
        now: u64,
    ) -> Result<(u32, String), String> {
        self.jobs.retain(|j| !j.finished);
        if self.jobs.len() >= MAX_JOBS {
            return Err(format!("{MAX_JOBS} pings are already running; try again"));
        }
        if !(1..=MAX_COUNT).contains(&count) {
            return Err(format!("count must be 1 to {MAX_COUNT}"));
        }
        let src = shards
            .source_for(dst)
            .ok_or_else(|| format!("no route to {dst}, or no address of the box's on its port"))?;
        let ident = self.free_ident(shards, src);
        self.next_id += 1;
        let id = self.next_id;
        self.jobs.push(Job {
            id,
            dst,
            src,
            ident,
            count,
            sent_at: Vec::with_capacity(usize::from(count)),
            next_at: now,
            lines: Vec::new(),
            rtts: Vec::new(),
            finished: false,
        });
        Ok((
            id,
            format!("PING {dst} from {src}: {DATA_LEN} data bytes, {count} request(s) 1 s apart"),
        ))
    }

    /// An identifier no NAT mapping on `src` uses and no other job has: the next one
    /// after the last handed out, asked of the shards `IDENT_WINDOW` at a time.
    fn free_ident(&mut self, shards: &mut dyn Shards, src: IpAddr) -> u16 {
        for _ in 0..=u16::MAX / IDENT_WINDOW {
            let first = self.next_ident.wrapping_add(1);
            let taken = match src {
                IpAddr::V4(a) => shards.echo_idents_taken(a, first, IDENT_WINDOW),
                IpAddr::V6(_) => Vec::new(),
            };
            for i in 0..IDENT_WINDOW {
                let ident = first.wrapping_add(i);
                self.next_ident = ident;
                if ident != 0
                    && taken.binary_search(&ident).is_err()
                    && self.jobs.iter().all(|j| j.ident != ident)
                {
                    return ident;
                }
            }
        }
        self.next_ident
    }

    /// What the engine should deliver to the jobs.
    pub fn bindings(&self) -> impl Iterator<Item = Binding> + '_ {
        self.jobs
            .iter()
            .filter(|j| !j.finished)
            .map(|j| Binding::EchoReply {
                from: j.dst,
                ident: j.ident,
            })
    }

    /// Takes a datagram the engine delivered; false if it is not an echo reply.
    pub fn receive(&mut self, ip: &[u8], arrived: u64) -> bool {
        let Some(r) = packet::parse_echo_reply(ip) else {
            return false;
        };
        let Some(job) = self
            .jobs
            .iter_mut()
            .find(|j| !j.finished && j.ident == r.ident && j.dst == r.from)
        else {
            return true;
        };
        let Some(&sent) = usize::from(r.seq)
            .checked_sub(1)
            .and_then(|i| job.sent_at.get(i))
        else {
            return true;
        };
        let rtt = arrived.saturating_sub(sent);
        job.rtts.push(rtt);
        let time = if rtt == 0 {
            "<1 ms".to_string()
        } else {
            format!("{rtt} ms")
        };
        job.lines.push(format!(
            "{} bytes from {}: icmp_seq={} ttl={} time={time}",
            r.len, r.from, r.seq, r.ttl
        ));
        true
    }

    /// Sends the requests that are due and finishes jobs that are done.
    pub fn poll(&mut self, shards: &mut dyn Shards, now: u64) {
        for job in self.jobs.iter_mut().filter(|j| !j.finished) {
            let sent = job.sent_at.len() as u16;
            if sent < job.count && now >= job.next_at {
                let seq = sent + 1;
                let request =
                    packet::echo_request(job.src, job.dst, job.ident, seq, &[0xa5; DATA_LEN]);
                job.sent_at.push(now);
                job.next_at = now + INTERVAL_MS;
                match request.map(|ip| shards.originate(ip)) {
                    Some(Ok(())) => {}
                    Some(Err(reason)) => job
                        .lines
                        .push(format!("icmp_seq={seq}: not sent: {}", reason.help())),
                    None => job.lines.push(format!("icmp_seq={seq}: not sent")),
                }
            }
            let all_sent = job.sent_at.len() as u16 == job.count;
            let last = job.sent_at.last().copied().unwrap_or(now);
            let all_back = job.rtts.len() == usize::from(job.count);
            if all_sent && (all_back || now >= last + LAST_WAIT_MS) {
                job.finished = true;
                job.lines.push(summary(job));
            }
        }
    }

    /// Lines job `id` printed since the last call, and whether it is over.
    pub fn progress(&mut self, id: u32) -> Progress {
        let Some(at) = self.jobs.iter().position(|j| j.id == id) else {
            return Progress {
                text: String::new(),
                finished: true,
            };
        };
        let job = &mut self.jobs[at];
        let text = std::mem::take(&mut job.lines).join("\n");
        let finished = job.finished;
        if finished {
            self.jobs.remove(at);
        }
        Progress { text, finished }
    }

    /// Stops job `id` (the operator pressed ^C or went away).
    pub fn cancel(&mut self, id: u32) -> String {
        let Some(at) = self.jobs.iter().position(|j| j.id == id) else {
            return String::new();
        };
        let mut job = self.jobs.remove(at);
        job.lines.push(summary(&job));
        job.lines.join("\n")
    }
}

fn summary(job: &Job) -> String {
    let sent = job.sent_at.len();
    let received = job.rtts.len();
    let loss = ((sent - received.min(sent)) * 100)
        .checked_div(sent)
        .unwrap_or(0);
    let mut s = format!(
        "--- {} ping statistics ---\n{sent} packets transmitted, {received} received, {loss}% packet loss",
        job.dst
    );
    if let (Some(min), Some(max)) = (job.rtts.iter().min(), job.rtts.iter().max()) {
        let avg = job.rtts.iter().sum::<u64>() / job.rtts.len() as u64;
        let _ = write!(s, "\nrtt min/avg/max = {min}/{avg}/{max} ms");
    }
    s
}
