//! Quarterly enforcement statistics (DESIGN §9): reports computed from the store per unit and
//! quarter, versioned when late data changes them.

pub mod compute;
pub mod disclose;
pub mod intake;
pub mod model;
pub mod status;
pub mod submit;
pub mod supervision;

pub use model::{Detail, Origin, QuarterlyReport, ReportDocument, Summary};
