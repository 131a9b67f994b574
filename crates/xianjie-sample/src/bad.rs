//! Deliberately bad rows: the eight kinds of defect, the picker that decides which rows are bad
//! (cycling through the kinds so each one shows up), and the ring of earlier keys that duplicate
//! rows repeat.

use rand::Rng;

/// One way a sample row is made invalid. Each bad row has exactly one defect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadKind {
    /// A USCC (enforcement unit or party) with a wrong check character.
    UsccCheck,
    /// A resident ID with a wrong check character.
    ResidentIdCheck,
    /// A date that names no real day, such as 2025-02-30.
    ImpossibleDate,
    /// A required value left empty (party name or case id).
    MissingValue,
    /// A code value the adapter does not list.
    UnknownCode,
    /// The case id (and unit) of an earlier row of the same file.
    DuplicateKey,
    /// A money amount with more decimal places than its unit allows.
    TooPrecise,
    /// A valid USCC of an enforcement unit the adapter does not speak for.
    ForeignUnit,
}

impl BadKind {
    /// Every kind, in cycling order.
    pub(crate) const ALL: [BadKind; 8] = [
        BadKind::UsccCheck,
        BadKind::ResidentIdCheck,
        BadKind::ImpossibleDate,
        BadKind::MissingValue,
        BadKind::UnknownCode,
        BadKind::DuplicateKey,
        BadKind::TooPrecise,
        BadKind::ForeignUnit,
    ];

    /// Position in [`BadKind::ALL`], the index into [`BadCounts`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// How many rows of each [`BadKind`] were written, indexed by [`BadKind::index`].
pub(crate) type BadCounts = [u64; 8];

/// Decides, row by row, whether a row is bad and which defect it gets.
pub(crate) struct BadPicker {
    kinds: &'static [BadKind],
    fraction: f64,
    next: usize,
    counts: BadCounts,
}

impl BadPicker {
    /// A picker making `fraction` of the rows bad, cycling through `kinds` (those that apply to
    /// the adapter). `fraction` must already be checked to lie in `0..=1`.
    pub(crate) fn new(kinds: &'static [BadKind], fraction: f64) -> Self {
        Self {
            kinds,
            fraction,
            next: 0,
            counts: [0; 8],
        }
    }

    /// The defect for the next row, or `None` for a valid row. `can_duplicate` tells whether an
    /// earlier valid row exists to be duplicated; when it does not, that kind is passed over.
    pub(crate) fn pick<R: Rng>(&mut self, rng: &mut R, can_duplicate: bool) -> Option<BadKind> {
        if self.kinds.is_empty() || self.fraction <= 0.0 || !rng.gen_bool(self.fraction) {
            return None;
        }
        for _ in 0..self.kinds.len() {
            let kind = self.kinds[self.next % self.kinds.len()];
            self.next += 1;
            if kind == BadKind::DuplicateKey && !can_duplicate {
                continue;
            }
            self.counts[kind.index()] += 1;
            return Some(kind);
        }
        None
    }

    /// Rows made bad so far, per kind.
    pub(crate) fn counts(&self) -> BadCounts {
        self.counts
    }

    /// Rows made bad so far.
    pub(crate) fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// A bounded set of keys of earlier valid rows, for duplicate-key rows to repeat. Memory stays
/// constant however many rows are written.
pub(crate) struct KeyRing<K> {
    keys: Vec<K>,
    seen: usize,
}

impl<K: Clone> KeyRing<K> {
    const CAPACITY: usize = 32;

    /// An empty ring.
    pub(crate) fn new() -> Self {
        Self {
            keys: Vec::with_capacity(Self::CAPACITY),
            seen: 0,
        }
    }

    /// Remembers a key, forgetting an older one once full.
    pub(crate) fn push(&mut self, key: K) {
        if self.keys.len() < Self::CAPACITY {
            self.keys.push(key);
        } else {
            self.keys[self.seen % Self::CAPACITY] = key;
        }
        self.seen += 1;
    }

    /// Whether any key is remembered.
    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// A remembered key chosen at random.
    pub(crate) fn pick<R: Rng>(&self, rng: &mut R) -> Option<K> {
        if self.keys.is_empty() {
            return None;
        }
        Some(self.keys[rng.gen_range(0..self.keys.len())].clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn picker_cycles_and_skips_duplicates_without_history() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut picker = BadPicker::new(&BadKind::ALL, 1.0);
        let first: Vec<_> = (0..8)
            .filter_map(|_| picker.pick(&mut rng, false))
            .collect();
        assert_eq!(first.len(), 8);
        assert!(!first.contains(&BadKind::DuplicateKey));
        for _ in 0..16 {
            picker.pick(&mut rng, true);
        }
        assert!(
            picker.counts().iter().all(|&c| c >= 2),
            "{:?}",
            picker.counts()
        );
        assert_eq!(picker.total(), 24);
        let mut none = BadPicker::new(&BadKind::ALL, 0.0);
        assert!((0..100).all(|_| none.pick(&mut rng, true).is_none()));
    }

    #[test]
    fn key_ring_is_bounded() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut ring = KeyRing::new();
        assert!(ring.pick(&mut rng).is_none());
        for i in 0..100 {
            ring.push(i);
        }
        assert_eq!(ring.keys.len(), 32);
        assert!(ring.pick(&mut rng).is_some_and(|k| k >= 68));
    }
}
