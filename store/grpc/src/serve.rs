//! Serving etcd's services of one member on one address (the simulator's members; the real
//! server adds its own listeners, HTTP endpoints and graceful stop around the same services).

use std::net::SocketAddr;

use tonic::transport::Server;

use crate::pb::etcdserverpb::{
    cluster_server::ClusterServer, kv_server::KvServer, lease_server::LeaseServer,
    maintenance_server::MaintenanceServer, watch_server::WatchServer,
};
use crate::{Backend, Etcd};

/// Serve KV, Lease, Watch, Cluster and Maintenance of `member` on `addr` until the task ends
/// (in simulation: until the member's node is killed or restarted).
pub async fn serve<B: Backend>(addr: SocketAddr, member: B) -> Result<(), tonic::transport::Error> {
    let etcd = Etcd { member };
    Server::builder()
        .add_service(KvServer::new(etcd.clone()))
        .add_service(LeaseServer::new(etcd.clone()))
        .add_service(WatchServer::new(etcd.clone()))
        .add_service(ClusterServer::new(etcd.clone()))
        .add_service(MaintenanceServer::new(etcd))
        .serve(addr)
        .await
}
