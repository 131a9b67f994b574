//! Commands that run or talk to the gateway: `serve`, `ingest`, `scan`, `status`, `cases`, `quarantine`.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Context;

use super::{Cli, QuarantineCommand, data_dir, init_logging};
use crate::admin::client::AdminClient;
use crate::admin::{IngestEvent, IngestRequest, RetryRequest, ScanRequest, Status};
use crate::config::Config;
use crate::gateway::Gateway;
use crate::ingest::{FileOutcome, RetryOutcome, Summary};
use crate::model::Case;
use crate::shutdown::Shutdown;
use crate::store::QuarantineEntry;

/// Command-line overrides of the port API settings (`serve --listen/--certs/--client-auth`).
#[derive(Debug, Default)]
pub struct ServeOverrides {
    /// `--listen`.
    pub listen: Option<String>,
    /// `--certs`.
    pub certs: Option<std::path::PathBuf>,
    /// `--client-auth`.
    pub client_auth: Option<String>,
}

impl ServeOverrides {
    /// Applies the overrides to `config`.
    pub fn apply(&self, config: &mut Config) -> anyhow::Result<()> {
        if self.listen.as_deref() == Some("off") {
            config.server = None;
            return Ok(());
        }
        if self.listen.is_none() && self.certs.is_none() && self.client_auth.is_none() {
            return Ok(());
        }
        let Some(server) = config.server.as_mut() else {
            anyhow::bail!(
                "the port API is off in the configuration (server.listen = \"off\"); remove that to use --listen/--certs/--client-auth"
            );
        };
        if let Some(l) = &self.listen {
            server.listen = l
                .parse()
                .with_context(|| format!("--listen {l:?} is not an address:port"))?;
        }
        if let Some(dir) = &self.certs {
            server.tls.cert = dir.join("server.pem");
            server.tls.key = dir.join("server-key.pem");
            server.tls.client_ca = Some(dir.join("ca.pem"));
        }
        if let Some(m) = &self.client_auth {
            server.tls.client_auth = m
                .parse()
                .map_err(|e| anyhow::anyhow!("--client-auth: {e}"))?;
        }
        Ok(())
    }
}

/// `xianjie serve`: opens everything, unlocks when a passphrase is at hand (a file, or a
/// terminal to ask at), else starts sealed and says how to unlock.
pub async fn serve(
    cli: &Cli,
    passphrase_file: Option<&Path>,
    over: &ServeOverrides,
) -> anyhow::Result<()> {
    let mut config = Config::load(cli.config.as_deref(), cli.data.as_deref())?;
    over.apply(&mut config)?;
    init_logging(&config.log_level);
    let gw = Gateway::open(config, Shutdown::new())?;
    let pass = if passphrase_file.is_some() || std::io::stdin().is_terminal() {
        Some(super::keys::read_passphrase(
            passphrase_file,
            if gw.custody.exists() {
                super::keys::Ask::Current
            } else {
                super::keys::Ask::Create
            },
        )?)
    } else {
        None
    };
    match pass {
        Some(p) => {
            let custody = gw.custody.clone();
            let actor = admin_actor(cli);
            let version = tokio::task::spawn_blocking(move || custody.unlock(&p, &actor))
                .await
                .context("unlock task failed")??;
            tracing::info!(version, "keystore unlocked");
        }
        None => tracing::warn!(
            "keystore sealed: nothing that needs a key works until an administrator runs `xianjie unlock`"
        ),
    }
    gw.serve(None).await?;
    Ok(())
}

/// The administrator named by `--as`, else the OS user.
pub fn admin_actor(cli: &Cli) -> crate::audit::Actor {
    crate::audit::Actor::admin(
        &cli.as_name
            .clone()
            .unwrap_or_else(crate::admin::default_admin_name),
    )
}

/// The admin client, acting as the administrator named by `--as` (else the OS user).
pub fn client(cli: &Cli) -> AdminClient {
    AdminClient::new(&data_dir(cli)).acting_as(&admin_actor(cli).id)
}

/// Runs a streamed ingest/scan request, showing progress on a terminal, and prints the outcome.
async fn run_stream<B: serde::Serialize>(
    cli: &Cli,
    path: &str,
    body: &B,
    json: bool,
) -> anyhow::Result<()> {
    let bar = (!json && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new_spinner();
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {elapsed_precise} {pos} records ({per_sec}) {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        b.enable_steady_tick(std::time::Duration::from_millis(120));
        b
    });
    let mut files: Vec<(String, FileOutcome)> = Vec::new();
    let mut done: Option<Summary> = None;
    let mut failure: Option<String> = None;
    let mut base = 0u64;
    let mut last = 0u64;
    client(cli)
        .post_stream(path, body, |ev| match ev {
            IngestEvent::Progress(s) => {
                last = s.rows;
                if let Some(b) = &bar {
                    b.set_position(base + s.rows);
                    b.set_message(format!(
                        "{} new, {} updated, {} unchanged, {} rejected",
                        s.accepted, s.updated, s.unchanged, s.rejected
                    ));
                }
            }
            IngestEvent::File { adapter, outcome } => {
                base += last;
                last = 0;
                files.push((adapter, outcome));
            }
            IngestEvent::Done(s) => done = Some(s),
            IngestEvent::Error(e) => failure = Some(e),
        })
        .await?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if let Some(e) = failure {
        anyhow::bail!(e);
    }
    let total = done.context("the gateway ended the run without a summary (was it stopped?)")?;
    if json {
        // The totals, and each file's outcome (where it went, why it was refused, the decoding
        // process's peak memory).
        let mut out = serde_json::to_value(total)?;
        let mut list = Vec::new();
        for (adapter, o) in &files {
            let mut v = serde_json::to_value(o)?;
            v["adapter"] = serde_json::Value::from(adapter.as_str());
            list.push(v);
        }
        out["files"] = serde_json::Value::Array(list);
        println!("{}", serde_json::to_string(&out)?);
    } else {
        print_files(&files);
        println!(
            "total: {} records: {} new, {} updated, {} unchanged, {} rejected ({} newly quarantined)",
            total.rows,
            total.accepted,
            total.updated,
            total.unchanged,
            total.rejected,
            total.quarantined
        );
    }
    let refused = files.iter().filter(|(_, o)| o.refused.is_some()).count();
    if refused > 0 && json {
        anyhow::bail!("{refused} file(s) refused");
    }
    Ok(())
}

/// Prints one line per file.
pub fn print_files(files: &[(String, FileOutcome)]) {
    if files.is_empty() {
        println!("no files to read");
    }
    for (adapter, o) in files {
        match (&o.summary, &o.refused) {
            (Some(s), _) => println!(
                "{adapter}: {}: {} records: {} new, {} updated, {} unchanged, {} rejected{}",
                o.file,
                s.rows,
                s.accepted,
                s.updated,
                s.unchanged,
                s.rejected,
                o.moved_to
                    .as_ref()
                    .map(|m| format!(" -> {m}"))
                    .unwrap_or_default()
            ),
            (None, Some(r)) => println!(
                "{adapter}: {}: REFUSED: {r}{}",
                o.file,
                o.moved_to
                    .as_ref()
                    .map(|m| format!(" -> {m}"))
                    .unwrap_or_default()
            ),
            (None, None) => {}
        }
    }
}

/// `xianjie ingest ADAPTER PATH`.
pub async fn ingest(cli: &Cli, adapter: &str, path: &Path, json: bool) -> anyhow::Result<()> {
    let abs =
        std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))?;
    let req = IngestRequest {
        adapter: adapter.to_string(),
        path: abs.display().to_string(),
    };
    run_stream(cli, "/ingest", &req, json).await
}

/// `xianjie scan [ADAPTER]`.
pub async fn scan(cli: &Cli, adapter: Option<String>, json: bool) -> anyhow::Result<()> {
    run_stream(cli, "/scan", &ScanRequest { adapter }, json).await
}

/// `xianjie status`.
pub async fn status(cli: &Cli, json: bool) -> anyhow::Result<()> {
    let s: Status = client(cli).get("/status").await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        print_status(&s);
    }
    Ok(())
}

/// Prints the status as tables.
pub fn print_status(s: &Status) {
    println!("xianjie {} — data {}", s.version, s.data_dir);
    println!(
        "instance {}: {}",
        s.instance,
        match (&s.leading, &s.leader) {
            (true, _) => "the leader (runs scans, pushes, quarter jobs, checkpoints)".to_string(),
            (false, Some(l)) => format!("a follower; {l} leads"),
            (false, None) => "a follower; no leader seen yet".to_string(),
        }
    );
    println!("{} cases, {} quarantined records", s.cases, s.quarantine);
    println!(
        "keystore: {} · audit log: {} entries",
        match (s.sealed, s.keystore_exists, s.keystore_version) {
            (false, _, v) => format!("unlocked (version {})", v.unwrap_or(0)),
            (true, true, _) => "SEALED — run `xianjie unlock`".into(),
            (true, false, _) => "not created yet — run `xianjie unlock` to create it".into(),
        },
        s.audit_entries
    );
    println!();
    println!(
        "{:<20} {:>7}  {:<}  unit",
        "unit_code", "cases", "by action"
    );
    for u in &s.units {
        let by: Vec<String> = u
            .counts
            .by_action
            .iter()
            .map(|(a, n)| format!("{a}={n}"))
            .collect();
        println!(
            "{:<20} {:>7}  {}  {}",
            u.unit_code,
            u.counts.total,
            by.join(" "),
            u.unit_name
        );
    }
    println!();
    for a in &s.adapters {
        match &a.last_scan {
            Some(r) => println!(
                "adapter {:<18} last read {} ({} file(s), {} refused; {} new, {} updated, {} unchanged, {} rejected)",
                a.name,
                r.at.with_timezone(&chrono::Local)
                    .format("%Y-%m-%d %H:%M:%S"),
                r.files,
                r.refused,
                r.summary.accepted,
                r.summary.updated,
                r.summary.unchanged,
                r.summary.rejected
            ),
            None => println!(
                "adapter {:<18} nothing read yet (inbox {})",
                a.name, a.inbox
            ),
        }
    }
}

/// `xianjie cases show UNIT CASE_ID`.
pub async fn case_show(cli: &Cli, unit: &str, case_id: &str) -> anyhow::Result<()> {
    let path = format!("/cases/{}/{}", encode(unit), encode(case_id));
    let c: Case = client(cli).get(&path).await?;
    println!("{}", serde_json::to_string_pretty(&c)?);
    Ok(())
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `xianjie quarantine ...`.
pub async fn quarantine(cli: &Cli, cmd: &QuarantineCommand) -> anyhow::Result<()> {
    let c = client(cli);
    match cmd {
        QuarantineCommand::List {
            adapter,
            limit,
            json,
        } => {
            let mut path = format!("/quarantine?limit={limit}");
            if let Some(a) = adapter {
                path.push_str(&format!("&adapter={}", encode(a)));
            }
            let list: Vec<QuarantineEntry> = c.get(&path).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(());
            }
            if list.is_empty() {
                println!("quarantine is empty");
            }
            for e in &list {
                let why: Vec<String> = e
                    .reasons
                    .iter()
                    .map(|r| match &r.column {
                        Some(col) => format!("{} [{col}]: {}", r.field, r.reason),
                        None => format!("{}: {}", r.field, r.reason),
                    })
                    .collect();
                println!(
                    "#{} {} {} {}: {}",
                    e.id,
                    e.adapter,
                    e.file,
                    e.location,
                    why.join("; ")
                );
            }
        }
        QuarantineCommand::Show { id } => {
            let e: QuarantineEntry = c.get(&format!("/quarantine/{id}")).await?;
            println!("{}", serde_json::to_string_pretty(&e)?);
        }
        QuarantineCommand::Retry { ids, all, adapter } => {
            if ids.is_empty() && !all {
                anyhow::bail!("name entry ids, or --all");
            }
            let req = RetryRequest {
                ids: ids.clone(),
                all: *all,
                adapter: adapter.clone(),
            };
            let out: Vec<RetryOutcome> = c.post("/quarantine/retry", &req).await?;
            let ok = out.iter().filter(|o| o.accepted).count();
            for o in out.iter().filter(|o| !o.accepted) {
                let why: Vec<String> = o
                    .reasons
                    .iter()
                    .map(|r| format!("{}: {}", r.field, r.reason))
                    .collect();
                println!("#{} still refused: {}", o.id, why.join("; "));
            }
            println!("{ok} of {} accepted", out.len());
        }
    }
    Ok(())
}
