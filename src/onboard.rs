//! Onboarding a resource pool: its node pools (from `ListNodePools`) as a table with
//! desired and actual counts, or as ready-to-apply `ModelArtsNodePool` manifests.

use crate::{
    crd::{ModelArtsNodePool, ModelArtsNodePoolSpec, SecretRef},
    error::{Error, Result},
    inspect::InspectArgs,
    wire_pool::NodePool,
};

/// Where the printed manifests point and where they go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// IAM project ID.
    pub project_id: String,
    /// Resource pool ID.
    pub pool: String,
    /// `spec.region`, when the endpoint was derived from a region.
    pub region: Option<String>,
    /// `spec.endpoint`, when one was given.
    pub endpoint: Option<String>,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `spec.credentialsSecretRef.name`.
    pub secret: Option<String>,
}

impl Target {
    /// From `inspect`'s flags.
    pub fn from_inspect(args: &InspectArgs) -> Self {
        Target {
            project_id: args.project_id.clone(),
            pool: args.pool.clone(),
            region: args.region.clone(),
            endpoint: args.endpoint.clone(),
            namespace: args.namespace.clone(),
            secret: args.secret.clone(),
        }
    }
}

/// Nodes a node pool reports in any bucket: what it has, as opposed to what it wants.
fn actual(np: &NodePool) -> i64 {
    let s = &np.status;
    [s.creating, s.available, s.abnormal, s.deleting]
        .into_iter()
        .flatten()
        .sum()
}

/// One row per node pool: name, flavor, desired, actual and the pool's own buckets.
pub fn table(pools: &[NodePool]) -> String {
    let opt = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
    let mut out = format!(
        "{:<32} {:<28} {:>7} {:>6} {:>9} {:>8} {:>8} {:>8} {:>7}\n",
        "NODEPOOL", "FLAVOR", "DESIRED", "ACTUAL", "AVAILABLE", "CREATING", "ABNORMAL", "DELETING", "FAILED"
    );
    for np in pools {
        let r = &np.spec.resources;
        let s = &np.status;
        out += &format!(
            "{:<32} {:<28} {:>7} {:>6} {:>9} {:>8} {:>8} {:>8} {:>7}\n",
            np.metadata.name,
            r.flavor.as_deref().unwrap_or("-"),
            opt(r.count),
            actual(np),
            opt(s.available),
            opt(s.creating),
            opt(s.abnormal),
            opt(s.deleting),
            opt(s.creation_failed),
        );
    }
    if pools.is_empty() {
        out += "(no node pools)\n";
    }
    out
}

/// A multi-document YAML stream with one `ModelArtsNodePool` per node pool, named after
/// it. Node pools whose names the CRD would refuse are skipped with a comment saying why.
pub fn manifests(pools: &[NodePool], target: &Target) -> Result<String> {
    let mut docs = Vec::new();
    for np in pools {
        let name = &np.metadata.name;
        if !valid_name(name) {
            docs.push(format!(
                "# skipped node pool {name:?}: not a valid Kubernetes object name (lower-case letters, digits, '-', '.'; at most 63)\n"
            ));
            continue;
        }
        let mut spec: ModelArtsNodePoolSpec = serde_json::from_value(serde_json::json!({
            "projectId": target.project_id,
            "poolName": target.pool,
            "nodePoolName": name,
        }))
        .map_err(|e| Error::invalid("manifest", name, e.to_string()))?;
        spec.region = target.region.clone();
        spec.endpoint = target.endpoint.clone();
        spec.credentials_secret_ref = target.secret.clone().map(|name| SecretRef { name });
        let mut obj = ModelArtsNodePool::new(name, spec);
        obj.metadata.namespace = Some(target.namespace.clone());
        let yaml =
            serde_saphyr::to_string(&obj).map_err(|e| Error::invalid("manifest", name, e.to_string()))?;
        docs.push(yaml);
    }
    Ok(docs.join("---\n"))
}

/// RFC 1123 subdomain as Kubernetes checks `metadata.name`, within the CRD's 63 limit.
fn valid_name(name: &str) -> bool {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
    (1..=63).contains(&name.len())
        && name.chars().all(ok_char)
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pools() -> Vec<NodePool> {
        serde_json::from_str(
            r#"[{"metadata":{"name":"gpu-a100"},"spec":{"resources":{"flavor":"modelarts.bm.gpu.a100.8","count":8}},
                 "status":{"resources":{"available":{"count":6},"creating":{"count":1},"creationFailed":{"count":1}}}},
                {"metadata":{"name":"Bad_Name"},"spec":{"resources":{"count":1}}}]"#,
        )
        .unwrap()
    }

    fn target() -> Target {
        Target {
            project_id: "0123456789abcdef0123456789abcdef".into(),
            pool: "pool-dly-lite-7c9e2a41-5b3d-4f08-9e61-2a7c4b8d0f13".into(),
            region: Some("cn-north-4".into()),
            endpoint: None,
            namespace: "ml-team".into(),
            secret: Some("modelarts-ak-sk".into()),
        }
    }

    #[test]
    fn table_shows_desired_against_actual() {
        let t = table(&pools());
        let row = t.lines().nth(1).unwrap();
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            cols,
            [
                "gpu-a100",
                "modelarts.bm.gpu.a100.8",
                "8",
                "7",
                "6",
                "1",
                "-",
                "-",
                "1"
            ]
        );
    }

    #[test]
    fn manifests_are_valid_resources_and_bad_names_are_skipped_with_a_reason() {
        let text = manifests(&pools(), &target()).unwrap();
        let docs: Vec<&str> = text.split("---\n").collect();
        assert_eq!(docs.len(), 2, "{text}");
        let obj: ModelArtsNodePool = serde_saphyr::from_str(docs[0]).unwrap();
        assert_eq!(obj.metadata.name.as_deref(), Some("gpu-a100"));
        assert_eq!(obj.metadata.namespace.as_deref(), Some("ml-team"));
        assert_eq!(obj.spec.node_pool_name, "gpu-a100");
        assert_eq!(obj.spec.region.as_deref(), Some("cn-north-4"));
        assert_eq!(obj.spec.credentials_secret_ref.unwrap().name, "modelarts-ak-sk");
        assert!(
            docs[0].contains("apiVersion: modelarts-operator.io/v1alpha1"),
            "{}",
            docs[0]
        );
        assert!(
            docs[1].starts_with("# skipped node pool \"Bad_Name\""),
            "{}",
            docs[1]
        );
    }
}
