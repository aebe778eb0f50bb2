//! Who carries out an admin change, as the audit names it: an operator logged in to the admin
//! API (identity, role, address) or the OS user running `tessera token …`.

use std::net::IpAddr;

/// The one acting: what the audit row's `client` and `reason` say about them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// Who, for the reason: `alice@corp (helpdesk)`, `root (sudo by bob)`.
    pub name: String,
    /// From where, for the client column: `admin/10.0.0.5`, `cli (root)`.
    pub client: String,
}

impl Actor {
    /// The OS user running a command.
    pub fn cli(os_user: &str) -> Actor {
        Actor {
            name: os_user.to_string(),
            client: format!("cli ({os_user})"),
        }
    }

    /// A logged-in operator (or self-service user) of the admin API: the identity the
    /// directory returned, its realm, the role the session holds, and the caller's address.
    pub fn operator(identity: &str, realm: &str, role: &str, address: IpAddr) -> Actor {
        Actor {
            name: format!("{identity}@{realm} ({role})"),
            client: format!("admin/{}", address.to_canonical()),
        }
    }
}
