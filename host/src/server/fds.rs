//! The process's open-file limit, which bounds how many connections it can hold at once.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Where the hard limit is infinite, what the soft limit is raised to: Linux's default
/// ceiling (`fs.nr_open`).
const UNLIMITED_TARGET: u64 = 1 << 20;

/// Raises the soft limit on open files to the hard limit, logging what it did, and returns
/// the soft limit now in force (`u64::MAX` when there is none).
pub(super) fn raise_open_file_limit() -> u64 {
    let limit = getrlimit(Resource::Nofile);
    let Some(soft) = limit.current else {
        tracing::info!("no open-file limit");
        return u64::MAX;
    };
    let target = limit.maximum.unwrap_or(UNLIMITED_TARGET);
    if target <= soft {
        tracing::info!(limit = soft, "open-file limit");
        return soft;
    }
    let raised = Rlimit {
        current: Some(target),
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => {
            tracing::info!(from = soft, to = target, "raised the open-file limit");
            target
        }
        Err(error) => {
            tracing::warn!(limit = soft, %error, "cannot raise the open-file limit");
            soft
        }
    }
}
