//! The port API for the procuratorate: HTTPS routes, tokens, ports, problems.

pub mod jwt;
