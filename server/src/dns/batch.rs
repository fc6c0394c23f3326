//! Many datagrams a system call: `recvmmsg` reads up to [`BATCH`] queries at once and
//! `sendmmsg` sends their answers back together, where `recv_from`/`send_to` made two
//! system calls a query. The socket stays non-blocking and owned by tokio; these calls
//! run inside its `try_io`, so readiness is tracked as for any other read or write.
//!
//! Answers of one length to one sender go out as one datagram header with
//! `UDP_SEGMENT` (UDP GSO, Linux 4.18): the kernel cuts them apart into one datagram
//! each only at the end of its path, so the IP and UDP layers run once for the run,
//! not once an answer. The client still gets one datagram per answer. Where the
//! kernel or the device refuses it, the loop sends one header an answer from then on.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// Datagrams a call reads or writes at most.
pub const BATCH: usize = 32;

/// The control message that makes one send several datagrams (linux/udp.h).
const UDP_SEGMENT: libc::c_int = 103;

/// Answers longer than this go one a header: a segment must cross the path without
/// fragments (1232 octets, the EDNS size of DNS flag day 2020, fits any IPv6 path).
const SEGMENT_MAX: usize = 1232;

/// Buffers for one receive loop: the datagrams read, where they came from, and the
/// answers to send back to the same addresses.
pub struct Batch {
    buffers: Vec<Box<[u8]>>,
    lengths: [usize; BATCH],
    addresses: [libc::sockaddr_storage; BATCH],
    address_lengths: [libc::socklen_t; BATCH],
    /// Whether runs of answers go out with `UDP_SEGMENT` (until the kernel refuses).
    segments: bool,
}

impl Batch {
    /// Room for [`BATCH`] datagrams of up to `size` octets each.
    pub fn new(size: usize) -> Batch {
        Batch {
            buffers: (0..BATCH)
                .map(|_| vec![0u8; size].into_boxed_slice())
                .collect(),
            lengths: [0; BATCH],
            // SAFETY: an all-zero sockaddr_storage is a valid value (family AF_UNSPEC).
            addresses: unsafe { std::mem::zeroed() },
            address_lengths: [0; BATCH],
            segments: true,
        }
    }

    /// Reads what is waiting on `fd`, up to [`BATCH`] datagrams, without blocking
    /// (`WouldBlock` when there is nothing); returns how many were read.
    pub fn receive(&mut self, fd: RawFd) -> io::Result<usize> {
        let mut iovecs: [libc::iovec; BATCH] = std::array::from_fn(|i| libc::iovec {
            iov_base: self.buffers[i].as_mut_ptr().cast(),
            iov_len: self.buffers[i].len(),
        });
        // SAFETY: an all-zero mmsghdr is valid (null pointers, zero lengths); every
        // pointer set below points into `self` or `iovecs`, which outlive the call.
        let mut messages: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for (i, message) in messages.iter_mut().enumerate() {
            message.msg_hdr.msg_name =
                (&mut self.addresses[i] as *mut libc::sockaddr_storage).cast();
            message.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as _;
            message.msg_hdr.msg_iov = &mut iovecs[i];
            message.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: `messages` holds BATCH valid headers whose buffers are writable for
        // their stated lengths; the timeout pointer may be null.
        let read = unsafe {
            libc::recvmmsg(
                fd,
                messages.as_mut_ptr(),
                BATCH as _,
                libc::MSG_DONTWAIT as _,
                std::ptr::null_mut(),
            )
        };
        if read < 0 {
            return Err(io::Error::last_os_error());
        }
        let read = read as usize;
        for (i, message) in messages.iter().enumerate().take(read) {
            // A datagram larger than the buffer is cut: it is not a query we answer.
            self.lengths[i] = if message.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                0
            } else {
                message.msg_len as usize
            };
            self.address_lengths[i] = message.msg_hdr.msg_namelen;
        }
        Ok(read)
    }

    /// Datagram `i` of the last [`Batch::receive`], and its sender.
    pub fn datagram(&self, i: usize) -> (&[u8], Option<SocketAddr>) {
        (&self.buffers[i][..self.lengths[i]], self.sender(i))
    }

    fn sender(&self, i: usize) -> Option<SocketAddr> {
        let storage = &self.addresses[i];
        match i32::from(storage.ss_family) {
            libc::AF_INET => {
                // SAFETY: the family says the storage holds a sockaddr_in.
                let v4: &libc::sockaddr_in =
                    unsafe { &*(storage as *const libc::sockaddr_storage).cast() };
                Some(SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr)),
                    u16::from_be(v4.sin_port),
                )))
            }
            libc::AF_INET6 => {
                // SAFETY: the family says the storage holds a sockaddr_in6.
                let v6: &libc::sockaddr_in6 =
                    unsafe { &*(storage as *const libc::sockaddr_storage).cast() };
                Some(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(v6.sin6_addr.s6_addr),
                    u16::from_be(v6.sin6_port),
                    v6.sin6_flowinfo,
                    v6.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }

    /// The address of datagram `i`'s sender, as the kernel wrote it.
    fn address_bytes(&self, i: usize) -> &[u8] {
        let length =
            (self.address_lengths[i] as usize).min(std::mem::size_of::<libc::sockaddr_storage>());
        // SAFETY: the storage is plain bytes of at least `length`.
        unsafe {
            std::slice::from_raw_parts(
                (&self.addresses[i] as *const libc::sockaddr_storage).cast::<u8>(),
                length,
            )
        }
    }

    /// Puts the answers in `which` to one sender and of one length next to each
    /// other, so that [`Batch::send`] sends each such run with one header. Answers to
    /// different senders have no order between them; one sender's keep theirs within
    /// a length, and UDP promises none.
    pub fn order(&self, which: &mut [usize], answers: &[Vec<u8>]) {
        if self.segments {
            which.sort_by(|&a, &b| {
                self.address_bytes(a)
                    .cmp(self.address_bytes(b))
                    .then(answers[a].len().cmp(&answers[b].len()))
            });
        }
    }

    /// Sends `answers[i]` to the sender of datagram `i` of the last receive, for each
    /// `i` in `which`, without blocking; returns how many went out, from the first
    /// (`WouldBlock` when none could). Runs of `which` to one sender with answers of
    /// one length (see [`Batch::order`]) go as one header with `UDP_SEGMENT`.
    pub fn send(&mut self, fd: RawFd, which: &[usize], answers: &[Vec<u8>]) -> io::Result<usize> {
        match self.send_runs(fd, which, answers, self.segments) {
            (Err(error), true)
                if matches!(
                    error.raw_os_error(),
                    Some(libc::EINVAL | libc::EIO | libc::EOPNOTSUPP | libc::ENOPROTOOPT)
                ) =>
            {
                // The kernel or the route's device cannot cut datagrams apart: one
                // header an answer from now on.
                tracing::debug!(%error, "UDP_SEGMENT refused; sending answers one by one");
                self.segments = false;
                self.send_runs(fd, which, answers, false).0
            }
            (result, _) => result,
        }
    }

    /// [`Batch::send`], with runs or without; also whether the first header carried
    /// a run (what a refusal of `UDP_SEGMENT` shows as an error of the call).
    fn send_runs(
        &mut self,
        fd: RawFd,
        which: &[usize],
        answers: &[Vec<u8>],
        segments: bool,
    ) -> (io::Result<usize>, bool) {
        let count = which.len().min(BATCH);
        let mut iovecs: [libc::iovec; BATCH] = std::array::from_fn(|_| libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        });
        for (slot, &i) in which.iter().take(count).enumerate() {
            // sendmmsg only reads the buffer; iovec has no const variant.
            iovecs[slot] = libc::iovec {
                iov_base: answers[i].as_ptr().cast_mut().cast(),
                iov_len: answers[i].len(),
            };
        }
        // Room for one cmsghdr and its u16, aligned as a cmsghdr.
        let mut controls = [[0u64; 4]; BATCH];
        // SAFETY: as in `receive`: zeroed headers are valid, and the pointers set
        // below point into `self`, `iovecs` and `controls`, which outlive the call.
        let mut messages: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        // How many answers each header carries.
        let mut runs = [0usize; BATCH];
        let (mut slot, mut headers) = (0, 0);
        while slot < count {
            let i = which[slot];
            let length = answers[i].len();
            let mut run = 1;
            if segments && length > 0 && length <= SEGMENT_MAX {
                while slot + run < count {
                    let next = which[slot + run];
                    if answers[next].len() != length
                        || self.address_bytes(next) != self.address_bytes(i)
                    {
                        break;
                    }
                    run += 1;
                }
            }
            let header = &mut messages[headers].msg_hdr;
            header.msg_name = (&mut self.addresses[i] as *mut libc::sockaddr_storage).cast();
            header.msg_namelen = self.address_lengths[i];
            header.msg_iov = &mut iovecs[slot];
            header.msg_iovlen = run as _;
            if run > 1 {
                let control = controls[headers].as_mut_ptr().cast::<libc::cmsghdr>();
                // SAFETY: `control` has room for CMSG_SPACE(2) bytes (24 < 32) and is
                // aligned for a cmsghdr; CMSG_DATA points inside it.
                unsafe {
                    (*control).cmsg_len = libc::CMSG_LEN(2) as _;
                    (*control).cmsg_level = libc::SOL_UDP;
                    (*control).cmsg_type = UDP_SEGMENT;
                    libc::CMSG_DATA(control)
                        .cast::<u16>()
                        .write_unaligned(length as u16);
                    header.msg_control = control.cast();
                    header.msg_controllen = libc::CMSG_SPACE(2) as _;
                }
            }
            runs[headers] = run;
            headers += 1;
            slot += run;
        }
        // SAFETY: the first `headers` headers are valid and their buffers readable.
        let sent = unsafe {
            libc::sendmmsg(
                fd,
                messages.as_mut_ptr(),
                headers as _,
                libc::MSG_DONTWAIT as _,
            )
        };
        let first_was_run = headers > 0 && runs[0] > 1;
        if sent < 0 {
            return (Err(io::Error::last_os_error()), first_was_run);
        }
        (Ok(runs[..sent as usize].iter().sum()), first_was_run)
    }
}

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    use super::*;

    /// Answers read and sent in batches reach each sender as one datagram each, with
    /// their own bytes, whether they went in runs of one header (one sender, one
    /// length) or alone; and the kernel here takes the runs.
    #[test]
    fn each_answer_reaches_its_sender_as_a_datagram_of_its_own() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server.set_nonblocking(true).unwrap();
        let clients: Vec<UdpSocket> = (0..3)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        // Client 0 asks 5 questions, client 1 asks 4, client 2 one; 10 in all.
        let asked: Vec<(usize, String)> = (0..10)
            .map(|n| {
                (
                    if n < 5 {
                        0
                    } else if n < 9 {
                        1
                    } else {
                        2
                    },
                    format!("q{n}"),
                )
            })
            .collect();
        for (client, query) in &asked {
            clients[*client]
                .send_to(query.as_bytes(), server.local_addr().unwrap())
                .unwrap();
        }
        let mut batch = Batch::new(512);
        let read = batch.receive(server.as_raw_fd()).unwrap();
        assert_eq!(read, asked.len(), "loopback queues every datagram at once");
        // Answers of one length, but every third one longer: runs and lone answers.
        let answers: Vec<Vec<u8>> = (0..read)
            .map(|i| {
                let query = String::from_utf8(batch.datagram(i).0.to_vec()).unwrap();
                let pad = if i % 3 == 0 { "+long" } else { "" };
                format!("answer to {query}{pad}").into_bytes()
            })
            .collect();
        let mut which: Vec<usize> = (0..read).collect();
        batch.order(&mut which, &answers);
        let mut sent = 0;
        while sent < which.len() {
            sent += batch
                .send(server.as_raw_fd(), &which[sent..], &answers)
                .unwrap();
        }
        assert_eq!(sent, asked.len());
        assert!(batch.segments, "this kernel sends runs with UDP_SEGMENT");
        for (c, client) in clients.iter().enumerate() {
            client
                .set_read_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            // The answers to this client's questions, whatever order they were read in.
            let mut expected: Vec<String> = (0..read)
                .filter(|&i| {
                    let query = batch.datagram(i).0;
                    asked
                        .iter()
                        .any(|(to, q)| *to == c && q.as_bytes() == query)
                })
                .map(|i| String::from_utf8(answers[i].clone()).unwrap())
                .collect();
            assert!(!expected.is_empty());
            let mut got = Vec::new();
            let mut buffer = [0u8; 2048];
            for _ in 0..expected.len() {
                let (n, from) = client.recv_from(&mut buffer).unwrap();
                assert_eq!(from, server.local_addr().unwrap());
                got.push(String::from_utf8(buffer[..n].to_vec()).unwrap());
            }
            client.set_nonblocking(true).unwrap();
            assert!(
                client.recv_from(&mut buffer).is_err(),
                "nothing more for {c}"
            );
            got.sort();
            expected.sort();
            assert_eq!(got, expected, "client {c}");
        }
    }
}
