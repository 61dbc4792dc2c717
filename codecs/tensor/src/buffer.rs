//! Writing a decode's output into fresh memory.
//!
//! A decoded checkpoint is hundreds of megabytes of fresh pages, written once. Faulting them
//! in one 4 KiB page at a time (an exception per page) took about a quarter of a whole-file
//! decode in a `perf` profile; asking the kernel to populate a chunk's pages in one call
//! before writing them removes the exceptions, while the chunks still fault in on every
//! decoding thread at once. (Advising transparent huge pages instead was faster on some runs
//! and slower on others — the kernel compacts memory to find them — so it is not done.)

/// Populates the pages of `piece` for writing before it is written; contents are unchanged.
/// Where the kernel cannot (before Linux 5.14, or off Linux) the writes fault them in as usual.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub fn prefault(piece: &mut [u8]) {
    const PAGE: usize = 4096;
    let start = (piece.as_ptr() as usize).next_multiple_of(PAGE);
    let end = (piece.as_ptr() as usize + piece.len()) / PAGE * PAGE;
    if end > start {
        // SAFETY: the range lies inside `piece`, which this thread holds mutably, and
        // MADV_POPULATE_WRITE only maps its pages as if each were written with its current
        // contents: no byte changes. A failure leaves the pages to fault in, so the result is
        // ignored.
        unsafe {
            libc::madvise(
                start as *mut libc::c_void,
                end - start,
                libc::MADV_POPULATE_WRITE,
            );
        }
    }
}

/// Nothing to do off Linux.
#[cfg(not(target_os = "linux"))]
pub fn prefault(_piece: &mut [u8]) {}

#[cfg(test)]
mod tests {
    #[test]
    fn prefaulting_keeps_the_bytes() {
        for len in [0, 1, 4095, (2 << 20) + 3] {
            let mut buffer: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let expected = buffer.clone();
            super::prefault(&mut buffer[len.min(1)..]);
            assert_eq!(buffer, expected);
            let mut fresh = vec![0u8; len];
            super::prefault(&mut fresh);
            assert!(fresh.iter().all(|&b| b == 0));
        }
    }
}
