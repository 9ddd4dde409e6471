//! `/healthz` (the process answers) and `/readyz` (plugins loaded, not draining), on the
//! same listener as MCP, outside the `Host`/`Origin` checks: probes come from the
//! orchestrator, by IP address, and learn nothing but these lines.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::loading::Loading;
use crate::registry::Registry;

/// What the probes report.
pub struct Health {
    registry: Arc<Registry>,
    loading: Arc<Loading>,
    draining: AtomicBool,
}

impl Health {
    /// Ready once every plugin has loaded or failed (the listener opens while they load).
    pub fn new(registry: Arc<Registry>, loading: Arc<Loading>) -> Self {
        Self {
            registry,
            loading,
            draining: AtomicBool::new(false),
        }
    }

    /// From now on `/readyz` answers 503 and new MCP requests are refused.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether the server is shutting down.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

/// `GET /healthz`: 200 while the process serves HTTP at all.
pub async fn alive() -> Response {
    json_response(StatusCode::OK, json!({"status": "alive"}))
}

/// `GET /readyz`: 200 with the plugin and tool counts, or 503 while plugins load or the
/// server drains.
pub async fn ready(State(health): State<Arc<Health>>) -> Response {
    if health.is_draining() {
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "draining"}),
        );
    }
    let progress = health.loading.progress();
    if progress.remaining > 0 {
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "loading", "plugins_loading": progress.remaining}),
        );
    }
    let snapshot = health.registry.snapshot();
    json_response(
        StatusCode::OK,
        json!({
            "status": "ready",
            "plugins": snapshot.plugins().len(),
            "tools": snapshot.tools().len(),
        }),
    )
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
