//! [`Live`]: a value that a reload (SIGHUP) replaces while requests keep using it.
//!
//! Readers take a cheap `Arc` clone of the current value and use it for the whole request, so a
//! request never sees half of an old configuration and half of a new one. The lock is held only
//! for the clone or the swap, never across an `.await`.

use std::sync::{Arc, RwLock};

use crate::auth::{AuthRequest, Authenticate, Outcome};

/// See the module documentation.
pub struct Live<T> {
    current: RwLock<Arc<T>>,
}

impl<T> Live<T> {
    /// Starts with `value`.
    pub fn new(value: T) -> Self {
        Live {
            current: RwLock::new(Arc::new(value)),
        }
    }

    /// The current value.
    pub fn get(&self) -> Arc<T> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the value; requests already running keep the one they took.
    pub fn replace(&self, value: T) {
        let value = Arc::new(value);
        match self.current.write() {
            Ok(mut guard) => *guard = value,
            Err(poisoned) => *poisoned.into_inner() = value,
        }
    }
}

impl<T: Authenticate> Authenticate for Live<T> {
    async fn authenticate(&self, request: AuthRequest) -> Outcome {
        self.get().authenticate(request).await
    }

    async fn passthru_accepted(&self, request: AuthRequest) {
        self.get().passthru_accepted(request).await
    }

    async fn accounting_user(
        &self,
        user_name: &str,
        client: std::net::IpAddr,
    ) -> Result<crate::auth::AccountingUser, String> {
        self.get().accounting_user(user_name, client).await
    }
}
