//! The C allocator's settings for the daemon process.
//!
//! glibc's malloc gives threads their own arenas, up to eight per core,
//! so that threads rarely wait for each other's lock. Each arena keeps its
//! freed memory for reuse by its own threads only: with the tokio workers,
//! the blocking pool and sled's I/O threads all allocating, the daemon's
//! resident memory grew by the free space of many half-empty arenas. It
//! also raises its mmap threshold each time a large block is freed (up to
//! 32 MiB), after which large blocks (a map resized for 10,000 users, a
//! status body) come from the heap and their pages stay resident once
//! freed. The daemon allocates little per second: one arena and a fixed
//! threshold cost no measurable CPU, and in the 10,000-vehicle fleet
//! benchmark they lower the peak RSS from 174.5 to 159.4 MiB
//! (BENCHMARKS.md).
//!
//! Set in the process itself rather than by `MALLOC_ARENA_MAX` in the unit
//! file, so every way of starting the daemon gets it; an operator's
//! `MALLOC_ARENA_MAX`, `MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_`
//! or `GLIBC_TUNABLES` in the environment wins.

/// Arenas the daemon's allocator may create (glibc's default: 8 per core).
pub const ARENA_MAX: i32 = 1;

/// Blocks of this size and more are mapped on their own and unmapped when
/// freed; free memory above this at the top of the heap is given back
/// (glibc's starting value for both, kept fixed instead of raised).
pub const THRESHOLD_BYTES: i32 = 128 << 10;

/// Sets [`ARENA_MAX`] and [`THRESHOLD_BYTES`] in glibc's malloc, each
/// unless the environment sets it. Call it first in the process, before
/// any thread is started: arenas already created stay. Does nothing with
/// another C library.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let set = |var: &str| std::env::var_os(var).is_some();
        let tunables = set("GLIBC_TUNABLES");
        let settings = [
            ("MALLOC_ARENA_MAX", libc::M_ARENA_MAX, ARENA_MAX),
            (
                "MALLOC_MMAP_THRESHOLD_",
                libc::M_MMAP_THRESHOLD,
                THRESHOLD_BYTES,
            ),
            (
                "MALLOC_TRIM_THRESHOLD_",
                libc::M_TRIM_THRESHOLD,
                THRESHOLD_BYTES,
            ),
        ];
        for (var, param, value) in settings {
            if !set(var) && !tunables {
                // SAFETY: mallopt only changes a tunable of glibc's
                // allocator; it is called before this process starts any
                // thread.
                unsafe {
                    libc::mallopt(param, value);
                }
            }
        }
    }
}
