//! `xianjie demo`: the gateway's main job on embedded defaults, end to end — sample inputs for every
//! adapter dropped into their inboxes, the real gateway started, the inboxes read, what happened
//! printed with what to try next; then it keeps serving until Ctrl-C.

use anyhow::Context;

use super::ops::{print_files, print_status};
use super::{Cli, data_dir, init_logging};
use crate::admin::client::AdminClient;
use crate::admin::{IngestEvent, ScanRequest, Status};
use crate::config::Config;
use crate::gateway::Gateway;
use crate::ingest;
use crate::sample::{self, SampleOptions};
use crate::shutdown::Shutdown;

/// Fraction of deliberately bad rows in the demo's samples, so quarantine has something to show.
const DEMO_BAD_FRACTION: f64 = 0.02;
/// The procuratorate's client in the demo.
const DEMO_CLIENT: &str = "procuratorate";
/// Fixed seed: every demo run produces the same inputs, so a second run shows idempotency.
const DEMO_SEED: u64 = 2026;

/// The demo's push destination (the in-process simulator).
const DEMO_DESTINATION: &str = "province";

/// The demo's destination: the simulator at `addr`, trusting the demo CA, every 5 minutes.
fn demo_destination(
    certs: &std::path::Path,
    addr: std::net::SocketAddr,
) -> crate::config::Destination {
    use crate::model::Action;
    crate::config::Destination {
        name: DEMO_DESTINATION.into(),
        url: format!("https://{addr}/packages"),
        ca: certs.join("ca.pem"),
        client_identity: None,
        schedule: "0 */5 * * * *".into(),
        actions: vec![Action::Inspection, Action::Penalty, Action::Licensing],
        units: None,
        batch_size: 1000,
        credential: DEMO_DESTINATION.into(),
        auth: crate::config::DestinationAuth::Bearer,
        retry: crate::config::RetryPolicy::default(),
        reports_url: Some(format!("https://{addr}/reports")),
        supervision_url: None,
        // The provincial credit platform publishes: restricted and minors' decisions stay home.
        public: true,
    }
}

/// One delivery cycle of the demo's destination now.
async fn push_now(admin: &AdminClient) -> anyhow::Result<Vec<crate::push::worker::CycleReport>> {
    Ok(admin
        .post(
            "/push/run",
            &crate::admin::push::RunRequest {
                destination: Some(DEMO_DESTINATION.into()),
            },
        )
        .await?)
}

/// The name of the demo's passphrase file in its data directory.
const DEMO_PASSPHRASE: &str = "demo-passphrase";

/// The demo's generated passphrase file (created once, mode 0600, in the demo's data directory).
fn demo_passphrase(data: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    use rand::RngCore;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = data.join(DEMO_PASSPHRASE);
    if !path.exists() {
        let mut bytes = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        f.write_all(hex::encode(bytes).as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(path)
}

/// A second demo over the same data directory picks up where the first left off (same samples,
/// same certificates, the keystore unlocked with the demo's passphrase file). Two cases cannot be
/// reused; both are refused here, before anything is written, with what to do.
async fn check_reusable(data: &std::path::Path) -> anyhow::Result<()> {
    let d = data.display();
    if tokio::net::UnixStream::connect(data.join(crate::admin::SOCKET_NAME))
        .await
        .is_ok()
    {
        anyhow::bail!(
            "a gateway is already running on {d}: stop it (Ctrl-C where it runs) or give the demo another directory with --data"
        );
    }
    if data.join(crate::gateway::KEYSTORE_FILE).exists() && !data.join(DEMO_PASSPHRASE).exists() {
        anyhow::bail!(
            "{d} holds a keystore the demo did not create (no {d}/{DEMO_PASSPHRASE}): give the demo another directory with --data, or run `xianjie serve --data {d}` for it"
        );
    }
    Ok(())
}

/// The demo takes a free port when the configured one is in use (another gateway or demo on the
/// machine), so the README's first command does not depend on port 8443 being free.
fn free_listen(config: &mut Config) {
    let Some(server) = config.server.as_mut() else {
        return;
    };
    if let Err(e) = std::net::TcpListener::bind(server.listen)
        && e.kind() == std::io::ErrorKind::AddrInUse
    {
        println!(
            "   {} is in use: the port API takes a free port instead (shown in step 5)",
            server.listen
        );
        server.listen.set_port(0);
    }
}

/// Copies the folder of documents beside the sample file `from` (if it has one) beside `to`.
fn copy_documents(from: &std::path::Path, to: &std::path::Path) -> anyhow::Result<()> {
    let (src, dst) = (
        ingest::documents::folder_of(from),
        ingest::documents::folder_of(to),
    );
    let Ok(entries) = std::fs::read_dir(&src) else {
        return Ok(());
    };
    std::fs::create_dir_all(&dst).with_context(|| format!("creating {}", dst.display()))?;
    for e in entries {
        let e = e.with_context(|| format!("reading {}", src.display()))?;
        std::fs::copy(e.path(), dst.join(e.file_name()))
            .with_context(|| format!("copying into {}", dst.display()))?;
    }
    Ok(())
}

/// Runs the demo.
pub async fn run(cli: &Cli, cases: u64) -> anyhow::Result<()> {
    let data = data_dir(cli);
    check_reusable(&data).await?;
    let mut config = Config::load(cli.config.as_deref(), Some(&data))?;
    init_logging("warn");
    println!("xianjie demo — data directory {}", data.display());
    free_listen(&mut config);

    let samples = data.join("samples");
    let files = sample::generate(
        &samples,
        &SampleOptions {
            cases,
            bad_fraction: DEMO_BAD_FRACTION,
            seed: DEMO_SEED,
        },
    )
    .context("writing sample inputs")?;
    println!(
        "\n1. Sample inputs written to {} ({} cases, {:.0}% deliberately bad rows):",
        samples.display(),
        cases,
        DEMO_BAD_FRACTION * 100.0
    );
    for f in &files {
        let adapter = config
            .adapters
            .iter()
            .find(|a| a.name == f.adapter)
            .with_context(|| format!("no adapter {} configured", f.adapter))?;
        let inbox = ingest::inbox_dir(adapter, &data);
        std::fs::create_dir_all(&inbox).with_context(|| format!("creating {}", inbox.display()))?;
        let name = f.path.file_name().context("sample file without a name")?;
        // The documents the file's records name go first: the scan must find them beside it.
        copy_documents(&f.path, &inbox.join(name))?;
        std::fs::copy(&f.path, inbox.join(name))
            .with_context(|| format!("copying into {}", inbox.display()))?;
        println!(
            "   {:<18} {} rows ({} bad) -> {}",
            f.adapter,
            f.rows,
            f.bad_rows,
            inbox.display()
        );
    }

    // Development certificates of its own, in the demo's data directory.
    let certs = data.join("certs");
    xianjie_devca::generate_dev(&certs, &[DEMO_CLIENT.to_string()], false)
        .context("generating development certificates")?;
    if let Some(server) = config.server.as_mut() {
        server.tls.cert = certs.join("server.pem");
        server.tls.key = certs.join("server-key.pem");
        server.tls.client_ca = Some(certs.join("ca.pem"));
    }
    // The provincial platform's simulator, in process, as the demo's push destination.
    let shutdown = Shutdown::new();
    let sim_credential = {
        use rand::RngCore;
        let mut b = [0u8; 18];
        rand::rngs::OsRng.fill_bytes(&mut b);
        format!("demo-{}", hex::encode(b))
    };
    let (sim, sim_addr) = crate::push::sim::Simulator::bind(crate::push::sim::SimOptions {
        listen: "127.0.0.1:0".into(),
        certs: certs.clone(),
        credential: Some(crate::keys::secret::SecretString::new(
            sim_credential.clone(),
        )),
        verify_key: None,
        faults: crate::push::sim::FaultPlan::default(),
    })
    .await?;
    tokio::spawn(sim.clone().run(shutdown.clone()));
    if config.destinations.is_empty() {
        config.destinations.push(demo_destination(&certs, sim_addr));
    }
    let gw = Gateway::open(config, shutdown.clone())?;
    let pass_file = demo_passphrase(&data)?;
    let pass = crate::keys::secret::Passphrase::from_file(&pass_file)?;
    let custody = gw.custody.clone();
    let actor = crate::audit::Actor::admin("demo");
    let version = tokio::task::spawn_blocking(move || custody.unlock(&pass, &actor))
        .await
        .context("unlock task failed")??;
    println!(
        "\n   !!! DEMO ONLY: the keystore passphrase was generated and written to {} (mode 0600).\n   !!! `xianjie serve` never does this: a real gateway is unlocked by its administrator.\n   keystore unlocked (version {version})",
        pass_file.display()
    );
    let custody = gw.custody.clone();
    let actor = crate::audit::Actor::admin("demo");
    let credential = crate::keys::secret::SecretString::new(sim_credential);
    tokio::task::spawn_blocking(move || {
        custody.set_credential(DEMO_DESTINATION, &credential, &actor)
    })
    .await
    .context("credential task failed")??;
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(gw.clone().serve(Some(ready_tx)));
    let sock = match ready_rx.await {
        Ok(s) => s,
        Err(_) => {
            // The server ended before it was ready: report its error.
            return match server.await {
                Ok(Err(e)) => Err(e.into()),
                _ => Err(anyhow::anyhow!("the gateway stopped before it was ready")),
            };
        }
    };
    println!("\n2. Gateway started; admin socket {}", sock.display());

    let client = AdminClient::new(&data);
    let mut outcomes = Vec::new();
    let mut total = None;
    client
        .post_stream("/scan", &ScanRequest::default(), |ev| match ev {
            IngestEvent::File { adapter, outcome } => outcomes.push((adapter, outcome)),
            IngestEvent::Done(s) => total = Some(s),
            IngestEvent::Error(e) => eprintln!("   error: {e}"),
            IngestEvent::Progress(_) => {}
        })
        .await?;
    println!("\n3. Inboxes read through the three adapters:");
    print_files(&outcomes);
    if let Some(t) = total {
        println!(
            "   total: {} records: {} new, {} updated, {} unchanged, {} rejected into quarantine",
            t.rows, t.accepted, t.updated, t.unchanged, t.rejected
        );
    }
    let status: Status = client.get("/status").await?;
    println!("\n4. What the gateway holds now:\n");
    print_status(&status);
    // The procuratorate's client, with two ports open.
    let admin = client.clone().acting_as("demo");
    let clients: Vec<crate::keys::custody::ClientInfo> = admin.get("/clients").await?;
    let secret = if clients.iter().any(|c| c.name == DEMO_CLIENT) {
        let s: crate::admin::SecretShown = admin
            .post(
                &format!("/clients/{DEMO_CLIENT}/rotate-secret"),
                &crate::admin::RotateRequest {
                    overlap_secs: Some(0),
                },
            )
            .await?;
        s.secret
    } else {
        let s: crate::admin::SecretShown = admin
            .post(
                "/clients",
                &crate::admin::ClientRequest {
                    name: DEMO_CLIENT.into(),
                    cert_fingerprint: None,
                    cert_subject: None,
                },
            )
            .await?;
        s.secret
    };
    let ports: Vec<String> = status
        .units
        .iter()
        .take(2)
        .map(|u| u.unit_code.clone())
        .collect();
    for unit in &ports {
        let _: crate::admin::Done = admin
            .post(
                "/ports/open",
                &crate::admin::PortRequest {
                    unit: unit.clone(),
                    client: DEMO_CLIENT.into(),
                    supervise: true,
                },
            )
            .await?;
    }
    let api = std::fs::read_to_string(data.join("api.addr")).unwrap_or_default();
    let api = api.trim();
    let port = api.rsplit(':').next().unwrap_or("8443");
    let c = certs.display();
    println!(
        "\n5. Port API (HTTPS, client certificates required) on {api}: client {DEMO_CLIENT} may read ports {}.\n   Try it:\n
  TOKEN=$(curl -s --cacert {c}/ca.pem --cert {c}/{DEMO_CLIENT}.pem --key {c}/{DEMO_CLIENT}-key.pem \\
      -u {DEMO_CLIENT}:{secret} -d grant_type=client_credentials https://localhost:{port}/oauth/token \\
      | sed 's/.*\"access_token\":\"\\([^\"]*\\)\".*/\\1/')
  curl -s --cacert {c}/ca.pem --cert {c}/{DEMO_CLIENT}.pem --key {c}/{DEMO_CLIENT}-key.pem \\
      -H \"Authorization: Bearer $TOKEN\" https://localhost:{port}/v1/ports
  curl -s --cacert {c}/ca.pem --cert {c}/{DEMO_CLIENT}.pem --key {c}/{DEMO_CLIENT}-key.pem \\
      -H \"Authorization: Bearer $TOKEN\" \"https://localhost:{port}/v1/ports/{first}/cases?limit=2&action=penalty\"",
        ports.join(", "),
        first = ports.first().map(String::as_str).unwrap_or("UNIT"),
    );
    let entries: Vec<crate::audit::Entry> = client.get("/audit/tail?n=5").await?;
    let checkpoint: crate::admin::Done = client.get("/audit/checkpoint").await?;
    println!(
        "\n6. The audit log ({} entries; the last 5):",
        status.audit_entries
    );
    for e in entries {
        println!(
            "   {:>6} {} {:<16} {:<14} {}",
            e.seq, e.time, e.action, e.outcome, e.target
        );
    }
    println!("   latest signed checkpoint:");
    for line in checkpoint.message.lines() {
        println!("   | {line}");
    }

    // Push to the simulated provincial platform now (the schedule would in 5 minutes).
    let key: crate::admin::push::PushKey = admin.get("/push/key").await?;
    sim.set_verify_key(crate::push::sim::parse_verify_key(&format!(
        "{} {}",
        key.key_id, key.public_key
    ))?);
    println!(
        "\n7. Push to the provincial platform (simulator on https://{sim_addr}/packages; packages signed with {}):",
        key.key_id
    );
    let reports = push_now(&admin).await?;
    reports.iter().for_each(super::push::print_report);
    let stats = sim.stats();
    println!(
        "   receipts: {} package(s); the platform accepted {} record(s), {} duplicate(s), {} rejected, {} retraction(s)",
        stats.packages, stats.records_accepted, stats.duplicates, stats.rejected, stats.retractions
    );
    let push_status: Vec<crate::push::worker::DestinationStatus> =
        client.get("/push/status").await?;
    super::push::print_status(&push_status);

    // The quarterly statistics of the sample's busiest quarter, and its public disclosure.
    let store = gw.store.clone();
    let quarter = tokio::task::spawn_blocking(move || {
        let mut n: std::collections::BTreeMap<crate::model::Quarter, u64> = Default::default();
        for c in store.all_cases().flatten() {
            if let Some(d) = c.decided_on {
                *n.entry(crate::model::Quarter::of(d)).or_default() += 1;
            }
        }
        n.into_iter().max_by_key(|(_, n)| *n).map(|(q, _)| q)
    })
    .await
    .context("quarter task failed")?;
    if let Some(q) = quarter {
        let built: Vec<crate::admin::reports::BuildLine> = admin
            .post(
                "/reports/build",
                &crate::admin::reports::BuildRequest {
                    quarter: q.to_string(),
                },
            )
            .await?;
        let cases: u64 = built.iter().map(|b| b.total).sum();
        println!(
            "\n8. Quarterly enforcement statistics for {q}: {} unit report(s), {cases} decision(s); public disclosure (行政执法季度公示):",
            built.len()
        );
        let out = data.join("disclosure");
        for format in ["html", "xlsx", "csv"] {
            let paths = super::reports::disclose(&admin, &q.to_string(), format, &out).await?;
            match paths.as_slice() {
                [one] => println!("   {format:<5} {one}"),
                many => println!(
                    "   {format:<5} {} files in {} (one per department)",
                    many.len(),
                    out.display()
                ),
            }
        }
        // The new report versions are queued for the platform too: push them now.
        let reports = push_now(&admin).await?;
        let sent: u64 = reports.iter().map(|r| r.reports).sum();
        println!(
            "   {sent} report version(s) pushed to the simulated platform (it now holds {})",
            sim.stats().reports_accepted
        );
    }

    let d = data.display();
    println!(
        "\nTry next (in another terminal, while this keeps running):
  cargo run --release -- --data {d} status
  cargo run --release -- --data {d} quarantine list --limit 10
  cargo run --release -- --data {d} cases show {unit} <case_id>
  cp {d}/samples/sunshine/*.csv {d}/inbox/sunshine/    # picked up by the next scheduled scan (every 5 min), or:
  cargo run --release -- --data {d} scan                 # a second read: everything unchanged
  cargo run --release -- sample --cases 1000 --out /tmp/xj-samples --bad-fraction 0.1
  cargo run --release -- --data {d} clients add procuratorate     # prints its secret once
  cargo run --release -- --data {d} reports status --quarter <quarter>
  cargo run --release -- --data {d} push status
  cargo run --release -- --data {d} push dead list      # records the platform refused, with its reasons
  cargo run --release -- --data {d} audit export /tmp/xj-audit && cargo run --release -- audit verify /tmp/xj-audit

The gateway keeps running; press Ctrl-C to stop it.",
        unit = status.units.first().map(|u| u.unit_code.as_str()).unwrap_or("<unit_code>"),
    );
    match server.await {
        Ok(r) => r.map_err(Into::into),
        Err(e) => Err(anyhow::anyhow!("gateway task failed: {e}")),
    }
}
