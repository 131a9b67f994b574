//! Custody against the real gateway process: it starts sealed and refuses key use; unlock creates
//! the keystore; clients, credentials and key rotation through the CLI, attributed with `--as`;
//! wrong passphrases refused, slowed and audited; an older keystore file refused; no secret in
//! the log, the audit log or the keystore file; fail-closed when the audit log cannot be written;
//! an export that verifies offline; the custody handover (`keys change-passphrase`), also when
//! the gateway is killed in the middle of it.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Gateway, secret_file};
use serde_json::Value;

const PASS: &str = "correct horse battery staple 马";

fn config(dir: &Path, data: &Path) -> PathBuf {
    config_with(dir, data, "listen = \"off\"\n")
}

/// A config whose `[server]` table is `server`.
fn config_with(dir: &Path, data: &Path, server: &str) -> PathBuf {
    let cfg = dir.join("xianjie.toml");
    let adapters = Path::new(env!("CARGO_MANIFEST_DIR")).join("adapters");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = {:?}\nadapters_dir = {:?}\n[log]\nlevel = \"debug\"\n[audit]\nfsync = \"always\"\n[server]\n{server}",
            data.display().to_string(),
            adapters.display().to_string()
        ),
    )
    .unwrap();
    // Always the embedded store, whatever XIANJIE_TEST_STORE says: these tests are about the
    // keystore file itself (its mode, a copy put back, a torn write). The keystore shared in
    // PostgreSQL is tested in `tests/ha.rs` and `store::postgres::on_server`.
    cfg
}

fn audit_entries(gw: &Gateway, n: usize) -> Vec<Value> {
    gw.ok(&["audit", "tail", "-n", &n.to_string(), "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn status(gw: &Gateway) -> Value {
    gw.json(&["status", "--json"])
}

#[test]
fn custody_lifecycle_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cfg = config(tmp.path(), &data);
    let pass = secret_file(&tmp.path().join("pass"), PASS);
    let wrong = secret_file(&tmp.path().join("wrong"), "not the passphrase at all");
    let gw = Gateway::start(&cfg, &data);

    // Sealed from the start, with no keystore yet; key use is refused with a clear reason.
    let s = status(&gw);
    assert_eq!(
        (s["sealed"].as_bool(), s["keystore_exists"].as_bool()),
        (Some(true), Some(false))
    );
    let e = gw.fails(&["clients", "list"]);
    assert!(e.contains("sealed") && e.contains("xianjie unlock"), "{e}");
    let e = gw.fails(&["keys", "rotate", "jwt"]);
    assert!(e.contains("sealed"), "{e}");
    // Without a terminal and without a file, unlock says how.
    let e = gw.fails(&["unlock"]);
    assert!(e.contains("--passphrase-file"), "{e}");

    // The first unlock creates the keystore.
    let out = gw.ok(&[
        "--as",
        "王芳",
        "unlock",
        "--passphrase-file",
        pass.to_str().unwrap(),
    ]);
    assert!(out.contains("a new keystore was created"), "{out}");
    let ks = data.join("keystore.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&ks).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let s = status(&gw);
    assert_eq!(s["sealed"].as_bool(), Some(false));

    // Clients: the secret is shown once, with its prefix; listed; attributed to --as.
    let out = gw.ok(&["--as", "王芳", "clients", "add", "procuratorate"]);
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("secret:").map(str::trim))
        .unwrap()
        .to_string();
    assert!(
        secret.starts_with("xjs_") && secret.len() == 4 + 43,
        "{secret}"
    );
    let list = gw.json(&["clients", "list", "--json"]);
    assert_eq!(list[0]["name"], "procuratorate");
    assert_eq!(list[0]["created_by"], "王芳");
    assert_eq!(list[0]["active_secrets"], 1);
    let e = gw.fails(&["clients", "add", "procuratorate"]);
    assert!(e.contains("already exists"), "{e}");
    let e = gw.fails(&["clients", "add", "bad name"]);
    assert!(e.contains("client name"), "{e}");

    let out = gw.ok(&[
        "clients",
        "rotate-secret",
        "procuratorate",
        "--overlap-hours",
        "2",
    ]);
    assert!(out.contains("previous secret keeps working until"), "{out}");
    let second = out
        .lines()
        .find_map(|l| l.strip_prefix("secret:").map(str::trim))
        .unwrap()
        .to_string();
    assert_ne!(second, secret);
    let list = gw.json(&["clients", "list", "--json"]);
    assert_eq!(
        list[0]["active_secrets"], 2,
        "both secrets work during the overlap"
    );
    gw.ok(&["clients", "revoke", "procuratorate"]);
    let list = gw.json(&["clients", "list", "--json"]);
    assert!(list[0]["revoked_at"].is_string());

    // A destination credential from stdin: stored, listed without its value.
    let cred = "Pr0v1nce-登录-S3cret!";
    let out = gw.cli_stdin(
        &["--as", "李强", "credentials", "set", "province"],
        &format!("{cred}\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = gw.json(&["credentials", "list", "--json"]);
    assert_eq!(
        (
            list[0]["name"].as_str(),
            list[0]["version"].as_u64(),
            list[0]["set_by"].as_str()
        ),
        (Some("province"), Some(1), Some("李强"))
    );

    // JWT rotation.
    let out = gw.ok(&["keys", "rotate", "jwt"]);
    assert!(out.contains("jwt-2"), "{out}");

    // The audit log names who did what.
    let entries = audit_entries(&gw, 200);
    let find = |action: &str| {
        entries
            .iter()
            .rfind(|e| e["action"] == action && e["outcome"] == "ok")
            .unwrap_or_else(|| panic!("no {action} entry"))
            .clone()
    };
    assert_eq!(find("client.create")["actor"]["id"], "王芳");
    assert_eq!(find("credential.set")["actor"]["id"], "李强");
    assert_eq!(find("credential.set")["details"]["version"], 1);
    assert_eq!(find("keystore.unlock")["actor"]["id"], "王芳");
    assert!(
        find("keystore.change")["details"]["version"]
            .as_u64()
            .unwrap()
            >= 5
    );
    assert!(entries.iter().any(|e| e["action"] == "config.load"));

    // Wrong passphrase: refused without detail, audited, and the next attempt is slowed.
    gw.ok(&["seal"]);
    assert_eq!(status(&gw)["sealed"].as_bool(), Some(true));
    let e = gw.fails(&["unlock", "--passphrase-file", wrong.to_str().unwrap()]);
    assert!(
        e.contains("wrong passphrase") && !e.contains("not the passphrase"),
        "{e}"
    );
    let started = Instant::now();
    let e = gw.fails(&["unlock", "--passphrase-file", wrong.to_str().unwrap()]);
    assert!(e.contains("2 failed attempt"), "{e}");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the second failure waited only {:?}",
        started.elapsed()
    );
    let failed: Vec<Value> = audit_entries(&gw, 50)
        .into_iter()
        .filter(|e| e["action"] == "keystore.unlock_failed")
        .collect();
    assert_eq!(failed.len(), 2);
    assert_eq!(failed[1]["outcome"], "denied");

    // Unlock again; then an older keystore file put back is refused.
    let old = std::fs::read(&ks).unwrap();
    std::thread::sleep(Duration::from_secs(2)); // the failure delay
    gw.ok(&["unlock", "--passphrase-file", pass.to_str().unwrap()]);
    let out = gw.cli_stdin(&["credentials", "set", "province"], "second-version");
    assert!(out.status.success());
    gw.ok(&["seal"]);
    std::fs::write(&ks, &old).unwrap();
    let e = gw.fails(&["unlock", "--passphrase-file", pass.to_str().unwrap()]);
    assert!(
        e.contains("older copy") && e.contains("keystore.json"),
        "{e}"
    );
    assert_eq!(status(&gw)["sealed"].as_bool(), Some(true));

    // No secret anywhere: not in the gateway's log, the audit log or the keystore file.
    let log = std::fs::read_to_string(&gw.log).unwrap();
    let audit = std::fs::read_to_string(data.join("audit/entries.jsonl")).unwrap();
    let keystore = std::fs::read_to_string(&ks).unwrap();
    for (what, text) in [("log", &log), ("audit", &audit), ("keystore", &keystore)] {
        for s in [cred, "second-version", PASS, &secret, &second] {
            assert!(!text.contains(s), "a secret appears in the {what}");
        }
    }
    assert!(
        log.contains("DEBUG") || log.contains("WARN"),
        "the log captured something"
    );
    gw.stop();
}

#[test]
fn the_audit_log_exports_and_verifies_and_fails_closed() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cfg = config(tmp.path(), &data);
    let pass = secret_file(&tmp.path().join("pass"), PASS);
    // Unattended start: the passphrase file unlocks (and creates) at start.
    let gw = Gateway::start_with(&cfg, &data, &["--passphrase-file", pass.to_str().unwrap()]);
    assert_eq!(status(&gw)["sealed"].as_bool(), Some(false));
    gw.ok(&["clients", "add", "a"]);
    gw.ok(&["clients", "add", "b"]);

    let cp = gw.ok(&["audit", "checkpoint"]);
    assert!(cp.starts_with("xianjie.320102/audit\n"), "{cp}");
    assert!(cp.contains("\n\n— xianjie.320102/audit "), "{cp}");

    let proof = gw.json(&["audit", "proof", "inclusion", "3"]);
    assert_eq!(proof["from"], 3);
    let e = gw.fails(&["audit", "proof", "inclusion", "100000"]);
    assert!(e.contains("index"), "{e}");

    let out = tmp.path().join("export");
    gw.ok(&["audit", "export", out.to_str().unwrap()]);
    let v = gw.ok(&["audit", "verify", out.to_str().unwrap()]);
    assert!(v.starts_with("verified:"), "{v}");
    let key = std::fs::read_to_string(out.join("key.vkey")).unwrap();
    assert!(key.starts_with("xianjie.320102/audit+"), "{key}");

    // A changed entry in the export is found by the offline verifier, at its line.
    let entries = out.join("entries.jsonl");
    let text = std::fs::read_to_string(&entries).unwrap();
    std::fs::write(&entries, text.replacen("\"a\"", "\"c\"", 1)).unwrap();
    let out_cmd = std::process::Command::new(common::bin())
        .args(["audit", "verify", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out_cmd.status.success());
    let e = String::from_utf8_lossy(&out_cmd.stderr);
    assert!(
        e.contains("NOT VERIFIED") && e.contains("entries.jsonl line"),
        "{e}"
    );

    // Fail closed: with the audit log unwritable, an audited operation does not happen.
    let e = gw.with_audit_unwritable(|| gw.fails(&["clients", "add", "c"]));
    assert!(e.contains("audit"), "{e}");
    let names: Vec<String> = gw
        .json(&["clients", "list", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, vec!["a", "b"], "client c was not created");
    // Still refused after the file is writable again: the log stays broken until a restart.
    let e = gw.fails(&["clients", "add", "c"]);
    assert!(e.contains("audit"), "{e}");
}

#[test]
fn a_gateway_with_a_wrong_passphrase_file_does_not_start() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cfg = config(tmp.path(), &data);
    let pass = secret_file(&tmp.path().join("pass"), PASS);
    let gw = Gateway::start_with(&cfg, &data, &["--passphrase-file", pass.to_str().unwrap()]);
    gw.stop();
    let wrong = secret_file(&tmp.path().join("wrong"), "a wrong passphrase here");
    let e = serve_fails(&cfg, &wrong);
    assert!(e.contains("wrong passphrase"), "{e}");
    // A passphrase file others can read is refused before anything else.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = serve_fails(&cfg, &pass);
    assert!(e.contains("chmod 600"), "{e}");
}

/// `xianjie serve --passphrase-file FILE` in the foreground, expected to fail at once: its stderr.
fn serve_fails(cfg: &Path, pass: &Path) -> String {
    let out = std::process::Command::new(common::bin())
        .args([
            "--config",
            cfg.to_str().unwrap(),
            "serve",
            "--passphrase-file",
        ])
        .arg(pass)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// One port API request over `client`'s certificate (from the dev CA in `certs`).
fn api(
    certs: &Path,
    addr: &str,
    client: &str,
    (method, path): (&str, &str),
    auth: String,
    body: &[u8],
) -> common::Reply {
    let mut headers = vec![("authorization", auth)];
    if method == "POST" {
        headers.push(("content-type", "application/x-www-form-urlencoded".into()));
    }
    common::https(
        &certs.join("ca.pem"),
        Some((
            &certs.join(format!("{client}.pem")),
            &certs.join(format!("{client}-key.pem")),
        )),
        addr,
        method,
        path,
        &headers,
        body.to_vec(),
    )
    .unwrap()
}

/// A token for `client` with its secret.
fn token_reply(certs: &Path, addr: &str, client: &str, secret: &str) -> common::Reply {
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{client}:{secret}"));
    api(
        certs,
        addr,
        client,
        ("POST", "/oauth/token"),
        format!("Basic {basic}"),
        b"grant_type=client_credentials",
    )
}

/// The status of `GET /v1/ports` with `token` (of `client`).
fn ports_status(certs: &Path, addr: &str, client: &str, token: &str) -> u16 {
    api(
        certs,
        addr,
        client,
        ("GET", "/v1/ports"),
        format!("Bearer {token}"),
        b"",
    )
    .status
}

fn api_addr(data: &Path) -> String {
    std::fs::read_to_string(data.join("api.addr"))
        .unwrap()
        .trim()
        .to_string()
}

/// The credential stored for `destination`, read from the keystore file with `pass`.
fn stored_credential(ks: &Path, pass: &Path, destination: &str) -> Result<String, String> {
    use xianjie::keys::keystore::Keystore;
    use xianjie::keys::secret::Passphrase;
    let store =
        Keystore::open(ks, &Passphrase::from_file(pass).unwrap()).map_err(|e| e.to_string())?;
    let (secret, _) = store
        .get(&format!("credential/{destination}"))
        .map_err(|e| e.to_string())?
        .ok_or("no such credential")?;
    Ok(String::from_utf8(secret.expose().to_vec()).unwrap())
}

#[test]
fn a_passphrase_change_hands_custody_over_and_keeps_every_key() {
    const NEW: &str = "新保管员的口令 with some length";
    const CRED: &str = "Pr0v1nce-登录-S3cret!";
    let tmp = tempfile::tempdir().unwrap();
    let certs = tmp.path().join("certs");
    xianjie_devca::generate_dev(&certs, &["procuratorate".into()], false).unwrap();
    let data = tmp.path().join("data");
    let cfg = config_with(
        tmp.path(),
        &data,
        &format!(
            "listen = \"127.0.0.1:0\"\ncert = {:?}\nkey = {:?}\nclient_ca = {:?}\n",
            certs.join("server.pem").display().to_string(),
            certs.join("server-key.pem").display().to_string(),
            certs.join("ca.pem").display().to_string(),
        ),
    );
    let old = secret_file(&tmp.path().join("old"), PASS);
    let new = secret_file(&tmp.path().join("new"), NEW);
    let wrong = secret_file(&tmp.path().join("wrong"), "not the passphrase at all");
    let short = secret_file(&tmp.path().join("short"), "too short");
    let (old_s, new_s) = (old.to_str().unwrap(), new.to_str().unwrap());
    let gw = Gateway::start(&cfg, &data);

    // Refused while sealed, before any passphrase is asked for.
    let change = |gw: &Gateway, current: &Path, next: &Path| {
        gw.fails(&[
            "keys",
            "change-passphrase",
            "--passphrase-file",
            current.to_str().unwrap(),
            "--new-passphrase-file",
            next.to_str().unwrap(),
        ])
    };
    let e = change(&gw, &old, &new);
    assert!(e.contains("sealed") && e.contains("xianjie unlock"), "{e}");

    gw.ok(&["unlock", "--passphrase-file", old_s]);
    let addr = api_addr(&data);
    let secret = gw
        .ok(&["clients", "add", "procuratorate"])
        .lines()
        .find_map(|l| l.strip_prefix("secret:").map(|s| s.trim().to_string()))
        .unwrap();
    let out = gw.cli_stdin(&["credentials", "set", "province"], CRED);
    assert!(out.status.success());
    let r = token_reply(&certs, &addr, "procuratorate", &secret);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let token = r.json()["access_token"].as_str().unwrap().to_string();
    let ks = data.join("keystore.json");
    let before = std::fs::read(&ks).unwrap();

    // Refusals: no new passphrase at hand, a short one, a wrong current one (audited, counted).
    let e = gw.fails(&["keys", "change-passphrase", "--passphrase-file", old_s]);
    assert!(e.contains("--new-passphrase-file"), "{e}");
    let e = change(&gw, &old, &short);
    assert!(e.contains("too short") && e.contains("at least 12"), "{e}");
    let e = change(&gw, &wrong, &new);
    assert!(
        e.contains("passphrase change refused: wrong passphrase")
            && e.contains("1 failed attempt")
            && !e.contains("not the passphrase"),
        "{e}"
    );
    assert_eq!(
        std::fs::read(&ks).unwrap(),
        before,
        "a refused change writes nothing"
    );

    // The change, attributed to the new custodian. The failure above slows it by a second.
    let started = Instant::now();
    let out = gw.ok(&[
        "--as",
        "赵敏",
        "keys",
        "change-passphrase",
        "--passphrase-file",
        old_s,
        "--new-passphrase-file",
        new_s,
    ]);
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(out.contains("keystore passphrase changed"), "{out}");
    let after = std::fs::read(&ks).unwrap();
    assert_ne!(after, before);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&ks).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(!data.join("keystore.json.tmp").exists());
    let salt = |b: &[u8]| serde_json::from_slice::<Value>(b).unwrap()["kdf"]["salt"].clone();
    assert_ne!(salt(&after), salt(&before), "a fresh Argon2id salt");

    let entries = audit_entries(&gw, 40);
    let done = entries
        .iter()
        .rfind(|e| e["action"] == "keystore.passphrase_change" && e["outcome"] == "ok")
        .expect("a keystore.passphrase_change entry");
    assert_eq!(done["actor"]["id"], "赵敏");
    let version = done["details"]["version"].as_u64().unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&after).unwrap()["version"],
        version
    );
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "keystore.change" && e["details"]["version"] == version)
    );
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "keystore.passphrase_change"
                && e["outcome"] == "denied"
                && e["details"]["failures"] == 1)
    );

    // Clients and tokens work on: the same JWT key verifies, the same client secret signs in.
    assert_eq!(ports_status(&certs, &addr, "procuratorate", &token), 200);
    assert_eq!(
        token_reply(&certs, &addr, "procuratorate", &secret).status,
        200
    );

    // The old passphrase no longer unlocks; the new one does.
    gw.ok(&["seal"]);
    let e = gw.fails(&["unlock", "--passphrase-file", old_s]);
    assert!(e.contains("unlock refused: wrong passphrase"), "{e}");
    gw.ok(&["unlock", "--passphrase-file", new_s]);
    assert_eq!(status(&gw)["keystore_version"].as_u64(), Some(version));

    // No passphrase in the log or the audit log.
    let log = std::fs::read_to_string(&gw.log).unwrap();
    let audit = std::fs::read_to_string(data.join("audit/entries.jsonl")).unwrap();
    for text in [&log, &audit] {
        for s in [PASS, NEW, "not the passphrase", CRED, &secret] {
            assert!(!text.contains(s));
        }
    }
    gw.stop();

    // Unattended restarts: the old passphrase file no longer starts the gateway, the new one does,
    // and the client, its token and the credential are all still there.
    let e = serve_fails(&cfg, &old);
    assert!(e.contains("wrong passphrase"), "{e}");
    let gw = Gateway::start_with(&cfg, &data, &["--passphrase-file", new_s]);
    assert_eq!(status(&gw)["sealed"].as_bool(), Some(false));
    let addr = api_addr(&data);
    assert_eq!(ports_status(&certs, &addr, "procuratorate", &token), 200);
    assert_eq!(
        token_reply(&certs, &addr, "procuratorate", &secret).status,
        200
    );
    gw.stop();
    assert_eq!(stored_credential(&ks, &new, "province").unwrap(), CRED);
    assert!(stored_credential(&ks, &old, "province").is_err());
}

#[test]
fn an_interrupted_passphrase_change_leaves_a_working_keystore() {
    const CRED: &str = "the province credential";
    // SIGKILL the gateway this long after the change is asked for: from before the request
    // arrives, through the two key derivations, to after the write.
    const KILL_AFTER_MS: [u64; 8] = [0, 150, 300, 400, 500, 800, 1200, 1800];
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cfg = config(tmp.path(), &data);
    let passes: Vec<PathBuf> = (0..=KILL_AFTER_MS.len() + 1)
        .map(|i| {
            secret_file(
                &tmp.path().join(format!("pass{i}")),
                &format!("custodian number {i}'s passphrase"),
            )
        })
        .collect();
    let start = |i: usize| {
        let gw = Gateway::start_with(
            &cfg,
            &data,
            &["--passphrase-file", passes[i].to_str().unwrap()],
        );
        assert_eq!(status(&gw)["sealed"].as_bool(), Some(false));
        gw
    };
    let ks = data.join("keystore.json");
    let torn = data.join("keystore.json.tmp");
    let gw = start(0);
    assert!(
        gw.cli_stdin(&["credentials", "set", "province"], CRED)
            .status
            .success()
    );
    gw.stop();

    // What a crash in the middle of writing leaves: half a keystore in the temporary file. The
    // gateway starts regardless (the keystore file itself is whole), and the next write
    // replaces it.
    let whole = std::fs::read(&ks).unwrap();
    secret_file(&torn, &String::from_utf8_lossy(&whole[..whole.len() / 2]));
    let mut gw = start(0);

    // The gateway killed at points spread over a change: the file always opens under exactly one
    // of the two passphrases, holds every secret, and the gateway starts with it.
    let mut current = 0;
    let mut outcomes = Vec::new();
    for delay in KILL_AFTER_MS {
        let next = current + 1;
        let mut cmd = std::process::Command::new(common::bin())
            .arg("--data")
            .arg(&data)
            .args(["keys", "change-passphrase", "--passphrase-file"])
            .arg(&passes[current])
            .arg("--new-passphrase-file")
            .arg(&passes[next])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        drop(gw); // SIGKILL
        let _ = cmd.wait();
        let opens: Vec<usize> = [current, next]
            .into_iter()
            .filter(|&i| match stored_credential(&ks, &passes[i], "province") {
                Ok(c) => {
                    assert_eq!(c, CRED);
                    true
                }
                Err(e) => {
                    assert!(
                        e.contains("wrong passphrase"),
                        "killed after {delay} ms: {e}"
                    );
                    false
                }
            })
            .collect();
        assert_eq!(
            opens.len(),
            1,
            "killed after {delay} ms: opens under {opens:?}"
        );
        current = opens[0];
        outcomes.push((delay, current == next));
        gw = start(current);
    }
    eprintln!("killed after (ms, changed): {outcomes:?}");

    // A change that runs to its end, after all that.
    let next = current + 1;
    gw.ok(&[
        "keys",
        "change-passphrase",
        "--passphrase-file",
        passes[current].to_str().unwrap(),
        "--new-passphrase-file",
        passes[next].to_str().unwrap(),
    ]);
    gw.stop();
    assert!(!torn.exists(), "the torn temporary file was replaced");
    assert_eq!(
        stored_credential(&ks, &passes[next], "province").unwrap(),
        CRED
    );
    let gw = start(next);
    gw.stop();
}
