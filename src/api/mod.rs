//! The port API for the procuratorate: HTTPS routes, tokens, ports, problems.

pub mod jwt;
pub mod problem;
pub mod query;
