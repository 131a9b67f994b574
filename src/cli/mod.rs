//! The command line: one file per subcommand group. Errors become `anyhow` only here, at the edge,
//! and map to exit codes: 0 ok, 1 failure, 2 usage, 69 no gateway running, 78 invalid configuration.

mod demo;
mod keys;
mod leads;
mod offline;
mod ops;
mod push;
mod reports;
mod supervision;
mod users;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code for an invalid configuration (EX_CONFIG).
pub const EXIT_CONFIG: u8 = 78;
/// Exit code when no gateway answers (EX_UNAVAILABLE).
pub const EXIT_UNAVAILABLE: u8 = 69;

/// xianjie (衔接): secure data-sharing gateway for administrative-enforcement records.
#[derive(Parser, Debug)]
#[command(name = "xianjie", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file (default: ./xianjie.toml if present, else embedded defaults).
    #[arg(long, global = true, env = "XIANJIE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory of the gateway (store, inboxes, admin socket); default ./data.
    #[arg(long, global = true, env = "XIANJIE_DATA")]
    pub data: Option<PathBuf>,
    /// The administrator's name recorded in the audit log (default: the OS user name).
    #[arg(long = "as", global = true, value_name = "NAME")]
    pub as_name: Option<String>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// The decoding process the gateway starts for each file it reads (internal: it reads its
    /// request on stdin and answers on stdout).
    #[command(name = "decode-worker", hide = true)]
    DecodeWorker,
    /// Run the gateway: store, scheduled inbox scans, admin socket. Stops cleanly on Ctrl-C / SIGTERM.
    ///
    /// Starts sealed. With a passphrase file (or at a terminal, where it asks) it unlocks at once,
    /// creating the keystore on first start; otherwise run `xianjie unlock`.
    Serve {
        /// File holding the keystore passphrase (mode 0600), for unattended starts.
        #[arg(long, env = "XIANJIE_PASSPHRASE_FILE")]
        passphrase_file: Option<PathBuf>,
        /// Port API address (overrides server.listen; `off` disables the API).
        #[arg(long)]
        listen: Option<String>,
        /// Directory with server.pem, server-key.pem and ca.pem (overrides the server paths).
        #[arg(long)]
        certs: Option<PathBuf>,
        /// Client certificates: required, optional or off (overrides server.client_auth).
        #[arg(long)]
        client_auth: Option<String>,
    },
    /// Certificates (offline).
    Certs {
        /// What to do.
        #[command(subcommand)]
        command: CertsCommand,
    },
    /// Unlock the running gateway's keystore (asks for the passphrase without echo; twice when
    /// the keystore does not exist yet).
    Unlock {
        /// Read the passphrase from this file (mode 0600) instead of asking.
        #[arg(long, env = "XIANJIE_PASSPHRASE_FILE")]
        passphrase_file: Option<PathBuf>,
    },
    /// Seal the running gateway's keystore: every key is forgotten until the next unlock.
    Seal,
    /// Signing keys.
    Keys {
        /// What to do.
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Destination credentials (e.g. the provincial platform's login).
    Credentials {
        /// What to do.
        #[command(subcommand)]
        command: CredentialsCommand,
    },
    /// API clients (the procuratorate's systems).
    Clients {
        /// What to do.
        #[command(subcommand)]
        command: ClientsCommand,
    },
    /// People who sign in to the web console (analysts, unit staff, administrators).
    Users {
        /// What to do.
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Ports: which client may read which enforcement unit's cases (closed until opened).
    Ports {
        /// What to do.
        #[command(subcommand)]
        command: PortsCommand,
    },
    /// The store's backend: copy an embedded (sled) store into PostgreSQL.
    Store {
        /// What to do.
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// The signed audit log.
    Audit {
        /// What to do.
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Generate sample inputs, start the gateway on embedded defaults, ingest them, keep running.
    Demo {
        /// Number of sample cases across the three adapters.
        #[arg(long, default_value_t = 3000)]
        cases: u64,
    },
    /// Ingest a file or directory through an adapter (via the running gateway; files stay in place).
    Ingest {
        /// Adapter name.
        adapter: String,
        /// File or directory.
        path: PathBuf,
        /// Print the summary as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Scan inboxes now (all adapters, or one).
    Scan {
        /// Adapter name.
        adapter: Option<String>,
        /// Print the summary as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Case counts per unit, quarantine size, last scan per adapter.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Look at stored cases.
    Cases {
        /// What to do.
        #[command(subcommand)]
        command: CasesCommand,
    },
    /// Look at and retry refused records.
    Quarantine {
        /// What to do.
        #[command(subcommand)]
        command: QuarantineCommand,
    },
    /// Adapter definitions (offline).
    Adapters {
        /// What to do.
        #[command(subcommand)]
        command: AdaptersCommand,
    },
    /// Supervision leads (through the running gateway).
    Leads {
        /// What to do.
        #[command(subcommand)]
        command: LeadsCommand,
    },
    /// The unit's side of supervision: the procuratorate's actions on its cases, and answers.
    Supervision {
        /// What to do.
        #[command(subcommand)]
        command: SupervisionCommand,
    },
    /// Supervision rules (`rules/*.toml`): prosecution thresholds as data.
    Rules {
        /// What to do.
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Pushes to the provincial platform (DESIGN §8): run a cycle, status, dead letters.
    Push {
        /// What to do.
        #[command(subcommand)]
        command: PushCommand,
    },
    /// Quarterly enforcement statistics: build, status, show, disclose.
    Reports {
        /// What to do.
        #[command(subcommand)]
        command: ReportsCommand,
    },
    /// Run the provincial platform simulator: an HTTPS server taking push packages (validated,
    /// deduplicated, receipted), with fault injection. Stops on Ctrl-C / SIGTERM.
    ProvinceSim {
        /// Address to listen on (port 0: the OS picks; see --addr-file).
        #[arg(long, default_value = "127.0.0.1:9443")]
        listen: String,
        /// Directory with server.pem and server-key.pem (as `xianjie certs dev` makes them).
        #[arg(long, default_value = crate::config::DEFAULT_CERTS_DIR)]
        certs: PathBuf,
        /// The credential packages must carry (`Bearer SECRET` or `Basic base64(SECRET)`). Held as
        /// a secret from parsing on (redacted in `Debug`); prefer XIANJIE_SIM_CREDENTIAL to keep it
        /// out of the process list.
        #[arg(long, env = "XIANJIE_SIM_CREDENTIAL", hide_env_values = true, value_parser = secret_arg)]
        credential: Option<std::sync::Arc<crate::keys::secret::SecretString>>,
        /// Faults to inject, e.g. `503x3,429:2,reset,delay:500,400,reject:XJ-…,refuse:XJ-…`.
        #[arg(long, default_value = "")]
        faults: String,
        /// File with `KEY_ID BASE64` (from `xianjie push key`): signatures must verify.
        #[arg(long)]
        verify_key: Option<PathBuf>,
        /// Write the bound address here once listening.
        #[arg(long)]
        addr_file: Option<PathBuf>,
    },
    /// Write realistic sample inputs for every adapter (offline).
    Sample {
        /// Number of cases across all adapters.
        #[arg(long)]
        cases: u64,
        /// Output directory (one subdirectory per adapter).
        #[arg(long)]
        out: PathBuf,
        /// Fraction of deliberately bad rows, 0..1.
        #[arg(long, default_value_t = 0.0)]
        bad_fraction: f64,
        /// Random seed (same seed, same files).
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

/// A secret command-line value, wrapped at once so that it never prints.
fn secret_arg(s: &str) -> Result<std::sync::Arc<crate::keys::secret::SecretString>, String> {
    Ok(std::sync::Arc::new(crate::keys::secret::SecretString::new(
        s.to_string(),
    )))
}

/// `certs` subcommands.
#[derive(Subcommand, Debug)]
pub enum CertsCommand {
    /// Generate a development CA, a server certificate for localhost and client certificates.
    Dev {
        /// Output directory.
        #[arg(long, default_value = "certs")]
        out: PathBuf,
        /// A client certificate to generate (repeatable), e.g. --client procuratorate.
        #[arg(long = "client")]
        clients: Vec<String>,
        /// Re-issue the server certificate and the listed client certificates (the CA is kept).
        #[arg(long)]
        force: bool,
    },
}

/// `keys` subcommands.
#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Make a new key current; the previous one keeps verifying until its tokens expire.
    Rotate {
        /// Which key: `jwt`.
        #[arg(value_parser = ["jwt"])]
        which: String,
    },
    /// Custody handover (专人专机): re-encrypt the keystore under a new passphrase. Needs the
    /// unlocked gateway and the current passphrase; keys, clients and credentials stay as they
    /// are. Asks without echo (the new one twice) unless given files.
    ChangePassphrase {
        /// Read the current passphrase from this file (mode 0600) instead of asking.
        #[arg(long, env = "XIANJIE_PASSPHRASE_FILE")]
        passphrase_file: Option<PathBuf>,
        /// Read the new passphrase from this file (mode 0600) instead of asking.
        #[arg(long)]
        new_passphrase_file: Option<PathBuf>,
    },
}

/// `credentials` subcommands.
#[derive(Subcommand, Debug)]
pub enum CredentialsCommand {
    /// Store a destination's credential, read from standard input (never echoed or printed).
    Set {
        /// Destination name.
        destination: String,
    },
    /// Name, version, who set it and when, last use.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `clients` subcommands.
#[derive(Subcommand, Debug)]
pub enum ClientsCommand {
    /// Register a client; prints its secret once.
    Add {
        /// Client name.
        name: String,
        /// Only the certificate with this SHA-256 fingerprint may use the client.
        #[arg(long)]
        cert_fingerprint: Option<String>,
        /// The name the client's certificate carries (CN, DNS name or URI), when it is not the
        /// client's own name (without a fingerprint, the certificate must carry a name).
        #[arg(long, conflicts_with = "cert_fingerprint")]
        cert_subject: Option<String>,
    },
    /// List clients.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// A new secret; the old one keeps working for the overlap, then stops.
    RotateSecret {
        /// Client name.
        name: String,
        /// Hours the old secret keeps working (default: clients.rotate_overlap_hours, 24).
        #[arg(long)]
        overlap_hours: Option<u64>,
    },
    /// Revoke a client: its secrets and tokens stop working at once.
    Revoke {
        /// Client name.
        name: String,
    },
}

/// `users` subcommands.
#[derive(Subcommand, Debug)]
pub enum UsersCommand {
    /// Add a console user; prints a one-time password and a TOTP enrolment (URI and QR code).
    Add {
        /// Sign-in name (A–Z, a–z, 0–9, '-', '_', '.').
        name: String,
        /// analyst (acts through an API client's ports), unit (one unit's own data) or admin
        /// (the district view).
        #[arg(long)]
        role: String,
        /// The API client an analyst acts through.
        #[arg(long)]
        client: Option<String>,
        /// The unit (USCC) of a unit user.
        #[arg(long)]
        unit: Option<String>,
    },
    /// List console users.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// A new one-time password and TOTP enrolment (a lost phone, a forgotten password); ends a
    /// lock.
    Reset {
        /// Sign-in name.
        name: String,
    },
    /// Disable a user: no more sign-ins, and their sessions end at their next request.
    Disable {
        /// Sign-in name.
        name: String,
    },
}

/// `ports` subcommands.
#[derive(Subcommand, Debug)]
pub enum PortsCommand {
    /// Open a unit's port to a client.
    Open {
        /// The unit's USCC.
        unit: String,
        /// The client.
        #[arg(long)]
        client: String,
        /// Also let the client write supervision actions on the unit's cases (the
        /// procuratorate's 建议移送, 立案监督, 检察建议: scope `port:<unit>:supervise`).
        #[arg(long)]
        supervise: bool,
    },
    /// Close a unit's port to a client (its tokens stop working for that port at once).
    Close {
        /// The unit's USCC.
        unit: String,
        /// The client.
        #[arg(long)]
        client: String,
    },
    /// List open ports.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `store` subcommands.
#[derive(Subcommand, Debug)]
pub enum StoreCommand {
    /// Copy this data directory's embedded store (sled), keystore file and audit log into the
    /// empty PostgreSQL database that `[store]` names (kind = "postgres"). Stop the gateway
    /// first; nothing in the data directory is changed.
    Migrate {
        /// The backend to copy into.
        #[arg(long, value_parser = ["postgres"])]
        to: String,
    },
}

/// `audit` subcommands.
#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// The last entries.
    Tail {
        /// How many.
        #[arg(short = 'n', default_value_t = 20)]
        n: usize,
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// The latest signed checkpoint.
    Checkpoint,
    /// Inclusion and consistency proofs.
    Proof {
        /// Which proof.
        #[command(subcommand)]
        command: ProofCommand,
    },
    /// Write entries, leaf hashes, every signed checkpoint and the verifier key to DIR.
    Export {
        /// Output directory (on the gateway host).
        dir: PathBuf,
    },
    /// Check an export offline: tree, signatures, consistency; names the first bad entry.
    Verify {
        /// The export directory.
        dir: PathBuf,
    },
}

/// `audit proof` subcommands.
#[derive(Subcommand, Debug)]
pub enum ProofCommand {
    /// That entry INDEX is in the tree of SIZE entries (default: all).
    Inclusion {
        /// Entry index (its seq).
        index: u64,
        /// Tree size.
        #[arg(long)]
        size: Option<u64>,
    },
    /// That the tree of OLD entries is a prefix of the tree of NEW entries.
    Consistency {
        /// Old size.
        old: u64,
        /// New size.
        new: u64,
    },
}

/// `cases` subcommands.
#[derive(Subcommand, Debug)]
pub enum CasesCommand {
    /// Show one case as JSON.
    Show {
        /// Unit USCC.
        unit: String,
        /// Case number.
        case_id: String,
    },
}

/// `quarantine` subcommands.
#[derive(Subcommand, Debug)]
pub enum QuarantineCommand {
    /// List entries.
    List {
        /// Only this adapter's.
        #[arg(long)]
        adapter: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one entry with its raw values.
    Show {
        /// Entry id.
        id: u64,
    },
    /// Map entries again with the adapters as they are now; accepted ones leave quarantine.
    Retry {
        /// Entry ids.
        ids: Vec<u64>,
        /// Retry every entry.
        #[arg(long)]
        all: bool,
        /// With --all, only this adapter's.
        #[arg(long)]
        adapter: Option<String>,
    },
}

/// `push` subcommands.
#[derive(Subcommand, Debug)]
pub enum PushCommand {
    /// Run a delivery cycle now (every destination, or one); returns when the cycle ends.
    Run {
        /// Only this destination.
        #[arg(long)]
        destination: Option<String>,
        /// Print the reports as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Per destination: queued, oldest, in flight, delivered, dead letters, last success and
    /// error, deadlines at risk and overdue.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The public key receivers verify package signatures with (`KEY_ID BASE64`, or PEM).
    Key {
        /// Print a PEM SubjectPublicKeyInfo instead.
        #[arg(long)]
        pem: bool,
    },
    /// Records a destination refused.
    Dead {
        /// What to do.
        #[command(subcommand)]
        command: DeadCommand,
    },
}

/// `reports` subcommands.
#[derive(Subcommand, Debug)]
pub enum ReportsCommand {
    /// Compute every fed unit's report for a quarter now (a new version only where it changed)
    /// and open the quarter's submission window.
    Build {
        /// The quarter, e.g. 2025Q3.
        #[arg(long)]
        quarter: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Each unit of a quarter: computed, submitted, missing or overdue.
    Status {
        /// The quarter, e.g. 2025Q3.
        #[arg(long)]
        quarter: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write the public quarterly disclosure (行政执法季度公示) of every unit's latest report:
    /// restricted cases left out, natural persons' ID numbers masked.
    Disclose {
        /// The quarter.
        #[arg(long)]
        quarter: String,
        /// csv (one file per department), xlsx (one sheet per department) or html (one page).
        #[arg(long)]
        format: String,
        /// Output directory (on the gateway host).
        #[arg(long)]
        out: PathBuf,
    },
    /// Submit a unit's quarterly report (a unit without a feed, listed in [[reports.submitters]]):
    /// CSV, XLSX or XML in the formats of `submissions/`; every problem is listed on refusal.
    Submit {
        /// The unit's USCC.
        #[arg(long)]
        unit: String,
        /// The quarter.
        #[arg(long)]
        quarter: String,
        /// The report file (.csv, .xlsx or .xml).
        file: PathBuf,
        /// A directory of enforcement documents to keep with it.
        #[arg(long)]
        documents: Option<PathBuf>,
    },
    /// Allow an API client to submit a unit's reports (scope `submit:<unit>`).
    AllowSubmit {
        /// The unit's USCC.
        unit: String,
        /// The client.
        #[arg(long)]
        client: String,
    },
    /// Withdraw it (effective for new tokens at once).
    DenySubmit {
        /// The unit's USCC.
        unit: String,
        /// The client.
        #[arg(long)]
        client: String,
    },
    /// Allow an API client to read a unit's reports without holding its port (detail lines come
    /// with ID numbers masked). A port holder reads its unit's reports already.
    AllowRead {
        /// The unit's USCC.
        unit: String,
        /// The client.
        #[arg(long)]
        client: String,
    },
    /// Withdraw it (effective at the client's next request).
    DenyRead {
        /// The unit's USCC.
        unit: String,
        /// The client.
        #[arg(long)]
        client: String,
    },
    /// One unit's report (JSON), or every unit's latest without --unit.
    Show {
        /// The quarter.
        #[arg(long)]
        quarter: String,
        /// The unit's USCC.
        #[arg(long)]
        unit: Option<String>,
        /// An earlier version (default: the latest).
        #[arg(long)]
        version: Option<u64>,
    },
}

/// `push dead` subcommands.
#[derive(Subcommand, Debug)]
pub enum DeadCommand {
    /// List dead letters, oldest first.
    List {
        /// Only this destination's.
        #[arg(long)]
        destination: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one dead letter with the platform's reason (and response).
    Show {
        /// Dead-letter id.
        id: u64,
    },
    /// Put dead letters back in the outbox, in their original order.
    Requeue {
        /// Dead-letter ids.
        ids: Vec<u64>,
        /// Every dead letter.
        #[arg(long)]
        all: bool,
        /// With --all, only this destination's.
        #[arg(long)]
        destination: Option<String>,
    },
}

/// `adapters` subcommands.
#[derive(Subcommand, Debug)]
pub enum AdaptersCommand {
    /// Validate adapter definitions and run their golden cases.
    Check {
        /// Adapters directory (default: the configured one, ./adapters).
        dir: Option<PathBuf>,
        /// Rewrite the expected output of every golden case from the current result.
        #[arg(long)]
        bless: bool,
    },
}

/// `leads` subcommands.
#[derive(Subcommand, Debug)]
pub enum LeadsCommand {
    /// Evaluate every stored case again under the gateway's rules (after a rule change),
    /// keeping what people did with each lead.
    Rebuild {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `supervision` subcommands.
#[derive(Subcommand, Debug)]
pub enum SupervisionCommand {
    /// The procuratorate's actions, newest first.
    List {
        /// Only this unit's (USCC).
        #[arg(long)]
        unit: Option<String>,
        /// Only those still waiting for the unit's answer.
        #[arg(long)]
        open: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One action with its documents and answers.
    Show {
        /// The action's id.
        id: u64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Record the unit's answer to an action.
    Answer {
        /// The action's id.
        id: u64,
        /// The answer.
        #[arg(long)]
        text: String,
        /// A directory whose files (PDF, OFD, JPEG, PNG, text; at most 5 of 4 MiB) go with it.
        #[arg(long)]
        documents: Option<std::path::PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `rules` subcommands.
#[derive(Subcommand, Debug)]
pub enum RulesCommand {
    /// Validate every rule (unknown keys, bad thresholds, missing citations) and run each
    /// rule's own golden cases.
    Check {
        /// Rules directory (default: ./rules).
        dir: Option<PathBuf>,
    },
}

/// Runs the command line.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::DecodeWorker = cli.command {
        // Nothing else runs in a decoding process: no logging, no runtime, no data directory.
        let code = crate::ingest::decode::worker::serve();
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let result = match cli.command {
        Command::Adapters {
            command: AdaptersCommand::Check { ref dir, bless },
        } => offline::adapters_check(&cli, dir.clone(), bless),
        Command::Rules {
            command: RulesCommand::Check { ref dir },
        } => offline::rules_check(dir.clone()),
        Command::Sample {
            cases,
            ref out,
            bad_fraction,
            seed,
        } => offline::sample(cases, out, bad_fraction, seed),
        Command::Audit {
            command: AuditCommand::Verify { ref dir },
        } => keys::verify(dir),
        Command::Certs {
            command:
                CertsCommand::Dev {
                    ref out,
                    ref clients,
                    force,
                },
        } => offline::certs_dev(out, clients, force),
        Command::Store {
            command: StoreCommand::Migrate { .. },
        } => offline::store_migrate(&cli),
        _ => runtime().and_then(|rt| rt.block_on(async_main(cli))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = exit_code(&e);
            eprintln!("error: {e:#}");
            ExitCode::from(code)
        }
    }
}

fn exit_code(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<crate::config::ConfigErrors>().is_some() {
        EXIT_CONFIG
    } else if matches!(
        e.downcast_ref::<crate::admin::client::ClientError>(),
        Some(crate::admin::client::ClientError::NotRunning { .. })
    ) {
        EXIT_UNAVAILABLE
    } else {
        1
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

async fn async_main(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            ref passphrase_file,
            ref listen,
            ref certs,
            ref client_auth,
        } => {
            let over = ops::ServeOverrides {
                listen: listen.clone(),
                certs: certs.clone(),
                client_auth: client_auth.clone(),
            };
            ops::serve(&cli, passphrase_file.as_deref(), &over).await
        }
        Command::Unlock {
            ref passphrase_file,
        } => keys::unlock(&cli, passphrase_file.as_deref()).await,
        Command::Seal => keys::seal(&cli).await,
        Command::Keys { ref command } => keys::keys(&cli, command).await,
        Command::Credentials { ref command } => keys::credentials(&cli, command).await,
        Command::Clients { ref command } => keys::clients(&cli, command).await,
        Command::Users { ref command } => users::users(&cli, command).await,
        Command::Audit { ref command } => keys::audit(&cli, command).await,
        Command::Ports { ref command } => keys::ports(&cli, command).await,
        Command::Demo { cases } => demo::run(&cli, cases).await,
        Command::Ingest {
            ref adapter,
            ref path,
            json,
        } => ops::ingest(&cli, adapter, path, json).await,
        Command::Scan { ref adapter, json } => ops::scan(&cli, adapter.clone(), json).await,
        Command::Status { json } => ops::status(&cli, json).await,
        Command::Cases {
            command:
                CasesCommand::Show {
                    ref unit,
                    ref case_id,
                },
        } => ops::case_show(&cli, unit, case_id).await,
        Command::Quarantine { ref command } => ops::quarantine(&cli, command).await,
        Command::Push { ref command } => push::push(&cli, command).await,
        Command::Reports { ref command } => reports::reports(&cli, command).await,
        Command::Leads { ref command } => leads::leads(&cli, command).await,
        Command::Supervision { ref command } => supervision::supervision(&cli, command).await,
        Command::ProvinceSim {
            ref listen,
            ref certs,
            ref credential,
            ref faults,
            ref verify_key,
            ref addr_file,
        } => {
            push::province_sim(push::SimArgs {
                listen,
                certs,
                credential: credential.as_deref(),
                faults,
                verify_key: verify_key.as_deref(),
                addr_file: addr_file.as_deref(),
            })
            .await
        }
        Command::Adapters { .. }
        | Command::Rules { .. }
        | Command::Sample { .. }
        | Command::Certs { .. }
        | Command::Store { .. }
        | Command::DecodeWorker => Ok(()),
    }
}

/// The data directory the CLI talks to: `--data`, else `XIANJIE_DATA`, else the config's, else ./data.
pub fn data_dir(cli: &Cli) -> PathBuf {
    cli.data
        .clone()
        .or_else(|| crate::config::Config::data_dir_of(cli.config.as_deref()))
        .unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_DATA_DIR))
}

/// Logging to stderr, filtered by `RUST_LOG` or the configured level.
pub fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
