//! libcni's result cache, in its format and place, so DEL and CHECK get
//! the ADD's result and other CNI tools see netloom's attachments:
//! `/var/lib/cni/results/<network>-<container id>-<ifname>`, mode 0600,
//! `{"kind": "cniCacheV1", "containerId", "config" (base64), "ifName",
//! "networkName", "netns", "result"}`.

use crate::observed::CniCached;
use crate::resource::CniEntry;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use std::io;
use std::path::PathBuf;

/// `$NETLOOM_CNI_CACHE_DIR` or libcni's default.
pub fn dir() -> PathBuf {
    std::env::var_os("NETLOOM_CNI_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/cni"))
        .join("results")
}

pub fn path(e: &CniEntry) -> PathBuf {
    dir().join(format!("{}-{}-{}", e.network, e.id, e.ifname))
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct File {
    kind: String,
    container_id: String,
    /// The conflist's bytes (Go's []byte: base64 in JSON).
    config: String,
    if_name: String,
    network_name: String,
    #[serde(default)]
    netns: String,
    #[serde(default)]
    result: serde_json::Value,
}

pub fn read(e: &CniEntry) -> io::Result<Option<CniCached>> {
    let bytes = match std::fs::read(path(e)) {
        Ok(b) => b,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    let f: File = serde_json::from_slice(&bytes).map_err(io::Error::other)?;
    let config = STANDARD
        .decode(f.config.as_bytes())
        .map_err(io::Error::other)?;
    Ok(Some(CniCached {
        config: String::from_utf8_lossy(&config).into_owned(),
        netns: f.netns,
        result: f.result,
    }))
}

pub fn write(e: &CniEntry, c: &CniCached) -> io::Result<()> {
    let f = File {
        kind: "cniCacheV1".into(),
        container_id: e.id.clone(),
        config: STANDARD.encode(c.config.as_bytes()),
        if_name: e.ifname.clone(),
        network_name: e.network.clone(),
        netns: c.netns.clone(),
        result: c.result.clone(),
    };
    let p = path(e);
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d)?;
    }
    let bytes = serde_json::to_vec(&f).map_err(io::Error::other)?;
    crate::ownership::write_private(&p, &bytes)
}

pub fn remove(e: &CniEntry) -> io::Result<()> {
    match std::fs::remove_file(path(e)) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}
