//! The TCP step: one connection to one address and port of a server, whose stream
//! the TLS step then uses.

use std::net::{IpAddr, SocketAddr};

use mailsite_shared::autoconfig::ServerSetting;
use mailsite_shared::report::Step;
use tokio::net::TcpStream;

use super::Running;
use crate::explain;
use crate::net::Net;

/// Connects to `ip` on the setting's port.
pub async fn tcp(net: &Net, s: &ServerSetting, ip: IpAddr) -> (Step, Option<TcpStream>) {
    let addr = SocketAddr::new(ip, s.port);
    let mut run = Running::new(
        format!("tcp:{}:{}@{ip}", s.hostname, s.port),
        "tcp",
        format!("Connect to {} port {} ({ip})", s.hostname, s.port),
    );
    run.detail("protocol", s.protocol.thunderbird_name());
    run.detail("host", &s.hostname);
    run.detail("address", ip);
    run.detail("port", s.port);
    match tokio::time::timeout(net.step_timeout, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => (run.pass(), Some(stream)),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => (
            run.fail(explain::connection_refused(
                &s.hostname,
                &ip.to_string(),
                s.port,
            )),
            None,
        ),
        Ok(Err(e)) => (
            run.fail(explain::protocol_error("TCP", &format!("{addr}: {e}"))),
            None,
        ),
        Err(_) => (
            run.fail(explain::connection_timeout(
                &s.hostname,
                &ip.to_string(),
                s.port,
            )),
            None,
        ),
    }
}
