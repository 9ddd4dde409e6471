//! The parts of an http(s) URL that `wasi:http` needs.

/// A parsed absolute URL.
#[derive(Debug, PartialEq, Eq)]
pub struct Url {
    /// `http` or `https`.
    pub scheme: String,
    /// `host[:port]`.
    pub authority: String,
    /// Path and query, at least `/`.
    pub path_and_query: String,
}

impl Url {
    /// Parses `http(s)://authority/path?query` (a fragment is dropped).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (scheme, rest) = text.split_once("://").ok_or_else(|| {
            format!("`{text}` is not an absolute URL; write http:// or https://…")
        })?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(format!(
                "`{text}`: only http:// or https:// URLs can be fetched"
            ));
        }
        let rest = rest.split('#').next().unwrap_or_default();
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(split);
        if authority.is_empty() || authority.contains('@') || authority.contains(' ') {
            return Err(format!("`{text}` has no valid host"));
        }
        let path_and_query = match tail {
            "" => "/".to_string(),
            t if t.starts_with('?') => format!("/{t}"),
            t => t.to_string(),
        };
        Ok(Self {
            scheme,
            authority: authority.to_string(),
            path_and_query,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_parts() {
        let u = Url::parse("HTTPS://api.example.com:8443/v1/x?y=1#frag").unwrap();
        assert_eq!(
            u,
            Url {
                scheme: "https".into(),
                authority: "api.example.com:8443".into(),
                path_and_query: "/v1/x?y=1".into()
            }
        );
        assert_eq!(Url::parse("http://h").unwrap().path_and_query, "/");
        assert_eq!(Url::parse("http://h?q").unwrap().path_and_query, "/?q");
        assert!(Url::parse("ftp://h").is_err());
        assert!(Url::parse("h/x").is_err());
        assert!(Url::parse("http://user@h/").is_err());
    }
}
