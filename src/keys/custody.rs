//! Custody of the keystore while the gateway runs: sealed until an administrator unlocks it, then
//! the source of the JWT signing keys, the audit signing key, destination credentials and client
//! credentials. Every change and every use of a credential is audited before it takes effect; the
//! audit log is also how an older keystore file put back in place is recognised (its version is
//! lower than the last one the log recorded) and refused.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ed25519_dalek::{SigningKey, VerifyingKey};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::keystore::{Home, KdfParams, Keystore, KeystoreError, RecordMeta, constant_time_eq};
use super::secret::{Passphrase, SecretBytes, SecretString};
use crate::audit::note::NoteSigner;
use crate::audit::{Actor, AuditError, AuditLog, Event};

/// Longest lifetime of an access token; a retired JWT key verifies this long after rotation.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// Shortest passphrase accepted for a new keystore.
pub const MIN_PASSPHRASE: usize = 12;

/// Prefix of every client secret, so that a leaked one is recognisable (secret scanners, logs).
pub const CLIENT_SECRET_PREFIX: &str = "xjs_";

const AUDIT_KEY: &str = "audit/ed25519";
const PUSH_KEY: &str = "push/ed25519";
const HASH_KEY: &str = "clients/hash-key";
const JWT_PREFIX: &str = "jwt/";
const CLIENT_PREFIX: &str = "client/";
const CREDENTIAL_PREFIX: &str = "credential/";

/// Records that another module owns and formats, kept in the keystore (encrypted, versioned and
/// audited like the rest) under their own prefix. Custody only stores them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnedKind {
    /// Console users (`console::users`): password hash and TOTP secret.
    ConsoleUser,
}

impl OwnedKind {
    fn prefix(self) -> &'static str {
        match self {
            Self::ConsoleUser => "console-user/",
        }
    }
}

/// Custody failures. None of them carries secret material.
#[derive(Debug, thiserror::Error)]
pub enum CustodyError {
    /// Nothing that needs a key works while sealed.
    #[error("the keystore is sealed: an administrator must run `xianjie unlock` first")]
    Sealed,
    /// Wrong passphrase (or a damaged keystore header; the two are not told apart on purpose).
    #[error(
        "{what} refused: wrong passphrase or damaged keystore ({failures} failed attempt(s) in a row)"
    )]
    WrongPassphrase {
        /// What was refused: `unlock` or `passphrase change`.
        what: &'static str,
        /// Consecutive failures so far (unlocks and passphrase changes count together).
        failures: u32,
    },
    /// The keystore file is older than the audit log says it should be.
    #[error(
        "unlock refused: the keystore file is version {found} but the audit log recorded version {expected}; an older copy of {path} was put back. Restore the latest keystore file"
    )]
    Rollback {
        /// The file.
        path: String,
        /// Its version.
        found: u64,
        /// The version last recorded in the audit log.
        expected: u64,
    },
    /// Already unlocked.
    #[error("the keystore is already unlocked")]
    AlreadyUnlocked,
    /// The keystore file failed.
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    /// The audit entry could not be written, so the operation did not happen.
    #[error("not done, because it could not be audited: {0}")]
    Audit(#[from] AuditError),
    /// No such client or credential.
    #[error("{kind} {name} does not exist")]
    NotFound {
        /// `client` or `credential`.
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// A client of that name exists.
    #[error("client {0} already exists (use `xianjie clients rotate-secret {0}` for a new secret)")]
    ClientExists(String),
    /// A name or value was refused.
    #[error("{0}")]
    Invalid(String),
}

/// Whether the gateway holds its keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyStatus {
    /// True until unlocked.
    pub sealed: bool,
    /// Whether a keystore file exists yet.
    pub keystore_exists: bool,
    /// The keystore version, when unlocked.
    pub version: Option<u64>,
}

/// One stored client secret hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SecretHash {
    hash: String,
    /// How the hash was keyed: 0, the client hash key itself (secrets issued before issue 12);
    /// 1, a key derived from it for client secrets alone (HKDF).
    #[serde(default)]
    kdf: u8,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
}

/// What the keystore holds for a client (no secret: only keyed hashes of its secrets).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ClientRecord {
    name: String,
    cert_fingerprint: Option<String>,
    /// The name its certificate must carry (CN, SAN DNS name or URI) when it is not pinned;
    /// `None`: the client's own name.
    #[serde(default)]
    cert_subject: Option<String>,
    secrets: Vec<SecretHash>,
    created_by: String,
    created_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
}

impl ClientInfo {
    /// Whether a certificate (DER) is this client's: its pinned fingerprint, else a certificate
    /// whose CN, DNS name or URI is the client's subject (its name unless set otherwise), or
    /// `urn:xianjie:client:<subject>`.
    pub fn owns_certificate(&self, der: &[u8]) -> bool {
        if let Some(pin) = &self.cert_fingerprint {
            return crate::tls::fingerprint(der) == *pin;
        }
        let subject = self.cert_subject.as_deref().unwrap_or(&self.name);
        let urn = format!("urn:xianjie:client:{subject}");
        crate::tls::certificate_names(der)
            .iter()
            .any(|n| n == subject || *n == urn)
    }
}

/// A client as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientInfo {
    /// Name (the `sub` of its tokens).
    pub name: String,
    /// SHA-256 fingerprint of the only certificate it may use, if pinned.
    pub cert_fingerprint: Option<String>,
    /// The name its certificate must carry when it is not pinned (default: its own name).
    #[serde(default)]
    pub cert_subject: Option<String>,
    /// Who created it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Secrets that work now (2 during a rotation overlap).
    pub active_secrets: usize,
    /// When the older secret stops working, during an overlap.
    pub overlap_until: Option<DateTime<Utc>>,
}

/// A destination credential as listed (never its value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialInfo {
    /// Destination name.
    pub name: String,
    /// Version (1 for the first `credentials set`).
    pub version: u64,
    /// Who set it.
    pub set_by: String,
    /// When.
    pub set_at: DateTime<Utc>,
    /// Last use, from the audit log.
    pub last_use: Option<String>,
}

/// A newly made client secret: shown once, then only its hash is kept.
#[derive(Debug)]
pub struct NewSecret {
    /// The client.
    pub client: String,
    /// The secret (`xjs_…`).
    pub secret: SecretString,
}

/// What every API request needs from custody, kept decrypted for a short while: the JWT
/// verification keys and the clients. Dropped on every keystore change (so a revocation takes
/// effect on the next request) and on seal; otherwise refreshed after [`CACHE_TTL`] (retired JWT
/// keys age out with time).
struct AuthCache {
    made: Instant,
    jwt_keys: Vec<(String, VerifyingKey)>,
    clients: Vec<ClientInfo>,
}

/// How long [`AuthCache`] is reused.
const CACHE_TTL: Duration = Duration::from_secs(5);

/// The keystore under custody.
pub struct Custody {
    home: Home,
    audit: Arc<AuditLog>,
    inner: RwLock<Option<Keystore>>,
    failures: Mutex<u32>,
    cache: RwLock<Option<Arc<AuthCache>>>,
    /// See [`Custody::epoch`].
    epoch: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Custody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Custody")
            .field("home", &self.home)
            .field("sealed", &self.is_sealed())
            .finish_non_exhaustive()
    }
}

fn meta(actor: &Actor, note: Option<String>) -> RecordMeta {
    RecordMeta {
        set_by: actor.id.clone(),
        set_at: Utc::now(),
        note,
    }
}

/// Whether `name` has the form of a client, destination or console user name: 1–64 characters of
/// A–Z, a–z, 0–9, '-', '_' or '.' (safe in paths, logs, audit entries and URLs).
pub fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn valid_name(kind: &str, name: &str) -> Result<(), CustodyError> {
    if plain_name(name) {
        Ok(())
    } else {
        Err(CustodyError::Invalid(format!(
            "{kind} name {name:?} must be 1–64 characters of A–Z, a–z, 0–9, '-', '_' or '.'"
        )))
    }
}

/// The rule for a passphrase chosen now (a new keystore's, or a new custodian's): at least
/// [`MIN_PASSPHRASE`] characters. `what` names it in the error.
fn new_passphrase_rule(p: &Passphrase, what: &str) -> Result<(), CustodyError> {
    let n = p.expose().chars().count();
    if n < MIN_PASSPHRASE {
        return Err(CustodyError::Invalid(format!(
            "{what} is too short: {n} characters, at least {MIN_PASSPHRASE} are needed"
        )));
    }
    Ok(())
}

fn signing_key(secret: &SecretBytes) -> Result<SigningKey, CustodyError> {
    let bytes: [u8; 32] = secret
        .expose()
        .try_into()
        .map_err(|_| CustodyError::Invalid("a stored Ed25519 key is not 32 bytes".into()))?;
    Ok(SigningKey::from_bytes(&bytes))
}

impl Custody {
    /// Custody of the keystore kept at `home` (a file, or a value instances share), sealed.
    pub fn new(home: impl Into<Home>, audit: Arc<AuditLog>) -> Self {
        Custody {
            home: home.into(),
            audit,
            inner: RwLock::new(None),
            failures: Mutex::new(0),
            cache: RwLock::new(None),
            epoch: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The audit log it writes to.
    pub fn audit(&self) -> &Arc<AuditLog> {
        &self.audit
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Option<Keystore>> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Option<Keystore>> {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the keys are locked away.
    pub fn is_sealed(&self) -> bool {
        self.read().is_none()
    }

    /// Sealed or not, and the keystore version.
    pub fn status(&self) -> KeyStatus {
        let g = self.read();
        KeyStatus {
            sealed: g.is_none(),
            keystore_exists: self.home.exists(),
            version: g.as_ref().map(Keystore::version),
        }
    }

    /// Whether a keystore file exists (else the first unlock creates it).
    pub fn exists(&self) -> bool {
        self.home.exists()
    }

    /// How long the next unlock attempt waits: nothing at first, then doubling from 1 s per
    /// consecutive failure, at most 30 s — enough to make guessing slow, short enough not to
    /// lock out an administrator who mistyped.
    pub fn unlock_delay(&self) -> Duration {
        let n = *self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if n == 0 {
            Duration::ZERO
        } else {
            Duration::from_secs(1u64 << (n - 1).min(5)).min(Duration::from_secs(30))
        }
    }

    fn drop_cache(&self) {
        *self
            .cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// A number that changes at every keystore change (a client revoked, a key rotated) and at
    /// every seal: what was verified under an older epoch must be verified again.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn cached(&self) -> Result<Arc<AuthCache>, CustodyError> {
        if let Some(c) = self
            .cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .filter(|c| c.made.elapsed() < CACHE_TTL)
        {
            return Ok(c.clone());
        }
        let fresh = Arc::new(AuthCache {
            made: Instant::now(),
            jwt_keys: self.jwt_verifying_keys()?,
            clients: self.clients()?,
        });
        *self
            .cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(fresh.clone());
        Ok(fresh)
    }

    /// [`Custody::jwt_verifying_keys`], from a short-lived cache (for every API request).
    pub fn cached_jwt_keys(&self) -> Result<Vec<(String, VerifyingKey)>, CustodyError> {
        Ok(self.cached()?.jwt_keys.clone())
    }

    /// One client as [`Custody::clients`] lists it, from a short-lived cache that every keystore
    /// change clears (so a revocation counts from the next request).
    pub fn cached_client(&self, name: &str) -> Result<Option<ClientInfo>, CustodyError> {
        Ok(self
            .cached()?
            .clients
            .iter()
            .find(|c| c.name == name)
            .cloned())
    }

    fn change(&self, ks: &Keystore, actor: &Actor) -> Result<(), CustodyError> {
        self.audit.append(
            &Event::new(actor.clone(), "keystore.change", self.home.describe())
                .detail("version", ks.version()),
        )?;
        Ok(())
    }

    /// Unlocks (creating the keystore on first use) with `passphrase`. Sleeps first after failed
    /// attempts ([`Custody::unlock_delay`]); audits every attempt.
    pub fn unlock(&self, passphrase: &Passphrase, actor: &Actor) -> Result<u64, CustodyError> {
        std::thread::sleep(self.unlock_delay());
        let mut guard = self.write();
        if guard.is_some() {
            return Err(CustodyError::AlreadyUnlocked);
        }
        let target = self.home.describe();
        let started = Instant::now();
        let ks = if self.home.exists() {
            match Keystore::open(self.home.clone(), passphrase) {
                Ok(ks) => ks,
                Err(KeystoreError::Unlock) => {
                    return Err(self.wrong_passphrase(actor, "keystore.unlock_failed", "unlock"));
                }
                Err(e) => {
                    self.audit.append(
                        &Event::new(actor.clone(), "keystore.unlock_failed", &target)
                            .outcome("failed")
                            .detail("reason", e.to_string()),
                    )?;
                    return Err(e.into());
                }
            }
        } else {
            new_passphrase_rule(passphrase, "the passphrase of a new keystore")?;
            self.audit
                .append(&Event::new(actor.clone(), "keystore.create", &target))?;
            let mut ks = Keystore::create(self.home.clone(), passphrase, KdfParams::default())?;
            let m = || meta(actor, None);
            ks.put(AUDIT_KEY, &SecretBytes::random(32), m())?;
            ks.put(HASH_KEY, &SecretBytes::random(32), m())?;
            ks.put(&format!("{JWT_PREFIX}1"), &SecretBytes::random(32), m())?;
            ks.put(PUSH_KEY, &SecretBytes::random(32), m())?;
            self.change(&ks, actor)?;
            ks
        };
        let recorded = self.audit.keystore_version();
        if ks.version() < recorded {
            self.audit.append(
                &Event::new(actor.clone(), "keystore.unlock_failed", &target)
                    .outcome("denied")
                    .detail("reason", "rollback")
                    .detail("found", ks.version())
                    .detail("expected", recorded),
            )?;
            return Err(CustodyError::Rollback {
                path: target,
                found: ks.version(),
                expected: recorded,
            });
        }
        let audit_key = match ks.get(AUDIT_KEY)? {
            Some((secret, _)) => signing_key(&secret)?,
            None => {
                return Err(CustodyError::Invalid(
                    "the keystore has no audit signing key".into(),
                ));
            }
        };
        self.audit.append(
            &Event::new(actor.clone(), "keystore.unlock", &target)
                .detail("version", ks.version())
                .detail("millis", started.elapsed().as_millis() as u64),
        )?;
        let signer = NoteSigner::new(self.audit.origin(), audit_key)
            .map_err(|e| CustodyError::Invalid(e.to_string()))?;
        self.audit.set_signer(Some(signer));
        let version = ks.version();
        *guard = Some(ks);
        drop(guard);
        self.set_failures(|_| 0);
        self.audit.checkpoint_now()?;
        Ok(version)
    }

    /// Updates the count of consecutive wrong passphrases with `f` and returns the new count.
    fn set_failures(&self, f: impl FnOnce(u32) -> u32) -> u32 {
        let mut n = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *n = f(*n);
        *n
    }

    /// Counts a wrong passphrase — unlocks and passphrase changes together, so that alternating
    /// them guesses no faster — audits it as `action`, denied, and returns the error to answer.
    fn wrong_passphrase(&self, actor: &Actor, action: &str, what: &'static str) -> CustodyError {
        let failures = self.set_failures(|n| n.saturating_add(1));
        if let Err(e) = self.audit.append(
            &Event::new(actor.clone(), action, self.home.describe())
                .outcome("denied")
                .detail("failures", failures),
        ) {
            return e.into();
        }
        tracing::warn!(failures, what, "wrong keystore passphrase");
        CustodyError::WrongPassphrase { what, failures }
    }

    /// Custody handover (专人专机): re-encrypts the keystore under `new`, after checking
    /// `current`. Refused while sealed. A wrong `current` counts as a failed unlock (slowed by
    /// [`Custody::unlock_delay`], audited). `new` obeys the rule for a new keystore. Only the
    /// key-encrypting key changes (fresh Argon2id salt, data keys re-wrapped): every secret,
    /// key and client stays as it is. The file is replaced atomically (see
    /// [`Keystore::change_passphrase`]), so a crash leaves it under the old or the new
    /// passphrase. Audited as `keystore.passphrase_change` (started, then ok with the new
    /// version) around the usual `keystore.change`. Returns the new keystore version.
    ///
    /// The check and the change run under one write lock, so no other change slips between
    /// them; key users wait for the two derivations (about a second), once per handover.
    pub fn change_passphrase(
        &self,
        current: &Passphrase,
        new: &Passphrase,
        actor: &Actor,
    ) -> Result<u64, CustodyError> {
        const ACTION: &str = "keystore.passphrase_change";
        if self.is_sealed() {
            return Err(CustodyError::Sealed);
        }
        new_passphrase_rule(new, "the new passphrase")?;
        if constant_time_eq(new.expose().as_bytes(), current.expose().as_bytes()) {
            return Err(CustodyError::Invalid(
                "the new passphrase is the same as the current one given: a handover needs a passphrase that only the new custodian knows".into(),
            ));
        }
        std::thread::sleep(self.unlock_delay());
        let target = self.home.describe();
        let version = self.mutate(actor, |ks| {
            match ks.check_passphrase(current) {
                Ok(()) => {}
                Err(KeystoreError::Unlock) => {
                    return Err(self.wrong_passphrase(actor, ACTION, "passphrase change"));
                }
                Err(e) => return Err(e.into()),
            }
            self.set_failures(|_| 0);
            self.audit
                .append(&Event::new(actor.clone(), ACTION, &target).outcome("started"))?;
            ks.change_passphrase(new)?;
            Ok(ks.version())
        })?;
        self.audit
            .append(&Event::new(actor.clone(), ACTION, &target).detail("version", version))?;
        self.audit.checkpoint_now()?;
        tracing::info!(version, "keystore passphrase changed");
        Ok(version)
    }

    /// Seals: forgets every key (they are zeroized on drop) until the next unlock.
    pub fn seal(&self, actor: &Actor) -> Result<(), CustodyError> {
        let mut guard = self.write();
        if guard.is_none() {
            return Ok(());
        }
        self.audit.checkpoint_now()?;
        self.audit.append(&Event::new(
            actor.clone(),
            "keystore.seal",
            self.home.describe(),
        ))?;
        self.audit.set_signer(None);
        *guard = None;
        self.drop_cache();
        Ok(())
    }

    /// Takes up what another instance changed in a shared keystore (the gateway calls this
    /// every few seconds); returns whether anything changed. When this instance's key no
    /// longer opens it (its passphrase was changed on another instance), this instance seals
    /// itself, audited: its administrator unlocks it with the new passphrase.
    pub fn refresh(&self) -> Result<bool, CustodyError> {
        let mut guard = self.write();
        let Some(ks) = guard.as_mut() else {
            return Ok(false);
        };
        match ks.reload() {
            Ok(changed) => {
                if changed {
                    self.drop_cache();
                }
                Ok(changed)
            }
            Err(KeystoreError::Unlock) => {
                self.audit.append(
                    &Event::new(
                        Actor::system("keystore"),
                        "keystore.seal",
                        self.home.describe(),
                    )
                    .detail("reason", "its passphrase was changed on another instance"),
                )?;
                self.audit.set_signer(None);
                *guard = None;
                self.drop_cache();
                Ok(true)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Runs `f` on the unlocked keystore, then audits the new keystore version and signs a
    /// checkpoint (key, credential and client events are checkpointed at once).
    fn mutate<T>(
        &self,
        actor: &Actor,
        f: impl FnOnce(&mut Keystore) -> Result<T, CustodyError>,
    ) -> Result<T, CustodyError> {
        let mut guard = self.write();
        let ks = guard.as_mut().ok_or(CustodyError::Sealed)?;
        // Another instance may have changed a shared keystore: start from its latest state
        // (a change made meanwhile is refused by the write, not overwritten).
        if ks.reload()? {
            self.drop_cache();
        }
        let result = f(ks);
        // Even a failed change may have written part of it: never serve from the old cache.
        self.drop_cache();
        let out = result?;
        self.change(ks, actor)?;
        drop(guard);
        self.audit.checkpoint_now()?;
        Ok(out)
    }

    fn jwt_versions(ks: &Keystore) -> Vec<(u64, RecordMeta)> {
        let mut v: Vec<(u64, RecordMeta)> = ks
            .list_prefix(JWT_PREFIX)
            .into_iter()
            .filter_map(|r| {
                let n = r.name.strip_prefix(JWT_PREFIX)?.parse().ok()?;
                Some((n, r.meta))
            })
            .collect();
        v.sort_by_key(|(n, _)| *n);
        v
    }

    /// Makes a new JWT signing key current. The previous key keeps verifying until every token
    /// it signed has expired ([`MAX_TOKEN_LIFETIME`]); keys retired longer ago are deleted.
    pub fn rotate_jwt(&self, actor: &Actor) -> Result<String, CustodyError> {
        let kid = {
            let g = self.read();
            let ks = g.as_ref().ok_or(CustodyError::Sealed)?;
            let next = Self::jwt_versions(ks).last().map_or(1, |(n, _)| n + 1);
            jwt_kid(next)
        };
        self.audit
            .append(&Event::new(actor.clone(), "key.rotate", &kid).outcome("started"))?;
        self.mutate(actor, |ks| {
            let versions = Self::jwt_versions(ks);
            let next = versions.last().map_or(1, |(n, _)| n + 1);
            ks.put(
                &format!("{JWT_PREFIX}{next}"),
                &SecretBytes::random(32),
                meta(actor, None),
            )?;
            // A key whose successor became current more than a token lifetime ago signed no
            // token that is still valid.
            let limit =
                Utc::now() - chrono::Duration::from_std(MAX_TOKEN_LIFETIME).unwrap_or_default();
            for pair in versions.windows(2) {
                let ((old, _), (_, successor)) = (&pair[0], &pair[1]);
                if successor.set_at < limit {
                    ks.remove(&format!("{JWT_PREFIX}{old}"))?;
                }
            }
            Ok(())
        })?;
        self.audit
            .append(&Event::new(actor.clone(), "key.rotate", &kid))?;
        Ok(kid)
    }

    /// The current JWT signing key and its `kid`.
    pub fn jwt_signing_key(&self) -> Result<(String, SigningKey), CustodyError> {
        let g = self.read();
        let ks = g.as_ref().ok_or(CustodyError::Sealed)?;
        let (n, _) = Self::jwt_versions(ks)
            .pop()
            .ok_or_else(|| CustodyError::Invalid("the keystore has no JWT key".into()))?;
        let (secret, _) = ks
            .get(&format!("{JWT_PREFIX}{n}"))?
            .ok_or_else(|| CustodyError::Invalid("the current JWT key is missing".into()))?;
        Ok((jwt_kid(n), signing_key(&secret)?))
    }

    /// The key that signs push packages, and its key id (`push-` and the first 8 bytes of the
    /// public key's SHA-256, hex). A keystore made before pushes existed gets one, audited.
    pub fn push_signing_key(&self, actor: &Actor) -> Result<(String, SigningKey), CustodyError> {
        let existing = {
            let g = self.read();
            let ks = g.as_ref().ok_or(CustodyError::Sealed)?;
            ks.get(PUSH_KEY)?.map(|(secret, _)| signing_key(&secret))
        };
        let key = match existing {
            Some(k) => k?,
            None => {
                self.audit
                    .append(&Event::new(actor.clone(), "key.create", PUSH_KEY))?;
                self.mutate(actor, |ks| {
                    if ks.get(PUSH_KEY)?.is_none() {
                        ks.put(PUSH_KEY, &SecretBytes::random(32), meta(actor, None))?;
                    }
                    Ok(())
                })?;
                let g = self.read();
                let ks = g.as_ref().ok_or(CustodyError::Sealed)?;
                let (secret, _) = ks
                    .get(PUSH_KEY)?
                    .ok_or_else(|| CustodyError::Invalid("the push key was not stored".into()))?;
                signing_key(&secret)?
            }
        };
        Ok((push_kid(&key.verifying_key()), key))
    }

    /// Every JWT key that may still verify a token, by `kid`, newest first.
    pub fn jwt_verifying_keys(&self) -> Result<Vec<(String, VerifyingKey)>, CustodyError> {
        let g = self.read();
        let ks = g.as_ref().ok_or(CustodyError::Sealed)?;
        let versions = Self::jwt_versions(ks);
        let limit = Utc::now() - chrono::Duration::from_std(MAX_TOKEN_LIFETIME).unwrap_or_default();
        let mut out = Vec::new();
        for (i, (n, _)) in versions.iter().enumerate().rev() {
            let retired_long_ago = versions
                .get(i + 1)
                .is_some_and(|(_, successor)| successor.set_at < limit);
            if retired_long_ago {
                continue;
            }
            if let Some((secret, _)) = ks.get(&format!("{JWT_PREFIX}{n}"))? {
                out.push((jwt_kid(*n), signing_key(&secret)?.verifying_key()));
            }
        }
        Ok(out)
    }

    /// Stores a new version of a destination's credential.
    pub fn set_credential(
        &self,
        destination: &str,
        secret: &SecretString,
        actor: &Actor,
    ) -> Result<u64, CustodyError> {
        valid_name("destination", destination)?;
        if secret.expose().is_empty() {
            return Err(CustodyError::Invalid(
                "the credential is empty (it is read from standard input)".into(),
            ));
        }
        let name = format!("{CREDENTIAL_PREFIX}{destination}");
        self.audit
            .append(&Event::new(actor.clone(), "credential.set", destination).outcome("started"))?;
        let version = self.mutate(actor, |ks| {
            Ok(ks.put(
                &name,
                &SecretBytes::new(secret.expose().as_bytes().to_vec()),
                meta(actor, None),
            )?)
        })?;
        self.audit.append(
            &Event::new(actor.clone(), "credential.set", destination).detail("version", version),
        )?;
        Ok(version)
    }

    /// The destination credentials, without their values.
    pub fn credentials(&self) -> Result<Vec<CredentialInfo>, CustodyError> {
        let g = self.read();
        let ks = g.as_ref().ok_or(CustodyError::Sealed)?;
        Ok(ks
            .list_prefix(CREDENTIAL_PREFIX)
            .into_iter()
            .map(|r| {
                let name = r
                    .name
                    .strip_prefix(CREDENTIAL_PREFIX)
                    .unwrap_or(&r.name)
                    .to_string();
                CredentialInfo {
                    last_use: self.audit.last_use(&name),
                    name,
                    version: r.version,
                    set_by: r.meta.set_by,
                    set_at: r.meta.set_at,
                }
            })
            .collect())
    }

    /// A destination's credential for one use; the use (and the version) is audited first.
    pub fn use_credential(
        &self,
        destination: &str,
        actor: &Actor,
    ) -> Result<(SecretString, u64), CustodyError> {
        let g = self.read();
        let ks = g.as_ref().ok_or(CustodyError::Sealed)?;
        let (secret, info) = ks
            .get(&format!("{CREDENTIAL_PREFIX}{destination}"))?
            .ok_or_else(|| CustodyError::NotFound {
                kind: "credential",
                name: destination.into(),
            })?;
        self.audit.append(
            &Event::new(actor.clone(), "credential.use", destination)
                .detail("version", info.version),
        )?;
        let text = String::from_utf8(secret.expose().to_vec())
            .map_err(|_| CustodyError::Invalid("a stored credential is not text".into()))?;
        Ok((SecretString::new(text), info.version))
    }

    /// The key of one purpose, derived from the keystore's root MAC key with HKDF-SHA256
    /// (`info` = `xianjie/<purpose>`), so that no two uses share a key.
    fn purpose_key(ks: &Keystore, purpose: &str) -> Result<SecretBytes, CustodyError> {
        let (root, _) = ks
            .get(HASH_KEY)?
            .ok_or_else(|| CustodyError::Invalid("the keystore has no MAC key".into()))?;
        let hk = hkdf::Hkdf::<Sha256>::new(None, root.expose());
        let mut out = zeroize::Zeroizing::new(vec![0u8; 32]);
        hk.expand(format!("xianjie/{purpose}").as_bytes(), &mut out)
            .map_err(|_| CustodyError::Invalid("key derivation failed".into()))?;
        Ok(SecretBytes::new(std::mem::take(&mut *out)))
    }

    /// HMAC-SHA256 of `data` under `key`.
    fn hmac(key: &[u8], data: &[&[u8]]) -> Result<[u8; 32], CustodyError> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
            .map_err(|_| CustodyError::Invalid("bad MAC key".into()))?;
        for d in data {
            mac.update(d);
        }
        Ok(mac.finalize().into_bytes().into())
    }

    /// The keyed hash of a client secret, as `kdf` says (see [`SecretHash`]): new secrets use 1.
    fn hash_secret(ks: &Keystore, secret: &str, kdf: u8) -> Result<String, CustodyError> {
        let key = match kdf {
            0 => {
                ks.get(HASH_KEY)?
                    .ok_or_else(|| {
                        CustodyError::Invalid("the keystore has no client hash key".into())
                    })?
                    .0
            }
            _ => Self::purpose_key(ks, "client-secret")?,
        };
        Ok(hex::encode(Self::hmac(key.expose(), &[secret.as_bytes()])?))
    }

    /// A MAC of `data`, for values the gateway hands out and must later recognise unaltered
    /// (pagination cursors), under a key derived for `domain` alone.
    pub fn mac(&self, domain: &str, data: &[u8]) -> Result<[u8; 32], CustodyError> {
        let g = self.read();
        let ks = g.as_ref().ok_or(CustodyError::Sealed)?;
        let key = Self::purpose_key(ks, &format!("mac/{domain}"))?;
        Self::hmac(key.expose(), &[data])
    }

    fn client(ks: &Keystore, name: &str) -> Result<Option<ClientRecord>, CustodyError> {
        match ks.get(&format!("{CLIENT_PREFIX}{name}"))? {
            None => Ok(None),
            Some((bytes, _)) => serde_json::from_slice(bytes.expose())
                .map(Some)
                .map_err(|e| CustodyError::Invalid(format!("client record {name}: {e}"))),
        }
    }

    fn put_client(
        ks: &mut Keystore,
        rec: &ClientRecord,
        actor: &Actor,
    ) -> Result<(), CustodyError> {
        let bytes = serde_json::to_vec(rec)
            .map_err(|e| CustodyError::Invalid(format!("client record: {e}")))?;
        ks.put(
            &format!("{CLIENT_PREFIX}{}", rec.name),
            &SecretBytes::new(bytes),
            meta(actor, None),
        )?;
        Ok(())
    }

    fn new_secret() -> SecretString {
        use base64::Engine;
        let raw = SecretBytes::random(32);
        SecretString::new(format!(
            "{CLIENT_SECRET_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.expose())
        ))
    }

    /// Registers a client bound to its certificate by name (the certificate's CN, DNS name or
    /// URI is the client's name) and returns its first secret (shown once).
    pub fn add_client(
        &self,
        name: &str,
        cert_fingerprint: Option<&str>,
        actor: &Actor,
    ) -> Result<NewSecret, CustodyError> {
        self.add_client_bound(name, cert_fingerprint, None, actor)
    }

    /// Registers a client bound to its certificate — by `cert_fingerprint` (SHA-256) when
    /// given, else by `cert_subject` (default: the client's name) — and returns its first
    /// secret (shown once).
    pub fn add_client_bound(
        &self,
        name: &str,
        cert_fingerprint: Option<&str>,
        cert_subject: Option<&str>,
        actor: &Actor,
    ) -> Result<NewSecret, CustodyError> {
        valid_name("client", name)?;
        let fingerprint = cert_fingerprint.map(normalize_fingerprint).transpose()?;
        let subject = cert_subject.map(str::trim).filter(|s| !s.is_empty());
        if let Some(s) = subject
            && (s.len() > 256 || s.chars().any(char::is_control))
        {
            return Err(CustodyError::Invalid(format!(
                "certificate subject {s:?} is not a name a certificate carries"
            )));
        }
        self.audit.append(
            &Event::new(actor.clone(), "client.create", name)
                .outcome("started")
                .detail("cert_pinned", fingerprint.is_some())
                .detail("cert_subject", subject.unwrap_or(name)),
        )?;
        let secret = Self::new_secret();
        self.mutate(actor, |ks| {
            if Self::client(ks, name)?.is_some() {
                return Err(CustodyError::ClientExists(name.into()));
            }
            let rec = ClientRecord {
                name: name.into(),
                cert_fingerprint: fingerprint.clone(),
                cert_subject: subject.map(str::to_string),
                secrets: vec![SecretHash {
                    hash: Self::hash_secret(ks, secret.expose(), 1)?,
                    kdf: 1,
                    created_at: Utc::now(),
                    expires_at: None,
                }],
                created_by: actor.id.clone(),
                created_at: Utc::now(),
                revoked_at: None,
            };
            Self::put_client(ks, &rec, actor)
        })?;
        self.audit
            .append(&Event::new(actor.clone(), "client.create", name))?;
        Ok(NewSecret {
            client: name.into(),
            secret,
        })
    }

    /// A new secret for a client; the old ones keep working for `overlap`, then stop.
    pub fn rotate_client_secret(
        &self,
        name: &str,
        overlap: Duration,
        actor: &Actor,
    ) -> Result<NewSecret, CustodyError> {
        self.audit.append(
            &Event::new(actor.clone(), "client.rotate", name)
                .outcome("started")
                .detail("overlap_secs", overlap.as_secs()),
        )?;
        let secret = Self::new_secret();
        self.mutate(actor, |ks| {
            let mut rec = Self::client(ks, name)?.ok_or_else(|| CustodyError::NotFound {
                kind: "client",
                name: name.into(),
            })?;
            if rec.revoked_at.is_some() {
                return Err(CustodyError::Invalid(format!(
                    "client {name} is revoked; add a new client instead"
                )));
            }
            let now = Utc::now();
            let until = now + chrono::Duration::from_std(overlap).unwrap_or_default();
            rec.secrets.retain(|s| s.expires_at.is_none_or(|e| e > now));
            for s in &mut rec.secrets {
                s.expires_at = Some(s.expires_at.map_or(until, |e| e.min(until)));
            }
            rec.secrets.push(SecretHash {
                hash: Self::hash_secret(ks, secret.expose(), 1)?,
                kdf: 1,
                created_at: now,
                expires_at: None,
            });
            Self::put_client(ks, &rec, actor)
        })?;
        self.audit
            .append(&Event::new(actor.clone(), "client.rotate", name))?;
        Ok(NewSecret {
            client: name.into(),
            secret,
        })
    }

    /// Revokes a client: its secrets and tokens stop working at once.
    pub fn revoke_client(&self, name: &str, actor: &Actor) -> Result<(), CustodyError> {
        self.audit
            .append(&Event::new(actor.clone(), "client.revoke", name).outcome("started"))?;
        self.mutate(actor, |ks| {
            let mut rec = Self::client(ks, name)?.ok_or_else(|| CustodyError::NotFound {
                kind: "client",
                name: name.into(),
            })?;
            rec.revoked_at.get_or_insert_with(Utc::now);
            Self::put_client(ks, &rec, actor)
        })?;
        self.audit
            .append(&Event::new(actor.clone(), "client.revoke", name))?;
        Ok(())
    }

    /// The record `name` of `kind`, decrypted, if there is one.
    pub fn owned(&self, kind: OwnedKind, name: &str) -> Result<Option<SecretBytes>, CustodyError> {
        let g = self.read();
        let ks = g.as_ref().ok_or(CustodyError::Sealed)?;
        Ok(ks
            .get(&format!("{}{name}", kind.prefix()))?
            .map(|(bytes, _)| bytes))
    }

    /// Every record of `kind`, by name (without the prefix), in name order.
    pub fn owned_all(&self, kind: OwnedKind) -> Result<Vec<(String, SecretBytes)>, CustodyError> {
        let g = self.read();
        let ks = g.as_ref().ok_or(CustodyError::Sealed)?;
        let mut out = Vec::new();
        for r in ks.list_prefix(kind.prefix()) {
            if let Some((bytes, _)) = ks.get(&r.name)? {
                let name = r.name.strip_prefix(kind.prefix()).unwrap_or(&r.name);
                out.push((name.to_string(), bytes));
            }
        }
        Ok(out)
    }

    /// Writes the record `name` of `kind` as `f` makes it from the current one (`None` if there
    /// is none), under the keystore's lock, so two changes never overwrite each other. The caller
    /// audits what the change means; the keystore change itself is audited here.
    pub fn update_owned(
        &self,
        kind: OwnedKind,
        name: &str,
        actor: &Actor,
        f: impl FnOnce(Option<SecretBytes>) -> Result<SecretBytes, CustodyError>,
    ) -> Result<(), CustodyError> {
        let key = format!("{}{name}", kind.prefix());
        self.mutate(actor, |ks| {
            let current = ks.get(&key)?.map(|(bytes, _)| bytes);
            let next = f(current)?;
            ks.put(&key, &next, meta(actor, None))?;
            Ok(())
        })
    }

    /// Every client.
    pub fn clients(&self) -> Result<Vec<ClientInfo>, CustodyError> {
        let g = self.read();
        let ks = g.as_ref().ok_or(CustodyError::Sealed)?;
        let now = Utc::now();
        let mut out = Vec::new();
        for r in ks.list_prefix(CLIENT_PREFIX) {
            let name = r.name.strip_prefix(CLIENT_PREFIX).unwrap_or(&r.name);
            if let Some(rec) = Self::client(ks, name)? {
                let active: Vec<&SecretHash> = rec
                    .secrets
                    .iter()
                    .filter(|s| s.expires_at.is_none_or(|e| e > now))
                    .collect();
                out.push(ClientInfo {
                    overlap_until: active.iter().filter_map(|s| s.expires_at).min(),
                    active_secrets: active.len(),
                    name: rec.name,
                    cert_fingerprint: rec.cert_fingerprint,
                    cert_subject: rec.cert_subject,
                    created_by: rec.created_by,
                    created_at: rec.created_at,
                    revoked_at: rec.revoked_at,
                });
            }
        }
        Ok(out)
    }

    /// Checks a client's secret: `Ok(Some(info))` when it is a current secret of a client that is
    /// not revoked, `Ok(None)` otherwise (unknown client, wrong or expired secret, revoked).
    pub fn authenticate(
        &self,
        name: &str,
        secret: &str,
    ) -> Result<Option<ClientInfo>, CustodyError> {
        let g = self.read();
        let ks = g.as_ref().ok_or(CustodyError::Sealed)?;
        // Hash even for unknown names, so that timing does not tell which names exist.
        let presented = [
            Self::hash_secret(ks, secret, 0)?,
            Self::hash_secret(ks, secret, 1)?,
        ];
        let Some(rec) = Self::client(ks, name)? else {
            return Ok(None);
        };
        let now = Utc::now();
        let ok = rec.revoked_at.is_none()
            && rec.secrets.iter().any(|s| {
                let p = &presented[usize::from(s.kdf.min(1))];
                s.expires_at.is_none_or(|e| e > now)
                    && constant_time_eq(s.hash.as_bytes(), p.as_bytes())
            });
        drop(g);
        if !ok {
            return Ok(None);
        }
        Ok(self.clients()?.into_iter().find(|c| c.name == name))
    }
}

/// The `kid` of JWT key version `n`.
/// The key id of a push signing key.
pub fn push_kid(key: &VerifyingKey) -> String {
    use sha2::Digest;
    format!("push-{}", hex::encode(&Sha256::digest(key.as_bytes())[..8]))
}

fn jwt_kid(n: u64) -> String {
    format!("jwt-{n}")
}

/// A certificate fingerprint as 64 lowercase hex digits (colons and case accepted on input).
fn normalize_fingerprint(s: &str) -> Result<String, CustodyError> {
    let hex: String = s
        .chars()
        .filter(|c| *c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(hex)
    } else {
        Err(CustodyError::Invalid(format!(
            "certificate fingerprint {s:?} is not a SHA-256 (64 hex digits, colons allowed)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Fsync;
    use crate::keys::secret::Passphrase;

    fn custody() -> (tempfile::TempDir, Custody) {
        let dir = tempfile::tempdir().unwrap();
        let audit = AuditLog::open(&dir.path().join("audit"), "test/audit", Fsync::Always).unwrap();
        let c = Custody::new(&dir.path().join("keystore.json"), audit);
        c.unlock(
            &Passphrase::new("a passphrase for tests".into()),
            &Actor::admin("t"),
        )
        .unwrap();
        (dir, c)
    }

    #[test]
    fn secrets_hashed_before_derived_keys_still_work_and_new_ones_use_them() {
        let (_dir, c) = custody();
        let actor = Actor::admin("t");
        let first = c.add_client("procuratorate", None, &actor).unwrap();
        // Make the stored hash the way secrets were hashed before issue 12.
        c.mutate(&actor, |ks| {
            let mut rec = Custody::client(ks, "procuratorate")?.unwrap();
            assert_eq!(rec.secrets[0].kdf, 1, "new secrets use the derived key");
            rec.secrets[0].hash = Custody::hash_secret(ks, first.secret.expose(), 0)?;
            rec.secrets[0].kdf = 0;
            Custody::put_client(ks, &rec, &actor)
        })
        .unwrap();
        assert!(
            c.authenticate("procuratorate", first.secret.expose())
                .unwrap()
                .is_some()
        );
        assert!(
            c.authenticate("procuratorate", "xjs_wrong")
                .unwrap()
                .is_none()
        );
        // The derived key and the root key differ: a legacy hash is not a derived one.
        c.mutate(&actor, |ks| {
            let legacy = Custody::hash_secret(ks, first.secret.expose(), 0)?;
            let derived = Custody::hash_secret(ks, first.secret.expose(), 1)?;
            assert_ne!(legacy, derived);
            Ok(())
        })
        .unwrap();
        // Each MAC domain has its own key.
        let a = c.mac("cursor", b"x").unwrap();
        assert_eq!(a, c.mac("cursor", b"x").unwrap());
        assert_ne!(a, c.mac("other", b"x").unwrap());
    }

    #[test]
    fn a_passphrase_change_keeps_every_secret_and_only_the_new_passphrase_opens_the_file() {
        let (dir, c) = custody();
        let path = dir.path().join("keystore.json");
        let actor = Actor::admin("t");
        let old = Passphrase::new("a passphrase for tests".into());
        let new = Passphrase::new("the new custodian's passphrase".into());
        let client = c.add_client("procuratorate", None, &actor).unwrap();
        c.set_credential(
            "province",
            &SecretString::new("cred-Ж-value".into()),
            &actor,
        )
        .unwrap();
        let (kid, jwt) = c.jwt_signing_key().unwrap();
        let before = std::fs::read(&path).unwrap();
        let version = c.status().version.unwrap();

        // Refused before any passphrase is checked, so no failure is counted.
        let e = c
            .change_passphrase(&old, &Passphrase::new("short".into()), &actor)
            .unwrap_err();
        assert!(e.to_string().contains("too short: 5 characters"), "{e}");
        let e = c.change_passphrase(&old, &old, &actor).unwrap_err();
        assert!(e.to_string().contains("same as the current one"), "{e}");
        assert_eq!(c.unlock_delay(), Duration::ZERO);
        // A wrong current passphrase counts as a failed unlock: audited, and the next try waits.
        let e = c
            .change_passphrase(&Passphrase::new("not the passphrase".into()), &new, &actor)
            .unwrap_err();
        assert!(
            matches!(
                e,
                CustodyError::WrongPassphrase {
                    what: "passphrase change",
                    failures: 1
                }
            ),
            "{e:?}"
        );
        assert!(!e.to_string().contains("not the passphrase"), "{e}");
        assert_eq!(c.unlock_delay(), Duration::from_secs(1));
        assert_eq!(std::fs::read(&path).unwrap(), before, "nothing was written");

        let changed = c.change_passphrase(&old, &new, &actor).unwrap();
        assert_eq!(changed, version + 1);
        assert_eq!(
            c.unlock_delay(),
            Duration::ZERO,
            "the right passphrase resets"
        );
        // Everything works as before, in memory…
        assert!(
            c.authenticate("procuratorate", client.secret.expose())
                .unwrap()
                .is_some()
        );
        let (kid2, jwt2) = c.jwt_signing_key().unwrap();
        assert_eq!((kid2, jwt2.to_bytes()), (kid, jwt.to_bytes()));
        // …and on disk, under a fresh salt that only the new passphrase opens.
        let salt = |b: &[u8]| {
            serde_json::from_slice::<serde_json::Value>(b).unwrap()["kdf"]["salt"].clone()
        };
        let after = std::fs::read(&path).unwrap();
        assert_ne!(salt(&after), salt(&before));
        assert!(matches!(
            Keystore::open(&path, &old),
            Err(KeystoreError::Unlock)
        ));
        let ks = Keystore::open(&path, &new).unwrap();
        assert_eq!(ks.version(), changed);
        let (cred, info) = ks.get("credential/province").unwrap().unwrap();
        assert_eq!(
            (cred.expose(), info.version),
            ("cred-Ж-value".as_bytes(), 1)
        );

        // Audited: the refusal, then started, the keystore change, done; no passphrase in it.
        let tail = c.audit().tail(6).unwrap();
        let seen: Vec<(&str, &str)> = tail
            .iter()
            .map(|e| (e.action.as_str(), e.outcome.as_str()))
            .collect();
        let at = |a: &str, o: &str| seen.iter().rposition(|x| *x == (a, o)).unwrap();
        assert!(
            at("keystore.passphrase_change", "denied")
                < at("keystore.passphrase_change", "started")
                && at("keystore.passphrase_change", "started") < at("keystore.change", "ok")
                && at("keystore.change", "ok") < at("keystore.passphrase_change", "ok"),
            "{seen:?}"
        );
        let done = &tail[at("keystore.passphrase_change", "ok")];
        assert_eq!(done.details["version"], changed);
        let text = serde_json::to_string(&tail).unwrap();
        assert!(!text.contains("custodian") && !text.contains("for tests"));

        // Sealed: refused, whatever the passphrases.
        c.seal(&actor).unwrap();
        let e = c.change_passphrase(&new, &old, &actor).unwrap_err();
        assert!(matches!(e, CustodyError::Sealed), "{e:?}");
        c.unlock(&new, &actor).unwrap();
    }

    #[test]
    fn a_client_owns_the_certificates_that_name_it_or_its_pin() {
        use rustls_pki_types::pem::PemObject;
        let dir = tempfile::tempdir().unwrap();
        xianjie_devca::generate_dev(dir.path(), &["procuratorate".into(), "other".into()], false)
            .unwrap();
        let der = |name: &str| {
            rustls_pki_types::CertificateDer::from_pem_file(dir.path().join(format!("{name}.pem")))
                .unwrap()
                .to_vec()
        };
        let (mine, theirs) = (der("procuratorate"), der("other"));
        assert!(
            crate::tls::certificate_names(&mine).contains(&"procuratorate".to_string()),
            "{:?}",
            crate::tls::certificate_names(&mine)
        );
        let mut client = ClientInfo {
            name: "procuratorate".into(),
            cert_fingerprint: None,
            cert_subject: None,
            created_by: "t".into(),
            created_at: Utc::now(),
            revoked_at: None,
            active_secrets: 1,
            overlap_until: None,
        };
        assert!(client.owns_certificate(&mine));
        assert!(!client.owns_certificate(&theirs));
        // A subject rule names another certificate.
        client.cert_subject = Some("other".into());
        assert!(client.owns_certificate(&theirs) && !client.owns_certificate(&mine));
        // A pin wins over names.
        client.cert_fingerprint = Some(crate::tls::fingerprint(&theirs));
        client.cert_subject = None;
        assert!(client.owns_certificate(&theirs) && !client.owns_certificate(&mine));
        assert!(!client.owns_certificate(b"not a certificate"));
    }
}
