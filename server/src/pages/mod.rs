//! What a browser navigates to: the app's pages (rendered on the server, then
//! hydrated), the audit trail as a download, and the one-click link pages the server
//! writes itself. Each reads the caller the request pipeline resolved.

pub mod app;
pub mod export;
pub mod one_click;
