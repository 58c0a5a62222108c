//! Connection limits Rocket 0.5 does not have: a header read timeout, an idle timeout, and
//! caps on connections overall and per client IP.
//!
//! Rocket 0.5 gives no hook on accepted connections (it even turns hyper's header read
//! timeout off), so the limits are enforced on the process's own sockets: every second a
//! sweep lists the connected TCP sockets on the server's port (`/proc/self/fd`) and shuts
//! down those that broke a limit; hyper then sees the end of the stream and drops the
//! connection, freeing its descriptor. The HTTP layer reports which connections have a
//! request in flight, and those are never cut.
//!
//! A response's idle clock starts when its head is sent, which suits the small bodies most
//! routes answer with but not a large file on a slow link. A body that opts in through
//! [`Connections::stream`] (a backup download) keeps its connection busy while it makes
//! progress: the idle clock restarts each time the client has taken another
//! [`MIN_PROGRESS_BYTES`], so a download is not cut while it moves more than that per idle
//! timeout, and one that stalls (a client that stops reading, or only trickles) is cut like
//! any idle connection. Silent, half-sent and idle connections keep their own clocks.

mod streaming;

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::dir::Dir;
use nix::fcntl::OFlag;
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::socket::{Shutdown, SockaddrStorage, getpeername, getsockname, shutdown};
use nix::sys::stat::Mode;

pub use streaming::{ConnectionsHandle, Streamed};

/// How much a streamed body must move to count as progress (64 KiB: at the default 30 s
/// idle timeout, a download slower than about 2 KiB/s is cut).
pub const MIN_PROGRESS_BYTES: u64 = 64 * 1024;

/// Descriptors kept for everything but client connections (database, logs, Stripe, SMTP).
const RESERVED_FDS: u64 = 128;

/// The limits, from the settings.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// A connection that has not completed a request this long after it opened is closed.
    pub header_read_timeout: Duration,
    /// A connection with no request in flight this long after its last response is closed.
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
}

#[derive(Debug, Clone, Copy)]
struct Peer {
    first_seen: Instant,
    in_flight: u32,
    last_done: Option<Instant>,
    /// Response bodies streaming to the connection (see [`Connections::stream`]).
    streaming: u32,
    /// When a streaming body last made progress.
    last_progress: Option<Instant>,
}

impl Peer {
    fn new(now: Instant) -> Peer {
        Peer {
            first_seen: now,
            in_flight: 0,
            last_done: None,
            streaming: 0,
            last_progress: None,
        }
    }
}

/// What the sweep knows of each client connection, keyed by its remote address.
pub struct Connections {
    limits: ConnectionLimits,
    peers: Mutex<HashMap<SocketAddr, Peer>>,
    /// `/proc/self/fd`, opened once: when the process is out of descriptors (the moment
    /// the sweep matters most) it could not open it again.
    fds: Option<Mutex<Dir>>,
}

/// One sweep's outcome, for the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub open: usize,
    pub timed_out: usize,
    pub over_cap: usize,
}

impl Connections {
    /// The limits, with the overall cap lowered to fit the descriptors the process may open.
    pub fn new(mut limits: ConnectionLimits) -> Connections {
        if let Ok((soft, _)) = getrlimit(Resource::RLIMIT_NOFILE) {
            let fit =
                usize::try_from(soft.saturating_sub(RESERVED_FDS).max(16)).unwrap_or(usize::MAX);
            limits.max_connections = limits.max_connections.min(fit);
        }
        let fds = Dir::open(
            "/proc/self/fd",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        );
        if let Err(e) = &fds {
            tracing::warn!(error = %e, "cannot list open descriptors: connection limits are off");
        }
        Connections {
            limits,
            peers: Mutex::new(HashMap::new()),
            fds: fds.ok().map(Mutex::new),
        }
    }

    pub fn limits(&self) -> ConnectionLimits {
        self.limits
    }

    fn with_peers<T>(&self, f: impl FnOnce(&mut HashMap<SocketAddr, Peer>) -> T) -> T {
        f(&mut self.peers.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// A request arrived on the connection from `remote`.
    pub fn request_started(&self, remote: SocketAddr) {
        let now = Instant::now();
        self.with_peers(|peers| {
            peers.entry(remote).or_insert(Peer::new(now)).in_flight += 1;
        });
    }

    /// The response to a request from `remote` is on its way.
    pub fn request_finished(&self, remote: SocketAddr) {
        let now = Instant::now();
        self.with_peers(|peers| {
            if let Some(peer) = peers.get_mut(&remote) {
                peer.in_flight = peer.in_flight.saturating_sub(1);
                peer.last_done = Some(now);
            }
        });
    }

    /// A response body starts streaming to `remote`: until the returned guard is dropped,
    /// the connection's idle clock counts from the body's last progress, not from the
    /// response's start. Handlers wrap their body in [`Streamed`] rather than call this.
    pub fn stream(self: &Arc<Self>, remote: SocketAddr) -> streaming::Streaming {
        let now = Instant::now();
        self.with_peers(|peers| {
            let peer = peers.entry(remote).or_insert(Peer::new(now));
            peer.streaming += 1;
            peer.last_progress = Some(now);
        });
        streaming::Streaming::new(self.clone(), remote)
    }

    fn stream_progressed(&self, remote: SocketAddr) {
        let now = Instant::now();
        self.with_peers(|peers| {
            if let Some(peer) = peers.get_mut(&remote) {
                peer.last_progress = Some(now);
            }
        });
    }

    fn stream_ended(&self, remote: SocketAddr) {
        let now = Instant::now();
        self.with_peers(|peers| {
            if let Some(peer) = peers.get_mut(&remote) {
                peer.streaming = peer.streaming.saturating_sub(1);
                peer.last_done = Some(now);
            }
        });
    }

    /// Shuts down the connections on `port` that broke a limit. Blocking (system calls on
    /// every descriptor): run it off the async executor.
    pub fn sweep(&self, port: u16) -> Swept {
        let Some(fds) = &self.fds else {
            return Swept::default();
        };
        let sockets = client_sockets(&mut fds.lock().unwrap_or_else(|e| e.into_inner()), port);
        let now = Instant::now();
        let (open, doomed, timed_out) = self.with_peers(|peers| {
            // Forget connections that are gone; meet the new ones.
            let live: HashSet<SocketAddr> = sockets.iter().map(|(_, r)| *r).collect();
            peers.retain(|remote, _| live.contains(remote));
            for (_, remote) in &sockets {
                peers.entry(*remote).or_insert(Peer::new(now));
            }
            let states: Vec<(SocketAddr, Peer)> = peers.iter().map(|(r, p)| (*r, *p)).collect();
            let (doomed, timed_out) = to_close(&states, now, &self.limits);
            for remote in &doomed {
                peers.remove(remote);
            }
            (sockets.len(), doomed, timed_out)
        });
        let cut = doomed.len();
        let doomed: HashSet<SocketAddr> = doomed.into_iter().collect();
        for (fd, remote) in &sockets {
            // The descriptor may have been closed and reused since it was listed: cut it
            // only if it still is the same connection.
            if doomed.contains(remote) && peer_of(*fd, port) == Some(*remote) {
                // Ending the stream, not closing the descriptor: hyper owns it and closes it.
                let _ = shutdown(*fd, Shutdown::Both);
            }
        }
        Swept {
            open,
            timed_out,
            over_cap: cut - timed_out,
        }
    }
}

/// The connections to close: first those past a timeout, then, newest first, idle ones
/// beyond the per-IP and overall caps. Returns them and how many timed out.
fn to_close(
    peers: &[(SocketAddr, Peer)],
    now: Instant,
    limits: &ConnectionLimits,
) -> (Vec<SocketAddr>, usize) {
    let expired = |p: &Peer| {
        p.in_flight == 0
            && match (p.streaming, p.last_progress, p.last_done) {
                (1.., Some(moved), _) => now.duration_since(moved) >= limits.idle_timeout,
                (_, _, None) => now.duration_since(p.first_seen) >= limits.header_read_timeout,
                (_, _, Some(done)) => now.duration_since(done) >= limits.idle_timeout,
            }
    };
    let mut doomed: Vec<SocketAddr> = peers
        .iter()
        .filter(|(_, p)| expired(p))
        .map(|(r, _)| *r)
        .collect();
    let timed_out = doomed.len();
    let mut alive: Vec<&(SocketAddr, Peer)> = peers.iter().filter(|(_, p)| !expired(p)).collect();
    // Oldest first, so the newest are the ones over a cap.
    alive.sort_by_key(|(r, p)| (p.first_seen, *r));
    let mut per_ip: HashMap<IpAddr, usize> = HashMap::new();
    let mut kept = 0;
    for (remote, peer) in alive {
        let count = per_ip.entry(remote.ip()).or_default();
        let over = *count >= limits.max_connections_per_ip || kept >= limits.max_connections;
        if over && peer.in_flight == 0 && peer.streaming == 0 {
            doomed.push(*remote);
        } else {
            *count += 1;
            kept += 1;
        }
    }
    (doomed, timed_out)
}

/// Every connected TCP socket of this process whose local port is `port`, with its remote address.
fn client_sockets(fds: &mut Dir, port: u16) -> Vec<(RawFd, SocketAddr)> {
    let listing: Vec<RawFd> = fds
        .iter()
        .filter_map(|e| e.ok()?.file_name().to_str().ok()?.parse().ok())
        .collect();
    listing
        .into_iter()
        .filter_map(|fd| Some((fd, peer_of(fd, port)?)))
        .collect()
}

/// The remote address of `fd` if it is a TCP connection accepted on `port`.
fn peer_of(fd: RawFd, port: u16) -> Option<SocketAddr> {
    let local = socket_addr(&getsockname::<SockaddrStorage>(fd).ok()?)?;
    if local.port() != port {
        return None;
    }
    socket_addr(&getpeername::<SockaddrStorage>(fd).ok()?)
}

fn socket_addr(addr: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = addr.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    addr.as_sockaddr_in6()
        .map(|v6| SocketAddr::V6((*v6).into()))
}

/// Raises the soft limit on open files to the hard limit (many systems start services
/// at 1,024); returns the limits now in force.
pub fn raise_fd_limit() -> nix::Result<(u64, u64)> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    getrlimit(Resource::RLIMIT_NOFILE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_connections: 3,
            max_connections_per_ip: 2,
        }
    }

    fn addr(ip: [u8; 4], port: u16) -> SocketAddr {
        SocketAddr::from((ip, port))
    }

    #[test]
    fn silent_half_sent_and_idle_connections_time_out_but_busy_ones_never() {
        let start = Instant::now();
        let now = start + Duration::from_secs(40);
        let peers = [
            // Opened 40 s ago, never completed a request.
            (
                addr([10, 0, 0, 1], 1),
                Peer {
                    first_seen: start,
                    in_flight: 0,
                    last_done: None,
                    ..Peer::new(start)
                },
            ),
            // Answered 35 s ago, idle since.
            (
                addr([10, 0, 0, 2], 1),
                Peer {
                    first_seen: start,
                    in_flight: 0,
                    last_done: Some(start + Duration::from_secs(5)),
                    ..Peer::new(start)
                },
            ),
            // Answered 5 s ago.
            (
                addr([10, 0, 0, 3], 1),
                Peer {
                    first_seen: start,
                    in_flight: 0,
                    last_done: Some(start + Duration::from_secs(35)),
                    ..Peer::new(start)
                },
            ),
            // A request running for 40 s (a slow upstream): never cut.
            (
                addr([10, 0, 0, 4], 1),
                Peer {
                    first_seen: start,
                    in_flight: 1,
                    last_done: None,
                    ..Peer::new(start)
                },
            ),
        ];
        let (doomed, timed_out) = to_close(&peers, now, &limits());
        assert_eq!(timed_out, 2);
        assert_eq!(doomed, vec![addr([10, 0, 0, 1], 1), addr([10, 0, 0, 2], 1)]);
    }

    #[test]
    fn the_newest_idle_connections_beyond_a_cap_are_cut() {
        let start = Instant::now();
        let at = |s| start + Duration::from_secs(s);
        let peer = |first, in_flight| Peer {
            first_seen: at(first),
            in_flight,
            ..Peer::new(start)
        };
        let one = [10, 0, 0, 1];
        let peers = [
            (addr(one, 1), peer(0, 0)),
            (addr(one, 2), peer(1, 0)),
            (addr(one, 3), peer(2, 0)), // third from one IP: over the per-IP cap of 2
            (addr(one, 4), peer(3, 1)), // over too, but busy: kept
            (addr([10, 0, 0, 2], 1), peer(4, 0)), // over the overall cap of 3
        ];
        let (doomed, timed_out) = to_close(&peers, at(5), &limits());
        assert_eq!(timed_out, 0);
        assert_eq!(doomed, vec![addr(one, 3), addr([10, 0, 0, 2], 1)]);
    }

    #[test]
    fn a_streaming_body_keeps_its_connection_while_it_moves_and_loses_it_when_it_stalls() {
        let start = Instant::now();
        let at = |s| start + Duration::from_secs(s);
        let streaming = |moved| Peer {
            // Its response started 100 s ago: long past the idle timeout.
            last_done: Some(start),
            streaming: 1,
            last_progress: Some(at(moved)),
            ..Peer::new(start)
        };
        let peers = [
            (addr([10, 0, 0, 1], 1), streaming(95)), // moved 5 s ago
            (addr([10, 0, 0, 2], 1), streaming(60)), // stalled for 40 s
            // The same connection after its body ended: idle from then on.
            (
                addr([10, 0, 0, 3], 1),
                Peer {
                    last_done: Some(at(90)),
                    last_progress: Some(at(90)),
                    ..Peer::new(start)
                },
            ),
        ];
        let (doomed, timed_out) = to_close(&peers, at(100), &limits());
        assert_eq!(timed_out, 1);
        assert_eq!(doomed, vec![addr([10, 0, 0, 2], 1)]);
        // Nor is a moving download cut for a cap.
        let one = [10, 0, 0, 9];
        let crowded = [
            (addr(one, 1), Peer::new(at(95))),
            (addr(one, 2), Peer::new(at(95))),
            // Third from one IP (over the cap of 2) and the newest, but moving: kept.
            (
                addr(one, 3),
                Peer {
                    first_seen: at(99),
                    ..streaming(99)
                },
            ),
        ];
        let (doomed, _) = to_close(&crowded, at(100), &limits());
        assert!(!doomed.contains(&addr(one, 3)), "{doomed:?}");
    }
}
