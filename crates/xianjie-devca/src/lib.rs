//! Development certificates: a private CA, a server certificate for `localhost` and client
//! certificates, generated with rcgen for `xianjie certs dev`.
//!
//! A tool crate: the gateway offers it as `xianjie certs dev` and never needs it at run time
//! (it loads whatever certificates its configuration names). That the certificates made here
//! work with the gateway's TLS is tested beside the TLS setup (`crates/xianjie-net/src/tls.rs`).
//!
//! These are for development and tests only; production certificates come from the district's
//! CA or a public CA (see `certs/README.md`). The CA is reused once it exists, so adding a
//! client later does not invalidate certificates handed out earlier.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

/// Common name of the development CA. The issuer name of every leaf is this name, so a
/// reused CA must carry it too (checked when the CA is loaded).
const CA_COMMON_NAME: &str = "xianjie development CA";
/// Common name of the development server certificate; clients check the SANs, not this.
const SERVER_COMMON_NAME: &str = "xianjie development server";
/// Names the server certificate is valid for: the loopback host in every spelling.
const SERVER_SANS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];
/// Server and client certificate lifetime: 825 days is the longest that macOS and iOS accept
/// for a TLS server certificate.
const LEAF_DAYS: u64 = 825;
/// CA lifetime: long enough that a development setup never has to re-issue its clients.
const CA_DAYS: u64 = 3650;
/// Longest client name accepted.
const MAX_CLIENT_NAME: usize = 64;

/// A problem generating development certificates.
#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    /// A client name that cannot safely become a file name or certificate subject.
    #[error(
        "invalid client name {name:?}: {reason}; use 1-{MAX_CLIENT_NAME} characters of \
         A-Z a-z 0-9 . _ - starting with a letter or digit"
    )]
    InvalidClientName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Reading, writing or creating a file or directory failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done (`cannot write`, ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// Only one half of the CA (certificate or key) is present.
    #[error(
        "{} exists but {} does not, so the CA cannot be reused; restore the missing file, or \
         remove {} to start a new CA (which invalidates every certificate it issued)",
        present.display(),
        missing.display(),
        present.display()
    )]
    IncompleteCa {
        /// The file that exists.
        present: PathBuf,
        /// The file that is missing.
        missing: PathBuf,
    },
    /// The existing CA certificate or key cannot be read back.
    #[error(
        "{}: cannot reuse the existing CA: {reason}; restore it from a backup, or remove \
         ca.pem and ca-key.pem to start a new CA",
        path.display()
    )]
    BadCa {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// `ca.pem` and `ca-key.pem` exist but were not made by `xianjie certs dev` together.
    #[error(
        "{}: not a `xianjie certs dev` CA matching {} ({reason}); certificates signed with \
         it would not verify. Use another --out directory, or remove ca.pem and ca-key.pem to \
         start a new CA",
        cert.display(),
        key.display()
    )]
    ForeignCa {
        /// The CA certificate.
        cert: PathBuf,
        /// The CA key.
        key: PathBuf,
        /// Which part does not match.
        reason: &'static str,
    },
    /// A certificate exists that a newly created CA would not have signed.
    #[error(
        "{} exists but there is no CA (ca.pem and ca-key.pem) in {} that could have signed it; \
         pass --force to replace it with one signed by a new CA",
        path.display(),
        dir.display()
    )]
    StaleCertificate {
        /// The existing certificate or key.
        path: PathBuf,
        /// The output directory.
        dir: PathBuf,
    },
    /// Only one half of a certificate and key pair is present.
    #[error(
        "{} exists but {} does not; pass --force to issue a new certificate and key",
        present.display(),
        missing.display()
    )]
    IncompletePair {
        /// The file that exists.
        present: PathBuf,
        /// The file that is missing.
        missing: PathBuf,
    },
    /// rcgen failed to make a key or certificate.
    #[error("cannot generate {what}: {source}")]
    Generate {
        /// What was being generated.
        what: String,
        /// The rcgen error.
        #[source]
        source: rcgen::Error,
    },
}

/// Writes development certificates into `out` and returns the files written.
///
/// `out` is created with mode 0700 if missing. It receives `ca.pem` and `ca-key.pem` (the
/// development CA), `server.pem` and `server-key.pem` (SANs `localhost`, `127.0.0.1`, `::1`;
/// serverAuth; 825 days), and for each client name `NAME.pem` (CN = NAME; clientAuth; 825
/// days) and `NAME-key.pem`. Private keys are written with mode 0600. Keys are ECDSA P-256.
///
/// An existing CA (`ca.pem` + `ca-key.pem`) is reused and left untouched, so adding a client
/// later does not invalidate earlier certificates. Existing server and client certificates are
/// kept unless `force`, which issues new ones (the CA is never replaced).
pub fn generate_dev(
    out: &Path,
    clients: &[String],
    force: bool,
) -> Result<Vec<PathBuf>, CertsError> {
    // Check every name before touching the disk, so a typo leaves nothing half-written.
    for name in clients {
        check_client_name(name)?;
    }
    let mut names: Vec<&str> = Vec::new();
    for name in clients {
        if !names.contains(&name.as_str()) {
            names.push(name);
        }
    }

    create_private_dir(out)?;
    let mut written = Vec::new();

    let ca_cert_path = out.join("ca.pem");
    let ca_key_path = out.join("ca-key.pem");
    let (ca, ca_key, ca_is_new) = match (ca_cert_path.exists(), ca_key_path.exists()) {
        (true, true) => {
            let (ca, key) = load_ca(&ca_cert_path, &ca_key_path)?;
            tracing::info!(ca = %ca_cert_path.display(), "reusing the existing development CA");
            (ca, key, false)
        }
        (true, false) => {
            return Err(CertsError::IncompleteCa {
                present: ca_cert_path,
                missing: ca_key_path,
            });
        }
        (false, true) => {
            return Err(CertsError::IncompleteCa {
                present: ca_key_path,
                missing: ca_cert_path,
            });
        }
        (false, false) => {
            let key = generate_key("the development CA key")?;
            let ca = ca_params()
                .self_signed(&key)
                .map_err(|source| CertsError::Generate {
                    what: "the development CA certificate".to_owned(),
                    source,
                })?;
            (ca, key, true)
        }
    };

    let mut leaves = vec![Leaf::server()];
    leaves.extend(names.iter().map(|name| Leaf::client(name)));

    // Decide about every leaf before writing, so a refusal leaves the directory as it was.
    let mut to_issue = Vec::new();
    for leaf in &leaves {
        let cert = out.join(format!("{}.pem", leaf.file_stem));
        let key = out.join(format!("{}-key.pem", leaf.file_stem));
        if !force {
            match (cert.exists(), key.exists()) {
                (false, false) => {}
                (true, _) if ca_is_new => {
                    return Err(CertsError::StaleCertificate {
                        path: cert,
                        dir: out.to_path_buf(),
                    });
                }
                (_, true) if ca_is_new => {
                    return Err(CertsError::StaleCertificate {
                        path: key,
                        dir: out.to_path_buf(),
                    });
                }
                (true, true) => continue,
                (true, false) => {
                    return Err(CertsError::IncompletePair {
                        present: cert,
                        missing: key,
                    });
                }
                (false, true) => {
                    return Err(CertsError::IncompletePair {
                        present: key,
                        missing: cert,
                    });
                }
            }
        }
        to_issue.push((leaf, cert, key));
    }

    if ca_is_new {
        // Key first: a crash in between leaves ca-key.pem alone, which the next run reports
        // (IncompleteCa) instead of silently making a CA whose key is lost.
        write_file(&ca_key_path, ca_key.serialize_pem().as_bytes(), true)?;
        written.push(ca_key_path);
        write_file(&ca_cert_path, ca.pem().as_bytes(), false)?;
        written.push(ca_cert_path);
    }

    for (leaf, cert_path, key_path) in to_issue {
        let key = generate_key(&format!("the key for {}", leaf.file_stem))?;
        let cert = leaf
            .params()?
            .signed_by(&key, &ca, &ca_key)
            .map_err(|source| CertsError::Generate {
                what: format!("the certificate for {}", leaf.file_stem),
                source,
            })?;
        write_file(&key_path, key.serialize_pem().as_bytes(), true)?;
        written.push(key_path);
        write_file(&cert_path, cert.pem().as_bytes(), false)?;
        written.push(cert_path);
    }
    Ok(written)
}

/// A certificate to issue under the development CA.
struct Leaf<'a> {
    /// `server`, or the client name; the files are `STEM.pem` and `STEM-key.pem`.
    file_stem: &'a str,
    usage: ExtendedKeyUsagePurpose,
    common_name: &'a str,
    sans: &'a [&'a str],
}

impl<'a> Leaf<'a> {
    fn server() -> Self {
        Leaf {
            file_stem: "server",
            usage: ExtendedKeyUsagePurpose::ServerAuth,
            common_name: SERVER_COMMON_NAME,
            sans: &SERVER_SANS,
        }
    }

    fn client(name: &'a str) -> Self {
        Leaf {
            file_stem: name,
            usage: ExtendedKeyUsagePurpose::ClientAuth,
            common_name: name,
            sans: &[],
        }
    }

    fn params(&self) -> Result<CertificateParams, CertsError> {
        let sans: Vec<String> = self.sans.iter().map(|s| (*s).to_owned()).collect();
        // `new` turns IP-address strings into IP SANs and the rest into DNS SANs.
        let mut params = CertificateParams::new(sans).map_err(|source| CertsError::Generate {
            what: format!("the names for {}", self.file_stem),
            source,
        })?;
        params.distinguished_name = common_name(self.common_name);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![self.usage.clone()];
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, LEAF_DAYS);
        Ok(params)
    }
}

/// The CA's parameters. A reused CA is rebuilt from these with its old key, which yields the
/// same subject and key, so what it signs verifies against the original `ca.pem`.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name(CA_COMMON_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    set_validity(&mut params, CA_DAYS);
    params
}

fn common_name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

/// Valid from yesterday (tolerating clocks a little behind) for `days` days from today.
fn set_validity(params: &mut CertificateParams, days: u64) {
    use chrono::Datelike;
    let today = chrono::Utc::now().date_naive();
    let from = today - chrono::Days::new(1);
    let until = today + chrono::Days::new(days);
    let ymd = |d: chrono::NaiveDate| {
        // Month and day always fit in a u8; the fallback is unreachable.
        let month = u8::try_from(d.month()).unwrap_or(1);
        let day = u8::try_from(d.day()).unwrap_or(1);
        rcgen::date_time_ymd(d.year(), month, day)
    };
    params.not_before = ymd(from);
    params.not_after = ymd(until);
}

fn generate_key(what: &str) -> Result<KeyPair, CertsError> {
    // With ring, rcgen's default is ECDSA P-256: small, fast and accepted everywhere.
    KeyPair::generate().map_err(|source| CertsError::Generate {
        what: what.to_owned(),
        source,
    })
}

/// Loads an existing CA and rebuilds it in memory for signing, checking that it is one this
/// module made: same subject (the issuer name of new leaves) and the same public key.
fn load_ca(cert_path: &Path, key_path: &Path) -> Result<(Certificate, KeyPair), CertsError> {
    let key_pem = read_to_string(key_path)?;
    let key = KeyPair::from_pem(&key_pem).map_err(|e| CertsError::BadCa {
        path: key_path.to_path_buf(),
        reason: format!("not a PEM private key rcgen can use ({e})"),
    })?;
    let existing = {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        CertificateDer::from_pem_file(cert_path).map_err(|e| CertsError::BadCa {
            path: cert_path.to_path_buf(),
            reason: format!("no readable PEM certificate ({e})"),
        })?
    };
    let rebuilt = ca_params()
        .self_signed(&key)
        .map_err(|source| CertsError::Generate {
            what: "the in-memory copy of the development CA".to_owned(),
            source,
        })?;

    let (Some(old), Some(new)) = (subject_and_spki(&existing), subject_and_spki(rebuilt.der()))
    else {
        return Err(CertsError::BadCa {
            path: cert_path.to_path_buf(),
            reason: "not a well-formed X.509 certificate".to_owned(),
        });
    };
    let mismatch = if old.0 != new.0 {
        Some("its subject is not CN=xianjie development CA")
    } else if old.1 != new.1 {
        Some("its public key is not the one in the key file")
    } else {
        None
    };
    if let Some(reason) = mismatch {
        return Err(CertsError::ForeignCa {
            cert: cert_path.to_path_buf(),
            key: key_path.to_path_buf(),
            reason,
        });
    }
    Ok((rebuilt, key))
}

/// The DER subject name and SubjectPublicKeyInfo of a certificate, or `None` if it is not a
/// well-formed X.509 certificate. (rcgen parses certificates only with its `x509-parser`
/// feature, which this crate does not enable; two fields need only a DER walk.)
fn subject_and_spki(cert: &[u8]) -> Option<(&[u8], &[u8])> {
    const SEQUENCE: u8 = 0x30;
    const VERSION_TAG: u8 = 0xa0;
    let certificate = der_next(cert).filter(|e| e.tag == SEQUENCE)?;
    let tbs = der_next(certificate.contents).filter(|e| e.tag == SEQUENCE)?;
    let mut fields = Vec::new();
    let mut rest = tbs.contents;
    while !rest.is_empty() {
        let field = der_next(rest)?;
        rest = field.rest;
        fields.push(field);
    }
    // TBSCertificate: [0] version (optional), serial, signature, issuer, validity, subject,
    // subjectPublicKeyInfo, ...
    let skip = usize::from(fields.first()?.tag == VERSION_TAG);
    let subject = fields.get(skip + 4)?;
    let spki = fields.get(skip + 5)?;
    (subject.tag == SEQUENCE && spki.tag == SEQUENCE).then_some((subject.whole, spki.whole))
}

/// One DER element and what follows it.
struct DerElement<'a> {
    tag: u8,
    /// The element with its tag and length.
    whole: &'a [u8],
    /// The element without them.
    contents: &'a [u8],
    /// The input after the element.
    rest: &'a [u8],
}

/// Splits one DER element off the front of `input`.
fn der_next(input: &[u8]) -> Option<DerElement<'_>> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let (bytes, rest) = rest.split_at_checked(usize::from(first & 0x7f))?;
        if bytes.is_empty() || bytes.len() > 4 {
            return None;
        }
        let len = bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, rest)
    };
    let (contents, rest) = rest.split_at_checked(len)?;
    let whole = input.get(..input.len() - rest.len())?;
    Some(DerElement {
        tag,
        whole,
        contents,
        rest,
    })
}

/// Refuses names that are not plain file names, or that would overwrite another file of the
/// directory (`ca.pem`, `server-key.pem`, or another client's key).
fn check_client_name(name: &str) -> Result<(), CertsError> {
    let refuse = |reason| {
        Err(CertsError::InvalidClientName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() || name.len() > MAX_CLIENT_NAME {
        return refuse("wrong length");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return refuse("contains a character other than A-Z a-z 0-9 . _ -");
    }
    // A leading dot would hide the files (and allows `..`); a leading dash reads as an option
    // to the openssl and shell commands people run on them.
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return refuse("must start with a letter or digit");
    }
    // Compared case-insensitively because macOS file names are.
    let lower = name.to_ascii_lowercase();
    if lower == "ca" || lower == "server" {
        return refuse("reserved for the CA and server files");
    }
    if lower.ends_with("-key") {
        return refuse("must not end in -key, which would collide with a key file");
    }
    Ok(())
}

/// Creates `dir` with mode 0700 if missing; an existing directory is left as it is (its key
/// files are 0600 either way).
fn create_private_dir(dir: &Path) -> Result<(), CertsError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|source| CertsError::Io {
        action: "cannot create directory",
        path: dir.to_path_buf(),
        source,
    })?;
    // The umask could have removed owner bits; set the mode exactly.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|source| {
            CertsError::Io {
                action: "cannot set mode 0700 on",
                path: dir.to_path_buf(),
                source,
            }
        })?;
    }
    Ok(())
}

fn read_to_string(path: &Path) -> Result<String, CertsError> {
    fs::read_to_string(path).map_err(|source| CertsError::Io {
        action: "cannot read",
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `contents` to `path` through a temporary file and a rename, so an interrupted run
/// never leaves a truncated certificate or key. Private files get mode 0600 before any byte
/// is written; others 0644.
fn write_file(path: &Path, contents: &[u8], private: bool) -> Result<(), CertsError> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp"));
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CertsError::Io {
            action: "cannot write",
            path,
            source,
        }
    };

    let result = (|| -> io::Result<()> {
        // A leftover from an interrupted run may have any mode; start afresh.
        match fs::remove_file(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(if private { 0o600 } else { 0o644 });
        }
        let mut file = options.open(&tmp)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(fs::Permissions::from_mode(if private {
                0o600
            } else {
                0o644
            }))?;
        }
        #[cfg(not(unix))]
        let _ = private;
        file.write_all(contents)?;
        file.sync_all()
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(io_err(&tmp)(e));
    }
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_err(path)(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn file_names(paths: &[PathBuf]) -> Vec<String> {
        paths
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn writes_the_ca_server_and_client_files() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("certs");
        let written = generate_dev(&out, &names(&["procuratorate", "other"]), false).unwrap();
        assert_eq!(
            file_names(&written),
            [
                "ca-key.pem",
                "ca.pem",
                "server-key.pem",
                "server.pem",
                "procuratorate-key.pem",
                "procuratorate.pem",
                "other-key.pem",
                "other.pem",
            ]
        );
        for path in &written {
            assert!(path.starts_with(&out));
            let text = fs::read_to_string(path).unwrap();
            let is_key = path.to_string_lossy().ends_with("-key.pem");
            assert_eq!(text.contains("PRIVATE KEY"), is_key, "{}", path.display());
            #[cfg(unix)]
            assert_eq!(
                mode(path),
                if is_key { 0o600 } else { 0o644 },
                "{}",
                path.display()
            );
        }
        #[cfg(unix)]
        assert_eq!(mode(&out), 0o700);
        // No temporary files are left behind.
        assert_eq!(fs::read_dir(&out).unwrap().count(), written.len());
    }

    #[test]
    fn reuses_the_ca_and_leaves_earlier_files_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path();
        generate_dev(out, &names(&["procuratorate"]), false).unwrap();
        let before: Vec<Vec<u8>> = ["ca.pem", "ca-key.pem", "server.pem", "procuratorate.pem"]
            .iter()
            .map(|f| fs::read(out.join(f)).unwrap())
            .collect();

        let written = generate_dev(out, &names(&["procuratorate", "third"]), false).unwrap();
        assert_eq!(file_names(&written), ["third-key.pem", "third.pem"]);
        let after: Vec<Vec<u8>> = ["ca.pem", "ca-key.pem", "server.pem", "procuratorate.pem"]
            .iter()
            .map(|f| fs::read(out.join(f)).unwrap())
            .collect();
        assert_eq!(before, after, "existing files were rewritten");

        // `force` re-issues the server and client certificates, never the CA.
        let written = generate_dev(out, &names(&["third"]), true).unwrap();
        assert_eq!(
            file_names(&written),
            ["server-key.pem", "server.pem", "third-key.pem", "third.pem"]
        );
        assert_eq!(fs::read(out.join("ca.pem")).unwrap(), before[0]);
        assert_ne!(fs::read(out.join("server.pem")).unwrap(), before[2]);
    }

    #[test]
    fn refuses_invalid_client_names_before_writing_anything() {
        let long = "a".repeat(MAX_CLIENT_NAME + 1);
        for bad in [
            "",
            long.as_str(),
            "a/b",
            "../x",
            ".hidden",
            "-rf",
            "two words",
            "检察院",
            "ca",
            "Server",
            "procuratorate-key",
        ] {
            let tmp = tempfile::tempdir().unwrap();
            let out = tmp.path().join("certs");
            let err = generate_dev(&out, &names(&["fine", bad]), false).unwrap_err();
            assert!(
                matches!(&err, CertsError::InvalidClientName { name, .. } if name == bad),
                "{bad:?}: {err:?}"
            );
            assert!(!out.exists(), "{bad:?}: directory created");
        }
        let longest = "a".repeat(MAX_CLIENT_NAME);
        for good in ["procuratorate", "P.1_x-y", "0", longest.as_str()] {
            check_client_name(good).unwrap();
        }
    }

    #[test]
    fn refuses_a_ca_it_cannot_reuse() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        generate_dev(a.path(), &[], false).unwrap();
        generate_dev(b.path(), &[], false).unwrap();

        // The certificate of one CA with the key of another.
        fs::copy(b.path().join("ca-key.pem"), a.path().join("ca-key.pem")).unwrap();
        let err = generate_dev(a.path(), &names(&["x"]), false).unwrap_err();
        assert!(matches!(err, CertsError::ForeignCa { .. }), "{err:?}");

        // A CA certificate without its key.
        fs::remove_file(b.path().join("ca-key.pem")).unwrap();
        let err = generate_dev(b.path(), &names(&["x"]), false).unwrap_err();
        assert!(matches!(err, CertsError::IncompleteCa { .. }), "{err:?}");
        assert!(!b.path().join("x.pem").exists());
    }

    #[test]
    fn refuses_to_keep_certificates_a_new_ca_did_not_sign() {
        let tmp = tempfile::tempdir().unwrap();
        generate_dev(tmp.path(), &[], false).unwrap();
        fs::remove_file(tmp.path().join("ca.pem")).unwrap();
        fs::remove_file(tmp.path().join("ca-key.pem")).unwrap();
        let err = generate_dev(tmp.path(), &[], false).unwrap_err();
        assert!(
            matches!(err, CertsError::StaleCertificate { .. }),
            "{err:?}"
        );
        assert!(
            !tmp.path().join("ca.pem").exists(),
            "a new CA was written anyway"
        );

        let written = generate_dev(tmp.path(), &[], true).unwrap();
        assert_eq!(
            file_names(&written),
            ["ca-key.pem", "ca.pem", "server-key.pem", "server.pem"]
        );
    }

    #[test]
    fn subject_and_spki_reads_rcgen_certificates() {
        let key = KeyPair::generate().unwrap();
        let cert = ca_params().self_signed(&key).unwrap();
        let (subject, spki) = subject_and_spki(cert.der()).unwrap();
        assert_eq!(spki, key.public_key_der().as_slice());
        assert!(
            subject
                .windows(CA_COMMON_NAME.len())
                .any(|w| w == CA_COMMON_NAME.as_bytes())
        );
        assert!(subject_and_spki(b"\x30\x03\x02\x01\x00").is_none());
        assert!(subject_and_spki(&cert.der()[..100]).is_none());
    }
}
