//! How a handle reaches its series' core: through the series itself, one allocation per series.

use super::Series;
use super::series::{CounterCore, GaugeCore, HistogramBounds, HistogramCore, SeriesData, SummaryCore};
use std::marker::PhantomData;
use std::sync::{Arc, LazyLock};

/// A handle's way to its core: the series itself (which holds the core of the handle's kind),
/// so a series is one allocation and a handle one pointer to it.
pub(crate) struct Core<T> {
    series: Arc<Series>,
    kind: PhantomData<fn() -> T>,
}

impl<T> Core<T> {
    pub(crate) fn new(series: Arc<Series>) -> Self {
        series.touch();
        Core { series, kind: PhantomData }
    }
}

/// A handle going away marks its series, so the next sweep counts it in use until then: the
/// handle may have recorded up to now.
impl<T> Drop for Core<T> {
    fn drop(&mut self) {
        self.series.touch();
    }
}

impl<T> Clone for Core<T> {
    fn clone(&self) -> Self {
        Core::new(self.series.clone())
    }
}

/// The core a handle of the wrong kind would see: never reached (the store makes a handle only
/// for a series of its kind), but answering with an idle core keeps the handles panic-free.
static DETACHED: LazyLock<(CounterCore, GaugeCore, HistogramCore, SummaryCore)> =
    LazyLock::new(|| (CounterCore::new(), GaugeCore::new(), HistogramCore::new(HistogramBounds::new(&[1.0])), SummaryCore::new(1)));

macro_rules! core_deref {
    ($core:ty, $variant:ident, $detached:tt) => {
        impl std::ops::Deref for Core<$core> {
            type Target = $core;
            #[inline]
            fn deref(&self) -> &$core {
                match self.series.data() {
                    SeriesData::$variant(core) => {
                        let core: &$core = core;
                        core
                    }
                    _ => &DETACHED.$detached,
                }
            }
        }
    };
}
core_deref!(CounterCore, Counter, 0);
core_deref!(GaugeCore, Gauge, 1);
core_deref!(HistogramCore, Histogram, 2);
core_deref!(SummaryCore, Summary, 3);
