//! The district power-sunshine system's export (`sunshine` adapter): one GB18030 CSV with Chinese
//! headers, one row per enforcement case (办件) of the district's own departments. Rows are
//! generated and encoded one at a time, so the writer's memory does not grow with the row count.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use encoding_rs::GB18030;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::bad::{BadCounts, BadKind, BadPicker, KeyRing};
use super::calendar::{self, Day, FIRST, LAST};
use super::names::{self, pick};
use super::sunshine_units::{
    FOREIGN_UNITS, LicenseItem, PenaltyCase, RECEIVING_ORGANS, UNITS, Unit,
};
use super::{SUNSHINE, SampleError, SampleFile};

/// The CSV header: every source column named in the adapter's `[fields]` table. The last five
/// (the 双公示 items the system added later) come after the older ones, so an export of the older
/// layout is a prefix of this one and still reads (the adapter marks them `optional`).
pub(crate) const HEADER: [&str; 44] = [
    "办件编号",
    "办件名称",
    "办件类型",
    "执法主体名称",
    "执法主体统一社会信用代码",
    "案由",
    "当事人类型",
    "当事人名称",
    "证件类型",
    "证件号码",
    "法定代表人",
    "当事人住址",
    "联系电话",
    "违法事实",
    "法律依据",
    "处理结果",
    "决定书文号",
    "处罚种类",
    "罚款金额（元）",
    "没收金额（元）",
    "许可类别",
    "许可证名称",
    "许可证编号",
    "有效期自",
    "有效期至",
    "立案日期",
    "决定日期",
    "结案日期",
    "是否重大执法决定",
    "是否法制审核",
    "是否集体讨论",
    "涉嫌犯罪",
    "移送状态",
    "移送日期",
    "接收机关",
    "移送文书号",
    "涉嫌罪名",
    "办件状态",
    "公开属性",
    "许可决定文书名称",
    "暂扣或吊销证照",
    "公示截止期",
    "备注",
    "许可状态",
];

/// The kind of enforcement action of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Penalty,
    Licensing,
    Inspection,
    Compulsion,
    Levy,
    Other,
}

impl Action {
    /// The adapter's code value (办件类型).
    fn label(self) -> &'static str {
        match self {
            Action::Penalty => "行政处罚",
            Action::Licensing => "行政许可",
            Action::Inspection => "行政检查",
            Action::Compulsion => "行政强制",
            Action::Levy => "行政征收",
            Action::Other => "其他",
        }
    }

    /// Index into the document-number counters.
    fn doc_index(self) -> usize {
        self as usize
    }

    /// The character of document numbers (`玄武市监罚〔2025〕12号`).
    fn doc_char(self) -> &'static str {
        match self {
            Action::Penalty => "罚",
            Action::Licensing => "许",
            Action::Inspection => "检",
            Action::Compulsion => "强",
            Action::Levy => "征",
            Action::Other => "办",
        }
    }
}

/// Index of the transfer-document counter.
const TRANSFER_DOC: usize = 6;

/// The kind of party of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PartyKind {
    Natural,
    Legal,
    Individual,
    Org,
}

impl PartyKind {
    /// Whether parties of this kind hold `licence` (its industries are companies', its shops
    /// individual businesses', and one with neither is social organisations').
    fn holds(self, licence: &LicenseItem) -> bool {
        match self {
            PartyKind::Legal => !licence.industries.is_empty(),
            PartyKind::Individual => !licence.shops.is_empty(),
            PartyKind::Org => licence.industries.is_empty() && licence.shops.is_empty(),
            PartyKind::Natural => false,
        }
    }

    /// The adapter's code value (当事人类型).
    fn label(self) -> &'static str {
        match self {
            PartyKind::Natural => "自然人",
            PartyKind::Legal => "法人",
            PartyKind::Individual => "个体工商户",
            PartyKind::Org => "其他组织",
        }
    }
}

/// One CSV row, by column.
#[derive(Default)]
struct Row {
    unit: usize,
    case_id: String,
    title: String,
    action: String,
    unit_name: String,
    unit_code: String,
    cause: String,
    party_kind: String,
    party_name: String,
    id_type: String,
    id_number: String,
    legal_rep: String,
    address: String,
    phone: String,
    facts: String,
    legal_basis: String,
    decision: String,
    decision_number: String,
    penalty_kinds: String,
    fine: String,
    confiscated: String,
    license_category: String,
    license_name: String,
    license_number: String,
    valid_from: String,
    valid_to: String,
    filed_on: String,
    decided_on: String,
    closed_on: String,
    major: String,
    legal_review: String,
    collective: String,
    suspected: String,
    transfer_status: String,
    transferred_on: String,
    receiving_organ: String,
    transfer_doc: String,
    charge: String,
    status: String,
    disclosure: String,
    document_name: String,
    license_affected: String,
    publicity_until: String,
    remarks: String,
    license_state: String,
}

impl Row {
    /// The cells in [`HEADER`] order.
    fn cells(&self) -> [&str; 44] {
        [
            &self.case_id,
            &self.title,
            &self.action,
            &self.unit_name,
            &self.unit_code,
            &self.cause,
            &self.party_kind,
            &self.party_name,
            &self.id_type,
            &self.id_number,
            &self.legal_rep,
            &self.address,
            &self.phone,
            &self.facts,
            &self.legal_basis,
            &self.decision,
            &self.decision_number,
            &self.penalty_kinds,
            &self.fine,
            &self.confiscated,
            &self.license_category,
            &self.license_name,
            &self.license_number,
            &self.valid_from,
            &self.valid_to,
            &self.filed_on,
            &self.decided_on,
            &self.closed_on,
            &self.major,
            &self.legal_review,
            &self.collective,
            &self.suspected,
            &self.transfer_status,
            &self.transferred_on,
            &self.receiving_organ,
            &self.transfer_doc,
            &self.charge,
            &self.status,
            &self.disclosure,
            &self.document_name,
            &self.license_affected,
            &self.publicity_until,
            &self.remarks,
            &self.license_state,
        ]
    }
}

/// What a bad row needs from the generated row before its defect is applied.
#[derive(Default)]
struct Plan {
    action: Option<Action>,
    party: Option<PartyKind>,
    unit: Option<usize>,
    case_id: Option<String>,
    needs_fine: bool,
}

/// A generated party.
struct Party {
    kind: PartyKind,
    name: String,
    id_number: String,
    rep: String,
    address: String,
    phone: String,
}

/// Generator state: the random source and the counters that keep ids unique.
struct Generator {
    rng: ChaCha8Rng,
    /// The draws of the appended columns (许可决定文书名称 onwards): another stream of the same
    /// seed, so adding them left every earlier column of every row as it was for that seed.
    extra: ChaCha8Rng,
    /// Case sequence per unit and year.
    case_seq: [[u32; 3]; 12],
    /// Document sequence per unit, document kind and year.
    doc_seq: [[[u32; 3]; 7]; 12],
    foreign_seq: u32,
    keys: KeyRing<(usize, String)>,
}

/// Index of a year 2024..=2026 in the counters.
fn year_index(year: i32) -> usize {
    (year - 2024).clamp(0, 2) as usize
}

fn yes_no(b: bool) -> String {
    if b { "是" } else { "否" }.to_string()
}

impl Generator {
    fn new(seed: u64) -> Self {
        let mut extra = ChaCha8Rng::seed_from_u64(seed);
        extra.set_stream(1);
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            extra,
            case_seq: [[0; 3]; 12],
            doc_seq: [[[0; 3]; 7]; 12],
            foreign_seq: 0,
            keys: KeyRing::new(),
        }
    }

    fn random_action(&mut self) -> Action {
        match self.rng.gen_range(0..100) {
            0..40 => Action::Penalty,
            40..65 => Action::Licensing,
            65..80 => Action::Inspection,
            80..88 => Action::Compulsion,
            88..95 => Action::Levy,
            _ => Action::Other,
        }
    }

    fn random_unit(&mut self, action: Action) -> usize {
        if action == Action::Levy {
            let levying: Vec<usize> = (0..UNITS.len())
                .filter(|&i| !UNITS[i].levies.is_empty())
                .collect();
            return *pick(&mut self.rng, &levying);
        }
        let total: u32 = UNITS.iter().map(|u| u.weight).sum();
        let mut x = self.rng.gen_range(0..total);
        for (i, unit) in UNITS.iter().enumerate() {
            if x < unit.weight {
                return i;
            }
            x -= unit.weight;
        }
        0
    }

    fn random_party_kind(
        &mut self,
        action: Action,
        unit: &Unit,
        licence: Option<&LicenseItem>,
    ) -> PartyKind {
        if self.rng.gen_bool(unit.org_share) {
            return PartyKind::Org;
        }
        if let Some(item) = licence {
            return match (item.industries.is_empty(), item.shops.is_empty()) {
                (true, true) => PartyKind::Org,
                (true, false) => PartyKind::Individual,
                (false, true) => PartyKind::Legal,
                (false, false) if self.rng.gen_bool(0.35) => PartyKind::Individual,
                (false, false) => PartyKind::Legal,
            };
        }
        let natural = match action {
            Action::Penalty => 0.18,
            Action::Licensing | Action::Levy => 0.05,
            _ => 0.08,
        };
        let x: f64 = self.rng.r#gen();
        if x < natural {
            PartyKind::Natural
        } else if x < natural + 0.3 {
            PartyKind::Individual
        } else {
            PartyKind::Legal
        }
    }

    /// A party of `kind`; companies and shops take the licence's trades when it names any.
    fn party(
        &mut self,
        kind: PartyKind,
        unit: &Unit,
        licence: Option<&LicenseItem>,
    ) -> Result<Party, SampleError> {
        let rng = &mut self.rng;
        let industries = match licence {
            Some(item) if !item.industries.is_empty() => item.industries,
            _ => unit.industries,
        };
        let shops = match licence {
            Some(item) if !item.shops.is_empty() => item.shops,
            _ => unit.shops,
        };
        let (name, id_number, rep) = match kind {
            PartyKind::Natural => {
                let male = rng.gen_bool(0.55);
                (
                    names::person(rng),
                    names::resident_id(rng, male)?,
                    String::new(),
                )
            }
            PartyKind::Legal => (
                names::company(rng, industries),
                names::uscc(rng, "91")?,
                names::person(rng),
            ),
            PartyKind::Individual => (
                names::shop(rng, shops),
                names::uscc(rng, "92")?,
                names::person(rng),
            ),
            PartyKind::Org => {
                let (name, prefix) = names::organisation(rng);
                (name, names::uscc(rng, prefix)?, names::person(rng))
            }
        };
        Ok(Party {
            kind,
            name,
            id_number,
            rep,
            address: names::address(rng),
            phone: names::phone(rng),
        })
    }

    /// (filed, decided, closed), in order, all within [`FIRST`]..=[`LAST`].
    fn dates(&mut self, action: Action) -> (Day, Day, Day) {
        let rng = &mut self.rng;
        let filed = calendar::between(rng, FIRST, LAST.plus(-150));
        let (decide, close) = match action {
            Action::Penalty => (rng.gen_range(15..=90), rng.gen_range(1..=45)),
            Action::Licensing => (rng.gen_range(1..=20), rng.gen_range(0..=3)),
            Action::Inspection => (rng.gen_range(0..=10), rng.gen_range(0..=15)),
            Action::Compulsion => (rng.gen_range(0..=3), rng.gen_range(30..=60)),
            Action::Levy => (rng.gen_range(0..=10), rng.gen_range(0..=30)),
            Action::Other => (rng.gen_range(0..=15), rng.gen_range(0..=10)),
        };
        let decided = filed.plus(decide);
        (filed, decided, decided.plus(close))
    }

    fn next_doc(&mut self, unit: usize, kind: usize, year: i32) -> u32 {
        let slot = &mut self.doc_seq[unit][kind][year_index(year)];
        *slot += 1;
        *slot
    }

    fn doc_number(&mut self, unit: usize, action: Action, year: i32) -> String {
        let n = self.next_doc(unit, action.doc_index(), year);
        format!(
            "玄武{}{}〔{year}〕{n}号",
            UNITS[unit].abbr,
            action.doc_char()
        )
    }

    /// The next row, valid or (as the picker decides) carrying one defect.
    fn next_row(&mut self, picker: &mut BadPicker) -> Result<Row, SampleError> {
        let bad = picker.pick(&mut self.rng, !self.keys.is_empty());
        let mut plan = Plan::default();
        let mut target_unit = false;
        let mut variant = 0;
        match bad {
            Some(BadKind::UsccCheck) => {
                target_unit = self.rng.gen_bool(0.3);
                if !target_unit {
                    plan.party = Some(*pick(
                        &mut self.rng,
                        &[
                            PartyKind::Legal,
                            PartyKind::Legal,
                            PartyKind::Individual,
                            PartyKind::Org,
                        ],
                    ));
                }
            }
            Some(BadKind::ResidentIdCheck) => plan.party = Some(PartyKind::Natural),
            Some(BadKind::DuplicateKey) => {
                if let Some((unit, case_id)) = self.keys.pick(&mut self.rng) {
                    plan.unit = Some(unit);
                    plan.case_id = Some(case_id);
                }
            }
            Some(BadKind::TooPrecise) => {
                plan.action = Some(Action::Penalty);
                plan.needs_fine = true;
            }
            Some(BadKind::ForeignUnit) => {
                variant = self.rng.gen_range(0..FOREIGN_UNITS.len());
                plan.unit = Some(variant);
            }
            Some(BadKind::UnknownCode) => {
                variant = self.rng.gen_range(0..3);
                if variant == 2 {
                    plan.action = Some(Action::Penalty);
                }
            }
            _ => {}
        }
        let mut row = self.row(plan)?;
        let rng = &mut self.rng;
        match bad {
            None => self.keys.push((row.unit, row.case_id.clone())),
            Some(BadKind::UsccCheck) => {
                if target_unit {
                    row.unit_code = names::corrupt_uscc(rng, &row.unit_code);
                } else {
                    row.id_number = names::corrupt_uscc(rng, &row.id_number);
                }
            }
            Some(BadKind::ResidentIdCheck) => {
                row.id_number = names::corrupt_resident_id(rng, &row.id_number);
            }
            Some(BadKind::ImpossibleDate) => {
                let year = row
                    .filed_on
                    .get(..4)
                    .and_then(|y| y.parse().ok())
                    .unwrap_or(2025);
                let date = calendar::impossible(rng, year, "-");
                match rng.gen_range(0..3) {
                    0 => row.filed_on = date,
                    1 => row.decided_on = date,
                    _ => row.closed_on = date,
                }
            }
            Some(BadKind::MissingValue) => {
                if rng.gen_bool(0.5) {
                    row.party_name.clear();
                } else {
                    row.case_id.clear();
                }
            }
            Some(BadKind::UnknownCode) => match variant {
                0 => row.action = "行政奖励".into(),
                1 => row.party_kind = "事业单位".into(),
                _ => row.penalty_kinds.push_str("、责令改正"),
            },
            Some(BadKind::DuplicateKey) => {}
            Some(BadKind::TooPrecise) => row.fine = names::too_precise_yuan(rng),
            Some(BadKind::ForeignUnit) => {
                let (code, name, short, doc) = FOREIGN_UNITS[variant];
                self.foreign_seq += 1;
                let year = row.filed_on.get(..4).unwrap_or("2025");
                row.case_id = format!("{short}-{year}-{:06}", self.foreign_seq);
                row.unit_code = code.into();
                row.unit_name = name.into();
                row.decision_number =
                    row.decision_number
                        .replacen(&format!("玄武{}", UNITS[variant].abbr), doc, 1);
            }
        }
        Ok(row)
    }

    /// A valid row shaped by `plan`.
    fn row(&mut self, plan: Plan) -> Result<Row, SampleError> {
        let action = match plan.action {
            Some(a) => a,
            None => self.random_action(),
        };
        let u = match plan.unit {
            Some(u) => u,
            None => self.random_unit(action),
        };
        let unit = &UNITS[u];
        // A forced unit (duplicate or foreign rows) may not levy anything.
        let action = if action == Action::Levy && unit.levies.is_empty() {
            Action::Inspection
        } else {
            action
        };
        let licence = (action == Action::Licensing).then(|| pick(&mut self.rng, unit.licenses));
        let kind = match plan.party {
            Some(k) => k,
            None => self.random_party_kind(action, unit, licence),
        };
        let party = self.party(kind, unit, licence)?;
        let (filed, decided, closed) = self.dates(action);
        let year = filed.year();
        let case_id = match plan.case_id {
            Some(id) => id,
            None => {
                let slot = &mut self.case_seq[u][year_index(year)];
                *slot += 1;
                format!("XW-{}-{year}-{:06}", unit.short, *slot)
            }
        };
        let natural = party.kind == PartyKind::Natural;
        let mut row = Row {
            unit: u,
            case_id,
            action: action.label().into(),
            unit_name: unit.name.into(),
            unit_code: unit.code.into(),
            party_kind: party.kind.label().into(),
            id_type: if natural {
                "身份证"
            } else {
                "统一社会信用代码"
            }
            .into(),
            id_number: party.id_number,
            legal_rep: party.rep,
            address: party.address,
            phone: party.phone,
            filed_on: filed.format("-"),
            decided_on: decided.format("-"),
            closed_on: closed.format("-"),
            major: yes_no(false),
            legal_review: yes_no(false),
            collective: yes_no(false),
            suspected: yes_no(false),
            transfer_status: "未移送".into(),
            party_name: party.name,
            ..Row::default()
        };
        match action {
            Action::Penalty => self.penalty(&mut row, u, filed, decided, closed, plan.needs_fine),
            Action::Licensing => {
                if let Some(item) = licence {
                    self.licensing(&mut row, u, item, decided);
                }
            }
            Action::Inspection => self.inspection(&mut row, u),
            Action::Compulsion => self.compulsion(&mut row, u, decided),
            Action::Levy => self.levy(&mut row, u, decided),
            Action::Other => self.other(&mut row, u),
        }
        let rng = &mut self.rng;
        row.status = match rng.gen_range(0..100) {
            0..2 => "已撤销",
            2..6 => "已更正",
            _ => "正常",
        }
        .into();
        let restricted = match (natural, action) {
            (true, _) => 0.35,
            (false, Action::Penalty | Action::Licensing) => 0.06,
            _ => 0.2,
        };
        row.disclosure = if rng.gen_bool(restricted) {
            "不公开"
        } else {
            "公开"
        }
        .into();
        if action == Action::Licensing && row.status == "已撤销" {
            row.license_state = "无效".into();
        }
        if action == Action::Penalty {
            self.penalty_publicity(&mut row, u, party.kind, decided);
        }
        self.remark(&mut row, action);
        Ok(row)
    }

    /// The penalty's 暂扣或吊销证照 and 公示截止期.
    fn penalty_publicity(&mut self, row: &mut Row, u: usize, kind: PartyKind, decided: Day) {
        if row.penalty_kinds.contains("暂扣许可证件") || row.penalty_kinds.contains("吊销许可证件")
        {
            row.license_affected = self.license_held(u, kind, decided);
        }
        // Units that fill 公示截止期 enter the date themselves; the sample does not model a
        // statutory publicity period (the gateway takes the date as the source states it). A
        // decision that is not public has no publicity to end.
        if row.disclosure == "公开" && self.extra.gen_bool(0.8) {
            let years = *pick(&mut self.extra, &[1, 3, 3]);
            row.publicity_until = decided.years_later_minus_one(years).format("-");
        }
    }

    /// A licence of unit `u` a party of `kind` holds, as 暂扣或吊销证照 names it: the
    /// certificate and its number (issued in the five years before `decided`).
    fn license_held(&mut self, u: usize, kind: PartyKind, decided: Day) -> String {
        let rng = &mut self.extra;
        let licences = UNITS[u].licenses;
        let held: Vec<&LicenseItem> = licences.iter().filter(|l| kind.holds(l)).collect();
        let item = match held.as_slice() {
            [] => pick(rng, licences),
            some => *pick(rng, some),
        };
        let year = decided.year() - rng.gen_range(0..5);
        let n = rng.gen_range(1..=2_000);
        format!("{}（{}{year}{n:05}）", item.cert, item.prefix)
    }

    /// 备注: mostly empty; a revoked or corrected case often says why.
    fn remark(&mut self, row: &mut Row, action: Action) {
        let rng = &mut self.extra;
        let (share, remarks): (f64, &[&str]) = match (row.status.as_str(), action) {
            ("已撤销", _) => (
                0.6,
                &["经行政复议撤销", "经行政诉讼判决撤销", "本机关自行纠错撤销"],
            ),
            ("已更正", _) => (
                0.6,
                &[
                    "更正当事人名称笔误",
                    "更正决定日期录入错误",
                    "更正法律依据条款",
                ],
            ),
            (_, Action::Penalty) => (0.03, &["当事人已履行完毕", "当事人已申请行政复议"]),
            _ => (0.02, &["数据由原业务系统迁移", "纸质材料已归档"]),
        };
        if rng.gen_bool(share) {
            row.remarks = (*pick(rng, remarks)).into();
        }
    }

    fn penalty(
        &mut self,
        row: &mut Row,
        u: usize,
        filed: Day,
        decided: Day,
        closed: Day,
        needs_fine: bool,
    ) {
        let unit = &UNITS[u];
        let rng = &mut self.rng;
        let has_fine = |c: &PenaltyCase| c.kinds.iter().any(|k| k.contains("罚款"));
        let suspect = rng.gen_bool(0.03);
        let mut cases: Vec<&PenaltyCase> = unit
            .penalties
            .iter()
            .filter(|c| (!suspect || !c.crime.is_empty()) && (!needs_fine || has_fine(c)))
            .collect();
        if cases.is_empty() {
            cases = unit
                .penalties
                .iter()
                .filter(|c| !needs_fine || has_fine(c))
                .collect();
        }
        if cases.is_empty() {
            cases = unit.penalties.iter().collect();
        }
        let case = *pick(rng, &cases);
        let suspect = suspect && !case.crime.is_empty();
        let combos: Vec<&str> = case
            .kinds
            .iter()
            .copied()
            .filter(|k| !needs_fine || k.contains("罚款"))
            .collect();
        let combo = if combos.is_empty() {
            "罚款"
        } else {
            *pick(rng, &combos)
        };

        let mut parts = Vec::new();
        let mut fine = 0;
        let mut confiscated = 0;
        for kind in combo.split('、') {
            match kind {
                "警告" => parts.push("给予警告".to_string()),
                "通报批评" => parts.push("给予通报批评".to_string()),
                "罚款" => {
                    fine = names::fine_yuan(rng, case.fine.0, case.fine.1);
                    parts.push(format!("罚款人民币{fine}元"));
                }
                "没收违法所得" => {
                    confiscated = rng.gen_range(2_000..=5_000_000u64);
                    parts.push(format!(
                        "没收违法所得人民币{}元",
                        names::yuan_2dp(confiscated)
                    ));
                }
                "没收非法财物" => {
                    parts.push(format!("没收涉案物品{}件", rng.gen_range(3..=600)))
                }
                "责令停产停业" => {
                    parts.push(format!("责令停业整顿{}日", pick(rng, &[7, 15, 30])))
                }
                "降低资质等级" => parts.push("降低资质等级".to_string()),
                "限制开展生产经营活动" => {
                    parts.push(format!("限制开展生产经营活动{}个月", rng.gen_range(1..=6)));
                }
                other => parts.push(other.to_string()),
            }
        }
        let basis = format!("{}{}", case.law, case.article);
        let act_day = calendar::between(rng, filed.plus(-60), filed);
        let mut facts = format!("经查，当事人于{}{}", act_day.chinese(), case.conduct);
        if confiscated > 0 {
            facts.push_str(&format!("，违法所得{}元", names::yuan_2dp(confiscated)));
        }
        facts.push_str(&format!("。上述行为违反了{}的有关规定。", case.law));

        row.title = format!("{}{}案", row.party_name, case.cause);
        row.cause = case.cause.into();
        row.facts = facts;
        row.decision = format!("依据{basis}，决定对当事人{}。", parts.join("，"));
        row.legal_basis = basis;
        row.penalty_kinds = combo.into();
        if fine > 0 {
            row.fine = if rng.gen_bool(0.3) {
                format!("{fine}.00")
            } else {
                fine.to_string()
            };
        }
        if confiscated > 0 {
            row.confiscated = names::yuan_2dp(confiscated);
        }
        let severe = ["吊销许可证件", "责令停产停业", "降低资质等级", "责令关闭"];
        let major = fine >= 100_000 || suspect || severe.iter().any(|k| combo.contains(k));
        let reviewed = major || fine >= 10_000 || rng.gen_bool(0.5);
        row.major = yes_no(major);
        row.legal_review = yes_no(reviewed);
        row.collective = yes_no(major);
        if suspect {
            let status = match rng.gen_range(0..100) {
                0..30 => "已移送",
                30..50 => "已受理",
                50..70 => "已立案",
                70..80 => "不予立案",
                80..85 => "已退回",
                _ => "建议移送",
            };
            row.suspected = yes_no(true);
            row.transfer_status = status.into();
            row.charge = case.crime.into();
            if status != "建议移送" {
                let on = calendar::between(rng, filed, closed);
                row.transferred_on = on.format("-");
                row.receiving_organ = (*pick(rng, &RECEIVING_ORGANS)).into();
                let n = self.next_doc(u, TRANSFER_DOC, on.year());
                row.transfer_doc = format!("玄武{}移〔{}〕{n}号", unit.abbr, on.year());
            }
        }
        row.decision_number = self.doc_number(u, Action::Penalty, decided.year());
    }

    fn licensing(&mut self, row: &mut Row, u: usize, item: &LicenseItem, decided: Day) {
        let unit = &UNITS[u];
        let rng = &mut self.rng;
        let how = *pick(rng, &["新办", "新办", "新办", "变更", "延续"]);
        let valid_to = decided.years_later_minus_one(item.years);
        row.document_name = match how {
            "变更" => "准予变更行政许可决定书",
            "延续" => "准予延续行政许可决定书",
            _ => "准予行政许可决定书",
        }
        .into();
        // 当前状态 on the export date: lapsed when the last valid day is before it (and revoked
        // when the decision is, set once the case status is known).
        row.license_state = if valid_to <= LAST { "无效" } else { "有效" }.into();
        row.title = format!("{}申请{}（{how}）", row.party_name, item.cert);
        row.cause = format!("{}（{how}）", item.cert);
        row.legal_basis = item.basis.into();
        row.decision = match how {
            "变更" => format!("准予变更，换发{}", item.cert),
            "延续" => format!("准予延续，{}有效期至{}", item.cert, valid_to.chinese()),
            _ => format!("准予行政许可，核发{}", item.cert),
        };
        row.license_category = item.category.into();
        row.license_name = item.cert.into();
        row.valid_from = decided.format("-");
        row.valid_to = valid_to.format("-");
        let year = decided.year();
        let n = self.next_doc(u, Action::Licensing.doc_index(), year);
        row.license_number = format!("{}{year}{n:05}", item.prefix);
        row.decision_number = format!("玄武{}许〔{year}〕{n}号", unit.abbr);
    }

    fn inspection(&mut self, row: &mut Row, u: usize) {
        let unit = &UNITS[u];
        let rng = &mut self.rng;
        let kind = *pick(
            rng,
            &[
                "日常监督检查",
                "日常监督检查",
                "双随机抽查",
                "专项检查",
                "投诉举报核查",
            ],
        );
        row.title = format!("对{}的{kind}", row.party_name);
        row.cause = kind.into();
        row.legal_basis = unit.check_basis.into();
        let (decision, facts) = match rng.gen_range(0..10) {
            0..6 => ("未发现违法行为", ""),
            6..8 => ("发现问题，已当场责令改正", "检查发现部分台账记录不完整"),
            8 => ("发现问题，已下达责令限期整改通知书", "检查发现存在安全隐患"),
            _ => (
                "发现涉嫌违法行为，已移交立案调查",
                "检查发现涉嫌违法经营行为",
            ),
        };
        row.decision = decision.into();
        row.facts = facts.into();
    }

    fn compulsion(&mut self, row: &mut Row, u: usize, decided: Day) {
        let unit = &UNITS[u];
        let rng = &mut self.rng;
        let case = pick(rng, unit.penalties);
        let how = *pick(rng, &["查封", "扣押"]);
        row.title = format!("对{}涉嫌{}采取{how}措施", row.party_name, case.cause);
        row.cause = format!("涉嫌{}", case.cause);
        row.facts = format!(
            "执法人员现场检查发现当事人涉嫌{}，涉案物品可能灭失或者以后难以取得。",
            case.conduct
        );
        row.legal_basis = format!(
            "《中华人民共和国行政强制法》第二十二条、{}{}",
            case.law, case.article
        );
        row.decision = format!(
            "对当事人涉案物品{}件予以{how}，期限三十日。",
            rng.gen_range(2..=400)
        );
        row.legal_review = yes_no(rng.gen_bool(0.5));
        row.decision_number = self.doc_number(u, Action::Compulsion, decided.year());
    }

    fn levy(&mut self, row: &mut Row, u: usize, decided: Day) {
        let unit = &UNITS[u];
        let rng = &mut self.rng;
        let (item, basis) = *pick(rng, unit.levies);
        let amount = rng.gen_range(10_000..=20_000_000u64);
        row.title = format!("{}{item}征收", row.party_name);
        row.cause = format!("征收{item}");
        row.legal_basis = basis.into();
        row.decision = format!("征收{item}人民币{}元", names::yuan_2dp(amount));
        row.decision_number = self.doc_number(u, Action::Levy, decided.year());
    }

    fn other(&mut self, row: &mut Row, u: usize) {
        let unit = &UNITS[u];
        let rng = &mut self.rng;
        let (item, decision) = *pick(
            rng,
            &[
                ("行政指导", "已向当事人送达行政指导书"),
                ("行政约谈", "已约谈当事人并督促整改"),
                ("信用修复", "准予信用修复"),
                ("投诉举报处理", "已调查处理并答复投诉举报人"),
            ],
        );
        row.title = format!("{}{item}", row.party_name);
        row.cause = item.into();
        row.legal_basis = unit.check_basis.into();
        row.decision = decision.into();
    }
}

/// CSV lines encoded to GB18030 one at a time.
struct Gb18030Csv<W: Write> {
    out: W,
    chars: Gb18030Chars,
    line: String,
    bytes: Vec<u8>,
}

impl<W: Write> Gb18030Csv<W> {
    fn new(out: W) -> Self {
        Self {
            out,
            chars: Gb18030Chars::new(),
            line: String::new(),
            bytes: Vec::new(),
        }
    }

    /// Writes one record, quoting fields that need it, ending with CRLF.
    fn record(&mut self, fields: &[&str]) -> std::io::Result<()> {
        self.line.clear();
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                self.line.push(',');
            }
            if field.contains([',', '"', '\r', '\n']) {
                self.line.push('"');
                self.line.push_str(&field.replace('"', "\"\""));
                self.line.push('"');
            } else {
                self.line.push_str(field);
            }
        }
        self.line.push_str("\r\n");
        self.bytes.clear();
        self.chars.encode(&self.line, &mut self.bytes);
        self.out.write_all(&self.bytes)
    }
}

/// GB18030 encoding with a per-character cache. encoding_rs (built without its
/// `fast-gb-hanzi-encode` feature) finds each ideograph's bytes by searching its index, which made
/// encoding most of the writer's run time; GB18030 is stateless, so the bytes encoding_rs gives for
/// a character can be kept and reused. Sample text uses a few hundred distinct characters.
struct Gb18030Chars {
    /// Basic Multilingual Plane: (byte count, bytes); a count of 0 means not encoded yet.
    bmp: Vec<(u8, [u8; 4])>,
}

impl Gb18030Chars {
    fn new() -> Self {
        Self {
            bmp: vec![(0, [0; 4]); 0x1_0000],
        }
    }

    /// Appends the GB18030 bytes of `text` to `out`.
    fn encode(&mut self, text: &str, out: &mut Vec<u8>) {
        for c in text.chars() {
            if c.is_ascii() {
                out.push(c as u8);
                continue;
            }
            let (n, bytes) = match self.bmp.get_mut(c as usize) {
                Some(slot) => {
                    if slot.0 == 0 {
                        *slot = Self::encode_char(c);
                    }
                    *slot
                }
                None => Self::encode_char(c),
            };
            out.extend_from_slice(&bytes[..usize::from(n)]);
        }
    }

    /// One character through encoding_rs (every Unicode character has a GB18030 encoding of
    /// two or four bytes).
    fn encode_char(c: char) -> (u8, [u8; 4]) {
        let mut utf8 = [0; 4];
        let (encoded, _, _) = GB18030.encode(c.encode_utf8(&mut utf8));
        let mut bytes = [0; 4];
        let n = encoded.len().min(4);
        bytes[..n].copy_from_slice(&encoded[..n]);
        (n as u8, bytes)
    }
}

/// Writes a sunshine CSV of `rows` rows (bad ones included) and returns the per-kind bad counts.
pub(crate) fn write(
    path: &Path,
    rows: u64,
    bad_fraction: f64,
    seed: u64,
) -> Result<(SampleFile, BadCounts), SampleError> {
    super::check_fraction(bad_fraction)?;
    super::create_parent(path)?;
    let file = File::create(path).map_err(SampleError::io(path))?;
    let mut csv = Gb18030Csv::new(BufWriter::with_capacity(1 << 20, file));
    csv.record(&HEADER).map_err(SampleError::io(path))?;
    let mut generator = Generator::new(seed);
    let mut picker = BadPicker::new(&BadKind::ALL, bad_fraction);
    for _ in 0..rows {
        let row = generator.next_row(&mut picker)?;
        csv.record(&row.cells()).map_err(SampleError::io(path))?;
    }
    csv.out.flush().map_err(SampleError::io(path))?;
    let file = SampleFile {
        adapter: SUNSHINE.into(),
        path: path.to_path_buf(),
        rows,
        bad_rows: picker.total(),
    };
    Ok((file, picker.counts()))
}

/// Writes the district power-sunshine system's export: a GB18030 CSV whose header holds every
/// column of the `sunshine` adapter, with `rows` rows of which about `bad_fraction` carry one
/// deliberate defect each. Streams row by row; the same `seed` gives the same bytes.
pub fn write_sunshine_csv(
    path: &Path,
    rows: u64,
    bad_fraction: f64,
    seed: u64,
) -> Result<SampleFile, SampleError> {
    write(path, rows, bad_fraction, seed).map(|(file, _)| file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeSet, HashMap, HashSet};
    use xianjie_model::{Fen, MoneyUnit, ResidentId, Uscc};

    const ADAPTER: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../adapters/sunshine/adapter.toml"
    );

    fn adapter() -> toml::Table {
        toml::from_str(&std::fs::read_to_string(ADAPTER).unwrap()).unwrap()
    }

    /// Reads a written file back: GB18030 decoded, parsed as CSV into maps by header.
    fn read_back(path: &Path) -> (Vec<String>, Vec<HashMap<String, String>>) {
        let bytes = std::fs::read(path).unwrap();
        let (text, _, had_errors) = GB18030.decode(&bytes);
        assert!(!had_errors);
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        let rows = reader
            .records()
            .map(|r| {
                let r = r.unwrap();
                assert_eq!(r.len(), header.len());
                header
                    .iter()
                    .cloned()
                    .zip(r.iter().map(String::from))
                    .collect()
            })
            .collect();
        (header, rows)
    }

    #[test]
    fn cached_encoding_matches_encoding_rs() {
        let text = "办件编号,南京市玄武区市场监督管理局,XW-SJJ-2025-000123,¥€😀,《》〔〕（）\r\n";
        let mut chars = Gb18030Chars::new();
        for _ in 0..2 {
            let mut out = Vec::new();
            chars.encode(text, &mut out);
            assert_eq!(out, GB18030.encode(text).0.as_ref());
        }
    }

    #[test]
    fn header_is_the_adapters_from_columns() {
        let fields = adapter()["fields"].as_table().unwrap().clone();
        let from: BTreeSet<String> = fields
            .values()
            .filter_map(|f| f.get("from")?.as_str().map(String::from))
            .collect();
        let header: BTreeSet<String> = HEADER.iter().map(|s| s.to_string()).collect();
        assert_eq!(header.len(), HEADER.len(), "duplicate header column");
        assert_eq!(header, from);
    }

    #[test]
    fn units_match_the_adapter() {
        let units = adapter()["units"].as_array().unwrap().clone();
        assert_eq!(units.len(), UNITS.len());
        for (u, t) in UNITS.iter().zip(&units) {
            assert_eq!(u.code, t["code"].as_str().unwrap());
            assert_eq!(u.name, t["name"].as_str().unwrap());
            assert!(Uscc::parse(u.code).is_ok());
            assert!(
                u.penalties
                    .iter()
                    .any(|c| c.kinds.iter().any(|k| k.contains("罚款"))),
                "{}",
                u.name
            );
            assert!(!u.licenses.is_empty());
        }
        let codes: HashSet<&str> = UNITS.iter().map(|u| u.code).collect();
        for (code, ..) in FOREIGN_UNITS {
            assert!(Uscc::parse(code).is_ok());
            assert!(!codes.contains(code));
        }
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let a = write_sunshine_csv(&dir.path().join("a.csv"), 300, 0.1, 5).unwrap();
        let b = write_sunshine_csv(&dir.path().join("b.csv"), 300, 0.1, 5).unwrap();
        let c = write_sunshine_csv(&dir.path().join("c.csv"), 300, 0.1, 6).unwrap();
        let bytes = std::fs::read(&a.path).unwrap();
        assert_eq!(bytes, std::fs::read(&b.path).unwrap());
        assert_ne!(bytes, std::fs::read(&c.path).unwrap());
        assert_eq!((a.rows, a.adapter.as_str()), (300, "sunshine"));
        assert_eq!(a.bad_rows, b.bad_rows);
    }

    /// Every row of a bad_fraction = 0 file satisfies the ingest rules listed for valid rows.
    #[test]
    fn valid_rows_satisfy_the_validation_rules() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/sunshine-export.csv");
        let file = write_sunshine_csv(&path, 3_000, 0.0, 11).unwrap();
        assert_eq!((file.rows, file.bad_rows), (3_000, 0));
        let (header, rows) = read_back(&path);
        assert_eq!(header, HEADER);
        assert_eq!(rows.len(), 3_000);

        let fields = adapter()["fields"].as_table().unwrap().clone();
        let codes_of = |column: &str| -> HashSet<String> {
            let field = fields
                .values()
                .find(|f| f.get("from").and_then(|v| v.as_str()) == Some(column))
                .unwrap();
            field["codes"].as_table().unwrap().keys().cloned().collect()
        };
        let units: HashMap<&str, &str> = UNITS.iter().map(|u| (u.code, u.name)).collect();
        let date = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let limit = date("2026-11-01");
        let mut keys = HashSet::new();
        let mut actions: HashMap<String, usize> = HashMap::new();
        let mut suspected = 0;
        let mut statuses = HashSet::new();
        let (mut publicity, mut public_penalties, mut remarks) = (0, 0, 0);
        let mut licence_states: HashMap<&str, usize> = HashMap::new();
        for r in &rows {
            for column in [
                "办件类型",
                "当事人类型",
                "证件类型",
                "许可类别",
                "涉嫌犯罪",
                "移送状态",
                "办件状态",
                "公开属性",
                "许可状态",
            ] {
                if !r[column].is_empty() {
                    assert!(
                        codes_of(column).contains(&r[column]),
                        "{column} = {}",
                        r[column]
                    );
                }
            }
            for kind in r["处罚种类"].split('、').filter(|k| !k.is_empty()) {
                assert!(codes_of("处罚种类").contains(kind), "{kind}");
            }
            assert_eq!(
                units.get(r["执法主体统一社会信用代码"].as_str()),
                Some(&r["执法主体名称"].as_str())
            );
            let id = &r["办件编号"];
            assert!(
                !id.is_empty()
                    && id.len() <= 64
                    && !id.contains('/')
                    && !id.chars().any(char::is_control)
            );
            assert!(
                keys.insert((r["执法主体统一社会信用代码"].clone(), id.clone())),
                "duplicate {id}"
            );
            assert!(!r["办件名称"].is_empty() && !r["当事人名称"].is_empty());
            match r["当事人类型"].as_str() {
                "自然人" => {
                    assert_eq!(r["证件类型"], "身份证");
                    ResidentId::parse(&r["证件号码"]).unwrap();
                }
                _ => {
                    assert_eq!(r["证件类型"], "统一社会信用代码");
                    Uscc::parse(&r["证件号码"]).unwrap();
                }
            }
            let (filed, decided, closed) = (
                date(&r["立案日期"]),
                date(&r["决定日期"]),
                date(&r["结案日期"]),
            );
            assert!(
                filed <= decided && decided <= closed && closed <= limit,
                "{id}"
            );
            *actions.entry(r["办件类型"].clone()).or_default() += 1;
            let penalty = r["办件类型"] == "行政处罚";
            let licensing = r["办件类型"] == "行政许可";
            if penalty {
                assert!(!r["处罚种类"].is_empty());
                if r["处罚种类"].contains("罚款") {
                    assert!(
                        Fen::parse(&r["罚款金额（元）"], MoneyUnit::Yuan)
                            .unwrap()
                            .get()
                            > 0
                    );
                }
                if !r["没收金额（元）"].is_empty() {
                    Fen::parse(&r["没收金额（元）"], MoneyUnit::Yuan).unwrap();
                }
            } else {
                for c in ["处罚种类", "罚款金额（元）", "没收金额（元）"] {
                    assert!(r[c].is_empty(), "{c} on {}", r["办件类型"]);
                }
            }
            if penalty {
                let suspends = ["暂扣许可证件", "吊销许可证件"]
                    .iter()
                    .any(|k| r["处罚种类"].contains(k));
                assert_eq!(!r["暂扣或吊销证照"].is_empty(), suspends, "{id}");
                if !r["公示截止期"].is_empty() {
                    assert_eq!(r["公开属性"], "公开", "{id}");
                    assert!(date(&r["公示截止期"]) > date(&r["决定日期"]), "{id}");
                    publicity += 1;
                }
                public_penalties += usize::from(r["公开属性"] == "公开");
            } else {
                for c in ["暂扣或吊销证照", "公示截止期"] {
                    assert!(r[c].is_empty(), "{c} on {}", r["办件类型"]);
                }
            }
            if licensing {
                assert!(!r["许可证编号"].is_empty());
                let valid_to = date(&r["有效期至"]);
                assert!(date(&r["有效期自"]) <= valid_to);
                let how = &r["办件名称"][r["办件名称"].rfind('（').unwrap()..];
                let document = match how {
                    "（新办）" => "准予行政许可决定书",
                    "（变更）" => "准予变更行政许可决定书",
                    "（延续）" => "准予延续行政许可决定书",
                    other => panic!("{id}: {other}"),
                };
                assert_eq!(r["许可决定文书名称"], document, "{id}");
                let lapsed = r["办件状态"] == "已撤销" || valid_to < limit;
                let state = if lapsed { "无效" } else { "有效" };
                assert_eq!(r["许可状态"], state, "{id}");
                *licence_states.entry(state).or_default() += 1;
            } else {
                for c in [
                    "许可类别",
                    "许可证名称",
                    "许可证编号",
                    "有效期自",
                    "有效期至",
                    "许可决定文书名称",
                    "许可状态",
                ] {
                    assert!(r[c].is_empty(), "{c} on {}", r["办件类型"]);
                }
            }
            remarks += usize::from(!r["备注"].is_empty());
            if r["移送状态"] != "未移送" {
                assert_eq!(r["涉嫌犯罪"], "是");
                assert!(!r["涉嫌罪名"].is_empty());
                statuses.insert(r["移送状态"].clone());
                if r["移送状态"] != "建议移送" {
                    assert!(!r["接收机关"].is_empty());
                    assert!(date(&r["移送日期"]) <= limit);
                }
            }
            if r["涉嫌犯罪"] == "是" {
                suspected += 1;
            }
        }
        let share = |a: &str| actions.get(a).copied().unwrap_or(0) as f64 / rows.len() as f64;
        assert!((0.35..0.45).contains(&share("行政处罚")), "{actions:?}");
        assert!((0.20..0.30).contains(&share("行政许可")), "{actions:?}");
        assert!(share("行政检查") > 0.1 && share("行政强制") > 0.05 && share("行政征收") > 0.04);
        assert!(share("其他") > 0.03, "{actions:?}");
        assert!(suspected >= 10, "{suspected} suspected crimes");
        assert!(statuses.len() >= 3, "{statuses:?}");
        // Most public penalties carry 公示截止期; a few rows carry 备注; licences lapse.
        assert!(publicity * 10 >= public_penalties * 7, "{publicity}");
        assert!((15..300).contains(&remarks), "{remarks} remarks");
        assert!(licence_states.len() == 2, "{licence_states:?}");
    }

    /// The appended 双公示 columns are optional in the adapter, so an export of the older layout
    /// (the header without them) still loads.
    #[test]
    fn appended_columns_are_optional() {
        let fields = adapter()["fields"].as_table().unwrap().clone();
        let older = HEADER
            .iter()
            .position(|&c| c == "许可决定文书名称")
            .unwrap();
        for column in &HEADER[older..] {
            let field = fields
                .values()
                .find(|f| f.get("from").and_then(|v| v.as_str()) == Some(column))
                .unwrap();
            assert_eq!(
                field.get("optional").and_then(|v| v.as_bool()),
                Some(true),
                "{column}"
            );
        }
        assert!(
            fields
                .values()
                .filter(|f| f.get("optional").is_some())
                .all(|f| HEADER[older..].contains(&f["from"].as_str().unwrap())),
            "only the appended columns are optional"
        );
    }

    /// 暂扣或吊销证照 names a licence the unit grants to that kind of party, with a number
    /// issued before the decision.
    #[test]
    fn licence_held_is_one_the_unit_grants() {
        let mut generator = Generator::new(3);
        let decided = Day::from_ymd(2025, 6, 1);
        for (u, unit) in UNITS.iter().enumerate() {
            for kind in [PartyKind::Legal, PartyKind::Individual, PartyKind::Org] {
                let named = generator.license_held(u, kind, decided);
                let item = unit
                    .licenses
                    .iter()
                    .find(|l| named.starts_with(&format!("{}（{}", l.cert, l.prefix)))
                    .unwrap_or_else(|| panic!("{named} is not a licence of {}", unit.name));
                // The party's kind holds it, unless the unit grants that kind nothing.
                let fits = unit.licenses.iter().any(|l| kind.holds(l));
                assert!(kind.holds(item) || !fits, "{named} for {kind:?}");
                let number = &named[item.cert.len() + "（".len()..named.len() - "）".len()];
                let year: i32 = number[item.prefix.len()..][..4].parse().unwrap();
                assert!((2021..=2025).contains(&year), "{named}");
            }
        }
    }

    #[test]
    fn every_bad_kind_occurs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.csv");
        let (file, counts) = write(&path, 200, 0.5, 21).unwrap();
        assert_eq!(file.rows, 200);
        assert!(counts.iter().all(|&c| c >= 1), "{counts:?}");
        assert_eq!(counts.iter().sum::<u64>(), file.bad_rows);
        assert!((60..=140).contains(&file.bad_rows), "{}", file.bad_rows);
        let (_, rows) = read_back(&path);
        assert_eq!(rows.len(), 200);
        // Bad rows are visible in the data: invalid identifiers, duplicated keys, unknown codes.
        let bad_ids = rows
            .iter()
            .filter(|r| match r["证件类型"].as_str() {
                "身份证" => ResidentId::parse(&r["证件号码"]).is_err(),
                _ => Uscc::parse(&r["证件号码"]).is_err(),
            })
            .count();
        assert!(bad_ids >= 1);
        let mut keys = HashSet::new();
        let duplicates = rows
            .iter()
            .filter(|r| {
                !keys.insert((r["执法主体统一社会信用代码"].clone(), r["办件编号"].clone()))
            })
            .count();
        assert!(duplicates >= 1);
        assert!(rows.iter().any(
            |r| Fen::parse(&r["罚款金额（元）"], MoneyUnit::Yuan).is_err()
                && !r["罚款金额（元）"].is_empty()
        ));
        assert!(rows.iter().any(|r| r["执法主体名称"].contains("秦淮区")));
    }

    #[test]
    #[ignore = "performance check; run with --release -- --ignored"]
    fn million_rows_quickly() {
        let dir = tempfile::tempdir().unwrap();
        let start = std::time::Instant::now();
        let file = write_sunshine_csv(&dir.path().join("big.csv"), 1_000_000, 0.02, 1).unwrap();
        let took = start.elapsed();
        let size = std::fs::metadata(&file.path).unwrap().len();
        eprintln!("1,000,000 rows, {size} bytes in {took:?}");
        assert!(took.as_secs() < 30);
    }
}
