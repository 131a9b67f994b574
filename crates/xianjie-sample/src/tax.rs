//! The district tax bureau's 双公示 export (`tax` adapter): UTF-8 XML with a `<HEADER>` and
//! `SGS_DATA/RECORDS/*` records, `XZCF` for administrative penalties and `XZXK` for licensing, each
//! holding the 2021 双公示 items as child elements (text 处罚类别, 有效期至 `XK_YXQZI`, 当前状态,
//! no 案件名称; dates `YYYY-MM-DD`). Written record by record.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::bad::{BadCounts, BadKind, BadPicker, KeyRing};
use super::calendar::{self, Day, EXPORT_DATE, FIRST, LAST};
use super::names::{self, pick};
use super::plant::{self, Plants};
use super::{SampleError, SampleFile, TAX};

/// The bureau (the adapter's only unit).
const BUREAU: (&str, &str) = ("11320102507529170Q", "国家税务总局南京市玄武区税务局");
/// A bureau of the neighbouring district, for records of a unit the adapter does not cover.
const FOREIGN_BUREAU: (&str, &str) = ("11320106507530145M", "国家税务总局南京市鼓楼区税务局");

/// Element names of one record kind.
struct Elements {
    record: &'static str,
    wsh: &'static str,
    name: &'static str,
    kind: &'static str,
    uscc: &'static str,
    id_type: &'static str,
    resident_id: &'static str,
    representative: &'static str,
    date: &'static str,
    organ: &'static str,
    organ_code: &'static str,
    /// 数据来源单位 and its code: the deciding bureau itself.
    source: &'static str,
    source_code: &'static str,
}

const PENALTY: Elements = Elements {
    record: "XZCF",
    wsh: "CF_WSH",
    name: "CF_XDR_MC",
    kind: "CF_XDR_LB",
    uscc: "CF_XDR_SHXYM",
    id_type: "CF_XDR_ZJLX",
    resident_id: "CF_XDR_ZJHM",
    representative: "CF_FRDB",
    date: "CF_JDRQ",
    organ: "CF_CFJG",
    organ_code: "CF_CFJGDM",
    source: "CF_SJLY",
    source_code: "CF_SJLYDM",
};

const LICENSING: Elements = Elements {
    record: "XZXK",
    wsh: "XK_WSH",
    name: "XK_XDR_MC",
    kind: "XK_XDR_LB",
    uscc: "XK_XDR_SHXYM",
    id_type: "XK_XDR_ZJLX",
    resident_id: "XK_XDR_ZJHM",
    representative: "XK_FRDB",
    date: "XK_JDRQ",
    organ: "XK_XKJG",
    organ_code: "XK_XKJGDM",
    source: "XK_LYDW",
    source_code: "XK_LYDWDM",
};

/// A tax violation.
struct TaxCase {
    /// 违法行为 (CF_WFXW).
    cause: &'static str,
    /// What the party did, as a clause of CF_SY.
    conduct: &'static str,
    /// CF_YJ.
    basis: &'static str,
    /// Penalty categories (CF_CFLB) to choose from, each one or more 2021 labels joined by `;`.
    kinds: &'static [&'static str],
    /// Fine range in yuan.
    fine: (u64, u64),
    /// Whether natural persons commit it.
    personal: bool,
    /// Years the decision stays on public display (公示截止期 CF_GSJZQ): one for most, three for
    /// the serious violations. Plausible periods for a sample, not a rule the gateway applies.
    publicity_years: i32,
}

/// The 处罚类别 label of a fine.
const FINE: &str = "罚款";

const COLLECTION_LAW: &str = "《中华人民共和国税收征收管理法》";
const INVOICE_RULES: &str = "《中华人民共和国发票管理办法》";

const CASES: [TaxCase; 9] = [
    TaxCase {
        cause: "未按照规定期限办理纳税申报和报送纳税资料",
        conduct: "未按照规定期限办理增值税及附加税费纳税申报",
        basis: "《中华人民共和国税收征收管理法》第六十二条",
        kinds: &["罚款"],
        fine: (200, 2_000),
        personal: true,
        publicity_years: 1,
    },
    TaxCase {
        cause: "未按照规定开具发票",
        conduct: "销售货物未按照规定开具发票",
        basis: "《中华人民共和国发票管理办法》第三十三条",
        kinds: &["罚款", "罚款;没收违法所得", "警告"],
        fine: (100, 10_000),
        personal: false,
        publicity_years: 1,
    },
    TaxCase {
        cause: "丢失发票",
        conduct: "丢失已开具的增值税普通发票",
        basis: "《中华人民共和国发票管理办法》第三十六条",
        kinds: &["罚款", "警告"],
        fine: (100, 3_000),
        personal: false,
        publicity_years: 1,
    },
    TaxCase {
        cause: "未按照规定设置、保管账簿",
        conduct: "未按照规定设置、保管账簿和记账凭证",
        basis: "《中华人民共和国税收征收管理法》第六十条第一款",
        kinds: &["罚款"],
        fine: (500, 10_000),
        personal: false,
        publicity_years: 1,
    },
    TaxCase {
        cause: "逃避缴纳税款",
        conduct: "通过虚假纳税申报少缴增值税及附加税费",
        basis: "《中华人民共和国税收征收管理法》第六十三条第一款",
        kinds: &["罚款"],
        fine: (10_000, 800_000),
        personal: false,
        publicity_years: 3,
    },
    TaxCase {
        cause: "扣缴义务人应扣未扣税款",
        conduct: "未按照规定代扣代缴员工个人所得税",
        basis: "《中华人民共和国税收征收管理法》第六十九条",
        kinds: &["罚款"],
        fine: (1_000, 50_000),
        personal: false,
        publicity_years: 1,
    },
    TaxCase {
        cause: "虚开发票",
        conduct: "为他人虚开增值税普通发票",
        basis: "《中华人民共和国发票管理办法》第三十五条",
        kinds: &["罚款;没收违法所得"],
        fine: (50_000, 500_000),
        personal: false,
        publicity_years: 3,
    },
    TaxCase {
        cause: "未依法办理个人所得税综合所得汇算清缴",
        conduct: "取得综合所得需要办理汇算清缴但未依法办理纳税申报",
        basis: "《中华人民共和国税收征收管理法》第六十四条第二款",
        kinds: &["罚款"],
        fine: (500, 20_000),
        personal: true,
        publicity_years: 1,
    },
    TaxCase {
        cause: "未按照规定办理税务登记",
        conduct: "未按照规定期限申报办理税务登记",
        basis: "《中华人民共和国税收征收管理法》第六十条第一款",
        kinds: &["罚款"],
        fine: (200, 2_000),
        personal: true,
        publicity_years: 1,
    },
];

/// Items the bureau's own system writes after the 双公示 ones, for the supervision of transfers:
/// 逃避缴纳税款数额 (万元, like 罚款金额) and its share of the tax due (占应纳税额比例, a percent),
/// and 虚开金额 (the invoices' face value, 万元).
const EVADED: &str = "CF_TBSE";
const EVADED_SHARE: &str = "CF_TBSEBL";
const INVOICED: &str = "CF_XKJE";

/// The starter rules a tax penalty may meet, with the violation (CF_WFXW) of their cases.
const RULES: [(&str, &str); 2] = [
    ("tax-evasion-201", "逃避缴纳税款"),
    ("tax-invoice-fraud-205-1", "虚开发票"),
];

/// 行政许可决定文书名称 of every licence the bureau grants.
const LICENCE_DOCUMENT: &str = "准予税务行政许可决定书";
/// 备注 of a licence whose period has ended.
const EXPIRED: &str = "许可有效期已届满";

/// A tax licensing item: (certificate name XK_XKZS, category, basis, validity in days).
const LICENCES: [(&str, &str, &str, (i32, i32)); 5] = [
    (
        "增值税专用发票（增值税税控系统）最高开票限额审批",
        "普通",
        "《国务院对确需保留的行政审批项目设定行政许可的决定》第236项",
        (1_095, 1_095),
    ),
    (
        "对纳税人延期缴纳税款的核准",
        "核准",
        "《中华人民共和国税收征收管理法》第三十一条第二款",
        (30, 90),
    ),
    (
        "对纳税人延期申报的核准",
        "核准",
        "《中华人民共和国税收征收管理法》第二十七条第一款",
        (10, 30),
    ),
    (
        "对纳税人变更纳税定额的核准",
        "核准",
        "《中华人民共和国税收征收管理法实施细则》第四十七条",
        (365, 365),
    ),
    (
        "对采取实际利润额预缴以外的其他企业所得税预缴方式的核定",
        "核准",
        "《中华人民共和国企业所得税法实施条例》第一百二十八条",
        (365, 365),
    ),
];

const INDUSTRIES: &[&str] = &[
    "商贸",
    "科技",
    "建筑工程",
    "餐饮管理",
    "信息技术",
    "贸易",
    "文化传媒",
    "房地产经纪",
    "物业管理",
    "企业管理咨询",
];
const SHOPS: &[&str] = &[
    "便利店",
    "餐馆",
    "五金店",
    "烟酒商行",
    "服装店",
    "理发店",
    "水果店",
];

/// A party of a tax record.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PartyKind {
    Legal,
    Individual,
    Natural,
}

impl PartyKind {
    /// The adapter's code value (XDR_LB).
    fn label(self) -> &'static str {
        match self {
            PartyKind::Legal => "法人及非法人组织",
            PartyKind::Individual => "个体工商户",
            PartyKind::Natural => "自然人",
        }
    }
}

/// One record: its element name and child elements in order.
struct Record {
    penalty: bool,
    fields: Vec<(&'static str, String)>,
}

impl Record {
    fn elements(&self) -> &'static Elements {
        if self.penalty { &PENALTY } else { &LICENSING }
    }

    fn get(&self, name: &str) -> &str {
        self.fields
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    fn set(&mut self, name: &'static str, value: String) {
        match self.fields.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.fields.push((name, value)),
        }
    }

    /// Adds an element before `next` (at the end when there is none).
    fn insert_before(&mut self, next: &str, name: &'static str, value: String) {
        let at = self
            .fields
            .iter()
            .position(|(n, _)| *n == next)
            .unwrap_or(self.fields.len());
        self.fields.insert(at, (name, value));
    }
}

/// What a bad or planted record needs from the generated record.
#[derive(Default)]
struct Plan {
    penalty: Option<bool>,
    party: Option<PartyKind>,
    wsh: Option<String>,
    needs_fine: bool,
    /// The violation, an index into [`CASES`].
    case: Option<usize>,
}

struct Generator {
    rng: ChaCha8Rng,
    /// The draws of the supervision amounts: another stream of the same seed, so adding them
    /// left every other element of every record as it was.
    facts: ChaCha8Rng,
    /// The leads to plant, and those planted.
    plants: Plants,
    /// Document sequence per (penalty, licensing) and year.
    seq: [[u32; 3]; 2],
    foreign_seq: u32,
    /// Earlier valid records: (is penalty, document number).
    keys: KeyRing<(bool, String)>,
}

impl Generator {
    fn record(&mut self, plan: Plan) -> Result<Record, SampleError> {
        let rng = &mut self.rng;
        let penalty = plan.penalty.unwrap_or_else(|| rng.gen_bool(0.6));
        let el = if penalty { &PENALTY } else { &LICENSING };
        let kind = plan.party.unwrap_or_else(|| {
            let natural = if penalty { 16 } else { 3 };
            match rng.gen_range(0..100) {
                x if x < natural => PartyKind::Natural,
                x if x < natural + 24 => PartyKind::Individual,
                _ => PartyKind::Legal,
            }
        });
        let (name, id) = match kind {
            PartyKind::Legal => (names::company(rng, INDUSTRIES), names::uscc(rng, "91")?),
            PartyKind::Individual => (names::shop(rng, SHOPS), names::uscc(rng, "92")?),
            PartyKind::Natural => {
                let male = rng.gen_bool(0.5);
                (names::person(rng), names::resident_id(rng, male)?)
            }
        };
        let decided = calendar::between(rng, FIRST, LAST);
        let year = decided.year();
        let wsh = match plan.wsh {
            Some(w) => w,
            None => {
                let slot = &mut self.seq[usize::from(!penalty)][(year - 2024).clamp(0, 2) as usize];
                *slot += 1;
                let n = *slot;
                format!("宁玄税{}〔{year}〕{n}号", if penalty { "罚" } else { "许" })
            }
        };
        let rng = &mut self.rng;
        let mut fields: Vec<(&'static str, String)> = Vec::with_capacity(22);
        fields.push((el.wsh, wsh.clone()));
        if penalty {
            penalty_fields(rng, &mut fields, kind, decided, plan.needs_fine, plan.case);
        } else {
            licensing_fields(rng, &mut fields, kind, decided, &wsh);
        }
        fields.push((el.name, name));
        fields.push((el.kind, kind.label().into()));
        if kind == PartyKind::Natural {
            fields.push((el.id_type, "身份证".into()));
            fields.push((el.resident_id, id));
        } else {
            fields.push((el.uscc, id));
            fields.push((el.representative, names::person(rng)));
        }
        fields.push((el.date, decided.format("-")));
        for (name, code) in [(el.organ, el.organ_code), (el.source, el.source_code)] {
            fields.push((name, BUREAU.1.into()));
            fields.push((code, BUREAU.0.into()));
        }
        Ok(Record { penalty, fields })
    }

    fn next_record(&mut self, picker: &mut BadPicker) -> Result<Record, SampleError> {
        let bad = picker.pick(&mut self.rng, !self.keys.is_empty());
        let mut plan = Plan::default();
        let mut target_unit = false;
        match bad {
            Some(BadKind::UsccCheck) => {
                target_unit = self.rng.gen_bool(0.25);
                if !target_unit {
                    plan.party = Some(*pick(
                        &mut self.rng,
                        &[PartyKind::Legal, PartyKind::Individual],
                    ));
                }
            }
            Some(BadKind::ResidentIdCheck) => plan.party = Some(PartyKind::Natural),
            Some(BadKind::DuplicateKey) => {
                if let Some((penalty, wsh)) = self.keys.pick(&mut self.rng) {
                    plan.penalty = Some(penalty);
                    plan.wsh = Some(wsh);
                }
            }
            Some(BadKind::TooPrecise) => {
                plan.penalty = Some(true);
                plan.needs_fine = true;
            }
            _ => {}
        }
        let mut record = self.record(plan)?;
        let el = record.elements();
        let rng = &mut self.rng;
        match bad {
            None => self
                .keys
                .push((record.penalty, record.get(el.wsh).to_string())),
            Some(BadKind::UsccCheck) => {
                let name = if target_unit { el.organ_code } else { el.uscc };
                let wrong = names::corrupt_uscc(rng, record.get(name));
                record.set(name, wrong);
            }
            Some(BadKind::ResidentIdCheck) => {
                let wrong = names::corrupt_resident_id(rng, record.get(el.resident_id));
                record.set(el.resident_id, wrong);
            }
            Some(BadKind::ImpossibleDate) => {
                let year = record
                    .get(el.date)
                    .get(..4)
                    .and_then(|y| y.parse().ok())
                    .unwrap_or(2025);
                record.set(el.date, calendar::impossible(rng, year, "-"));
            }
            Some(BadKind::MissingValue) => {
                let name = if rng.gen_bool(0.5) { el.name } else { el.wsh };
                record.set(name, String::new());
            }
            Some(BadKind::UnknownCode) => {
                if record.penalty {
                    // 责令限期改正 is an order to put things right, not a penalty, yet often
                    // typed into 处罚类别.
                    let kinds = format!("{};责令限期改正", record.get("CF_CFLB"));
                    record.set("CF_CFLB", kinds);
                } else {
                    record.set("XK_XKLB", "备案".into());
                }
            }
            Some(BadKind::DuplicateKey) => {}
            Some(BadKind::TooPrecise) => record.set("CF_NR_FK", names::too_precise_wanyuan(rng)),
            Some(BadKind::ForeignUnit) => {
                self.foreign_seq += 1;
                let year = record.get(el.date).get(..4).unwrap_or("2025").to_string();
                let letter = if record.penalty { "罚" } else { "许" };
                record.set(
                    el.wsh,
                    format!("宁鼓税{letter}〔{year}〕{}号", self.foreign_seq),
                );
                for (name, code) in [(el.organ, el.organ_code), (el.source, el.source_code)] {
                    record.set(name, FOREIGN_BUREAU.1.into());
                    record.set(code, FOREIGN_BUREAU.0.into());
                }
            }
        }
        self.amounts(&mut record, bad.is_none(), None);
        Ok(record)
    }

    /// The next planted lead, on a record made for it (once only as many records are left as
    /// leads still to plant): a legal person's penalty of the rule's violation, over its threshold.
    fn planted_record(&mut self) -> Result<Record, SampleError> {
        let key = self.plants.next();
        let case = key.as_deref().and_then(|k| {
            let (_, cause) = RULES.iter().find(|(r, _)| plant::rule_key(r) == k)?;
            CASES.iter().position(|c| c.cause == *cause)
        });
        let (Some(key), Some(case)) = (key, case) else {
            return Err(SampleError::Internal("no tax lead left to plant".into()));
        };
        // A fine too small for the evaded tax to reach the threshold is drawn again.
        for _ in 0..1_000 {
            let mut record = self.record(Plan {
                penalty: Some(true),
                party: Some(PartyKind::Legal),
                case: Some(case),
                ..Plan::default()
            })?;
            if self.amounts(&mut record, true, Some(&key)) {
                self.keys
                    .push((record.penalty, record.get(PENALTY.wsh).to_string()));
                return Ok(record);
            }
        }
        Err(SampleError::Internal(format!("cannot plant {key}")))
    }

    /// The amounts of a penalty whose violation a starter rule reads (逃避缴纳税款, 虚开发票) and
    /// whether it is planted as a lead: a `valid` record when that rule's leads are still to
    /// plant, or the record made for `forced`. The others stay under the threshold. Returns
    /// whether it was planted.
    fn amounts(&mut self, record: &mut Record, valid: bool, forced: Option<&str>) -> bool {
        let Some((rule, cause)) = RULES
            .iter()
            .find(|(_, cause)| record.penalty && record.get("CF_WFXW") == *cause)
        else {
            return false;
        };
        let key = plant::rule_key(rule);
        let plant =
            forced == Some(key.as_str()) || (forced.is_none() && valid && self.plants.wants(&key));
        let rng = &mut self.facts;
        let why = if *cause == "逃避缴纳税款" {
            // A fine more precise than 万元 allow (a bad record) says nothing of the tax.
            let Some(fine) = fen_of_wanyuan(record.get("CF_NR_FK")) else {
                return false;
            };
            // 征管法第六十三条: the fine is 50% to 5 times the tax evaded (in percent here).
            let times: Vec<u64> = [50, 50, 60, 80, 100, 100, 150, 200, 300, 500]
                .into_iter()
                .filter(|t| !plant || fine * 100 / t >= 10_000_000)
                .collect();
            if times.is_empty() {
                if forced.is_some() {
                    return false;
                }
                return self.amounts(record, false, None);
            }
            let evaded = fine * 100 / *pick(rng, &times);
            // 占应纳税额比例 in hundredths of a percent: from 10 % for a planted lead; under 10 %
            // where the tax evaded reaches 10万, so that no other case meets the rule.
            let share: u64 = if plant {
                rng.gen_range(1_050..=4_500)
            } else if evaded >= 10_000_000 {
                rng.gen_range(80..=950)
            } else {
                rng.gen_range(300..=6_000)
            };
            let share = format!("{}.{:02}", share / 100, share % 100);
            record.insert_before("CF_GSJZQ", EVADED, names::wanyuan(evaded));
            record.insert_before("CF_GSJZQ", EVADED_SHARE, share.clone());
            format!(
                "逃避缴纳税款 {} 元，占应纳税额 {share}%",
                names::yuan_2dp(evaded)
            )
        } else {
            let (lo, hi) = if plant {
                (520_000, 3_000_000)
            } else {
                (12_000, 480_000)
            };
            let invoiced = rng.gen_range(lo * 100..=hi * 100);
            record.insert_before("CF_GSJZQ", INVOICED, names::wanyuan(invoiced));
            format!("虚开金额 {} 元", names::yuan_2dp(invoiced))
        };
        if plant {
            let case_id = record.get(PENALTY.wsh).to_string();
            self.plants.plant(BUREAU.0, &case_id, &key, why);
        }
        plant
    }
}

/// An amount of 万元 with at most six decimals, in fen.
fn fen_of_wanyuan(s: &str) -> Option<u64> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let frac: u64 = format!("{frac:0<6}").parse().ok()?;
    Some(whole * 1_000_000 + frac)
}

/// The penalty elements of an XZCF record.
fn penalty_fields<R: Rng>(
    rng: &mut R,
    fields: &mut Vec<(&'static str, String)>,
    kind: PartyKind,
    decided: Day,
    needs_fine: bool,
    forced: Option<usize>,
) {
    let cases: Vec<&TaxCase> = CASES
        .iter()
        .filter(|c| kind != PartyKind::Natural || c.personal)
        .filter(|c| !needs_fine || c.kinds.iter().any(|k| k.split(';').any(|x| x == FINE)))
        .collect();
    let case = if cases.is_empty() {
        &CASES[0]
    } else {
        *pick(rng, &cases)
    };
    let case = forced.map_or(case, |i| &CASES[i]);
    let options: Vec<&str> = case
        .kinds
        .iter()
        .copied()
        .filter(|k| !needs_fine || k.split(';').any(|x| x == FINE))
        .collect();
    let kinds = if options.is_empty() {
        FINE
    } else {
        *pick(rng, &options)
    };
    let mut content = Vec::new();
    let mut fine_fen = 0;
    let mut confiscated_fen = 0;
    for kind in kinds.split(';') {
        match kind {
            "警告" => content.push("警告".to_string()),
            FINE => {
                fine_fen = if case.fine.1 >= 100_000 {
                    // Fines proportional to evaded tax come to the fen.
                    rng.gen_range(case.fine.0 * 100..=case.fine.1 * 100)
                } else {
                    names::fine_yuan(rng, case.fine.0, case.fine.1) * 100
                };
                content.push(format!("罚款人民币{}元", names::yuan_2dp(fine_fen)));
            }
            "没收违法所得" => {
                confiscated_fen = rng.gen_range(100_000..=20_000_000u64);
                content.push(format!(
                    "没收违法所得人民币{}元",
                    names::yuan_2dp(confiscated_fen)
                ));
            }
            _ => {}
        }
    }
    let (from, to) = {
        let start = calendar::between(rng, decided.plus(-400), decided.plus(-60));
        (
            start,
            start.plus(rng.gen_range(30..=200)).min(decided.plus(-30)),
        )
    };
    let (fy, fm, _) = from.ymd();
    let (ty, tm, _) = to.ymd();
    fields.push(("CF_WFXW", case.cause.into()));
    fields.push((
        "CF_SY",
        format!(
            "当事人于{fy}年{fm}月至{ty}年{tm}月期间{}，违反了{}的有关规定。",
            case.conduct,
            if case.basis.starts_with(INVOICE_RULES) {
                INVOICE_RULES
            } else {
                COLLECTION_LAW
            }
        ),
    ));
    fields.push(("CF_YJ", case.basis.into()));
    fields.push(("CF_CFLB", kinds.into()));
    fields.push(("CF_NR", content.join("，")));
    if fine_fen > 0 {
        fields.push(("CF_NR_FK", names::wanyuan(fine_fen)));
    }
    if confiscated_fen > 0 {
        fields.push(("CF_NR_WFFF", names::wanyuan(confiscated_fen)));
    }
    // No 暂扣或吊销证照 (CF_NR_ZKDX) or 处罚有效期 (CF_YXQ): none of these penalties suspends or
    // revokes a licence or runs for a period.
    fields.push((
        "CF_GSJZQ",
        decided
            .years_later_minus_one(case.publicity_years)
            .format("-"),
    ));
}

/// The licensing elements of an XZXK record.
fn licensing_fields<R: Rng>(
    rng: &mut R,
    fields: &mut Vec<(&'static str, String)>,
    kind: PartyKind,
    decided: Day,
    wsh: &str,
) {
    let items: Vec<usize> = (0..LICENCES.len())
        .filter(|&i| match i {
            3 => kind == PartyKind::Individual,
            0 | 4 => kind != PartyKind::Natural,
            _ => true,
        })
        .collect();
    let i = *pick(rng, &items);
    let (cert, category, basis, (min_days, max_days)) = LICENCES[i];
    let valid_to = decided.plus(rng.gen_range(min_days..=max_days) - 1);
    let content = match i {
        0 => format!(
            "准予增值税专用发票最高开票限额为{}",
            pick(rng, &["十万元", "十万元", "一百万元", "一万元"])
        ),
        1 => format!(
            "准予延期缴纳税款人民币{}元，延期至{}",
            names::yuan_2dp(rng.gen_range(1_000_000..=50_000_000u64)),
            valid_to.chinese()
        ),
        2 => format!("准予延期办理纳税申报，延期至{}", valid_to.chinese()),
        3 => format!(
            "准予变更定额，月定额调整为{}元",
            rng.gen_range(10..=60) * 500
        ),
        _ => "准予按照上一纳税年度应纳税所得额的季度平均额预缴企业所得税".to_string(),
    };
    let number = wsh.replacen("宁玄税许", "宁玄税许准字", 1);
    // As 税务行政许可实施办法 names it; the party is an item of its own, not appended here.
    fields.push(("XK_XKWS", LICENCE_DOCUMENT.into()));
    fields.push(("XK_YJ", basis.into()));
    fields.push(("XK_NR", content));
    fields.push(("XK_XKLB", category.into()));
    fields.push(("XK_XKZS", cert.into()));
    fields.push(("XK_XKBH", number));
    fields.push(("XK_YXQZ", decided.format("-")));
    fields.push(("XK_YXQZI", valid_to.format("-")));
    // 当前状态: a licence whose period ended before the export (dated the day after LAST) is
    // 无效, and the remark says why.
    if valid_to <= LAST {
        fields.push(("XK_ZT", "2".into()));
        fields.push(("BZ", EXPIRED.into()));
    } else {
        fields.push(("XK_ZT", "1".into()));
    }
}

/// Escapes text for an XML element.
fn push_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
}

/// Writes a tax XML of `rows` records and returns the per-kind bad counts.
pub(crate) fn write(
    path: &Path,
    rows: u64,
    bad_fraction: f64,
    seed: u64,
) -> Result<(SampleFile, BadCounts), SampleError> {
    super::check_fraction(bad_fraction)?;
    super::create_parent(path)?;
    let file = File::create(path).map_err(SampleError::io(path))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let head = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<SGS_DATA>\n  <HEADER>\n    <SJLY>{}</SJLY>\n    \
         <SJLX>双公示</SJLX>\n    <SCSJ>{EXPORT_DATE}</SCSJ>\n    <JLS>{rows}</JLS>\n  </HEADER>\n  <RECORDS>\n",
        BUREAU.1
    );
    out.write_all(head.as_bytes())
        .map_err(SampleError::io(path))?;
    let mut facts = ChaCha8Rng::seed_from_u64(seed);
    facts.set_stream(2);
    let rules: Vec<String> = RULES.iter().map(|(r, _)| plant::rule_key(r)).collect();
    let mut generator = Generator {
        rng: ChaCha8Rng::seed_from_u64(seed),
        facts,
        plants: Plants::new(TAX, &rules, plant::rule_leads(rows), &[], 0),
        seq: [[0; 3]; 2],
        foreign_seq: 0,
        keys: KeyRing::new(),
    };
    let mut picker = BadPicker::new(&BadKind::ALL, bad_fraction);
    let mut buf = String::new();
    for i in 0..rows {
        // The last records plant what the ordinary ones did not.
        let record = if rows - i <= generator.plants.outstanding() {
            generator.planted_record()?
        } else {
            generator.next_record(&mut picker)?
        };
        let tag = record.elements().record;
        buf.clear();
        buf.push_str("    <");
        buf.push_str(tag);
        buf.push_str(">\n");
        for (name, value) in &record.fields {
            buf.push_str("      <");
            buf.push_str(name);
            buf.push('>');
            push_escaped(&mut buf, value);
            buf.push_str("</");
            buf.push_str(name);
            buf.push_str(">\n");
        }
        buf.push_str("    </");
        buf.push_str(tag);
        buf.push_str(">\n");
        out.write_all(buf.as_bytes())
            .map_err(SampleError::io(path))?;
    }
    out.write_all(b"  </RECORDS>\n</SGS_DATA>\n")
        .map_err(SampleError::io(path))?;
    out.flush().map_err(SampleError::io(path))?;
    let file = SampleFile {
        adapter: TAX.into(),
        path: path.to_path_buf(),
        rows,
        bad_rows: picker.total(),
        planted: generator.plants.into_planted(),
    };
    Ok((file, picker.counts()))
}

/// Writes the tax bureau's 双公示 XML: a `<HEADER>` and `rows` `XZCF` (penalty) and `XZXK`
/// (licensing) records under `SGS_DATA/RECORDS`, of which about `bad_fraction` carry one
/// deliberate defect each. Streams record by record; the same `seed` gives the same bytes.
pub fn write_tax_xml(
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
    use chrono::Datelike;
    use quick_xml::Reader;
    use quick_xml::events::Event;
    use std::collections::{HashMap, HashSet};
    use xianjie_model::{Fen, MoneyUnit, ResidentId, Uscc};

    const ADAPTER: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../adapters/tax/adapter.toml"
    );

    /// Child elements by name.
    type Fields = HashMap<String, String>;

    /// Parses a written file: the header's children and the records as (element, children).
    fn read_back(path: &Path) -> (Fields, Vec<(String, Fields)>) {
        let text = std::fs::read_to_string(path).unwrap();
        let mut reader = Reader::from_str(&text);
        reader.config_mut().trim_text(true);
        let mut stack: Vec<String> = Vec::new();
        let mut header = HashMap::new();
        let mut records = Vec::new();
        let mut current: Option<(String, HashMap<String, String>)> = None;
        loop {
            match reader.read_event().unwrap() {
                Event::Start(e) => {
                    let name = e.name().as_ref().to_string();
                    if stack.len() == 2 && stack[1] == "RECORDS" {
                        current = Some((name.clone(), HashMap::new()));
                    } else if stack.len() == 3
                        && let Some((_, fields)) = current.as_mut()
                    {
                        fields.insert(name.clone(), String::new());
                    }
                    stack.push(name);
                }
                Event::Text(t) => {
                    let value = t.xml10_content().to_string();
                    let name = stack.last().unwrap().clone();
                    if stack.len() == 3 && stack[1] == "HEADER" {
                        header.insert(name, value);
                    } else if stack.len() == 4 {
                        current.as_mut().unwrap().1.insert(name, value);
                    }
                }
                Event::End(_) => {
                    if stack.len() == 3 && stack[1] == "RECORDS" {
                        records.push(current.take().unwrap());
                    }
                    stack.pop();
                }
                Event::Eof => break,
                Event::Decl(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(stack, Vec::<String>::new());
        (header, records)
    }

    /// Items the adapter reads that this bureau's exports never fill: the 2016 有效期至 (these
    /// exports are 2021 ones), 暂扣或吊销证照 and 处罚有效期 (no tax penalty here suspends or
    /// revokes a licence or runs for a period).
    const NEVER_WRITTEN: [&str; 3] = ["XK_YXQJ", "CF_NR_ZKDX", "CF_YXQ"];
    /// Items written that the adapter does not read: 数据来源单位 is the deciding bureau itself.
    const NOT_READ: [&str; 4] = ["CF_SJLY", "CF_SJLYDM", "XK_LYDW", "XK_LYDWDM"];

    #[test]
    fn elements_are_the_adapters_columns() {
        let adapter: toml::Table =
            toml::from_str(&std::fs::read_to_string(ADAPTER).unwrap()).unwrap();
        let mut columns = HashSet::new();
        for f in adapter["fields"].as_table().unwrap().values() {
            match f.get("from").or(f.get("join")).unwrap() {
                toml::Value::String(s) => columns.insert(s.clone()),
                toml::Value::Array(a) => {
                    for s in a {
                        columns.insert(s.as_str().unwrap().to_string());
                    }
                    true
                }
                other => panic!("{other:?}"),
            };
        }
        let dir = tempfile::tempdir().unwrap();
        let file = write_tax_xml(&dir.path().join("t.xml"), 300, 0.0, 2).unwrap();
        let (header, records) = read_back(&file.path);
        assert_eq!(header["SCSJ"], EXPORT_DATE);
        assert_eq!(header["JLS"], "300");
        let mut seen = HashSet::new();
        for (_, fields) in &records {
            seen.extend(fields.keys().cloned());
        }
        for name in &seen {
            assert!(
                columns.contains(name) != NOT_READ.contains(&name.as_str()),
                "{name} is not an adapter column, or is one but listed as not read"
            );
        }
        // Every column but the record pseudo-column and the items this bureau leaves empty
        // appears somewhere; those never do.
        for column in &columns {
            let expected = column != "@record" && !NEVER_WRITTEN.contains(&column.as_str());
            assert_eq!(seen.contains(column), expected, "{column}");
        }
        for old in ["CF_AJMC", "XK_YXQJ"] {
            assert!(!seen.contains(old), "{old} is a 2016 item");
        }
        let unit = &adapter["units"].as_array().unwrap()[0];
        assert_eq!(
            (
                unit["code"].as_str().unwrap(),
                unit["name"].as_str().unwrap()
            ),
            BUREAU
        );
        assert!(Uscc::parse(FOREIGN_BUREAU.0).is_ok());
    }

    #[test]
    fn deterministic_and_valid() {
        let dir = tempfile::tempdir().unwrap();
        let (a, _) = write(&dir.path().join("a.xml"), 500, 0.0, 13).unwrap();
        let b = write_tax_xml(&dir.path().join("b.xml"), 500, 0.0, 13).unwrap();
        let c = write_tax_xml(&dir.path().join("c.xml"), 500, 0.0, 14).unwrap();
        let bytes = std::fs::read(&a.path).unwrap();
        assert_eq!(bytes, std::fs::read(&b.path).unwrap());
        assert_ne!(bytes, std::fs::read(&c.path).unwrap());
        assert_eq!((a.rows, a.bad_rows), (500, 0));

        let (_, records) = read_back(&a.path);
        assert_eq!(records.len(), 500);
        let date = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let limit = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        // The 2021 处罚类别 labels (the adapter's code table also keeps the 2016 digits).
        let labels = [
            "警告",
            "通报批评",
            "罚款",
            "没收违法所得",
            "没收非法财物",
            "暂扣许可证件",
            "降低资质等级",
            "吊销许可证件",
            "限制开展生产经营活动",
            "责令停产停业",
            "责令关闭",
            "限制从业",
            "行政拘留",
            "其他",
        ];
        let (mut expired, mut serious) = (0, 0);
        let planted: HashMap<&str, &str> = a
            .planted
            .iter()
            .map(|p| (p.case_id.as_str(), p.lead.as_str()))
            .collect();
        assert_eq!(planted.len() as u64, plant::rule_leads(500));
        let mut leads: HashMap<&str, usize> = HashMap::new();
        let mut wsh = HashSet::new();
        let (mut penalties, mut natural) = (0, 0);
        for (tag, f) in &records {
            let p = if tag == "XZCF" { "CF_" } else { "XK_" };
            assert!(tag == "XZCF" || tag == "XZXK");
            let get = |k: &str| f.get(&format!("{p}{k}")).map(String::as_str);
            assert!(wsh.insert(get("WSH").unwrap().to_string()));
            assert!(!get("XDR_MC").unwrap().is_empty());
            let unit = if tag == "XZCF" {
                ("CFJGDM", "CFJG")
            } else {
                ("XKJGDM", "XKJG")
            };
            assert_eq!((get(unit.0).unwrap(), get(unit.1).unwrap()), BUREAU);
            let source = if tag == "XZCF" {
                (f["CF_SJLYDM"].as_str(), f["CF_SJLY"].as_str())
            } else {
                (f["XK_LYDWDM"].as_str(), f["XK_LYDW"].as_str())
            };
            assert_eq!(source, BUREAU);
            let decided = date(get("JDRQ").unwrap());
            assert!(decided <= limit);
            match get("XDR_LB").unwrap() {
                "自然人" => {
                    natural += 1;
                    assert_eq!(get("XDR_ZJLX"), Some("身份证"));
                    ResidentId::parse(get("XDR_ZJHM").unwrap()).unwrap();
                    assert!(get("XDR_SHXYM").is_none());
                }
                "法人及非法人组织" | "个体工商户" => {
                    Uscc::parse(get("XDR_SHXYM").unwrap()).unwrap();
                    assert!(get("XDR_ZJHM").is_none() && get("XDR_ZJLX").is_none());
                }
                other => panic!("{other}"),
            }
            if tag == "XZCF" {
                penalties += 1;
                let kinds = &f["CF_CFLB"];
                assert!(kinds.split(';').all(|k| labels.contains(&k)), "{kinds}");
                if kinds.split(';').any(|k| k == FINE) {
                    assert!(
                        Fen::parse(&f["CF_NR_FK"], MoneyUnit::Wanyuan)
                            .unwrap()
                            .get()
                            > 0
                    );
                } else {
                    assert!(!f.contains_key("CF_NR_FK"));
                }
                assert!(!f["CF_WFXW"].is_empty() && !f["CF_NR"].is_empty());
                // On display for one year, or three for the serious violations.
                let until = date(&f["CF_GSJZQ"]);
                let years = if ["虚开发票", "逃避缴纳税款"].contains(&f["CF_WFXW"].as_str())
                {
                    serious += 1;
                    3
                } else {
                    1
                };
                // The day before the same date `years` later (a 29 February rolls over to 1 March).
                let end = decided.with_year(decided.year() + years).unwrap_or(
                    decided + chrono::Months::new(12 * years as u32) + chrono::Days::new(1),
                );
                assert_eq!(until, end - chrono::Days::new(1), "{decided}");
                assert!(!f.contains_key("BZ"));
                // The amounts a rule reads: over its threshold only where planted.
                let lead = planted.get(f["CF_WSH"].as_str()).copied();
                *leads.entry(lead.unwrap_or("none")).or_default() += 1;
                let fen = |k: &str| {
                    f.get(k)
                        .map(|v| Fen::parse(v, MoneyUnit::Wanyuan).unwrap().get())
                };
                match f["CF_WFXW"].as_str() {
                    "逃避缴纳税款" => {
                        let (fine, evaded) = (fen("CF_NR_FK").unwrap(), fen(EVADED).unwrap());
                        // 征管法第六十三条: 50% to 5 times the tax evaded.
                        assert!(
                            2 * fine >= evaded && fine <= 5 * evaded + 5,
                            "{fine} {evaded}"
                        );
                        let share: f64 = f[EVADED_SHARE].parse().unwrap();
                        let over = evaded >= 10_000_000 && share >= 10.0;
                        assert_eq!(over, lead == Some("rule:tax-evasion-201"), "{f:?}");
                    }
                    "虚开发票" => {
                        let over = fen(INVOICED).unwrap() >= 50_000_000;
                        assert_eq!(over, lead == Some("rule:tax-invoice-fraud-205-1"), "{f:?}");
                    }
                    _ => {
                        assert!(lead.is_none());
                        for k in [EVADED, EVADED_SHARE, INVOICED] {
                            assert!(!f.contains_key(k), "{k}");
                        }
                    }
                }
            } else {
                assert!(["普通", "核准"].contains(&f["XK_XKLB"].as_str()));
                assert!(!f["XK_XKBH"].is_empty());
                assert_eq!(f["XK_XKWS"], LICENCE_DOCUMENT);
                let valid_to = date(&f["XK_YXQZI"]);
                assert!(date(&f["XK_YXQZ"]) <= valid_to);
                // 无效 exactly when the period ended before the export, with the remark why.
                if valid_to < limit {
                    expired += 1;
                    assert_eq!((f["XK_ZT"].as_str(), f["BZ"].as_str()), ("2", EXPIRED));
                } else {
                    assert_eq!(f["XK_ZT"], "1");
                    assert!(!f.contains_key("BZ"));
                }
            }
        }
        assert!((250..350).contains(&penalties), "{penalties}");
        assert!(natural > 10, "{natural}");
        assert!(expired > 10 && serious > 5, "{expired} {serious}");
        assert_eq!(leads.values().sum::<usize>(), penalties);
        assert_eq!(leads.len(), 3, "both rules planted: {leads:?}");
    }

    /// The shipped sample is what `xianjie sample --cases 200 --seed 1 --bad-fraction 0.05`
    /// writes, and the records others rely on stay: the same run without bad rows opens with
    /// issue 14's 逃避缴纳税款 fine of ¥673,780.55.
    #[test]
    fn the_shipped_sample_is_the_generators() {
        let dir = tempfile::tempdir().unwrap();
        crate::check_shipped(&dir.path().join("bad"), TAX, "tax/samples/tax-sgs.xml");
        let opts = crate::SampleOptions {
            cases: 200,
            bad_fraction: 0.0,
            seed: 1,
        };
        let files = crate::generate(&dir.path().join("clean"), &opts).unwrap();
        let clean = files.into_iter().find(|f| f.adapter == TAX).unwrap().path;
        let (_, records) = read_back(&clean);
        let first = &records[0].1;
        assert_eq!(
            (first["CF_WFXW"].as_str(), first["CF_NR_FK"].as_str()),
            ("逃避缴纳税款", "67.378055")
        );
        // ... planted as a lead of the tax evasion rule: the tax evaded at least 10万 and 10%.
        let planted = write(&dir.path().join("t.xml"), 40, 0.0, crate::derive_seed(1, 3))
            .unwrap()
            .0
            .planted;
        assert_eq!(planted[0].case_id, first["CF_WSH"]);
        assert_eq!(planted[0].lead, "rule:tax-evasion-201");
        assert!(
            Fen::parse(&first[EVADED], MoneyUnit::Wanyuan)
                .unwrap()
                .get()
                >= 10_000_000
        );
        assert!(first[EVADED_SHARE].parse::<f64>().unwrap() >= 10.0);
    }

    #[test]
    fn every_bad_kind_occurs() {
        let dir = tempfile::tempdir().unwrap();
        let (file, counts) = write(&dir.path().join("bad.xml"), 200, 0.5, 17).unwrap();
        assert!(counts.iter().all(|&c| c >= 1), "{counts:?}");
        assert_eq!(counts.iter().sum::<u64>(), file.bad_rows);
        let (_, records) = read_back(&file.path);
        assert_eq!(records.len(), 200);
        assert!(records.iter().any(|(_, f)| {
            f.get("CF_NR_FK")
                .is_some_and(|v| Fen::parse(v, MoneyUnit::Wanyuan).is_err())
        }));
        assert!(
            records
                .iter()
                .any(|(_, f)| f.get("CF_CFJGDM").or(f.get("XK_XKJGDM"))
                    == Some(&FOREIGN_BUREAU.0.to_string()))
        );
        assert!(records.iter().any(|(_, f)| {
            f.get("CF_CFLB")
                .is_some_and(|k| k.ends_with(";责令限期改正"))
        }));
    }
}
