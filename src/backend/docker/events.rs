//! Docker container and network events, as watch triggers.

use super::DockerApi;
use crate::backend::Trigger;
use futures::StreamExt;
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// Events about the containers and networks named in `interest`,
/// reconnecting with backoff while dockerd is away.
pub async fn watch(tx: UnboundedSender<Trigger>, interest: BTreeSet<String>) {
    use bollard::query_parameters::EventsOptionsBuilder;
    let mut delay = Duration::from_millis(500);
    loop {
        if let Ok(api) = DockerApi::connect().await {
            delay = Duration::from_millis(500);
            let _ = tx.send(Trigger::Docker); // anything may have changed while away
            let filters = std::collections::HashMap::from([("type", vec!["container", "network"])]);
            let mut events = api.client().events(Some(
                EventsOptionsBuilder::default().filters(&filters).build(),
            ));
            while let Some(ev) = events.next().await {
                let Ok(ev) = ev else { break };
                let action = ev.action.unwrap_or_default();
                // Container events name the container, network events the network.
                let name = ev
                    .actor
                    .and_then(|a| a.attributes)
                    .and_then(|mut attrs| attrs.remove("name"))
                    .unwrap_or_default();
                if (interest.contains(&name) || interest.contains("*"))
                    && [
                        "start",
                        "die",
                        "destroy",
                        "connect",
                        "disconnect",
                        "create",
                        "health_status",
                    ]
                    .iter()
                    .any(|a| action.starts_with(a))
                {
                    let _ = tx.send(Trigger::Docker);
                }
            }
            tracing::warn!("lost the Docker event stream; reconnecting");
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}
