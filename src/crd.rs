//! The `ModelArtsNodePool` custom resource, defined once here; `crds/` is generated from it.

use crate::summary::PoolSummary;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of the operator's resources.
pub const GROUP: &str = "modelarts-operator.io";
/// `apiVersion` of `ModelArtsNodePool`.
pub const API_VERSION: &str = "modelarts-operator.io/v1alpha1";

/// A ModelArts Lite node pool to mirror into this resource's status.
// kube's derive takes one `printcolumn(...)` per column; clippy mistakes them for duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "modelarts-operator.io",
    version = "v1alpha1",
    kind = "ModelArtsNodePool",
    plural = "modelartsnodepools",
    shortname = "mann",
    category = "modelarts",
    namespaced,
    status = "ModelArtsNodePoolStatus",
    printcolumn(name = "Pool", type_ = "string", json_path = ".spec.poolName"),
    printcolumn(name = "NodePool", type_ = "string", json_path = ".spec.nodePoolName"),
    printcolumn(name = "Desired", type_ = "integer", json_path = ".status.nodePool.desired"),
    printcolumn(name = "Nodes", type_ = "integer", json_path = ".status.nodeCount"),
    printcolumn(name = "Available", type_ = "integer", json_path = ".status.phases.available"),
    printcolumn(name = "Abnormal", type_ = "integer", json_path = ".status.phases.abnormal"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    printcolumn(
        name = "Scaling",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Scaling\")].reason",
        priority = 1
    ),
    printcolumn(
        name = "Creating",
        type_ = "integer",
        json_path = ".status.phases.creating",
        priority = 1
    ),
    printcolumn(
        name = "Deleting",
        type_ = "integer",
        json_path = ".status.phases.deleting",
        priority = 1
    ),
    printcolumn(
        name = "Checking",
        type_ = "integer",
        json_path = ".status.phases.checking",
        priority = 1
    ),
    printcolumn(
        name = "CPU",
        type_ = "string",
        json_path = ".status.columns.cpu",
        priority = 1
    ),
    printcolumn(
        name = "Memory",
        type_ = "string",
        json_path = ".status.columns.memory",
        priority = 1
    ),
    printcolumn(
        name = "GPU",
        type_ = "string",
        json_path = ".status.columns.gpu",
        priority = 1
    ),
    printcolumn(
        name = "NPU",
        type_ = "string",
        json_path = ".status.columns.npu",
        priority = 1
    ),
    printcolumn(
        name = "Last Sync",
        type_ = "date",
        json_path = ".status.lastSyncTime",
        priority = 1
    ),
    selectable = ".spec.poolName",
    selectable = ".spec.nodePoolName"
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "has(self.region) != has(self.endpoint)",
        "message": "exactly one of spec.region or spec.endpoint must be set",
        "fieldPath": ".region",
        "reason": "FieldValueInvalid"
    }
]))]
pub struct ModelArtsNodePoolSpec {
    /// IAM project ID of the region that holds the pool.
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$"))]
    pub project_id: String,

    /// Resource pool ID (the pool's `metadata.name`, not its display name):
    /// 36–63 characters of `a-z`, `0-9`, `-`, starting with a letter, not ending in `-`.
    #[schemars(regex(pattern = r"^[a-z][a-z0-9-]{34,61}[a-z0-9]$"))]
    pub pool_name: String,

    /// Node pool name: lower-case letters, digits, `-` (and `.` for the
    /// `{flavor}-default` pools ModelArts creates), starting with a letter.
    #[schemars(regex(pattern = r"^[a-z][a-z0-9.-]{0,61}[a-z0-9]$"))]
    pub node_pool_name: String,

    /// Region ID, e.g. `cn-north-4`; the endpoint is derived from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z]{2,}-[a-z]+-[0-9]{1,3}$"))]
    pub region: Option<String>,

    /// Explicit `https://` endpoint; its host must match the operator's allow-list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^https?://[^/?#@]+/?$"))]
    pub endpoint: Option<String>,

    /// Secret in this namespace with keys `accessKey`, `secretKey` and optional
    /// `securityToken`. Without it, the operator's default credentials are used only
    /// if the operator allows that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretRef>,

    /// Where credentials come from. Unset: the Secret when `credentialsSecretRef` is set,
    /// else the operator's default chain. `PodIdentity`, `OIDC`, `Metadata` and `File` name one
    /// of the operator's keyless sources; like `Default`, they need an operator that allows
    /// default credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_source: Option<CredentialSource>,

    /// How often to poll ModelArts (Go duration, at least `10s`).
    #[serde(default = "default_sync_interval")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "duration(self) >= duration('10s')", "message": "syncInterval must be at least 10s"}
    ]))]
    pub sync_interval: String,

    /// Nodes requested per page (the `limit` query parameter).
    #[serde(default = "default_page_size")]
    #[schemars(range(min = 1, max = 500))]
    pub page_size: i32,

    /// How many nodes `status.nodes` lists at most (non-`Available` ones first).
    #[serde(default = "default_max_nodes")]
    #[schemars(range(min = 0, max = 2000))]
    pub max_nodes_in_status: i32,

    /// Stop polling and keep the last status.
    #[serde(default)]
    pub suspend: bool,
}

/// `spec.credentialSource`.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum CredentialSource {
    /// `spec.credentialsSecretRef` (the common case).
    Secret,
    /// The operator's chain: its AK/SK environment, then its keyless sources in the SDKs' order.
    Default,
    /// CCE Pod Identity of the operator's Pod.
    PodIdentity,
    /// OIDC federation of the operator's ServiceAccount token.
    #[serde(rename = "OIDC")]
    Oidc,
    /// ECS/BMS metadata (agency of the node), if the operator enables it.
    Metadata,
    /// The operator's mounted credentials file.
    File,
}

impl CredentialSource {
    /// The name as written in the spec.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialSource::Secret => "Secret",
            CredentialSource::Default => "Default",
            CredentialSource::PodIdentity => "PodIdentity",
            CredentialSource::Oidc => "OIDC",
            CredentialSource::Metadata => "Metadata",
            CredentialSource::File => "File",
        }
    }
}

/// A reference to a Secret in the resource's namespace.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct SecretRef {
    /// Secret name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

fn default_sync_interval() -> String {
    "60s".to_string()
}
fn default_page_size() -> i32 {
    500
}
fn default_max_nodes() -> i32 {
    crate::summary::DEFAULT_MAX_NODES as i32
}

/// What the operator last observed of the node pool.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelArtsNodePoolStatus {
    /// The `metadata.generation` this status reflects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When ModelArts was last read successfully (refreshed on change, or at the heartbeat).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<String>,
    /// The node data of the last successful sync; absent until the first one.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<PoolSummary>,
    /// The node pool's desired shape and its own node counts (from `ShowNodePool`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_pool: Option<crate::nodepool::NodePoolState>,
    /// `Synced`, `Healthy`, `Ready` and `Scaling`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
}

/// `metav1.Condition` list as a map keyed by `type`, so server-side apply merges it.
fn conditions_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = generator.subschema_for::<Vec<Condition>>();
    if let Some(obj) = schema.as_object_mut() {
        obj.insert("x-kubernetes-list-type".into(), "map".into());
        obj.insert("x-kubernetes-list-map-keys".into(), serde_json::json!(["type"]));
    }
    schema
}

/// The CRD as YAML, as `modelarts-operator crd` prints it and `crds/` holds it.
pub fn crd_yaml() -> crate::Result<String> {
    use kube::CustomResourceExt;
    serde_saphyr::to_string(&ModelArtsNodePool::crd())
        .map_err(|e| crate::Error::invalid("crd", "ModelArtsNodePool", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crd_has_names_columns_and_validation() {
        let yaml = crd_yaml().unwrap();
        for needle in [
            "shortNames:",
            "- mann",
            "- modelarts",
            "x-kubernetes-list-type: map",
            "has(self.region) != has(self.endpoint)",
            "duration(self) >= duration('10s')",
            "priority: 1",
            "subresources:",
        ] {
            assert!(yaml.contains(needle), "CRD lacks {needle:?}:\n{yaml}");
        }
    }

    #[test]
    fn spec_defaults_apply_when_fields_are_absent() {
        let spec: ModelArtsNodePoolSpec = serde_json::from_value(serde_json::json!({
            "projectId": "p", "poolName": "x", "nodePoolName": "np", "region": "cn-north-4"
        }))
        .unwrap();
        assert_eq!(
            (
                spec.sync_interval.as_str(),
                spec.page_size,
                spec.max_nodes_in_status,
                spec.suspend
            ),
            ("60s", 500, 200, false)
        );
    }
}

/// Parses a Go-style duration (`90s`, `1m30s`, `1.5h`, `250ms`), as `spec.syncInterval` takes.
///
/// Hand-written on purpose: `jiff`'s friendly duration parser (already a dependency) takes
/// far more than the CRD pattern `^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$` allows (`10 minutes`,
/// which the tests below refuse, `2h 30m`, `3 mins 34,123s`, signs, `ago`), so using it would
/// change what `spec.syncInterval`, `--max-backoff` and friends accept.
pub fn parse_duration(field: &str, s: &str) -> crate::Result<std::time::Duration> {
    let bad = |why: &str| crate::Error::invalid(field, s, why);
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad("empty duration"));
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_end);
        let value: f64 = num
            .parse()
            .map_err(|_| bad("expected a number before each unit"))?;
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_end);
        let scale = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad("units are ms, s, m and h, e.g. 90s or 1m30s")),
        };
        total += value * scale;
        rest = next;
    }
    std::time::Duration::try_from_secs_f64(total).map_err(|_| bad("out of range"))
}

#[cfg(test)]
mod duration_tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("f", "60s").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("f", "1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("f", "1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("f", "250ms").unwrap(), Duration::from_millis(250));
        let e = parse_duration("spec.syncInterval", "10 minutes")
            .unwrap_err()
            .to_string();
        assert!(e.contains("spec.syncInterval") && e.contains("10 minutes"), "{e}");
        assert!(parse_duration("f", "").is_err());
        assert!(parse_duration("f", "5").is_err());
    }

    #[test]
    fn status_without_pool_data_reads_back_as_none() {
        let s: ModelArtsNodePoolStatus =
            serde_json::from_value(serde_json::json!({"observedGeneration": 1, "conditions": []})).unwrap();
        assert_eq!(s.pool, None);
        let full = ModelArtsNodePoolStatus {
            pool: Some(PoolSummary::default()),
            ..Default::default()
        };
        let back: ModelArtsNodePoolStatus =
            serde_json::from_value(serde_json::to_value(&full).unwrap()).unwrap();
        assert_eq!(back, full);
    }
}
