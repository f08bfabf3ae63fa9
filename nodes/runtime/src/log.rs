//! Node logging: rclcpp's console format on stderr, and rcl_interfaces/Log on
//! /rosout so that `ros2 topic echo /rosout` and rqt see it.

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};

use sim2real_msgs::rcl_interfaces::msg::Log;

use crate::clock::Clock;
use crate::pubsub::Publisher;

/// rcl's severities, ordered; the values are rcl_interfaces/Log's `level`
/// codes. A logger shows its level and the ones above.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum LogLevel {
    /// `Log::DEBUG`; shown only with `--log-level debug`.
    Debug = 10,
    /// `Log::INFO`; the level a logger starts at.
    Info = 20,
    /// `Log::WARN`; `--log-level warn` hides INFO and DEBUG.
    Warn = 30,
    /// `Log::ERROR`.
    Error = 40,
    /// `Log::FATAL`.
    Fatal = 50,
}

impl LogLevel {
    /// rcl's names, any case; `warning` too.
    pub(crate) fn parse(s: &str) -> Option<LogLevel> {
        Some(match s.to_ascii_lowercase().as_str() {
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "warn" | "warning" => LogLevel::Warn,
            "error" => LogLevel::Error,
            "fatal" => LogLevel::Fatal,
            _ => return None,
        })
    }

    /// The upper-case name rclcpp prints.
    pub(crate) fn label(self) -> &'static str {
        match self {
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
            LogLevel::Fatal => "FATAL",
        }
    }

    fn from_u8(v: u8) -> LogLevel {
        match v {
            0..=10 => LogLevel::Debug,
            11..=20 => LogLevel::Info,
            21..=30 => LogLevel::Warn,
            31..=40 => LogLevel::Error,
            _ => LogLevel::Fatal,
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A node's logger. Clones share the level and the /rosout publisher.
#[derive(Clone)]
pub struct Logger {
    inner: Arc<LoggerInner>,
}

struct LoggerInner {
    name: String,
    level: AtomicU8,
    stdout: bool,
    rosout: OnceLock<Publisher<Log>>,
    clock: Clock,
}

impl Logger {
    pub(crate) fn new(name: String, level: LogLevel, stdout: bool, clock: Clock) -> Logger {
        Logger { inner: Arc::new(LoggerInner { name, level: AtomicU8::new(level as u8), stdout, rosout: OnceLock::new(), clock }) }
    }

    pub(crate) fn attach_rosout(&self, publisher: Publisher<Log>) {
        let _ = self.inner.rosout.set(publisher);
    }

    pub(crate) fn level(&self) -> LogLevel {
        LogLevel::from_u8(self.inner.level.load(Ordering::Relaxed))
    }

    pub(crate) fn enabled(&self, level: LogLevel) -> bool {
        level >= self.level()
    }

    /// Logs one message with its source location (the macros fill it in).
    /// Below the logger's level (`--log-level`, INFO by default) it does
    /// nothing; otherwise it writes `[LEVEL] [sec.nanosec] [name]: text` to
    /// stderr unless `--disable-stdout-logs`, and publishes an
    /// rcl_interfaces/Log on /rosout unless `--disable-rosout-logs`, both
    /// stamped with the node's clock. A failed /rosout publish is dropped.
    pub fn log_at(&self, level: LogLevel, msg: fmt::Arguments<'_>, file: &str, function: &str, line: u32) {
        if !self.enabled(level) {
            return;
        }
        let stamp = self.inner.clock.now();
        let text = msg.to_string();
        if self.inner.stdout {
            let secs = stamp.0.div_euclid(1_000_000_000);
            let nanos = stamp.0.rem_euclid(1_000_000_000);
            let _ = writeln!(std::io::stderr().lock(), "[{}] [{secs}.{nanos:09}] [{}]: {text}", level.label(), self.inner.name);
        }
        if let Some(p) = self.inner.rosout.get() {
            let _ = p.publish(Log {
                stamp: stamp.to_msg(),
                level: level as u8,
                name: self.inner.name.clone(),
                msg: text,
                file: file.to_string(),
                function: function.to_string(),
                line,
            });
        }
    }

    /// Logs at INFO with no source location (empty file, line 0); the
    /// [`info!`](crate::info) macro records where it was called.
    pub fn info(&self, msg: impl fmt::Display) {
        self.log_at(LogLevel::Info, format_args!("{msg}"), "", "", 0)
    }
    /// Logs at WARN with no source location; see [`warn!`](crate::warn).
    pub fn warn(&self, msg: impl fmt::Display) {
        self.log_at(LogLevel::Warn, format_args!("{msg}"), "", "", 0)
    }
}

/// `log!(logger, LogLevel::Info, "x = {}", x)`: logs with file, module and
/// line. /rosout's `function` field gets the module path, Rust having no
/// macro for the function's name.
#[macro_export]
macro_rules! log {
    ($logger:expr, $level:expr, $($arg:tt)+) => {
        $logger.log_at($level, format_args!($($arg)+), file!(), module_path!(), line!())
    };
}

/// `debug!(logger, "x = {}", x)`: [`log!`] at DEBUG, shown only with
/// `--log-level debug`.
#[macro_export]
macro_rules! debug {
    ($logger:expr, $($arg:tt)+) => { $crate::log!($logger, $crate::LogLevel::Debug, $($arg)+) };
}

/// `info!(logger, "x = {}", x)`: [`log!`] at INFO.
#[macro_export]
macro_rules! info {
    ($logger:expr, $($arg:tt)+) => { $crate::log!($logger, $crate::LogLevel::Info, $($arg)+) };
}

/// `warn!(logger, "x = {}", x)`: [`log!`] at WARN.
#[macro_export]
macro_rules! warn {
    ($logger:expr, $($arg:tt)+) => { $crate::log!($logger, $crate::LogLevel::Warn, $($arg)+) };
}

/// `error!(logger, "x = {}", x)`: [`log!`] at ERROR.
#[macro_export]
macro_rules! error {
    ($logger:expr, $($arg:tt)+) => { $crate::log!($logger, $crate::LogLevel::Error, $($arg)+) };
}

/// Whether the `n`th occurrence of a repeated problem is worth a log line: the
/// 1st, 10th, 100th, … — a node that keeps meeting it keeps running, says so
/// with the count, and does not flood its log.
pub fn worth_logging(n: u64) -> bool {
    n > 0 && 10u64.pow(n.ilog10()) == n
}

/// The DDS layer's own diagnostics (rustdds reports through the `log` crate:
/// repair requests it cannot serve, malformed submessages, socket errors) on
/// stderr, from the level in `S2R_DDS_LOG` (`error`, `warn`, `info`, `debug`
/// or `trace`) up; silent when unset. Called when a [`Context`](crate::Context)
/// starts; the first call decides.
pub fn dds_diagnostics_from_env() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Some(level) = std::env::var("S2R_DDS_LOG").ok().and_then(|l| l.parse::<::log::LevelFilter>().ok()) else { return };
        if ::log::set_boxed_logger(Box::new(DdsDiagnostics)).is_ok() {
            ::log::set_max_level(level);
        }
    });
}

struct DdsDiagnostics;

impl ::log::Log for DdsDiagnostics {
    fn enabled(&self, m: &::log::Metadata) -> bool {
        // rustdds's records only (wgpu and naga log through the same crate).
        m.level() <= ::log::max_level() && m.target().starts_with("rustdds")
    }

    fn log(&self, r: &::log::Record) {
        if self.enabled(r.metadata()) {
            eprintln!("[dds {} {}] {}", r.level(), r.target(), r.args());
        }
    }

    fn flush(&self) {}
}
