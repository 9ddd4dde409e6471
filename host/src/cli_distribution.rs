//! `capsule pull|push|sign|cache`: plugins in OCI registries and the cache folder
//! (docs/distribution.md). None of them loads plugins.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use capsule::config::Settings;
use capsule::distribution::cosign::{self, SigningKey};
use capsule::distribution::gc;
use capsule::distribution::oci;
use capsule::distribution::source::{self, Fetched};
use capsule::distribution::store::{Record, Store};
use capsule::distribution::{Digest, Origin, Source};
use capsule::units::format_duration;
use clap::Subcommand;

/// `println!` that returns the error instead of panicking (see `cli`).
macro_rules! out {
    ($($arg:tt)*) => {
        writeln!(std::io::stdout().lock(), $($arg)*)?
    };
}

/// `capsule cache` actions.
#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// List precompiled artifacts, pulled plugins and source records: digest, size, last
    /// use and the plugins of the config that reference each.
    Ls,
    /// Remove what no plugin of the config references and was not used for `--grace`.
    Gc {
        /// How long an unreferenced entry is kept after its last use, e.g. `7d`, `12h`, `30m`, `0`.
        #[arg(long, default_value = "7d", value_name = "DURATION")]
        grace: String,
    },
}

/// An `oci://` reference (the scheme is optional on the command line).
fn reference(text: &str) -> Result<oci_client::Reference> {
    source::parse_reference(text.strip_prefix("oci://").unwrap_or(text)).map_err(anyhow::Error::msg)
}

/// `capsule pull REF`: fetches a plugin into the cache, checked (and, with
/// `require-signature`, verified), and prints the config entry that pins it.
pub async fn pull(settings: &Settings, text: &str) -> Result<ExitCode> {
    let reference = reference(text)?;
    let source = Source::Oci(source::OciSource {
        reference: reference.clone(),
    });
    let Some(cache_dir) = &settings.cache_dir else {
        bail!(
            "`capsule pull` stores plugins in the cache folder, which --no-cache turns off; drop --no-cache"
        );
    };
    let fetcher = capsule::loader::fetcher(settings);
    let origin = Origin {
        source: Some(source.clone()),
        sha256: None,
        require_signature: settings.distribution.require_signature,
    };
    let fetched: Fetched = fetcher.remote("pulled", &source, &origin).await?;
    let record: Option<Record> = Store::new(cache_dir).record(&source.text());
    let manifest = record.and_then(|r| r.manifest_digest).unwrap_or_default();
    let pinned = format!(
        "oci://{}/{}@{manifest}",
        reference.registry(),
        reference.repository()
    );
    out!("pulled {} ({} bytes)", source.text(), fetched.wasm.len());
    out!("sha256   {}", fetched.digest);
    out!("manifest {manifest}");
    if let Some(key) = &fetched.signed_by {
        out!("signed   verified with public key {key}");
    }
    out!(
        "\n[plugins.NAME]\nsource = \"{pinned}\"\nsha256 = \"{}\"",
        fetched.digest
    );
    Ok(ExitCode::SUCCESS)
}

/// `capsule push FILE REF [--key KEY]`: publishes a component, optionally signed.
pub async fn push(
    settings: &Settings,
    file: &Path,
    text: &str,
    key: Option<&Path>,
) -> Result<ExitCode> {
    let reference = reference(text)?;
    let signer = key.map(read_signing_key).transpose()?;
    // What no pull would accept is not pushed.
    let wasm = capsule::bounded_file::read(
        file,
        capsule::distribution::MAX_COMPONENT,
        capsule::distribution::COMPONENT,
    )
    .with_context(|| format!("cannot read {}", file.display()))?;
    if !wasm.starts_with(b"\0asm") {
        bail!(
            "{}: not a WebAssembly file (it does not start with the `\\0asm` magic); push a compiled .wasm component",
            file.display()
        );
    }
    let insecure = &settings.distribution.insecure_registries;
    let pushed = oci::push(wasm, &reference, insecure).await?;
    out!("pushed {} to oci://{}", file.display(), reference.whole());
    out!("sha256   {}", pushed.digest);
    out!("manifest {}", pushed.manifest_digest);
    if let Some(signer) = signer {
        sign_manifest(&reference, &pushed.manifest_digest, &signer, insecure).await?;
    }
    out!(
        "\n[plugins.NAME]\nsource = \"oci://{}/{}@{}\"\nsha256 = \"{}\"",
        reference.registry(),
        reference.repository(),
        pushed.manifest_digest,
        pushed.digest
    );
    Ok(ExitCode::SUCCESS)
}

/// `capsule sign REF --key KEY`: signs the manifest `REF` names now, cosign-style.
pub async fn sign(settings: &Settings, text: &str, key: &Path) -> Result<ExitCode> {
    let reference = reference(text)?;
    let signer = read_signing_key(key)?;
    let insecure = &settings.distribution.insecure_registries;
    let manifest = oci::manifest_digest(&reference, insecure).await?;
    sign_manifest(&reference, &manifest, &signer, insecure).await?;
    Ok(ExitCode::SUCCESS)
}

async fn sign_manifest(
    reference: &oci_client::Reference,
    manifest: &Digest,
    signer: &SigningKey,
    insecure: &[String],
) -> Result<()> {
    let identity = format!("{}/{}", reference.registry(), reference.repository());
    let signature = signer
        .sign(&identity, manifest)
        .map_err(anyhow::Error::msg)?;
    oci::push_signature(reference, manifest, &signature, insecure).await?;
    out!(
        "signed   {manifest} (signature at tag {})",
        cosign::signature_tag(manifest)
    );
    Ok(())
}

fn read_signing_key(path: &Path) -> Result<SigningKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read key {}", path.display()))?;
    SigningKey::from_pem(&text).map_err(|m| anyhow::anyhow!("{}: {m}", path.display()))
}

/// `capsule cache ls|gc`.
pub fn cache(settings: &Settings, action: CacheCommand) -> Result<ExitCode> {
    let Some(dir) = &settings.cache_dir else {
        bail!("there is no cache folder (--no-cache); nothing to list or collect");
    };
    let entries = gc::list(dir, settings)
        .with_context(|| format!("cannot read cache folder {}", dir.display()))?;
    let now = SystemTime::now();
    match action {
        CacheCommand::Ls => {
            out!(
                "{:<9} {:<20} {:>10}  {:<12} REFERENCED BY",
                "KIND",
                "DIGEST",
                "SIZE",
                "LAST USED"
            );
            for entry in &entries {
                out!(
                    "{:<9} {:<20} {:>10}  {:<12} {}",
                    entry.kind,
                    short(entry.digest.as_ref()),
                    entry.size,
                    ago(now, entry.last_used),
                    if entry.referenced_by.is_empty() {
                        "-".to_string()
                    } else {
                        entry.referenced_by.join(", ")
                    }
                );
            }
            out!("{} entries in {}", entries.len(), dir.display());
        }
        CacheCommand::Gc { grace } => {
            let grace = parse_grace(&grace)?;
            let removed = gc::collect(entries, grace, now)
                .with_context(|| format!("cannot clean cache folder {}", dir.display()))?;
            let bytes: u64 = removed.iter().map(|e| e.size).sum();
            for entry in &removed {
                out!(
                    "removed {:<9} {} ({} bytes)",
                    entry.kind,
                    short(entry.digest.as_ref()),
                    entry.size
                );
            }
            out!(
                "removed {} entries ({bytes} bytes) unreferenced and unused for {}",
                removed.len(),
                format_duration(grace)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `sha256:` and the first 12 hex digits.
fn short(digest: Option<&Digest>) -> String {
    digest.map_or("-".into(), |d| format!("sha256:{}", &d.hex()[..12]))
}

fn ago(now: SystemTime, then: SystemTime) -> String {
    let secs = now.duration_since(then).unwrap_or_default().as_secs();
    match secs {
        0..60 => format!("{secs}s ago"),
        60..3600 => format!("{}m ago", secs / 60),
        3600..86400 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86400),
    }
}

/// `7d`, `12h`, `30m`, `10s`, `0`.
fn parse_grace(text: &str) -> Result<Duration> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let scaled = |suffix: &str, unit: u64| -> Option<Result<Duration>> {
        let number = text.strip_suffix(suffix)?;
        Some(
            number
                .parse::<u64>()
                .map(|n| Duration::from_secs(n.saturating_mul(unit)))
                .with_context(|| {
                    format!("--grace {text}: write a whole number with a unit, e.g. 7d")
                }),
        )
    };
    if let Some(days) = scaled("d", 86400) {
        return days;
    }
    if let Some(hours) = scaled("h", 3600) {
        return hours;
    }
    capsule::units::parse_duration(text).map_err(|m| anyhow::anyhow!("--grace: {m}, or h or d"))
}
