//! The server's counters (operations, bad peer input, persists and their
//! batches, peer traffic), shared by every task as atomics, rendered in
//! the Prometheus text format on `metrics_addr` (`/metrics`) and logged
//! every `stats_interval_secs`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

macro_rules! counters {
    ($($name:ident : $help:literal,)*) => {
        /// Counters since start-up.
        #[derive(Debug, Default)]
        pub struct Metrics {
            $(#[doc = $help] pub $name: AtomicU64,)*
        }

        impl Metrics {
            /// `(name, help, value)` of every counter.
            pub fn snapshot(&self) -> Vec<(&'static str, &'static str, u64)> {
                vec![$((stringify!($name), $help, self.$name.load(Ordering::Relaxed)),)*]
            }
        }
    };
}

counters! {
    client_gets: "Get requests accepted.",
    client_puts: "Put and Delete requests accepted.",
    client_rmws: "Rmw requests accepted.",
    client_invalid: "Client requests rejected with INVALID_ARGUMENT.",
    client_overloaded: "Client requests refused over limits.max_inflight_ops.",
    client_timeouts: "Client requests that hit limits.request_timeout_ms.",
    replies: "Replies delivered to waiting client calls.",
    peer_batches_in: "Peer batches received.",
    peer_messages_in: "Peer messages decoded and handed to the replica.",
    peer_bad_messages: "Peer messages rejected as malformed (undecodable or oversized).",
    peer_bad_senders: "Peer streams rejected for an unknown sender or another cluster.",
    machine_bad_messages: "Peer messages the replica machine ignored as invalid.",
    peer_batches_out: "Peer batches sent.",
    peer_messages_out: "Peer messages sent.",
    peer_dropped: "Peer messages dropped (queue full or no such peer).",
    peer_reconnects: "Peer stream (re)connection attempts.",
    persists: "Records made durable.",
    persist_batches: "Submissions to the log (one per group of records).",
    barrier_waits: "Sends and replies that waited for a persist.",
    timers_fired: "Replica timers fired.",
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for (name, help, value) in self.snapshot() {
            s.push_str(&format!(
                "# HELP gryff_{name} {help}\n# TYPE gryff_{name} counter\ngryff_{name} {value}\n"
            ));
        }
        s
    }

    /// One line for the log.
    pub fn summary(&self) -> String {
        self.snapshot()
            .into_iter()
            .filter(|(_, _, v)| *v > 0)
            .map(|(n, _, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Serves `GET /metrics` (any path, in fact) on an already bound listener:
/// a minimal HTTP/1.0 responder, one response per connection.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            // The request itself does not matter; read what arrived.
            let _ =
                tokio::time::timeout(std::time::Duration::from_secs(1), conn.read(&mut buf)).await;
            let body = metrics.render();
            let head = format!(
                "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes()).await;
            let _ = conn.write_all(body.as_bytes()).await;
            let _ = conn.shutdown().await;
        });
    }
}

/// The whole text of a `/metrics` endpoint.
pub async fn scrape_all(addr: SocketAddr) -> std::io::Result<String> {
    let mut conn = tokio::net::TcpStream::connect(addr).await?;
    conn.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").await?;
    let mut text = String::new();
    conn.read_to_string(&mut text).await?;
    Ok(text)
}

/// Reads one counter from a `/metrics` endpoint (for tests and tools).
pub async fn scrape(addr: SocketAddr, counter: &str) -> std::io::Result<Option<u64>> {
    let text = scrape_all(addr).await?;
    let wanted = format!("gryff_{counter} ");
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(&wanted))
        .and_then(|v| v.trim().parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counters_are_served_and_scraped() {
        let m = Metrics::new();
        Metrics::add(&m.peer_bad_messages, 3);
        assert!(m.render().contains("gryff_peer_bad_messages 3\n"));
        assert_eq!(m.summary(), "peer_bad_messages=3");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, m.clone()));
        assert_eq!(scrape(addr, "peer_bad_messages").await.unwrap(), Some(3));
        assert_eq!(scrape(addr, "persists").await.unwrap(), Some(0));
        assert_eq!(scrape(addr, "nonexistent").await.unwrap(), None);
    }
}
