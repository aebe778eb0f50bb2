//! What the screens show, as plain data: the admin API's answers read by `calls.rs`, shown by
//! the screens. Kept apart from both, so neither imports the other's file.

/// One token as the table shows it.
#[derive(Debug, Clone, Default)]
pub struct TokenView {
    /// The serial.
    pub serial: String,
    /// `sms`, `email`, `hotp`, `totp`.
    pub kind: String,
    /// Enabled.
    pub active: bool,
    /// Enrolled in self-service and not yet confirmed by its first code.
    pub pending: bool,
    /// Consecutive failures.
    pub fail_count: u32,
    /// Failures at which it locks.
    pub max_fail: u32,
    /// The owner's back-off as one line ("3 failed passwords from 10.0.0.5, until 21:40"),
    /// or `None`.
    pub backoff: Option<String>,
    /// When it last let someone in.
    pub last_use: Option<i64>,
    /// Where codes go, masked (`+49********678`).
    pub recipient: Option<String>,
    /// Free text.
    pub description: String,
}

impl TokenView {
    /// HOTP and TOTP tokens can be resynchronised from two codes.
    pub fn is_resyncable(&self) -> bool {
        matches!(self.kind.as_str(), "hotp" | "totp")
    }

    /// Whether it reached its fail limit.
    pub fn is_locked(&self) -> bool {
        self.max_fail > 0 && self.fail_count >= self.max_fail
    }

    /// Its state as a badge.
    pub fn badge(&self) -> &'static str {
        if self.pending {
            "<span class=\"badge pending\">awaiting first code</span>"
        } else if !self.active {
            "<span class=\"badge off\">disabled</span>"
        } else if self.is_locked() {
            "<span class=\"badge locked\">locked</span>"
        } else {
            "<span class=\"badge on\">active</span>"
        }
    }
}

/// A user found, as the list shows them (addresses masked by the admin layer).
#[derive(Debug, Clone, Default)]
pub struct Found {
    /// The identity.
    pub user: String,
    /// Its realm.
    pub realm: String,
    /// Given name and surname.
    pub name: Option<String>,
    /// Masked mobile number.
    pub mobile: Option<String>,
    /// Masked e-mail address.
    pub email: Option<String>,
}

/// A back-off row as the user's screen lists it.
#[derive(Debug, Clone)]
pub struct BackoffLine {
    /// Where from (`None`: over all origins).
    pub origin: Option<String>,
    /// Failed passwords in a row.
    pub failures: u32,
    /// Seconds until the next attempt is checked; 0: not backing off.
    pub waiting_seconds: u64,
}

/// One row as shown.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// `YYYY-MM-DD HH:MM:SS` (UTC).
    pub time: String,
    /// The client.
    pub client: String,
    /// The identity and realm.
    pub user: String,
    /// The token.
    pub serial: String,
    /// What was asked.
    pub action: String,
    /// How it went.
    pub result: String,
    /// Why, and by whom.
    pub reason: String,
}

/// A peer's health as shown.
#[derive(Debug, Clone)]
pub struct Health {
    /// `store` or the directory's name.
    pub name: String,
    /// Whether it answered.
    pub ok: bool,
    /// Why not.
    pub error: Option<String>,
}

/// Deliveries through one provider.
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    /// The provider's name.
    pub provider: String,
    /// Codes handed to it.
    pub attempts: u64,
    /// Of those, failed, by kind.
    pub failures: Vec<(String, u64)>,
}

/// What the screen shows.
#[derive(Debug, Clone, Default)]
pub struct StateView {
    /// Decisions per minute, when there was an earlier reading.
    pub per_minute: Option<f64>,
    /// Decisions by result.
    pub decisions: Vec<(String, u64)>,
    /// Rejects by reason.
    pub rejects: Vec<(String, u64)>,
    /// Deliveries by provider.
    pub deliveries: Vec<Delivery>,
    /// The store's and each directory's health.
    pub health: Vec<Health>,
}

/// One accounting session as the user's screen shows it.
#[derive(Debug, Clone, Default)]
pub struct SessionLine {
    /// Acct-Session-Id.
    pub session_id: String,
    /// The client entry and the NAS behind it (`vpn/gw1`).
    pub nas: String,
    /// Calling-Station-Id.
    pub calling_station: Option<String>,
    /// Framed-IP-Address.
    pub framed_ip: Option<String>,
    /// Since (RFC 3339).
    pub started: Option<String>,
    /// Until (RFC 3339); `None` while open.
    pub stopped: Option<String>,
    /// Why it ended.
    pub cause: Option<String>,
    /// Still open.
    pub open: bool,
}
