//! XLSX decoding benchmark: a workbook of `XJ_BENCH_ROWS` rows (default 200,000) in the
//! `market-inspection` adapter's layout, read three ways in alternating rounds
//! (`XJ_BENCH_ROUNDS`, default 3):
//!
//! - **decoder**: the gateway's XLSX decoder in this process (archive and reference precheck, the
//!   whole-sheet check, then the records streamed);
//! - **calamine alone**: the library's streaming cell reader over the same sheet, once, with
//!   nothing else: the reference line;
//! - **calamine twice**: the same, twice, which is what the decoder asks of the library (it
//!   checks the sheet whole before handing out any record), so the rest of the ratio is the
//!   precheck's and the record building's.
//!
//! Prints rows/s for each and the ratios, with the medians of the rounds. Run with
//! `cargo bench --bench xlsx`; record results in BENCHMARKS.md.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use xianjie::ingest::Limits;
use xianjie::ingest::decode::{Column, Decoder, Format};

const SHEET: &str = "抽查结果";
const HEADER: [&str; 12] = [
    "检查机关统一社会信用代码",
    "检查机关",
    "检查编号",
    "抽查批次号",
    "抽查任务名称",
    "检查人员",
    "检查结果代码",
    "检查对象类型",
    "检查对象名称",
    "统一社会信用代码",
    "检查完成日期",
    "检查结果",
];

/// Writes the workbook: text cells as an inspection system exports them.
fn write(path: &Path, rows: u32) {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name(SHEET).expect("sheet name");
    for (col, name) in HEADER.iter().enumerate() {
        sheet.write_string(0, col as u16, *name).expect("header");
    }
    for row in 1..=rows {
        let values = [
            "11320102526018159L".to_string(),
            "南京市玄武区市场监督管理局".to_string(),
            format!("JC-2026-{row:07}"),
            format!("PC-2026-{:03}", row % 40),
            "2026年第四季度食品经营者双随机抽查".to_string(),
            "张三，李四".to_string(),
            "1".to_string(),
            "企业".to_string(),
            format!("南京某某商贸有限公司{row}"),
            "91320102MA1XXXXX0X".to_string(),
            format!("2026-11-{:02}", 1 + row % 28),
            "未发现问题".to_string(),
        ];
        for (col, value) in values.iter().enumerate() {
            sheet.write_string(row, col as u16, value).expect("cell");
        }
    }
    book.save(path).expect("save the workbook");
}

/// The decoder's read: every record, counted.
fn decoder(path: &Path, columns: &[Column]) -> u64 {
    let format = Format::Xlsx {
        sheet: Some(SHEET.into()),
    };
    let records = Decoder::in_process(Limits::default())
        .open(path, &format, columns, u64::MAX)
        .expect("the decoder opens the workbook");
    let mut n = 0;
    for record in records {
        record.expect("every row decodes");
        n += 1;
    }
    n
}

/// calamine's streaming cell reader over the sheet, `times` times: the rows it holds.
fn calamine(path: &Path, times: u32) -> u64 {
    let mut rows = 0;
    for _ in 0..times {
        let file = BufReader::new(File::open(path).expect("open"));
        let mut book: calamine::Xlsx<_> = calamine::open_workbook_from_rs(file).expect("opens");
        let mut cells = book.worksheet_cells_reader(SHEET).expect("sheet");
        let mut last = 0;
        while let Some(cell) = cells.next_cell().expect("cell") {
            last = cell.get_position().0;
            std::hint::black_box(cell.get_value());
        }
        // The header row is not a record.
        rows = u64::from(last);
    }
    rows
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One line of figures: the decoder's rate, the reference lines and the ratios to them.
fn report(label: &str, decoder: f64, alone: f64, twice: f64) {
    println!(
        "{label}: decoder {decoder:.0} rows/s, calamine alone {alone:.0}, calamine twice {twice:.0}; \
         decoder / alone {:.2}, decoder / twice {:.2}",
        decoder / alone,
        decoder / twice
    );
}

fn main() {
    let rows: u32 = std::env::var("XJ_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let rounds: usize = std::env::var("XJ_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("inspection.xlsx");
    write(&path, rows);
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "xlsx: {rows} rows, {:.1} MiB workbook, {rounds} rounds",
        size as f64 / 1048576.0
    );
    let columns: Vec<Column> = HEADER
        .iter()
        .map(|n| Column {
            name: n.to_string(),
            required: true,
        })
        .collect();
    let (mut ours, mut alone, mut twice) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let timed = |f: &dyn Fn() -> u64| {
            let start = Instant::now();
            let n = f();
            assert_eq!(n, u64::from(rows), "every row read");
            f64::from(rows) / start.elapsed().as_secs_f64()
        };
        // Alternate the order so that neither side always runs on a warmer machine.
        let (a, d, t) = if round % 2 == 0 {
            let a = timed(&|| calamine(&path, 1));
            let d = timed(&|| decoder(&path, &columns));
            (a, d, timed(&|| calamine(&path, 2)))
        } else {
            let t = timed(&|| calamine(&path, 2));
            let d = timed(&|| decoder(&path, &columns));
            (timed(&|| calamine(&path, 1)), d, t)
        };
        report(&format!("  round {}", round + 1), d, a, t);
        ours.push(d);
        alone.push(a);
        twice.push(t);
    }
    report(
        "median",
        median(&mut ours),
        median(&mut alone),
        median(&mut twice),
    );
}
