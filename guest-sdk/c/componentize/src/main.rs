//! `capsule-componentize CORE.wasm --wit WIT -o OUT.wasm`: turns a wasip1 *reactor* core
//! module (built with clang and wit-bindgen's C bindings) into a component of the Capsule
//! world `plugin`. It records the world's types from the WIT file or folder `WIT` in the
//! module (what wit-bindgen's `*_component_type.o` would do), then wraps it, adapting WASI
//! preview 1 to preview 2 with the reactor adapter of wasmtime 48 that this binary carries.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER;
use wit_component::{ComponentEncoder, StringEncoding, embed_component_metadata};
use wit_parser::Resolve;

const USAGE: &str = "usage: capsule-componentize CORE.wasm --wit WIT -o OUT.wasm\n\
    \x20 CORE.wasm  a wasm32-wasi reactor module (clang -mexec-model=reactor)\n\
    \x20 WIT        wit/capsule.wit (file or folder) whose world `plugin` it implements\n\
    \x20 OUT.wasm   the component to write";

/// The world every Capsule plugin implements.
const WORLD: &str = "plugin";

fn main() {
    if let Err(err) = run() {
        eprintln!("capsule-componentize: {err:#}");
        std::process::exit(1);
    }
}

/// The command line.
struct Args {
    core: PathBuf,
    wit: PathBuf,
    out: PathBuf,
}

fn run() -> Result<()> {
    let args = parse_args(std::env::args().skip(1))?;
    let mut core = std::fs::read(&args.core)
        .with_context(|| format!("cannot read {}", args.core.display()))?;
    let mut resolve = Resolve::default();
    let (package, _) = resolve
        .push_path(&args.wit)
        .with_context(|| format!("cannot read the WIT at {}", args.wit.display()))?;
    let world = resolve
        .select_world(&[package], Some(WORLD))
        .with_context(|| format!("{} has no world `{WORLD}`", args.wit.display()))?;
    embed_component_metadata(&mut core, &resolve, world, StringEncoding::UTF8)
        .context("cannot record the world's types in the module")?;
    let component = ComponentEncoder::default()
        .validate(true)
        .module(&core)
        .with_context(|| format!("{} is not a usable core module", args.core.display()))?
        .adapter(
            "wasi_snapshot_preview1",
            WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )
        .context("cannot load the WASI preview 1 reactor adapter")?
        .encode()
        .with_context(|| {
            format!(
                "{} does not implement world `{WORLD}` of {} (are the C bindings generated \
                 from this WIT?)",
                args.core.display(),
                args.wit.display()
            )
        })?;
    std::fs::write(&args.out, component)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    Ok(())
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args> {
    let (mut core, mut wit, mut out) = (None, None, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-o" | "--output" => out = args.next().map(PathBuf::from),
            "--wit" => wit = args.next().map(PathBuf::from),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ if core.is_none() && !arg.starts_with('-') => core = Some(PathBuf::from(arg)),
            _ => bail!("unexpected argument `{arg}`\n{USAGE}"),
        }
    }
    match (core, wit, out) {
        (Some(core), Some(wit), Some(out)) => Ok(Args { core, wit, out }),
        _ => bail!("{USAGE}"),
    }
}
