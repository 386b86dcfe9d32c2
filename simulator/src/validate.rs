//! Validation of simulator data: ModelArts naming rules, uniqueness, generator sizes.

use crate::data::{NodePoolSpec, SimData};
use modelarts_operator::error::{Error, Result};

impl SimData {
    /// Checks names, uniqueness and generator sizes; errors name the field and value.
    pub fn validate(&self) -> Result<()> {
        for (ci, c) in self.credentials.iter().enumerate() {
            if c.access_key.trim().is_empty() {
                return Err(Error::invalid(
                    format!("credentials[{ci}].accessKey"),
                    "",
                    "must not be empty",
                ));
            }
        }
        for (pi, p) in self.projects.iter().enumerate() {
            let field = format!("projects[{pi}].id");
            if p.id.is_empty()
                || !p
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(Error::invalid(field, &p.id, "must be non-empty [A-Za-z0-9_-]"));
            }
            if self.projects.iter().filter(|q| q.id == p.id).count() > 1 {
                return Err(Error::invalid(field, &p.id, "duplicate project"));
            }
            for (li, pool) in p.pools.iter().enumerate() {
                let field = format!("projects[{pi}].pools[{li}].name");
                if let Some(reason) = pool_name_problem(&pool.name) {
                    return Err(Error::invalid(field, &pool.name, reason));
                }
                if p.pools.iter().filter(|q| q.name == pool.name).count() > 1 {
                    return Err(Error::invalid(field, &pool.name, "duplicate pool"));
                }
                for (ni, np) in pool.node_pools.iter().enumerate() {
                    validate_node_pool(np, &format!("projects[{pi}].pools[{li}].nodePools[{ni}]"))?;
                    if pool.node_pools.iter().filter(|q| q.name == np.name).count() > 1 {
                        let f = format!("projects[{pi}].pools[{li}].nodePools[{ni}].name");
                        return Err(Error::invalid(f, &np.name, "duplicate node pool"));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Most nodes one generator may create; keeps a typo from exhausting memory.
pub const MAX_GENERATED: usize = 1_000_000;

fn validate_node_pool(np: &NodePoolSpec, at: &str) -> Result<()> {
    if let Some(reason) = nodepool_name_problem(&np.name) {
        return Err(Error::invalid(format!("{at}.name"), &np.name, reason));
    }
    if let Some(g) = &np.generate {
        if g.count > MAX_GENERATED {
            let reason = format!("at most {MAX_GENERATED}");
            return Err(Error::invalid(
                format!("{at}.generate.count"),
                g.count.to_string(),
                reason,
            ));
        }
        let special: usize = g.phases.values().sum();
        if special > g.count {
            let reason = format!("phases add up to {special}, more than count {}", g.count);
            return Err(Error::invalid(
                format!("{at}.generate.phases"),
                format!("{:?}", g.phases),
                reason,
            ));
        }
        if g.azs.is_empty() {
            return Err(Error::invalid(
                format!("{at}.generate.azs"),
                "[]",
                "needs at least one zone",
            ));
        }
        if g.creation_timestamp.parse::<jiff::Timestamp>().is_err() {
            let f = format!("{at}.generate.creationTimestamp");
            return Err(Error::invalid(f, &g.creation_timestamp, "not an RFC 3339 time"));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, n) in np.nodes.iter().enumerate() {
        if n.metadata.name.is_empty() || !seen.insert(n.metadata.name.as_str()) {
            let reason = "must be non-empty and unique in the node pool";
            return Err(Error::invalid(
                format!("{at}.nodes[{i}].metadata.name"),
                &n.metadata.name,
                reason,
            ));
        }
    }
    Ok(())
}

/// Why `name` is not a valid pool ID, if it is not.
pub fn pool_name_problem(name: &str) -> Option<&'static str> {
    if !(36..=63).contains(&name.len()) {
        return Some("pool IDs are 36-63 characters");
    }
    dns_label_problem(name)
}

/// Why `name` is not a valid node-pool name, if it is not.
pub fn nodepool_name_problem(name: &str) -> Option<&'static str> {
    if !(2..=50).contains(&name.len()) {
        return Some("node-pool names are 2-50 characters");
    }
    dns_label_problem(name)
}

fn dns_label_problem(name: &str) -> Option<&'static str> {
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        Some("only lowercase letters, digits and '-' are allowed")
    } else if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        Some("must start with a lowercase letter")
    } else if name.ends_with('-') {
        Some("must not end with '-'")
    } else {
        None
    }
}
