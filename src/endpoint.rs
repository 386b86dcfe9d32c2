//! Where ModelArts lives: region endpoints, explicit overrides and the allow-list.

use crate::error::{Error, Result};
use url::Url;

/// Host suffixes of the public ModelArts endpoints, the default allow-list for
/// endpoints set in a custom resource.
pub const DEFAULT_ALLOWED_SUFFIXES: &[&str] =
    &[".myhuaweicloud.com", ".myhuaweicloud.cn", ".myhuaweicloud.eu"];

/// Checks a region ID's shape (`cn-north-4`, `ap-southeast-1`, `eu-west-101`).
pub fn validate_region(region: &str) -> Result<()> {
    let parts: Vec<&str> = region.split('-').collect();
    let ok = parts.len() == 3
        && parts[0].len() >= 2
        && parts[..2]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && (1..=3).contains(&parts[2].len())
        && parts[2].bytes().all(|b| b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "region",
            region,
            "expected a region ID such as cn-north-4",
        ))
    }
}

/// The public endpoint of a region: `https://modelarts.{region}.myhuaweicloud.com`,
/// except CN-Hong Kong (`ap-southeast-1`), which the official SDKs place under `.cn`.
pub fn for_region(region: &str) -> Result<Url> {
    validate_region(region)?;
    let tld = if region == "ap-southeast-1" { "cn" } else { "com" };
    Url::parse(&format!("https://modelarts.{region}.myhuaweicloud.{tld}"))
        .map_err(|e| Error::invalid("region", region, e.to_string()))
}

/// Parses an explicit endpoint. Plain `http` is refused unless `allow_http`, because
/// signed headers and tokens would travel in clear; paths, queries and user info are
/// refused because requests are built from the origin alone.
pub fn parse(endpoint: &str, field: &str, allow_http: bool) -> Result<Url> {
    let url = Url::parse(endpoint.trim()).map_err(|e| Error::invalid(field, endpoint, e.to_string()))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_http => {}
        "http" => {
            return Err(Error::invalid(
                field,
                endpoint,
                "plain http would send credentials in clear; use https (or allow http explicitly for a local simulator)",
            ));
        }
        other => {
            return Err(Error::invalid(
                field,
                endpoint,
                format!("unsupported scheme {other:?}"),
            ));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::invalid(field, endpoint, "no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::invalid(
            field,
            endpoint,
            "user info is not allowed in an endpoint",
        ));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(Error::invalid(
            field,
            endpoint,
            "an endpoint is scheme://host[:port] only, without a path or query",
        ));
    }
    Ok(url)
}

/// The endpoint from exactly one of a region or an explicit endpoint; `fields` names the
/// two inputs (flags or spec fields) in errors.
pub fn resolve(
    region: Option<&str>,
    endpoint: Option<&str>,
    fields: (&str, &str),
    allow_http: bool,
) -> Result<Url> {
    match (region, endpoint) {
        (Some(r), None) => for_region(r),
        (None, Some(e)) => parse(e, fields.1, allow_http),
        (r, e) => Err(Error::invalid(
            format!("{}/{}", fields.0, fields.1),
            format!("{}/{}", r.unwrap_or(""), e.unwrap_or("")),
            "set exactly one of them",
        )),
    }
}

/// True when `url`'s host ends with one of `suffixes` (each like `.myhuaweicloud.com`).
pub fn host_allowed(url: &Url, suffixes: &[String]) -> bool {
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    suffixes.iter().any(|s| {
        let s = s.to_ascii_lowercase();
        if s.starts_with('.') {
            host.ends_with(&s) && host.len() > s.len()
        } else {
            host == s
        }
    })
}

/// The `Host` header value for an endpoint: the host, plus the port when not default.
pub fn host_header(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_endpoints() {
        assert_eq!(
            for_region("cn-north-4").unwrap().as_str(),
            "https://modelarts.cn-north-4.myhuaweicloud.com/"
        );
        assert_eq!(
            for_region("ap-southeast-1").unwrap().as_str(),
            "https://modelarts.ap-southeast-1.myhuaweicloud.cn/"
        );
        let e = for_region("cn-north-4.evil.com").unwrap_err().to_string();
        assert!(e.contains("region") && e.contains("cn-north-4.evil.com"), "{e}");
        assert!(for_region("").is_err());
    }

    #[test]
    fn exactly_one_of_region_and_endpoint() {
        let f = ("--region", "--endpoint");
        assert_eq!(
            resolve(Some("cn-north-4"), None, f, false).unwrap(),
            for_region("cn-north-4").unwrap()
        );
        assert_eq!(
            resolve(None, Some("http://127.0.0.1:1"), f, true)
                .unwrap()
                .as_str(),
            "http://127.0.0.1:1/"
        );
        for (r, e) in [
            (None, None),
            (Some("cn-north-4"), Some("https://x.myhuaweicloud.com")),
        ] {
            let err = resolve(r, e, f, false).unwrap_err().to_string();
            assert!(
                err.contains("--region/--endpoint") && err.contains("exactly one"),
                "{err}"
            );
        }
    }

    #[test]
    fn http_only_when_allowed() {
        let e = parse("http://127.0.0.1:18080", "--endpoint", false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--endpoint") && e.contains("http://127.0.0.1:18080") && e.contains("clear"),
            "{e}"
        );
        assert_eq!(
            host_header(&parse("http://127.0.0.1:18080", "--endpoint", true).unwrap()),
            "127.0.0.1:18080"
        );
        assert_eq!(
            host_header(&parse("https://modelarts.cn-north-4.myhuaweicloud.com", "e", false).unwrap()),
            "modelarts.cn-north-4.myhuaweicloud.com"
        );
        assert!(parse("https://x.example.com/v2?a=b", "e", false).is_err());
        assert!(parse("https://user:pw@x.example.com", "e", false).is_err());
        assert!(parse("ftp://x.example.com", "e", false).is_err());
    }

    #[test]
    fn allow_list_matches_suffixes_only_on_label_boundaries() {
        let list: Vec<String> = DEFAULT_ALLOWED_SUFFIXES.iter().map(|s| s.to_string()).collect();
        let ok = parse("https://modelarts.eu-west-101.myhuaweicloud.eu", "e", false).unwrap();
        assert!(host_allowed(&ok, &list));
        let evil = parse(
            "https://modelarts.cn-north-4.myhuaweicloud.com.evil.net",
            "e",
            false,
        )
        .unwrap();
        assert!(!host_allowed(&evil, &list));
        let evil2 = parse("https://evilmyhuaweicloud.com", "e", false).unwrap();
        assert!(!host_allowed(&evil2, &list));
        assert!(host_allowed(
            &parse("http://127.0.0.1:1", "e", true).unwrap(),
            &["127.0.0.1".into()]
        ));
    }
}
