//! Node logging: rclcpp's console format on stderr, and rcl_interfaces/Log on
//! /rosout so that `ros2 topic echo /rosout` and rqt see it.

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};

use sim2real_msgs::rcl_interfaces::msg::Log;

use crate::clock::Clock;
use crate::pubsub::Publisher;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum LogLevel {
    Debug = 10,
    Info = 20,
    Warn = 30,
    Error = 40,
    Fatal = 50,
}

impl LogLevel {
    pub fn parse(s: &str) -> Option<LogLevel> {
        Some(match s.to_ascii_lowercase().as_str() {
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "warn" | "warning" => LogLevel::Warn,
            "error" => LogLevel::Error,
            "fatal" => LogLevel::Fatal,
            _ => return None,
        })
    }

    pub fn label(self) -> &'static str {
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

    /// The logger's name: the node's, with its namespace in dotted form.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn level(&self) -> LogLevel {
        LogLevel::from_u8(self.inner.level.load(Ordering::Relaxed))
    }

    pub fn set_level(&self, level: LogLevel) {
        self.inner.level.store(level as u8, Ordering::Relaxed);
    }

    pub fn enabled(&self, level: LogLevel) -> bool {
        level >= self.level()
    }

    /// Logs one message with its source location (the macros fill it in).
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

    pub fn debug(&self, msg: impl fmt::Display) {
        self.log_at(LogLevel::Debug, format_args!("{msg}"), "", "", 0)
    }
    pub fn info(&self, msg: impl fmt::Display) {
        self.log_at(LogLevel::Info, format_args!("{msg}"), "", "", 0)
    }
    pub fn warn(&self, msg: impl fmt::Display) {
        self.log_at(LogLevel::Warn, format_args!("{msg}"), "", "", 0)
    }
    pub fn error(&self, msg: impl fmt::Display) {
        self.log_at(LogLevel::Error, format_args!("{msg}"), "", "", 0)
    }
    pub fn fatal(&self, msg: impl fmt::Display) {
        self.log_at(LogLevel::Fatal, format_args!("{msg}"), "", "", 0)
    }
}

/// `log!(logger, LogLevel::Info, "x = {}", x)`: logs with file, module and line.
#[macro_export]
macro_rules! log {
    ($logger:expr, $level:expr, $($arg:tt)+) => {
        $logger.log_at($level, format_args!($($arg)+), file!(), module_path!(), line!())
    };
}

#[macro_export]
macro_rules! debug {
    ($logger:expr, $($arg:tt)+) => { $crate::log!($logger, $crate::LogLevel::Debug, $($arg)+) };
}

#[macro_export]
macro_rules! info {
    ($logger:expr, $($arg:tt)+) => { $crate::log!($logger, $crate::LogLevel::Info, $($arg)+) };
}

#[macro_export]
macro_rules! warn {
    ($logger:expr, $($arg:tt)+) => { $crate::log!($logger, $crate::LogLevel::Warn, $($arg)+) };
}

#[macro_export]
macro_rules! error {
    ($logger:expr, $($arg:tt)+) => { $crate::log!($logger, $crate::LogLevel::Error, $($arg)+) };
}
