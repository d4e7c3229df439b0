//! A throwaway Mosquitto for the interop tests: its own config in a temp
//! directory, a free 127.0.0.1 port, no persistence, killed on drop (and,
//! where `setpriv --pdeathsig` exists, when the test process dies).
//!
//! Never uses a Mosquitto that may already run on the machine (port 1883).
//! Without the `mosquitto` binary (`scripts/install-deps` installs it) the
//! tests fail under `CI=true` and are skipped with a notice elsewhere.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Mosquitto {
    pub port: u16,
    child: Child,
    dir: PathBuf,
}

impl Mosquitto {
    /// Starts a broker, or returns `None` (after a notice) when the binary is
    /// missing outside CI. Panics under CI or when the broker does not start.
    pub fn start() -> Option<Mosquitto> {
        let Some(bin) = find_binary() else {
            if in_ci() {
                panic!(
                    "the `mosquitto` binary is missing (looked in PATH, /usr/sbin, /usr/local/sbin): \
                     run scripts/install-deps (Debian package `mosquitto`); under CI=true the \
                     Mosquitto interop tests must run"
                );
            }
            eprintln!("NOTICE: `mosquitto` not found; skipping a Mosquitto interop test (scripts/install-deps installs it)");
            return None;
        };
        let dir = std::env::temp_dir().join(format!("mp-mosquitto-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        // A free port can be taken between our probe and Mosquitto's bind: retry.
        let mut last_log = String::new();
        for _ in 0..5 {
            let port = free_port();
            let conf = dir.join("mosquitto.conf");
            std::fs::write(&conf, config(port)).unwrap();
            let log = std::fs::File::create(dir.join("mosquitto.log")).unwrap();
            let mut child = spawn(&bin, &conf, log);
            if wait_listening(&mut child, port) {
                return Some(Mosquitto { port, child, dir });
            }
            let _ = child.kill();
            let _ = child.wait();
            last_log = std::fs::read_to_string(dir.join("mosquitto.log")).unwrap_or_default();
        }
        let _ = std::fs::remove_dir_all(&dir);
        panic!(
            "mosquitto ({}) did not start listening; its log:\n{last_log}",
            bin.display()
        );
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

fn find_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|d| d.join("mosquitto"))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One listener on loopback, anonymous, nothing on disk. The queue limits
/// are raised so a burst for a slow subscriber is held, not dropped
/// (Mosquitto's default drops QoS 1 messages beyond 1000 queued).
fn config(port: u16) -> String {
    let mut c = format!(
        "listener {port} 127.0.0.1\n\
         allow_anonymous true\n\
         persistence false\n\
         max_inflight_messages 100\n\
         max_queued_messages 1000000\n\
         log_dest stderr\n\
         log_type error\n\
         log_type warning\n"
    );
    // As root Mosquitto would switch to the `mosquitto` user, which clears the
    // parent-death signal below; a loopback test broker may stay root.
    if is_root() {
        c.push_str("user root\n");
    }
    c
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn spawn(bin: &Path, conf: &Path, log: std::fs::File) -> Child {
    // `setpriv --pdeathsig KILL` makes the broker die with the test process
    // even when it is killed without running destructors.
    let mut cmd = if has_pdeathsig() {
        let mut c = Command::new("setpriv");
        c.args(["--pdeathsig", "KILL", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    cmd.arg("-c")
        .arg(conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()))
}

fn has_pdeathsig() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| {
        Command::new("setpriv")
            .arg("--help")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("--pdeathsig"))
    })
}

fn wait_listening(child: &mut Child, port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
