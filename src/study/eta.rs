//! The time a sweep has left, from each run's expected cost (`cost::run_seconds`) corrected by
//! the runs that finish.
//!
//! Runs of one configuration that differ only by seed cost the same, so once one of them has
//! finished its measured time stands for the others. A configuration not yet seen is expected
//! to take its model cost times the ratio of measured to model time over the recently
//! finished runs, which follows this machine's speed and its load. The runs left are then
//! scheduled as the sweep schedules them (in order, each to the first free thread, the runs in
//! flight first with what they have left), and the ETA is when the last one ends.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

/// Finished runs whose measured / model ratio sets the speed of configurations not yet seen:
/// recent enough to follow a change of load, enough to smooth one run's noise.
const RECENT: usize = 16;

/// Above this many runs not yet started, the schedule is not simulated run by run: their time
/// is shared evenly among the threads (with that many runs the tail no longer matters).
const SIMULATED: usize = 4096;

/// The ETA of one sweep. Runs are numbered in the order the sweep starts them.
#[derive(Debug)]
pub struct Eta {
    threads: usize,
    /// Model cost of each run (seconds of one reference core).
    model: Vec<f64>,
    /// Configuration class of each run (runs differing only by seed share one).
    class: Vec<usize>,
    /// Start time of each run (seconds since the sweep started), once started.
    started: Vec<Option<f64>>,
    finished: Vec<bool>,
    /// Sum and count of measured seconds per class.
    class_secs: Vec<(f64, usize)>,
    /// (measured, model) seconds of the last `RECENT` finished runs.
    recent: VecDeque<(f64, f64)>,
    /// Index of the first run not started yet (runs start in order).
    next: usize,
}

impl Eta {
    /// `runs`: (model seconds, configuration key) of each run, in start order.
    pub fn new<K: std::hash::Hash + Eq>(
        runs: impl IntoIterator<Item = (f64, K)>,
        threads: usize,
    ) -> Eta {
        let mut classes = HashMap::new();
        let (mut model, mut class) = (Vec::new(), Vec::new());
        for (cost, key) in runs {
            let n = classes.len();
            class.push(*classes.entry(key).or_insert(n));
            model.push(cost);
        }
        let n = model.len();
        Eta {
            threads: threads.max(1),
            model,
            class,
            started: vec![None; n],
            finished: vec![false; n],
            class_secs: vec![(0.0, 0); classes.len()],
            recent: VecDeque::new(),
            next: 0,
        }
    }

    /// Run `i` started at `at` seconds.
    pub fn start(&mut self, i: usize, at: f64) {
        self.started[i] = Some(at);
        while self.next < self.started.len() && self.started[self.next].is_some() {
            self.next += 1;
        }
    }

    /// Run `i` finished at `at` seconds.
    pub fn finish(&mut self, i: usize, at: f64) {
        let secs = (at - self.started[i].unwrap_or(at)).max(0.0);
        self.finished[i] = true;
        let c = &mut self.class_secs[self.class[i]];
        *c = (c.0 + secs, c.1 + 1);
        self.recent.push_back((secs, self.model[i]));
        if self.recent.len() > RECENT {
            self.recent.pop_front();
        }
    }

    /// Expected seconds of run `i`: its configuration's measured mean, or its model cost at
    /// the measured speed; None before any run finished.
    fn expected(&self, i: usize) -> Option<f64> {
        let (sum, n) = self.class_secs[self.class[i]];
        if n > 0 {
            return Some(sum / n as f64);
        }
        let (secs, model) = self
            .recent
            .iter()
            .fold((0.0, 0.0), |(s, m), &(a, b)| (s + a, m + b));
        (model > 0.0).then(|| self.model[i] * secs / model)
    }

    /// Seconds until the last run ends, at time `now`; None until the first run finished.
    pub fn remaining(&self, now: f64) -> Option<f64> {
        if self.recent.is_empty() {
            return None;
        }
        // Each thread is free once its run in flight has had its expected time.
        let mut free: Vec<f64> = (0..self.next)
            .filter(|&i| !self.finished[i])
            .map(|i| {
                let elapsed = now - self.started[i].unwrap_or(now);
                Some((self.expected(i)? - elapsed).max(0.0))
            })
            .collect::<Option<_>>()?;
        free.resize(free.len().max(self.threads), 0.0);
        let waiting: Option<Vec<f64>> = (self.next..self.model.len())
            .map(|i| self.expected(i))
            .collect();
        Some(makespan(free, &waiting?))
    }
}

/// When the last run ends if the runs of `costs` (seconds) start in order, each on the first
/// free thread, and thread k is free after `free[k]` seconds.
pub fn makespan(free: Vec<f64>, costs: &[f64]) -> f64 {
    if costs.len() > SIMULATED || free.is_empty() {
        let total = free.iter().sum::<f64>() + costs.iter().sum::<f64>();
        return total / free.len().max(1) as f64;
    }
    // Seconds as integer nanoseconds, so the heap can order them.
    let nanos = |s: f64| (s * 1e9) as u64;
    let mut heap: BinaryHeap<Reverse<u64>> = free.iter().map(|&s| Reverse(nanos(s))).collect();
    for &c in costs {
        if let Some(Reverse(t)) = heap.pop() {
            heap.push(Reverse(t + nanos(c)));
        }
    }
    heap.into_iter().map(|Reverse(t)| t).max().unwrap_or(0) as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sweep simulated on a clock of its own: runs (model seconds, class, true seconds)
    /// start in order on the first free thread. Returns (time, run finished, true time left,
    /// ETA) at every finish.
    fn replay(runs: &[(f64, &str, f64)], threads: usize) -> Vec<(f64, usize, f64, Option<f64>)> {
        let mut eta = Eta::new(runs.iter().map(|&(model, key, _)| (model, key)), threads);
        // (end time, run) of the runs in flight.
        let mut flight: Vec<(f64, usize)> = Vec::new();
        let mut next = 0;
        while next < threads.min(runs.len()) {
            eta.start(next, 0.0);
            flight.push((runs[next].2, next));
            next += 1;
        }
        let mut events = Vec::new();
        while let Some(k) = (0..flight.len()).min_by(|&a, &b| flight[a].0.total_cmp(&flight[b].0)) {
            let (now, i) = flight.swap_remove(k);
            eta.finish(i, now);
            if next < runs.len() {
                eta.start(next, now);
                flight.push((now + runs[next].2, next));
                next += 1;
            }
            events.push((now, i, eta.remaining(now)));
        }
        let end = events.last().map_or(0.0, |e| e.0);
        events
            .into_iter()
            .map(|(now, i, eta)| (now, i, end - now, eta))
            .collect()
    }

    #[test]
    fn no_estimate_before_a_run_finished() {
        let mut eta = Eta::new([(1.0, 0), (1.0, 1)], 2);
        assert_eq!(eta.remaining(0.0), None);
        eta.start(0, 0.0);
        eta.start(1, 1.0);
        assert_eq!(eta.remaining(1.5), None);
        eta.finish(0, 2.0);
        // Run 1 is of another class: model 1 s at the measured 2 s per model second, 1 s of
        // it done.
        assert_eq!(eta.remaining(2.0), Some(1.0));
        assert_eq!(eta.remaining(2.5), Some(0.5));
    }

    #[test]
    fn a_configuration_seen_once_is_expected_to_take_what_it_took() {
        // The model says both classes cost the same; class "b" truly takes 10×.
        let runs = [
            (1.0, "a", 1.0),
            (1.0, "b", 10.0),
            (1.0, "b", 10.0),
            (1.0, "a", 1.0),
        ];
        let mut eta = Eta::new(runs.iter().map(|&(m, k, _)| (m, k)), 1);
        eta.start(0, 0.0);
        eta.finish(0, 1.0);
        eta.start(1, 1.0);
        eta.finish(1, 11.0);
        eta.start(2, 11.0);
        // Run 2 is a "b" (10 s, 1 elapsed), run 3 an "a" (1 s).
        assert_eq!(eta.remaining(12.0), Some(10.0));
    }

    #[test]
    fn eta_of_a_sweep_of_unequal_runs_follows_the_true_remaining_time() {
        // The zoo's shape: 6 configurations whose true costs the model gets wrong by up to
        // 4× (two cheap, one 20× dearer, one whose remedy the model does not know), 5 seeds
        // each, the costliest first by the model, on 2 threads.
        let configs = [
            ("deferred", 2.0, 2.2),
            ("early", 1.0, 1.0),
            ("ema", 1.0, 0.8),
            ("big", 20.0, 24.0),
            ("entropy", 1.0, 4.0),
            ("fsq", 1.0, 0.5),
        ];
        let mut runs: Vec<(f64, &str, f64)> = configs
            .iter()
            .flat_map(|&(k, model, truth)| (0..5).map(move |_| (model, k, truth)))
            .collect();
        runs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let finishes = replay(&runs, 2);
        // Once every configuration has finished a run, the ETA is within 20% of the truth
        // (or 1 s of it at the end).
        let mut classes_seen = std::collections::HashSet::new();
        for &(at, i, truth, eta) in &finishes {
            classes_seen.insert(runs[i].1);
            let eta = eta.expect("an estimate after the first finish");
            if classes_seen.len() == configs.len() {
                assert!(
                    (eta - truth).abs() <= (0.2 * truth).max(1.0),
                    "at {at:.1} s: eta {eta:.1} s, true {truth:.1} s"
                );
            }
        }
        // Before that, it is within a factor of 2 of the truth, or 5% of the whole sweep.
        let slack = 0.05 * finishes.last().map_or(0.0, |f| f.0);
        for &(at, _, truth, eta) in &finishes {
            let eta = eta.unwrap();
            assert!(
                (eta <= 2.0 * truth && eta >= 0.5 * truth) || (eta - truth).abs() <= slack,
                "at {at:.1} s: eta {eta:.1} s, true {truth:.1} s"
            );
        }
    }
}
