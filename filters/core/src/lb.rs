//! Endpoint choice.

use crate::router::BackendId;

/// Round robin over each backend's endpoints. One per worker (each Envoy worker has its own VM),
/// so the rotation is per worker, as with Envoy's own ROUND_ROBIN.
#[derive(Debug, Clone, Default)]
pub struct RoundRobin {
    next: Vec<usize>,
}

impl RoundRobin {
    /// Picks the index of the next endpoint of `backend` among `len`, or `None` when `len` is 0.
    pub fn pick(&mut self, backend: BackendId, len: usize) -> Option<usize> {
        if len == 0 {
            return None;
        }
        if self.next.len() <= backend {
            self.next.resize(backend + 1, 0);
        }
        let slot = &mut self.next[backend];
        let i = *slot % len;
        *slot = slot.wrapping_add(1);
        Some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_per_backend() {
        let mut rr = RoundRobin::default();
        let picks: Vec<_> = (0..5).map(|_| rr.pick(0, 3)).collect();
        assert_eq!(picks, [Some(0), Some(1), Some(2), Some(0), Some(1)]);
        assert_eq!(rr.pick(4, 2), Some(0));
        assert_eq!(rr.pick(4, 2), Some(1));
        assert_eq!(rr.pick(0, 3), Some(2));
        assert_eq!(rr.pick(1, 0), None);
    }

    #[test]
    fn survives_a_shrinking_endpoint_list() {
        let mut rr = RoundRobin::default();
        for _ in 0..7 {
            rr.pick(0, 10);
        }
        assert_eq!(rr.pick(0, 2), Some(1));
    }
}
