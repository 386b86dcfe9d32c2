//! Fault injection: what to break, for how many requests, from which page on.
//!
//! Faults fall into four independent classes: delay (`latency`), reply (`throttle`,
//! `serverError`, `malformedJson`, `truncatedJson`) and the two list modifiers
//! (`repeatContinue`, `ignoreLimit`). Per request, the first active matching fault of each
//! class fires and uses up one of its `times`, so `[throttle×2, serverError×1]` gives
//! 429, 429, 500 rather than both at once.

use modelarts_operator::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What a fault does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// Sleep before answering.
    Latency {
        /// Milliseconds.
        ms: u64,
    },
    /// 429 APIGW.0308, with `Retry-After` when given.
    Throttle {
        /// Seconds for `Retry-After`.
        retry_after: Option<u64>,
    },
    /// 500 ModelArts.0010, 502/504 APIGW.0201 or 503 APIGW.0613.
    ServerError {
        /// 500, 502, 503 or 504.
        status: u16,
        /// Seconds for `Retry-After`.
        retry_after: Option<u64>,
    },
    /// 200 with a body that is not JSON.
    MalformedJson,
    /// 200 with the real body cut in half.
    TruncatedJson,
    /// Every page returns the `continue` token it was asked with.
    RepeatContinue,
    /// One page with every node, whatever `limit` says.
    IgnoreLimit,
}

/// One fault and when it applies. JSON: `{"type":"throttle","retryAfter":2,"times":1,"fromPage":2}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "FaultWire", into = "FaultWire")]
pub struct Fault {
    /// What to do.
    pub kind: FaultKind,
    /// Fire on the next N matching requests only; `None` = until cleared.
    pub times: Option<u32>,
    /// Only node-list pages with this 1-based number or later (other routes are page 1).
    pub from_page: Option<u32>,
    /// Also apply to the pool and node-pool routes, not only node lists.
    pub all_routes: bool,
}

impl Fault {
    /// A fault that persists until cleared, on node-list requests from page 1.
    pub fn new(kind: FaultKind) -> Self {
        Fault {
            kind,
            times: None,
            from_page: None,
            all_routes: false,
        }
    }

    /// Limits the fault to the next `n` matching requests.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    /// Applies the fault only from page `k` (1-based) onward.
    pub fn from_page(mut self, k: u32) -> Self {
        self.from_page = Some(k);
        self
    }

    /// Parses the `--fault TYPE[:key=value,...]` flag, e.g. `throttle:retryAfter=2,times=3`.
    pub fn parse_flag(flag: &str) -> Result<Self> {
        let (ty, rest) = flag.split_once(':').unwrap_or((flag, ""));
        let mut obj = serde_json::Map::new();
        obj.insert("type".into(), ty.trim().into());
        for kv in rest.split(',').filter(|s| !s.trim().is_empty()) {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| Error::invalid("--fault", flag, format!("{kv:?} is not key=value")))?;
            let v = v.trim();
            let value = match (v.parse::<u64>(), v) {
                (Ok(n), _) => n.into(),
                (_, "true") => true.into(),
                (_, "false") => false.into(),
                _ => v.into(),
            };
            obj.insert(k.trim().into(), value);
        }
        serde_json::from_value(obj.into()).map_err(|e| Error::invalid("--fault", flag, e.to_string()))
    }

    fn class(&self) -> usize {
        match self.kind {
            FaultKind::Latency { .. } => 0,
            FaultKind::Throttle { .. }
            | FaultKind::ServerError { .. }
            | FaultKind::MalformedJson
            | FaultKind::TruncatedJson => 1,
            FaultKind::RepeatContinue => 2,
            FaultKind::IgnoreLimit => 3,
        }
    }

    fn matches(&self, ctx: FaultContext) -> bool {
        (ctx.node_list || self.all_routes) && self.from_page.is_none_or(|k| ctx.page >= k)
    }
}

/// The flat wire form, so typos are refused and errors name the missing field.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FaultWire {
    #[serde(rename = "type")]
    ty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry_after: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    times: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    from_page: Option<u32>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    all_routes: bool,
}

impl TryFrom<FaultWire> for Fault {
    type Error = String;

    fn try_from(w: FaultWire) -> std::result::Result<Self, String> {
        let kind = match w.ty.as_str() {
            "latency" => FaultKind::Latency {
                ms: w.ms.ok_or("latency needs \"ms\"")?,
            },
            "throttle" => FaultKind::Throttle {
                retry_after: w.retry_after,
            },
            "serverError" => match w.status.unwrap_or(500) {
                s @ (500 | 502 | 503 | 504) => FaultKind::ServerError {
                    status: s,
                    retry_after: w.retry_after,
                },
                other => {
                    return Err(format!(
                        "serverError status {other} is not one of 500, 502, 503, 504"
                    ));
                }
            },
            "malformedJson" => FaultKind::MalformedJson,
            "truncatedJson" => FaultKind::TruncatedJson,
            "repeatContinue" => FaultKind::RepeatContinue,
            "ignoreLimit" => FaultKind::IgnoreLimit,
            other => {
                return Err(format!(
                    "unknown fault type {other:?}; expected latency, throttle, serverError, malformedJson, \
                     truncatedJson, repeatContinue or ignoreLimit"
                ));
            }
        };
        if w.from_page == Some(0) {
            return Err("fromPage is 1-based; 0 is not a page".into());
        }
        Ok(Fault {
            kind,
            times: w.times,
            from_page: w.from_page,
            all_routes: w.all_routes,
        })
    }
}

impl From<Fault> for FaultWire {
    fn from(f: Fault) -> Self {
        let (ty, ms, status, retry_after) = match f.kind {
            FaultKind::Latency { ms } => ("latency", Some(ms), None, None),
            FaultKind::Throttle { retry_after } => ("throttle", None, None, retry_after),
            FaultKind::ServerError { status, retry_after } => {
                ("serverError", None, Some(status), retry_after)
            }
            FaultKind::MalformedJson => ("malformedJson", None, None, None),
            FaultKind::TruncatedJson => ("truncatedJson", None, None, None),
            FaultKind::RepeatContinue => ("repeatContinue", None, None, None),
            FaultKind::IgnoreLimit => ("ignoreLimit", None, None, None),
        };
        FaultWire {
            ty: ty.into(),
            ms,
            status,
            retry_after,
            times: f.times,
            from_page: f.from_page,
            all_routes: f.all_routes,
        }
    }
}

/// The body of `PUT /_sim/faults`: `{"faults":[...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// The faults, in priority order.
    #[serde(default)]
    pub faults: Vec<Fault>,
}

/// The request a fault decision is made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultContext {
    /// A ListNodePoolNodes / ListPoolNodes request.
    pub node_list: bool,
    /// 1-based page number (1 without a `continue` token).
    pub page: u32,
}

/// What fired for one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fired {
    /// Sleep this long first.
    pub delay: Duration,
    /// Replace or corrupt the answer.
    pub reply: Option<FaultKind>,
    /// Return the request's own `continue` token.
    pub repeat_continue: bool,
    /// Ignore `limit` and `continue`: everything in one page.
    pub ignore_limit: bool,
}

/// The active faults; `times` counts down and exhausted faults disappear.
#[derive(Debug, Clone, Default)]
pub struct FaultSet {
    active: Vec<Fault>,
}

impl FaultSet {
    /// Replaces all faults.
    pub fn replace(&mut self, faults: Vec<Fault>) {
        self.active = faults.into_iter().filter(|f| f.times != Some(0)).collect();
    }

    /// The active faults, `times` showing what is left.
    pub fn list(&self) -> Vec<Fault> {
        self.active.clone()
    }

    /// Decides what fires for one request and uses up one `times` of each fired fault.
    pub fn fire(&mut self, ctx: FaultContext) -> Fired {
        let mut fired = Fired::default();
        let mut taken = [false; 4];
        for f in self.active.iter_mut() {
            let class = f.class();
            if taken[class] || !f.matches(ctx) {
                continue;
            }
            taken[class] = true;
            if let Some(n) = f.times.as_mut() {
                *n = n.saturating_sub(1);
            }
            match &f.kind {
                FaultKind::Latency { ms } => fired.delay = Duration::from_millis(*ms),
                FaultKind::RepeatContinue => fired.repeat_continue = true,
                FaultKind::IgnoreLimit => fired.ignore_limit = true,
                reply => fired.reply = Some(reply.clone()),
            }
        }
        self.active.retain(|f| f.times != Some(0));
        fired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE1: FaultContext = FaultContext {
        node_list: true,
        page: 1,
    };
    const PAGE2: FaultContext = FaultContext {
        node_list: true,
        page: 2,
    };

    #[test]
    fn reply_faults_fire_in_order_and_count_down() {
        let mut set = FaultSet::default();
        set.replace(vec![
            Fault::new(FaultKind::Throttle { retry_after: Some(1) }).times(2),
            Fault::new(FaultKind::ServerError {
                status: 503,
                retry_after: None,
            })
            .times(1),
            Fault::new(FaultKind::Latency { ms: 5 }).times(1),
        ]);
        let a = set.fire(PAGE1);
        assert_eq!(a.reply, Some(FaultKind::Throttle { retry_after: Some(1) }));
        assert_eq!(a.delay, Duration::from_millis(5));
        assert_eq!(
            set.fire(PAGE1).reply,
            Some(FaultKind::Throttle { retry_after: Some(1) })
        );
        let c = set.fire(PAGE1);
        assert_eq!(
            c.reply,
            Some(FaultKind::ServerError {
                status: 503,
                retry_after: None
            })
        );
        assert_eq!(c.delay, Duration::ZERO);
        assert_eq!(set.fire(PAGE1), Fired::default());
        assert!(set.list().is_empty());
    }

    #[test]
    fn from_page_waits_and_persistent_faults_stay() {
        let mut set = FaultSet::default();
        set.replace(vec![
            Fault::new(FaultKind::TruncatedJson).from_page(2),
            Fault::new(FaultKind::IgnoreLimit),
        ]);
        let p1 = set.fire(PAGE1);
        assert_eq!((p1.reply, p1.ignore_limit), (None, true));
        for _ in 0..3 {
            assert_eq!(set.fire(PAGE2).reply, Some(FaultKind::TruncatedJson));
        }
        assert_eq!(set.list().len(), 2);
        assert_eq!(
            set.fire(FaultContext {
                node_list: false,
                page: 1
            }),
            Fired::default(),
            "node lists only"
        );
    }

    #[test]
    fn example_fault_file_parses() {
        let spec: FaultSpec =
            serde_json::from_str(include_str!("../../examples/simulator-faults.json")).unwrap();
        assert_eq!(spec.faults.len(), 4);
        assert_eq!(spec.faults[2].from_page, Some(2));
    }

    #[test]
    fn json_and_flag_forms() {
        let spec: FaultSpec = serde_json::from_str(
            r#"{"faults":[{"type":"serverError","status":502,"times":1,"fromPage":2},{"type":"latency","ms":20}]}"#,
        )
        .unwrap();
        assert_eq!(
            spec.faults[0],
            Fault::new(FaultKind::ServerError {
                status: 502,
                retry_after: None
            })
            .times(1)
            .from_page(2)
        );
        let back: FaultSpec = serde_json::from_value(serde_json::to_value(&spec).unwrap()).unwrap();
        assert_eq!(back, spec);
        assert_eq!(
            Fault::parse_flag("throttle:retryAfter=3,times=2").unwrap(),
            Fault::new(FaultKind::Throttle { retry_after: Some(3) }).times(2)
        );
        let e = Fault::parse_flag("serverError:status=501")
            .unwrap_err()
            .to_string();
        assert!(e.contains("--fault") && e.contains("501"), "{e}");
        assert!(
            Fault::parse_flag("latency")
                .unwrap_err()
                .to_string()
                .contains("ms")
        );
        assert!(
            serde_json::from_str::<Fault>(r#"{"type":"throttle","time":1}"#).is_err(),
            "typo refused"
        );
    }
}
