//! A gRPC client of gobgpd's API over its unix socket: each call is the
//! method's path and a prost message (see `pb`), no generated code.

use super::pb;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic::Status;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint, Uri};

#[derive(Clone)]
pub struct Gobgp {
    grpc: tonic::client::Grpc<Channel>,
}

/// A call's failure, in gobgpd's words.
pub fn why(s: &Status) -> String {
    if s.message().is_empty() {
        format!("{:?}", s.code())
    } else {
        s.message().to_string()
    }
}

impl Gobgp {
    /// Connects to the API socket (`timeout` bounds the connect).
    pub async fn connect(socket: &Path, timeout: Duration) -> std::io::Result<Gobgp> {
        let path: PathBuf = socket.to_path_buf();
        // The URI is required by the transport and never dialled.
        let ep = Endpoint::from_static("http://gobgpd.sock").connect_timeout(timeout);
        let channel = ep
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let p = path.clone();
                async move {
                    let s = tokio::net::UnixStream::connect(p).await?;
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
                }
            }))
            .await
            .map_err(std::io::Error::other)?;
        Ok(Gobgp {
            grpc: tonic::client::Grpc::new(channel),
        })
    }

    fn path(method: &str) -> PathAndQuery {
        PathAndQuery::try_from(format!("/{}/{method}", pb::SERVICE)).expect("a valid method path")
    }

    async fn ready(&mut self) -> Result<(), Status> {
        self.grpc
            .ready()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))
    }

    pub async fn unary<Q, R>(&mut self, method: &str, req: Q) -> Result<R, Status>
    where
        Q: prost::Message + Send + Sync + 'static,
        R: prost::Message + Default + Send + Sync + 'static,
    {
        self.ready().await?;
        let codec = tonic_prost::ProstCodec::<Q, R>::default();
        let r = self
            .grpc
            .unary(tonic::Request::new(req), Self::path(method), codec)
            .await?;
        Ok(r.into_inner())
    }

    /// A server-streaming call, read to its end.
    pub async fn list<Q, R>(&mut self, method: &str, req: Q) -> Result<Vec<R>, Status>
    where
        Q: prost::Message + Send + Sync + 'static,
        R: prost::Message + Default + Send + Sync + 'static,
    {
        let mut s = self.stream::<Q, R>(method, req).await?;
        let mut out = vec![];
        while let Some(m) = s.message().await? {
            out.push(m);
        }
        Ok(out)
    }

    /// A server-streaming call, left open (WatchEvent).
    pub async fn stream<Q, R>(
        &mut self,
        method: &str,
        req: Q,
    ) -> Result<tonic::Streaming<R>, Status>
    where
        Q: prost::Message + Send + Sync + 'static,
        R: prost::Message + Default + Send + Sync + 'static,
    {
        self.ready().await?;
        let codec = tonic_prost::ProstCodec::<Q, R>::default();
        let r = self
            .grpc
            .server_streaming(tonic::Request::new(req), Self::path(method), codec)
            .await?;
        Ok(r.into_inner())
    }

    pub async fn get_bgp(&mut self) -> Result<pb::Global, Status> {
        let r: pb::GetBgpResponse = self.unary("GetBgp", pb::Empty {}).await?;
        Ok(r.global.unwrap_or_default())
    }

    pub async fn start_bgp(&mut self, g: pb::Global) -> Result<(), Status> {
        let _: pb::Empty = self
            .unary("StartBgp", pb::StartBgpRequest { global: Some(g) })
            .await?;
        Ok(())
    }

    pub async fn stop_bgp(&mut self) -> Result<(), Status> {
        let _: pb::Empty = self.unary("StopBgp", pb::Empty {}).await?;
        Ok(())
    }

    pub async fn peers(&mut self) -> Result<Vec<pb::Peer>, Status> {
        let req = pb::ListPeerRequest {
            address: String::new(),
            enable_advertised: true,
        };
        let r: Vec<pb::ListPeerResponse> = self.list("ListPeer", req).await?;
        Ok(r.into_iter().filter_map(|p| p.peer).collect())
    }

    pub async fn add_peer(&mut self, p: pb::Peer) -> Result<(), Status> {
        let _: pb::Empty = self
            .unary("AddPeer", pb::AddPeerRequest { peer: Some(p) })
            .await?;
        Ok(())
    }

    pub async fn delete_peer(&mut self, address: &str) -> Result<(), Status> {
        let req = pb::DeletePeerRequest {
            address: address.to_string(),
        };
        let _: pb::Empty = self.unary("DeletePeer", req).await?;
        Ok(())
    }

    /// A soft reset: re-applies policy to what the session holds, keeping it up.
    pub async fn soft_reset(&mut self, address: &str, direction: i32) -> Result<(), Status> {
        let req = pb::ResetPeerRequest {
            address: address.to_string(),
            communication: String::new(),
            soft: true,
            direction,
        };
        let _: pb::Empty = self.unary("ResetPeer", req).await?;
        Ok(())
    }

    pub async fn add_path(&mut self, path: pb::Path) -> Result<(), Status> {
        let req = pb::AddPathRequest {
            table_type: pb::TABLE_GLOBAL,
            path: Some(path),
        };
        let _: pb::AddPathResponse = self.unary("AddPath", req).await?;
        Ok(())
    }

    /// Adds many local paths in one client-streaming call, `chunk` per message.
    pub async fn add_paths(&mut self, paths: Vec<pb::Path>, chunk: usize) -> Result<(), Status> {
        self.ready().await?;
        let mut msgs = vec![];
        let mut it = paths.into_iter().peekable();
        while it.peek().is_some() {
            msgs.push(pb::AddPathStreamRequest {
                table_type: pb::TABLE_GLOBAL,
                paths: it.by_ref().take(chunk.max(1)).collect(),
            });
        }
        let codec = tonic_prost::ProstCodec::<pb::AddPathStreamRequest, pb::Empty>::default();
        self.grpc
            .client_streaming(
                tonic::Request::new(futures::stream::iter(msgs)),
                Self::path("AddPathStream"),
                codec,
            )
            .await?;
        Ok(())
    }

    /// Deletes one local path. The path must be given: without one,
    /// gobgpd deletes every local path.
    pub async fn delete_path(&mut self, path: pb::Path) -> Result<(), Status> {
        let req = pb::DeletePathRequest {
            table_type: pb::TABLE_GLOBAL,
            family: path.family.clone(),
            path: Some(path),
        };
        let _: pb::Empty = self.unary("DeletePath", req).await?;
        Ok(())
    }

    /// Destinations of a table: the global RIB (`name` empty) or a peer's adj-in.
    pub async fn paths(
        &mut self,
        table_type: i32,
        name: &str,
        v6: bool,
    ) -> Result<Vec<pb::Destination>, Status> {
        let req = pb::ListPathRequest {
            table_type,
            name: name.to_string(),
            family: Some(pb::Family::unicast(v6)),
            enable_filtered: table_type == pb::TABLE_ADJ_IN,
            enable_only_binary: true,
        };
        let r: Vec<pb::ListPathResponse> = self.list("ListPath", req).await?;
        Ok(r.into_iter().filter_map(|d| d.destination).collect())
    }

    pub async fn set_policies(&mut self, req: pb::SetPoliciesRequest) -> Result<(), Status> {
        let _: pb::Empty = self.unary("SetPolicies", req).await?;
        Ok(())
    }

    /// Sets the global import or export policy list (replacing it).
    pub async fn set_assignment(&mut self, a: pb::PolicyAssignment) -> Result<(), Status> {
        let req = pb::SetPolicyAssignmentRequest {
            assignment: Some(a),
        };
        let _: pb::Empty = self.unary("SetPolicyAssignment", req).await?;
        Ok(())
    }

    pub async fn policies(&mut self) -> Result<Vec<pb::Policy>, Status> {
        let req = pb::ListPolicyRequest {
            name: String::new(),
        };
        let r: Vec<pb::ListPolicyResponse> = self.list("ListPolicy", req).await?;
        Ok(r.into_iter().filter_map(|p| p.policy).collect())
    }

    pub async fn defined_sets(&mut self, defined_type: i32) -> Result<Vec<pb::DefinedSet>, Status> {
        let req = pb::ListDefinedSetRequest {
            defined_type,
            name: String::new(),
        };
        let r: Vec<pb::ListDefinedSetResponse> = self.list("ListDefinedSet", req).await?;
        Ok(r.into_iter().filter_map(|d| d.defined_set).collect())
    }

    pub async fn assignment(&mut self, direction: i32) -> Result<pb::PolicyAssignment, Status> {
        let req = pb::ListPolicyAssignmentRequest {
            name: "global".into(),
            direction,
        };
        let r: Vec<pb::ListPolicyAssignmentResponse> =
            self.list("ListPolicyAssignment", req).await?;
        Ok(r.into_iter().find_map(|a| a.assignment).unwrap_or_default())
    }

    /// gobgpd's event stream: peer state changes and best-path changes.
    pub async fn watch(&mut self) -> Result<tonic::Streaming<pb::WatchEventResponse>, Status> {
        let req = pb::WatchEventRequest {
            peer: Some(pb::WatchPeer {}),
            table: Some(pb::WatchTable {
                filters: vec![pb::WatchFilter {
                    r#type: pb::FILTER_BEST,
                    init: false,
                }],
            }),
        };
        self.stream("WatchEvent", req).await
    }
}
