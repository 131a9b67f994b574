//! Tests of the platform's side (the validator and the simulator, crate `xianjie-sim`) that
//! need the gateway's pieces: the golden cases and the package writer. They live here, not in
//! that crate, because the crate cannot depend on the gateway. Also the shared builders of
//! packages for the tests of [`super::package`].

use chrono::{DateTime, Utc};

pub(super) use crate::ingest::golden::golden_cases;
use crate::model::{Case, Uscc};
use crate::push::package::{self, Header, Op, Record};

mod sim;
mod validate;

/// A package header with fixed values and the id `package_id`.
pub(super) fn header(package_id: &str) -> Header {
    Header {
        package_id: package_id.into(),
        source_division: "320102".into(),
        sending_unit: Uscc::parse("91350200776049653A").unwrap(),
        created_at: DateTime::parse_from_rfc3339("2026-11-27T08:00:00Z")
            .unwrap()
            .with_timezone(&Utc),
    }
}

/// Each case as an upsert record.
pub(super) fn upserts<'a>(cases: impl IntoIterator<Item = &'a Case>) -> Vec<Record<'a>> {
    cases
        .into_iter()
        .map(|case| Record {
            op: Op::Upsert,
            case,
        })
        .collect()
}

/// The golden cases `package::build` can send.
pub(super) fn pushable(cases: &[Case]) -> Vec<&Case> {
    cases
        .iter()
        .filter(|c| {
            package::build(
                &header("P"),
                &[Record {
                    op: Op::Upsert,
                    case: c,
                }],
            )
            .is_ok()
        })
        .collect()
}
