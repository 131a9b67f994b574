//! The market-supervision double-random inspection system's results (`market-inspection`
//! adapter): an XLSX workbook with one sheet, 抽查结果, one row per inspected market entity.
//! All cells are text, so codes such as `01` keep their leading zero. An inspection that found a
//! problem and had it corrected or filed names its documents in 检查记录文件 — the record (检查笔录,
//! a PDF) and for a correction a photo (现场照片, a PNG) — written to the folder
//! `<workbook>.files/` beside the workbook, where the adapter reads them.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, Workbook, XlsxError};

use super::bad::{BadCounts, BadKind, BadPicker, KeyRing};
use super::calendar::{self, FIRST, LAST};
use super::names::{self, pick};
use super::{INSPECTION, SampleError, SampleFile};

/// The sheet the adapter reads.
pub(crate) const SHEET: &str = "抽查结果";

/// The header row: the adapter's source columns plus the result text.
pub(crate) const HEADER: [&str; 14] = [
    "检查编号",
    "抽查批次号",
    "抽查任务名称",
    "检查机关",
    "检查机关统一社会信用代码",
    "检查对象名称",
    "检查对象类型",
    "统一社会信用代码",
    "法定代表人",
    "检查人员",
    "检查完成日期",
    "检查结果代码",
    "检查结果",
    "检查记录文件",
];

/// Column widths in characters, by header position.
const WIDTHS: [f64; 14] = [
    16.0, 20.0, 40.0, 28.0, 24.0, 36.0, 14.0, 22.0, 10.0, 16.0, 14.0, 12.0, 34.0, 48.0,
];

/// What separates the names in 检查记录文件.
pub(crate) const DOCUMENT_SEPARATOR: &str = "；";

/// The inspecting unit (the adapter's only unit).
const UNIT: (&str, &str) = ("11320102526018159L", "南京市玄武区市场监督管理局");
/// A unit of the neighbouring district, for rows of a unit the adapter does not cover.
const FOREIGN_UNIT: (&str, &str) = ("113201044660129730", "南京市秦淮区市场监督管理局");

/// An inspection task: (name, industries of the companies inspected, shop types of the
/// individual businesses inspected).
type Task = (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);

/// Inspection tasks run every half year.
const TASKS: [Task; 10] = [
    (
        "食品销售者双随机抽查",
        &["食品", "超市", "商贸"],
        &["便利店", "副食品商行", "水果店", "烟酒商行"],
    ),
    (
        "餐饮服务提供者双随机抽查",
        &["餐饮管理", "餐饮"],
        &["小吃店", "餐馆", "面馆"],
    ),
    (
        "企业年度报告公示信息抽查",
        &["商贸", "科技", "贸易", "文化传媒", "信息技术"],
        &["服装店", "便利店"],
    ),
    (
        "特种设备使用单位双随机抽查",
        &["电梯工程", "物业管理", "酒店管理"],
        &["宾馆"],
    ),
    (
        "产品质量监督抽查",
        &["电子产品", "服饰", "建材"],
        &["五金店", "服装店", "电器商行"],
    ),
    (
        "广告发布行为双随机抽查",
        &["文化传媒", "广告", "网络科技"],
        &["图文广告店"],
    ),
    (
        "价格收费行为双随机抽查",
        &["停车管理", "物业管理", "商贸"],
        &["理发店", "洗车店"],
    ),
    (
        "计量器具使用单位双随机抽查",
        &["加油站管理", "超市", "眼镜"],
        &["水果店", "眼镜店", "农副产品商行"],
    ),
    (
        "药品零售企业双随机抽查",
        &["医药", "大药房连锁"],
        &["大药房", "药店"],
    ),
    (
        "网络交易经营者双随机抽查",
        &["电子商务", "网络科技"],
        &["网店"],
    ),
];

/// Result codes 01-14 with their text and relative frequency.
const RESULTS: [(&str, &str, u32); 14] = [
    ("01", "未发现问题", 55),
    ("02", "未按规定公示应当公示的信息", 6),
    ("03", "公示信息隐瞒真实情况、弄虚作假", 2),
    ("04", "通过登记的住所（经营场所）无法联系", 5),
    ("05", "不配合检查，情节严重", 1),
    ("06", "未发现开展本次抽查涉及的经营活动", 8),
    ("07", "发现问题已责令改正", 10),
    ("08", "发现问题待后续处理", 4),
    ("09", "已办理注销登记", 2),
    ("10", "已被吊销营业执照", 1),
    ("11", "已迁出本辖区", 2),
    ("12", "发现问题已移送有关部门处理", 2),
    ("13", "发现问题已立案查处", 1),
    ("14", "其他", 1),
];

/// The bad kinds that apply: the workbook has no money column.
const KINDS: [BadKind; 7] = [
    BadKind::UsccCheck,
    BadKind::ResidentIdCheck,
    BadKind::ImpossibleDate,
    BadKind::MissingValue,
    BadKind::UnknownCode,
    BadKind::DuplicateKey,
    BadKind::ForeignUnit,
];

/// A generated row, as cells in [`HEADER`] order.
type Row = [String; 14];

/// Column positions used when a row is made bad.
const ID: usize = 0;
const BATCH: usize = 1;
const UNIT_NAME: usize = 3;
const UNIT_CODE: usize = 4;
const PARTY: usize = 5;
const PARTY_KIND: usize = 6;
const PARTY_CODE: usize = 7;
const DATE: usize = 10;
const RESULT_CODE: usize = 11;
const DOCUMENTS: usize = 13;

/// The documents an inspection leaves: the record of one that found a problem and had it
/// corrected (07) or filed (13), and for a correction a photo of the premises.
fn documents_of(case_id: &str, result: &str) -> Vec<String> {
    let record = format!("{case_id}-检查笔录.pdf");
    match result {
        "07" => vec![record, format!("{case_id}-现场照片.png")],
        "13" => vec![record],
        _ => Vec::new(),
    }
}

/// The folder of `workbook`'s documents: `<workbook>.files`, as the adapter reads it.
pub(crate) fn documents_folder(workbook: &Path) -> PathBuf {
    let mut s = workbook.as_os_str().to_owned();
    s.push(".files");
    PathBuf::from(s)
}

/// Writes the documents `row` names into `folder`, each name once per workbook (a duplicated
/// case number names the same files: the first row's stay).
fn write_documents(
    folder: &Path,
    row: &Row,
    written: &mut HashSet<String>,
) -> Result<(), SampleError> {
    let names = row[DOCUMENTS]
        .split(DOCUMENT_SEPARATOR)
        .filter(|n| !n.is_empty());
    for name in names {
        if !written.insert(name.to_string()) {
            continue;
        }
        let bytes = if name.ends_with(".pdf") {
            super::documents::pdf(&[
                "Market supervision inspection record".into(),
                format!("Inspection number: {}", row[ID]),
                format!("Batch: {}", row[BATCH]),
                format!("Inspected entity USCC: {}", row[PARTY_CODE]),
                format!("Completed: {}", row[DATE]),
                format!("Result code: {}", row[RESULT_CODE]),
            ])
        } else {
            super::documents::png(name)
        };
        std::fs::create_dir_all(folder).map_err(SampleError::io(folder))?;
        let path = folder.join(name);
        std::fs::write(&path, bytes).map_err(SampleError::io(&path))?;
    }
    Ok(())
}

struct Generator {
    rng: ChaCha8Rng,
    seq: [u32; 3],
    keys: KeyRing<String>,
}

impl Generator {
    fn row(
        &mut self,
        kind: Option<&'static str>,
        case_id: Option<String>,
    ) -> Result<Row, SampleError> {
        let rng = &mut self.rng;
        let done = calendar::between(rng, FIRST, LAST);
        let (year, month, _) = done.ymd();
        let half = if month <= 6 { 1 } else { 2 };
        let task_index = rng.gen_range(0..TASKS.len());
        let batch = format!("SSJ320102{year}{:02}{half}", task_index + 1);
        let half_name = if half == 1 { "第一批" } else { "第二批" };
        let (task_name, industries, shops) = TASKS[task_index];
        let task = format!("{year}年{half_name}{task_name}");
        let kind = match kind {
            Some(k) => k,
            None => match rng.gen_range(0..100) {
                0..70 => "企业",
                70..97 => "个体工商户",
                _ => "农民专业合作社",
            },
        };
        let (name, code) = match kind {
            "企业" => (names::company(rng, industries), names::uscc(rng, "91")?),
            "个体工商户" => (names::shop(rng, shops), names::uscc(rng, "92")?),
            _ => (names::cooperative(rng), names::uscc(rng, "93")?),
        };
        let representative = if rng.gen_bool(0.9) {
            names::person(rng)
        } else {
            String::new()
        };
        let inspectors = names::two_people(rng, "，");
        let total: u32 = RESULTS.iter().map(|r| r.2).sum();
        let mut x = rng.gen_range(0..total);
        let mut result = RESULTS[0];
        for r in RESULTS {
            if x < r.2 {
                result = r;
                break;
            }
            x -= r.2;
        }
        let case_id = match case_id {
            Some(id) => id,
            None => {
                let slot = &mut self.seq[(year - 2024).clamp(0, 2) as usize];
                *slot += 1;
                format!("JC{year}-{:06}", *slot)
            }
        };
        let documents = documents_of(&case_id, result.0).join(DOCUMENT_SEPARATOR);
        Ok([
            case_id,
            batch,
            task,
            UNIT.1.into(),
            UNIT.0.into(),
            name,
            kind.into(),
            code,
            representative,
            inspectors,
            done.format("-"),
            result.0.into(),
            result.1.into(),
            documents,
        ])
    }

    fn next_row(&mut self, picker: &mut BadPicker) -> Result<Row, SampleError> {
        let bad = picker.pick(&mut self.rng, !self.keys.is_empty());
        let (kind, case_id) = match bad {
            Some(BadKind::UsccCheck) => (Some(*pick(&mut self.rng, &["企业", "个体工商户"])), None),
            Some(BadKind::ResidentIdCheck) => (Some("个体工商户"), None),
            Some(BadKind::DuplicateKey) => (None, self.keys.pick(&mut self.rng)),
            _ => (None, None),
        };
        let mut row = self.row(kind, case_id)?;
        let rng = &mut self.rng;
        match bad {
            None => self.keys.push(row[ID].clone()),
            Some(BadKind::UsccCheck) => {
                let col = if rng.gen_bool(0.25) {
                    UNIT_CODE
                } else {
                    PARTY_CODE
                };
                row[col] = names::corrupt_uscc(rng, &row[col]);
            }
            Some(BadKind::ResidentIdCheck) => {
                // The operator's resident ID (with a wrong check digit) where the business's
                // USCC belongs, as older individual-business records sometimes carry.
                let male = rng.gen_bool(0.5);
                let id = names::resident_id(rng, male)?;
                let mut bad_id = names::corrupt_resident_id(rng, &id);
                while xianjie_model::Uscc::parse(&bad_id).is_ok() {
                    bad_id = names::corrupt_resident_id(rng, &id);
                }
                row[PARTY_CODE] = bad_id;
            }
            Some(BadKind::ImpossibleDate) => {
                let year = row[DATE]
                    .get(..4)
                    .and_then(|y| y.parse().ok())
                    .unwrap_or(2025);
                row[DATE] = calendar::impossible(rng, year, "-");
            }
            Some(BadKind::MissingValue) => {
                let col = if rng.gen_bool(0.5) { PARTY } else { ID };
                row[col].clear();
            }
            Some(BadKind::UnknownCode) => {
                if rng.gen_bool(0.5) {
                    row[RESULT_CODE] = "99".into();
                } else {
                    row[PARTY_KIND] = "事业单位".into();
                }
            }
            Some(BadKind::ForeignUnit) => {
                row[UNIT_CODE] = FOREIGN_UNIT.0.into();
                row[UNIT_NAME] = FOREIGN_UNIT.1.into();
            }
            Some(BadKind::DuplicateKey | BadKind::TooPrecise) => {}
        }
        Ok(row)
    }
}

/// An XLSX error on `path`.
fn xlsx_error(path: &Path) -> impl Fn(XlsxError) -> SampleError + '_ {
    move |source| SampleError::Xlsx {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes an inspection workbook of `rows` rows and returns the per-kind bad counts.
pub(crate) fn write(
    path: &Path,
    rows: u64,
    bad_fraction: f64,
    seed: u64,
) -> Result<(SampleFile, BadCounts), SampleError> {
    super::check_fraction(bad_fraction)?;
    if rows >= 1_048_576 {
        return Err(SampleError::BadOptions(format!(
            "an XLSX sheet holds at most 1,048,575 data rows, {rows} requested"
        )));
    }
    super::create_parent(path)?;
    let err = xlsx_error(path);
    let mut workbook = Workbook::new();
    // A fixed creation time keeps the file byte-identical from run to run.
    let created = ExcelDateTime::from_ymd(2026, 11, 1).map_err(&err)?;
    workbook.set_properties(
        &DocProperties::new()
            .set_title("双随机抽查结果")
            .set_author("市场监管双随机抽查系统")
            .set_creation_datetime(&created),
    );
    let sheet = workbook.add_worksheet();
    sheet.set_name(SHEET).map_err(&err)?;
    let bold = Format::new().set_bold();
    for (col, (title, width)) in (0u16..).zip(HEADER.iter().zip(WIDTHS)) {
        sheet
            .write_string_with_format(0, col, *title, &bold)
            .map_err(&err)?;
        sheet.set_column_width(col, width).map_err(&err)?;
    }
    sheet.set_freeze_panes(1, 0).map_err(&err)?;

    let mut generator = Generator {
        rng: ChaCha8Rng::seed_from_u64(seed),
        seq: [0; 3],
        keys: KeyRing::new(),
    };
    let mut picker = BadPicker::new(&KINDS, bad_fraction);
    let folder = documents_folder(path);
    let mut written = HashSet::new();
    for r in 1..=rows {
        let row = generator.next_row(&mut picker)?;
        write_documents(&folder, &row, &mut written)?;
        // `rows` is below the sheet limit, so the row number fits.
        let r = u32::try_from(r).map_err(|e| SampleError::Internal(e.to_string()))?;
        for (col, value) in (0u16..).zip(row) {
            sheet.write_string(r, col, value).map_err(&err)?;
        }
    }
    workbook.save(path).map_err(&err)?;
    let file = SampleFile {
        adapter: INSPECTION.into(),
        path: path.to_path_buf(),
        rows,
        bad_rows: picker.total(),
        // Inspections are not penalties: no starter rule reads them, nothing is planted.
        planted: Vec::new(),
    };
    Ok((file, picker.counts()))
}

/// Writes the double-random inspection system's results: an XLSX workbook whose sheet 抽查结果
/// has the `market-inspection` adapter's columns plus 检查结果, with `rows` rows of which about
/// `bad_fraction` carry one deliberate defect each. The same `seed` gives the same bytes.
pub fn write_inspection_xlsx(
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
    use calamine::{Reader, Xlsx, open_workbook};
    use std::collections::{BTreeSet, HashSet};
    use xianjie_model::Uscc;

    const ADAPTER: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../adapters/market-inspection/adapter.toml"
    );

    fn read_back(path: &Path) -> Vec<Vec<String>> {
        let mut workbook: Xlsx<_> = open_workbook(path).unwrap();
        let range = workbook.worksheet_range(SHEET).unwrap();
        range
            .rows()
            .map(|r| r.iter().map(|c| c.to_string()).collect())
            .collect()
    }

    #[test]
    fn header_has_the_adapters_columns_and_the_result_text() {
        let adapter: toml::Table =
            toml::from_str(&std::fs::read_to_string(ADAPTER).unwrap()).unwrap();
        let fields = adapter["fields"].as_table().unwrap();
        let mut columns = BTreeSet::new();
        for f in fields.values() {
            if let Some(from) = f.get("from").and_then(|v| v.as_str()) {
                columns.insert(from.to_string());
            }
            for part in f
                .get("join")
                .and_then(|v| v.as_array())
                .into_iter()
                .flatten()
            {
                columns.insert(part.as_str().unwrap().to_string());
            }
        }
        columns.insert("检查结果".into());
        let header: BTreeSet<String> = HEADER.iter().map(|s| s.to_string()).collect();
        assert_eq!(header, columns);
        assert_eq!(adapter["format"]["sheet"].as_str(), Some(SHEET));
        let unit = &adapter["units"].as_array().unwrap()[0];
        assert_eq!(
            (
                unit["code"].as_str().unwrap(),
                unit["name"].as_str().unwrap()
            ),
            UNIT
        );
        assert!(Uscc::parse(FOREIGN_UNIT.0).is_ok());
    }

    #[test]
    fn deterministic_and_valid() {
        let dir = tempfile::tempdir().unwrap();
        let a = write_inspection_xlsx(&dir.path().join("a.xlsx"), 400, 0.0, 3).unwrap();
        let b = write_inspection_xlsx(&dir.path().join("b.xlsx"), 400, 0.0, 3).unwrap();
        let c = write_inspection_xlsx(&dir.path().join("c.xlsx"), 400, 0.0, 4).unwrap();
        let bytes = std::fs::read(&a.path).unwrap();
        assert_eq!(bytes, std::fs::read(&b.path).unwrap());
        assert_ne!(bytes, std::fs::read(&c.path).unwrap());
        assert_eq!((a.rows, a.bad_rows), (400, 0));

        let rows = read_back(&a.path);
        assert_eq!(rows[0], HEADER);
        assert_eq!(rows.len(), 401);
        let kinds: HashSet<&str> = ["企业", "个体工商户", "农民专业合作社"].into();
        let mut ids = HashSet::new();
        for r in &rows[1..] {
            assert!(ids.insert(r[ID].clone()), "duplicate {}", r[ID]);
            assert!(r[ID].starts_with("JC20"));
            assert_eq!((r[UNIT_CODE].as_str(), r[UNIT_NAME].as_str()), UNIT);
            assert!(Uscc::parse(&r[PARTY_CODE]).is_ok(), "{}", r[PARTY_CODE]);
            assert!(Uscc::parse(&r[UNIT_CODE]).is_ok());
            assert!(kinds.contains(r[PARTY_KIND].as_str()));
            assert!(!r[PARTY].is_empty() && !r[2].is_empty());
            let code: u32 = r[RESULT_CODE].parse().unwrap();
            assert!(r[RESULT_CODE].len() == 2 && (1..=14).contains(&code));
            let day = chrono::NaiveDate::parse_from_str(&r[DATE], "%Y-%m-%d").unwrap();
            assert!(day <= chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap());
            assert_eq!(r[9].split('，').count(), 2);
        }
    }

    #[test]
    fn corrected_and_filed_inspections_name_documents_written_beside_the_workbook() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.xlsx");
        write_inspection_xlsx(&path, 300, 0.0, 5).unwrap();
        let folder = documents_folder(&path);
        let rows = read_back(&path);
        let mut named = 0;
        for r in &rows[1..] {
            let names: Vec<&str> = r[DOCUMENTS]
                .split(DOCUMENT_SEPARATOR)
                .filter(|n| !n.is_empty())
                .collect();
            let expected = match r[RESULT_CODE].as_str() {
                "07" => 2,
                "13" => 1,
                _ => 0,
            };
            assert_eq!(names.len(), expected, "{r:?}");
            for n in names {
                assert!(n.starts_with(&format!("{}-", r[ID])), "{n}");
                let bytes = std::fs::read(folder.join(n)).unwrap();
                let magic: &[u8] = if n.ends_with(".pdf") {
                    b"%PDF-"
                } else {
                    b"\x89PNG"
                };
                assert!(bytes.starts_with(magic), "{n}");
                named += 1;
            }
        }
        assert!(named >= 10, "{named}");
        // Nothing else is in the folder, and the same seed writes the same bytes.
        assert_eq!(std::fs::read_dir(&folder).unwrap().count(), named);
        let again = dir.path().join("again.xlsx");
        write_inspection_xlsx(&again, 300, 0.0, 5).unwrap();
        for e in std::fs::read_dir(&folder).unwrap() {
            let e = e.unwrap();
            let other = documents_folder(&again).join(e.file_name());
            assert_eq!(
                std::fs::read(e.path()).unwrap(),
                std::fs::read(other).unwrap()
            );
        }
    }

    /// The shipped sample is what `xianjie sample --cases 200 --seed 1 --bad-fraction 0.05`
    /// writes, its folder of documents included.
    #[test]
    fn the_shipped_sample_is_the_generators() {
        let dir = tempfile::tempdir().unwrap();
        let (made, shipped) = crate::check_shipped(
            dir.path(),
            INSPECTION,
            "market-inspection/samples/inspection-results.xlsx",
        );
        let documents = |workbook: &Path| {
            let mut v: Vec<(std::ffi::OsString, Vec<u8>)> =
                std::fs::read_dir(documents_folder(workbook))
                    .unwrap()
                    .map(|e| {
                        let e = e.unwrap();
                        (e.file_name(), std::fs::read(e.path()).unwrap())
                    })
                    .collect();
            v.sort();
            v
        };
        let made_documents = documents(&made);
        assert!(!made_documents.is_empty());
        assert!(
            made_documents == documents(&shipped),
            "the shipped sample's documents are not what the generator writes; regenerate them"
        );
    }

    #[test]
    fn every_applicable_bad_kind_occurs() {
        let dir = tempfile::tempdir().unwrap();
        let (file, counts) = write(&dir.path().join("bad.xlsx"), 200, 0.5, 8).unwrap();
        for kind in KINDS {
            assert!(counts[kind.index()] >= 1, "{kind:?}: {counts:?}");
        }
        assert_eq!(counts[BadKind::TooPrecise.index()], 0);
        assert_eq!(counts.iter().sum::<u64>(), file.bad_rows);
        let rows = read_back(&file.path);
        assert_eq!(rows.len(), 201);
        assert!(
            rows[1..]
                .iter()
                .any(|r| Uscc::parse(&r[PARTY_CODE]).is_err())
        );
        assert!(
            rows[1..]
                .iter()
                .any(|r| r[RESULT_CODE] == "99" || r[PARTY_KIND] == "事业单位")
        );
        assert!(rows[1..].iter().any(|r| r[UNIT_CODE] == FOREIGN_UNIT.0));
    }
}
