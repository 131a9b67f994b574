//! Who may sign in to the console and what each sees: a person's name, role and grant, parsed
//! from what `xianjie users add` is given, and the lockout that repeated failed sign-ins earn.
//! - **analyst**: acts through the ports of one linked API client;
//! - **unit**: one enforcement unit's own cases, supervision actions and push deadlines;
//! - **admin**: the district view. Custody (unlock, seal, keys, credentials) stays on the CLI.

use chrono::{DateTime, Duration, Utc};

use crate::model::Uscc;

/// A problem with what a user was to be made of: which part, and what is accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UserError {
    /// A name outside the accepted form.
    #[error("user name {0:?} must be 1–64 characters of A–Z, a–z, 0–9, '-', '_' or '.'")]
    Name(String),
    /// A role other than the three.
    #[error("role {0:?} is not one of analyst, unit, admin")]
    Role(String),
    /// A grant that does not fit the role.
    #[error("{0}")]
    Grant(String),
}

/// A console user's name (the sign-in name; also how the audit log names them).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserName(String);

impl UserName {
    /// `name` if it is 1–64 characters of A–Z, a–z, 0–9, '-', '_' or '.' (as client names).
    pub fn parse(name: &str) -> Result<Self, UserError> {
        if crate::keys::custody::plain_name(name) {
            Ok(Self(name.to_string()))
        } else {
            Err(UserError::Name(name.to_string()))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a user may see and do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// A procuratorate analyst, acting through the ports of this API client.
    Analyst {
        /// The linked client's name.
        client: String,
    },
    /// Staff of one enforcement unit.
    Unit {
        /// The unit.
        unit: Uscc,
    },
    /// The district administrator.
    Admin,
}

impl Grant {
    /// The grant of `role` with the `--client` and `--unit` given: an analyst needs a client
    /// and no unit, a unit user a unit (a valid USCC) and no client, an admin neither.
    pub fn new(role: &str, client: Option<&str>, unit: Option<&str>) -> Result<Self, UserError> {
        let grant = |why: &str| Err(UserError::Grant(why.to_string()));
        match (role, client, unit) {
            ("analyst", Some(c), None) => {
                // A client name has the same form as a user name.
                UserName::parse(c).map_err(|_| {
                    UserError::Grant(format!("--client {c:?} is not a client name"))
                })?;
                Ok(Self::Analyst {
                    client: c.to_string(),
                })
            }
            ("analyst", None, _) => {
                grant("an analyst acts through an API client: give --client CLIENT")
            }
            ("analyst", Some(_), Some(_)) => {
                grant("an analyst sees the ports of their client: --unit does not apply")
            }
            ("unit", None, Some(u)) => Uscc::parse(u)
                .map(|unit| Self::Unit { unit })
                .map_err(|e| UserError::Grant(format!("--unit {u:?}: {e}"))),
            ("unit", _, None) => grant("a unit user belongs to one unit: give --unit USCC"),
            ("unit", Some(_), Some(_)) => {
                grant("a unit user sees their unit's cases: --client does not apply")
            }
            ("admin", None, None) => Ok(Self::Admin),
            ("admin", _, _) => {
                grant("an admin has the district view: --client and --unit do not apply")
            }
            (other, _, _) => Err(UserError::Role(other.to_string())),
        }
    }

    /// The role's name, as `users add --role` takes it.
    pub fn role(&self) -> &'static str {
        match self {
            Self::Analyst { .. } => "analyst",
            Self::Unit { .. } => "unit",
            Self::Admin => "admin",
        }
    }

    /// The role as the console shows it.
    pub fn role_label(&self) -> &'static str {
        match self {
            Self::Analyst { .. } => "检察分析人员",
            Self::Unit { .. } => "执法单位人员",
            Self::Admin => "司法局管理员",
        }
    }
}

/// Failed sign-ins that lock an account, and for how long (OWASP: a few attempts, then a pause
/// long enough to make guessing useless, short enough not to lock a person out for the day).
pub const MAX_FAILURES: u32 = 5;
/// Failures count within this window.
pub const FAILURE_WINDOW: Duration = Duration::minutes(15);
/// How long a lock lasts (an admin's `users reset` ends it sooner).
pub const LOCK: Duration = Duration::minutes(15);

/// A user's recent failed sign-ins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Failures {
    /// Failures in the current window.
    pub count: u32,
    /// When the window began.
    pub since: Option<DateTime<Utc>>,
    /// Locked until then.
    pub locked_until: Option<DateTime<Utc>>,
}

impl Failures {
    /// Whether a sign-in may be tried at `now`. While locked, even a right password fails, so
    /// guessing during a lock learns nothing.
    pub fn locked(&self, now: DateTime<Utc>) -> bool {
        self.locked_until.is_some_and(|t| now < t)
    }

    /// Records a failed sign-in at `now`; returns whether it locked the account.
    pub fn fail(&mut self, now: DateTime<Utc>) -> bool {
        let fresh = self
            .since
            .is_none_or(|s| now - s >= FAILURE_WINDOW || now < s);
        if fresh {
            self.count = 0;
            self.since = Some(now);
        }
        self.count = self.count.saturating_add(1);
        if self.count >= MAX_FAILURES && !self.locked(now) {
            self.locked_until = Some(now + LOCK);
            self.count = 0;
            self.since = None;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USCC: &str = "91320102MA60876NU7";

    #[test]
    fn each_role_takes_exactly_its_grant() {
        assert_eq!(
            Grant::new("analyst", Some("jcy-1"), None),
            Ok(Grant::Analyst {
                client: "jcy-1".into()
            })
        );
        assert_eq!(
            Grant::new("unit", None, Some(USCC)),
            Ok(Grant::Unit {
                unit: Uscc::parse(USCC).unwrap()
            })
        );
        assert_eq!(Grant::new("admin", None, None), Ok(Grant::Admin));
        for (role, client, unit) in [
            ("analyst", None, None),
            ("analyst", Some("jcy-1"), Some(USCC)),
            ("analyst", Some("bad name"), None),
            ("unit", None, None),
            ("unit", Some("jcy-1"), Some(USCC)),
            ("unit", None, Some("91320102MA60876NU8")),
            ("admin", Some("jcy-1"), None),
            ("admin", None, Some(USCC)),
        ] {
            let e = Grant::new(role, client, unit).unwrap_err();
            assert!(
                matches!(e, UserError::Grant(_)),
                "{role} {client:?} {unit:?}: {e}"
            );
        }
        assert_eq!(
            Grant::new("root", None, None),
            Err(UserError::Role("root".into()))
        );
        assert_eq!(Grant::Admin.role(), "admin");
    }

    #[test]
    fn names_are_plain_and_short() {
        assert!(UserName::parse("zhang.san-01_a").is_ok());
        for bad in ["", "张三", "a b", "a/b", "<script>", &"a".repeat(65)] {
            assert!(UserName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn five_failures_within_fifteen_minutes_lock_for_fifteen() {
        let t0: DateTime<Utc> = "2026-12-01T01:00:00Z".parse().unwrap();
        let mut f = Failures::default();
        for i in 0..4 {
            assert!(!f.fail(t0 + Duration::minutes(i)));
            assert!(!f.locked(t0 + Duration::minutes(i)));
        }
        assert!(f.fail(t0 + Duration::minutes(4)));
        assert!(f.locked(t0 + Duration::minutes(18)));
        assert!(!f.locked(t0 + Duration::minutes(19)));

        // Spread out, failures never lock: each window starts over.
        let mut slow = Failures::default();
        for i in 0..20 {
            assert!(!slow.fail(t0 + Duration::minutes(4 * i)), "{i}");
        }
        assert!(!slow.locked(t0 + Duration::minutes(80)));
    }
}
