//! Keeps glibc's allocator from holding memory the operator no longer uses.
//!
//! glibc malloc gives threads that contend for the heap arenas of their own (up to eight per
//! core), and each arena keeps the memory freed inside it. The operator's peaks (the initial
//! list, the first sync of every resource) pass through tokio's worker and blocking threads, so
//! several arenas each keep a share of the peak: with 1,000 resources that was about 4 MiB of a
//! 31 MiB RSS (docs/benchmarks.md; two arenas still kept 3 MiB of it). At the operator's
//! allocation rate (a few hundred syncs a second at most) one arena's lock is not contended,
//! so one arena it is; `malloc_trim` then hands free pages back to the kernel after the peaks.
//!
//! The container image is a static musl build, whose allocator has neither behaviour: there
//! these functions do nothing. `MALLOC_ARENA_MAX` in the environment wins over the default.

/// Arenas glibc may create, unless `MALLOC_ARENA_MAX` says otherwise.
pub const MALLOC_ARENAS: i32 = 1;

/// Caps glibc's arenas at [`MALLOC_ARENAS`]. Call before any thread starts.
pub fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        glibc::set_arena_max(MALLOC_ARENAS);
    }
}

/// Returns the allocator's free pages to the kernel; cheap enough to call every few seconds.
pub fn release_free_memory() {
    glibc::trim();
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc {
    use std::ffi::c_int;

    unsafe extern "C" {
        fn mallopt(param: c_int, value: c_int) -> c_int;
        fn malloc_trim(pad: usize) -> c_int;
    }

    /// `M_ARENA_MAX` from glibc's `malloc.h`.
    const M_ARENA_MAX: c_int = -8;

    pub fn set_arena_max(n: i32) {
        // SAFETY: mallopt only sets an allocator parameter; any value is accepted or refused
        // (returning 0), never undefined behaviour.
        unsafe {
            mallopt(M_ARENA_MAX, n);
        }
    }

    pub fn trim() {
        // SAFETY: malloc_trim takes the allocator's own locks and only releases free memory.
        unsafe {
            malloc_trim(0);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod glibc {
    pub fn set_arena_max(_: i32) {}
    pub fn trim() {}
}
