//! The raw record history: the last records of each metric name given to
//! [`super::Store::record_metric`], bounded in records per name *and* in names, so a program
//! that records under ever new names keeps a fixed amount of history, not one ring per name
//! it ever used.

use crate::entity::Metric;
use std::collections::{BTreeMap, HashMap, VecDeque};

/// Rings of recent records by metric name; the name recorded least recently goes first when a
/// new name needs room.
pub(super) struct RawHistory {
    per_name: usize,
    max_names: usize,
    /// Name -> (when it was last recorded, its ring).
    rings: HashMap<String, (u64, VecDeque<Metric>)>,
    /// When each name was last recorded -> the name: the oldest is the first entry.
    order: BTreeMap<u64, String>,
    next: u64,
}

impl RawHistory {
    pub(super) fn new(per_name: usize, max_names: usize) -> Self {
        RawHistory { per_name, max_names, rings: HashMap::new(), order: BTreeMap::new(), next: 0 }
    }

    /// Keeps `metric` in its name's ring, making room as the bounds say.
    pub(super) fn push(&mut self, metric: &Metric) {
        if self.per_name == 0 || self.max_names == 0 {
            return;
        }
        let stamp = self.next;
        self.next += 1;
        if let Some((last, ring)) = self.rings.get_mut(metric.name()) {
            self.order.remove(last);
            *last = stamp;
            if ring.len() >= self.per_name {
                ring.pop_front();
            }
            ring.push_back(metric.clone());
        } else {
            while self.rings.len() >= self.max_names {
                let Some((_, oldest)) = self.order.pop_first() else { break };
                self.rings.remove(&oldest);
            }
            self.rings.insert(metric.name().to_owned(), (stamp, VecDeque::from([metric.clone()])));
        }
        self.order.insert(stamp, metric.name().to_owned());
    }

    /// The ring of `name`, oldest first.
    pub(super) fn get(&self, name: &str) -> Vec<Metric> {
        self.rings.get(name).map(|(_, ring)| ring.iter().cloned().collect()).unwrap_or_default()
    }

    /// Every ring, by name.
    pub(super) fn all(&self) -> BTreeMap<String, Vec<Metric>> {
        self.rings.iter().map(|(name, (_, ring))| (name.clone(), ring.iter().cloned().collect())).collect()
    }

    /// Forgets `name` (its family was removed by the sweep).
    pub(super) fn remove(&mut self, name: &str) {
        if let Some((stamp, _)) = self.rings.remove(name) {
            self.order.remove(&stamp);
        }
    }

    /// How many names have a ring.
    pub(super) fn names(&self) -> usize {
        self.rings.len()
    }

    pub(super) fn clear(&mut self) {
        self.rings.clear();
        self.order.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(name: &str, value: f64) -> Metric {
        Metric::builder(name, value).build().unwrap()
    }

    #[test]
    fn the_least_recently_recorded_name_makes_room() {
        let mut raw = RawHistory::new(2, 2);
        raw.push(&metric("a", 1.0));
        raw.push(&metric("b", 1.0));
        raw.push(&metric("a", 2.0));
        raw.push(&metric("a", 3.0));
        raw.push(&metric("c", 1.0)); // b is the oldest name now
        assert_eq!(raw.names(), 2);
        assert!(raw.get("b").is_empty());
        assert_eq!(raw.get("a").iter().map(Metric::value).collect::<Vec<_>>(), [2.0, 3.0]);
        assert_eq!(raw.get("c").len(), 1);
        raw.remove("a");
        assert_eq!((raw.names(), raw.order.len()), (1, 1));
    }
}
