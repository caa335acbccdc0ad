//! A TCP listener whose connections can be cut at once: every accepted stream fails its next
//! read or write when the server is stopped or when its own kill switch is thrown. hyper then
//! drops the connection without finishing the response, which is what a client sees when an
//! apiserver crashes (a watch ends with no final chunk) or when a silent request is given up.

use std::{
    future::Future,
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use axum::extract::connect_info::Connected;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::watch,
};

/// One accepted connection, as handlers see it (`ConnectInfo<Conn>`).
#[derive(Debug, Clone)]
pub struct Conn {
    kill: Arc<watch::Sender<bool>>,
}

impl Conn {
    /// Closes this connection: whatever is in flight is not answered.
    pub fn kill(&self) {
        self.kill.send_replace(true);
    }
}

impl Connected<axum::serve::IncomingStream<'_, KillableListener>> for Conn {
    fn connect_info(stream: axum::serve::IncomingStream<'_, KillableListener>) -> Self {
        stream.remote_addr().clone()
    }
}

#[derive(Debug)]
pub struct KillableListener {
    inner: TcpListener,
    stopped: watch::Receiver<bool>,
}

impl KillableListener {
    pub fn new(inner: TcpListener, stopped: watch::Receiver<bool>) -> Self {
        Self { inner, stopped }
    }
}

/// Resolves when `rx` turns true; never when its sender is gone.
async fn until_true(mut rx: watch::Receiver<bool>) {
    if rx.wait_for(|v| *v).await.is_err() {
        std::future::pending::<()>().await;
    }
}

impl axum::serve::Listener for KillableListener {
    type Io = KillableIo;
    type Addr = Conn;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    let (kill, kill_rx) = watch::channel(false);
                    let stopped = self.stopped.clone();
                    let killed = Box::pin(async move {
                        tokio::select! {
                            () = until_true(kill_rx) => {}
                            () = until_true(stopped) => {}
                        }
                    });
                    let conn = Conn { kill: Arc::new(kill) };
                    return (
                        KillableIo {
                            inner: stream,
                            killed,
                            dead: false,
                        },
                        conn,
                    );
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()?;
        Ok(Conn {
            kill: Arc::new(watch::channel(false).0),
        })
    }
}

/// A stream that fails once killed.
pub struct KillableIo {
    inner: TcpStream,
    killed: Pin<Box<dyn Future<Output = ()> + Send>>,
    dead: bool,
}

impl std::fmt::Debug for KillableIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KillableIo")
            .field("inner", &self.inner)
            .field("dead", &self.dead)
            .finish()
    }
}

impl KillableIo {
    fn dead(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.dead && self.killed.as_mut().poll(cx).is_ready() {
            self.dead = true;
        }
        self.dead
    }
}

fn aborted() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "fake-apiserver cut the connection",
    )
}

impl AsyncRead for KillableIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.dead(cx) {
            return Poll::Ready(Err(aborted()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.dead(cx) {
            return Poll::Ready(Err(aborted()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.dead(cx) {
            return Poll::Ready(Err(aborted()));
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
