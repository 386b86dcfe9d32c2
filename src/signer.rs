//! Huawei Cloud `SDK-HMAC-SHA256` request signing, as the official SDKs do it.
//!
//! Pure functions only: the canonical request, the string to sign and the signature are
//! computed from plain strings, so the published vectors are unit tests and the
//! simulator (`modelarts-simulator`) verifies requests with the very same code. The
//! verifier-only half (parsing `Authorization`, re-canonicalizing a received query,
//! constant-time comparison) lives in the simulator, not here.

use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};

/// The algorithm name that starts the `Authorization` header.
pub const ALGORITHM: &str = "SDK-HMAC-SHA256";
/// Lower-hex SHA-256 of an empty body.
pub const EMPTY_BODY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// `X-Sdk-Date` format (`20240102T030405Z`), always UTC.
pub const DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// RFC 3986 unreserved characters stay as they are; everything else is `%XY`.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes `s` byte-wise (UTF-8) keeping only RFC 3986 unreserved characters,
/// with uppercase hex, as the SDKs' `escape` does.
pub fn escape(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

/// The canonical URI: the path decoded, split on `/`, each segment re-escaped, with a
/// trailing `/`, as the official Python SDK does (so an encoded `%2F` counts as a slash).
///
/// The request itself is sent without that extra slash.
pub fn canonical_uri(path: &str) -> String {
    let decoded = percent_decode_str(path).decode_utf8_lossy();
    let mut out = decoded.split('/').map(escape).collect::<Vec<_>>().join("/");
    if !out.ends_with('/') {
        out.push('/');
    }
    out
}

/// The canonical query string from raw (unescaped) pairs: sorted by raw key and then
/// raw value (the official SDKs' order), escaped, `k=v` joined with `&`. The client
/// sends exactly this string.
pub fn canonical_query<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> String {
    let mut raw: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
    raw.sort();
    raw.iter()
        .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The parts of an HTTP request that the signature covers.
#[derive(Debug, Clone, Copy)]
pub struct SigningRequest<'a> {
    /// HTTP method, any case.
    pub method: &'a str,
    /// Path as sent (`/v2/...`), without the query.
    pub path: &'a str,
    /// Canonical query string, as returned by [`canonical_query`].
    pub query: &'a str,
    /// The headers to sign, any case; must include `X-Sdk-Date`.
    pub headers: &'a [(&'a str, &'a str)],
    /// Lower-hex SHA-256 of the body ([`EMPTY_BODY_SHA256`] for none).
    pub body_sha256: &'a str,
}

/// Lower-case, sorted, `;`-joined names of the headers that are signed.
pub fn signed_headers(headers: &[(&str, &str)]) -> String {
    let mut names: Vec<String> = headers
        .iter()
        .map(|(n, _)| n.trim().to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    names.join(";")
}

/// The six-part canonical request (method, URI, query, headers, signed headers, body hash).
pub fn canonical_request(req: &SigningRequest<'_>) -> String {
    let mut lines: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    lines.sort();
    let canonical_headers: String = lines.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method.to_ascii_uppercase(),
        canonical_uri(req.path),
        req.query,
        canonical_headers,
        signed_headers(req.headers),
        req.body_sha256
    )
}

/// Lower-hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// `SDK-HMAC-SHA256\n{date}\n{hex(sha256(canonical_request))}`.
pub fn string_to_sign(sdk_date: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{sdk_date}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// Lower-hex HMAC-SHA256 of the string to sign, keyed with the secret key's bytes.
pub fn signature(secret_key: &str, string_to_sign: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret_key.as_bytes()) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC-SHA256 takes keys of any length"),
    };
    mac.update(string_to_sign.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The `Authorization` header value for a request.
pub fn authorization(access_key: &str, secret_key: &str, sdk_date: &str, req: &SigningRequest<'_>) -> String {
    let cr = canonical_request(req);
    let sig = signature(secret_key, &string_to_sign(sdk_date, &cr));
    format!(
        "{ALGORITHM} Access={access_key}, SignedHeaders={}, Signature={sig}",
        signed_headers(req.headers)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const MA_PATH: &str = "/v2/0123456789abcdef0123456789abcdef/pools/pool-demo-0001/nodepools/np-a/nodes";
    const MA_HOST: &str = "modelarts.cn-north-4.myhuaweicloud.com";
    const MA_AK: &str = "HPUAEXAMPLEAK0000001";
    const MA_SK: &str = "exampleSecretKey0000000000000000000000000";
    const MA_DATE: &str = "20240102T030405Z";
    const PROJECT: &str = "0123456789abcdef0123456789abcdef";

    fn ma_query() -> String {
        canonical_query(&[("limit", "50"), ("continue", "eyJ2IjoxfQ==")])
    }

    #[test]
    fn official_doc_example() {
        let headers = [
            ("Content-Type", "application/json"),
            ("Host", "service.region.example.com"),
            ("X-Sdk-Date", "20191115T033655Z"),
        ];
        let query = canonical_query(&[("limit", "2"), ("marker", "13551d6b-755d-4757-b956-536f674975c0")]);
        let req = SigningRequest {
            method: "GET",
            path: "/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs",
            query: &query,
            headers: &headers,
            body_sha256: EMPTY_BODY_SHA256,
        };
        assert_eq!(
            sha256_hex(canonical_request(&req).as_bytes()),
            "b25362e603ee30f4f25e7858e8a7160fd36e803bb2dfe206278659d71a9bcd7a"
        );
        assert_eq!(
            authorization(
                "QTWAOYTTINDUT2QVKYUC",
                "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc",
                "20191115T033655Z",
                &req
            ),
            "SDK-HMAC-SHA256 Access=QTWAOYTTINDUT2QVKYUC, SignedHeaders=content-type;host;x-sdk-date, \
             Signature=7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe"
        );
    }

    #[test]
    fn go_sdk_test1_get() {
        let headers = [("X-Sdk-Date", "20060102T150405Z")];
        let query = canonical_query(&[("limit", "1")]);
        let req = SigningRequest {
            method: "GET",
            path: "/path",
            query: &query,
            headers: &headers,
            body_sha256: EMPTY_BODY_SHA256,
        };
        let cr = canonical_request(&req);
        assert_eq!(
            cr,
            format!("GET\n/path/\nlimit=1\nx-sdk-date:20060102T150405Z\n\nx-sdk-date\n{EMPTY_BODY_SHA256}")
        );
        assert_eq!(
            sha256_hex(cr.as_bytes()),
            "85c3b7730f308aee452b16138a42a914397e43a8f0d732dfa521c0ef2afa98a4"
        );
        assert_eq!(
            authorization("AccessKey", "SecretKey", "20060102T150405Z", &req),
            "SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=x-sdk-date, \
             Signature=5a2ce64c865e0e6046321c6f3d5a77ba8413eeaf355c3166c03d58d02ac79624"
        );
    }

    #[test]
    fn go_sdk_test2_post_with_body() {
        let headers = [("X-Sdk-Date", "20060102T150405Z")];
        let query = canonical_query(&[("key", "value")]);
        let body = sha256_hex(b"{\"Name\":\"test\",\"Id\":1}\n");
        let req = SigningRequest {
            method: "POST",
            path: "/path",
            query: &query,
            headers: &headers,
            body_sha256: &body,
        };
        assert_eq!(
            sha256_hex(canonical_request(&req).as_bytes()),
            "13f75ff5f5216199f986c7e7f2f77834d5e160ad9e46f37319816dc72ba7eeab"
        );
        assert_eq!(
            signature(
                "SecretKey",
                &string_to_sign("20060102T150405Z", &canonical_request(&req))
            ),
            "cecc2af119b18ab70b4d094c0750f3b42c02f254903179a0fc2cc72fc9db4f59"
        );
    }

    #[test]
    fn modelarts_v1_with_content_type_and_project() {
        let query = ma_query();
        assert_eq!(query, "continue=eyJ2IjoxfQ%3D%3D&limit=50");
        let headers = [
            ("Host", MA_HOST),
            ("Content-Type", "application/json"),
            ("X-Project-Id", PROJECT),
            ("X-Sdk-Date", MA_DATE),
        ];
        let req = SigningRequest {
            method: "GET",
            path: MA_PATH,
            query: &query,
            headers: &headers,
            body_sha256: EMPTY_BODY_SHA256,
        };
        let cr = canonical_request(&req);
        assert_eq!(
            cr,
            format!(
                "GET\n{MA_PATH}/\ncontinue=eyJ2IjoxfQ%3D%3D&limit=50\ncontent-type:application/json\nhost:{MA_HOST}\n\
                 x-project-id:{PROJECT}\nx-sdk-date:{MA_DATE}\n\ncontent-type;host;x-project-id;x-sdk-date\n{EMPTY_BODY_SHA256}"
            )
        );
        assert_eq!(
            sha256_hex(cr.as_bytes()),
            "8f788d3a8a53b48e194e997f5cb18ba909fc4d415820794a4c7b88bbe164ab94"
        );
        assert!(authorization(MA_AK, MA_SK, MA_DATE, &req).ends_with(
            "SignedHeaders=content-type;host;x-project-id;x-sdk-date, \
             Signature=1e26629ef4dc763dbfbe2a233baa986dfc1e99af5c488a36ae34d50d438f487c"
        ));
    }

    #[test]
    fn modelarts_v2_host_and_date_only() {
        let query = ma_query();
        let headers = [("Host", MA_HOST), ("X-Sdk-Date", MA_DATE)];
        let req = SigningRequest {
            method: "GET",
            path: MA_PATH,
            query: &query,
            headers: &headers,
            body_sha256: EMPTY_BODY_SHA256,
        };
        assert_eq!(
            sha256_hex(canonical_request(&req).as_bytes()),
            "60238a52b7dab78bca36f0c27281b42279299a8cca6424994755b8607b0035f8"
        );
        assert!(authorization(MA_AK, MA_SK, MA_DATE, &req).ends_with(
            "SignedHeaders=host;x-sdk-date, Signature=81035b3b130723b26713e4f5b7b6ed6b0348b6ea74e47fb93cf90f18920e373d"
        ));
    }

    #[test]
    fn modelarts_v3_temporary_credentials() {
        let query = ma_query();
        let headers = [
            ("Host", MA_HOST),
            ("X-Project-Id", PROJECT),
            ("X-Sdk-Date", MA_DATE),
            ("X-Security-Token", "tok-EXAMPLE"),
        ];
        let req = SigningRequest {
            method: "GET",
            path: MA_PATH,
            query: &query,
            headers: &headers,
            body_sha256: EMPTY_BODY_SHA256,
        };
        assert_eq!(
            sha256_hex(canonical_request(&req).as_bytes()),
            "b2049192d9ad370c17bd8f835472f9ac61059a49d62449489655b20c4b1bee0b"
        );
        assert!(authorization(MA_AK, MA_SK, MA_DATE, &req).ends_with(
            "SignedHeaders=host;x-project-id;x-sdk-date;x-security-token, \
             Signature=1e78444886e7cc51fc6c6b1fa37046c25a0242cc4eb9c6b923cc5d1fc7c577ef"
        ));
    }

    #[test]
    fn go_sdk_canonical_query_escaping() {
        let q = canonical_query(&[
            ("test", "一 (&=?!#%.*)"),
            ("multi", "3"),
            ("path", "/tmp/123"),
            ("multi", "1"),
            ("enable", "true"),
            ("limit", "1"),
            ("multi", "2"),
        ]);
        assert_eq!(
            q,
            "enable=true&limit=1&multi=1&multi=2&multi=3&path=%2Ftmp%2F123&test=%E4%B8%80%20%28%26%3D%3F%21%23%25.%2A%29"
        );
    }

    #[test]
    fn sorts_raw_pairs_before_escaping_like_the_python_sdk() {
        // Escaped, "é" would become "%C3%A9" and sort before "a"; raw, it sorts after.
        assert_eq!(canonical_query(&[("é", "1"), ("a", "2")]), "a=2&%C3%A9=1");
        assert_eq!(canonical_uri("/v2/a%2Fb/nodes"), "/v2/a/b/nodes/");
    }
}
