//! `xianjie store migrate --to postgres`: a sled store copied into an empty PostgreSQL store,
//! tree by tree and byte for byte (both backends hold the same bytes under the same keys), with
//! the keystore file and the audit log's files.

use super::kv;
use super::{LAYOUT_KEY, Store, StoreError, db_err};

/// Entries copied per write.
const BATCH: usize = 1000;

/// What a migration copied.
#[derive(Debug, Default)]
pub struct Copied {
    /// Entries per tree, in the trees' order.
    pub trees: Vec<(&'static str, u64)>,
}

impl Store {
    fn named_trees(&self) -> [(&'static str, &kv::Tree); 26] {
        [
            ("cases", &self.cases),
            ("changes", &self.changes),
            ("outbox", &self.outbox),
            ("documents", &self.documents),
            ("quarantine", &self.quarantine),
            ("quarantine_fp", &self.quarantine_fp),
            ("counts", &self.counts),
            ("meta", &self.meta),
            ("ports", &self.ports),
            ("delivered", &self.delivered),
            ("dead", &self.dead),
            ("reports", &self.reports),
            ("parties", &self.parties),
            ("parties_sorted", &self.parties_sorted),
            ("party_watch", &self.party_watch),
            ("leads", &self.leads),
            ("leads_pending", &self.leads_pending),
            ("supervision", &self.supervision),
            ("case_supervision", &self.case_supervision),
            ("transfers", &self.transfers),
            ("case_versions", &self.case_versions),
            ("supervision_outbox", &self.supervision_outbox),
            ("keystore", &self.keystore),
            ("audit_queue", &self.audit_queue),
            ("audit_log", &self.audit_log),
            ("audit_checkpoints", &self.audit_checkpoints),
        ]
    }

    /// The first tree of `self` holding anything but the layout mark, if any.
    pub fn first_non_empty(&self) -> Result<Option<&'static str>, StoreError> {
        for (name, tree) in self.named_trees() {
            for kv in tree.iter() {
                let (k, _) = kv.map_err(db_err("store read"))?;
                if !(name == "meta" && k.as_ref() == LAYOUT_KEY.as_bytes()) {
                    return Ok(Some(name));
                }
            }
        }
        Ok(None)
    }

    /// Copies every tree of this store into `to` (which must be empty: see
    /// [`Store::first_non_empty`]), and moves `to`'s id sequence past every id this store gave.
    pub fn copy_into(&self, to: &Store) -> Result<Copied, StoreError> {
        let mut copied = Copied::default();
        for ((name, from), (_, into)) in self.named_trees().into_iter().zip(to.named_trees()) {
            let mut n = 0u64;
            let mut batch = kv::Batch::default();
            for kv in from.iter() {
                let (k, v) = kv.map_err(db_err("store read"))?;
                batch.insert(k.to_vec(), v.to_vec());
                n += 1;
                if batch.0.len() >= BATCH {
                    into.apply_batch(std::mem::take(&mut batch))
                        .map_err(db_err("store copy"))?;
                }
            }
            if !batch.0.is_empty() {
                into.apply_batch(batch).map_err(db_err("store copy"))?;
            }
            copied.trees.push((name, n));
        }
        // Ids given here (quarantine, dead letters, supervision) must never be given again.
        let next = self.db.generate_id().map_err(db_err("id"))?;
        to.db.ids_from(next).map_err(db_err("id"))?;
        Ok(copied)
    }

    /// Writes a log in files into this (empty) store's audit log: `lines` (canonical lines, in
    /// order) with their leaf hashes, and the signed checkpoints `notes` (each with the size it
    /// covers).
    pub fn audit_import(
        &self,
        lines: impl Iterator<Item = Result<(crate::audit::merkle::Hash, Vec<u8>), StoreError>>,
        notes: &[(u64, String)],
    ) -> Result<u64, StoreError> {
        let mut n = 0u64;
        let mut batch = kv::Batch::default();
        for line in lines {
            let (leaf, line) = line?;
            let mut value = leaf.to_vec();
            value.extend_from_slice(&line);
            batch.insert(n.to_be_bytes().to_vec(), value);
            n += 1;
            if batch.0.len() >= BATCH {
                self.audit_log
                    .apply_batch(std::mem::take(&mut batch))
                    .map_err(db_err("audit import"))?;
            }
        }
        if !batch.0.is_empty() {
            self.audit_log
                .apply_batch(batch)
                .map_err(db_err("audit import"))?;
        }
        // The log's end first: a checkpoint is stored only over entries the log holds.
        self.set_meta(super::audit::AUDIT_NEXT, &n)?;
        for (size, note) in notes {
            self.audit_put_checkpoint(*size, note)?;
        }
        Ok(n)
    }
}
