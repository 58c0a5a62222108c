//! A response body that keeps its connection busy while it moves (see `platform::connections`).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncSeek, ReadBuf};

use super::{Connections, MIN_PROGRESS_BYTES};

/// The connection limits as the HTTP layer hands them to a handler (a request-local value;
/// `None` where no limits run, e.g. in-process tests).
#[derive(Clone, Default)]
pub struct ConnectionsHandle(pub Option<Arc<Connections>>);

/// One streaming body on a connection; dropping it ends the stream.
pub struct Streaming {
    connections: Arc<Connections>,
    remote: SocketAddr,
    unreported: u64,
}

impl Streaming {
    pub(super) fn new(connections: Arc<Connections>, remote: SocketAddr) -> Streaming {
        Streaming {
            connections,
            remote,
            unreported: 0,
        }
    }

    fn moved(&mut self, bytes: u64) {
        self.unreported += bytes;
        if self.unreported >= MIN_PROGRESS_BYTES {
            self.unreported = 0;
            self.connections.stream_progressed(self.remote);
        }
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        self.connections.stream_ended(self.remote);
    }
}

/// `body`, telling the connection limits how it progresses while the client reads it.
/// The body is only read as fast as the client takes it (hyper's backpressure), so
/// progress here is progress on the wire, give or take the socket's buffers.
pub struct Streamed<R> {
    body: R,
    streaming: Option<Streaming>,
}

impl<R> Streamed<R> {
    pub fn new(body: R, handle: &ConnectionsHandle, remote: Option<SocketAddr>) -> Streamed<R> {
        let streaming = match (&handle.0, remote) {
            (Some(connections), Some(remote)) => Some(connections.stream(remote)),
            _ => None,
        };
        Streamed { body, streaming }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Streamed<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let polled = Pin::new(&mut this.body).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            match buf.filled().len() - before {
                // The end: the connection is idle from here on.
                0 => this.streaming = None,
                n => {
                    if let Some(streaming) = &mut this.streaming {
                        streaming.moved(n as u64);
                    }
                }
            }
        }
        polled
    }
}

impl<R: AsyncSeek + Unpin> AsyncSeek for Streamed<R> {
    fn start_seek(mut self: Pin<&mut Self>, position: io::SeekFrom) -> io::Result<()> {
        Pin::new(&mut self.body).start_seek(position)
    }

    fn poll_complete(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        Pin::new(&mut self.body).poll_complete(cx)
    }
}
