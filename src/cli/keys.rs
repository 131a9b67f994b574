//! Commands for custody and the audit log: `unlock`, `seal`, `keys`, `credentials`, `clients`,
//! `audit` (all through the admin socket, except the offline `audit verify`).

use std::io::{IsTerminal, Read};
use std::path::Path;

use anyhow::Context;

use super::ops::client;
use super::{
    AuditCommand, Cli, ClientsCommand, CredentialsCommand, KeysCommand, PortsCommand, ProofCommand,
};
use crate::admin::{
    ChangePassphraseRequest, ClientRequest, CredentialRequest, Done, ExportRequest, PortRequest,
    ProofAnswer, RotateRequest, SecretShown, Status, UnlockRequest,
};
use crate::audit::Entry;
use crate::keys::custody::{ClientInfo, CredentialInfo, MIN_PASSPHRASE};
use crate::keys::secret::Passphrase;

/// Which passphrase [`read_passphrase`] asks for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// The keystore's passphrase, to unlock it.
    Current,
    /// The passphrase of a keystore created now.
    Create,
    /// The passphrase a keystore is to be re-encrypted under.
    New,
}

/// Reads a passphrase: from `file`, else at the terminal without echo (twice, and checked for
/// length, when it is chosen now).
pub fn read_passphrase(file: Option<&Path>, ask: Ask) -> anyhow::Result<Passphrase> {
    if let Some(f) = file {
        return Ok(Passphrase::from_file(f)?);
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "no terminal to ask for the passphrase: pass {}",
            if ask == Ask::New {
                "--new-passphrase-file FILE (mode 0600)"
            } else {
                "--passphrase-file FILE (mode 0600) or set XIANJIE_PASSPHRASE_FILE"
            }
        );
    }
    let prompt = match ask {
        Ask::Current => "Keystore passphrase: ",
        Ask::Create => "New keystore passphrase: ",
        Ask::New => "New passphrase (for the new custodian): ",
    };
    let first = Passphrase::new(
        rpassword::prompt_password(prompt)
            .context("cannot read the passphrase from the terminal")?,
    );
    if ask != Ask::Current {
        if first.expose().chars().count() < MIN_PASSPHRASE {
            anyhow::bail!("the passphrase is too short: use at least {MIN_PASSPHRASE} characters");
        }
        let again = Passphrase::new(
            rpassword::prompt_password("Repeat the passphrase: ")
                .context("cannot read the passphrase from the terminal")?,
        );
        if again.expose() != first.expose() {
            anyhow::bail!("the two passphrases differ; nothing was changed");
        }
    }
    Ok(first)
}

/// `xianjie unlock`.
pub async fn unlock(cli: &Cli, file: Option<&Path>) -> anyhow::Result<()> {
    let c = client(cli);
    let status: Status = c.get("/status").await?;
    if !status.sealed {
        println!(
            "already unlocked (keystore version {})",
            status.keystore_version.unwrap_or(0)
        );
        return Ok(());
    }
    let ask = if status.keystore_exists {
        Ask::Current
    } else {
        Ask::Create
    };
    let pass = read_passphrase(file, ask)?;
    let req = UnlockRequest {
        passphrase: pass.expose().to_string(),
    };
    let d: Done = c.post("/unlock", &req).await?;
    drop(req);
    println!(
        "unlocked (keystore version {}){}",
        d.value.unwrap_or_default(),
        if status.keystore_exists {
            ""
        } else {
            " — a new keystore was created: keep the passphrase safe, it cannot be recovered"
        }
    );
    Ok(())
}

/// `xianjie seal`.
pub async fn seal(cli: &Cli) -> anyhow::Result<()> {
    let d: Done = client(cli).post("/seal", &serde_json::json!({})).await?;
    println!("{}", d.message);
    Ok(())
}

/// `xianjie keys rotate jwt`, `xianjie keys change-passphrase`.
pub async fn keys(cli: &Cli, cmd: &KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::ChangePassphrase {
            passphrase_file,
            new_passphrase_file,
        } => {
            let c = client(cli);
            // Said before any passphrase is asked for: the gateway refuses it too.
            let status: Status = c.get("/status").await?;
            if status.sealed {
                anyhow::bail!(
                    "the keystore is sealed: unlock it with the current passphrase first (`xianjie unlock`), then change the passphrase"
                );
            }
            let current = read_passphrase(passphrase_file.as_deref(), Ask::Current)?;
            let new = read_passphrase(new_passphrase_file.as_deref(), Ask::New)?;
            let req = ChangePassphraseRequest {
                current: current.expose().to_string(),
                new: new.expose().to_string(),
            };
            let d: Done = c.post("/keys/passphrase", &req).await?;
            drop(req);
            println!(
                "{} (keystore version {}); keys, clients and credentials are unchanged",
                d.message,
                d.value.unwrap_or_default()
            );
            eprintln!(
                "The old passphrase no longer opens this keystore file (older copies and backups still open with it). Replace the passphrase file of unattended starts (serve --passphrase-file, XIANJIE_PASSPHRASE_FILE) before the next restart."
            );
        }
        KeysCommand::Rotate { .. } => {
            let d: Done = client(cli)
                .post("/keys/rotate/jwt", &serde_json::json!({}))
                .await?;
            println!(
                "{}: {} (the previous key verifies until its tokens expire)",
                d.message,
                d.value.unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// `xianjie credentials …`.
pub async fn credentials(cli: &Cli, cmd: &CredentialsCommand) -> anyhow::Result<()> {
    match cmd {
        CredentialsCommand::Set { destination } => {
            let secret = if std::io::stdin().is_terminal() {
                rpassword::prompt_password(format!("Credential for {destination}: "))
                    .context("cannot read the credential from the terminal")?
            } else {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .context("cannot read the credential from standard input")?;
                // One trailing line end is how `echo` and files end; it is not part of the secret.
                if s.ends_with('\n') {
                    s.pop();
                    if s.ends_with('\r') {
                        s.pop();
                    }
                }
                s
            };
            let req = CredentialRequest { secret };
            let d: Done = client(cli)
                .post(&format!("/credentials/{destination}"), &req)
                .await?;
            println!(
                "credential for {destination} stored as version {}",
                d.value.unwrap_or_default()
            );
        }
        CredentialsCommand::List { json } => {
            let list: Vec<CredentialInfo> = client(cli).get("/credentials").await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                println!("no credentials (add one with `xianjie credentials set DESTINATION`)");
            } else {
                println!(
                    "{:<20} {:>7}  {:<16} {:<26} last use",
                    "destination", "version", "set by", "set at"
                );
                for c in list {
                    println!(
                        "{:<20} {:>7}  {:<16} {:<26} {}",
                        c.name,
                        c.version,
                        c.set_by,
                        c.set_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        c.last_use.unwrap_or_else(|| "never".into())
                    );
                }
            }
        }
    }
    Ok(())
}

fn print_secret(s: &SecretShown) {
    println!("client:  {}", s.client);
    println!("secret:  {}", s.secret);
    if let Some(t) = s.old_secret_until {
        println!("the previous secret keeps working until {}", t.to_rfc3339());
    }
    eprintln!("This secret is shown once and stored only as a keyed hash: hand it over now.");
}

/// `xianjie clients …`.
pub async fn clients(cli: &Cli, cmd: &ClientsCommand) -> anyhow::Result<()> {
    let c = client(cli);
    match cmd {
        ClientsCommand::Add {
            name,
            cert_fingerprint,
            cert_subject,
        } => {
            let s: SecretShown = c
                .post(
                    "/clients",
                    &ClientRequest {
                        name: name.clone(),
                        cert_fingerprint: cert_fingerprint.clone(),
                        cert_subject: cert_subject.clone(),
                    },
                )
                .await?;
            print_secret(&s);
        }
        ClientsCommand::List { json } => {
            let list: Vec<ClientInfo> = c.get("/clients").await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                println!("no clients (add one with `xianjie clients add NAME`)");
            } else {
                for cl in list {
                    println!(
                        "{:<20} {}  created by {} {}  {} active secret(s){}{}",
                        cl.name,
                        if cl.revoked_at.is_some() {
                            "REVOKED"
                        } else {
                            "active "
                        },
                        cl.created_by,
                        cl.created_at
                            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        cl.active_secrets,
                        cl.overlap_until
                            .map(|t| format!(" (old one until {})", t.to_rfc3339()))
                            .unwrap_or_default(),
                        match (&cl.cert_fingerprint, &cl.cert_subject) {
                            (Some(f), _) => format!("  cert {f}"),
                            (None, Some(s)) => format!("  cert naming {s}"),
                            (None, None) => format!("  cert naming {}", cl.name),
                        }
                    );
                }
            }
        }
        ClientsCommand::RotateSecret {
            name,
            overlap_hours,
        } => {
            let s: SecretShown = c
                .post(
                    &format!("/clients/{name}/rotate-secret"),
                    &RotateRequest {
                        overlap_secs: overlap_hours.map(|h| h * 3600),
                    },
                )
                .await?;
            print_secret(&s);
        }
        ClientsCommand::Revoke { name } => {
            let d: Done = c
                .post(&format!("/clients/{name}/revoke"), &serde_json::json!({}))
                .await?;
            println!("{}", d.message);
        }
    }
    Ok(())
}

/// `xianjie ports …`.
pub async fn ports(cli: &Cli, cmd: &PortsCommand) -> anyhow::Result<()> {
    let c = client(cli);
    match cmd {
        PortsCommand::Open { unit, client, .. } | PortsCommand::Close { unit, client } => {
            let (op, supervise) = match cmd {
                PortsCommand::Open { supervise, .. } => ("open", *supervise),
                _ => ("close", false),
            };
            let d: Done = c
                .post(
                    &format!("/ports/{op}"),
                    &PortRequest {
                        unit: unit.clone(),
                        client: client.clone(),
                        supervise,
                    },
                )
                .await?;
            println!("{}: {unit} for {client}", d.message);
        }
        PortsCommand::List { json } => {
            let list: Vec<crate::store::PortGrant> = c.get("/ports").await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                println!("no open ports (open one with `xianjie ports open UNIT --client NAME`)");
            } else {
                for p in list {
                    println!(
                        "{:<20} {:<20} {:<10} opened by {} {}",
                        p.unit_code,
                        p.client,
                        if p.supervise { "supervise" } else { "read" },
                        p.opened_by,
                        p.opened_at
                            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    );
                }
            }
        }
    }
    Ok(())
}

/// `xianjie audit …` (except `verify`, which is offline).
pub async fn audit(cli: &Cli, cmd: &AuditCommand) -> anyhow::Result<()> {
    let c = client(cli);
    match cmd {
        AuditCommand::Tail { n, json } => {
            let entries: Vec<Entry> = c.get(&format!("/audit/tail?n={n}")).await?;
            for e in entries {
                if *json {
                    println!("{}", serde_json::to_string(&e)?);
                } else {
                    println!(
                        "{:>8} {} {:<8} {:<14} {:<24} {:<8} {}",
                        e.seq, e.time, e.actor.kind, e.actor.id, e.action, e.outcome, e.target
                    );
                }
            }
        }
        AuditCommand::Checkpoint => {
            let d: Done = c.get("/audit/checkpoint").await?;
            print!("{}", d.message);
        }
        AuditCommand::Proof { command } => {
            let path = match command {
                ProofCommand::Inclusion { index, size } => format!(
                    "/audit/proof/inclusion?index={index}{}",
                    size.map(|s| format!("&size={s}")).unwrap_or_default()
                ),
                ProofCommand::Consistency { old, new } => {
                    format!("/audit/proof/consistency?old={old}&new={new}")
                }
            };
            let p: ProofAnswer = c.get(&path).await?;
            println!("{}", serde_json::to_string_pretty(&p)?);
        }
        AuditCommand::Export { dir } => {
            let abs = std::path::absolute(dir)
                .with_context(|| format!("cannot resolve {}", dir.display()))?;
            let d: Done = c
                .post(
                    "/audit/export",
                    &ExportRequest {
                        dir: abs.display().to_string(),
                    },
                )
                .await?;
            println!("{} to {}", d.message, abs.display());
        }
        AuditCommand::Verify { dir } => verify(dir)?,
    }
    Ok(())
}

/// `xianjie audit verify DIR` (offline).
pub fn verify(dir: &Path) -> anyhow::Result<()> {
    let v = crate::audit::verify_export(dir).map_err(|e| anyhow::anyhow!("NOT VERIFIED: {e}"))?;
    println!(
        "verified: {} entries, {} signed checkpoint(s), the latest covering {} entries",
        v.entries, v.checkpoints, v.latest_size
    );
    Ok(())
}
