//! A throwaway PostgreSQL cluster for tests: Debian's server binaries, `initdb` into a temporary
//! directory, the server on a free loopback port with its socket in that directory, stopped and
//! removed on drop. PostgreSQL refuses to run as root, so as root the cluster runs as the
//! `postgres` user the Debian package creates.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running cluster.
pub struct Cluster {
    dir: tempfile::TempDir,
    server: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

/// The directory of Debian's PostgreSQL server binaries, if installed (the newest version).
pub fn bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists() && p.join("postgres").exists())
        .collect();
    versions.sort();
    versions.pop()
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `program args…`, as the `postgres` user when we are root.
fn command(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

impl Cluster {
    /// A fresh cluster with superuser `xianjie` (trust authentication on loopback and the socket),
    /// or `None` when PostgreSQL is not installed (the test then says SKIPPED).
    pub fn start() -> Option<Cluster> {
        Self::start_with(&[], &[])
    }

    /// [`Cluster::start`] with `files` copied into the cluster's directory (mode 0600, owned by
    /// the server's user; a setting may name them as `{dir}/NAME`) and `settings` given to the
    /// server.
    pub fn start_with(settings: &[(&str, &str)], files: &[(&str, &Path)]) -> Option<Cluster> {
        let bin = bin_dir()?;
        let dir = tempfile::tempdir().unwrap();
        for (name, from) in files {
            use std::os::unix::fs::PermissionsExt;
            let to = dir.path().join(name);
            std::fs::copy(from, &to).unwrap();
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown of the cluster directory");
        }
        let data = dir.path().join("data");
        let out = command(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "xianjie", "-A", "trust", "--no-sync", "-E", "UTF8"])
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb: {out:?}");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = command(&bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(dir.path())
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "full_page_writes=off",
            ])
            .args(settings.iter().flat_map(|(k, v)| {
                [
                    "-c".to_string(),
                    format!(
                        "{k}={}",
                        v.replace("{dir}", &dir.path().display().to_string())
                    ),
                ]
            }))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("server.log")).unwrap())
            .spawn()
            .unwrap();
        let c = Cluster { dir, server, port };
        // Ready once it accepts logins, which comes a moment after it accepts TCP (a login in
        // between is refused: "the database system is starting up").
        let ready = || {
            Command::new(bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
                .status()
                .is_ok_and(|s| s.success())
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ready() {
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not start: {}",
                std::fs::read_to_string(c.dir.path().join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(c)
    }

    /// A connection string for database `db`.
    pub fn url(&self, db: &str) -> String {
        format!("host=127.0.0.1 port={} user=xianjie dbname={db}", self.port)
    }

    /// Connects (no TLS) to database `db`; the connection runs on a task of the current runtime.
    pub async fn connect(&self, db: &str) -> tokio_postgres::Client {
        // The server accepts TCP a moment before it accepts logins.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match tokio_postgres::connect(&self.url(db), tokio_postgres::NoTls).await {
                Ok((client, conn)) => {
                    tokio::spawn(conn);
                    return client;
                }
                Err(e) => {
                    assert!(Instant::now() < deadline, "connect: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // SIGINT to the postmaster (its pid is the first line of postmaster.pid; as root our
        // child is `runuser`): PostgreSQL's fast shutdown. Then make sure.
        let pid = std::fs::read_to_string(self.dir.path().join("data/postmaster.pid"))
            .ok()
            .and_then(|t| t.lines().next().map(str::to_string));
        if let Some(pid) = pid {
            let _ = Command::new("kill").args(["-INT", &pid]).status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.server.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// With `XIANJIE_TEST_STORE=postgres`, the connection string of a database for the gateway whose
/// data directory is `data`, created on the cluster `XIANJIE_TEST_PG` names when it does not
/// exist yet; `None` with the default store (sled).
pub fn test_database(data: &Path) -> Option<String> {
    match std::env::var("XIANJIE_TEST_STORE").as_deref() {
        Err(_) | Ok("" | "sled") => return None,
        Ok("postgres") => {}
        Ok(other) => panic!("XIANJIE_TEST_STORE={other:?}: use \"sled\" or \"postgres\""),
    }
    let server = std::env::var("XIANJIE_TEST_PG").expect(
        "XIANJIE_TEST_STORE=postgres needs XIANJIE_TEST_PG, a connection string of a running \
         cluster without dbname (.ci/run starts one and sets both)",
    );
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut h);
    let db = format!("xj_{:016x}", h.finish());
    if let Err(err) = psql(
        &format!("{server} dbname=postgres"),
        &format!("CREATE DATABASE {db}"),
    ) {
        assert!(err.contains("already exists"), "creating {db}: {err}");
    }
    Some(format!("{server} dbname={db}"))
}

/// Runs `sql` with `psql` on the database `url` names; the error text when it fails.
pub fn psql(url: &str, sql: &str) -> Result<(), String> {
    let out = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}
