//! Sending one allowed request: resolve the host once, keep only the addresses its allow-list
//! entry permits, connect to one of those very addresses, then TLS and HTTP/1.1.
//!
//! wasmtime-wasi-http's `default_send_request` connects with `TcpStream::connect("host:port")`,
//! which resolves the name inside the connect, leaving no point at which to see (or refuse)
//! the address. So this replaces it, following it step for step after the connect: the same
//! TLS setup (rustls with the webpki roots, plus the operator's CAs: see [`HttpTrust`]; the
//! server name from the URL's host, never from the address), the same hyper handshake, and the
//! same connect, first-byte and between-bytes timeouts.
//!
//! [`HttpTrust`]: super::HttpTrust

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

use super::address::AddressClass;

/// Which addresses a request may connect to, by the allow-list entry that let it through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reach {
    /// The entry names this IP address: it, whatever its class.
    Literal(IpAddr),
    /// The entry is `localhost`: loopback addresses.
    Loopback,
    /// Any other name: public addresses only.
    Public,
}

impl Reach {
    /// Whether `ip` may be connected to; if not, what it is.
    pub(crate) fn permits(self, ip: IpAddr) -> Result<(), AddressClass> {
        let class = AddressClass::of(ip);
        let permitted = match self {
            Self::Literal(named) => named == ip,
            Self::Loopback => class == AddressClass::Loopback,
            Self::Public => class == AddressClass::Public,
        };
        if permitted { Ok(()) } else { Err(class) }
    }
}

/// Where a request goes: the URL's host and port, and which of its addresses it may reach.
pub(crate) struct Destination {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) reach: Reach,
}

/// Why a request was not sent to any address.
pub(crate) struct Refusal {
    /// The addresses the host resolved to, and what each is.
    pub(crate) addresses: Vec<(IpAddr, AddressClass)>,
}

/// The response, and the future that drives the connection to its end.
pub(crate) type Sent = (
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), Error>> + Send>,
);

/// A stream to send HTTP over: TCP, or TLS over TCP.
trait Stream: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static> Stream for T {}

/// Resolves the destination's host, connects to an address it may reach, and sends `request`
/// over it (over TLS from `tls` for `https`). `on_refused` is told when no resolved address is
/// permitted (the request then fails with `destination-IP-prohibited`).
pub(crate) async fn send(
    mut request: http::Request<WasiBody>,
    to: Destination,
    tls: tokio_rustls::TlsConnector,
    options: RequestOptions,
    on_refused: impl FnOnce(&Refusal),
) -> Result<Sent, Error> {
    let Destination { host, port, reach } = to;
    let forever = Duration::from_secs(600);
    let connect_timeout = options.connect_timeout.unwrap_or(forever);
    let first_byte_timeout = options.first_byte_timeout.unwrap_or(forever);
    let between_bytes_timeout = options.between_bytes_timeout.unwrap_or(forever);
    let use_tls = request.uri().scheme() == Some(&http::uri::Scheme::HTTPS);

    let addresses = tokio::time::timeout(connect_timeout, resolve(&host, port))
        .await
        .map_err(|_| Error::DnsTimeout)??;
    let (permitted, refused): (Vec<_>, Vec<_>) = addresses
        .iter()
        .map(|address| (*address, reach.permits(address.ip())))
        .partition(|(_, verdict)| verdict.is_ok());
    if permitted.is_empty() {
        let addresses = refused
            .into_iter()
            .filter_map(|(address, verdict)| Some((address.ip(), verdict.err()?)))
            .collect();
        on_refused(&Refusal { addresses });
        return Err(Error::DestinationIpProhibited);
    }
    let permitted: Vec<SocketAddr> = permitted.into_iter().map(|(address, _)| address).collect();
    let tcp = tokio::time::timeout(connect_timeout, connect(&permitted))
        .await
        .map_err(|_| Error::ConnectionTimeout)??;

    let stream: Box<dyn Stream> = if use_tls {
        let name = server_name(&host)?;
        let tls = tls.connect(name, tcp).await.map_err(Error::Tls)?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let (mut sender, connection) = tokio::time::timeout(
        connect_timeout,
        hyper::client::conn::http1::handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;

    // The request line names only the path: scheme and authority are for proxies.
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |path| path.as_str())
        .to_owned();
    *request.uri_mut() = http::Uri::try_from(path).map_err(|_| Error::HttpRequestUriInvalid)?;

    let mut connection = Some(connection);
    let mut response = std::pin::pin!(tokio::time::timeout(
        first_byte_timeout,
        sender.send_request(request)
    ));
    // Drive the connection's IO until the response head arrives.
    let response = std::future::poll_fn(|cx| match response.as_mut().poll(cx) {
        Poll::Ready(result) => Poll::Ready(result),
        Poll::Pending => {
            let Some(driving) = connection.as_mut() else {
                return Poll::Pending;
            };
            match Pin::new(driving).poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(result) => {
                    connection = None;
                    match result {
                        Ok(()) => response.as_mut().poll(cx),
                        Err(error) => Poll::Ready(Ok(Err(error))),
                    }
                }
            }
        }
    })
    .await
    .map_err(|_| Error::ConnectionReadTimeout)??;

    let response = response.map(|incoming| {
        IncomingBody {
            incoming,
            timeout: between_bytes(between_bytes_timeout),
        }
        .boxed_unsync()
    });
    let rest = async move {
        match connection {
            Some(connection) => connection.await.map_err(|error| {
                if error.is_timeout() {
                    Error::HttpResponseTimeout
                } else {
                    error.into()
                }
            }),
            None => Ok(()),
        }
    };
    Ok((response, Box::new(rest)))
}

/// The addresses of `host`: the address itself if it is one, else what the system resolver
/// says, once.
async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, Error> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((bare, port))
        .await
        .map_err(|error| Error::DnsError {
            rcode: Some(error.to_string()),
            info_code: None,
        })?
        .collect();
    if addresses.is_empty() {
        return Err(Error::DestinationNotFound);
    }
    Ok(addresses)
}

/// A connection to the first of `addresses` that accepts one.
async fn connect(addresses: &[SocketAddr]) -> Result<TcpStream, Error> {
    let mut last_error = None;
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(stream) => return Ok(stream),
            Err(error) => last_error = Some(error),
        }
    }
    Err(Error::Connect(last_error.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "no address to connect to")
    })))
}

/// The name TLS verifies the server's certificate against: the URL's host.
fn server_name(host: &str) -> Result<rustls::pki_types::ServerName<'static>, Error> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(ip.into());
    }
    rustls::pki_types::ServerName::try_from(bare.to_owned()).map_err(Error::InvalidDnsNameError)
}

/// A timer for the wait between two frames of the body (tokio's interval needs a non-zero
/// period).
fn between_bytes(timeout: Duration) -> tokio::time::Interval {
    let mut interval = tokio::time::interval(timeout.max(Duration::from_nanos(1)));
    interval.reset();
    interval
}

/// The response body, failing with `connection-read-timeout` when a frame is late.
struct IncomingBody {
    incoming: hyper::body::Incoming,
    timeout: tokio::time::Interval,
}

impl http_body::Body for IncomingBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Error>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                self.timeout.reset();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) if error.is_timeout() => {
                Poll::Ready(Some(Err(Error::HttpResponseTimeout)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match self.timeout.poll_tick(cx) {
                Poll::Ready(_) => Poll::Ready(Some(Err(Error::ConnectionReadTimeout))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.incoming.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn names_reach_public_addresses_localhost_loopback_and_a_literal_itself() {
        use AddressClass::*;
        let metadata = Reach::Literal(ip("169.254.169.254"));
        let cases = [
            (Reach::Public, "93.184.215.14", Ok(())),
            (Reach::Public, "127.0.0.1", Err(Loopback)),
            (Reach::Public, "::ffff:169.254.169.254", Err(LinkLocal)),
            (Reach::Loopback, "::1", Ok(())),
            (Reach::Loopback, "10.0.0.1", Err(Private)),
            (Reach::Loopback, "8.8.8.8", Err(Public)),
            (metadata, "169.254.169.254", Ok(())),
            (metadata, "169.254.169.253", Err(LinkLocal)),
        ];
        for (reach, address, expected) in cases {
            assert_eq!(reach.permits(ip(address)), expected, "{reach:?} {address}");
        }
    }

    #[tokio::test]
    async fn an_address_resolves_to_itself_and_localhost_to_loopback() {
        assert_eq!(
            resolve("[::1]", 80).await.unwrap(),
            [SocketAddr::new(ip("::1"), 80)]
        );
        let local = resolve("localhost", 8080).await.unwrap();
        assert!(
            local
                .iter()
                .all(|address| AddressClass::of(address.ip()) == AddressClass::Loopback),
            "{local:?}"
        );
    }
}
