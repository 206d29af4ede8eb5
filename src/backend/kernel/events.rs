//! Netlink notifications from one netns, as watch triggers.

use crate::backend::Trigger;
use crate::netns;
use futures::StreamExt;
use tokio::sync::mpsc::UnboundedSender;

/// Link, address, route and rule notifications from a netns (`None`: ours).
pub fn subscribe(
    fd: Option<&std::fs::File>,
    tx: UnboundedSender<Trigger>,
) -> Option<tokio::task::JoinHandle<()>> {
    use rtnetlink::MulticastGroup as G;
    let rt = tokio::runtime::Handle::current();
    let groups = [
        G::Link,
        G::Ipv4Ifaddr,
        G::Ipv6Ifaddr,
        G::Ipv4Route,
        G::Ipv6Route,
        G::Ipv4Rule,
        G::Ipv6Rule,
    ];
    let made = netns::run_in(fd, move || {
        let _guard = rt.enter();
        rtnetlink::new_multicast_connection(&groups)
    });
    let (conn, _handle, mut messages) = match made {
        Ok(Ok(x)) => x,
        Ok(Err(e)) | Err(e) => {
            tracing::warn!(
                "cannot subscribe to netlink events: {e}; relying on the periodic resync"
            );
            return None;
        }
    };
    Some(tokio::spawn(async move {
        // The socket lives in the connection task. Aborting this task (watch
        // no longer wants the netns: its container stopped) must close it,
        // or the socket alone keeps a dead container's netns, and the veths
        // in it, alive.
        let _conn = AbortOnDrop(tokio::spawn(conn));
        while let Some((msg, _)) = messages.next().await {
            if matters(&msg) {
                let _ = tx.send(Trigger::Netlink);
            }
        }
        // The stream ended (the socket overran, or the netns went away):
        // re-observe, and the next reconcile subscribes again.
        let _ = tx.send(Trigger::Resync);
    }))
}

/// Aborts a task when dropped, including when the task holding it is aborted.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Whether a notification can be drift netloom manages. New links make the
/// kernel announce thousands of IPv6 link-local addresses (as duplicate
/// detection finishes) and the routes it derives from addresses: bursts that
/// would only hold real edits back.
fn matters(
    msg: &rtnetlink::packet_core::NetlinkMessage<rtnetlink::packet_route::RouteNetlinkMessage>,
) -> bool {
    use rtnetlink::packet_core::NetlinkPayload;
    use rtnetlink::packet_route::RouteNetlinkMessage as M;
    use rtnetlink::packet_route::address::AddressAttribute;
    use rtnetlink::packet_route::route::RouteProtocol;
    const LOCAL_TABLE: u8 = 255; // the kernel's own: addresses' local routes
    let NetlinkPayload::InnerMessage(m) = &msg.payload else {
        return true;
    };
    match m {
        M::NewAddress(a) | M::DelAddress(a) => !a.attributes.iter().any(|x| {
            matches!(x, AddressAttribute::Address(std::net::IpAddr::V6(v6)) if v6.segments()[0] & 0xffc0 == 0xfe80)
        }),
        // A service VIP's local route is netloom's own in that table.
        M::NewRoute(r) | M::DelRoute(r) => {
            r.header.protocol != RouteProtocol::Kernel
                && (r.header.table != LOCAL_TABLE
                    || r.header.protocol
                        == RouteProtocol::Other(crate::ownership::NETLOOM_PROTO))
        }
        _ => true,
    }
}

/// The inode of a netns file: a new one means a new namespace.
pub fn inode(f: &std::fs::File) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    f.metadata().ok().map(|m| m.ino())
}
