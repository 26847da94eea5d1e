//! Time, injectable. Every expiry decision reads the clock from `AppState`, so a
//! test can move time forward instead of sleeping.

use std::sync::{
    atomic::{AtomicI64, Ordering},
    Arc,
};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

pub const SECOND: Millis = 1_000;
pub const MINUTE: Millis = 60 * SECOND;
pub const HOUR: Millis = 60 * MINUTE;

#[derive(Clone, Debug)]
pub struct Clock(Arc<Source>);

#[derive(Debug)]
enum Source {
    System,
    Manual(AtomicI64),
}

impl Clock {
    pub fn system() -> Self {
        Clock(Arc::new(Source::System))
    }

    /// A clock that stands still until `advance` is called (tests).
    pub fn manual(start: Millis) -> Self {
        Clock(Arc::new(Source::Manual(AtomicI64::new(start))))
    }

    pub fn now(&self) -> Millis {
        match &*self.0 {
            Source::System => system_now(),
            Source::Manual(at) => at.load(Ordering::SeqCst),
        }
    }

    /// Moves a manual clock forward. Returns false (and does nothing) for the system clock.
    pub fn advance(&self, by: Millis) -> bool {
        match &*self.0 {
            Source::System => false,
            Source::Manual(at) => {
                at.fetch_add(by, Ordering::SeqCst);
                true
            }
        }
    }
}

pub fn system_now() -> Millis {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

/// "2026-11-22 03:12 UTC": how times are shown to people.
pub fn format_utc(at: Millis) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| "—".to_string())
}

/// "2026-11-22 20:05:09 UTC", for records where the second matters.
pub fn format_utc_seconds(at: Millis) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| "—".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let clock = Clock::manual(1_000);
        assert_eq!(clock.now(), 1_000);
        assert!(clock.advance(5 * MINUTE));
        assert_eq!(clock.now(), 1_000 + 300_000);
        assert!(!Clock::system().advance(1));
    }

    #[test]
    fn times_are_formatted_in_utc() {
        // 2026-11-22T03:12:00Z
        assert_eq!(format_utc(1_795_317_120_000), "2026-11-22 03:12 UTC");
        assert_eq!(format_utc(i64::MAX), "—");
    }
}
