//! `modelarts-operator`: mirrors Huawei Cloud ModelArts Lite node pools into Kubernetes.
//!
//! Data flows one way: a `ModelArtsNodePool` → its credentials → the ModelArts node pages
//! ([`client`]) → a pure [`summary`] → status, events and metrics.

pub mod credentials;
pub mod error;
pub mod model;
pub mod signer;
pub mod simulator;

pub use error::{ApiError, Error, Result};
