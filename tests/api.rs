//! The port API through real TLS to the real gateway on port 0: mTLS, tokens and the attacks on
//! them, ports, pagination (every case exactly once), the change feed as a mirror, problem
//! documents, rate limits, audit entries for every data response, and fail-closed serving.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::path::{Path, PathBuf};

use base64::Engine;
use chrono::Datelike as _;
use common::{Gateway, Reply, secret_file};
use http_body_util::Full;
use hyper::body::Bytes;
use serde_json::Value;

const PASS: &str = "port api passphrase 123";
const FIRE: &str = "11320102471049746T"; // 消防救援大队 (sunshine adapter)
const MARKET: &str = "11320102526018159L"; // 市场监督管理局

struct Env {
    _tmp: tempfile::TempDir,
    gw: Gateway,
    certs: PathBuf,
    addr: String,
}

/// A gateway with the API on and no data: certificates for `procuratorate` and `other`.
fn setup_bare(extra: &str) -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let certs = tmp.path().join("certs");
    xianjie_devca::generate_dev(&certs, &["procuratorate".into(), "other".into()], false).unwrap();
    let data = tmp.path().join("data");
    let cfg = common::api_config(tmp.path(), &data, &certs, extra);
    let pass = secret_file(&tmp.path().join("pass"), PASS);
    let gw = Gateway::start_with(&cfg, &data, &["--passphrase-file", pass.to_str().unwrap()]);
    let addr = std::fs::read_to_string(data.join("api.addr"))
        .unwrap()
        .trim()
        .to_string();
    Env {
        _tmp: tmp,
        gw,
        certs,
        addr,
    }
}

/// Sample inputs of `cases` cases for every adapter, without bad rows, under the test's directory.
fn samples(env: &Env, cases: u64) -> PathBuf {
    let samples = env._tmp.path().join("samples");
    xianjie::sample::generate(
        &samples,
        &xianjie::sample::SampleOptions {
            cases,
            bad_fraction: 0.0,
            seed: 5,
        },
    )
    .unwrap();
    samples
}

/// A gateway with the API on, sample data ingested, client `procuratorate` with the FIRE port open.
fn setup(extra: &str) -> Env {
    let env = setup_bare(extra);
    let samples = samples(&env, 400);
    env.gw.ok(&[
        "ingest",
        "sunshine",
        samples.join("sunshine").to_str().unwrap(),
    ]);
    env.gw.ok(&[
        "ingest",
        "market-inspection",
        samples.join("market-inspection").to_str().unwrap(),
    ]);
    env
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

trait ProblemExt {
    fn problem(&self, status: u16, kind: &str) -> Value;
}

impl ProblemExt for Reply {
    fn problem(&self, status: u16, kind: &str) -> Value {
        assert_eq!(
            self.status,
            status,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(
            self.headers["content-type"], "application/problem+json",
            "problem documents for every error"
        );
        let p = self.json();
        assert_eq!(p["type"], format!("urn:xianjie:problem:{kind}"), "{p}");
        assert_eq!(p["status"], status);
        p
    }
}

impl Env {
    fn identity(&self, name: &str) -> (PathBuf, PathBuf) {
        (
            self.certs.join(format!("{name}.pem")),
            self.certs.join(format!("{name}-key.pem")),
        )
    }

    /// A TLS connection to the API presenting client certificate `cert` (or none).
    async fn connect(
        &self,
        cert: Option<&str>,
    ) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
        let id = cert.map(|c| self.identity(c));
        common::tls_connect(
            &self.certs.join("ca.pem"),
            id.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
            &self.addr,
        )
        .await
    }

    /// One HTTPS request (a fresh connection) presenting client certificate `cert` (or none).
    fn request(
        &self,
        cert: Option<&str>,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &str,
    ) -> Result<Reply, String> {
        self.request_bytes(cert, method, path, headers, body.as_bytes().to_vec())
    }

    fn request_bytes(
        &self,
        cert: Option<&str>,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<Reply, String> {
        common::https_as(&self.certs, cert, &self.addr, method, path, headers, body)
    }

    fn get(&self, cert: &str, token: &str, path: &str) -> Reply {
        self.get_as(Some(cert), token, path)
    }

    /// `GET path` with `token`, presenting client certificate `cert` (or none).
    fn get_as(&self, cert: Option<&str>, token: &str, path: &str) -> Reply {
        self.request(
            cert,
            "GET",
            path,
            &[("authorization", format!("Bearer {token}"))],
            "",
        )
        .unwrap()
    }

    /// `GET path` asking for XML.
    fn get_xml(&self, token: &str, path: &str) -> Reply {
        self.request(
            Some("procuratorate"),
            "GET",
            path,
            &[
                ("authorization", format!("Bearer {token}")),
                ("accept", "application/xml".into()),
            ],
            "",
        )
        .unwrap()
    }

    fn token_reply(&self, cert: Option<&str>, client: &str, secret: &str) -> Reply {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{client}:{secret}"));
        self.request(
            cert,
            "POST",
            "/oauth/token",
            &[
                ("authorization", format!("Basic {basic}")),
                (
                    "content-type",
                    "application/x-www-form-urlencoded".to_string(),
                ),
            ],
            "grant_type=client_credentials",
        )
        .unwrap()
    }

    fn token(&self, cert: &str, client: &str, secret: &str) -> String {
        let r = self.token_reply(Some(cert), client, secret);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()["access_token"].as_str().unwrap().to_string()
    }

    fn add_client(&self, name: &str, extra: &[&str]) -> String {
        let mut args = vec!["clients", "add", name];
        args.extend_from_slice(extra);
        self.gw
            .ok(&args)
            .lines()
            .find_map(|l| l.strip_prefix("secret:").map(|s| s.trim().to_string()))
            .unwrap()
    }

    fn audit(&self, n: usize) -> Vec<Value> {
        self.gw
            .ok(&["audit", "tail", "-n", &n.to_string(), "--json"])
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

#[test]
fn tokens_ports_pages_and_the_change_feed() {
    // A push destination nobody listens at (it never runs: scheduled once a year), so /metrics
    // has a queue to count.
    let env = setup(
        "[[destinations]]\nname = \"province\"\nurl = \"https://127.0.0.1:9/packages\"\nca = \"certs/ca.pem\"\nschedule = \"0 0 0 1 1 *\"\nactions = [\"penalty\", \"licensing\", \"inspection\"]\ncredential = \"province\"\n",
    );
    let secret = env.add_client("procuratorate", &[]);
    env.gw
        .ok(&["ports", "open", FIRE, "--client", "procuratorate"]);

    // mTLS required: no certificate, or one from another CA, gets no connection at all.
    assert!(env.request(None, "GET", "/healthz", &[], "").is_err());
    let foreign = tempfile::tempdir().unwrap();
    xianjie_devca::generate_dev(foreign.path(), &["procuratorate".into()], false).unwrap();
    std::fs::copy(
        foreign.path().join("procuratorate.pem"),
        env.certs.join("foreign.pem"),
    )
    .unwrap();
    std::fs::copy(
        foreign.path().join("procuratorate-key.pem"),
        env.certs.join("foreign-key.pem"),
    )
    .unwrap();
    assert!(
        env.request(Some("foreign"), "GET", "/healthz", &[], "")
            .is_err()
    );
    let h = env
        .request(Some("procuratorate"), "GET", "/healthz", &[], "")
        .unwrap();
    assert_eq!(h.json()["sealed"], false);

    // Wrong secret: a problem, and no token.
    env.token_reply(Some("procuratorate"), "procuratorate", "xjs_wrong")
        .problem(401, "invalid-client");
    let token = env.token("procuratorate", "procuratorate", &secret);

    // The token is bound to the certificate it was issued over.
    env.get("other", &token, "/v1/ports")
        .problem(401, "unauthorized");
    let ports = env.get("procuratorate", &token, "/v1/ports").json();
    assert_eq!(ports["ports"].as_array().unwrap().len(), 1);
    assert_eq!(ports["ports"][0]["unit_code"], FIRE);

    // A closed port: 403, whatever the token says.
    env.get(
        "procuratorate",
        &token,
        &format!("/v1/ports/{MARKET}/cases"),
    )
    .problem(403, "forbidden");

    // Pagination returns every case of the port exactly once.
    let mut seen = Vec::new();
    let mut path = format!("/v1/ports/{FIRE}/cases?limit=7");
    loop {
        let page = env.get("procuratorate", &token, &path).json();
        for c in page["cases"].as_array().unwrap() {
            assert_eq!(c["unit_code"], FIRE);
            seen.push(c["case_id"].as_str().unwrap().to_string());
        }
        match page["next"].as_str() {
            Some(next) => path = format!("/v1/ports/{FIRE}/cases?limit=7&cursor={next}"),
            None => break,
        }
    }
    let total = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), total, "no case twice");
    let status = env.gw.json(&["status", "--json"]);
    let expected = status["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["unit_code"] == FIRE)
        .unwrap()["total"]
        .as_u64()
        .unwrap();
    assert_eq!(total as u64, expected, "every case once");

    // A tampered cursor, or one reused with another filter, is refused naming the parameter.
    let page = env
        .get(
            "procuratorate",
            &token,
            &format!("/v1/ports/{FIRE}/cases?limit=2"),
        )
        .json();
    let cursor = page["next"].as_str().unwrap().to_string();
    let mut forged = cursor.clone();
    forged.replace_range(0..1, if cursor.starts_with('A') { "B" } else { "A" });
    let p = env
        .get(
            "procuratorate",
            &token,
            &format!("/v1/ports/{FIRE}/cases?limit=2&cursor={forged}"),
        )
        .problem(422, "bad-parameter");
    assert_eq!(p["field"], "cursor");
    env.get(
        "procuratorate",
        &token,
        &format!("/v1/ports/{FIRE}/cases?limit=2&action=penalty&cursor={cursor}"),
    )
    .problem(422, "bad-parameter");

    // Filters: a bad one names its field; a good one filters.
    let p = env
        .get(
            "procuratorate",
            &token,
            &format!("/v1/ports/{FIRE}/cases?action=fine"),
        )
        .problem(422, "bad-parameter");
    assert_eq!(p["field"], "action");
    let penalties = env
        .get(
            "procuratorate",
            &token,
            &format!("/v1/ports/{FIRE}/cases?action=penalty&limit=1000"),
        )
        .json();
    let penalties = penalties["cases"].as_array().unwrap();
    assert!(!penalties.is_empty() && penalties.iter().all(|c| c["action"] == "penalty"));

    // One case by id, and 404 for another.
    let id = &seen[0];
    let one = env
        .get(
            "procuratorate",
            &token,
            &format!("/v1/ports/{FIRE}/cases/{id}"),
        )
        .json();
    assert_eq!(one["case_id"], id.as_str());
    env.get(
        "procuratorate",
        &token,
        &format!("/v1/ports/{FIRE}/cases/NOPE-1"),
    )
    .problem(404, "not-found");
    env.get("procuratorate", &token, "/v1/nothing")
        .problem(404, "not-found");

    // The change feed, paged, mirrors exactly the port's cases.
    let mut mirror = std::collections::BTreeMap::new();
    let mut after = 0;
    loop {
        let page = env
            .get(
                "procuratorate",
                &token,
                &format!("/v1/changes?after={after}&limit=9"),
            )
            .json();
        let changes = page["changes"].as_array().unwrap();
        for ch in changes {
            assert_eq!(ch["unit_code"], FIRE, "only open ports appear");
            mirror.insert(
                ch["case_id"].as_str().unwrap().to_string(),
                ch["case"]["version"].as_u64().unwrap(),
            );
        }
        let next = page["next_after"].as_u64().unwrap();
        if changes.is_empty() {
            break;
        }
        after = next;
    }
    assert_eq!(mirror.keys().cloned().collect::<Vec<_>>(), seen);

    // Metrics need a token, and count the requests by route template and status, without
    // identifiers.
    env.request(Some("procuratorate"), "GET", "/metrics", &[], "")
        .unwrap()
        .problem(401, "unauthorized");
    let m = env.get("procuratorate", &token, "/metrics");
    let text = String::from_utf8(m.body).unwrap();
    assert!(
        text.contains(
            "xianjie_http_requests_total{route=\"GET /v1/ports/{unit}/cases\",status=\"200\"}"
        ),
        "{text}"
    );
    assert!(text.contains("status=\"422\"") && text.contains("xianjie_audit_entries "));
    assert!(!text.contains(FIRE), "no identifiers in metrics");
    // Push gauges per destination: the queue, and (the sample's decisions being from 2024–2025)
    // all of it overdue but the restricted and revoked records the platform will never be sent
    // (tests/push.rs checks that split exactly against a push).
    let gauge = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    let queued = gauge("xianjie_push_queued{destination=\"province\"}");
    assert!(queued > 0);
    assert_eq!(queued, gauge("xianjie_outbox_size"));
    let overdue = gauge("xianjie_push_overdue{destination=\"province\"}");
    assert!(overdue > 0 && overdue < queued, "{overdue} of {queued}");
    assert_eq!(
        gauge("xianjie_push_delivered_total{destination=\"province\"}"),
        0
    );
    // The calendar: this year is covered exactly when the shipped tables (2024–2026) have it; the
    // queue's records are all from covered years, so the destination's uncovered years are the
    // years ahead that are not covered.
    let year = chrono::Local::now().date_naive().year();
    assert_eq!(
        gauge(&format!("xianjie_calendar_year_covered{{year=\"{year}\"}}")),
        u64::from((2024..=2026).contains(&year))
    );
    let not_covered = text
        .lines()
        .filter(|l| l.starts_with("xianjie_calendar_year_covered{") && l.ends_with(" 0"))
        .count() as u64;
    assert_eq!(
        gauge("xianjie_push_calendar_uncovered_years{destination=\"province\"}"),
        not_covered
    );

    // Every data response was audited, with its count.
    let entries = env.audit(500);
    let lists: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "case.list")
        .collect();
    assert!(lists.len() >= total / 7);
    assert!(
        lists
            .iter()
            .all(|e| e["actor"]["id"] == "procuratorate" && e["digest"].is_string())
    );
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "case.read" && e["target"] == format!("{FIRE}/{id}"))
    );
    assert!(entries.iter().any(|e| e["action"] == "changes.read"));
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "token.issue" && e["outcome"] == "denied")
    );

    // Closing the port stops the token at once; revoking the client stops everything.
    env.gw
        .ok(&["ports", "close", FIRE, "--client", "procuratorate"]);
    env.get("procuratorate", &token, &format!("/v1/ports/{FIRE}/cases"))
        .problem(403, "forbidden");
    env.gw.ok(&["clients", "revoke", "procuratorate"]);
    env.get("procuratorate", &token, "/v1/ports")
        .problem(401, "unauthorized");
    env.token_reply(Some("procuratorate"), "procuratorate", &secret)
        .problem(401, "invalid-client");
}

#[test]
fn forged_tokens_are_refused() {
    let env = setup("");
    let secret = env.add_client("procuratorate", &[]);
    env.gw
        .ok(&["ports", "open", FIRE, "--client", "procuratorate"]);
    let token = env.token("procuratorate", "procuratorate", &secret);
    let parts: Vec<&str> = token.split('.').collect();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap(),
    )
    .unwrap();
    let jwks = env
        .request(
            Some("procuratorate"),
            "GET",
            "/.well-known/jwks.json",
            &[],
            "",
        )
        .unwrap()
        .json();
    let public = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(jwks["keys"][0]["x"].as_str().unwrap())
        .unwrap();
    let mut wide = claims.clone();
    wide["scope"] = format!("port:{FIRE}:read port:{MARKET}:read").into();
    let hs256 = {
        use hmac::{Hmac, Mac};
        let h = b64(&serde_json::json!({"alg":"HS256","typ":"at+jwt","kid":"jwt-1"}));
        let p = b64(&claims);
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&public).unwrap();
        mac.update(format!("{h}.{p}").as_bytes());
        let s =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{h}.{p}.{s}")
    };
    let forged = vec![
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(&serde_json::json!({"alg":"none","typ":"at+jwt","kid":"jwt-1"})),
                parts[1]
            ),
        ),
        (
            "alg NoNe",
            format!(
                "{}.{}.",
                b64(&serde_json::json!({"alg":"NoNe","typ":"at+jwt","kid":"jwt-1"})),
                parts[1]
            ),
        ),
        ("HS256 with the public key", hs256),
        (
            "RS256",
            format!(
                "{}.{}.{}",
                b64(&serde_json::json!({"alg":"RS256","typ":"at+jwt","kid":"jwt-1"})),
                parts[1],
                parts[2]
            ),
        ),
        (
            "unknown kid",
            format!(
                "{}.{}.{}",
                b64(&serde_json::json!({"alg":"EdDSA","typ":"at+jwt","kid":"jwt-9"})),
                parts[1],
                parts[2]
            ),
        ),
        (
            "path kid",
            format!(
                "{}.{}.{}",
                b64(&serde_json::json!({"alg":"EdDSA","typ":"at+jwt","kid":"../keystore.json"})),
                parts[1],
                parts[2]
            ),
        ),
        ("stripped signature", format!("{}.{}.", parts[0], parts[1])),
        ("altered signature", {
            // Change a character in the middle of the signature: always different bytes.
            let mut sig: Vec<char> = parts[2].chars().collect();
            sig[20] = if sig[20] == 'A' { 'B' } else { 'A' };
            format!(
                "{}.{}.{}",
                parts[0],
                parts[1],
                sig.iter().collect::<String>()
            )
        }),
        (
            "widened scope",
            format!("{}.{}.{}", parts[0], b64(&wide), parts[2]),
        ),
        (
            "wrong typ",
            format!(
                "{}.{}.{}",
                b64(&serde_json::json!({"alg":"EdDSA","typ":"JWT","kid":"jwt-1"})),
                parts[1],
                parts[2]
            ),
        ),
        ("garbage", "not.a.token".to_string()),
    ];
    for (what, t) in forged {
        let r = env.get("procuratorate", &t, &format!("/v1/ports/{FIRE}/cases"));
        assert_eq!(
            r.status,
            401,
            "{what}: {}",
            String::from_utf8_lossy(&r.body)
        );
        r.problem(401, "unauthorized");
    }
    env.request(Some("procuratorate"), "GET", "/v1/ports", &[], "")
        .unwrap()
        .problem(401, "unauthorized");
    // The genuine token still works (the refusals above were not luck).
    assert_eq!(env.get("procuratorate", &token, "/v1/ports").status, 200);
    // A port-A token on port B: the port is open now, but the token lacks its scope.
    env.gw
        .ok(&["ports", "open", MARKET, "--client", "procuratorate"]);
    let p = env
        .get(
            "procuratorate",
            &token,
            &format!("/v1/ports/{MARKET}/cases"),
        )
        .problem(403, "forbidden");
    assert!(p["detail"].as_str().unwrap().contains("scope"), "{p}");
}

#[test]
fn rate_limits_and_fail_closed_serving() {
    let env = setup("rate_per_sec = 1\nrate_burst = 3\n");
    let secret = env.add_client("procuratorate", &[]);
    env.gw
        .ok(&["ports", "open", FIRE, "--client", "procuratorate"]);
    let token = env.token("procuratorate", "procuratorate", &secret);
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..5 {
        let r = env.get("procuratorate", &token, "/v1/ports");
        statuses.push(r.status);
        if r.status == 429 {
            assert!(r.headers.contains_key("retry-after"));
            r.problem(429, "rate-limited");
            limited = Some(());
            break;
        }
    }
    assert!(limited.is_some(), "statuses {statuses:?}");

    // Fail closed: when the audit log cannot be written, no data is served.
    std::thread::sleep(std::time::Duration::from_secs(3)); // refill the bucket
    let r = env.gw.with_audit_unwritable(|| {
        env.get("procuratorate", &token, &format!("/v1/ports/{FIRE}/cases"))
    });
    let p = r.problem(503, "unavailable");
    assert!(!String::from_utf8_lossy(&r.body).contains("case_id"), "{p}");
}

#[test]
fn a_40_kb_client_name_is_refused_and_leaves_a_small_verified_audit_entry() {
    use sha2::{Digest, Sha256};
    let env = setup("");
    // 40 KB of name, in CJK so that the audit log's cut falls inside a character.
    let name = "检".repeat(40 * 1024 / 3 + 1);
    assert!(name.len() > 40 * 1024);
    env.token_reply(Some("procuratorate"), &name, "xjs_not-a-secret")
        .problem(401, "invalid-client");

    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("export");
    env.gw.ok(&["audit", "export", out.to_str().unwrap()]);
    let v = env.gw.ok(&["audit", "verify", out.to_str().unwrap()]);
    assert!(v.starts_with("verified:"), "{v}");
    let text = std::fs::read_to_string(out.join("entries.jsonl")).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("\"action\":\"token.issue\"") && l.contains("\"denied\""))
        .expect("the refused login has its entry");
    assert!(line.len() < 1024, "{} bytes: {line}", line.len());
    let e: Value = serde_json::from_str(line).unwrap();
    let kept = format!("{}…", "检".repeat(85)); // 255 bytes: whole characters within 256
    assert_eq!(e["target"], kept.as_str());
    assert_eq!(e["actor"]["id"], kept.as_str());
    assert_eq!(e["details"]["reason"], "bad credentials");
    let whole = serde_json::json!({
        "len": name.len(),
        "sha256": hex::encode(Sha256::digest(name.as_bytes())),
    });
    assert_eq!(e["cut"]["target"], whole, "{line}");
    assert_eq!(e["cut"]["actor.id"], whole, "{line}");

    // The refusal is never left unaudited: when its entry cannot be written, the answer is the
    // audit failure, not a silent 401.
    env.gw
        .with_audit_unwritable(|| env.token_reply(Some("procuratorate"), &name, "xjs_not-a-secret"))
        .problem(503, "unavailable");
}

#[test]
fn a_pinned_client_works_only_with_its_certificate() {
    let env = setup("");
    let der = {
        let pem = std::fs::read(env.certs.join("procuratorate.pem")).unwrap();
        use rustls_pki_types::pem::PemObject;
        rustls_pki_types::CertificateDer::from_pem_slice(&pem).unwrap()
    };
    let fp = xianjie::tls::fingerprint(&der);
    let secret = env.add_client("pinned", &["--cert-fingerprint", &fp]);
    env.token_reply(Some("other"), "pinned", &secret)
        .problem(401, "invalid-client");
    let t = env.token("procuratorate", "pinned", &secret);
    assert_eq!(env.get("procuratorate", &t, "/v1/ports").status, 200);
}

#[test]
fn pages_stay_exact_while_ingest_runs_and_audit_survives_a_crash() {
    let mut env = setup("");
    let secret = env.add_client("procuratorate", &[]);
    env.gw
        .ok(&["ports", "open", FIRE, "--client", "procuratorate"]);
    let token = env.token("procuratorate", "procuratorate", &secret);
    let before: Vec<String> = {
        let page = env
            .get(
                "procuratorate",
                &token,
                &format!("/v1/ports/{FIRE}/cases?limit=1000"),
            )
            .json();
        page["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["case_id"].as_str().unwrap().to_string())
            .collect()
    };
    // Another export of the same system (other seed): the same case numbers with new content,
    // ingested while the client pages through the port.
    let other = env._tmp.path().join("other");
    xianjie::sample::generate(
        &other,
        &xianjie::sample::SampleOptions {
            cases: 400,
            bad_fraction: 0.0,
            seed: 6,
        },
    )
    .unwrap();
    let ingest = {
        let data = env.gw.data.clone();
        let file = other.join("sunshine");
        std::thread::spawn(move || {
            std::process::Command::new(common::bin())
                .arg("--data")
                .arg(&data)
                .args(["ingest", "sunshine"])
                .arg(&file)
                .output()
                .unwrap()
        })
    };
    let mut seen = Vec::new();
    let mut request_ids = Vec::new();
    let mut path = format!("/v1/ports/{FIRE}/cases?limit=3");
    loop {
        let r = env.get("procuratorate", &token, &path);
        request_ids.push(r.headers["x-request-id"].to_str().unwrap().to_string());
        let page = r.json();
        for c in page["cases"].as_array().unwrap() {
            seen.push(c["case_id"].as_str().unwrap().to_string());
        }
        match page["next"].as_str() {
            Some(next) => path = format!("/v1/ports/{FIRE}/cases?limit=3&cursor={next}"),
            None => break,
        }
    }
    assert!(ingest.join().unwrap().status.success());
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "a case was returned twice");
    for id in &before {
        assert!(unique.contains(id), "{id} was skipped");
    }

    // SIGKILL right after the last response: every response received has its audit entry.
    env.gw.child.kill().unwrap();
    env.gw.child.wait().unwrap();
    let cfg = env._tmp.path().join("xianjie.toml");
    let pass = env._tmp.path().join("pass");
    let data = env.gw.data.clone();
    env.gw = Gateway::start_with(&cfg, &data, &["--passphrase-file", pass.to_str().unwrap()]);
    let entries = env.audit(5000);
    let audited: std::collections::BTreeSet<&str> = entries
        .iter()
        .filter(|e| e["action"] == "case.list")
        .filter_map(|e| e["request_id"].as_str())
        .collect();
    for id in &request_ids {
        assert!(
            audited.contains(id.as_str()),
            "response {id} has no audit entry"
        );
    }
}

#[test]
fn client_auth_optional_and_off() {
    // Optional: a client without a certificate gets an unbound token that works without one; a
    // token issued over a certificate works only with it.
    let env = setup("client_auth = \"optional\"\n");
    let secret = env.add_client("procuratorate", &[]);
    env.gw
        .ok(&["ports", "open", FIRE, "--client", "procuratorate"]);
    let r = env.token_reply(None, "procuratorate", &secret);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let unbound = r.json()["access_token"].as_str().unwrap().to_string();
    let ports = env.get_as(None, &unbound, "/v1/ports");
    assert_eq!(ports.status, 200);
    let bound = env.token("procuratorate", "procuratorate", &secret);
    env.get_as(None, &bound, "/v1/ports")
        .problem(401, "unauthorized");
    // A certificate from another CA is still refused.
    let foreign = tempfile::tempdir().unwrap();
    xianjie_devca::generate_dev(foreign.path(), &["x".into()], false).unwrap();
    std::fs::copy(foreign.path().join("x.pem"), env.certs.join("foreign.pem")).unwrap();
    std::fs::copy(
        foreign.path().join("x-key.pem"),
        env.certs.join("foreign-key.pem"),
    )
    .unwrap();
    assert!(
        env.request(Some("foreign"), "GET", "/healthz", &[], "")
            .is_err()
    );
    drop(env);

    // Off: no certificate is asked for; tokens are never bound.
    let env = setup("client_auth = \"off\"\n");
    let secret = env.add_client("procuratorate", &[]);
    let r = env.token_reply(None, "procuratorate", &secret);
    let t = r.json()["access_token"].as_str().unwrap().to_string();
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t.split('.').nth(1).unwrap())
        .unwrap();
    let claims: Value = serde_json::from_slice(&payload).unwrap();
    assert!(claims.get("cnf").is_none(), "{claims}");
    assert_eq!(
        env.request(None, "GET", "/healthz", &[], "")
            .unwrap()
            .status,
        200
    );
}

/// Checks `reply` against the schema that `openapi.json` gives for `method path` and its status.
fn conforms(doc: &Value, method: &str, path: &str, reply: &Reply) {
    let status = reply.status.to_string();
    let op = &doc["paths"][path][method];
    assert!(
        op.is_object(),
        "{method} {path} is not in the OpenAPI document"
    );
    let mut resp = &op["responses"][&status];
    assert!(
        resp.is_object(),
        "{method} {path}: status {status} is not documented"
    );
    if let Some(r) = resp["$ref"].as_str() {
        resp = doc.pointer(&r[1..]).unwrap();
    }
    let content = resp["content"].as_object().unwrap();
    let ctype = reply.headers["content-type"].to_str().unwrap();
    let (_, media) = content
        .iter()
        .find(|(k, _)| ctype.starts_with(k.as_str()))
        .unwrap_or_else(|| panic!("{method} {path} {status}: content type {ctype} not documented"));
    if !ctype.contains("json") {
        return;
    }
    let schema = serde_json::json!({
        "allOf": [media["schema"]],
        "components": doc["components"],
    });
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let body = reply.json();
    let errors: Vec<String> = validator
        .iter_errors(&body)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{method} {path} {status}: {errors:?}");
}

#[test]
fn every_response_matches_the_openapi_document() {
    let env = setup("");
    let secret = env.add_client("procuratorate", &[]);
    env.gw
        .ok(&["ports", "open", FIRE, "--client", "procuratorate"]);
    let doc = env
        .request(Some("procuratorate"), "GET", "/openapi.json", &[], "")
        .unwrap()
        .json();
    let token_reply = env.token_reply(Some("procuratorate"), "procuratorate", &secret);
    conforms(&doc, "post", "/oauth/token", &token_reply);
    let token = token_reply.json()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    conforms(
        &doc,
        "post",
        "/oauth/token",
        &env.token_reply(Some("procuratorate"), "procuratorate", "xjs_wrong"),
    );
    for path in ["/healthz", "/.well-known/jwks.json", "/metrics"] {
        let r = env
            .request(Some("procuratorate"), "GET", path, &[], "")
            .unwrap();
        conforms(&doc, "get", path, &r);
    }
    conforms(
        &doc,
        "get",
        "/metrics",
        &env.get("procuratorate", &token, "/metrics"),
    );
    let cases = "/v1/ports/{unit}/cases";
    let one = "/v1/ports/{unit}/cases/{case_id}";
    let page = env.get(
        "procuratorate",
        &token,
        &format!("/v1/ports/{FIRE}/cases?limit=5"),
    );
    conforms(&doc, "get", cases, &page);
    let id = page.json()["cases"][0]["case_id"]
        .as_str()
        .unwrap()
        .to_string();
    let checks: Vec<(&str, String)> = vec![
        ("/v1/ports", "/v1/ports".into()),
        (
            cases,
            format!("/v1/ports/{FIRE}/cases?action=penalty&suspected_crime=false"),
        ),
        (cases, format!("/v1/ports/{FIRE}/cases?limit=0")),
        (cases, format!("/v1/ports/{MARKET}/cases")),
        (one, format!("/v1/ports/{FIRE}/cases/{id}")),
        (one, format!("/v1/ports/{FIRE}/cases/NOPE-1")),
        ("/v1/changes", "/v1/changes?after=0&limit=20".into()),
        ("/v1/changes", "/v1/changes?after=x".into()),
    ];
    for (template, path) in checks {
        conforms(
            &doc,
            "get",
            template,
            &env.get("procuratorate", &token, &path),
        );
    }
    conforms(
        &doc,
        "get",
        "/v1/ports",
        &env.get("procuratorate", "bad", "/v1/ports"),
    );
    // Every route the gateway serves is in the document with exactly the methods it takes:
    // the route table's 405 answers say which (`Allow`), and they must match the document's.
    let ops = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];
    for template in xianjie::api::paths() {
        let path = template
            .replace("{unit}", FIRE)
            .replace("{case_id}", "C-1")
            .replace("{doc_id}", "d1")
            .replace("{quarter}", "2025Q3");
        let r = env
            .request(Some("procuratorate"), "DELETE", &path, &[], "")
            .unwrap();
        assert_eq!(r.status, 405, "DELETE {path}");
        let allow: Vec<String> = r.headers["allow"]
            .to_str()
            .unwrap()
            .split(',')
            .map(|m| m.trim().to_ascii_lowercase())
            .filter(|m| m != "head")
            .collect();
        let documented: Vec<String> = ops
            .iter()
            .filter(|m| doc["paths"][template][**m].is_object())
            .map(|m| m.to_string())
            .collect();
        assert_eq!(
            allow, documented,
            "{template}: routed methods vs documented"
        );
    }
}

/// The golden cases of the sunshine adapter.
fn golden_cases() -> Vec<xianjie::model::Case> {
    let golden: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("adapters/sunshine/cases/mixed.csv.expected.json"),
        )
        .unwrap(),
    )
    .unwrap();
    serde_json::from_value(golden["cases"].clone()).unwrap()
}

/// A gateway started over a store that `fill` prepared directly (cases the ingest path would
/// not make, put in place before the gateway starts).
fn setup_with_store(fill: impl FnOnce(&xianjie::store::Store)) -> Env {
    setup_with_store_and(fill, "")
}

/// [`setup_with_store`] with `extra` configuration.
fn setup_with_store_and(fill: impl FnOnce(&xianjie::store::Store), extra: &str) -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let certs = tmp.path().join("certs");
    xianjie_devca::generate_dev(&certs, &["procuratorate".into()], false).unwrap();
    let data = tmp.path().join("data");
    {
        std::fs::create_dir_all(&data).unwrap();
        let store = common::open_store(&data);
        fill(&store);
        store.flush().unwrap();
    }
    let cfg = common::api_config(tmp.path(), &data, &certs, extra);
    let pass = secret_file(&tmp.path().join("pass"), PASS);
    let gw = Gateway::start_with(&cfg, &data, &["--passphrase-file", pass.to_str().unwrap()]);
    let addr = std::fs::read_to_string(data.join("api.addr"))
        .unwrap()
        .trim()
        .to_string();
    Env {
        _tmp: tmp,
        gw,
        certs,
        addr,
    }
}

#[test]
fn documents_come_with_their_digest_and_are_audited() {
    use sha2::Digest;
    // A stored case with a document.
    let mut case = golden_cases().remove(0);
    let bytes = "行政处罚决定书 (PDF stand-in) ".repeat(100).into_bytes();
    let env = setup_with_store(|store| {
        let sha = store.put_document(&bytes).unwrap();
        case.documents = vec![xianjie::model::DocumentRef {
            doc_id: "decision".into(),
            title: "行政处罚决定书".into(),
            kind: "决定书".into(),
            media_type: "application/pdf".into(),
            size: bytes.len() as u64,
            sha256: sha,
        }];
        store
            .upsert_cases(std::slice::from_ref(&case), &|_, _| Vec::new())
            .unwrap();
    });
    let unit = case.unit_code.to_string();
    let secret = env.add_client("procuratorate", &[]);
    env.gw
        .ok(&["ports", "open", &unit, "--client", "procuratorate"]);
    let token = env.token("procuratorate", "procuratorate", &secret);
    let path = format!("/v1/ports/{unit}/cases/{}/documents/decision", case.case_id);
    let r = env.get("procuratorate", &token, &path);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, bytes);
    assert_eq!(r.headers["content-type"], "application/pdf");
    let hex_sha = hex::encode(sha2::Sha256::digest(&bytes));
    let b64 = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&bytes));
    assert_eq!(r.headers["etag"], format!("\"{hex_sha}\"").as_str());
    assert_eq!(
        r.headers["repr-digest"],
        format!("sha-256=:{b64}:").as_str()
    );
    env.get(
        "procuratorate",
        &token,
        &format!("/v1/ports/{unit}/cases/{}/documents/other", case.case_id),
    )
    .problem(404, "not-found");
    let audited = env
        .audit(50)
        .into_iter()
        .any(|e| e["action"] == "document.read" && e["digest"] == hex_sha.as_str());
    assert!(audited, "document.read with the document's digest");
}

/// A path segment, percent-encoded (every byte outside RFC 3986's unreserved set).
fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Asserts `r` serves `bytes` with their SHA-256 in `Repr-Digest`, `Digest` and `ETag`.
fn serves(r: &Reply, bytes: &[u8], media_type: &str) {
    use sha2::Digest;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.body == bytes, "the bytes served are not the file's");
    assert_eq!(r.headers["content-type"], media_type);
    let digest = sha2::Sha256::digest(bytes);
    let b64 = base64::engine::general_purpose::STANDARD.encode(digest);
    assert_eq!(
        r.headers["repr-digest"],
        format!("sha-256=:{b64}:").as_str()
    );
    assert_eq!(r.headers["digest"], format!("sha-256={b64}").as_str());
    assert_eq!(
        r.headers["etag"],
        format!("\"{}\"", hex::encode(digest)).as_str()
    );
}

/// Issue 14: a document attached through an adapter is listed on the case and served with its
/// digest, and a report's document copies are served too; neither reaches a client from a port
/// it may not read.
#[test]
fn attached_documents_and_report_copies_reach_only_the_ports_holders() {
    use sha2::Digest;
    const TOBACCO: &str = "11320102466008745E";
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let env = setup_bare(&format!(
        "[reports]\nformats_dir = {:?}\n[[reports.submitters]]\nunit = \"{TOBACCO}\"\nname = \"南京市玄武区烟草专卖局\"\n",
        repo.join("submissions").display().to_string()
    ));
    let api = env
        .request(Some("procuratorate"), "GET", "/openapi.json", &[], "")
        .unwrap()
        .json();
    // The inspection system delivers its export to the inbox, its documents folder first.
    let samples = samples(&env, 500);
    let export = samples.join("market-inspection/inspection-results.xlsx");
    let inbox = env.gw.data.join("inbox/market-inspection");
    let folder = inbox.join("inspection-results.xlsx.files");
    std::fs::create_dir_all(&folder).unwrap();
    for e in
        std::fs::read_dir(samples.join("market-inspection/inspection-results.xlsx.files")).unwrap()
    {
        let e = e.unwrap();
        std::fs::copy(e.path(), folder.join(e.file_name())).unwrap();
    }
    std::fs::copy(&export, inbox.join("inspection-results.xlsx")).unwrap();
    let scan = env.gw.json(&["scan", "market-inspection", "--json"]);
    let file = &scan["files"][0];
    assert!(file["refused"].is_null(), "{scan}");
    assert_eq!(file["summary"]["rejected"], 0, "{scan}");
    // The folder followed its export to done/.
    let done = inbox.join("done/inspection-results.xlsx.files");
    assert!(done.is_dir() && !folder.exists());

    // `procuratorate` holds the market regulator's port; `other` only the fire brigade's.
    let secret = env.add_client("procuratorate", &[]);
    let other_secret = env.add_client("other", &[]);
    env.gw
        .ok(&["ports", "open", MARKET, "--client", "procuratorate"]);
    env.gw.ok(&["ports", "open", FIRE, "--client", "other"]);
    let token = env.token("procuratorate", "procuratorate", &secret);
    let other = env.token("other", "other", &other_secret);

    // A case lists its documents with their digests; each is served as the file it was.
    let page = env
        .get(
            "procuratorate",
            &token,
            &format!("/v1/ports/{MARKET}/cases?limit=1000"),
        )
        .json();
    let with_documents: Vec<&Value> = page["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !c["documents"].as_array().unwrap().is_empty())
        .collect();
    assert!(with_documents.len() >= 3, "{}", with_documents.len());
    let case = with_documents[0];
    let case_id = case["case_id"].as_str().unwrap();
    let mut case_paths = Vec::new();
    for doc in case["documents"].as_array().unwrap() {
        let doc_id = doc["doc_id"].as_str().unwrap();
        let bytes = std::fs::read(done.join(doc_id)).unwrap();
        assert_eq!(doc["sha256"], hex::encode(sha2::Sha256::digest(&bytes)));
        assert_eq!(doc["size"], bytes.len());
        assert_eq!(doc["kind"], "检查记录文件");
        let path = format!(
            "/v1/ports/{MARKET}/cases/{}/documents/{}",
            segment(case_id),
            segment(doc_id)
        );
        let r = env.get("procuratorate", &token, &path);
        serves(&r, &bytes, doc["media_type"].as_str().unwrap());
        conforms(
            &api,
            "get",
            "/v1/ports/{unit}/cases/{case_id}/documents/{doc_id}",
            &r,
        );
        // Not from a port the client may not read.
        env.get("other", &other, &path).problem(403, "forbidden");
        case_paths.push((path, hex::encode(sha2::Sha256::digest(&bytes))));
    }

    // A unit without a feed submits its report with two document copies.
    let copies = env._tmp.path().join("copies");
    std::fs::create_dir_all(&copies).unwrap();
    let decision = b"%PDF-1.4\n% \xe7\x8e\x84\xe7\x83\x9f\xe7\xbd\x9a 11\n%%EOF\n".to_vec();
    std::fs::write(copies.join("玄烟罚〔2026〕11号.pdf"), &decision).unwrap();
    let photo = std::fs::read(
        std::fs::read_dir(&done)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "png"))
            .unwrap(),
    )
    .unwrap();
    std::fs::write(copies.join("现场照片 1.png"), &photo).unwrap();
    let out = env.gw.ok(&[
        "reports",
        "submit",
        "--unit",
        TOBACCO,
        "--quarter",
        "2026Q3",
        repo.join("submissions/csv/samples/2026Q3.csv")
            .to_str()
            .unwrap(),
        "--documents",
        copies.to_str().unwrap(),
    ]);
    assert!(out.contains("2 document(s)"), "{out}");
    let report_path = format!("/v1/reports/quarterly/2026Q3/{TOBACCO}");
    let copy_path = |name: &str| format!("{report_path}/documents/{}", segment(name));
    // Not before the client holds the unit's port.
    env.get(
        "procuratorate",
        &token,
        &copy_path("玄烟罚〔2026〕11号.pdf"),
    )
    .problem(403, "forbidden");
    env.gw
        .ok(&["ports", "open", TOBACCO, "--client", "procuratorate"]);
    let token = env.token("procuratorate", "procuratorate", &secret);
    let report = env.get("procuratorate", &token, &report_path).json();
    let listed = report["documents"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{report}");
    for (name, bytes, media_type) in [
        ("玄烟罚〔2026〕11号.pdf", &decision, "application/pdf"),
        ("现场照片 1.png", &photo, "image/png"),
    ] {
        let d = listed.iter().find(|d| d["name"] == name).unwrap();
        assert_eq!(d["sha256"], hex::encode(sha2::Sha256::digest(bytes)));
        let r = env.get("procuratorate", &token, &copy_path(name));
        serves(&r, bytes, media_type);
        conforms(
            &api,
            "get",
            "/v1/reports/quarterly/{quarter}/{unit}/documents/{doc_id}",
            &r,
        );
        // Version 1 by number too.
        let v1 = env.get(
            "procuratorate",
            &token,
            &format!("{}?version=1", copy_path(name)),
        );
        serves(&v1, bytes, media_type);
        // Never to a client without the unit's port.
        env.get("other", &other, &copy_path(name))
            .problem(403, "forbidden");
    }
    env.get("procuratorate", &token, &copy_path("other.pdf"))
        .problem(404, "not-found");
    env.get(
        "procuratorate",
        &token,
        &format!("{}?version=7", copy_path("现场照片 1.png")),
    )
    .problem(404, "not-found");
    env.get(
        "procuratorate",
        &token,
        &format!("{}?sort=up", copy_path("现场照片 1.png")),
    )
    .problem(422, "bad-parameter");
    // A read grant shows `other` the report with ID numbers masked, but a copy cannot be
    // masked: its copies stay out of reach.
    env.gw
        .ok(&["reports", "allow-read", TOBACCO, "--client", "other"]);
    assert_eq!(env.get("other", &other, &report_path).status, 200);
    let p = env
        .get("other", &other, &copy_path("玄烟罚〔2026〕11号.pdf"))
        .problem(403, "forbidden");
    assert!(
        p["detail"].as_str().unwrap().contains("cannot be masked"),
        "{p}"
    );

    // A port closed is closed for its documents at once, token or not.
    env.gw
        .ok(&["ports", "close", MARKET, "--client", "procuratorate"]);
    env.get("procuratorate", &token, &case_paths[0].0)
        .problem(403, "forbidden");
    env.gw
        .ok(&["ports", "close", TOBACCO, "--client", "procuratorate"]);
    env.get("procuratorate", &token, &copy_path("现场照片 1.png"))
        .problem(403, "forbidden");

    // Every document served was audited with its digest; nothing refused was.
    let entries = env.audit(200);
    let reads = |action: &str| -> Vec<&Value> {
        entries.iter().filter(|e| e["action"] == action).collect()
    };
    let case_reads = reads("document.read");
    assert_eq!(case_reads.len(), case_paths.len(), "{case_reads:?}");
    for (_, sha) in &case_paths {
        assert!(case_reads.iter().any(|e| e["digest"] == sha.as_str()));
    }
    let copy_reads = reads("report.document.read");
    assert_eq!(copy_reads.len(), 4, "{copy_reads:?}");
    assert!(copy_reads.iter().all(|e| {
        e["details"]["version"] == 1
            && e["actor"]["id"] == "procuratorate"
            && e["target"]
                .as_str()
                .unwrap()
                .starts_with(&format!("2026Q3/{TOBACCO}/"))
    }));
    assert!(
        copy_reads
            .iter()
            .any(|e| e["digest"] == hex::encode(sha2::Sha256::digest(&decision)).as_str())
    );
}

/// Issue 11: a stored case whose party name carries U+0001 never makes an XML answer
/// unparseable. Every XML answer that would hold it is a problem naming the case, the field, the
/// position and the character, audited as a failed read; answers without it, and every JSON
/// answer, are served as before.
#[test]
fn a_control_character_never_breaks_an_xml_answer() {
    let cases = golden_cases();
    let unit = "11320102471049746T";
    // The unit's two cases: the earlier one clean, the later one with the control character.
    let mut bad = cases
        .iter()
        .find(|c| c.unit_code.as_str() == unit && c.case_id.as_str() == "XW-XFD-2025-000001")
        .unwrap()
        .clone();
    bad.party.name = format!("南\u{1}{}", bad.party.name);
    let clean = cases
        .iter()
        .find(|c| c.unit_code.as_str() == unit && c.case_id.as_str() == "XW-XFD-2024-000001")
        .unwrap()
        .clone();
    let env = setup_with_store(|store| {
        store
            .upsert_cases(&[clean.clone(), bad.clone()], &|_, _| Vec::new())
            .unwrap();
    });
    let secret = env.add_client("procuratorate", &[]);
    env.gw
        .ok(&["ports", "open", unit, "--client", "procuratorate"]);
    let token = env.token("procuratorate", "procuratorate", &secret);
    let doc = env
        .request(Some("procuratorate"), "GET", "/openapi.json", &[], "")
        .unwrap()
        .json();
    let xml_get = |path: &str| env.get_xml(&token, path);
    let one = format!("/v1/ports/{unit}/cases/{}", bad.case_id);
    let label = format!("case {unit}/{}", bad.case_id);
    for (template, path, field) in [
        (
            "/v1/ports/{unit}/cases/{case_id}",
            one.clone(),
            "case/party/name",
        ),
        (
            "/v1/ports/{unit}/cases",
            format!("/v1/ports/{unit}/cases"),
            "cases/case/party/name",
        ),
        (
            "/v1/changes",
            "/v1/changes?after=0".to_string(),
            "changes/change/case/party/name",
        ),
    ] {
        let r = xml_get(&path);
        let p = r.problem(500, "not-representable");
        let detail = p["detail"].as_str().unwrap();
        assert!(
            detail.contains(&label)
                && detail.contains(field)
                && detail.contains("character 2")
                && detail.contains("U+0001"),
            "{path}: {detail}"
        );
        assert!(!String::from_utf8_lossy(&r.body).contains('\u{1}'));
        conforms(&doc, "get", template, &r);
    }
    // The failed reads are audited, with the reason; none as served.
    let entries = env.audit(20);
    for action in ["case.read", "case.list", "changes.read"] {
        let e = entries
            .iter()
            .rev()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("no {action} audited"));
        assert_eq!(e["outcome"], "failed", "{e}");
        assert!(
            e["details"]["error"].as_str().unwrap().contains("U+0001"),
            "{e}"
        );
    }

    // A page without the bad case is served as XML, well-formed and valid.
    let r = xml_get(&format!("/v1/ports/{unit}/cases?limit=1"));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let names = element_names(&r.body);
    assert_eq!(names.iter().filter(|n| *n == "case").count(), 1);
    let text = String::from_utf8(r.body).unwrap();
    assert!(text.contains(&format!("<case_id>{}</case_id>", clean.case_id)));
    // JSON carries the character, escaped.
    let r = env.get("procuratorate", &token, &one);
    assert_eq!(r.status, 200);
    assert!(String::from_utf8_lossy(&r.body).contains("\\u0001"));
    assert_eq!(r.json()["party"]["name"], bad.party.name.as_str());
    let last = env.audit(1);
    assert_eq!(
        (last[0]["action"].as_str(), last[0]["outcome"].as_str()),
        (Some("case.read"), Some("ok"))
    );
}

/// Element names in an XML document (and checks it is well-formed).
/// A validator of answers against `schemas/port-api.xsd` (its violations), and every element
/// name the XSD declares.
fn port_api_schema() -> (
    impl Fn(&str) -> Vec<String>,
    std::collections::BTreeSet<String>,
) {
    let xsd =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/port-api.xsd")).unwrap();
    let text = String::from_utf8(xsd).unwrap();
    let schema = xmlschema::parse_schema(&text).expect("the XSD parses");
    let declared = text
        .split("<xs:element name=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_string())
        .collect();
    let validate = move |xml: &str| -> Vec<String> {
        let doc = oxml::parse(xml).expect("well-formed");
        let report = xmlschema::validate(&doc, &schema);
        report.violations.iter().map(|v| format!("{v:?}")).collect()
    };
    (validate, declared)
}

fn element_names(xml: &[u8]) -> Vec<String> {
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut names = Vec::new();
    loop {
        match reader.read_event_into(&mut buf).expect("well-formed XML") {
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e) => {
                names.push(String::from_utf8_lossy(e.local_name().as_ref().as_bytes()).into_owned())
            }
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    names
}

#[test]
fn xml_answers_carry_the_same_data_in_declared_elements() {
    let env = setup("");
    let secret = env.add_client("procuratorate", &[]);
    env.gw
        .ok(&["ports", "open", FIRE, "--client", "procuratorate"]);
    let token = env.token("procuratorate", "procuratorate", &secret);
    let (validate, declared) = port_api_schema();
    let xml_get = |path: &str| env.get_xml(&token, path);
    let json = env
        .get(
            "procuratorate",
            &token,
            &format!("/v1/ports/{FIRE}/cases?limit=5"),
        )
        .json();
    let id = json["cases"][0]["case_id"].as_str().unwrap().to_string();
    for (path, root) in [
        (format!("/v1/ports/{FIRE}/cases?limit=5"), "cases"),
        (format!("/v1/ports/{FIRE}/cases/{id}"), "case"),
        ("/v1/ports".to_string(), "ports"),
        ("/v1/changes?limit=5".to_string(), "changes"),
    ] {
        let r = xml_get(&path);
        assert_eq!(r.status, 200, "{path}");
        let ct = r.headers["content-type"].to_str().unwrap().to_string();
        assert!(
            ct.starts_with("application/xml"),
            "{path}: {ct}: {}",
            String::from_utf8_lossy(&r.body[..r.body.len().min(300)])
        );
        let text = String::from_utf8(r.body.clone()).unwrap();
        assert!(
            text.contains(&format!("<{root} xmlns=\"urn:xianjie:port-api:1\"")),
            "{path}: {}",
            &text[..text.len().min(200)]
        );
        let violations = validate(&text);
        assert!(violations.is_empty(), "{path}: {violations:?}");
        let names = element_names(&r.body);
        for n in &names {
            assert!(
                declared.contains(n),
                "{path}: element <{n}> is not declared in the XSD"
            );
        }
        if root == "cases" {
            assert_eq!(names.iter().filter(|n| *n == "case").count(), 5);
        }
        if root == "case" {
            assert!(text.contains(&format!("<case_id>{id}</case_id>")));
        }
        if root == "changes" {
            assert!(text.contains("next_after=\""), "{text}");
        }
        if root == "case" {
            // The validator is not a rubber stamp: a wrong type and an unknown element fail.
            let bad = text.replacen("<major>false</major>", "<major>maybe</major>", 1);
            assert!(
                bad != text && !validate(&bad).is_empty(),
                "a non-boolean passed"
            );
            let bad = text.replacen("<title>", "<secret>x</secret><title>", 1);
            assert!(!validate(&bad).is_empty(), "an undeclared element passed");
        }
    }
}

#[test]
fn properly_signed_tokens_with_bad_claims_are_refused() {
    // The test knows the passphrase, so it can sign tokens with the gateway's own key: only the
    // claim under test is wrong in each.
    let env = setup("");
    let secret = env.add_client("procuratorate", &[]);
    env.gw
        .ok(&["ports", "open", FIRE, "--client", "procuratorate"]);
    let good = env.token("procuratorate", "procuratorate", &secret);
    let ks = xianjie::keys::keystore::Keystore::open(
        common::keystore_home(&env.gw.data),
        &xianjie::keys::secret::Passphrase::new(PASS.into()),
    )
    .unwrap();
    let (key, _) = ks.get("jwt/1").unwrap().unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(key.expose().try_into().unwrap());
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(good.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    let sign = |payload: &Value| {
        use ed25519_dalek::Signer;
        let h = b64(&serde_json::json!({"alg":"EdDSA","kid":"jwt-1","typ":"at+jwt"}));
        let p = b64(payload);
        let s = key.sign(format!("{h}.{p}").as_bytes());
        format!(
            "{h}.{p}.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s.to_bytes())
        )
    };
    let now = chrono::Utc::now().timestamp();
    // The control: re-signing the genuine claims gives a token that works.
    let path = format!("/v1/ports/{FIRE}/cases?limit=1");
    assert_eq!(env.get("procuratorate", &sign(&claims), &path).status, 200);
    let with = |k: &str, v: Value| {
        let mut c = claims.clone();
        c[k] = v;
        c
    };
    let without = |k: &str| {
        let mut c = claims.clone();
        c.as_object_mut().unwrap().remove(k);
        c
    };
    let cases = vec![
        ("expired", with("exp", (now - 120).into())),
        ("nbf in the future", with("nbf", (now + 600).into())),
        (
            "exp as a string",
            with("exp", (now + 600).to_string().into()),
        ),
        ("iat in the future", with("iat", (now + 600).into())),
        ("lifetime over 15 minutes", {
            let mut c = with("iat", now.into());
            c["exp"] = (now + 3600).into();
            c
        }),
        ("wrong aud", with("aud", "someone-else".into())),
        ("wrong iss", with("iss", "https://evil.example".into())),
        ("no sub", without("sub")),
        ("no exp", without("exp")),
        ("sub of an unknown client", with("sub", "mallory".into())),
        (
            "cnf of another certificate",
            with(
                "cnf",
                serde_json::json!({"x5t#S256": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}),
            ),
        ),
    ];
    for (what, payload) in cases {
        let r = env.get("procuratorate", &sign(&payload), &path);
        assert_eq!(
            r.status,
            401,
            "{what}: {}",
            String::from_utf8_lossy(&r.body)
        );
        r.problem(401, "unauthorized");
    }
}

#[test]
fn sighup_reloads_the_certificate_without_dropping_connections() {
    let env = setup("");
    let rt = runtime();
    let leaf = || -> Vec<u8> {
        rt.block_on(async {
            let tls = env.connect(Some("procuratorate")).await.unwrap();
            tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
        })
    };
    let before = leaf();
    // A connection opened before the reload keeps working after it.
    let (mut send, _conn_task) = rt.block_on(async {
        let tls = env.connect(Some("procuratorate")).await.unwrap();
        let (send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
        (send, tokio::spawn(conn))
    });
    xianjie_devca::generate_dev(&env.certs, &["procuratorate".into()], true).unwrap();
    std::process::Command::new("kill")
        .args(["-HUP", &env.gw.child.id().to_string()])
        .status()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let after = leaf();
    assert_ne!(before, after, "new handshakes get the new certificate");
    let status = rt.block_on(async {
        let req = hyper::Request::builder()
            .uri("/healthz")
            .header("host", "localhost")
            .body(Full::new(Bytes::new()))
            .unwrap();
        send.send_request(req).await.unwrap().status()
    });
    assert_eq!(status, 200, "the old connection still works");
    let log = std::fs::read_to_string(&env.gw.log).unwrap();
    assert!(log.contains("certificate reloaded"), "{log}");
}

#[test]
fn quarterly_reports_are_served_audited_and_valid() {
    let env = setup("");
    let secret = env.add_client("procuratorate", &[]);
    env.gw
        .ok(&["ports", "open", FIRE, "--client", "procuratorate"]);
    let token = env.token("procuratorate", "procuratorate", &secret);
    // The quarter of one of the fire brigade's decisions.
    let page = env
        .get(
            "procuratorate",
            &token,
            &format!("/v1/ports/{FIRE}/cases?limit=200"),
        )
        .json();
    let decided = page["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|c| c["decided_on"].as_str())
        .unwrap()
        .to_string();
    let month: u32 = decided[5..7].parse().unwrap();
    let quarter = format!("{}Q{}", &decided[..4], (month - 1) / 3 + 1);
    let built = env
        .gw
        .json(&["reports", "build", "--quarter", &quarter, "--json"]);
    assert!(built.as_array().unwrap().len() >= 2, "{built}");

    let doc = env
        .request(Some("procuratorate"), "GET", "/openapi.json", &[], "")
        .unwrap()
        .json();
    let list = env.get(
        "procuratorate",
        &token,
        &format!("/v1/reports/quarterly/{quarter}"),
    );
    assert_eq!(list.status, 200, "{}", String::from_utf8_lossy(&list.body));
    conforms(&doc, "get", "/v1/reports/quarterly/{quarter}", &list);
    let reports = list.json()["reports"].as_array().unwrap().clone();
    // Reports are read by grant: the port's holder sees its unit's report, and no other.
    assert_eq!(reports.len(), 1, "{reports:?}");
    let fire = reports.iter().find(|r| r["unit_code"] == FIRE).unwrap();
    assert!(fire["summary"]["total"].as_u64().unwrap() >= 1);
    assert!(
        fire["details"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["decided_on"].as_str().unwrap().starts_with(&decided[..4]))
    );
    let one_path = format!("/v1/reports/quarterly/{quarter}/{FIRE}");
    let one = env.get("procuratorate", &token, &one_path);
    conforms(&doc, "get", "/v1/reports/quarterly/{quarter}/{unit}", &one);
    assert_eq!(one.json()["version"], 1);
    assert_eq!(one.json()["digest"], fire["digest"]);
    let v1 = env.get("procuratorate", &token, &format!("{one_path}?version=1"));
    assert_eq!(v1.json()["digest"], fire["digest"]);
    env.get("procuratorate", &token, &format!("{one_path}?version=9"))
        .problem(404, "not-found");
    env.get("procuratorate", &token, &format!("{one_path}?sort=up"))
        .problem(422, "bad-parameter");
    env.get("procuratorate", &token, "/v1/reports/quarterly/2025Q5")
        .problem(422, "bad-parameter");

    // The XML form is valid against the port API's XSD.
    let (validate, _) = port_api_schema();
    for path in [format!("/v1/reports/quarterly/{quarter}"), one_path.clone()] {
        let r = env.get_xml(&token, &path);
        assert_eq!(r.status, 200);
        let text = String::from_utf8(r.body).unwrap();
        let violations = validate(&text);
        assert!(violations.is_empty(), "{path}: {violations:?}");
        assert!(text.contains(FIRE));
    }

    // Without the reports:read scope: refused.
    let narrow = env.request(
        Some("procuratorate"),
        "POST",
        "/oauth/token",
        &[
            (
                "authorization",
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("procuratorate:{secret}"))
                ),
            ),
            (
                "content-type",
                "application/x-www-form-urlencoded".to_string(),
            ),
        ],
        &format!("grant_type=client_credentials&scope=port:{FIRE}:read"),
    );
    let narrow = narrow.unwrap().json()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    env.get("procuratorate", &narrow, &one_path)
        .problem(403, "forbidden");

    // An explicit read grant shows another unit's report, its ID numbers masked (the client
    // does not hold that unit's port).
    let other = built
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["unit_code"].as_str())
        .find(|u| *u != FIRE)
        .unwrap()
        .to_string();
    let other_path = format!("/v1/reports/quarterly/{quarter}/{other}");
    env.get("procuratorate", &token, &other_path)
        .problem(403, "forbidden");
    env.gw
        .ok(&["reports", "allow-read", &other, "--client", "procuratorate"]);
    let list = env
        .get(
            "procuratorate",
            &token,
            &format!("/v1/reports/quarterly/{quarter}"),
        )
        .json();
    assert_eq!(list["reports"].as_array().unwrap().len(), 2, "{list}");
    let granted = env.get("procuratorate", &token, &other_path);
    conforms(
        &doc,
        "get",
        "/v1/reports/quarterly/{quarter}/{unit}",
        &granted,
    );
    let granted = granted.json();
    let mut natural = 0;
    for d in granted["details"].as_array().unwrap() {
        assert!(d.get("party_address").is_none(), "{d}");
        if d["party_kind"] == "natural_person"
            && let Some(id) = d["party_id"].as_str()
        {
            natural += 1;
            assert!(id.contains('*'), "an unmasked ID for a grant reader: {id}");
        }
    }
    // The granted unit's figures are whole.
    assert!(granted["summary"]["total"].as_u64().unwrap() >= 1);
    assert!(
        natural > 0,
        "no natural person in {other}'s report: the check above saw nothing"
    );
    // A submit-only client reads no report at all, not even its own unit's.
    // (Its certificate is the one named "other".)
    let submitter = env.add_client("submitter", &["--cert-subject", "other"]);
    env.gw
        .ok(&["reports", "allow-submit", &other, "--client", "submitter"]);
    let sub = env.token("other", "submitter", &submitter);
    env.get("other", &sub, &one_path).problem(403, "forbidden");
    env.get("other", &sub, &other_path)
        .problem(403, "forbidden");
    // Withdrawn: gone at the next request.
    env.gw
        .ok(&["reports", "deny-read", &other, "--client", "procuratorate"]);
    env.get("procuratorate", &token, &other_path)
        .problem(403, "forbidden");

    // Every read was audited, with the version; so were the grants.
    let entries = env.audit(200);
    let reads: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "reports.read")
        .collect();
    assert_eq!(reads.len(), 4, "{reads:?}");
    for action in ["reports.read_allow", "reports.read_deny"] {
        assert!(
            entries
                .iter()
                .any(|e| e["action"] == action && e["outcome"] == "ok"),
            "{action}"
        );
    }
    assert!(reads.iter().any(|e| e["details"]["version"] == 1));
    assert!(entries.iter().any(|e| e["action"] == "reports.list"));
    assert!(entries.iter().any(|e| e["action"] == "reports.build"));
}

#[test]
fn submissions_through_the_api_need_their_scope_and_list_every_problem() {
    const TOBACCO: &str = "11320102466008745E";
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let env = setup(&format!(
        "[reports]\nformats_dir = {:?}\n[[reports.submitters]]\nunit = \"{TOBACCO}\"\nname = \"南京市玄武区烟草专卖局\"\n",
        repo.join("submissions").display().to_string()
    ));
    let secret = env.add_client("procuratorate", &[]);
    let doc = env
        .request(Some("procuratorate"), "GET", "/openapi.json", &[], "")
        .unwrap()
        .json();
    let csv = std::fs::read_to_string(repo.join("submissions/csv/samples/2026Q3.csv")).unwrap();
    let path = format!("/v1/submissions?unit={TOBACCO}&quarter=2026Q3");
    let post = |token: &str, body: &str| {
        env.request(
            Some("procuratorate"),
            "POST",
            &path,
            &[
                ("authorization", format!("Bearer {token}")),
                ("content-type", "text/csv".into()),
            ],
            body,
        )
        .unwrap()
    };
    // Not granted: refused.
    let token = env.token("procuratorate", "procuratorate", &secret);
    post(&token, &csv).problem(403, "forbidden");
    // Granted: the new token carries submit:<unit>.
    env.gw.ok(&[
        "reports",
        "allow-submit",
        TOBACCO,
        "--client",
        "procuratorate",
    ]);
    let token = env.token("procuratorate", "procuratorate", &secret);
    let r = post(&token, &csv);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    conforms(&doc, "post", "/v1/submissions", &r);
    assert_eq!(
        (r.json()["version"].as_u64(), r.json()["cases"].as_u64()),
        (Some(1), Some(4))
    );
    // Again: nothing new.
    let r = post(&token, &csv);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["new_version"], false);
    // Totals that disagree and a date outside the quarter: every problem listed.
    let bad = csv
        .replace(",5800.00,1234.50,", ",5900.00,1234.50,")
        .replacen("2026-07-15", "2026-10-02", 1);
    let r = post(&token, &bad);
    conforms(&doc, "post", "/v1/submissions", &r);
    let p = r.problem(422, "submission-refused");
    let problems: Vec<String> = serde_json::from_value(p["problems"].clone()).unwrap();
    assert!(
        problems
            .iter()
            .any(|x| x.contains("row 2") && x.contains("2026-10-02")),
        "{problems:?}"
    );
    assert!(problems.iter().any(|x| x.contains("合计")), "{problems:?}");
    // An unsupported type, and missing parameters.
    env.request(
        Some("procuratorate"),
        "POST",
        &path,
        &[
            ("authorization", format!("Bearer {token}")),
            ("content-type", "application/pdf".into()),
        ],
        "x",
    )
    .unwrap()
    .problem(422, "bad-parameter");
    // A hostile workbook (ten trillion declared shared strings) is refused with the limit it
    // breaks, through the same decoding process as an inbox file; its temporary file is gone.
    let hostile = env.gw.data.with_extension("hostile.xlsx");
    common::fixtures::absurd_unique_count(
        &repo.join("submissions/xlsx/cases/mixed.xlsx"),
        &hostile,
        10_000_000_000_000,
    );
    let r = env
        .request_bytes(
            Some("procuratorate"),
            "POST",
            &path,
            &[
                ("authorization", format!("Bearer {token}")),
                (
                    "content-type",
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".into(),
                ),
            ],
            std::fs::read(&hostile).unwrap(),
        )
        .unwrap();
    let text = String::from_utf8_lossy(&r.body).into_owned();
    assert_eq!(r.status, 422, "{text}");
    assert!(text.contains("xlsx_shared_strings"), "{text}");
    let tmp = env.gw.data.join("tmp");
    assert_eq!(
        std::fs::read_dir(&tmp).map_or(0, |d| d.count()),
        0,
        "temporary submission files left in {tmp:?}"
    );
    // Withdrawn: the token still names the scope, but the grant is gone.
    env.gw.ok(&[
        "reports",
        "deny-submit",
        TOBACCO,
        "--client",
        "procuratorate",
    ]);
    post(&token, &csv).problem(403, "forbidden");
    // Audited, with the client as the actor.
    let entries = env.audit(100);
    let submits: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "reports.submit" && e["outcome"] != "started")
        .collect();
    assert_eq!(submits.len(), 4, "{submits:?}");
    assert!(submits.iter().all(|e| e["actor"]["id"] == "procuratorate"));
}

// ---- Issue 12: connection limits, throttling, certificate-bound clients, graceful stop ------

/// A TLS connection from `source` (a loopback address) to the API, presenting `cert`.
async fn connect_from(
    env: &Env,
    source: &str,
    cert: &str,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
    let (c, k) = env.identity(cert);
    let cfg = xianjie::tls::client_config(&env.certs.join("ca.pem"), Some((&c, &k))).unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let tcp = socket
        .connect(env.addr.parse().unwrap())
        .await
        .map_err(|e| e.to_string())?;
    tokio_rustls::TlsConnector::from(cfg)
        .connect(
            rustls_pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .map_err(|e| format!("handshake: {e}"))
}

/// Sends a raw HTTP/1.1 request on `tls` and reads the whole answer (the connection closes).
async fn raw_exchange(
    tls: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    head: &str,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tls.write_all(head.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        tls.read_to_end(&mut out),
    )
    .await;
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn a_slow_body_is_cut_off_at_its_deadline() {
    let env = setup_bare("body_timeout_secs = 3\n");
    let rt = runtime();
    let started = std::time::Instant::now();
    let answer = rt.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tls = env.connect(Some("procuratorate")).await.unwrap();
        tls.write_all(
            b"POST /oauth/token HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 60000\r\n\r\n",
        )
        .await
        .unwrap();
        let (mut rd, mut wr) = tokio::io::split(tls);
        // One byte a second, as the attacker did (every 5 s); the reader sees the answer.
        let trickle = tokio::spawn(async move {
            for _ in 0..30 {
                if wr.write_all(b"g").await.is_err() || wr.flush().await.is_err() {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        });
        let mut out = Vec::new();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(20), rd.read_to_end(&mut out))
            .await;
        trickle.abort();
        String::from_utf8_lossy(&out).into_owned()
    });
    let took = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("urn:xianjie:problem:request-timeout"),
        "{answer}"
    );
    assert!(
        took < std::time::Duration::from_secs(10),
        "closed after {took:?}, not near the 3 s deadline"
    );
}

#[test]
fn the_per_address_cap_holds_while_other_clients_are_served() {
    let env = setup_bare("max_connections_per_peer = 3\n");
    let rt = runtime();
    rt.block_on(async {
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(
                connect_from(&env, "127.0.0.1", "procuratorate")
                    .await
                    .unwrap(),
            );
        }
        // A fourth from the same address is closed at once: no handshake completes.
        let fourth = connect_from(&env, "127.0.0.1", "procuratorate").await;
        assert!(
            fourth.is_err(),
            "a fourth connection from one address was served"
        );
        // Another address is served meanwhile.
        let mut other = connect_from(&env, "127.0.0.2", "procuratorate")
            .await
            .unwrap();
        let answer = raw_exchange(
            &mut other,
            "GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n",
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        // A slot given back is taken again.
        held.pop();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let mut again = connect_from(&env, "127.0.0.1", "procuratorate")
            .await
            .unwrap();
        let answer = raw_exchange(
            &mut again,
            "GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n",
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    });
}

/// Sends `GET path` on a keep-alive connection and reads one answer (head and
/// `content-length` body), leaving the connection open; returns the status line.
async fn keepalive_get(
    tls: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    path: &str,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let head = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\n\r\n");
    tls.write_all(head.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let text = String::from_utf8_lossy(&got[..end]).to_lowercase();
                let len: usize = text
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if got.len() >= end + 4 + len {
                    return;
                }
            }
            match tls.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(20), read).await;
    String::from_utf8_lossy(&got)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

#[test]
fn the_connection_cap_holds_while_open_connections_are_served() {
    let env = setup_bare("max_connections = 3\n");
    let rt = runtime();
    rt.block_on(async {
        let mut held = Vec::new();
        for source in ["127.0.0.1", "127.0.0.1", "127.0.0.2"] {
            let mut tls = connect_from(&env, source, "procuratorate").await.unwrap();
            assert!(
                keepalive_get(&mut tls, "/healthz")
                    .await
                    .starts_with("HTTP/1.1 200")
            );
            held.push(tls);
        }
        // The cap is for all addresses together: a fourth, from a third address, is closed.
        let fourth = connect_from(&env, "127.0.0.3", "procuratorate").await;
        assert!(fourth.is_err(), "a connection over the cap was served");
        // The connections already open keep being served, request after request.
        for _ in 0..3 {
            for tls in held.iter_mut() {
                let status = keepalive_get(tls, "/healthz").await;
                assert!(status.starts_with("HTTP/1.1 200"), "{status}");
            }
        }
        // A slot given back is taken again.
        held.pop();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let mut again = connect_from(&env, "127.0.0.3", "procuratorate")
            .await
            .unwrap();
        let status = keepalive_get(&mut again, "/healthz").await;
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    });
}

#[test]
fn a_burst_of_bad_secrets_is_throttled_before_any_check_and_audited_briefly() {
    let env = setup_bare("token_attempts_per_min = 6\ntoken_attempts_burst = 3\n");
    let secret = env.add_client("procuratorate", &[]);
    let before = env.audit(1000).len();
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let r = env.token_reply(Some("procuratorate"), "procuratorate", "xjs_wrong");
        if r.status == 429 {
            let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=60).contains(&retry), "retry-after {retry}");
        }
        statuses.push(r.status);
    }
    assert_eq!(&statuses[..3], &[401, 401, 401], "{statuses:?}");
    assert!(statuses[3..].iter().all(|s| *s == 429), "{statuses:?}");
    // Even the right secret waits now: the check never runs while throttled.
    let r = env.token_reply(Some("procuratorate"), "procuratorate", &secret);
    assert_eq!(r.status, 429);
    // Three refused logins and one throttling episode: a flood leaves a bounded trail.
    let entries = env.audit(1000);
    let new = &entries[before..];
    let denied = new
        .iter()
        .filter(|e| e["action"] == "token.issue" && e["outcome"] == "denied")
        .count();
    let throttled: Vec<&Value> = new
        .iter()
        .filter(|e| e["action"] == "token.throttled")
        .collect();
    assert_eq!(denied, 3, "{new:?}");
    assert_eq!(throttled.len(), 1, "{new:?}");
    assert_eq!(throttled[0]["outcome"], "refused");
    for e in new {
        assert!(
            e.to_string().len() < 1024,
            "an audit entry of {} bytes",
            e.to_string().len()
        );
    }
}

#[test]
fn a_client_is_its_certificate() {
    let env = setup_bare("");
    let secret = env.add_client("procuratorate", &[]);
    // The secret over another client's certificate (same CA) is refused like a wrong one.
    env.token_reply(Some("other"), "procuratorate", &secret)
        .problem(401, "invalid-client");
    let token = env.token("procuratorate", "procuratorate", &secret);
    // The token is bound to the certificate it was issued over.
    env.get("other", &token, "/v1/ports")
        .problem(401, "unauthorized");
    assert_eq!(env.get("procuratorate", &token, "/v1/ports").status, 200);
    // A client whose certificate carries another name is bound by a subject rule.
    let auditor = env.add_client("auditor", &["--cert-subject", "other"]);
    assert_eq!(
        env.token_reply(Some("other"), "auditor", &auditor).status,
        200
    );
    env.token_reply(Some("procuratorate"), "auditor", &auditor)
        .problem(401, "invalid-client");
    let listed = env.gw.ok(&["clients", "list"]);
    assert!(listed.contains("cert naming other"), "{listed}");
    let denied = env
        .audit(50)
        .into_iter()
        .filter(|e| e["action"] == "token.issue" && e["outcome"] == "denied")
        .count();
    assert_eq!(denied, 2, "the refused logins are audited");
}

#[test]
fn an_unbound_token_stops_working_when_certificates_are_required() {
    let env = setup_bare("client_auth = \"optional\"\n");
    let secret = env.add_client("procuratorate", &[]);
    // Minted without a certificate: unbound, and good only without one.
    let r = env.token_reply(None, "procuratorate", &secret);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let unbound = r.json()["access_token"].as_str().unwrap().to_string();
    let ok = env.get_as(None, &unbound, "/v1/ports");
    assert_eq!(ok.status, 200);
    env.get("procuratorate", &unbound, "/v1/ports")
        .problem(401, "unauthorized");
    // Raise the mode: the same gateway, keystore and token, certificates now required.
    let Env {
        _tmp: tmp,
        gw,
        certs,
        ..
    } = env;
    gw.stop();
    let data = tmp.path().join("data");
    let cfg = common::api_config(tmp.path(), &data, &certs, "client_auth = \"required\"\n");
    let pass = tmp.path().join("pass");
    let gw = Gateway::start_with(&cfg, &data, &["--passphrase-file", pass.to_str().unwrap()]);
    let addr = std::fs::read_to_string(data.join("api.addr"))
        .unwrap()
        .trim()
        .to_string();
    let env = Env {
        _tmp: tmp,
        gw,
        certs,
        addr,
    };
    env.get("procuratorate", &unbound, "/v1/ports")
        .problem(401, "unauthorized");
    let bound = env.token("procuratorate", "procuratorate", &secret);
    assert_eq!(env.get("procuratorate", &bound, "/v1/ports").status, 200);
}

#[test]
fn a_graceful_stop_finishes_requests_in_flight_and_checkpoints_last() {
    let env = setup_bare("rate_per_sec = 100000\nrate_burst = 100000\n");
    let secret = env.add_client("procuratorate", &[]);
    let token = env.token("procuratorate", "procuratorate", &secret);
    let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (served, stop) = (served.clone(), stop.clone());
            let (ca, (c, k), addr, token) = (
                env.certs.join("ca.pem"),
                env.identity("procuratorate"),
                env.addr.clone(),
                token.clone(),
            );
            std::thread::spawn(move || {
                let mut broken = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match common::https(
                        &ca,
                        Some((&c, &k)),
                        &addr,
                        "GET",
                        "/v1/ports",
                        &[("authorization", format!("Bearer {token}"))],
                        Vec::new(),
                    ) {
                        Ok(r) => {
                            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
                            served.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        // Refused once the listener has stopped accepting.
                        Err(_) => broken += 1,
                    }
                    if broken > 3 {
                        break;
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let data = env.gw.data.clone();
    let Env { _tmp: tmp, gw, .. } = env;
    gw.stop();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let served = served.load(std::sync::atomic::Ordering::Relaxed);
    assert!(served > 10, "only {served} requests were served");
    // The log ends with gateway.stop, and the last checkpoint covers every entry.
    let (lines, last) = common::audit_at_rest(&data);
    let entries: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.last().unwrap()["action"], "gateway.stop");
    let reads = entries
        .iter()
        .filter(|e| e["action"] == "ports.list")
        .count();
    assert_eq!(
        reads, served,
        "every answer sent is audited, no audited read unanswered"
    );
    let last = last.unwrap();
    let size: usize = last.lines().nth(1).unwrap().parse().unwrap();
    assert_eq!(
        size,
        entries.len(),
        "the final checkpoint covers every entry"
    );
    drop(tmp);
}

#[test]
fn who_asks_comes_first_and_a_parameter_counts_once() {
    let env = setup_bare("");
    let secret = env.add_client("procuratorate", &[]);
    env.gw
        .ok(&["ports", "open", FIRE, "--client", "procuratorate"]);
    // Anonymous: 401 before any check of type or query says what a submission needs.
    env.request(
        Some("procuratorate"),
        "POST",
        "/v1/submissions?unit=bogus",
        &[("content-type", "application/pdf".into())],
        "x",
    )
    .unwrap()
    .problem(401, "unauthorized");
    let token = env.token("procuratorate", "procuratorate", &secret);
    let p = env
        .get(
            "procuratorate",
            &token,
            "/v1/changes?after=0&limit=5&limit=500",
        )
        .problem(422, "bad-parameter");
    assert_eq!(p["field"], "limit", "{p}");
    let p = env
        .get(
            "procuratorate",
            &token,
            &format!("/v1/ports/{FIRE}/cases?action=penalty&action=licensing"),
        )
        .problem(422, "bad-parameter");
    assert_eq!(p["field"], "action", "{p}");
}

/// The 逃税 rule's meeting golden case as `unit`'s case `id`, of one company.
fn workbench_case(unit: &str, id: &str) -> xianjie::model::Case {
    let rules =
        xianjie::supervision::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("rules"))
            .unwrap();
    let r = rules.iter().find(|r| r.id == "tax-evasion-201").unwrap();
    let mut c = r.cases.iter().find(|g| g.expect).unwrap().case.clone();
    c.unit_code = xianjie::model::Uscc::parse(unit).unwrap();
    c.case_id = xianjie::model::CaseId::parse(id).unwrap();
    c.party.name = "南京甲乙商贸有限公司".into();
    c.party.id = Some(xianjie::model::PartyId::Uscc(
        xianjie::model::Uscc::parse(WORKBENCH_PARTY).unwrap(),
    ));
    c.amounts.evaded_tax_fen = Some(xianjie::model::Fen::new(67_378_055));
    c.amounts.evaded_tax_share = xianjie::model::Share::from_basis_points(1_500);
    c.decided_on = chrono::NaiveDate::from_ymd_opt(2025, 6, 2);
    c
}

const TAX: &str = "11320102507529170Q"; // 税务局
const WORKBENCH_PARTY: &str = "91320102MA60876NU7";

#[test]
fn the_workbench_stays_within_the_ports_and_supervision_is_audited_answered_and_timed() {
    let mut overdue = workbench_case(TAX, "T-2");
    overdue.amounts = Default::default();
    overdue.transfer.suspected_crime = true;
    overdue.transfer.status = xianjie::model::TransferStatus::Transferred;
    overdue.transfer.transferred_on = chrono::NaiveDate::from_ymd_opt(2025, 6, 3);
    overdue.transfer.accepted_at =
        Some(xianjie::model::Moment::parse("2025-06-04T10:00:00").unwrap());
    let mut market = workbench_case(MARKET, "M-1");
    market.amounts = Default::default();
    // A lead in a port the client cannot read: a major decision without legal review.
    let mut fire = workbench_case(FIRE, "F-1");
    fire.major = true;
    fire.legal_review = false;
    let cases = vec![workbench_case(TAX, "T-1"), overdue, market, fire];
    // A unit system taking supervision notices (nobody listens; scheduled once a year).
    let dest = "[[destinations]]\nname = \"tax-system\"\nurl = \"https://127.0.0.1:9/packages\"\nca = \"certs/ca.pem\"\nschedule = \"0 0 0 1 1 *\"\nactions = []\nunits = [\"11320102507529170Q\"]\ncredential = \"tax-system\"\nsupervision_url = \"https://127.0.0.1:9/notices\"\n";
    let env = setup_with_store_and(
        |store| {
            store.upsert_cases(&cases, &|_, _| Vec::new()).unwrap();
        },
        dest,
    );
    env.gw.ok(&["leads", "rebuild"]);
    let secret = env.add_client("procuratorate", &[]);
    env.gw.ok(&[
        "ports",
        "open",
        TAX,
        "--client",
        "procuratorate",
        "--supervise",
    ]);
    env.gw
        .ok(&["ports", "open", MARKET, "--client", "procuratorate"]);
    assert!(env.gw.ok(&["ports", "list"]).contains("supervise"));
    let token = env.token("procuratorate", "procuratorate", &secret);
    let get = |path: &str| env.get("procuratorate", &token, path);

    // Search: the one company across the two readable ports, never the third, by any key.
    let ids = |v: &Value, member: &str| -> Vec<String> {
        let mut ids: Vec<String> = v[member]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                format!(
                    "{}/{}",
                    c["unit_code"].as_str().unwrap(),
                    c["case_id"].as_str().unwrap()
                )
            })
            .collect();
        ids.sort();
        ids
    };
    let mut expected = vec![
        format!("{TAX}/T-1"),
        format!("{TAX}/T-2"),
        format!("{MARKET}/M-1"),
    ];
    expected.sort();
    for q in [
        format!("uscc={WORKBENCH_PARTY}"),
        format!("id_number={WORKBENCH_PARTY}"),
        "party_name=%E7%94%B2%E4%B9%99".to_string(), // 甲乙
    ] {
        let r = get(&format!("/v1/search?{q}"));
        assert_eq!(r.status, 200, "{q}: {}", String::from_utf8_lossy(&r.body));
        assert_eq!(ids(&r.json(), "cases"), expected, "{q}");
    }
    get("/v1/search").problem(422, "bad-parameter");
    get(&format!("/v1/search?uscc={WORKBENCH_PARTY}&party_name=x")).problem(422, "bad-parameter");

    // Leads: only the readable ports', every one exactly once through the cursors.
    let all = get("/v1/leads").json();
    let keys: Vec<(String, String)> = all["leads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["case_id"].as_str().unwrap().to_string(),
                l["key"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        keys.contains(&("T-1".into(), "rule:tax-evasion-201".into())),
        "{keys:?}"
    );
    assert!(
        keys.contains(&("T-2".into(), "310:police-decision".into())),
        "{keys:?}"
    );
    assert!(!keys.iter().any(|(c, _)| c == "F-1"), "{keys:?}");
    let lead = all["leads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["key"] == "rule:tax-evasion-201")
        .unwrap();
    assert_eq!(lead["status"], "open");
    assert!(
        lead["facts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["value"] == "673780.55 元" && f["threshold"] == "≥ 100000.00 元"),
        "{lead}"
    );
    let mut paged = Vec::new();
    let mut path = "/v1/leads?limit=1".to_string();
    loop {
        let page = get(&path).json();
        for l in page["leads"].as_array().unwrap() {
            paged.push((
                l["case_id"].as_str().unwrap().to_string(),
                l["key"].as_str().unwrap().to_string(),
            ));
        }
        match page["next"].as_str() {
            Some(n) => path = format!("/v1/leads?limit=1&cursor={n}"),
            None => break,
        }
    }
    assert_eq!(paged, keys);
    let next = get("/v1/leads?limit=1").json()["next"]
        .as_str()
        .unwrap()
        .to_string();
    get(&format!("/v1/leads?limit=1&status=open&cursor={next}")).problem(422, "bad-parameter");
    get(&format!("/v1/leads?unit={FIRE}")).problem(403, "forbidden");
    let only = get("/v1/leads?rule=tax-evasion-201").json();
    assert_eq!(only["leads"].as_array().unwrap().len(), 1, "{only}");

    // Transfers: the police decision is days overdue; the gauges count it.
    let metrics = String::from_utf8(get("/metrics").body).unwrap();
    assert!(
        metrics.contains("\nxianjie_transfers_overdue 1\n"),
        "{metrics}"
    );
    let open_leads: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("xianjie_leads_open "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        open_leads, 3,
        "the rule's, the deadline's and the unreadable port's: {metrics}"
    );
    let t = get("/v1/transfers?overdue=true").json();
    assert_eq!(ids(&t, "transfers"), [format!("{TAX}/T-2")]);
    assert!(
        t["transfers"][0]["deadlines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["step"] == "police_decision" && d["state"] == "overdue")
    );

    // Supervision: refused without the supervise grant or scope, and on an unreadable port.
    let post = |token: &str, unit: &str, case: &str, body: &Value, xml: bool| {
        let mut headers = vec![
            ("authorization", format!("Bearer {token}")),
            ("content-type", "application/json".to_string()),
        ];
        if xml {
            headers.push(("accept", "application/xml".into()));
        }
        env.request(
            Some("procuratorate"),
            "POST",
            &format!("/v1/ports/{unit}/cases/{case}/supervision"),
            &headers,
            &body.to_string(),
        )
        .unwrap()
    };
    let pdf = b"%PDF-1.4 recommendation\n";
    let body = serde_json::json!({
        "kind": "recommend_transfer",
        "text": "该案逃避缴纳税款数额达到追诉标准，建议移送公安机关。",
        "documents": [{"name": "检察建议书.pdf", "media_type": "application/pdf",
            "content_base64": base64::engine::general_purpose::STANDARD.encode(pdf)}],
    });
    post(&token, MARKET, "M-1", &body, false).problem(403, "forbidden");
    post(&token, FIRE, "F-1", &body, false).problem(403, "forbidden");
    let read_only = {
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("procuratorate:{secret}"));
        env.request(
            Some("procuratorate"),
            "POST",
            "/oauth/token",
            &[
                ("authorization", format!("Basic {basic}")),
                (
                    "content-type",
                    "application/x-www-form-urlencoded".to_string(),
                ),
            ],
            &format!("grant_type=client_credentials&scope=port:{TAX}:read"),
        )
        .unwrap()
        .json()["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    post(&read_only, TAX, "T-1", &body, false).problem(403, "forbidden");
    let bad = serde_json::json!({"kind": "arrest", "text": "x"});
    assert_eq!(
        post(&token, TAX, "T-1", &bad, false).problem(422, "bad-parameter")["field"],
        "kind"
    );
    let r = post(&token, TAX, "T-1", &body, false);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let action = r.json();
    let id = action["id"].as_u64().unwrap();
    assert_eq!(action["leads"], serde_json::json!(["rule:tax-evasion-201"]));
    assert_eq!(action["notified"], serde_json::json!(["tax-system"]));
    let recommended = get("/v1/leads?status=recommended").json();
    assert_eq!(recommended["leads"][0]["case_id"], "T-1", "{recommended}");
    let audit = env.audit(40);
    let writes: Vec<&Value> = audit
        .iter()
        .filter(|e| e["action"] == "supervision.write")
        .collect();
    assert!(
        writes.iter().any(|e| e["outcome"] == "started"),
        "{writes:?}"
    );
    assert!(
        writes
            .iter()
            .any(|e| e["details"]["id"] == id && e["outcome"] == "ok"),
        "{writes:?}"
    );
    for action in ["search", "leads.list", "transfers.list"] {
        assert!(
            audit.iter().any(|e| e["action"] == action),
            "{action} not audited"
        );
    }

    // The document is served with its digest; not from a port the client cannot read.
    let doc_id = action["documents"][0]["doc_id"]
        .as_str()
        .unwrap()
        .to_string();
    let d = get(&format!("/v1/ports/{TAX}/cases/T-1/documents/{doc_id}"));
    assert_eq!(d.status, 200);
    assert_eq!(d.body, pdf);
    assert_eq!(
        d.headers["etag"].to_str().unwrap(),
        format!(
            "\"{}\"",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(pdf))
        )
    );
    get(&format!("/v1/ports/{FIRE}/cases/F-1/documents/{doc_id}")).problem(403, "forbidden");

    // The unit's side answers through the gateway host, with a document.
    let listed = env.gw.ok(&["supervision", "list", "--open"]);
    assert!(
        listed.contains("建议移送") && listed.contains("待答复"),
        "{listed}"
    );
    let docs = env._tmp.path().join("answer-docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("移送书.pdf"), b"%PDF-1.4 transfer\n").unwrap();
    env.gw.ok(&[
        "supervision",
        "answer",
        &id.to_string(),
        "--text",
        "已于次日移送南京市公安局玄武分局。",
        "--documents",
        docs.to_str().unwrap(),
    ]);
    assert!(
        env.gw
            .ok(&["supervision", "list", "--open"])
            .contains("no supervision actions")
    );
    let shown = env
        .gw
        .json(&["supervision", "show", &id.to_string(), "--json"]);
    assert_eq!(shown["answers"][0]["documents"][0]["title"], "移送书.pdf");
    assert!(
        env.audit(10)
            .iter()
            .any(|e| e["action"] == "supervision.answer" && e["outcome"] == "ok")
    );

    // The timeline holds it all, in order.
    let tl = get(&format!("/v1/ports/{TAX}/cases/T-1/timeline")).json();
    let kinds: Vec<&str> = tl["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    let pos = |k: &str| {
        kinds
            .iter()
            .position(|x| *x == k)
            .unwrap_or_else(|| panic!("{k}: {kinds:?}"))
    };
    assert!(pos("decided") < pos("version") && pos("version") < pos("supervision"));
    assert!(pos("supervision") < pos("answer"), "{kinds:?}");
    assert!(
        tl["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["text"] == "已于次日移送南京市公安局玄武分局。")
    );
    get(&format!("/v1/ports/{FIRE}/cases/F-1/timeline")).problem(403, "forbidden");

    // Every answer also in XML the XSD accepts.
    let (validate, declared) = port_api_schema();
    let xml_post = post(
        &token,
        TAX,
        "T-2",
        &serde_json::json!({"kind": "note", "text": "关注公安机关立案决定"}),
        true,
    );
    assert_eq!(xml_post.status, 201);
    for (what, body) in [
        ("leads", env.get_xml(&token, "/v1/leads").body),
        ("transfers", env.get_xml(&token, "/v1/transfers").body),
        (
            "results",
            env.get_xml(&token, &format!("/v1/search?uscc={WORKBENCH_PARTY}"))
                .body,
        ),
        (
            "timeline",
            env.get_xml(&token, &format!("/v1/ports/{TAX}/cases/T-1/timeline"))
                .body,
        ),
        ("supervision", xml_post.body),
    ] {
        let text = String::from_utf8(body.clone()).unwrap();
        assert!(text.contains(&format!("<{what} xmlns=")), "{what}: {text}");
        let violations = validate(&text);
        assert!(violations.is_empty(), "{what}: {violations:?}\n{text}");
        for n in element_names(&body) {
            assert!(declared.contains(&n), "{what}: <{n}> is not declared");
        }
    }
}
