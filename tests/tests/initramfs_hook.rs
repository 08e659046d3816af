//! The initramfs-tools hook (`initramfs-hook/hooks/coreforge`) against a real Debian
//! kernel's modules: it must lay out the agent, modules and load order as the library does.

use std::collections::BTreeSet;
use std::process::Command;

use anyhow::{ensure, Context, Result};
use coreforge_boards::{Arch, Board};
use coreforge_initramfs::{parse_modinfo, ModuleIndex};
use coreforge_tests::{scratch_dir, trusted_roots, workspace_root, Kernel};

/// Stand-ins for initramfs-tools' hook-functions: copy_exec copies, manual_add_modules is
/// initramfs-tools' own bookkeeping, not under test.
const FAKE_HOOK_FUNCTIONS: &str = r#"
copy_exec() { mkdir -p "$DESTDIR$(dirname "$2")"; cp "$1" "$DESTDIR$2"; }
manual_add_modules() { echo "$1" >>"$DESTDIR/manual_add_modules.log"; }
"#;

#[test]
fn hook_lays_out_agent_modules_and_trusted_roots_like_the_library() -> Result<()> {
    let board = Board::by_name("pi3", Arch::Arm64)?;
    let kernel = Kernel::for_arch(Arch::Arm64)?;
    let dir = scratch_dir("initramfs-hook")?;
    let _ = std::fs::remove_dir_all(&dir);
    let (root, dest) = (dir.join("root"), dir.join("dest"));
    std::fs::create_dir_all(&dest)?;

    // A kernel tree holding only the modules in question, indexed by depmod as on a device.
    let expected = ModuleIndex::scan(&kernel.modules_dir())?.resolve(board.modules)?;
    let moddir = root.join("lib/modules").join(&kernel.release);
    for m in &expected {
        let target = moddir
            .join("kernel")
            .join(m.source.file_name().context("module file name")?);
        std::fs::create_dir_all(target.parent().context("parent")?)?;
        std::fs::copy(&m.source, &target)?;
    }
    run(Command::new("depmod")
        .arg("-b")
        .arg(&root)
        .arg(&kernel.release))?;

    let agent = dir.join("agent");
    std::fs::write(&agent, b"\x7fELF fake agent")?;
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&agent)?.permissions(),
        0o755,
    );
    run(Command::new("chmod").arg("755").arg(&agent))?;
    let trusted = dir.join("trusted");
    std::fs::create_dir_all(&trusted)?;
    for f in trusted_roots() {
        std::fs::copy(&f, trusted.join(f.file_name().context("name")?))?;
    }
    let functions = dir.join("hook-functions");
    std::fs::write(&functions, FAKE_HOOK_FUNCTIONS)?;
    let conf = dir.join("initramfs.conf");
    std::fs::write(
        &conf,
        format!(
            "COREFORGE_AGENT={}\nCOREFORGE_MODULES=\"{}\"\nCOREFORGE_TRUSTED_DIR={}\n",
            agent.display(),
            board.modules.join(" "),
            trusted.display()
        ),
    )?;

    run(Command::new("sh")
        .arg(workspace_root().join("initramfs-hook/hooks/coreforge"))
        .env("DESTDIR", &dest)
        .env("version", &kernel.release)
        .env("COREFORGE_HOOK_FUNCTIONS", &functions)
        .env("COREFORGE_CONF", &conf)
        .env("COREFORGE_MODULES_ROOT", &root))?;

    ensure!(
        std::fs::read(dest.join("init"))? == b"\x7fELF fake agent",
        "/init is not the agent"
    );
    let load = std::fs::read_to_string(dest.join("etc/coreforge/modules.load"))?;
    let listed: Vec<String> = load
        .lines()
        .map(|l| {
            l.trim_start_matches("/lib/modules/")
                .trim_end_matches(".ko")
                .to_string()
        })
        .collect();
    let want: BTreeSet<&str> = expected.iter().map(|m| m.name.as_str()).collect();
    let got: BTreeSet<&str> = listed.iter().map(String::as_str).collect();
    ensure!(
        got == want,
        "hook listed {listed:?}, library resolved {want:?}"
    );
    ensure!(listed.len() == want.len(), "duplicates in {listed:?}");
    // Every module after its dependencies, each stored uncompressed under its name.
    for (i, name) in listed.iter().enumerate() {
        let data = std::fs::read(dest.join(format!("lib/modules/{name}.ko")))?;
        let info = parse_modinfo(&data, name)?;
        ensure!(&info.name == name, "{name}.ko holds {}", info.name);
        for dep in &info.depends {
            let at = listed.iter().position(|l| l == dep);
            ensure!(
                at.is_some_and(|d| d < i),
                "{name} is loaded before its dependency {dep}: {listed:?}"
            );
        }
    }
    for f in ["canonical-root", "canonical", "testrootorg-root"] {
        let path = dest.join(format!("etc/coreforge/trusted/{f}.assertion"));
        ensure!(path.is_file(), "{} missing", path.display());
    }
    let added = std::fs::read_to_string(dest.join("manual_add_modules.log"))?;
    ensure!(
        added.lines().count() == board.modules.len(),
        "manual_add_modules calls: {added}"
    );
    Ok(())
}

fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd
        .output()
        .with_context(|| format!("running {cmd:?}: run cross/setup.sh (kmod)"))?;
    ensure!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
