//! The simulator over HTTPS with packages the gateway writes from the golden cases:
//! acceptance and deduplication, the credential, signatures, injected faults, rejections of
//! single records, and load.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::SigningKey;

use super::{golden_cases, header, pushable, upserts};
use crate::keys::secret::SecretString;
use crate::model::Case;
use crate::push::package::{self, Op, Record};
use crate::push::receipt::{Outcome, Receipt};
use crate::push::sim::harness::start;
use crate::push::sim::*;

const SECRET: &str = "s3cret-Token:with-colon";

/// Every pushable golden case at `version` (upserts), as a package.
fn package_at(package_id: &str, version: u64) -> (Vec<u8>, Vec<(String, u64)>) {
    let cases = golden_cases();
    let cases: Vec<Case> = pushable(&cases)
        .into_iter()
        .map(|c| {
            let mut c = c.clone();
            c.version = version;
            c
        })
        .collect();
    let records: Vec<Record<'_>> = cases
        .iter()
        .map(|c| Record {
            op: Op::Upsert,
            case: c,
        })
        .collect();
    let keys = cases
        .iter()
        .map(|c| (package::record_id(c), version))
        .collect();
    (package::build(&header(package_id), &records).unwrap(), keys)
}

fn outcomes(r: &Receipt) -> Vec<&Outcome> {
    r.results.iter().map(|x| &x.outcome).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepts_then_deduplicates_and_shows_what_it_kept() {
    let h = start(None, None, "").await;
    let (xml, keys) = package_at("PKG-a", 2);
    let r = h.receipt(&xml, &[]).await;
    assert_eq!(r.package_id, "PKG-a");
    let ids: Vec<(String, u64)> = r
        .results
        .iter()
        .map(|x| (x.id.clone(), x.version))
        .collect();
    assert_eq!(ids, keys, "results in package order");
    assert!(
        outcomes(&r).iter().all(|o| **o == Outcome::Accepted),
        "{r:?}"
    );

    // The same package again (a retry): every record is a duplicate, nothing new is kept.
    let r = h.receipt(&xml, &[]).await;
    assert!(
        outcomes(&r).iter().all(|o| **o == Outcome::Duplicate),
        "{r:?}"
    );

    // A retraction, as a new version.
    let cases = golden_cases();
    let mut first = pushable(&cases)[0].clone();
    first.version = 3;
    let retract = package::build(
        &header("PKG-b"),
        &[Record {
            op: Op::Retract,
            case: &first,
        }],
    )
    .unwrap();
    let r = h.receipt(&retract, &[]).await;
    assert_eq!(outcomes(&r), [&Outcome::Accepted]);

    let records: Vec<SimRecord> = h.get("/sim/records").await;
    assert_eq!(records.len(), keys.len() + 1);
    assert_eq!(records, h.sim.records());
    for (rec, key) in records.iter().zip(&keys) {
        assert_eq!((&rec.id, rec.version), (&key.0, key.1));
        assert_eq!(rec.op, "upsert");
        assert_eq!(rec.package_id, "PKG-a");
        assert!(rec.fields.keys().any(|k| k.ends_with("XDR_MC")), "{rec:?}");
        assert!(
            ["PenaltyRecord", "LicenseRecord", "InspectionResult"].contains(&rec.kind.as_str())
        );
    }
    let last = records.last().unwrap();
    assert_eq!(
        (last.op.as_str(), last.version, last.package_id.as_str()),
        ("retract", 3, "PKG-b")
    );
    assert_eq!(last.id, keys[0].0);
    // A retraction keeps only why and since when.
    assert_eq!(
        last.fields.keys().collect::<Vec<_>>(),
        ["date", "reason"],
        "{:?}",
        last.fields
    );

    let stats: SimStats = h.get("/sim/stats").await;
    assert_eq!(stats, h.sim.stats());
    let n = keys.len() as u64;
    assert_eq!(
        stats,
        SimStats {
            packages: 3,
            records_accepted: n + 1,
            duplicates: n,
            rejected: 0,
            retractions: 1,
            packages_refused: 0,
            auth_failures: 0,
            faults_injected: 0,
            last_package_id: Some("PKG-b".into()),
            reports_accepted: 0,
            reports_duplicates: 0,
        }
    );

    // Refusals of the whole package.
    let bad = String::from_utf8(xml.clone()).unwrap().replacen(
        &format!("<RecordCount>{n}</RecordCount>"),
        "<RecordCount>999</RecordCount>",
        1,
    );
    let a = h.post(bad.as_bytes(), &[]).await.unwrap();
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        a.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(a.text().contains("RecordCount says 999"), "{}", a.text());
    let a = h
        .request(
            Method::POST,
            "/packages",
            &[("content-type", "application/json".into())],
            xml.clone(),
        )
        .await
        .unwrap();
    assert_eq!(a.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let a = h.post(b"\xff\xfe", &[]).await.unwrap();
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.text().contains("UTF-8"));
    for (m, p, status) in [
        (Method::GET, "/packages", StatusCode::METHOD_NOT_ALLOWED),
        (Method::GET, "/", StatusCode::NOT_FOUND),
        (Method::POST, "/sim/records", StatusCode::METHOD_NOT_ALLOWED),
    ] {
        let a = h.request(m, p, &[], Vec::new()).await.unwrap();
        assert_eq!(a.status, status, "{p}");
    }
    assert_eq!(h.sim.stats().packages_refused, 3);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_credential_is_required_and_never_shown() {
    let h = start(Some(SECRET), None, "").await;
    let (xml, _) = package_at("PKG-c", 1);
    for auth in [
        None,
        Some("Bearer wrong".to_string()),
        Some(format!("Bearer {SECRET}x")),
        Some(format!("Basic {}", B64.encode("wrong"))),
        Some(format!("Basic {SECRET}")),
        Some(SECRET.to_string()),
    ] {
        let headers: Vec<(&str, String)> =
            auth.iter().map(|a| ("authorization", a.clone())).collect();
        let a = h.post(&xml, &headers).await.unwrap();
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{auth:?}");
        let challenges: Vec<&str> = a
            .headers
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert!(
            challenges.iter().any(|c| c.starts_with("Bearer")),
            "{challenges:?}"
        );
        assert!(!a.text().contains(SECRET));
    }
    assert!(h.sim.records().is_empty());
    let r = h
        .receipt(&xml, &[("authorization", format!("Bearer {SECRET}"))])
        .await;
    assert!(outcomes(&r).iter().all(|o| **o == Outcome::Accepted));
    let r = h
        .receipt(
            &xml,
            &[("authorization", format!("basic {}", B64.encode(SECRET)))],
        )
        .await;
    assert!(outcomes(&r).iter().all(|o| **o == Outcome::Duplicate));
    // The harness's view needs no credential.
    let stats: SimStats = h.get("/sim/stats").await;
    assert_eq!(stats.auth_failures, 6);
    assert_eq!(stats.packages, 2);
    assert!(!format!("{:?}", h.sim).contains(SECRET));
    let opts = SimOptions {
        listen: String::new(),
        certs: PathBuf::new(),
        credential: Some(SecretString::new(SECRET.into())),
        verify_key: None,
        faults: FaultPlan::default(),
    };
    assert!(!format!("{opts:?}").contains(SECRET));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_are_checked_over_the_exact_body() {
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let line = format!("push-2026 {}\n", B64.encode(key.verifying_key().as_bytes()));
    let verify = parse_verify_key(&line).unwrap();
    assert_eq!(verify, ("push-2026".to_string(), key.verifying_key()));
    let h = start(Some(SECRET), Some(verify), "").await;
    let auth = ("authorization", format!("Bearer {SECRET}"));
    let (xml, _) = package_at("PKG-s", 1);
    let other = SigningKey::from_bytes(&[8u8; 32]);
    for (sig, says) in [
        (None, "missing"),
        (Some("keyid=push-2026".to_string()), "not keyid="),
        (Some("garbage".to_string()), "not keyid="),
        (
            Some(signature_header_value("push-2025", &key, &xml)),
            "unknown signing key",
        ),
        (
            Some(signature_header_value("push-2026", &key, b"another body")),
            "does not verify",
        ),
        (
            Some(signature_header_value("push-2026", &other, &xml)),
            "does not verify",
        ),
        (
            Some("keyid=push-2026;ed25519=AAAA".to_string()),
            "expected 64",
        ),
        (Some("keyid=push-2026;ed25519=!!".to_string()), "not base64"),
    ] {
        let mut headers = vec![auth.clone()];
        headers.extend(sig.map(|s| (SIGNATURE_HEADER, s)));
        let a = h.post(&xml, &headers).await.unwrap();
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{says}");
        assert!(a.text().contains(says), "{:?} lacks {says:?}", a.text());
    }
    let good = signature_header_value("push-2026", &key, &xml);
    assert!(good.starts_with("keyid=push-2026;ed25519="));
    let r = h
        .receipt(&xml, &[auth.clone(), ("X-Xianjie-Signature", good)])
        .await;
    assert!(outcomes(&r).iter().all(|o| **o == Outcome::Accepted));
    assert_eq!(h.sim.stats().auth_failures, 8);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_injected_in_order_and_a_reset_still_stores() {
    let h = start(None, None, "500,503,429:7,429,delay:300,400,resetx2").await;
    let (p1, k1) = package_at("PKG-f1", 1);
    let (p2, k2) = package_at("PKG-f2", 2);
    let n = k1.len() as u64;
    for (status, retry_after) in [
        (StatusCode::INTERNAL_SERVER_ERROR, None),
        (StatusCode::SERVICE_UNAVAILABLE, None),
        (StatusCode::TOO_MANY_REQUESTS, Some("7")),
        (StatusCode::TOO_MANY_REQUESTS, Some("1")),
    ] {
        let a = h.post(&p1, &[]).await.unwrap();
        assert_eq!(a.status, status);
        assert_eq!(
            a.headers
                .get(header::RETRY_AFTER)
                .map(|v| v.to_str().unwrap()),
            retry_after
        );
    }
    assert!(
        h.sim.records().is_empty(),
        "faulted packages are not processed"
    );
    let t = std::time::Instant::now();
    let r = h.receipt(&p1, &[]).await;
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
    assert!(outcomes(&r).iter().all(|o| **o == Outcome::Accepted));

    let a = h.post(&p2, &[]).await.unwrap();
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.text().contains("injected"));
    assert_eq!(h.sim.records().len() as u64, n);

    // A receipt lost on the way back: the client sees a broken connection...
    let e = h
        .post(&p2, &[])
        .await
        .err()
        .expect("the connection is dropped");
    assert!(e.starts_with("request:") || e.starts_with("body:"), "{e}");
    // ...but the platform kept the package, once, even when it arrives again.
    let _ = h.post(&p2, &[]).await.err().expect("dropped again");
    let records = h.sim.records();
    let kept: Vec<(String, u64)> = records.iter().map(|r| (r.id.clone(), r.version)).collect();
    assert_eq!(kept, [k1.clone(), k2.clone()].concat());
    // The retry after the faults: all duplicates.
    let r = h.receipt(&p2, &[]).await;
    assert!(outcomes(&r).iter().all(|o| **o == Outcome::Duplicate));

    let stats = h.sim.stats();
    assert_eq!(stats.faults_injected, 8);
    assert_eq!(stats.packages, 4);
    assert_eq!(stats.records_accepted, 2 * n);
    assert_eq!(stats.duplicates, 2 * n);
    assert_eq!(stats.packages_refused, 0);

    // The plan can be replaced and cleared at run time.
    let a = h
        .request(Method::POST, "/sim/faults", &[], b"503x2,bogus".to_vec())
        .await
        .unwrap();
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.text().contains("\"bogus\""), "{}", a.text());
    let a = h
        .request(Method::POST, "/sim/faults", &[], b"503x2".to_vec())
        .await
        .unwrap();
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        h.post(&p2, &[]).await.unwrap().status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let a = h
        .request(Method::DELETE, "/sim/faults", &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(h.post(&p2, &[]).await.unwrap().status, StatusCode::OK);
    h.sim.set_faults(parse_faults("429:3").unwrap());
    let a = h.post(&p2, &[]).await.unwrap();
    assert_eq!(a.headers[header::RETRY_AFTER], "3");
    assert_eq!(h.sim.stats().faults_injected, 10);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_and_chosen_records_are_rejected_alone() {
    let (xml, keys) = package_at("PKG-r", 1);
    let chosen = keys[1].0.clone();
    let h = start(None, None, &format!("reject:{chosen}")).await;

    // One record with a wrong USCC check character.
    let text = String::from_utf8(xml.clone()).unwrap();
    // The party's USCC in the first record that has one (CF_, XK_ or unprefixed).
    let at = text.find("XDR_SHXYM>").unwrap() + "XDR_SHXYM>".len();
    let code = &text[at..at + 18];
    let wrong = format!(
        "{}{}",
        &code[..17],
        if code.ends_with('0') { '1' } else { '0' }
    );
    let bad = format!("{}{wrong}{}", &text[..at], &text[at + 18..]);
    let bad_index = text[..at].matches(" version=\"").count() - 2;

    let r = h.receipt(bad.as_bytes(), &[]).await;
    for (i, x) in r.results.iter().enumerate() {
        match &x.outcome {
            Outcome::Rejected { code, reason } if i == bad_index => {
                assert_eq!(code, "E-USCC");
                assert!(reason.contains("XDR_SHXYM"), "{reason}");
            }
            Outcome::Rejected { code, reason } if x.id == chosen => {
                assert_eq!(code, E_SIM_REJECT);
                assert_eq!(reason, "rejected by fault injection");
            }
            other => assert_eq!(other, &Outcome::Accepted, "record {i}"),
        }
    }
    assert_ne!(bad_index, 1, "the two rejections are different records");
    let kept: Vec<String> = h.sim.records().into_iter().map(|r| r.id).collect();
    assert_eq!(kept.len(), keys.len() - 2);
    assert!(!kept.contains(&chosen) && !kept.contains(&keys[bad_index].0));

    // Sent again (fixed): the rejected one is now accepted, the chosen one still rejected.
    let r = h.receipt(&xml, &[]).await;
    for (i, x) in r.results.iter().enumerate() {
        let want = if x.id == chosen {
            Outcome::Rejected {
                code: E_SIM_REJECT.into(),
                reason: "rejected by fault injection".into(),
            }
        } else if i == bad_index {
            Outcome::Accepted
        } else {
            Outcome::Duplicate
        };
        assert_eq!(x.outcome, want, "record {i}");
    }
    let stats = h.sim.stats();
    assert_eq!(stats.rejected, 3);
    assert_eq!(
        stats.faults_injected, 0,
        "standing rules are not consumed faults"
    );

    // A refused record costs its whole package a 400, every time, and nothing is kept;
    // a package without it goes through.
    let refused = keys[2].0.clone();
    h.sim
        .set_faults(parse_faults(&format!("refuse:{refused}")).unwrap());
    let (v2, _) = package_at("PKG-r2", 2);
    let before = h.sim.records().len();
    for _ in 0..2 {
        let a = h.post(&v2, &[]).await.unwrap();
        assert_eq!(a.status, StatusCode::BAD_REQUEST);
        assert!(
            a.text().contains(&format!("record {refused} is refused")),
            "{}",
            a.text()
        );
    }
    assert_eq!(h.sim.records().len(), before);
    assert_eq!(h.sim.stats().packages_refused, 2);
    let cases = golden_cases();
    let others = upserts(
        pushable(&cases)
            .into_iter()
            .filter(|c| package::record_id(c) != refused),
    );
    let without = package::build(&header("PKG-r3"), &others).unwrap();
    let r = h.receipt(&without, &[]).await;
    assert_eq!(r.results.len(), keys.len() - 1);
    assert!(r.results.iter().all(|x| x.id != refused));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_packages_of_a_thousand_records_concurrently() {
    let h = Arc::new(start(None, None, "").await);
    let packages: Vec<Vec<u8>> = (0..10)
        .map(|p| {
            let cases = golden_cases();
            let cases: Vec<Case> = pushable(&cases).into_iter().cloned().collect();
            let owned: Vec<Case> = (0..1000)
                .map(|i| {
                    let mut c = cases[i % cases.len()].clone();
                    c.version = (p * 1000 + i) as u64 + 1;
                    c
                })
                .collect();
            let records: Vec<Record<'_>> = owned
                .iter()
                .map(|c| Record {
                    op: Op::Upsert,
                    case: c,
                })
                .collect();
            package::build(&header(&format!("PKG-load-{p}")), &records).unwrap()
        })
        .collect();
    let t = std::time::Instant::now();
    let mut tasks = Vec::new();
    for xml in packages {
        let h = h.clone();
        tasks.push(tokio::spawn(async move { h.receipt(&xml, &[]).await }));
    }
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.results.len(), 1000);
        assert!(outcomes(&r).iter().all(|o| **o == Outcome::Accepted));
    }
    eprintln!(
        "10 x 1000 records over HTTPS in {:?} (debug build)",
        t.elapsed()
    );
    assert_eq!(h.sim.stats().records_accepted, 10_000);
    assert_eq!(h.sim.records().len(), 10_000);
}
