//! The console's users as they are kept: one record per person in the keystore (encrypted, under
//! custody like client secrets), holding their role and grant, their password's Argon2id hash and
//! their TOTP secret. Adding, resetting and disabling a user, and every sign-in, are audited here.
//! Failed sign-ins and the last TOTP step each person used are held in memory: a restart forgets
//! a lock, but only the administrator on the host can restart the gateway.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use super::auth::{AuthError, StoredPassword, TotpSecret};
use super::users::{FAILURE_WINDOW, Failures, Grant, UserError, UserName};
use crate::audit::{Actor, AuditError, Event};
use crate::keys::custody::{Custody, CustodyError, OwnedKind};
use crate::keys::secret::{SecretBytes, SecretString};

/// Shortest password a person may choose (the one-time password is longer).
pub const MIN_PASSWORD: usize = 12;
/// Longest password taken: Argon2 hashes any length, but a sign-in form is no place for a file.
pub const MAX_PASSWORD: usize = 256;
/// Characters of a one-time password: letters and digits that cannot be mistaken for each other
/// when read off a terminal (no 0/O, 1/l/I).
const OTP_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz23456789";
/// Length of a one-time password: 18 of 54 characters, over 100 bits.
const OTP_LEN: usize = 18;
/// Issuer shown in authenticator apps.
pub const ISSUER: &str = "xianjie";

/// Why a user operation failed. None carries a password or secret.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// A name, role or grant that was refused.
    #[error(transparent)]
    User(#[from] UserError),
    /// The keystore (sealed, failed) or the audit log.
    #[error(transparent)]
    Custody(#[from] CustodyError),
    /// The audit log could not be written, so nothing was done.
    #[error("not done, because it could not be audited: {0}")]
    Audit(#[from] AuditError),
    /// A stored record that does not parse (altered or damaged).
    #[error("the stored record of user {name} is damaged: {why}")]
    Damaged {
        /// Whose.
        name: String,
        /// What is wrong.
        why: String,
    },
    /// No such user.
    #[error("user {0} does not exist (see `xianjie users list`)")]
    NotFound(String),
    /// A user of that name exists.
    #[error("user {0} already exists (use `xianjie users reset {0}` for a new password)")]
    Exists(String),
    /// The user is disabled.
    #[error("user {0} is disabled; add a user under a new name instead")]
    Disabled(String),
    /// A new password that does not meet the rules.
    #[error("{0}")]
    Password(String),
    /// Hashing failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
}

/// One user as kept in the keystore.
#[derive(Serialize, Deserialize)]
struct Record {
    name: String,
    role: String,
    client: Option<String>,
    unit: Option<String>,
    /// The Argon2id PHC string.
    password: String,
    /// The TOTP secret, hex.
    totp: String,
    /// Signed in with a one-time password: a new one must be chosen first.
    must_change: bool,
    created_by: String,
    created_at: DateTime<Utc>,
    #[serde(default)]
    reset_at: Option<DateTime<Utc>>,
    #[serde(default)]
    disabled_at: Option<DateTime<Utc>>,
}

impl Drop for Record {
    fn drop(&mut self) {
        self.password.zeroize();
        self.totp.zeroize();
    }
}

impl Record {
    fn parse(name: &str, bytes: &SecretBytes) -> Result<Self, DirectoryError> {
        let damaged = |why: String| DirectoryError::Damaged {
            name: name.to_string(),
            why,
        };
        let r: Record =
            serde_json::from_slice(bytes.expose()).map_err(|e| damaged(e.to_string()))?;
        if r.name != name {
            return Err(damaged(format!("it names {:?}", r.name)));
        }
        Ok(r)
    }

    fn bytes(&self) -> Result<SecretBytes, CustodyError> {
        serde_json::to_vec(self)
            .map(SecretBytes::new)
            .map_err(|e| CustodyError::Invalid(format!("user record: {e}")))
    }

    fn grant(&self) -> Result<Grant, DirectoryError> {
        Ok(Grant::new(
            &self.role,
            self.client.as_deref(),
            self.unit.as_deref(),
        )?)
    }

    fn password(&self) -> Result<StoredPassword, DirectoryError> {
        Ok(StoredPassword::parse(&self.password)?)
    }

    fn totp(&self) -> Result<TotpSecret, DirectoryError> {
        let bytes = hex::decode(&self.totp).map_err(|e| DirectoryError::Damaged {
            name: self.name.clone(),
            why: format!("TOTP secret: {e}"),
        })?;
        Ok(TotpSecret::from_bytes(bytes)?)
    }

    fn info(&self, locked_until: Option<DateTime<Utc>>) -> UserInfo {
        UserInfo {
            name: self.name.clone(),
            role: self.role.clone(),
            client: self.client.clone(),
            unit: self.unit.clone(),
            must_change: self.must_change,
            created_by: self.created_by.clone(),
            created_at: self.created_at,
            reset_at: self.reset_at,
            disabled_at: self.disabled_at,
            locked_until,
        }
    }
}

/// A user as listed (never their password hash or TOTP secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// Sign-in name.
    pub name: String,
    /// `analyst`, `unit` or `admin`.
    pub role: String,
    /// The API client an analyst acts through.
    pub client: Option<String>,
    /// The unit (USCC) a unit user belongs to.
    pub unit: Option<String>,
    /// Whether they still have to replace a one-time password.
    pub must_change: bool,
    /// Who added them.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Their last reset.
    pub reset_at: Option<DateTime<Utc>>,
    /// When they were disabled.
    pub disabled_at: Option<DateTime<Utc>>,
    /// Locked after failed sign-ins until then.
    pub locked_until: Option<DateTime<Utc>>,
}

/// What a new or reset user is given, once: a one-time password and a TOTP enrolment.
#[derive(Debug)]
pub struct Enrolment {
    /// The user.
    pub name: String,
    /// The one-time password (replaced at first sign-in).
    pub password: SecretString,
    /// The `otpauth://` URI an authenticator app scans.
    pub otpauth: SecretString,
}

/// Why a sign-in was refused, as the person is told. Which part was wrong is never said.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignInError {
    /// Wrong name, password or code, or a disabled user: told apart only in the audit log.
    #[error("用户名、密码或动态口令不正确")]
    Refused,
    /// Locked after repeated failures.
    #[error("连续登录失败次数过多，账户已锁定至 {0}")]
    Locked(String),
    /// The gateway cannot check (sealed keystore, audit log down).
    #[error("网关暂不能登录（密钥库已封存或审计日志不可写），请联系管理员")]
    Unavailable,
}

/// A person who signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    /// Who.
    pub name: UserName,
    /// What they may see.
    pub grant: Grant,
    /// Whether they must choose a password before anything else.
    pub must_change: bool,
}

/// The console's users.
pub struct Directory {
    custody: Arc<Custody>,
    failures: Mutex<HashMap<String, Failures>>,
    /// The last TOTP step accepted per user: a code is good once.
    last_step: Mutex<HashMap<String, u64>>,
    /// Verified when the name is unknown, so the time taken does not tell which names exist.
    decoy: StoredPassword,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory").finish_non_exhaustive()
    }
}

/// A fresh one-time password.
fn one_time_password() -> SecretString {
    let mut out = String::with_capacity(OTP_LEN);
    while out.len() < OTP_LEN {
        let raw = SecretBytes::random(32);
        // Rejection sampling: only bytes below the largest multiple of the alphabet's size, so
        // every character is equally likely.
        let limit = 256 - 256 % OTP_ALPHABET.len();
        for &b in raw.expose() {
            if usize::from(b) < limit && out.len() < OTP_LEN {
                out.push(char::from(
                    OTP_ALPHABET[usize::from(b) % OTP_ALPHABET.len()],
                ));
            }
        }
    }
    SecretString::new(out)
}

fn lock(
    m: &Mutex<HashMap<String, Failures>>,
) -> std::sync::MutexGuard<'_, HashMap<String, Failures>> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Directory {
    /// The users kept by `custody`.
    pub fn new(custody: Arc<Custody>) -> Result<Self, DirectoryError> {
        Ok(Directory {
            custody,
            failures: Mutex::new(HashMap::new()),
            last_step: Mutex::new(HashMap::new()),
            decoy: StoredPassword::hash(&one_time_password())?,
        })
    }

    fn record(&self, name: &str) -> Result<Option<Record>, DirectoryError> {
        self.custody
            .owned(OwnedKind::ConsoleUser, name)?
            .map(|b| Record::parse(name, &b))
            .transpose()
    }

    /// Adds a user with `grant`; returns their one-time password and TOTP enrolment.
    pub fn add(
        &self,
        name: &UserName,
        grant: &Grant,
        actor: &Actor,
    ) -> Result<Enrolment, DirectoryError> {
        let (client, unit) = match grant {
            Grant::Analyst { client } => (Some(client.clone()), None),
            Grant::Unit { unit } => (None, Some(unit.as_str().to_string())),
            Grant::Admin => (None, None),
        };
        let event = Event::new(actor.clone(), "console.user.add", name.as_str())
            .detail("role", grant.role())
            .detail("client", client.clone().unwrap_or_default())
            .detail("unit", unit.clone().unwrap_or_default());
        self.custody
            .audit()
            .append(&event.clone().outcome("started"))?;
        let password = one_time_password();
        let totp = TotpSecret::generate();
        let rec = Record {
            name: name.as_str().to_string(),
            role: grant.role().to_string(),
            client,
            unit,
            password: StoredPassword::hash(&password)?.as_phc().to_string(),
            totp: hex::encode(totp.expose()),
            must_change: true,
            created_by: actor.id.clone(),
            created_at: Utc::now(),
            reset_at: None,
            disabled_at: None,
        };
        let mut existed = false;
        let written = self
            .custody
            .update_owned(OwnedKind::ConsoleUser, name.as_str(), actor, |cur| {
                if cur.is_some() {
                    existed = true;
                    return Err(CustodyError::Invalid("exists".into()));
                }
                rec.bytes()
            })
            .map_err(|e| {
                if existed {
                    DirectoryError::Exists(name.as_str().to_string())
                } else {
                    e.into()
                }
            });
        if let Err(e) = written {
            // Started, so its end is recorded too.
            self.custody
                .audit()
                .append(&event.outcome("failed").detail("reason", e.to_string()))?;
            return Err(e);
        }
        self.custody.audit().append(&event)?;
        Ok(Enrolment {
            name: name.as_str().to_string(),
            password,
            otpauth: totp.otpauth_uri(ISSUER, name.as_str()),
        })
    }

    /// Every user, in name order, with any lock they are under.
    pub fn list(&self) -> Result<Vec<UserInfo>, DirectoryError> {
        let now = Utc::now();
        let failures = lock(&self.failures).clone();
        self.custody
            .owned_all(OwnedKind::ConsoleUser)?
            .into_iter()
            .map(|(name, bytes)| {
                let locked = failures
                    .get(&name)
                    .filter(|f| f.locked(now))
                    .and_then(|f| f.locked_until);
                Record::parse(&name, &bytes).map(|r| r.info(locked))
            })
            .collect()
    }

    /// Changes `name`'s record with `f` (audited as `action` before and after).
    fn change(
        &self,
        name: &UserName,
        action: &str,
        actor: &Actor,
        f: impl FnOnce(&mut Record) -> Result<(), DirectoryError>,
    ) -> Result<(), DirectoryError> {
        let event = Event::new(actor.clone(), action, name.as_str());
        self.custody
            .audit()
            .append(&event.clone().outcome("started"))?;
        let mut failed = None;
        let res = self
            .custody
            .update_owned(OwnedKind::ConsoleUser, name.as_str(), actor, |cur| {
                let step = || -> Result<SecretBytes, DirectoryError> {
                    let bytes =
                        cur.ok_or_else(|| DirectoryError::NotFound(name.as_str().into()))?;
                    let mut rec = Record::parse(name.as_str(), &bytes)?;
                    f(&mut rec)?;
                    Ok(rec.bytes()?)
                };
                step().map_err(|e| {
                    let shown = CustodyError::Invalid(e.to_string());
                    failed = Some(e);
                    shown
                })
            });
        if let Err(e) = res {
            let e = failed.unwrap_or(DirectoryError::Custody(e));
            self.custody
                .audit()
                .append(&event.outcome("failed").detail("reason", e.to_string()))?;
            return Err(e);
        }
        self.custody.audit().append(&event)?;
        Ok(())
    }

    /// A new one-time password and TOTP enrolment for `name`, ending any lock.
    pub fn reset(&self, name: &UserName, actor: &Actor) -> Result<Enrolment, DirectoryError> {
        let password = one_time_password();
        let hash = StoredPassword::hash(&password)?;
        let totp = TotpSecret::generate();
        self.change(name, "console.user.reset", actor, |rec| {
            if rec.disabled_at.is_some() {
                return Err(DirectoryError::Disabled(rec.name.clone()));
            }
            rec.password = hash.as_phc().to_string();
            rec.totp = hex::encode(totp.expose());
            rec.must_change = true;
            rec.reset_at = Some(Utc::now());
            Ok(())
        })?;
        lock(&self.failures).remove(name.as_str());
        // A new secret: steps used with the old one say nothing about the new one's codes.
        self.last_step
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(name.as_str());
        Ok(Enrolment {
            name: name.as_str().to_string(),
            password,
            otpauth: totp.otpauth_uri(ISSUER, name.as_str()),
        })
    }

    /// Disables `name`: no sign-in, and their sessions end at their next request.
    pub fn disable(&self, name: &UserName, actor: &Actor) -> Result<(), DirectoryError> {
        self.change(name, "console.user.disable", actor, |rec| {
            rec.disabled_at.get_or_insert_with(Utc::now);
            Ok(())
        })
    }

    /// Replaces the password of `name` (signed in as them) with `new`.
    pub fn set_password(&self, name: &UserName, new: &SecretString) -> Result<(), DirectoryError> {
        let n = new.expose().chars().count();
        if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&n) {
            return Err(DirectoryError::Password(format!(
                "新密码须为 {MIN_PASSWORD}–{MAX_PASSWORD} 个字符（现为 {n} 个）"
            )));
        }
        let hash = StoredPassword::hash(new)?;
        let actor = Actor::user(name.as_str());
        self.change(name, "console.user.password", &actor, |rec| {
            if rec.password()?.verify(new) {
                return Err(DirectoryError::Password("新密码不能与原密码相同".into()));
            }
            rec.password = hash.as_phc().to_string();
            rec.must_change = false;
            Ok(())
        })
    }

    /// The grant of `name` now for a session signed in at `since`: `None` if they are gone,
    /// disabled, or reset since (a reset answers a lost phone or a leaked password, so it ends
    /// every session). Sessions check it whenever the keystore changed, so either takes effect
    /// at their next request.
    pub fn current(
        &self,
        name: &UserName,
        since: DateTime<Utc>,
    ) -> Result<Option<SignedIn>, DirectoryError> {
        Ok(match self.record(name.as_str())? {
            Some(r) if r.disabled_at.is_none() && r.reset_at.is_none_or(|t| t < since) => {
                Some(SignedIn {
                    name: name.clone(),
                    grant: r.grant()?,
                    must_change: r.must_change,
                })
            }
            _ => None,
        })
    }

    /// Checks a sign-in at `now` (audited `console.login`, with the reason of a refusal).
    pub fn sign_in(
        &self,
        name: &str,
        password: &SecretString,
        code: &str,
        now: DateTime<Utc>,
        peer: &str,
    ) -> Result<SignedIn, SignInError> {
        let audit = |outcome: &str, reason: &str| {
            self.custody
                .audit()
                .append(
                    &Event::new(Actor::user(name), "console.login", name)
                        .outcome(outcome)
                        .detail("reason", reason)
                        .detail("peer", peer),
                )
                .map_err(|_| SignInError::Unavailable)
        };
        // A name that could never exist is refused without touching the store, but only after
        // the same work as a real check.
        let Ok(user) = UserName::parse(name) else {
            self.decoy.verify(password);
            audit("failed", "name")?;
            return Err(SignInError::Refused);
        };
        let locked = lock(&self.failures)
            .get(name)
            .filter(|f| f.locked(now))
            .and_then(|f| f.locked_until);
        if let Some(until) = locked {
            audit("denied", "locked")?;
            return Err(SignInError::Locked(shown_time(until)));
        }
        let rec = match self.record(name) {
            Ok(r) => r,
            Err(DirectoryError::Custody(CustodyError::Sealed)) => {
                audit("failed", "sealed")?;
                return Err(SignInError::Unavailable);
            }
            Err(_) => {
                audit("failed", "damaged")?;
                return Err(SignInError::Unavailable);
            }
        };
        let checked = match rec {
            None => {
                self.decoy.verify(password);
                Err("unknown")
            }
            Some(r) => {
                let pw_ok = r.password().is_ok_and(|p| p.verify(password));
                let unix = u64::try_from(now.timestamp()).unwrap_or(0);
                let step = r.totp().ok().and_then(|t| t.verify(code, unix));
                let last = self
                    .last_step
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .get(name)
                    .copied();
                match (pw_ok, step) {
                    (false, _) => Err("password"),
                    (true, None) => Err("totp"),
                    (true, Some(s)) if last.is_some_and(|l| s <= l) => Err("totp_reused"),
                    (true, Some(_)) if r.disabled_at.is_some() => Err("disabled"),
                    (true, Some(s)) => Ok((s, r)),
                }
            }
        };
        match checked {
            Ok((step, r)) => {
                let grant = r.grant().map_err(|_| SignInError::Unavailable)?;
                self.last_step
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(name.to_string(), step);
                lock(&self.failures).remove(name);
                audit("ok", "")?;
                Ok(SignedIn {
                    name: user,
                    grant,
                    must_change: r.must_change,
                })
            }
            Err(reason) => {
                // Unknown names are counted too, so they lock as real ones do; the map is pruned
                // of windows that have passed when it grows large.
                let just_locked = {
                    let mut f = lock(&self.failures);
                    if f.len() > MAX_TRACKED {
                        f.retain(|_, v| {
                            v.locked(now) || v.since.is_some_and(|s| now - s < FAILURE_WINDOW)
                        });
                    }
                    f.entry(name.to_string()).or_default().fail(now)
                };
                audit("failed", reason)?;
                if just_locked {
                    audit("denied", "locked_now")?;
                }
                Err(SignInError::Refused)
            }
        }
    }
}

/// Names with failures held before passed windows are pruned.
const MAX_TRACKED: usize = 10_000;

/// A time as the console shows it: China Standard Time, to the minute.
pub fn shown_time(t: DateTime<Utc>) -> String {
    crate::supervision::leads::cst(t)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditLog, Fsync};
    use crate::keys::secret::Passphrase;

    fn directory() -> (tempfile::TempDir, Arc<Custody>, Directory) {
        let dir = tempfile::tempdir().unwrap();
        let audit = AuditLog::open(&dir.path().join("audit"), "test/audit", Fsync::Always).unwrap();
        let c = Arc::new(Custody::new(&dir.path().join("keystore.json"), audit));
        c.unlock(
            &Passphrase::new("a passphrase for tests".into()),
            &Actor::admin("t"),
        )
        .unwrap();
        let d = Directory::new(c.clone()).unwrap();
        (dir, c, d)
    }

    /// The TOTP secret kept for `name`, as the authenticator app holds it.
    fn totp(c: &Custody, name: &str) -> TotpSecret {
        let bytes = c.owned(OwnedKind::ConsoleUser, name).unwrap().unwrap();
        Record::parse(name, &bytes).unwrap().totp().unwrap()
    }

    fn actions(c: &Custody) -> Vec<(String, String, String)> {
        c.audit()
            .tail(1000)
            .unwrap()
            .into_iter()
            .map(|e| (e.action.clone(), e.target.clone(), e.outcome.clone()))
            .collect()
    }

    #[test]
    fn a_user_signs_in_with_the_one_time_password_and_a_code_then_must_choose_a_password() {
        let (_d, c, dir) = directory();
        let admin = Actor::admin("root");
        let name = UserName::parse("li.analyst").unwrap();
        let grant = Grant::new("analyst", Some("jcy-1"), None).unwrap();
        let e = dir.add(&name, &grant, &admin).unwrap();
        assert_eq!(e.password.expose().len(), OTP_LEN);
        assert!(
            e.otpauth
                .expose()
                .starts_with("otpauth://totp/xianjie:li.analyst?secret=")
        );
        assert!(matches!(
            dir.add(&name, &Grant::Admin, &admin),
            Err(DirectoryError::Exists(_))
        ));

        let now: DateTime<Utc> = Utc::now();
        let unix = u64::try_from(now.timestamp()).unwrap();
        let code = totp(&c, "li.analyst").code_at(unix);
        let s = dir
            .sign_in("li.analyst", &e.password, &code, now, "127.0.0.1")
            .unwrap();
        assert_eq!((s.grant, s.must_change), (grant.clone(), true));
        // The same code is good once.
        assert_eq!(
            dir.sign_in("li.analyst", &e.password, &code, now, "127.0.0.1"),
            Err(SignInError::Refused)
        );
        // A wrong password with a fresh code, a right password with a wrong code: refused alike.
        let later = now + chrono::Duration::seconds(30);
        let next = totp(&c, "li.analyst").code_at(unix + 30);
        let wrong = SecretString::new("not the password".into());
        assert_eq!(
            dir.sign_in("li.analyst", &wrong, &next, later, "p"),
            Err(SignInError::Refused)
        );
        let bad_code = if next == "000000" { "111111" } else { "000000" };
        assert_eq!(
            dir.sign_in("li.analyst", &e.password, bad_code, later, "p"),
            Err(SignInError::Refused)
        );

        // Choosing a password: too short, the same, then a good one.
        assert!(matches!(
            dir.set_password(&name, &SecretString::new("short".into())),
            Err(DirectoryError::Password(_))
        ));
        assert!(matches!(
            dir.set_password(&name, &e.password),
            Err(DirectoryError::Password(_))
        ));
        let chosen = SecretString::new("正确的马电池订书钉".repeat(2));
        dir.set_password(&name, &chosen).unwrap();
        let s = dir
            .sign_in("li.analyst", &chosen, &next, later, "p")
            .unwrap();
        assert!(!s.must_change);
        assert_eq!(
            dir.sign_in(
                "li.analyst",
                &e.password,
                &totp(&c, "li.analyst").code_at(unix + 60),
                later + chrono::Duration::seconds(30),
                "p"
            ),
            Err(SignInError::Refused),
            "the one-time password no longer works"
        );

        let log = actions(&c);
        for want in [
            ("console.user.add", "li.analyst", "started"),
            ("console.user.add", "li.analyst", "ok"),
            ("console.user.add", "li.analyst", "failed"),
            ("console.login", "li.analyst", "ok"),
            ("console.login", "li.analyst", "failed"),
            ("console.user.password", "li.analyst", "ok"),
        ] {
            let want = (want.0.to_string(), want.1.to_string(), want.2.to_string());
            assert!(log.contains(&want), "{want:?} in {log:?}");
        }
        // Neither secret is in the audit log.
        let text = std::fs::read_dir(c.audit().dir())
            .unwrap()
            .map(|f| std::fs::read(f.unwrap().path()).unwrap_or_default())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .collect::<String>();
        assert!(!text.contains(e.password.expose()));
        assert!(!text.contains(chosen.expose()));
    }

    #[test]
    fn five_failures_lock_even_the_right_password_until_reset_and_disable_ends_sign_in() {
        let (_d, c, dir) = directory();
        let admin = Actor::admin("root");
        let name = UserName::parse("wang").unwrap();
        let e = dir.add(&name, &Grant::Admin, &admin).unwrap();
        let now = Utc::now();
        let wrong = SecretString::new("wrong password!".into());
        for _ in 0..5 {
            assert_eq!(
                dir.sign_in("wang", &wrong, "123456", now, "p"),
                Err(SignInError::Refused)
            );
        }
        let unix = u64::try_from(now.timestamp()).unwrap();
        let code = totp(&c, "wang").code_at(unix);
        assert!(matches!(
            dir.sign_in("wang", &e.password, &code, now, "p"),
            Err(SignInError::Locked(_))
        ));
        let listed = dir.list().unwrap();
        assert!(listed[0].locked_until.is_some(), "{listed:?}");

        // A reset ends the lock, with a new password and a new TOTP secret.
        let r = dir.reset(&name, &admin).unwrap();
        assert_ne!(r.password.expose(), e.password.expose());
        assert_ne!(r.otpauth.expose(), e.otpauth.expose());
        let code = totp(&c, "wang").code_at(unix);
        assert!(dir.sign_in("wang", &e.password, &code, now, "p").is_err());
        let s = dir.sign_in("wang", &r.password, &code, now, "p").unwrap();
        assert!(s.must_change);
        // A session signed in after the reset goes on; one signed in before it ends.
        assert!(dir.current(&name, Utc::now()).unwrap().is_some());
        assert_eq!(
            dir.current(&name, now - chrono::Duration::hours(1))
                .unwrap(),
            None
        );

        dir.disable(&name, &admin).unwrap();
        assert_eq!(dir.current(&name, Utc::now()).unwrap(), None);
        let code = totp(&c, "wang").code_at(unix + 30);
        assert_eq!(
            dir.sign_in(
                "wang",
                &r.password,
                &code,
                now + chrono::Duration::seconds(30),
                "p"
            ),
            Err(SignInError::Refused)
        );
        assert!(matches!(
            dir.reset(&name, &admin),
            Err(DirectoryError::Disabled(_))
        ));
        assert!(matches!(
            dir.disable(&UserName::parse("nobody").unwrap(), &admin),
            Err(DirectoryError::NotFound(_))
        ));
        let log = actions(&c);
        assert!(log.contains(&("console.login".into(), "wang".into(), "denied".into())));
        assert!(log.contains(&("console.user.reset".into(), "wang".into(), "failed".into())));
        // Unknown names are refused as wrong passwords are, and lock too.
        assert_eq!(
            dir.sign_in("<script>", &wrong, "1", now, "p"),
            Err(SignInError::Refused)
        );
        assert_eq!(
            dir.sign_in("nobody", &wrong, "123456", now, "p"),
            Err(SignInError::Refused)
        );
    }

    #[test]
    fn one_time_passwords_use_the_whole_alphabet_and_are_distinct() {
        let seen: std::collections::HashSet<char> = (0..200)
            .flat_map(|_| one_time_password().expose().chars().collect::<Vec<_>>())
            .collect();
        assert_eq!(seen.len(), OTP_ALPHABET.len());
        assert_ne!(one_time_password().expose(), one_time_password().expose());
    }
}
