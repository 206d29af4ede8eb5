//! `adopt = true` (issue 11, item 4): an existing bridge or veth pair that
//! nothing owns is taken over — marked, converged — and owned from then on;
//! without it the conflict says how.

mod common;

use common::*;

#[test]
fn an_unowned_bridge_and_veth_are_adopted_only_when_asked() {
    let ns = Netns::precreated("nlad");
    let d = Dir::new();
    let o = octet();
    must(&format!(
        "ip -n {n} link add br-old type bridge && ip -n {n} addr add 10.{o}.9.5/24 dev br-old && ip -n {n} link add va type veth peer name vb",
        n = ns.name
    ));
    let body = |adopt: bool| {
        let a = if adopt { "adopt = true\n" } else { "" };
        format!(
            "[topology]\nname = \"{n}\"\nnetns = \"{n}\"\n[bridge.br-old]\n{a}addresses = [\"10.{o}.9.1/24\"]\n[veth.va]\npeer = \"vb\"\nmaster = \"br-old\"\n{a}",
            n = ns.name
        )
    };
    // Without adopt: a conflict whose help names it, and nothing changes.
    let f = d.write("t.toml", &body(false));
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.all().contains("add `adopt = true` to take it over"),
        "{r:?}"
    );
    assert_eq!(ns.addrs("br-old"), [format!("10.{o}.9.5/24")]);

    // With adopt: planned as such, then marked and converged.
    d.write("t.toml", &body(true));
    let p = nl(&["plan"], &[&f]);
    assert!(
        p.stdout
            .contains("~ bridge br-old  # adopts the existing bridge"),
        "{p:?}"
    );
    assert!(
        p.stdout
            .contains("~ veth va (peer vb)  # adopts the existing veth"),
        "{p:?}"
    );
    assert!(
        p.stdout.contains("0 to create"),
        "nothing is made anew: {p:?}"
    );
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(ns.addrs("br-old"), [format!("10.{o}.9.1/24")]);
    assert_eq!(ns.link("br-old")["ifalias"], format!("netloom:{}", ns.name));
    assert_eq!(ns.link("va")["master"], "br-old");
    assert_eq!(nl(&["plan", "--detailed-exitcode"], &[&f]).code, 0);

    // Owned now: destroy removes them.
    let r = nl(&["destroy"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(ns.link_names().is_empty(), "{:?}", ns.link_names());
}

#[test]
fn a_link_of_another_kind_is_not_adopted() {
    let ns = Netns::precreated("nlak");
    let d = Dir::new();
    must(&format!(
        "ip -n {} link add br-x type veth peer name br-x-p",
        ns.name
    ));
    let f = d.write(
        "t.toml",
        &format!(
            "[topology]\nname = \"{n}\"\nnetns = \"{n}\"\n[bridge.br-x]\nadopt = true\n",
            n = ns.name
        ),
    );
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.all()
            .contains("cannot be adopted as a bridge: it is a veth"),
        "{r:?}"
    );
    assert_eq!(ns.link_names(), ["br-x", "br-x-p"]);
}

/// Docker networks carry no mark netloom could add (labels are fixed at
/// creation), so an adopted one is owned through the ledger, by its id.
#[test]
fn an_unowned_docker_network_is_adopted_as_it_is_then_replaced_when_its_settings_change() {
    let t = Topo::new("nlan");
    let _nets = NetsOf {
        topology: t.name.clone(),
    };
    let old = DockerNet::internal("nlan");
    let c = Ctr::run("nlanc", &old);
    let d = Dir::new();
    let body = |adopt: bool, internal: bool| {
        let a = if adopt { "adopt = true\n" } else { "" };
        format!(
            "[topology]\nname = \"{}\"\n[network.{n}]\n{a}subnets = [\"{s}\"]\ninternal = {internal}\n\
             [container.{}]\nnetworks.{n} = {{ aliases = [\"db\"] }}\n",
            t.name,
            c.name,
            n = old.name,
            s = old.subnet,
        )
    };
    let id = || network_inspect(&old.name).unwrap()["Id"].clone();
    let before = id();

    // Without adopt: a conflict whose help names it.
    let f = d.write("t.toml", &body(false, true));
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.all().contains("add `adopt = true` to take it over"),
        "{r:?}"
    );

    // With adopt and the same settings: taken as it is, nothing made anew.
    d.write("t.toml", &body(true, true));
    let p = nl(&["plan"], &[&f]);
    assert!(
        p.stdout.contains(&format!(
            "~ network {}  # adopts the existing network, which nothing owned",
            old.name
        )),
        "{p:?}"
    );
    assert!(
        p.stdout.contains("0 to create, 2 to update, 0 to replace"),
        "{p:?}"
    );
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(id(), before, "the very network was kept");
    assert_eq!(
        c.endpoint(&old.name)["Aliases"][0],
        "db",
        "{:?}",
        c.inspect()
    );
    assert_eq!(nl(&["plan", "--detailed-exitcode"], &[&f]).code, 0);

    // Owned from now on, `adopt` kept or not: a changed setting replaces
    // it and reattaches the declared container.
    d.write("t.toml", &body(false, false));
    let p = nl(&["plan"], &[&f]);
    assert!(
        p.stdout.contains(&format!(
            "-/+ network {}  # internal true → false",
            old.name
        )),
        "{p:?}"
    );
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    let now = network_inspect(&old.name).unwrap();
    assert_ne!(now["Id"], before);
    assert_eq!(now["Internal"], false);
    assert_eq!(now["Labels"]["netloom.topology"], t.name.as_str());
    assert_eq!(c.endpoint(&old.name)["Aliases"][0], "db");
    assert_eq!(nl(&["plan", "--detailed-exitcode"], &[&f]).code, 0);

    let r = nl(&["destroy"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(network_inspect(&old.name).is_none(), "destroy removes it");
}

/// Someone else's network — labelled by another topology — is never adopted.
#[test]
fn a_network_another_topology_owns_is_not_adopted() {
    let a = Topo::new("nlao");
    let _nets = NetsOf {
        topology: a.name.clone(),
    };
    let b = Topo::new("nlao");
    let d = Dir::new();
    let name = format!("{}n", a.name);
    let net = |t: &Topo, adopt: &str| {
        format!(
            "[topology]\nname = \"{}\"\n[network.{name}]\n{adopt}subnets = [\"10.215.{}.0/24\"]\ninternal = true\n",
            t.name,
            octet()
        )
    };
    let fa = d.write("a.toml", &net(&a, ""));
    assert_eq!(nl(&["apply"], &[&fa]).code, 0);
    let fb = d.write("b.toml", &net(&b, "adopt = true\n"));
    let r = nl(&["apply"], &[&fb]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.all().contains(&format!(
            "Docker network `{name}` belongs to topology `{}`",
            a.name
        )),
        "{r:?}"
    );
    assert_eq!(
        network_inspect(&name).unwrap()["Labels"]["netloom.topology"],
        a.name.as_str()
    );
}

/// An adoption lives in one topology's ledger; every other topology sees
/// the network as that topology's, not as nobody's.
#[test]
fn a_network_another_topology_adopted_is_not_adopted_again_and_external_gives_it_back() {
    let (a, b) = (Topo::new("nlaa"), Topo::new("nlaa"));
    let _nets = NetsOf {
        topology: a.name.clone(),
    };
    let net = DockerNet::internal("nlaa");
    let d = Dir::new();
    let body = |t: &Topo| {
        format!(
            "[topology]\nname = \"{}\"\n[network.{}]\nadopt = true\nsubnets = [\"{}\"]\ninternal = true\n",
            t.name, net.name, net.subnet
        )
    };
    let fa = d.write("a.toml", &body(&a));
    assert_eq!(nl(&["apply"], &[&fa]).code, 0);
    let fb = d.write("b.toml", &body(&b));
    let r = nl(&["apply"], &[&fb]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.all().contains(&format!(
            "Docker network `{}` belongs to topology `{}`",
            net.name, a.name
        )),
        "{r:?}"
    );
    assert!(!r.all().contains("adopt = true` to take it over"), "{r:?}");
    // B's destroy leaves it.
    assert_eq!(nl(&["destroy"], &[&fb]).code, 0);
    assert!(network_inspect(&net.name).is_some());
    // A gives it back by declaring it external: destroy then leaves it too.
    d.write(
        "a.toml",
        &format!(
            "[topology]\nname = \"{}\"\n[network.{}]\nexternal = true\n",
            a.name, net.name
        ),
    );
    assert_eq!(nl(&["apply"], &[&fa]).code, 0);
    assert_eq!(nl(&["destroy"], &[&fa]).code, 0);
    assert!(
        network_inspect(&net.name).is_some(),
        "given back, it is not A's to delete"
    );
}
