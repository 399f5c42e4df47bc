//! Endpoint choice.

use crate::routing::router::BackendId;

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
/// (a route's backend split, a fault's or a mirror's sampler), per worker.
#[derive(Debug, Clone)]
pub struct WeightedRoundRobin<K = (usize, usize)> {
    current: std::collections::HashMap<K, Vec<i64>>,
}

impl<K> Default for WeightedRoundRobin<K> {
    fn default() -> Self {
        WeightedRoundRobin {
            current: std::collections::HashMap::new(),
        }
    }
}

impl<K: std::hash::Hash + Eq> WeightedRoundRobin<K> {
    /// Picks an index into `weights`, or `None` when every weight is 0.
    pub fn pick(&mut self, key: K, weights: &[u32]) -> Option<usize> {
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

/// A 64-bit FNV-1a hash: stable across workers, processes and hosts.
pub fn hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        // A separator, so ("ab", "c") and ("a", "bc") differ.
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Consistent hashing by rendezvous (highest random weight): the endpoint whose hash with `key`
/// is highest. The same key gets the same endpoint; removing an endpoint moves only its keys.
pub fn rendezvous(key: &[u8], endpoints: &[String]) -> Option<usize> {
    endpoints
        .iter()
        .enumerate()
        .max_by_key(|(_, e)| hash(&[key, e.as_bytes()]))
        .map(|(i, _)| i)
}

/// A small pseudo-random generator (xorshift64*), one per worker.
#[derive(Debug, Clone)]
pub struct Random {
    state: u64,
}

impl Random {
    /// A generator seeded with `seed` (any value; 0 is remapped).
    pub fn new(seed: u64) -> Self {
        Random { state: seed | 1 }
    }

    /// A value in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        (self.state.wrapping_mul(0x2545_f491_4f6c_dd1d) % n as u64) as usize
    }
}

/// Requests in flight per endpoint on this worker, for least-request picks.
#[derive(Debug, Clone, Default)]
pub struct InFlight {
    counts: std::collections::HashMap<String, u32>,
    rr: usize,
}

impl InFlight {
    /// The endpoint with the fewest requests in flight (ties in turn), counted as one more.
    pub fn pick(&mut self, endpoints: &[String]) -> Option<usize> {
        let n = endpoints.len();
        if n == 0 {
            return None;
        }
        self.rr = self.rr.wrapping_add(1);
        let best = (0..n)
            .map(|k| (self.rr + k) % n)
            .min_by_key(|&i| self.counts.get(&endpoints[i]).copied().unwrap_or(0))?;
        *self.counts.entry(endpoints[best].clone()).or_default() += 1;
        Some(best)
    }

    /// A request to `endpoint` finished.
    pub fn done(&mut self, endpoint: &str) {
        if let Some(c) = self.counts.get_mut(endpoint) {
            *c = c.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendezvous_is_stable_and_moves_only_removed_keys() {
        let eps: Vec<String> = (1..=4).map(|i| format!("127.0.0.{i}:80")).collect();
        let keys: Vec<String> = (0..200).map(|i| format!("user-{i}")).collect();
        let before: Vec<usize> = keys
            .iter()
            .map(|k| rendezvous(k.as_bytes(), &eps).unwrap())
            .collect();
        assert_eq!(
            before,
            keys.iter()
                .map(|k| rendezvous(k.as_bytes(), &eps).unwrap())
                .collect::<Vec<_>>()
        );
        for i in 0..4 {
            let share = before.iter().filter(|b| **b == i).count();
            assert!(
                (25..=75).contains(&share),
                "endpoint {i} got {share} of 200"
            );
        }
        let fewer: Vec<String> = eps[..3].to_vec();
        for (k, b) in keys.iter().zip(&before) {
            let after = rendezvous(k.as_bytes(), &fewer).unwrap();
            if *b < 3 {
                assert_eq!(after, *b, "{k} moved though its endpoint stayed");
            }
        }
        assert_eq!(rendezvous(b"x", &[]), None);
    }

    #[test]
    fn least_request_prefers_idle_endpoints() {
        let eps: Vec<String> = vec!["a".into(), "b".into(), "c".into()];
        let mut lr = InFlight::default();
        let first: Vec<usize> = (0..3).map(|_| lr.pick(&eps).unwrap()).collect();
        let mut sorted = first.clone();
        sorted.sort();
        assert_eq!(sorted, [0, 1, 2], "one each while all are busy equally");
        lr.done("b");
        assert_eq!(
            lr.pick(&eps),
            Some(1),
            "the one that finished is the least loaded"
        );
    }

    #[test]
    fn random_stays_in_range_and_spreads() {
        let mut r = Random::new(42);
        let mut counts = [0; 4];
        for _ in 0..4000 {
            counts[r.below(4)] += 1;
        }
        assert!(counts.iter().all(|c| (800..1200).contains(c)), "{counts:?}");
    }

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
