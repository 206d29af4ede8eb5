//! Running CNI plugins as the CNI 1.0.0 spec says: the command and its
//! parameters in an explicit environment (nothing inherited, no shell), the
//! network config on stdin, the result or an error object on stdout.

use crate::error::{Error, Result};
use crate::resource::BackendId;
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// Longest one plugin call may take before it is killed.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// A fixed PATH for helpers plugins run themselves (iptables for ipMasq):
/// set explicitly, not inherited.
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Check,
    Del,
}

impl Command {
    fn as_str(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Check => "CHECK",
            Command::Del => "DEL",
        }
    }
}

/// What every plugin of one attachment is called with.
pub struct Call<'a> {
    pub container_id: &'a str,
    /// The container's netns file; empty for a DEL after the container went.
    pub netns: &'a str,
    pub ifname: &'a str,
    /// Plugin directories, in search order (also CNI_PATH, for IPAM plugins).
    pub dirs: &'a [String],
    /// The runtime's netns: the topology's (`None`: the host's).
    pub runtime: Option<&'a str>,
    /// Names the attachment in errors: `web:eth1 → mynet`.
    pub what: &'a str,
}

/// The conflist split into what each plugin is given.
pub struct Conflist {
    pub version: String,
    pub name: String,
    pub plugins: Vec<Map<String, Value>>,
}

impl Conflist {
    pub fn parse(text: &str) -> Result<Conflist> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| Error::State(format!("a CNI config is not JSON: {e}")))?;
        let plugins = v["plugins"]
            .as_array()
            .map(|ps| ps.iter().filter_map(|p| p.as_object().cloned()).collect())
            .unwrap_or_default();
        Ok(Conflist {
            version: v["cniVersion"].as_str().unwrap_or("1.0.0").to_string(),
            name: v["name"].as_str().unwrap_or_default().to_string(),
            plugins,
        })
    }

    /// Whether the plugins know CHECK (CNI 0.4.0 and later).
    pub fn has_check(&self) -> bool {
        crate::model::parse_cni_version(&self.version).is_some_and(|v| v >= (0, 4, 0))
    }

    /// Plugin `i`'s stdin: its own config, the list's version and name,
    /// and the result so far.
    fn config(&self, i: usize, prev: Option<&Value>) -> Value {
        let mut m = self.plugins[i].clone();
        m.insert("cniVersion".into(), Value::String(self.version.clone()));
        m.insert("name".into(), Value::String(self.name.clone()));
        if let Some(p) = prev {
            m.insert("prevResult".into(), p.clone());
        }
        Value::Object(m)
    }

    fn plugin_type(&self, i: usize) -> &str {
        self.plugins[i]["type"].as_str().unwrap_or_default()
    }
}

/// The first of `dirs` holding the plugin binary.
pub fn find(dirs: &[String], plugin: &str) -> Option<PathBuf> {
    dirs.iter()
        .map(|d| PathBuf::from(d).join(plugin))
        .find(|p| p.is_file())
}

/// ADD through the chain, each plugin given the previous one's result;
/// returns the final result. If a plugin fails, it and the plugins before
/// it are DEL'ed in reverse, as runtimes do (a plugin may leave what it
/// made before failing: the bridge plugin its veth when IPAM refuses). The
/// caller has made sure the interface was not there before.
pub async fn add(list: &Conflist, call: &Call<'_>) -> Result<Value> {
    let mut prev: Option<Value> = None;
    for i in 0..list.plugins.len() {
        match run(list, i, Command::Add, prev.as_ref(), call).await {
            Ok(r) => prev = Some(r.unwrap_or(Value::Null)),
            Err(e) => {
                for j in (0..=i).rev() {
                    if let Err(e2) = run(list, j, Command::Del, prev.as_ref(), call).await {
                        tracing::warn!("cleaning up after a failed ADD: {e2}");
                    }
                }
                return Err(e);
            }
        }
    }
    Ok(prev.unwrap_or(Value::Null))
}

/// CHECK through the chain against the cached result.
pub async fn check(list: &Conflist, cached: &Value, call: &Call<'_>) -> Result<()> {
    for i in 0..list.plugins.len() {
        run(list, i, Command::Check, Some(cached), call).await?;
    }
    Ok(())
}

/// DEL through the chain in reverse, each plugin given the cached result.
/// Every plugin is called even if one fails (each frees its own part); the
/// first error is returned.
pub async fn del(list: &Conflist, cached: Option<&Value>, call: &Call<'_>) -> Result<()> {
    let mut first = None;
    for i in (0..list.plugins.len()).rev() {
        if let Err(e) = run(list, i, Command::Del, cached, call).await {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

/// One plugin call. `Ok(None)`: it succeeded and printed nothing.
async fn run(
    list: &Conflist,
    i: usize,
    cmd: Command,
    prev: Option<&Value>,
    call: &Call<'_>,
) -> Result<Option<Value>> {
    let plugin = list.plugin_type(i);
    let fail = |message: String| Error::Backend {
        backend: BackendId::Cni,
        op: format!("CNI {}", cmd.as_str()),
        object: format!("{} (plugin {plugin})", call.what),
        errno: None,
        message,
    };
    let Some(bin) = find(call.dirs, plugin) else {
        return Err(fail(format!(
            "plugin `{plugin}` is not in {}",
            call.dirs.join(", ")
        )));
    };
    let stdin = list.config(i, prev).to_string();
    let mut c = tokio::process::Command::new(&bin);
    c.env_clear()
        .env("CNI_COMMAND", cmd.as_str())
        .env("CNI_CONTAINERID", call.container_id)
        .env("CNI_NETNS", call.netns)
        .env("CNI_IFNAME", call.ifname)
        .env("CNI_ARGS", "")
        .env("CNI_PATH", call.dirs.join(":"))
        .env("PATH", PATH)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = spawn_in(call.runtime, c)
        .map_err(|e| fail(format!("cannot run {}: {e}", bin.display())))?;
    let out = tokio::time::timeout(TIMEOUT, feed(child, stdin))
        .await
        .map_err(|_| fail(format!("no answer within {TIMEOUT:?}; killed")))?
        .map_err(|e| fail(format!("running {}: {e}", bin.display())))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.success() {
        let text = stdout.trim();
        if text.is_empty() {
            return Ok(None);
        }
        return serde_json::from_str(text)
            .map(Some)
            .map_err(|e| fail(format!("its result is not JSON ({e}): {text}")));
    }
    Err(fail(error_text(
        &stdout,
        &String::from_utf8_lossy(&out.stderr),
    )))
}

/// The plugin's error object (`code`, `msg`, `details`) in words; its
/// stderr when it printed none.
fn error_text(stdout: &str, stderr: &str) -> String {
    match serde_json::from_str::<Value>(stdout.trim()) {
        Ok(v) if v.get("msg").is_some() || v.get("code").is_some() => {
            let mut s = v["msg"].as_str().unwrap_or("failed").to_string();
            if let Some(d) = v["details"].as_str().filter(|d| !d.is_empty()) {
                s += &format!(": {d}");
            }
            if let Some(code) = v["code"].as_u64() {
                s += &format!(" (CNI error code {code})");
            }
            s
        }
        _ => {
            let text = if stderr.trim().is_empty() {
                stdout
            } else {
                stderr
            };
            format!("failed: {}", text.trim())
        }
    }
}

/// Starts the plugin from a thread inside the runtime netns, so it
/// inherits that netns (nothing forks from tokio's own threads).
fn spawn_in(
    runtime: Option<&str>,
    mut c: tokio::process::Command,
) -> std::io::Result<tokio::process::Child> {
    let Some(ns) = runtime else {
        return c.spawn();
    };
    let fd = crate::netns::open(ns)?;
    let handle = tokio::runtime::Handle::current();
    crate::netns::run_in(Some(&fd), move || {
        let _rt = handle.enter();
        c.spawn()
    })?
}

async fn feed(
    mut child: tokio::process::Child,
    stdin: String,
) -> std::io::Result<std::process::Output> {
    if let Some(mut w) = child.stdin.take() {
        w.write_all(stdin.as_bytes()).await?;
        w.shutdown().await?;
    }
    child.wait_with_output().await
}
