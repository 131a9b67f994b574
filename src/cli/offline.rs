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

/// `xianjie store migrate --to postgres`: the embedded store, the keystore file and the audit
/// log's files of the data directory, copied into the empty database `[store]` names. The audit
/// log's root is recomputed from the copy and checked against its last signed checkpoint.
pub fn store_migrate(cli: &Cli) -> anyhow::Result<()> {
    use std::io::BufRead;

    use anyhow::Context as _;

    use crate::audit::merkle::{Frontier, leaf_hash};
    use crate::keys::keystore::SharedBlob as _;
    use crate::store::Store;

    let config = crate::config::Config::load(cli.config.as_deref(), cli.data.as_deref())?;
    let crate::config::StoreConfig::Postgres(settings) = &config.store else {
        anyhow::bail!(
            "the configuration's [store] is sled: set kind = \"postgres\" and url (the empty database to copy into), then run this again"
        );
    };
    let dir = &config.data_dir;
    let from = Store::open(dir).with_context(|| {
        format!(
            "the embedded store in {} (stop the gateway first: one process at a time)",
            dir.display()
        )
    })?;
    let to = Store::open_postgres((**settings).clone())?;
    if let Some(table) = to.first_non_empty()? {
        anyhow::bail!(
            "the database is not empty (table {table} holds entries): copy into an empty database"
        );
    }
    let copied = from.copy_into(&to)?;
    for (tree, n) in &copied.trees {
        if *n > 0 {
            println!("{tree:<20} {n:>10} entries");
        }
    }
    let keystore = dir.join(crate::gateway::KEYSTORE_FILE);
    if keystore.exists() {
        let bytes =
            std::fs::read(&keystore).with_context(|| format!("reading {}", keystore.display()))?;
        anyhow::ensure!(
            to.swap(None, &bytes)?,
            "the database already holds a keystore"
        );
        println!("keystore             {} bytes", bytes.len());
    }
    let audit = dir.join("audit");
    let notes: Vec<(u64, String)> =
        crate::audit::log::read_checkpoints(&audit.join("checkpoints.log"))?
            .into_iter()
            .map(|note| {
                let cp = crate::audit::log::checkpoint_of(&note)?;
                Ok((cp.size, note))
            })
            .collect::<Result<_, crate::audit::note::NoteError>>()?;
    let mut frontier = Frontier::new();
    let mut roots = std::collections::BTreeMap::new();
    let entries = audit.join("entries.jsonl");
    let lines: Box<dyn Iterator<Item = std::io::Result<Vec<u8>>>> =
        match std::fs::File::open(&entries) {
            Ok(f) => Box::new(std::io::BufReader::new(f).split(b'\n')),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Box::new(std::iter::empty()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", entries.display())),
        };
    let wanted: std::collections::BTreeSet<u64> = notes.iter().map(|(n, _)| *n).collect();
    let n = to.audit_import(
        lines.map(|line| {
            let line = line.map_err(|e| crate::store::StoreError::Corrupt {
                what: entries.display().to_string(),
                reason: e.to_string(),
            })?;
            let leaf = leaf_hash(&line);
            frontier.push(leaf);
            if wanted.contains(&frontier.size()) {
                roots.insert(frontier.size(), frontier.root());
            }
            Ok((leaf, line))
        }),
        &notes,
    )?;
    for (size, note) in &notes {
        let cp = crate::audit::log::checkpoint_of(note)?;
        anyhow::ensure!(
            roots.get(size) == Some(&cp.root),
            "the copied audit log does not hash to its checkpoint of {size} entries: the files in {} were changed; run `xianjie audit verify` on an export",
            audit.display()
        );
    }
    println!(
        "audit log            {n:>10} entries, {} checkpoints; root {} (each checkpoint's root recomputed from the copy)",
        notes.len(),
        hex::encode(frontier.root())
    );
    println!(
        "copied into the database. Start the gateways with this configuration; unlock each with the keystore's passphrase."
    );
    Ok(())
}
