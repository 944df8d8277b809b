//! `AuthLimiter`: a peer that fails to authenticate too often gets 429 instead of 401
//! for the rest of the minute (a valid token still passes: a shared address must not
//! lock the operators out). IPv6 peers count by /64, the block one host usually holds.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a peer's failures count.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Peers remembered at most; past it, expired windows are forgotten, then the oldest.
const PEERS: usize = 10_000;

/// Failed authentications by peer address, in fixed windows of a minute.
#[derive(Debug)]
pub struct AuthLimiter {
    /// Failures a peer may make in a window before it is refused; 0: no limit.
    limit: u32,
    peers: Mutex<HashMap<IpAddr, Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

impl AuthLimiter {
    /// A limiter refusing a peer after `limit` failures in a window (0: never).
    pub fn new(limit: u32) -> AuthLimiter {
        AuthLimiter {
            limit,
            peers: Mutex::default(),
        }
    }

    /// `Err(retry after)` while `peer` has failed `limit` times in its window.
    pub fn check(&self, peer: IpAddr, now: Instant) -> Result<(), Duration> {
        if self.limit == 0 {
            return Ok(());
        }
        let peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
        match peers.get(&bucket(peer)) {
            Some(window)
                if window.failures >= self.limit && now.duration_since(window.started) < WINDOW =>
            {
                Err(WINDOW.saturating_sub(now.duration_since(window.started)))
            }
            _ => Ok(()),
        }
    }

    /// Counts a failed authentication by `peer`.
    pub fn failed(&self, peer: IpAddr, now: Instant) {
        if self.limit == 0 {
            return;
        }
        let peer = bucket(peer);
        let mut peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
        if peers.len() >= PEERS && !peers.contains_key(&peer) {
            peers.retain(|_, window| now.duration_since(window.started) < WINDOW);
            if peers.len() >= PEERS
                && let Some(oldest) = peers
                    .iter()
                    .min_by_key(|(_, window)| window.started)
                    .map(|(peer, _)| *peer)
            {
                peers.remove(&oldest);
            }
        }
        let window = peers.entry(peer).or_insert(Window {
            started: now,
            failures: 0,
        });
        if now.duration_since(window.started) >= WINDOW {
            *window = Window {
                started: now,
                failures: 0,
            };
        }
        window.failures = window.failures.saturating_add(1);
    }
}

/// The address failures are counted under: an IPv4 address, or an IPv6 /64.
fn bucket(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(_) => peer,
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[8..].fill(0);
            IpAddr::from(octets)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_is_refused_after_its_failures_until_the_window_ends() {
        const FAILURES: u32 = 10;
        let limiter = AuthLimiter::new(FAILURES);
        let (peer, other) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        let start = Instant::now();
        for _ in 0..FAILURES - 1 {
            limiter.failed(peer, start);
        }
        assert_eq!(limiter.check(peer, start), Ok(()), "one failure left");
        limiter.failed(peer, start);
        let later = start + Duration::from_secs(20);
        assert_eq!(
            limiter.check(peer, later),
            Err(Duration::from_secs(40)),
            "refused for the rest of the window"
        );
        assert_eq!(limiter.check(other, later), Ok(()), "per peer");
        assert_eq!(
            limiter.check(peer, start + WINDOW),
            Ok(()),
            "the window ended"
        );
        limiter.failed(peer, start + WINDOW);
        assert_eq!(limiter.check(peer, start + WINDOW), Ok(()), "a new window");
    }

    #[test]
    fn ipv6_peers_count_by_their_64_block() {
        let limiter = AuthLimiter::new(2);
        let now = Instant::now();
        let a: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        let other: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        limiter.failed(a, now);
        limiter.failed(b, now);
        assert!(limiter.check(a, now).is_err(), "one /64, one count");
        assert_eq!(limiter.check(other, now), Ok(()));
    }

    #[test]
    fn a_limit_of_zero_never_refuses() {
        let limiter = AuthLimiter::new(0);
        let peer = IpAddr::from([10, 0, 0, 1]);
        let now = Instant::now();
        for _ in 0..1000 {
            limiter.failed(peer, now);
        }
        assert_eq!(limiter.check(peer, now), Ok(()));
    }
}
