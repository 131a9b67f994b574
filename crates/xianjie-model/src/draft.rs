//! A case as read from a source: canonical text per target field, before parsing. [`Draft::into_case`]
//! parses every field and checks the rules between fields, returning all problems of a record at once.
//!
//! The targets are the dotted field paths adapters map to (`party.name`, `penalty.fine_fen`, ...).
//! Values arrive in canonical text form: codes as their canonical code, dates as `YYYY-MM-DD`,
//! money as a whole number of fen, booleans as `true`/`false` — adapters' transforms produce those.

use chrono::{DateTime, NaiveDate, Utc};

use super::case::{Case, CaseId, Inspection, License, Party, PartyId, Penalty, Source, Transfer};
use super::codes::{
    Action, CaseStatus, Disclosure, IdType, InspectionResult, LicenseCategory, LicenseState,
    PartyKind, PenaltyKind, PoliceDecision, TransferStatus,
};
use super::facts::{Amounts, Harm, Moment, Share};
use super::{Fen, MoneyUnit, Uscc};

/// How a target's canonical text is parsed; adapters may only apply transforms that fit it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// Free text.
    Text,
    /// A list of free text (split in the adapter).
    TextList,
    /// One code of a closed list (or an identifier).
    Code,
    /// A list of codes.
    CodeList,
    /// `YYYY-MM-DD`.
    Date,
    /// Whole fen.
    Money,
    /// `true` / `false`.
    Bool,
    /// `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SS` (China Standard Time).
    Moment,
    /// A whole number of people.
    Count,
    /// A percent with up to two decimals.
    Percent,
}

macro_rules! targets {
    ($($v:ident = $path:literal, $kind:ident;)+) => {
        /// A field of the canonical record that an adapter can fill.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Target { $(
            #[doc = concat!("`", $path, "`")]
            $v,
        )+ }

        impl Target {
            /// Every target.
            pub const ALL: &'static [Target] = &[$(Target::$v,)+];

            /// The dotted path, as written in adapter definitions.
            pub fn path(self) -> &'static str {
                match self { $(Target::$v => $path,)+ }
            }

            /// How its text is parsed.
            pub fn kind(self) -> TargetKind {
                match self { $(Target::$v => TargetKind::$kind,)+ }
            }

            /// The target with this path.
            pub fn from_path(p: &str) -> Option<Target> {
                match p { $($path => Some(Target::$v),)+ _ => None }
            }
        }
    };
}

targets! {
    UnitCode = "unit_code", Code;
    UnitName = "unit_name", Text;
    CaseId = "case_id", Text;
    Title = "title", Text;
    Cause = "cause", Text;
    Action = "action", Code;
    PartyKind = "party.kind", Code;
    PartyName = "party.name", Text;
    PartyIdType = "party.id_type", Code;
    PartyIdNumber = "party.id_number", Text;
    PartyLegalRepresentative = "party.legal_representative", Text;
    PartyAddress = "party.address", Text;
    PartyPhone = "party.phone", Text;
    LegalBasis = "legal_basis", Text;
    Facts = "facts", Text;
    Decision = "decision", Text;
    DecisionNumber = "decision_number", Text;
    DecidedOn = "decided_on", Date;
    FiledOn = "filed_on", Date;
    ClosedOn = "closed_on", Date;
    PenaltyKinds = "penalty.kinds", CodeList;
    PenaltyFine = "penalty.fine_fen", Money;
    PenaltyConfiscated = "penalty.confiscated_fen", Money;
    PenaltyViolationType = "penalty.violation_type", Text;
    PenaltyContent = "penalty.content", Text;
    PenaltyLicenseAffected = "penalty.license_affected", Text;
    PenaltyValidUntil = "penalty.valid_until", Date;
    PenaltyPublicityUntil = "penalty.publicity_until", Date;
    LicenseCategory = "license.category", Code;
    LicenseCertificateName = "license.certificate_name", Text;
    LicenseNumber = "license.license_number", Text;
    LicenseValidFrom = "license.valid_from", Date;
    LicenseValidTo = "license.valid_to", Date;
    LicenseDocumentName = "license.document_name", Text;
    LicenseState = "license.state", Code;
    InspectionBatch = "inspection.batch_id", Text;
    InspectionTask = "inspection.task_name", Text;
    InspectionInspectors = "inspection.inspectors", TextList;
    InspectionResult = "inspection.result_code", Code;
    Major = "major", Bool;
    LegalReview = "legal_review", Bool;
    CollectiveDiscussion = "collective_discussion", Bool;
    TransferSuspected = "transfer.suspected_crime", Bool;
    TransferOn = "transfer.transferred_on", Date;
    TransferOrgan = "transfer.receiving_organ", Text;
    TransferDocument = "transfer.document_number", Text;
    TransferCharge = "transfer.suspected_charge", Text;
    TransferStatus = "transfer.status", Code;
    TransferApprovedAt = "transfer.approved_at", Moment;
    TransferAt = "transfer.transferred_at", Moment;
    TransferAcceptedAt = "transfer.accepted_at", Moment;
    TransferPoliceDecision = "transfer.police_decision", Code;
    TransferPoliceDecidedAt = "transfer.police_decided_at", Moment;
    TransferReconsiderationRequestedAt = "transfer.reconsideration_requested_at", Moment;
    TransferReconsiderationDecidedAt = "transfer.reconsideration_decided_at", Moment;
    AmountInvolved = "amounts.involved_fen", Money;
    AmountGoodsValue = "amounts.goods_value_fen", Money;
    AmountSales = "amounts.sales_fen", Money;
    AmountIllegalGains = "amounts.illegal_gains_fen", Money;
    AmountEvadedTax = "amounts.evaded_tax_fen", Money;
    AmountEvadedTaxShare = "amounts.evaded_tax_share", Percent;
    HarmDeaths = "harm.deaths", Count;
    HarmSeriousInjuries = "harm.serious_injuries", Count;
    HarmDirectLoss = "harm.direct_loss_fen", Money;
    Status = "status", Code;
    Disclosure = "disclosure", Code;
    Remarks = "remarks", Text;
    Documents = "documents", TextList;
}

impl Target {
    /// The targets every adapter must fill.
    pub const REQUIRED: &'static [Target] = &[
        Target::UnitCode,
        Target::CaseId,
        Target::Title,
        Target::Action,
        Target::PartyKind,
        Target::PartyName,
    ];

    /// Whether the target is free text that may span lines (tab, line feed and carriage return
    /// allowed): the cause, legal basis, facts, decision, penalty content and remarks.
    pub fn multiline(self) -> bool {
        matches!(
            self,
            Target::Cause
                | Target::LegalBasis
                | Target::Facts
                | Target::Decision
                | Target::PenaltyContent
                | Target::Remarks
        )
    }

    /// Whether the target holds a list.
    pub fn is_list(self) -> bool {
        matches!(self.kind(), TargetKind::TextList | TargetKind::CodeList)
    }

    /// Checks one canonical value (or list element) for this target: used when loading adapters to
    /// refuse code tables that map to values the target would never accept.
    pub fn check_value(self, v: &str) -> Result<(), String> {
        let e = |r: Result<(), String>| r;
        match self {
            Target::Action => e(Action::parse(v).map(drop).map_err(|x| x.to_string())),
            Target::PartyKind => e(PartyKind::parse(v).map(drop).map_err(|x| x.to_string())),
            Target::PartyIdType => e(IdType::parse(v).map(drop).map_err(|x| x.to_string())),
            Target::PenaltyKinds => e(PenaltyKind::parse(v).map(drop).map_err(|x| x.to_string())),
            Target::LicenseCategory => e(LicenseCategory::parse(v)
                .map(drop)
                .map_err(|x| x.to_string())),
            Target::LicenseState => e(LicenseState::parse(v).map(drop).map_err(|x| x.to_string())),
            Target::TransferPoliceDecision => e(PoliceDecision::parse(v)
                .map(drop)
                .map_err(|x| x.to_string())),
            Target::InspectionResult => e(InspectionResult::parse(v)
                .map(drop)
                .map_err(|x| x.to_string())),
            Target::TransferStatus => e(TransferStatus::parse(v)
                .map(drop)
                .map_err(|x| x.to_string())),
            Target::Status => e(CaseStatus::parse(v).map(drop).map_err(|x| x.to_string())),
            Target::Disclosure => e(Disclosure::parse(v).map(drop).map_err(|x| x.to_string())),
            Target::UnitCode => e(Uscc::parse(v).map(drop).map_err(|x| x.to_string())),
            _ => match self.kind() {
                TargetKind::Bool => parse_bool(v).map(drop),
                TargetKind::Date => parse_date(v).map(drop),
                TargetKind::Money => Fen::parse(v, MoneyUnit::Fen)
                    .map(drop)
                    .map_err(|x| x.to_string()),
                TargetKind::Moment => Moment::parse(v).map(drop),
                TargetKind::Count => parse_count(v).map(drop),
                TargetKind::Percent => Share::parse(v).map(drop),
                _ => Ok(()),
            },
        }
    }
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("'{v}' is not true or false")),
    }
}

fn parse_count(v: &str) -> Result<u32, String> {
    if v.is_empty() || v.len() > 9 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("'{v}' is not a whole number of people"));
    }
    v.parse()
        .map_err(|_| format!("'{v}' is not a whole number of people"))
}

fn parse_date(v: &str) -> Result<NaiveDate, String> {
    match iso_date(v) {
        Some(d) => Ok(d),
        None => NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map_err(|_| format!("'{v}' is not a date YYYY-MM-DD")),
    }
}

/// A date written exactly `YYYY-MM-DD` (ten ASCII characters), read without chrono's format
/// interpreter: a case carries up to three dates, each read at mapping and again when parsed,
/// and this is the form the canonical record and nearly every source use. Gives what
/// `NaiveDate::parse_from_str(v, "%Y-%m-%d")` gives for such text; `None` for any other text and
/// for an impossible date such as 2024-02-30, which callers hand to chrono to name the problem.
pub fn iso_date(v: &str) -> Option<NaiveDate> {
    let b = v.as_bytes();
    if b.len() != 10 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let number = |digits: &[u8]| {
        digits.iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let year = i32::try_from(number(b.get(..4)?)?).ok()?;
    NaiveDate::from_ymd_opt(year, number(b.get(5..7)?)?, number(b.get(8..)?)?)
}

/// A problem with one field of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The target field.
    pub target: Target,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.target.path(), self.reason)
    }
}

/// A record's values by target, canonical text, not yet parsed.
#[derive(Debug, Clone, Default)]
pub struct Draft {
    values: Vec<Vec<String>>,
}

/// Longest free-text value accepted (characters).
const MAX_TEXT: usize = 20_000;

/// Why `v` cannot be the text of `t`, if a control character is the reason.
fn control_problem(t: Target, v: &str) -> Option<String> {
    let (at, c) = control_char(v, t.multiline())?;
    Some(format!(
        "contains the control character U+{:04X} at character {at}; it cannot be published or \
         sent (correct the text at the source)",
        u32::from(c)
    ))
}

/// The first character of `v` that no record may hold, with its 1-based position: a control
/// character (C0, DEL, C1) or a noncharacter XML cannot carry (U+FFFE, U+FFFF). Tab, line feed
/// and carriage return pass when `multiline`.
pub fn control_char(v: &str, multiline: bool) -> Option<(usize, char)> {
    // Nearly all text holds none: a scan of the UTF-8 bytes rules that out before characters are
    // decoded and counted. C0 and DEL are single bytes, C1 (U+0080..U+009F) is C2 80..C2 9F,
    // U+FFFE and U+FFFF are EF BF BE and EF BF BF.
    let b = v.as_bytes();
    let may_hold = b.iter().enumerate().any(|(i, &c)| match c {
        0..=0x1F | 0x7F => true,
        0xC2 => matches!(b.get(i + 1), Some(0x80..=0x9F)),
        0xEF => b.get(i + 1) == Some(&0xBF) && matches!(b.get(i + 2), Some(0xBE | 0xBF)),
        _ => false,
    });
    if !may_hold {
        return None;
    }
    v.chars().enumerate().find_map(|(i, c)| {
        let allowed = multiline && matches!(c, '\t' | '\n' | '\r');
        ((c.is_control() && !allowed) || matches!(c, '\u{FFFE}' | '\u{FFFF}')).then_some((i + 1, c))
    })
}

impl Draft {
    /// An empty draft.
    pub fn new() -> Self {
        Self {
            values: vec![Vec::new(); Target::ALL.len()],
        }
    }

    /// Sets a target's value(s); empty strings are dropped (an empty cell means absent).
    pub fn set(&mut self, t: Target, values: Vec<String>) {
        self.values[t as usize] = values.into_iter().filter(|v| !v.is_empty()).collect();
    }

    /// The first value of a target.
    pub fn get(&self, t: Target) -> Option<&str> {
        self.values[t as usize].first().map(String::as_str)
    }

    /// Parses the draft. `ctx` gives provenance and the date against which "not in the future" is checked.
    pub fn into_case(self, ctx: &DraftContext<'_>) -> Result<Case, Vec<FieldError>> {
        let mut p = Parser {
            d: self,
            errors: Vec::new(),
        };
        let case = p.case(ctx);
        match case {
            Some(c) if p.errors.is_empty() => Ok(c),
            _ => Err(p.errors),
        }
    }
}

/// What a draft is parsed against.
pub struct DraftContext<'a> {
    /// Adapter name.
    pub adapter: &'a str,
    /// Source system.
    pub system: &'a str,
    /// File name.
    pub file: &'a str,
    /// Row, line or element.
    pub location: String,
    /// Ingest time.
    pub now: DateTime<Utc>,
    /// Dates after this are refused.
    pub today: NaiveDate,
    /// Unit name to use when the source has none.
    pub default_unit_name: Option<&'a str>,
}

struct Parser {
    d: Draft,
    errors: Vec<FieldError>,
}

impl Parser {
    fn err(&mut self, target: Target, reason: impl Into<String>) {
        self.errors.push(FieldError {
            target,
            reason: reason.into(),
        });
    }

    /// The first value of `t` when it is usable text (not too long, no control character);
    /// otherwise notes why. The value stays in the draft.
    fn checked(&mut self, t: Target) -> Option<&str> {
        let Parser { d, errors } = self;
        let v = d.values[t as usize].first()?;
        // No text has more characters than bytes: only a long one needs counting.
        let problem = if v.len() > MAX_TEXT && v.chars().count() > MAX_TEXT {
            Some(format!("is longer than {MAX_TEXT} characters"))
        } else {
            control_problem(t, v)
        };
        match problem {
            None => Some(v),
            Some(reason) => {
                errors.push(FieldError { target: t, reason });
                None
            }
        }
    }

    /// The first value of `t` for the case to keep, when usable: moved out of the draft rather
    /// than copied, as every target's text is kept once. The draft still shows the target as
    /// given (see `present`), with an empty value; a target that is read again goes through
    /// `checked` or `parsed` first.
    fn text(&mut self, t: Target) -> Option<String> {
        self.checked(t)?;
        self.d.values[t as usize].first_mut().map(std::mem::take)
    }

    /// Whether `v` is free of control characters (tab, line feed and carriage return are allowed
    /// in the free-text fields); otherwise notes which one and where.
    fn clean(&mut self, t: Target, v: &str) -> bool {
        match control_problem(t, v) {
            None => true,
            Some(reason) => {
                self.err(t, reason);
                false
            }
        }
    }

    fn required_text(&mut self, t: Target) -> Option<String> {
        let v = self.text(t);
        if v.is_none() && !self.errors.iter().any(|e| e.target == t) {
            self.err(t, "is required but empty");
        }
        v
    }

    fn parsed<T>(&mut self, t: Target, f: impl FnOnce(&str) -> Result<T, String>) -> Option<T> {
        match f(self.checked(t)?) {
            Ok(x) => Some(x),
            Err(e) => {
                self.err(t, e);
                None
            }
        }
    }

    fn code<T>(
        &mut self,
        t: Target,
        f: fn(&str) -> Result<T, super::codes::CodeError>,
    ) -> Option<T> {
        self.parsed(t, |v| f(v).map_err(|e| e.to_string()))
    }

    fn date(&mut self, t: Target, today: NaiveDate) -> Option<NaiveDate> {
        let d = self.parsed(t, parse_date)?;
        if d > today {
            self.err(t, format!("{d} is in the future"));
        }
        Some(d)
    }

    fn money(&mut self, t: Target) -> Option<Fen> {
        self.parsed(t, |v| {
            Fen::parse(v, MoneyUnit::Fen).map_err(|e| e.to_string())
        })
    }

    fn flag(&mut self, t: Target) -> bool {
        self.parsed(t, parse_bool).unwrap_or(false)
    }

    fn list(&mut self, t: Target) -> Vec<String> {
        let values = std::mem::take(&mut self.d.values[t as usize]);
        values.into_iter().filter(|v| self.clean(t, v)).collect()
    }

    fn present(&self, targets: &[Target]) -> Option<Target> {
        targets
            .iter()
            .copied()
            .find(|t| !self.d.values[*t as usize].is_empty())
    }

    fn order(&mut self, earlier: (Target, Option<NaiveDate>), later: (Target, Option<NaiveDate>)) {
        if let ((t1, Some(a)), (t2, Some(b))) = (earlier, later)
            && a > b
        {
            self.err(t2, format!("{b} is before {} {a}", t1.path()));
        }
    }

    fn case(&mut self, ctx: &DraftContext<'_>) -> Option<Case> {
        use Target as T;
        let today = ctx.today;
        let unit_code = match self.text(T::UnitCode) {
            Some(v) => Uscc::parse(&v)
                .map_err(|e| self.err(T::UnitCode, e.to_string()))
                .ok(),
            None => {
                self.err(T::UnitCode, "is required but empty");
                None
            }
        };
        let unit_name = self
            .text(T::UnitName)
            .or_else(|| ctx.default_unit_name.map(str::to_string));
        if unit_name.is_none() {
            self.err(T::UnitName, "is required but empty");
        }
        let case_id = match self.required_text(T::CaseId) {
            Some(v) => CaseId::parse(&v).map_err(|e| self.err(T::CaseId, e)).ok(),
            None => None,
        };
        let title = self.required_text(T::Title);
        let action = if self.checked(T::Action).is_some() {
            self.code(T::Action, Action::parse)
        } else {
            self.err(T::Action, "is required but empty");
            None
        };
        let party = self.party(today);

        let filed_on = self.date(T::FiledOn, today);
        let decided_on = self.date(T::DecidedOn, today);
        let closed_on = self.date(T::ClosedOn, today);
        self.order((T::FiledOn, filed_on), (T::DecidedOn, decided_on));
        self.order((T::DecidedOn, decided_on), (T::ClosedOn, closed_on));
        self.order((T::FiledOn, filed_on), (T::ClosedOn, closed_on));

        let penalty = self.penalty(action, decided_on);
        let license = self.license(action, today);
        let inspection = self.inspection(action);
        let transfer = self.transfer(today);

        let case = Case {
            unit_code: unit_code?,
            unit_name: unit_name?,
            case_id: case_id?,
            title: title?,
            cause: self.text(T::Cause),
            action: action?,
            party: party?,
            legal_basis: self.text(T::LegalBasis),
            facts: self.text(T::Facts),
            decision: self.text(T::Decision),
            decision_number: self.text(T::DecisionNumber),
            decided_on,
            filed_on,
            closed_on,
            penalty,
            license,
            inspection,
            major: self.flag(T::Major),
            legal_review: self.flag(T::LegalReview),
            collective_discussion: self.flag(T::CollectiveDiscussion),
            transfer: transfer?,
            amounts: Amounts {
                involved_fen: self.money(T::AmountInvolved),
                goods_value_fen: self.money(T::AmountGoodsValue),
                sales_fen: self.money(T::AmountSales),
                illegal_gains_fen: self.money(T::AmountIllegalGains),
                evaded_tax_fen: self.money(T::AmountEvadedTax),
                evaded_tax_share: self.parsed(T::AmountEvadedTaxShare, Share::parse),
            },
            harm: Harm {
                deaths: self.parsed(T::HarmDeaths, parse_count),
                serious_injuries: self.parsed(T::HarmSeriousInjuries, parse_count),
                direct_loss_fen: self.money(T::HarmDirectLoss),
            },
            status: self
                .code(T::Status, CaseStatus::parse)
                .unwrap_or(CaseStatus::Active),
            disclosure: self
                .code(T::Disclosure, Disclosure::parse)
                .unwrap_or(Disclosure::Public),
            remarks: self.text(T::Remarks),
            // The `documents` target names files: ingest reads them from beside the export,
            // stores them and lists them here (a draft holds text only).
            documents: Vec::new(),
            source: Source {
                adapter: ctx.adapter.to_string(),
                system: ctx.system.to_string(),
                file: ctx.file.to_string(),
                location: ctx.location.clone(),
                ingested_at: ctx.now,
            },
            version: 0,
            updated_at: ctx.now,
        };
        Some(case)
    }

    fn party(&mut self, today: NaiveDate) -> Option<Party> {
        use Target as T;
        let kind = if self.checked(T::PartyKind).is_some() {
            self.code(T::PartyKind, PartyKind::parse)
        } else {
            self.err(T::PartyKind, "is required but empty");
            None
        };
        let name = self.required_text(T::PartyName);
        let id_type = self.code(T::PartyIdType, IdType::parse);
        let number = self.text(T::PartyIdNumber);
        let id = match (id_type, number, kind) {
            (_, None, _) => {
                if id_type.is_some() {
                    self.err(T::PartyIdNumber, "is empty but party.id_type is given");
                }
                None
            }
            (t, Some(n), k) => {
                // Without an explicit type the document follows from the kind of party.
                let t = t.or(match k {
                    Some(PartyKind::NaturalPerson) => Some(IdType::ResidentId),
                    Some(_) => Some(IdType::Uscc),
                    None => None,
                })?;
                match PartyId::parse(t, &n, today) {
                    Ok(id) => Some(id),
                    Err(e) => {
                        self.err(T::PartyIdNumber, e);
                        None
                    }
                }
            }
        };
        Some(Party {
            kind: kind?,
            name: name?,
            id,
            legal_representative: self.text(T::PartyLegalRepresentative),
            address: self.text(T::PartyAddress),
            phone: self.text(T::PartyPhone),
        })
    }

    fn penalty(
        &mut self,
        action: Option<Action>,
        decided_on: Option<NaiveDate>,
    ) -> Option<Penalty> {
        use Target as T;
        let fields = [
            T::PenaltyKinds,
            T::PenaltyFine,
            T::PenaltyConfiscated,
            T::PenaltyViolationType,
            T::PenaltyContent,
            T::PenaltyLicenseAffected,
            T::PenaltyValidUntil,
            T::PenaltyPublicityUntil,
        ];
        if action != Some(Action::Penalty) {
            if let (Some(a), Some(t)) = (action, self.present(&fields)) {
                self.err(
                    t,
                    format!(
                        "penalty fields are only for penalty cases, this is {}",
                        a.code()
                    ),
                );
            }
            return None;
        }
        let mut kinds = Vec::new();
        for v in self.list(T::PenaltyKinds) {
            match PenaltyKind::parse(&v) {
                Ok(k) if !kinds.contains(&k) => kinds.push(k),
                Ok(_) => {}
                Err(e) => self.err(T::PenaltyKinds, e.to_string()),
            }
        }
        if kinds.is_empty() && !self.errors.iter().any(|e| e.target == T::PenaltyKinds) {
            self.err(
                T::PenaltyKinds,
                "a penalty case needs at least one penalty kind",
            );
        }
        let fine_fen = self.money(T::PenaltyFine);
        if kinds.contains(&PenaltyKind::Fine) && fine_fen.is_none_or(|f| f.get() == 0) {
            self.err(
                T::PenaltyFine,
                "penalty kinds include a fine but no fine amount is given",
            );
        }
        let confiscated_fen = self.money(T::PenaltyConfiscated);
        // Both end dates lie after the decision, often in the future: no "not after today".
        let valid_until = self.parsed(T::PenaltyValidUntil, parse_date);
        let publicity_until = self.parsed(T::PenaltyPublicityUntil, parse_date);
        self.order(
            (T::DecidedOn, decided_on),
            (T::PenaltyPublicityUntil, publicity_until),
        );
        Some(Penalty {
            kinds,
            fine_fen,
            confiscated_fen,
            violation_type: self.text(T::PenaltyViolationType),
            content: self.text(T::PenaltyContent),
            license_affected: self.text(T::PenaltyLicenseAffected),
            valid_until,
            publicity_until,
        })
    }

    fn license(&mut self, action: Option<Action>, today: NaiveDate) -> Option<License> {
        use Target as T;
        let fields = [
            T::LicenseCategory,
            T::LicenseCertificateName,
            T::LicenseNumber,
            T::LicenseValidFrom,
            T::LicenseValidTo,
            T::LicenseDocumentName,
            T::LicenseState,
        ];
        if action != Some(Action::Licensing) {
            if let (Some(a), Some(t)) = (action, self.present(&fields)) {
                self.err(
                    t,
                    format!(
                        "licence fields are only for licensing cases, this is {}",
                        a.code()
                    ),
                );
            }
            return None;
        }
        let category = self.code(T::LicenseCategory, LicenseCategory::parse);
        let certificate_name = self.text(T::LicenseCertificateName);
        let license_number = self.required_text(T::LicenseNumber);
        // A licence may be valid into the future: only the start is bounded by today.
        let valid_from = self.date(T::LicenseValidFrom, today);
        let valid_to = self.parsed(T::LicenseValidTo, parse_date);
        self.order(
            (T::LicenseValidFrom, valid_from),
            (T::LicenseValidTo, valid_to),
        );
        Some(License {
            category,
            certificate_name,
            license_number: license_number?,
            valid_from,
            valid_to,
            document_name: self.text(T::LicenseDocumentName),
            state: self.code(T::LicenseState, LicenseState::parse),
        })
    }

    fn inspection(&mut self, action: Option<Action>) -> Option<Inspection> {
        use Target as T;
        let fields = [
            T::InspectionBatch,
            T::InspectionTask,
            T::InspectionInspectors,
            T::InspectionResult,
        ];
        if action != Some(Action::Inspection) {
            if let (Some(a), Some(t)) = (action, self.present(&fields)) {
                self.err(
                    t,
                    format!(
                        "inspection fields are only for inspection cases, this is {}",
                        a.code()
                    ),
                );
            }
            return None;
        }
        // An inspection from a general system has no double-random details: no block.
        self.present(&fields)?;
        let result_code = if self.checked(T::InspectionResult).is_some() {
            self.code(T::InspectionResult, InspectionResult::parse)
        } else {
            self.err(
                T::InspectionResult,
                "is required for a double-random inspection but empty",
            );
            None
        };
        Some(Inspection {
            batch_id: self.text(T::InspectionBatch),
            task_name: self.text(T::InspectionTask),
            inspectors: self.list(T::InspectionInspectors),
            result_code: result_code?,
        })
    }

    fn transfer(&mut self, today: NaiveDate) -> Option<Transfer> {
        use Target as T;
        let suspected_crime = self.flag(T::TransferSuspected);
        let status = self
            .code(T::TransferStatus, TransferStatus::parse)
            .unwrap_or(TransferStatus::None);
        let transferred_on = self.date(T::TransferOn, today);
        let receiving_organ = self.text(T::TransferOrgan);
        if status != TransferStatus::None && !suspected_crime {
            self.err(
                T::TransferStatus,
                format!("is {} but transfer.suspected_crime is false", status.code()),
            );
        }
        if status.handed_over() {
            if transferred_on.is_none() && !self.errors.iter().any(|e| e.target == T::TransferOn) {
                self.err(
                    T::TransferOn,
                    format!("is required when the transfer status is {}", status.code()),
                );
            }
            if receiving_organ.is_none() {
                self.err(
                    T::TransferOrgan,
                    format!("is required when the transfer status is {}", status.code()),
                );
            }
        }
        let approved_at = self.moment(T::TransferApprovedAt, today);
        let transferred_at = self.moment(T::TransferAt, today);
        let accepted_at = self.moment(T::TransferAcceptedAt, today);
        let police_decision = self.code(T::TransferPoliceDecision, PoliceDecision::parse);
        let police_decided_at = self.moment(T::TransferPoliceDecidedAt, today);
        let reconsideration_requested_at =
            self.moment(T::TransferReconsiderationRequestedAt, today);
        let reconsideration_decided_at = self.moment(T::TransferReconsiderationDecidedAt, today);
        if let (Some(at), Some(on)) = (transferred_at, transferred_on)
            && at.date() != on
        {
            self.err(
                T::TransferAt,
                format!("{at} is not on transfer.transferred_on {on}"),
            );
        }
        if police_decided_at.is_some() && police_decision.is_none() {
            self.err(
                T::TransferPoliceDecision,
                "is required with transfer.police_decided_at",
            );
        }
        if reconsideration_requested_at.is_some()
            && police_decision != Some(PoliceDecision::NotFiled)
        {
            self.err(
                T::TransferReconsiderationRequestedAt,
                "a reconsideration is asked of a refusal: transfer.police_decision must be not_filed",
            );
        }
        let handed = transferred_at.or(transferred_on.map(Moment::Day));
        self.timeline(&[
            (T::TransferApprovedAt, approved_at),
            (T::TransferAt, handed),
            (T::TransferAcceptedAt, accepted_at),
            (T::TransferPoliceDecidedAt, police_decided_at),
            (
                T::TransferReconsiderationRequestedAt,
                reconsideration_requested_at,
            ),
            (
                T::TransferReconsiderationDecidedAt,
                reconsideration_decided_at,
            ),
        ]);
        Some(Transfer {
            suspected_crime,
            transferred_on,
            receiving_organ,
            document_number: self.text(T::TransferDocument),
            suspected_charge: self.text(T::TransferCharge),
            status,
            approved_at,
            transferred_at,
            accepted_at,
            police_decision,
            police_decided_at,
            reconsideration_requested_at,
            reconsideration_decided_at,
        })
    }

    /// A moment of the transfer timeline: not in the future.
    fn moment(&mut self, t: Target, today: NaiveDate) -> Option<Moment> {
        let m = self.parsed(t, Moment::parse)?;
        if m.date() > today {
            self.err(t, format!("{m} is in the future"));
        }
        Some(m)
    }

    /// The transfer's moments in their legal order (approved, handed over, accepted, decided,
    /// reconsideration asked, decided); a day and a time compare by their days.
    fn timeline(&mut self, steps: &[(Target, Option<Moment>)]) {
        let known: Vec<(Target, Moment)> = steps
            .iter()
            .filter_map(|(t, m)| m.map(|m| (*t, m)))
            .collect();
        for pair in known.windows(2) {
            let ((t1, a), (t2, b)) = (pair[0], pair[1]);
            let before = match (a, b) {
                (Moment::At(x), Moment::At(y)) => y < x,
                _ => b.date() < a.date(),
            };
            if before {
                self.err(t2, format!("{b} is before {} {a}", t1.path()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition `control_char` must agree with: every character decoded and tested.
    fn control_char_by_characters(v: &str, multiline: bool) -> Option<(usize, char)> {
        v.chars().enumerate().find_map(|(i, c)| {
            let allowed = multiline && matches!(c, '\t' | '\n' | '\r');
            ((c.is_control() && !allowed) || matches!(c, '\u{FFFE}' | '\u{FFFF}'))
                .then_some((i + 1, c))
        })
    }

    #[test]
    fn the_byte_scan_finds_what_decoding_every_character_finds() {
        // Every character up to U+0800 (all one- and two-byte forms, C0, DEL and C1 among
        // them), the three-byte forms around U+FFFE/U+FFFF and their neighbours in EF BF xx,
        // and a four-byte one, each alone and between Chinese text on both sides.
        let chars = (0..0x800u32)
            .chain(0xFF00..=0xFFFF)
            .chain([0xBFBF, 0xFEFF, 0x4E2D, 0x1F600, 0x2A6D6])
            .filter_map(char::from_u32);
        for c in chars {
            for v in [
                c.to_string(),
                format!("行政处罚{c}（更正）"),
                format!("{c}{c}a"),
            ] {
                for multiline in [false, true] {
                    assert_eq!(
                        control_char(&v, multiline),
                        control_char_by_characters(&v, multiline),
                        "{v:?} multiline {multiline}"
                    );
                }
            }
        }
    }

    #[test]
    fn iso_dates_read_as_chrono_reads_them() {
        // Every year, month and day shape in reach of the fast path, real or not.
        for year in [
            "0000", "0001", "0999", "1970", "2000", "2024", "2100", "9999",
        ] {
            for month in 0..=13 {
                for day in 0..=32 {
                    let v = format!("{year}-{month:02}-{day:02}");
                    assert_eq!(
                        iso_date(&v),
                        NaiveDate::parse_from_str(&v, "%Y-%m-%d").ok(),
                        "{v}"
                    );
                }
            }
        }
        // Anything but exactly ten ASCII characters is left to chrono.
        for v in [
            "2024-3-05",
            "2024-03-5",
            "+2024-03-05",
            "2024/03/05",
            "２０２４-03-05",
            "2024-03-05 ",
            " 2024-03-0",
            "2024-0a-05",
            "20240-3-05",
            "",
        ] {
            assert_eq!(iso_date(v), None, "{v}");
        }
        assert_eq!(
            parse_date("2024-3-5"),
            NaiveDate::from_ymd_opt(2024, 3, 5).ok_or(String::new())
        );
        assert_eq!(
            parse_date("2024-02-30").unwrap_err(),
            "'2024-02-30' is not a date YYYY-MM-DD"
        );
    }

    #[test]
    fn control_characters_are_found_with_their_position() {
        assert_eq!(control_char("张三\u{1}公司", false), Some((3, '\u{1}')));
        assert_eq!(control_char("a\tb", false), Some((2, '\t')));
        assert_eq!(control_char("a\tb\r\nc", true), None);
        assert_eq!(control_char("x\u{7F}", true), Some((2, '\u{7F}')));
        assert_eq!(control_char("x\u{85}", true), Some((2, '\u{85}')));
        assert_eq!(control_char("\u{FFFF}", true), Some((1, '\u{FFFF}')));
        assert_eq!(control_char("行政处罚𠀀（更正）", false), None);
    }

    /// A draft of a suspected-crime penalty with the given transfer and fact fields set.
    fn transfer_draft(fields: &[(Target, &str)]) -> Result<Case, Vec<FieldError>> {
        let mut d = Draft::new();
        for (t, v) in [
            (Target::UnitCode, "11320102526018159L"),
            (Target::CaseId, "C-1"),
            (Target::Title, "标题"),
            (Target::Action, "other"),
            (Target::PartyKind, "legal_person"),
            (Target::PartyName, "某公司"),
            (Target::TransferSuspected, "true"),
        ]
        .iter()
        .chain(fields)
        {
            d.set(*t, vec![v.to_string()]);
        }
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-30T08:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        d.into_case(&ctx(now))
    }

    /// The context of a test record: row 2 of file `f`, nothing after `now`'s day.
    fn ctx(now: DateTime<Utc>) -> DraftContext<'static> {
        DraftContext {
            adapter: "a",
            system: "s",
            file: "f",
            location: "row 2".into(),
            now,
            today: now.date_naive(),
            default_unit_name: Some("单位"),
        }
    }

    #[test]
    fn transfer_moments_and_amounts_are_parsed_and_ordered() {
        use Target as T;
        let c = transfer_draft(&[
            (T::TransferStatus, "not_filed"),
            (T::TransferOn, "2025-03-05"),
            (T::TransferOrgan, "南京市公安局玄武分局"),
            (T::TransferApprovedAt, "2025-03-04T15:20:00"),
            (T::TransferAt, "2025-03-05T09:00:00"),
            (T::TransferAcceptedAt, "2025-03-05"),
            (T::TransferPoliceDecision, "not_filed"),
            (T::TransferPoliceDecidedAt, "2025-03-10"),
            (T::TransferReconsiderationRequestedAt, "2025-03-12"),
            (T::AmountEvadedTax, "67378055"),
            (T::AmountEvadedTaxShare, "12.5"),
            (T::HarmDeaths, "1"),
        ])
        .unwrap();
        assert_eq!(
            c.transfer.approved_at.map(|m| m.to_string()).as_deref(),
            Some("2025-03-04T15:20:00")
        );
        assert_eq!(c.transfer.police_decision, Some(PoliceDecision::NotFiled));
        assert_eq!(c.amounts.evaded_tax_fen.map(Fen::get), Some(67_378_055));
        assert_eq!(
            c.amounts.evaded_tax_share.map(Share::basis_points),
            Some(1250)
        );
        assert_eq!(c.harm.deaths, Some(1));
        // Stored JSON keeps them; a case without them serializes as before (no empty blocks).
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains("\"evaded_tax_share\":\"12.50\""), "{json}");
        let plain = transfer_draft(&[]).unwrap();
        let json = serde_json::to_string(&plain).unwrap();
        assert!(
            !json.contains("amounts") && !json.contains("approved_at"),
            "{json}"
        );

        // Out of order, a reconsideration of no refusal, a decision time without a decision,
        // a time in the future, a bad share: each named.
        let errors = transfer_draft(&[
            (T::TransferApprovedAt, "2025-03-06"),
            (T::TransferAt, "2025-03-05T09:00"),
            (T::TransferReconsiderationRequestedAt, "2025-03-12"),
            (T::TransferPoliceDecidedAt, "2025-03-10"),
            (T::TransferAcceptedAt, "2027-01-01"),
            (T::AmountEvadedTaxShare, "100.5"),
            (T::HarmDeaths, "-1"),
        ])
        .unwrap_err();
        for (t, says) in [
            (T::TransferAt, "before transfer.approved_at"),
            (T::TransferReconsiderationRequestedAt, "refusal"),
            (T::TransferPoliceDecision, "required"),
            (T::TransferAcceptedAt, "future"),
            (T::AmountEvadedTaxShare, "percent"),
            (T::HarmDeaths, "whole number"),
        ] {
            assert!(
                errors
                    .iter()
                    .any(|e| e.target == t && e.reason.contains(says)),
                "no {} error saying {says:?}: {errors:?}",
                t.path()
            );
        }
    }

    #[test]
    fn a_control_character_is_a_reason_naming_the_field_and_position() {
        let mut d = Draft::new();
        let mut set = |t: Target, v: &str| d.set(t, vec![v.to_string()]);
        set(Target::UnitCode, "11320102526018159L");
        set(Target::CaseId, "C-1");
        set(Target::Title, "标题");
        set(Target::Action, "other");
        set(Target::PartyKind, "legal_person");
        set(Target::PartyName, "某\u{1}公司");
        set(Target::Facts, "第一行\n第二行\t完");
        let errors = d.into_case(&ctx(chrono::Utc::now())).expect_err("refused");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].target, Target::PartyName);
        assert!(
            errors[0].reason.contains("U+0001 at character 2"),
            "{}",
            errors[0].reason
        );
    }
}
