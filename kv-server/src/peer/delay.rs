//! The `inproc` WAN emulation (`geo-bench run --wan inproc`,
//! EVALUATION.md mode 3): a delay line in front of one peer's sender
//! holds every message for that pair's one-way delay before passing it
//! on. The delay is constant per peer, so a FIFO keeps release order.
//! The holding is done on a plain thread: tokio's timers tick in whole
//! milliseconds and would add up to 1 ms per hop, a futex wait does not.

use std::collections::VecDeque;
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Moves messages from `rx` to `tx`, each `delay` after it arrived. Ends
/// when `rx` is closed and everything held was passed on, or when `tx`
/// is closed. The returned task is the intake; the holding thread ends
/// on its own after it.
pub fn delay_line<Msg: Send + 'static>(
    delay: Duration,
    mut rx: mpsc::Receiver<Msg>,
    tx: mpsc::Sender<Msg>,
) -> std::io::Result<JoinHandle<()>> {
    let (held_tx, held_rx) = channel::<(Instant, Msg)>();
    std::thread::Builder::new()
        .name("peer-delay".into())
        .spawn(move || {
            let mut held: VecDeque<(Instant, Msg)> = VecDeque::new();
            let mut open = true;
            loop {
                let now = Instant::now();
                while held.front().is_some_and(|(due, _)| *due <= now) {
                    let Some((_, m)) = held.pop_front() else {
                        break;
                    };
                    if tx.blocking_send(m).is_err() {
                        return;
                    }
                }
                let next = match (held.front(), open) {
                    (Some((due, _)), true) => {
                        held_rx.recv_timeout(due.saturating_duration_since(now))
                    }
                    (None, true) => held_rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                    (Some((due, _)), false) => {
                        std::thread::sleep(due.saturating_duration_since(now));
                        continue;
                    }
                    (None, false) => return,
                };
                match next {
                    Ok(m) => held.push_back(m),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => open = false,
                }
            }
        })?;
    Ok(tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if held_tx.send((Instant::now() + delay, m)).is_err() {
                return;
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Lower bounds only: a shared machine may add any lateness.
    #[tokio::test]
    async fn messages_leave_in_order_each_after_the_delay() {
        let (in_tx, in_rx) = mpsc::channel(16);
        let (out_tx, mut out_rx) = mpsc::channel(16);
        let line = delay_line(Duration::from_millis(40), in_rx, out_tx).unwrap();
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
        // The thread ends after the intake, closing the output.
        assert_eq!(out_rx.recv().await, None);
    }
}
