//! A fixed pool of frame buffers for frames the engine keeps or makes: packets parked
//! until a neighbour resolves, out-of-order fragments, and frames the engine built
//! itself (ARP/NDP requests) waiting to be sent. Allocated once; `take`/`put` move
//! boxes in and out of slots, so nothing allocates after start-up. Buffers are sized
//! for the largest frame the ports' MTUs allow.
//!
//! The last `reserve` free buffers are kept for the box's own ARP requests and
//! Neighbor Solicitations (`alloc_reserved`): `alloc` and `store`, which park
//! received packets, refuse once only the reserve is left, so packets waiting for a
//! next hop can never stop the box from asking for it.

/// Handle of a buffer in the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufId(pub(crate) u16);

#[derive(Debug)]
struct Slot {
    data: Option<Box<[u8]>>,
    len: usize,
}

/// The pool.
#[derive(Debug)]
pub struct Buffers {
    slots: Vec<Slot>,
    free: Vec<u16>,
    size: usize,
    reserve: usize,
}

impl Buffers {
    /// `count` buffers of `size` bytes each, `reserve` of them for `alloc_reserved`.
    pub fn new(count: usize, size: usize, reserve: usize) -> Buffers {
        let count = count.min(usize::from(u16::MAX));
        Buffers {
            slots: (0..count)
                .map(|_| Slot {
                    data: Some(vec![0u8; size].into_boxed_slice()),
                    len: 0,
                })
                .collect(),
            free: (0..count as u16).rev().collect(),
            size,
            reserve,
        }
    }

    pub fn available(&self) -> usize {
        self.free.len()
    }

    /// Copies `frame` into a free buffer.
    pub fn store(&mut self, frame: &[u8]) -> Option<BufId> {
        let id = self.alloc()?;
        let slot = &mut self.slots[usize::from(id.0)];
        let n = frame.len().min(self.size);
        slot.data.as_mut().expect("free slots hold their buffer")[..n].copy_from_slice(&frame[..n]);
        slot.len = n;
        Some(id)
    }

    /// A free buffer for the caller to fill through `buf_mut` and `set_len`, unless only
    /// the reserve is left.
    pub fn alloc(&mut self) -> Option<BufId> {
        if self.free.len() <= self.reserve {
            return None;
        }
        self.alloc_reserved()
    }

    /// A free buffer, the reserve included: for the box's own neighbour requests.
    pub fn alloc_reserved(&mut self) -> Option<BufId> {
        self.free.pop().map(BufId)
    }

    pub fn set_len(&mut self, id: BufId, len: usize) {
        self.slots[usize::from(id.0)].len = len.min(self.size);
    }

    pub fn frame(&self, id: BufId) -> &[u8] {
        let s = &self.slots[usize::from(id.0)];
        &s.data.as_ref().expect("buffer is in its slot")[..s.len]
    }

    pub fn buf_mut(&mut self, id: BufId) -> &mut [u8] {
        self.slots[usize::from(id.0)]
            .data
            .as_mut()
            .expect("buffer is in its slot")
    }

    /// Moves the buffer out (to process it while the pool is borrowed elsewhere);
    /// returns it with its length. `put` must follow.
    pub fn take(&mut self, id: BufId) -> (Box<[u8]>, usize) {
        let s = &mut self.slots[usize::from(id.0)];
        (s.data.take().expect("buffer is in its slot"), s.len)
    }

    /// Puts a taken buffer back, with a new length.
    pub fn put(&mut self, id: BufId, data: Box<[u8]>, len: usize) {
        let s = &mut self.slots[usize::from(id.0)];
        s.data = Some(data);
        s.len = len;
    }

    pub fn free(&mut self, id: BufId) {
        debug_assert!(!self.free.contains(&id.0));
        self.free.push(id.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_take_put_free() {
        let mut b = Buffers::new(2, 64, 0);
        let a = b.store(&[1, 2, 3]).unwrap();
        let c = b.store(&[4]).unwrap();
        assert!(b.store(&[5]).is_none());
        assert_eq!(b.frame(a), &[1, 2, 3]);
        let (mut data, len) = b.take(c);
        assert_eq!((data[0], len), (4, 1));
        data[1] = 9;
        b.put(c, data, 2);
        assert_eq!(b.frame(c), &[4, 9]);
        b.free(a);
        assert_eq!(b.available(), 1);
    }

    #[test]
    fn reserve_is_only_for_alloc_reserved() {
        let mut b = Buffers::new(3, 64, 2);
        assert!(b.store(&[1]).is_some());
        assert!(b.store(&[2]).is_none());
        assert!(b.alloc().is_none());
        assert!(b.alloc_reserved().is_some());
        assert!(b.alloc_reserved().is_some());
        assert!(b.alloc_reserved().is_none());
    }
}
