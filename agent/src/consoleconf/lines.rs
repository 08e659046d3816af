//! Questions and answers over every console at once: which console gets the session, the
//! answers typed on it, and "in progress" for the others.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::editor::{Editor, Outcome};
use super::term::{Event, Terminal};
use super::text;

/// Why a session ended before its commit; nothing was written in any case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Ctrl-C on the first screen.
    Cancelled,
    /// No key within the idle time.
    TimedOut,
    /// The session's console hung up or failed.
    Gone,
}

/// An answer to one question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The line typed (may be empty).
    Line(String),
    /// Ctrl-C: go back.
    Back,
}

/// The consoles with what each has typed and not yet used.
#[derive(Debug)]
pub struct Lines<'t, T: Terminal> {
    term: &'t mut T,
    live: Vec<bool>,
    editors: Vec<Editor>,
    pending: Vec<VecDeque<u8>>,
    /// The console that has the session, if any.
    owner: Option<usize>,
}

impl<'t, T: Terminal> Lines<'t, T> {
    /// Every console of `term`.
    pub fn new(term: &'t mut T) -> Self {
        let n = term.count();
        Lines {
            term,
            live: vec![true; n],
            editors: vec![Editor::default(); n],
            pending: vec![VecDeque::new(); n],
            owner: None,
        }
    }

    fn live(&self) -> Vec<usize> {
        (0..self.live.len()).filter(|&i| self.live[i]).collect()
    }

    /// Writes `text` to one console; a console that fails is left out from then on.
    fn write(&mut self, console: usize, text: &str) -> bool {
        if !self.live.get(console).copied().unwrap_or(false) {
            return false;
        }
        let ok = self.term.write(console, text).is_ok();
        if !ok {
            self.live[console] = false;
        }
        ok
    }

    /// Writes `text` to every console still there.
    pub fn broadcast(&mut self, text: &str) {
        for i in self.live() {
            self.write(i, text);
        }
    }

    /// Shows "Press Enter" everywhere (consoles that hung up get another chance) and returns
    /// the first console where Enter is pressed; `None` once no console is left.
    pub fn claim(&mut self) -> Option<usize> {
        self.owner = None;
        self.live.iter_mut().for_each(|l| *l = true);
        for i in 0..self.live.len() {
            self.term.discard(i);
            self.pending[i].clear();
            self.editors[i].begin("", false);
            self.write(i, &format!("\n{}\n", text::PRESS_ENTER));
        }
        loop {
            let from = self.live();
            if from.is_empty() {
                return None;
            }
            match self.term.read(&from, None) {
                Event::Bytes(i, bytes) if self.live.get(i) == Some(&true) => {
                    self.pending[i].extend(bytes);
                    while let Some(b) = self.pending[i].pop_front() {
                        if let Some(Outcome::Line(_) | Outcome::TooLong) =
                            self.editors[i].feed(b, &mut String::new())
                        {
                            return self.start(i);
                        }
                    }
                }
                Event::Gone(i) if i < self.live.len() => self.live[i] = false,
                _ => {}
            }
        }
    }

    /// Gives the session to `owner` and tells the others where it is.
    fn start(&mut self, owner: usize) -> Option<usize> {
        self.owner = Some(owner);
        for i in self.live() {
            if i != owner {
                self.editors[i].begin("", false);
                self.pending[i].clear();
                let line = self.in_progress(owner);
                self.write(i, &line);
            }
        }
        Some(owner)
    }

    fn in_progress(&self, owner: usize) -> String {
        format!(
            "\n{} {}; press Enter here once it ends.\n",
            text::IN_PROGRESS,
            self.term.name(owner)
        )
    }

    /// Writes to the session's console.
    pub fn say(&mut self, text: &str) -> Result<(), End> {
        let owner = self.owner.ok_or(End::Gone)?;
        if self.write(owner, text) {
            Ok(())
        } else {
            Err(End::Gone)
        }
    }

    /// Asks `prompt` on the session's console and waits for the answer, at most `idle` after
    /// the last key; `secret` echoes stars. A line that is too long is asked again.
    pub fn ask(&mut self, prompt: &str, secret: bool, idle: Duration) -> Result<Answer, End> {
        let owner = self.owner.ok_or(End::Gone)?;
        self.say(prompt)?;
        self.editors[owner].begin(prompt, secret);
        let mut deadline = Instant::now() + idle;
        loop {
            // The echo of what arrived together goes out in one write (a paste is one burst).
            let mut echo = String::new();
            while let Some(b) = self.pending[owner].pop_front() {
                let outcome = self.editors[owner].feed(b, &mut echo);
                if outcome.is_some() && !echo.is_empty() {
                    self.say(&std::mem::take(&mut echo))?;
                }
                match outcome {
                    None => {}
                    Some(Outcome::Line(line)) => return Ok(Answer::Line(line)),
                    Some(Outcome::Cancel) => return Ok(Answer::Back),
                    Some(Outcome::TooLong) => self.say(prompt)?,
                }
            }
            if !echo.is_empty() {
                self.say(&echo)?;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(End::TimedOut);
            }
            match self.term.read(&self.live(), Some(left)) {
                Event::Bytes(i, bytes) if i == owner => {
                    self.pending[owner].extend(bytes);
                    deadline = Instant::now() + idle;
                }
                Event::Bytes(i, bytes) => self.elsewhere(i, &bytes, owner),
                Event::Gone(i) if i == owner => {
                    self.live[owner] = false;
                    return Err(End::Gone);
                }
                Event::Gone(i) if i < self.live.len() => self.live[i] = false,
                Event::Gone(_) => {}
                Event::Timeout => return Err(End::TimedOut),
            }
        }
    }

    /// Enter on another console while the session runs: say again where it is.
    fn elsewhere(&mut self, i: usize, bytes: &[u8], owner: usize) {
        if self.live.get(i) != Some(&true) {
            return;
        }
        let enters = bytes
            .iter()
            .filter(|&&b| {
                matches!(
                    self.editors[i].feed(b, &mut String::new()),
                    Some(Outcome::Line(_) | Outcome::TooLong)
                )
            })
            .count();
        if enters > 0 {
            let line = self.in_progress(owner);
            self.write(i, &line);
        }
    }
}
