//! `coreforge build-image MODEL`: a bootable, seeded disk image from a signed
//! model and a store, as `ubuntu-image` makes one.

use std::collections::BTreeMap;
use std::fs;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, ensure, Context, Result};
use coreforge_assertions::Model;
use coreforge_boards::{Arch, Board};
use coreforge_initramfs::{Compression, InitramfsBuilder, DEVICE_PIN, KNOWN_DIR};

use crate::image::{self, Filesystem, Role, Structure};
use crate::store::open_store;

mod digests;
mod firstboot;
mod resolve;
mod seed;
mod trust;
mod unpack;
use firstboot::FirstBoot;
use resolve::SeedRole;

/// Arguments of `build-image`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The signed model assertion (it may be followed by its chain).
    model: PathBuf,
    /// The image file to write.
    #[arg(short = 'o', long, value_name = "FILE", default_value = "pi3.img")]
    output: PathBuf,
    /// Channel to take snaps from (`[track/]risk[/branch]`).
    #[arg(short = 'c', long, default_value = "stable")]
    channel: String,
    /// Another snap to seed: a name in the store, or a local .snap file; repeatable.
    #[arg(long = "extra-snaps", value_name = "NAME|FILE")]
    extra_snaps: Vec<String>,
    /// Use a local file for a snap of the model (dangerous models only); repeatable.
    #[arg(long = "snap", value_name = "NAME=FILE")]
    snaps: Vec<String>,
    /// The store: the directory of a local store, or the URL of a served one
    /// (`coreforge store serve`; give its roots with --trusted).
    #[arg(long, value_name = "DIR|URL", env = "COREFORGE_STORE")]
    store: String,
    /// The root assertions to trust for a served store (its directory's root.assertions,
    /// handed over out of band): nothing the server says is trusted without them.
    #[arg(long, value_name = "FILE")]
    trusted: Option<PathBuf>,
    /// Size of the image (e.g. 512M, 1G); default: just what the content needs.
    #[arg(long, value_name = "SIZE")]
    image_size: Option<String>,
    /// Also write a bmap file (format 2.0, SHA-256) for the image, for `coreforge flash
    /// --bmap` or `bmaptool copy --bmap`.
    #[arg(long, value_name = "FILE")]
    bmap: Option<PathBuf>,
    /// Keep intermediate files here instead of a temporary directory, and write each file
    /// system's tree there as files (`fsN`, N the gadget structure's index), for inspection.
    #[arg(long, value_name = "DIR")]
    workdir: Option<PathBuf>,
    /// Print when each step finished, in milliseconds since the start (on stderr).
    #[arg(long)]
    timings: bool,
    /// The statically linked agent for the model's architecture (default: the workspace's
    /// cross build, see cross/build-agent.sh, or $COREFORGE_AGENT_DIR/<target>/agent/coreforge-agent).
    #[arg(long, value_name = "FILE")]
    agent: Option<PathBuf>,
    #[command(flatten)]
    firstboot: firstboot::FirstBootArgs,
}

/// Builds the image; writes nothing at `--output` unless everything succeeded.
pub fn run(args: &Args) -> Result<ExitCode> {
    let progress = Progress::new(args.timings);
    // First: the small inputs a person typed, so their mistakes show before minutes of work.
    let firstboot = FirstBoot::load(&args.firstboot)?;
    progress.step("verifying the model");
    let cache = unpack::cache_dir().unwrap_or_else(|| std::env::temp_dir().join("coreforge-cache"));
    let store = open_store(&args.store, args.trusted.as_deref(), &cache)?;
    let roots = store.roots()?;
    let mut trust = trust::verify_model(&args.model, &roots, store.as_ref())?;
    let model = Model::from_assertion(trust.model.assertion())?;
    let arch_name = model
        .architecture
        .clone()
        .context("the model has no architecture (classic models cannot be built into images)")?;
    let arch: Arch = arch_name
        .parse()
        .ok()
        .with_context(|| format!("no cross build for the model's architecture {arch_name:?}"))?;

    progress.step("resolving snaps");
    let overrides = resolve::parse_overrides(&args.snaps)?;
    if !overrides.is_empty() && !resolve::allows_local_snaps(&model) {
        bail!(
            "--snap is only allowed for models with grade: dangerous (this model's grade: {})",
            model.grade.as_deref().unwrap_or("none, a series-16 model")
        );
    }
    let snaps = resolve::resolve_snaps(
        &model,
        &arch_name,
        &args.channel,
        &args.extra_snaps,
        &overrides,
        store.as_ref(),
    )?;
    let gadget = snaps
        .iter()
        .find(|s| s.why == SeedRole::Gadget)
        .context("no gadget snap resolved")?;
    let kernel = snaps
        .iter()
        .find(|s| s.why == SeedRole::Kernel)
        .context("no kernel snap resolved")?;

    let tmp;
    let work = match &args.workdir {
        Some(w) => {
            fs::create_dir_all(w).with_context(|| format!("cannot create {}", w.display()))?;
            w.clone()
        }
        None => {
            tmp = tempfile::Builder::new()
                .prefix("coreforge-image")
                .tempdir()?;
            tmp.path().to_owned()
        }
    };
    let cache = unpack::cache_dir();
    let epoch = image::source_date_epoch()?;
    let built = trust::build_time(epoch);
    let label = seed::seed_label(built);

    // Side by side on the cores: the seed snaps read, the gadget and kernel unpacked (or
    // found in the cache), then the initramfs compressed; the seed is hashed while the
    // image is made.
    progress.step("unpacking the gadget and kernel, reading the seed");
    let ((read, hashing), gadget, kernel_dir, initramfs) =
        std::thread::scope(|scope| -> Result<_> {
            let memo = cache.as_deref().map(digests::Memo::new);
            let reading = scope.spawn(|| seed::read_snaps(&snaps, memo));
            let unpacking =
                scope.spawn(|| unpack::unpacked(gadget, cache.as_deref(), &work.join("gadget")));
            let kernel_dir = unpack::unpacked(kernel, cache.as_deref(), &work.join("kernel"))?;
            let gadget_dir = joined(unpacking, "unpacking the gadget")?;
            let gadget = UnpackedGadget::read(gadget_dir, &gadget.name, arch)?;
            progress.lap("unpacked the gadget and kernel");
            let initramfs = Initramfs {
                agent: &agent_path(args.agent.as_deref(), arch)?,
                firstboot: &firstboot,
                board: gadget.board,
                modules: &single_subdir(&kernel_dir.join("modules"))?,
                roots: &roots,
                pin: &trust::device_pin(&trust, &model, &label, built, firstboot.preseed_digest()),
                known: &trust.current_keys(store.as_ref())?,
                epoch,
                cache: cache.as_deref(),
            }
            .build(&work)?;
            progress.lap("built the initramfs");
            let read = joined(reading, "reading the seed")?;
            progress.lap("read the seed");
            Ok((read, gadget, kernel_dir, initramfs))
        })?;
    let volume = gadget.spec.boot_volume();

    progress.step("laying out the boot partition");
    let boot = volume
        .structures
        .iter()
        .find(|s| is_boot_structure(s))
        .context("the gadget has no vfat structure labelled system-boot (or with role system-seed/system-boot) to hold the seed")?;
    let mut trees: BTreeMap<usize, image::Tree> = BTreeMap::new();
    for s in volume
        .structures
        .iter()
        .filter(|s| s.filesystem != Filesystem::None)
    {
        let mut tree = image::Tree::new();
        image::stage_content(s, &gadget.dir, &mut tree)?;
        trees.insert(s.index, tree);
    }
    let boot_tree = trees
        .get_mut(&boot.index)
        .context("the boot structure has no tree")?;
    seed::write_seed(
        boot_tree,
        &label,
        &mut trust,
        &model,
        &snaps,
        read,
        store.as_ref(),
    )?;
    add_kernel(boot_tree, &kernel_dir)?;
    firstboot.write_boot(boot_tree);
    boot_tree.file("initrd.img", image::Source::bytes(initramfs));
    if args.workdir.is_some() {
        // For inspection (and the benchmark's genimage): each file system's tree, as files.
        for (index, tree) in &trees {
            tree.write_to(&work.join(format!("fs{index}")))?;
        }
    }
    progress.lap("laid out the boot partition");

    progress.step("writing the image");
    let size = args.image_size.as_deref().map(parse_size).transpose()?;
    let bar = progress.bar();
    let on_progress = |done: u64, total: u64| {
        if let Some(b) = &bar {
            b.set_length(total);
            b.set_position(done);
        }
    };
    let check = || {
        let checked = hashing.check(&snaps);
        progress.lap("hashed the seed");
        checked
    };
    let options = image::ImageOptions {
        size,
        epoch,
        progress: Some(&on_progress),
        check: Some(&check),
    };
    let report = image::write_image(volume, &gadget.dir, &trees, &args.output, &options)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    progress.lap("wrote the image");
    if let Some(path) = &args.bmap {
        if let Err(e) = write_bmap(&args.output, path) {
            // Nothing half done: the image goes too.
            let _ = fs::remove_file(&args.output);
            return Err(e);
        }
    }
    eprintln!(
        "{}: {} MiB, model {}/{} ({}), seeded: {}",
        args.output.display(),
        report.size.div_ceil(1 << 20),
        model.brand_id,
        model.model,
        arch_name,
        snaps
            .iter()
            .map(|s| format!("{} ({})", s.file_name(), s.why))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

/// The structure that carries the seed: the FAT `system-boot` (or the seed/boot role).
fn is_boot_structure(s: &Structure) -> bool {
    s.filesystem.is_fat()
        && (s.effective_label() == Some("system-boot")
            || matches!(s.role, Some(Role::SystemSeed) | Some(Role::SystemBoot)))
}

/// Writes the image's bmap to `path` (a temporary file beside it, renamed into place).
fn write_bmap(image: &Path, path: &Path) -> Result<()> {
    let text = image::bmap::create(image)
        .with_context(|| format!("cannot map the blocks of {}", image.display()))?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    fs::write(tmp.path(), text).with_context(|| format!("cannot write {}", path.display()))?;
    fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Puts the kernel image and device trees of the unpacked kernel snap at the boot
/// partition's root.
fn add_kernel(boot: &mut image::Tree, kernel_dir: &Path) -> Result<()> {
    let image = kernel_dir.join("kernel.img");
    ensure!(image.is_file(), "the kernel snap has no kernel.img");
    boot.file("kernel.img", image::Source::File(image));
    let dtbs = kernel_dir.join("dtbs");
    if dtbs.is_dir() {
        for e in fs::read_dir(&dtbs)? {
            let e = e?;
            let name = e.file_name();
            let name = name
                .to_str()
                .with_context(|| format!("{}: not a UTF-8 name", e.path().display()))?;
            boot.add(&e.path(), name)?;
        }
    }
    Ok(())
}

/// The result of a scoped thread; a panic in it is an error.
fn joined<T>(job: std::thread::ScopedJoinHandle<'_, Result<T>>, what: &str) -> Result<T> {
    job.join().map_err(|_| anyhow::anyhow!("{what} panicked"))?
}

/// The unpacked gadget snap: its tree, its `meta/gadget.yaml` and the board it is for.
struct UnpackedGadget {
    dir: PathBuf,
    spec: image::Gadget,
    board: &'static Board,
}

impl UnpackedGadget {
    fn read(dir: PathBuf, name: &str, arch: Arch) -> Result<UnpackedGadget> {
        let yaml = fs::read(dir.join("meta/gadget.yaml"))
            .with_context(|| format!("gadget {name:?} has no meta/gadget.yaml"))?;
        let spec = image::gadget::parse(&yaml)
            .with_context(|| format!("gadget {name:?}: invalid meta/gadget.yaml"))?;
        let board = Board::by_name(name, arch).with_context(|| {
            format!("gadget {name:?}: coreforge has no board support of that name for {arch}")
        })?;
        Ok(UnpackedGadget { dir, spec, board })
    }
}

/// What goes into the initramfs: the agent, its trust and the board's modules.
struct Initramfs<'a> {
    agent: &'a Path,
    firstboot: &'a FirstBoot,
    board: &'static Board,
    /// `modules/<release>` of the unpacked kernel snap.
    modules: &'a Path,
    roots: &'a [coreforge_assertions::Assertion],
    pin: &'a coreforge_assertions::DevicePin,
    /// The store's current keys, for the agent's known assertions.
    known: &'a [coreforge_assertions::Assertion],
    epoch: u64,
    /// build-image's cache (see [`unpack::cache_dir`]).
    cache: Option<&'a Path>,
}

impl Initramfs<'_> {
    /// The compressed initramfs (`work` holds the root assertions as files meanwhile).
    fn build(&self, work: &Path) -> Result<Vec<u8>> {
        let roots_dir = work.join("roots");
        fs::create_dir_all(&roots_dir)?;
        let mut root_files = Vec::new();
        for (i, a) in self.roots.iter().enumerate() {
            let p = roots_dir.join(format!("{i:02}-{}", a.type_name()));
            fs::write(&p, a.encode())?;
            root_files.push(p);
        }
        let mut builder = self
            .firstboot
            .add_to(InitramfsBuilder::from_agent_file(self.agent)?)
            .file(DEVICE_PIN, self.pin.encode().into_bytes(), 0o644);
        for (i, a) in self.known.iter().enumerate() {
            let path = format!("{KNOWN_DIR}/{i:03}-{}.assertion", a.type_name());
            builder = builder.file(&path, a.encode().to_vec(), 0o644);
        }
        if let Some(led) = self.board.status_led {
            // The agent's headless status light (agent/src/status.rs reads this).
            builder = builder.file(
                "/etc/coreforge/status-led",
                format!("{}\n", led.config_line()).into_bytes(),
                0o644,
            );
        }
        let builder = builder
            .mtime(u32::try_from(self.epoch).unwrap_or(u32::MAX))
            .modules(self.modules, self.board.modules)?
            .trusted(&root_files)?;
        // The agent and the modules are the same from build to build: compressed once.
        let initramfs = match self.cache {
            Some(cache) => {
                let parts = cache.join("initramfs");
                let built = builder.build_cached(Compression::Zstd, &parts)?;
                unpack::prune(&parts, None, unpack::KEEP);
                built
            }
            None => builder.build(Compression::Zstd)?,
        };
        Ok(initramfs.bytes)
    }
}

fn single_subdir(dir: &Path) -> Result<PathBuf> {
    let mut subdirs = fs::read_dir(dir)
        .with_context(|| format!("the kernel snap has no {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.path())
        .collect::<Vec<_>>();
    ensure!(
        subdirs.len() == 1,
        "the kernel snap must hold the modules of exactly one kernel release in modules/"
    );
    Ok(subdirs.remove(0))
}

/// Where the agent for `arch` is.
fn agent_path(given: Option<&Path>, arch: Arch) -> Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.to_owned());
    }
    let target = arch.rust_target();
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::var_os("COREFORGE_AGENT_DIR") {
        candidates.push(PathBuf::from(dir));
    }
    // The workspace's cross builds, found from this binary's place in target/<profile>/.
    if let Ok(exe) = std::env::current_exe() {
        if let Some(target_dir) = exe.parent().and_then(Path::parent) {
            candidates.push(target_dir.join("cross"));
        }
    }
    for dir in &candidates {
        let p = dir.join(target).join("agent/coreforge-agent");
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!("no coreforge-agent built for {target}: run `cross/build-agent.sh` or pass --agent FILE")
}

/// Sizes as `1073741824`, `512M`, `1G` (powers of 1024).
fn parse_size(s: &str) -> Result<u64> {
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'K' | 'k')) => (&s[..i], 1u64 << 10),
        Some((i, 'M')) => (&s[..i], 1 << 20),
        Some((i, 'G')) => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    let n: u64 = num
        .parse()
        .with_context(|| format!("invalid size {s:?}: use bytes or a number with K, M or G"))?;
    n.checked_mul(mult)
        .with_context(|| format!("size {s:?} is too large"))
}

/// Progress on a terminal (stderr); silent otherwise.
struct Progress {
    on_terminal: bool,
    timings: bool,
    start: std::time::Instant,
}

impl Progress {
    fn new(timings: bool) -> Self {
        Progress {
            on_terminal: std::io::stderr().is_terminal(),
            timings,
            start: std::time::Instant::now(),
        }
    }

    /// A step starts (shown on a terminal).
    fn step(&self, what: &str) {
        if self.on_terminal {
            eprintln!("build-image: {what}");
        }
    }

    /// Something finished: with `--timings`, when (ms since the start).
    fn lap(&self, what: &str) {
        if self.timings {
            eprintln!(
                "build-image: {:8.1} ms  {what}",
                self.start.elapsed().as_secs_f64() * 1e3
            );
        }
    }

    fn bar(&self) -> Option<indicatif::ProgressBar> {
        self.on_terminal.then(|| {
            let b = indicatif::ProgressBar::new(0);
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {eta}")
            {
                b.set_style(style);
            }
            b
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("99999999999G").is_err());
    }
}
