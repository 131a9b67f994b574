//! xianjie (衔接) — a secure data-sharing gateway for administrative-enforcement records.
//!
//! Module map (one concern each):
//! - [`model`]: the canonical case record and its parsed identifiers (USCC, resident ID, money, quarter).
//! - [`ingest`]: adapters, decoders, field mapping, validation and quarantine of source records.
//! - [`sample`]: realistic sample inputs for every shipped adapter.
//! - `store`: the only module that touches sled.
//! - [`keys`]: the encrypted keystore and secret types; [`audit`]: the signed, verifiable audit log.
//! - `config`, `admin`, `gateway`, `cli`: configuration, admin socket, the serve process, the command line.
//! - [`xml_out`]: the one XML writer, which refuses characters XML 1.0 forbids.

pub mod admin;
pub mod api;
pub mod audit;
pub mod cli;
pub mod config;
pub mod gateway;
pub mod ingest;
pub mod keys;
pub mod push;
pub mod reports;
pub mod store;

// Pieces the tools share with the gateway, in crates of their own (crates/), under the paths
// the gateway has always used.
pub use xianjie_model as model;
pub use xianjie_net::{shutdown, tls};
pub use xianjie_sample as sample;
pub use xianjie_xml as xml_out;

#[cfg(test)]
use xianjie_proptest as proptest_support;
