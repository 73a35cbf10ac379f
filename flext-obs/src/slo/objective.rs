//! The objective type: a name, a success-rate target and a latency target, built in a `const`.

/// The percentiles the Autometrics specification asks libraries to support; the label value is
/// the percentage without `%` (`99.9`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Percentile {
    /// 90 %.
    P90,
    /// 95 %.
    P95,
    /// 99 %.
    P99,
    /// 99.9 %.
    P99_9,
}

impl Percentile {
    /// Every supported percentile, lowest first.
    pub const ALL: [Percentile; 4] = [Percentile::P90, Percentile::P95, Percentile::P99, Percentile::P99_9];

    /// The `objective_percentile` label value: `"90"`, `"95"`, `"99"`, `"99.9"`.
    ///
    /// ```
    /// assert_eq!(flext_obs::slo::Percentile::P99_9.as_label(), "99.9");
    /// ```
    pub const fn as_label(self) -> &'static str {
        match self {
            Percentile::P90 => "90",
            Percentile::P95 => "95",
            Percentile::P99 => "99",
            Percentile::P99_9 => "99.9",
        }
    }

    /// The target as a fraction: `0.999` for 99.9 %.
    ///
    /// ```
    /// assert_eq!(flext_obs::slo::Percentile::P95.fraction(), 0.95);
    /// ```
    pub const fn fraction(self) -> f64 {
        match self {
            Percentile::P90 => 0.9,
            Percentile::P95 => 0.95,
            Percentile::P99 => 0.99,
            Percentile::P99_9 => 0.999,
        }
    }
}

/// The latency thresholds an objective may use: the bucket bounds the Autometrics specification
/// lists, all of them bounds of the default `function_calls_duration_seconds` buckets, so the
/// threshold always has a bucket to count against (a threshold that is not a bound cannot be
/// written).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Latency {
    /// 5 ms.
    Ms5,
    /// 10 ms.
    Ms10,
    /// 25 ms.
    Ms25,
    /// 50 ms.
    Ms50,
    /// 75 ms.
    Ms75,
    /// 100 ms.
    Ms100,
    /// 250 ms.
    Ms250,
    /// 500 ms.
    Ms500,
    /// 750 ms.
    Ms750,
    /// 1 s.
    S1,
    /// 2.5 s.
    S2_5,
    /// 5 s.
    S5,
    /// 7.5 s.
    S7_5,
    /// 10 s.
    S10,
}

impl Latency {
    /// Every threshold, shortest first.
    pub const ALL: [Latency; 14] = [
        Latency::Ms5,
        Latency::Ms10,
        Latency::Ms25,
        Latency::Ms50,
        Latency::Ms75,
        Latency::Ms100,
        Latency::Ms250,
        Latency::Ms500,
        Latency::Ms750,
        Latency::S1,
        Latency::S2_5,
        Latency::S5,
        Latency::S7_5,
        Latency::S10,
    ];

    /// The threshold in seconds.
    ///
    /// ```
    /// assert_eq!(flext_obs::slo::Latency::Ms250.seconds(), 0.25);
    /// ```
    pub const fn seconds(self) -> f64 {
        match self {
            Latency::Ms5 => 0.005,
            Latency::Ms10 => 0.01,
            Latency::Ms25 => 0.025,
            Latency::Ms50 => 0.05,
            Latency::Ms75 => 0.075,
            Latency::Ms100 => 0.1,
            Latency::Ms250 => 0.25,
            Latency::Ms500 => 0.5,
            Latency::Ms750 => 0.75,
            Latency::S1 => 1.0,
            Latency::S2_5 => 2.5,
            Latency::S5 => 5.0,
            Latency::S7_5 => 7.5,
            Latency::S10 => 10.0,
        }
    }

    /// The `objective_latency_threshold` label value, written exactly as the exposition writes
    /// the matching bucket's `le` (`"0.25"`, `"1"`, `"10"`), so a rule can select the bucket by
    /// the label.
    ///
    /// ```
    /// use flext_obs::slo::Latency;
    /// assert_eq!(Latency::Ms250.as_label(), "0.25");
    /// assert_eq!(Latency::S1.as_label(), "1");
    /// ```
    pub const fn as_label(self) -> &'static str {
        match self {
            Latency::Ms5 => "0.005",
            Latency::Ms10 => "0.01",
            Latency::Ms25 => "0.025",
            Latency::Ms50 => "0.05",
            Latency::Ms75 => "0.075",
            Latency::Ms100 => "0.1",
            Latency::Ms250 => "0.25",
            Latency::Ms500 => "0.5",
            Latency::Ms750 => "0.75",
            Latency::S1 => "1",
            Latency::S2_5 => "2.5",
            Latency::S5 => "5",
            Latency::S7_5 => "7.5",
            Latency::S10 => "10",
        }
    }
}

/// A service-level objective: a name and a success-rate target, a latency target, or both.
/// Built in a `const` and attached with `#[flext_monitor(objective = NAME)]` to functions or
/// impl blocks; every function it is attached to counts toward it.
///
/// ```
/// use flext_obs::slo::{Latency, Objective, Percentile};
/// const API: Objective = Objective::new("api").success_rate(Percentile::P99_9).latency(Latency::Ms250, Percentile::P99);
/// assert_eq!(API.name(), "api");
/// assert_eq!(API.success_rate_target(), Some(Percentile::P99_9));
/// assert_eq!(API.latency_target(), Some((Latency::Ms250, Percentile::P99)));
/// ```
///
/// A name that is empty or longer than 128 bytes, or not printable ASCII, stops the build (a
/// `const` evaluation error at the objective).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Objective {
    name: &'static str,
    success_rate: Option<Percentile>,
    latency: Option<(Latency, Percentile)>,
}

impl Objective {
    /// An objective named `name` (the `objective_name` label), with no target yet.
    ///
    /// # Panics
    /// In a `const`, at compile time: when `name` is empty, longer than 128 bytes or not
    /// printable ASCII.
    pub const fn new(name: &'static str) -> Objective {
        let bytes = name.as_bytes();
        assert!(!bytes.is_empty() && bytes.len() <= 128, "an objective name is 1 to 128 bytes");
        let mut i = 0;
        while i < bytes.len() {
            assert!(bytes[i] >= 0x20 && bytes[i] < 0x7f, "an objective name is printable ASCII");
            i += 1;
        }
        Objective { name, success_rate: None, latency: None }
    }

    /// Sets the success-rate target: `percentile` of calls must end with `result="ok"`.
    #[must_use]
    pub const fn success_rate(mut self, percentile: Percentile) -> Objective {
        self.success_rate = Some(percentile);
        self
    }

    /// Sets the latency target: `percentile` of calls must take at most `threshold`.
    #[must_use]
    pub const fn latency(mut self, threshold: Latency, percentile: Percentile) -> Objective {
        self.latency = Some((threshold, percentile));
        self
    }

    /// The `objective_name` label.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The success-rate target, if any.
    pub const fn success_rate_target(&self) -> Option<Percentile> {
        self.success_rate
    }

    /// The latency threshold and target, if any.
    pub const fn latency_target(&self) -> Option<(Latency, Percentile)> {
        self.latency
    }
}
