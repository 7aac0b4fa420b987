//! Writing a file whole or not at all: the bytes go to a temporary file beside it, synced,
//! then renamed over it, so that a reader sees the old file or the new one, never half.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Writes `bytes` to `path` through `temporary` (a name of the caller's, in the same
/// directory), created with permissions `mode` (less the umask); `temporary` is gone
/// afterwards, whatever happened.
pub(crate) fn write(temporary: &Path, path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let written = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(temporary)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .and_then(|()| fs::rename(temporary, path));
    if written.is_err() {
        let _ = fs::remove_file(temporary);
    }
    written
}
