//! The data file format and its embedded default: credentials, tokens and projects → pools
//! → node pools → nodes, as read once at start.
//!
//! Named apart from [`world`](crate::world) (what is served and mutated at run time) and
//! [`state`](crate::state) (the locked server state around the world): this is only the
//! serialized input.
//!
//! YAML or JSON, camelCase keys. Spec structs refuse unknown keys so a typo in a demo file
//! is reported instead of silently ignored; `Node` objects stay lenient like the client's.

use modelarts_operator::error::{Error, Result};
use modelarts_operator::wire::Node;
use secrecy::SecretString;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::path::Path;

pub use crate::validate::{MAX_GENERATED, nodepool_name_problem, pool_name_problem};

/// Project ID of the embedded default data.
pub const DEMO_PROJECT_ID: &str = "0123456789abcdef0123456789abcdef";
/// Pool ID of the embedded default data.
pub const DEMO_POOL: &str = "pool-dly-lite-7c9e2a41-5b3d-4f08-9e61-2a7c4b8d0f13";
/// Node pool holding exactly the documentation's example node `node-dly-4`.
pub const DEMO_NODEPOOL: &str = "nodepool-1";
/// The documentation's example node.
pub const DEMO_NODE: &str = "node-dly-4";
/// Node pool of A100 GPU nodes (`nvidia.com/gpu`).
pub const DEMO_GPU_NODEPOOL: &str = "gpu-a100";
/// Node pool of Ascend nodes (`huawei.com/ascend-snt9`).
pub const DEMO_NPU_NODEPOOL: &str = "npu-snt9";
/// Generated node pool with [`DEMO_LARGE_COUNT`] nodes.
pub const DEMO_LARGE_NODEPOOL: &str = "large";
/// Number of nodes in [`DEMO_LARGE_NODEPOOL`].
pub const DEMO_LARGE_COUNT: usize = 3000;
/// Demo access key ID accepted by the embedded default data.
pub const DEMO_ACCESS_KEY: &str = "DEMOACCESSKEY0000001";
/// Demo secret key of [`DEMO_ACCESS_KEY`]; public on purpose, never use it elsewhere.
pub const DEMO_SECRET_KEY: &str = "demo-secret-key-not-for-production-0000000";
/// Demo IAM token accepted as `X-Auth-Token`.
pub const DEMO_TOKEN: &str = "demo-iam-token";

const DEFAULT_DATA: &str = include_str!("default-data.yaml");

/// Everything the simulator serves.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SimData {
    /// AK/SK pairs accepted for `SDK-HMAC-SHA256`.
    #[serde(default)]
    pub credentials: Vec<CredentialSpec>,
    /// IAM tokens accepted as `X-Auth-Token`.
    #[serde(default, deserialize_with = "de_secret_vec")]
    pub tokens: Vec<SecretString>,
    /// Projects and their pools.
    #[serde(default)]
    pub projects: Vec<ProjectSpec>,
}

/// One AK/SK credential; `Debug` redacts the secrets.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CredentialSpec {
    /// Access key ID.
    pub access_key: String,
    /// Secret access key.
    #[serde(deserialize_with = "de_secret")]
    pub secret_key: SecretString,
    /// Security token of temporary credentials; when set, requests must sign a matching one.
    #[serde(default, deserialize_with = "de_opt_secret")]
    pub security_token: Option<SecretString>,
    /// When temporary credentials stop being accepted (issued by the identity endpoints).
    #[serde(skip)]
    pub expires_at: Option<jiff::Timestamp>,
}

impl CredentialSpec {
    /// A permanent AK/SK pair.
    pub fn new(access_key: &str, secret_key: &str) -> Self {
        CredentialSpec {
            access_key: access_key.to_string(),
            secret_key: SecretString::from(secret_key.to_string()),
            security_token: None,
            expires_at: None,
        }
    }

    /// The same pair as temporary credentials with a security token.
    pub fn with_security_token(mut self, token: &str) -> Self {
        self.security_token = Some(SecretString::from(token.to_string()));
        self
    }
}

/// A project (IAM project ID) and its pools.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProjectSpec {
    /// Project ID as used in `/v2/{project_id}`.
    pub id: String,
    /// Resource pools of the project.
    #[serde(default)]
    pub pools: Vec<PoolSpec>,
}

/// A resource pool.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PoolSpec {
    /// Pool ID (`metadata.name`): 36–63 chars of `[a-z0-9-]`, starting with a letter.
    pub name: String,
    /// Display name (label `os.modelarts/name`); defaults to the ID.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Node pools of the pool.
    #[serde(default)]
    pub node_pools: Vec<NodePoolSpec>,
}

/// A node pool: explicit nodes first, then generated ones.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodePoolSpec {
    /// Node-pool name: 2–50 chars of `[a-z0-9-]`, starting with a letter, not ending in `-`.
    pub name: String,
    /// Flavor reported by the node-pool endpoints; defaults to the first node's flavor.
    #[serde(default)]
    pub flavor: Option<String>,
    /// Full ModelArts `Node` objects, served as given (`kind`/`apiVersion` filled in).
    #[serde(default)]
    pub nodes: Vec<Node>,
    /// Deterministically generated nodes appended after `nodes`.
    #[serde(default)]
    pub generate: Option<GenerateSpec>,
    /// How the node-pool object describes itself (desired count, failures, ...).
    #[serde(default)]
    pub scaling: ScalingSpec,
}

/// The node-pool object's own view, served by ShowNodePool/ListNodePools; by default
/// the desired count is the number of nodes, so a plain pool looks converged.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScalingSpec {
    /// `spec.resources.count`; defaults to the number of nodes.
    #[serde(default)]
    pub desired: Option<u32>,
    /// `spec.resources.maxCount`; defaults to the larger of desired and nodes.
    #[serde(default)]
    pub max_count: Option<u32>,
    /// Desired nodes per availability zone (`spec.resources.azs`).
    #[serde(default)]
    pub azs: BTreeMap<String, u32>,
    /// `status.resources.creationFailed` count.
    #[serde(default)]
    pub creation_failed: u32,
    /// Serve `status.resources.*` as arrays of per-flavor entries (the OTC documentation's
    /// shape) instead of objects (the SDK models' shape).
    #[serde(default)]
    pub status_as_arrays: bool,
}

/// How to generate many similar nodes; no randomness, so every run serves the same list.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenerateSpec {
    /// How many nodes.
    pub count: usize,
    /// Name prefix; the zero-padded 1-based index follows (`node-gen-0001`).
    #[serde(default = "default_prefix")]
    pub name_prefix: String,
    /// `spec.flavor` of every node.
    #[serde(default = "default_flavor")]
    pub flavor: String,
    /// Availability zones, assigned round-robin.
    #[serde(default = "default_azs")]
    pub azs: Vec<String>,
    /// `status.resources` of every node.
    #[serde(default = "default_resources")]
    pub resources: BTreeMap<String, String>,
    /// `status.availableResources` of every node (empty: same as `resources`).
    #[serde(default)]
    pub available_resources: BTreeMap<String, String>,
    /// Nodes per non-`Available` phase, spread evenly over the list; the rest are `Available`.
    #[serde(default)]
    pub phases: BTreeMap<String, usize>,
    /// Extra labels; the node-pool labels are always added.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Creation time of the first node; each next node is one minute later.
    #[serde(default = "default_created")]
    pub creation_timestamp: String,
}

impl GenerateSpec {
    /// `count` CPU nodes with the defaults for everything else.
    pub fn new(count: usize) -> Self {
        GenerateSpec {
            count,
            name_prefix: default_prefix(),
            flavor: default_flavor(),
            azs: default_azs(),
            resources: default_resources(),
            available_resources: BTreeMap::new(),
            phases: BTreeMap::new(),
            labels: BTreeMap::new(),
            creation_timestamp: default_created(),
        }
    }
}

fn default_prefix() -> String {
    "node-gen-".into()
}
fn default_flavor() -> String {
    "modelarts.vm.cpu.8u32g".into()
}
fn default_azs() -> Vec<String> {
    vec!["cn-north-4a".into()]
}
fn default_resources() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("cpu".into(), "7800m".into()),
        ("memory".into(), "29000Mi".into()),
    ])
}
fn default_created() -> String {
    "2024-02-01T00:00:00Z".into()
}

fn de_secret<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<SecretString, D::Error> {
    Ok(SecretString::from(String::deserialize(d)?))
}

fn de_opt_secret<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<SecretString>, D::Error> {
    Ok(Option::<String>::deserialize(d)?
        .filter(|s| !s.is_empty())
        .map(SecretString::from))
}

fn de_secret_vec<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<SecretString>, D::Error> {
    Ok(Vec::<String>::deserialize(d)?
        .into_iter()
        .map(SecretString::from)
        .collect())
}

impl SimData {
    /// The embedded demo data (`simulator/src/default-data.yaml`).
    pub fn embedded_default() -> Self {
        match Self::from_yaml_str(DEFAULT_DATA) {
            Ok(d) => d,
            // The unit tests parse the embedded file, so this is a build defect, not input.
            Err(e) => unreachable!("embedded default-data.yaml is invalid: {e}"),
        }
    }

    /// The embedded demo data as text, e.g. as a starting point for a custom file.
    pub fn embedded_default_text() -> &'static str {
        DEFAULT_DATA
    }

    /// Parses YAML (which also accepts most JSON).
    pub fn from_yaml_str(text: &str) -> Result<Self> {
        serde_saphyr::from_str(text).map_err(|e| Error::invalid("simulator data", "<yaml>", e.to_string()))
    }

    /// Reads a data file; `.json` files are parsed as JSON, anything else as YAML.
    pub fn from_file(path: &Path) -> Result<Self> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
            context: format!("reading simulator data {shown}"),
            source: e,
        })?;
        let parsed = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) {
            serde_json::from_str(&text).map_err(|e| e.to_string())
        } else {
            serde_saphyr::from_str(&text).map_err(|e| e.to_string())
        };
        parsed.map_err(|e| Error::invalid("--data", shown, e))
    }

    /// Adds (or replaces) a generated node pool of `count` nodes, creating project and pool.
    pub fn with_generated(mut self, project: &str, pool: &str, nodepool: &str, count: usize) -> Self {
        let gen_spec = GenerateSpec {
            name_prefix: format!("{nodepool}-node-"),
            ..GenerateSpec::new(count)
        };
        let np = NodePoolSpec {
            name: nodepool.into(),
            generate: Some(gen_spec),
            ..Default::default()
        };
        self.upsert_node_pool(project, pool, np);
        self
    }

    /// Adds (or replaces) a node pool with explicit nodes, creating project and pool.
    pub fn with_nodes(mut self, project: &str, pool: &str, nodepool: &str, nodes: Vec<Node>) -> Self {
        let np = NodePoolSpec {
            name: nodepool.into(),
            nodes,
            ..Default::default()
        };
        self.upsert_node_pool(project, pool, np);
        self
    }

    /// Adds an AK/SK credential.
    pub fn with_credential(mut self, cred: CredentialSpec) -> Self {
        self.credentials.push(cred);
        self
    }

    /// Adds an accepted IAM token.
    pub fn with_token(mut self, token: &str) -> Self {
        self.tokens.push(SecretString::from(token.to_string()));
        self
    }

    /// Inserts or replaces node pool `np` of `project`/`pool`, creating both as needed.
    pub fn upsert_node_pool(&mut self, project: &str, pool: &str, np: NodePoolSpec) {
        let proj = match self.projects.iter().position(|p| p.id == project) {
            Some(i) => &mut self.projects[i],
            None => {
                self.projects.push(ProjectSpec {
                    id: project.into(),
                    pools: vec![],
                });
                let last = self.projects.len() - 1;
                &mut self.projects[last]
            }
        };
        let pl = match proj.pools.iter().position(|p| p.name == pool) {
            Some(i) => &mut proj.pools[i],
            None => {
                proj.pools.push(PoolSpec {
                    name: pool.into(),
                    display_name: None,
                    node_pools: vec![],
                });
                let last = proj.pools.len() - 1;
                &mut proj.pools[last]
            }
        };
        match pl.node_pools.iter_mut().find(|n| n.name == np.name) {
            Some(existing) => *existing = np,
            None => pl.node_pools.push(np),
        }
    }

    /// Parses a `--generate PROJECT/POOL/NODEPOOL=COUNT` flag value and applies it.
    pub fn apply_generate_flag(self, flag: &str) -> Result<Self> {
        let bad = |reason: &str| Error::invalid("--generate", flag, reason);
        let (path, count) = flag
            .split_once('=')
            .ok_or_else(|| bad("expected PROJECT/POOL/NODEPOOL=COUNT"))?;
        let count: usize = count
            .trim()
            .parse()
            .map_err(|_| bad("COUNT must be a non-negative integer"))?;
        let parts: Vec<&str> = path.split('/').collect();
        match parts.as_slice() {
            [p, pool, np] if !p.is_empty() && !pool.is_empty() && !np.is_empty() => {
                Ok(self.with_generated(p, pool, np, count))
            }
            _ => Err(bad("expected PROJECT/POOL/NODEPOOL=COUNT")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn embedded_default_matches_the_documented_constants() {
        let d = SimData::embedded_default();
        d.validate().unwrap();
        assert_eq!(d.credentials[0].access_key, DEMO_ACCESS_KEY);
        assert_eq!(d.credentials[0].secret_key.expose_secret(), DEMO_SECRET_KEY);
        assert_eq!(d.tokens[0].expose_secret(), DEMO_TOKEN);
        let pool = &d.projects[0].pools[0];
        assert_eq!(
            (d.projects[0].id.as_str(), pool.name.as_str()),
            (DEMO_PROJECT_ID, DEMO_POOL)
        );
        let np = |n: &str| pool.node_pools.iter().find(|p| p.name == n).unwrap();
        let seed = &np(DEMO_NODEPOOL).nodes;
        assert_eq!(seed.len(), 1);
        assert_eq!(seed[0].metadata.name, DEMO_NODE);
        assert_eq!(seed[0].status.resources["memory"], "1912Mi");
        assert!(
            np(DEMO_GPU_NODEPOOL)
                .nodes
                .iter()
                .all(|n| n.status.available_resources.contains_key("nvidia.com/gpu"))
        );
        assert!(
            np(DEMO_NPU_NODEPOOL)
                .nodes
                .iter()
                .all(|n| n.status.resources.contains_key("huawei.com/ascend-snt9"))
        );
        assert_eq!(
            np(DEMO_LARGE_NODEPOOL).generate.as_ref().map(|g| g.count),
            Some(DEMO_LARGE_COUNT)
        );
    }

    #[test]
    fn debug_redacts_secrets() {
        let c = CredentialSpec::new("AK", "very-secret-sk").with_security_token("sts-secret");
        let dbg = format!(
            "{:?}",
            SimData::default().with_credential(c).with_token("tok-secret")
        );
        assert!(
            !dbg.contains("very-secret-sk") && !dbg.contains("sts-secret") && !dbg.contains("tok-secret")
        );
    }

    #[test]
    fn names_are_checked_with_field_and_value() {
        let e = SimData::default()
            .with_generated("p", "short", "np", 1)
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("projects[0].pools[0].name") && e.contains("short"),
            "{e}"
        );
        let e = SimData::default()
            .with_generated("p", DEMO_POOL, "Bad_Name", 1)
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("nodePools[0].name") && e.contains("Bad_Name"), "{e}");
        assert_eq!(nodepool_name_problem("np-"), Some("must not end with '-'"));
        assert_eq!(
            nodepool_name_problem("1np"),
            Some("must start with a lowercase letter")
        );
        assert_eq!(nodepool_name_problem("gpu-a100"), None);
    }

    #[test]
    fn generate_flag_parses_and_reports_its_value() {
        let d = SimData::default()
            .apply_generate_flag(&format!("p1/{DEMO_POOL}/np=12"))
            .unwrap();
        assert_eq!(
            d.projects[0].pools[0].node_pools[0]
                .generate
                .as_ref()
                .map(|g| g.count),
            Some(12)
        );
        let e = SimData::default()
            .apply_generate_flag("p1/pool=x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("--generate") && e.contains("p1/pool=x"), "{e}");
    }

    #[test]
    fn example_file_parses_and_validates() {
        let d = SimData::from_yaml_str(include_str!("../../examples/simulator-data.yaml")).unwrap();
        d.validate().unwrap();
        assert!(d.credentials[1].security_token.is_some());
        let nps = &d.projects[0].pools[0].node_pools;
        assert_eq!(nps[0].generate.as_ref().map(|g| g.count), Some(1200));
        assert!(nps[1].nodes.is_empty() && nps[1].generate.is_none());
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = SimData::from_yaml_str("projects:\n  - id: p\n    pool: []\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("pool"), "{e}");
    }
}
