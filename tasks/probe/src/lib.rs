//! `probe`: tries what a sandboxed task must not get (environment, arguments, files, stdin,
//! sockets, DNS) and says what each attempt got; the host grants none. Files and the rest
//! through `std`, sockets and DNS straight through `wasi:sockets`.

use std::io::Read;

use serde::{Deserialize, Serialize};
use wasip2::sockets::instance_network::instance_network;
use wasip2::sockets::network::{IpAddressFamily, IpSocketAddress, Ipv4SocketAddress};
use wasip2::sockets::{ip_name_lookup, tcp_create_socket, udp_create_socket};

#[derive(Deserialize)]
struct In {
    /// A port on 127.0.0.1 to connect to over TCP.
    port: u16,
    /// A host name to resolve.
    resolve: String,
}

/// What each attempt got: what it found, or the error it failed with.
#[derive(Serialize)]
struct Out {
    env: Vec<(String, String)>,
    args: Vec<String>,
    read_dir: Result<usize, String>,
    read_file: Result<usize, String>,
    write_file: Result<(), String>,
    stdin: Result<usize, String>,
    tcp_connect: Result<(), String>,
    udp_bind: Result<(), String>,
    dns: Result<usize, String>,
}

#[taskhost_sdk::task]
fn run(input: In) -> Out {
    let text = |error: std::io::Error| error.to_string();
    let wasi = |error: wasip2::sockets::network::ErrorCode| format!("{error:?}");
    let network = instance_network();
    let address = |ip, port| IpSocketAddress::Ipv4(Ipv4SocketAddress { port, address: ip });
    let tcp_connect = tcp_create_socket::create_tcp_socket(IpAddressFamily::Ipv4)
        .and_then(|socket| {
            socket.start_connect(&network, address((127, 0, 0, 1), input.port))?;
            socket.subscribe().block();
            socket.finish_connect().map(drop)
        })
        .map_err(wasi);
    let udp_bind = udp_create_socket::create_udp_socket(IpAddressFamily::Ipv4)
        .and_then(|socket| {
            socket.start_bind(&network, address((0, 0, 0, 0), 0))?;
            socket.subscribe().block();
            socket.finish_bind()
        })
        .map_err(wasi);
    let dns = ip_name_lookup::resolve_addresses(&network, &input.resolve)
        .and_then(|addresses| {
            let mut found = 0;
            loop {
                match addresses.resolve_next_address() {
                    Ok(Some(_)) => found += 1,
                    Ok(None) => return Ok(found),
                    Err(ip_name_lookup::ErrorCode::WouldBlock) => addresses.subscribe().block(),
                    Err(error) => return Err(error),
                }
            }
        })
        .map_err(wasi);
    Out {
        env: std::env::vars().collect(),
        args: std::env::args().collect(),
        read_dir: std::fs::read_dir("/").map(Iterator::count).map_err(text),
        read_file: std::fs::read("/etc/passwd")
            .map(|bytes| bytes.len())
            .map_err(text),
        write_file: std::fs::write("/tmp/probe", "x").map_err(text),
        stdin: std::io::stdin().read_to_end(&mut Vec::new()).map_err(text),
        tcp_connect,
        udp_bind,
        dns,
    }
}
