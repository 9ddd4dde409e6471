//! A bound on the requests one session has in flight, so one client cannot queue the
//! whole server's work behind its own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Requests in flight per session id.
pub struct SessionSlots {
    max: u32,
    counts: Mutex<HashMap<String, u32>>,
}

/// One request of a session in flight, until dropped.
pub struct SessionSlot {
    owner: Arc<SessionSlots>,
    session: String,
}

impl SessionSlots {
    /// At most `max` requests per session.
    pub fn new(max: u32) -> Arc<Self> {
        Arc::new(Self {
            max,
            counts: Mutex::default(),
        })
    }

    /// The most requests a session may have in flight.
    pub fn max(&self) -> u32 {
        self.max
    }

    /// Takes a slot of `session`, or `None` if it has `max` requests in flight already.
    pub fn try_enter(self: &Arc<Self>, session: &str) -> Option<SessionSlot> {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(session.to_owned()).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(SessionSlot {
            owner: self.clone(),
            session: session.to_owned(),
        })
    }
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        let mut counts = self
            .owner
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.session) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.session);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_gets_its_slots_back_and_others_are_not_affected() {
        let slots = SessionSlots::new(2);
        let a1 = slots.try_enter("a").expect("first slot");
        let _a2 = slots.try_enter("a").expect("second slot");
        assert!(
            slots.try_enter("a").is_none(),
            "a third request of `a` fits"
        );
        let _b = slots
            .try_enter("b")
            .expect("another session is not limited by `a`");
        drop(a1);
        assert!(
            slots.try_enter("a").is_some(),
            "the freed slot is not reusable"
        );
    }
}
