//! The `inproc` WAN emulation (`geo-bench run --wan inproc`,
//! EVALUATION.md mode 3): a delay line in front of one peer's sender
//! holds every message for that pair's one-way delay before passing it
//! on. The delay is constant per peer, so a FIFO keeps release order.
//! Tokio timers tick in milliseconds: a message leaves up to 1 ms late.

use std::collections::VecDeque;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Moves messages from `rx` to `tx`, each `delay` after it arrived. Ends
/// when `rx` is closed and everything held was passed on, or when `tx`
/// is closed.
pub async fn delay_line<Msg>(delay: Duration, mut rx: mpsc::Receiver<Msg>, tx: mpsc::Sender<Msg>) {
    let mut held: VecDeque<(Instant, Msg)> = VecDeque::new();
    let mut open = true;
    loop {
        let due = held.front().map(|(at, _)| *at);
        tokio::select! {
            m = rx.recv(), if open => match m {
                Some(m) => held.push_back((Instant::now() + delay, m)),
                None => open = false,
            },
            () = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                let now = Instant::now();
                while held.front().is_some_and(|(at, _)| *at <= now) {
                    let Some((_, m)) = held.pop_front() else { break };
                    if tx.send(m).await.is_err() {
                        return;
                    }
                }
            }
        }
        if !open && held.is_empty() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Lower bounds only: a shared machine may add any lateness.
    #[tokio::test]
    async fn messages_leave_in_order_each_after_the_delay() {
        let (in_tx, in_rx) = mpsc::channel(16);
        let (out_tx, mut out_rx) = mpsc::channel(16);
        let line = tokio::spawn(delay_line(Duration::from_millis(40), in_rx, out_tx));
        let start = Instant::now();
        in_tx.send(1).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        in_tx.send(2).await.unwrap();
        assert_eq!(out_rx.recv().await, Some(1));
        assert!(start.elapsed() >= Duration::from_millis(40));
        assert_eq!(out_rx.recv().await, Some(2));
        assert!(start.elapsed() >= Duration::from_millis(50));
        // Closing the input drains what is held, then ends the line.
        let sent = Instant::now();
        in_tx.send(3).await.unwrap();
        drop(in_tx);
        assert_eq!(out_rx.recv().await, Some(3));
        assert!(sent.elapsed() >= Duration::from_millis(40));
        line.await.unwrap();
        assert_eq!(out_rx.recv().await, None);
    }
}
