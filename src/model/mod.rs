//! The canonical record (`Case`) and the identifiers and values it is built from.

mod ids;
mod money;
mod quarter;

pub use ids::{DivisionCode, IdError, ResidentId, Uscc, mask_id};
pub use money::{Fen, MoneyError, MoneyUnit};
pub use quarter::{Quarter, QuarterError};
mod case;
mod codes;
mod draft;

pub use case::{
    Case, CaseId, DocumentRef, Inspection, License, Party, PartyId, Penalty, Source, Transfer,
    case_key,
};
pub use codes::{
    Action, CaseStatus, CodeError, Disclosure, IdType, InspectionResult, LicenseCategory,
    PartyKind, PenaltyKind, TransferStatus,
};
pub use draft::{Draft, DraftContext, FieldError, Target, TargetKind};
