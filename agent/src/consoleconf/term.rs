//! The consoles console-conf talks to, behind a small trait: the device's consoles in the
//! agent, scripted bytes in tests.

use std::sync::Arc;
use std::time::Duration;

use crate::console::{self, Console, Input};

/// What waiting for input brought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Console `.0` sent these bytes.
    Bytes(usize, Vec<u8>),
    /// Console `.0` hung up or failed; it sends nothing more.
    Gone(usize),
    /// Nothing arrived in time.
    Timeout,
}

/// A set of consoles, each known by its index.
pub trait Terminal {
    /// How many consoles there are.
    fn count(&self) -> usize;
    /// A console's short name for people, e.g. `ttyAMA0`.
    fn name(&self, console: usize) -> String;
    /// Writes `text` to one console; an error means it is gone.
    fn write(&mut self, console: usize, text: &str) -> Result<(), ()>;
    /// Waits up to `timeout` (forever with `None`) for input on the consoles in `from`.
    fn read(&mut self, from: &[usize], timeout: Option<Duration>) -> Event;
    /// Drops what was typed on a console before a prompt, so it cannot answer it.
    fn discard(&mut self, console: usize);
}

/// The device's consoles (see `console.rs`).
#[derive(Debug)]
pub struct Consoles {
    consoles: Vec<Arc<Console>>,
}

impl Consoles {
    /// Every console of the global set, as opened from the kernel command line.
    pub fn all() -> Consoles {
        Consoles::new(console::all())
    }

    /// These consoles.
    pub fn new(consoles: Vec<Arc<Console>>) -> Consoles {
        Consoles { consoles }
    }
}

impl Terminal for Consoles {
    fn count(&self) -> usize {
        self.consoles.len()
    }

    fn name(&self, console: usize) -> String {
        self.consoles.get(console).map_or_else(String::new, |c| {
            c.path.strip_prefix("/dev/").unwrap_or(&c.path).to_string()
        })
    }

    fn write(&mut self, console: usize, text: &str) -> Result<(), ()> {
        let console = self.consoles.get(console).ok_or(())?;
        console.write_text(text).map_err(|_| ())
    }

    fn read(&mut self, from: &[usize], timeout: Option<Duration>) -> Event {
        let mut buf = [0u8; 256];
        match console::wait_input(&self.consoles, from, timeout, &mut buf) {
            Input::Read(i, n) => Event::Bytes(i, buf[..n].to_vec()),
            Input::Gone(i) => Event::Gone(i),
            Input::Timeout => Event::Timeout,
        }
    }

    fn discard(&mut self, console: usize) {
        if let Some(console) = self.consoles.get(console) {
            console.discard_input();
        }
    }
}

/// Scripted consoles for tests: the events come in order, the output is kept per console.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct Script {
    /// Console names.
    pub names: Vec<String>,
    /// What `read` returns next; once empty, every console is gone.
    pub events: std::collections::VecDeque<Event>,
    /// Everything written to each console.
    pub out: Vec<String>,
    /// Consoles whose writes fail.
    pub broken: Vec<usize>,
    /// Every write in order: (console, text).
    pub log: Vec<(usize, String)>,
}

#[cfg(test)]
impl Script {
    /// `names.len()` consoles and these events.
    pub fn new(names: &[&str], events: Vec<Event>) -> Script {
        Script {
            names: names.iter().map(|n| n.to_string()).collect(),
            events: events.into(),
            out: vec![String::new(); names.len()],
            broken: Vec::new(),
            log: Vec::new(),
        }
    }
}

#[cfg(test)]
impl Terminal for Script {
    fn count(&self) -> usize {
        self.names.len()
    }

    fn name(&self, console: usize) -> String {
        self.names[console].clone()
    }

    fn write(&mut self, console: usize, text: &str) -> Result<(), ()> {
        if self.broken.contains(&console) {
            return Err(());
        }
        self.out[console].push_str(text);
        self.log.push((console, text.to_string()));
        Ok(())
    }

    fn read(&mut self, from: &[usize], _timeout: Option<Duration>) -> Event {
        match self.events.pop_front() {
            Some(event) => event,
            None => from.first().map_or(Event::Timeout, |&i| Event::Gone(i)),
        }
    }

    fn discard(&mut self, _console: usize) {}
}
