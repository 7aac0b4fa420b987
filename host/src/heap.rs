//! Giving the heap's freed memory back to the operating system.
//!
//! glibc's allocator keeps what a burst of jobs freed (their stores, WASI contexts, request
//! buffers) in its arenas, and returns to the kernel on its own only the top of each heap.
//! The host asks it to hand back every free page once it has gone idle (no job has run for
//! a second), where the walk over the arenas holds up no job: after 4,000 concurrent IO jobs
//! that gave back 40 MiB. (The `taskhost` binary allocates with mimalloc, which returns
//! freed memory on its own; this serves embedders that keep glibc's allocator.)

/// Returns the pages the allocator holds free to the OS; where the C library is not glibc,
/// whose allocators return memory on their own terms, does nothing.
pub(crate) fn give_back_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only releases free memory of the allocator's own arenas; it
        // takes their locks and is safe to call from any thread at any time.
        #[allow(unsafe_code)]
        unsafe {
            libc::malloc_trim(0);
        }
    }
}
