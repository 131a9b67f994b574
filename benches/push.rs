//! Push benchmark: `XJ_BENCH_RECORDS` penalty records (default 100,000) queued in a real store,
//! pushed by the delivery worker over HTTPS (rustls, one connection per package) to the
//! province simulator in packages of 1,000 — signed, validated by the simulator, receipted, and
//! committed. Both run in this process on this machine. Run with `cargo bench --bench push`;
//! record results in BENCHMARKS.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use xianjie::audit::{Actor, AuditLog, Fsync};
use xianjie::config::{Destination, DestinationAuth, RetryPolicy};
use xianjie::keys::custody::Custody;
use xianjie::keys::secret::{Passphrase, SecretString};
use xianjie::model::{Action, Case, CaseId, Uscc};
use xianjie::push::calendar::WorkCalendar;
use xianjie::push::sim::{FaultPlan, SimOptions, Simulator, parse_verify_key};
use xianjie::push::worker::Pusher;
use xianjie::shutdown::Shutdown;
use xianjie::store::Store;

/// The allocator the `xianjie` binary uses (see `src/main.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("{what}: {e}");
    std::process::exit(1);
}

fn golden_penalty() -> Case {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("adapters/sunshine/cases");
    let text = std::fs::read_to_string(root.join("mixed.csv.expected.json"))
        .unwrap_or_else(|e| fail("golden case", e));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| fail("golden", e));
    let c = v["cases"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["action"] == "penalty"))
        .cloned()
        .unwrap_or_else(|| fail("golden", "no penalty case"));
    serde_json::from_value(c).unwrap_or_else(|e| fail("golden", e))
}

fn main() {
    let records: usize = std::env::var("XJ_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail("runtime", e));
    rt.block_on(run(records));
}

async fn run(records: usize) {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| fail("tempdir", e));
    let certs = tmp.path().join("certs");
    xianjie_devca::generate_dev(&certs, &[], false).unwrap_or_else(|e| fail("certs", e));
    let shutdown = Shutdown::new();
    let (sim, addr) = Simulator::bind(SimOptions {
        listen: "127.0.0.1:0".into(),
        certs: certs.clone(),
        credential: Some(SecretString::new("bench-token".into())),
        verify_key: None,
        faults: FaultPlan::default(),
    })
    .await
    .unwrap_or_else(|e| fail("simulator", e));
    tokio::spawn(sim.clone().run(shutdown.clone()));

    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap_or_else(|e| fail("data", e));
    let store = Store::open(&data).unwrap_or_else(|e| fail("store", e));
    let audit = AuditLog::open(
        &data.join("audit"),
        "xianjie.bench/audit",
        Fsync::Interval(Duration::from_millis(5)),
    )
    .unwrap_or_else(|e| fail("audit", e));
    let custody = Arc::new(Custody::new(&data.join("keystore.json"), audit.clone()));
    let admin = Actor::admin("bench");
    custody
        .unlock(&Passphrase::new("bench passphrase 123".into()), &admin)
        .unwrap_or_else(|e| fail("unlock", e));
    custody
        .set_credential("province", &SecretString::new("bench-token".into()), &admin)
        .unwrap_or_else(|e| fail("credential", e));

    // Queue the records: one penalty decision per case, as ingest would.
    let base = golden_penalty();
    let route = |_: &Uscc, a: Action| {
        if a == Action::Penalty {
            vec!["province".to_string()]
        } else {
            Vec::new()
        }
    };
    let started = Instant::now();
    for chunk in (0..records).collect::<Vec<_>>().chunks(1000) {
        let cases: Vec<Case> = chunk
            .iter()
            .map(|i| {
                let mut c = base.clone();
                c.case_id =
                    CaseId::parse(&format!("BENCH-{i:07}")).unwrap_or_else(|e| fail("id", e));
                c
            })
            .collect();
        store
            .upsert_cases(&cases, &route)
            .unwrap_or_else(|e| fail("upsert", e));
    }
    store.flush().unwrap_or_else(|e| fail("flush", e));
    println!(
        "queued {records} records in {:.2} s",
        started.elapsed().as_secs_f64()
    );

    let dest = Destination {
        name: "province".into(),
        url: format!("https://{addr}/packages"),
        ca: certs.join("ca.pem"),
        client_identity: None,
        schedule: "0 0 0 1 1 *".into(),
        actions: vec![Action::Penalty],
        units: None,
        batch_size: 1000,
        credential: "province".into(),
        auth: DestinationAuth::Bearer,
        retry: RetryPolicy::default(),
        reports_url: None,
        supervision_url: None,
        public: true,
    };
    let pusher = Pusher::new(
        &[dest],
        WorkCalendar::default(),
        store.clone(),
        audit.clone(),
        custody.clone(),
        shutdown.clone(),
    )
    .unwrap_or_else(|e| fail("pusher", format!("{e:?}")));
    let system = Actor::system("bench");
    let (kid, public) = pusher
        .public_key(&system)
        .unwrap_or_else(|e| fail("key", e));
    sim.set_verify_key(
        parse_verify_key(&format!("{kid} {public}")).unwrap_or_else(|e| fail("key", e)),
    );

    let started = Instant::now();
    let report = pusher
        .cycle("province", &system, true)
        .await
        .unwrap_or_else(|e| fail("push", e));
    let secs = started.elapsed().as_secs_f64();
    let stats = sim.stats();
    if report.accepted as usize != records || stats.records_accepted as usize != records {
        fail(
            "push",
            format!("{report:?} / simulator accepted {}", stats.records_accepted),
        );
    }
    println!(
        "pushed {records} records in {} packages of 1,000 over HTTPS: {secs:.2} s ({:.0} records/s; target ≤ 10 s)",
        report.packages,
        records as f64 / secs
    );
    shutdown.trigger();
}
