//! The store of open EAP conversations and its bounds: a fixed number open at once, each
//! forgotten when its peer is silent for longer than its deadline. A stranger opening
//! thousands of conversations fills the table and is refused (and counted); nothing grows
//! without bound. Each conversation's own bounds (rounds, buffered octets) are kept by
//! `method.rs` and the driver.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use super::Conversation;

/// Why a new conversation was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// The open conversations, by the State tessera gave them.
pub struct Conversations {
    inner: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    open: HashMap<[u8; 16], (Conversation, Instant)>,
    /// Deadlines in the order they were set; an entry whose deadline moved is stale and
    /// skipped.
    deadlines: VecDeque<([u8; 16], Instant)>,
    /// Conversations being worked on (taken out of `open`), counted against the bound.
    busy: usize,
}

impl Table {
    fn expire(&mut self, now: Instant) {
        while let Some((id, deadline)) = self.deadlines.front().copied() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_front();
            if self.open.get(&id).is_some_and(|(_, d)| *d == deadline) {
                self.open.remove(&id);
                crate::metrics::inc("tessera_eap_conversations_total", &[("end", "expired")]);
            }
        }
    }
}

impl Conversations {
    /// The process's conversations (they outlive a reload: a peer in the middle of one keeps
    /// it).
    pub fn global() -> &'static Conversations {
        static GLOBAL: OnceLock<Conversations> = OnceLock::new();
        GLOBAL.get_or_init(|| {
            crate::metrics::register_gauge("tessera_eap_conversations", || {
                Conversations::global().len()
            });
            Conversations::new()
        })
    }

    /// An empty store.
    pub fn new() -> Conversations {
        Conversations {
            inner: Mutex::new(Table::default()),
        }
    }

    /// How many are open (or being worked on).
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .map_or(0, |t| t.open.len().saturating_add(t.busy))
    }

    /// Whether none is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Room for a new conversation under `max`, held until the [`Busy`] is put back or
    /// dropped; expired ones are forgotten first.
    pub fn reserve(&self, max: usize, now: Instant) -> Result<Busy<'_>, Full> {
        let Ok(mut table) = self.inner.lock() else {
            return Err(Full);
        };
        table.expire(now);
        if table.open.len().saturating_add(table.busy) >= max {
            return Err(Full);
        }
        table.busy += 1;
        Ok(Busy { store: self })
    }

    /// Takes the conversation `id` out to work on it (`None`: unknown or expired); its place
    /// stays held by the [`Busy`].
    pub fn take(&self, id: &[u8], now: Instant) -> Option<(Conversation, Busy<'_>)> {
        let id: [u8; 16] = id.try_into().ok()?;
        let mut table = self.inner.lock().ok()?;
        table.expire(now);
        let (conversation, _) = table.open.remove(&id)?;
        table.busy += 1;
        Some((conversation, Busy { store: self }))
    }

    /// Puts a conversation back in the place `busy` held, to wait for the peer until
    /// `deadline`.
    pub fn put(&self, busy: Busy<'_>, id: [u8; 16], conversation: Conversation, deadline: Instant) {
        // The place goes to the conversation: nothing to release.
        std::mem::forget(busy);
        if let Ok(mut table) = self.inner.lock() {
            table.busy = table.busy.saturating_sub(1);
            table.open.insert(id, (conversation, deadline));
            table.deadlines.push_back((id, deadline));
        }
    }

    fn release(&self) {
        if let Ok(mut table) = self.inner.lock() {
            table.busy = table.busy.saturating_sub(1);
        }
    }
}

/// A place in the store held while a conversation is worked on (between the peer's packet and
/// tessera's answer). Dropped — the conversation ended, or the request's task was dropped
/// mid-way — it frees the place; [`Conversations::put`] gives it back to the conversation.
#[must_use]
pub struct Busy<'a> {
    store: &'a Conversations,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.store.release();
    }
}

impl Default for Conversations {
    fn default() -> Self {
        Conversations::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn conversation() -> Conversation {
        Conversation::new("alice".into(), crate::eap::Method::Gtc, 1000)
    }

    #[test]
    fn the_table_is_bounded_and_forgets_abandoned_conversations() {
        let store = Conversations::new();
        let now = Instant::now();
        let later = now + Duration::from_secs(30);
        for i in 0..3u8 {
            let busy = store.reserve(3, now).unwrap();
            store.put(busy, [i; 16], conversation(), later);
        }
        // A stranger's fourth is refused while the three wait.
        assert!(store.reserve(3, now).is_err());
        assert_eq!(store.len(), 3);
        // Taken out and back in, a conversation keeps its place; its new deadline counts.
        let (c, busy) = store.take(&[0; 16], now).unwrap();
        assert_eq!(store.len(), 3, "a conversation worked on holds its place");
        store.put(busy, [0; 16], c, later + Duration::from_secs(30));
        // Past the first deadline the abandoned two are forgotten, the moved one is not.
        drop(store.reserve(3, later).unwrap());
        assert_eq!(store.len(), 1);
        assert!(store.take(&[1; 16], later).is_none());
        // Taken and dropped (the conversation ended, or its task was dropped): gone.
        drop(store.take(&[0; 16], later).unwrap());
        assert!(store.is_empty());
        // A State of another length is nobody's.
        assert!(store.take(&[0; 3], later).is_none());
    }
}
