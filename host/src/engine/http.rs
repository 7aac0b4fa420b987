//! Outgoing HTTP (`wasi:http/outgoing-handler`) for tasks, behind an allow-list of hosts.
//!
//! The allow-list is empty unless the operator names hosts, so by default every request is
//! denied: the task sees `HTTP-request-denied` from the response future, as if the network had
//! refused, and can report it. Hosts are matched by name (and port, if the entry has one)
//! before anything is resolved or connected. A name is not an address: an allowed name that
//! resolves to an internal address is still reached, so only allow names you trust.
//!
//! A request may not outlive its job: its connect and response timeouts are capped at the
//! job's remaining time, and dropping the job's store (at its deadline or on cancellation)
//! aborts whatever is still in flight.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// Hosts that tasks may send HTTP requests to. Entries are `name`, `name:port`, or
/// `*.domain` (any subdomain of `domain`, any port).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct HttpAllowList(Arc<[HostPattern]>);

#[derive(Clone, Debug, PartialEq, Eq)]
enum HostPattern {
    /// This host name, on any port or on one port.
    Exact { host: String, port: Option<u16> },
    /// Any host name ending in `.domain`.
    Subdomains { domain: String },
}

/// An allow-list entry that is not a host pattern.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a host to allow: use a host name (`api.example.com`), a host and port \
     (`localhost:8080`) or all subdomains of a domain (`*.example.com`), without scheme or path"
)]
pub struct InvalidHostPattern(String);

impl HttpAllowList {
    /// The allow-list of these entries.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, InvalidHostPattern> {
        let patterns = entries
            .iter()
            .map(|entry| HostPattern::parse(entry.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self(patterns.into()))
    }

    /// Whether no host is allowed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a request to `host` on `port` is allowed.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        let host = host.to_ascii_lowercase();
        self.0.iter().any(|pattern| match pattern {
            HostPattern::Exact {
                host: allowed,
                port: allowed_port,
            } => *allowed == host && allowed_port.is_none_or(|allowed| allowed == port),
            HostPattern::Subdomains { domain } => host
                .strip_suffix(domain.as_str())
                .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.')),
        })
    }

    /// The entries, as given, for status.
    pub fn entries(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

impl fmt::Debug for HttpAllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.entries()).finish()
    }
}

impl HostPattern {
    fn parse(entry: &str) -> Result<Self, InvalidHostPattern> {
        let invalid = || InvalidHostPattern(entry.to_owned());
        let entry_lower = entry.trim().to_ascii_lowercase();
        if let Some(domain) = entry_lower.strip_prefix("*.") {
            return if is_host_name(domain) {
                Ok(Self::Subdomains {
                    domain: domain.to_owned(),
                })
            } else {
                Err(invalid())
            };
        }
        let (host, port) = match entry_lower.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => {
                (host, Some(port.parse::<u16>().map_err(|_| invalid())?))
            }
            _ => (entry_lower.as_str(), None),
        };
        if is_host_name(host) {
            Ok(Self::Exact {
                host: host.to_owned(),
                port,
            })
        } else {
            Err(invalid())
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact { host, port: None } => write!(f, "{host}"),
            Self::Exact {
                host,
                port: Some(port),
            } => write!(f, "{host}:{port}"),
            Self::Subdomains { domain } => write!(f, "*.{domain}"),
        }
    }
}

/// A DNS name or IPv4 address: dot-separated labels of letters, digits and `-`.
fn is_host_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
        })
}

/// The `wasi:http` hooks of one job: its allow-list and deadline.
pub(crate) struct JobHttp {
    allowed: HttpAllowList,
    deadline: Instant,
}

impl JobHttp {
    pub(crate) fn new(allowed: HttpAllowList, deadline: Instant) -> Self {
        Self { allowed, deadline }
    }
}

/// The future `send_request` returns.
type Sending = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for JobHttp {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Sending {
        let uri = request.uri();
        let host = uri.host().unwrap_or_default();
        let default_port = if uri.scheme() == Some(&http::uri::Scheme::HTTPS) {
            443
        } else {
            80
        };
        let port = uri.port_u16().unwrap_or(default_port);
        if !self.allowed.allows(host, port) {
            tracing::info!(%host, port, "outgoing HTTP request denied: host not allowed");
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        let options = cap_timeouts(
            options,
            self.deadline.saturating_duration_since(Instant::now()),
        );
        let stock: &mut dyn WasiHttpHooks = Default::default();
        stock.send_request(request, Some(options), fut)
    }
}

/// The request's timeouts, none longer than `remaining`.
fn cap_timeouts(options: Option<RequestOptions>, remaining: Duration) -> RequestOptions {
    let cap = |timeout: Option<Duration>| Some(timeout.map_or(remaining, |t| t.min(remaining)));
    let options = options.unwrap_or_default();
    RequestOptions {
        connect_timeout: cap(options.connect_timeout),
        first_byte_timeout: cap(options.first_byte_timeout),
        between_bytes_timeout: cap(options.between_bytes_timeout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> HttpAllowList {
        HttpAllowList::parse(entries).unwrap()
    }

    #[test]
    fn empty_allows_nothing() {
        assert!(!HttpAllowList::default().allows("example.com", 443));
    }

    #[test]
    fn hosts_ports_and_subdomains_match_as_written() {
        let allowed = list(&["API.example.com", "localhost:8080", "*.internal.test"]);
        assert!(allowed.allows("api.example.com", 443));
        assert!(allowed.allows("Api.Example.Com", 80));
        assert!(!allowed.allows("example.com", 443));
        assert!(!allowed.allows("evil-api.example.com", 443));
        assert!(allowed.allows("localhost", 8080));
        assert!(!allowed.allows("localhost", 8081));
        assert!(allowed.allows("a.internal.test", 1));
        assert!(allowed.allows("a.b.internal.test", 1));
        assert!(!allowed.allows("internal.test", 1));
        assert!(!allowed.allows("xinternal.test", 1));
        assert_eq!(
            allowed.entries(),
            ["api.example.com", "localhost:8080", "*.internal.test"]
        );
    }

    #[test]
    fn urls_and_junk_are_refused() {
        for entry in [
            "https://example.com",
            "example.com/path",
            "",
            "*.",
            "host:99999",
            "a b",
        ] {
            assert!(HttpAllowList::parse(&[entry]).is_err(), "{entry}");
        }
    }

    #[test]
    fn timeouts_never_outlast_the_job() {
        let remaining = Duration::from_secs(2);
        let capped = cap_timeouts(None, remaining);
        assert_eq!(capped.first_byte_timeout, Some(remaining));
        let asked = RequestOptions {
            connect_timeout: Some(Duration::from_millis(100)),
            ..RequestOptions::default()
        };
        let capped = cap_timeouts(Some(asked), remaining);
        assert_eq!(capped.connect_timeout, Some(Duration::from_millis(100)));
        assert_eq!(capped.between_bytes_timeout, Some(remaining));
    }
}
