//! The admin layer: what the helpdesk and self-service do to tokens, users and the audit,
//! shared by the command line (`tessera token …`, `tessera audit`) and the admin API
//! (`http::admin`), so both run one piece of code and write the same audit rows.
//!
//! It knows nothing of HTTP or of the command line: a caller says who acts ([`Actor`]) and
//! gets values ([`tokens::TokenView`], [`enroll::Enrolled`], [`audit::AuditRow`] …) or an
//! [`AdminError`] back. Every change writes one audit row naming the actor, the address and
//! what changed ([`audit::record`]), whether it worked or not. Nothing here returns a seed,
//! except [`enroll::enroll`], once, to show the new token to its owner.
//!
//! Files: `actor.rs` (who acts), `error.rs` (what can go wrong), `roles.rs` (helpdesk, admin,
//! self-service, and who holds them), `users.rs` (finding users through the directories),
//! `tokens.rs` (a user's tokens as a view, and each change), `enroll.rs` (new TOTP/HOTP/SMS/
//! e-mail tokens, the otpauth URI and its QR code), `audit.rs` (the audit rows of changes, the
//! filtered audit view, CSV), `state.rs` (the service's state from the metrics and probes),
//! `revoke.rs` (ending a revoked user's open sessions at their NAS: Disconnect-Request),
//! `sessions.rs` (the accounting sessions as shown), `import/` (hardware tokens from a vendor's
//! seed file: OATH CSV, PSKC, YubiKey CSV).

pub mod actor;
pub mod audit;
pub mod enroll;
pub mod error;
pub mod import;
pub mod revoke;
pub mod roles;
pub mod sessions;
pub mod state;
pub mod tokens;
pub mod users;

pub use actor::Actor;
pub use error::AdminError;
pub use roles::{Action, Members, Role, SelfServiceAction};
pub use tokens::Admin;
