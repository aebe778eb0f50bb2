//! `[server]` and `[[client]]`: the listen addresses (UDP and RadSec) and the client table.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::locate::Errors;
use crate::radius::clients::{self, Client, ClientConfig, ClientTable, TlsIdentity};
use crate::radius::settings::ServerSettings;
use crate::secret::Secret;

/// Most request threads `[server] worker_threads` may ask for.
const MAX_WORKER_THREADS: usize = 1024;

/// The accounting port a `listen` address gets when `accounting_listen` is absent (RFC 2866).
pub const ACCOUNTING_PORT: u16 = 1813;

/// `[server] accounting_listen`, parsed; absent, `listen`'s addresses with port 1813 (port 0,
/// any free port, where `listen` asks for that).
pub(super) fn accounting_listen(
    server: &ServerSettings,
    listen: &[SocketAddr],
    errors: &mut Errors<'_>,
) -> Vec<SocketAddr> {
    let Some(configured) = &server.accounting_listen else {
        return listen
            .iter()
            .map(|a| {
                let port = if a.port() == 0 { 0 } else { ACCOUNTING_PORT };
                SocketAddr::new(a.ip(), port)
            })
            .collect();
    };
    let mut addresses = vec![];
    for address in configured {
        match address.get_ref().parse::<SocketAddr>() {
            Ok(a) => addresses.push(a),
            Err(_) => errors.at(
                address.span(),
                "server.accounting_listen",
                format!(
                    "{:?} is not an address:port (IPv6 as \"[::]:1813\")",
                    address.get_ref()
                ),
            ),
        }
    }
    addresses
}

/// `[server]`'s addresses (UDP, RadSec), and its other values checked.
pub(super) fn listen(
    server: &ServerSettings,
    errors: &mut Errors<'_>,
) -> (Vec<SocketAddr>, Vec<SocketAddr>) {
    let mut listen = vec![];
    if server.listen.is_empty() && server.tls_listen.is_empty() {
        errors.at(
            0..0,
            "server.listen",
            "at least one address is needed (listen or tls_listen)",
        );
    }
    for address in &server.listen {
        match address.get_ref().parse::<SocketAddr>() {
            Ok(a) => listen.push(a),
            Err(_) => errors.at(
                address.span(),
                "server.listen",
                format!(
                    "{:?} is not an address:port (IPv6 as \"[::]:1812\")",
                    address.get_ref()
                ),
            ),
        }
    }
    if let Some(threads) = &server.worker_threads
        && !(1..=MAX_WORKER_THREADS).contains(threads.get_ref())
    {
        errors.at(
            threads.span(),
            "server.worker_threads",
            format!(
                "{} threads: give 1 to {MAX_WORKER_THREADS}, or leave the key out for half the CPUs",
                threads.get_ref()
            ),
        );
    }
    let tls_listen = crate::radius::tls::check_settings(server, &mut |span, key, message| {
        errors.at(span, key, message)
    });
    (listen, tls_listen)
}

/// `[server]` with its paths resolved against the config file's directory.
pub(super) fn resolved(
    mut server: ServerSettings,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> ServerSettings {
    server.dictionary = server.dictionary.map(|p| resolve(&p));
    for path in [
        &mut server.tls_certificate,
        &mut server.tls_key,
        &mut server.tls_client_ca,
    ]
    .into_iter()
    .flatten()
    {
        *path = Spanned::new(path.span(), resolve(path.get_ref()));
    }
    server
}

/// `[[client]]` entries: UDP clients by address, RadSec clients by certificate identity. A
/// client with both gets two entries of the same name: the UDP one with its secret, the TLS one
/// with `radsec` (RFC 6614 §2.3).
pub(super) fn clients(
    list: &[ClientConfig],
    server: &ServerSettings,
    errors: &mut Errors<'_>,
) -> ClientTable {
    let mut seen = Seen::default();
    let mut udp = vec![];
    let mut tls = vec![];
    for client in list {
        client_entries(client, &mut seen, &mut udp, &mut tls, errors);
    }
    if udp.is_empty() && tls.is_empty() && errors.list.is_empty() {
        errors.at(
            0..0,
            "client",
            "no [[client]] is configured, so every request would be dropped",
        );
    }
    if !tls.is_empty() && server.tls_listen.is_empty() {
        errors.at(
            0..0,
            "client.tls_identity",
            "clients have a tls_identity but [server] has no tls_listen",
        );
    }
    ClientTable::with_tls(udp, tls)
}

/// What earlier clients took: a network or an identity is listed once.
#[derive(Default)]
struct Seen {
    networks: HashSet<ipnet::IpNet>,
    identities: HashSet<String>,
}

/// One `[[client]]`: its UDP entry and its RadSec entry, each when configured.
fn client_entries(
    client: &ClientConfig,
    seen: &mut Seen,
    udp: &mut Vec<Client>,
    tls: &mut Vec<(TlsIdentity, Client)>,
    errors: &mut Errors<'_>,
) {
    let (span, fallback_name) = match (&client.address, &client.tls_identity) {
        (Some(a), _) => (a.span(), a.get_ref().clone()),
        (None, Some(t)) => (t.span(), t.get_ref().clone()),
        (None, None) => {
            errors.at(
                0..0,
                "client.address",
                format!(
                    "client {:?} has neither an address (UDP) nor a tls_identity (RadSec)",
                    client.name.as_deref().unwrap_or("")
                ),
            );
            return;
        }
    };
    let name = client.name.clone().unwrap_or(fallback_name);
    let das = das(client, span.clone(), errors);
    let resolved = |network, secret| Client {
        network,
        secret,
        name: name.clone(),
        require_message_authenticator: client.require_message_authenticator,
        limit_proxy_state: client.limit_proxy_state,
        tls_only: client.tls_only,
        das: das.clone(),
    };
    if let Some(identity) = &client.tls_identity {
        match TlsIdentity::parse(identity.get_ref()) {
            Ok(parsed) => {
                if !seen
                    .identities
                    .insert(format!("{parsed:?}").to_ascii_lowercase())
                {
                    errors.at(
                        identity.span(),
                        "client.tls_identity",
                        format!("{:?} is listed twice", identity.get_ref()),
                    );
                }
                tls.push((parsed, resolved(None, Secret::from("radsec"))));
            }
            Err(message) => errors.at(identity.span(), "client.tls_identity", message),
        }
    }
    let Some(address) = &client.address else {
        if client.secret.is_some() {
            errors.at(
                span,
                "client.secret",
                "a secret is only used with an address",
            );
        }
        return;
    };
    match clients::parse_address(address.get_ref()) {
        Ok(network) => {
            if !seen.networks.insert(network) {
                errors.at(
                    address.span(),
                    "client.address",
                    format!("{network} is listed twice"),
                );
            }
            let secret = client.secret.clone().unwrap_or_default();
            if secret.is_empty() {
                errors.at(
                    address.span(),
                    "client.secret",
                    "the shared secret is empty",
                );
            }
            udp.push(resolved(Some(network), secret));
        }
        Err(message) => errors.at(address.span(), "client.address", message),
    }
}

/// A client's options that need no address: `tls_only` needs a `tls_identity`; the Dynamic
/// Authorization settings, returned: `das_port` turns them on, `das_secret` needs it and
/// defaults to the client's secret (which a RadSec-only client does not have).
fn das(
    client: &ClientConfig,
    span: std::ops::Range<usize>,
    errors: &mut Errors<'_>,
) -> Option<clients::Das> {
    if client.tls_only && client.tls_identity.is_none() {
        errors.at(
            span.clone(),
            "client.tls_only",
            "tls_only needs a tls_identity",
        );
    }
    let Some(port) = client.das_port else {
        if client.das_secret.is_some() {
            errors.at(span, "client.das_secret", "das_secret needs das_port");
        }
        return None;
    };
    if port == 0 {
        errors.at(span, "client.das_port", "das_port 0 is no port");
        return None;
    }
    let secret = client
        .das_secret
        .clone()
        .or_else(|| client.secret.clone())
        .filter(|s| !s.is_empty());
    let Some(secret) = secret else {
        errors.at(
            span,
            "client.das_secret",
            "das_port needs a secret: das_secret, or the client's secret",
        );
        return None;
    };
    Some(clients::Das { port, secret })
}
