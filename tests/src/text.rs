//! The exact lines console-conf prints, read from the agent's source (`pub const NAME: &str
//! = "...";` items under `agent/src/consoleconf/`, or another folder of `agent/src/`), so that the end-to-end tests wait for
//! what the agent really says and follow its wording when it changes.

use std::path::Path;

use anyhow::{anyhow, bail, Context};

/// The value of the string constant `name` in the agent's console-conf sources.
pub fn agent_text(name: &str) -> anyhow::Result<String> {
    agent_const("consoleconf", name)
}

/// The value of the string constant `name` in the agent's sources under `agent/src/{dir}`
/// (e.g. `state` for the commit's markers).
pub fn agent_const(dir: &str, name: &str) -> anyhow::Result<String> {
    let dir = crate::workspace_root().join("agent/src").join(dir);
    let mut files = Vec::new();
    collect_rs(&dir, &mut files)
        .with_context(|| format!("reading {}: the agent's texts", dir.display()))?;
    files.sort();
    for file in &files {
        let source = std::fs::read_to_string(file)?;
        if let Some(value) = const_str(&source, name)? {
            return Ok(value);
        }
    }
    Err(anyhow!(
        "no `const {name}: &str = \"...\";` in {} ({} files)",
        dir.display(),
        files.len()
    ))
}

fn collect_rs(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_rs(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// Finds `const NAME: &str = "...";` (any visibility) in `source` and unescapes its literal.
fn const_str(source: &str, name: &str) -> anyhow::Result<Option<String>> {
    let needle = format!("const {name}: &str =");
    let Some(at) = source.find(&needle) else {
        return Ok(None);
    };
    let rest = source[at + needle.len()..].trim_start();
    let Some(body) = rest.strip_prefix('"') else {
        bail!(
            "const {name} is not a plain string literal: {:?}",
            &rest[..rest.len().min(60)]
        );
    };
    let mut out = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Ok(Some(out)),
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some('0') => out.push('\0'),
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                Some('\'') => out.push('\''),
                // A line continuation: the newline and the next line's indentation go.
                Some('\n') => {
                    let rest: String = chars.clone().collect();
                    let skipped = rest.len() - rest.trim_start().len();
                    for _ in 0..rest[..skipped].chars().count() {
                        chars.next();
                    }
                }
                other => bail!("const {name}: unsupported escape \\{other:?}"),
            },
            c => out.push(c),
        }
    }
    bail!("const {name}: unterminated string")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_escaped_and_continued_literals() {
        let src = "/// doc\npub const A: &str = \"Press Enter to configure.\";\n\
                   pub(crate) const B: &str = \"say \\\"hi\\\"\\n\";\n\
                   const C: &str = \"one \\\n        two\";\n";
        assert_eq!(
            const_str(src, "A").unwrap().unwrap(),
            "Press Enter to configure."
        );
        assert_eq!(const_str(src, "B").unwrap().unwrap(), "say \"hi\"\n");
        assert_eq!(const_str(src, "C").unwrap().unwrap(), "one two");
        assert_eq!(const_str(src, "D").unwrap(), None);
    }

    #[test]
    fn non_literals_are_refused() {
        let src = "pub const A: &str = concat!(\"a\", \"b\");";
        assert!(const_str(src, "A").is_err());
    }
}
