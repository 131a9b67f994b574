//! Waiting for another thread from code that may run on an async runtime's worker.
//!
//! Store reads on PostgreSQL and shared audit appends wait for other threads (the database
//! driver's runtime, the audit writer). Most of their callers are blocking-pool threads, but a
//! point request on PostgreSQL runs on a runtime worker, because its reads are usually answered
//! from the instance's cache. When such a request must wait after all (a cache miss, a cache
//! check), the worker first hands its other tasks to another thread, so that one slow read never
//! holds up every connection the worker serves.

use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs `wait` (which blocks the thread) so that no async task waits with it: on a
/// multi-threaded runtime's worker, through [`tokio::task::block_in_place`]; anywhere else
/// (a blocking-pool thread, a plain thread, a single-threaded runtime, where handing over is
/// impossible) directly.
pub fn wait<T>(wait: impl FnOnce() -> T) -> T {
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(wait),
        _ => wait(),
    }
}
