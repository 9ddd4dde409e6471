//! Reading a file whole, up to a bound. Whatever a plugin ships (its component, its sidecar
//! policy `NAME.toml`, its sidecar WIT `NAME.wit`) and the operator's TOML files are read
//! under a size bound, so a wrong or hostile file is refused by name instead of being read
//! into the host's memory, however large it is or grows while it is read.

use std::fs::File;
use std::io::{self, Read};
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

/// The bytes of the file at `path`, or [`too_large`] if it holds more than `limit` (a
/// `what`, for the message). At most `limit` + 1 bytes are read, even from a file that grows.
pub fn read(path: &Path, limit: ByteSize, what: &str) -> io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let size = file.metadata()?.len();
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
}
