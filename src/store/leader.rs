//! Leadership among gateway instances sharing one database: exactly one instance, the leader, runs
//! the scheduled work (inbox scans, push cycles, quarter jobs, leads refreshes, checkpoint
//! signing); every instance serves the port API and the console.
//!
//! On PostgreSQL the leader is the instance holding a session-level advisory lock on a connection
//! of its own (`application_name` = `xianjie:INSTANCE`, so every instance can see who holds it in
//! `pg_locks`). The server releases the lock the moment that session ends: a killed leader's
//! kernel closes its socket, and a leader cut off from the network is dropped by the server's
//! TCP keepalives (set on the session: 5 s idle, then 3 probes 2 s apart). Followers try to take
//! the lock every [`CAMPAIGN`]; a leader checks its session every [`CAMPAIGN`] and steps down at
//! once when the check fails or takes longer than [`STEP_DOWN`], well before the server lets
//! another instance take over. On sled there is one instance, always the leader.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio_postgres::Client;

use super::postgres::PgSettings;

/// How often a follower tries to lead, and a leader checks its session.
pub const CAMPAIGN: Duration = Duration::from_secs(2);
/// A leader whose session check takes longer than this steps down.
pub const STEP_DOWN: Duration = Duration::from_secs(3);
/// The advisory lock key leadership holds ("xjlead" in ASCII).
const LEADER_LOCK: i64 = 0x786a_6c65_6164;

/// This instance's view of leadership. Cheap to clone; read on every scheduled job.
#[derive(Clone)]
pub struct Leadership(Arc<Inner>);

struct Inner {
    instance: String,
    leading: AtomicBool,
    /// The instance that led at the last look (`None`: nobody, or not known).
    leader: Mutex<Option<String>>,
    settings: Option<PgSettings>,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership")
            .field("instance", &self.0.instance)
            .field("leading", &self.is_leader())
            .finish_non_exhaustive()
    }
}

impl Leadership {
    /// The only instance (sled): always the leader.
    pub fn alone(instance: &str) -> Self {
        Self(Arc::new(Inner {
            instance: instance.to_string(),
            leading: AtomicBool::new(true),
            leader: Mutex::new(Some(instance.to_string())),
            settings: None,
        }))
    }

    /// One of several instances on the database `settings` names: a follower until
    /// [`Leadership::campaign`] takes the lock.
    pub fn shared(instance: &str, settings: PgSettings) -> Self {
        Self(Arc::new(Inner {
            instance: instance.to_string(),
            leading: AtomicBool::new(false),
            leader: Mutex::new(None),
            settings: Some(settings),
        }))
    }

    /// A follower that never campaigns (tests of what followers do).
    #[cfg(test)]
    pub(crate) fn follower(instance: &str) -> Self {
        Self(Arc::new(Inner {
            instance: instance.to_string(),
            leading: AtomicBool::new(false),
            leader: Mutex::new(None),
            settings: None,
        }))
    }

    /// This instance's name.
    pub fn instance(&self) -> &str {
        &self.0.instance
    }

    /// Whether this instance leads now.
    pub fn is_leader(&self) -> bool {
        self.0.leading.load(Ordering::SeqCst)
    }

    /// The instance that led at the last look.
    pub fn leader(&self) -> Option<String> {
        self.0
            .leader
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, leading: bool, leader: Option<String>) {
        let was = self.0.leading.swap(leading, Ordering::SeqCst);
        if was != leading {
            if leading {
                tracing::info!(instance = %self.0.instance, "this instance now leads: it runs the scheduled work");
            } else {
                tracing::warn!(instance = %self.0.instance, "this instance no longer leads: its scheduled work stops");
            }
        }
        *self.0.leader.lock().unwrap_or_else(PoisonError::into_inner) = leader;
    }

    /// Campaigns until `resign` fires: takes the lock when free, holds it while the session
    /// lives, and keeps [`Leadership::leader`] current. A stopping gateway resigns only after
    /// its last audit entry and checkpoint, so that it leads until then. Returns at once on
    /// sled.
    pub async fn campaign(self, mut resign: tokio::sync::oneshot::Receiver<()>) {
        let Some(settings) = self.0.settings.clone() else {
            return;
        };
        let mut session: Option<Client> = None;
        // Whether `session` holds the lock.
        let mut holding = false;
        let mut tick = tokio::time::interval(CAMPAIGN);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = &mut resign => break,
            }
            if session.as_ref().is_none_or(Client::is_closed) {
                holding = false;
                session = match self.connect(&settings).await {
                    Ok(c) => Some(c),
                    Err(e) => {
                        self.set(false, None);
                        tracing::warn!(error = %e, "cannot reach the database to campaign for leadership");
                        continue;
                    }
                };
            }
            let Some(client) = &session else { continue };
            match tokio::time::timeout(STEP_DOWN, self.look(client, holding)).await {
                Ok(Ok((leading, leader))) => {
                    holding = leading;
                    self.set(leading, leader);
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "leadership session failed");
                    self.set(false, None);
                    session = None;
                }
                Err(_) => {
                    tracing::warn!("leadership session did not answer in time");
                    self.set(false, None);
                    session = None;
                }
            }
        }
        // Stopping: the lock goes with the session, so another instance takes over at once.
        self.set(false, None);
        drop(session);
    }

    /// One look: try to take the lock unless this session holds it already (advisory locks
    /// count their holds: a second take would need a second release), and read who holds it.
    async fn look(
        &self,
        client: &Client,
        holding: bool,
    ) -> Result<(bool, Option<String>), tokio_postgres::Error> {
        let leading = holding
            || client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&LEADER_LOCK])
                .await?
                .get::<_, bool>(0);
        let row = client
            .query_opt(
                "SELECT a.application_name FROM pg_locks l \
                 JOIN pg_stat_activity a ON a.pid = l.pid \
                 WHERE l.locktype = 'advisory' AND l.granted \
                 AND l.classid = ($1::bigint >> 32)::oid \
                 AND l.objid = ($1::bigint & 4294967295)::oid LIMIT 1",
                &[&LEADER_LOCK],
            )
            .await?;
        let leader = row
            .and_then(|r| r.get::<_, Option<String>>(0))
            .map(|name| name.strip_prefix("xianjie:").unwrap_or(&name).to_string());
        Ok((leading, leader))
    }

    async fn connect(&self, settings: &PgSettings) -> Result<Client, tokio_postgres::Error> {
        let mut settings = settings.clone();
        settings
            .config
            .application_name(format!("xianjie:{}", self.0.instance));
        let client = super::postgres::connect(settings).await?;
        // The server drops this session soon after the instance goes silent, releasing the lock.
        client
            .batch_execute(
                "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; \
                 SET tcp_keepalives_count = 3",
            )
            .await?;
        Ok(client)
    }
}
