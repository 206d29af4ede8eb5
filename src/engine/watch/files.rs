//! File triggers: the topology's files and directories, through notify.

use crate::backend::Trigger;
use notify::{RecursiveMode, Watcher};
use std::path::{Path, PathBuf};
use tokio::sync::mpsc::UnboundedSender;

/// Watches the directories (editors replace files by rename, which a watch
/// on the file itself would miss).
pub fn watch(
    paths: &[PathBuf],
    tx: UnboundedSender<Trigger>,
) -> notify::Result<notify::RecommendedWatcher> {
    let wanted: Vec<PathBuf> = paths
        .iter()
        .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
        .collect();
    let dirs: Vec<PathBuf> = wanted
        .iter()
        .map(|p| {
            if p.is_dir() {
                p.clone()
            } else {
                p.parent().unwrap_or(Path::new(".")).to_path_buf()
            }
        })
        .collect();
    let relevant = wanted.clone();
    let mut w = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        let Ok(ev) = ev else { return };
        if matches!(ev.kind, notify::EventKind::Access(_)) {
            return;
        }
        let hit = ev.paths.iter().any(|p| {
            relevant.iter().any(|w| {
                p == w
                    || (w.is_dir()
                        && p.parent() == Some(w.as_path())
                        && p.extension().is_some_and(|x| x == "toml"))
            })
        });
        if hit {
            let _ = tx.send(Trigger::File);
        }
    })?;
    for d in dirs {
        w.watch(&d, RecursiveMode::NonRecursive)?;
    }
    Ok(w)
}
