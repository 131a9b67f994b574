//! The audit log on disk and its offline verifier: appends and reopening, torn tails, a log that
//! no longer matches its signed checkpoint, fail-closed appends, concurrent appends, and every kind
//! of tampering with an export, each reported precisely.

#![allow(clippy::unwrap_used)] // test helpers, like tests, stop at the first failure

use std::path::Path;
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use xianjie::audit::merkle::{self, Frontier};
use xianjie::audit::note::NoteSigner;
use xianjie::audit::{Actor, AuditError, AuditLog, Event, Fsync, verify_export};

const ORIGIN: &str = "xianjie.test/audit";

fn signer() -> NoteSigner {
    NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[7u8; 32])).unwrap()
}

fn open(dir: &Path) -> Arc<AuditLog> {
    AuditLog::open(dir, ORIGIN, Fsync::Always).unwrap()
}

fn event(i: u64) -> Event {
    Event::new(Actor::admin("张伟"), "case.read", format!("unit/{i}")).detail("n", i)
}

fn lines(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("entries.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn appends_survive_reopening_with_the_same_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let root = {
        let log = open(tmp.path());
        for i in 0..100 {
            assert_eq!(log.append(&event(i)).unwrap(), i);
        }
        let (size, root, _) = log.inclusion(0, None).unwrap();
        assert_eq!(size, 100);
        root
    };
    let log = open(tmp.path());
    assert_eq!(log.size(), 100);
    let leaves: Vec<_> = lines(tmp.path())
        .iter()
        .map(|l| merkle::leaf_hash(l.as_bytes()))
        .collect();
    assert_eq!(merkle::root(&leaves), root);
    let tail = log.tail(3).unwrap();
    assert_eq!(
        tail.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![97, 98, 99]
    );
    assert_eq!(tail[0].actor.id, "张伟");
    // Proofs from the log verify against the root.
    for (i, size) in [(0u64, 100u64), (57, 100), (99, 100), (3, 10)] {
        let (s, r, proof) = log.inclusion(i, Some(size)).unwrap();
        let leaf = log.inclusion_leaf(i).unwrap();
        merkle::verify_inclusion(&leaf, i, s, &proof, &r).unwrap();
    }
    let (old_root, new_root, proof) = log.consistency(13, 100).unwrap();
    merkle::verify_consistency(13, 100, &old_root, &new_root, &proof).unwrap();
    assert!(log.inclusion(100, Some(100)).is_err(), "index = size");
    assert!(log.inclusion(0, Some(101)).is_err(), "size beyond the log");
}

#[test]
fn a_torn_last_line_is_dropped_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let log = open(tmp.path());
        for i in 0..3 {
            log.append(&event(i)).unwrap();
        }
    }
    let path = tmp.path().join("entries.jsonl");
    let mut bytes = std::fs::read(&path).unwrap();
    let good = bytes.len();
    bytes.extend_from_slice(b"{\"action\":\"case.re");
    std::fs::write(&path, &bytes).unwrap();
    let log = open(tmp.path());
    assert_eq!(log.size(), 3);
    assert_eq!(std::fs::metadata(&path).unwrap().len() as usize, good);
    assert_eq!(log.append(&event(3)).unwrap(), 3);
}

#[test]
fn a_log_changed_under_its_signed_checkpoint_is_refused_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let log = open(tmp.path());
        log.set_signer(Some(signer()));
        for i in 0..10 {
            log.append(&event(i)).unwrap();
        }
        log.checkpoint().unwrap();
    }
    let path = tmp.path().join("entries.jsonl");
    let original = std::fs::read_to_string(&path).unwrap();

    // A changed entry.
    std::fs::write(&path, original.replacen("unit/4", "unit/5", 1)).unwrap();
    let err = AuditLog::open(tmp.path(), ORIGIN, Fsync::Always).unwrap_err();
    assert!(
        matches!(err, AuditError::Tampered { .. }) && err.to_string().contains("first 10 entries"),
        "{err}"
    );
    // Entries removed from the end.
    let first_five: String = original.lines().take(5).map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, first_five).unwrap();
    let err = AuditLog::open(tmp.path(), ORIGIN, Fsync::Always).unwrap_err();
    assert!(
        err.to_string().contains("covers 10 entries but only 5"),
        "{err}"
    );
    // Restored: opens again.
    std::fs::write(&path, original).unwrap();
    assert_eq!(open(tmp.path()).size(), 10);
}

/// Makes a file immutable (ext4 `chattr +i`): writes through open descriptors then fail, even
/// for root — the closest this machine gets to a disk that stops taking writes.
fn immutable(path: &Path, on: bool) -> bool {
    std::process::Command::new("chattr")
        .arg(if on { "+i" } else { "-i" })
        .arg(path)
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn appends_fail_closed_when_the_log_cannot_be_written() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path());
    log.append(&event(0)).unwrap();
    let path = tmp.path().join("entries.jsonl");
    assert!(
        immutable(&path, true),
        "chattr +i must work on this filesystem"
    );
    let first = log.append(&event(1));
    immutable(&path, false);
    let err = first.unwrap_err();
    assert!(
        matches!(err, AuditError::Broken(_)) && err.to_string().contains("entries.jsonl"),
        "{err}"
    );
    // Once broken, always refused until reopened, even though the file is writable again.
    assert!(matches!(log.append(&event(2)), Err(AuditError::Broken(_))));
    assert_eq!(lines(tmp.path()).len(), 1);
    drop(log);
    let log = open(tmp.path());
    assert_eq!(log.append(&event(1)).unwrap(), 1);
}

#[test]
fn concurrent_appends_get_distinct_sequence_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(tmp.path());
    let mut seqs: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|t| {
                let log = &log;
                s.spawn(move || {
                    (0..50)
                        .map(|i| log.append(&event(t * 1000 + i)).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    seqs.sort_unstable();
    assert_eq!(seqs, (0..800).collect::<Vec<_>>());
    for (i, l) in lines(tmp.path()).iter().enumerate() {
        let e: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(e["seq"], i as u64);
    }
}

/// An exported log of `n` entries with checkpoints at 4, 9 and n.
fn export(n: u64) -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let log = open(&tmp.path().join("log"));
    log.set_signer(Some(signer()));
    for i in 0..n {
        log.append(&event(i)).unwrap();
        if i == 3 || i == 8 {
            log.checkpoint().unwrap();
        }
    }
    let out = tmp.path().join("export");
    assert_eq!(log.export(&out).unwrap(), n);
    (tmp, out)
}

fn edit_entries(dir: &Path, f: impl FnOnce(&mut Vec<String>)) {
    let path = dir.join("entries.jsonl");
    let mut l: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    f(&mut l);
    std::fs::write(
        &path,
        l.iter().map(|x| format!("{x}\n")).collect::<String>(),
    )
    .unwrap();
}

fn verify_err(dir: &Path) -> String {
    verify_export(dir).unwrap_err().to_string()
}

#[test]
fn an_intact_export_verifies() {
    let (_t, out) = export(20);
    let v = verify_export(&out).unwrap();
    assert_eq!((v.entries, v.checkpoints, v.latest_size), (20, 4, 20));
}

#[test]
fn every_kind_of_tampering_is_named_precisely() {
    // A flipped byte that keeps the JSON valid: found by its leaf hash, at its line.
    let (_t, out) = export(20);
    edit_entries(&out, |l| l[6] = l[6].replace("unit/6", "unit/7"));
    let e = verify_err(&out);
    assert!(
        e.contains("line 7 (entry 6)") && e.contains("hash differs"),
        "{e}"
    );

    // A flipped byte that breaks the JSON.
    let (_t, out) = export(20);
    edit_entries(&out, |l| l[2] = l[2].replacen('{', "[", 1));
    let e = verify_err(&out);
    assert!(
        e.contains("line 3 (entry 2)") && e.contains("not valid JSON"),
        "{e}"
    );

    // Non-canonical but equivalent JSON (a space).
    let (_t, out) = export(20);
    edit_entries(&out, |l| l[5] = l[5].replacen(",", ", ", 1));
    let e = verify_err(&out);
    assert!(e.contains("entry 5") && e.contains("canonical"), "{e}");

    // A deleted entry.
    let (_t, out) = export(20);
    edit_entries(&out, |l| {
        l.remove(11);
    });
    let e = verify_err(&out);
    assert!(
        e.contains("line 12 (entry 11)") && e.contains("seq is 12, expected 11"),
        "{e}"
    );

    // An inserted (duplicated) entry.
    let (_t, out) = export(20);
    edit_entries(&out, |l| {
        let dup = l[3].clone();
        l.insert(4, dup);
    });
    let e = verify_err(&out);
    assert!(
        e.contains("entry 4") && e.contains("seq is 3, expected 4"),
        "{e}"
    );

    // Two entries swapped.
    let (_t, out) = export(20);
    edit_entries(&out, |l| l.swap(14, 15));
    let e = verify_err(&out);
    assert!(
        e.contains("entry 14") && e.contains("seq is 15, expected 14"),
        "{e}"
    );

    // Truncated: the last entries gone (and their cached hashes with them).
    let (_t, out) = export(20);
    edit_entries(&out, |l| l.truncate(17));
    let leaves = std::fs::read(out.join("leaves.bin")).unwrap();
    std::fs::write(out.join("leaves.bin"), &leaves[..17 * 32]).unwrap();
    let e = verify_err(&out);
    assert!(e.contains("covers 20 entries but the export has 17"), "{e}");

    // An entry and its cached hash changed together: only the checkpoint roots can tell.
    let (_t, out) = export(20);
    let mut changed = String::new();
    edit_entries(&out, |l| {
        l[10] = l[10].replace("unit/10", "unit/11");
        changed = l[10].clone();
    });
    let mut leaves = std::fs::read(out.join("leaves.bin")).unwrap();
    leaves[10 * 32..11 * 32].copy_from_slice(&merkle::leaf_hash(changed.as_bytes()));
    std::fs::write(out.join("leaves.bin"), leaves).unwrap();
    let e = verify_err(&out);
    assert!(
        e.contains("root does not match") && e.contains("entries 9..19"),
        "{e}"
    );
}

#[test]
fn bad_checkpoints_are_named_with_the_reason() {
    let (_t, out) = export(12);
    let name = "checkpoints/00000000000000000012.note";
    let good = std::fs::read_to_string(out.join(name)).unwrap();

    // A forked checkpoint: same size, another root, properly signed.
    let mut other = Frontier::new();
    for i in 0..12u8 {
        other.push(merkle::leaf_hash(&[i]));
    }
    let body = xianjie::audit::note::Checkpoint {
        origin: ORIGIN.into(),
        size: 12,
        root: other.root(),
        extensions: Vec::new(),
    }
    .body();
    std::fs::write(out.join("checkpoint"), signer().sign(&body).unwrap()).unwrap();
    let e = verify_err(&out);
    assert!(
        e.contains("forked") || e.contains("root does not match"),
        "{e}"
    );
    std::fs::write(out.join("checkpoint"), &good).unwrap();
    verify_export(&out).unwrap();

    // A size with a leading zero, properly signed: the checkpoint parser refuses it.
    let body_end = good.find("\n\n").unwrap() + 1;
    let zero = signer()
        .sign(&good[..body_end].replacen("\n12\n", "\n012\n", 1))
        .unwrap();
    let cases: Vec<(String, &str)> = vec![
        (good.replace('\n', "\r\n"), "\\r"),
        (zero, "leading zero"),
        (good.replace("— ", "- "), "—"),
    ];
    for (text, expect) in cases {
        std::fs::write(out.join(name), &text).unwrap();
        let e = verify_err(&out);
        assert!(
            e.contains(name) && e.to_lowercase().contains(&expect.to_lowercase()),
            "{expect}: {e}"
        );
    }
    // A signature whose base64 is not canonical (padding bits changed).
    let sig_line = good.lines().last().unwrap().to_string();
    let sig = sig_line.rsplit(' ').next().unwrap();
    let mut chars: Vec<char> = sig.chars().collect();
    let last = chars.iter().rposition(|c| *c != '=').unwrap();
    // 72 bytes encode to 96 characters with no padding: change the last character's value so
    // it decodes to different bytes (rather than non-canonical) if there are no spare bits.
    chars[last] = if chars[last] == 'A' { 'B' } else { 'A' };
    let tampered = good.replace(sig, &chars.iter().collect::<String>());
    std::fs::write(out.join(name), tampered).unwrap();
    let e = verify_err(&out);
    assert!(e.contains(name), "{e}");
}
