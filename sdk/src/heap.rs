//! The Wasm heap: power-of-two size classes, one free list per class, new
//! blocks cut from the top of memory. A freed block goes to its class's
//! list and is reused for the next request of that class, so a page that
//! keeps making events of similar sizes (queue items, request bodies, the
//! persisted queue) settles at its peak use and grows no further. Blocks
//! are never split or merged: at most half of a block is unused, and
//! memory freed in one class serves only that class (the SDK's sizes are
//! steady, so that is the trade for a heap of ~300 bytes of Wasm where the
//! TLSF allocator it replaces took 1.3 KB).
//!
//! The decisions (class, reuse, growth) are [`Heap`]'s, over a [`Memory`]
//! that natively is a byte vector in the tests; in the browser it is the
//! module's linear memory, the only place with `unsafe` ([`Linear`]).

/// The smallest block: 16 bytes (2^4), which is also every block's alignment.
const MIN_SHIFT: u32 = 4;
/// Largest alignment served: every block starts on a multiple of 16.
const MAX_ALIGN: usize = 1 << MIN_SHIFT;
/// Classes 16 B … 2 GiB.
const CLASSES: usize = 28;
/// A Wasm page.
const PAGE: usize = 64 * 1024;

/// The class of a request of `size` bytes aligned to `align` (`None`: too
/// large, or aligned beyond 16 bytes, which no SDK type is).
pub fn class_of(size: usize, align: usize) -> Option<usize> {
    if align > MAX_ALIGN {
        return None;
    }
    let size = size.max(1 << MIN_SHIFT);
    // ceil(log2(size))
    let shift = usize::BITS - (size - 1).leading_zeros();
    let class = (shift - MIN_SHIFT) as usize;
    (class < CLASSES).then_some(class)
}

/// Bytes in a block of `class`.
pub fn block_size(class: usize) -> usize {
    1 << (class as u32 + MIN_SHIFT)
}

/// Where the heap lives: memory that grows at its end, and a word at an address.
pub trait Memory {
    /// Grow by at least `bytes`: the new bytes' `(start, end)`.
    fn grow(&mut self, bytes: usize) -> Option<(usize, usize)>;
    fn read(&self, at: usize) -> usize;
    fn write(&mut self, at: usize, value: usize);
}

/// Free lists and the unused top of memory. Address 0 is "none" (the
/// stack and data are there in the Wasm, never the heap).
pub struct Heap {
    /// Each class's first free block; each free block holds the next one's address.
    free: [usize; CLASSES],
    /// The unused bytes at the top: `[top, end)`.
    top: usize,
    end: usize,
}

impl Heap {
    pub const fn new() -> Heap {
        Heap {
            free: [0; CLASSES],
            top: 0,
            end: 0,
        }
    }

    /// A block of `class`: a freed one if there is one, else cut from the top
    /// (grown as needed). `None` when memory cannot grow.
    pub fn alloc(&mut self, m: &mut impl Memory, class: usize) -> Option<usize> {
        let head = self.free[class];
        if head != 0 {
            self.free[class] = m.read(head);
            return Some(head);
        }
        let size = block_size(class);
        if self.end - self.top < size {
            let (start, end) = m.grow(size.max(PAGE))?;
            if start != self.end {
                // Not contiguous with what is left (the first growth): start over there.
                self.top = start.next_multiple_of(MAX_ALIGN);
            }
            self.end = end;
            if self.end - self.top < size {
                return None;
            }
        }
        let block = self.top;
        self.top += size;
        Some(block)
    }

    /// Give a block of `class` back.
    pub fn free(&mut self, m: &mut impl Memory, class: usize, block: usize) {
        m.write(block, self.free[class]);
        self.free[class] = block;
    }
}

impl Default for Heap {
    fn default() -> Self {
        Heap::new()
    }
}

/// The module's linear memory, grown with `memory.grow`.
#[cfg(target_arch = "wasm32")]
struct Linear;

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
impl Memory for Linear {
    fn grow(&mut self, bytes: usize) -> Option<(usize, usize)> {
        let pages = bytes.div_ceil(PAGE);
        let old = core::arch::wasm32::memory_grow(0, pages);
        (old != usize::MAX).then(|| (old * PAGE, (old + pages) * PAGE))
    }

    fn read(&self, at: usize) -> usize {
        // SAFETY: `at` is a free block of the heap (≥ 16 bytes, 16-aligned),
        // whose first word holds the next free block's address.
        unsafe { *(at as *const usize) }
    }

    fn write(&mut self, at: usize, value: usize) {
        // SAFETY: as in `read`; the block was freed, so nothing else uses it.
        unsafe { *(at as *mut usize) = value }
    }
}

/// The global allocator over [`Heap`] and the linear memory.
#[cfg(target_arch = "wasm32")]
pub struct Allocator(core::cell::UnsafeCell<Heap>);

#[cfg(target_arch = "wasm32")]
impl Allocator {
    pub const fn new() -> Allocator {
        Allocator(core::cell::UnsafeCell::new(Heap::new()))
    }
}

#[cfg(target_arch = "wasm32")]
impl Default for Allocator {
    fn default() -> Self {
        Allocator::new()
    }
}

// SAFETY: without the `atomics` target feature (checked in `global.rs`) the
// module has one thread, so the heap is never reached from two at once.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
unsafe impl Sync for Allocator {}

// SAFETY: blocks are 16-aligned (`class_of` refuses larger alignments) and
// at least `size` bytes; a block is handed out once until it is freed. The
// allocator never allocates, so the heap is never borrowed twice.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
unsafe impl core::alloc::GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: core::alloc::Layout) -> *mut u8 {
        let heap = unsafe { &mut *self.0.get() };
        class_of(layout.size(), layout.align())
            .and_then(|c| heap.alloc(&mut Linear, c))
            .map_or(core::ptr::null_mut(), |a| a as *mut u8)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: core::alloc::Layout) {
        let heap = unsafe { &mut *self.0.get() };
        if let Some(c) = class_of(layout.size(), layout.align()) {
            heap.free(&mut Linear, c, ptr as usize);
        }
    }

    unsafe fn realloc(
        &self,
        ptr: *mut u8,
        layout: core::alloc::Layout,
        new_size: usize,
    ) -> *mut u8 {
        let class = class_of(layout.size(), layout.align());
        if class.is_some() && class == class_of(new_size, layout.align()) {
            return ptr; // still fits its block
        }
        let new = unsafe {
            self.alloc(core::alloc::Layout::from_size_align_unchecked(
                new_size,
                layout.align(),
            ))
        };
        if !new.is_null() {
            unsafe {
                core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;

    const WORD: usize = core::mem::size_of::<usize>();

    /// Memory as a byte vector that starts at address 64 (0 is "none").
    struct Bytes {
        base: usize,
        bytes: Vec<u8>,
        /// Most bytes it may grow to.
        limit: usize,
    }

    impl Bytes {
        fn new(limit: usize) -> Bytes {
            Bytes {
                base: 64,
                bytes: Vec::new(),
                limit,
            }
        }
    }

    impl Memory for Bytes {
        fn grow(&mut self, bytes: usize) -> Option<(usize, usize)> {
            let grown = bytes.div_ceil(PAGE) * PAGE;
            if self.bytes.len() + grown > self.limit {
                return None;
            }
            let start = self.base + self.bytes.len();
            self.bytes.resize(self.bytes.len() + grown, 0);
            Some((start, start + grown))
        }
        fn read(&self, at: usize) -> usize {
            let i = at - self.base;
            let mut w = [0; WORD];
            w.copy_from_slice(&self.bytes[i..i + WORD]);
            usize::from_le_bytes(w)
        }
        fn write(&mut self, at: usize, value: usize) {
            let i = at - self.base;
            self.bytes[i..i + WORD].copy_from_slice(&value.to_le_bytes());
        }
    }

    #[test]
    fn sizes_round_up_to_a_power_of_two_of_at_least_16_bytes() {
        assert_eq!(class_of(0, 1), Some(0));
        assert_eq!(class_of(16, 8), Some(0));
        assert_eq!(class_of(17, 8), Some(1));
        assert_eq!(class_of(32, 8), Some(1));
        assert_eq!(class_of(33, 1), Some(2));
        assert_eq!(block_size(class_of(32 * 1024 + 1, 1).unwrap()), 64 * 1024);
        for size in [1, 15, 16, 17, 100, 4096, 4097, 1 << 20] {
            let c = class_of(size, 8).unwrap();
            assert!(block_size(c) >= size, "{size}");
            assert!(
                c == 0 || block_size(c - 1) < size,
                "{size}: the smallest class that fits"
            );
        }
        assert_eq!(class_of(8, 32), None, "over-aligned");
        assert_eq!(class_of(usize::MAX / 2, 1), None, "too large");
    }

    #[test]
    fn a_freed_block_is_reused_by_its_class_only() {
        let (mut heap, mut m) = (Heap::new(), Bytes::new(1 << 20));
        let a = heap.alloc(&mut m, 1).unwrap();
        let b = heap.alloc(&mut m, 1).unwrap();
        assert_eq!(b, a + 32, "cut one after another");
        assert_eq!(a % MAX_ALIGN, 0);
        heap.free(&mut m, 1, a);
        let c = heap.alloc(&mut m, 2).unwrap();
        assert_ne!(c, a, "another class does not take it");
        assert_eq!(heap.alloc(&mut m, 1), Some(a), "its class does");
        heap.free(&mut m, 1, b);
        heap.free(&mut m, 1, a);
        assert_eq!(heap.alloc(&mut m, 1), Some(a), "last freed, first reused");
        assert_eq!(heap.alloc(&mut m, 1), Some(b));
    }

    #[test]
    fn blocks_never_overlap_and_memory_grows_only_as_needed() {
        let (mut heap, mut m) = (Heap::new(), Bytes::new(8 << 20));
        let mut live: Vec<(usize, usize)> = Vec::new();
        // A steady load: make and free blocks of mixed sizes, as events do.
        for round in 0..2000usize {
            let class = round * 7 % 9;
            let a = heap.alloc(&mut m, class).unwrap();
            let size = block_size(class);
            assert!(
                live.iter().all(|&(b, n)| a + size <= b || b + n <= a),
                "block {a} overlaps a live one"
            );
            live.push((a, size));
            if live.len() > 20 {
                let (b, n) = live.remove(round % 20);
                heap.free(&mut m, class_of(n, 1).unwrap(), b);
            }
        }
        // At most 21 live blocks of at most 4 KB each: the reuse keeps the
        // heap within a few pages, not 2000 blocks' worth.
        assert!(m.bytes.len() <= 4 * PAGE, "grew to {} bytes", m.bytes.len());
    }

    #[test]
    fn a_block_larger_than_a_page_grows_memory_by_enough_and_failure_is_none() {
        let (mut heap, mut m) = (Heap::new(), Bytes::new(4 * PAGE));
        let big = class_of(2 * PAGE + 1, 8).unwrap();
        assert_eq!(block_size(big), 4 * PAGE);
        let a = heap.alloc(&mut m, big).unwrap();
        assert_eq!(m.bytes.len(), 4 * PAGE);
        assert_eq!(heap.alloc(&mut m, 0), None, "memory cannot grow further");
        heap.free(&mut m, big, a);
        assert_eq!(heap.alloc(&mut m, big), Some(a));
    }
}
