//! Port grants: which client may read which enforcement unit's cases. A port is closed until an
//! administrator opens it for a client. Every change moves the ports' generation (in `meta`), by
//! which instances sharing a PostgreSQL store learn of it (see `cache.rs`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::cases::json;
use super::{Store, StoreError, db_err, kv};
use crate::model::Uscc;

/// One open port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortGrant {
    /// The unit whose cases it opens.
    pub unit_code: Uscc,
    /// The client it is open to.
    pub client: String,
    /// Who opened it.
    pub opened_by: String,
    /// When.
    pub opened_at: DateTime<Utc>,
    /// Whether the client may also write supervision actions on the unit's cases (scope
    /// `port:<unit>:supervise`).
    #[serde(default)]
    pub supervise: bool,
}

/// The meta entry counting the changes to the ports.
pub(super) const PORTS_GENERATION: &str = "ports_generation";

pub(super) fn key(unit: &Uscc, client: &str) -> Vec<u8> {
    let mut k = unit.as_str().as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(client.as_bytes());
    k
}

impl Store {
    /// Opens `unit`'s port to `client` as `grant` says; returns false if it was already open
    /// with the same rights (a port opened again with `supervise` gains it; opened again
    /// without, it keeps it: only closing takes rights away).
    pub fn port_open(&self, grant: &PortGrant) -> Result<bool, StoreError> {
        let k = key(&grant.unit_code, &grant.client);
        let old = self.port_grant(&grant.unit_code, &grant.client)?;
        if old
            .as_ref()
            .is_some_and(|g| g.supervise || !grant.supervise)
        {
            return Ok(false);
        }
        let value = serde_json::to_vec(grant).map_err(|e| StoreError::Corrupt {
            what: "port grant".into(),
            reason: e.to_string(),
        })?;
        self.write_port(&k, Some(&value))?;
        Ok(true)
    }

    /// Sets (or with `None` removes) one grant and moves the ports' generation, in one
    /// transaction; returns whether a grant was there before.
    fn write_port(&self, k: &[u8], value: Option<&[u8]>) -> Result<bool, StoreError> {
        let existed = kv::transaction("port write", [&self.ports, &self.meta], |[tp, tm]| {
            let existed = tp.get(k)?.is_some();
            match value {
                Some(v) => tp.insert(k, v)?,
                None => tp.remove(k)?,
            }
            let generation = tm
                .get(PORTS_GENERATION)?
                .and_then(|v| serde_json::from_slice::<u64>(&v).ok())
                .unwrap_or(0);
            tm.insert(
                PORTS_GENERATION,
                json("ports generation", &(generation + 1))?,
            )?;
            Ok(existed)
        })?;
        self.ports.flush().map_err(db_err("port flush"))?;
        self.written();
        Ok(existed)
    }

    /// The grant of `unit`'s port to `client`, if it is open.
    pub fn port_grant(&self, unit: &Uscc, client: &str) -> Result<Option<PortGrant>, StoreError> {
        self.ports
            .get(key(unit, client))
            .map_err(db_err("port read"))?
            .map(|v| {
                serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                    what: format!("port {unit}/{client}"),
                    reason: e.to_string(),
                })
            })
            .transpose()
    }

    /// Closes `unit`'s port to `client`; returns false if it was not open.
    pub fn port_close(&self, unit: &Uscc, client: &str) -> Result<bool, StoreError> {
        self.write_port(&key(unit, client), None)
    }

    /// Whether `unit`'s port is open to `client`.
    pub fn port_is_open(&self, unit: &Uscc, client: &str) -> Result<bool, StoreError> {
        match self.cached_ports()? {
            Some(p) => Ok(p.open.contains(&key(unit, client))),
            None => self
                .ports
                .contains_key(key(unit, client))
                .map_err(db_err("port read")),
        }
    }

    /// Every open port, by unit then client.
    pub fn ports(&self) -> Result<Vec<PortGrant>, StoreError> {
        match self.cached_ports()? {
            Some(p) => Ok(p.grants.clone()),
            None => self.read_ports(),
        }
    }

    /// Every open port, read from the tree.
    pub(super) fn read_ports(&self) -> Result<Vec<PortGrant>, StoreError> {
        self.ports
            .iter()
            .map(|kv| {
                let (k, v) = kv.map_err(db_err("port scan"))?;
                serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                    what: format!("port {}", String::from_utf8_lossy(&k)),
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    /// The units open to `client` with the right to supervise.
    pub fn supervised_ports_of(&self, client: &str) -> Result<Vec<Uscc>, StoreError> {
        Ok(self
            .ports()?
            .into_iter()
            .filter(|g| g.client == client && g.supervise)
            .map(|g| g.unit_code)
            .collect())
    }

    /// The units open to `client`.
    pub fn ports_of(&self, client: &str) -> Result<Vec<Uscc>, StoreError> {
        Ok(self
            .ports()?
            .into_iter()
            .filter(|g| g.client == client)
            .map(|g| g.unit_code)
            .collect())
    }
}
