//! The cluster ID: derived from the initial members as etcd derives it, and the one this
//! process serves (below every other module that needs it: flags, identity, peers, headers).

/// The cluster ID of the members `member_ids`, as etcd computes it for a new cluster
/// (etcd's `RaftCluster.genID`, server/etcdserver/api/membership/cluster.go): the member IDs
/// sorted ascending, each as 8 big-endian bytes, hashed with SHA-1; the ID is the first 8
/// bytes of the digest, big-endian.
pub fn cluster_id_for(member_ids: impl IntoIterator<Item = u64>) -> u64 {
    let mut ids: Vec<u64> = member_ids.into_iter().collect();
    ids.sort_unstable();
    let mut hasher = sha1_smol::Sha1::new();
    for id in ids {
        hasher.update(&id.to_be_bytes());
    }
    let digest = hasher.digest().bytes();
    u64::from_be_bytes(digest[..8].try_into().expect("SHA-1 has 20 bytes"))
}

/// The cluster this process serves (kept in faultline-grpc, whose response headers carry it).
pub use faultline_grpc::cluster_id::served_cluster_id;

pub(crate) fn serve_cluster_id(cluster_id: u64) {
    faultline_grpc::cluster_id::serve_cluster_id(cluster_id);
}
