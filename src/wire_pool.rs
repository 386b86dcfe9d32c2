//! ModelArts wire types of the node-pool object itself (`ShowNodePool`, `ListNodePools`).
//!
//! Lenient like [`crate::wire`]: the documentation, the SDK models and live answers
//! disagree on shapes (`status.resources.available` is an object in the SDKs and an array
//! of per-flavor entries in the OTC docs; `creationFailed` appears in Terraform's reads but
//! not in the SDK model), so every count is read from whichever shape arrives and a
//! missing or odd value counts as absent, never as an error.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// `GET /v2/{project_id}/pools/{pool}/nodepools` (ListNodePools).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct NodePoolList {
    /// The node pools.
    #[serde(default, deserialize_with = "null_as_default")]
    pub items: Vec<NodePool>,
}

/// One node pool: what it should have (`spec.resources`) and what it reports having.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct NodePool {
    /// Name.
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: NodePoolMetadata,
    /// Desired shape.
    #[serde(default, deserialize_with = "null_as_default")]
    pub spec: NodePoolSpec,
    /// Nodes by lifecycle bucket.
    #[serde(default, deserialize_with = "null_as_default")]
    pub status: NodePoolStatus,
}

/// `NodePool.metadata`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct NodePoolMetadata {
    /// Node-pool name.
    #[serde(default)]
    pub name: String,
}

/// `NodePool.spec`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct NodePoolSpec {
    /// `PoolResource`; a single object for node pools (an array only for whole pools).
    #[serde(default, deserialize_with = "first_or_object")]
    pub resources: PoolResource,
}

/// `PoolResource`: flavor, desired count, ceiling and per-AZ placement.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PoolResource {
    /// Flavor ID.
    #[serde(default, deserialize_with = "lenient_string")]
    pub flavor: Option<String>,
    /// Desired node count.
    #[serde(default, deserialize_with = "lenient_count")]
    pub count: Option<i64>,
    /// Ceiling the pool may grow to.
    #[serde(default, deserialize_with = "lenient_count")]
    pub max_count: Option<i64>,
    /// Desired nodes per availability zone, when the user pinned them.
    #[serde(default, deserialize_with = "lenient_azs")]
    pub azs: Vec<AzCount>,
}

/// A desired count in one availability zone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AzCount {
    /// Zone ID, e.g. `cn-north-4a`.
    pub az: String,
    /// Nodes wanted there.
    pub count: i64,
}

/// `NodePool.status.resources`: how many nodes the pool itself counts per bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodePoolStatus {
    /// Nodes being created.
    pub creating: Option<i64>,
    /// Nodes serving.
    pub available: Option<i64>,
    /// Nodes the pool reports abnormal.
    pub abnormal: Option<i64>,
    /// Nodes being deleted.
    pub deleting: Option<i64>,
    /// Nodes whose creation failed.
    pub creation_failed: Option<i64>,
}

impl<'de> Deserialize<'de> for NodePoolStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Option::<Value>::deserialize(d)?.unwrap_or(Value::Null);
        let resources = v.get("resources").cloned().unwrap_or(Value::Null);
        let bucket = |key: &str| resources.get(key).and_then(bucket_count);
        Ok(NodePoolStatus {
            creating: bucket("creating"),
            available: bucket("available"),
            abnormal: bucket("abnormal"),
            deleting: bucket("deleting"),
            creation_failed: bucket("creationFailed"),
        })
    }
}

/// A bucket is `{flavor, count, ...}` (SDK model) or a list of those (OTC docs, one entry
/// per flavor or AZ); either way the nodes in it are the sum of the counts.
fn bucket_count(v: &Value) -> Option<i64> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|i| i.get("count").and_then(count_of))
            .try_fold(0i64, |acc, c| acc.checked_add(c.unwrap_or(0))),
        Value::Object(_) => v.get("count").and_then(count_of),
        other => count_of(other),
    }
}

/// A count as a JSON integer or a decimal string; negative or fractional is no count.
fn count_of(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|c| *c >= 0)
}

fn lenient_count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(Option::<Value>::deserialize(d)?.as_ref().and_then(count_of))
}

fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    })
}

/// `azs` entries are `{az, count}`; entries without a zone name are dropped.
fn lenient_azs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<AzCount>, D::Error> {
    let v = Option::<Value>::deserialize(d)?.unwrap_or(Value::Null);
    let mut out: Vec<AzCount> = v
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| {
                    let az = i.get("az")?.as_str()?.to_string();
                    let count = i.get("count").and_then(count_of).unwrap_or(0);
                    Some(AzCount { az, count })
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by(|a, b| a.az.cmp(&b.az));
    Ok(out)
}

/// Node pools carry one `PoolResource`; a list (the whole-pool shape) yields its first.
fn first_or_object<'de, D: Deserializer<'de>>(d: D) -> Result<PoolResource, D::Error> {
    let v = Option::<Value>::deserialize(d)?.unwrap_or(Value::Null);
    let one = match v {
        Value::Array(mut items) if !items.is_empty() => items.swap_remove(0),
        Value::Object(_) => v,
        _ => return Ok(PoolResource::default()),
    };
    Ok(serde_json::from_value(one).unwrap_or_default())
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_shape_objects() {
        let np: NodePool = serde_json::from_str(
            r#"{"apiVersion":"v2","kind":"NodePool","metadata":{"name":"gpu"},
                "spec":{"resources":{"flavor":"modelarts.bm.gpu.a100.8","count":8,"maxCount":10,
                        "azs":[{"az":"cn-north-4b","count":3},{"az":"cn-north-4a","count":5}]}},
                "status":{"resources":{"creating":{"flavor":"f","count":2},"available":{"flavor":"f","count":6}}}}"#,
        )
        .unwrap();
        assert_eq!(np.metadata.name, "gpu");
        assert_eq!(
            np.spec.resources.flavor.as_deref(),
            Some("modelarts.bm.gpu.a100.8")
        );
        assert_eq!(
            (np.spec.resources.count, np.spec.resources.max_count),
            (Some(8), Some(10))
        );
        let azs: Vec<(&str, i64)> = np
            .spec
            .resources
            .azs
            .iter()
            .map(|a| (a.az.as_str(), a.count))
            .collect();
        assert_eq!(azs, [("cn-north-4a", 5), ("cn-north-4b", 3)]);
        assert_eq!(
            np.status,
            NodePoolStatus {
                creating: Some(2),
                available: Some(6),
                ..Default::default()
            }
        );
    }

    #[test]
    fn otc_shape_arrays_are_summed_and_creation_failed_is_read() {
        let np: NodePool = serde_json::from_str(
            r#"{"metadata":{"name":"np"},"spec":{"resources":[{"flavor":"f","count":"4"}]},
                "status":{"resources":{
                  "available":[{"flavor":"f","count":2,"azs":[{"az":"a","count":2}]},{"flavor":"f","count":1}],
                  "creationFailed":[{"flavor":"f","count":1}],
                  "abnormal":[]}}}"#,
        )
        .unwrap();
        assert_eq!(np.spec.resources.count, Some(4));
        assert_eq!(np.status.available, Some(3));
        assert_eq!(np.status.creation_failed, Some(1));
        assert_eq!(np.status.abnormal, Some(0));
        assert_eq!(np.status.creating, None);
    }

    #[test]
    fn odd_values_count_as_absent_not_as_errors() {
        let np: NodePool = serde_json::from_str(
            r#"{"metadata":null,"spec":{"resources":{"count":-1,"maxCount":2.5,"flavor":7,"azs":[{"count":1}]}},
                "status":{"resources":{"creating":"many","available":null}}}"#,
        )
        .unwrap();
        assert_eq!(np.spec.resources, PoolResource::default());
        assert_eq!(np.status, NodePoolStatus::default());
        let empty: NodePool = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, NodePool::default());
    }

    #[test]
    fn list_of_node_pools() {
        let l: NodePoolList = serde_json::from_str(
            r#"{"kind":"NodePoolList","items":[{"metadata":{"name":"a"}},{"metadata":{"name":"b"}}]}"#,
        )
        .unwrap();
        let names: Vec<&str> = l.items.iter().map(|n| n.metadata.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
    }
}
