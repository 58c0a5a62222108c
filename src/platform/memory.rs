//! The allocator, and giving memory freed in bulk back to the system.
//!
//! Rust's allocations go through mimalloc: each request allocates and frees many small
//! objects (headers, routing, guards, JSON), often on another thread than the one that
//! allocated them, which mimalloc does in thread-local pages without the arena locks of
//! glibc's malloc (15-20% more requests per second on every route of `bench/compare.py`).
//! SQLite's C code keeps using the system allocator. Built without transparent huge pages
//! (`no_thp`): with them, each thread's first small pages pin a 2 MiB page, about 18 MiB
//! of an idle server's RSS.

/// The allocator of every program built on this library: the server, the CLI, the tests.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Returns what the start freed in bulk (migrations, the OpenAPI document, route tables)
/// to the system, so the idle server's RSS holds only what it uses: mimalloc gives back
/// freed pages only as the thread that freed them allocates again, and glibc (SQLite's
/// share) keeps freed heap pages mapped.
pub fn release_freed() {
    // SAFETY: mi_collect only purges memory the allocator holds free; it may be called at
    // any time from any thread.
    unsafe { libmimalloc_sys::mi_collect(true) };
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory held by the allocator; it is safe to
    // call at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}
