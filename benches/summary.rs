//! Benchmark (not a test): what a sync of a 10,000-node pool spends on the network path versus on
//! summarizing, and how much memory the page-by-page summary saves.
//!
//!     cargo bench --bench summary            # release profile; prints one table
//!     BENCH_NODES=50000 BENCH_RUNS=9 cargo bench --bench summary
//!
//! Everything runs in this process: the simulator serves the pool on 127.0.0.1 with AK/SK
//! verification on, and the real `ModelArtsClient` lists it (page size 500, signing every page).
//! Client and server share the machine, so "fetch" includes the server's own work of rendering
//! the pages; a remote ModelArts adds network latency on top, which only widens the gap.
//!
//! No benchmark framework: `std::time::Instant`, a few warm-up runs, then the median of N runs.
//! Memory is measured with a counting global allocator (current and peak live bytes), which
//! costs every allocation two atomic operations in every stage alike.

use modelarts_operator::client::{ClientOptions, ModelArtsClient, NodePoolRef};
use modelarts_operator::credentials::Credentials;
use modelarts_operator::fetch::fetch_summary;
use modelarts_operator::summary::{DEFAULT_MAX_NODES, PoolSummary, Summarizer};
use modelarts_operator::wire::NodeList;
use modelarts_simulator::{
    DEMO_ACCESS_KEY, DEMO_POOL, DEMO_PROJECT_ID, DEMO_SECRET_KEY, GenerateSpec, NodePoolSpec, SimData,
    SimOptions, Simulator,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const PAGE_SIZE: u32 = 500;
const NODEPOOL: &str = "bench";

// --- a counting allocator: live bytes now and the highest value since the last reset ---

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to `System`; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f` and returns its result with the peak of live bytes above the level at the start.
fn peak_extra<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = f();
    (out, PEAK.load(Ordering::Relaxed).saturating_sub(base))
}

// --- timing ---

struct Timing {
    median: Duration,
    min: Duration,
    max: Duration,
}

/// `warmup` discarded runs, then `runs` timed ones.
fn measure(warmup: usize, runs: usize, mut f: impl FnMut()) -> Timing {
    for _ in 0..warmup {
        f();
    }
    let mut t: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    t.sort();
    Timing {
        median: t[t.len() / 2],
        min: t[0],
        max: t[t.len() - 1],
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a positive integer")),
        Err(_) => default,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn mib(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// A GPU node pool shaped like a real one: several AZs, a few non-`Available` nodes (so the
/// summary's capped node lists do real work), capacity and available resources on every node.
fn bench_data(nodes: usize) -> SimData {
    let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let spec = GenerateSpec {
        name_prefix: format!("{NODEPOOL}-node-"),
        flavor: "modelarts.bm.gpu.a100.8".into(),
        azs: vec!["cn-north-4a".into(), "cn-north-4b".into(), "cn-north-4c".into()],
        resources: map(&[("cpu", "190"), ("memory", "1900Gi"), ("nvidia.com/gpu", "8")]),
        available_resources: map(&[("cpu", "62500m"), ("memory", "700Gi"), ("nvidia.com/gpu", "3")]),
        phases: BTreeMap::from([
            ("Abnormal".to_string(), nodes / 100),
            ("Creating".to_string(), nodes / 200),
            ("Checking".to_string(), nodes / 1000),
        ]),
        labels: map(&[("os.modelarts.node/cluster", "bench")]),
        ..GenerateSpec::new(nodes)
    };
    let mut data = SimData::embedded_default();
    data.upsert_node_pool(
        DEMO_PROJECT_ID,
        DEMO_POOL,
        NodePoolSpec {
            name: NODEPOOL.into(),
            generate: Some(spec),
            ..Default::default()
        },
    );
    data
}

/// The raw bytes of every page, as the client would receive them.
async fn raw_pages(http: &reqwest::Client, endpoint: &str, pool: &NodePoolRef) -> Vec<Vec<u8>> {
    let mut pages = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut req = http
            .get(format!("{endpoint}{}", pool.nodes_path()))
            .query(&[("limit", PAGE_SIZE.to_string())]);
        if let Some(t) = &token {
            req = req.query(&[("continue", t)]);
        }
        let resp = req.send().await.expect("GET page");
        assert!(resp.status().is_success(), "page status {}", resp.status());
        let body = resp.bytes().await.expect("page body").to_vec();
        let list: NodeList = serde_json::from_slice(&body).expect("page JSON");
        token = list.metadata.next_token().map(str::to_owned);
        pages.push(body);
        if token.is_none() {
            return pages;
        }
    }
}

/// A loopback server that replays pre-rendered pages, keyed by their `continue` token, without
/// checking auth: the same client path as (1) minus the simulator's own per-request work, which
/// is not what a real ModelArts costs the operator.
async fn replay_server(pages: &[Vec<u8>]) -> (String, tokio::task::JoinHandle<()>) {
    use axum::extract::RawQuery;
    use axum::http::header::CONTENT_TYPE;
    let mut by_token: HashMap<String, usize> = HashMap::new();
    for (i, b) in pages.iter().enumerate() {
        let list: NodeList = serde_json::from_slice(b).expect("page JSON");
        if let Some(t) = list.metadata.next_token() {
            by_token.insert(t.to_string(), i + 1);
        }
    }
    let pages: Arc<Vec<Vec<u8>>> = Arc::new(pages.to_vec());
    let by_token = Arc::new(by_token);
    let app = axum::Router::new().fallback(move |RawQuery(q): RawQuery| {
        let (pages, by_token) = (pages.clone(), by_token.clone());
        async move {
            let token = url::form_urlencoded::parse(q.unwrap_or_default().as_bytes())
                .find(|(k, _)| k == "continue")
                .map(|(_, v)| v.into_owned());
            let i = token.map_or(0, |t| by_token[&t]);
            ([(CONTENT_TYPE, "application/json")], pages[i].clone())
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("replay server");
    });
    (url, task)
}

fn summarize_pages(pages: &[NodeList]) -> PoolSummary {
    let mut s = Summarizer::new(DEFAULT_MAX_NODES);
    for p in pages {
        s.add_page(&p.items);
    }
    s.finish()
}

fn main() {
    // `cargo bench` passes `--bench` (and a filter, if given); this harness takes no arguments.
    let nodes = env_usize("BENCH_NODES", 10_000);
    let runs = env_usize("BENCH_RUNS", 15).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");

    let sim = rt
        .block_on(Simulator::start(bench_data(nodes), SimOptions::default()))
        .expect("simulator starts");
    let endpoint = url::Url::parse(&sim.endpoint()).expect("simulator URL");
    let creds = Credentials::aksk(DEMO_ACCESS_KEY, DEMO_SECRET_KEY, None).expect("demo credentials");
    let client = ModelArtsClient::new(ClientOptions::default()).expect("client");
    let pool = NodePoolRef {
        project_id: DEMO_PROJECT_ID.into(),
        pool_name: DEMO_POOL.into(),
        nodepool_name: NODEPOOL.into(),
    };

    // Pre-fetched bytes for the parse-only stage. Auth is switched off just for this capture so a
    // plain reqwest GET suffices; the bytes are the same ones a signed request gets.
    sim.state().set_auth_enabled(false);
    let raw = rt.block_on(raw_pages(&reqwest::Client::new(), sim.endpoint().as_str(), &pool));
    sim.state().set_auth_enabled(true);
    let raw_bytes: usize = raw.iter().map(Vec::len).sum();
    let parse_all = || -> Vec<NodeList> {
        raw.iter()
            .map(|b| serde_json::from_slice(b).expect("page JSON"))
            .collect()
    };
    let parsed = parse_all();
    let served: usize = parsed.iter().map(|p| p.items.len()).sum();
    assert_eq!(served, nodes, "the simulator served every node");

    let fetch_once = || {
        let mut got = 0usize;
        let stats = rt
            .block_on(client.list_nodes(&endpoint, &creds, &pool, PAGE_SIZE, |_, page| {
                got += black_box(page).len();
            }))
            .expect("list_nodes");
        assert_eq!((got, stats.retries), (nodes, 0));
    };
    let sync_once = || {
        rt.block_on(fetch_summary(
            &client,
            &endpoint,
            &creds,
            &pool,
            PAGE_SIZE,
            DEFAULT_MAX_NODES,
            |_| {},
        ))
        .expect("fetch_summary")
    };

    let (replay_url, replay_task) = rt.block_on(replay_server(&raw));
    let replay = url::Url::parse(&replay_url).expect("replay URL");
    let replay_once = || {
        let mut got = 0usize;
        rt.block_on(client.list_nodes(&replay, &creds, &pool, PAGE_SIZE, |_, page| {
            got += black_box(page).len();
        }))
        .expect("list_nodes (replay)");
        assert_eq!(got, nodes);
    };

    let fetch = measure(2, runs, fetch_once);
    let fetch_replay = measure(2, runs, replay_once);
    let parse = measure(2, runs, || drop(black_box(parse_all())));
    let parse_each = measure(2, runs, || {
        for b in &raw {
            drop(black_box(
                serde_json::from_slice::<NodeList>(b).expect("page JSON"),
            ));
        }
    });
    let summarize = measure(3, runs * 3, || {
        drop(black_box(summarize_pages(black_box(&parsed))))
    });
    let sync = measure(2, runs, || drop(black_box(sync_once())));

    // Memory: what the operator does (parse a page, fold it in, drop it) versus holding the pool.
    let (summary, streaming_peak) = peak_extra(|| {
        let mut s = Summarizer::new(DEFAULT_MAX_NODES);
        for b in &raw {
            let page: NodeList = serde_json::from_slice(b).expect("page JSON");
            s.add_page(&page.items);
        }
        s.finish()
    });
    let (all, all_peak) = peak_extra(parse_all);
    drop(all);
    let (_, sync_peak) = peak_extra(sync_once);
    let summary_json = serde_json::to_vec(&summary).expect("summary JSON").len();
    assert_eq!(
        summary,
        summarize_pages(&parsed),
        "streamed and batch summaries agree"
    );

    let per_node = |d: Duration| format!("{:.2} µs", d.as_secs_f64() * 1e6 / nodes as f64);
    let pages = raw.len();
    println!();
    println!(
        "pool: {nodes} nodes in {pages} pages of {PAGE_SIZE} ({} of JSON, {:.2} KiB/node); median of {runs} runs ({} for summarize), 2-3 warm-up runs",
        mib(raw_bytes),
        raw_bytes as f64 / 1024.0 / nodes as f64,
        runs * 3
    );
    println!();
    println!("| stage | median | min | max | per node |");
    println!("|---|---:|---:|---:|---:|");
    let row = |name: &str, t: &Timing| {
        println!(
            "| {name} | {} | {} | {} | {} |",
            ms(t.median),
            ms(t.min),
            ms(t.max),
            per_node(t.median)
        );
    };
    row(
        "(1) fetch all pages: `list_nodes`, loopback HTTP, AK/SK signed, JSON parsed",
        &fetch,
    );
    row(
        "(1b) the same `list_nodes` against a replay server (pre-rendered pages, no simulator work)",
        &fetch_replay,
    );
    row(
        "(2) JSON-parse the same pages from pre-fetched bytes, keeping all",
        &parse,
    );
    row(
        "(2b) JSON-parse page by page, dropping each (as `list_nodes` does)",
        &parse_each,
    );
    row(
        "(3) summarize: `Summarizer::add_page` over parsed pages + `finish`",
        &summarize,
    );
    row("(1+3) one whole sync: `fetch_summary`", &sync);
    println!();
    let ratio = |a: &Timing| a.median.as_secs_f64() / summarize.median.as_secs_f64();
    println!(
        "fetch / summarize = {:.1}x (simulator), {:.1}x (replay)    parse / summarize = {:.1}x    summarize share of a sync = {:.1}%",
        ratio(&fetch),
        ratio(&fetch_replay),
        ratio(&parse),
        100.0 * summarize.median.as_secs_f64() / sync.median.as_secs_f64()
    );
    println!();
    println!("| memory | peak extra live heap |");
    println!("|---|---:|");
    println!(
        "| parse + summarize page by page, from pre-fetched bytes (the operator's way) | {} |",
        mib(streaming_peak)
    );
    println!("| parse every page and keep them all | {} |", mib(all_peak));
    println!(
        "| one whole sync incl. the in-process simulator rendering pages | {} |",
        mib(sync_peak)
    );
    println!(
        "| the finished summary, as JSON (status.nodes capped at {DEFAULT_MAX_NODES}) | {:.1} KiB |",
        summary_json as f64 / 1024.0
    );
    replay_task.abort();
    rt.block_on(sim.shutdown());
}
