//! Offline verification of an audit export (`xianjie audit verify DIR`): recomputes the tree from
//! the entries, checks every checkpoint's signature and root, and the consistency between
//! consecutive checkpoints, and names the first bad entry precisely.
//!
//! Order of checks, so that the first message is the most precise one available:
//! 1. every line of `entries.jsonl` is a canonical entry whose `seq` is its line index — a
//!    flipped byte usually breaks the JSON or its canonical form; a deleted, inserted or
//!    reordered entry breaks the sequence at exactly that line;
//! 2. every entry's leaf hash equals the exported `leaves.bin` — a change that keeps the JSON
//!    valid is found here, at its index;
//! 3. every checkpoint verifies under `key.vkey`, its size is covered, and its root equals the
//!    root recomputed from the entries (so consecutive checkpoints are prefixes of one tree, and
//!    two of the same size with different roots are reported as a fork) — this catches
//!    `leaves.bin` edited together with the entries, and a truncated export.

use std::io::{BufRead, BufReader};
use std::path::Path;

use super::entry::{Entry, canonical};
use super::merkle::{self, Frontier, Hash};
use super::note::{Checkpoint, NoteVerifier};

/// What a successful verification covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Entries checked.
    pub entries: u64,
    /// Checkpoints checked.
    pub checkpoints: usize,
    /// Size of the latest checkpoint.
    pub latest_size: u64,
}

/// Why an export does not verify. Every message names the file and the entry or checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {reason}")]
pub struct VerifyError {
    /// The file (or `entries.jsonl line N`).
    pub file: String,
    /// What is wrong.
    pub reason: String,
}

fn fail(file: impl Into<String>, reason: impl Into<String>) -> VerifyError {
    VerifyError {
        file: file.into(),
        reason: reason.into(),
    }
}

/// Verifies the export in `dir`.
pub fn verify_export(dir: &Path) -> Result<Verified, VerifyError> {
    let read = |name: &str| {
        std::fs::read(dir.join(name)).map_err(|e| fail(name, format!("cannot read: {e}")))
    };
    let vkey =
        String::from_utf8(read("key.vkey")?).map_err(|_| fail("key.vkey", "not UTF-8 text"))?;
    let verifier = NoteVerifier::parse(vkey.trim_end_matches('\n'))
        .map_err(|e| fail("key.vkey", e.to_string()))?;

    // 1 and 2: entries, in order, against their leaf hashes.
    let cached = read("leaves.bin")?;
    if cached.len() % 32 != 0 {
        return Err(fail(
            "leaves.bin",
            format!(
                "{} bytes is not a whole number of 32-byte hashes",
                cached.len()
            ),
        ));
    }
    let path = dir.join("entries.jsonl");
    let file = std::fs::File::open(&path)
        .map_err(|e| fail("entries.jsonl", format!("cannot read: {e}")))?;
    let mut leaves: Vec<Hash> = Vec::new();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::with_capacity(1024);
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| fail("entries.jsonl", format!("read error: {e}")))?;
        if n == 0 {
            break;
        }
        let index = leaves.len() as u64;
        let at = || format!("entries.jsonl line {} (entry {index})", index + 1);
        if line.last() != Some(&b'\n') {
            return Err(fail(at(), "the last line is cut off (no line feed)"));
        }
        let body = &line[..line.len() - 1];
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| fail(at(), format!("not valid JSON: {e}")))?;
        let again = canonical(&value).map_err(|e| fail(at(), e.to_string()))?;
        if again != body {
            return Err(fail(
                at(),
                "not in canonical form (keys sorted, no spaces, integers only): the entry was edited",
            ));
        }
        let entry: Entry = serde_json::from_value(value)
            .map_err(|e| fail(at(), format!("not an audit entry: {e}")))?;
        if entry.seq != index {
            let what = if entry.seq > index {
                let gap = entry.seq - index;
                format!(
                    "seq is {}, expected {index}: {gap} {} missing before it",
                    entry.seq,
                    if gap == 1 { "entry is" } else { "entries are" }
                )
            } else {
                format!(
                    "seq is {}, expected {index}: the entry is duplicated, inserted or out of order",
                    entry.seq
                )
            };
            return Err(fail(at(), what));
        }
        let leaf = merkle::leaf_hash(body);
        let i = usize::try_from(index).unwrap_or(usize::MAX);
        match cached.get(i * 32..i * 32 + 32) {
            Some(h) if h == leaf => {}
            Some(_) => {
                return Err(fail(
                    at(),
                    "its hash differs from leaves.bin: the entry (or its cached hash) was changed",
                ));
            }
            None => {
                return Err(fail(
                    "leaves.bin",
                    format!("has {} hashes, fewer than the entries", cached.len() / 32),
                ));
            }
        }
        leaves.push(leaf);
    }
    if cached.len() / 32 > leaves.len() {
        return Err(fail(
            "entries.jsonl",
            format!(
                "has {} entries but leaves.bin has {} hashes: entries were removed from the end",
                leaves.len(),
                cached.len() / 32
            ),
        ));
    }

    // 3: checkpoints, by size.
    let mut notes: Vec<(String, Checkpoint)> = Vec::new();
    let cps = dir.join("checkpoints");
    let mut names: Vec<String> = match std::fs::read_dir(&cps) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".note"))
            .collect(),
        Err(e) => return Err(fail("checkpoints/", format!("cannot read: {e}"))),
    };
    names.sort();
    for name in names {
        let file = format!("checkpoints/{name}");
        let bytes = std::fs::read(cps.join(&name)).map_err(|e| fail(&file, e.to_string()))?;
        let text = String::from_utf8(bytes).map_err(|_| fail(&file, "not UTF-8 text"))?;
        let body = verifier
            .verify(&text)
            .map_err(|e| fail(&file, e.to_string()))?;
        let cp = Checkpoint::parse(body).map_err(|e| fail(&file, e.to_string()))?;
        notes.push((file, cp));
    }
    if let Ok(bytes) = std::fs::read(dir.join("checkpoint")) {
        let text = String::from_utf8(bytes).map_err(|_| fail("checkpoint", "not UTF-8 text"))?;
        let body = verifier
            .verify(&text)
            .map_err(|e| fail("checkpoint", e.to_string()))?;
        let cp = Checkpoint::parse(body).map_err(|e| fail("checkpoint", e.to_string()))?;
        notes.push(("checkpoint".into(), cp));
    }
    if notes.is_empty() {
        return Err(fail(
            "checkpoints/",
            "no signed checkpoint to verify against",
        ));
    }
    notes.sort_by_key(|(_, cp)| cp.size);
    let mut frontier = Frontier::new();
    let mut previous: Option<&(String, Checkpoint)> = None;
    for pair in &notes {
        let (file, cp) = pair;
        if let Some((pf, p)) = previous
            && p.size == cp.size
            && p.root != cp.root
        {
            return Err(fail(
                file,
                format!("forked: same size {} as {pf} but a different root", cp.size),
            ));
        }
        if cp.size > leaves.len() as u64 {
            return Err(fail(
                file,
                format!(
                    "covers {} entries but the export has {}: entries were removed from the end",
                    cp.size,
                    leaves.len()
                ),
            ));
        }
        while frontier.size() < cp.size {
            let i = usize::try_from(frontier.size()).unwrap_or(usize::MAX);
            frontier.push(leaves[i]);
        }
        if frontier.root() != cp.root {
            let after = previous.map_or(0, |(_, p)| p.size);
            return Err(fail(
                file,
                format!(
                    "root does not match the entries: one of entries {after}..{} was changed together with leaves.bin",
                    cp.size.saturating_sub(1)
                ),
            ));
        }
        previous = Some(pair);
    }
    // Every root above was recomputed from one entry list, so consecutive checkpoints are
    // prefixes of the same tree. Also prove it the way an outside monitor would, for the oldest
    // and the newest (one proof: building one per pair would cost a pass over the leaves each).
    if let (Some((_, first)), Some((file, last))) = (notes.first(), notes.last()) {
        let proof = merkle::consistency_proof(&leaves, first.size, last.size)
            .map_err(|e| fail(file, e.to_string()))?;
        merkle::verify_consistency(first.size, last.size, &first.root, &last.root, &proof)
            .map_err(|e| {
                fail(
                    file,
                    format!("not consistent with the oldest checkpoint: {e}"),
                )
            })?;
    }
    let latest_size = notes.last().map_or(0, |(_, cp)| cp.size);
    Ok(Verified {
        entries: leaves.len() as u64,
        checkpoints: notes.len(),
        latest_size,
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use ed25519_dalek::SigningKey;
    use proptest::prelude::*;
    use proptest::test_runner::TestRunner;

    use super::*;
    use crate::audit::note::NoteSigner;
    use crate::audit::{Actor, AuditLog, Event, Fsync};
    use crate::proptest_support::{apply, config, edit};

    /// Pieces of export syntax (JSON lines, notes, base64) that mutations insert.
    const EXPORT_SYNTAX: &[&[u8]] = &[
        b"\n",
        b"{",
        b"}",
        b"\"",
        b",",
        b":",
        b"0",
        b"1",
        b" ",
        b"\\u0041",
        b"=",
        b"+",
        b"/",
        "\u{2014} ".as_bytes(),
    ];

    /// An export of 12 entries with signed checkpoints at sizes 5, 9 and 12.
    fn export(tmp: &Path) -> PathBuf {
        let origin = "xianjie.test/audit";
        let log = AuditLog::open(&tmp.join("log"), origin, Fsync::Always).unwrap();
        log.set_signer(Some(
            NoteSigner::new(origin, SigningKey::from_bytes(&[5u8; 32])).unwrap(),
        ));
        for i in 0..12u64 {
            let event =
                Event::new(Actor::admin("张伟"), "case.read", format!("unit/{i}")).detail("n", i);
            log.append(&event).unwrap();
            if i == 4 || i == 8 {
                log.checkpoint().unwrap();
            }
        }
        let out = tmp.join("export");
        log.export(&out).unwrap();
        out
    }

    /// Every file of an export, by path relative to it.
    fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        let mut todo = vec![PathBuf::new()];
        while let Some(rel) = todo.pop() {
            for e in std::fs::read_dir(dir.join(&rel)).unwrap() {
                let e = e.unwrap();
                let rel = rel.join(e.file_name());
                if e.file_type().unwrap().is_dir() {
                    todo.push(rel);
                } else {
                    out.push((rel.clone(), std::fs::read(dir.join(rel)).unwrap()));
                }
            }
        }
        out.sort();
        out
    }

    /// Any change to any file of an export (a flipped byte, an inserted line, a cut) is found,
    /// without a panic; an unchanged export verifies.
    #[test]
    fn any_change_to_an_export_is_found() {
        let tmp = tempfile::tempdir().unwrap();
        let out = export(tmp.path());
        let files = files(&out);
        let names: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
        assert_eq!(names.len(), 7, "{names:?}");
        let whole = verify_export(&out).unwrap();
        assert_eq!((whole.entries, whole.checkpoints), (12, 4));

        let mut runner = TestRunner::new(config(256));
        let cases = (
            0..files.len(),
            prop::collection::vec(edit(EXPORT_SYNTAX), 1..4),
        );
        runner
            .run(&cases, |(which, edits)| {
                let copy = tempfile::tempdir().unwrap();
                for (i, (rel, bytes)) in files.iter().enumerate() {
                    let path = copy.path().join(rel);
                    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                    let bytes = if i == which {
                        apply(bytes, &edits)
                    } else {
                        bytes.clone()
                    };
                    std::fs::write(path, bytes).unwrap();
                }
                let (rel, before) = &files[which];
                let after = std::fs::read(copy.path().join(rel)).unwrap();
                // The verifier key is read without its final line feeds.
                let key_text = |b: &[u8]| {
                    let end = b.iter().rposition(|&c| c != b'\n').map_or(0, |i| i + 1);
                    b[..end].to_vec()
                };
                let same = if rel.ends_with("key.vkey") {
                    key_text(before) == key_text(&after)
                } else {
                    *before == after
                };
                let got = verify_export(copy.path());
                if same {
                    prop_assert!(got.is_ok(), "{rel:?} unchanged: {got:?}");
                } else {
                    prop_assert!(got.is_err(), "a change to {rel:?} was not found");
                }
                Ok(())
            })
            .unwrap();
    }
}
