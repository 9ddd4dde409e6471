//! MCP: the protocol handler (transport-agnostic) and the transports that carry it.

pub mod convert;
mod drain;
pub mod http;
pub mod inflight;
pub mod peers;
pub mod server;
pub mod stdio;

pub use server::CapsuleServer;
