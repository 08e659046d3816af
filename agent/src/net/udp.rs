//! The real DHCP transport: a UDP socket on port 68 tied to one interface.
//!
//! Before the interface has an address, this works because the client asks servers to
//! broadcast their replies (the BROADCAST flag), Linux delivers limited broadcasts
//! (255.255.255.255) on an address-less interface, and SO_BINDTODEVICE picks the interface
//! for our own broadcasts. No raw packet socket (and no hand-built IP/UDP headers) is needed.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use super::dhcp::Transport;

const CLIENT_PORT: u16 = 68;
const SERVER_PORT: u16 = 67;

/// A UDP socket bound to 0.0.0.0:68 on one interface, sending to 255.255.255.255:67.
#[derive(Debug)]
pub struct UdpTransport {
    socket: UdpSocket,
    started: Instant,
}

impl UdpTransport {
    /// Opens the socket on `interface` (which must be up).
    pub fn open(interface: &str) -> io::Result<Self> {
        // SAFETY: plain syscall; a non-negative result is a new descriptor we own.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh, valid descriptor owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let one: libc::c_int = 1;
        let one = (&raw const one).cast::<libc::c_void>();
        let int = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        setsockopt(&fd, libc::SO_REUSEADDR, one, int)?;
        setsockopt(&fd, libc::SO_BROADCAST, one, int)?;
        setsockopt(
            &fd,
            libc::SO_BINDTODEVICE,
            interface.as_ptr().cast(),
            interface.len() as libc::socklen_t,
        )?;
        let address = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: CLIENT_PORT.to_be(),
            sin_addr: libc::in_addr { s_addr: 0 }, // INADDR_ANY: broadcasts arrive there
            sin_zero: [0; 8],
        };
        // SAFETY: `address` is a valid sockaddr_in of the length given.
        let bound = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&raw const address).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if bound < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(UdpTransport {
            socket: UdpSocket::from(fd),
            started: Instant::now(),
        })
    }
}

fn setsockopt(
    fd: &OwnedFd,
    option: libc::c_int,
    value: *const libc::c_void,
    len: libc::socklen_t,
) -> io::Result<()> {
    // SAFETY: `value` points to `len` readable bytes for the duration of the call.
    if unsafe { libc::setsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, option, value, len) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl Transport for UdpTransport {
    fn send(&mut self, message: &[u8]) -> io::Result<()> {
        self.socket
            .send_to(message, SocketAddrV4::new(Ipv4Addr::BROADCAST, SERVER_PORT))
            .map(|_| ())
    }

    fn recv(&mut self, buf: &mut [u8], wait: Duration) -> io::Result<Option<usize>> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            // A zero timeout would mean "block forever"; `left` is never zero here.
            self.socket.set_read_timeout(Some(left))?;
            match self.socket.recv_from(buf) {
                Ok((len, from)) if from.port() == SERVER_PORT => return Ok(Some(len)),
                Ok(_) => continue, // not from a server port: someone else's traffic
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}
