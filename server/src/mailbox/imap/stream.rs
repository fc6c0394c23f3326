//! The connection under imap-next's protocol state: reads and writes the socket (and
//! TLS) for [`imap_next::server::Server`], like `imap_next::stream::Stream`, with one
//! difference that matters for speed: responses are written together.
//!
//! imap-next's own stream writes each response as soon as it is encoded, so a FETCH
//! of 10,000 messages made 10,000 `send` calls (10,000 packets with TCP_NODELAY, and
//! under TLS 10,000 records), which took most of its time. Here encoded responses
//! collect in a buffer and go out when the protocol state has nothing more to say
//! (it waits for input), when [`BATCH`] bytes have collected, or when the caller
//! flushes (before a long pause: a multi-part FETCH, a farewell). A
//! `ResponseSent` event therefore means "on its way", and [`Stream::flush`] puts
//! it on the wire.
//!
//! While it writes, it keeps reading what the client sends (up to [`READ_AHEAD`]
//! bytes), so that a client that pipelines many commands and reads only afterwards
//! cannot deadlock with it; a client that sends more than that without reading waits,
//! as with Dovecot, rather than filling the server's memory.
//!
//! Input reaches imap-next only through the [`Gate`], which holds it to the limits
//! of the moment (a few KiB before login). Every buffer lives in the `Stream`, so a future
//! of [`Stream::next`] or [`Stream::flush`] dropped at an await point (a `select!`
//! during IDLE) loses nothing.

use std::io::{ErrorKind, Read, Write};

use imap_next::{Interrupt, Io, State};

use super::input::{BEFORE_LOGIN, Gate, Limits, Refusal};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::rustls;

/// Encoded responses held back before they are written, at most.
pub const BATCH: usize = 64 * 1024;
/// Input read ahead while responses wait to be written, at most.
pub const READ_AHEAD: usize = 256 * 1024;

/// A connection, plain or TLS, with its buffers.
pub struct Stream {
    stream: TcpStream,
    tls: Option<rustls::Connection>,
    /// Bytes read and not yet given to the protocol state (encrypted under TLS).
    read_buffer: Vec<u8>,
    /// Encoded responses not yet written (plaintext).
    pending: Vec<u8>,
    /// Bytes ready for the socket (encrypted under TLS), from `written` on.
    write_buffer: Vec<u8>,
    written: usize,
    /// The client closed its side: nothing more to read.
    read_closed: bool,
    /// The limits on the client's input.
    gate: Gate,
    /// Input refused by the gate, reported once what came before it is answered.
    refused: Option<Refusal>,
}

/// Why [`Stream::next`] or [`Stream::flush`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error<E> {
    /// The peer closed the connection (or the TLS session).
    #[error("the connection was closed")]
    Closed,
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Tls(#[from] rustls::Error),
    /// The protocol state failed (malformed input and the like).
    #[error("protocol error")]
    State(E),
    /// The client sent more than the limits allow (see [`super::input`]).
    #[error("input refused")]
    Refused(Refusal),
}

impl Stream {
    pub fn insecure(stream: TcpStream) -> Stream {
        Stream {
            stream,
            tls: None,
            read_buffer: Vec::new(),
            pending: Vec::new(),
            write_buffer: Vec::new(),
            written: 0,
            read_closed: false,
            gate: Gate::new(BEFORE_LOGIN),
            refused: None,
        }
    }

    /// A connection whose TLS handshake is done.
    pub fn tls(stream: tokio_rustls::server::TlsStream<TcpStream>) -> Stream {
        let (stream, tls) = stream.into_inner();
        Stream {
            tls: Some(rustls::Connection::Server(tls)),
            ..Stream::insecure(stream)
        }
    }

    /// Applies other limits to the client's input from now on (after login).
    pub fn set_limits(&mut self, limits: Limits) {
        self.gate.set_limits(limits);
    }

    /// Progresses `state` until its next event. Input is read only when the state
    /// needs it, and everything it produced is written before that.
    pub async fn next<F: State>(&mut self, mut state: F) -> Result<F::Event, Error<F::Error>> {
        loop {
            let input = self.plaintext_input().map_err(io_error)?;
            if !input.is_empty() {
                self.gate.push(&input);
            }
            if self.refused.is_none() && self.gate.has_unread() {
                let mut passed = Vec::new();
                self.refused = self.gate.pass(&mut passed);
                if !passed.is_empty() {
                    state.enqueue_input(&passed);
                }
            }
            let io = match state.next() {
                Ok(event) => return Ok(event),
                Err(Interrupt::Error(error)) => return Err(Error::State(error)),
                Err(Interrupt::Io(io)) => io,
            };
            match io {
                Io::Output(bytes) => {
                    self.pending.extend_from_slice(&bytes);
                    if self.pending.len() < BATCH {
                        // More may follow at once: written together.
                        continue;
                    }
                    self.seal().map_err(io_error)?;
                    self.progress(false).await.map_err(io_error)?;
                }
                Io::NeedMoreInput => {
                    // Everything before the refused input is answered: now the refusal.
                    if let Some(refusal) = self.refused.take() {
                        return Err(Error::Refused(refusal));
                    }
                    if self.gate.has_unread() {
                        continue;
                    }
                    if self.read_closed {
                        // Answers to what the client sent before it closed still go out.
                        let _ = self.flush_inner().await;
                        return Err(Error::Closed);
                    }
                    self.seal().map_err(io_error)?;
                    self.progress(true).await.map_err(io_error)?;
                }
            }
        }
    }

    /// Writes everything produced so far (reading meanwhile, see the module docs).
    pub async fn flush(&mut self) -> Result<(), Error<std::convert::Infallible>> {
        self.flush_inner().await.map_err(io_error)
    }

    /// Whether encoded responses wait to be written.
    pub fn has_output(&self) -> bool {
        !self.pending.is_empty() || self.written < self.write_buffer.len()
    }

    async fn flush_inner(&mut self) -> Result<(), RawError> {
        self.seal()?;
        while self.written < self.write_buffer.len() {
            self.progress(false).await?;
        }
        self.stream.flush().await?;
        Ok(())
    }

    /// One step on the socket: writes what is ready while reading, or only reads when
    /// nothing is to be written (`want_input`: the caller has nothing to do until input
    /// arrives; otherwise a read alone is not worth waiting for).
    ///
    /// It waits for readiness and then reads or writes without waiting, so that an idle
    /// connection parked here holds no buffer (10,000 idle connections are the memory
    /// target: a read buffer held across the wait would be most of it).
    async fn progress(&mut self, want_input: bool) -> Result<(), RawError> {
        let has_output = self.written < self.write_buffer.len();
        let room = self.read_buffer.len() < READ_AHEAD;
        let want_read = !self.read_closed && (want_input || (has_output && room));
        if !has_output {
            if !want_input {
                return Ok(());
            }
            if !want_read {
                return Err(RawError::Closed);
            }
        }
        let stream = &self.stream;
        let readable = tokio::select! {
            ready = stream.readable(), if want_read => {
                ready?;
                true
            }
            ready = stream.writable(), if has_output => {
                ready?;
                false
            }
        };
        if readable {
            let mut chunk = [0u8; 16 * 1024];
            match stream.try_read(&mut chunk) {
                Ok(0) if !has_output => return Err(RawError::Closed),
                Ok(0) => self.read_closed = true,
                Ok(n) => self.read_buffer.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.into()),
            }
        } else {
            match stream.try_write(&self.write_buffer[self.written..]) {
                Ok(0) => return Err(RawError::Closed),
                Ok(n) => {
                    self.written += n;
                    if self.written == self.write_buffer.len() {
                        // Not kept: an idle connection holds no buffer.
                        self.write_buffer = Vec::new();
                        self.written = 0;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Moves the pending responses to the write buffer, encrypting them under TLS.
    fn seal(&mut self) -> Result<(), RawError> {
        if self.written > 0 && self.written == self.write_buffer.len() {
            self.write_buffer.clear();
            self.written = 0;
        }
        let Some(tls) = &mut self.tls else {
            if self.write_buffer.is_empty() {
                std::mem::swap(&mut self.write_buffer, &mut self.pending);
            } else {
                self.write_buffer.append(&mut self.pending);
            }
            return Ok(());
        };
        let mut plain = &self.pending[..];
        loop {
            while tls.wants_write() {
                tls.write_tls(&mut self.write_buffer)?;
            }
            if plain.is_empty() {
                break;
            }
            let n = tls.writer().write(plain)?;
            if n == 0 {
                return Err(RawError::Closed);
            }
            plain = &plain[n..];
        }
        self.pending = Vec::new();
        Ok(())
    }

    /// The input read so far, decrypted under TLS (and taken from the buffer).
    fn plaintext_input(&mut self) -> Result<Vec<u8>, RawError> {
        let Some(tls) = &mut self.tls else {
            return Ok(std::mem::take(&mut self.read_buffer));
        };
        let mut encrypted = &self.read_buffer[..];
        while tls.wants_read() && !encrypted.is_empty() {
            tls.read_tls(&mut encrypted)?;
            tls.process_new_packets()?;
        }
        let used = self.read_buffer.len() - encrypted.len();
        self.read_buffer.drain(..used);
        if self.read_buffer.is_empty() {
            self.read_buffer = Vec::new();
        }
        let mut plain = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match tls.reader().read(&mut chunk) {
                Ok(0) => return Err(RawError::Closed),
                Ok(n) => plain.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Err(RawError::Closed),
                Err(e) => return Err(e.into()),
            }
        }
        // rustls may answer by itself (alerts, key updates): it goes out with the rest.
        while tls.wants_write() {
            tls.write_tls(&mut self.write_buffer)?;
        }
        Ok(plain)
    }
}

/// The socket's errors, before the protocol state's error type is known.
#[derive(Debug)]
enum RawError {
    Closed,
    Io(std::io::Error),
    Tls(rustls::Error),
}

impl From<std::io::Error> for RawError {
    fn from(error: std::io::Error) -> RawError {
        RawError::Io(error)
    }
}

impl From<rustls::Error> for RawError {
    fn from(error: rustls::Error) -> RawError {
        RawError::Tls(error)
    }
}

fn io_error<E>(error: RawError) -> Error<E> {
    match error {
        RawError::Closed => Error::Closed,
        RawError::Io(error) => Error::Io(error),
        RawError::Tls(error) => Error::Tls(error),
    }
}

/// Takes the socket out of a plain stream, to start TLS on it (after STARTTLS).
/// Whatever the client sent before is dropped with the buffers: it was not protected.
impl From<Stream> for TcpStream {
    fn from(stream: Stream) -> TcpStream {
        stream.stream
    }
}
