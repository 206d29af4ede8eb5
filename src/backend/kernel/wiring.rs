//! Operations for direct container wiring: veths with one end inside a
//! container's netns, created there under their final name (no rename, no
//! window where a half-made pair is visible under a temporary name).

use super::{ContainerNet, Kernel};
use crate::error::{Error, Result};
use crate::naming::iface_mac;
use crate::resource::IfaceRes;
use ipnet::IpNet;
use rtnetlink::packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::link::{InfoData, InfoVeth, LinkAttribute, LinkMessage};
use rtnetlink::{LinkMessageBuilder, LinkUnspec, LinkVeth};
use std::collections::BTreeSet;
use std::os::fd::AsRawFd;

const ENODEV: i32 = 19;
const EADDRNOTAVAIL: i32 = 99;

impl Kernel {
    /// Deletes a link by name; one that is already gone counts as done.
    pub async fn delete_by_name(&self, name: &str) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::DelLink(msg), 0).await {
            Err(e) if crate::error::errno(&e) == Some(ENODEV) => Ok(()),
            r => r
                .map(|_| ())
                .map_err(|e| Error::kernel("delete", format!("link {name}"), e)),
        }
    }

    /// Creates a veth pair, `end` here (up, enslaved to `controller` if
    /// given) and `peer` made directly inside `into`'s netns, both with their
    /// MACs and `mtu`.
    async fn new_veth_into(
        &self,
        (name, mac): (&str, [u8; 6]),
        (peer, peer_mac): (&str, [u8; 6]),
        mtu: u32,
        controller: Option<u32>,
        into: &ContainerNet,
        what: impl Fn() -> String,
    ) -> Result<()> {
        let peer_msg = LinkMessageBuilder::<LinkUnspec>::new()
            .name(peer.to_string())
            .mtu(mtu)
            .address(peer_mac.to_vec())
            .setns_by_fd(into.fd.as_raw_fd())
            .build();
        let mut msg = LinkVeth::new(name, peer)
            .mtu(mtu)
            .address(mac.to_vec())
            .up();
        if let Some(c) = controller {
            msg = msg.controller(c);
        }
        let msg = msg
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg)))
            .build();
        self.request(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL)
            .await
            .map(|_| ())
            .map_err(|e| Error::kernel("create", what(), e))
    }

    /// A veth whose end `host` stays in this netns, enslaved to the bridge
    /// `bridge_index`, and whose other end goes into the container as `d.name`.
    pub async fn create_container_iface(
        &self,
        d: &IfaceRes,
        host: &str,
        bridge_index: u32,
        mark: &str,
        into: &ContainerNet,
    ) -> Result<()> {
        // A host end left by the container's previous netns would block the name.
        self.delete_by_name(host).await?;
        self.new_veth_into(
            (host, iface_mac(mark, "", host)),
            (&d.name, iface_mac(mark, &d.container, &d.name)),
            d.mtu,
            Some(bridge_index),
            into,
            || format!("veth {host} ↔ {}:{}", d.container, d.name),
        )
        .await?;
        let alias = LinkUnspec::new_with_name(host).alias(mark).build();
        self.request(RouteNetlinkMessage::SetLink(alias), 0)
            .await
            .map_err(|e| Error::kernel("configure", format!("link {host}"), e))?;
        into.kernel
            .configure_end(
                &d.container,
                &d.name,
                d.mtu,
                mark,
                &d.addresses,
                true,
                false,
            )
            .await
    }

    /// Sets the bridge and MTU of a container interface's host end.
    pub async fn configure_host_end(
        &self,
        host: &str,
        bridge_index: u32,
        mtu: u32,
        mark: &str,
    ) -> Result<()> {
        let msg = LinkUnspec::new_with_name(host)
            .mtu(mtu)
            .up()
            .controller(bridge_index)
            .alias(mark)
            .build();
        self.request(RouteNetlinkMessage::SetLink(msg), 0)
            .await
            .map(|_| ())
            .map_err(|e| Error::kernel("configure", format!("link {host}"), e))
    }

    /// A veth between two containers: this kernel is inside the first.
    pub async fn create_container_link(
        &self,
        d: &IfaceRes,
        peer_name: &str,
        peer_addresses: &BTreeSet<IpNet>,
        mark: &str,
        peer: &ContainerNet,
        peer_container: &str,
    ) -> Result<()> {
        self.new_veth_into(
            (&d.name, iface_mac(mark, &d.container, &d.name)),
            (peer_name, iface_mac(mark, peer_container, peer_name)),
            d.mtu,
            None,
            peer,
            || {
                format!(
                    "veth {}:{} ↔ {peer_container}:{peer_name}",
                    d.container, d.name
                )
            },
        )
        .await?;
        self.configure_end(&d.container, &d.name, d.mtu, mark, &d.addresses, true, true)
            .await?;
        peer.kernel
            .configure_end(
                peer_container,
                peer_name,
                d.mtu,
                mark,
                peer_addresses,
                true,
                true,
            )
            .await
    }

    /// Brings one container end to its MTU, up, marked, with exactly `want`
    /// as its addresses (the kernel's IPv6 link-local ones aside).
    /// `fresh`: just created, so it is brought up only after its addresses
    /// (and announces them); an existing one is never taken down.
    /// `p2p`: the end of a link whose both ends netloom made, where no other
    /// host can hold an address: IPv6 addresses skip duplicate address
    /// detection (which would keep them tentative for a second or more).
    #[allow(clippy::too_many_arguments)]
    pub async fn configure_end(
        &self,
        container: &str,
        name: &str,
        mtu: u32,
        mark: &str,
        want: &BTreeSet<IpNet>,
        fresh: bool,
        p2p: bool,
    ) -> Result<()> {
        let object = || format!("{container}:{name}");
        // Announce the interface's addresses when it comes up (gratuitous ARP,
        // unsolicited NA): after a container restart its peers hold the old
        // MAC and would otherwise wait for their neighbour entries to expire.
        if fresh {
            self.sysctl(&format!("ipv4/conf/{name}/arp_notify"), "1")
                .await?;
            let _ = self
                .sysctl(&format!("ipv6/conf/{name}/ndisc_notify"), "1")
                .await; // absent with IPv6 off
        }
        // The kernel's own link-local address too: no DAD on a link that
        // only netloom's two ends share.
        if p2p {
            let _ = self
                .sysctl(&format!("ipv6/conf/{name}/accept_dad"), "0")
                .await; // absent with IPv6 off
        }
        let msg = LinkUnspec::new_with_name(name).mtu(mtu).alias(mark);
        let msg = if fresh { msg.down() } else { msg.up() }.build();
        self.request(RouteNetlinkMessage::SetLink(msg), 0)
            .await
            .map_err(|e| Error::kernel("configure", object(), e))?;
        let links = self.links_here().await?;
        let link = links
            .iter()
            .find(|l| l.name == name)
            .ok_or_else(|| Error::State(format!("{} vanished while being configured", object())))?;
        let have: BTreeSet<IpNet> = link
            .addresses
            .iter()
            .map(|a| a.net)
            .filter(|n| !crate::observed::is_kernel_link_local(n))
            .collect();
        // Docker turns IPv6 off inside containers not on an IPv6 network.
        if want.iter().any(|a| a.addr().is_ipv6()) {
            self.sysctl(&format!("ipv6/conf/{name}/disable_ipv6"), "0")
                .await?;
        }
        // Additions first, then removals, with secondaries promoted (see
        // Kernel::update_link).
        if have.difference(want).any(|a| a.addr().is_ipv4()) {
            self.sysctl(&format!("ipv4/conf/{name}/promote_secondaries"), "1")
                .await?;
        }
        // An address that only changes its prefix goes first (see
        // Kernel::update_link).
        let reprefixed: Vec<IpNet> = have
            .difference(want)
            .filter(|a| want.iter().any(|w| w.addr() == a.addr()))
            .copied()
            .collect();
        for a in &reprefixed {
            self.del_address_here(link.index, a, &object()).await?;
        }
        for a in want.difference(&have) {
            let mut req = self
                .handle()?
                .address()
                .add(link.index, a.addr(), a.prefix_len())
                .replace();
            if p2p && a.addr().is_ipv6() {
                use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags};
                req.message_mut()
                    .attributes
                    .push(AddressAttribute::Flags(AddressFlags::Nodad));
            }
            req.execute()
                .await
                .map_err(|e| Error::kernel("add address", format!("{a} on {}", object()), e))?;
        }
        for a in have.difference(want).filter(|a| !reprefixed.contains(a)) {
            self.del_address_here(link.index, a, &object()).await?;
        }
        // Up last, so the announcement carries the addresses.
        let up = LinkUnspec::new_with_name(name).up().build();
        self.request(RouteNetlinkMessage::SetLink(up), 0)
            .await
            .map_err(|e| Error::kernel("bring up", object(), e))?;
        Ok(())
    }

    /// Puts `want` on `lo` and takes off what netloom put there before
    /// (`mine`) and no longer wants; `lo`'s own addresses stay.
    pub async fn set_loopback(&self, want: &BTreeSet<IpNet>, mine: &BTreeSet<IpNet>) -> Result<()> {
        let links = self.links_here().await?;
        let lo = links
            .iter()
            .find(|l| l.name == "lo")
            .ok_or_else(|| Error::State("no lo in this netns".into()))?;
        let have: BTreeSet<IpNet> = lo.addresses.iter().map(|a| a.net).collect();
        // Docker leaves IPv6 off in containers on no IPv6 network.
        if want.iter().any(|a| a.addr().is_ipv6()) {
            self.sysctl("ipv6/conf/lo/disable_ipv6", "0").await?;
        }
        for a in want.difference(&have) {
            self.handle()?
                .address()
                .add(lo.index, a.addr(), a.prefix_len())
                .replace()
                .execute()
                .await
                .map_err(|e| Error::kernel("add address", format!("{a} on lo"), e))?;
        }
        for a in mine.difference(want).filter(|a| have.contains(a)) {
            self.del_address_here(lo.index, a, "lo").await?;
        }
        Ok(())
    }

    /// Removes one address from the link `index` of this netns; one already
    /// gone counts as done.
    async fn del_address_here(&self, index: u32, a: &IpNet, object: &str) -> Result<()> {
        let mut req = self
            .handle()?
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        use futures::TryStreamExt;
        while let Some(m) = req
            .try_next()
            .await
            .map_err(|e| Error::kernel("list addresses", object.to_string(), e))?
        {
            if m.header.prefix_len == a.prefix_len()
                && m.attributes.iter().any(|x| matches!(x, rtnetlink::packet_route::address::AddressAttribute::Address(ip) if *ip == a.addr()))
            {
                match self.handle()?.address().del(m).execute().await {
                    Err(e) if crate::error::errno(&e) == Some(EADDRNOTAVAIL) => {}
                    r => r.map_err(|e| Error::kernel("remove address", format!("{a} from {object}"), e))?,
                }
                break;
            }
        }
        Ok(())
    }
}
