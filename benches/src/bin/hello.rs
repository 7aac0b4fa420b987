//! A plain axum hello-world server, the baseline of `benches/http/compare.sh`: what an HTTP
//! request costs on this machine with no work behind it. Listens on the address given (port 0
//! picks one) and prints `listening on http://ADDR` first.

use axum::Router;
use axum::routing::get;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let app = Router::new().route("/", get(|| async { "ok" }));
    axum::serve(listener, app).await
}
