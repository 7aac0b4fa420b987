//! Outgoing HTTP (`wasi:http/outgoing-handler`) for tasks, behind an allow-list of hosts.
//!
//! The allow-list is empty unless the operator names hosts, so by default every request is
//! denied: the task sees `HTTP-request-denied` from the response future, as if the network had
//! refused, and can report it. Hosts are matched by name (and port, if the entry has one)
//! before anything is resolved or connected.
//!
//! A name is not an address, so the addresses are checked too (in `send`): the host name is
//! resolved once, and the request connects only to an address its entry permits, the very
//! address that was checked (no second lookup a DNS answer could change in between). An entry
//! that is a name permits public addresses only: never loopback, private (RFC 1918, unique
//! local), carrier-grade NAT, link-local (`169.254.169.254`, where cloud metadata lives),
//! unspecified, multicast or reserved addresses, nor IPv6 forms that carry such an IPv4
//! address. To reach an internal service, allow its IP address (`10.0.0.5:8080`): an entry
//! that is an IP address permits exactly that address, and `localhost` permits loopback
//! addresses. There is no switch letting names resolve to internal addresses: naming the
//! address is the one explicit way in, so no allowed name can be pointed at the metadata
//! service by whoever controls its DNS. A request refused this way fails with
//! `destination-IP-prohibited`; the host logs it, and the job's log says which addresses the
//! name resolved to and what they are.
//!
//! A request may not outlive its job: its connect and response timeouts are capped at the
//! job's remaining time, and dropping the job's store (at its deadline or on cancellation)
//! aborts whatever is still in flight.

mod address;
mod send;
mod trust;

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use send::{Reach, Refusal};
use tokio_rustls::TlsConnector;
pub use trust::{HttpTrust, TrustError};

/// Hosts that tasks may send HTTP requests to. Entries are `name`, `name:port`, or
/// `*.domain` (any subdomain of `domain`, any port); a name may be an IPv4 address. Names reach
/// public addresses only; an IP address reaches itself, `localhost` loopback addresses.
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

    /// Whether a request to `host` on `port` is allowed by name.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        self.reach(host, port).is_some()
    }

    /// Which addresses a request to `host` on `port` may connect to, if it is allowed at all:
    /// an entry naming an IP address permits that address, `localhost` loopback addresses,
    /// and any other entry public addresses only.
    fn reach(&self, host: &str, port: u16) -> Option<Reach> {
        let host = host.to_ascii_lowercase();
        let pattern = self.0.iter().find(|pattern| match pattern {
            HostPattern::Exact {
                host: allowed,
                port: allowed_port,
            } => *allowed == host && allowed_port.is_none_or(|allowed| allowed == port),
            HostPattern::Subdomains { domain } => host
                .strip_suffix(domain.as_str())
                .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.')),
        })?;
        Some(match pattern {
            HostPattern::Exact { host, .. } if host == "localhost" => Reach::Loopback,
            HostPattern::Exact { host, .. } => match host.parse::<IpAddr>() {
                Ok(ip) => Reach::Literal(ip),
                Err(_) => Reach::Public,
            },
            HostPattern::Subdomains { .. } => Reach::Public,
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

/// Tells the job's own log why a request was refused (a line for the task's author).
pub(crate) type Notice = Arc<dyn Fn(String) + Send + Sync>;

/// The `wasi:http` hooks of one job: its allow-list, TLS set-up, deadline, and where it
/// hears of refused addresses.
pub(crate) struct JobHttp {
    allowed: HttpAllowList,
    tls: TlsConnector,
    deadline: Instant,
    notice: Notice,
}

impl JobHttp {
    pub(crate) fn new(
        allowed: HttpAllowList,
        tls: TlsConnector,
        deadline: Instant,
        notice: Notice,
    ) -> Self {
        Self {
            allowed,
            tls,
            deadline,
            notice,
        }
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
        let Some(reach) = self.allowed.reach(host, port) else {
            tracing::info!(%host, port, "outgoing HTTP request denied: host not allowed");
            discard_in_background(request.into_body());
            return Box::new(async { Err(Error::HttpRequestDenied) });
        };
        let options = cap_timeouts(
            options,
            self.deadline.saturating_duration_since(Instant::now()),
        );
        // As wasmtime-wasi-http's own sender, which ignores it too: request body errors
        // reach the guest through the body's stream.
        drop(fut);
        let host = host.to_owned();
        let notice = self.notice.clone();
        let tls = self.tls.clone();
        Box::new(async move {
            let on_refused = |refusal: &Refusal| refused(&notice, &host, port, refusal);
            let to = send::Destination {
                host: host.clone(),
                port,
                reach,
            };
            send::send(request, to, tls, options, on_refused).await
        })
    }
}

/// Most of a denied request's body that is read and thrown away.
const DISCARDED_BODY_BYTES: u64 = 1 << 20;

/// Reads and throws away the body of a denied request, up to [`DISCARDED_BODY_BYTES`], so
/// that a task writing its body after sending the request sees its writes go through and the
/// denial from the response, not a closed stream whose cause it cannot tell. (The task learns
/// of the denial at once either way; the body ends when the task finishes or drops it, or
/// with its store.)
fn discard_in_background(mut body: WasiBody) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let mut discarded = 0;
        while discarded <= DISCARDED_BODY_BYTES {
            match body.frame().await {
                Some(Ok(frame)) => {
                    discarded += frame.data_ref().map_or(0, |data| data.len() as u64);
                }
                Some(Err(_)) | None => break,
            }
        }
    });
}

/// Says, in the host's log and the job's, that `host` resolved only to addresses its entry
/// does not permit.
fn refused(notice: &Notice, host: &str, port: u16, refusal: &Refusal) {
    let addresses = refusal
        .addresses
        .iter()
        .map(|(ip, class)| format!("{ip} ({class})"))
        .collect::<Vec<_>>()
        .join(", ");
    tracing::warn!(%host, port, %addresses, "outgoing HTTP request refused: no permitted address");
    notice(format!(
        "HTTP request to {host}:{port} refused: it resolves to {addresses}; an allowed name \
         reaches public addresses only (allow the IP address itself to reach it)"
    ));
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

    #[tokio::test]
    async fn a_denied_requests_body_is_read_and_thrown_away_up_to_a_bound() {
        use bytes::Bytes;
        use http_body::Frame;
        use http_body_util::StreamBody;

        // The task's side of the body: chunks it writes, one in flight at a time.
        let (writes, written) = tokio::sync::mpsc::channel::<Bytes>(1);
        let frames = futures_util::stream::unfold(written, |mut written| async move {
            let chunk = written.recv().await?;
            Some((Ok(Frame::data(chunk)), written))
        });
        let request = http::Request::post("http://example.com/")
            .body(StreamBody::new(frames).boxed_unsync())
            .unwrap();
        let mut hooks = JobHttp::new(
            HttpAllowList::default(),
            HttpTrust::with_ca_files(&[]).unwrap().connector(),
            Instant::now() + Duration::from_secs(60),
            Arc::new(|_| {}),
        );
        let sending = hooks.send_request(request, None, Box::new(async { Ok(()) }));
        let response = Box::into_pin(sending).await;
        assert!(matches!(response, Err(Error::HttpRequestDenied)));

        let chunk = Bytes::from(vec![0; 64 << 10]);
        let mut accepted = 0;
        while writes.send(chunk.clone()).await.is_ok() {
            accepted += chunk.len() as u64;
            assert!(accepted <= DISCARDED_BODY_BYTES + 3 * chunk.len() as u64);
        }
        assert!(accepted >= DISCARDED_BODY_BYTES, "{accepted} bytes");
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
    fn the_matching_entry_decides_which_addresses_are_reached() {
        let allowed = list(&["api.example.com", "localhost:8080", "10.0.0.5", "*.0.1"]);
        assert_eq!(allowed.reach("api.example.com", 443), Some(Reach::Public));
        assert_eq!(allowed.reach("LOCALHOST", 8080), Some(Reach::Loopback));
        assert_eq!(
            allowed.reach("10.0.0.5", 80),
            Some(Reach::Literal("10.0.0.5".parse().unwrap()))
        );
        // A subdomain pattern that happens to match an address permits it only if public.
        assert_eq!(allowed.reach("127.0.0.1", 80), Some(Reach::Public));
        assert_eq!(allowed.reach("example.com", 443), None);
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
