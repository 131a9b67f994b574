//! Custody against the real gateway process: it starts sealed and refuses key use; unlock creates
//! the keystore; clients, credentials and key rotation through the CLI, attributed with `--as`;
//! wrong passphrases refused, slowed and audited; an older keystore file refused; no secret in
//! the log, the audit log or the keystore file; fail-closed when the audit log cannot be written;
//! an export that verifies offline.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Gateway, secret_file};
use serde_json::Value;

const PASS: &str = "correct horse battery staple 马";

fn config(dir: &Path, data: &Path) -> PathBuf {
    let cfg = dir.join("xianjie.toml");
    let adapters = Path::new(env!("CARGO_MANIFEST_DIR")).join("adapters");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = {:?}\nadapters_dir = {:?}\n[log]\nlevel = \"debug\"\n[audit]\nfsync = \"always\"\n[server]\nlisten = \"off\"\n",
            data.display().to_string(),
            adapters.display().to_string()
        ),
    )
    .unwrap();
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
    let out = std::process::Command::new(common::bin())
        .args([
            "--config",
            cfg.to_str().unwrap(),
            "serve",
            "--passphrase-file",
        ])
        .arg(&wrong)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("wrong passphrase"), "{e}");
    // A passphrase file others can read is refused before anything else.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = std::process::Command::new(common::bin())
        .args([
            "--config",
            cfg.to_str().unwrap(),
            "serve",
            "--passphrase-file",
        ])
        .arg(&pass)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && e.contains("chmod 600"), "{e}");
}
