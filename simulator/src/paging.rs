//! Pagination: `limit` parsing, the opaque `continue` token and page bounds (all pure).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

/// Largest page the simulator serves, as ListPoolNodes documents (500).
pub const MAX_LIMIT: usize = 500;

/// Why a `limit` or `continue` query value was refused (both answer 400 ModelArts.50004000).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PagingError {
    /// `limit` is not a positive integer.
    InvalidLimit,
    /// `continue` was not minted by this simulator.
    InvalidContinue,
}

impl PagingError {
    /// The `error_msg` ModelArts-style.
    pub fn message(self) -> &'static str {
        match self {
            PagingError::InvalidLimit => "Bad request. invalid limit",
            PagingError::InvalidContinue => "Bad request. invalid continue",
        }
    }
}

/// Parses the `limit` query value: absent or empty → [`MAX_LIMIT`], above it → capped.
pub fn parse_limit(raw: Option<&str>) -> Result<usize, PagingError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(MAX_LIMIT),
        Some(s) => match s.parse::<u64>() {
            Ok(0) | Err(_) => Err(PagingError::InvalidLimit),
            Ok(n) => Ok(usize::try_from(n).unwrap_or(MAX_LIMIT).min(MAX_LIMIT)),
        },
    }
}

/// What a `continue` token carries. Encoded as padded base64 of compact JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContinueToken {
    /// Index of the first item of the next page.
    #[serde(rename = "o")]
    pub offset: usize,
    /// 1-based number of the page the token leads to (for `fromPage` faults).
    #[serde(rename = "p")]
    pub page: u32,
    /// Node-pool generation when the token was minted; informational only, since the
    /// simulator keeps offset semantics (a naive backend) when the list changed meanwhile.
    #[serde(rename = "v")]
    pub generation: u64,
}

impl ContinueToken {
    /// Padded standard base64. Spaces are appended to the JSON (still valid JSON) so the
    /// encoding always ends in `==`: clients must then percent-encode `=` as `%3D`.
    pub fn encode(&self) -> String {
        let mut json = serde_json::to_string(self).unwrap_or_default();
        while json.len() % 3 != 1 {
            json.push(' ');
        }
        STANDARD.encode(json)
    }

    /// Decodes a token minted by [`ContinueToken::encode`].
    pub fn decode(token: &str) -> Result<Self, PagingError> {
        let bytes = STANDARD.decode(token).map_err(|_| PagingError::InvalidContinue)?;
        let t: ContinueToken = serde_json::from_slice(&bytes).map_err(|_| PagingError::InvalidContinue)?;
        if t.page < 2 {
            Err(PagingError::InvalidContinue)
        } else {
            Ok(t)
        }
    }
}

/// Which slice of a list a page holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageBounds {
    /// First index (inclusive).
    pub start: usize,
    /// Last index (exclusive).
    pub end: usize,
    /// Offset of the next page, `None` on the last page.
    pub next: Option<usize>,
    /// Items after this page (`remainingItemCount`).
    pub remaining: usize,
}

/// The page of `limit` items starting at `offset` in a list of `total`; an offset past the
/// end (nodes deleted since the token was minted) gives an empty last page.
pub fn page_bounds(total: usize, offset: usize, limit: usize) -> PageBounds {
    let start = offset.min(total);
    let end = start.saturating_add(limit.max(1)).min(total);
    PageBounds {
        start,
        end,
        next: (end < total).then_some(end),
        remaining: total - end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_rules() {
        assert_eq!(parse_limit(None), Ok(500));
        assert_eq!(parse_limit(Some("")), Ok(500));
        assert_eq!(parse_limit(Some("50")), Ok(50));
        assert_eq!(
            parse_limit(Some("100000000000000000000")),
            Err(PagingError::InvalidLimit)
        );
        assert_eq!(parse_limit(Some("9999")), Ok(500));
        for bad in ["0", "-1", "abc", "1.5"] {
            assert_eq!(parse_limit(Some(bad)), Err(PagingError::InvalidLimit), "{bad}");
        }
    }

    #[test]
    fn token_round_trips_and_is_padded() {
        for offset in [1, 50, 500, 2999, 123456] {
            let t = ContinueToken {
                offset,
                page: 2,
                generation: 7,
            };
            let s = t.encode();
            assert!(s.ends_with("=="), "{s}");
            assert_eq!(ContinueToken::decode(&s), Ok(t));
        }
    }

    #[test]
    fn garbled_tokens_are_refused() {
        let good = ContinueToken {
            offset: 10,
            page: 2,
            generation: 0,
        }
        .encode();
        let cut = &good[..good.len() - 3];
        let other_json = STANDARD.encode(r#"{"offset":10}"#);
        for bad in [
            "",
            "!!!",
            cut,
            "eyJ2IjoxfQ==",
            other_json.as_str(),
            good.trim_end_matches('='),
        ] {
            assert_eq!(
                ContinueToken::decode(bad),
                Err(PagingError::InvalidContinue),
                "{bad}"
            );
        }
    }

    #[test]
    fn bounds() {
        assert_eq!(
            page_bounds(3000, 0, 500),
            PageBounds {
                start: 0,
                end: 500,
                next: Some(500),
                remaining: 2500
            }
        );
        assert_eq!(
            page_bounds(3000, 2500, 500),
            PageBounds {
                start: 2500,
                end: 3000,
                next: None,
                remaining: 0
            }
        );
        assert_eq!(
            page_bounds(10, 8, 5),
            PageBounds {
                start: 8,
                end: 10,
                next: None,
                remaining: 0
            }
        );
        assert_eq!(
            page_bounds(10, 50, 5),
            PageBounds {
                start: 10,
                end: 10,
                next: None,
                remaining: 0
            }
        );
        assert_eq!(
            page_bounds(0, 0, 500),
            PageBounds {
                start: 0,
                end: 0,
                next: None,
                remaining: 0
            }
        );
    }
}
