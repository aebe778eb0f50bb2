//! [`UnixMs`]: a point in time, milliseconds since the Unix epoch — the one time type of the
//! store's contract and the engine's context. The conversions to and from seconds live here
//! and nowhere else; a store keeps its columns' units (challenges, graces and back-off rows in
//! milliseconds, token and audit times in seconds) and converts where it binds or reads them.
//! Durations stay numbers with their unit in their name (`validity_ms`, `forget_ms`).

/// Milliseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixMs(i64);

impl UnixMs {
    /// The epoch itself.
    pub const EPOCH: UnixMs = UnixMs(0);

    /// The time `ms` milliseconds after the epoch.
    pub const fn from_ms(ms: i64) -> UnixMs {
        UnixMs(ms)
    }

    /// The time `secs` seconds after the epoch (a column kept in seconds).
    pub const fn from_secs(secs: i64) -> UnixMs {
        UnixMs(secs.saturating_mul(1000))
    }

    /// Milliseconds since the epoch.
    pub const fn as_ms(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch, rounded down (a column kept in seconds, TOTP's time).
    pub const fn as_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// `ms` milliseconds later (saturating).
    pub const fn plus_ms(self, ms: i64) -> UnixMs {
        UnixMs(self.0.saturating_add(ms))
    }

    /// `ms` milliseconds earlier (saturating).
    pub const fn minus_ms(self, ms: i64) -> UnixMs {
        UnixMs(self.0.saturating_sub(ms))
    }

    /// Milliseconds from `earlier` to this time (negative when `earlier` is later).
    pub const fn ms_since(self, earlier: UnixMs) -> i64 {
        self.0.saturating_sub(earlier.0)
    }

    /// Now, by the system clock.
    pub fn now() -> UnixMs {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| UnixMs(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
            .unwrap_or(UnixMs::EPOCH)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_down_and_back() {
        assert_eq!(UnixMs::from_ms(1_999).as_secs(), 1);
        assert_eq!(UnixMs::from_ms(-1).as_secs(), -1);
        assert_eq!(UnixMs::from_secs(7).as_ms(), 7_000);
        assert_eq!(UnixMs::from_secs(i64::MAX).as_ms(), i64::MAX);
        assert_eq!(
            UnixMs::from_ms(5).plus_ms(i64::MAX),
            UnixMs::from_ms(i64::MAX)
        );
        assert_eq!(UnixMs::from_ms(5).ms_since(UnixMs::from_ms(8)), -3);
    }
}
