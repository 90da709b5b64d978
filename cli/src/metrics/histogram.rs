//! Cumulative histograms as Prometheus exposes them, their differences over a window, and
//! quantiles computed exactly as Prometheus' `histogram_quantile` does.
//!
//! A histogram is a step function: the cumulative count at any bound is the count at the
//! nearest bound written at or below it. That is what Prometheus assumes for a complete
//! histogram, and it is what mesh-proxy's sparse fine histogram promises for the bounds it
//! leaves out, so histograms with different bound sets (one per label set, per pod) can be
//! added and subtracted bound by bound.

/// A cumulative histogram: `(le, count of observations ≤ le)`, sorted by `le`, normally
/// ending with `+Inf`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Buckets {
    points: Vec<(f64, f64)>,
}

impl Buckets {
    /// Builds a histogram from `(le, cumulative)` pairs in any order. Duplicate bounds keep
    /// the larger count; NaN bounds are dropped.
    pub fn from_points(mut points: Vec<(f64, f64)>) -> Buckets {
        points.retain(|(le, _)| !le.is_nan());
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        points.dedup_by(|later, earlier| {
            if later.0 == earlier.0 {
                earlier.1 = earlier.1.max(later.1);
                true
            } else {
                false
            }
        });
        Buckets { points }
    }

    /// The number of observations: the `+Inf` bucket, or the highest bucket written.
    #[cfg(test)]
    pub fn count(&self) -> f64 {
        self.points.last().map_or(0.0, |p| p.1)
    }

    /// The cumulative count at `le`: that of the nearest bound at or below it, 0 below all.
    pub fn at(&self, le: f64) -> f64 {
        let i = self.points.partition_point(|p| p.0 <= le);
        if i == 0 { 0.0 } else { self.points[i - 1].1 }
    }

    /// The sum of several histograms, bound by bound over the union of their bounds.
    pub fn sum<'a>(all: impl IntoIterator<Item = &'a Buckets>) -> Buckets {
        let all: Vec<&Buckets> = all.into_iter().collect();
        match all.as_slice() {
            [] => return Buckets::default(),
            [one] => return (*one).clone(),
            _ => {}
        }
        let mut bounds: Vec<f64> = all
            .iter()
            .flat_map(|h| h.points.iter().map(|p| p.0))
            .collect();
        bounds.sort_by(f64::total_cmp);
        bounds.dedup();
        let points = bounds
            .into_iter()
            .map(|le| (le, all.iter().map(|h| h.at(le)).sum()))
            .collect();
        Buckets { points }
    }

    /// What was observed between `earlier` and `self`, or `None` if some bucket went down,
    /// which means the process restarted and `self` counts from zero.
    pub fn since(&self, earlier: &Buckets) -> Option<Buckets> {
        let mut bounds: Vec<f64> = self
            .points
            .iter()
            .chain(&earlier.points)
            .map(|p| p.0)
            .collect();
        bounds.sort_by(f64::total_cmp);
        bounds.dedup();
        let mut points = Vec::with_capacity(bounds.len());
        for le in bounds {
            let d = self.at(le) - earlier.at(le);
            if d < 0.0 {
                return None;
            }
            points.push((le, d));
        }
        Some(Buckets { points })
    }

    /// The `q`-quantile, as Prometheus' `histogram_quantile(q, …)` computes it: linear
    /// interpolation inside the bucket that holds the rank, the lower edge of the first
    /// bucket being 0, and the largest finite bound when the rank falls in `+Inf`. `None`
    /// when there are no observations or the histogram lacks its `+Inf` bucket.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if q.is_nan() {
            return None;
        }
        if q < 0.0 {
            return Some(f64::NEG_INFINITY);
        }
        if q > 1.0 {
            return Some(f64::INFINITY);
        }
        let points = &self.points;
        if points.len() < 2 || points.last().is_none_or(|p| p.0 != f64::INFINITY) {
            return None;
        }
        // Prometheus repairs counts that go down between buckets (scrape races) by
        // carrying the maximum forward.
        let mut counts: Vec<f64> = Vec::with_capacity(points.len());
        let mut max = 0.0f64;
        for p in points {
            max = max.max(p.1);
            counts.push(max);
        }
        let observations = counts[counts.len() - 1];
        if observations == 0.0 {
            return None;
        }
        let mut rank = q * observations;
        let b = counts.partition_point(|&c| c < rank);
        if b == points.len() - 1 {
            return Some(points[points.len() - 2].0);
        }
        if b == 0 && points[0].0 <= 0.0 {
            return Some(points[0].0);
        }
        let end = points[b].0;
        let mut start = 0.0;
        let mut count = counts[b];
        if b > 0 {
            start = points[b - 1].0;
            count -= counts[b - 1];
            rank -= counts[b - 1];
        }
        Some(start + (end - start) * (rank / count))
    }
}
