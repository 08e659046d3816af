//! A line editor for a console in raw mode: echo, backspace, Ctrl-C, Ctrl-U, and whatever a
//! real serial line sends (CR, LF or CRLF, escape sequences, bytes that are not UTF-8).
//!
//! It is fed one byte at a time and writes its echo into a string, so it can be tested without
//! a terminal and the caller decides where the echo goes.

use super::text;

/// Longest line accepted, in bytes; a pasted 4096-bit RSA key is about 750.
pub const MAX_LINE: usize = 2048;

/// The terminal width the screens are written for.
const WIDTH: usize = 80;

/// Longest escape sequence followed before giving up on it.
const MAX_SEQUENCE: usize = 32;

/// What a finished line was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Enter was pressed on this text.
    Line(String),
    /// Ctrl-C: leave this question.
    Cancel,
    /// Enter on a line that grew too long (it was refused when it did).
    TooLong,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Escape {
    #[default]
    None,
    /// After ESC.
    Start,
    /// Inside `ESC [`, with the number of bytes seen.
    Csi(usize),
    /// After `ESC O`: one more byte belongs to the sequence.
    Ss3,
}

/// One console's line being typed; it keeps its state between lines (a CR's LF may follow).
#[derive(Debug, Clone, Default)]
pub struct Editor {
    line: String,
    prompt: String,
    secret: bool,
    escape: Escape,
    /// Bytes of a UTF-8 character not complete yet.
    partial: Vec<u8>,
    too_long: bool,
    warned_utf8: bool,
    /// The last line ended with CR: an LF right after it belongs to it.
    after_cr: bool,
}

impl Editor {
    /// Starts a new line after `prompt` (already shown); `secret` echoes `*` for each character.
    pub fn begin(&mut self, prompt: &str, secret: bool) {
        self.line.clear();
        self.partial.clear();
        self.prompt = prompt.into();
        self.secret = secret;
        self.too_long = false;
        self.warned_utf8 = false;
    }

    /// Feeds one byte, appending the echo to `echo`; returns the line's outcome when it ends.
    pub fn feed(&mut self, byte: u8, echo: &mut String) -> Option<Outcome> {
        let after_cr = std::mem::take(&mut self.after_cr);
        match self.escape {
            Escape::None => {}
            Escape::Start => {
                self.escape = match byte {
                    b'[' => Escape::Csi(0),
                    b'O' => Escape::Ss3,
                    0x1b => Escape::Start,
                    // A control key after a lone Esc is still that key.
                    0..=0x1f | 0x7f => Escape::None,
                    _ => return self.skip(), // Alt+key
                };
                if self.escape != Escape::None {
                    return None;
                }
            }
            Escape::Csi(n) => match byte {
                0x40..=0x7e => return self.skip(),
                0x20..=0x3f if n < MAX_SEQUENCE => {
                    self.escape = Escape::Csi(n + 1);
                    return None;
                }
                // Not a sequence after all (or far too long): the byte counts on its own.
                _ => self.escape = Escape::None,
            },
            Escape::Ss3 => return self.skip(),
        }
        match byte {
            b'\n' if after_cr => None,
            b'\r' | b'\n' => {
                self.after_cr = byte == b'\r';
                echo.push('\n');
                Some(self.finish())
            }
            0x03 => {
                echo.push_str("^C\n");
                self.begin("", false);
                Some(Outcome::Cancel)
            }
            0x15 => {
                self.erase(echo);
                None
            }
            0x08 | 0x7f => {
                if self.partial.is_empty() && !self.too_long && self.line.pop().is_some() {
                    echo.push_str("\x08 \x08");
                }
                self.partial.clear();
                None
            }
            0x1b => {
                self.escape = Escape::Start;
                None
            }
            0..=0x1f => None, // other control keys (Tab, Ctrl-D...) mean nothing here
            _ => {
                self.text_byte(byte, echo);
                None
            }
        }
    }

    fn skip(&mut self) -> Option<Outcome> {
        self.escape = Escape::None;
        None
    }

    fn finish(&mut self) -> Outcome {
        let outcome = if self.too_long {
            Outcome::TooLong
        } else {
            Outcome::Line(std::mem::take(&mut self.line))
        };
        let prompt = std::mem::take(&mut self.prompt);
        let secret = self.secret;
        self.begin(&prompt, secret);
        outcome
    }

    /// Ctrl-U: rub the line out if it fits on the terminal's row, else start a fresh row.
    fn erase(&mut self, echo: &mut String) {
        let shown = if self.too_long {
            WIDTH
        } else {
            self.line.chars().count()
        };
        if self.prompt.chars().count() + shown < WIDTH {
            for _ in 0..shown {
                echo.push_str("\x08 \x08");
            }
        } else {
            echo.push('\n');
            echo.push_str(&self.prompt);
        }
        let (prompt, secret) = (std::mem::take(&mut self.prompt), self.secret);
        self.begin(&prompt, secret);
    }

    /// A printable ASCII byte or part of a UTF-8 character.
    fn text_byte(&mut self, byte: u8, echo: &mut String) {
        self.partial.push(byte);
        let need = match self.partial[0] {
            0x20..=0x7e => 1,
            0xc2..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf4 => 4,
            _ => 0,
        };
        let continuation = (0x80..=0xbf).contains(&byte);
        if need == 0 || (self.partial.len() > 1 && !continuation) {
            self.partial.clear();
            self.not_utf8(echo);
            // A lead or ASCII byte after a broken character starts afresh.
            if !continuation && need != 0 {
                self.text_byte(byte, echo);
            }
            return;
        }
        if self.partial.len() < need {
            return;
        }
        let decoded = std::str::from_utf8(&self.partial)
            .ok()
            .and_then(|s| s.chars().next());
        self.partial.clear();
        match decoded {
            Some(c) => self.push(c, echo),
            None => self.not_utf8(echo), // overlong form or surrogate
        }
    }

    fn push(&mut self, c: char, echo: &mut String) {
        if self.too_long || c.is_control() {
            return;
        }
        if self.line.len() + c.len_utf8() > MAX_LINE {
            self.too_long = true;
            echo.push('\n');
            echo.push_str(text::TOO_LONG);
            echo.push('\n');
            return;
        }
        self.line.push(c);
        echo.push(if self.secret { '*' } else { c });
    }

    /// Says once per line that a byte was dropped, then shows the line again.
    fn not_utf8(&mut self, echo: &mut String) {
        if self.warned_utf8 || self.too_long {
            return;
        }
        self.warned_utf8 = true;
        echo.push('\n');
        echo.push_str(text::NOT_UTF8);
        echo.push('\n');
        echo.push_str(&self.prompt);
        if self.secret {
            echo.extend(self.line.chars().map(|_| '*'));
        } else {
            echo.push_str(&self.line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `bytes` to a fresh editor: the outcomes in order and the whole echo.
    fn run(prompt: &str, secret: bool, bytes: &[u8]) -> (Vec<Outcome>, String) {
        let mut editor = Editor::default();
        editor.begin(prompt, secret);
        let mut echo = String::new();
        let outcomes = bytes
            .iter()
            .filter_map(|&b| editor.feed(b, &mut echo))
            .collect();
        (outcomes, echo)
    }

    fn lines(bytes: &[u8]) -> Vec<Outcome> {
        run("> ", false, bytes).0
    }

    fn line(s: &str) -> Outcome {
        Outcome::Line(s.into())
    }

    #[test]
    fn every_line_ending() {
        assert_eq!(
            lines(b"a\rb\nc\r\nd\n\re\r\r"),
            vec![
                line("a"),
                line("b"),
                line("c"),
                line("d"),
                line(""),
                line("e"),
                line("")
            ]
        );
    }

    #[test]
    fn echo_of_typed_text() {
        let (out, echo) = run("> ", false, "héllo ✓\r".as_bytes());
        assert_eq!(out, vec![line("héllo ✓")]);
        assert_eq!(echo, "héllo ✓\n");
    }

    #[test]
    fn backspace_and_delete_remove_whole_characters() {
        let (out, echo) = run(
            "> ",
            false,
            "abc\x08\x7fé\x7fd\x7f\x7f\x7f\x7fx\r".as_bytes(),
        );
        assert_eq!(out, vec![line("x")]);
        // c, b, é, d, a: one rub-out each, none on the empty line
        assert_eq!(echo.matches("\x08 \x08").count(), 5);
        assert!(echo.ends_with("x\n"));
    }

    #[test]
    fn ctrl_u_erases_the_line() {
        let (out, echo) = run("> ", false, b"garbage\x15ok\r");
        assert_eq!(out, vec![line("ok")]);
        assert!(echo.contains(&"\x08 \x08".repeat(7)));
        // a line wider than the screen cannot be rubbed out: a fresh row with the prompt
        let long = [b'k'; 100];
        let mut bytes = long.to_vec();
        bytes.extend_from_slice(b"\x15yes\r");
        let (out, echo) = run("> ", false, &bytes);
        assert_eq!(out, vec![line("yes")]);
        assert!(echo.ends_with("\n> yes\n"));
    }

    #[test]
    fn ctrl_c_cancels_and_forgets_the_line() {
        let (out, echo) = run("> ", false, b"half\x03next\r");
        assert_eq!(out, vec![Outcome::Cancel, line("next")]);
        assert!(echo.contains("^C\n"));
    }

    #[test]
    fn escape_sequences_are_ignored() {
        // arrows, Home/End, F1 (SS3), F5, a cursor position report, Alt+x, 8-bit noise after
        let (out, _) = run(
            "> ",
            false,
            b"a\x1b[A\x1b[D\x1b[1;5C\x1bOP\x1b[15~\x1b[24;80R\x1bxb\r",
        );
        assert_eq!(out, vec![line("ab")]);
    }

    #[test]
    fn lone_escape_then_enter_still_ends_the_line() {
        assert_eq!(lines(b"ok\x1b\r"), vec![line("ok")]);
        assert_eq!(lines(b"ok\x1b[\r"), vec![line("ok")]);
    }

    #[test]
    fn control_keys_are_not_text() {
        assert_eq!(lines(b"a\tb\x00\x04\x1ac\r"), vec![line("abc")]);
    }

    #[test]
    fn bytes_that_are_not_utf8_are_refused_with_a_message() {
        let (out, echo) = run("> ", false, b"ab\xffc\xc3(d\xe2\x82e\xc0\xafz\r");
        assert_eq!(out, vec![line("abc(dez")]);
        // said once per line, then the line is shown again after the prompt
        assert_eq!(echo.matches(text::NOT_UTF8).count(), 1);
        assert!(echo.contains(&format!("{}\n> ab", text::NOT_UTF8)));
        let (out, echo) = run("> ", false, b"\xed\xa0\x80x\r\x80y\r");
        assert_eq!(out, vec![line("x"), line("y")]);
        assert_eq!(echo.matches(text::NOT_UTF8).count(), 2);
    }

    #[test]
    fn long_pasted_key_fits() {
        let key = format!("ssh-rsa {} me@host", "A".repeat(720));
        let (out, _) = run("> ", false, format!("{key}\r\n").as_bytes());
        assert_eq!(out, vec![Outcome::Line(key)]);
    }

    #[test]
    fn too_long_a_line_is_refused_once_enter_is_pressed() {
        let mut bytes = vec![b'x'; MAX_LINE + 10];
        bytes.extend_from_slice(b"\rshort\r");
        let (out, echo) = run("> ", false, &bytes);
        assert_eq!(out, vec![Outcome::TooLong, line("short")]);
        assert_eq!(echo.matches(text::TOO_LONG).count(), 1);
        assert_eq!(echo.matches('x').count(), MAX_LINE);
        // Ctrl-U starts over
        let mut bytes = vec![b'x'; MAX_LINE + 1];
        bytes.extend_from_slice(b"\x15again\r");
        assert_eq!(lines(&bytes), vec![line("again")]);
    }

    #[test]
    fn secrets_echo_stars() {
        let (out, echo) = run("pw: ", true, b"s3cret\x7f!\r");
        assert_eq!(out, vec![line("s3cre!")]);
        assert!(!echo.contains('s'));
        assert_eq!(echo.matches('*').count(), 7);
    }

    #[test]
    fn garbage_never_panics_and_lines_stay_bounded() {
        let mut editor = Editor::default();
        let mut echo = String::new();
        let mut seed = 0x1234_5678_u32;
        for _ in 0..200_000 {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            if let Some(Outcome::Line(l)) = editor.feed(seed as u8, &mut echo) {
                assert!(l.len() <= MAX_LINE);
                assert!(!l.chars().any(char::is_control));
            }
            echo.clear();
        }
    }
}
