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
        line(&42u64);
        assert!(data.iter().all(|&b| b == 7));
    }
}
