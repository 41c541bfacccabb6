//! The soak at a size for CI: generated scenarios with random faults and restarts through one long-lived
//! reference orchestrator. Every scenario passes, the orchestrator is left with no call open and no more
//! than it may remember, and the heap stays flat once its memory of finished calls is full.
//! `cargo xtask soak` runs the same at full size (10,000 calls).
//!
//! A test binary of its own: the counting allocator would slow every other test.

use std::alloc::System;

use ringback::soak::{Options, soak};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Live heap bytes (a reallocation's growth counts as allocated, its shrinking as deallocated).
fn live() -> u64 {
    let s = GLOBAL.stats();
    u64::try_from(s.bytes_allocated.saturating_sub(s.bytes_deallocated)).unwrap_or(u64::MAX)
}

#[test]
fn a_thousand_calls_with_random_faults_break_no_rule_and_leave_the_heap_flat() {
    let options =
        Options { calls: 1_000, seed: 1, max_finished_calls: 100, heap: Some(live), progress: None };
    let soak = soak(&options).expect("the soak runs");
    let failures: Vec<String> =
        soak.failures.iter().map(|f| format!("scenario {}: {}\n{}", f.index, f.failure, f.toml)).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(soak.calls >= 1_000, "{} calls", soak.calls);
    // The soak's draw is no lucky one: faults and restarts both happen, many times.
    assert!(soak.with_faults >= 20 && soak.with_restart >= 10, "{soak:?}");
    assert_eq!(soak.open_calls, 0, "calls the orchestrator never saw end");
    // A remembered call is its record, its end marker and its sessions' keys.
    assert!(soak.store_keys <= 4 * soak.max_finished_calls, "{} store keys", soak.store_keys);
    let growth = soak.heap_growth().expect("enough samples after the warm-up");
    assert!(growth.is_flat(), "the heap grew: {growth:?}");
}
