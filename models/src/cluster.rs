//! Self-managed local PostgreSQL cluster: `initdb` + a supervised, foreground `postgres` child.
//!
//! Used by `maintainpro up` when no `DATABASE_URL` is given (a persistent data directory,
//! `./data/postgres` by default) and by the integration-test harness (a throwaway cluster in a
//! temp dir with many databases inside it). It never touches a PostgreSQL that may already run
//! on the machine: the server always listens on 127.0.0.1 on a port of its own (a free one
//! unless one is given) and Unix-domain sockets are disabled.
//!
//! # Process layout and orphan protection
//!
//! `postgres` runs under a tiny `/bin/sh` supervisor (in its own process group, so a terminal
//! Ctrl-C reaches only us and we decide when the database goes down). The supervisor's stdin is
//! a pipe whose write end only this process holds (inside [`LocalCluster`]). When that pipe
//! closes — [`LocalCluster::stop`], dropping the [`LocalCluster`], normal exit, panic or even
//! `kill -9` of this process — the supervisor reads EOF and sends `SIGINT` (PostgreSQL's "fast
//! shutdown") to the postmaster, waits for it and, for a non-persistent cluster, deletes the
//! data directory. No `pg_ctl` daemonizing, no pid files to babysit, no `unsafe`.
//!
//! # Running as root
//!
//! `initdb` and `postgres` refuse to run as root. When the effective uid is 0 they are run as
//! the `postgres` system user via `setpriv` (which `exec`s, so the postmaster's pid is the one
//! the supervisor signals; `runuser` is a fallback), the data directory is `chown`ed to that
//! user and missing `o+x` bits on its ancestors are added so the user can reach it. Without
//! `setpriv` (or with `MAINTAINPRO_PG_NO_SETPRIV` set, a test hook) the whole supervisor runs
//! under `runuser -u postgres`, because `runuser` does not forward `SIGINT` to its child.

use std::ffi::OsString;
use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use rand::distributions::Alphanumeric;
use rand::Rng;
use tokio::process::Command;

/// Name of the superuser role created by `initdb`.
pub const SUPERUSER: &str = "maintainpro";
/// File (inside the data directory) holding the superuser password, mode 0600.
pub const PASSWORD_FILE: &str = "maintainpro-superuser.pw";
/// File (inside the data directory) receiving the server's stderr log.
pub const LOG_FILE: &str = "maintainpro-postgres.log";

const START_MARKER: &str = "--- maintainpro: starting postgres ---";
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
const INITDB_TIMEOUT: Duration = Duration::from_secs(180);
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
const IN_USE_GRACE: Duration = Duration::from_secs(3);
const LOG_ROTATE_BYTES: u64 = 16 * 1024 * 1024;
const TAIL_LINES: usize = 40;

/// Supervisor script. `$@` is the (possibly `setpriv`-wrapped) postgres command line.
/// fd 3 = the stdin pipe (EOF = shut down), fd 4 = stdout pipe (postmaster pid, then on exit
/// the log tail), stderr = the log file.
const SUPERVISOR_SCRIPT: &str = r#"
trap '' PIPE
trap 'if [ -n "$pid" ]; then kill -INT "$pid" 2>/dev/null; fi' INT TERM HUP
exec 3<&0 4>&1 0</dev/null 1>&2
"$@" 3<&- 4>&- &
pid=$!
echo "$pid" >&4
( exec 4>&-; read _eof <&3; kill -INT "$pid" 2>/dev/null ) &
reader=$!
exec 3<&-
while :; do
  wait "$pid"; st=$?
  if [ "$st" -gt 128 ] && kill -0 "$pid" 2>/dev/null; then continue; fi
  break
done
kill "$reader" 2>/dev/null
tail -c 16384 -- "$MP_PG_LOG" >&4 2>/dev/null
exec 4>&-
if [ -n "$MP_PG_CLEANUP" ]; then rm -rf -- "$MP_PG_CLEANUP"; fi
exit "$st"
"#;

/// Errors from managing the local cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No usable PostgreSQL server installation.
    #[error(
        "PostgreSQL server binaries not found ({0}). Install the PostgreSQL server packages \
         (e.g. `apt-get install postgresql`) or set DATABASE_URL to use an existing server"
    )]
    MissingBinaries(String),
    /// Running as root but there is no `postgres` user to drop privileges to.
    #[error(
        "running as root, but initdb/postgres refuse to run as root and there is no `postgres` \
         system user to run them as ({0}); install the PostgreSQL server packages \
         (e.g. `apt-get install postgresql`, which creates it), run as a normal user, \
         or set DATABASE_URL"
    )]
    NoPostgresUser(String),
    /// A filesystem or process-spawning error.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// `initdb` failed.
    #[error("initdb failed for {data_dir}:\n{output}")]
    Initdb {
        /// The data directory.
        data_dir: PathBuf,
        /// Combined output of the attempts.
        output: String,
    },
    /// The server exited or could not be launched during startup.
    #[error("PostgreSQL failed to start: {reason}\n--- server log tail ---\n{log_tail}")]
    Startup {
        /// Short description.
        reason: String,
        /// Last lines of the server log of this start attempt.
        log_tail: String,
    },
    /// Something did not happen within its time limit.
    #[error("timed out after {}s {what}\n--- server log tail ---\n{log_tail}", .after.as_secs())]
    Timeout {
        /// What we were waiting for.
        what: String,
        /// The limit.
        after: Duration,
        /// Last lines of the server log (may be empty).
        log_tail: String,
    },
    /// The requested fixed port cannot be bound on 127.0.0.1.
    #[error("port {port} on 127.0.0.1 is already in use ({source})")]
    PortInUse {
        /// The port.
        port: u16,
        /// The bind error.
        #[source]
        source: std::io::Error,
    },
    /// A live postmaster already owns the data directory.
    #[error(
        "another maintainpro up is using data dir {} (postmaster pid {pid}); stop it first",
        .data_dir.display()
    )]
    DataDirInUse {
        /// The data directory.
        data_dir: PathBuf,
        /// Pid from `postmaster.pid`.
        pid: u32,
    },
    /// The data directory exists but is unusable for us.
    #[error("data dir {}: {reason}", .data_dir.display())]
    InvalidDataDir {
        /// The data directory.
        data_dir: PathBuf,
        /// Why.
        reason: String,
    },
    /// `create_database` on a name that already exists.
    #[error("database {0:?} already exists")]
    DatabaseExists(String),
    /// A helper command (`createdb`, `chown`, ...) failed.
    #[error("`{command}` failed: {output}")]
    Command {
        /// The command line (no secrets).
        command: String,
        /// Its exit status and output.
        output: String,
    },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ClusterError {
    let context = context.into();
    move |source| ClusterError::Io { context, source }
}

/// How to start a [`LocalCluster`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterOptions {
    /// PostgreSQL data directory; created (and `initdb`ed) when it has no `PG_VERSION`.
    pub data_dir: PathBuf,
    /// TCP port on 127.0.0.1; `None` picks a free one.
    pub port: Option<u16>,
    /// `false`: throwaway cluster (fsync off, `data_dir` deleted on stop / process exit).
    pub persistent: bool,
}

/// A running PostgreSQL server owned by this process.
///
/// Dropping it (without [`LocalCluster::stop`]) closes the supervisor's stdin pipe, which makes
/// the supervisor fast-shutdown the server in the background (and delete a non-persistent data
/// directory); the same happens when this process exits or is killed, even with `kill -9`.
/// Use [`LocalCluster::stop`] to wait for the shutdown to complete.
pub struct LocalCluster {
    bindir: PathBuf,
    data_dir: PathBuf,
    port: u16,
    password: String,
    persistent: bool,
    postmaster_pid: u32,
    supervisor: Child,
    /// Write end of the supervisor's stdin; closing it shuts the server down.
    shutdown_pipe: Option<ChildStdin>,
}

impl fmt::Debug for LocalCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalCluster")
            .field("bindir", &self.bindir)
            .field("data_dir", &self.data_dir)
            .field("port", &self.port)
            .field("persistent", &self.persistent)
            .field("postmaster_pid", &self.postmaster_pid)
            .finish_non_exhaustive()
    }
}

impl LocalCluster {
    /// Initialise (if needed) and start the cluster, waiting until it accepts connections.
    pub async fn start(opts: ClusterOptions) -> Result<LocalCluster, ClusterError> {
        let data_dir = std::path::absolute(&opts.data_dir)
            .map_err(io_err(format!("resolving data dir {}", opts.data_dir.display())))?;
        let result = start_inner(&opts, &data_dir).await;
        if let Err(err) = &result {
            let foreign = matches!(
                err,
                ClusterError::DataDirInUse { .. } | ClusterError::InvalidDataDir { .. }
            );
            if !opts.persistent && !foreign {
                remove_dir_quietly(&data_dir).await;
            }
        }
        result
    }

    /// Connection URL for `database` as the superuser.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER}:{}@127.0.0.1:{}/{}",
            self.password,
            self.port,
            percent_encode(database)
        )
    }

    /// TCP port the server listens on (127.0.0.1 only).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Superuser role name.
    pub fn user(&self) -> &str {
        SUPERUSER
    }

    /// Superuser password (stable across restarts of a persistent cluster).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// Absolute data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Directory of the PostgreSQL binaries in use (`psql`, `createdb`, ... live here).
    pub fn bindir(&self) -> &Path {
        &self.bindir
    }

    /// Server log file.
    pub fn log_path(&self) -> PathBuf {
        self.data_dir.join(LOG_FILE)
    }

    /// Pid of the postmaster.
    pub fn postmaster_pid(&self) -> u32 {
        self.postmaster_pid
    }

    /// `CREATE DATABASE name` (via the `createdb` binary). Fails with
    /// [`ClusterError::DatabaseExists`] when it already exists.
    pub async fn create_database(&self, name: &str) -> Result<(), ClusterError> {
        let mut cmd = Command::new(tool(&self.bindir, "createdb"));
        cmd.args(["-h", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .args(["-U", SUPERUSER, "--maintenance-db=postgres", "--"])
            .arg(name);
        self.client_env(&mut cmd);
        let out = run_output(cmd, CLIENT_TIMEOUT, &format!("createdb {name}")).await?;
        if out.status.success() {
            return Ok(());
        }
        let text = output_text(&out);
        if text.contains("already exists") {
            return Err(ClusterError::DatabaseExists(name.to_owned()));
        }
        Err(ClusterError::Command {
            command: format!("createdb {name}"),
            output: text,
        })
    }

    /// Like [`Self::create_database`] but succeeds when the database already exists.
    pub async fn ensure_database(&self, name: &str) -> Result<(), ClusterError> {
        match self.create_database(name).await {
            Err(ClusterError::DatabaseExists(_)) => Ok(()),
            other => other,
        }
    }

    /// Fast shutdown; waits for the server to exit (escalating to immediate shutdown and then
    /// `SIGKILL` on timeout) and removes the data directory when not persistent.
    pub async fn stop(self) -> Result<(), ClusterError> {
        let LocalCluster {
            data_dir,
            persistent,
            postmaster_pid,
            mut supervisor,
            shutdown_pipe,
            ..
        } = self;
        let result = shutdown(&mut supervisor, shutdown_pipe, postmaster_pid, &data_dir).await;
        if !persistent {
            remove_dir_quietly(&data_dir).await;
        }
        result
    }

    fn client_env(&self, cmd: &mut Command) {
        for var in [
            "PGSERVICE",
            "PGSERVICEFILE",
            "PGPASSFILE",
            "PGOPTIONS",
            "PGHOSTADDR",
            "PGREQUIRESSL",
            "PGSSLCERT",
            "PGSSLKEY",
            "PGSSLROOTCERT",
            "PGSSLNEGOTIATION",
            "PGREQUIREAUTH",
            "PGCHANNELBINDING",
            "PGTARGETSESSIONATTRS",
            "PGLOADBALANCEHOSTS",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("PGPASSWORD", &self.password)
            .env("PGSSLMODE", "disable")
            .env("PGGSSENCMODE", "disable")
            .env("PGCONNECT_TIMEOUT", "10");
    }
}

/// Locate the PostgreSQL server binaries: `pg_config --bindir` when it has `initdb` and
/// `postgres`, else the newest `/usr/lib/postgresql/*/bin`.
pub fn find_bindir() -> Result<PathBuf, ClusterError> {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    let mut tried = Vec::new();
    match StdCommand::new("pg_config")
        .arg("--bindir")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if has_server(&dir) {
                return Ok(dir);
            }
            tried.push(format!(
                "`pg_config --bindir` is {} but it has no initdb+postgres",
                dir.display()
            ));
        }
        Ok(_) => tried.push("`pg_config --bindir` failed".to_owned()),
        Err(_) => tried.push("no pg_config on PATH".to_owned()),
    }
    let mut candidates: Vec<(Vec<u64>, PathBuf)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(version) = parse_version(&name) else {
                continue;
            };
            let bin = entry.path().join("bin");
            if has_server(&bin) {
                candidates.push((version, bin));
            }
        }
    }
    candidates.sort();
    if let Some((_, bin)) = candidates.pop() {
        return Ok(bin);
    }
    tried.push("no /usr/lib/postgresql/*/bin with initdb+postgres".to_owned());
    Err(ClusterError::MissingBinaries(tried.join("; ")))
}

fn parse_version(name: &str) -> Option<Vec<u64>> {
    name.split('.').map(|part| part.parse::<u64>().ok()).collect()
}

/// `bindir/name` when present, else `name` (looked up on PATH).
fn tool(bindir: &Path, name: &str) -> PathBuf {
    let candidate = bindir.join(name);
    if candidate.is_file() {
        candidate
    } else {
        PathBuf::from(name)
    }
}

async fn start_inner(opts: &ClusterOptions, data_dir: &Path) -> Result<LocalCluster, ClusterError> {
    check_not_foreign(data_dir).await?;
    let bindir = find_bindir()?;
    let run_as = RunAs::detect()?;
    let attempts = if opts.port.is_some() { 1 } else { 5 };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let port = match opts.port {
            Some(port) => {
                TcpListener::bind((Ipv4Addr::LOCALHOST, port))
                    .map_err(|source| ClusterError::PortInUse { port, source })?;
                port
            }
            None => pick_free_port()?,
        };
        let password = prepare_data_dir(&bindir, data_dir, opts.persistent, run_as.as_ref()).await?;
        clear_stale_pid_file(data_dir).await?;
        match launch(
            &bindir,
            data_dir,
            port,
            password,
            opts.persistent,
            run_as.as_ref(),
        )
        .await
        {
            Err(ClusterError::Startup { reason, log_tail })
                if attempt < attempts
                    && (log_tail.contains("could not bind")
                        || log_tail.contains("Address already in use")) =>
            {
                tracing::warn!(port, %reason, "picked port was taken meanwhile; retrying with another");
            }
            other => return other,
        }
    }
}

/// Refuse (and never delete) an existing non-empty directory that is not a PostgreSQL data dir.
async fn check_not_foreign(data_dir: &Path) -> Result<(), ClusterError> {
    if data_dir.join("PG_VERSION").exists() {
        return Ok(());
    }
    let mut entries = match tokio::fs::read_dir(data_dir).await {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(io_err(format!("reading {}", data_dir.display()))(err)),
    };
    while let Some(entry) = entries
        .next_entry()
        .await
        .map_err(io_err(format!("reading {}", data_dir.display())))?
    {
        let name = entry.file_name();
        if name != PASSWORD_FILE && name != LOG_FILE && name != "postmaster.pid" {
            return Err(ClusterError::InvalidDataDir {
                data_dir: data_dir.to_owned(),
                reason: format!(
                    "exists and is not empty (e.g. {:?}) but holds no PostgreSQL cluster \
                     (no PG_VERSION); refusing to use it",
                    name
                ),
            });
        }
    }
    Ok(())
}

fn pick_free_port() -> Result<u16, ClusterError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(io_err("binding 127.0.0.1:0 to pick a free port"))?;
    let port = listener
        .local_addr()
        .map_err(io_err("reading the picked port"))?
        .port();
    drop(listener);
    Ok(port)
}

/// Create/initdb the data dir as needed; returns the superuser password.
async fn prepare_data_dir(
    bindir: &Path,
    data_dir: &Path,
    persistent: bool,
    run_as: Option<&RunAs>,
) -> Result<String, ClusterError> {
    let ctx = |what: &str| format!("{what} {}", data_dir.display());
    tokio::fs::create_dir_all(data_dir)
        .await
        .map_err(io_err(ctx("creating data dir")))?;
    tokio::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700))
        .await
        .map_err(io_err(ctx("chmod 0700")))?;
    if let Some(run_as) = run_as {
        make_ancestors_traversable(data_dir).await?;
        let meta = tokio::fs::metadata(data_dir).await.map_err(io_err(ctx("stat")))?;
        if meta.uid() != run_as.uid || meta.gid() != run_as.gid {
            run_as.chown_recursive(data_dir).await?;
        }
    }
    let password_path = data_dir.join(PASSWORD_FILE);
    if data_dir.join("PG_VERSION").exists() {
        let password = match tokio::fs::read_to_string(&password_path).await {
            Ok(text) => text.trim().to_owned(),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(err) => return Err(io_err(format!("reading {}", password_path.display()))(err)),
        };
        if password.is_empty() {
            return Err(ClusterError::InvalidDataDir {
                data_dir: data_dir.to_owned(),
                reason: format!(
                    "it holds a PostgreSQL cluster but no {PASSWORD_FILE}; it was not created by \
                     maintainpro (use another data dir, or set DATABASE_URL)"
                ),
            });
        }
        return Ok(password);
    }

    // Fresh cluster. initdb needs an empty directory: drop leftovers of our own.
    for leftover in [PASSWORD_FILE, LOG_FILE] {
        let _ = tokio::fs::remove_file(data_dir.join(leftover)).await;
    }
    let password: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    let pwfile = std::env::temp_dir().join(format!("maintainpro-initdb-{}.pw", random_suffix()));
    write_private_file(&pwfile, &password)?;
    let result = async {
        if let Some(run_as) = run_as {
            run_as.chown(&pwfile).await?;
        }
        run_initdb(bindir, data_dir, &pwfile, persistent, run_as).await
    }
    .await;
    let _ = tokio::fs::remove_file(&pwfile).await;
    result?;
    write_private_file(&password_path, &password)?;
    tracing::info!(data_dir = %data_dir.display(), "initialised new PostgreSQL cluster");
    Ok(password)
}

async fn run_initdb(
    bindir: &Path,
    data_dir: &Path,
    pwfile: &Path,
    persistent: bool,
    run_as: Option<&RunAs>,
) -> Result<(), ClusterError> {
    let mut transcript = String::new();
    for locale in ["C.UTF-8", "C"] {
        let mut args: Vec<OsString> = vec![
            tool(bindir, "initdb").into(),
            "-D".into(),
            data_dir.into(),
            "-U".into(),
            SUPERUSER.into(),
            "--auth=scram-sha-256".into(),
            {
                let mut arg = OsString::from("--pwfile=");
                arg.push(pwfile);
                arg
            },
            "-E".into(),
            "UTF8".into(),
            format!("--locale={locale}").into(),
        ];
        if !persistent {
            args.push("--no-sync".into());
        }
        let args = wrap(run_as, args);
        let mut cmd = Command::new(&args[0]);
        cmd.args(&args[1..]).current_dir(data_dir);
        let out = run_output(cmd, INITDB_TIMEOUT, "initdb").await?;
        if out.status.success() {
            return Ok(());
        }
        transcript.push_str(&format!("initdb --locale={locale}: {}\n", output_text(&out)));
        tracing::warn!(locale, "initdb failed; retrying with another locale if any");
        // initdb cleans the directory's contents on failure; make sure before retrying.
        if data_dir.join("PG_VERSION").exists() {
            break;
        }
    }
    Err(ClusterError::Initdb {
        data_dir: data_dir.to_owned(),
        output: transcript,
    })
}

/// Remove a `postmaster.pid` whose process is gone; fail if a postmaster still owns the dir.
async fn clear_stale_pid_file(data_dir: &Path) -> Result<(), ClusterError> {
    let pid_file = data_dir.join("postmaster.pid");
    let deadline = Instant::now() + IN_USE_GRACE;
    loop {
        let contents = match tokio::fs::read_to_string(&pid_file).await {
            Ok(contents) => contents,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(io_err(format!("reading {}", pid_file.display()))(err)),
        };
        let live_pid = contents
            .lines()
            .next()
            .and_then(|line| line.trim().parse::<u32>().ok())
            .filter(|pid| is_live_postgres(*pid));
        match live_pid {
            None => {
                tracing::info!(path = %pid_file.display(), "removing stale postmaster.pid");
                match tokio::fs::remove_file(&pid_file).await {
                    Ok(()) => return Ok(()),
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                    Err(err) => return Err(io_err(format!("removing {}", pid_file.display()))(err)),
                }
            }
            // A previous owner that was just killed may still be shutting down: give it a moment.
            Some(pid) if Instant::now() >= deadline => {
                return Err(ClusterError::DataDirInUse {
                    data_dir: data_dir.to_owned(),
                    pid,
                })
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

fn is_live_postgres(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
        return false;
    };
    let comm = stat.get(open + 1..close).unwrap_or_default();
    let state = stat
        .get(close + 1..)
        .and_then(|rest| rest.trim_start().chars().next());
    !matches!(state, Some('Z' | 'X')) && (comm.starts_with("postgres") || comm.starts_with("postmaster"))
}

async fn launch(
    bindir: &Path,
    data_dir: &Path,
    port: u16,
    password: String,
    persistent: bool,
    run_as: Option<&RunAs>,
) -> Result<LocalCluster, ClusterError> {
    let log_path = data_dir.join(LOG_FILE);
    let log = open_log(&log_path)?;

    let mut pg: Vec<OsString> = vec![
        tool(bindir, "postgres").into(),
        "-D".into(),
        data_dir.into(),
        "-p".into(),
        port.to_string().into(),
        "-h".into(),
        "127.0.0.1".into(),
        // No Unix-domain sockets at all: nothing to place, chown or clean up; TCP only.
        "-k".into(),
        "".into(),
    ];
    let mut settings = vec![
        "logging_collector=off",
        "max_connections=200",
        "shared_buffers=128MB",
    ];
    if !persistent {
        settings.extend(["fsync=off", "synchronous_commit=off", "full_page_writes=off"]);
    }
    for setting in settings {
        pg.push("-c".into());
        pg.push(setting.into());
    }
    let supervisor_args: Vec<OsString> = ["/bin/sh", "-c", SUPERVISOR_SCRIPT, "maintainpro-pg-supervisor"]
        .into_iter()
        .map(OsString::from)
        .collect();
    let argv: Vec<OsString> = match run_as {
        // `setpriv` execs postgres, so the supervisor (root) signals the postmaster itself.
        Some(run_as) if !run_as.supervise_as_user => supervisor_args
            .into_iter()
            .chain(wrap(Some(run_as), pg))
            .collect(),
        // `runuser` forks and does not forward SIGINT from a background job: run the whole
        // supervisor as the postgres user instead.
        Some(run_as) => wrap(Some(run_as), supervisor_args.into_iter().chain(pg).collect()),
        None => supervisor_args.into_iter().chain(pg).collect(),
    };
    let Some((program, args)) = argv.split_first() else {
        return Err(startup_error("empty supervisor command line", String::new()));
    };

    let mut cmd = StdCommand::new(program);
    cmd.args(args)
        .env("MP_PG_LOG", &log_path)
        .env("MP_PG_CLEANUP", if persistent { Path::new("") } else { data_dir })
        .current_dir(data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .process_group(0);
    let mut supervisor = cmd
        .spawn()
        .map_err(io_err("spawning the postgres supervisor (/bin/sh)"))?;
    let shutdown_pipe = supervisor.stdin.take();
    let Some(stdout) = supervisor.stdout.take() else {
        let _ = shutdown(&mut supervisor, shutdown_pipe, 0, data_dir).await;
        return Err(startup_error("supervisor has no stdout pipe", String::new()));
    };
    tracing::debug!(port, data_dir = %data_dir.display(), "spawned postgres");

    let (stdout, first_line) = match read_pid_line(stdout).await {
        Ok(read) => read,
        Err(err) => {
            let _ = shutdown(&mut supervisor, shutdown_pipe, 0, data_dir).await;
            return Err(err);
        }
    };
    let spawned_pid = first_line.trim().parse::<u32>().unwrap_or(0);

    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        match supervisor.try_wait() {
            Ok(Some(status)) => {
                let tail = exit_log_tail(stdout, &log_path).await;
                return Err(startup_error(
                    &format!("postgres exited during startup ({status})"),
                    tail,
                ));
            }
            Ok(None) => {}
            Err(err) => {
                let _ = shutdown(&mut supervisor, shutdown_pipe, spawned_pid, data_dir).await;
                return Err(io_err("polling the postgres supervisor")(err));
            }
        }
        if is_ready(bindir, port).await {
            break;
        }
        if Instant::now() >= deadline {
            let _ = shutdown(&mut supervisor, shutdown_pipe, spawned_pid, data_dir).await;
            return Err(ClusterError::Timeout {
                what: format!("waiting for PostgreSQL to accept connections on 127.0.0.1:{port}"),
                after: READY_TIMEOUT,
                log_tail: exit_log_tail(stdout, &log_path).await,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Dropping our read end is fine: the supervisor ignores SIGPIPE.
    drop(stdout);

    let postmaster_pid = read_postmaster_pid(data_dir).await.unwrap_or(spawned_pid);
    tracing::info!(port, postmaster_pid, data_dir = %data_dir.display(), persistent, "PostgreSQL is ready");
    Ok(LocalCluster {
        bindir: bindir.to_owned(),
        data_dir: data_dir.to_owned(),
        port,
        password,
        persistent,
        postmaster_pid,
        supervisor,
        shutdown_pipe,
    })
}

fn startup_error(reason: &str, log_tail: String) -> ClusterError {
    ClusterError::Startup {
        reason: reason.to_owned(),
        log_tail,
    }
}

fn open_log(log_path: &Path) -> Result<std::fs::File, ClusterError> {
    if let Ok(meta) = std::fs::metadata(log_path) {
        if meta.len() > LOG_ROTATE_BYTES {
            let _ = std::fs::rename(log_path, log_path.with_extension("log.old"));
        }
    }
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(log_path)
        .map_err(io_err(format!("opening {}", log_path.display())))?;
    writeln!(log, "{START_MARKER}").map_err(io_err(format!("writing {}", log_path.display())))?;
    Ok(log)
}

async fn read_pid_line(stdout: ChildStdout) -> Result<(BufReader<ChildStdout>, String), ClusterError> {
    let task = tokio::task::spawn_blocking(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        reader.read_line(&mut line).map(|_| (reader, line))
    });
    match tokio::time::timeout(Duration::from_secs(10), task).await {
        Ok(Ok(Ok(read))) => Ok(read),
        Ok(Ok(Err(err))) => Err(io_err("reading the postmaster pid from the supervisor")(err)),
        Ok(Err(join)) => Err(startup_error(
            &format!("pid reader task failed: {join}"),
            String::new(),
        )),
        Err(_) => Err(startup_error(
            "supervisor did not report a pid within 10s",
            String::new(),
        )),
    }
}

/// Log tail after the supervisor exited: it writes the tail to its stdout before deleting a
/// non-persistent data dir; fall back to reading the file.
async fn exit_log_tail(stdout: BufReader<ChildStdout>, log_path: &Path) -> String {
    let task = tokio::task::spawn_blocking(move || {
        let mut reader = stdout;
        let mut text = String::new();
        let _ = reader.read_to_string(&mut text);
        text
    });
    let from_pipe = match tokio::time::timeout(Duration::from_secs(5), task).await {
        Ok(Ok(text)) => text,
        _ => String::new(),
    };
    let text = if from_pipe.trim().is_empty() {
        tokio::fs::read(log_path)
            .await
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    } else {
        from_pipe
    };
    tail_of_last_run(&text)
}

fn tail_of_last_run(text: &str) -> String {
    let run = text
        .rfind(START_MARKER)
        .and_then(|at| text.get(at + START_MARKER.len()..))
        .unwrap_or(text);
    let lines: Vec<&str> = run.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
}

async fn read_postmaster_pid(data_dir: &Path) -> Option<u32> {
    let text = tokio::fs::read_to_string(data_dir.join("postmaster.pid"))
        .await
        .ok()?;
    text.lines().next()?.trim().parse().ok()
}

async fn is_ready(bindir: &Path, port: u16) -> bool {
    let connect = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port));
    if !matches!(
        tokio::time::timeout(Duration::from_secs(1), connect).await,
        Ok(Ok(_))
    ) {
        return false;
    }
    let mut cmd = Command::new(tool(bindir, "pg_isready"));
    cmd.args(["-h", "127.0.0.1", "-p"])
        .arg(port.to_string())
        .args(["-U", SUPERUSER, "-d", "postgres", "-t", "2"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    matches!(
        tokio::time::timeout(Duration::from_secs(5), cmd.status()).await,
        Ok(Ok(status)) if status.success()
    )
}

/// Close the supervisor's stdin and wait for it (and thus the postmaster) to exit.
async fn shutdown(
    supervisor: &mut Child,
    shutdown_pipe: Option<ChildStdin>,
    postmaster_pid: u32,
    data_dir: &Path,
) -> Result<(), ClusterError> {
    drop(shutdown_pipe);
    drop(supervisor.stdout.take());
    if wait_exit(supervisor, STOP_TIMEOUT).await? {
        return Ok(());
    }
    tracing::warn!(
        postmaster_pid,
        "PostgreSQL did not stop within {}s; requesting immediate shutdown",
        STOP_TIMEOUT.as_secs()
    );
    if postmaster_pid != 0 {
        send_signal("QUIT", postmaster_pid).await;
    }
    if wait_exit(supervisor, Duration::from_secs(10)).await? {
        return Ok(());
    }
    if postmaster_pid != 0 {
        send_signal("KILL", postmaster_pid).await;
    }
    let _ = supervisor.kill();
    let _ = wait_exit(supervisor, Duration::from_secs(5)).await;
    Err(ClusterError::Timeout {
        what: "waiting for PostgreSQL to shut down (it was killed)".to_owned(),
        after: STOP_TIMEOUT,
        log_tail: tokio::fs::read(data_dir.join(LOG_FILE))
            .await
            .map(|bytes| tail_of_last_run(&String::from_utf8_lossy(&bytes)))
            .unwrap_or_default(),
    })
}

/// Poll (runtime-independent, unlike `tokio::process::Child::wait`) until the child exits.
async fn wait_exit(child: &mut Child, limit: Duration) -> Result<bool, ClusterError> {
    let deadline = Instant::now() + limit;
    loop {
        if child
            .try_wait()
            .map_err(io_err("waiting for the postgres supervisor"))?
            .is_some()
        {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn send_signal(signal: &str, pid: u32) {
    let mut cmd = Command::new("kill");
    cmd.arg("-s")
        .arg(signal)
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), cmd.status()).await;
}

async fn remove_dir_quietly(dir: &Path) {
    match tokio::fs::remove_dir_all(dir).await {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => tracing::warn!(dir = %dir.display(), %err, "could not remove data dir"),
    }
}

async fn run_output(
    mut cmd: Command,
    limit: Duration,
    what: &str,
) -> Result<std::process::Output, ClusterError> {
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    match tokio::time::timeout(limit, cmd.output()).await {
        Ok(result) => result.map_err(io_err(format!("running {what}"))),
        Err(_) => Err(ClusterError::Timeout {
            what: format!("running {what}"),
            after: limit,
            log_tail: String::new(),
        }),
    }
}

fn output_text(out: &std::process::Output) -> String {
    let mut text = format!("{}", out.status);
    for stream in [&out.stdout, &out.stderr] {
        let s = String::from_utf8_lossy(stream);
        if !s.trim().is_empty() {
            text.push('\n');
            text.push_str(s.trim_end());
        }
    }
    text
}

fn write_private_file(path: &Path, contents: &str) -> Result<(), ClusterError> {
    let ctx = || format!("writing {}", path.display());
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err(ctx()))?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(io_err(ctx()))?;
    file.write_all(contents.as_bytes()).map_err(io_err(ctx()))?;
    file.write_all(b"\n").map_err(io_err(ctx()))
}

fn random_suffix() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(12)
        .map(char::from)
        .collect()
}

fn percent_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Root only: run server binaries as the `postgres` system user.
#[derive(Debug, Clone)]
struct RunAs {
    uid: u32,
    gid: u32,
    prefix: Vec<OsString>,
    /// `runuser` fallback: run the supervisor shell itself as the user.
    supervise_as_user: bool,
}

impl RunAs {
    /// `None` when not running as root.
    fn detect() -> Result<Option<RunAs>, ClusterError> {
        if effective_uid()? != 0 {
            return Ok(None);
        }
        let id = |flag: &str| -> Result<u32, ClusterError> {
            let out = StdCommand::new("id")
                .args([flag, "postgres"])
                .stdin(Stdio::null())
                .output()
                .map_err(io_err("running `id postgres`"))?;
            if !out.status.success() {
                return Err(ClusterError::NoPostgresUser(
                    String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                ));
            }
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .map_err(|_| ClusterError::NoPostgresUser("unparsable `id` output".to_owned()))
        };
        let (uid, gid) = (id("-u")?, id("-g")?);
        let setpriv = if std::env::var_os("MAINTAINPRO_PG_NO_SETPRIV").is_some() {
            None // test hook for the runuser fallback
        } else {
            which("setpriv")
        };
        let prefix: Vec<OsString> = if let Some(setpriv) = setpriv {
            vec![
                setpriv.into(),
                format!("--reuid={uid}").into(),
                format!("--regid={gid}").into(),
                "--init-groups".into(),
                "--".into(),
            ]
        } else if let Some(runuser) = which("runuser") {
            vec![runuser.into(), "-u".into(), "postgres".into(), "--".into()]
        } else {
            return Err(ClusterError::MissingBinaries(
                "running as root needs `setpriv` or `runuser` (util-linux) to drop to the \
                 postgres user"
                    .to_owned(),
            ));
        };
        let supervise_as_user = !prefix
            .first()
            .is_some_and(|program| Path::new(program).ends_with("setpriv"));
        Ok(Some(RunAs {
            uid,
            gid,
            prefix,
            supervise_as_user,
        }))
    }

    async fn chown(&self, path: &Path) -> Result<(), ClusterError> {
        self.chown_impl(path, false).await
    }

    async fn chown_recursive(&self, path: &Path) -> Result<(), ClusterError> {
        self.chown_impl(path, true).await
    }

    async fn chown_impl(&self, path: &Path, recursive: bool) -> Result<(), ClusterError> {
        let mut cmd = Command::new("chown");
        if recursive {
            cmd.arg("-R");
        }
        cmd.arg(format!("{}:{}", self.uid, self.gid)).arg(path);
        let what = format!("chown postgres {}", path.display());
        let out = run_output(cmd, CLIENT_TIMEOUT, &what).await?;
        if out.status.success() {
            Ok(())
        } else {
            Err(ClusterError::Command {
                command: what,
                output: output_text(&out),
            })
        }
    }
}

fn wrap(run_as: Option<&RunAs>, args: Vec<OsString>) -> Vec<OsString> {
    match run_as {
        Some(run_as) => run_as.prefix.iter().cloned().chain(args).collect(),
        None => args,
    }
}

/// Add `o+x` to ancestors that lack it so the postgres user can reach the data dir.
async fn make_ancestors_traversable(data_dir: &Path) -> Result<(), ClusterError> {
    for dir in data_dir.ancestors().skip(1) {
        let meta = tokio::fs::metadata(dir)
            .await
            .map_err(io_err(format!("stat {}", dir.display())))?;
        let mode = meta.permissions().mode();
        if mode & 0o001 == 0 {
            tracing::warn!(dir = %dir.display(), "adding o+x so the postgres user can reach the data dir");
            tokio::fs::set_permissions(dir, std::fs::Permissions::from_mode((mode | 0o001) & 0o7777))
                .await
                .map_err(io_err(format!("chmod o+x {}", dir.display())))?;
        }
    }
    Ok(())
}

fn effective_uid() -> Result<u32, ClusterError> {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        if let Some(euid) = status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            .and_then(|euid| euid.parse().ok())
        {
            return Ok(euid);
        }
    }
    let out = StdCommand::new("id")
        .arg("-u")
        .stdin(Stdio::null())
        .output()
        .map_err(io_err("running `id -u`"))?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| ClusterError::Command {
            command: "id -u".to_owned(),
            output: output_text(&out),
        })
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/bin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_numerically() {
        let mut versions: Vec<Vec<u64>> = ["9.6", "16", "10"]
            .into_iter()
            .filter_map(parse_version)
            .collect();
        versions.sort();
        assert_eq!(versions, [vec![9, 6], vec![10], vec![16]]);
        assert!(parse_version("main").is_none());
    }

    #[test]
    fn tail_takes_last_run_only() {
        let text = format!("old\n{START_MARKER}\nfirst\n{START_MARKER}\nsecond\nthird\n");
        assert_eq!(tail_of_last_run(&text), "second\nthird");
        assert_eq!(tail_of_last_run("a\nb"), "a\nb");
    }

    #[test]
    fn database_names_are_percent_encoded() {
        assert_eq!(percent_encode("test_db-1"), "test_db-1");
        assert_eq!(percent_encode("a b/c"), "a%20b%2Fc");
    }
}
