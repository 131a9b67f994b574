//! Commands that need no running gateway: `adapters check`, `rules check` and `sample`.

use std::path::{Path, PathBuf};

use super::Cli;
use crate::config::ConfigErrors;
use crate::ingest::{self, golden};

/// `xianjie adapters check [DIR] [--bless]`.
pub fn adapters_check(cli: &Cli, dir: Option<PathBuf>, bless: bool) -> anyhow::Result<()> {
    let dir = match dir {
        Some(d) => d,
        None => crate::config::Config::load(cli.config.as_deref(), None)
            .map(|c| c.adapters_dir)
            .unwrap_or_else(|_| PathBuf::from(crate::config::DEFAULT_ADAPTERS_DIR)),
    };
    let adapters = ingest::load_all(&dir).map_err(|errs| {
        ConfigErrors(
            errs.into_iter()
                .map(|e| crate::config::ConfigProblem {
                    file: e.file,
                    key: e.key,
                    reason: e.reason,
                })
                .collect(),
        )
    })?;
    let mut failed = 0;
    for a in &adapters {
        let results = golden::check(a, bless);
        println!(
            "adapter {}: definition ok, {} golden case(s)",
            a.name,
            results.len()
        );
        for r in results {
            match r.mismatch {
                None => println!(
                    "  {} {}",
                    if bless { "wrote" } else { "ok  " },
                    r.input.display()
                ),
                Some(m) => {
                    failed += 1;
                    println!(
                        "  FAIL {}\n    {}",
                        r.input.display(),
                        m.replace('\n', "\n    ")
                    );
                }
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} golden case(s) failed");
    }
    Ok(())
}

/// `xianjie rules check [DIR]`: every problem of every rule file at once, then each rule's
/// golden cases, with the facts that matched.
pub fn rules_check(dir: Option<PathBuf>) -> anyhow::Result<()> {
    let dir = dir.unwrap_or_else(|| PathBuf::from(crate::supervision::DEFAULT_RULES_DIR));
    let rules = crate::supervision::load_dir(&dir).map_err(|errs| {
        ConfigErrors(
            errs.into_iter()
                .map(|e| crate::config::ConfigProblem {
                    file: e.file,
                    key: e.at,
                    reason: e.reason,
                })
                .collect(),
        )
    })?;
    let outcomes = crate::supervision::run_golden(&rules);
    let mut failed = 0;
    for r in &rules {
        println!("rule {}: {} ({})", r.id, r.title, r.source);
        for o in outcomes.iter().filter(|o| o.rule == r.id) {
            // The case's name says what it expects; the line under it says what the rule saw.
            let said = match &o.got {
                Some(m) => {
                    let facts: Vec<String> = m
                        .iter()
                        .map(|f| format!("{} {} ({})", f.fact, f.value, f.threshold))
                        .collect();
                    format!("matched: {}", facts.join("; "))
                }
                None => "no match".into(),
            };
            if o.passed() {
                println!("  ok   {}\n         {said}", o.name);
            } else {
                failed += 1;
                let want = if o.expect { "a match" } else { "no match" };
                println!("  FAIL {}\n         expected {want}, {said}", o.name);
            }
        }
    }
    println!(
        "{} rule(s), {} golden case(s), {failed} failed",
        rules.len(),
        outcomes.len()
    );
    if failed > 0 {
        anyhow::bail!("{failed} golden case(s) failed");
    }
    Ok(())
}

/// `xianjie sample`.
pub fn sample(cases: u64, out: &Path, bad_fraction: f64, seed: u64) -> anyhow::Result<()> {
    let files = crate::sample::generate(
        out,
        &crate::sample::SampleOptions {
            cases,
            bad_fraction,
            seed,
        },
    )?;
    for f in files {
        println!(
            "{}: {} ({} rows, {} deliberately bad)",
            f.adapter,
            f.path.display(),
            f.rows,
            f.bad_rows
        );
    }
    Ok(())
}

/// `xianjie certs dev`.
pub fn certs_dev(out: &Path, clients: &[String], force: bool) -> anyhow::Result<()> {
    let files = xianjie_devca::generate_dev(out, clients, force)?;
    for f in &files {
        println!("wrote {}", f.display());
    }
    println!(
        "development certificates in {} — for testing only; the *-key.pem files are private (see certs/README.md)",
        out.display()
    );
    Ok(())
}
