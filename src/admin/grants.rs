//! Who may read or submit for which unit: opening and closing ports, allowing and denying
//! submissions and report reading. One function changes a grant, audited before and after and
//! checkpointed, for the admin socket and the console alike.

use crate::audit::{Actor, AuditError, AuditLog, Event};
use crate::keys::custody::{Custody, CustodyError};
use crate::model::Uscc;
use crate::store::{Store, StoreError};

/// What a client is granted on a unit.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Reading its cases (`port:<unit>:read`).
    Port,
    /// Submitting its quarterly reports (`submit:<unit>`).
    Submit,
    /// Reading its quarterly reports without its port (ID numbers masked in the detail lines).
    ReadReports,
}

impl Grant {
    /// The store's right for a report grant (ports are kept apart).
    fn report_right(self) -> crate::store::ReportRight {
        match self {
            Grant::ReadReports => crate::store::ReportRight::Read,
            Grant::Port | Grant::Submit => crate::store::ReportRight::Submit,
        }
    }
}

/// Why a grant was not changed.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// Opening for a client that does not exist or is revoked.
    #[error("no active client {0} (add it with `xianjie clients add {0}`)")]
    NoClient(String),
    /// The client list could not be read (a sealed keystore).
    #[error(transparent)]
    Custody(#[from] CustodyError),
    /// Not audited, so not done.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Opens (`open`) or closes `kind` on `unit` for `client`, by `actor`; returns whether anything
/// changed. Audited before (`started`) and after, then a checkpoint is signed.
#[allow(clippy::too_many_arguments)]
pub fn change(
    store: &Store,
    audit: &AuditLog,
    custody: &Custody,
    actor: Actor,
    unit: &Uscc,
    client: &str,
    supervise: bool,
    open: bool,
    kind: Grant,
) -> Result<bool, GrantError> {
    let known = custody.clients()?;
    if open
        && !known
            .iter()
            .any(|c| c.name == client && c.revoked_at.is_none())
    {
        return Err(GrantError::NoClient(client.to_string()));
    }
    let action = match (kind, open) {
        (Grant::Port, true) => "port.open",
        (Grant::Port, false) => "port.close",
        (Grant::Submit, true) => "submit.allow",
        (Grant::Submit, false) => "submit.deny",
        (Grant::ReadReports, true) => "reports.read_allow",
        (Grant::ReadReports, false) => "reports.read_deny",
    };
    let target = format!("{unit}/{client}");
    let mut started = Event::new(actor.clone(), action, &target).outcome("started");
    if supervise {
        started = started.detail("supervise", true);
    }
    audit.append(&started)?;
    let changed = match (kind, open) {
        (Grant::Port, true) => store.port_open(&crate::store::PortGrant {
            unit_code: unit.clone(),
            client: client.to_string(),
            opened_by: actor.id.clone(),
            opened_at: chrono::Utc::now(),
            supervise,
        }),
        (Grant::Port, false) => store.port_close(unit, client),
        (Grant::Submit | Grant::ReadReports, true) => store.report_grant(
            kind.report_right(),
            &crate::store::ReportGrant {
                unit_code: unit.clone(),
                client: client.to_string(),
                granted_by: actor.id.clone(),
                granted_at: chrono::Utc::now(),
            },
        ),
        (Grant::Submit | Grant::ReadReports, false) => {
            store.report_revoke(kind.report_right(), client, unit)
        }
    }?;
    audit.append(&Event::new(actor, action, &target).detail("changed", changed))?;
    audit.checkpoint_now()?;
    Ok(changed)
}
