//! The only unsafe code of the workspace: socket options that neither `socket2` nor `libc`
//! wrap safely.
//!
//! Why unsafe is needed here: `TCP_MD5SIG` (RFC 2385), `IP_MINTTL` / `IPV6_MINHOPCOUNT`
//! (GTSM, RFC 5082) and `TCP_SAVED_SYN` are reached only through raw `setsockopt(2)` /
//! `getsockopt(2)` with a pointer and a length; no crate we depend on exposes them
//! (`libc` has the constants but not `struct tcp_md5sig`, `nix` has nothing for MD5).
//! The workspace lint is therefore `unsafe_code = "deny"` (not `forbid`, which could not be
//! lifted here) and this module alone carries `#![allow(unsafe_code)]`. Everything it
//! exports is a safe function taking a [`BorrowedFd`], so the fd is open for the call.
//!
//! Each `unsafe` block is one system call whose pointer and length come from a live Rust
//! value of exactly that size; the kernel copies the value in (set) or writes at most the
//! given length (get). Keep it that way: no pointer escapes a call.
#![allow(unsafe_code)]

use std::{
    io,
    mem::size_of,
    net::{IpAddr, SocketAddr},
    os::fd::{AsRawFd, BorrowedFd},
};

use libc::{c_int, c_void, socklen_t};
use socket2::{SockAddr, SockAddrStorage};

/// Longest key the kernel accepts (`TCP_MD5SIG_MAXKEYLEN`).
pub(crate) const MD5_MAX_KEY_LEN: usize = 80;

/// `struct tcp_md5sig` from `<linux/tcp.h>`; `libc` does not define it.
///
/// ```text
/// struct tcp_md5sig {
///     struct __kernel_sockaddr_storage tcpm_addr; /* 128 bytes */
///     __u8  tcpm_flags;     /* TCP_MD5SIG_FLAG_PREFIX / _IFINDEX, only with TCP_MD5SIG_EXT */
///     __u8  tcpm_prefixlen;
///     __u16 tcpm_keylen;    /* 0 deletes the key for tcpm_addr */
///     int   tcpm_ifindex;
///     __u8  tcpm_key[TCP_MD5SIG_MAXKEYLEN];
/// };                        /* 216 bytes */
/// ```
#[repr(C)]
struct TcpMd5Sig {
    addr: SockAddrStorage,
    flags: u8,
    prefixlen: u8,
    keylen: u16,
    ifindex: c_int,
    key: [u8; MD5_MAX_KEY_LEN],
}

// The kernel checks `optlen >= sizeof(struct tcp_md5sig)`; a layout mistake would be a
// silent EINVAL at run time, so pin it at compile time.
const _: () = assert!(size_of::<TcpMd5Sig>() == 216);
const _: () = assert!(size_of::<SockAddrStorage>() == 128);

impl Drop for TcpMd5Sig {
    fn drop(&mut self) {
        // Best effort: do not leave a copy of the key on the stack.
        self.key.fill(0);
        std::hint::black_box(&self.key);
    }
}

/// Installs (`Some(key)`) or deletes (`None`) the TCP-MD5 key for segments exchanged with
/// `peer` on this socket. On a listener, the key must be there before the peer's SYN
/// arrives; accepted sockets inherit it. `peer` must have the socket's address family
/// (an IPv4 peer on an IPv6 socket must be given as `::ffff:a.b.c.d`).
///
/// Deleting a key that does not exist fails with `ENOENT`.
pub(crate) fn set_tcp_md5sig(fd: BorrowedFd<'_>, peer: IpAddr, key: Option<&[u8]>) -> io::Result<()> {
    let key = key.unwrap_or_default();
    if key.len() > MD5_MAX_KEY_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "TCP-MD5 key longer than 80 bytes",
        ));
    }
    let mut sig = TcpMd5Sig {
        addr: SockAddr::from(SocketAddr::new(peer, 0)).as_storage(),
        flags: 0,
        prefixlen: 0,
        keylen: key.len() as u16,
        ifindex: 0,
        key: [0; MD5_MAX_KEY_LEN],
    };
    sig.key[..key.len()].copy_from_slice(key);
    setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_MD5SIG, &sig)
}

/// Sets the minimum TTL (IPv4, `IP_MINTTL`) or hop limit (IPv6, `IPV6_MINHOPCOUNT`) of
/// accepted packets; lower ones are dropped by the kernel without any error (GTSM).
pub(crate) fn set_min_ttl(fd: BorrowedFd<'_>, ipv6: bool, min_ttl: u8) -> io::Result<()> {
    let value = c_int::from(min_ttl);
    if ipv6 {
        setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_MINHOPCOUNT, &value)
    } else {
        setsockopt(fd, libc::IPPROTO_IP, libc::IP_MINTTL, &value)
    }
}

/// Reads back the minimum TTL / hop limit (0 = none).
pub(crate) fn min_ttl(fd: BorrowedFd<'_>, ipv6: bool) -> io::Result<u8> {
    let mut value: c_int = 0;
    let len = if ipv6 {
        getsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_MINHOPCOUNT, &mut value)?
    } else {
        getsockopt(fd, libc::IPPROTO_IP, libc::IP_MINTTL, &mut value)?
    };
    if len != size_of::<c_int>() {
        return Err(io::Error::other("short getsockopt result for minimum TTL"));
    }
    u8::try_from(value).map_err(|_| io::Error::other("minimum TTL out of range"))
}

/// Makes a listener keep each incoming SYN's headers (`TCP_SAVE_SYN`) so the accepted
/// socket can tell the TTL the connection was opened with (see [`saved_syn_ttl`]).
pub(crate) fn set_save_syn(fd: BorrowedFd<'_>) -> io::Result<()> {
    setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_SAVE_SYN, &(1 as c_int))
}

/// TTL (IPv4) or hop limit (IPv6) of the SYN that opened this accepted connection, from
/// the headers saved by `TCP_SAVE_SYN` on the listener. Reading frees the saved copy, so a
/// second call returns `None`.
pub(crate) fn saved_syn_ttl(fd: BorrowedFd<'_>) -> io::Result<Option<u8>> {
    // IPv4 header with options (60) + IPv6 header (40) + extension room + TCP header with
    // options (60) stay well below 512 bytes.
    let mut buf = [0u8; 512];
    let len = getsockopt(fd, libc::IPPROTO_TCP, libc::TCP_SAVED_SYN, &mut buf)?;
    let headers = &buf[..len.min(buf.len())];
    Ok(match headers.first().map(|b| b >> 4) {
        Some(4) => headers.get(8).copied(), // IPv4: TTL at offset 8
        Some(6) => headers.get(7).copied(), // IPv6: hop limit at offset 7
        _ => None,
    })
}

fn setsockopt<T>(fd: BorrowedFd<'_>, level: c_int, name: c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` is a live, initialised `T` for the whole call and the length passed is
    // exactly `size_of::<T>()`; the kernel only reads (copies) that many bytes. `fd` is open
    // for the lifetime of the borrow.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast::<c_void>(),
            size_of::<T>() as socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Returns the number of bytes the kernel wrote into `value`.
fn getsockopt<T: Copy>(fd: BorrowedFd<'_>, level: c_int, name: c_int, value: &mut T) -> io::Result<usize> {
    let mut len = size_of::<T>() as socklen_t;
    // SAFETY: `value` is a live, exclusively borrowed `T` (plain data: `Copy`, every bit
    // pattern valid for the integer and byte-array types used here) and `len` holds its
    // size; the kernel writes at most `len` bytes and stores the written length in `len`.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *mut T).cast::<c_void>(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(len as usize)
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use socket2::{Domain, Socket, Type};

    use super::*;

    #[test]
    fn md5_key_set_and_delete_on_a_listener() {
        let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        let peer: IpAddr = "192.0.2.9".parse().unwrap();
        set_tcp_md5sig(sock.as_fd(), peer, Some(b"secret")).unwrap();
        set_tcp_md5sig(sock.as_fd(), peer, None).unwrap();
        // Deleting again: the kernel reports that no key exists.
        let err = set_tcp_md5sig(sock.as_fd(), peer, None).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
        let err = set_tcp_md5sig(sock.as_fd(), peer, Some(&[b'x'; 81])).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn md5_key_family_must_match_socket() {
        let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        let err = set_tcp_md5sig(sock.as_fd(), "2001:db8::1".parse().unwrap(), Some(b"k")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
        let sock6 = Socket::new(Domain::IPV6, Type::STREAM, None).unwrap();
        set_tcp_md5sig(sock6.as_fd(), "2001:db8::1".parse().unwrap(), Some(b"k")).unwrap();
    }

    #[test]
    fn min_ttl_round_trips_both_families() {
        for (domain, v6) in [(Domain::IPV4, false), (Domain::IPV6, true)] {
            let sock = Socket::new(domain, Type::STREAM, None).unwrap();
            assert_eq!(min_ttl(sock.as_fd(), v6).unwrap(), 0);
            set_min_ttl(sock.as_fd(), v6, 254).unwrap();
            assert_eq!(min_ttl(sock.as_fd(), v6).unwrap(), 254);
        }
    }

    #[test]
    fn saved_syn_reports_the_ttl_of_the_syn() {
        let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        set_save_syn(listener.as_fd()).unwrap();
        listener
            .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
            .unwrap();
        listener.listen(1).unwrap();
        let addr = listener.local_addr().unwrap();
        let client = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        client.set_ttl_v4(77).unwrap();
        client.connect(&addr).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        assert_eq!(saved_syn_ttl(accepted.as_fd()).unwrap(), Some(77));
        // The saved copy is freed by the first read.
        assert_eq!(saved_syn_ttl(accepted.as_fd()).unwrap(), None);
    }
}
