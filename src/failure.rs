//! Whose failure it is: the one rule every provider class (`http_sms`, `smtp_sms`,
//! `smtp_email`, `smpp_sms`, `device_sms`, `file`) applies to an error before it calls it the
//! provider's, and [`crate::admission`] to a failed count of descriptors.
//!
//! A provider has failed when it answered (a refusal, a bad status), did not answer in time, or
//! could not be reached: the connection was refused, reset, aborted, timed out, or no route led
//! to it. Every other system error is tessera's own — no descriptor left (EMFILE, ENFILE), no
//! memory or buffers (ENOMEM, ENOBUFS), no local port or address, a permission, a full disk —
//! and so is a runtime task that panicked or was cancelled. A stranger who exhausts tessera's
//! descriptors must not make it look like the gateway is down: `delivery_failmode` and the
//! provider back-off exist for a provider that failed, so a failure of tessera's own is a
//! [`DeliveryError::Local`](crate::delivery::DeliveryError::Local), which neither applies to.
//!
//! The rule reads the error's causes ([`Error::source`]), so a provider hands over the error
//! itself (reqwest's, lettre's, tokio's) and the cause travels on as the source of the
//! [`LocalFailure`]. An error without an operating-system cause (a TLS alert, a malformed
//! answer, a name that does not resolve) stays the provider's — unless tessera cannot open a
//! descriptor at that moment ([`whose`]): some libraries drop the cause.

use std::error::Error;
use std::fmt;
use std::io;

/// Linux's error numbers (`asm-generic/errno-base.h`, `errno.h`) the rule names.
mod errno {
    pub const EPIPE: i32 = 32;
    pub const ENOMEM: i32 = 12;
    pub const ENFILE: i32 = 23;
    pub const EMFILE: i32 = 24;
    pub const ENETDOWN: i32 = 100;
    pub const ENETUNREACH: i32 = 101;
    pub const ENETRESET: i32 = 102;
    pub const ECONNABORTED: i32 = 103;
    pub const ECONNRESET: i32 = 104;
    pub const ENOBUFS: i32 = 105;
    pub const ENOTCONN: i32 = 107;
    pub const ETIMEDOUT: i32 = 110;
    pub const ECONNREFUSED: i32 = 111;
    pub const EHOSTDOWN: i32 = 112;
    pub const EHOSTUNREACH: i32 = 113;
}

/// What of tessera's own failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalResource {
    /// No file descriptor left (EMFILE for the process, ENFILE for the system).
    Descriptors,
    /// No memory or kernel buffers (ENOMEM, ENOBUFS).
    Memory,
    /// A runtime task that panicked or was cancelled.
    Runtime,
    /// Any other system error of tessera's side: a local port or address, a permission, the
    /// disk.
    System,
}

impl LocalResource {
    /// The `resource` label of `tessera_local_failures_total`, and the word in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            LocalResource::Descriptors => "descriptors",
            LocalResource::Memory => "memory",
            LocalResource::Runtime => "runtime",
            LocalResource::System => "system",
        }
    }

    /// What an operating-system error number means for the rule: `None` when it is the
    /// peer's (unreachable, refused, reset, timed out).
    fn of_errno(code: i32) -> Option<LocalResource> {
        match code {
            errno::EMFILE | errno::ENFILE => Some(LocalResource::Descriptors),
            errno::ENOMEM | errno::ENOBUFS => Some(LocalResource::Memory),
            errno::ECONNREFUSED
            | errno::ECONNRESET
            | errno::ECONNABORTED
            | errno::ENETRESET
            | errno::ETIMEDOUT
            | errno::EHOSTUNREACH
            | errno::EHOSTDOWN
            | errno::ENETUNREACH
            | errno::ENETDOWN
            | errno::ENOTCONN
            | errno::EPIPE => None,
            _ => Some(LocalResource::System),
        }
    }

    /// The first cause of `error` (itself included) that is tessera's own.
    pub fn find(error: &(dyn Error + 'static)) -> Option<LocalResource> {
        let mut next = Some(error);
        while let Some(error) = next {
            if error.is::<tokio::task::JoinError>() {
                return Some(LocalResource::Runtime);
            }
            if let Some(io) = error.downcast_ref::<io::Error>() {
                if let Some(code) = io.raw_os_error() {
                    return LocalResource::of_errno(code);
                }
                if io.kind() == io::ErrorKind::OutOfMemory {
                    return Some(LocalResource::Memory);
                }
                // `io::Error::source` skips the error it wraps: look at that one too.
                if let Some(inner) = io.get_ref()
                    && let Some(resource) = LocalResource::find(inner)
                {
                    return Some(resource);
                }
            }
            next = error.source();
        }
        None
    }
}

impl fmt::Display for LocalResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure of tessera's own, with the error that shows it.
#[derive(Debug, thiserror::Error)]
#[error("tessera's own failure ({resource}), not the provider's")]
pub struct LocalFailure {
    /// What ran out or failed.
    pub resource: LocalResource,
    /// The error itself (URLs taken out by the provider before).
    #[source]
    pub source: Box<dyn Error + Send + Sync>,
}

impl LocalFailure {
    /// The failure and each of its causes, `: `-joined, for the log and the audit.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut next = self.source.as_ref() as &(dyn Error + 'static);
        loop {
            let part = next.to_string();
            if !text.contains(&part) {
                text.push_str(": ");
                text.push_str(&part);
            }
            match next.source() {
                Some(source) => next = source,
                None => return text,
            }
        }
    }
}

/// [`whose`]'s answer.
#[derive(Debug)]
pub enum Whose<E> {
    /// tessera's own failure; the error is its source.
    Ours(LocalFailure),
    /// The provider's (or no system error at all): the error back, for the provider to judge.
    Peer(E),
}

/// The rule of this module: is `error` tessera's own failure or the provider's?
///
/// An error whose causes show no failure of tessera's own is the provider's only if tessera
/// can open a descriptor right now: some libraries drop the cause (glibc answers a name lookup
/// without a descriptor with "Name or service not known", serialport keeps a description), and
/// a failure while none can be opened is not trusted to be the peer's.
pub fn whose<E: Error + Send + Sync + 'static>(error: E) -> Whose<E> {
    if let Some(resource) = LocalResource::find(&error) {
        return Whose::Ours(LocalFailure {
            resource,
            source: Box::new(error),
        });
    }
    match std::fs::File::open("/dev/null") {
        Err(probe) => match LocalResource::find(&probe) {
            Some(resource) if resource != LocalResource::System => Whose::Ours(LocalFailure {
                resource,
                source: Box::new(Probed {
                    error: Box::new(error),
                    probe,
                }),
            }),
            _ => Whose::Peer(error),
        },
        Ok(_) => Whose::Peer(error),
    }
}

/// An error that shows no cause of tessera's own, met while tessera could open no descriptor.
#[derive(Debug, thiserror::Error)]
#[error("{error}; opening a descriptor failed too: {probe}")]
struct Probed {
    error: Box<dyn Error + Send + Sync>,
    probe: io::Error,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error with a cause, as a client library wraps an `io::Error`.
    #[derive(Debug, thiserror::Error)]
    #[error("error sending request")]
    struct Wrapped(#[source] io::Error);

    fn os(code: i32) -> io::Error {
        io::Error::from_raw_os_error(code)
    }

    #[test]
    fn out_of_descriptors_or_memory_is_ours_through_any_wrapping() {
        for (code, resource) in [
            (errno::EMFILE, LocalResource::Descriptors),
            (errno::ENFILE, LocalResource::Descriptors),
            (errno::ENOMEM, LocalResource::Memory),
            (errno::ENOBUFS, LocalResource::Memory),
            (99, LocalResource::System), // EADDRNOTAVAIL: no local port left
            (13, LocalResource::System), // EACCES
        ] {
            assert_eq!(LocalResource::find(&os(code)), Some(resource), "{code}");
            assert_eq!(LocalResource::find(&Wrapped(os(code))), Some(resource));
            // Wrapped inside a custom io::Error, whose `source` skips the wrapped error.
            let custom = io::Error::other(Wrapped(os(code)));
            assert_eq!(LocalResource::find(&custom), Some(resource));
        }
    }

    #[test]
    fn an_unreachable_or_silent_peer_is_the_peers() {
        for code in [
            errno::ECONNREFUSED,
            errno::ECONNRESET,
            errno::ETIMEDOUT,
            errno::EHOSTUNREACH,
            errno::ENETUNREACH,
            errno::EPIPE,
        ] {
            assert!(matches!(whose(Wrapped(os(code))), Whose::Peer(_)), "{code}");
        }
        // No system error at all: a TLS alert, a short answer, a name that does not resolve.
        let custom = io::Error::new(io::ErrorKind::InvalidData, "bad certificate");
        assert!(matches!(whose(custom), Whose::Peer(_)));
        assert!(matches!(
            whose(io::Error::from(io::ErrorKind::UnexpectedEof)),
            Whose::Peer(_)
        ));
    }

    #[test]
    fn the_cause_is_kept_and_shown() {
        let Whose::Ours(failure) = whose(Wrapped(os(errno::EMFILE))) else {
            panic!("EMFILE is ours");
        };
        assert_eq!(failure.resource, LocalResource::Descriptors);
        let chain = failure.chain();
        assert!(
            chain.starts_with(
                "tessera's own failure (descriptors), not the provider's: error sending request: "
            ),
            "{chain}"
        );
        assert!(chain.contains("os error 24"), "{chain}");
    }

    #[tokio::test]
    async fn a_failed_task_is_the_runtimes() {
        let task = tokio::spawn(async { std::future::pending::<()>().await });
        task.abort();
        let Err(join) = task.await else {
            panic!("aborted");
        };
        let Whose::Ours(failure) = whose(join) else {
            panic!("a cancelled task is ours");
        };
        assert_eq!(failure.resource, LocalResource::Runtime);
    }
}
