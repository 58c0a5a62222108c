//! Where a request came from: the client address and user agent, for audit rows and per-IP limits.

use std::net::IpAddr;

/// The client of a request (read from it by the HTTP layer's request guard).
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl ClientInfo {
    /// The key for per-IP limits; requests without a known address share one bucket.
    /// An IPv6 client usually holds a whole /64, so that is what counts as one address.
    pub fn ip_key(&self) -> String {
        match self.ip {
            None => "unknown".to_owned(),
            Some(IpAddr::V4(ip)) => ip.to_string(),
            Some(IpAddr::V6(ip)) => match ip.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => {
                    let s = ip.segments();
                    format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
                }
            },
        }
    }
}
