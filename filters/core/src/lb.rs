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

/// Smooth weighted round robin (nginx's): over any window of `sum(weights)` picks, each entry
/// is picked exactly `weight` times, interleaved; weight 0 is never picked. One state per key
/// (a route), per worker.
#[derive(Debug, Clone, Default)]
pub struct WeightedRoundRobin {
    current: std::collections::HashMap<(usize, usize), Vec<i64>>,
}

impl WeightedRoundRobin {
    /// Picks an index into `weights`, or `None` when every weight is 0.
    pub fn pick(&mut self, key: (usize, usize), weights: &[u32]) -> Option<usize> {
        let total: i64 = weights.iter().map(|w| i64::from(*w)).sum();
        if total == 0 {
            return None;
        }
        if weights.len() == 1 {
            return Some(0);
        }
        let current = self.current.entry(key).or_default();
        if current.len() != weights.len() {
            *current = vec![0; weights.len()];
        }
        let mut best = 0;
        for (i, w) in weights.iter().enumerate() {
            current[i] += i64::from(*w);
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total;
        Some(best)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_picks_follow_weights_exactly() {
        let mut wrr = WeightedRoundRobin::default();
        let picks: Vec<_> = (0..10)
            .map(|_| wrr.pick((0, 0), &[9, 1, 0]).unwrap())
            .collect();
        assert_eq!(picks.iter().filter(|p| **p == 0).count(), 9);
        assert_eq!(picks.iter().filter(|p| **p == 1).count(), 1);
        let picks: Vec<_> = (0..4).map(|_| wrr.pick((1, 0), &[1, 1]).unwrap()).collect();
        assert_eq!(picks, [0, 1, 0, 1]);
        assert_eq!(wrr.pick((2, 0), &[0, 0]), None);
        assert_eq!(wrr.pick((3, 0), &[5]), Some(0));
    }

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
