//! Reading a file whole, up to a bound. Whatever a plugin ships (its component, its sidecar
//! policy `NAME.toml`, its sidecar WIT `NAME.wit`) and the operator's TOML files are read
//! under a size bound, so a wrong or hostile file is refused by name instead of being read
//! into the host's memory, however large it is or grows while it is read. Only regular
//! files are read: a FIFO would block the reading thread until something writes to it, a
//! device such as `/dev/zero` never ends.

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use crate::units::ByteSize;

/// The most read from one TOML file (the config file, a sidecar policy, a secrets file,
/// `capsule.lock`).
pub const MAX_TOML: ByteSize = ByteSize::mib(4);

/// The error for a file of `size` bytes (or more, when it grew while it was read) that is
/// larger than `limit`, the most a `what` may be.
pub fn too_large(size: u64, limit: ByteSize, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        format!(
            "it is {}, larger than the {limit} a {what} may be",
            ByteSize(size)
        ),
    )
}

/// Opens the file at `path` for reading if it is a regular file (or a symlink to one);
/// anything else is refused with [`io::ErrorKind::InvalidInput`], naming what it is. The
/// open does not wait: a FIFO with no writer is refused at once, not waited on. Returns the
/// file's metadata beside it, so callers need not ask again.
pub fn open_regular(path: &Path) -> io::Result<(File, Metadata)> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let file = File::from(fd);
    let meta = file.metadata()?;
    let kind = meta.file_type();
    if kind.is_file() {
        return Ok((file, meta));
    }
    let what = if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a file"
    };
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("it is {what}, not a regular file"),
    ))
}

/// The bytes of the file at `path`, or [`too_large`] if it holds more than `limit` (a
/// `what`, for the message). At most `limit` + 1 bytes are read, even from a file that grows.
pub fn read(path: &Path, limit: ByteSize, what: &str) -> io::Result<Vec<u8>> {
    let (file, meta) = open_regular(path)?;
    let size = meta.len();
    if size > limit.0 {
        return Err(too_large(size, limit, what));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(limit.0 + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit.0 {
        return Err(too_large(bytes.len() as u64, limit, what));
    }
    Ok(bytes)
}

/// [`read`] as UTF-8 text.
pub fn read_to_string(path: &Path, limit: ByteSize, what: &str) -> io::Result<String> {
    String::from_utf8(read(path, limit, what)?).map_err(|err| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not UTF-8 text: {}", err.utf8_error()),
        )
    })
}

/// [`read_to_string`] of a TOML file (the config file, a sidecar policy, a secrets file,
/// `capsule.lock`), up to [`MAX_TOML`].
pub fn read_toml(path: &Path) -> io::Result<String> {
    read_to_string(path, MAX_TOML, "TOML file")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_within_the_bound_is_read_whole_and_a_larger_one_is_refused_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![b'a'; 2048]).unwrap();
        assert_eq!(
            read(&path, ByteSize::kib(2), "test file").unwrap().len(),
            2048
        );
        assert_eq!(
            read_to_string(&path, ByteSize::kib(2), "test file")
                .unwrap()
                .len(),
            2048
        );
        let err = read(&path, ByteSize(2047), "test file").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        assert_eq!(
            err.to_string(),
            "it is 2 KiB, larger than the 2047 bytes a test file may be"
        );
        // A sparse file of 5 GiB costs nothing to make, and nothing to refuse.
        let sparse = std::fs::File::create(dir.path().join("sparse")).unwrap();
        sparse.set_len(5 << 30).unwrap();
        let err = read(&dir.path().join("sparse"), MAX_TOML, "TOML file").unwrap_err();
        assert_eq!(
            err.to_string(),
            "it is 5 GiB, larger than the 4 MiB a TOML file may be"
        );
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        let err = read_to_string(&path, ByteSize::kib(2), "test file").unwrap_err();
        assert_eq!(
            err.to_string(),
            "not UTF-8 text: invalid utf-8 sequence of 1 bytes from index 0"
        );
    }

    #[test]
    fn only_regular_files_are_read_and_a_fifo_is_refused_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("tool.wasm");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
            0,
        )
        .unwrap();
        // No writer: a blocking open would wait here for ever.
        let err = read(&fifo, MAX_TOML, "TOML file").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(
            err.to_string(),
            "it is a FIFO (named pipe), not a regular file"
        );
        let link = dir.path().join("zero.wasm");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert_eq!(
            open_regular(&link).unwrap_err().to_string(),
            "it is a character device, not a regular file"
        );
        assert_eq!(
            open_regular(dir.path()).unwrap_err().to_string(),
            "it is a directory, not a regular file"
        );
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        std::os::unix::fs::symlink(&file, dir.path().join("link")).unwrap();
        assert_eq!(
            read(&dir.path().join("link"), MAX_TOML, "TOML file").unwrap(),
            b"x"
        );
    }
}
