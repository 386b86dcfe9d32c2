//! Where ModelArts lives: region endpoints, explicit overrides and the allow-list.

use crate::error::{Error, Result};
use url::Url;

/// Host suffixes of the public ModelArts endpoints, the default allow-list for
/// endpoints set in a custom resource: the SDKs' `.com` and `.cn` (CN-Hong Kong)
/// domains and Huawei Cloud Europe's `.eu`.
pub const DEFAULT_ALLOWED_SUFFIXES: &[&str] =
    &[".myhuaweicloud.com", ".myhuaweicloud.cn", ".myhuaweicloud.eu"];

/// Region IDs of the official Go and Python SDKs' ModelArts region maps (GoSDK
/// `services/modelarts/v1/region/region.go`), all under `.myhuaweicloud.com` except
/// `ap-southeast-1`.
pub const SDK_REGIONS: &[&str] = &[
    "cn-north-1",
    "cn-north-2",
    "cn-north-4",
    "cn-north-9",
    "cn-north-11",
    "cn-north-12",
    "cn-south-1",
    "cn-east-3",
    "cn-east-4",
    "cn-southwest-2",
    "cn-southwest-3",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "af-south-1",
    "af-north-1",
    "la-south-2",
    "la-north-2",
    "sa-brazil-1",
    "tr-west-1",
    "me-east-1",
];

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

/// Checks a region domain (`hcs.example.com`, a leading dot tolerated): two or more DNS
/// labels of lowercase letters, digits and `-`. Returns it without the dot.
pub fn validate_domain(flag: &str, domain: &str) -> Result<String> {
    let d = domain.trim().trim_start_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = d.split('.').collect();
    let ok = labels.len() >= 2 && labels.iter().all(|l| dns_label(l));
    if ok {
        Ok(d)
    } else {
        Err(Error::invalid(
            flag,
            domain,
            "expected a DNS domain such as hcs.example.com",
        ))
    }
}

fn dns_label(l: &str) -> bool {
    (1..=63).contains(&l.len())
        && l.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !l.starts_with('-')
        && !l.ends_with('-')
}

/// A region's endpoint: under `domain` when one is configured (a Huawei Cloud Stack or
/// other private cloud: `https://modelarts.{region}.{domain}`, the region any DNS label),
/// else the public one of [`for_region`].
pub fn for_region_in(region: &str, domain: Option<&str>) -> Result<Url> {
    let Some(domain) = domain else {
        return for_region(region);
    };
    if !dns_label(region) {
        return Err(Error::invalid(
            "region",
            region,
            "expected a region ID (one DNS label, e.g. cn-north-4)",
        ));
    }
    Url::parse(&format!("https://modelarts.{region}.{domain}"))
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

/// The endpoint from exactly one of a region (under `region_domain` when set) or an
/// explicit endpoint; `fields` names the two inputs (flags or spec fields) in errors.
pub fn resolve(
    region: Option<&str>,
    endpoint: Option<&str>,
    fields: (&str, &str),
    allow_http: bool,
    region_domain: Option<&str>,
) -> Result<Url> {
    match (region, endpoint) {
        (Some(r), None) => for_region_in(r, region_domain),
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
            resolve(Some("cn-north-4"), None, f, false, None).unwrap(),
            for_region("cn-north-4").unwrap()
        );
        assert_eq!(
            resolve(None, Some("http://127.0.0.1:1"), f, true, None)
                .unwrap()
                .as_str(),
            "http://127.0.0.1:1/"
        );
        for (r, e) in [
            (None, None),
            (Some("cn-north-4"), Some("https://x.myhuaweicloud.com")),
        ] {
            let err = resolve(r, e, f, false, None).unwrap_err().to_string();
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

    /// Each region of the SDKs' maps, written out by hand from modelarts-api.md §2, resolves
    /// to the SDKs' host and passes the default allow-list (used when it is given as an
    /// explicit `spec.endpoint`).
    #[test]
    fn every_sdk_region_resolves_to_the_sdk_host_and_is_allowed() {
        let list: Vec<String> = DEFAULT_ALLOWED_SUFFIXES.iter().map(|s| s.to_string()).collect();
        assert_eq!(SDK_REGIONS.len(), 22);
        for r in SDK_REGIONS {
            let url = for_region(r).unwrap();
            let want = if *r == "ap-southeast-1" {
                format!("https://modelarts.{r}.myhuaweicloud.cn/")
            } else {
                format!("https://modelarts.{r}.myhuaweicloud.com/")
            };
            assert_eq!(url.as_str(), want);
            let explicit = parse(url.as_str().trim_end_matches('/'), "spec.endpoint", false).unwrap();
            assert!(host_allowed(&explicit, &list), "{r}");
        }
        // Huawei Cloud Europe is outside the SDK map: an explicit endpoint, allowed by default.
        let eu = parse(
            "https://modelarts.eu-west-101.myhuaweicloud.eu",
            "spec.endpoint",
            false,
        )
        .unwrap();
        assert!(host_allowed(&eu, &list));
    }

    /// A private cloud (Huawei Cloud Stack) domain: regions resolve under it, and explicit
    /// endpoints there pass only once its suffix is allowed.
    #[test]
    fn a_user_domain_for_regions_and_the_allow_list() {
        let domain = validate_domain("--region-domain", ".HCS.example.com").unwrap();
        assert_eq!(domain, "hcs.example.com");
        let url = for_region_in("region-a1", Some(&domain)).unwrap();
        assert_eq!(url.as_str(), "https://modelarts.region-a1.hcs.example.com/");
        assert_eq!(
            resolve(Some("cn-north-4"), None, ("r", "e"), false, Some(&domain))
                .unwrap()
                .as_str(),
            "https://modelarts.cn-north-4.hcs.example.com/"
        );
        let e = for_region_in("a.evil.com", Some(&domain))
            .unwrap_err()
            .to_string();
        assert!(e.contains("region") && e.contains("a.evil.com"), "{e}");
        for bad in ["com", "bad domain.com", "-x.example.com", ""] {
            let e = validate_domain("--region-domain", bad).unwrap_err().to_string();
            assert!(e.contains("--region-domain"), "{e}");
        }
        let defaults: Vec<String> = DEFAULT_ALLOWED_SUFFIXES.iter().map(|s| s.to_string()).collect();
        let explicit = parse(
            "https://modelarts.region-a1.hcs.example.com",
            "spec.endpoint",
            false,
        )
        .unwrap();
        assert!(!host_allowed(&explicit, &defaults));
        assert!(host_allowed(&explicit, &[".hcs.example.com".to_string()]));
        let vpc = parse(
            "https://modelarts-vpcep.internal.example.net:8443",
            "spec.endpoint",
            false,
        )
        .unwrap();
        assert!(host_allowed(
            &vpc,
            &["modelarts-vpcep.internal.example.net".to_string()]
        ));
        assert_eq!(host_header(&vpc), "modelarts-vpcep.internal.example.net:8443");
    }
}
