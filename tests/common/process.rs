//! Running a command and polling an HTTP service: shared by the server's end-to-end
//! tests (`tests/common`) and the desktop helper's (`desktop/tests/support`, which
//! includes this file by path: it is another package and cannot use `tests/common`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Runs a command to its end with `stdin` (or nothing) on its standard input.
pub fn run_command(cmd: &mut Command, stdin: Option<&str>) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a command");
    {
        let mut pipe = child.stdin.take().expect("the command's standard input");
        if let Some(text) = stdin {
            let _ = pipe.write_all(text.as_bytes());
        }
    }
    child.wait_with_output().expect("wait for a command")
}

/// A minimal HTTP/1.1 GET over a socket: the whole answer, or `None` if the service
/// does not answer (yet).
pub fn raw_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}
