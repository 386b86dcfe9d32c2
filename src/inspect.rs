//! `modelarts-operator inspect`: the operator's job once, for a person at a terminal.

use crate::{
    client::{ClientOptions, ModelArtsClient, NodePoolRef, PageProgress},
    crd::ModelArtsNodePoolStatus,
    credential_cache::Keyless,
    credentials::Credentials,
    decide::Policy,
    endpoint,
    error::{CredentialsProblem, Error, Result},
    fetch::fetch_observed,
    keyless::Source,
    onboard,
    status::{Outcome, next_status},
    summary::{DEFAULT_MAX_NODES, PoolSummary},
    tls::{Roots, Trust},
};
use std::{
    io::{IsTerminal, Write},
    time::Duration,
};

/// Output formats of `inspect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Phase counts, totals and nodes for people.
    Table,
    /// Exactly the status object the operator writes.
    Json,
    /// The same object as YAML.
    Yaml,
}

/// Flags of `modelarts-operator inspect`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("where").required(true).args(["region", "endpoint"])))]
pub struct InspectArgs {
    /// IAM project ID of the region.
    #[arg(long)]
    pub project_id: String,
    /// Resource pool ID (the pool's metadata.name).
    #[arg(long)]
    pub pool: String,
    /// Node pool name; without it, the pool's node pools are listed (ListNodePools).
    #[arg(long)]
    pub nodepool: Option<String>,
    /// With no --nodepool: print a ready-to-apply ModelArtsNodePool for each node pool.
    #[arg(long, conflicts_with = "nodepool")]
    pub manifests: bool,
    /// Namespace of the printed manifests.
    #[arg(long, default_value = "default", requires = "manifests")]
    pub namespace: String,
    /// Secret (keys accessKey, secretKey) the printed manifests name in credentialsSecretRef.
    #[arg(long, requires = "manifests")]
    pub secret: Option<String>,
    /// Region ID, e.g. cn-north-4; the public endpoint is derived from it.
    #[arg(long)]
    pub region: Option<String>,
    /// Resolve --region under this domain (Huawei Cloud Stack) instead of the public one.
    #[arg(long, value_name = "DOMAIN", requires = "region")]
    pub region_domain: Option<String>,
    /// Explicit endpoint, e.g. https://modelarts.cn-north-4.myhuaweicloud.com.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Allow a plain http:// endpoint (local simulator); credentials travel in clear.
    #[arg(long)]
    pub allow_http: bool,
    /// PEM bundle of extra CAs trusted for the endpoint (private CA, TLS-inspecting proxy).
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<std::path::PathBuf>,
    /// Built-in roots trusted besides --ca-file.
    #[arg(long, value_enum, default_value_t = Roots::Public)]
    pub trust_roots: Roots,
    /// Also try the ECS/BMS metadata service for credentials (after the environment, the
    /// profile file and OIDC; before Pod Identity), at this base URL.
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = crate::keyless::DEFAULT_METADATA_ENDPOINT)]
    pub metadata_credentials: Option<String>,
    /// Nodes per page (the `limit` query parameter).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub page_size: u32,
    /// Nodes listed individually at most (non-Available ones are kept first).
    #[arg(long, default_value_t = DEFAULT_MAX_NODES)]
    pub max_nodes: usize,
    /// Timeout of each HTTP request, in seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// The SDKs' chain with their environment variables: AK/SK (or a token) from the environment,
/// else the keyless sources (OIDC, profile file, metadata if asked for, Pod Identity), so
/// `inspect` shows whether the operator's Pod would get credentials. The error lists every
/// source tried and why it failed.
async fn chain_credentials(args: &InspectArgs, client: &ModelArtsClient) -> Result<Credentials> {
    let env_err = match Credentials::from_env() {
        Ok(c) => return Ok(c),
        Err(
            e @ Error::Credentials {
                problem: CredentialsProblem::Missing,
                ..
            },
        ) => e,
        Err(e) => return Err(e),
    };
    let sources = Source::from_lookup(|k| std::env::var(k).ok(), args.metadata_credentials.clone());
    for s in &sources {
        s.check_endpoint(args.allow_http, "--allow-http")?;
    }
    if sources.is_empty() {
        return Err(env_err);
    }
    let keyless = Keyless::new(
        sources,
        client.http(),
        std::sync::Arc::new(crate::metrics::Metrics::default()),
    );
    let (creds, source) = keyless.first().await.map_err(|e| match e {
        Error::Credentials { problem, message } => Error::Credentials {
            problem,
            message: format!("environment: {env_err}; {message}"),
        },
        other => other,
    })?;
    eprintln!("credentials: temporary, from {}", source.kind());
    Ok(creds)
}

/// Runs `inspect`: reads credentials from the environment, lists every page and prints.
pub async fn run(args: InspectArgs) -> Result<()> {
    let url = endpoint::resolve(
        args.region.as_deref(),
        args.endpoint.as_deref(),
        ("--region", "--endpoint"),
        args.allow_http,
        args.region_domain
            .as_deref()
            .map(|d| endpoint::validate_domain("--region-domain", d))
            .transpose()?
            .as_deref(),
    )?;
    let client = ModelArtsClient::new(ClientOptions {
        request_timeout: Duration::from_secs(args.timeout),
        trust: Trust {
            ca_file: args.ca_file.clone(),
            roots: args.trust_roots,
            ca_flag: "--ca-file",
        },
        ..Default::default()
    })?;
    let creds = chain_credentials(&args, &client).await?;
    let Some(nodepool) = args.nodepool.clone() else {
        let pools = client
            .list_node_pools(&url, &creds, &args.project_id, &args.pool)
            .await?;
        let out = if args.manifests {
            onboard::manifests(&pools, &onboard::Target::from_inspect(&args))?
        } else {
            onboard::table(&pools)
        };
        return print(&out);
    };
    let pool = NodePoolRef {
        project_id: args.project_id.clone(),
        pool_name: args.pool.clone(),
        nodepool_name: nodepool,
    };
    let tty = std::io::stderr().is_terminal();
    let mut progress = |p: PageProgress| report_progress(p, tty);
    let (observed, stats) = fetch_observed(
        &client,
        &url,
        &creds,
        &pool,
        args.page_size,
        args.max_nodes,
        &mut progress,
    )
    .await?;
    if stats.pages > 1 && tty {
        eprintln!();
    }
    let status = next_status(
        None,
        None,
        &Outcome::Synced(Box::new(observed)),
        jiff::Timestamp::now(),
        &Policy {
            heartbeat: Duration::ZERO,
            max_backoff: Duration::ZERO,
            // A one-off look has no history: any shortfall is reported as it is now.
            desired_grace: Duration::ZERO,
        },
    );
    let out = match args.output {
        OutputFormat::Json => {
            serde_json::to_string_pretty(&status).map_err(|e| Error::InvalidResponse(e.to_string()))? + "\n"
        }
        OutputFormat::Yaml => {
            serde_saphyr::to_string(&status).map_err(|e| Error::InvalidResponse(e.to_string()))?
        }
        OutputFormat::Table => table(&args, &status),
    };
    print(&out)
}

fn print(out: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .and_then(|_| stdout.flush())
        .map_err(|e| Error::Io {
            context: "writing output".into(),
            source: e,
        })
}

/// Progress only once paging starts, so a one-page pool prints nothing extra.
fn report_progress(p: PageProgress, tty: bool) {
    if p.page < 2 {
        return;
    }
    let remaining = p
        .remaining
        .map(|r| format!(", {r} remaining"))
        .unwrap_or_default();
    if tty {
        eprint!("\rfetched page {} ({} nodes{remaining})   ", p.page, p.nodes);
    } else if p.page.is_multiple_of(10) {
        eprintln!("fetched page {} ({} nodes{remaining})", p.page, p.nodes);
    }
}

/// The human view: where, phase counts, resources, conditions and nodes.
pub fn table(args: &InspectArgs, status: &ModelArtsNodePoolStatus) -> String {
    let empty = PoolSummary::default();
    let s = status.pool.as_ref().unwrap_or(&empty);
    let mut out = String::new();
    let p = &s.phases;
    out += &format!(
        "Pool:      {}\nNode pool: {}\nProject:   {}\n",
        args.pool,
        args.nodepool.as_deref().unwrap_or("-"),
        args.project_id
    );
    if let Some(np) = &status.node_pool {
        let opt = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
        out += &format!(
            "Desired:   {} (max {}, flavor {}; pool reports creating {}, creation failed {})\n",
            opt(np.desired),
            opt(np.max_count),
            np.flavor.as_deref().unwrap_or("-"),
            opt(np.creating),
            opt(np.creation_failed)
        );
    }
    out += &format!(
        "Nodes:     {} (available {}, creating {}, deleting {}, abnormal {}, checking {}, other {})\n",
        s.node_count, p.available, p.creating, p.deleting, p.abnormal, p.checking, p.other
    );
    for c in &status.conditions {
        out += &format!(
            "{:<10} {} ({}): {}\n",
            format!("{}:", c.type_),
            c.status,
            c.reason,
            c.message
        );
    }
    out += "\nRESOURCE                 AVAILABLE        TOTAL\n";
    let mut keys: Vec<&String> = s.capacity.keys().chain(s.available.keys()).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        let a = s.available.get(k).map(String::as_str).unwrap_or("0");
        let t = s.capacity.get(k).map(String::as_str).unwrap_or("0");
        out += &format!("{k:<24} {a:<16} {t}\n");
    }
    if !s.invalid_quantities.is_empty() {
        out += "\nUnparsable values (left out of the sums):\n";
        for q in &s.invalid_quantities {
            out += &format!("  {q}\n");
        }
    }
    out += &format!(
        "\n{:<32} {:<10} {:<14} {:<16} {:<28} {}\n",
        "NODE", "PHASE", "AZ", "PRIVATE-IP", "FLAVOR", "CPU/MEMORY"
    );
    for n in &s.nodes {
        let dash = "-".to_string();
        let res = format!(
            "{}/{}",
            n.resources.get("cpu").unwrap_or(&dash),
            n.resources.get("memory").unwrap_or(&dash)
        );
        out += &format!(
            "{:<32} {:<10} {:<14} {:<16} {:<28} {}\n",
            n.name,
            n.phase,
            n.az.as_deref().unwrap_or("-"),
            n.private_ip.as_deref().unwrap_or("-"),
            n.flavor.as_deref().unwrap_or("-"),
            res
        );
    }
    if s.omitted_nodes > 0 {
        out += &format!(
            "... {} more nodes not listed (raise --max-nodes)\n",
            s.omitted_nodes
        );
    }
    out
}
