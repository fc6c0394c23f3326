//! How the login steps connect: a recorded connection to one address, TLS from the
//! start for implicit-TLS settings, and the STARTTLS upgrade, both verified as
//! strictly as the user's client verifies them.

use std::net::{IpAddr, SocketAddr};

use mailsite_shared::autoconfig::{Security, ServerSetting};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;

use crate::net::Net;
use crate::record::{Recorder, Shared};

/// A recorded connection over TLS.
pub type TlsWire = Recorder<tokio_rustls::client::TlsStream<TcpStream>>;

/// A recorded connection to `ip`, TLS from the start for implicit-TLS settings.
pub enum Wire {
    Plain(Recorder<TcpStream>),
    Tls(Box<TlsWire>),
}

/// Connects to `ip` on the setting's port, recording from the first byte.
pub(super) async fn open(
    net: &Net,
    s: &ServerSetting,
    ip: IpAddr,
    t: &Shared,
) -> Result<Wire, String> {
    let addr = SocketAddr::new(ip, s.port);
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    if s.security == Security::Tls {
        Ok(Wire::Tls(Box::new(Recorder::new(
            upgrade(net, s, tcp).await?,
            t.clone(),
            Some(addr),
        ))))
    } else {
        Ok(Wire::Plain(Recorder::new(tcp, t.clone(), Some(addr))))
    }
}

/// TLS over a connected stream (implicit TLS, or after STARTTLS/STLS), verified
/// strictly: every login goes through it.
pub(super) async fn upgrade(
    net: &Net,
    s: &ServerSetting,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let name = ServerName::try_from(s.hostname.clone()).map_err(|e| e.to_string())?;
    net.strict()
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS: {e}"))
}
