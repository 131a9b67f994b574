//! The audit log: append-only canonical-JSON entries that are the leaves of an RFC 6962 Merkle
//! tree, signed checkpoints (C2SP tlog-checkpoint as signed notes), proofs, export and offline
//! verification.

pub mod entry;
pub mod log;
pub mod merkle;
pub mod note;
mod shared;
pub mod verify;

pub use entry::{Actor, Entry, Event};
pub use log::{AuditError, AuditLog, Fsync, Pending};
pub use shared::SEQUENCE_EVERY;
pub use verify::{Verified, VerifyError, verify_export};
