//! The store's engine: ordered trees of byte keys and values, with transactions over several
//! trees, on one of two backends:
//! - sled (embedded, the default): each tree is a sled tree;
//! - PostgreSQL: each tree is a table of the same name, `(key bytea PRIMARY KEY, value bytea)`
//!   (see `postgres.rs`).
//!
//! Everything above this module (the encodings of cases, the change log, the outbox, the indexes)
//! is written once against it, so both backends hold the same bytes under the same keys and a sled
//! store copies into PostgreSQL entry by entry. Transactions are serializable on both: sled's are,
//! and PostgreSQL's run at `SERIALIZABLE`, retried like sled's on a conflict.

use std::ops::{Bound, RangeBounds};

use sled::Transactional;
use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};

use super::StoreError;
use super::postgres::{Cursor, Pg, PgError, PgTx, Table};

/// The value type both backends return (sled's reference-counted bytes; a `Vec` converts into it).
pub(super) type Bytes = sled::IVec;

/// A failure of the backend itself (not of what was stored).
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// sled failed.
    #[error(transparent)]
    Sled(#[from] sled::Error),
    /// PostgreSQL failed.
    #[error(transparent)]
    Postgres(#[from] PgError),
}

/// A backend: where trees are opened.
#[derive(Clone)]
pub(super) enum Db {
    Sled(sled::Db),
    Postgres(Pg),
}

impl Db {
    /// The tree named `name` (for PostgreSQL, its table must exist: the migrations create them).
    pub(super) fn open_tree(&self, name: &'static str) -> Result<Tree, DbError> {
        Ok(match self {
            Self::Sled(db) => Tree::Sled(db.open_tree(name)?),
            Self::Postgres(pg) => Tree::Postgres(pg.table(name)),
        })
    }

    /// A new id, unique in this store (starting at 0 on a new store).
    pub(super) fn generate_id(&self) -> Result<u64, DbError> {
        Ok(match self {
            Self::Sled(db) => db.generate_id()?,
            Self::Postgres(pg) => pg.generate_id()?,
        })
    }

    /// Puts every commit made so far on disk: sled flushes; PostgreSQL commits a transaction
    /// synchronously, which flushes the write-ahead log through it, earlier asynchronous commits
    /// (of any connection) included.
    pub(super) fn flush_commits(&self) -> Result<(), DbError> {
        match self {
            Self::Sled(db) => db.flush().map(drop)?,
            Self::Postgres(pg) => pg.flush_commits()?,
        }
        Ok(())
    }

    /// Makes ids start at `next` (a store copied from another gives none of its ids again).
    pub(super) fn ids_from(&self, next: u64) -> Result<(), DbError> {
        match self {
            Self::Sled(db) => {
                while db.generate_id()? < next {}
                Ok(())
            }
            Self::Postgres(pg) => Ok(pg.ids_from(next)?),
        }
    }

    /// Makes every write so far durable: sled flushes; PostgreSQL flushes the commits of
    /// [`transaction_deferred`] (every other commit already is).
    pub(super) fn flush(&self) -> Result<(), DbError> {
        self.flush_commits()
    }
}

/// One ordered tree of byte keys and values.
#[derive(Clone)]
pub(super) enum Tree {
    Sled(sled::Tree),
    Postgres(Table),
}

/// Writes applied together by [`Tree::apply_batch`].
#[derive(Default)]
pub(super) struct Batch(pub(super) Vec<(Vec<u8>, Option<Vec<u8>>)>);

impl Batch {
    /// Sets `key` to `value`.
    pub(super) fn insert(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.0.push((key.into(), Some(value.into())));
    }
}

/// Owned bounds of a key range.
pub(super) type KeyRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

fn owned_range<K: AsRef<[u8]>, R: RangeBounds<K>>(range: &R) -> KeyRange {
    let own = |b: Bound<&K>| match b {
        Bound::Included(k) => Bound::Included(k.as_ref().to_vec()),
        Bound::Excluded(k) => Bound::Excluded(k.as_ref().to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    };
    (own(range.start_bound()), own(range.end_bound()))
}

/// The smallest key greater than every key starting with `prefix` (`None`: there is none).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

impl Tree {
    /// The value under `key`.
    pub(super) fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>, DbError> {
        Ok(match self {
            Self::Sled(t) => t.get(key)?,
            Self::Postgres(t) => t.get(key.as_ref())?.map(Bytes::from),
        })
    }

    /// The values under `keys`, in their order: one query on PostgreSQL, where a read is a
    /// round trip.
    pub(super) fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Bytes>>, DbError> {
        Ok(match self {
            Self::Sled(t) => keys.iter().map(|k| t.get(k)).collect::<Result<_, _>>()?,
            Self::Postgres(t) => t
                .get_many(keys)?
                .into_iter()
                .map(|v| v.map(Bytes::from))
                .collect(),
        })
    }

    /// Sets `key` to `value`.
    pub(super) fn insert(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<(), DbError> {
        match self {
            Self::Sled(t) => t.insert(key.as_ref(), value.as_ref()).map(drop)?,
            Self::Postgres(t) => t.put(&[(key.as_ref(), Some(value.as_ref()))])?,
        }
        Ok(())
    }

    /// Removes `key`; returns the value it had.
    pub(super) fn remove(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>, DbError> {
        Ok(match self {
            Self::Sled(t) => t.remove(key)?,
            Self::Postgres(t) => t.remove(key.as_ref())?.map(Bytes::from),
        })
    }

    /// Whether `key` is held.
    pub(super) fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool, DbError> {
        Ok(match self {
            Self::Sled(t) => t.contains_key(key)?,
            Self::Postgres(t) => t.get(key.as_ref())?.is_some(),
        })
    }

    /// Every entry in key order.
    pub(super) fn iter(&self) -> Iter {
        self.range::<&[u8], _>(..)
    }

    /// The entries whose key starts with `prefix`, in key order.
    pub(super) fn scan_prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        let prefix = prefix.as_ref();
        match self {
            Self::Sled(t) => Iter::Sled(t.scan_prefix(prefix)),
            Self::Postgres(t) => Iter::Postgres(t.cursor((
                Bound::Included(prefix.to_vec()),
                prefix_end(prefix).map_or(Bound::Unbounded, Bound::Excluded),
            ))),
        }
    }

    /// The entries in `range`, in key order.
    pub(super) fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter {
        match self {
            Self::Sled(t) => Iter::Sled(t.range(range)),
            Self::Postgres(t) => Iter::Postgres(t.cursor(owned_range(&range))),
        }
    }

    /// The greatest key at or before `key`, without its value (one small query on PostgreSQL).
    pub(super) fn last_key_at_or_before(&self, key: &[u8]) -> Result<Option<Bytes>, DbError> {
        Ok(match self {
            Self::Sled(t) => t.range(..=key).next_back().transpose()?.map(|(k, _)| k),
            Self::Postgres(t) => t.last_key_at_or_before(key)?.map(Bytes::from),
        })
    }

    /// Stores `values` under new ids of `db` (keys: the id as 8 bytes big-endian) and returns
    /// the ids in their order: one statement, one commit on PostgreSQL.
    pub(super) fn insert_with_new_ids(
        &self,
        db: &Db,
        values: &[Vec<u8>],
        flushed: bool,
    ) -> Result<Vec<u64>, DbError> {
        match self {
            Self::Sled(_) => {
                let ids =
                    (values.iter().map(|_| db.generate_id())).collect::<Result<Vec<_>, _>>()?;
                let mut batch = Batch::default();
                for (id, v) in ids.iter().zip(values) {
                    batch.insert(id.to_be_bytes(), v.as_slice());
                }
                self.apply_batch(batch)?;
                Ok(ids)
            }
            Self::Postgres(t) => Ok(t.insert_with_new_ids(values.to_vec(), flushed)?),
        }
    }

    /// Inserts `rows` (keys not in this tree) if `guard`'s `key` holds `old`, setting it to
    /// `new`, atomically; returns whether it did. One statement and one commit on PostgreSQL,
    /// `flushed` as for [`Tree::insert_with_new_ids`]; a transaction over both trees on sled.
    pub(super) fn insert_new_if_swapped(
        &self,
        guard: &Tree,
        key: &[u8],
        (old, new): (&[u8], &[u8]),
        rows: Vec<(Vec<u8>, Vec<u8>)>,
        flushed: bool,
    ) -> Result<bool, DbError> {
        match (self, guard) {
            (Self::Sled(t), Self::Sled(g)) => {
                let done = (t, g).transaction(|(t, g)| {
                    if g.get(key)?.as_deref() != Some(old) {
                        return Ok(false);
                    }
                    g.insert(key, new)?;
                    for (k, v) in &rows {
                        t.insert(k.as_slice(), v.as_slice())?;
                    }
                    Ok::<_, ConflictableTransactionError<std::convert::Infallible>>(true)
                });
                match done {
                    Ok(done) => Ok(done),
                    Err(TransactionError::Storage(e)) => Err(e.into()),
                    Err(TransactionError::Abort(never)) => match never {},
                }
            }
            (Self::Postgres(t), Self::Postgres(g)) => {
                let (keys, values) = rows.into_iter().unzip();
                Ok(t.insert_new_if_swapped(g, key, (old, new), (keys, values), flushed)?)
            }
            _ => Err(DbError::Postgres(PgError::Answer(
                "a write over trees of two backends",
            ))),
        }
    }

    /// How many entries the tree holds (sled counts them by a full scan).
    pub(super) fn len(&self) -> Result<usize, DbError> {
        Ok(match self {
            Self::Sled(t) => t.len(),
            Self::Postgres(t) => t.count()?,
        })
    }

    /// Whether the tree is empty.
    pub(super) fn is_empty(&self) -> Result<bool, DbError> {
        Ok(match self {
            Self::Sled(t) => t.is_empty(),
            Self::Postgres(_) => self.iter().next().transpose()?.is_none(),
        })
    }

    /// Sets `key` from `old` to `new` (`None`: absent) only if it holds `old`; returns whether it
    /// did.
    pub(super) fn compare_and_swap(
        &self,
        key: impl AsRef<[u8]>,
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, DbError> {
        Ok(match self {
            Self::Sled(t) => t.compare_and_swap(key, old, new)?.is_ok(),
            Self::Postgres(t) => t.compare_and_swap(key.as_ref(), old, new)?,
        })
    }

    /// Applies `batch` atomically.
    pub(super) fn apply_batch(&self, batch: Batch) -> Result<(), DbError> {
        match self {
            Self::Sled(t) => {
                let mut b = sled::Batch::default();
                for (k, v) in batch.0 {
                    match v {
                        Some(v) => b.insert(k, v),
                        None => b.remove(k),
                    }
                }
                t.apply_batch(b)?;
            }
            Self::Postgres(t) => {
                let writes: Vec<(&[u8], Option<&[u8]>)> = batch
                    .0
                    .iter()
                    .map(|(k, v)| (k.as_slice(), v.as_deref()))
                    .collect();
                t.put(&writes)?;
            }
        }
        Ok(())
    }

    /// Removes every entry.
    pub(super) fn clear(&self) -> Result<(), DbError> {
        match self {
            Self::Sled(t) => t.clear()?,
            Self::Postgres(t) => t.clear()?,
        }
        Ok(())
    }

    /// Makes this tree's writes durable (PostgreSQL's commits already are).
    pub(super) fn flush(&self) -> Result<(), DbError> {
        match self {
            Self::Sled(t) => t.flush().map(drop).map_err(DbError::from),
            Self::Postgres(_) => Ok(()),
        }
    }
}

/// Entries of a tree in key order, from either end; PostgreSQL's are read a page at a time, so
/// memory stays bounded whatever the tree's size.
pub(super) enum Iter {
    Sled(sled::Iter),
    Postgres(Cursor),
}

impl Iterator for Iter {
    type Item = Result<(Bytes, Bytes), DbError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Self::Sled(i) => i.next().map(|r| r.map_err(DbError::from)),
            Self::Postgres(c) => c
                .next_front()
                .map(|r| r.map(|(k, v)| (k.into(), v.into())).map_err(DbError::from)),
        }
    }
}

impl DoubleEndedIterator for Iter {
    fn next_back(&mut self) -> Option<Self::Item> {
        match self {
            Self::Sled(i) => i.next_back().map(|r| r.map_err(DbError::from)),
            Self::Postgres(c) => c
                .next_back()
                .map(|r| r.map(|(k, v)| (k.into(), v.into())).map_err(DbError::from)),
        }
    }
}

impl Iter {
    /// The keys only.
    pub(super) fn keys(self) -> impl DoubleEndedIterator<Item = Result<Bytes, DbError>> {
        self.map(|r| r.map(|(k, _)| k))
    }

    /// The values only.
    pub(super) fn values(self) -> impl DoubleEndedIterator<Item = Result<Bytes, DbError>> {
        self.map(|r| r.map(|(_, v)| v))
    }
}

/// Why a transaction's closure stopped.
#[derive(Debug)]
pub(super) enum TxError {
    /// Another transaction wrote what this one read: it is run again.
    Conflict,
    /// The closure gave up; the transaction is rolled back and this is returned.
    Abort(StoreError),
    /// The backend failed.
    Storage(DbError),
}

impl From<StoreError> for TxError {
    fn from(e: StoreError) -> Self {
        Self::Abort(e)
    }
}

impl From<UnabortableTransactionError> for TxError {
    fn from(e: UnabortableTransactionError) -> Self {
        match e {
            UnabortableTransactionError::Conflict => Self::Conflict,
            UnabortableTransactionError::Storage(e) => Self::Storage(e.into()),
        }
    }
}

/// One tree inside a transaction: reads see the transaction's own writes.
pub(super) enum TxTree<'a> {
    Sled(&'a TransactionalTree),
    Postgres(&'a PgTx<'a>, usize),
}

impl TxTree<'_> {
    /// The value under `key`.
    pub(super) fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>, TxError> {
        match self {
            Self::Sled(t) => Ok(t.get(key)?),
            Self::Postgres(tx, i) => tx.get(*i, key.as_ref()).map(|v| v.map(Bytes::from)),
        }
    }

    /// Reads `keys` ahead, so that their `get`s need no round trip each: PostgreSQL reads them
    /// in one query; sled's reads are local, so it does nothing.
    pub(super) fn prefetch<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k [u8]>,
    ) -> Result<(), TxError> {
        match self {
            Self::Sled(_) => Ok(()),
            Self::Postgres(tx, i) => {
                tx.prefetch(*i, keys.into_iter().map(<[u8]>::to_vec).collect())
            }
        }
    }

    /// Sets `key` to `value`.
    pub(super) fn insert(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<(), TxError> {
        self.set(key.as_ref(), value.as_ref(), false)
    }

    /// Sets `key`, which the caller knows is absent (it read it absent in this transaction, or
    /// it is past the end of an append-only tree): on PostgreSQL a plain insert, cheaper than an
    /// upsert, which fails the transaction rather than overwrite if the key is there after all.
    /// sled inserts as [`TxTree::insert`] does.
    pub(super) fn insert_new(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<(), TxError> {
        self.set(key.as_ref(), value.as_ref(), true)
    }

    fn set(&self, key: &[u8], value: &[u8], absent: bool) -> Result<(), TxError> {
        match self {
            Self::Sled(t) => t.insert(key, value).map(drop)?,
            Self::Postgres(tx, i) if absent => tx.write_new(*i, key, value),
            Self::Postgres(tx, i) => tx.write(*i, key, Some(value)),
        }
        Ok(())
    }

    /// Removes `key`.
    pub(super) fn remove(&self, key: impl AsRef<[u8]>) -> Result<(), TxError> {
        match self {
            Self::Sled(t) => t.remove(key.as_ref()).map(drop)?,
            Self::Postgres(tx, i) => tx.write(*i, key.as_ref(), None),
        }
        Ok(())
    }
}

/// Runs `f` over `trees` in one serializable transaction: all its writes commit together or none
/// do. `f` may run more than once (after a conflict), so it must not have effects outside the
/// transaction. `op` names the transaction in errors. On PostgreSQL the commit is on disk when
/// this returns.
pub(super) fn transaction<const N: usize, T>(
    op: &'static str,
    trees: [&Tree; N],
    f: impl Fn(&[TxTree<'_>; N]) -> Result<T, TxError>,
) -> Result<T, StoreError> {
    run_transaction(op, trees, false, f)
}

/// [`transaction`] whose commit reaches the disk at the next [`Db::flush`] (or sooner) rather
/// than before it returns, as every sled transaction's does: committed (every reader and every
/// instance sees it; a gateway that dies loses nothing), but lost if the machine or the
/// database server fails before that flush. For writers that flush before they report what
/// they wrote as done (an ingest, before its file is done), which on PostgreSQL then wait for
/// the disk once per file instead of once per transaction.
pub(super) fn transaction_deferred<const N: usize, T>(
    op: &'static str,
    trees: [&Tree; N],
    f: impl Fn(&[TxTree<'_>; N]) -> Result<T, TxError>,
) -> Result<T, StoreError> {
    run_transaction(op, trees, true, f)
}

fn run_transaction<const N: usize, T>(
    op: &'static str,
    trees: [&Tree; N],
    deferred: bool,
    f: impl Fn(&[TxTree<'_>; N]) -> Result<T, TxError>,
) -> Result<T, StoreError> {
    let failed = |source: DbError| StoreError::Backend { op, source };
    let mixed = || StoreError::Corrupt {
        what: op.into(),
        reason: "a transaction over trees of two backends".into(),
    };
    match trees.first() {
        None | Some(Tree::Sled(_)) => {
            let mut sled_trees = Vec::with_capacity(N);
            for t in trees {
                match t {
                    Tree::Sled(t) => sled_trees.push(t),
                    Tree::Postgres(_) => return Err(mixed()),
                }
            }
            sled_trees[..]
                .transaction(|v| {
                    let txs: [TxTree<'_>; N] = std::array::from_fn(|i| TxTree::Sled(&v[i]));
                    f(&txs).map_err(|e| match e {
                        TxError::Conflict => ConflictableTransactionError::Conflict,
                        TxError::Abort(e) => ConflictableTransactionError::Abort(e),
                        TxError::Storage(DbError::Sled(e)) => {
                            ConflictableTransactionError::Storage(e)
                        }
                        TxError::Storage(e) => ConflictableTransactionError::Abort(failed(e)),
                    })
                })
                .map_err(|e| match e {
                    TransactionError::Abort(e) => e,
                    TransactionError::Storage(e) => failed(e.into()),
                })
        }
        Some(Tree::Postgres(first)) => {
            let mut tables = Vec::with_capacity(N);
            for t in trees {
                match t {
                    Tree::Postgres(t) => tables.push(t.name()),
                    Tree::Sled(_) => return Err(mixed()),
                }
            }
            first.pg().transaction(op, &tables, deferred, |tx| {
                let txs: [TxTree<'_>; N] = std::array::from_fn(|i| TxTree::Postgres(tx, i));
                f(&txs)
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_ends_before_the_next_prefix() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
        assert_eq!(prefix_end(b""), None);
    }
}
