//! How a console sign-in is checked: a password kept only as an Argon2id hash (a PHC string),
//! and a second factor by RFC 6238 TOTP (HMAC-SHA1, 6 digits, 30-second steps, what every
//! authenticator app speaks). The primitives are the `argon2` and `totp-rs` crates; this module
//! adds the project's rules: secrets wrapped and redacted, a code's step returned so that a code
//! is never accepted twice, and an enrolment URI built without a URL library.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use subtle::ConstantTimeEq;

use crate::api::query::percent_encode;
use zeroize::Zeroizing;

use crate::keys::secret::{SecretBytes, SecretString};

/// Errors of this module. None carries a password, a secret or a code.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A stored password hash that is not a PHC string of ours.
    #[error("stored password hash is not a valid Argon2id PHC string: {0}")]
    BadHash(String),
    /// Hashing failed (parameters refused by the library).
    #[error("password hashing failed: {0}")]
    Hashing(String),
    /// A TOTP secret the library refuses (shorter than 128 bits).
    #[error("TOTP secret refused: {0}")]
    BadSecret(String),
}

/// Argon2id cost for console passwords: OWASP's first recommended setting (19 MiB, 2 passes,
/// one lane). A sign-in costs tens of milliseconds; throttling bounds how many are tried.
fn hasher() -> Result<Argon2<'static>, AuthError> {
    let params =
        Params::new(19 * 1024, 2, 1, None).map_err(|e| AuthError::Hashing(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// The most a stored hash may ask of a verification (memory KiB, passes, lanes).
const MAX_M_KIB: u32 = 256 * 1024;
const MAX_T: u32 = 10;
const MAX_P: u32 = 4;

/// A password as stored: an Argon2id PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`), which
/// names its own parameters, so raising them later leaves earlier hashes verifiable.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredPassword(String);

impl std::fmt::Debug for StoredPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A hash is not the password, but it is what an offline guesser needs.
        f.write_str("StoredPassword(<redacted>)")
    }
}

impl StoredPassword {
    /// Hashes `password` with a fresh random salt.
    pub fn hash(password: &SecretString) -> Result<Self, AuthError> {
        let salt = SecretBytes::random(16);
        let salt =
            SaltString::encode_b64(salt.expose()).map_err(|e| AuthError::Hashing(e.to_string()))?;
        let phc = hasher()?
            .hash_password(password.expose().as_bytes(), &salt)
            .map_err(|e| AuthError::Hashing(e.to_string()))?;
        Ok(Self(phc.to_string()))
    }

    /// A stored PHC string, checked to be an Argon2id hash before it is kept.
    pub fn parse(phc: &str) -> Result<Self, AuthError> {
        let parsed = PasswordHash::new(phc).map_err(|e| AuthError::BadHash(e.to_string()))?;
        if parsed.algorithm != Algorithm::Argon2id.ident() || parsed.hash.is_none() {
            return Err(AuthError::BadHash(
                "not an Argon2id hash with its output".into(),
            ));
        }
        // Verifying costs what the string says: a hash altered in the store must not make one
        // sign-in take gigabytes or minutes.
        let params = Params::try_from(&parsed).map_err(|e| AuthError::BadHash(e.to_string()))?;
        if params.m_cost() > MAX_M_KIB || params.t_cost() > MAX_T || params.p_cost() > MAX_P {
            return Err(AuthError::BadHash(format!(
                "its cost exceeds m={MAX_M_KIB} KiB, t={MAX_T}, p={MAX_P}"
            )));
        }
        Ok(Self(phc.to_string()))
    }

    /// The PHC string, for the store.
    pub fn as_phc(&self) -> &str {
        &self.0
    }

    /// Whether `password` is the one hashed (compared in constant time by the library).
    pub fn verify(&self, password: &SecretString) -> bool {
        PasswordHash::new(&self.0).is_ok_and(|h| {
            Argon2::default()
                .verify_password(password.expose().as_bytes(), &h)
                .is_ok()
        })
    }
}

/// Digits of a code, and seconds per step: what authenticator apps assume by default.
const DIGITS: usize = 6;
const STEP: u64 = 30;
/// Steps either side of now that are accepted (a phone's clock a little off).
const SKEW: u8 = 1;
/// Bytes of a new secret (160 bits, as RFC 4226 recommends for HMAC-SHA1).
const SECRET_LEN: usize = 20;

/// A person's TOTP secret: redacted in `Debug`, zeroed on drop.
#[derive(PartialEq, Eq, Debug)]
pub struct TotpSecret(SecretBytes);

impl TotpSecret {
    /// A new random secret.
    pub fn generate() -> Self {
        Self(SecretBytes::random(SECRET_LEN))
    }

    /// A stored secret; refused when shorter than 128 bits.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, AuthError> {
        let s = Self(SecretBytes::new(bytes));
        s.totp()?;
        Ok(s)
    }

    /// The secret's bytes, for the keystore.
    pub fn expose(&self) -> &[u8] {
        self.0.expose()
    }

    fn totp(&self) -> Result<totp_rs::TOTP, AuthError> {
        totp_rs::TOTP::new(
            totp_rs::Algorithm::SHA1,
            DIGITS,
            SKEW,
            STEP,
            self.0.expose().to_vec(),
        )
        .map_err(|e| AuthError::BadSecret(e.to_string()))
    }

    /// The step (`unix time / 30`) whose code `code` is, within one step of `unix_time`, or
    /// `None`. The caller refuses a step at or before the last one accepted for the person, so
    /// a code seen over a shoulder cannot be used again.
    pub fn verify(&self, code: &str, unix_time: u64) -> Option<u64> {
        if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let totp = self.totp().ok()?;
        let now = unix_time / STEP;
        // Oldest first, so that of two matching steps the earlier is returned.
        (now.saturating_sub(u64::from(SKEW))..=now.saturating_add(u64::from(SKEW))).find(|step| {
            let expected = Zeroizing::new(totp.generate(step.saturating_mul(STEP)));
            // Equal lengths (both six digits); compared in constant time.
            bool::from(expected.as_bytes().ct_eq(code.as_bytes()))
        })
    }

    /// The code for `unix_time` (what a person's authenticator shows; for tests).
    #[cfg(test)]
    pub(crate) fn code_at(&self, unix_time: u64) -> String {
        self.totp()
            .map(|t| t.generate(unix_time))
            .unwrap_or_default()
    }

    /// The enrolment URI an authenticator app scans (Key Uri Format):
    /// `otpauth://totp/ISSUER:ACCOUNT?secret=…&issuer=ISSUER&algorithm=SHA1&digits=6&period=30`.
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> SecretString {
        let secret = base32_no_padding(self.0.expose());
        SecretString::new(format!(
            "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP}",
            percent_encode(issuer),
            percent_encode(account),
            secret.as_str(),
            percent_encode(issuer),
        ))
    }
}

/// RFC 4648 base32 without padding, as the Key Uri Format wants it (the library's encoding).
fn base32_no_padding(bytes: &[u8]) -> Zeroizing<String> {
    let totp =
        totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, DIGITS, SKEW, STEP, bytes.to_vec());
    Zeroizing::new(totp.get_secret_base32())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(s: &str) -> SecretString {
        SecretString::new(s.to_string())
    }

    #[test]
    fn a_password_verifies_only_itself_and_its_hash_never_shows_it() {
        let stored = StoredPassword::hash(&pw("正确的马 battery staple")).unwrap();
        assert!(stored.verify(&pw("正确的马 battery staple")));
        assert!(!stored.verify(&pw("正确的马 battery stapl")));
        assert!(!stored.verify(&pw("")));
        assert!(
            stored
                .as_phc()
                .starts_with("$argon2id$v=19$m=19456,t=2,p=1$")
        );
        assert!(!stored.as_phc().contains("battery"));
        assert_eq!(format!("{stored:?}"), "StoredPassword(<redacted>)");
        // Two hashes of one password differ (fresh salts) and both verify.
        let again = StoredPassword::hash(&pw("正确的马 battery staple")).unwrap();
        assert_ne!(stored.as_phc(), again.as_phc());
        let parsed = StoredPassword::parse(again.as_phc()).unwrap();
        assert!(parsed.verify(&pw("正确的马 battery staple")));
    }

    #[test]
    fn a_stored_hash_that_is_not_ours_is_an_error_not_a_panic() {
        for bad in [
            "",
            "$",
            "plain text",
            "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ",
            "$argon2id$v=19$m=99999999999999,t=2,p=1$c2FsdHNhbHQ$aGFzaA",
            // Well formed, but four gigabytes and a thousand passes to check.
            "$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=19456,t=1000,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        ] {
            assert!(StoredPassword::parse(bad).is_err(), "{bad}");
        }
    }

    /// RFC 6238 appendix B, SHA-1, the last six digits of its eight.
    #[test]
    fn codes_follow_rfc_6238_and_are_accepted_one_step_either_side() {
        let s = TotpSecret::from_bytes(b"12345678901234567890".to_vec()).unwrap();
        for (t, code) in [
            (59u64, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
            (20_000_000_000, "353130"),
        ] {
            assert_eq!(s.verify(code, t), Some(t / 30), "{t}");
            // A step either side is accepted as that step; two away is not.
            assert_eq!(s.verify(code, t + 30), Some(t / 30), "{t}");
            assert_eq!(s.verify(code, t.saturating_sub(30)), Some(t / 30), "{t}");
            assert_eq!(s.verify(code, t + 90), None, "{t}");
        }
        for bad in ["", "28708", "2870822", "28708a", " 87082", "２８７０８２"] {
            assert_eq!(s.verify(bad, 59), None, "{bad:?}");
        }
        assert_eq!(s.verify("287083", 59), None);
    }

    #[test]
    fn a_secret_is_long_enough_redacted_and_enrolled_by_uri() {
        assert!(TotpSecret::from_bytes(vec![7; 15]).is_err());
        let s = TotpSecret::generate();
        assert_eq!(s.expose().len(), 20);
        assert_ne!(s, TotpSecret::generate());
        let shown = format!("{s:?}");
        assert!(
            !shown.contains(&base32_no_padding(s.expose()).to_string()),
            "{shown}"
        );
        let fixed = TotpSecret::from_bytes(b"12345678901234567890".to_vec()).unwrap();
        let uri = fixed.otpauth_uri("衔接 xianjie", "张三@district");
        assert_eq!(
            uri.expose(),
            "otpauth://totp/%E8%A1%94%E6%8E%A5%20xianjie:%E5%BC%A0%E4%B8%89%40district?\
             secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=%E8%A1%94%E6%8E%A5%20xianjie&\
             algorithm=SHA1&digits=6&period=30"
        );
    }
}
