//! The [`Observability`] handle, the process-wide instance, and the simple API that mirrors the
//! Python library's factory functions.

use crate::config::Config;
use crate::context;
use crate::entity::{Alert, HealthCheck, HealthStatus, LogEntry, LogLevel, Metric, MetricKind, Severity, Span};
use crate::error::{Error, Result};
use crate::store::{Snapshot, Store, Sweeper};
use std::sync::{Arc, OnceLock};

/// One observability instance: its configuration and its metrics store. Cloning shares it.
///
/// Most programs use the process-wide instance ([`global`], configured once with [`init`]);
/// tests and libraries that want isolation make their own.
///
/// ```
/// use flext_obs::{Config, Metric, MetricKind, Observability};
/// let obs = Observability::new(Config::builder().service_name("billing").build()?)?;
/// obs.record_metric(&Metric::new("invoices_total", 2.0, MetricKind::Counter)?)?;
/// assert_eq!(obs.metric_value("invoices_total", &[]), Some(2.0));
/// assert_eq!(obs.raw_records("invoices_total").len(), 1);
/// # Ok::<(), flext_obs::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Observability {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    store: Store,
    _sweeper: Option<Sweeper>,
    /// The version `build_info` reports now (the OTLP resource's `service.version`).
    build_version: std::sync::Mutex<String>,
}

impl Observability {
    /// Builds an instance from a validated [`Config`]; starts the retention sweeper when the
    /// config asks for one.
    pub fn new(config: Config) -> Result<Self> {
        let store = Store::new(config.store().clone(), config.enabled())?;
        let sweeper = config.sweep_interval().map(|every| store.start_sweeper(every)).transpose()?;
        let obs = Observability { inner: Arc::new(Inner { config, store, _sweeper: sweeper, build_version: std::sync::Mutex::default() }) };
        obs.set_build(&BuildInfo::default())?;
        Ok(obs)
    }

    /// Sets `build_info` from a version and a commit (see [`Observability::set_build`]).
    ///
    /// ```
    /// let obs = flext_obs::Observability::new(flext_obs::Config::builder().service_name("shop").build()?)?;
    /// obs.set_build_info("1.4.2", "9f1c2ab")?;
    /// let snapshot = obs.snapshot();
    /// let infos: Vec<_> = snapshot.series("build_info", &[]).collect();
    /// assert_eq!(infos.len(), 1, "exactly one build_info series");
    /// assert_eq!((infos[0].labels["commit"].as_str(), infos[0].labels["service_name"].as_str()), ("9f1c2ab", "shop"));
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn set_build_info(&self, version: &str, commit: &str) -> Result<()> {
        self.set_build(&BuildInfo { version: version.to_owned(), commit: commit.to_owned(), ..BuildInfo::default() })
    }

    /// Sets `build_info{version, commit, branch, service_name, autometrics_version,
    /// repository_url, repository_provider, flext_obs_version} 1`, the series the Autometrics
    /// dashboards join onto every query: exactly one series at every moment, always 1, its labels
    /// replaced at once. Unknown values are empty, as the specification asks.
    /// `FLEXT_SERVICE_VERSION` and `FLEXT_SERVICE_COMMIT` win over what the build passes here
    /// (usually through [`crate::set_build_info!`]).
    ///
    /// ```
    /// use flext_obs::api::BuildInfo;
    /// let obs = flext_obs::Observability::new(flext_obs::Config::builder().service_name("shop").build()?)?;
    /// obs.set_build(&BuildInfo { version: "2.0.0".into(), repository_url: "https://github.com/acme/shop".into(), ..BuildInfo::default() })?;
    /// let snapshot = obs.snapshot();
    /// let info = snapshot.series("build_info", &[]).next().unwrap();
    /// assert_eq!(info.labels["autometrics_version"], "1.0.0");
    /// assert_eq!(info.labels["repository_provider"], "github");
    /// assert_eq!(info.labels["commit"], "");
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    pub fn set_build(&self, info: &BuildInfo) -> Result<()> {
        let config = &self.inner.config;
        let version = config.version().unwrap_or(&info.version);
        let commit = config.commit().unwrap_or(&info.commit);
        let labels = [
            ("version", version),
            ("commit", commit),
            ("branch", info.branch.as_str()),
            ("service_name", config.service_name()),
            ("autometrics_version", AUTOMETRICS_VERSION),
            ("repository_url", info.repository_url.as_str()),
            ("repository_provider", repository_provider(&info.repository_url)),
            ("flext_obs_version", env!("CARGO_PKG_VERSION")),
        ];
        self.inner.store.set_info(BUILD_INFO, &labels, "Version and commit of the running service (always 1).")?;
        version.clone_into(&mut self.inner.build_version.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        Ok(())
    }

    /// The version `build_info` reports, `None` while it is `unknown`.
    #[cfg_attr(not(feature = "otlp"), allow(dead_code))]
    pub(crate) fn build_version(&self) -> Option<String> {
        let version = self.inner.build_version.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        (!version.is_empty()).then_some(version)
    }

    /// Builds an instance from the environment ([`Config::from_env`]).
    pub fn from_env() -> Result<Self> {
        Self::new(Config::from_env()?)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The metrics store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Every series and the recent raw records, read now.
    pub fn snapshot(&self) -> Snapshot {
        self.inner.store.snapshot()
    }

    /// Applies a metric record to the store and keeps it in the raw history.
    pub fn record_metric(&self, metric: &Metric) -> Result<()> {
        self.inner.store.record_metric(metric)
    }

    /// The value of counter or gauge `name{labels}` (the Python `get_metric_value`).
    pub fn metric_value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.snapshot().value(name, labels)
    }

    /// The most recent raw records of `name`, oldest first.
    pub fn raw_records(&self, name: &str) -> Vec<Metric> {
        self.inner.store.raw_records(name)
    }

    /// Switches recording on or off at run time; for the process-wide instance this switches
    /// `#[flext_monitor]` too.
    pub fn set_enabled(&self, on: bool) {
        self.inner.store.set_enabled(on);
        if GLOBAL.get().is_some_and(|global| Arc::ptr_eq(&global.inner, &self.inner)) {
            crate::monitor::set_enabled(on);
        }
    }

    /// Zeroes every series and clears the raw history (for tests).
    pub fn reset(&self) {
        self.inner.store.reset();
    }
}

/// Name of the build information gauge.
pub const BUILD_INFO: &str = "build_info";

/// The Autometrics specification version whose names and labels flext-obs follows (the
/// `autometrics_version` label of `build_info`).
pub const AUTOMETRICS_VERSION: &str = "1.0.0";

/// What `build_info` says about the running service; empty fields are unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildInfo {
    /// The service's version (semver, without a `v`).
    pub version: String,
    /// The Git commit (full or short).
    pub commit: String,
    /// The Git branch.
    pub branch: String,
    /// The repository's URL (`CARGO_PKG_REPOSITORY`); its host gives `repository_provider`.
    pub repository_url: String,
}

/// `github`, `gitlab` or `bitbucket` from a repository URL's host, else empty.
fn repository_provider(url: &str) -> &'static str {
    let host = url.split("://").nth(1).unwrap_or(url).split('/').next().unwrap_or("").to_ascii_lowercase();
    ["github", "gitlab", "bitbucket"].into_iter().find(|p| host.contains(p)).unwrap_or("")
}

/// Sets the process-wide instance's `build_info` from the calling crate's build: its
/// `CARGO_PKG_VERSION`, `CARGO_PKG_REPOSITORY` and, when the build sets them, `FLEXT_GIT_COMMIT` and
/// `FLEXT_GIT_BRANCH` (else empty).
///
/// ```
/// flext_obs::set_build_info!()?;
/// # Ok::<(), flext_obs::Error>(())
/// ```
#[macro_export]
macro_rules! set_build_info {
    () => {
        $crate::global().set_build(&$crate::api::BuildInfo {
            version: ::core::env!("CARGO_PKG_VERSION").into(),
            commit: ::core::option_env!("FLEXT_GIT_COMMIT").unwrap_or("").into(),
            branch: ::core::option_env!("FLEXT_GIT_BRANCH").unwrap_or("").into(),
            repository_url: ::core::env!("CARGO_PKG_REPOSITORY").into(),
        })
    };
}

static GLOBAL: OnceLock<Observability> = OnceLock::new();

/// The variables refused when [`global`] built the instance from the environment.
static CONFIG_ERRORS: OnceLock<Vec<Error>> = OnceLock::new();

/// The environment variables the process-wide instance refused when [`global`] built it from
/// the environment, each with its error; empty when every variable was valid or when [`init`]
/// configured it. Builds the instance first if nothing did yet.
///
/// ```
/// // In this doctest's process every FLEXT_* variable is unset or valid.
/// assert!(flext_obs::config_errors().is_empty());
/// ```
pub fn config_errors() -> &'static [Error] {
    instance();
    CONFIG_ERRORS.get().map_or(&[], Vec::as_slice)
}

/// Configures the process-wide instance. Call it once, early; a second call, or a call after
/// [`global`] was first used, is [`Error::AlreadyInitialized`].
///
/// ```
/// let obs = flext_obs::init(flext_obs::Config::builder().service_name("doc").build()?)?;
/// assert_eq!(flext_obs::global().config().service_name(), "doc");
/// assert!(flext_obs::init(flext_obs::Config::default()).is_err());
/// # let _ = obs;
/// # Ok::<(), flext_obs::Error>(())
/// ```
pub fn init(config: Config) -> Result<&'static Observability> {
    let obs = Observability::new(config)?;
    let mut fresh = false;
    let stored = GLOBAL.get_or_init(|| {
        fresh = true;
        crate::monitor::configure(obs.config());
        obs.config().sampler().install();
        obs
    });
    if fresh {
        crate::monitor::register_all();
        Ok(stored)
    } else {
        Err(Error::AlreadyInitialized)
    }
}

/// Configures the process-wide instance from the environment; a malformed variable is an error.
pub fn init_from_env() -> Result<&'static Observability> {
    init(Config::from_env()?)
}

/// The process-wide instance. If [`init`] was not called, it is built from the environment on
/// first use ([`Config::from_env_lenient`]): a malformed variable is then reported once on
/// standard error and left out, every valid one still applies, and [`config_errors`] tells
/// which were refused (call [`init_from_env`] to get the first error as a `Result` instead).
///
/// Once it exists, every monitored function of the program is registered, so its
/// `function_calls_total` series read 0 before its first call.
pub fn global() -> &'static Observability {
    let obs = instance();
    crate::monitor::register_all();
    obs
}

/// The process-wide instance, without registering the call sites (what resolving one call site
/// uses, so that registering them all does not re-enter itself).
pub(crate) fn instance() -> &'static Observability {
    GLOBAL.get_or_init(|| {
        let (config, refused) = Config::from_env_lenient();
        for err in &refused {
            eprintln!("flext-obs: {err}; that setting is ignored (the others apply)");
        }
        let obs = Observability::new(config).unwrap_or_else(|err| {
            eprintln!("flext-obs: {err}; using the default configuration");
            Observability::new(Config::default()).unwrap_or_else(|_| unreachable!("the default configuration is valid"))
        });
        let _ = CONFIG_ERRORS.set(refused);
        crate::monitor::configure(obs.config());
        obs.config().sampler().install_unless_chosen();
        obs
    })
}

/// Creates a gauge [`Metric`] (the Python `flext_create_metric(name, value, unit)`).
///
/// ```
/// let m = flext_obs::create_metric("response_time", 150.5, "milliseconds")?;
/// assert_eq!((m.name(), m.unit()), ("response_time", "milliseconds"));
/// # Ok::<(), flext_obs::Error>(())
/// ```
pub fn create_metric(name: &str, value: f64, unit: &str) -> Result<Metric> {
    Metric::builder(name, value).kind(MetricKind::Gauge).unit(unit).build()
}

/// Starts a [`Span`] for `operation` in `service`, as a child of the current span when there is
/// one, carrying the current correlation ID, or a new one of its own when none is set (the
/// Python `flext_create_trace`).
///
/// ```
/// use flext_obs::{CorrelationId, context};
/// let id = CorrelationId::new();
/// let span = context::with_correlation_id(id, || flext_obs::create_trace("user_request", "order_processing"))?;
/// assert_eq!(span.correlation_id(), Some(id));
/// // outside any request, each span gets an ID of its own
/// let (a, b) = (flext_obs::create_trace("job", "batch")?, flext_obs::create_trace("job", "batch")?);
/// assert!(a.correlation_id().is_some() && a.correlation_id() != b.correlation_id());
/// # Ok::<(), flext_obs::Error>(())
/// ```
pub fn create_trace(operation: &str, service: &str) -> Result<Span> {
    let cx = context::current();
    let mut builder = Span::builder(operation, service).correlation_id(context::correlation_id());
    if let Some(parent) = cx.span() {
        builder = builder.trace_id(parent.trace_id).parent_span_id(parent.span_id);
    }
    builder.build()
}

/// Creates an [`Alert`] carrying the current correlation ID, or a new one of its own when none
/// is set (the Python `flext_create_alert`).
///
/// ```
/// use flext_obs::Severity;
/// let alert = flext_obs::create_alert("high_error_rate", "error rate above 5 %", Severity::Critical)?;
/// assert_eq!(alert.severity(), Severity::Critical);
/// assert_eq!(flext_obs::context::current().correlation_id(), None, "the new ID is the alert's alone");
/// # Ok::<(), flext_obs::Error>(())
/// ```
pub fn create_alert(title: &str, message: &str, severity: Severity) -> Result<Alert> {
    Alert::builder(title, message).severity(severity).correlation_id(context::correlation_id()).build()
}

/// Creates a [`HealthCheck`] result (the Python `flext_create_health_check`).
///
/// ```
/// use flext_obs::HealthStatus;
/// let check = flext_obs::create_health_check("database", HealthStatus::Healthy, "ping 2 ms")?;
/// assert_eq!(check.status(), HealthStatus::Healthy);
/// # Ok::<(), flext_obs::Error>(())
/// ```
pub fn create_health_check(component: &str, status: HealthStatus, message: &str) -> Result<HealthCheck> {
    HealthCheck::builder(component, status).message(message).build()
}

/// Creates a [`LogEntry`] carrying the current correlation, trace and span IDs; with no
/// correlation ID set, the entry gets a new one of its own (the Python
/// `flext_create_log_entry`).
///
/// ```
/// use flext_obs::{CorrelationId, LogLevel, context};
/// let id = CorrelationId::new();
/// let entry = context::with_correlation_id(id, || flext_obs::create_log_entry("cache warmed", LogLevel::Info))?;
/// assert_eq!(entry.correlation_id(), Some(id));
/// let (a, b) = (flext_obs::create_log_entry("tick", LogLevel::Info)?, flext_obs::create_log_entry("tick", LogLevel::Info)?);
/// assert_ne!(a.correlation_id(), b.correlation_id(), "unrelated entries never share an ID");
/// # Ok::<(), flext_obs::Error>(())
/// ```
pub fn create_log_entry(message: &str, level: LogLevel) -> Result<LogEntry> {
    let cx = context::current();
    let mut builder = LogEntry::builder(message, level).correlation_id(context::correlation_id());
    if let Some(span) = cx.span() {
        builder = builder.trace(span.trace_id, span.span_id);
    }
    builder.build()
}

/// Records a metric into the process-wide instance (the Python `record_metric`).
///
/// ```
/// let m = flext_obs::Metric::new("docs_built_total", 1.0, flext_obs::MetricKind::Counter)?;
/// flext_obs::record_metric(&m)?;
/// assert_eq!(flext_obs::global().metric_value("docs_built_total", &[]), Some(1.0));
/// # Ok::<(), flext_obs::Error>(())
/// ```
pub fn record_metric(metric: &Metric) -> Result<()> {
    global().record_metric(metric)
}
