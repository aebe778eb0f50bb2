//! The store of open EAP conversations and its bounds: a fixed number open at once, each
//! forgotten when its peer is silent for longer than its deadline, and at most
//! [`MAX_PER_STATION`] of one station (a NAS's Calling-Station-Id: one Wi-Fi client, one
//! switch port, one VPN client's address). A stranger opening thousands of conversations is
//! refused (and counted) once its station holds its share, so one port cannot fill the table
//! and lock everyone else out; nothing grows without bound. Each conversation's own bounds (rounds, buffered octets) are kept by
//! `method.rs` and the driver.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use super::Conversation;

/// The most conversations one station (client entry and Calling-Station-Id) holds at once. A
/// supplicant has one conversation at a time; a few more cover those it abandoned (a restarted
/// login) until their deadline passes.
pub const MAX_PER_STATION: usize = 4;

/// Why a new conversation was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// The open conversations, by the State tessera gave them.
pub struct Conversations {
    inner: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    open: HashMap<[u8; 16], (Conversation, Instant, Option<String>)>,
    /// Deadlines in the order they were set; an entry whose deadline moved is stale and
    /// skipped.
    deadlines: VecDeque<([u8; 16], Instant)>,
    /// Conversations being worked on (taken out of `open`), counted against the bound.
    busy: usize,
    /// Conversations (open or being worked on) per station that named one.
    per_station: HashMap<String, usize>,
}

impl Table {
    fn expire(&mut self, now: Instant) {
        while let Some((id, deadline)) = self.deadlines.front().copied() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_front();
            if self.open.get(&id).is_some_and(|(_, d, _)| *d == deadline)
                && let Some((_, _, station)) = self.open.remove(&id)
            {
                self.leave(station.as_deref());
                crate::metrics::inc("tessera_eap_conversations_total", &[("end", "expired")]);
            }
        }
    }

    /// A conversation of `station` ended or was forgotten.
    fn leave(&mut self, station: Option<&str>) {
        if let Some(station) = station
            && let Some(count) = self.per_station.get_mut(station)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_station.remove(station);
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

    /// Room for a new conversation of `station` under `max` and [`MAX_PER_STATION`], held
    /// until the [`Busy`] is put back or dropped; expired ones are forgotten first.
    pub fn reserve(
        &self,
        max: usize,
        station: Option<&str>,
        now: Instant,
    ) -> Result<Busy<'_>, Full> {
        let Ok(mut table) = self.inner.lock() else {
            return Err(Full);
        };
        table.expire(now);
        if table.open.len().saturating_add(table.busy) >= max {
            return Err(Full);
        }
        if let Some(station) = station {
            let count = table.per_station.entry(station.to_string()).or_insert(0);
            if *count >= MAX_PER_STATION {
                return Err(Full);
            }
            *count += 1;
        }
        table.busy += 1;
        Ok(Busy::new(self, station.map(str::to_string)))
    }

    /// Takes the conversation `id` out to work on it (`None`: unknown or expired); its place
    /// stays held by the [`Busy`].
    pub fn take(&self, id: &[u8], now: Instant) -> Option<(Conversation, Busy<'_>)> {
        let id: [u8; 16] = id.try_into().ok()?;
        let mut table = self.inner.lock().ok()?;
        table.expire(now);
        let (conversation, _, station) = table.open.remove(&id)?;
        table.busy += 1;
        Some((conversation, Busy::new(self, station)))
    }

    /// Puts a conversation back in the place `busy` held, to wait for the peer until
    /// `deadline`.
    pub fn put(
        &self,
        mut busy: Busy<'_>,
        id: [u8; 16],
        conversation: Conversation,
        deadline: Instant,
    ) {
        // The place (and the station's share) goes to the conversation: nothing to release.
        busy.kept = true;
        let station = busy.station.take();
        if let Ok(mut table) = self.inner.lock() {
            table.busy = table.busy.saturating_sub(1);
            table.open.insert(id, (conversation, deadline, station));
            table.deadlines.push_back((id, deadline));
        }
    }

    fn release(&self, station: Option<&str>) {
        if let Ok(mut table) = self.inner.lock() {
            table.busy = table.busy.saturating_sub(1);
            table.leave(station);
        }
    }
}

/// A place in the store held while a conversation is worked on (between the peer's packet and
/// tessera's answer). Dropped — the conversation ended, or the request's task was dropped
/// mid-way — it frees the place; [`Conversations::put`] gives it back to the conversation.
#[must_use]
pub struct Busy<'a> {
    store: &'a Conversations,
    /// The station whose share it holds.
    station: Option<String>,
    /// Given back to the store by [`Conversations::put`]: the drop releases nothing.
    kept: bool,
}

impl<'a> Busy<'a> {
    fn new(store: &'a Conversations, station: Option<String>) -> Self {
        Busy {
            store,
            station,
            kept: false,
        }
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        if !self.kept {
            self.store.release(self.station.as_deref());
        }
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
            let busy = store.reserve(3, None, now).unwrap();
            store.put(busy, [i; 16], conversation(), later);
        }
        // A stranger's fourth is refused while the three wait.
        assert!(store.reserve(3, None, now).is_err());
        assert_eq!(store.len(), 3);
        // Taken out and back in, a conversation keeps its place; its new deadline counts.
        let (c, busy) = store.take(&[0; 16], now).unwrap();
        assert_eq!(store.len(), 3, "a conversation worked on holds its place");
        store.put(busy, [0; 16], c, later + Duration::from_secs(30));
        // Past the first deadline the abandoned two are forgotten, the moved one is not.
        drop(store.reserve(3, None, later).unwrap());
        assert_eq!(store.len(), 1);
        assert!(store.take(&[1; 16], later).is_none());
        // Taken and dropped (the conversation ended, or its task was dropped): gone.
        drop(store.take(&[0; 16], later).unwrap());
        assert!(store.is_empty());
        // A State of another length is nobody's.
        assert!(store.take(&[0; 3], later).is_none());
    }

    #[test]
    fn one_station_holds_its_share_and_no_more() {
        let store = Conversations::new();
        let now = Instant::now();
        let later = now + Duration::from_secs(30);
        let port = Some("nas/02-00-00-00-00-01");
        for i in 0..MAX_PER_STATION {
            let busy = store.reserve(100, port, now).unwrap();
            store.put(busy, [u8::try_from(i).unwrap(); 16], conversation(), later);
        }
        // The port's next is refused; another station and one without a station are not.
        assert!(store.reserve(100, port, now).is_err());
        drop(
            store
                .reserve(100, Some("nas/02-00-00-00-00-02"), now)
                .unwrap(),
        );
        drop(store.reserve(100, None, now).unwrap());
        // A conversation taken and ended gives the port its place back...
        drop(store.take(&[0; 16], now).unwrap());
        let busy = store.reserve(100, port, now).unwrap();
        store.put(busy, [9; 16], conversation(), later);
        assert!(store.reserve(100, port, now).is_err());
        // ...and so do those forgotten at their deadline.
        drop(store.reserve(100, port, later).unwrap());
        assert!(store.is_empty());
    }
}
