//! `[telemetry]`: OpenTelemetry export of each call's span over OTLP/HTTP (see
//! `docs/observability.md`, "Traces"). Off unless `otlp-endpoint` is set.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::units::deserialize_duration;

/// The path OTLP/HTTP receivers take traces on, appended to a collector's base URL.
const TRACES_PATH: &str = "/v1/traces";

/// `[telemetry]` as written.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawTelemetry {
    /// Export a span per `tools/call` over OTLP/HTTP (protobuf) to this collector, e.g. `http://otel-collector:4318` (`/v1/traces` is appended unless the URL already ends with it). Unset: nothing is exported.
    #[schemars(extend("x-flag" = "--otlp-endpoint"))]
    pub otlp_endpoint: Option<String>,
    /// The `service.name` resource attribute of the exported spans.
    #[schemars(extend("default" = "capsule"))]
    pub service: Option<String>,
    /// How often finished spans are sent in a batch (also at exit).
    #[serde(default, deserialize_with = "deserialize_duration")]
    #[schemars(with = "Option<crate::units::DurationText>", extend("default" = "5s"))]
    pub export_interval: Option<Duration>,
    /// The share of calls without a caller's trace context whose span is exported, from 0 (none) to 1 (every one). A call whose `traceparent` says sampled (or not) follows the caller's decision.
    #[schemars(range(min = 0.0, max = 1.0), extend("default" = 1.0))]
    pub sample_ratio: Option<f64>,
}

/// `[telemetry]`, resolved.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TelemetrySettings {
    /// Where spans go, if anywhere.
    pub otlp: Option<OtlpSettings>,
}

/// An OTLP/HTTP trace exporter's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpSettings {
    /// The full URL spans are POSTed to (ends with `/v1/traces`).
    pub traces_url: String,
    /// `service.name` of the spans.
    pub service_name: String,
    /// How often a batch is sent.
    pub export_interval: Duration,
    /// The share of root calls (without a caller's sampling decision) exported.
    pub sample_ratio: f64,
}

impl RawTelemetry {
    /// Fills in defaults and checks the endpoint. The error is the key and what to write
    /// instead.
    pub fn resolve(self) -> Result<TelemetrySettings, (String, String)> {
        let Some(endpoint) = self.otlp_endpoint.filter(|e| !e.trim().is_empty()) else {
            return Ok(TelemetrySettings::default());
        };
        let traces_url = traces_url(endpoint.trim())?;
        let service_name = self.service.unwrap_or_else(|| "capsule".into());
        if service_name.trim().is_empty() {
            return Err((
                "telemetry.service".into(),
                "is empty; name the service the spans come from, e.g. \"capsule\"".into(),
            ));
        }
        let export_interval = self.export_interval.unwrap_or(Duration::from_secs(5));
        if export_interval.is_zero() || export_interval > Duration::from_secs(300) {
            return Err((
                "telemetry.export-interval".into(),
                "must be between 1ms and 5m, e.g. \"5s\"".into(),
            ));
        }
        let sample_ratio = self.sample_ratio.unwrap_or(1.0);
        if !(0.0..=1.0).contains(&sample_ratio) {
            return Err((
                "telemetry.sample-ratio".into(),
                format!(
                    "is {sample_ratio}; write a share from 0 (no calls) to 1 (every call), e.g. 0.1"
                ),
            ));
        }
        Ok(TelemetrySettings {
            otlp: Some(OtlpSettings {
                traces_url,
                service_name,
                export_interval,
                sample_ratio,
            }),
        })
    }
}

/// The traces URL of a collector's base URL (or of the traces URL itself).
fn traces_url(endpoint: &str) -> Result<String, (String, String)> {
    let wrong = |why: &str| {
        (
            "telemetry.otlp-endpoint".to_string(),
            format!(
                "`{endpoint}` {why}; write the collector's OTLP/HTTP URL, e.g. \"http://otel-collector:4318\""
            ),
        )
    };
    let uri: http::Uri = endpoint.parse().map_err(|_| wrong("is not a URL"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(wrong("is not an http:// or https:// URL")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(wrong("has no host"));
    }
    if uri.query().is_some() {
        return Err(wrong("has a query string"));
    }
    let base = endpoint.trim_end_matches('/');
    Ok(if base.ends_with(TRACES_PATH) {
        base.to_string()
    } else {
        format!("{base}{TRACES_PATH}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(text: &str) -> Result<TelemetrySettings, (String, String)> {
        let raw: RawTelemetry = toml::from_str(text).unwrap();
        raw.resolve()
    }

    #[test]
    fn off_without_an_endpoint() {
        assert_eq!(resolve("").unwrap(), TelemetrySettings::default());
        assert_eq!(
            resolve("otlp-endpoint = \"\"").unwrap(),
            TelemetrySettings::default()
        );
    }

    #[test]
    fn the_traces_path_is_appended_once() {
        for (endpoint, url) in [
            ("http://collector:4318", "http://collector:4318/v1/traces"),
            ("http://collector:4318/", "http://collector:4318/v1/traces"),
            (
                "https://otel.example.com/v1/traces",
                "https://otel.example.com/v1/traces",
            ),
            (
                "https://otel.example.com/tenant-a",
                "https://otel.example.com/tenant-a/v1/traces",
            ),
        ] {
            let settings = resolve(&format!("otlp-endpoint = \"{endpoint}\"")).unwrap();
            let otlp = settings.otlp.unwrap();
            assert_eq!(otlp.traces_url, url);
            assert_eq!(otlp.service_name, "capsule");
            assert_eq!(otlp.export_interval, Duration::from_secs(5));
            assert_eq!(otlp.sample_ratio, 1.0);
        }
    }

    #[test]
    fn a_wrong_endpoint_is_named_with_the_fix() {
        assert_eq!(
            resolve("otlp-endpoint = \"grpc://collector:4317\"").unwrap_err(),
            (
                "telemetry.otlp-endpoint".into(),
                "`grpc://collector:4317` is not an http:// or https:// URL; write the collector's OTLP/HTTP URL, e.g. \"http://otel-collector:4318\"".into()
            )
        );
        assert_eq!(
            resolve("otlp-endpoint = \"collector:4318\"").unwrap_err().1,
            "`collector:4318` is not an http:// or https:// URL; write the collector's OTLP/HTTP URL, e.g. \"http://otel-collector:4318\""
        );
        assert_eq!(
            resolve("otlp-endpoint = \"http://c:4318\"\nexport-interval = \"0s\"").unwrap_err(),
            (
                "telemetry.export-interval".into(),
                "must be between 1ms and 5m, e.g. \"5s\"".into()
            )
        );
        assert_eq!(
            resolve("otlp-endpoint = \"http://c:4318\"\nsample-ratio = 1.5").unwrap_err(),
            (
                "telemetry.sample-ratio".into(),
                "is 1.5; write a share from 0 (no calls) to 1 (every call), e.g. 0.1".into()
            )
        );
        let settings = resolve("otlp-endpoint = \"http://c:4318\"\nsample-ratio = 0.25").unwrap();
        assert_eq!(settings.otlp.unwrap().sample_ratio, 0.25);
    }
}
