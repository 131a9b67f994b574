//! Ingest: adapter definitions, decoders, field mapping, validation and quarantine.

pub mod decode;
