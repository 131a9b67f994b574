//! The encrypted keystore file: named secrets sealed under a passphrase.
//!
//! This module owns the on-disk format, the key hierarchy and how the file is written.
//!
//! Key hierarchy: passphrase → Argon2id (parameters and salt stored in the file) →
//! a 32-byte key-encrypting key (KEK) → per secret, a fresh random 32-byte data key
//! that seals the secret with XChaCha20-Poly1305; the data key itself is sealed
//! ("wrapped") under the KEK, also with XChaCha20-Poly1305. Wrapping per-secret data
//! keys means a passphrase change only re-wraps 48-byte keys and never re-encrypts
//! (or even decrypts) the secrets.
//!
//! File format (JSON, binary fields in standard base64):
//!
//! ```text
//! {"format":1,
//!  "kdf":{"alg":"argon2id","m_kib":65536,"t":3,"p":1,"salt":"<32 bytes>"},
//!  "version":N,
//!  "check":{"nonce":"<24 bytes>","ct":"<48 bytes>"},
//!  "records":[{"name":"jwt/1","version":1,"sealed_in":N,
//!              "meta":{"set_by":"...","set_at":"<RFC 3339>","note":null},
//!              "dk_nonce":"<24>","dk_ct":"<48>","nonce":"<24>","ct":"<len+16>"}]}
//! ```
//!
//! Integrity:
//! - The header — format, KDF algorithm and parameters, salt, keystore `version` and
//!   the list of `(name, version, sealed_in)` of every record — is authenticated by
//!   `check`, a fixed plaintext sealed under the KEK with the canonical encoding of the
//!   header as associated data. A wrong passphrase and any header edit (a record added,
//!   removed or renamed, a version changed, the salt or parameters changed) fail the
//!   same way, with [`KeystoreError::Unlock`], so the error reveals nothing about which.
//! - KDF parameters below the floor (64 MiB, t = 3) are refused *before* running
//!   Argon2 ([`KeystoreError::KdfBelowFloor`]); otherwise an attacker who can write the
//!   file could lower them, wait for the next unlock and brute-force the cheap result.
//! - Each record's two ciphertexts carry associated data binding the format, the
//!   record's name, version, `sealed_in` and metadata, plus a domain label (`"dk"` for
//!   the wrapped data key, `"secret"` for the secret) so neither ciphertext can stand in
//!   for the other. A record moved, swapped or with edited metadata fails at
//!   [`Keystore::get`] with [`KeystoreError::RecordDamaged`] naming it.
//! - `sealed_in` (the keystore version in which the secret was sealed) makes a record
//!   unique even across `remove` + `put`, where the record version restarts at 1: an
//!   old, removed record cannot be pasted back in place of its successor.
//! - The keystore `version` increases on every change. Restoring an older copy of the
//!   whole file still opens (the file alone cannot know it is stale), but
//!   [`Keystore::version`] is then lower than before; the gateway compares it with the
//!   audit log to detect the rollback.
//!
//! Writes go to `<path>.tmp` (created with mode 0600), which is fsynced, renamed over
//! the keystore and followed by an fsync of the directory, so a crash leaves either the
//! old or the new file, never a torn one.
//!
//! Instances sharing a database keep the same bytes as one value in it instead of a file
//! ([`Home::Shared`]): a write replaces the value only if it still holds what this instance
//! last read or wrote, so two instances never overwrite each other's change; each instance
//! picks up the others' changes with [`Keystore::reload`], under the key it already holds.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Version};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::secret::{Passphrase, SecretBytes};

/// The keystore file format this build reads and writes.
pub const FORMAT: u32 = 1;

/// Minimum Argon2id memory cost, in KiB (64 MiB). Files asking for less are refused.
pub const FLOOR_M_KIB: u32 = 65536;
/// Minimum Argon2id time cost (passes). Files asking for less are refused.
pub const FLOOR_T: u32 = 3;
/// Maximum Argon2id memory cost, in KiB (4 GiB). A tampered file must not be able to
/// make the gateway try to allocate an absurd amount of memory and abort.
pub const CEIL_M_KIB: u32 = 4 * 1024 * 1024;
/// Maximum Argon2id time cost, so a tampered file cannot stall unlocking for hours.
pub const CEIL_T: u32 = 64;
/// Maximum Argon2id parallelism (lanes).
pub const CEIL_P: u32 = 16;

/// Largest keystore file accepted on read (and produced on write), in bytes.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Longest record name, in characters.
pub const MAX_NAME_LEN: usize = 128;

/// The only key-derivation algorithm format 1 knows.
const KDF_ALG: &str = "argon2id";
/// Salt length for new keystores. Stored salts of 16–64 bytes are accepted.
const SALT_LEN: usize = 32;
const MIN_SALT_LEN: usize = 16;
const MAX_SALT_LEN: usize = 64;
/// XChaCha20 nonce length.
const NONCE_LEN: usize = 24;
/// Poly1305 tag length.
const TAG_LEN: usize = 16;
/// KEK and data-key length.
const KEY_LEN: usize = 32;
/// The known plaintext sealed in `check`; its successful opening proves the passphrase
/// and the header.
const CHECK_PLAINTEXT: &[u8; 32] = b"xianjie keystore unlock check v1";
/// Prefix of every associated-data string, so these ciphertexts cannot be confused with
/// any other protocol's.
const AD_LABEL: &[u8] = b"xianjie-keystore";
/// Domain labels separating the wrapped data key from the sealed secret.
const DOMAIN_HEADER: &[u8] = b"header";
const DOMAIN_DK: &[u8] = b"dk";
const DOMAIN_SECRET: &[u8] = b"secret";

/// Argon2id cost parameters, stored in the keystore file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory cost in KiB.
    pub m_kib: u32,
    /// Time cost (number of passes).
    pub t: u32,
    /// Parallelism (number of lanes).
    pub p: u32,
}

impl Default for KdfParams {
    /// The floor itself — 64 MiB, t = 3, p = 1 — which takes well under a second.
    fn default() -> Self {
        Self {
            m_kib: FLOOR_M_KIB,
            t: FLOOR_T,
            p: 1,
        }
    }
}

impl KdfParams {
    /// Same as the module-level [`FLOOR_M_KIB`].
    pub const FLOOR_M_KIB: u32 = FLOOR_M_KIB;
    /// Same as the module-level [`FLOOR_T`].
    pub const FLOOR_T: u32 = FLOOR_T;

    /// Checks the parameters against the floor and the ceiling.
    ///
    /// # Errors
    /// [`KeystoreError::KdfBelowFloor`] below 64 MiB or t = 3;
    /// [`KeystoreError::KdfOutOfRange`] above the ceilings or with p = 0.
    pub fn validate(&self) -> Result<(), KeystoreError> {
        if self.m_kib < FLOOR_M_KIB || self.t < FLOOR_T {
            return Err(KeystoreError::KdfBelowFloor {
                m_kib: self.m_kib,
                t: self.t,
            });
        }
        if self.m_kib > CEIL_M_KIB || self.t > CEIL_T || self.p == 0 || self.p > CEIL_P {
            return Err(KeystoreError::KdfOutOfRange {
                m_kib: self.m_kib,
                t: self.t,
                p: self.p,
            });
        }
        Ok(())
    }
}

/// Non-secret facts about a stored secret. Stored in clear but authenticated: editing
/// any field makes the record fail to open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordMeta {
    /// Who set the secret (an operator name or a component).
    pub set_by: String,
    /// When it was set.
    pub set_at: chrono::DateTime<chrono::Utc>,
    /// Optional free-text note. Never put secret material here: it is stored in clear.
    pub note: Option<String>,
}

/// A stored secret's name, version and metadata (no secret material).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordInfo {
    /// The record name.
    pub name: String,
    /// The record version: 1 for the first `put`, +1 for each later one.
    pub version: u64,
    /// The metadata given at `put`.
    pub meta: RecordMeta,
}

/// Errors from the keystore. Messages never contain secret material or the passphrase.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    /// Reading or writing a file failed.
    #[error("keystore I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// The file is not a well-formed keystore.
    #[error(
        "keystore file {} is malformed: {reason}; restore it from a backup",
        path.display()
    )]
    Malformed {
        /// The keystore file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The file has a format number this build does not know.
    #[error(
        "keystore format {found} is not supported: this build reads format {FORMAT} only; \
         use the xianjie release that wrote the file"
    )]
    UnsupportedFormat {
        /// The format number found in the file.
        found: u64,
    },
    /// The KDF parameters are below the floor; refused before any key derivation.
    #[error(
        "keystore KDF parameters m = {m_kib} KiB, t = {t} are below the required floor \
         (m >= {FLOOR_M_KIB} KiB and t >= {FLOOR_T}); refusing to derive a key from them. \
         If the file was not edited on purpose it has been tampered with: restore it from a backup"
    )]
    KdfBelowFloor {
        /// Memory cost found, KiB.
        m_kib: u32,
        /// Time cost found.
        t: u32,
    },
    /// The KDF parameters exceed what this build will run, or p is zero.
    #[error(
        "keystore KDF parameters m = {m_kib} KiB, t = {t}, p = {p} are out of the supported \
         range (m <= {CEIL_M_KIB} KiB, t <= {CEIL_T}, 1 <= p <= {CEIL_P})"
    )]
    KdfOutOfRange {
        /// Memory cost, KiB.
        m_kib: u32,
        /// Time cost.
        t: u32,
        /// Parallelism.
        p: u32,
    },
    /// Argon2 itself failed (for example, it could not allocate its memory).
    #[error("argon2id key derivation failed: {reason}")]
    Kdf {
        /// The reason reported by argon2.
        reason: String,
    },
    /// Wrong passphrase, or the header was changed. Deliberately does not say which.
    #[error("wrong passphrase or damaged keystore header")]
    Unlock,
    /// A record's ciphertexts do not authenticate under its name, version and metadata.
    #[error(
        "keystore record {name:?} (version {version}) is damaged, was edited, or was moved \
         from another record, and cannot be decrypted; set the secret again or restore the \
         keystore from a backup"
    )]
    RecordDamaged {
        /// The record name.
        name: String,
        /// The record version.
        version: u64,
    },
    /// Another instance changed the shared keystore since this one read it; nothing was
    /// written.
    #[error(
        "the keystore was changed by another gateway instance meanwhile; nothing was written: \
         try again"
    )]
    Changed,
    /// `create` found something at the path already.
    #[error(
        "a file already exists at {}; refusing to overwrite it with a new keystore \
         (open it instead, or move it away first)",
        path.display()
    )]
    Exists {
        /// The path given to `create`.
        path: PathBuf,
    },
    /// A record name outside the allowed alphabet or length.
    #[error(
        "invalid secret name {shown:?}: {reason}; names are 1-{MAX_NAME_LEN} characters of \
         A-Z a-z 0-9 . _ / -"
    )]
    InvalidName {
        /// The name, cut to 64 characters.
        shown: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An empty passphrase was given for a new keystore or a passphrase change.
    #[error("refusing an empty keystore passphrase; choose a long passphrase")]
    EmptyPassphrase,
    /// The keystore file is (or would become) larger than [`MAX_FILE_BYTES`].
    #[error(
        "keystore file {} is or would be {size} bytes, over the {limit}-byte limit; \
         store fewer or smaller secrets",
        path.display()
    )]
    TooLarge {
        /// The keystore file.
        path: PathBuf,
        /// Its (prospective) size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// The operating system's random number generator failed.
    #[error("the operating system random number generator failed: {reason}")]
    Rng {
        /// The reason reported.
        reason: String,
    },
    /// Encryption failed (only possible for absurdly large inputs).
    #[error("encryption failed while sealing {what}")]
    Seal {
        /// What was being sealed.
        what: &'static str,
    },
    /// The keystore version reached `u64::MAX`.
    #[error("the keystore version counter is exhausted; create a new keystore")]
    VersionExhausted,
}

/// One stored record, decoded, in memory.
#[derive(Clone)]
struct Record {
    version: u64,
    sealed_in: u64,
    meta: RecordMeta,
    dk_nonce: [u8; NONCE_LEN],
    dk_ct: Vec<u8>,
    nonce: [u8; NONCE_LEN],
    ct: Vec<u8>,
}

/// A keystore kept as a value shared by several instances (the store's, in PostgreSQL)
/// rather than a file.
pub trait SharedBlob: Send + Sync {
    /// What to call it in messages.
    fn label(&self) -> String;
    /// The value, if any.
    ///
    /// # Errors
    /// The backend's failure.
    fn get(&self) -> io::Result<Option<Vec<u8>>>;
    /// Sets the value to `new` only if it still holds `old` (`None`: absent); whether it did.
    ///
    /// # Errors
    /// The backend's failure.
    fn swap(&self, old: Option<&[u8]>, new: &[u8]) -> io::Result<bool>;
}

/// Where a keystore's bytes are kept.
#[derive(Clone)]
pub enum Home {
    /// A file of its own (one gateway instance).
    File(PathBuf),
    /// A value several instances share.
    Shared(std::sync::Arc<dyn SharedBlob>),
}

impl fmt::Debug for Home {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl From<&Path> for Home {
    fn from(p: &Path) -> Self {
        Home::File(p.to_path_buf())
    }
}

impl From<&PathBuf> for Home {
    fn from(p: &PathBuf) -> Self {
        Home::File(p.clone())
    }
}

impl Home {
    /// Whether a keystore is there (for a file: anything at the path, even a dangling
    /// symlink). A shared value that cannot be read counts as there, so that a new one is
    /// never created over it.
    #[must_use]
    pub fn exists(&self) -> bool {
        match self {
            Home::File(p) => Keystore::exists(p),
            Home::Shared(b) => !matches!(b.get(), Ok(None)),
        }
    }

    /// The file, or the shared value's name, for messages and audit targets.
    #[must_use]
    pub fn describe(&self) -> String {
        self.label().display().to_string()
    }

    fn label(&self) -> PathBuf {
        match self {
            Home::File(p) => p.clone(),
            Home::Shared(b) => PathBuf::from(b.label()),
        }
    }

    fn read(&self) -> Result<Vec<u8>, KeystoreError> {
        match self {
            Home::File(p) => read_limited(p),
            Home::Shared(b) => {
                let io_err = |source| KeystoreError::Io {
                    path: self.label(),
                    source,
                };
                let bytes = b.get().map_err(io_err)?.ok_or_else(|| {
                    io_err(io::Error::new(
                        io::ErrorKind::NotFound,
                        "no keystore stored",
                    ))
                })?;
                if bytes.len() as u64 > MAX_FILE_BYTES {
                    return Err(KeystoreError::TooLarge {
                        path: self.label(),
                        size: bytes.len() as u64,
                        limit: MAX_FILE_BYTES,
                    });
                }
                Ok(bytes)
            }
        }
    }
}

/// An unlocked keystore: the KEK (wiped on drop) and the still-sealed records.
///
/// Secrets stay encrypted in memory until [`Keystore::get`] asks for one.
pub struct Keystore {
    home: Home,
    /// The bytes as last read or written (a shared keystore's write replaces exactly these).
    raw: Vec<u8>,
    path: PathBuf,
    params: KdfParams,
    salt: Vec<u8>,
    kek: Zeroizing<[u8; KEY_LEN]>,
    version: u64,
    records: BTreeMap<String, Record>,
}

impl fmt::Debug for Keystore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only what an operator needs to identify the keystore; never key material.
        let names: Vec<&str> = self.records.keys().map(String::as_str).collect();
        f.debug_struct("Keystore")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("records", &names)
            .finish_non_exhaustive()
    }
}

impl Keystore {
    /// Whether anything (file, directory, even a dangling symlink) is at `path`.
    #[must_use]
    pub fn exists(path: &Path) -> bool {
        fs::symlink_metadata(path).is_ok()
    }

    /// Creates a new, empty keystore at `path` (keystore version 1), protected by
    /// `passphrase` with the given Argon2id parameters.
    ///
    /// # Errors
    /// [`KeystoreError::Exists`] if anything is at `path`; `KdfBelowFloor` /
    /// `KdfOutOfRange` for bad parameters; `EmptyPassphrase`; I/O errors.
    pub fn create(
        home: impl Into<Home>,
        passphrase: &Passphrase,
        params: KdfParams,
    ) -> Result<Keystore, KeystoreError> {
        let home = home.into();
        let path = home.label();
        params.validate()?;
        if passphrase.expose().is_empty() {
            return Err(KeystoreError::EmptyPassphrase);
        }
        // Checked before the (slow) derivation so the mistake is reported at once. A
        // concurrent `create` on the same path could still race this; operators create
        // a keystore once, by hand.
        if home.exists() {
            return Err(KeystoreError::Exists { path });
        }
        let salt = random_array::<SALT_LEN>()?.to_vec();
        let kek = derive_kek(passphrase, &salt, params)?;
        let mut ks = Keystore {
            home,
            raw: Vec::new(),
            path,
            params,
            salt,
            kek,
            version: 0,
            records: BTreeMap::new(),
        };
        let records = BTreeMap::new();
        ks.commit(records, None)?;
        Ok(ks)
    }

    /// Opens and unlocks the keystore at `path`.
    ///
    /// Verifies the header (and thereby the passphrase); records are decrypted only by
    /// [`Keystore::get`].
    ///
    /// # Errors
    /// [`KeystoreError::Unlock`] for a wrong passphrase or an altered header;
    /// `KdfBelowFloor` (before any derivation) for weakened parameters;
    /// `UnsupportedFormat`, `Malformed`, `TooLarge` or `Io` for unreadable files.
    pub fn open(home: impl Into<Home>, passphrase: &Passphrase) -> Result<Keystore, KeystoreError> {
        let home = home.into();
        let path = home.label();
        let bytes = home.read()?;
        let parsed = parse_file(&path, &bytes)?;
        let kek = derive_kek(passphrase, &parsed.salt, parsed.params)?;
        check_header(&kek, &parsed)?;
        Ok(Keystore {
            home,
            raw: bytes,
            path,
            params: parsed.params,
            salt: parsed.salt,
            kek,
            version: parsed.version,
            records: parsed.records,
        })
    }

    /// Takes up another instance's change to a shared keystore, under the key this one
    /// holds; returns whether there was one. A file has no other writer: nothing to do.
    ///
    /// # Errors
    /// [`KeystoreError::Unlock`] when the stored keystore no longer opens under this key
    /// (its passphrase was changed elsewhere: unlock again); unreadable or malformed values.
    pub fn reload(&mut self) -> Result<bool, KeystoreError> {
        if matches!(self.home, Home::File(_)) {
            return Ok(false);
        }
        let bytes = self.home.read()?;
        if bytes == self.raw {
            return Ok(false);
        }
        let parsed = parse_file(&self.path, &bytes)?;
        if parsed.salt != self.salt || parsed.params != self.params {
            return Err(KeystoreError::Unlock);
        }
        check_header(&self.kek, &parsed)?;
        self.raw = bytes;
        self.version = parsed.version;
        self.records = parsed.records;
        Ok(true)
    }

    /// The keystore version: 1 when created, +1 on every change.
    #[must_use]
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The Argon2id parameters the keystore is sealed with.
    #[must_use]
    pub fn params(&self) -> KdfParams {
        self.params
    }

    /// The keystore file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stores a new version of `name` (version = previous + 1, or 1), bumps the keystore
    /// version, writes the file atomically. Returns the new record version.
    ///
    /// Only the latest version of a name is kept; callers that need several live keys
    /// use distinct names (`jwt/1`, `jwt/2`).
    ///
    /// # Errors
    /// `InvalidName`; `TooLarge` if the file would exceed [`MAX_FILE_BYTES`]; I/O
    /// errors. On error the keystore, in memory and on disk, is unchanged — except
    /// when only the final directory fsync fails: the new file is then already in
    /// place and adopted in memory, but may not survive a power loss.
    pub fn put(
        &mut self,
        name: &str,
        secret: &SecretBytes,
        meta: RecordMeta,
    ) -> Result<u64, KeystoreError> {
        validate_name(name)?;
        let new_version = self.next_version()?;
        let record_version = match self.records.get(name) {
            Some(r) => r
                .version
                .checked_add(1)
                .ok_or(KeystoreError::VersionExhausted)?,
            None => 1,
        };
        let record = seal_record(&self.kek, name, record_version, new_version, meta, secret)?;
        let mut records = self.records.clone();
        records.insert(name.to_owned(), record);
        self.commit(records, None)?;
        Ok(record_version)
    }

    /// Decrypts the current version of `name`; `Ok(None)` if there is no such record.
    ///
    /// # Errors
    /// [`KeystoreError::RecordDamaged`] if the record does not authenticate.
    pub fn get(&self, name: &str) -> Result<Option<(SecretBytes, RecordInfo)>, KeystoreError> {
        let Some(record) = self.records.get(name) else {
            return Ok(None);
        };
        let damaged = || KeystoreError::RecordDamaged {
            name: name.to_owned(),
            version: record.version,
        };
        let dk = unwrap_dk(&self.kek, name, record).ok_or_else(damaged)?;
        let ad = record_ad(DOMAIN_SECRET, name, record);
        let secret = cipher(&dk[..])
            .map_err(|()| damaged())?
            .decrypt(
                XNonce::from_slice(&record.nonce),
                Payload {
                    msg: &record.ct,
                    aad: &ad,
                },
            )
            .map_err(|_| damaged())?;
        Ok(Some((
            SecretBytes::new(secret),
            RecordInfo {
                name: name.to_owned(),
                version: record.version,
                meta: record.meta.clone(),
            },
        )))
    }

    /// Removes `name`. Returns whether it was present; only then is the keystore
    /// version bumped and the file rewritten.
    ///
    /// # Errors
    /// I/O errors; on error nothing changes.
    pub fn remove(&mut self, name: &str) -> Result<bool, KeystoreError> {
        if !self.records.contains_key(name) {
            return Ok(false);
        }
        let mut records = self.records.clone();
        records.remove(name);
        self.commit(records, None)?;
        Ok(true)
    }

    /// Names, versions and metadata of all records, sorted by name.
    #[must_use]
    pub fn list(&self) -> Vec<RecordInfo> {
        self.list_prefix("")
    }

    /// Like [`Keystore::list`], for the names starting with `prefix` (e.g. `"jwt/"`).
    #[must_use]
    pub fn list_prefix(&self, prefix: &str) -> Vec<RecordInfo> {
        self.records
            .range(prefix.to_owned()..)
            .take_while(|(name, _)| name.starts_with(prefix))
            .map(|(name, r)| RecordInfo {
                name: name.clone(),
                version: r.version,
                meta: r.meta.clone(),
            })
            .collect()
    }

    /// Whether `passphrase` is the one this keystore is sealed under: it is derived with the
    /// keystore's own salt and parameters and compared, in constant time, with the KEK in
    /// memory (not with the file, which an unlocked keystore always matches).
    ///
    /// # Errors
    /// [`KeystoreError::Unlock`] for another passphrase; `Kdf` if Argon2 fails.
    pub fn check_passphrase(&self, passphrase: &Passphrase) -> Result<(), KeystoreError> {
        let kek = derive_kek(passphrase, &self.salt, self.params)?;
        if constant_time_eq(&kek[..], &self.kek[..]) {
            Ok(())
        } else {
            Err(KeystoreError::Unlock)
        }
    }

    /// Changes the passphrase: a new salt and KEK, every data key re-wrapped, the
    /// keystore version bumped. The Argon2id parameters stay as they are.
    ///
    /// # Errors
    /// `EmptyPassphrase`; `RecordDamaged` if a data key cannot be unwrapped (nothing is
    /// changed then); I/O errors.
    pub fn change_passphrase(&mut self, new: &Passphrase) -> Result<(), KeystoreError> {
        self.change_passphrase_with_params(new, self.params)
    }

    /// Like [`Keystore::change_passphrase`], also moving to new Argon2id parameters
    /// (e.g. raising them on faster hardware).
    ///
    /// # Errors
    /// As [`Keystore::change_passphrase`], plus `KdfBelowFloor` / `KdfOutOfRange`.
    pub fn change_passphrase_with_params(
        &mut self,
        new: &Passphrase,
        params: KdfParams,
    ) -> Result<(), KeystoreError> {
        params.validate()?;
        if new.expose().is_empty() {
            return Err(KeystoreError::EmptyPassphrase);
        }
        let salt = random_array::<SALT_LEN>()?.to_vec();
        let new_kek = derive_kek(new, &salt, params)?;
        let mut records = self.records.clone();
        for (name, record) in &mut records {
            let dk =
                unwrap_dk(&self.kek, name, record).ok_or_else(|| KeystoreError::RecordDamaged {
                    name: name.clone(),
                    version: record.version,
                })?;
            let (dk_nonce, dk_ct) = wrap_dk(&new_kek, name, record, &dk)?;
            record.dk_nonce = dk_nonce;
            record.dk_ct = dk_ct;
        }
        self.commit(records, Some((new_kek, salt, params)))
    }

    /// The keystore version after the next change.
    fn next_version(&self) -> Result<u64, KeystoreError> {
        self.version
            .checked_add(1)
            .ok_or(KeystoreError::VersionExhausted)
    }

    /// Writes `records` (and, for a passphrase change, the new KEK, salt and params) as
    /// the next keystore version, and adopts them in memory only once the file is
    /// safely on disk, so a failed write leaves `self` matching the file.
    fn commit(
        &mut self,
        records: BTreeMap<String, Record>,
        rekey: Option<(Zeroizing<[u8; KEY_LEN]>, Vec<u8>, KdfParams)>,
    ) -> Result<(), KeystoreError> {
        let version = self.next_version()?;
        let (kek, salt, params) = match &rekey {
            Some((kek, salt, params)) => (kek, salt.as_slice(), *params),
            None => (&self.kek, self.salt.as_slice(), self.params),
        };
        let bytes = render_file(kek, params, salt, version, &records)?;
        let size = bytes.len() as u64;
        if size > MAX_FILE_BYTES {
            return Err(KeystoreError::TooLarge {
                path: self.path.clone(),
                size,
                limit: MAX_FILE_BYTES,
            });
        }
        match &self.home {
            Home::File(p) => replace_file(p, &bytes)?,
            Home::Shared(b) => {
                let old = (!self.raw.is_empty()).then_some(self.raw.as_slice());
                let swapped = b.swap(old, &bytes).map_err(|source| KeystoreError::Io {
                    path: self.path.clone(),
                    source,
                })?;
                if !swapped {
                    return Err(KeystoreError::Changed);
                }
            }
        }
        self.raw = bytes;
        // The new file is in place: adopt its state before the directory fsync, so
        // that even if that fsync fails, memory matches the file and the next change
        // gets the next version number.
        if let Some((kek, salt, params)) = rekey {
            self.kek = kek;
            self.salt = salt;
            self.params = params;
        }
        self.version = version;
        self.records = records;
        match &self.home {
            Home::File(p) => sync_parent_dir(p),
            Home::Shared(_) => Ok(()),
        }
    }
}

/// Equality of two byte strings in time that depends only on their lengths, for comparing
/// keys and keyed hashes.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ---------------------------------------------------------------------------
// Names

/// Record names are restricted so they are safe in file names, URLs and log lines.
fn validate_name(name: &str) -> Result<(), KeystoreError> {
    let invalid = |reason| KeystoreError::InvalidName {
        shown: name.chars().take(64).collect(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("it is empty"));
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(invalid("it is longer than 128 characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'-'))
    {
        return Err(invalid("it contains a character outside the allowed set"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Canonical encodings for associated data

/// A canonical, unambiguous byte encoding: fixed-width big-endian integers and
/// length-prefixed byte strings, so no two different inputs encode alike.
struct Canon(Vec<u8>);

impl Canon {
    fn new(domain: &[u8]) -> Self {
        let mut c = Canon(Vec::with_capacity(256));
        c.bytes(AD_LABEL);
        c.u32(FORMAT);
        c.bytes(domain);
        c
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.0.extend_from_slice(b);
    }
}

/// Associated data of `check`: everything in the header, including the list of
/// records, so none of it can be changed without failing the unlock.
fn header_ad(
    params: KdfParams,
    salt: &[u8],
    version: u64,
    records: &BTreeMap<String, Record>,
) -> Vec<u8> {
    let mut c = Canon::new(DOMAIN_HEADER);
    c.bytes(KDF_ALG.as_bytes());
    c.u32(params.m_kib);
    c.u32(params.t);
    c.u32(params.p);
    c.bytes(salt);
    c.u64(version);
    c.u64(records.len() as u64);
    // BTreeMap order: sorted by name, independent of the order in the file.
    for (name, r) in records {
        c.bytes(name.as_bytes());
        c.u64(r.version);
        c.u64(r.sealed_in);
    }
    c.0
}

/// Associated data of a record's ciphertexts: the record's identity and metadata, plus
/// the domain (`dk` or `secret`) of the ciphertext.
fn record_ad(domain: &[u8], name: &str, r: &Record) -> Vec<u8> {
    let mut c = Canon::new(domain);
    c.bytes(name.as_bytes());
    c.u64(r.version);
    c.u64(r.sealed_in);
    c.bytes(r.meta.set_by.as_bytes());
    // Seconds and nanoseconds rather than text: chrono's RFC 3339 rendering may vary in
    // fractional digits, the instant itself does not.
    c.i64(r.meta.set_at.timestamp());
    c.u32(r.meta.set_at.timestamp_subsec_nanos());
    match &r.meta.note {
        None => c.0.push(0),
        Some(note) => {
            c.0.push(1);
            c.bytes(note.as_bytes());
        }
    }
    c.0
}

// ---------------------------------------------------------------------------
// Cryptography

#[cfg(test)]
thread_local! {
    /// Argon2 runs on this thread, so tests can prove a refusal happened before any.
    static KDF_RUNS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Passphrase → KEK with Argon2id. Re-checks the parameters itself, so no caller can
/// reach Argon2 with parameters below the floor.
fn derive_kek(
    passphrase: &Passphrase,
    salt: &[u8],
    params: KdfParams,
) -> Result<Zeroizing<[u8; KEY_LEN]>, KeystoreError> {
    params.validate()?;
    #[cfg(test)]
    KDF_RUNS.with(|n| n.set(n.get() + 1));
    let kdf_err = |e: argon2::Error| KeystoreError::Kdf {
        reason: e.to_string(),
    };
    let argon_params =
        argon2::Params::new(params.m_kib, params.t, params.p, Some(KEY_LEN)).map_err(kdf_err)?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params);
    let mut kek = Zeroizing::new([0u8; KEY_LEN]);
    argon
        .hash_password_into(passphrase.expose().as_bytes(), salt, &mut kek[..])
        .map_err(kdf_err)?;
    Ok(kek)
}

fn cipher(key: &[u8]) -> Result<XChaCha20Poly1305, ()> {
    XChaCha20Poly1305::new_from_slice(key).map_err(|_| ())
}

fn random_array<const N: usize>() -> Result<[u8; N], KeystoreError> {
    let mut out = [0u8; N];
    OsRng
        .try_fill_bytes(&mut out)
        .map_err(|e| KeystoreError::Rng {
            reason: e.to_string(),
        })?;
    Ok(out)
}

fn seal(
    key: &[u8],
    msg: &[u8],
    aad: &[u8],
    what: &'static str,
) -> Result<([u8; NONCE_LEN], Vec<u8>), KeystoreError> {
    let nonce = random_array::<NONCE_LEN>()?;
    let ct = cipher(key)
        .map_err(|()| KeystoreError::Seal { what })?
        .encrypt(XNonce::from_slice(&nonce), Payload { msg, aad })
        .map_err(|_| KeystoreError::Seal { what })?;
    Ok((nonce, ct))
}

/// Seals `secret` under a fresh data key and wraps that key under the KEK.
fn seal_record(
    kek: &[u8; KEY_LEN],
    name: &str,
    version: u64,
    sealed_in: u64,
    meta: RecordMeta,
    secret: &SecretBytes,
) -> Result<Record, KeystoreError> {
    let dk = Zeroizing::new(random_array::<KEY_LEN>()?);
    let mut record = Record {
        version,
        sealed_in,
        meta,
        dk_nonce: [0; NONCE_LEN],
        dk_ct: Vec::new(),
        nonce: [0; NONCE_LEN],
        ct: Vec::new(),
    };
    let (nonce, ct) = seal(
        &dk[..],
        secret.expose(),
        &record_ad(DOMAIN_SECRET, name, &record),
        "a secret",
    )?;
    record.nonce = nonce;
    record.ct = ct;
    let (dk_nonce, dk_ct) = wrap_dk(kek, name, &record, &dk[..])?;
    record.dk_nonce = dk_nonce;
    record.dk_ct = dk_ct;
    Ok(record)
}

fn wrap_dk(
    kek: &[u8; KEY_LEN],
    name: &str,
    record: &Record,
    dk: &[u8],
) -> Result<([u8; NONCE_LEN], Vec<u8>), KeystoreError> {
    seal(
        &kek[..],
        dk,
        &record_ad(DOMAIN_DK, name, record),
        "a data key",
    )
}

/// The record's data key, or `None` if the wrapped key does not authenticate.
fn unwrap_dk(kek: &[u8; KEY_LEN], name: &str, record: &Record) -> Option<Zeroizing<Vec<u8>>> {
    let dk = cipher(&kek[..])
        .ok()?
        .decrypt(
            XNonce::from_slice(&record.dk_nonce),
            Payload {
                msg: &record.dk_ct,
                aad: &record_ad(DOMAIN_DK, name, record),
            },
        )
        .ok()?;
    let dk = Zeroizing::new(dk);
    (dk.len() == KEY_LEN).then_some(dk)
}

// ---------------------------------------------------------------------------
// File encoding

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileJson {
    format: u32,
    kdf: KdfJson,
    version: u64,
    check: CheckJson,
    records: Vec<RecordJson>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KdfJson {
    alg: String,
    m_kib: u32,
    t: u32,
    p: u32,
    salt: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckJson {
    nonce: String,
    ct: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordJson {
    name: String,
    version: u64,
    sealed_in: u64,
    meta: RecordMeta,
    dk_nonce: String,
    dk_ct: String,
    nonce: String,
    ct: String,
}

/// Serialises a keystore state, sealing a fresh `check` over its header.
fn render_file(
    kek: &[u8; KEY_LEN],
    params: KdfParams,
    salt: &[u8],
    version: u64,
    records: &BTreeMap<String, Record>,
) -> Result<Vec<u8>, KeystoreError> {
    let ad = header_ad(params, salt, version, records);
    let (check_nonce, check_ct) = seal(&kek[..], CHECK_PLAINTEXT, &ad, "the header check")?;
    let file = FileJson {
        format: FORMAT,
        kdf: KdfJson {
            alg: KDF_ALG.to_owned(),
            m_kib: params.m_kib,
            t: params.t,
            p: params.p,
            salt: B64.encode(salt),
        },
        version,
        check: CheckJson {
            nonce: B64.encode(check_nonce),
            ct: B64.encode(check_ct),
        },
        records: records
            .iter()
            .map(|(name, r)| RecordJson {
                name: name.clone(),
                version: r.version,
                sealed_in: r.sealed_in,
                meta: r.meta.clone(),
                dk_nonce: B64.encode(r.dk_nonce),
                dk_ct: B64.encode(&r.dk_ct),
                nonce: B64.encode(r.nonce),
                ct: B64.encode(&r.ct),
            })
            .collect(),
    };
    // Serialising these plain structs cannot fail in practice; map it anyway rather
    // than panic.
    let mut bytes = serde_json::to_vec_pretty(&file).map_err(|_| KeystoreError::Seal {
        what: "the keystore JSON",
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// A parsed, structurally valid file whose header is not yet authenticated.
struct ParsedFile {
    params: KdfParams,
    salt: Vec<u8>,
    version: u64,
    check_nonce: [u8; NONCE_LEN],
    check_ct: Vec<u8>,
    records: BTreeMap<String, Record>,
}

/// Parses and structurally checks a keystore file, refusing weak KDF parameters. Does
/// no key derivation: everything here must be cheap and happen before Argon2.
fn parse_file(path: &Path, bytes: &[u8]) -> Result<ParsedFile, KeystoreError> {
    let malformed = |reason: String| KeystoreError::Malformed {
        path: path.to_path_buf(),
        reason,
    };
    // Look at the format number alone first, so a future format is reported as such
    // rather than as a parse error of fields this build does not know.
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| malformed(format!("not valid JSON ({e})")))?;
    let found = value
        .get("format")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| malformed("no numeric \"format\" field".to_owned()))?;
    if found != u64::from(FORMAT) {
        return Err(KeystoreError::UnsupportedFormat { found });
    }
    let file: FileJson = serde_json::from_value(value)
        .map_err(|e| malformed(format!("unexpected structure ({e})")))?;

    if file.kdf.alg != KDF_ALG {
        return Err(malformed(format!(
            "unknown key-derivation algorithm {:?} (format {FORMAT} uses {KDF_ALG:?})",
            file.kdf.alg.chars().take(32).collect::<String>()
        )));
    }
    let params = KdfParams {
        m_kib: file.kdf.m_kib,
        t: file.kdf.t,
        p: file.kdf.p,
    };
    params.validate()?;

    let decode = |field: &str, text: &str| {
        B64.decode(text)
            .map_err(|_| malformed(format!("{field} is not valid base64")))
    };
    let fixed = |field: &str, text: &str| -> Result<[u8; NONCE_LEN], KeystoreError> {
        decode(field, text)?
            .try_into()
            .map_err(|_| malformed(format!("{field} is not {NONCE_LEN} bytes long")))
    };

    let salt = decode("kdf.salt", &file.kdf.salt)?;
    if !(MIN_SALT_LEN..=MAX_SALT_LEN).contains(&salt.len()) {
        return Err(malformed(format!(
            "kdf.salt is {} bytes long, expected {MIN_SALT_LEN}-{MAX_SALT_LEN}",
            salt.len()
        )));
    }
    let check_nonce = fixed("check.nonce", &file.check.nonce)?;
    let check_ct = decode("check.ct", &file.check.ct)?;
    if check_ct.len() != CHECK_PLAINTEXT.len() + TAG_LEN {
        return Err(malformed(format!(
            "check.ct is {} bytes long, expected {}",
            check_ct.len(),
            CHECK_PLAINTEXT.len() + TAG_LEN
        )));
    }
    if file.version == 0 {
        return Err(malformed("version is 0; keystores start at 1".to_owned()));
    }

    let mut records = BTreeMap::new();
    for (i, r) in file.records.into_iter().enumerate() {
        validate_name(&r.name).map_err(|e| malformed(format!("record #{i}: {e}")))?;
        let label = |field: &str| format!("record {:?} field {field}", r.name);
        if r.version == 0 {
            return Err(malformed(format!("{} is 0", label("version"))));
        }
        if r.sealed_in == 0 || r.sealed_in > file.version {
            return Err(malformed(format!(
                "{} is {}, outside 1..={} (the keystore version)",
                label("sealed_in"),
                r.sealed_in,
                file.version
            )));
        }
        let dk_ct = decode(&label("dk_ct"), &r.dk_ct)?;
        if dk_ct.len() != KEY_LEN + TAG_LEN {
            return Err(malformed(format!(
                "{} is {} bytes long, expected {}",
                label("dk_ct"),
                dk_ct.len(),
                KEY_LEN + TAG_LEN
            )));
        }
        let ct = decode(&label("ct"), &r.ct)?;
        if ct.len() < TAG_LEN {
            return Err(malformed(format!(
                "{} is shorter than an authentication tag",
                label("ct")
            )));
        }
        let record = Record {
            version: r.version,
            sealed_in: r.sealed_in,
            meta: r.meta,
            dk_nonce: fixed(&label("dk_nonce"), &r.dk_nonce)?,
            dk_ct,
            nonce: fixed(&label("nonce"), &r.nonce)?,
            ct,
        };
        if records.insert(r.name.clone(), record).is_some() {
            return Err(malformed(format!("record {:?} appears twice", r.name)));
        }
    }

    Ok(ParsedFile {
        params,
        salt,
        version: file.version,
        check_nonce,
        check_ct,
        records,
    })
}

/// Checks the header's seal under `kek`: the passphrase was right and nothing in the header
/// was changed.
fn check_header(kek: &Zeroizing<[u8; KEY_LEN]>, parsed: &ParsedFile) -> Result<(), KeystoreError> {
    let ad = header_ad(parsed.params, &parsed.salt, parsed.version, &parsed.records);
    let cipher = cipher(&kek[..]).map_err(|()| KeystoreError::Unlock)?;
    let plain = Zeroizing::new(
        cipher
            .decrypt(
                XNonce::from_slice(&parsed.check_nonce),
                Payload {
                    msg: &parsed.check_ct,
                    aad: &ad,
                },
            )
            .map_err(|_| KeystoreError::Unlock)?,
    );
    // The tag already proves this; comparing costs nothing and guards against a
    // future format that seals something else here.
    if plain.as_slice() != CHECK_PLAINTEXT.as_slice() {
        return Err(KeystoreError::Unlock);
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// File I/O

/// Reads the keystore, refusing files over [`MAX_FILE_BYTES`] without reading them
/// whole (the `take` also covers files that grow while being read).
fn read_limited(path: &Path) -> Result<Vec<u8>, KeystoreError> {
    let io_err = |source| KeystoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    let too_large = |size| KeystoreError::TooLarge {
        path: path.to_path_buf(),
        size,
        limit: MAX_FILE_BYTES,
    };
    let file = File::open(path).map_err(io_err)?;
    let size = file.metadata().map_err(io_err)?.len();
    if size > MAX_FILE_BYTES {
        return Err(too_large(size));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// `<path>.tmp`: same directory, so the rename stays within one filesystem.
fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// Replaces `path` with `bytes` so that a crash leaves the old or the new contents:
/// write `path.tmp` (mode 0600), fsync it, rename it over `path`. The caller then
/// calls [`sync_parent_dir`] to make the rename itself durable.
fn replace_file(path: &Path, bytes: &[u8]) -> Result<(), KeystoreError> {
    let tmp = tmp_path(path);
    let tmp_err = |source| KeystoreError::Io {
        path: tmp.clone(),
        source,
    };
    // A stale tmp file from a crashed write is ours to discard. Removing it (rather
    // than opening it) also means a planted symlink is never followed.
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(tmp_err(e)),
    }

    let written = (|| -> io::Result<()> {
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut file = opts.open(&tmp)?;
        // The umask can only remove bits from 0600, but it could remove the owner's
        // own; set it exactly so the gateway can always read its keystore back.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(fs::Permissions::from_mode(0o600))?;
        }
        file.write_all(bytes)?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(tmp_err(e));
    }

    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(KeystoreError::Io {
            path: path.to_path_buf(),
            source: e,
        });
    }
    Ok(())
}

/// Fsyncs the directory holding `path`, so a completed rename survives a power loss.
fn sync_parent_dir(path: &Path) -> Result<(), KeystoreError> {
    // Directories cannot be opened for fsync on every platform; unix is where the
    // gateway runs.
    #[cfg(not(unix))]
    let _ = path;
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| KeystoreError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;
    use serde_json::Value;

    const PASS: &str = "correct-horse-Ω-battery-staple-4471";
    const SECRET: &[u8] = b"TOP-SECRET-payload-zebra-9931";
    const SECRET2: &[u8] = b"second-SECRET-quokka-5520";

    fn pass() -> Passphrase {
        Passphrase::new(PASS.to_owned())
    }

    fn meta(by: &str) -> RecordMeta {
        RecordMeta {
            set_by: by.to_owned(),
            set_at: chrono::Utc
                .with_ymd_and_hms(2024, 5, 6, 7, 8, 9)
                .unwrap()
                .checked_add_signed(chrono::Duration::nanoseconds(123_456_789))
                .unwrap(),
            note: Some(format!("set by {by}")),
        }
    }

    fn kdf_runs() -> u64 {
        KDF_RUNS.with(std::cell::Cell::get)
    }

    fn new_store() -> (tempfile::TempDir, PathBuf, Keystore) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keystore.json");
        let ks = Keystore::create(&path, &pass(), KdfParams::default()).unwrap();
        (dir, path, ks)
    }

    fn read_json(path: &Path) -> Value {
        serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
    }

    fn write_json(path: &Path, v: &Value) {
        fs::write(path, serde_json::to_vec_pretty(v).unwrap()).unwrap();
    }

    /// The JSON object of the record called `name`.
    fn record<'a>(v: &'a mut Value, name: &str) -> &'a mut Value {
        v["records"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|r| r["name"] == name)
            .unwrap()
    }

    #[derive(Clone, Copy, Debug)]
    enum Byte {
        First,
        Last,
    }

    /// Flips the lowest bit of one byte of a base64 field.
    fn flip(field: &mut Value, byte: Byte) {
        let mut bytes = B64.decode(field.as_str().unwrap()).unwrap();
        let i = match byte {
            Byte::First => 0,
            Byte::Last => bytes.len() - 1,
        };
        bytes[i] ^= 1;
        *field = Value::String(B64.encode(bytes));
    }

    /// No error may carry the passphrase or a secret, in any rendering.
    fn assert_clean(err: &KeystoreError) {
        let texts = [err.to_string(), format!("{err:?}"), format!("{err:#?}")];
        for text in &texts {
            for needle in [PASS.as_bytes(), SECRET, SECRET2] {
                assert!(
                    !text.contains(&String::from_utf8_lossy(needle).into_owned()),
                    "secret material in error: {text}"
                );
                assert!(!text.contains(&hex::encode(needle)), "{text}");
                assert!(!text.contains(&B64.encode(needle)), "{text}");
            }
        }
    }

    /// `text` must not contain `needle` raw, hex-encoded or base64-encoded (at any
    /// of the three base64 alignments).
    fn assert_absent(text: &str, needle: &[u8]) {
        assert!(!text.contains(&String::from_utf8_lossy(needle).into_owned()));
        assert!(!text.contains(&hex::encode(needle)));
        assert!(!text.contains(&hex::encode_upper(needle)));
        for skip in 0..3 {
            // Dropping the last 4 characters avoids the padding-dependent tail.
            let enc = B64.encode(&needle[skip..]);
            assert!(
                !text.contains(&enc[..enc.len() - 4]),
                "base64 of secret found"
            );
        }
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn open_err(path: &Path, p: &Passphrase) -> KeystoreError {
        let err = Keystore::open(path, p).unwrap_err();
        assert_clean(&err);
        err
    }

    #[test]
    fn put_get_list_remove_and_reopen() {
        let (_dir, path, mut ks) = new_store();
        let tmp = tmp_path(&path);
        assert_eq!(ks.version(), 1);
        assert_eq!(ks.params(), KdfParams::default());
        assert!(Keystore::exists(&path));
        assert!(!tmp.exists(), "tmp file left behind after create");
        #[cfg(unix)]
        assert_eq!(mode(&path), 0o600, "mode after create");

        assert_eq!(
            ks.put(
                "db/password",
                &SecretBytes::new(SECRET2.to_vec()),
                meta("alice")
            )
            .unwrap(),
            1
        );
        assert_eq!(ks.version(), 2);
        #[cfg(unix)]
        assert_eq!(mode(&path), 0o600, "mode after put");
        assert!(!tmp.exists(), "tmp file left behind after put");

        // A second put replaces the record and bumps its version.
        assert_eq!(
            ks.put(
                "db/password",
                &SecretBytes::new(SECRET.to_vec()),
                meta("bob")
            )
            .unwrap(),
            2
        );
        assert_eq!(ks.version(), 3);
        ks.put("jwt/1", &SecretBytes::new(vec![1; 32]), meta("gw"))
            .unwrap();
        ks.put("jwt/2", &SecretBytes::new(vec![2; 32]), meta("gw"))
            .unwrap();
        ks.put("jwtx", &SecretBytes::new(Vec::new()), meta("gw"))
            .unwrap();
        assert_eq!(ks.version(), 6);

        let (secret, info) = ks.get("db/password").unwrap().unwrap();
        assert_eq!(secret.expose(), SECRET);
        assert_eq!(info.name, "db/password");
        assert_eq!(info.version, 2);
        assert_eq!(info.meta, meta("bob"));
        assert!(ks.get("missing").unwrap().is_none());
        assert!(ks.get("jwtx").unwrap().unwrap().0.is_empty());

        let names = |v: Vec<RecordInfo>| v.into_iter().map(|r| r.name).collect::<Vec<_>>();
        assert_eq!(names(ks.list()), ["db/password", "jwt/1", "jwt/2", "jwtx"]);
        assert_eq!(names(ks.list_prefix("jwt/")), ["jwt/1", "jwt/2"]);
        assert_eq!(names(ks.list_prefix("jwt")), ["jwt/1", "jwt/2", "jwtx"]);
        assert!(ks.list_prefix("zzz").is_empty());

        // Remove: true and a rewrite the first time, false and nothing afterwards.
        assert!(ks.remove("jwtx").unwrap());
        assert_eq!(ks.version(), 7);
        assert!(!ks.remove("jwtx").unwrap());
        assert_eq!(ks.version(), 7);
        assert!(ks.get("jwtx").unwrap().is_none());

        // Invalid names are refused and change nothing.
        let long = "a".repeat(MAX_NAME_LEN + 1);
        for bad in ["", "a b", "é", "a\nb", "a:b", long.as_str()] {
            let err = ks
                .put(bad, &SecretBytes::new(SECRET.to_vec()), meta("x"))
                .unwrap_err();
            assert!(matches!(err, KeystoreError::InvalidName { .. }), "{err:?}");
            assert_clean(&err);
        }
        ks.put(
            &"a".repeat(MAX_NAME_LEN),
            &SecretBytes::new(vec![0]),
            meta("x"),
        )
        .unwrap();
        ks.put("A-z_0.9/x", &SecretBytes::new(vec![0]), meta("x"))
            .unwrap();
        assert!(ks.remove(&"a".repeat(MAX_NAME_LEN)).unwrap());
        assert!(ks.remove("A-z_0.9/x").unwrap());
        assert_eq!(ks.version(), 11);

        // Every write re-establishes 0600 and leaves no tmp file, even over a stale one.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        }
        fs::write(&tmp, b"stale").unwrap();
        ks.put("jwt/3", &SecretBytes::new(vec![3; 32]), meta("gw"))
            .unwrap();
        #[cfg(unix)]
        assert_eq!(mode(&path), 0o600, "mode after put over a 0644 file");
        assert!(!tmp.exists(), "stale tmp file not replaced");
        assert_eq!(ks.version(), 12);

        let reopened = Keystore::open(&path, &pass()).unwrap();
        assert_eq!(reopened.version(), 12);
        assert_eq!(reopened.list(), ks.list());
        let (secret, info) = reopened.get("db/password").unwrap().unwrap();
        assert_eq!(secret.expose(), SECRET);
        assert_eq!(info.version, 2);
        assert_eq!(info.meta, meta("bob"));
        assert_eq!(
            reopened.get("jwt/2").unwrap().unwrap().0.expose(),
            &[2u8; 32][..]
        );
    }

    #[test]
    fn secrets_and_passphrases_never_reach_the_file_or_errors_and_passphrase_change_works() {
        let (_dir, path, mut ks) = new_store();
        ks.put("a", &SecretBytes::new(SECRET.to_vec()), meta("alice"))
            .unwrap();
        ks.put("b", &SecretBytes::new(SECRET2.to_vec()), meta("bob"))
            .unwrap();
        let text = fs::read_to_string(&path).unwrap();
        for needle in [SECRET, SECRET2, PASS.as_bytes()] {
            assert_absent(&text, needle);
        }
        assert!(text.contains("\"argon2id\"") && text.contains("\"alice\""));

        // Wrong passphrases: exactly `Unlock`.
        for wrong in [format!("{PASS}x"), String::from(" ")] {
            let err = open_err(&path, &Passphrase::new(wrong));
            assert!(matches!(err, KeystoreError::Unlock), "{err:?}");
            assert_eq!(
                err.to_string(),
                "wrong passphrase or damaged keystore header"
            );
        }

        let new_pass = "a-whole-new-passphrase-Ж-0193";
        let old_salt = ks.salt.clone();
        ks.change_passphrase(&Passphrase::new(new_pass.to_owned()))
            .unwrap();
        assert_eq!(ks.version(), 4);
        assert_ne!(ks.salt, old_salt, "salt not renewed");
        assert_eq!(ks.get("a").unwrap().unwrap().0.expose(), SECRET);
        let text = fs::read_to_string(&path).unwrap();
        for needle in [SECRET, SECRET2, PASS.as_bytes(), new_pass.as_bytes()] {
            assert_absent(&text, needle);
        }
        assert!(!tmp_path(&path).exists());

        let err = open_err(&path, &pass());
        assert!(matches!(err, KeystoreError::Unlock), "{err:?}");
        let reopened = Keystore::open(&path, &Passphrase::new(new_pass.to_owned())).unwrap();
        assert_eq!(reopened.version(), 4);
        assert_eq!(reopened.get("a").unwrap().unwrap().0.expose(), SECRET);
        let (b, info) = reopened.get("b").unwrap().unwrap();
        assert_eq!(b.expose(), SECRET2);
        assert_eq!(info.version, 1, "a passphrase change keeps record versions");

        let err = ks
            .change_passphrase(&Passphrase::new(String::new()))
            .unwrap_err();
        assert!(matches!(err, KeystoreError::EmptyPassphrase), "{err:?}");
        assert_eq!(ks.version(), 4);
    }

    #[test]
    fn debug_shows_no_key_material() {
        let (_dir, path, mut ks) = new_store();
        ks.put("jwt/1", &SecretBytes::new(SECRET.to_vec()), meta("gw"))
            .unwrap();
        let shown = format!("{ks:?} {ks:#?}");
        assert!(shown.contains("jwt/1") && shown.contains(&path.display().to_string()));
        assert!(shown.contains("version: 2"), "{shown}");
        let kek: &[u8] = &ks.kek[..];
        assert!(!shown.contains(&hex::encode(kek)));
        assert!(!shown.contains(&B64.encode(kek)));
        // How `{:?}` of the raw array would render.
        assert!(!shown.contains(&format!("{kek:?}")[1..20]));
        let salt = ks.salt.clone();
        assert!(!shown.contains(&format!("{salt:?}")[1..20]));
        assert!(!shown.contains(&B64.encode(&salt)));
        assert_absent(&shown, SECRET);
        assert_absent(&shown, PASS.as_bytes());
        assert!(!shown.contains("kek") && !shown.contains("salt"), "{shown}");
    }

    /// A base keystore for tampering: records `a` and `b`, and version 5, above every
    /// record's `sealed_in`, so the version can be lowered without becoming malformed.
    fn tamper_base() -> (tempfile::TempDir, PathBuf, Value) {
        let (dir, path, mut ks) = new_store();
        ks.put("a", &SecretBytes::new(SECRET.to_vec()), meta("alice"))
            .unwrap();
        ks.put("b", &SecretBytes::new(SECRET2.to_vec()), meta("bob"))
            .unwrap();
        ks.put("c", &SecretBytes::new(vec![7]), meta("carol"))
            .unwrap();
        assert!(ks.remove("c").unwrap());
        assert_eq!(ks.version(), 5);
        let v = read_json(&path);
        (dir, path, v)
    }

    /// Writes the tampered JSON and asserts that opening it fails with `Unlock`.
    fn assert_unlock_fails(path: &Path, v: &Value, what: &str) {
        write_json(path, v);
        let err = open_err(path, &pass());
        assert!(
            matches!(err, KeystoreError::Unlock),
            "{what}: expected Unlock, got {err:?}"
        );
    }

    #[test]
    fn header_field_bit_flips_fail_unlock() {
        let (_dir, path, base) = tamper_base();
        // Control: the untouched file opens.
        write_json(&path, &base);
        Keystore::open(&path, &pass()).unwrap();

        let mut v = base.clone();
        v["version"] = Value::from(4u64); // 5 with its lowest bit flipped
        assert_unlock_fails(&path, &v, "version lowered");
        let mut v = base.clone();
        v["version"] = Value::from(7u64);
        assert_unlock_fails(&path, &v, "version raised");

        let cases: [(&str, Byte); 6] = [
            ("/kdf/salt", Byte::First),
            ("/kdf/salt", Byte::Last),
            ("/check/nonce", Byte::First),
            ("/check/nonce", Byte::Last),
            ("/check/ct", Byte::First),
            ("/check/ct", Byte::Last),
        ];
        for (field, byte) in cases {
            let mut v = base.clone();
            flip(v.pointer_mut(field).unwrap(), byte);
            assert_unlock_fails(&path, &v, &format!("{field} {byte:?}"));
        }
    }

    #[test]
    fn header_record_list_and_kdf_edits_fail_unlock() {
        let (_dir, path, base) = tamper_base();

        let mut v = base.clone();
        record(&mut v, "a")["version"] = Value::from(2u64);
        assert_unlock_fails(&path, &v, "record version raised");

        let mut v = base.clone();
        record(&mut v, "b")["sealed_in"] = Value::from(2u64);
        assert_unlock_fails(&path, &v, "record sealed_in changed");

        let mut v = base.clone();
        v["records"]
            .as_array_mut()
            .unwrap()
            .retain(|r| r["name"] != "a");
        assert_unlock_fails(&path, &v, "record removed");

        let mut v = base.clone();
        record(&mut v, "a")["name"] = Value::from("z");
        assert_unlock_fails(&path, &v, "record renamed");

        let mut v = base.clone();
        let mut copy = record(&mut v, "a").clone();
        copy["name"] = Value::from("a2");
        v["records"].as_array_mut().unwrap().push(copy);
        assert_unlock_fails(&path, &v, "record added");

        // Parameters changed but still above the floor.
        for (field, value) in [("m_kib", 65544u32), ("t", 4), ("p", 2)] {
            let mut v = base.clone();
            v["kdf"][field] = Value::from(value);
            assert_unlock_fails(&path, &v, &format!("kdf {field} = {value}"));
        }
    }

    #[test]
    fn a_removed_record_cannot_be_pasted_back_over_its_successor() {
        let (_dir, path, mut ks) = new_store();
        ks.put("a", &SecretBytes::new(SECRET.to_vec()), meta("alice"))
            .unwrap();
        let old = record(&mut read_json(&path), "a").clone();
        assert!(ks.remove("a").unwrap());
        // Same name, and the record version restarts at 1, with identical metadata.
        assert_eq!(
            ks.put("a", &SecretBytes::new(SECRET2.to_vec()), meta("alice"))
                .unwrap(),
            1
        );
        let mut v = read_json(&path);
        *record(&mut v, "a") = old;
        assert_unlock_fails(&path, &v, "old record pasted back");
    }

    #[test]
    fn record_tampering_fails_get_with_record_damaged() {
        let (_dir, path, mut ks) = new_store();
        let fields: [(&str, Byte); 8] = [
            ("dk_nonce", Byte::First),
            ("dk_nonce", Byte::Last),
            ("dk_ct", Byte::First),
            ("dk_ct", Byte::Last),
            ("nonce", Byte::First),
            ("nonce", Byte::Last),
            ("ct", Byte::First),
            ("ct", Byte::Last),
        ];
        let flip_name = |field: &str, byte: Byte| format!("flip/{field}-{byte:?}");
        let mut names: Vec<String> = fields.iter().map(|&(f, b)| flip_name(f, b)).collect();
        names.extend(
            [
                "control",
                "swap/a",
                "swap/b",
                "meta/set_by",
                "meta/set_at",
                "meta/note",
                "meta/note-removed",
                "meta/note-added",
            ]
            .map(String::from),
        );
        for name in &names {
            let mut m = meta("alice");
            if name == "meta/note-added" {
                m.note = None;
            }
            ks.put(name, &SecretBytes::new(SECRET.to_vec()), m).unwrap();
        }
        ks.put("swap/b", &SecretBytes::new(SECRET2.to_vec()), meta("bob"))
            .unwrap();

        let mut v = read_json(&path);
        for &(field, byte) in &fields {
            flip(&mut record(&mut v, &flip_name(field, byte))[field], byte);
        }
        let b = record(&mut v, "swap/b").clone();
        let a = record(&mut v, "swap/a").clone();
        for field in ["dk_nonce", "dk_ct", "nonce", "ct"] {
            record(&mut v, "swap/a")[field] = b[field].clone();
            record(&mut v, "swap/b")[field] = a[field].clone();
        }
        record(&mut v, "meta/set_by")["meta"]["set_by"] = Value::from("mallory");
        record(&mut v, "meta/set_at")["meta"]["set_at"] =
            Value::from("2024-05-06T07:08:09.123456788Z");
        record(&mut v, "meta/note")["meta"]["note"] = Value::from("set by mallory");
        record(&mut v, "meta/note-removed")["meta"]["note"] = Value::Null;
        record(&mut v, "meta/note-added")["meta"]["note"] = Value::from("hello");
        write_json(&path, &v);

        // Record bodies are not in the header: the file opens, the records do not.
        let ks = Keystore::open(&path, &pass()).unwrap();
        assert_eq!(ks.get("control").unwrap().unwrap().0.expose(), SECRET);
        for name in names.iter().filter(|n| *n != "control") {
            let want_version = if name == "swap/b" { 2 } else { 1 };
            match ks.get(name) {
                Err(KeystoreError::RecordDamaged { name: n, version }) => {
                    assert_eq!(&n, name);
                    assert_eq!(version, want_version, "{name}");
                    let err = KeystoreError::RecordDamaged { name: n, version };
                    assert_clean(&err);
                    assert!(err.to_string().contains(name.as_str()));
                }
                Err(other) => panic!("{name}: expected RecordDamaged, got {other:?}"),
                Ok(_) => panic!("{name}: tampered record opened"),
            }
        }
        // A passphrase change must not silently re-wrap a damaged record.
        let mut ks = ks;
        let err = ks
            .change_passphrase(&Passphrase::new("another-passphrase".into()))
            .unwrap_err();
        assert!(
            matches!(err, KeystoreError::RecordDamaged { .. }),
            "{err:?}"
        );
    }

    /// The record AD must bind the record on its own, independently of the header
    /// (defence in depth): a keystore built in memory, with no header and no Argon2.
    #[test]
    fn record_ad_alone_binds_name_version_sealed_in_and_meta() {
        let kek = Zeroizing::new([7u8; KEY_LEN]);
        let mut ks = Keystore {
            home: Home::File(PathBuf::from("/nonexistent/ks.json")),
            raw: Vec::new(),
            path: PathBuf::from("/nonexistent/ks.json"),
            params: KdfParams::default(),
            salt: vec![0; SALT_LEN],
            kek: kek.clone(),
            version: 10,
            records: BTreeMap::new(),
        };
        let secret = SecretBytes::new(SECRET.to_vec());
        let sealed = seal_record(&kek, "a", 3, 5, meta("alice"), &secret).unwrap();
        let mut variants: Vec<(&str, Record)> = vec![("a", sealed.clone()), ("b", sealed.clone())];
        let mut r = sealed.clone();
        r.version = 4;
        variants.push(("a", r));
        let mut r = sealed.clone();
        r.sealed_in = 6;
        variants.push(("a", r));
        let mut r = sealed.clone();
        r.meta.note = None;
        variants.push(("a", r));
        for (i, (name, record)) in variants.into_iter().enumerate() {
            ks.records.clear();
            let version = record.version;
            ks.records.insert(name.to_owned(), record);
            let got = ks.get(name);
            if i == 0 {
                assert_eq!(got.unwrap().unwrap().0.expose(), SECRET, "control");
            } else {
                assert!(
                    matches!(&got, Err(KeystoreError::RecordDamaged { name: n, version: v })
                        if n == name && *v == version),
                    "variant {i}: {:?}",
                    got.map(|o| o.map(|(_, info)| info))
                );
            }
        }
    }

    #[test]
    fn kdf_params_below_floor_are_refused_before_any_argon2_work() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ks.json");
        let before = kdf_runs();
        for (m_kib, t) in [(65535, 3), (32768, 3), (8, 1), (65536, 2), (65536, 0)] {
            let err = Keystore::create(&path, &pass(), KdfParams { m_kib, t, p: 1 }).unwrap_err();
            assert!(
                matches!(err, KeystoreError::KdfBelowFloor { m_kib: m, t: tt } if m == m_kib && tt == t),
                "{err:?}"
            );
        }
        for params in [
            KdfParams {
                m_kib: u32::MAX,
                t: 3,
                p: 1,
            },
            KdfParams {
                m_kib: 65536,
                t: 1000,
                p: 1,
            },
            KdfParams {
                m_kib: 65536,
                t: 3,
                p: 0,
            },
            KdfParams {
                m_kib: 65536,
                t: 3,
                p: 17,
            },
        ] {
            let err = Keystore::create(&path, &pass(), params).unwrap_err();
            assert!(
                matches!(err, KeystoreError::KdfOutOfRange { .. }),
                "{err:?}"
            );
        }
        assert_eq!(kdf_runs(), before, "argon2 ran for refused parameters");
        assert!(!Keystore::exists(&path));

        let ks = Keystore::create(&path, &pass(), KdfParams::default()).unwrap();
        drop(ks);
        let base = read_json(&path);
        let edits: [(u32, u32); 4] = [(65535, 3), (1024, 3), (65536, 2), (1 << 20, 1)];
        for (m_kib, t) in edits {
            let mut v = base.clone();
            v["kdf"]["m_kib"] = Value::from(m_kib);
            v["kdf"]["t"] = Value::from(t);
            write_json(&path, &v);
            let before = kdf_runs();
            let err = open_err(&path, &pass());
            assert_eq!(kdf_runs(), before, "argon2 ran before the floor check");
            match err {
                KeystoreError::KdfBelowFloor { m_kib: m, t: tt } => {
                    assert_eq!((m, tt), (m_kib, t));
                }
                other => panic!("m={m_kib} t={t}: expected KdfBelowFloor, got {other:?}"),
            }
            let msg = err_text(m_kib, t);
            assert!(msg.contains("65536") && msg.contains("t >= 3"), "{msg}");
        }
        let mut v = base.clone();
        v["kdf"]["m_kib"] = Value::from(u32::MAX);
        write_json(&path, &v);
        let before = kdf_runs();
        let err = open_err(&path, &pass());
        assert!(
            matches!(err, KeystoreError::KdfOutOfRange { .. }),
            "{err:?}"
        );
        assert_eq!(kdf_runs(), before);
    }

    fn err_text(m_kib: u32, t: u32) -> String {
        KeystoreError::KdfBelowFloor { m_kib, t }.to_string()
    }

    #[test]
    fn an_older_copy_opens_with_a_lower_version() {
        let (_dir, path, mut ks) = new_store();
        ks.put("a", &SecretBytes::new(SECRET.to_vec()), meta("alice"))
            .unwrap();
        let old = fs::read(&path).unwrap();
        ks.put("a", &SecretBytes::new(SECRET2.to_vec()), meta("bob"))
            .unwrap();
        assert_eq!(ks.version(), 3);
        fs::write(&path, old).unwrap();
        // The keystore alone cannot tell; the lower version is what the gateway checks
        // against the audit log.
        let restored = Keystore::open(&path, &pass()).unwrap();
        assert_eq!(restored.version(), 2);
        assert!(restored.version() < ks.version());
        let (secret, info) = restored.get("a").unwrap().unwrap();
        assert_eq!(secret.expose(), SECRET);
        assert_eq!(info.version, 1);
    }

    #[test]
    fn create_refuses_existing_paths_and_empty_passphrases() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ks.json");
        fs::write(&path, b"precious").unwrap();
        let before = kdf_runs();
        let err = Keystore::create(&path, &pass(), KdfParams::default()).unwrap_err();
        assert!(matches!(err, KeystoreError::Exists { .. }), "{err:?}");
        assert!(err.to_string().contains(&path.display().to_string()));
        assert_eq!(fs::read(&path).unwrap(), b"precious");
        let err = Keystore::create(dir.path(), &pass(), KdfParams::default()).unwrap_err();
        assert!(matches!(err, KeystoreError::Exists { .. }), "{err:?}");
        let other = dir.path().join("other.json");
        let err = Keystore::create(
            &other,
            &Passphrase::new(String::new()),
            KdfParams::default(),
        )
        .unwrap_err();
        assert!(matches!(err, KeystoreError::EmptyPassphrase), "{err:?}");
        assert!(!Keystore::exists(&other));
        assert_eq!(kdf_runs(), before);
    }

    #[test]
    fn malformed_unsupported_and_oversized_files_are_refused_before_argon2() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ks.json");

        let err = open_err(&path, &pass());
        assert!(matches!(err, KeystoreError::Io { .. }), "{err:?}");
        assert!(err.to_string().contains(&path.display().to_string()));

        let (_base_dir, base_path, _ks) = tamper_base();
        let base = read_json(&base_path);
        let before = kdf_runs();

        let mut v = base.clone();
        v["format"] = Value::from(2u32);
        write_json(&path, &v);
        let err = open_err(&path, &pass());
        assert!(
            matches!(err, KeystoreError::UnsupportedFormat { found: 2 }),
            "{err:?}"
        );

        let mut malformed: Vec<(&str, Value)> = Vec::new();
        let mut v = base.clone();
        v["kdf"]["alg"] = Value::from("scrypt");
        malformed.push(("unknown alg", v));
        let mut v = base.clone();
        v["kdf"]["salt"] = Value::from("not base64!");
        malformed.push(("bad base64", v));
        let mut v = base.clone();
        v["check"]["nonce"] = Value::from(B64.encode([0u8; 12]));
        malformed.push(("short nonce", v));
        let mut v = base.clone();
        let dup = record(&mut v, "a").clone();
        v["records"].as_array_mut().unwrap().push(dup);
        malformed.push(("duplicate record", v));
        let mut v = base.clone();
        record(&mut v, "a")["name"] = Value::from("bad name");
        malformed.push(("invalid name", v));
        let mut v = base.clone();
        record(&mut v, "a")["sealed_in"] = Value::from(99u64);
        malformed.push(("sealed_in after version", v));
        let mut v = base.clone();
        v["extra"] = Value::from(1);
        malformed.push(("unknown field", v));
        let mut v = base.clone();
        v.as_object_mut().unwrap().remove("check");
        malformed.push(("missing field", v));
        for (what, v) in malformed {
            write_json(&path, &v);
            let err = open_err(&path, &pass());
            assert!(
                matches!(err, KeystoreError::Malformed { .. }),
                "{what}: {err:?}"
            );
        }
        fs::write(&path, b"{ not json").unwrap();
        let err = open_err(&path, &pass());
        assert!(matches!(err, KeystoreError::Malformed { .. }), "{err:?}");

        let f = File::create(&path).unwrap();
        f.set_len(MAX_FILE_BYTES + 1).unwrap();
        drop(f);
        let err = open_err(&path, &pass());
        assert!(matches!(err, KeystoreError::TooLarge { .. }), "{err:?}");

        assert_eq!(
            kdf_runs(),
            before,
            "argon2 ran for a file refused on structure"
        );
    }

    /// Times a create and an open at the default parameters. Run with
    /// `cargo test --release --lib keys::keystore -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing measurement, run on demand"]
    fn measure_create_and_open_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ks.json");
        let start = std::time::Instant::now();
        let mut ks = Keystore::create(&path, &pass(), KdfParams::default()).unwrap();
        let created = start.elapsed();
        ks.put("a", &SecretBytes::new(SECRET.to_vec()), meta("alice"))
            .unwrap();
        let mut opens = Vec::new();
        for _ in 0..3 {
            let start = std::time::Instant::now();
            let ks = Keystore::open(&path, &pass()).unwrap();
            opens.push(start.elapsed());
            assert_eq!(ks.get("a").unwrap().unwrap().0.expose(), SECRET);
        }
        println!("keystore create: {created:?}; open (m=64 MiB, t=3, p=1): {opens:?}");
    }
}
