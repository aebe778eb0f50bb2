//! The process's file descriptors: how many are open (`/proc/self/fd`) and how many may be
//! (the soft `RLIMIT_NOFILE`, from `/proc/self/limits`), for the start-up log line, the
//! `tessera_descriptors_open` and `tessera_descriptor_limit` gauges, and the listeners'
//! [`Admission`](crate::admission::Admission), which keeps a reserve of them free.
//!
//! Both are read from `/proc` (Linux), not through `getrlimit`, so no unsafe code is needed and
//! a limit changed from outside (`prlimit --pid`) is seen at once. Reading them takes a
//! descriptor itself: when none is left, they fail with EMFILE, which is an answer too.

use std::io;

/// Descriptors open now (the one used to count them not included).
pub fn open() -> io::Result<usize> {
    let entries = std::fs::read_dir("/proc/self/fd")?;
    Ok(entries.count().saturating_sub(1))
}

/// The soft limit on open descriptors (`None`: unlimited).
pub fn limit() -> io::Result<Option<u64>> {
    let text = std::fs::read_to_string("/proc/self/limits")?;
    parse_limit(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "/proc/self/limits has no \"Max open files\" line",
        )
    })
}

/// The soft value of `Max open files` in `/proc/PID/limits`' text.
fn parse_limit(text: &str) -> Option<Option<u64>> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .strip_prefix("Max open files")?
        .split_whitespace()
        .next()?;
    match soft {
        "unlimited" => Some(None),
        number => number.parse().ok().map(Some),
    }
}

/// Logs the limit and the descriptors open at start, and registers both gauges.
pub fn report_at_start() {
    match (limit(), open()) {
        (Ok(Some(limit)), Ok(open)) if limit < 4096 => tracing::warn!(
            limit,
            open,
            "descriptor limit (RLIMIT_NOFILE) is low: each RadSec connection takes one; raise it (LimitNOFILE= in the systemd unit)"
        ),
        (Ok(limit), Ok(open)) => {
            tracing::info!(
                limit = limit.unwrap_or(u64::MAX),
                open,
                "descriptor limit (RLIMIT_NOFILE)"
            );
        }
        (Err(error), _) | (_, Err(error)) => {
            tracing::warn!(%error, "cannot read the descriptor limit or count from /proc");
        }
    }
    crate::metrics::register_gauge("tessera_descriptor_limit", || {
        limit()
            .ok()
            .flatten()
            .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX))
    });
    crate::metrics::register_gauge("tessera_descriptors_open", || open().unwrap_or(0));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_is_read_from_proc_limits() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max processes             63704                63704                processes \n\
                    Max open files            1024                 524288               files     \n";
        assert_eq!(parse_limit(text), Some(Some(1024)));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_limit(unlimited), Some(None));
        assert_eq!(parse_limit("Max processes 1 1 processes\n"), None);
    }

    #[test]
    fn this_process_has_a_limit_and_open_descriptors() {
        assert!(open().unwrap() >= 3, "stdin, stdout, stderr at least");
        assert!(limit().unwrap().is_some_and(|l| l > 0));
    }
}
