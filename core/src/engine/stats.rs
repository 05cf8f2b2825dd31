//! Counters: per port, per protocol, per session class, and one `DropReason` enum with a
//! counter per variant. Every frame the engine does not send on is counted under
//! exactly one reason. Counters are plain `u64`s on the engine (single writer); the
//! shell reads a copy.

use super::port::MAX_PORTS;

macro_rules! drop_reasons {
    ($($variant:ident => $name:literal, $help:literal;)*) => {
        /// Why a frame was not forwarded. One counter per variant.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum DropReason {
            $($variant,)*
        }

        impl DropReason {
            /// Every reason, in declaration order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)*];
            pub const COUNT: usize = Self::ALL.len();

            /// A stable snake_case name for metrics and the shell.
            pub fn name(self) -> &'static str {
                match self {
                    $(DropReason::$variant => $name,)*
                }
            }

            /// One line an operator can act on.
            pub fn help(self) -> &'static str {
                match self {
                    $(DropReason::$variant => $help,)*
                }
            }
        }
    };
}

drop_reasons! {
    FrameTruncated => "frame_truncated", "frame shorter than an Ethernet header";
    FrameTooLong => "frame_too_long", "frame longer than the port MTU allows (jumbo frame)";
    NotForUs => "not_for_us", "unicast frame addressed to another MAC";
    VlanTagged => "vlan_tagged", "802.1Q tagged frame; VLANs are not supported";
    GsoUnsupported => "gso_unsupported", "GSO super-frame or partial checksum natbox cannot translate (not TCP/UDP over unfragmented IPv4/IPv6, or inconsistent virtio_net_hdr)";
    GsoNotBuffered => "gso_not_buffered", "GSO super-frame that would have to wait in a buffer (next hop not resolved yet, or for a service of the box's) or be handed to another worker: only wire-sized frames are buffered or handed";
    HandoffFull => "handoff_full", "frame another worker must finish (a reply to its port, a hairpinned datagram, a fragment) not handed to it: that worker's inbox was full or all of this worker's hand-off buffers were in flight";
    UnknownEthertype => "unknown_ethertype", "EtherType other than IPv4, IPv6 or ARP";
    ArpMalformed => "arp_malformed", "ARP packet not Ethernet/IPv4 or truncated";
    NeighbourIgnored => "neighbour_ignored", "ARP or NDP about an address that is not ours";
    NeighbourOffLink => "neighbour_off_link", "ARP or NDP claiming an address that is not on-link for the port it came from (not in the port's prefix, nor fe80::/10 for NDP): cache poisoning refused";
    Ipv4Malformed => "ipv4_malformed", "bad IPv4 version, header length or total length";
    Ipv4BadChecksum => "ipv4_bad_checksum", "IPv4 header checksum does not verify";
    MartianSource => "martian_source", "source is multicast, broadcast, loopback, unspecified, in 0.0.0.0/8 or class E (RFC 1812 section 5.3.7, RFC 6890)";
    BroadcastOrMulticast => "broadcast_or_multicast", "IPv4 broadcast or multicast is not routed";
    NoRoute => "no_route", "no route to the destination";
    TransitDenied => "transit_denied", "outside-to-outside traffic is not routed";
    InboundNotTranslated => "inbound_not_translated", "outside traffic to a private destination (only the pool addresses are reachable)";
    SpoofedSource => "spoofed_source", "source not in the inside prefixes (RFC 6092 REC-5, BCP 38)";
    SpoofedFromOutside => "spoofed_from_outside", "arrived on the outside with a source that can only be inside or the box's own: an inside prefix, a pool address, a box address, or (IPv6) a unique local address (BCP 38, RFC 6092 REC-6)";
    TtlExceeded => "ttl_exceeded", "TTL or hop limit expired in transit";
    TooBig => "too_big", "packet larger than the egress MTU with DF set (ICMP sent)";
    TooBigNoDf => "too_big_no_df", "packet larger than the egress MTU without DF; natbox does not fragment";
    LocalUnsupported => "local_unsupported", "packet to a box address that is not an echo request and no service of the box's is bound to";
    UdpBadChecksum => "udp_bad_checksum", "UDP datagram for a service of the box's (a DHCP server message) whose checksum is not zero and does not verify, or whose length field does not fit the IP datagram (RFC 768, RFC 1122 section 4.1.3.4)";
    LocalQueueFull => "local_queue_full", "packet for a service of the box's (metrics, ping) while its queue was full";
    UnsupportedProtocol => "unsupported_protocol", "IPv4 protocol other than TCP, UDP or ICMP cannot be translated";
    IcmpMalformed => "icmp_malformed", "ICMP or ICMPv6 message to the box shorter than its 8-byte header (RFC 792, RFC 4443 section 2.1)";
    IcmpBadChecksum => "icmp_bad_checksum", "ICMP or ICMPv6 message to the box whose checksum does not verify (RFC 1122 section 3.2.2, RFC 4443 section 2.3)";
    UnsupportedIcmp => "unsupported_icmp", "ICMP type that is neither echo nor a translatable error";
    L4Truncated => "l4_truncated", "TCP/UDP/ICMP header truncated or malformed";
    NoMapping => "no_mapping", "inbound packet matches no mapping (unsolicited)";
    Filtered => "filtered", "inbound packet refused by the filtering behaviour (RFC 4787 REQ-8)";
    TcpNoSession => "tcp_no_session", "TCP segment that does not open a connection and matches no session";
    TcpRstOutOfWindow => "tcp_rst_out_of_window", "TCP RST from outside whose sequence number is outside the inside endpoint's window (RFC 5961 section 3.2: forged or stale); the session is unchanged";
    SessionLimit => "session_limit", "global session limit reached (RFC 6888 REQ-11: no eviction)";
    HostSessionLimit => "host_session_limit", "per-host session limit reached (RFC 6888 REQ-5)";
    HostPortLimit => "host_port_limit", "per-host port limit reached (RFC 6888 REQ-4)";
    MappingInboundLimit => "mapping_inbound_limit", "too many sessions opened from outside on one mapping and not answered by the inside yet (they are charged to the mapping, not to the host)";
    NoPoolAddress => "no_pool_address", "no public address to translate to yet: the pool defaults to the outside port's address, which comes by DHCP, and no lease is held";
    PortsExhausted => "ports_exhausted", "no free external port on the host's paired address";
    PolicyDeny => "policy_deny", "new session refused by the egress policy, silently (a rule with action deny, or the default; `show policy` counts the rule)";
    PolicyReject => "policy_reject", "new session refused by the egress policy and answered with a TCP RST or ICMP administratively prohibited (a rule with action reject, or the default; `show policy` counts the rule)";
    IcmpErrorNoMatch => "icmp_error_no_match", "ICMP error whose quoted packet matches no mapping or state (RFC 5508 REQ-4, RFC 6092 REC-10)";
    FragmentTableFull => "fragment_table_full", "fragment table or fragment buffers full (RFC 4787 REQ-14)";
    FragmentSourceLimit => "fragment_source_limit", "fragment that would exceed its source's share of the parked fragments";
    FragmentTimeout => "fragment_timeout", "non-first fragment whose first fragment never came";
    Ipv6Disabled => "ipv6_disabled", "IPv6 routing is disabled in the configuration";
    Ipv6Malformed => "ipv6_malformed", "bad IPv6 header or extension header chain";
    Ipv6Rh0 => "ipv6_rh0", "type 0 routing header (RFC 5095, RFC 6092 REC-4)";
    Ipv6Multicast => "ipv6_multicast", "multicast destination beyond the link is not forwarded";
    Unsolicited6 => "unsolicited_ipv6", "inbound IPv6 matches no outbound state (RFC 6092)";
    StateLimit6 => "state_limit_ipv6", "IPv6 filter state table full";
    HostStateLimit6 => "host_state_limit_ipv6", "per-host IPv6 filter state limit reached (nat.max_sessions_per_host applies to each inside IPv6 address)";
    NdpMalformed => "ndp_malformed", "neighbor discovery message that fails RFC 4861 validity checks";
    RouterAdvertIgnored => "router_advert_ignored", "Router Advertisement on a port that learns nothing from them (the inside, or an outside port with gateway6 and a static ipv6 configured)";
    NeighbourUnresolved => "neighbour_unresolved", "next hop did not answer ARP/NDP";
    NeighbourQueueFull => "neighbour_queue_full", "too many packets waiting for one next hop";
    NeighbourParkedLimit => "neighbour_parked_limit", "packets waiting for next hops already hold their share of the buffer pool";
    NeighbourEvicted => "neighbour_evicted", "packet waiting for a next hop whose entry was evicted (neighbour table full, least recently used)";
    NeighbourRequestNoBuffer => "neighbour_request_no_buffer", "ARP request or Neighbor Solicitation of the box's own not sent: no free buffer, the reserve included";
    BufferPoolFull => "buffer_pool_full", "no free buffer to park the packet";
    NoRoomForReply => "no_room_for_reply", "receive buffer too small to build the reply in (I/O buffer sizing)";
    ForwardSourceDenied => "forward_source_denied", "new session to a port forward from a source its `allow` list does not name (`show forwards` counts them per forward)";
    ForwardUnansweredLimit => "forward_unanswered_limit", "too many sessions opened to one port forward and not answered by the inside host yet";
    ForwardClash => "forward_clash", "new session to a port forward whose inside 5-tuple a source NAT session of the inside host already uses";
    HostSessionRate => "host_session_rate", "new session over its inside host's new_sessions_per_second (`[host_limits]`; `show policy` names the hosts limited most)";
    HostPacketRate => "host_packet_rate", "packet over its inside host's packets_per_second (`[host_limits]`; `show policy` names the hosts limited most)";
}

/// What the I/O layer counts on one port, below the engine (the shell and the metrics
/// show them; the engine never touches them).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IoCounters {
    /// Frames the kernel dropped before natbox could read them (socket queue full).
    pub socket_drops: u64,
    /// Receive requests that failed (a super-frame that could not be read, a poll
    /// error).
    pub rx_errors: u64,
    /// Frames that found no way out (the egress port gone, its transmit ring full, a
    /// synchronous send refused, a frame the kernel did not take from the transmit
    /// ring for a second, `io::ring`) and transmit-ring flushes the kernel refused
    /// (link down; the frames wait in the ring).
    pub tx_errors: u64,
    /// Partial checksums completed in software.
    pub csum_completed: u64,
    /// GSO super-frames received.
    pub gso_frames: u64,
    /// Times the port's sockets and rings were closed after a failure and reopened
    /// (`io::dataplane`, "Faults").
    pub restarts: u64,
}

impl IoCounters {
    /// Adds `other`'s counters (another worker's sockets on the same port).
    pub fn add(&mut self, other: &IoCounters) {
        let IoCounters {
            socket_drops,
            rx_errors,
            tx_errors,
            csum_completed,
            gso_frames,
            restarts,
        } = other;
        self.socket_drops += socket_drops;
        self.rx_errors += rx_errors;
        self.tx_errors += tx_errors;
        self.csum_completed += csum_completed;
        self.gso_frames += gso_frames;
        self.restarts += restarts;
    }

    /// The counters by name, for the shell and the metrics.
    pub fn named(&self) -> [(&'static str, u64); 6] {
        [
            ("socket_drops", self.socket_drops),
            ("rx_errors", self.rx_errors),
            ("tx_errors", self.tx_errors),
            ("csum_completed", self.csum_completed),
            ("gso_frames", self.gso_frames),
            ("restarts", self.restarts),
        ]
    }
}

/// Counters for one port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortCounters {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub drops: u64,
}

/// Translations per protocol and direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProtoCounters {
    pub tcp: u64,
    pub udp: u64,
    pub icmp: u64,
    pub other: u64,
}

impl PortCounters {
    pub fn add(&mut self, other: &PortCounters) {
        self.rx_packets += other.rx_packets;
        self.rx_bytes += other.rx_bytes;
        self.tx_packets += other.tx_packets;
        self.tx_bytes += other.tx_bytes;
        self.drops += other.drops;
    }
}

impl ProtoCounters {
    pub fn add(&mut self, other: &ProtoCounters) {
        self.tcp += other.tcp;
        self.udp += other.udp;
        self.icmp += other.icmp;
        self.other += other.other;
    }

    pub fn count(&mut self, proto: u8) {
        match proto {
            crate::wire::proto::TCP => self.tcp += 1,
            crate::wire::proto::UDP => self.udp += 1,
            crate::wire::proto::ICMP | crate::wire::proto::ICMPV6 => self.icmp += 1,
            _ => self.other += 1,
        }
    }
}

/// Every counter the engine keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    pub drops: [u64; DropReason::COUNT],
    /// Indexed by `PortId` (`PortId::index`); slots beyond the engine's ports stay
    /// zero.
    pub ports: [PortCounters; MAX_PORTS],
    pub nat_out: ProtoCounters,
    pub nat_in: ProtoCounters,
    pub fw6_out: ProtoCounters,
    pub fw6_in: ProtoCounters,
    pub sessions_created: u64,
    pub sessions_expired: u64,
    pub states6_created: u64,
    pub states6_expired: u64,
    pub hairpinned: u64,
    pub icmp_errors_translated: u64,
    pub fragments_forwarded: u64,
    pub mss_clamped: u64,
    pub icmp_sent: u64,
    pub icmp_rate_limited: u64,
    pub arp_requests: u64,
    pub ndp_solicits: u64,
    /// Neighbour entries evicted from a full cache (least recently used first).
    pub neighbours_evicted: u64,
    /// Packets handed to the box's own services, and datagrams they sent.
    pub local_delivered: u64,
    pub local_sent: u64,
    /// Frames handed to another engine shard (`Verdict::Handoff`, `pop_handoff`), and
    /// frames another shard handed to this one.
    pub handed_off: u64,
    pub handed_in: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            drops: [0; DropReason::COUNT],
            ports: Default::default(),
            nat_out: Default::default(),
            nat_in: Default::default(),
            fw6_out: Default::default(),
            fw6_in: Default::default(),
            sessions_created: 0,
            sessions_expired: 0,
            states6_created: 0,
            states6_expired: 0,
            hairpinned: 0,
            icmp_errors_translated: 0,
            fragments_forwarded: 0,
            mss_clamped: 0,
            icmp_sent: 0,
            icmp_rate_limited: 0,
            arp_requests: 0,
            ndp_solicits: 0,
            neighbours_evicted: 0,
            local_delivered: 0,
            local_sent: 0,
            handed_off: 0,
            handed_in: 0,
        }
    }
}

impl Stats {
    /// Adds `other`'s counters to these: the shards' counters merged (every counter
    /// is a sum). The destructuring makes a new counter a compile error here.
    pub fn merge(&mut self, other: &Stats) {
        let Stats {
            drops,
            ports,
            nat_out,
            nat_in,
            fw6_out,
            fw6_in,
            sessions_created,
            sessions_expired,
            states6_created,
            states6_expired,
            hairpinned,
            icmp_errors_translated,
            fragments_forwarded,
            mss_clamped,
            icmp_sent,
            icmp_rate_limited,
            arp_requests,
            ndp_solicits,
            neighbours_evicted,
            local_delivered,
            local_sent,
            handed_off,
            handed_in,
        } = other;
        for (a, b) in self.drops.iter_mut().zip(drops) {
            *a += b;
        }
        for (a, b) in self.ports.iter_mut().zip(ports) {
            a.add(b);
        }
        for (a, b) in [
            (&mut self.nat_out, nat_out),
            (&mut self.nat_in, nat_in),
            (&mut self.fw6_out, fw6_out),
            (&mut self.fw6_in, fw6_in),
        ] {
            a.add(b);
        }
        for (a, b) in [
            (&mut self.sessions_created, sessions_created),
            (&mut self.sessions_expired, sessions_expired),
            (&mut self.states6_created, states6_created),
            (&mut self.states6_expired, states6_expired),
            (&mut self.hairpinned, hairpinned),
            (&mut self.icmp_errors_translated, icmp_errors_translated),
            (&mut self.fragments_forwarded, fragments_forwarded),
            (&mut self.mss_clamped, mss_clamped),
            (&mut self.icmp_sent, icmp_sent),
            (&mut self.icmp_rate_limited, icmp_rate_limited),
            (&mut self.arp_requests, arp_requests),
            (&mut self.ndp_solicits, ndp_solicits),
            (&mut self.neighbours_evicted, neighbours_evicted),
            (&mut self.local_delivered, local_delivered),
            (&mut self.local_sent, local_sent),
            (&mut self.handed_off, handed_off),
            (&mut self.handed_in, handed_in),
        ] {
            *a += b;
        }
    }

    pub fn drop(&mut self, reason: DropReason) {
        self.drops[reason as usize] += 1;
    }

    pub fn drops_for(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize]
    }

    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case() {
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        assert!(names.iter().all(|n| n
            .chars()
            .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())));
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
        assert_eq!(
            DropReason::ALL[DropReason::BufferPoolFull as usize],
            DropReason::BufferPoolFull
        );
    }

    #[test]
    fn merged_counters_are_sums() {
        let mut a = Stats::default();
        a.drop(DropReason::NoMapping);
        a.ports[1].rx_packets = 3;
        a.hairpinned = 1;
        let mut b = Stats::default();
        b.drop(DropReason::NoMapping);
        b.ports[1].rx_packets = 4;
        b.nat_in.udp = 5;
        b.handed_in = 2;
        a.merge(&b);
        assert_eq!(a.drops_for(DropReason::NoMapping), 2);
        assert_eq!(a.ports[1].rx_packets, 7);
        assert_eq!((a.hairpinned, a.nat_in.udp, a.handed_in), (1, 5, 2));
    }

    #[test]
    fn counts_each_reason() {
        let mut s = Stats::default();
        s.drop(DropReason::NoMapping);
        s.drop(DropReason::NoMapping);
        s.drop(DropReason::Filtered);
        assert_eq!(s.drops_for(DropReason::NoMapping), 2);
        assert_eq!(s.total_drops(), 3);
    }

    #[test]
    fn shard_counters_add_up_port_by_port() {
        let (mut a, mut b) = (Stats::default(), Stats::default());
        a.drop(DropReason::NoMapping);
        a.ports[0].rx_packets = 3;
        a.nat_out.udp = 1;
        a.sessions_created = 4;
        b.drop(DropReason::NoMapping);
        b.drop(DropReason::Filtered);
        b.ports[0].rx_packets = 5;
        b.ports[1].tx_bytes = 7;
        b.nat_out.udp = 2;
        b.local_sent = 1;
        a.merge(&b);
        assert_eq!(a.drops_for(DropReason::NoMapping), 2);
        assert_eq!(a.drops_for(DropReason::Filtered), 1);
        assert_eq!((a.ports[0].rx_packets, a.ports[1].tx_bytes), (8, 7));
        assert_eq!(a.nat_out.udp, 3);
        assert_eq!((a.sessions_created, a.local_sent), (4, 1));
    }
}
