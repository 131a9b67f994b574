//! Sample inputs for the shipped adapters: realistic enforcement records of 南京市玄武区 written in
//! each adapter's own source format, with an optional share of deliberately bad rows.
//!
//! - `sunshine`: the district power-sunshine system's GB18030 CSV export (`sunshine-export.csv`).
//! - `market-inspection`: the double-random inspection system's XLSX workbook
//!   (`inspection-results.xlsx`, sheet 抽查结果), with the documents its rows name (a small PDF
//!   record, a PNG photo) in `inspection-results.xlsx.files/` beside it.
//! - `tax`: the tax bureau's 双公示 XML (`tax-sgs.xml`, records `SGS_DATA/RECORDS/XZCF|XZXK`).
//!
//! Output is deterministic: the same seed and options give byte-identical files (all dates are
//! fixed, none is taken from the clock). The CSV and XML writers stream row by row, so a
//! million-row file costs no more memory than a ten-row one.
//!
//! The records carry the facts supervision rules read (`rules/`): amounts (涉案金额, 货值金额,
//! 销售金额, 违法所得; 逃避缴纳税款数额 and its share of the tax due), an accident's harm, and a
//! transfer's moments and police decision. They stay under every starter rule's threshold, or the
//! case was transferred in time, except for a number of planted leads that follows from the row
//! count: cases meeting a rule without a transfer, transfers breaking each 310号令
//! deadline, major decisions without legal review. [`generate`] lists them in [`MANIFEST`].
//!
//! A bad row carries exactly one defect, and the defects cycle through the kinds that apply to the
//! format: a USCC with a wrong check character, a resident ID with a wrong check character, an
//! impossible date, an empty required value, an unknown code value, a duplicated case id, money
//! with too many decimals (not in the inspection workbook, which has no money column) and a unit
//! the adapter does not cover.
//!
//! A tool crate, without the gateway: the gateway offers it as `xianjie sample` and uses it for
//! the demo's inputs (re-exported as `xianjie::sample`). It needs only the identifiers of
//! `xianjie-model`, to make valid codes and spoil them; its tests read the shipped adapters in
//! the repository's `adapters/`.

use std::fs;
use std::path::{Path, PathBuf};

mod bad;
mod calendar;
mod documents;
mod inspection;
mod names;
mod plant;
mod sunshine;
mod sunshine_units;
mod tax;

pub use inspection::write_inspection_xlsx;
pub use plant::{MANIFEST, Planted};
pub use sunshine::write_sunshine_csv;
pub use tax::write_tax_xml;

/// Options of a sample run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleOptions {
    /// Total number of records (rows) over all adapters.
    pub cases: u64,
    /// Share of rows made deliberately invalid, `0.0..=1.0`.
    pub bad_fraction: f64,
    /// Seed of the random generator; the same seed gives the same files.
    pub seed: u64,
}

/// What was written for one adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleFile {
    /// Adapter name (`sunshine`, `market-inspection`, `tax`).
    pub adapter: String,
    /// The file written.
    pub path: PathBuf,
    /// Records written, bad ones included.
    pub rows: u64,
    /// Records made deliberately invalid.
    pub bad_rows: u64,
    /// The valid records planted to raise a lead, in file order.
    pub planted: Vec<Planted>,
}

/// Why sample files could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// Creating a directory or writing a file failed.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The XLSX writer failed.
    #[error("cannot write workbook {}: {source}", path.display())]
    Xlsx {
        /// The workbook.
        path: PathBuf,
        /// The writer's error.
        #[source]
        source: rust_xlsxwriter::XlsxError,
    },
    /// The options are out of range (e.g. `bad_fraction` outside `0..=1`).
    #[error("bad sample options: {0}")]
    BadOptions(String),
    /// A generated value could not be completed (a bug in the generator).
    #[error("sample generator bug: {0}")]
    Internal(String),
}

impl SampleError {
    /// An I/O error on `path`.
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SampleError + '_ {
        move |source| SampleError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Adapter name of the power-sunshine CSV.
const SUNSHINE: &str = "sunshine";
/// Adapter name of the inspection workbook.
const INSPECTION: &str = "market-inspection";
/// Adapter name of the tax XML.
const TAX: &str = "tax";

/// Writes realistic inputs for every shipped adapter into `out/<adapter>/` (one subdirectory per
/// adapter, named after it): `sunshine/sunshine-export.csv`,
/// `market-inspection/inspection-results.xlsx` and `tax/tax-sgs.xml`. The `cases` are split about
/// 60% sunshine, 20% market-inspection and 20% tax, each getting at least one when `cases >= 3`.
/// The planted leads of all files are listed in `out/`[`MANIFEST`].
pub fn generate(out: &Path, opts: &SampleOptions) -> Result<Vec<SampleFile>, SampleError> {
    check_fraction(opts.bad_fraction)?;
    let (sunshine_rows, inspection_rows, tax_rows) = split(opts.cases);
    let dir = |adapter: &str| -> Result<PathBuf, SampleError> {
        let d = out.join(adapter);
        fs::create_dir_all(&d).map_err(SampleError::io(&d))?;
        Ok(d)
    };
    let sunshine = write_sunshine_csv(
        &dir(SUNSHINE)?.join("sunshine-export.csv"),
        sunshine_rows,
        opts.bad_fraction,
        derive_seed(opts.seed, 1),
    )?;
    let inspection = write_inspection_xlsx(
        &dir(INSPECTION)?.join("inspection-results.xlsx"),
        inspection_rows,
        opts.bad_fraction,
        derive_seed(opts.seed, 2),
    )?;
    let tax = write_tax_xml(
        &dir(TAX)?.join("tax-sgs.xml"),
        tax_rows,
        opts.bad_fraction,
        derive_seed(opts.seed, 3),
    )?;
    let files = vec![sunshine, inspection, tax];
    let planted: Vec<&Planted> = files.iter().flat_map(|f| &f.planted).collect();
    plant::write_manifest(&out.join(MANIFEST), &planted)?;
    Ok(files)
}

/// Rows per adapter: (sunshine, market-inspection, tax).
fn split(cases: u64) -> (u64, u64, u64) {
    if cases < 3 {
        return (cases, 0, 0);
    }
    let fifth = (cases / 5).max(1);
    (cases - 2 * fifth, fifth, fifth)
}

/// An independent seed for one adapter's generator.
fn derive_seed(seed: u64, adapter: u64) -> u64 {
    // SplitMix64 finaliser over the seed offset by the adapter's index.
    let mut z = seed.wrapping_add(adapter.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Refuses a bad-row share outside `0..=1` (or NaN).
fn check_fraction(bad_fraction: f64) -> Result<(), SampleError> {
    if (0.0..=1.0).contains(&bad_fraction) {
        Ok(())
    } else {
        Err(SampleError::BadOptions(format!(
            "bad_fraction must be between 0 and 1, got {bad_fraction}"
        )))
    }
}

/// Creates the parent directory of `path` when it does not exist yet.
fn create_parent(path: &Path) -> Result<(), SampleError> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() && !parent.exists() => {
            fs::create_dir_all(parent).map_err(SampleError::io(parent))
        }
        _ => Ok(()),
    }
}

/// Test support: writes the shipped sample (`xianjie sample --cases 200 --seed 1
/// --bad-fraction 0.05`) under `dir`, asserts that `adapter`'s file is byte for byte the shipped
/// one (`shipped`, a path under `adapters/`), and returns both paths.
#[cfg(test)]
pub(crate) fn check_shipped(dir: &Path, adapter: &str, shipped: &str) -> (PathBuf, PathBuf) {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../adapters")
        .join(shipped);
    let opts = SampleOptions {
        cases: 200,
        bad_fraction: 0.05,
        seed: 1,
    };
    let files = generate(dir, &opts).expect("the sample is written");
    let made = files
        .into_iter()
        .find(|f| f.adapter == adapter)
        .expect("the adapter's file")
        .path;
    assert!(
        fs::read(&made).ok() == fs::read(&shipped).ok(),
        "{} is not what the generator writes; regenerate it",
        shipped.display()
    );
    (made, shipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_gives_every_adapter_a_share() {
        assert_eq!(split(0), (0, 0, 0));
        assert_eq!(split(2), (2, 0, 0));
        assert_eq!(split(3), (1, 1, 1));
        assert_eq!(split(4), (2, 1, 1));
        assert_eq!(split(1000), (600, 200, 200));
        for n in 3..200 {
            let (a, b, c) = split(n);
            assert_eq!(a + b + c, n);
            assert!(a >= 1 && b >= 1 && c >= 1);
        }
    }

    #[test]
    fn bad_fraction_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        for bad in [-0.1, 1.5, f64::NAN] {
            let opts = SampleOptions {
                cases: 10,
                bad_fraction: bad,
                seed: 1,
            };
            assert!(matches!(
                generate(dir.path(), &opts),
                Err(SampleError::BadOptions(_))
            ));
            assert!(matches!(
                write_sunshine_csv(&dir.path().join("x.csv"), 1, bad, 1),
                Err(SampleError::BadOptions(_))
            ));
        }
    }

    #[test]
    fn generate_writes_one_directory_per_adapter() {
        let dir = tempfile::tempdir().unwrap();
        let opts = SampleOptions {
            cases: 50,
            bad_fraction: 0.1,
            seed: 7,
        };
        let files = generate(dir.path(), &opts).unwrap();
        let names: Vec<_> = files.iter().map(|f| f.adapter.as_str()).collect();
        assert_eq!(names, [SUNSHINE, INSPECTION, TAX]);
        assert_eq!(files.iter().map(|f| f.rows).sum::<u64>(), 50);
        assert_eq!(
            files[0].path,
            dir.path().join("sunshine/sunshine-export.csv")
        );
        assert_eq!(
            files[1].path,
            dir.path().join("market-inspection/inspection-results.xlsx")
        );
        assert_eq!(files[2].path, dir.path().join("tax/tax-sgs.xml"));
        // The manifest lists every planted lead (30 sunshine rows plant one rule lead).
        let planted: usize = files.iter().map(|f| f.planted.len()).sum();
        let manifest = fs::read_to_string(dir.path().join(MANIFEST)).unwrap();
        assert_eq!((planted, manifest.lines().count()), (1, 2), "{manifest}");
        for f in &files {
            assert!(f.path.is_file(), "{}", f.path.display());
            assert!(f.bad_rows <= f.rows);
            // Every adapter directory is named after an adapter shipped in adapters/.
            let shipped = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../adapters")
                .join(&f.adapter);
            assert!(shipped.join("adapter.toml").is_file(), "{}", f.adapter);
        }

        // Same seed, same bytes; another seed, other bytes.
        let again = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        generate(again.path(), &opts).unwrap();
        generate(other.path(), &SampleOptions { seed: 8, ..opts }).unwrap();
        for f in &files {
            let rel = f.path.strip_prefix(dir.path()).unwrap();
            let bytes = fs::read(&f.path).unwrap();
            assert_eq!(
                bytes,
                fs::read(again.path().join(rel)).unwrap(),
                "{}",
                rel.display()
            );
            assert_ne!(
                bytes,
                fs::read(other.path().join(rel)).unwrap(),
                "{}",
                rel.display()
            );
        }
    }
}
