//! `natbox-config`: builds, shows and checks natbox metadata disks on the host.
//!
//! ```text
//! natbox-config build natbox.toml -o meta.img [--size BYTES] [--format]
//! natbox-config show meta.img
//! natbox-config check natbox.toml
//! natbox-config blank -o meta.img [--size BYTES]
//! ```
//!
//! `build` validates the config and writes it to the image: a new image (1 MiB unless
//! `--size` says otherwise) is built beside the path and renamed into place; an
//! existing image or block device gets the config as its next generation, in the slot
//! the box is not using, so a cut at any moment leaves the old or the new config.
//! `--format` lays the target out anew first (a blank block device, or an image to
//! start over); it destroys what the target held.
//! `show` prints the current config as TOML after a comment naming generation and slot.
//! `check` only validates.
//! `blank` makes a new image laid out with no configuration in it: a box configured
//! from a cloud volume (cloud-init NoCloud, config drive) that has one attached saves
//! its commits there, and the disk wins from the next boot on.
//!
//! Exit status: 0 done, 1 invalid input (config, image contents, command line), 2 I/O
//! error. Every error is one line on stderr naming the file, and for configs the line,
//! the field and the fix.

use firmware_config::disk::{self, DiskError};
use firmware_config::{from_toml_named, to_toml, Config};
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "usage:
  natbox-config build CONFIG.toml -o IMAGE [--size BYTES] [--format]
                                 validate and write to a disk image or device; --size
                                 (default 1 MiB) is for new images, --format erases the
                                 target and starts at generation 1
  natbox-config show IMAGE       print the image's config as TOML
  natbox-config check CONFIG.toml  validate only
  natbox-config blank -o IMAGE [--size BYTES]
                                 a new image with no configuration: where a box
                                 configured from a cloud volume saves its commits

exit status: 0 ok, 1 invalid input, 2 I/O error";

/// A failure with its exit status; the message lines go to stderr.
struct Failure {
    code: u8,
    lines: Vec<String>,
}

impl Failure {
    fn invalid(line: String) -> Self {
        Failure {
            code: 1,
            lines: vec![line],
        }
    }

    fn disk(path: &Path, err: DiskError) -> Self {
        Failure {
            code: if matches!(err, DiskError::Io { .. }) {
                2
            } else {
                1
            },
            lines: vec![format!("{}: {err}", path.display())],
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            for line in failure.lines {
                eprintln!("{line}");
            }
            ExitCode::from(failure.code)
        }
    }
}

fn run(args: &[String]) -> Result<(), Failure> {
    let usage = |problem: &str| Failure {
        code: 1,
        lines: vec![format!("natbox-config: {problem}"), USAGE.into()],
    };
    let (command, rest) = args.split_first().ok_or_else(|| usage("no command"))?;
    match command.as_str() {
        "build" => {
            let options = options(rest, &usage)?;
            let config = options
                .config
                .ok_or_else(|| usage("build needs a config file"))?;
            let image = options.image.ok_or_else(|| usage("build needs -o IMAGE"))?;
            build(
                Path::new(config),
                &PathBuf::from(image),
                options.size,
                options.fresh,
            )
        }
        "blank" => {
            let options = options(rest, &usage)?;
            if options.config.is_some() || options.fresh {
                return Err(usage("blank takes -o IMAGE and --size only"));
            }
            let image = options.image.ok_or_else(|| usage("blank needs -o IMAGE"))?;
            blank(Path::new(image), options.size)
        }
        "show" => match rest {
            [image] => show(Path::new(image)),
            _ => Err(usage("show takes one image")),
        },
        "check" => match rest {
            [config] => {
                load(Path::new(config))?;
                println!("{config}: ok");
                Ok(())
            }
            _ => Err(usage("check takes one config file")),
        },
        "help" | "-h" | "--help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(usage(&format!("unknown command {other}"))),
    }
}

/// The options of `build` and `blank`.
struct Options<'a> {
    config: Option<&'a String>,
    image: Option<&'a String>,
    size: Option<u64>,
    fresh: bool,
}

fn options<'a>(
    rest: &'a [String],
    usage: &dyn Fn(&str) -> Failure,
) -> Result<Options<'a>, Failure> {
    let mut o = Options {
        config: None,
        image: None,
        size: None,
        fresh: false,
    };
    let mut it = rest.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-o" | "--output" => o.image = Some(it.next().ok_or_else(|| usage("-o needs a path"))?),
            "--size" => {
                let value = it.next().ok_or_else(|| usage("--size needs a number"))?;
                o.size = Some(
                    value
                        .parse::<u64>()
                        .map_err(|_| usage(&format!("--size {value}: not a number of bytes")))?,
                );
            }
            "--format" => o.fresh = true,
            a if a.starts_with('-') => return Err(usage(&format!("unknown option {a}"))),
            _ if o.config.is_none() => o.config = Some(arg),
            a => return Err(usage(&format!("unexpected argument {a}"))),
        }
    }
    Ok(o)
}

/// Writes a new image laid out with no configuration.
fn blank(image: &Path, size: Option<u64>) -> Result<(), Failure> {
    let size = size.unwrap_or(disk::DEFAULT_DISK_SIZE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(image)
        .map_err(|e| Failure {
            code: 2,
            lines: vec![format!("{}: cannot create: {e}", image.display())],
        })?;
    if let Err(e) = disk::format(&mut file, size) {
        let _ = std::fs::remove_file(image);
        return Err(Failure::disk(image, e));
    }
    println!(
        "{}: blank metadata disk of {size} bytes: a box configured from a cloud volume saves its commits here",
        image.display()
    );
    Ok(())
}

/// Reads and validates a TOML config file.
fn load(path: &Path) -> Result<Config, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| Failure {
        code: 2,
        lines: vec![format!("{}: cannot read: {e}", path.display())],
    })?;
    from_toml_named(&path.display().to_string(), &text).map_err(|e| Failure {
        code: 1,
        lines: e.diagnostics().iter().map(ToString::to_string).collect(),
    })
}

fn build(config_path: &Path, image: &Path, size: Option<u64>, fresh: bool) -> Result<(), Failure> {
    let config = load(config_path)?;
    let io_failure = |what: &str, e: std::io::Error| Failure {
        code: 2,
        lines: vec![format!("{}: cannot {what}: {e}", image.display())],
    };
    let generation = match std::fs::metadata(image) {
        Ok(meta) if meta.file_type().is_block_device() && fresh => {
            let mut device = OpenOptions::new()
                .read(true)
                .write(true)
                .open(image)
                .map_err(|e| io_failure("open", e))?;
            let len = device
                .seek(SeekFrom::End(0))
                .map_err(|e| io_failure("find the size", e))?;
            disk::format(&mut device, size.unwrap_or(len).min(len))
                .map_err(|e| Failure::disk(image, e))?;
            disk::write(&mut device, &config).map_err(|e| Failure::disk(image, e))?
        }
        Ok(_) if !fresh => {
            let mut file = File::open(image).map_err(|e| io_failure("open", e))?;
            if !disk::probe(&mut file).map_err(|e| Failure::disk(image, e))? {
                return Err(Failure::invalid(format!(
                    "{}: exists and is not a natbox metadata disk; choose another path, or add \
                     --format to erase it",
                    image.display()
                )));
            }
            if size.is_some() {
                eprintln!(
                    "{}: note: --size applies to new images; this one keeps its layout",
                    image.display()
                );
            }
            disk::write_path(image, &config).map_err(|e| Failure::disk(image, e))?
        }
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(io_failure("open", e));
        }
        _ => {
            let size = size.unwrap_or(disk::DEFAULT_DISK_SIZE);
            disk::create_image(image, &config, size).map_err(|e| Failure::disk(image, e))?
        }
    };
    // Read back what the box will read.
    let loaded = disk::read_path(image).map_err(|e| Failure::disk(image, e))?;
    if loaded.generation != generation || loaded.config != config {
        return Err(Failure::invalid(format!(
            "{}: read back generation {} after writing {generation}; the device does not \
             keep what is written",
            image.display(),
            loaded.generation
        )));
    }
    println!(
        "{}: generation {generation} in slot {}",
        image.display(),
        loaded.slot
    );
    Ok(())
}

fn show(image: &Path) -> Result<(), Failure> {
    let loaded = disk::read_path(image).map_err(|e| Failure::disk(image, e))?;
    for warning in &loaded.warnings {
        eprintln!("{}: warning: {warning}", image.display());
    }
    print!(
        "# {}: generation {}, slot {}\n{}",
        image.display(),
        loaded.generation,
        loaded.slot,
        to_toml(&loaded.config)
    );
    Ok(())
}
