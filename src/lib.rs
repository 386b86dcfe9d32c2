//! `modelarts-operator`: mirrors Huawei Cloud ModelArts Lite node pools into Kubernetes.
//!
//! Data flows one way: a `ModelArtsNodePool` → its credentials → the ModelArts node pages
//! ([`client`]) → a pure [`summary`] → status, events and metrics.

pub mod capacity;
pub mod client;
pub mod controller;
pub mod crd;
pub mod credential_cache;
pub mod credentials;
pub mod decide;
pub mod endpoint;
pub mod error;
pub mod fetch;
pub mod footprint;
pub mod health;
pub mod inspect;
pub mod keyless;
pub mod leader;
pub mod memo;
pub mod metrics;
pub mod nodepool;
pub mod onboard;
pub mod quantity;
pub mod reason;
pub mod reconcile;
pub mod signal;
pub mod signer;
pub mod status;
pub mod summary;
pub mod telemetry;
pub mod tls;
pub mod trim;
pub mod wire;
pub mod wire_pool;

pub use error::{ApiError, Error, Result};
