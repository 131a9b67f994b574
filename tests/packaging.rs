//! The systemd unit an operator installs (`packaging/xianjie.service`, issue 16): systemd's own
//! checker finds nothing wrong with it, its hardening is what the issue asks (no new privileges, a
//! read-only system, a private /tmp, the data directory its only writable path), and systemd's
//! offline security analysis rates its exposure low.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

fn unit() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/xianjie.service"))
        .unwrap()
}

/// The unit with `ExecStart` pointing at the binary under test, in a directory of its own.
fn unit_for_test(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("xianjie.service");
    std::fs::write(&path, unit().replace("/usr/bin/xianjie", common::bin())).unwrap();
    path
}

fn systemd_analyze() -> bool {
    let ok = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok();
    if !ok {
        eprintln!("SKIPPED: systemd-analyze is not installed (Debian's systemd package)");
    }
    ok
}

#[test]
fn the_unit_is_hardened_as_the_issue_asks() {
    let text = unit();
    let settings: Vec<(&str, &str)> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .collect();
    let has = |k: &str, v: &str| settings.contains(&(k, v));
    for (k, v) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("PrivateTmp", "yes"),
        ("ProtectHome", "yes"),
        ("ReadWritePaths", "/var/lib/xianjie"),
        ("StateDirectory", "xianjie"),
        ("WorkingDirectory", "/var/lib/xianjie"),
        ("User", "xianjie"),
        ("CapabilityBoundingSet", ""),
        ("UMask", "0077"),
    ] {
        assert!(has(k, v), "{k}={v}");
    }
    // The data directory is the only writable path.
    let writable: Vec<&str> = settings
        .iter()
        .filter(|(k, _)| *k == "ReadWritePaths")
        .map(|(_, v)| *v)
        .collect();
    assert_eq!(writable, ["/var/lib/xianjie"]);
    // It starts sealed: no passphrase file on the command line (custody stays with a person).
    assert!(!text.contains("--passphrase-file"));
}

#[test]
fn systemd_verifies_the_unit_and_rates_its_exposure_low() {
    if !systemd_analyze() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = unit_for_test(dir.path());
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let level: f64 = text
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for xianjie.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in: {text}"));
    // systemd rates 0 (safe) to 10 (exposed); this unit is rated 1.4. Dropping only
    // NoNewPrivileges, ProtectSystem and PrivateTmp raises it to 1.9, so the bound catches it.
    assert!(level <= 1.5, "exposure {level}: {text}");
}
