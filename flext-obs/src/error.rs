//! The crate's one error type.
//!
//! Every fallible public function returns [`Result<T>`](Result). Each variant names *what* was
//! wrong (entity and field, environment variable, header), *the offending value* and *the rule*
//! it broke, so the message alone is enough to fix the input.

use std::fmt;

/// Shorthand for `std::result::Result<T, flext_obs::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in flext-obs.
///
/// ```
/// let err = flext_obs::Metric::builder("9lives", 1.0).build().unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "invalid Metric.name \"9lives\": must match [a-zA-Z_:][a-zA-Z0-9_:]*"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A field of an entity or a store argument broke a validation rule.
    #[error("invalid {entity}.{field} {value}: {rule}")]
    Invalid {
        /// The entity or API that was being built (`Metric`, `Span`, `store`, ...).
        entity: &'static str,
        /// The field that was wrong.
        field: &'static str,
        /// The offending value, quoted for strings (`"9lives"`), plain for numbers.
        value: String,
        /// The rule the value broke.
        rule: String,
    },
    /// A string did not name a member of an enumeration.
    #[error("unknown {kind} {value:?}: expected one of {}", Expected(expected))]
    UnknownVariant {
        /// The enumeration (`severity`, `metric kind`, ...).
        kind: &'static str,
        /// The string that was given.
        value: String,
        /// Every accepted spelling.
        expected: &'static [&'static str],
    },
    /// A metric name was already registered with another kind.
    #[error("metric {name:?} is registered as a {registered}, not a {requested}")]
    KindMismatch {
        /// The metric name.
        name: String,
        /// The kind it was first registered with.
        registered: crate::entity::MetricKind,
        /// The kind this call asked for.
        requested: crate::entity::MetricKind,
    },
    /// An environment variable held a value that could not be used.
    #[error("environment variable {var}={value:?} is invalid: expected {expected}")]
    Env {
        /// The variable's name.
        var: &'static str,
        /// Its value.
        value: String,
        /// What would have been accepted.
        expected: String,
    },
    /// An incoming propagation header (`traceparent`, `x-correlation-id`) was malformed.
    #[error("malformed {header} header {value:?}: {reason}")]
    Header {
        /// The header's name.
        header: &'static str,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A remote system (Pushgateway, Alertmanager) answered with an error status.
    #[error("{service} answered {status}: {message}")]
    Remote {
        /// Which system.
        service: &'static str,
        /// The HTTP status.
        status: u16,
        /// Its message (the response body).
        message: String,
    },
    /// A remote system could not be reached.
    #[error("{service} unreachable: {message}")]
    Transport {
        /// Which system.
        service: &'static str,
        /// What went wrong.
        message: String,
    },
    /// A file could not be written (`slo::cli`'s `dashboards DIR`).
    #[error("cannot write {path}: {message}")]
    Io {
        /// The file or directory.
        path: String,
        /// What the operating system said.
        message: String,
    },
    /// [`crate::init`] was called after the global instance was already in use.
    #[error("the global Observability instance is already initialised; call flext_obs::init once, before first use")]
    AlreadyInitialized,
}

impl Error {
    /// Builds an [`Error::Invalid`]; `value` is rendered with `Debug` so strings come out quoted.
    pub(crate) fn invalid(entity: &'static str, field: &'static str, value: impl fmt::Debug, rule: impl Into<String>) -> Self {
        Error::Invalid { entity, field, value: format!("{value:?}"), rule: rule.into() }
    }
}

/// Renders a list of accepted spellings as `"a", "b", "c"`.
struct Expected(&'static [&'static str]);

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, name) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{name:?}")?;
        }
        Ok(())
    }
}
