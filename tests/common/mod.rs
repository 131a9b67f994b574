//! Shared helpers for integration tests: start the real `xianjie serve` process on a temporary data
//! directory and run CLI commands against it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_xianjie")
}

/// Writes a config using the repository's adapters and `data` as data directory.
pub fn write_config(dir: &Path, data: &Path) -> PathBuf {
    let cfg = dir.join("xianjie.toml");
    let adapters = Path::new(env!("CARGO_MANIFEST_DIR")).join("adapters");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = {:?}\nadapters_dir = {:?}\n[ingest]\nbatch_size = 500\n[log]\nlevel = \"warn\"\n[server]\nlisten = \"off\"\n",
            data.display().to_string(),
            adapters.display().to_string()
        ),
    )
    .unwrap();
    add_store(&cfg, data);
    cfg
}

/// Writes a config with the port API on (HTTPS on 127.0.0.1:0 with `certs`' server certificate and
/// client CA), the repository's adapters and rules, `data` as data directory, and `extra` appended
/// under `[server]`.
pub fn api_config(dir: &Path, data: &Path, certs: &Path, extra: &str) -> PathBuf {
    let cfg = api_config_own_store(dir, data, certs, extra);
    add_store(&cfg, data);
    cfg
}

/// [`api_config`] without the store [`add_store`] chooses: `extra` names it (or sled).
pub fn api_config_own_store(dir: &Path, data: &Path, certs: &Path, extra: &str) -> PathBuf {
    let cfg = dir.join("xianjie.toml");
    let adapters = Path::new(env!("CARGO_MANIFEST_DIR")).join("adapters");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = {:?}\nadapters_dir = {:?}\nrules_dir = {:?}\n[log]\nlevel = \"info\"\n[server]\nlisten = \"127.0.0.1:0\"\ncert = {:?}\nkey = {:?}\nclient_ca = {:?}\n{extra}",
            data.display().to_string(),
            adapters.display().to_string(),
            adapters.with_file_name("rules").display().to_string(),
            certs.join("server.pem").display().to_string(),
            certs.join("server-key.pem").display().to_string(),
            certs.join("ca.pem").display().to_string(),
        ),
    )
    .unwrap();
    cfg
}

/// Appends the store to use to the gateway config `cfg` whose data directory is `data`: nothing
/// (sled, the default) unless `XIANJIE_TEST_STORE=postgres`, then `[store]` naming a database
/// of its own on the cluster `XIANJIE_TEST_PG` names (`.ci/run` starts one and sets both). The
/// database is named after `data`, so a gateway restarted on the same data directory finds its
/// store again.
pub fn add_store(cfg: &Path, data: &Path) {
    let Some(url) = pg::test_database(data) else {
        return;
    };
    let mut text = std::fs::read_to_string(cfg).unwrap();
    text.push_str(&format!("\n[store]\nkind = \"postgres\"\nurl = {url:?}\n"));
    std::fs::write(cfg, text).unwrap();
}

/// The store of the gateway whose data directory is `data`, as [`add_store`] configures it: in
/// PostgreSQL with `XIANJIE_TEST_STORE=postgres`, else sled under `data` (which only one process
/// may open at a time: stop the gateway first).
pub fn open_store(data: &Path) -> xianjie::store::Store {
    match pg::test_database(data) {
        None => xianjie::store::Store::open(data).unwrap(),
        Some(url) => xianjie::store::Store::open_postgres(xianjie::store::PgSettings {
            config: url.parse().unwrap(),
            tls: None,
            pool_size: 2,
        })
        .unwrap(),
    }
}

/// Where the keystore of the gateway whose data directory is `data` is kept, as [`add_store`]
/// configures it: in the database with `XIANJIE_TEST_STORE=postgres`, else its file.
pub fn keystore_home(data: &Path) -> xianjie::keys::keystore::Home {
    use xianjie::keys::keystore::Home;
    match pg::test_database(data) {
        None => Home::File(data.join("keystore.json")),
        Some(_) => Home::Shared(std::sync::Arc::new(open_store(data))),
    }
}

/// With the gateway whose data directory is `data` stopped: its audit entries (canonical lines,
/// in order) and its last signed checkpoint note, from its files or from the database.
pub fn audit_at_rest(data: &Path) -> (Vec<String>, Option<String>) {
    if pg::test_database(data).is_none() {
        return audit_files(data);
    }
    let store = open_store(data);
    let size = store.audit_size().unwrap();
    let entries = store
        .audit_entries(0, size)
        .map(|v| String::from_utf8(v.unwrap()[32..].to_vec()).unwrap())
        .collect();
    (entries, store.audit_last_checkpoint().unwrap())
}

/// [`audit_at_rest`] of a gateway whose audit log is files.
pub fn audit_files(data: &Path) -> (Vec<String>, Option<String>) {
    let entries = std::fs::read_to_string(data.join("audit/entries.jsonl")).unwrap();
    let log = std::fs::read_to_string(data.join("audit/checkpoints.log")).unwrap_or_default();
    let (mut rest, mut last) = (log.as_str(), None);
    while !rest.is_empty() {
        let (len, after) = rest.split_once('\n').unwrap();
        let len: usize = len.parse().unwrap();
        last = Some(after[..len].to_string());
        rest = &after[len..];
    }
    (entries.lines().map(str::to_string).collect(), last)
}

/// Writes `text` to a new file of mode 0600 (a passphrase file).
pub fn secret_file(path: &Path, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.to_path_buf()
}

/// The bearer credential the simulator takes.
pub const CREDENTIAL: &str = "province-token-7f3a9c";

/// A running provincial simulator (`xianjie province-sim`), killed on drop.
pub struct Sim {
    pub child: Child,
    /// Its `host:port`.
    pub addr: String,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the simulator on 127.0.0.1:0 with `certs` (from `certs dev`), the bearer credential
/// [`CREDENTIAL`] and `faults`; waits for its address.
pub fn start_sim(dir: &Path, certs: &Path, faults: &str) -> Sim {
    let addr_file = dir.join("sim.addr");
    let _ = std::fs::remove_file(&addr_file);
    let mut sim = Sim {
        child: Command::new(bin())
            .args(["province-sim", "--listen", "127.0.0.1:0", "--certs"])
            .arg(certs)
            .args([
                "--credential",
                CREDENTIAL,
                "--faults",
                faults,
                "--addr-file",
            ])
            .arg(&addr_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("sim.log")).unwrap())
            .spawn()
            .unwrap(),
        addr: String::new(),
    };
    // On a panic below, dropping `sim` kills and reaps the process.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(a) = std::fs::read_to_string(&addr_file)
            && a.ends_with('\n')
        {
            sim.addr = a.trim().to_string();
            return sim;
        }
        assert!(Instant::now() < deadline, "simulator did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running gateway process, killed on drop.
pub struct Gateway {
    pub child: Child,
    pub data: PathBuf,
    pub log: PathBuf,
}

impl Gateway {
    /// Starts `xianjie --config CFG serve` and waits until its admin socket answers.
    pub fn start(cfg: &Path, data: &Path) -> Gateway {
        Self::start_with(cfg, data, &[])
    }

    /// Starts `xianjie --config CFG serve ARGS…` and waits until its admin socket answers.
    pub fn start_with(cfg: &Path, data: &Path, args: &[&str]) -> Gateway {
        std::fs::create_dir_all(data).unwrap();
        let log = data.with_extension("log");
        let child = Command::new(bin())
            .arg("--config")
            .arg(cfg)
            .arg("serve")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut gw = Gateway {
            child,
            data: data.to_path_buf(),
            log,
        };
        let sock = data.join("admin.sock");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if std::os::unix::net::UnixStream::connect(&sock).is_ok() {
                return gw;
            }
            if let Some(status) = gw.child.try_wait().unwrap() {
                panic!(
                    "gateway exited early ({status}): {}",
                    std::fs::read_to_string(&gw.log).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "gateway did not start in 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs a CLI command against this gateway.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(bin())
            .arg("--data")
            .arg(&self.data)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Runs a CLI command with `input` on its standard input.
    pub fn cli_stdin(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        let mut child = Command::new(bin())
            .arg("--data")
            .arg(&self.data)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// Runs a CLI command that must succeed and returns its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "xianjie {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a CLI command that must fail and returns its standard error.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            !out.status.success(),
            "xianjie {args:?} should have failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Runs a CLI command that prints JSON and must succeed.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "xianjie {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
    }

    /// Runs `f` while the audit log cannot be written: its file is made immutable (ext4
    /// `chattr +i`, so writes through the gateway's open descriptor fail, even for root), then
    /// writable again. The gateway's log stays broken until it restarts.
    pub fn with_audit_unwritable<T>(&self, f: impl FnOnce() -> T) -> T {
        let log = self.data.join("audit/entries.jsonl");
        if let Some(url) = pg::test_database(&self.data).filter(|_| !log.exists()) {
            // The shared log: the database refuses every append while `f` runs (the leader
            // writes its own entries to the log, a follower to the queue).
            pg::psql(
                &url,
                "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'the audit log is unwritable (test)'; END $$; \
                 CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_queue \
                 FOR EACH ROW EXECUTE FUNCTION refuse_audit(); \
                 CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log \
                 FOR EACH ROW EXECUTE FUNCTION refuse_audit()",
            )
            .unwrap();
            let out = f();
            pg::psql(
                &url,
                "DROP TRIGGER refuse_audit ON audit_queue; DROP TRIGGER refuse_audit ON audit_log; \
                 DROP FUNCTION refuse_audit()",
            )
            .unwrap();
            return out;
        }
        let chattr = |flag: &str| {
            Command::new("chattr")
                .arg(flag)
                .arg(&log)
                .status()
                .is_ok_and(|s| s.success())
        };
        assert!(chattr("+i"), "chattr +i must work on this filesystem");
        let out = f();
        assert!(chattr("-i"));
        out
    }

    /// Stops it with SIGTERM and waits for a clean exit.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .arg("-TERM")
            .arg(&pid)
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "gateway did not stop cleanly: {status}: {}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer.
pub struct Reply {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

/// A TLS connection to `addr` trusting `ca`, presenting `identity` (cert, key) when given.
pub async fn tls_connect(
    ca: &Path,
    identity: Option<(&Path, &Path)>,
    addr: &str,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
    let cfg = xianjie::tls::client_config(ca, identity).unwrap();
    let tcp = tokio::net::TcpStream::connect(addr)
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

/// [`https`] against a gateway whose certificates `certs_dir` holds (from `certs dev`): trusting
/// its `ca.pem`, presenting client certificate `cert` (`NAME.pem`, `NAME-key.pem`) or none.
pub fn https_as(
    certs_dir: &Path,
    cert: Option<&str>,
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> Result<Reply, String> {
    let id = cert.map(|n| {
        (
            certs_dir.join(format!("{n}.pem")),
            certs_dir.join(format!("{n}-key.pem")),
        )
    });
    https(
        &certs_dir.join("ca.pem"),
        id.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
        addr,
        method,
        path,
        headers,
        body,
    )
}

/// One HTTPS request on a fresh connection.
pub fn https(
    ca: &Path,
    identity: Option<(&Path, &Path)>,
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> Result<Reply, String> {
    use http_body_util::{BodyExt, Full};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tls = tls_connect(ca, identity, addr).await?;
        let (mut send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                .await
                .map_err(|e| format!("http: {e}"))?;
        tokio::spawn(conn);
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost");
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let resp = send
            .send_request(req.body(Full::new(hyper::body::Bytes::from(body))).unwrap())
            .await
            .map_err(|e| format!("request: {e}"))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes()
            .to_vec();
        Ok(Reply {
            status,
            headers,
            body,
        })
    })
}
pub mod fixtures;
pub mod pg;
pub mod webdriver;
