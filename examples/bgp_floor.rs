//! The benchmark floor for announcements: the same AddPath calls netloom
//! makes, from a client that does nothing else (no files, no observation).
//! `bgp_floor SOCKET N [stream]` announces 10.(100+i/250).(i%250).0/24 for
//! i < N: one AddPath call each (32 in flight), or with `stream` all in one
//! AddPathStream call, as netloom sends a stage's new announcements.

use netloom::backend::bgp::{client::Gobgp, render};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let socket = args.next().expect("SOCKET");
    let n: usize = args.next().and_then(|a| a.parse().ok()).expect("N");
    let c = Gobgp::connect(
        std::path::Path::new(&socket),
        std::time::Duration::from_secs(2),
    )
    .await
    .expect("connect to gobgpd");
    let mut calls = vec![];
    for i in 0..n {
        let prefix = format!("10.{}.{}.0/24", 100 + i / 250, i % 250)
            .parse()
            .unwrap();
        let mut c = c.clone();
        calls.push(async move { c.add_path(render::announcement(prefix)).await });
    }
    // As many in flight as netloom's BGP lane allows.
    use futures::StreamExt;
    let results: Vec<_> = futures::stream::iter(calls)
        .buffer_unordered(32)
        .collect()
        .await;
    for r in results {
        r.expect("AddPath");
    }
}
