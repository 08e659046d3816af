//! `meta/snap.yaml` as far as running a snap needs it: name, version, type, the snap's
//! `environment:` and its `apps:`, each app checked with snapd's rules (`snap/validate.go`,
//! `snap/info_snap_yaml.go`). Errors name the field: `apps.web.daemon: ...`.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde_norway::Value;

use crate::duration::Duration;

/// What is wrong with a snap.yaml; the message names the field (`apps.web.stop-timeout`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    field: String,
    reason: String,
}

impl YamlError {
    pub(crate) fn new(field: impl Into<String>, reason: impl Into<String>) -> YamlError {
        YamlError {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The field at fault (`apps.web.daemon`), empty for the document as a whole.
    pub fn field(&self) -> &str {
        &self.field
    }
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.field, self.reason)
        }
    }
}

impl std::error::Error for YamlError {}

/// How systemd runs a daemon (`Type=`). snapd's `dbus` needs a bus policy and activation
/// that coreforge does not set up, so it is refused with the others that are not listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Daemon {
    /// `simple`
    Simple,
    /// `forking`
    Forking,
    /// `oneshot`
    Oneshot,
    /// `notify`
    Notify,
}

impl Daemon {
    /// The value of systemd's `Type=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Daemon::Simple => "simple",
            Daemon::Forking => "forking",
            Daemon::Oneshot => "oneshot",
            Daemon::Notify => "notify",
        }
    }
}

/// snapd's restart conditions, as systemd's `Restart=` values (`never` is written `no`).
pub const RESTART_CONDITIONS: &[&str] = &[
    "no",
    "on-success",
    "on-failure",
    "on-abnormal",
    "on-abort",
    "on-watchdog",
    "always",
];

/// snapd's stop modes: the signal sent, and `-all` to send it to every process.
const STOP_MODES: &[&str] = &[
    "sigterm",
    "sigterm-all",
    "sighup",
    "sighup-all",
    "sigusr1",
    "sigusr1-all",
    "sigusr2",
    "sigusr2-all",
    "sigint",
    "sigint-all",
];

/// One entry of `apps:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    /// The app's name (the key under `apps:`).
    pub name: String,
    /// `command`: a path inside the snap, then arguments, separated by spaces.
    pub command: String,
    /// `command-chain`: paths inside the snap run before the command, each given the rest.
    pub command_chain: Vec<String>,
    /// `daemon`, if the app is a service.
    pub daemon: Option<Daemon>,
    /// `stop-command`
    pub stop_command: Option<String>,
    /// `reload-command`
    pub reload_command: Option<String>,
    /// `post-stop-command`
    pub post_stop_command: Option<String>,
    /// `restart-condition` as systemd writes it (`never` becomes `no`).
    pub restart_condition: Option<String>,
    /// `restart-delay`
    pub restart_delay: Option<Duration>,
    /// `stop-timeout`
    pub stop_timeout: Option<Duration>,
    /// `start-timeout`
    pub start_timeout: Option<Duration>,
    /// `watchdog-timeout`
    pub watchdog_timeout: Option<Duration>,
    /// `stop-mode` (`sigterm`, `sighup-all`, ...).
    pub stop_mode: Option<String>,
    /// `install-mode: disable`: the service is not started at boot.
    pub install_disabled: bool,
    /// `after`: other services of this snap it starts after.
    pub after: Vec<String>,
    /// `before`: other services of this snap it starts before.
    pub before: Vec<String>,
    /// `environment`, in the order written.
    pub environment: Vec<(String, String)>,
}

impl App {
    /// Whether the app is a service.
    pub fn is_service(&self) -> bool {
        self.daemon.is_some()
    }

    /// The command for `snap run --command=NAME` (`stop`, `reload`, `post-stop`), or the
    /// app's own command for `None`.
    pub fn command_for(&self, which: Option<&str>) -> Option<&str> {
        match which {
            None => Some(&self.command),
            Some("stop") => self.stop_command.as_deref(),
            Some("reload") => self.reload_command.as_deref(),
            Some("post-stop") => self.post_stop_command.as_deref(),
            Some(_) => None,
        }
    }
}

/// The parts of snap.yaml that running a snap needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapYaml {
    /// `name`
    pub name: String,
    /// `version` (empty if missing: the host refuses that, a device shows `-`).
    pub version: String,
    /// `type` as written (`app` if missing).
    pub snap_type: String,
    /// The snap-wide `environment`, in the order written.
    pub environment: Vec<(String, String)>,
    /// `apps`, by name.
    pub apps: BTreeMap<String, App>,
}

#[derive(Deserialize)]
struct Raw {
    name: Option<String>,
    version: Option<String>,
    #[serde(rename = "type")]
    snap_type: Option<String>,
    environment: Option<Value>,
    apps: Option<Value>,
}

/// The fields of one app that coreforge reads; every other one (plugs, slots, ...) is ignored.
#[derive(Default)]
struct RawApp {
    command: Option<String>,
    command_chain: Option<Vec<String>>,
    daemon: Option<String>,
    daemon_scope: Option<String>,
    stop_command: Option<String>,
    reload_command: Option<String>,
    post_stop_command: Option<String>,
    restart_condition: Option<String>,
    restart_delay: Option<String>,
    stop_timeout: Option<String>,
    start_timeout: Option<String>,
    watchdog_timeout: Option<String>,
    stop_mode: Option<String>,
    install_mode: Option<String>,
    after: Option<Vec<String>>,
    before: Option<Vec<String>>,
    environment: Option<Value>,
    sockets: bool,
    timer: bool,
    activates_on: bool,
}

impl RawApp {
    /// Reads the app's map field by field, so that a wrong type names its field.
    fn read(name: &str, v: Value) -> Result<RawApp, YamlError> {
        let map = match v {
            Value::Null => return Ok(RawApp::default()),
            Value::Mapping(m) => m,
            _ => {
                return Err(YamlError::new(
                    format!("apps.{name}"),
                    "expected a map of fields",
                ))
            }
        };
        let mut raw = RawApp::default();
        for (k, v) in map {
            let Value::String(key) = k else { continue };
            let at = format!("apps.{name}.{key}");
            let text = || {
                scalar(&v)
                    .map(Some)
                    .ok_or_else(|| YamlError::new(&at, "expected a string"))
            };
            let list = || match &v {
                Value::Sequence(items) => items
                    .iter()
                    .map(|i| {
                        scalar(i).ok_or_else(|| YamlError::new(&at, "expected a list of strings"))
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some),
                Value::Null => Ok(None),
                _ => Err(YamlError::new(&at, "expected a list of strings")),
            };
            match key.as_str() {
                "command" => raw.command = text()?,
                "command-chain" => raw.command_chain = list()?,
                "daemon" => raw.daemon = text()?,
                "daemon-scope" => raw.daemon_scope = text()?,
                "stop-command" => raw.stop_command = text()?,
                "reload-command" => raw.reload_command = text()?,
                "post-stop-command" => raw.post_stop_command = text()?,
                "restart-condition" => raw.restart_condition = text()?,
                "restart-delay" => raw.restart_delay = text()?,
                "stop-timeout" => raw.stop_timeout = text()?,
                "start-timeout" => raw.start_timeout = text()?,
                "watchdog-timeout" => raw.watchdog_timeout = text()?,
                "stop-mode" => raw.stop_mode = text()?,
                "install-mode" => raw.install_mode = text()?,
                "after" => raw.after = list()?,
                "before" => raw.before = list()?,
                "environment" => raw.environment = Some(v),
                "sockets" => raw.sockets = true,
                "timer" => raw.timer = true,
                "activates-on" => raw.activates_on = true,
                _ => {}
            }
        }
        Ok(raw)
    }
}

/// snapd's `command`, `stop-command`... characters (`appContentWhitelist`).
fn command_chars_ok(s: &str) -> bool {
    s.bytes()
        .all(|c| c.is_ascii_alphanumeric() || b"/. _#:$-".contains(&c))
}

/// snapd's `command-chain` characters: as commands, without spaces.
fn chain_chars_ok(s: &str) -> bool {
    s.bytes()
        .all(|c| c.is_ascii_alphanumeric() || b"/._#:$-".contains(&c))
}

/// snapd's app-name rule: `^[a-zA-Z0-9](?:-?[a-zA-Z0-9])*$`.
pub fn valid_app_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

/// A scalar as the string Go's YAML decoder would give for a `string` field.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// An `environment:` map, in the order written (snapd's OrderedMap of strings).
fn environment(v: Option<&Value>, field: &str) -> Result<Vec<(String, String)>, YamlError> {
    let map = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Mapping(m)) => m,
        Some(_) => return Err(YamlError::new(field, "expected a map of NAME: value")),
    };
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in map {
        let Value::String(name) = k else {
            return Err(YamlError::new(
                field,
                format!("cannot read {k:?} as a name"),
            ));
        };
        let value = scalar(v).ok_or_else(|| {
            YamlError::new(
                format!("{field}.{name}"),
                "expected a string, not a list or map",
            )
        })?;
        out.push((name.clone(), value));
    }
    Ok(out)
}

impl SnapYaml {
    /// Parses snap.yaml and checks every app with snapd's rules, the way `snap pack` does
    /// (the name, version and type rules are the host's, in host-tools).
    pub fn parse(bytes: &[u8]) -> Result<SnapYaml, YamlError> {
        let raw: Raw = if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(YamlError::new("name", "missing"));
        } else {
            serde_norway::from_slice(bytes).map_err(|e| YamlError::new("", e.to_string()))?
        };
        let name = raw.name.ok_or_else(|| YamlError::new("name", "missing"))?;
        let environment = environment(raw.environment.as_ref(), "environment")?;
        let mut apps = BTreeMap::new();
        match raw.apps {
            None | Some(Value::Null) => {}
            Some(Value::Mapping(m)) => {
                for (k, v) in m {
                    let Value::String(app_name) = k else {
                        return Err(YamlError::new(
                            "apps",
                            format!("cannot read {k:?} as an app name"),
                        ));
                    };
                    let app = parse_app(&app_name, v)?;
                    apps.insert(app_name, app);
                }
            }
            Some(_) => return Err(YamlError::new("apps", "expected a map of app names")),
        }
        check_order(&apps)?;
        Ok(SnapYaml {
            name,
            version: raw.version.unwrap_or_default(),
            snap_type: raw.snap_type.unwrap_or_else(|| "app".into()),
            environment,
            apps,
        })
    }

    /// The services, by name.
    pub fn services(&self) -> impl Iterator<Item = &App> {
        self.apps.values().filter(|a| a.is_service())
    }
}

fn parse_app(name: &str, v: Value) -> Result<App, YamlError> {
    let at = |f: &str| format!("apps.{name}.{f}");
    if !valid_app_name(name) {
        return Err(YamlError::new(
            format!("apps.{name}"),
            format!(
                "cannot have {name:?} as app name - use letters, digits, and dash as separator"
            ),
        ));
    }
    let raw = RawApp::read(name, v)?;
    let daemon = match raw.daemon.as_deref() {
        None => None,
        Some("simple") => Some(Daemon::Simple),
        Some("forking") => Some(Daemon::Forking),
        Some("oneshot") => Some(Daemon::Oneshot),
        Some("notify") => Some(Daemon::Notify),
        Some(d @ "dbus") => {
            return Err(YamlError::new(
                at("daemon"),
                format!(
                    "daemon type {d:?} is not supported on coreforge devices: use simple, forking, oneshot or notify"
                ),
            ))
        }
        Some(d) => {
            return Err(YamlError::new(
                at("daemon"),
                format!("unknown daemon type {d:?}: use simple, forking, oneshot or notify"),
            ))
        }
    };
    match (raw.daemon_scope.as_deref(), daemon.is_some()) {
        (None, _) | (Some("system"), true) => {}
        (Some(_), false) => {
            return Err(YamlError::new(
                at("daemon-scope"),
                "can only be set for daemons",
            ))
        }
        (Some("user"), true) => {
            return Err(YamlError::new(
                at("daemon-scope"),
                "user daemons are not supported on coreforge devices: use system (the default)",
            ))
        }
        (Some(s), true) => {
            return Err(YamlError::new(
                at("daemon-scope"),
                format!("invalid value {s:?}: use system"),
            ))
        }
    }
    for (f, present) in [
        ("sockets", raw.sockets),
        ("timer", raw.timer),
        ("activates-on", raw.activates_on),
    ] {
        if present {
            return Err(YamlError::new(
                at(f),
                "socket, timer and D-Bus activation are not supported on coreforge devices",
            ));
        }
    }
    let command = raw
        .command
        .filter(|c| !c.is_empty())
        .ok_or_else(|| YamlError::new(at("command"), "missing: every app needs a command"))?;
    let mut checked = vec![("command", Some(&command))];
    checked.extend([
        ("stop-command", raw.stop_command.as_ref()),
        ("reload-command", raw.reload_command.as_ref()),
        ("post-stop-command", raw.post_stop_command.as_ref()),
    ]);
    for (field, value) in checked {
        let Some(value) = value else { continue };
        if !command_chars_ok(value) {
            return Err(YamlError::new(
                at(field),
                format!(
                    "{value:?} has characters snapd does not allow: use letters, digits, \
                     spaces and / . _ # : $ -"
                ),
            ));
        }
        if field != "command" && daemon.is_none() {
            return Err(YamlError::new(
                at(field),
                "only services (daemon:) have one",
            ));
        }
        if command_path(value).is_none() {
            return Err(YamlError::new(
                at(field),
                format!("{value:?} does not name a file inside the snap"),
            ));
        }
    }
    let command_chain = raw.command_chain.unwrap_or_default();
    for (i, c) in command_chain.iter().enumerate() {
        if !chain_chars_ok(c) || command_path(c).is_none() {
            return Err(YamlError::new(
                format!("apps.{name}.command-chain[{i}]"),
                format!(
                    "{c:?} is not a path inside the snap (letters, digits and / . _ # : $ -, \
                     no spaces or '..')"
                ),
            ));
        }
    }
    let service_only = |field: &str, set: bool| {
        if set && daemon.is_none() {
            Err(YamlError::new(
                at(field),
                "only applies to services (daemon:)",
            ))
        } else {
            Ok(())
        }
    };
    let restart_condition = match raw.restart_condition.as_deref() {
        None => None,
        Some("never") => Some("no".to_owned()),
        Some(r) if RESTART_CONDITIONS.contains(&r) => Some(r.to_owned()),
        Some(r) => {
            return Err(YamlError::new(
                at("restart-condition"),
                format!(
                    "invalid restart condition {r:?}: use never, {}",
                    RESTART_CONDITIONS[1..].join(", ")
                ),
            ))
        }
    };
    service_only("restart-condition", restart_condition.is_some())?;
    let duration = |field: &str, v: Option<String>| -> Result<Option<Duration>, YamlError> {
        let Some(v) = v else { return Ok(None) };
        let d = Duration::parse(&v).map_err(|e| YamlError::new(at(field), e))?;
        service_only(field, !d.is_zero())?;
        Ok(Some(d).filter(|d| !d.is_zero()))
    };
    let restart_delay = duration("restart-delay", raw.restart_delay)?;
    let stop_timeout = duration("stop-timeout", raw.stop_timeout)?;
    let start_timeout = duration("start-timeout", raw.start_timeout)?;
    let watchdog_timeout = duration("watchdog-timeout", raw.watchdog_timeout)?;
    if let Some(m) = raw.stop_mode.as_deref() {
        if !STOP_MODES.contains(&m) {
            return Err(YamlError::new(
                at("stop-mode"),
                format!("invalid value {m:?}: use {}", STOP_MODES.join(", ")),
            ));
        }
        service_only("stop-mode", true)?;
    }
    let install_disabled = match raw.install_mode.as_deref() {
        None | Some("enable") => false,
        Some("disable") => true,
        Some(m) => {
            return Err(YamlError::new(
                at("install-mode"),
                format!("invalid value {m:?}: use enable or disable"),
            ))
        }
    };
    service_only("install-mode", raw.install_mode.is_some())?;
    let after = raw.after.unwrap_or_default();
    let before = raw.before.unwrap_or_default();
    service_only("after", !after.is_empty())?;
    service_only("before", !before.is_empty())?;
    let environment = environment(raw.environment.as_ref(), &at("environment"))?;
    Ok(App {
        name: name.to_owned(),
        command,
        command_chain,
        daemon,
        stop_command: raw.stop_command,
        reload_command: raw.reload_command,
        post_stop_command: raw.post_stop_command,
        restart_condition,
        restart_delay,
        stop_timeout,
        start_timeout,
        watchdog_timeout,
        stop_mode: raw.stop_mode,
        install_disabled,
        after,
        before,
        environment,
    })
}

/// The file a command runs, relative to the snap's root: its first word, cleaned of `.`,
/// empty parts and a leading `/` (snap-exec joins it to `$SNAP`). `None` if it is empty or
/// climbs out with `..`.
pub fn command_path(command: &str) -> Option<String> {
    let first = command.split(' ').next().unwrap_or("");
    let mut parts: Vec<&str> = Vec::new();
    for p in first.split('/') {
        match p {
            "" | "." => {}
            ".." => return None,
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        None
    } else {
        Some(parts.join("/"))
    }
}

/// `after`/`before` name services of the same snap, and never in a cycle.
fn check_order(apps: &BTreeMap<String, App>) -> Result<(), YamlError> {
    for app in apps.values() {
        for (field, deps) in [("after", &app.after), ("before", &app.before)] {
            for dep in deps {
                let at = format!("apps.{}.{field}", app.name);
                match apps.get(dep) {
                    None => {
                        return Err(YamlError::new(
                            at,
                            format!("references a missing application {dep:?}"),
                        ))
                    }
                    Some(other) if !other.is_service() => {
                        return Err(YamlError::new(
                            at,
                            format!("references a non-service application {dep:?}"),
                        ))
                    }
                    Some(_) => {}
                }
            }
        }
    }
    // Edges "a starts before b", from both fields; a depth-first search finds a cycle.
    let mut edges: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for app in apps.values() {
        for b in &app.before {
            edges.entry(&app.name).or_default().push(b);
        }
        for a in &app.after {
            edges.entry(a).or_default().push(&app.name);
        }
    }
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut marks: BTreeMap<&str, Mark> = apps.keys().map(|k| (k.as_str(), Mark::New)).collect();
    fn visit<'a>(
        n: &'a str,
        edges: &BTreeMap<&'a str, Vec<&'a str>>,
        marks: &mut BTreeMap<&'a str, Mark>,
    ) -> Option<&'a str> {
        match marks.get(n) {
            Some(Mark::Open) => return Some(n),
            Some(Mark::Done) => return None,
            _ => {}
        }
        marks.insert(n, Mark::Open);
        for next in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(next, edges, marks) {
                return Some(c);
            }
        }
        marks.insert(n, Mark::Done);
        None
    }
    for name in apps.keys() {
        if let Some(c) = visit(name, &edges, &mut marks) {
            return Err(YamlError::new(
                format!("apps.{c}"),
                "after/before form a cycle: services cannot all start before each other",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(apps: &str) -> String {
        let doc = format!("name: web\nversion: '1'\napps:\n{apps}");
        SnapYaml::parse(doc.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn apps_with_every_field() {
        let y = SnapYaml::parse(
            b"name: web\nversion: 1.10\nenvironment: {A: x, B: $A-y, N: 3}\napps:\n  web:\n    command: bin/serve --port 80\n    command-chain: [bin/wrap]\n    daemon: notify\n    restart-condition: never\n    stop-timeout: 1m30s\n    stop-mode: sighup-all\n    after: [db]\n    environment: {Z: '1', A: 2}\n  db:\n    command: bin/db\n    daemon: forking\n    install-mode: disable\n  cli:\n    command: bin/cli\n",
        )
        .unwrap();
        assert_eq!(y.version, "1.10");
        assert_eq!(y.snap_type, "app");
        assert_eq!(
            y.environment,
            [
                ("A".into(), "x".into()),
                ("B".into(), "$A-y".into()),
                ("N".into(), "3".into())
            ]
        );
        let web = &y.apps["web"];
        assert_eq!(web.daemon, Some(Daemon::Notify));
        assert_eq!(web.restart_condition.as_deref(), Some("no"));
        assert_eq!(web.stop_timeout.unwrap().seconds(), "90");
        assert_eq!(web.after, ["db"]);
        assert_eq!(web.command_chain, ["bin/wrap"]);
        assert_eq!(
            web.environment[0],
            ("Z".into(), "1".into()),
            "order as written"
        );
        assert!(y.apps["db"].install_disabled);
        assert!(!y.apps["cli"].is_service());
        assert_eq!(y.services().count(), 2);
        assert_eq!(web.command_for(Some("stop")), None);
        assert_eq!(web.command_for(None), Some("bin/serve --port 80"));
    }

    #[test]
    fn bad_apps_are_refused_with_the_field_named() {
        let cases = [
            ("  a:\n    command: x\n    daemon: simpel\n", "apps.a.daemon: unknown daemon type \"simpel\""),
            ("  a:\n    command: x\n    daemon: dbus\n", "apps.a.daemon: daemon type \"dbus\" is not supported"),
            ("  a_b:\n    command: x\n", "apps.a_b: cannot have \"a_b\" as app name"),
            ("  -a:\n    command: x\n", "as app name"),
            ("  a--b:\n    command: x\n", "as app name"),
            ("  a:\n    daemon: simple\n", "apps.a.command: missing"),
            ("  a:\n    command: x\n    daemon: simple\n    restart-condition: sometimes\n", "apps.a.restart-condition: invalid restart condition \"sometimes\""),
            ("  a:\n    command: x\n    daemon: simple\n    stop-timeout: 30\n", "apps.a.stop-timeout: invalid duration \"30\""),
            ("  a:\n    command: x\n    daemon: simple\n    stop-timeout: soon\n", "apps.a.stop-timeout: invalid duration"),
            ("  a:\n    command: x\n    daemon: simple\n    stop-timeout: -1s\n", "negative"),
            ("  a:\n    command: x\n    stop-timeout: 10s\n", "apps.a.stop-timeout: only applies to services"),
            ("  a:\n    command: x\n    restart-condition: always\n", "apps.a.restart-condition: only applies to services"),
            ("  a:\n    command: x\n    stop-command: y\n", "apps.a.stop-command: only services"),
            ("  a:\n    command: x;rm\n", "apps.a.command: \"x;rm\" has characters"),
            ("  a:\n    command: ../x\n", "apps.a.command: \"../x\" does not name a file"),
            ("  a:\n    command: x\n    command-chain: [bin/a, 'b c']\n", "apps.a.command-chain[1]"),
            ("  a:\n    command: x\n    daemon: simple\n    after: [b]\n", "apps.a.after: references a missing application \"b\""),
            ("  a:\n    command: x\n    daemon: simple\n    before: [b]\n  b:\n    command: y\n", "apps.a.before: references a non-service application \"b\""),
            ("  a:\n    command: x\n    daemon: simple\n    after: [b]\n  b:\n    command: y\n    daemon: simple\n    after: [a]\n", "cycle"),
            ("  a:\n    command: x\n    daemon: simple\n    before: [b]\n  b:\n    command: y\n    daemon: simple\n    before: [a]\n", "cycle"),
            ("  a:\n    command: x\n    daemon: simple\n    daemon-scope: user\n", "apps.a.daemon-scope: user daemons"),
            ("  a:\n    command: x\n    daemon-scope: system\n", "apps.a.daemon-scope: can only be set for daemons"),
            ("  a:\n    command: x\n    daemon: simple\n    stop-mode: kill\n", "apps.a.stop-mode: invalid value"),
            ("  a:\n    command: x\n    daemon: simple\n    install-mode: later\n", "apps.a.install-mode"),
            ("  a:\n    command: x\n    environment: {A: [1]}\n", "apps.a.environment.A"),
            ("  a:\n    command: x\n    daemon: simple\n    timer: 00:00\n", "apps.a.timer"),
            ("  a:\n    command: [x]\n", "apps.a.command: expected a string"),
            ("  a:\n    command: x\n    after: b\n", "apps.a.after: expected a list"),
            ("  a: [x]\n", "apps.a: expected a map"),
        ];
        for (apps, want) in cases {
            let e = err(apps);
            assert!(e.contains(want), "{apps}\n  got: {e}\n want: {want}");
        }
    }

    #[test]
    fn app_names_follow_snapd() {
        for good in ["a", "A1", "hello-world", "1-2-3"] {
            assert!(valid_app_name(good), "{good}");
        }
        for bad in ["", "-a", "a-", "a--b", "a.b", "a_b", "ä"] {
            assert!(!valid_app_name(bad), "{bad}");
        }
    }

    #[test]
    fn command_paths() {
        assert_eq!(command_path("bin/x --flag").as_deref(), Some("bin/x"));
        assert_eq!(command_path("/bin//./x").as_deref(), Some("bin/x"));
        assert_eq!(command_path("../x"), None);
        assert_eq!(command_path(""), None);
        assert_eq!(command_path(" x"), None);
    }

    #[test]
    fn order_with_an_acyclic_chain_is_fine() {
        let y = SnapYaml::parse(b"name: s\napps:\n  a: {command: a, daemon: simple, before: [b]}\n  b: {command: b, daemon: simple, before: [c]}\n  c: {command: c, daemon: oneshot, after: [a]}\n").unwrap();
        assert_eq!(y.apps.len(), 3);
    }
}
