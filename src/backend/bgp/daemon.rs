//! The gobgpd netloom runs for a topology: started inside the topology's
//! netns (it peers from there), API on a unix socket under the run
//! directory, pprof off, its own process group so it outlives `apply`;
//! recorded by pid file, stopped by that pid (after checking it is still
//! that gobgpd).

use crate::error::{Error, Result};
use crate::ownership::ledger::run_dir;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn pid_file(topology: &str) -> PathBuf {
    run_dir().join(format!("{topology}.gobgpd.pid"))
}

pub fn log_file(topology: &str) -> PathBuf {
    run_dir().join(format!("{topology}.gobgpd.log"))
}

/// The recorded pid, if that process is still gobgpd serving `socket`.
pub fn running_pid(topology: &str, socket: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pid_file(topology))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let cmdline = String::from_utf8_lossy(&cmdline);
    (cmdline.contains("gobgpd") && cmdline.contains(&*socket.to_string_lossy()) && alive(pid))
        .then_some(pid)
}

/// The process exists and is not a zombie.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

/// Starts gobgpd in `netns` (the host's if `None`) and waits for its API.
pub async fn start(topology: &str, netns: Option<&str>, socket: &Path) -> Result<()> {
    let dir = run_dir();
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
    // A socket file left by a gobgpd that died makes the new one fail to bind.
    if socket.exists() {
        let _ = std::fs::remove_file(socket);
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_file(topology))
        .map_err(|e| Error::io("open gobgpd's log file", e))?;
    let log2 = log
        .try_clone()
        .map_err(|e| Error::io("open gobgpd's log file", e))?;
    let api = format!("unix://{}", socket.display());
    let spawn = move || {
        // A clean environment: netloom's may hold the peers' passwords.
        Command::new("gobgpd")
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .args(["--api-hosts", &api, "--pprof-disable", "-p", "-l", "info"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0)
            .spawn()
    };
    // The child inherits the netns of the thread that forks it.
    let fd = match netns {
        Some(n) => {
            Some(crate::netns::open(n).map_err(|e| Error::io(format!("open netns {n}"), e))?)
        }
        None => None,
    };
    let child = crate::netns::run_in(fd.as_ref(), spawn)
        .and_then(|r| r)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::State(
                "gobgpd is not installed: install it (Debian: apt-get install gobgpd), or give [bgp] api = \"unix:///…\" of a running one".into(),
            ),
            _ => Error::io("start gobgpd", e),
        })?;
    let pid = child.id();
    crate::ownership::write_private(&pid_file(topology), pid.to_string().as_bytes())
        .map_err(|e| Error::io("write gobgpd's pid file", e))?;
    // Reap it if it dies while this process (watch) lives.
    std::thread::spawn(move || {
        let mut child = child;
        let _ = child.wait();
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if super::client::Gobgp::connect(socket, Duration::from_millis(500))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if Instant::now() > deadline || !alive(pid) {
            return Err(Error::State(format!(
                "gobgpd did not come up on {} (see {})",
                socket.display(),
                log_file(topology).display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Stops netloom's gobgpd for the topology, if it runs.
pub async fn stop(topology: &str, socket: &Path) -> Result<()> {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    if let Some(pid) = running_pid(topology, socket) {
        let p = Pid::from_raw(pid as i32);
        let _ = kill(p, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while running_pid(topology, socket).is_some() {
            if Instant::now() > deadline {
                let _ = kill(p, Signal::SIGKILL);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let _ = std::fs::remove_file(pid_file(topology));
    let _ = std::fs::remove_file(socket);
    Ok(())
}
