//! The flow-table machinery NAT44 (`nat44`) and the IPv6 filter (`fw6`) share: session
//! classes, timeouts and the TCP state machine (`track`), the fixed-capacity hash index
//! (`index`), intrusive lists (`list`, also used by `neigh`) and per-class LRU expiry
//! with the `timed_record!` macro (`lru`). Nothing here knows packets or addresses.

pub mod index;
pub mod list;
pub mod lru;
pub mod track;
