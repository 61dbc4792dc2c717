//! The C heap's policy under glibc: what a serving process sets once at start
//! ([`keep_freed_buffers`]) and what the model runtime calls after large runs
//! ([`release_free_memory`]). Elsewhere both do nothing.

/// Blocks up to this size come from the heap, not from their own mapping.
pub const MMAP_THRESHOLD_BYTES: usize = 32 << 20;

/// Free memory at the top of a heap beyond this is handed back to the system.
pub const TRIM_THRESHOLD_BYTES: usize = 64 << 20;

/// Keeps freed blocks of up to [`MMAP_THRESHOLD_BYTES`] in the heap for the next request, and
/// up to [`TRIM_THRESHOLD_BYTES`] of free memory at a heap's top. glibc's defaults (a
/// threshold that starts at 128 KiB and follows the largest freed block, trimming at twice
/// that) unmap or trim a request's multi-megabyte scratch buffers when it ends, so the next
/// request faults every page in afresh: the visual-token methods at 576 tokens spent 10–15 %
/// of their time there. Larger blocks still get their own mapping, returned when freed.
/// Returns whether the allocator took both settings (always `false` off glibc).
pub fn keep_freed_buffers() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: `mallopt` only changes two tuning parameters of glibc's allocator; it has no
    // preconditions and is safe to call at any time from any thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES as libc::c_int) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES as libc::c_int) == 1
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    false
}

/// Hands the heap's free memory back to the system (all of glibc's arenas). The model runtime
/// calls it after runs whose buffers were large: ONNX Runtime's arena frees them to the C
/// allocator, which would otherwise keep about as much again resident.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: `malloc_trim` only releases free memory of glibc's heap; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_takes_the_settings() {
        let on_glibc = cfg!(all(target_os = "linux", target_env = "gnu"));
        assert_eq!(keep_freed_buffers(), on_glibc);
        // Blocks below and above the threshold still allocate, free and trim.
        let small = vec![1u8; MMAP_THRESHOLD_BYTES / 2];
        let large = vec![2u8; MMAP_THRESHOLD_BYTES * 2];
        assert_eq!(small[small.len() - 1] + large[large.len() - 1], 3);
        drop((small, large));
        release_free_memory();
    }
}
