//! Reporting how far a task has come, to whoever watches its job.

/// Reports that `done` units of work of `total` are done (`None` when the task does not know
/// the total). Watchers of the job (its event stream) see each report at once, and the job's
/// record keeps the last one.
///
/// ```ignore
/// for (i, item) in items.iter().enumerate() {
///     handle(item);
///     taskhost_sdk::progress(i as u64 + 1, items.len() as u64);
/// }
/// ```
pub fn progress(done: u64, total: impl Into<Option<u64>>) {
    report(done, total.into(), None);
}

/// Like [`progress`], with a line saying what the task is doing now.
pub fn progress_message(done: u64, total: impl Into<Option<u64>>, message: &str) {
    report(done, total.into(), Some(message));
}

fn report(done: u64, total: Option<u64>, message: Option<&str>) {
    #[cfg(target_family = "wasm")]
    crate::__private::bindings::taskhost::task::host::progress(done, total, message);
    #[cfg(not(target_family = "wasm"))]
    eprintln!(
        "[progress] {done}/{} {}",
        total.map_or("?".to_owned(), |total| total.to_string()),
        message.unwrap_or_default()
    );
}
