//! The clients' only source of chance (the DHCPv4 client's, and `autoconf`'s and
//! `dhcp6`'s): SplitMix64 over the seed the caller passes, so a
//! run is reproducible from its seed (tests, fuzzing) and the core reads no OS
//! randomness. It picks transaction ids and the ±1 s retransmission jitter (RFC 2131
//! §4.1); neither needs to be unpredictable to an attacker on the link, who sees every
//! xid in the clear anyway.

/// SplitMix64 (Steele, Lea, Flood 2014): every seed, 0 included, gives a full-period
/// sequence.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A transaction id: the high half of the next output.
    pub(crate) fn xid(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// A uniform value in `0..=max` (modulo bias below 2^-40 for the small ranges used).
    pub(crate) fn up_to(&mut self, max: u64) -> u64 {
        self.next_u64() % (max + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_up_to_stays_in_range() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
            assert!(a.up_to(2000) <= 2000);
            b.up_to(2000);
        }
        assert_ne!(Rng::new(1).xid(), Rng::new(2).xid());
    }
}
