//! `push` commands (through the admin socket): run a cycle now, status, dead letters, the
//! signing key; and `province-sim`, the simulator of the provincial platform.

use super::ops::client;
use super::{Cli, DeadCommand, PushCommand};
use crate::admin::Done;
use crate::admin::push::{PushKey, RequeueRequest, RunRequest};
use crate::push::worker::{CycleReport, DestinationStatus};
use crate::store::DeadLetter;

fn time(t: &Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map_or("never".into(), |t| {
        t.with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    })
}

/// Prints a cycle's report in words.
pub fn print_report(r: &CycleReport) {
    if r.busy {
        println!("{}: a cycle is already running", r.destination);
        return;
    }
    println!(
        "{}: {} package(s); {} accepted, {} duplicate(s), {} dead-lettered, {} not needed, {} retr{}; {} still queued",
        r.destination,
        r.packages,
        r.accepted,
        r.duplicates,
        r.dead_lettered,
        r.skipped,
        r.retries,
        if r.retries == 1 { "y" } else { "ies" },
        r.remaining
    );
    if r.reports > 0 {
        println!("  {} quarterly report version(s) delivered", r.reports);
    }
    if let Some(h) = &r.held {
        println!("  held: {h}");
    }
    if let Some(e) = &r.error {
        println!("  error: {e}");
    }
}

/// Prints destinations' status in words.
pub fn print_status(list: &[DestinationStatus]) {
    if list.is_empty() {
        println!("no destinations configured (add [[destinations]] to the configuration)");
    }
    for s in list {
        println!("{} → {}", s.name, s.url);
        let age = s
            .oldest_age_secs
            .map_or(String::new(), |a| format!(", oldest {a} s"));
        println!("  queued       {}{age}", s.queued);
        println!("  in flight    {}", s.in_flight);
        if s.reports_queued > 0 {
            println!("  reports      {} queued", s.reports_queued);
        }
        println!("  delivered    {}", s.delivered);
        println!("  dead letters {}", s.dead_letters);
        println!(
            "  deadlines    {} overdue, {} at risk{}",
            s.deadlines.overdue,
            s.deadlines.at_risk,
            s.deadlines
                .next_due
                .map_or(String::new(), |d| format!(", next due {d}"))
        );
        if !s.deadlines.uncovered_years.is_empty() {
            let years: Vec<String> = s
                .deadlines
                .uncovered_years
                .iter()
                .map(ToString::to_string)
                .collect();
            println!(
                "  calendar     no official holiday table for {}: deadlines there count Monday to Friday",
                years.join(", ")
            );
        }
        println!("  last success {}", time(&s.last_success));
        if let Some(e) = &s.last_error {
            println!("  last error   {} ({e})", time(&s.last_error_at));
        }
        if let Some(h) = &s.held {
            println!("  held         {h}");
        }
    }
}

/// `push …`.
pub async fn push(cli: &Cli, cmd: &PushCommand) -> anyhow::Result<()> {
    let c = client(cli);
    match cmd {
        PushCommand::Run { destination, json } => {
            let reports: Vec<CycleReport> = c
                .post(
                    "/push/run",
                    &RunRequest {
                        destination: destination.clone(),
                    },
                )
                .await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&reports)?);
            } else if reports.is_empty() {
                println!("no destinations configured (add [[destinations]] to the configuration)");
            } else {
                reports.iter().for_each(print_report);
            }
            if let Some(r) = reports.iter().find(|r| r.error.is_some()) {
                anyhow::bail!(
                    "push to {} did not finish: {}",
                    r.destination,
                    r.error.as_deref().unwrap_or_default()
                );
            }
        }
        PushCommand::Status { json } => {
            let list: Vec<DestinationStatus> = c.get("/push/status").await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print_status(&list);
            }
        }
        PushCommand::Key { pem } => {
            let k: PushKey = c.get("/push/key").await?;
            if *pem {
                print!("{}", k.pem);
            } else {
                println!("{} {}", k.key_id, k.public_key);
            }
        }
        PushCommand::Dead { command } => dead(cli, command).await?,
    }
    Ok(())
}

async fn dead(cli: &Cli, cmd: &DeadCommand) -> anyhow::Result<()> {
    let c = client(cli);
    match cmd {
        DeadCommand::List {
            destination,
            limit,
            json,
        } => {
            let mut path = format!("/push/dead?limit={limit}");
            if let Some(d) = destination {
                path.push_str(&format!("&destination={d}"));
            }
            let list: Vec<DeadLetter> = c.get(&path).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                println!("no dead letters");
            } else {
                for d in list {
                    println!(
                        "{:>6}  {:<10} {}/{} v{} {:<7} {}: {}",
                        d.id,
                        d.destination,
                        d.unit_code,
                        d.case_id,
                        d.version,
                        d.op,
                        d.code,
                        d.reason
                    );
                }
            }
        }
        DeadCommand::Show { id } => {
            let d: DeadLetter = c.get(&format!("/push/dead/{id}")).await?;
            println!("{}", serde_json::to_string_pretty(&d)?);
        }
        DeadCommand::Requeue {
            ids,
            all,
            destination,
        } => {
            let d: Done = c
                .post(
                    "/push/dead/requeue",
                    &RequeueRequest {
                        ids: ids.clone(),
                        all: *all,
                        destination: destination.clone(),
                    },
                )
                .await?;
            println!("{}", d.message);
        }
    }
    Ok(())
}

/// `province-sim` arguments.
pub struct SimArgs<'a> {
    /// Listen address.
    pub listen: &'a str,
    /// Certificate directory.
    pub certs: &'a std::path::Path,
    /// Expected credential.
    pub credential: Option<&'a crate::keys::secret::SecretString>,
    /// Fault spec.
    pub faults: &'a str,
    /// Verification key file.
    pub verify_key: Option<&'a std::path::Path>,
    /// Where to write the bound address.
    pub addr_file: Option<&'a std::path::Path>,
}

/// `province-sim`: serves until Ctrl-C or SIGTERM.
pub async fn province_sim(a: SimArgs<'_>) -> anyhow::Result<()> {
    use crate::push::sim::{SimOptions, Simulator, parse_faults, parse_verify_key};
    use anyhow::Context as _;
    super::init_logging("info");
    let verify_key = match a.verify_key {
        Some(p) => Some(parse_verify_key(
            &std::fs::read_to_string(p)
                .with_context(|| format!("cannot read the verification key {}", p.display()))?,
        )?),
        None => None,
    };
    let opts = SimOptions {
        listen: a.listen.to_string(),
        certs: a.certs.to_path_buf(),
        credential: a
            .credential
            .map(|c| crate::keys::secret::SecretString::new(c.expose().to_string())),
        verify_key,
        faults: parse_faults(a.faults)?,
    };
    let (sim, addr) = Simulator::bind(opts).await?;
    if let Some(f) = a.addr_file {
        std::fs::write(f, format!("{addr}\n"))
            .with_context(|| format!("cannot write {}", f.display()))?;
    }
    println!("province-sim listening on https://{addr}/packages");
    let shutdown = crate::shutdown::Shutdown::new();
    crate::gateway::spawn_signal_handler(shutdown.clone());
    sim.run(shutdown).await?;
    Ok(())
}
