//! The read cache of an instance sharing a PostgreSQL store: the open ports and the cases it has
//! read lately, so that the port API's busiest route (one case by id) does not wait on the
//! database twice per request. sled stores have none: their reads are already in memory.
//!
//! Freshness: before answering from the cache, an instance checks it against the database when
//! it has not done so for [`FRESH`]. The check is one query (the change log's next sequence
//! number and the ports' generation); when they moved, the cases named by the new change-log
//! entries are dropped, and the ports are read again. So another instance's writes reach this
//! one's answers within [`FRESH`]; this instance's own writes reach them at once (a local write
//! marks the cache for a check before the next read).
//!
//! Why a read never puts back a stale case: the change log is dense and in commit order as
//! readers see it, and the cache remembers up to which sequence number it has dropped what
//! changed (`applied`). A reader notes the cache's epoch (it moves whenever a check drops
//! anything) before it reads the database, and stores what it read only if the epoch is still
//! the same: the database answered at least as new as `applied`, and any change after it is
//! dropped by the next check. The ports go the same way, by their generation.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::cases::NEXT_SEQ;
use super::kv::Bytes;
use super::ports::{PORTS_GENERATION, PortGrant};
use super::{StoreError, db_err};

/// How long an answer from the cache may lag the database.
pub(crate) const FRESH: Duration = Duration::from_millis(250);

/// Case bytes kept at most; past it, an arbitrary quarter of the cases is dropped.
const BUDGET: usize = 64 * 1024 * 1024;

/// Cases larger than this are not kept (a case with many documents listed is rare and large).
const LARGEST: usize = 256 * 1024;

/// More new change-log entries than this since the last check, and the cases are all dropped
/// instead of reading the entries (after a large ingest, say).
pub(super) const MAX_FOLLOW: u64 = 10_000;

/// The cache; cloning shares it.
#[derive(Clone, Default)]
pub(super) struct ReadCache(Arc<Mutex<State>>);

#[derive(Default)]
struct State {
    /// When the cache was last checked against the database (`None`: check before the next read).
    checked: Option<Instant>,
    /// Every change-log entry below this sequence number has been applied (0: none read yet).
    applied: u64,
    /// Moves whenever a check drops anything.
    epoch: u64,
    /// The ports' generation last read.
    ports_generation: u64,
    /// The open ports, by `unit 0x00 client` key, and the grants, once read.
    ports: Option<Arc<Ports>>,
    /// Cases by store key: their stored values.
    cases: HashMap<Vec<u8>, Bytes>,
    /// Bytes held in `cases`.
    bytes: usize,
}

/// The open ports as last read.
pub(super) struct Ports {
    /// Keys of the open ports.
    pub(super) open: HashSet<Vec<u8>>,
    /// The grants, by unit then client.
    pub(super) grants: Vec<PortGrant>,
}

/// What a check found in the database.
pub(super) struct Position {
    /// The change log's next sequence number.
    pub(super) next_seq: u64,
    /// The ports' generation.
    pub(super) ports_generation: u64,
}

/// A reader's note of the cache's position before it read the database (see the module's doc).
#[derive(Clone, Copy)]
pub(super) struct Ticket(u64);

/// The guard of a fresh cache.
pub(super) struct Fresh<'a>(MutexGuard<'a, State>);

impl ReadCache {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding it leaves nothing half-done that matters here: at
        // worst a check is repeated.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cache, checked against the database first if it is older than [`FRESH`]: `check`
    /// reads the position, and `changed` the cases changed in `[from, to)` (`None`: too many, or
    /// unreadable: drop every case).
    pub(super) fn fresh<E>(
        &self,
        check: impl FnOnce() -> Result<Position, E>,
        changed: impl FnOnce(u64, u64) -> Option<Vec<Vec<u8>>>,
    ) -> Result<Fresh<'_>, E> {
        let mut s = self.lock();
        if s.checked.is_some_and(|t| t.elapsed() < FRESH) {
            return Ok(Fresh(s));
        }
        let at = check()?;
        if at.ports_generation != s.ports_generation {
            s.ports = None;
            s.ports_generation = at.ports_generation;
            s.epoch += 1;
        }
        if at.next_seq != s.applied {
            let keys = match s.applied {
                // Nothing cached yet (or the log went back: a restored database).
                0 => None,
                from if from < at.next_seq && at.next_seq - from <= MAX_FOLLOW => {
                    changed(from, at.next_seq)
                }
                _ => None,
            };
            match keys {
                Some(keys) => {
                    for k in keys {
                        if let Some(v) = s.cases.remove(&k) {
                            s.bytes -= v.len();
                        }
                    }
                }
                None => {
                    s.cases.clear();
                    s.bytes = 0;
                }
            }
            s.applied = at.next_seq;
            s.epoch += 1;
        }
        s.checked = Some(Instant::now());
        Ok(Fresh(s))
    }

    /// Marks the cache for a check before its next read (after a write of this instance).
    pub(super) fn touch(&self) {
        self.lock().checked = None;
    }

    /// Keeps `value`, read from the database under `key` after `ticket` was taken, unless a check
    /// ran meanwhile.
    pub(super) fn put(&self, ticket: Ticket, key: &[u8], value: &Bytes) {
        if value.len() > LARGEST {
            return;
        }
        let mut s = self.lock();
        if s.epoch != ticket.0 {
            return;
        }
        if s.bytes + value.len() > BUDGET {
            // Drop an arbitrary quarter (a hash map's order).
            let mut drop = s.cases.len() / 4 + 1;
            let mut freed = 0;
            s.cases.retain(|_, v| {
                if drop == 0 {
                    return true;
                }
                drop -= 1;
                freed += v.len();
                false
            });
            s.bytes -= freed;
        }
        s.bytes += value.len();
        if let Some(old) = s.cases.insert(key.to_vec(), value.clone()) {
            s.bytes -= old.len();
        }
    }

    /// Keeps the ports read after `ticket` was taken, unless a check ran meanwhile.
    pub(super) fn put_ports(&self, ticket: Ticket, ports: Arc<Ports>) {
        let mut s = self.lock();
        if s.epoch == ticket.0 && s.ports.is_none() {
            s.ports = Some(ports);
        }
    }
}

impl Fresh<'_> {
    /// The case under `key`, if kept.
    pub(super) fn case(&self, key: &[u8]) -> Option<Bytes> {
        self.0.cases.get(key).cloned()
    }

    /// The ports, if kept.
    pub(super) fn ports(&self) -> Option<Arc<Ports>> {
        self.0.ports.clone()
    }

    /// The note to give [`ReadCache::put`] after reading the database (the guard is released).
    pub(super) fn ticket(self) -> Ticket {
        Ticket(self.0.epoch)
    }
}

/// The store's reads through the cache (a sled store reads its trees directly).
impl super::Store {
    /// The cache checked against the database if it is older than [`FRESH`].
    fn fresh<'a>(&self, cache: &'a ReadCache) -> Result<Fresh<'a>, StoreError> {
        cache.fresh(
            || {
                let names = [NEXT_SEQ.as_bytes(), PORTS_GENERATION.as_bytes()];
                let values = self.meta.get_many(&names).map_err(db_err("cache check"))?;
                let number = |i: usize, default: u64| -> Result<u64, StoreError> {
                    match values.get(i).cloned().flatten() {
                        None => Ok(default),
                        Some(v) => serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                            what: format!("meta {}", String::from_utf8_lossy(names[i])),
                            reason: e.to_string(),
                        }),
                    }
                };
                Ok(Position {
                    next_seq: number(0, 1)?,
                    ports_generation: number(1, 0)?,
                })
            },
            |from, to| {
                // Unreadable entries drop every case: the cache never answers with less certainty.
                let changes = self
                    .changes_after(from - 1, usize::try_from(to - from).ok()?)
                    .ok()?;
                Some(
                    changes
                        .iter()
                        .map(|c| crate::model::case_key(&c.unit_code, &c.case_id))
                        .collect(),
                )
            },
        )
    }

    /// The stored value of the case under `key`.
    pub(super) fn case_value(&self, key: &[u8]) -> Result<Option<Bytes>, StoreError> {
        let read = |key| self.cases.get(key).map_err(db_err("case read"));
        let Some(cache) = &self.cache else {
            return read(key);
        };
        let fresh = self.fresh(cache)?;
        if let Some(v) = fresh.case(key) {
            return Ok(Some(v));
        }
        let ticket = fresh.ticket();
        let value = read(key)?;
        if let Some(v) = &value {
            cache.put(ticket, key, v);
        }
        Ok(value)
    }

    /// The open ports, from the cache (`None` on sled: read the tree).
    pub(super) fn cached_ports(&self) -> Result<Option<Arc<Ports>>, StoreError> {
        let Some(cache) = &self.cache else {
            return Ok(None);
        };
        let fresh = self.fresh(cache)?;
        if let Some(p) = fresh.ports() {
            return Ok(Some(p));
        }
        let ticket = fresh.ticket();
        let grants = self.read_ports()?;
        let open = grants
            .iter()
            .map(|g| super::ports::key(&g.unit_code, &g.client))
            .collect();
        let ports = Arc::new(Ports { open, grants });
        cache.put_ports(ticket, ports.clone());
        Ok(Some(ports))
    }

    /// After a write of this instance: its next read checks the database first.
    pub(super) fn written(&self) {
        if let Some(c) = &self.cache {
            c.touch();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(next_seq: u64, ports_generation: u64) -> Result<Position, ()> {
        Ok(Position {
            next_seq,
            ports_generation,
        })
    }

    fn none(_: u64, _: u64) -> Option<Vec<Vec<u8>>> {
        panic!("no change-log read expected")
    }

    #[test]
    fn a_check_drops_exactly_the_changed_cases() {
        let c = ReadCache::default();
        let t = c.fresh(|| at(5, 0), none).ok().unwrap().ticket();
        c.put(t, b"a", &Bytes::from(&b"1"[..]));
        c.put(t, b"b", &Bytes::from(&b"2"[..]));
        // Within FRESH: no check, both kept.
        let f = c.fresh(|| -> Result<Position, ()> { panic!("checked") }, none);
        assert!(f.ok().unwrap().case(b"a").is_some());
        c.touch();
        let mut asked = None;
        let f = c
            .fresh(
                || at(7, 0),
                |from, to| {
                    asked = Some((from, to));
                    Some(vec![b"a".to_vec()])
                },
            )
            .ok()
            .unwrap();
        assert_eq!(f.case(b"a"), None);
        assert_eq!(f.case(b"b").as_deref(), Some(&b"2"[..]));
        drop(f);
        assert_eq!(asked, Some((5, 7)));
    }

    #[test]
    fn a_read_that_raced_a_check_is_not_kept() {
        let c = ReadCache::default();
        c.fresh(|| at(5, 0), none).ok().unwrap();
        let t = c.fresh(|| at(5, 0), none).ok().unwrap().ticket();
        // Another instance's write is found by a check between the read and the put.
        c.touch();
        drop(c.fresh(|| at(6, 0), |_, _| Some(vec![])).ok().unwrap());
        c.put(t, b"a", &Bytes::from(&b"old"[..]));
        assert_eq!(c.fresh(|| at(6, 0), none).ok().unwrap().case(b"a"), None);
    }

    #[test]
    fn ports_read_before_a_new_generation_are_not_kept() {
        let c = ReadCache::default();
        let t = c.fresh(|| at(1, 0), none).ok().unwrap().ticket();
        c.touch();
        drop(c.fresh(|| at(1, 1), none).ok().unwrap());
        let ports = || {
            Arc::new(Ports {
                open: HashSet::new(),
                grants: vec![],
            })
        };
        c.put_ports(t, ports());
        let f = c.fresh(|| at(1, 1), none).ok().unwrap();
        assert!(f.ports().is_none());
        let t = f.ticket();
        c.put_ports(t, ports());
        assert!(c.fresh(|| at(1, 1), none).ok().unwrap().ports().is_some());
    }

    #[test]
    fn too_many_changes_or_a_new_ports_generation_drop_everything() {
        let c = ReadCache::default();
        let t = c.fresh(|| at(1, 0), none).ok().unwrap().ticket();
        c.put(t, b"a", &Bytes::from(&b"1"[..]));
        c.put_ports(
            t,
            Arc::new(Ports {
                open: HashSet::new(),
                grants: vec![],
            }),
        );
        c.touch();
        let f = c.fresh(|| at(1 + MAX_FOLLOW + 1, 1), none).ok().unwrap();
        assert_eq!(f.case(b"a"), None);
        assert!(f.ports().is_none());
    }

    #[test]
    fn the_budget_bounds_what_is_kept() {
        let c = ReadCache::default();
        let t = c.fresh(|| at(1, 0), none).ok().unwrap().ticket();
        let big = Bytes::from(vec![0u8; LARGEST]);
        for i in 0..(2 * BUDGET / LARGEST) {
            c.put(t, &i.to_be_bytes(), &big);
        }
        let s = c.lock();
        assert!(s.bytes <= BUDGET, "{} bytes kept", s.bytes);
        assert_eq!(s.bytes, s.cases.values().map(|v| v.len()).sum::<usize>());
        drop(s);
        c.put(t, b"huge", &Bytes::from(vec![0u8; LARGEST + 1]));
        assert!(!c.lock().cases.contains_key(&b"huge"[..]));
    }
}
