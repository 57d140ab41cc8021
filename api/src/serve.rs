//! Serving the router over TCP, with limits so that slow or numerous clients
//! cannot hold the server (HTTP/1.1, hyper under axum's router):
//!
//! - **Header read timeout** ([`HEADER_READ_TIMEOUT`], 10 s): a request's line
//!   and headers must arrive whole within it, counted from when the connection
//!   starts waiting for them (a new connection, or a kept-alive one after its
//!   last answer). A client that sends nothing, or a header a byte at a time,
//!   is disconnected; it is never answered.
//! - **Body read timeout** ([`BODY_READ_TIMEOUT`], 30 s): a request's body must
//!   arrive whole within it, counted from the end of its headers; later, the
//!   request is refused with 408 and the connection closed. Bodies are at most
//!   [`crate::MAX_BODY_BYTES`] anyway.
//! - **Idle keep-alive limit** ([`KEEP_ALIVE_IDLE`], 5 s): a connection on
//!   which nothing is read or written for that long is closed, at once when it
//!   is between requests, after its answer when a handler is still at work. One
//!   on which nothing moves for [`KEEP_ALIVE_IDLE`] and [`BODY_READ_TIMEOUT`]
//!   more (a client that does not read its answer) is dropped.
//! - **Simultaneous connections** ([`MAX_CONNECTIONS`], 512): beyond them a new
//!   connection is not taken from the listener's queue until one closes; it
//!   waits there (the kernel's backlog), costing the server no memory.
//!
//! The limits are the [`ServeConfig`] given to [`serve_with`]; [`crate::serve`]
//! uses their defaults, the constants above. On `shutdown` the listener is
//! closed, every connection finishes the request it is answering and closes,
//! and connections that have sent nothing yet are closed at once.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::{Instant, Sleep, sleep_until};
use tower::ServiceExt as _;

use crate::ApiState;

/// How long a request's line and headers may take to arrive.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request's body may take to arrive, after its headers.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connection may stay silent (nothing read, nothing written).
pub const KEEP_ALIVE_IDLE: Duration = Duration::from_secs(5);
/// How many connections are served at once.
pub const MAX_CONNECTIONS: usize = 512;

/// The limits of [`serve_with`]; [`ServeConfig::default`] is production's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeConfig {
    /// See [`HEADER_READ_TIMEOUT`].
    pub header_read_timeout: Duration,
    /// See [`BODY_READ_TIMEOUT`].
    pub body_read_timeout: Duration,
    /// See [`KEEP_ALIVE_IDLE`].
    pub keep_alive_idle: Duration,
    /// See [`MAX_CONNECTIONS`]; at least one is served.
    pub max_connections: usize,
}

impl Default for ServeConfig {
    fn default() -> ServeConfig {
        ServeConfig {
            header_read_timeout: HEADER_READ_TIMEOUT,
            body_read_timeout: BODY_READ_TIMEOUT,
            keep_alive_idle: KEEP_ALIVE_IDLE,
            max_connections: MAX_CONNECTIONS,
        }
    }
}

/// Serves the API on `listener` within `config`'s limits until `shutdown`
/// completes, then until every connection has closed.
pub async fn serve_with(
    listener: TcpListener,
    state: ApiState,
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_router(listener, crate::router(state), config, shutdown).await
}

/// Serves `router` (the API's, or the API's with the dashboard's pages) as
/// [`serve_with`] serves the API's.
pub async fn serve_router(
    listener: TcpListener,
    router: axum::Router,
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(config.max_connections.max(1)));
    // Connections watch `stop` to finish; each holds a `done` receiver, which
    // the server waits to see all dropped.
    let (stop, stopping) = watch::channel(false);
    let (done, connections) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        // A slot first: beyond the limit, connections wait in the listener's queue.
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = shutdown.as_mut() => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(error).await;
                    continue;
                }
            },
            () = shutdown.as_mut() => break,
        };
        tokio::spawn(connection(
            stream,
            remote,
            router.clone(),
            config,
            Held {
                _permit: permit,
                _done: connections.clone(),
            },
            stopping.clone(),
        ));
    }
    drop(listener);
    let _ = stop.send(true);
    drop(connections);
    done.closed().await;
    Ok(())
}

/// Waits after a failed accept: at once for one connection's own failure,
/// a second when the process is out of file descriptors or the like.
async fn accept_failed(error: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::warn!(%error, "the HTTP API could not accept a connection");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// What a connection holds while it lives: its slot, and the server's wait.
struct Held {
    _permit: OwnedSemaphorePermit,
    _done: watch::Receiver<()>,
}

/// Serves one connection until it closes, it is found idle or stalled, or the
/// server stops.
async fn connection(
    stream: TcpStream,
    remote: SocketAddr,
    router: Router,
    config: ServeConfig,
    held: Held,
    mut stopping: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Tracked {
        stream,
        activity: activity.clone(),
    });
    let body_timeout = config.body_read_timeout;
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let router = router.clone();
        async move {
            let mut request = request.map(|body| timed(body, body_timeout));
            request.extensions_mut().insert(ConnectInfo(remote));
            router.oneshot(request).await
        }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout);
    let mut conn = pin!(http.serve_connection(io, service));
    let mut stopped = false;
    // Closing after the answer was asked for because the connection idled.
    let mut idled = false;
    loop {
        let silent_for = if idled {
            config.keep_alive_idle + config.body_read_timeout
        } else {
            config.keep_alive_idle
        };
        let deadline = activity.last() + silent_for;
        tokio::select! {
            served = conn.as_mut() => {
                if let Err(error) = served {
                    tracing::debug!(%error, %remote, "an HTTP connection ended in error");
                }
                break;
            }
            changed = stopping.changed(), if !stopped => {
                stopped = true;
                // The server is gone, or the connection never asked anything.
                if changed.is_err() || !activity.read_any() {
                    break;
                }
                conn.as_mut().graceful_shutdown();
            }
            () = sleep_until(deadline) => {
                if activity.last() + silent_for > Instant::now() {
                    continue;
                }
                if idled {
                    tracing::debug!(%remote, "an HTTP connection stalled: dropped");
                    break;
                }
                idled = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
    drop(held);
}

/// When a connection last read or wrote, and whether it ever read.
struct Activity {
    start: Instant,
    /// Milliseconds from `start`.
    last: AtomicU64,
    read_any: AtomicBool,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last: AtomicU64::new(0),
            read_any: AtomicBool::new(false),
        }
    }

    fn touch(&self) {
        let elapsed = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(elapsed, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last.load(Ordering::Relaxed))
    }

    fn read_any(&self) -> bool {
        self.read_any.load(Ordering::Relaxed)
    }
}

/// A TCP stream that records its [`Activity`].
struct Tracked {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read_any.store(true, Ordering::Relaxed);
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The error of a body that did not arrive within the body read timeout.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {} s", .0.as_secs_f64())]
pub(crate) struct BodyTimedOut(pub(crate) Duration);

/// `body`, failing with [`BodyTimedOut`] once `timeout` has passed (an empty
/// body as it is).
fn timed(body: Incoming, timeout: Duration) -> Body {
    if body.is_end_stream() {
        return Body::new(body);
    }
    Body::new(TimedBody {
        inner: body,
        deadline: Instant::now() + timeout,
        timeout,
        sleep: None,
        timed_out: false,
    })
}

struct TimedBody {
    inner: Incoming,
    deadline: Instant,
    timeout: Duration,
    /// Made on the first wait, so that a body read at once costs no timer.
    sleep: Option<Pin<Box<Sleep>>>,
    timed_out: bool,
}

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        let this = &mut *self;
        if this.timed_out {
            return Poll::Ready(None);
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.timed_out = true;
                Poll::Ready(Some(Err(Box::new(BodyTimedOut(this.timeout)))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.timed_out || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether `error`, or an error it stems from, is a [`BodyTimedOut`].
pub(crate) fn body_timed_out(error: &(dyn std::error::Error + 'static)) -> Option<Duration> {
    let mut error = Some(error);
    while let Some(current) = error {
        if let Some(BodyTimedOut(timeout)) = current.downcast_ref::<BodyTimedOut>() {
            return Some(*timeout);
        }
        error = current.source();
    }
    None
}
