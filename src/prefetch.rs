//! Software prefetch: a hint that memory will be read soon.
//!
//! With thousands of concurrent calls the per-packet state of a call is
//! rarely in cache, and each packet waits on a few such misses one after
//! another. The recorder looks a few frames ahead and asks for the lines
//! those frames will touch, so that the misses of several packets overlap
//! (see [`Recorder::handle_batch`](crate::recorder::Recorder::handle_batch)).
//! A prefetch never faults and changes nothing but timing.

/// Hints that the cache line holding `*value` (its first byte) will be read
/// soon. A no-op on targets without a prefetch instruction.
#[inline(always)]
pub fn line<T: ?Sized>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let ptr = (value as *const T).cast::<i8>();
        // SAFETY: SSE is part of the x86_64 baseline, so the instruction
        // exists; a prefetch reads nothing and never faults, whatever the
        // address, and `ptr` comes from a live reference anyway.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(ptr) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = value;
    }
}

/// Hints every cache line holding any of the first `bytes` bytes of
/// `*value` (all of it if it is shorter), wherever it starts in a line.
#[inline(always)]
pub fn lines_of<T>(value: &T, bytes: usize) {
    let start = (value as *const T).cast::<u8>();
    let len = std::mem::size_of::<T>().min(bytes);
    if len == 0 {
        return;
    }
    // From the line holding the first byte to the line holding the last.
    let first_line = start as usize & !63;
    let last_line = (start as usize + (len - 1)) & !63;
    let lines = (last_line - first_line) / 64 + 1;
    for i in 0..lines {
        let ptr = start.wrapping_sub(start as usize & 63).wrapping_add(i * 64);
        #[cfg(target_arch = "x86_64")]
        {
            use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            // SAFETY: as in `line`: a prefetch never faults; the address
            // lies in a cache line that holds part of `*value`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(ptr.cast::<i8>()) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = ptr;
    }
}

/// Hints the cache lines covering `bytes`, at most `max_lines` of them.
#[inline(always)]
pub fn lines(bytes: &[u8], max_lines: usize) {
    for chunk in bytes.chunks(64).take(max_lines) {
        line(chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefetching_changes_nothing() {
        let data = vec![7u8; 1000];
        line(&data[..]);
        lines(&data, 4);
        lines(&[], 4);
        lines_of(&[0u64; 100], 200);
        lines_of(&(), 64);
        line(&42u64);
        assert!(data.iter().all(|&b| b == 7));
    }
}
