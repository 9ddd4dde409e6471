//! MCP: the protocol handler (transport-agnostic) and the transports that carry it.

pub mod convert;
pub mod server;
pub mod stdio;

pub use server::CapsuleServer;
