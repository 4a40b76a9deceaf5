//! Sample records for unit tests of providers (and for the conformance kit's own fixtures).

use crate::types::{
    Account, ClusterRef, ClusterSpec, LayerKind, NodePool, RenderedLayer, Secret, UpdateRequest,
};

/// An account named `test` with `config` (JSON) and the given secrets.
pub fn account(config: &str, secrets: &[(&str, &str)]) -> Account {
    Account {
        name: "test".to_string(),
        config: config.to_string(),
        secrets: secrets
            .iter()
            .map(|(n, v)| Secret {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect(),
    }
}

/// A cluster reference with a deterministic id derived from `name`.
pub fn cluster_ref(name: &str) -> ClusterRef {
    ClusterRef {
        id: format!(
            "00000000-0000-4000-8000-{:012x}",
            fnv(name) & 0xffff_ffff_ffff
        ),
        name: name.to_string(),
        region: "sim-1".to_string(),
    }
}

/// A small cluster: one control-plane machine, two workers, an os, k8s, cni and csi layer.
pub fn spec(name: &str) -> ClusterSpec {
    let layer = |name: &str, layer, version: &str| RenderedLayer {
        name: name.to_string(),
        layer,
        pack: name.to_string(),
        version: version.to_string(),
        values: String::new(),
    };
    ClusterSpec {
        cluster: cluster_ref(name),
        cloud_type: "aws".to_string(),
        labels: Vec::new(),
        node_pools: vec![
            NodePool {
                name: "cp".to_string(),
                control_plane: true,
                count: 1,
                instance_type: "sim.large".to_string(),
            },
            NodePool {
                name: "workers".to_string(),
                control_plane: false,
                count: 2,
                instance_type: "sim.xlarge".to_string(),
            },
        ],
        os_image: "ubuntu-22.04".to_string(),
        kubernetes_version: "1.32.2".to_string(),
        layers: vec![
            layer("ubuntu", LayerKind::Os, "22.04"),
            layer("kubernetes", LayerKind::K8s, "1.32.2"),
            layer("cni-calico", LayerKind::Cni, "3.29.0"),
            layer("csi-aws-ebs", LayerKind::Csi, "1.36.0"),
        ],
        revision: "r1".to_string(),
    }
}

/// An update of `spec` to revision `revision`.
pub fn update(spec: ClusterSpec, revision: &str, replace_machines: bool) -> UpdateRequest {
    UpdateRequest {
        spec: ClusterSpec {
            revision: revision.to_string(),
            ..spec
        },
        replace_machines,
    }
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x1000_0000_01b3)
    })
}
