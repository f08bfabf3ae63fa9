//! Single key presses from a terminal (for `s2r bag play`), without echo or Enter.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Up,
    Down,
    Left,
    Right,
}

/// The terminal in raw mode while this lives; restored when dropped.
pub struct RawMode {
    saved: libc::termios,
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restores the settings read from the same descriptor.
        unsafe {
            libc::tcsetattr(0, libc::TCSANOW, &self.saved);
        }
    }
}

pub struct Keyboard {
    _raw: std::sync::Arc<RawMode>,
}

/// Reads keys; cheap to move to a blocking thread.
pub struct KeyReader;

impl Keyboard {
    /// `None` when standard input is not a terminal (scripts, tests).
    pub fn start() -> Option<(Keyboard, KeyReader)> {
        // SAFETY: plain libc calls on descriptor 0 with a zeroed termios to fill.
        unsafe {
            if libc::isatty(0) != 1 {
                return None;
            }
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return None;
            }
            let saved = t;
            t.c_lflag &= !(libc::ICANON | libc::ECHO);
            t.c_cc[libc::VMIN] = 1;
            t.c_cc[libc::VTIME] = 0;
            if libc::tcsetattr(0, libc::TCSANOW, &t) != 0 {
                return None;
            }
            Some((Keyboard { _raw: std::sync::Arc::new(RawMode { saved }) }, KeyReader))
        }
    }
}

impl KeyReader {
    fn byte(&mut self) -> Option<u8> {
        let mut b = [0u8; 1];
        // SAFETY: reads one byte into a local buffer.
        let n = unsafe { libc::read(0, b.as_mut_ptr().cast(), 1) };
        (n == 1).then_some(b[0])
    }

    /// Blocks for the next key; `None` at end of input.
    pub fn next_key(&mut self) -> Option<Key> {
        let b = self.byte()?;
        if b != 0x1b {
            return Some(Key::Char(b as char));
        }
        // Arrow keys arrive as ESC [ A..D.
        if self.byte()? != b'[' {
            return Some(Key::Char('\u{1b}'));
        }
        Some(match self.byte()? {
            b'A' => Key::Up,
            b'B' => Key::Down,
            b'C' => Key::Right,
            b'D' => Key::Left,
            other => Key::Char(other as char),
        })
    }
}
