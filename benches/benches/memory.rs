//! Heap bytes per series, flext-obs at 4 and 64 write lanes next to prometheus-client, measured
//! the same way in the same run: a counting global allocator (bytes requested from the system
//! allocator, live = allocated - freed; the allocator's own rounding and headers are not
//! counted, for either library) around building 10,000 series of one metric, each labelled
//! `id="<n>"` and written once by one thread; then the
//! bytes a second thread adds by writing every counter once more (a second lane). Counters, histograms with flext-obs's default
//! bounds (25) and with the 14 Autometrics bounds, both libraries given the same bounds.
//!
//! The lane count is fixed once per process, so the benchmark runs itself once per count with
//! `FLEXT_STORE_LANES` set (the knob a user sets): `cargo bench -p flext-obs-benches --bench
//! memory`. It prints a table and times nothing.

use flext_obs::Config;
use flext_obs::store::{DEFAULT_BUCKETS, Store, lane_count};
use prometheus_client::metrics::counter::Counter as PcCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram as PcHistogram;
use prometheus_client::registry::Registry;
use std::hint::black_box;
use std::process::Command;

/// The lane counts measured: this CI machine's default (2 cores) and the most a process can
/// have (the default from 32 cores on).
const LANE_COUNTS: [usize; 2] = [4, 64];
const SERIES: usize = 10_000;
const AUTOMETRICS_BOUNDS: [f64; 14] = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];

#[allow(unsafe_code)] // a global allocator is an unsafe trait; this one forwards every call to `System` and counts
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicU64, Ordering};

    static ALLOCATED: AtomicU64 = AtomicU64::new(0);
    static FREED: AtomicU64 = AtomicU64::new(0);

    /// Bytes allocated and not yet freed, process-wide.
    pub(crate) fn live() -> u64 {
        ALLOCATED.load(Ordering::SeqCst).wrapping_sub(FREED.load(Ordering::SeqCst))
    }

    /// The system allocator, counting the bytes it hands out and gets back.
    pub(crate) struct Counting;

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
            let ptr = unsafe { System.alloc(layout) };
            if !ptr.is_null() {
                ALLOCATED.fetch_add(layout.size() as u64, Ordering::Relaxed);
            }
            ptr
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            // SAFETY: as for `alloc`.
            let ptr = unsafe { System.alloc_zeroed(layout) };
            if !ptr.is_null() {
                ALLOCATED.fetch_add(layout.size() as u64, Ordering::Relaxed);
            }
            ptr
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: `ptr` came from this allocator (so from `System`) with `layout`.
            unsafe { System.dealloc(ptr, layout) };
            FREED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // SAFETY: as for `dealloc`; the caller upholds `realloc`'s contract.
            let moved = unsafe { System.realloc(ptr, layout, new_size) };
            if !moved.is_null() {
                FREED.fetch_add(layout.size() as u64, Ordering::Relaxed);
                ALLOCATED.fetch_add(new_size as u64, Ordering::Relaxed);
            }
            moved
        }
    }
}

#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

/// Live heap bytes `build` leaves behind, per series. What it returns is kept in `keep` until
/// the run ends: flext-obs gives a dropped series' words back to the store's arena for the next
/// series, so dropping a store between two measurements would let the second reuse the first's
/// lane chunks and read low.
fn bytes_per_series<T: 'static>(keep: &mut Vec<Box<dyn std::any::Any>>, build: impl FnOnce() -> T) -> u64 {
    let before = counting::live();
    let kept = build();
    let grown = counting::live().saturating_sub(before);
    keep.push(Box::new(black_box(kept)));
    grown / SERIES as u64
}

fn id(i: usize) -> String {
    i.to_string()
}

/// A store as `FLEXT_STORE_LANES` (and the rest of the environment) configures it, with room
/// for every series of the run in one metric.
fn flext_store() -> Store {
    let mut settings = Config::from_env().expect("a valid environment").store().clone();
    settings.max_series_per_metric = SERIES + 1;
    Store::new(settings, true).expect("the first store fixes the lane count")
}

fn flext_counters() -> Store {
    let store = flext_store();
    for i in 0..SERIES {
        store.counter("requests_total", &[("id", &id(i))]).expect("counter").increment();
    }
    store
}

/// A second thread writes every counter of `store` once (a second lane).
fn second_writer(store: &Store) {
    let other = store.clone();
    std::thread::spawn(move || {
        for i in 0..SERIES {
            other.counter("requests_total", &[("id", &id(i))]).expect("counter").increment();
        }
    })
    .join()
    .expect("the second writer");
}

/// One scrape (the text exposition, whose layout of every series the store keeps for the next
/// scrape) then one retention sweep (which drops that layout again, and keeps every series:
/// none is idle yet), then a second scrape, so the figure is what a scraped store holds.
fn scrape_and_sweep(store: &Store) {
    let text = flext_obs::export::prometheus::render_export(&store.export_snapshot(), &[], flext_obs::export::prometheus::Format::Text);
    assert!(text.len() > SERIES, "every series is rendered");
    assert_eq!(store.sweep(), 0, "no series is idle yet");
    black_box(flext_obs::export::prometheus::render_export(&store.export_snapshot(), &[], flext_obs::export::prometheus::Format::Text));
}

fn flext_histograms(bounds: &[f64]) -> Store {
    let store = flext_store();
    store.set_buckets("request_duration_seconds", bounds).expect("bounds");
    for i in 0..SERIES {
        store.histogram("request_duration_seconds", &[("id", &id(i))]).expect("histogram").record(0.02).expect("record");
    }
    store
}

type Labels = Vec<(String, String)>;

fn client_counters() -> Registry {
    let mut registry = Registry::default();
    let family = Family::<Labels, PcCounter>::default();
    registry.register("requests", "Requests.", family.clone());
    for i in 0..SERIES {
        family.get_or_create(&vec![("id".to_owned(), id(i))]).inc();
    }
    registry
}

fn client_histograms(bounds: &'static [f64]) -> Registry {
    let mut registry = Registry::default();
    let family = Family::<Labels, PcHistogram, _>::new_with_constructor(move || PcHistogram::new(bounds.iter().copied()));
    registry.register("request_duration_seconds", "Request duration.", family.clone());
    for i in 0..SERIES {
        family.get_or_create(&vec![("id".to_owned(), id(i))]).observe(0.02);
    }
    registry
}

/// One lane count's figures (run in a process whose `FLEXT_STORE_LANES` is set).
fn measure() {
    let mut keep = Vec::new();
    let counter = bytes_per_series(&mut keep, flext_counters);
    let written_twice = flext_counters();
    let second_lane = bytes_per_series(&mut keep, || second_writer(&written_twice));
    let default_histogram = bytes_per_series(&mut keep, || flext_histograms(DEFAULT_BUCKETS));
    let histogram_14 = bytes_per_series(&mut keep, || flext_histograms(&AUTOMETRICS_BOUNDS));
    let scraped = flext_counters();
    let after_scrape = bytes_per_series(&mut keep, || scrape_and_sweep(&scraped));
    let client_counter = bytes_per_series(&mut keep, client_counters);
    let client_default = bytes_per_series(&mut keep, || client_histograms(DEFAULT_BUCKETS));
    let client_14 = bytes_per_series(&mut keep, || client_histograms(&AUTOMETRICS_BOUNDS));
    let lanes = lane_count();
    let bounds = DEFAULT_BUCKETS.len();
    println!(
        "| {lanes} lanes | flext-obs | {counter} B (+{second_lane} B when a second thread wrote it too) | {default_histogram} B | {histogram_14} B |"
    );
    println!("| {lanes} lanes | prometheus-client | {client_counter} B | {client_default} B | {client_14} B |");
    println!(
        "| {lanes} lanes | flext-obs, then one scrape and one sweep | +{after_scrape} B per counter (the scrape layout, kept between scrapes) | | |"
    );
    if lanes == LANE_COUNTS[0] {
        eprintln!("(histograms: {bounds} default bounds, 14 Autometrics bounds)");
    }
    drop(written_twice);
    drop(scraped);
}

fn main() {
    if std::env::var_os("FLEXT_STORE_LANES").is_some() {
        measure();
        return;
    }
    println!("heap bytes per series ({SERIES} series, counting allocator, one writer thread)");
    println!("| lanes | library | counter | histogram, {} bounds | histogram, 14 bounds |", DEFAULT_BUCKETS.len());
    println!("|---|---|---|---|---|");
    let exe = std::env::current_exe().expect("the benchmark's own path");
    for lanes in LANE_COUNTS {
        let status = Command::new(&exe).env("FLEXT_STORE_LANES", lanes.to_string()).status().expect("the benchmark runs itself");
        assert!(status.success(), "the {lanes}-lane run failed");
    }
}
