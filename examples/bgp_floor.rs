//! Benchmark floors for BGP, clients that do nothing else (no files, no
//! observation):
//! - `bgp_floor SOCKET N` announces 10.(100+i/250).(i%250).0/24 for i < N,
//!   one AddPath call each (32 in flight);
//! - `bgp_floor SOCKET N stream` announces them in one AddPathStream call,
//!   as netloom sends a stage's new announcements;
//! - `bgp_floor SOCKET N watch` prints `ready` once subscribed to gobgpd's
//!   best-path events, then exits when N distinct prefixes have arrived: how
//!   long BGP itself takes to bring routes in, before any kernel install.

use futures::StreamExt;
use netloom::backend::bgp::{client::Gobgp, render};
use std::collections::HashSet;
use std::io::Write;

fn prefix(i: usize) -> ipnet::IpNet {
    format!("10.{}.{}.0/24", 100 + i / 250, i % 250)
        .parse()
        .unwrap()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let socket = args.next().expect("SOCKET");
    let n: usize = args.next().and_then(|a| a.parse().ok()).expect("N");
    let mode = args.next().unwrap_or_default();
    let mut c = Gobgp::connect(
        std::path::Path::new(&socket),
        std::time::Duration::from_secs(2),
    )
    .await
    .expect("connect to gobgpd");
    match mode.as_str() {
        "stream" => {
            let paths = (0..n).map(|i| render::announcement(prefix(i))).collect();
            c.add_paths(paths, 250).await.expect("AddPathStream");
        }
        "watch" => {
            let mut events = c.watch().await.expect("WatchEvent");
            println!("ready");
            std::io::stdout().flush().unwrap();
            let mut seen = HashSet::new();
            while seen.len() < n {
                let e = events.next().await.expect("stream ended").expect("event");
                for p in e.table.map(|t| t.paths).unwrap_or_default() {
                    if !p.is_withdraw {
                        seen.insert(p.nlri.map(|a| a.value));
                    }
                }
            }
        }
        _ => {
            let mut calls = vec![];
            for i in 0..n {
                let mut c = c.clone();
                calls.push(async move { c.add_path(render::announcement(prefix(i))).await });
            }
            // As many in flight as netloom's BGP lane allows.
            let results: Vec<_> = futures::stream::iter(calls)
                .buffer_unordered(32)
                .collect()
                .await;
            for r in results {
                r.expect("AddPath");
            }
        }
    }
}
