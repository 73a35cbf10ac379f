//! Which bucket an observation falls in, in a fixed number of independent comparisons.
//!
//! A binary search over the bounds is a chain of dependent loads and compares (each step's
//! address waits for the previous comparison): about five of them for the default 25 bounds,
//! which on some machines is most of a histogram record. Here the observation's binary exponent
//! (for an `f64`) or bit length (for whole nanoseconds) picks, from a small table made once per
//! histogram family, how many bounds lie wholly below its power-of-two range; only the bounds
//! inside that range (at most `window` of them, usually one to three) are compared, every
//! comparison independent of the others. The answer is the same as
//! `bounds.partition_point(|&b| b < value)` for every value (tested against it).

/// The bucket index of one family's bounds, in seconds and in whole nanoseconds.
#[derive(Debug)]
pub(crate) struct BucketIndex {
    /// The bounds in seconds, then `window` more `+Inf` so a window never reads past the end.
    secs: Box<[f64]>,
    /// The lowest binary exponent field the table covers: smaller observations are below every
    /// non-negative bound.
    first_exponent: usize,
    /// For exponent field `first_exponent + i`: how many bounds are below every value with it.
    below_exponent: Box<[u32]>,
    /// The last index of `below_exponent`.
    last_entry: usize,
    /// The bounds in whole nanoseconds, then `window_ns` more `i64::MAX`.
    ns: Box<[i64]>,
    /// For bit length `l` (0 to 64) of a nanosecond value: how many bounds are below every
    /// value of that length.
    below_bit_length: [u32; 65],
    /// Most bounds in one power-of-two range of seconds (the comparisons a record makes).
    window: usize,
    /// Most bounds in one power-of-two range of nanoseconds.
    window_ns: usize,
    /// The number of bounds.
    len: usize,
}

/// Comparisons a record makes when no power-of-two range holds more bounds than this: a fixed
/// count lets them compile to straight-line code. Comparing bounds past a range is harmless
/// (they are above every value in it, so they compare false).
const FIXED_WINDOW: usize = 4;

/// The exponent field of a finite `f64` (the sign dropped: `-0.0` reads as `0.0`).
#[inline]
fn exponent_field(value: f64) -> usize {
    ((value.to_bits() >> 52) & 0x7ff) as usize
}

/// The smallest non-negative `f64` with exponent field `field` (0 for field 0).
fn smallest_with_exponent(field: usize) -> f64 {
    f64::from_bits((field as u64) << 52)
}

/// The smallest `i64` of bit length `length` (0 for length 0), as an `i128` so 2^64 fits.
fn smallest_with_bit_length(length: u32) -> i128 {
    if length == 0 { 0 } else { 1i128 << (length - 1) }
}

fn count_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl BucketIndex {
    /// The index of `secs` (sorted ascending, finite) and `ns` (the same bounds in whole
    /// nanoseconds, non-decreasing).
    pub(crate) fn new(secs: &[f64], ns: &[i64]) -> Self {
        let len = secs.len();
        let below = |limit: f64| secs.partition_point(|&b| b < limit);
        // The exponents spanned by the non-negative bounds; outside them every observation's
        // answer equals the nearest end's (see `bucket_of_secs`).
        let non_negative: Vec<f64> = secs.iter().copied().filter(|&b| b >= 0.0).collect();
        let first_exponent = non_negative.first().map_or(0, |&b| exponent_field(b));
        let last_exponent = non_negative.last().map_or(0, |&b| exponent_field(b));
        let mut window = 0;
        let below_exponent = (first_exponent..=last_exponent)
            .map(|field| {
                let (from, to) = (below(smallest_with_exponent(field)), below(smallest_with_exponent(field + 1)));
                window = window.max(to - from);
                count_u32(from)
            })
            .collect();
        let mut padded: Vec<f64> = secs.to_vec();
        padded.extend(std::iter::repeat_n(f64::INFINITY, window.max(FIXED_WINDOW)));

        let below_ns = |limit: i128| ns.partition_point(|&b| i128::from(b) < limit);
        let mut below_bit_length = [0u32; 65];
        let mut window_ns = 0;
        for (length, slot) in (0u32..).zip(below_bit_length.iter_mut()) {
            let (from, to) = (below_ns(smallest_with_bit_length(length)), below_ns(smallest_with_bit_length(length + 1)));
            window_ns = window_ns.max(to - from);
            *slot = count_u32(from);
        }
        let mut padded_ns: Vec<i64> = ns.to_vec();
        padded_ns.extend(std::iter::repeat_n(i64::MAX, window_ns.max(FIXED_WINDOW)));

        let below_exponent: Box<[u32]> = below_exponent;
        BucketIndex {
            secs: padded.into(),
            first_exponent,
            last_entry: below_exponent.len().saturating_sub(1),
            below_exponent,
            ns: padded_ns.into(),
            below_bit_length,
            window,
            window_ns,
            len,
        }
    }

    /// The bounds, in seconds.
    pub(crate) fn secs(&self) -> &[f64] {
        self.secs.get(..self.len).unwrap_or(&[])
    }

    /// The number of bounds.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The bucket of a finite, non-negative observation in seconds: the number of bounds below
    /// it (`len` for `+Inf`).
    #[inline]
    pub(crate) fn bucket_of_secs(&self, value: f64) -> usize {
        // Clamped to the table: below it no non-negative bound is smaller than the value (the
        // window compares false), above it every bound is (the window counts the last range).
        let at = exponent_field(value).saturating_sub(self.first_exponent).min(self.last_entry);
        let start = self.below_exponent.get(at).map_or(0, |&n| n as usize);
        start + below_in_window(&self.secs, start, self.window, value)
    }

    /// The bucket of a duration in whole nanoseconds (compared with the bounds rounded to
    /// whole nanoseconds): the number of bounds below it.
    #[inline]
    pub(crate) fn bucket_of_nanos(&self, nanos: u64) -> usize {
        let value = i64::try_from(nanos).unwrap_or(i64::MAX);
        // Most monitored calls end within the smallest bound: one predictable comparison.
        if self.ns.first().is_some_and(|&first| value <= first) {
            return 0;
        }
        let length = (64 - value.unsigned_abs().leading_zeros()) as usize;
        let start = self.below_bit_length.get(length).map_or(0, |&n| n as usize);
        start + below_in_window(&self.ns, start, self.window_ns, value)
    }
}

/// How many of the `window` bounds from `start` (padded past the end) are below `value`: four
/// straight-line comparisons when the window fits in [`FIXED_WINDOW`].
#[inline]
fn below_in_window<T: PartialOrd + Copy>(padded: &[T], start: usize, window: usize, value: T) -> usize {
    match padded.get(start..start + FIXED_WINDOW) {
        Some(&[a, b, c, d]) if window <= FIXED_WINDOW => {
            usize::from(a < value) + usize::from(b < value) + usize::from(c < value) + usize::from(d < value)
        }
        _ => count_below(padded.get(start..).unwrap_or(&[]), window, value),
    }
}

/// How many of the first `window` bounds are below `value`: for bounds that crowd more than
/// [`FIXED_WINDOW`] into one power-of-two range (out of line: the common path stays small).
#[cold]
#[inline(never)]
fn count_below<T: PartialOrd + Copy>(bounds: &[T], window: usize, value: T) -> usize {
    bounds.iter().take(window).filter(|&&bound| bound < value).count()
}

#[cfg(test)]
mod tests {
    use super::BucketIndex;

    fn ns_of(secs: &[f64]) -> Vec<i64> {
        #[allow(clippy::cast_possible_truncation)]
        secs.iter().map(|&b| (b * 1e9).round() as i64).collect()
    }

    fn check(secs: &[f64], values: impl IntoIterator<Item = f64>) {
        let ns = ns_of(secs);
        let index = BucketIndex::new(secs, &ns);
        for value in values {
            assert_eq!(index.bucket_of_secs(value), secs.partition_point(|&b| b < value), "{value} in {secs:?}");
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let nanos = (value * 1e9) as u64;
            let expected = ns.iter().position(|&b| i64::try_from(nanos).unwrap_or(i64::MAX) <= b).unwrap_or(ns.len());
            assert_eq!(index.bucket_of_nanos(nanos), expected, "{nanos} ns in {ns:?}");
        }
    }

    fn probes(secs: &[f64]) -> Vec<f64> {
        let mut values = vec![0.0, -0.0, f64::MIN_POSITIVE, 5e-324, 1e-300, 1.0, 1e300, f64::MAX];
        for &b in secs {
            values.extend([b, b.next_up(), b.next_down(), b * 2.0, b / 2.0, b * 1.5].into_iter().filter(|v| v.is_finite() && *v >= 0.0));
        }
        values.extend((0..2000).map(|i| f64::from(i) * 1e-4));
        values
    }

    #[test]
    fn agrees_with_a_binary_search() {
        let sets: Vec<Vec<f64>> = vec![
            crate::store::DEFAULT_BUCKETS.to_vec(),
            vec![0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0],
            vec![1.0],
            vec![0.0],
            vec![-1.0, -0.5],
            vec![-2.0, -0.0, 0.0, 3.0],
            vec![1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.9, 100.0],
            vec![1e-12, 1e-6, 1.0, 1e6, 1e12],
            vec![],
        ];
        for secs in sets {
            check(&secs, probes(&secs));
        }
    }

    #[test]
    fn agrees_on_random_bounds_and_values() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..300 {
            let count = usize::try_from(next() % 40).unwrap_or(0);
            #[allow(clippy::cast_precision_loss)]
            let mut secs: Vec<f64> =
                (0..count).map(|_| (next() % 1_000_000) as f64 * 10f64.powi(i32::try_from(next() % 16).unwrap_or(0) - 12)).collect();
            secs.sort_by(f64::total_cmp);
            secs.dedup();
            #[allow(clippy::cast_precision_loss)]
            let values: Vec<f64> =
                (0..400).map(|_| (next() % 1_000_000) as f64 * 10f64.powi(i32::try_from(next() % 20).unwrap_or(0) - 14)).collect();
            check(&secs, values.into_iter().chain(probes(&secs)));
        }
    }

    #[test]
    fn default_bounds_compare_few() {
        let secs = crate::store::DEFAULT_BUCKETS;
        let index = BucketIndex::new(secs, &ns_of(secs));
        assert!(index.window <= 3 && index.window_ns <= 3, "{} {}", index.window, index.window_ns);
    }
}
