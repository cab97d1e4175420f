//! Software prefetch: a hint that memory will be read soon.
//!
//! With thousands of concurrent calls the per-packet state of a call is
//! rarely in cache, and each packet waits on a few such misses one after
//! another. The recorder looks a few frames ahead and asks for the lines
//! those frames will touch, so that the misses of several packets overlap
//! (see [`Recorder::handle_batch`](crate::recorder::Recorder::handle_batch)).
//! A prefetch never faults and changes nothing but timing.

/// Cache line size assumed (x86_64).
const LINE: usize = 64;

/// Hints the cache line holding the byte at `ptr`.
#[inline(always)]
fn fetch(ptr: *const u8) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: SSE is part of the x86_64 baseline, so the instruction
        // exists; a prefetch reads nothing and never faults, whatever the
        // address (callers pass addresses inside live references anyway).
        unsafe { _mm_prefetch::<_MM_HINT_T0>(ptr.cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ptr;
}

/// Hints every cache line holding any of the `len` bytes from `start`,
/// wherever `start` falls in a line.
#[inline(always)]
fn range(start: *const u8, len: usize) {
    if len == 0 {
        return;
    }
    let offset = start as usize % LINE;
    let lines = (offset + len).div_ceil(LINE);
    let first = start.wrapping_sub(offset);
    for i in 0..lines {
        fetch(first.wrapping_add(i * LINE));
    }
}

/// Hints that the cache line holding `*value` (its first byte) will be read
/// soon. A no-op on targets without a prefetch instruction.
#[inline(always)]
pub fn line<T: ?Sized>(value: &T) {
    fetch((value as *const T).cast::<u8>());
}

/// Hints every cache line holding any of the first `bytes` bytes of
/// `*value` (all of it if it is shorter).
#[inline(always)]
pub fn lines_of<T>(value: &T, bytes: usize) {
    range(
        (value as *const T).cast::<u8>(),
        std::mem::size_of::<T>().min(bytes),
    );
}

/// Hints every cache line holding part of `items`.
#[inline(always)]
pub fn slice<T>(items: &[T]) {
    range(items.as_ptr().cast::<u8>(), std::mem::size_of_val(items));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefetching_changes_nothing() {
        let data = vec![7u8; 1000];
        line(&data[..]);
        slice(&data[3..700]);
        slice::<u8>(&[]);
        lines_of(&[0u64; 100], 200);
        lines_of(&(), 64);
        line(&42u64);
        assert!(data.iter().all(|&b| b == 7));
    }
}
