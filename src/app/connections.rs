//! Wiring of the connection limits (`platform::connections`): a fairing that tells them
//! which connections have a request in flight, and the sweep, once a second.

use std::sync::Arc;
use std::time::Duration;

use rocket::fairing::{Fairing, Info, Kind};
use rocket::{Data, Orbit, Request, Response, Rocket};

use crate::platform::config::Settings;
use crate::platform::connections::{ConnectionLimits, Connections, ConnectionsHandle};

/// How often connections are checked against the limits.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

pub(super) fn limits(settings: &Settings) -> Arc<Connections> {
    let c = &settings.connections;
    Arc::new(Connections::new(ConnectionLimits {
        header_read_timeout: Duration::from_secs(c.header_read_timeout_secs),
        idle_timeout: Duration::from_secs(c.idle_timeout_secs),
        max_connections: c.max_connections,
        max_connections_per_ip: c.max_connections_per_ip,
    }))
}

/// Marks each request's connection busy from its arrival until its response, and hands
/// the limits to handlers that stream a large body (`ConnectionsHandle`).
pub(super) struct InFlight(pub Arc<Connections>);

#[rocket::async_trait]
impl Fairing for InFlight {
    fn info(&self) -> Info {
        Info {
            name: "connection limits: requests in flight",
            kind: Kind::Request | Kind::Response,
        }
    }

    async fn on_request(&self, req: &mut Request<'_>, _: &mut Data<'_>) {
        if let Some(remote) = req.remote() {
            self.0.request_started(remote);
        }
        req.local_cache(|| ConnectionsHandle(Some(self.0.clone())));
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, _: &mut Response<'r>) {
        if let Some(remote) = req.remote() {
            self.0.request_finished(remote);
        }
    }
}

/// Sweeps the server's connections every second until shutdown (not for local clients,
/// which have no sockets).
pub(super) fn start_sweeper(rocket: &Rocket<Orbit>, connections: Arc<Connections>) {
    let port = rocket.config().port;
    let mut stop = rocket.shutdown();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(SWEEP_EVERY) => {}
                _ = &mut stop => break,
            }
            let connections = connections.clone();
            match tokio::task::spawn_blocking(move || connections.sweep(port)).await {
                Ok(swept) if swept.timed_out + swept.over_cap > 0 => tracing::info!(
                    open = swept.open,
                    timed_out = swept.timed_out,
                    over_cap = swept.over_cap,
                    "closed client connections that broke a limit"
                ),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "connection sweep failed"),
            }
        }
    });
}
