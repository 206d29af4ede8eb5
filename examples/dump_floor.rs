//! The benchmark floor for observation (`bench/scale.py`): enters netns
//! NAME and makes the kernel dumps netloom's observation makes, without
//! decoding them. Prints the messages read and the microseconds the dumps
//! took.

use std::os::fd::AsFd;

fn main() {
    let ns = std::env::args().nth(1).expect("NETNS");
    let f = std::fs::File::open(format!("/run/netns/{ns}")).expect("open the netns");
    nix::sched::setns(f.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
    let t = std::time::Instant::now();
    let n = netloom::backend::kernel::observation_floor(&[254]).expect("dump");
    println!("{n} {}", t.elapsed().as_micros());
}
