//! Many datagrams a system call: `recvmmsg` reads up to [`BATCH`] queries at once and
//! `sendmmsg` sends their answers back together, where `recv_from`/`send_to` made two
//! system calls a query. The socket stays non-blocking and owned by tokio; these calls
//! run inside its `try_io`, so readiness is tracked as for any other read or write.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// Datagrams a call reads or writes at most.
pub const BATCH: usize = 32;

/// Buffers for one receive loop: the datagrams read, where they came from, and the
/// answers to send back to the same addresses.
pub struct Batch {
    buffers: Vec<Box<[u8]>>,
    lengths: [usize; BATCH],
    addresses: [libc::sockaddr_storage; BATCH],
    address_lengths: [libc::socklen_t; BATCH],
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

    /// Sends `answers[i]` to the sender of datagram `i` of the last receive, for each
    /// `i` in `which`, without blocking; returns how many went out, from the first
    /// (`WouldBlock` when none could).
    pub fn send(&mut self, fd: RawFd, which: &[usize], answers: &[Vec<u8>]) -> io::Result<usize> {
        let count = which.len().min(BATCH);
        let mut iovecs: [libc::iovec; BATCH] = std::array::from_fn(|_| libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        });
        // SAFETY: as in `receive`: zeroed headers are valid, and the pointers set
        // below point into `self` and `iovecs`, which outlive the call.
        let mut messages: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for (slot, &i) in which.iter().take(count).enumerate() {
            // sendmmsg only reads the buffer; iovec has no const variant.
            iovecs[slot] = libc::iovec {
                iov_base: answers[i].as_ptr().cast_mut().cast(),
                iov_len: answers[i].len(),
            };
            let header = &mut messages[slot].msg_hdr;
            header.msg_name = (&mut self.addresses[i] as *mut libc::sockaddr_storage).cast();
            header.msg_namelen = self.address_lengths[i];
            header.msg_iov = &mut iovecs[slot];
            header.msg_iovlen = 1;
        }
        // SAFETY: the first `count` headers are valid and their buffers readable.
        let sent = unsafe {
            libc::sendmmsg(
                fd,
                messages.as_mut_ptr(),
                count as _,
                libc::MSG_DONTWAIT as _,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(sent as usize)
    }
}
