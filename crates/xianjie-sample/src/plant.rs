//! Planted leads: cases the generator makes, on purpose and in a number known from the options, to
//! raise a supervision lead in the gateway — a case meeting a starter rule (`rules/`) that was
//! never transferred (有案不移), a transfer that breaks a 310号令 deadline, a major decision
//! without legal review. Everything else stays below every starter rule's thresholds or is
//! transferred, with every deadline met. What was planted is recorded from the generator's own
//! choices (the manifest), not by running the rules, so the gateway's leads can be checked
//! against it.

use std::fmt::Write as _;
use std::path::Path;

use super::SampleError;

/// A case planted to raise one lead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planted {
    /// The adapter whose file holds it.
    pub adapter: String,
    /// The enforcement unit's USCC.
    pub unit_code: String,
    /// The case id within the unit.
    pub case_id: String,
    /// The lead it raises, keyed as the gateway keys leads: `rule:<rule id>`, `310:<step>` or
    /// `major-without-review`.
    pub lead: String,
    /// What makes it one, for a person: the fact and its value.
    pub why: String,
}

/// The lead of a major decision without legal review.
pub(crate) const MAJOR: &str = "major-without-review";

/// The lead keys of the 310号令 deadlines, as the gateway names them.
pub(crate) const DEADLINES: [&str; 4] = [
    "310:transfer",
    "310:police-decision",
    "310:reconsideration-request",
    "310:reconsideration-decision",
];

/// The key of a rule's lead.
pub(crate) fn rule_key(rule: &str) -> String {
    format!("rule:{rule}")
}

/// Rule leads planted in a file of `rows` rows: one in fifty rows, and at least three from sixty
/// rows on (one per twenty rows below that), so a 200-case run has a few.
pub(crate) fn rule_leads(rows: u64) -> u64 {
    (rows / 50).max((rows / 20).min(3))
}

/// Leads planted per 310号令 deadline, and of major decisions without review: one in six hundred
/// rows, and at least one from sixty rows on.
pub(crate) fn other_leads(rows: u64) -> u64 {
    (rows / 600).max((rows / 60).min(1))
}

/// What is still to plant in one file, and what was.
pub(crate) struct Plants {
    adapter: &'static str,
    /// Lead key and how many are still to plant, in the order rows are forced to fill them.
    left: Vec<(String, u64)>,
    planted: Vec<Planted>,
}

impl Plants {
    /// Plants `rules` rule leads spread over the `rule_keys` in order (the first ones take the
    /// remainder), then `others` of each of the `other_keys`.
    pub(crate) fn new(
        adapter: &'static str,
        rule_keys: &[String],
        rules: u64,
        other_keys: &[&str],
        others: u64,
    ) -> Self {
        let n = rule_keys.len() as u64;
        let mut left: Vec<(String, u64)> = rule_keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), rules / n + u64::from((i as u64) < rules % n)))
            .collect();
        left.extend(other_keys.iter().map(|k| (k.to_string(), others)));
        left.retain(|(_, count)| *count > 0);
        Self {
            adapter,
            left,
            planted: Vec::new(),
        }
    }

    /// Whether a lead of `key` is still to plant.
    pub(crate) fn wants(&self, key: &str) -> bool {
        self.left.iter().any(|(k, count)| k == key && *count > 0)
    }

    /// How many of `key` were planted so far (planted rows alternate their variants by it).
    pub(crate) fn count(&self, key: &str) -> usize {
        self.planted.iter().filter(|p| p.lead == key).count()
    }

    /// Records a planted case.
    pub(crate) fn plant(&mut self, unit_code: &str, case_id: &str, key: &str, why: String) {
        if let Some(slot) = self.left.iter_mut().find(|(k, _)| k == key) {
            slot.1 = slot.1.saturating_sub(1);
        }
        self.planted.push(Planted {
            adapter: self.adapter.into(),
            unit_code: unit_code.into(),
            case_id: case_id.into(),
            lead: key.into(),
            why,
        });
    }

    /// Leads still to plant: once only that many rows are left, every row is a planted one.
    pub(crate) fn outstanding(&self) -> u64 {
        self.left.iter().map(|(_, count)| count).sum()
    }

    /// The next lead a forced row must plant.
    pub(crate) fn next(&self) -> Option<String> {
        self.left
            .iter()
            .find(|(_, count)| *count > 0)
            .map(|(k, _)| k.clone())
    }

    /// What was planted.
    pub(crate) fn into_planted(self) -> Vec<Planted> {
        self.planted
    }
}

/// The manifest's file name, beside the adapter directories [`super::generate`] writes.
pub const MANIFEST: &str = "planted-leads.csv";

/// Writes the manifest: a UTF-8 CSV, one planted lead a line (`adapter,unit_code,case_id,lead,why`).
pub(crate) fn write_manifest(path: &Path, planted: &[&Planted]) -> Result<(), SampleError> {
    let mut out = String::from("adapter,unit_code,case_id,lead,why\n");
    for p in planted {
        let fields = [&p.adapter, &p.unit_code, &p.case_id, &p.lead, &p.why];
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            if f.contains([',', '"', '\n']) {
                let _ = write!(out, "\"{}\"", f.replace('"', "\"\""));
            } else {
                out.push_str(f);
            }
        }
        out.push('\n');
    }
    std::fs::write(path, out).map_err(SampleError::io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_scale_with_the_rows() {
        assert_eq!((rule_leads(10), other_leads(10)), (0, 0));
        assert_eq!((rule_leads(40), other_leads(40)), (2, 0));
        assert_eq!((rule_leads(120), other_leads(120)), (3, 1));
        assert_eq!((rule_leads(1_800), other_leads(1_800)), (36, 3));
        // Never more planted leads than rows.
        for rows in 0..2_000 {
            assert!(rule_leads(rows) + 5 * other_leads(rows) <= rows, "{rows}");
        }
    }

    #[test]
    fn plants_spread_and_count_down() {
        let rules = ["rule:a".to_string(), "rule:b".to_string()];
        let mut p = Plants::new("x", &rules, 3, &[MAJOR], 1);
        assert_eq!(p.outstanding(), 4);
        assert_eq!(p.next().as_deref(), Some("rule:a"));
        p.plant("u", "1", "rule:a", "why".into());
        p.plant("u", "2", "rule:a", "why".into());
        assert!(!p.wants("rule:a") && p.wants("rule:b"));
        assert_eq!((p.count("rule:a"), p.outstanding()), (2, 2));
        p.plant("u", "3", "rule:b", "why".into());
        assert_eq!(p.next().as_deref(), Some(MAJOR));
        p.plant("u", "4", MAJOR, "why, \"quoted\"".into());
        assert_eq!((p.outstanding(), p.next()), (0, None));
        let planted = p.into_planted();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MANIFEST);
        write_manifest(&path, &planted.iter().collect::<Vec<_>>()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 5);
        assert!(text.ends_with("x,u,4,major-without-review,\"why, \"\"quoted\"\"\"\n"));
    }
}
