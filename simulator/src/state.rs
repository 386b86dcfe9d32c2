//! The shared server state: the [`World`] behind one lock, with authentication, faults and
//! request statistics around it (what the handlers and `SimHandle::state` reach).
//!
//! Kept apart from [`world`](crate::world), which is only the data and its mutations.
//!
//! One `std::sync::Mutex` guards everything; critical sections are short and never await.

use crate::auth::{AuthFailure, AuthRequest, Authenticator, Identity};
use crate::data::{CredentialSpec, NodePoolSpec, ScalingSpec};
use crate::faults::{Fault, FaultContext, FaultSet, Fired};
use crate::world::{NodePatch, StateError, World};
use modelarts_operator::wire::Node;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How many requests `recent` keeps.
pub const RECENT_CAPACITY: usize = 200;

/// One logged ModelArts API request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    /// HTTP method.
    pub method: String,
    /// Path as received.
    pub path: String,
    /// Raw query as received.
    pub query: String,
    /// Answered status.
    pub status: u16,
    /// The `X-Request-Id` sent back.
    pub request_id: String,
    /// When the request arrived: milliseconds since the simulator started (monotonic), so
    /// tests can measure the spacing of a client's retries.
    #[serde(default)]
    pub at_ms: u64,
}

/// Request statistics, as `GET /_sim/stats` returns them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Node-list requests (ListNodePoolNodes and ListPoolNodes).
    pub requests: u64,
    /// All ModelArts API requests, including unknown routes.
    pub all_requests: u64,
    /// Node-list requests by answered status.
    pub by_status: BTreeMap<String, u64>,
    /// Requests refused with 401.
    pub auth_failures: u64,
    /// The `limit` value of the last node-list request, as sent.
    pub last_limit: Option<String>,
    /// The last ModelArts API requests, oldest first (at most [`RECENT_CAPACITY`]).
    pub recent: Vec<RequestRecord>,
}

struct Inner {
    world: World,
    auth: Authenticator,
    faults: FaultSet,
    stats: Stats,
}

/// Everything the running simulator serves and counts; shared by handlers and tests.
pub struct SimState {
    inner: Mutex<Inner>,
    auth_enabled: AtomicBool,
    close_connections: AtomicBool,
    started: Instant,
    identity: Mutex<crate::identity::IdentityState>,
}

impl std::fmt::Debug for SimState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimState")
            .field("auth_enabled", &self.auth_enabled())
            .finish_non_exhaustive()
    }
}

impl SimState {
    /// Whether every answer now carries `Connection: close`, so clients reconnect and
    /// see a certificate swapped in since their connection was opened.
    pub fn close_connections(&self) -> bool {
        self.close_connections.load(Ordering::Relaxed)
    }

    /// Makes every later answer close its connection (see [`Self::close_connections`]).
    pub fn set_close_connections(&self, on: bool) {
        self.close_connections.store(on, Ordering::Relaxed);
    }

    pub(crate) fn new(world: World, auth: Authenticator, faults: Vec<Fault>, auth_enabled: bool) -> Self {
        let mut set = FaultSet::default();
        set.replace(faults);
        let inner = Inner {
            world,
            auth,
            faults: set,
            stats: Stats::default(),
        };
        SimState {
            inner: Mutex::new(inner),
            auth_enabled: AtomicBool::new(auth_enabled),
            close_connections: AtomicBool::new(false),
            started: Instant::now(),
            identity: Mutex::default(),
        }
    }

    /// The identity endpoints' configuration and counts (see [`crate::identity`]).
    pub fn identity(&self) -> &Mutex<crate::identity::IdentityState> {
        &self.identity
    }

    /// Time since the simulator started; the clock of [`RequestRecord::at_ms`].
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking handler cannot leave the data half-updated in a way that matters here.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` with read access to the served data.
    pub fn with_world<R>(&self, f: impl FnOnce(&World) -> R) -> R {
        f(&self.lock().world)
    }

    /// The nodes of a node pool, in list order.
    pub fn nodes(&self, project: &str, pool: &str, nodepool: &str) -> Result<Vec<Node>, StateError> {
        self.with_world(|w| w.node_pool(project, pool, nodepool).map(|np| np.nodes.clone()))
    }

    /// Merges phase/resources/labels into a node; returns it as now served.
    pub fn patch_node(
        &self,
        at: (&str, &str, &str),
        node: &str,
        patch: NodePatch,
    ) -> Result<Node, StateError> {
        self.lock().world.patch_node(at, node, patch)
    }

    /// Adds or replaces a node; true if it was added.
    pub fn put_node(&self, at: (&str, &str, &str), node: Node) -> Result<bool, StateError> {
        self.lock().world.put_node(at, node)
    }

    /// Deletes a node; returns it.
    pub fn delete_node(&self, at: (&str, &str, &str), node: &str) -> Result<Node, StateError> {
        self.lock().world.delete_node(at, node)
    }

    /// Adds or replaces a node pool (generators run now), creating project and pool.
    pub fn put_node_pool(&self, project: &str, pool: &str, spec: NodePoolSpec) -> Result<(), StateError> {
        self.lock().world.put_node_pool(project, pool, spec)
    }

    /// Sets a node pool's own view (desired count, failures, shape), keeping its nodes.
    pub fn set_scaling(
        &self,
        project: &str,
        pool: &str,
        nodepool: &str,
        scaling: ScalingSpec,
    ) -> Result<(), StateError> {
        self.lock().world.set_scaling((project, pool, nodepool), scaling)
    }

    /// Deletes a node pool.
    pub fn delete_node_pool(&self, project: &str, pool: &str, nodepool: &str) -> Result<(), StateError> {
        self.lock().world.delete_node_pool(project, pool, nodepool)
    }

    /// Replaces the active faults.
    pub fn set_faults(&self, faults: Vec<Fault>) {
        self.lock().faults.replace(faults);
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.set_faults(Vec::new());
    }

    /// The active faults, `times` showing what is left.
    pub fn faults(&self) -> Vec<Fault> {
        self.lock().faults.list()
    }

    pub(crate) fn fire_faults(&self, ctx: FaultContext) -> Fired {
        self.lock().faults.fire(ctx)
    }

    /// Adds or replaces an AK/SK credential (its lockout is cleared).
    pub fn upsert_credential(&self, cred: CredentialSpec) {
        self.lock().auth.upsert_credential(cred);
    }

    /// Accepts one more IAM token.
    pub fn add_token(&self, token: &str) {
        self.lock().auth.add_token(SecretString::from(token.to_string()));
    }

    /// Removes the credential with this AK, or else this token; false if neither existed.
    pub fn remove_credential(&self, ak_or_token: &str) -> bool {
        self.lock().auth.remove(ak_or_token)
    }

    /// Forgets all AK failure counts and locks.
    pub fn clear_lockouts(&self) {
        self.lock().auth.clear_lockouts();
    }

    /// Whether requests must authenticate.
    pub fn auth_enabled(&self) -> bool {
        self.auth_enabled.load(Ordering::Relaxed)
    }

    /// Turns authentication on or off at runtime.
    pub fn set_auth_enabled(&self, on: bool) {
        self.auth_enabled.store(on, Ordering::Relaxed);
    }

    pub(crate) fn authenticate(&self, req: &AuthRequest<'_>) -> Result<Identity, AuthFailure> {
        self.lock().auth.check(req, jiff::Timestamp::now())
    }

    /// A copy of the statistics.
    pub fn stats(&self) -> Stats {
        self.lock().stats.clone()
    }

    /// Zeroes the statistics.
    pub fn reset_stats(&self) {
        self.lock().stats = Stats::default();
    }

    pub(crate) fn record(&self, rec: RequestRecord, node_list: bool, limit: Option<String>) {
        let mut inner = self.lock();
        let s = &mut inner.stats;
        s.all_requests += 1;
        if rec.status == 401 {
            s.auth_failures += 1;
        }
        if node_list {
            s.requests += 1;
            *s.by_status.entry(rec.status.to_string()).or_insert(0) += 1;
            s.last_limit = limit;
        }
        if s.recent.len() >= RECENT_CAPACITY {
            s.recent.remove(0);
        }
        s.recent.push(rec);
    }
}
