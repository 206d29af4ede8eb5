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
