//! Clean shutdown on SIGINT and SIGTERM.

/// Resolves when the process receives SIGINT (Ctrl-C) or SIGTERM; from then
/// on those signals no longer end the process by default. Panics outside a
/// tokio runtime.
pub async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("install SIGINT handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
