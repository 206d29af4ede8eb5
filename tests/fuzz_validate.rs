//! A stable-toolchain fuzzer over the loader: mutated topology files go
//! through parse → validate → graph → render in-process, and none may
//! panic. Seeds: `topologies/`, `tests/invalid/`, and pathological inputs.
//! The suite runs 10,000 inputs; `bash bench/fuzz` runs it for minutes
//! (`NETLOOM_FUZZ_SECONDS`), printing the number of executions.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Tokens that make mutations look like TOML and like netloom's sections.
const DICT: &[&str] = &[
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    "=",
    "\"",
    ",",
    "\n",
    "#",
    ".",
    "'",
    "\"\"\"",
    "[topology]\nname = \"f\"\n",
    "netns = \"fz\"\n",
    "[bridge.b]\n",
    "[veth.v]\npeer = \"p\"\n",
    "[[route]]\nto = \"default\"\n",
    "[[rule]]\n",
    "[network.n]\n",
    "[container.c]\n",
    "[[link]]\n",
    "addresses = [\"10.0.0.1/24\"]\n",
    "mtu = 70000\n",
    "mtu = -1\n",
    "via = \"::1\"\n",
    "table = 4294967295\n",
    "metric = 0\n",
    "master = \"b\"\n",
    "depends_on = [\"b\"]\n",
    "subnets = [\"10.1.0.0/16\", \"fd00::/64\"]\n",
    "interfaces.eth1 = { bridge = \"b\" }\n",
    "endpoints = [\"a:eth1\", \"b:eth1\"]\n",
    "10.0.0.0/8",
    "fe80::1/64",
    "0.0.0.0/0",
    "::/0",
    "255.255.255.255/32",
    "true",
    "1e400",
    "\u{0}",
    "é",
    "\u{202e}",
    "9999999999999999999",
];

/// xorshift64*: deterministic, so a failing run replays from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![];
    for dir in [
        "topologies",
        "topologies/lab",
        "topologies/routers",
        "tests/invalid",
    ] {
        if let Ok(rd) = std::fs::read_dir(root.join(dir)) {
            files.extend(
                rd.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.is_file()),
            );
        }
    }
    files.sort();
    let mut out: Vec<Vec<u8>> = files.iter().filter_map(|p| std::fs::read(p).ok()).collect();
    // What once ate the machine: one line repeating one address.
    let many = vec!["\"10.0.0.1/24\""; 3000].join(", ");
    out.push(
        format!("[topology]\nname = \"big\"\n[bridge.br0]\naddresses = [{many}]\n").into_bytes(),
    );
    out.push(
        "[topology]\nname = \"deep\"\n"
            .bytes()
            .chain("[".repeat(2000).bytes())
            .collect(),
    );
    out.push(
        format!(
            "[topology]\nname = \"long\"\n[bridge.{}]\n",
            "b".repeat(100_000)
        )
        .into_bytes(),
    );
    out
}

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut v = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(8) {
        let at = rng.below(v.len() + 1);
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 => {
                let tok = DICT[rng.below(DICT.len())].as_bytes();
                v.splice(at..at, tok.iter().copied());
            }
            2 if !v.is_empty() => {
                let end = (at + 1 + rng.below(64)).min(v.len());
                v.drain(at.min(end)..end);
            }
            3 if !v.is_empty() => {
                // Repeat a slice: long lists, long lines.
                let end = (at + 1 + rng.below(40)).min(v.len());
                let part: Vec<u8> = v[at.min(end)..end].to_vec();
                for _ in 0..rng.below(50) {
                    v.splice(end..end, part.iter().copied());
                }
            }
            4 => {
                // Splice in part of another seed.
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                let to = (from + rng.below(200)).min(other.len());
                v.splice(at..at, other[from..to].iter().copied());
            }
            _ => v.insert(at, rng.next() as u8),
        }
    }
    v
}

/// Everything `netloom validate` does, in-process.
fn validate(text: String) {
    let loaded = netloom::spec::load_texts(vec![(PathBuf::from("fuzz.toml"), text)]);
    match netloom::model::build(&loaded) {
        Ok((topo, warnings)) => {
            let _ = netloom::diag::render_all(&warnings, &loaded.sources);
            if let Err(d) = netloom::graph::build(&topo) {
                let _ = netloom::diag::render_all(&d, &loaded.sources);
            }
        }
        Err(d) => {
            let _ = netloom::diag::render_all(&d, &loaded.sources);
        }
    }
}

#[test]
fn mutated_topologies_never_panic_the_loader() {
    let seconds: u64 = std::env::var("NETLOOM_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let seed = std::env::var("NETLOOM_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x6e65_746c_6f6f_6d21_u64);
    let seeds = seeds();
    assert!(seeds.len() > 50, "the corpus is there");
    let mut rng = Rng(seed);
    let start = Instant::now();
    let budget = Duration::from_secs(seconds);
    let mut runs = 0u64;
    // Quiet: a caught panic still prints through the hook otherwise.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut crashed = None;
    while runs < 10_000 || start.elapsed() < budget {
        let input = mutate(&mut rng, &seeds);
        let text = String::from_utf8_lossy(&input).into_owned();
        let t = text.clone();
        if std::panic::catch_unwind(move || validate(t)).is_err() {
            crashed = Some(text);
            break;
        }
        runs += 1;
    }
    std::panic::set_hook(hook);
    println!(
        "fuzz: {runs} inputs in {:.1?}, seed {seed}, 0 panics",
        start.elapsed()
    );
    if let Some(text) = crashed {
        let path = std::env::temp_dir().join(format!("netloom-fuzz-crash-{seed}-{runs}.toml"));
        std::fs::write(&path, &text).unwrap();
        // Replay outside catch_unwind for the panic message.
        validate(text);
        panic!(
            "input {runs} (seed {seed}) panicked; saved to {}",
            path.display()
        );
    }
}
