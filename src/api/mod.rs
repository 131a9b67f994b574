//! The port API for the procuratorate (DESIGN §7): HTTPS on rustls, OAuth2 client credentials with
//! EdDSA JWTs, ports opened per client, cases with filters and cursors, the change feed. Every
//! data response is audited before it is sent.

pub mod jwt;
pub mod metrics;
pub mod openapi;
pub mod problem;
pub mod query;
mod routes;
mod server;
pub mod xml;

pub use server::{Peer, media_type, serve, serve_tls};
