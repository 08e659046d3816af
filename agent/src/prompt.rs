//! The prompt's key handling: turns bytes from a console into a choice.
//!
//! Terminals send escape sequences for arrow keys, function keys and replies such as the
//! cursor position report `ESC [ 24 ; 80 R`; those are skipped whole, so their letters cannot
//! reboot the device. Every other byte that is not one of our keys is ignored.

/// The prompt line; the QEMU tests look for it verbatim.
pub const PROMPT: &str = "Press r to reboot, p to power off, Enter to retry";

/// What the person at the console chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// `r`
    Reboot,
    /// `p`
    PowerOff,
    /// Enter (CR or LF)
    Retry,
}

/// Longest escape sequence we follow before giving up on it.
const MAX_SEQUENCE: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    #[default]
    Ground,
    /// After ESC.
    Escape,
    /// Inside `ESC [` / CSI, with the number of bytes seen.
    Csi(usize),
    /// After `ESC O` (SS3): one more byte belongs to the sequence.
    Ss3,
}

/// Decodes one console's bytes; each console needs its own, as sequences are per console.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    state: State,
}

impl Keys {
    /// Feeds one byte; returns a choice when the byte completes one.
    pub fn feed(&mut self, byte: u8) -> Option<Choice> {
        match self.state {
            State::Ground => self.ground(byte),
            State::Escape => {
                self.state = match byte {
                    b'[' => State::Csi(0),
                    b'O' => State::Ss3,
                    0x1b => State::Escape,
                    _ => State::Ground, // Alt+key: the key is part of the sequence
                };
                None
            }
            State::Csi(n) => match byte {
                0x40..=0x7e => {
                    self.state = State::Ground;
                    None
                }
                0x20..=0x3f if n < MAX_SEQUENCE => {
                    self.state = State::Csi(n + 1);
                    None
                }
                // Not part of a sequence after all (or far too long): start afresh with it.
                _ => {
                    self.state = State::Ground;
                    self.ground(byte)
                }
            },
            State::Ss3 => {
                self.state = State::Ground;
                None
            }
        }
    }

    fn ground(&mut self, byte: u8) -> Option<Choice> {
        match byte {
            b'r' | b'R' => Some(Choice::Reboot),
            b'p' | b'P' => Some(Choice::PowerOff),
            b'\r' | b'\n' => Some(Choice::Retry),
            0x1b => {
                self.state = State::Escape;
                None
            }
            0x9b => {
                self.state = State::Csi(0); // 8-bit CSI
                None
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(bytes: &[u8]) -> Option<Choice> {
        let mut keys = Keys::default();
        bytes.iter().find_map(|&b| keys.feed(b))
    }

    #[test]
    fn plain_keys() {
        assert_eq!(first(b"r"), Some(Choice::Reboot));
        assert_eq!(first(b"R"), Some(Choice::Reboot));
        assert_eq!(first(b"p"), Some(Choice::PowerOff));
        assert_eq!(first(b"\r"), Some(Choice::Retry));
        assert_eq!(first(b"\n"), Some(Choice::Retry));
    }

    #[test]
    fn other_keys_are_ignored() {
        assert_eq!(first(b"hello 123 ?!\t\x00\x7f\x03\x04 qwty"), None);
        assert_eq!(first(b"xyzp"), Some(Choice::PowerOff));
    }

    #[test]
    fn escape_sequences_are_skipped() {
        // arrows, a cursor position report ending in R, F1 via SS3 ending in P
        assert_eq!(first(b"\x1b[A\x1b[B\x1b[24;80R\x1bOP\x1b[15~"), None);
        assert_eq!(first(b"\x1b[24;80Rr"), Some(Choice::Reboot));
        assert_eq!(first(b"\x9b24;80R"), None);
    }

    #[test]
    fn alt_key_is_not_a_choice() {
        assert_eq!(first(b"\x1br\x1bp"), None);
        assert_eq!(first(b"\x1b\x1b[A"), None);
    }

    #[test]
    fn broken_sequence_gives_the_byte_back() {
        assert_eq!(first(b"\x1b[12\r"), Some(Choice::Retry));
    }

    #[test]
    fn endless_sequence_is_abandoned() {
        let mut bytes = b"\x1b[".to_vec();
        bytes.extend(std::iter::repeat_n(b'1', MAX_SEQUENCE + 1));
        bytes.push(b'p');
        // the byte after the limit restarts decoding: '1' is ignored, then 'p' counts
        assert_eq!(first(&bytes), Some(Choice::PowerOff));
    }

    #[test]
    fn garbage_from_a_noisy_line_never_panics() {
        let mut keys = Keys::default();
        let mut seed = 0xDEAD_BEEF_u32;
        for _ in 0..100_000 {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let _ = keys.feed(seed as u8);
        }
    }
}
