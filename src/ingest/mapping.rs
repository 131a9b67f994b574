//! Field mapping: applies an adapter's declarative transforms to a raw record and parses the result
//! into a [`Case`], attributing every problem to its target field and source column.

use chrono::{DateTime, NaiveDate, Utc};

use super::adapter::{Adapter, FieldMap, FieldSource};
use super::decode::RawRecord;
use crate::model::{Case, Draft, DraftContext, Fen, Target, TargetKind};
use crate::store::QuarantineReason;

/// Applies the transforms after reading (trim is done by the caller): default, split, code table,
/// date format, money unit. Returns the canonical values, or why the value cannot be used.
pub(super) fn transform(map: &FieldMap, value: String) -> Result<Vec<String>, String> {
    let value = if value.is_empty() {
        map.default.clone().unwrap_or_default()
    } else {
        value
    };
    if value.is_empty() {
        return Ok(Vec::new());
    }
    let parts: Vec<String> = match &map.split {
        Some(sep) => value
            .split(sep.as_str())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        None => vec![value],
    };
    parts.into_iter().map(|p| one(map, p)).collect()
}

fn one(map: &FieldMap, v: String) -> Result<String, String> {
    let v = match &map.codes {
        Some(codes) => match codes.get(&v) {
            Some(c) => c.clone(),
            None => {
                let mut known: Vec<&str> = codes.keys().map(String::as_str).collect();
                known.sort_unstable();
                return Err(format!(
                    "'{v}' is not in the code table (known: {})",
                    known.join(", ")
                ));
            }
        },
        None => v,
    };
    match map.target.kind() {
        TargetKind::Date => date(&v, &map.dates),
        TargetKind::Moment => moment(&v, &map.dates),
        TargetKind::Money => {
            let unit = map.money.unwrap_or(crate::model::MoneyUnit::Fen);
            Fen::parse(&v, unit)
                .map(|f| f.get().to_string())
                .map_err(|e| e.to_string())
        }
        _ => Ok(v),
    }
}

/// Parses a date in one of the formats (then ISO `YYYY-MM-DD` and `YYYY-MM-DDTHH:MM:SS`, what
/// spreadsheet date cells decode to) and returns it as `YYYY-MM-DD`.
fn date(v: &str, formats: &[String]) -> Result<String, String> {
    let mut impossible = false;
    for f in formats.iter().map(String::as_str).chain(["%Y-%m-%d"]) {
        // Already in the canonical form: it is its own result (see `iso_date`).
        if f == "%Y-%m-%d" && crate::model::iso_date(v).is_some() {
            return Ok(v.to_string());
        }
        match NaiveDate::parse_from_str(v, f) {
            Ok(d) => return Ok(d.format("%Y-%m-%d").to_string()),
            Err(e) if e.kind() == chrono::format::ParseErrorKind::OutOfRange => impossible = true,
            Err(_) => {}
        }
    }
    if let Ok(dt) = chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S") {
        return Ok(dt.date().format("%Y-%m-%d").to_string());
    }
    if impossible {
        Err(format!("'{v}' is not a real calendar date"))
    } else {
        Err(format!(
            "'{v}' does not match the date format(s) {}",
            formats.join(", ")
        ))
    }
}

/// Parses a moment of the transfer timeline in one of the formats: with a time (`%H`, `%M`) it
/// becomes `YYYY-MM-DDTHH:MM:SS`, with a day only `YYYY-MM-DD` (a day is all the source knows).
/// ISO forms of both are always accepted.
fn moment(v: &str, formats: &[String]) -> Result<String, String> {
    for f in formats {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(v, f) {
            return Ok(t.format("%Y-%m-%dT%H:%M:%S").to_string());
        }
    }
    if let Ok(m) = crate::model::Moment::parse(v) {
        return Ok(m.to_string());
    }
    let days: Vec<String> = formats
        .iter()
        .filter(|f| !f.contains("%H"))
        .cloned()
        .collect();
    date(v, &days).map_err(|_| {
        format!(
            "'{v}' does not match the date or time format(s) {}",
            formats.join(", ")
        )
    })
}

impl Adapter {
    /// The source column names a target is read from, for messages.
    pub fn columns_of(&self, target: Target) -> Option<String> {
        let f = self.fields.iter().find(|f| f.target == target)?;
        let names = |ix: &[usize]| {
            ix.iter()
                .filter_map(|i| self.columns.get(*i))
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(" / ")
        };
        match &f.source {
            FieldSource::Columns(ix) | FieldSource::Join(ix, _) => Some(names(ix)),
            FieldSource::Const(_) => None,
        }
    }

    fn reason(&self, target: Target, reason: String) -> QuarantineReason {
        QuarantineReason {
            field: target.path().to_string(),
            column: self.columns_of(target),
            reason,
        }
    }

    /// A field's value as read from the record's columns (before transforms).
    fn read(&self, f: &FieldMap, rec: &RawRecord) -> String {
        let get = |i: &usize| rec.value(*i).unwrap_or("");
        let tidy = |s: &str| {
            if f.trim {
                s.trim().to_string()
            } else {
                s.to_string()
            }
        };
        match &f.source {
            FieldSource::Columns(ix) => ix
                .iter()
                .map(|i| tidy(get(i)))
                .find(|v| !v.is_empty())
                .unwrap_or_default(),
            FieldSource::Join(ix, sep) => ix
                .iter()
                .map(|i| tidy(get(i)))
                .filter(|v| !v.is_empty())
                .collect::<Vec<_>>()
                .join(sep),
            FieldSource::Const(c) => c.clone(),
        }
    }

    /// The file names the record's `documents` field gives (after its transforms), or why they
    /// cannot be read; none when the adapter does not map `documents`.
    pub(crate) fn document_names(&self, rec: &RawRecord) -> Result<Vec<String>, QuarantineReason> {
        match self.fields.iter().find(|f| f.target == Target::Documents) {
            None => Ok(Vec::new()),
            Some(f) => {
                transform(f, self.read(f, rec)).map_err(|e| self.reason(Target::Documents, e))
            }
        }
    }

    /// Whether the record names documents: their files may have changed while the record did
    /// not, so such a record is never taken as unchanged without reading them.
    pub(crate) fn names_documents(&self, rec: &RawRecord) -> bool {
        self.document_names(rec).map_or(true, |n| !n.is_empty())
    }

    /// A problem with the record's documents, as quarantine shows it.
    pub(crate) fn document_reason(&self, reason: String) -> QuarantineReason {
        self.reason(Target::Documents, reason)
    }

    /// The store key the record would get if it maps at all: unit code and case number after
    /// their transforms, unvalidated. Ingest uses it only to look for an identical earlier record.
    pub(crate) fn key_of(&self, rec: &RawRecord) -> Option<Vec<u8>> {
        let one = |t: Target| -> Option<String> {
            let f = self.fields.iter().find(|f| f.target == t)?;
            transform(f, self.read(f, rec)).ok()?.into_iter().next()
        };
        let mut key = one(Target::UnitCode)?.into_bytes();
        key.push(0);
        key.extend_from_slice(one(Target::CaseId)?.as_bytes());
        Some(key)
    }

    /// A digest of the record's values under this adapter's [`Adapter::fingerprint`]: equal digests
    /// mean mapping gives equal cases, so a stored case with this digest need not be mapped again.
    pub(crate) fn raw_digest(&self, rec: &RawRecord) -> [u8; 16] {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(self.fingerprint);
        for v in rec.values() {
            match v {
                None => h.update([0xFF]),
                Some(s) => {
                    h.update((s.len() as u64).to_le_bytes());
                    h.update(s.as_bytes());
                }
            }
        }
        let full: [u8; 32] = h.finalize().into();
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        // All zeros means "no raw record" in the store; a real digest never takes that value.
        if out == [0; 16] {
            out[15] = 1;
        }
        out
    }

    /// Maps and validates one record. `file` names the source in the case's provenance.
    pub fn map_record(
        &self,
        rec: &RawRecord,
        file: &str,
        now: DateTime<Utc>,
        today: NaiveDate,
    ) -> Result<Case, Vec<QuarantineReason>> {
        let mut draft = Draft::new();
        let mut reasons = Vec::new();
        for f in &self.fields {
            match transform(f, self.read(f, rec)) {
                Ok(values) => draft.set(f.target, values),
                Err(e) => reasons.push(self.reason(f.target, e)),
            }
        }
        let unit_name = draft
            .get(Target::UnitCode)
            .and_then(|c| self.units.iter().find(|(k, _)| k.as_str() == c))
            .map(|(_, n)| n.as_str());
        let ctx = DraftContext {
            adapter: &self.name,
            system: &self.system,
            file,
            location: rec.location.to_string(),
            now,
            today,
            default_unit_name: unit_name,
        };
        let result = draft.into_case(&ctx);
        // Report transform problems and parse problems together, skipping parse complaints about
        // fields whose transform already failed (they are empty because of it).
        match result {
            Ok(case) if reasons.is_empty() => {
                if self.units.contains_key(&case.unit_code) {
                    Ok(case)
                } else {
                    Err(vec![self.reason(
                        Target::UnitCode,
                        format!(
                            "unit {} is not covered by adapter {} (it covers {} unit(s); add it to [[units]] in adapter.toml if it should be)",
                            case.unit_code,
                            self.name,
                            self.units.len()
                        ),
                    )])
                }
            }
            Ok(_) => Err(reasons),
            Err(errors) => {
                for e in errors {
                    if !reasons.iter().any(|r| r.field == e.target.path()) {
                        reasons.push(self.reason(e.target, e.reason));
                    }
                }
                Err(reasons)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MoneyUnit;

    fn map(target: Target) -> FieldMap {
        FieldMap {
            target,
            source: FieldSource::Const(String::new()),
            trim: true,
            default: None,
            split: None,
            codes: None,
            dates: vec!["%Y-%m-%d".into()],
            money: None,
        }
    }

    #[test]
    fn default_applies_to_empty_values_and_goes_through_codes() {
        let mut m = map(Target::Major);
        m.default = Some("否".into());
        m.codes = Some(
            [
                ("是".to_string(), "true".to_string()),
                ("否".into(), "false".into()),
            ]
            .into(),
        );
        assert_eq!(transform(&m, String::new()).unwrap(), vec!["false"]);
        assert_eq!(transform(&m, "是".into()).unwrap(), vec!["true"]);
        let e = transform(&m, "可能".into()).unwrap_err();
        assert_eq!(e, "'可能' is not in the code table (known: 否, 是)");
    }

    #[test]
    fn split_then_codes_per_element() {
        let mut m = map(Target::PenaltyKinds);
        m.split = Some("、".into());
        m.codes = Some(
            [
                ("警告".to_string(), "warning".to_string()),
                ("罚款".into(), "fine".into()),
            ]
            .into(),
        );
        assert_eq!(
            transform(&m, "警告、 罚款、".into()).unwrap(),
            vec!["warning", "fine"]
        );
    }

    #[test]
    fn moments_keep_the_time_when_the_source_has_one() {
        let mut m = map(Target::TransferApprovedAt);
        m.dates = vec!["%Y-%m-%d %H:%M".into(), "%Y/%m/%d".into()];
        let t = |v: &str| transform(&m, v.into());
        assert_eq!(t("2025-03-04 15:20").unwrap(), vec!["2025-03-04T15:20:00"]);
        assert_eq!(t("2025/3/4").unwrap(), vec!["2025-03-04"]);
        // ISO forms, as spreadsheet cells decode, always pass.
        assert_eq!(
            t("2025-03-04T15:20:00").unwrap(),
            vec!["2025-03-04T15:20:00"]
        );
        assert_eq!(t("2025-03-04").unwrap(), vec!["2025-03-04"]);
        let e = t("下午三点").unwrap_err();
        assert!(
            e.contains("date or time format(s) %Y-%m-%d %H:%M, %Y/%m/%d"),
            "{e}"
        );
        assert!(t("2025-02-30 10:00").is_err());
    }

    #[test]
    fn dates_in_declared_formats_become_iso() {
        let mut m = map(Target::DecidedOn);
        m.dates = vec!["%Y/%m/%d".into(), "%Y%m%d".into()];
        assert_eq!(
            transform(&m, "2025/3/7".into()).unwrap(),
            vec!["2025-03-07"]
        );
        assert_eq!(
            transform(&m, "20250307".into()).unwrap(),
            vec!["2025-03-07"]
        );
        // Spreadsheet date cells decode to ISO and are always accepted.
        assert_eq!(
            transform(&m, "2025-03-07T00:00:00".into()).unwrap(),
            vec!["2025-03-07"]
        );
        assert_eq!(
            transform(&m, "2025/02/30".into()).unwrap_err(),
            "'2025/02/30' is not a real calendar date"
        );
        assert_eq!(
            transform(&m, "7 March".into()).unwrap_err(),
            "'7 March' does not match the date format(s) %Y/%m/%d, %Y%m%d"
        );
    }

    #[test]
    fn canonical_dates_pass_as_they_are_only_under_the_iso_format() {
        let mut m = map(Target::DecidedOn);
        m.dates = vec!["%Y-%m-%d".into()];
        assert_eq!(
            transform(&m, "2025-03-07".into()).unwrap(),
            vec!["2025-03-07"]
        );
        assert_eq!(
            transform(&m, "2025-3-7".into()).unwrap(),
            vec!["2025-03-07"]
        );
        assert_eq!(
            transform(&m, "2025-02-30".into()).unwrap_err(),
            "'2025-02-30' is not a real calendar date"
        );
        // A declared format read first wins, even over text that looks canonical.
        m.dates = vec!["%Y-%d-%m".into()];
        assert_eq!(
            transform(&m, "2025-03-07".into()).unwrap(),
            vec!["2025-07-03"]
        );
        // Its failure falls through to the ISO form.
        assert_eq!(
            transform(&m, "2025-03-17".into()).unwrap(),
            vec!["2025-03-17"]
        );
    }

    #[test]
    fn money_units_convert_exactly_to_fen() {
        let mut m = map(Target::PenaltyFine);
        m.money = Some(MoneyUnit::Wanyuan);
        assert_eq!(transform(&m, "0.2".into()).unwrap(), vec!["200000"]);
        assert!(
            transform(&m, "0.1234567".into())
                .unwrap_err()
                .contains("at most 6")
        );
        m.money = Some(MoneyUnit::Yuan);
        assert_eq!(transform(&m, "1234.5".into()).unwrap(), vec!["123450"]);
    }
}
