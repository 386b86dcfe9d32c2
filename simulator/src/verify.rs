//! The verifier half of `SDK-HMAC-SHA256`, which only a server needs: parsing the
//! `Authorization` header, re-canonicalizing a query as received, and comparing a
//! signature or token in constant time.
//!
//! The signing half (canonical request, string to sign, signature) is the operator's own
//! [`modelarts_operator::signer`], used here unchanged so client and server cannot drift.

use hmac::{Hmac, Mac};
use modelarts_operator::signer::{ALGORITHM, canonical_query};
use percent_encoding::percent_decode_str;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Re-canonicalizes a raw query string as received by a server (`a=1&b=%3D`).
pub fn canonicalize_raw_query(raw: &str) -> String {
    let pairs: Vec<(String, String)> = raw
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |s: &str| {
                percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (dec(k), dec(v))
        })
        .collect();
    canonical_query(&pairs)
}

/// The fields of a parsed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAuthorization {
    /// The access key ID.
    pub access: String,
    /// Lower-case signed header names, in the order given.
    pub signed_headers: Vec<String>,
    /// The hex signature.
    pub signature: String,
}

/// Parses `SDK-HMAC-SHA256 Access=..., SignedHeaders=..., Signature=...`.
pub fn parse_authorization(value: &str) -> Option<ParsedAuthorization> {
    let rest = value.strip_prefix(ALGORITHM)?.strip_prefix(' ')?;
    let (mut access, mut signed, mut sig) = (None, None, None);
    for field in rest.split(',') {
        let (k, v) = field.trim().split_once('=')?;
        match k {
            "Access" => access = Some(v.to_string()),
            "SignedHeaders" => signed = Some(v.split(';').map(|h| h.to_ascii_lowercase()).collect()),
            "Signature" => sig = Some(v.to_string()),
            _ => return None,
        }
    }
    Some(ParsedAuthorization {
        access: access?,
        signed_headers: signed?,
        signature: sig?,
    })
}

/// Whether `signature` (lower hex, as the SDKs send it) is the HMAC-SHA256 of the string
/// to sign under `secret_key`; compared in constant time by `hmac`'s `verify_slice`.
pub fn signature_matches(secret_key: &str, string_to_sign: &str, signature: &str) -> bool {
    // Only lower hex was ever accepted; keep it that way (hex::decode also takes upper case).
    if !signature.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return false;
    }
    let Ok(sent) = hex::decode(signature) else {
        return false;
    };
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret_key.as_bytes()) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC-SHA256 takes keys of any length"),
    };
    mac.update(string_to_sign.as_bytes());
    mac.verify_slice(&sent).is_ok()
}

/// Constant-time equality of two secrets (tokens), so a verifier leaks no timing
/// beyond their lengths.
pub fn secrets_equal(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use modelarts_operator::signer::{EMPTY_BODY_SHA256, SigningRequest, authorization};

    const MA_PATH: &str = "/v2/0123456789abcdef0123456789abcdef/pools/pool-demo-0001/nodepools/np-a/nodes";
    const MA_HOST: &str = "modelarts.cn-north-4.myhuaweicloud.com";
    const MA_AK: &str = "HPUAEXAMPLEAK0000001";
    const MA_SK: &str = "exampleSecretKey0000000000000000000000000";
    const MA_DATE: &str = "20240102T030405Z";

    fn ma_query() -> String {
        canonical_query(&[("limit", "50"), ("continue", "eyJ2IjoxfQ==")])
    }

    #[test]
    fn server_side_recanonicalization_matches_client() {
        let sent = ma_query();
        assert_eq!(canonicalize_raw_query(&sent), sent);
        assert_eq!(canonicalize_raw_query("limit=50&continue=eyJ2IjoxfQ=="), sent);
    }

    #[test]
    fn parses_its_own_authorization_header() {
        let headers = [("Host", MA_HOST), ("X-Sdk-Date", MA_DATE)];
        let query = ma_query();
        let req = SigningRequest {
            method: "GET",
            path: MA_PATH,
            query: &query,
            headers: &headers,
            body_sha256: EMPTY_BODY_SHA256,
        };
        let parsed = parse_authorization(&authorization(MA_AK, MA_SK, MA_DATE, &req)).unwrap();
        assert_eq!(parsed.access, MA_AK);
        assert_eq!(parsed.signed_headers, vec!["host", "x-sdk-date"]);
        assert!(secrets_equal(
            &parsed.signature,
            "81035b3b130723b26713e4f5b7b6ed6b0348b6ea74e47fb93cf90f18920e373d"
        ));
        assert!(parse_authorization("Basic abc").is_none());
        assert!(parse_authorization("SDK-HMAC-SHA256 Access=a, SignedHeaders=host").is_none());
    }

    #[test]
    fn signature_matches_only_the_exact_lower_hex_signature() {
        let sts = "SDK-HMAC-SHA256\n20240102T030405Z\nabc";
        let good = modelarts_operator::signer::signature(MA_SK, sts);
        assert!(signature_matches(MA_SK, sts, &good));
        assert!(!signature_matches(MA_SK, sts, &good.to_ascii_uppercase()));
        assert!(!signature_matches(MA_SK, sts, &good[..62]));
        assert!(!signature_matches("other", sts, &good));
        assert!(!signature_matches(MA_SK, sts, "zz"));
    }
}
