//! xianjie (衔接) — a secure data-sharing gateway for administrative-enforcement records.
//!
//! Module map (one concern each):
//! - [`ingest`]: adapters, decoders, field mapping, validation and quarantine of source records,
//!   and the documents records attach.
//! - `store`: the only module that touches sled.
//! - [`keys`]: the encrypted keystore and its custody; [`audit`]: the signed, verifiable audit log.
//! - [`api`]: the port API; [`push`]: delivery to the provincial platform; [`reports`]: quarterly
//!   statistics; [`supervision`]: rules that recognise cases meeting a prosecution threshold.
//! - `config`, `admin`, `gateway`, `cli`: configuration, admin socket, the serve process, the command line.
//!
//! From crates of their own (`crates/`), which the tools share and which never depend on the
//! gateway: [`model`] the canonical case record and its identifiers (`xianjie-model`);
//! [`xml_out`] the one XML writer (`xianjie-xml`); [`tls`], [`shutdown`], `keys::secret` and the
//! HTTPS serving loop behind [`api`] (`xianjie-net`); `push::sim`, `push::validate` and
//! `push::receipt`, the platform simulator (`xianjie-sim`); [`sample`], sample inputs for every
//! shipped adapter (`xianjie-sample`).

pub mod admin;
pub mod api;
pub mod audit;
pub mod blocking;
pub mod cli;
pub mod config;
pub mod console;
pub mod gateway;
pub mod ingest;
pub mod keys;
pub mod push;
pub mod reports;
pub mod store;
pub mod supervision;

// Pieces the tools share with the gateway, in crates of their own (crates/), under the paths
// the gateway has always used.
pub use xianjie_model as model;
pub use xianjie_net::{shutdown, tls};
pub use xianjie_sample as sample;
pub use xianjie_xml as xml_out;

#[cfg(test)]
use xianjie_proptest as proptest_support;
