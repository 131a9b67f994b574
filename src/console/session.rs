//! A console session as the browser holds it: an unguessable id in a `__Host-` cookie
//! (`Secure`, `HttpOnly`, `SameSite=Strict`, path `/`), ended after 30 minutes idle or 8 hours in
//! all, and a CSRF token per session that every form carries. The id is a secret: redacted in
//! `Debug`; a store keeps only its SHA-256. The CSRF token is an HMAC of the id under a key the
//! gateway holds, so it needs no storage and cannot be made without the key.

use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::keys::secret::SecretBytes;

/// The cookie's name. `__Host-` makes the browser refuse it unless it is `Secure`, has path `/`
/// and names no domain: a sibling host cannot set or shadow it.
pub const COOKIE: &str = "__Host-xianjie";
/// The cookie of the sign-in form: a random value its CSRF token is made from, so the form
/// needs no server state before anyone has signed in.
pub const LOGIN_COOKIE: &str = "__Host-xianjie-login";
/// A session ends after this long without a request.
pub const IDLE: Duration = Duration::minutes(30);
/// And this long after sign-in, however busy.
pub const ABSOLUTE: Duration = Duration::hours(8);
/// Random bytes in an id.
const ID_LEN: usize = 32;
/// The longest `Cookie` header read (browsers send at most a few KiB for one site).
const MAX_COOKIE_HEADER: usize = 8 * 1024;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A session id as the cookie carries it.
#[derive(PartialEq, Eq, Debug)]
pub struct SessionId(SecretBytes);

impl SessionId {
    /// A new random id.
    pub fn generate() -> Self {
        Self(SecretBytes::random(ID_LEN))
    }

    /// What a store keys the session by: the id's SHA-256, so a copy of the store signs no one
    /// in.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.0.expose()).into()
    }

    /// The `Set-Cookie` value that hands this id to the browser.
    pub fn set_cookie(&self) -> String {
        self.set_cookie_as(COOKIE)
    }

    /// The `Set-Cookie` value that hands this id to the browser as cookie `name`.
    pub fn set_cookie_as(&self, name: &str) -> String {
        format!(
            "{name}={}; Path=/; Secure; HttpOnly; SameSite=Strict",
            B64.encode(self.0.expose())
        )
    }

    /// The session's id from a request's `Cookie` header, if it carries one of the right form.
    /// Anything else (too long, malformed, another length) is no session, never an error.
    pub fn from_cookie_header(header: &str) -> Option<Self> {
        Self::from_cookie_header_as(header, COOKIE)
    }

    /// [`SessionId::from_cookie_header`] for cookie `name`.
    pub fn from_cookie_header_as(header: &str, name: &str) -> Option<Self> {
        if header.len() > MAX_COOKIE_HEADER {
            return None;
        }
        let value = header
            .split(';')
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)?;
        // 32 bytes are 43 characters unpadded; decode nothing longer.
        if value.len() != 43 {
            return None;
        }
        let bytes = B64.decode(value).ok()?;
        (bytes.len() == ID_LEN).then(|| Self(SecretBytes::new(bytes)))
    }

    /// The CSRF token of this session's forms: HMAC-SHA256 of the id under `key`.
    pub fn csrf_token(&self, key: &SecretBytes) -> String {
        // Empty (never accepted) if the MAC could not be made.
        self.csrf_mac(key)
            .map(|m| B64.encode(m))
            .unwrap_or_default()
    }

    /// Whether `presented` is this session's CSRF token (compared in constant time).
    pub fn csrf_ok(&self, key: &SecretBytes, presented: &str) -> bool {
        if presented.len() != 43 {
            return false;
        }
        match (B64.decode(presented), self.csrf_mac(key)) {
            (Ok(p), Some(mac)) => bool::from(p.as_slice().ct_eq(&mac)),
            _ => false,
        }
    }

    fn csrf_mac(&self, key: &SecretBytes) -> Option<[u8; 32]> {
        // HMAC takes a key of any length, so this does not fail; if it did, no token is valid.
        let mut mac = Hmac::<Sha256>::new_from_slice(key.expose()).ok()?;
        mac.update(b"xianjie console csrf\0");
        mac.update(self.0.expose());
        Some(mac.finalize().into_bytes().into())
    }
}

/// The `Set-Cookie` value that ends the session in the browser.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// Whether a session may still be used, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// In use.
    Live,
    /// No request for [`IDLE`].
    Idle,
    /// Older than [`ABSOLUTE`].
    Expired,
}

/// A session's times as the store keeps them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    /// Signed in.
    pub started: DateTime<Utc>,
    /// The last request.
    pub last_seen: DateTime<Utc>,
}

impl Times {
    /// A session signed in at `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            started: now,
            last_seen: now,
        }
    }

    /// Whether the session may serve a request at `now` after `idle` without one (never more
    /// than [`IDLE`]); a clock set back counts as idle time of zero, never as a longer life.
    pub fn liveness(&self, now: DateTime<Utc>, idle: Duration) -> Liveness {
        if now - self.started >= ABSOLUTE {
            Liveness::Expired
        } else if now - self.last_seen >= idle.min(IDLE) {
            Liveness::Idle
        } else {
            Liveness::Live
        }
    }
}

/// A signed-in session as the gateway holds it.
#[derive(Debug, Clone)]
pub struct Held {
    /// Who, with their grant as of `epoch`.
    pub user: super::directory::SignedIn,
    /// Sign-in and last request.
    pub times: Times,
    /// The keystore epoch the grant was read at: when it moves (a user disabled, a client
    /// revoked), the grant is read again.
    pub epoch: u64,
    /// The client certificate (SHA-256) the session was signed in with, when one was shown: the
    /// session then works only over connections that show it again.
    pub certificate: Option<String>,
}

/// Why a session cookie serves no request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gone {
    /// Not a session this gateway holds (never was, signed out, or the gateway restarted).
    Unknown,
    /// Ended by time.
    Ended(Liveness),
}

/// Most sessions held at once; a sign-in beyond it first drops ended sessions, then is refused.
pub const MAX_SESSIONS: usize = 10_000;

/// The sessions of this gateway, in memory by the SHA-256 of their ids: a restart signs
/// everyone out, and nothing on disk can be replayed.
#[derive(Debug)]
pub struct Sessions {
    map: std::sync::Mutex<std::collections::HashMap<[u8; 32], Held>>,
    idle: Duration,
}

impl Sessions {
    /// Sessions that end after `idle` without a request (at most [`IDLE`]).
    pub fn new(idle: Duration) -> Self {
        Self {
            map: std::sync::Mutex::default(),
            idle: idle.min(IDLE),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<[u8; 32], Held>> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Holds `held` under `id`; `false` when [`MAX_SESSIONS`] live sessions are held already.
    pub fn insert(&self, id: &SessionId, held: Held, now: DateTime<Utc>) -> bool {
        let mut m = self.lock();
        if m.len() >= MAX_SESSIONS {
            let idle = self.idle;
            m.retain(|_, h| h.times.liveness(now, idle) == Liveness::Live);
        }
        if m.len() >= MAX_SESSIONS {
            return false;
        }
        m.insert(id.digest(), held);
        true
    }

    /// The session `id` at `now`, its last request moved to `now`; an ended one is dropped.
    pub fn touch(&self, id: &SessionId, now: DateTime<Utc>) -> Result<Held, Gone> {
        let key = id.digest();
        let mut m = self.lock();
        let h = m.get_mut(&key).ok_or(Gone::Unknown)?;
        match h.times.liveness(now, self.idle) {
            Liveness::Live => {
                h.times.last_seen = h.times.last_seen.max(now);
                Ok(h.clone())
            }
            ended => {
                m.remove(&key);
                Err(Gone::Ended(ended))
            }
        }
    }

    /// Replaces the user of session `id` (a grant read again, a password chosen).
    pub fn set_user(&self, id: &SessionId, user: super::directory::SignedIn, epoch: u64) {
        if let Some(h) = self.lock().get_mut(&id.digest()) {
            h.user = user;
            h.epoch = epoch;
        }
    }

    /// Ends session `id`.
    pub fn remove(&self, id: &SessionId) -> Option<Held> {
        self.lock().remove(&id.digest())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn the_cookie_is_host_bound_secure_http_only_strict_and_read_back_exactly() {
        let id = SessionId::generate();
        let set = id.set_cookie();
        assert!(set.starts_with("__Host-xianjie="), "{set}");
        for attr in ["; Path=/", "; Secure", "; HttpOnly", "; SameSite=Strict"] {
            assert!(set.contains(attr), "{set}");
        }
        assert!(!set.contains("Domain"), "{set}");
        let value = set.split(';').next().unwrap();
        // The id's own Debug shows neither its cookie value nor its bytes.
        let shown = format!("{id:?}");
        assert!(!shown.contains(&value[15..]), "{shown}");
        assert!(!shown.contains(&format!("{:?}", id.0.expose())), "{shown}");
        let header = format!("theme=dark; {value}; other=1");
        assert_eq!(SessionId::from_cookie_header(&header), Some(id));
        assert!(clear_cookie().contains("Max-Age=0"));
    }

    #[test]
    fn a_cookie_not_ours_or_not_well_formed_is_no_session() {
        let good = SessionId::generate().set_cookie();
        let value = good.split(';').next().unwrap().split_once('=').unwrap().1;
        for header in [
            String::new(),
            "xianjie=abc".into(),
            format!("__Host-xianjie={}", &value[..42]),
            format!("__Host-xianjie={value}A"),
            format!("__Host-xianjie={}", "!".repeat(43)),
            format!("__Secure-xianjie={value}"),
            format!("{}; __Host-xianjie={value}", "x".repeat(MAX_COOKIE_HEADER)),
            "__Host-xianjie".into(),
            ";;;=;=".into(),
        ] {
            assert_eq!(SessionId::from_cookie_header(&header), None, "{header:.60}");
        }
    }

    #[test]
    fn a_csrf_token_belongs_to_one_session_and_one_key() {
        let key = SecretBytes::random(32);
        let (a, b) = (SessionId::generate(), SessionId::generate());
        let token = a.csrf_token(&key);
        assert!(a.csrf_ok(&key, &token));
        assert!(!b.csrf_ok(&key, &token));
        assert!(!a.csrf_ok(&SecretBytes::random(32), &token));
        assert!(!a.csrf_ok(&key, ""));
        assert!(!a.csrf_ok(&key, &token[..42]));
        let mut flipped = token.clone().into_bytes();
        flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
        assert!(!a.csrf_ok(&key, std::str::from_utf8(&flipped).unwrap()));
    }

    #[test]
    fn a_session_ends_after_thirty_idle_minutes_or_eight_hours() {
        let mut t = Times::new(at("2026-12-01T01:00:00Z"));
        assert_eq!(t.liveness(at("2026-12-01T01:29:59Z"), IDLE), Liveness::Live);
        assert_eq!(t.liveness(at("2026-12-01T01:30:00Z"), IDLE), Liveness::Idle);
        // Busy all day: every request within 30 minutes of the last, still over at 8 hours.
        let mut now = t.started;
        while now < at("2026-12-01T08:59:00Z") {
            now += Duration::minutes(20);
            if t.liveness(now, IDLE) == Liveness::Live {
                t.last_seen = now;
            }
        }
        assert_eq!(t.liveness(at("2026-12-01T08:59:59Z"), IDLE), Liveness::Live);
        assert_eq!(
            t.liveness(at("2026-12-01T09:00:00Z"), IDLE),
            Liveness::Expired
        );
        // A clock set back does not lengthen a session.
        assert_eq!(t.liveness(at("2026-12-01T00:00:00Z"), IDLE), Liveness::Live);
        // A shorter configured idle time ends it sooner; a longer one is held to 30 minutes.
        let t = Times::new(at("2026-12-01T01:00:00Z"));
        let five = Duration::minutes(5);
        assert_eq!(t.liveness(at("2026-12-01T01:05:00Z"), five), Liveness::Idle);
        assert_eq!(
            t.liveness(at("2026-12-01T01:30:00Z"), Duration::hours(2)),
            Liveness::Idle
        );
    }
}
