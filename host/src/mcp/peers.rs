//! The connected clients that can hear notifications (stdio and HTTP sessions), so a
//! change of the tool set reaches every one of them.

use std::sync::Mutex;

use rmcp::service::{Peer, RoleServer};

/// The peers of every initialized client connection.
#[derive(Default)]
pub struct Peers {
    peers: Mutex<Vec<Peer<RoleServer>>>,
}

impl Peers {
    /// Remembers a client that finished its handshake; forgets those whose connection
    /// closed.
    pub fn add(&self, peer: Peer<RoleServer>) {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        peers.retain(|p| !p.is_transport_closed());
        peers.push(peer);
    }

    /// Sends `notifications/tools/list_changed` to every connected client.
    pub fn tools_changed(&self) {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        peers.retain(|p| !p.is_transport_closed());
        for peer in peers.iter() {
            let peer = peer.clone();
            tokio::spawn(async move {
                if let Err(err) = peer.notify_tool_list_changed().await {
                    tracing::debug!("could not send tools/list_changed: {err}");
                }
            });
        }
    }
}
