//! The kernel command line: the kernel's own `console=` keys and ours, prefixed `coreforge.`.
//!
//! Splitting follows the kernel's `next_arg()` (lib/cmdline.c) so that we see the same
//! parameters the kernel saw: whitespace separates, double quotes group, quotes around a
//! value are dropped, and `--` ends the kernel's part of the line.

use std::fmt;

/// What to do after the report instead of waiting at the prompt (`coreforge.then=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// Power the device off.
    PowerOff,
    /// Reboot the device.
    Reboot,
}

/// Parity of a serial console, from the letter after the baud rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parity {
    /// `n`
    None,
    /// `o`
    Odd,
    /// `e`
    Even,
}

/// Line settings of a serial console written as `<baud><parity><bits><flow>`, e.g. `115200n8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SerialOptions {
    /// Bits per second.
    pub baud: u32,
    /// Parity (default none).
    pub parity: Parity,
    /// Data bits, 5 to 8 (default 8).
    pub bits: u8,
    /// RTS/CTS flow control (`r` suffix).
    pub rtscts: bool,
}

/// One `console=` key: a device under /dev and, for UARTs, optional line settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleArg {
    /// Device name below /dev, e.g. `ttyAMA0` or `tty1`.
    pub device: String,
    /// Line settings if the key gave them (`console=ttyS0,115200n8`).
    pub serial: Option<SerialOptions>,
}

/// Everything the agent takes from the kernel command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cmdline {
    /// The consoles in command line order; the kernel makes the last one /dev/console.
    pub consoles: Vec<ConsoleArg>,
    /// `coreforge.then=poweroff|reboot`.
    pub then: Option<Then>,
    /// `coreforge.debug`: log debug messages too.
    pub debug: bool,
    /// The command line sets the kernel's console log level itself (`loglevel=`, `quiet`,
    /// `debug`): the agent leaves it alone.
    pub kernel_loglevel: bool,
    /// Keys we could not use, each with the reason; reported once logging is up.
    pub warnings: Vec<String>,
}

/// Our prefix for command line keys.
const PREFIX: &str = "coreforge.";

impl Cmdline {
    /// Parses the text of /proc/cmdline (with or without a trailing newline).
    pub fn parse(line: &str) -> Cmdline {
        let mut out = Cmdline::default();
        for (key, value) in split(line) {
            out.apply(key, value);
        }
        out
    }

    fn apply(&mut self, key: &str, value: Option<&str>) {
        if key == "console" {
            match value.map(parse_console) {
                Some(Ok(Some(console))) => {
                    // A repeated device keeps its first position; later options win.
                    match self
                        .consoles
                        .iter_mut()
                        .find(|c| c.device == console.device)
                    {
                        Some(seen) => *seen = console,
                        None => self.consoles.push(console),
                    }
                }
                Some(Ok(None)) => {}
                Some(Err(why)) => self.warnings.push(why),
                None => self
                    .warnings
                    .push("console without a device ignored".into()),
            }
            return;
        }
        if matches!(key, "loglevel" | "quiet" | "debug") {
            self.kernel_loglevel = true;
        }
        let Some(ours) = key.strip_prefix(PREFIX) else {
            return;
        };
        match (ours, value) {
            ("then", Some("poweroff")) => self.then = Some(Then::PowerOff),
            ("then", Some("reboot")) => self.then = Some(Then::Reboot),
            ("then", _) => self.warnings.push(format!(
                "{key}={} is not understood — use {key}=poweroff or {key}=reboot",
                value.unwrap_or("")
            )),
            ("debug", None | Some("1" | "true" | "yes" | "on")) => self.debug = true,
            ("debug", Some("0" | "false" | "no" | "off")) => self.debug = false,
            ("debug", Some(other)) => self.warnings.push(format!(
                "{key}={other} is not understood — use {key} or {key}=0"
            )),
            _ => self
                .warnings
                .push(format!("unknown option {key} ignored — check its spelling")),
        }
    }
}

/// Splits a command line into `(key, value)` pairs the way the kernel's `next_arg()` does.
pub fn split(line: &str) -> Vec<(&str, Option<&str>)> {
    let mut out = Vec::new();
    let mut rest = line.trim_start();
    while !rest.is_empty() {
        let (param, tail) = next_arg(rest);
        rest = tail.trim_start();
        if param.0 == "--" && param.1.is_none() {
            break; // the rest belongs to init, not to the kernel
        }
        out.push(param);
    }
    out
}

/// One parameter from the start of `args` (no leading whitespace), and what follows it.
fn next_arg(args: &str) -> ((&str, Option<&str>), &str) {
    let (args, quoted) = match args.strip_prefix('"') {
        Some(inner) => (inner, true),
        None => (args, false),
    };
    let mut in_quote = quoted;
    let mut equals = None;
    let mut end = args.len();
    for (i, c) in args.char_indices() {
        if c.is_whitespace() && !in_quote {
            end = i;
            break;
        }
        if equals.is_none() && c == '=' {
            equals = Some(i);
        }
        if c == '"' {
            in_quote = !in_quote;
        }
    }
    let word = &args[..end];
    let rest = &args[end..];
    let param = match equals {
        None => (strip_closing_quote(word, quoted), None),
        Some(at) => {
            let key = &word[..at];
            let mut value = &word[at + 1..];
            if let Some(inner) = value.strip_prefix('"') {
                value = inner.strip_suffix('"').unwrap_or(inner);
            } else {
                value = strip_closing_quote(value, quoted);
            }
            (key, Some(value))
        }
    };
    (param, rest)
}

fn strip_closing_quote(s: &str, quoted: bool) -> &str {
    if quoted {
        s.strip_suffix('"').unwrap_or(s)
    } else {
        s
    }
}

/// Parses the value of `console=`; `Ok(None)` for values that name no device we can open.
fn parse_console(value: &str) -> Result<Option<ConsoleArg>, String> {
    let (name, options) = match value.split_once(',') {
        Some((name, options)) => (name, Some(options)),
        None => (value, None),
    };
    let name = name.strip_prefix("/dev/").unwrap_or(name);
    // `console=` (empty) and `console=null` silence the kernel; `uart8250,mmio,...` is an
    // early console the kernel hands over to a ttyS device, which /dev/console reaches.
    if name.is_empty() || name == "null" || name.starts_with("uart") {
        return Ok(None);
    }
    let device = if name.starts_with(|c: char| c.is_ascii_digit()) {
        format!("ttyS{name}") // the kernel reads `console=0` as ttyS0
    } else {
        name.to_owned()
    };
    if !device
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        || device.starts_with('.')
    {
        return Err(format!("console={value} is not a device name — ignored"));
    }
    let serial = match options {
        Some(options) => match SerialOptions::parse(options) {
            Some(serial) => Some(serial),
            None => {
                return Err(format!(
                "console={value}: cannot read line settings {options:?} — expected e.g. 115200n8"
            ))
            }
        },
        None => None,
    };
    Ok(Some(ConsoleArg { device, serial }))
}

impl SerialOptions {
    /// Parses `115200`, `115200n8`, `9600e7r`; `None` if the text is not of that form.
    pub fn parse(text: &str) -> Option<SerialOptions> {
        let digits = text.bytes().take_while(u8::is_ascii_digit).count();
        let baud: u32 = text[..digits].parse().ok().filter(|b| *b > 0)?;
        let mut rest = text[digits..].bytes();
        let mut serial = SerialOptions {
            baud,
            parity: Parity::None,
            bits: 8,
            rtscts: false,
        };
        match rest.next() {
            None => return Some(serial),
            Some(b'n') => serial.parity = Parity::None,
            Some(b'o') => serial.parity = Parity::Odd,
            Some(b'e') => serial.parity = Parity::Even,
            Some(_) => return None,
        }
        match rest.next() {
            None => return Some(serial),
            Some(b @ b'5'..=b'8') => serial.bits = b - b'0',
            Some(_) => return None,
        }
        match (rest.next(), rest.next()) {
            (None, _) => Some(serial),
            (Some(b'r'), None) => {
                serial.rtscts = true;
                Some(serial)
            }
            _ => None,
        }
    }
}

impl fmt::Display for ConsoleArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/dev/{}", self.device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn console(device: &str, serial: Option<SerialOptions>) -> ConsoleArg {
        ConsoleArg {
            device: device.into(),
            serial,
        }
    }

    fn n8(baud: u32) -> SerialOptions {
        SerialOptions {
            baud,
            parity: Parity::None,
            bits: 8,
            rtscts: false,
        }
    }

    #[test]
    fn plain_keys_and_flags() {
        assert_eq!(
            split("root=/dev/vda2 ro quiet\n"),
            vec![("root", Some("/dev/vda2")), ("ro", None), ("quiet", None)]
        );
    }

    #[test]
    fn last_key_without_trailing_newline_is_kept() {
        // rsinit's parser dropped the last key when the line had no newline.
        let c = Cmdline::parse("quiet coreforge.then=reboot");
        assert_eq!(c.then, Some(Then::Reboot));
        let c = Cmdline::parse("coreforge.debug");
        assert!(c.debug);
    }

    #[test]
    fn quoted_value_keeps_spaces_and_drops_quotes() {
        assert_eq!(
            split("a=\"x y\" b=1\n"),
            vec![("a", Some("x y")), ("b", Some("1"))]
        );
    }

    #[test]
    fn fully_quoted_parameter() {
        assert_eq!(split("\"a=x y\" b"), vec![("a", Some("x y")), ("b", None)]);
    }

    #[test]
    fn quote_inside_value_is_kept_like_the_kernel() {
        assert_eq!(
            split("a=b\"c d\" e"),
            vec![("a", Some("b\"c d\"")), ("e", None)]
        );
    }

    #[test]
    fn unterminated_quote_runs_to_the_end() {
        assert_eq!(split("a=\"x y"), vec![("a", Some("x y"))]);
    }

    #[test]
    fn value_may_contain_equals() {
        assert_eq!(split("dyndbg=a=b"), vec![("dyndbg", Some("a=b"))]);
    }

    #[test]
    fn tabs_and_runs_of_spaces_separate() {
        assert_eq!(split("  a \t b\n\n"), vec![("a", None), ("b", None)]);
    }

    #[test]
    fn double_dash_ends_kernel_parameters() {
        let c = Cmdline::parse("console=ttyS0 -- coreforge.then=reboot console=tty1");
        assert_eq!(c.consoles, vec![console("ttyS0", None)]);
        assert_eq!(c.then, None);
    }

    #[test]
    fn empty_line() {
        assert_eq!(Cmdline::parse(""), Cmdline::default());
        assert_eq!(Cmdline::parse("\n"), Cmdline::default());
    }

    #[test]
    fn several_consoles_in_order_with_options() {
        let c = Cmdline::parse("console=tty1 console=ttyAMA0,115200n8\n");
        assert_eq!(
            c.consoles,
            vec![console("tty1", None), console("ttyAMA0", Some(n8(115200)))]
        );
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn repeated_console_is_listed_once_with_the_last_options() {
        let c = Cmdline::parse("console=ttyS0,9600 console=tty1 console=ttyS0,115200n8");
        assert_eq!(
            c.consoles,
            vec![console("ttyS0", Some(n8(115200))), console("tty1", None)]
        );
    }

    #[test]
    fn repeated_then_last_wins() {
        let c = Cmdline::parse("coreforge.then=reboot coreforge.then=poweroff");
        assert_eq!(c.then, Some(Then::PowerOff));
    }

    #[test]
    fn console_options_forms() {
        assert_eq!(SerialOptions::parse("115200"), Some(n8(115200)));
        assert_eq!(
            SerialOptions::parse("9600e7r"),
            Some(SerialOptions {
                baud: 9600,
                parity: Parity::Even,
                bits: 7,
                rtscts: true
            })
        );
        assert_eq!(
            SerialOptions::parse("38400o").map(|s| s.parity),
            Some(Parity::Odd)
        );
        for bad in [
            "",
            "n8",
            "0",
            "115200x",
            "115200n9",
            "115200n8rx",
            "115200n8q",
        ] {
            assert_eq!(SerialOptions::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn console_bad_options_warns_and_skips() {
        let c = Cmdline::parse("console=ttyS0,fast");
        assert!(c.consoles.is_empty());
        assert_eq!(c.warnings.len(), 1);
        assert!(c.warnings[0].contains("ttyS0,fast"), "{:?}", c.warnings);
    }

    #[test]
    fn console_dev_prefix_digit_null_and_earlycon() {
        let c = Cmdline::parse("console=/dev/hvc0 console=1,57600 console=null console= console=uart8250,mmio32,0x1000");
        assert_eq!(
            c.consoles,
            vec![console("hvc0", None), console("ttyS1", Some(n8(57600)))]
        );
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn console_path_tricks_are_rejected() {
        let c = Cmdline::parse("console=../mem console=/dev/../x console=..");
        assert!(c.consoles.is_empty());
        assert_eq!(c.warnings.len(), 3);
    }

    #[test]
    fn console_without_value_warns() {
        let c = Cmdline::parse("console");
        assert!(c.consoles.is_empty());
        assert_eq!(c.warnings.len(), 1);
    }

    #[test]
    fn our_options() {
        let c = Cmdline::parse("coreforge.debug coreforge.then=poweroff");
        assert!(c.debug);
        assert_eq!(c.then, Some(Then::PowerOff));
        let c = Cmdline::parse("coreforge.debug=1 coreforge.debug=off");
        assert!(!c.debug);
    }

    #[test]
    fn bad_and_unknown_options_warn() {
        let c = Cmdline::parse("coreforge.then=halt coreforge.thne=reboot coreforge.debug=maybe");
        assert_eq!(c.then, None);
        assert!(!c.debug);
        assert_eq!(c.warnings.len(), 3, "{:?}", c.warnings);
        assert!(c.warnings[0].contains("coreforge.then=halt"));
        assert!(c.warnings[1].contains("coreforge.thne"));
    }

    #[test]
    fn other_prefixes_are_not_ours() {
        let c = Cmdline::parse("coreforgex.then=reboot xcoreforge.debug");
        assert_eq!(c, Cmdline::default());
    }

    #[test]
    fn non_ascii_does_not_panic() {
        let c = Cmdline::parse("ä=\"ö ü\" console=tty€ \u{0}");
        assert!(c.consoles.is_empty());
        assert_eq!(c.warnings.len(), 1);
    }

    #[test]
    fn notes_when_the_kernel_console_level_is_set_on_the_command_line() {
        assert!(!Cmdline::parse("console=ttyAMA0 coreforge.debug").kernel_loglevel);
        for line in ["loglevel=7", "quiet", "debug", "panic=-1 quiet"] {
            assert!(Cmdline::parse(line).kernel_loglevel, "{line}");
        }
    }
}
