//! The canonical record ([`Case`]) and the identifiers and values it is built from: unified
//! social credit codes (GB 32100) and resident identity numbers (GB 11643) with their check
//! characters, division codes, money in fen, quarters, the code lists of the record's fields,
//! and [`Draft`], which turns mapped source fields into a `Case` or names every field at fault.
//!
//! Pure values, no I/O: the gateway (`xianjie`) re-exports this crate as `xianjie::model`, and
//! the sample generator and the platform simulator use the identifiers without the gateway.

mod ids;
mod money;
mod quarter;

pub use ids::{DivisionCode, IdError, ResidentId, Uscc, mask_id};
pub use money::{Fen, MoneyError, MoneyUnit};
pub use quarter::{Quarter, QuarterError};
mod case;
mod codes;
mod draft;
mod facts;

pub use case::{
    Case, CaseId, DocumentRef, Inspection, License, Party, PartyId, Penalty, Source, Transfer,
    Withheld, birth_date_of, case_key, is_minor_on,
};
pub use codes::{
    Action, CaseStatus, CodeError, Disclosure, IdType, InspectionResult, LicenseCategory,
    LicenseState, PartyKind, PenaltyKind, PoliceDecision, TransferStatus,
};
pub use draft::{Draft, DraftContext, FieldError, Target, TargetKind, iso_date};
pub use facts::{Amounts, Harm, Moment, Share};
