//! Capsule patch (see `vendor/README.md`): a `tools/call` request read straight from its
//! JSON.
//!
//! The derived reading of a [`ClientJsonRpcMessage`] buffers the whole message, then tries
//! each variant of the untagged [`ClientRequest`] in turn; a `tools/call` is the 14th, so
//! thirteen attempts fail first, each building a `serde_json` error. This reads the common
//! case directly and leaves everything else, and every message it does not accept, to the
//! derived reading, so results and errors are the same as upstream's.

use std::borrow::Cow;

use serde::{Deserialize, de::IgnoredAny};

use super::{
    CallToolRequest, ClientJsonRpcMessage, ClientRequest, JsonRpcRequest, JsonRpcVersion2_0,
    RequestId,
};

/// The message's own fields, for telling a `tools/call` request apart. Any other field
/// (`result`, `error`, anything unknown) sends the message to the derived reading.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<'a> {
    jsonrpc: JsonRpcVersion2_0,
    id: RequestId,
    #[serde(borrow)]
    method: Cow<'a, str>,
    /// Read only to be allowed; `Request`'s own reading takes it.
    #[serde(default, rename = "params")]
    _params: Option<IgnoredAny>,
}

impl ClientJsonRpcMessage {
    /// Reads a client message from JSON: what `serde_json::from_slice` returns, sooner
    /// for a `tools/call` request.
    pub fn from_json_slice(json: &[u8]) -> Result<Self, serde_json::Error> {
        match Self::tools_call_from_json_slice(json) {
            Some(message) => Ok(message),
            None => serde_json::from_slice(json),
        }
    }

    /// `json` as a `tools/call` request, if it is one the direct reading accepts; `None`
    /// for every message left to the derived reading.
    pub fn tools_call_from_json_slice(json: &[u8]) -> Option<Self> {
        let envelope: Envelope<'_> = serde_json::from_slice(json).ok()?;
        if envelope.method != "tools/call" {
            return None;
        }
        // `Request`'s reading takes `method` and `params` (with `_meta` moved to the
        // extensions) and skips the envelope's other fields.
        let request: CallToolRequest = serde_json::from_slice(json).ok()?;
        Some(Self::Request(JsonRpcRequest {
            jsonrpc: envelope.jsonrpc,
            id: envelope.id,
            request: ClientRequest::CallToolRequest(request),
        }))
    }
}
