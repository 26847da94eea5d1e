//! `behalf serve`: the server, until Ctrl-C or SIGTERM.

use app::{
    audit_writer::{flush_folded, flush_trail},
    clock::Clock,
};
use tokio::net::TcpListener;

use crate::{
    cli::CliResult,
    config::ServeArgs,
    listen, router,
    startup::{app_state, flush_refusals, leptos_options, link_key, open_database, settings_from},
};

/// Serves until Ctrl-C or SIGTERM.
pub async fn serve(database_url: &str, args: ServeArgs) -> CliResult<()> {
    let db = open_database(database_url).await?;
    tracing::info!(database = db.kind(), "database ready");
    if args.one_click_minutes > args.one_click_max_minutes {
        return Err(format!(
            "--one-click-minutes ({}) cannot be longer than --one-click-max-minutes ({})",
            args.one_click_minutes, args.one_click_max_minutes
        )
        .into());
    }
    let clock = Clock::system();
    let key = link_key(&db, clock.now()).await?;
    let state = app_state(db.clone(), settings_from(&args), clock).with_link_key(key);
    // A new database (no member at all) gets a first super user and a demo to try,
    // unless --no-demo or BEHALF_DEMO=0, and only on a loopback address (seed/demo.rs).
    crate::seed::demo::on_first_start(&state, args.no_demo, args.addr).await?;
    let state_for_flush = state.clone();
    // Prometheus metrics on their own address, only with --metrics-addr (metrics.rs).
    let metrics = crate::metrics::start(args.metrics_addr, args.addr, state.clone()).await?;
    let router = router::router(state, leptos_options(args.addr), args.trust_proxy);
    let listener = TcpListener::bind(args.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
    let local = listener.local_addr()?;
    tracing::info!("listening on http://{local}");
    println!("Behalf is serving on http://{local}");
    let limits = listen::Limits {
        header_read_timeout: std::time::Duration::from_secs(args.header_read_timeout_seconds.into()),
        max_connections: args.max_connections as usize,
        ..listen::Limits::default()
    };
    let flusher = tokio::spawn(flush_refusals(state_for_flush.clone()));
    let trail_flusher = tokio::spawn(crate::startup::flush_views(state_for_flush.clone()));
    let _consent_tasks = crate::startup::spawn_consent_tasks(&state_for_flush);
    listen::serve(listener, router, limits, shutdown_signal()).await;
    if let Some(metrics) = metrics {
        metrics.stop().await;
    }
    flusher.abort();
    trail_flusher.abort();
    // The view trail and the counts of refusals folded in the last minute are
    // written before leaving.
    let now = state_for_flush.clock.now();
    match flush_trail(&db, &state_for_flush.trail, now, true).await {
        Ok(written) => tracing::info!(written, "view trail written at shutdown"),
        Err(error) => tracing::error!(%error, "could not write the view trail at shutdown"),
    }
    if let Err(error) = flush_folded(&db, &state_for_flush.refusals, now, true).await {
        tracing::error!(%error, "could not write the folded refusals at shutdown");
    }
    db.close().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
