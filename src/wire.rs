//! ModelArts wire types: the v2 JSON bodies of `ListNodePoolNodes`, as sent and received.
//!
//! Deserialization is lenient on purpose: live responses carry fields the docs do not
//! list (`status.driver`, `status.plugins`, taints, ...), and a strict model would either
//! fail or silently lose them. Unknown fields are kept in `extra` maps and unknown phases
//! in [`NodePhase::Other`], so a new upstream value never breaks a sync.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// One page of `GET /v2/{project_id}/pools/{pool}/nodepools/{nodepool}/nodes`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NodeList {
    /// Always `v2` today.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Always `NodeList` today.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Pagination metadata; `{}` or absent on single-page answers.
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: ListMetadata,
    /// The nodes of this page.
    #[serde(default, deserialize_with = "null_as_default")]
    pub items: Vec<Node>,
}

/// `NodeListMetadata`: the continue token and the remaining count.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ListMetadata {
    /// Opaque token for the next page; empty or absent on the last page.
    #[serde(default, rename = "continue", skip_serializing_if = "Option::is_none")]
    pub continue_token: Option<String>,
    /// Items not yet returned, when the server says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_item_count: Option<i64>,
}

impl ListMetadata {
    /// The token for the next page, treating an empty string as "no more pages".
    pub fn next_token(&self) -> Option<&str> {
        self.continue_token.as_deref().filter(|t| !t.is_empty())
    }
}

/// One ModelArts node.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    /// `v2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// `Node`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name, creation time, labels, annotations.
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: NodeMetadata,
    /// Flavor, OS, network.
    #[serde(default, deserialize_with = "null_as_default")]
    pub spec: NodeSpec,
    /// Phase, zone, IP and resources.
    #[serde(default, deserialize_with = "null_as_default")]
    pub status: NodeStatus,
}

/// `Node.metadata`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NodeMetadata {
    /// Node name, unique within the pool.
    #[serde(default)]
    pub name: String,
    /// RFC 3339 creation time, kept as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    /// Open label map (`os.modelarts.node/nodepool`, ...).
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub labels: BTreeMap<String, String>,
    /// Fields not modelled here, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `Node.spec`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NodeSpec {
    /// Flavor ID, e.g. `modelarts.vm.2u4g.dcc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flavor: Option<String>,
    /// Fields not modelled here (os, hostNetwork, volumes, ...), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `Node.status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    /// Lifecycle phase; unknown values are kept.
    #[serde(default)]
    pub phase: NodePhase,
    /// Availability zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub az: Option<String>,
    /// Private IP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_ip: Option<String>,
    /// Total resources: resource name → quantity string.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "lenient_resources"
    )]
    pub resources: BTreeMap<String, String>,
    /// Allocatable-now resources: resource name → quantity string.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "lenient_resources"
    )]
    pub available_resources: BTreeMap<String, String>,
    /// Fields not modelled here (driver, plugins, taints, ...), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A node's lifecycle phase as ModelArts reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodePhase {
    /// Serving workloads.
    Available,
    /// Being provisioned.
    Creating,
    /// Being removed.
    Deleting,
    /// Unhealthy.
    Abnormal,
    /// Running its self-check.
    Checking,
    /// A phase this version does not know, kept verbatim (empty when absent).
    Other(String),
    /// No phase in the response.
    #[default]
    Missing,
}

impl NodePhase {
    /// The wire spelling (`Available`, ...), or the unknown value as received.
    pub fn as_str(&self) -> &str {
        match self {
            NodePhase::Available => "Available",
            NodePhase::Creating => "Creating",
            NodePhase::Deleting => "Deleting",
            NodePhase::Abnormal => "Abnormal",
            NodePhase::Checking => "Checking",
            NodePhase::Other(s) => s,
            NodePhase::Missing => "",
        }
    }

    /// Parses the wire spelling; anything unknown becomes [`NodePhase::Other`].
    pub fn parse(s: &str) -> Self {
        match s {
            "Available" => NodePhase::Available,
            "Creating" => NodePhase::Creating,
            "Deleting" => NodePhase::Deleting,
            "Abnormal" => NodePhase::Abnormal,
            "Checking" => NodePhase::Checking,
            "" => NodePhase::Missing,
            other => NodePhase::Other(other.to_string()),
        }
    }
}

impl Serialize for NodePhase {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for NodePhase {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Option::<Value>::deserialize(d)?;
        Ok(match v {
            Some(Value::String(s)) => NodePhase::parse(&s),
            None | Some(Value::Null) => NodePhase::Missing,
            Some(other) => NodePhase::Other(other.to_string()),
        })
    }
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Resource maps are documented as string → string, but a number (`"cpu": 8`) is
/// accepted and kept as its decimal text so it can still be summed exactly.
/// Other value types are kept as their JSON text and later reported as unparsable.
fn lenient_resources<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let raw = Option::<BTreeMap<String, Value>>::deserialize(d)?.unwrap_or_default();
    Ok(raw
        .into_iter()
        .map(|(k, v)| {
            let s = match v {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                other => other.to_string(),
            };
            (k, s)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = r#"{
      "kind" : "NodeList", "apiVersion" : "v2", "metadata" : { },
      "items" : [ {
        "kind" : "Node", "apiVersion" : "v2",
        "metadata" : { "name" : "node-dly-4", "creationTimestamp" : "2024-01-29T09:28:26Z",
          "labels" : { "os.modelarts.node/cluster" : "dly-lite", "os.modelarts.node/nodepool" : "nodepool-1" } },
        "spec" : { "flavor" : "modelarts.vm.2u4g.dcc",
          "hostNetwork" : { "vpc" : "277e9abc", "subnet" : "03796378", "securityGroups" : [ "0a15b48d" ] } },
        "status" : { "phase" : "Available", "az" : "cn-north-7c", "privateIp" : "192.168.1.132",
          "resources" : { "cpu" : "1930m", "memory" : "1912Mi" } }
      } ]
    }"#;

    #[test]
    fn parses_the_seed_example() {
        let list: NodeList = serde_json::from_str(SEED).unwrap();
        assert_eq!(list.metadata.next_token(), None);
        let node = &list.items[0];
        assert_eq!(node.metadata.name, "node-dly-4");
        assert_eq!(node.spec.flavor.as_deref(), Some("modelarts.vm.2u4g.dcc"));
        assert_eq!(node.status.phase, NodePhase::Available);
        assert_eq!(node.status.resources["cpu"], "1930m");
        assert_eq!(node.status.resources["memory"], "1912Mi");
        assert!(
            node.spec.extra.contains_key("hostNetwork"),
            "unknown spec fields are kept"
        );
    }

    #[test]
    fn tolerates_missing_metadata_nulls_and_unknown_phases() {
        let list: NodeList = serde_json::from_str(
            r#"{"items":[{"metadata":{"name":"a"},"status":{"phase":"Rebooting","driver":{"phase":"Running"},
                "resources":{"cpu":8,"nvidia.com/gpu":"1"},"availableResources":null}},
               {"metadata":{"name":"b"},"status":null}]}"#,
        )
        .unwrap();
        assert_eq!(list.items[0].status.phase, NodePhase::Other("Rebooting".into()));
        assert_eq!(list.items[0].status.phase.as_str(), "Rebooting");
        assert_eq!(list.items[0].status.resources["cpu"], "8");
        assert!(list.items[0].status.extra.contains_key("driver"));
        assert_eq!(list.items[1].status.phase, NodePhase::Missing);
    }

    #[test]
    fn empty_continue_means_last_page() {
        let m: ListMetadata = serde_json::from_str(r#"{"continue":"","remainingItemCount":0}"#).unwrap();
        assert_eq!(m.next_token(), None);
        let m: ListMetadata = serde_json::from_str(r#"{"continue":"eyJ2IjoxfQ=="}"#).unwrap();
        assert_eq!(m.next_token(), Some("eyJ2IjoxfQ=="));
    }

    #[test]
    fn phase_round_trips_through_json() {
        for p in [
            "Available",
            "Creating",
            "Deleting",
            "Abnormal",
            "Checking",
            "Frozen",
        ] {
            let phase: NodePhase = serde_json::from_value(Value::String(p.into())).unwrap();
            assert_eq!(serde_json::to_value(&phase).unwrap(), Value::String(p.into()));
        }
    }
}
