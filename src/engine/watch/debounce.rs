//! Collapses a burst of triggers into one reconcile without letting a
//! steady stream postpone it for ever.

use crate::backend::Trigger;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

#[derive(Debug, Clone, Copy)]
pub struct Debounce {
    /// Quiet time that ends a burst.
    pub quiet: Duration,
    /// The longest a burst may postpone a reconcile.
    pub max_delay: Duration,
}

impl Default for Debounce {
    fn default() -> Self {
        Debounce {
            quiet: Duration::from_millis(60),
            max_delay: Duration::from_millis(500),
        }
    }
}

impl Debounce {
    /// After `first`, takes triggers until `quiet` passes without one or
    /// `max_delay` has passed since `first`; returns each kind with its count.
    pub async fn collect(
        &self,
        first: Trigger,
        rx: &mut UnboundedReceiver<Trigger>,
    ) -> BTreeMap<Trigger, usize> {
        let mut triggers = BTreeMap::from([(first, 1)]);
        let deadline = tokio::time::Instant::now() + self.max_delay;
        loop {
            // gobgpd's events come in dense bursts (one per path): a short
            // quiet time ends one, so learned routes reach the kernel sooner.
            let quiet = if triggers.keys().all(|t| *t == Trigger::Bgp) {
                self.quiet.min(Duration::from_millis(15))
            } else {
                self.quiet
            };
            let quiet_end = (tokio::time::Instant::now() + quiet).min(deadline);
            tokio::select! {
                t = rx.recv() => match t {
                    Some(Trigger::Observed) => {}
                    Some(t) => *triggers.entry(t).or_default() += 1,
                    None => break,
                },
                _ = tokio::time::sleep_until(quiet_end) => break,
            }
            if tokio::time::Instant::now() >= deadline {
                break;
            }
        }
        triggers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc::unbounded_channel;
    use tokio::time::{Instant, advance};

    #[tokio::test(start_paused = true)]
    async fn a_lone_trigger_waits_only_the_quiet_time() {
        let (_tx, mut rx) = unbounded_channel();
        let t = Instant::now();
        let got = Debounce::default().collect(Trigger::File, &mut rx).await;
        assert_eq!(got, BTreeMap::from([(Trigger::File, 1)]));
        assert_eq!(t.elapsed(), Duration::from_millis(60));
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_becomes_one_batch_with_counts() {
        let (tx, mut rx) = unbounded_channel();
        tokio::spawn(async move {
            for _ in 0..3 {
                advance(Duration::from_millis(20)).await;
                tx.send(Trigger::Netlink).unwrap();
            }
            tx.send(Trigger::Docker).unwrap();
            // Keep the sender alive past the quiet time.
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        let got = Debounce::default().collect(Trigger::File, &mut rx).await;
        let want = BTreeMap::from([
            (Trigger::File, 1),
            (Trigger::Docker, 1),
            (Trigger::Netlink, 3),
        ]);
        assert_eq!(got, want);
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_stream_is_cut_at_the_maximum_delay() {
        let (tx, mut rx) = unbounded_channel();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(30)).await;
                if tx.send(Trigger::Netlink).is_err() {
                    return;
                }
            }
        });
        let t = Instant::now();
        let got = Debounce::default().collect(Trigger::Resync, &mut rx).await;
        assert_eq!(t.elapsed(), Duration::from_millis(500));
        let n = got[&Trigger::Netlink];
        assert!((15..=17).contains(&n), "{n} netlink triggers in 500 ms");
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_channel_ends_the_batch_at_once() {
        let (tx, mut rx) = unbounded_channel::<Trigger>();
        drop(tx);
        let t = Instant::now();
        let got = Debounce::default().collect(Trigger::Hangup, &mut rx).await;
        assert_eq!(got.len(), 1);
        assert_eq!(t.elapsed(), Duration::ZERO);
    }
}
