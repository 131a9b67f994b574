//! Ingest: adapter definitions, decoders, field mapping, validation and quarantine, the documents
//! records attach, and the file transport (inbox → done/ or failed/).

pub mod adapter;
pub mod decode;
pub mod documents;
pub mod golden;
pub mod limits;
mod mapping;
mod run;

pub use adapter::{Adapter, AdapterError, FieldMap, FieldSource, Transport, load, load_all};
pub use limits::{LimitError, Limits};
pub use run::{
    FileOutcome, IngestError, Judge, PROCESSING, Progress, RetryOutcome, RunOptions, Summary,
    inbox_dir, ingest_file, ingest_path, retry_quarantined, scan_inbox, set_aside_interrupted,
};
