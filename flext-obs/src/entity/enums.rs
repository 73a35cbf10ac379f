//! The entities' enumerations. Each serializes as its lower-case name and parses with an error
//! that lists every accepted spelling.

use crate::error::{Error, Result};

macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $kind:literal, default = $default:ident,
        { $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* #[doc = concat!("Written `", $text, "`.")] $variant, )+
        }

        impl $name {
            /// Every accepted spelling, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];
            /// Every member, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The lower-case name used in JSON, labels and logs.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl Default for $name {
            fn default() -> Self { $name::$default }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(Error::UnknownVariant { kind: $kind, value: s.to_owned(), expected: Self::NAMES }),
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

string_enum! {
    /// What a metric measures and so how the store aggregates it.
    ///
    /// ```
    /// use flext_obs::MetricKind;
    /// assert_eq!("counter".parse::<MetricKind>().unwrap(), MetricKind::Counter);
    /// ```
    MetricKind, "metric kind", default = Gauge,
    { Counter => "counter", Gauge => "gauge", Histogram => "histogram", Summary => "summary" }
}

string_enum! {
    /// Where a span stands in its life.
    ///
    /// ```
    /// assert_eq!(flext_obs::SpanStatus::Completed.as_str(), "completed");
    /// ```
    SpanStatus, "span status", default = Pending,
    { Pending => "pending", Completed => "completed", Error => "error", Timeout => "timeout" }
}

string_enum! {
    /// A span's role in its trace, as OpenTelemetry's `SpanKind`: `server` for the span of a
    /// request received from another process (the HTTP middleware's), `client` for one sent to
    /// another process (`bridge::http::outgoing`), `internal` for everything else.
    ///
    /// ```
    /// assert_eq!("server".parse::<flext_obs::SpanKind>()?, flext_obs::SpanKind::Server);
    /// assert_eq!(flext_obs::SpanKind::default(), flext_obs::SpanKind::Internal);
    /// # Ok::<(), flext_obs::Error>(())
    /// ```
    SpanKind, "span kind", default = Internal,
    { Internal => "internal", Server => "server", Client => "client" }
}

string_enum! {
    /// How urgent an alert is. `"error"` is not a severity:
    ///
    /// ```
    /// let err = "error".parse::<flext_obs::Severity>().unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     r#"unknown severity "error": expected one of "low", "medium", "high", "critical", "emergency""#
    /// );
    /// ```
    Severity, "severity", default = High,
    { Low => "low", Medium => "medium", High => "high", Critical => "critical", Emergency => "emergency" }
}

string_enum! {
    /// Where an alert stands in its life.
    ///
    /// ```
    /// assert_eq!("resolved".parse::<flext_obs::AlertStatus>().unwrap(), flext_obs::AlertStatus::Resolved);
    /// ```
    AlertStatus, "alert status", default = Active,
    { Active => "active", Acknowledged => "acknowledged", Resolved => "resolved", Suppressed => "suppressed" }
}

string_enum! {
    /// The verdict of a health check. Ordered from best to worst, so `max` aggregates.
    ///
    /// ```
    /// use flext_obs::HealthStatus;
    /// assert!(HealthStatus::Unhealthy > HealthStatus::Degraded);
    /// ```
    HealthStatus, "health status", default = Unknown,
    { Healthy => "healthy", Degraded => "degraded", Unhealthy => "unhealthy", Unknown => "unknown" }
}

string_enum! {
    /// How important a log line is. Ordered from least to most severe.
    ///
    /// ```
    /// use flext_obs::LogLevel;
    /// assert!(LogLevel::Warning < LogLevel::Error);
    /// assert!("warn".parse::<LogLevel>().is_err());
    /// ```
    LogLevel, "log level", default = Info,
    { Debug => "debug", Info => "info", Warning => "warning", Error => "error", Critical => "critical" }
}
