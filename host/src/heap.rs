//! Giving the heap's freed memory back to the operating system.
//!
//! glibc's allocator keeps what a burst of jobs freed (their stores, WASI contexts, request
//! buffers) in its arenas, and returns to the kernel on its own only the top of each heap.
//! The host asks it to hand back every free page once it has gone idle (no job has run for
//! a second), where the walk over the arenas holds up no job: after 4,000 concurrent IO jobs
//! that gave back 40 MiB. The `taskhost` binary allocates with mimalloc, which hands freed
//! pages back lazily, on later allocations; at idle it is told to hand back everything free.

/// Returns the pages the allocators hold free to the OS: mimalloc's (the binary's global
/// allocator; with another one its heaps are empty and this costs nothing) and glibc's.
pub(crate) fn give_back_freed() {
    // SAFETY: mi_collect only purges memory mimalloc holds free; callable from any thread.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
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
