//! A registry blob pulled into memory, up to the size its manifest gives it. A registry that
//! sends more is cut off at the first byte past that size, before it can fill the host's
//! memory; a manifest that names a size over the caller's bound is refused before the pull.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use oci_client::errors::OciDistributionError;
use oci_client::manifest::OciDescriptor;
use tokio::io::AsyncWrite;

use crate::units::ByteSize;

/// Why a blob is not pulled, or not pulled whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Oversize {
    /// Its manifest gives it a size over the bound (or a negative one).
    Declared {
        /// The size named by the manifest.
        size: i64,
        /// The bound.
        limit: ByteSize,
    },
    /// The registry sent more than the manifest's size.
    Sent {
        /// The size named by the manifest.
        size: u64,
    },
}

impl std::fmt::Display for Oversize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Oversize::Declared { size, limit } => match u64::try_from(*size) {
                Ok(size) => write!(
                    f,
                    "is {} by its manifest, larger than the {limit} it may be",
                    ByteSize(size)
                ),
                Err(_) => write!(f, "has a negative size ({size}) in its manifest"),
            },
            Oversize::Sent { size } => write!(
                f,
                "was sent longer than the {size} bytes its manifest gives it"
            ),
        }
    }
}

/// A blob being pulled into memory.
#[derive(Debug)]
pub struct Blob {
    bytes: Vec<u8>,
    size: u64,
}

impl Blob {
    /// Room for the blob `descriptor` names, if its size is within `limit`.
    pub fn for_descriptor(descriptor: &OciDescriptor, limit: ByteSize) -> Result<Blob, Oversize> {
        let declared = Oversize::Declared {
            size: descriptor.size,
            limit,
        };
        let size = u64::try_from(descriptor.size).map_err(|_| declared.clone())?;
        if size > limit.0 {
            return Err(declared);
        }
        // Reserved as it arrives past the first MiB: a manifest's size is only a claim.
        let reserve = usize::try_from(size).unwrap_or(usize::MAX).min(1 << 20);
        Ok(Blob {
            bytes: Vec::with_capacity(reserve),
            size,
        })
    }

    /// The bytes received.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The [`Oversize`] a failed pull into this blob was cut off for, if it was.
    pub fn cut_off(&self, err: &OciDistributionError) -> Option<Oversize> {
        match err {
            OciDistributionError::IoError(io) if io.kind() == io::ErrorKind::FileTooLarge => {
                Some(Oversize::Sent { size: self.size })
            }
            _ => None,
        }
    }
}

impl AsyncWrite for Blob {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let blob = self.get_mut();
        if blob.bytes.len() as u64 + buf.len() as u64 > blob.size {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                "longer than its manifest's size",
            )));
        }
        blob.bytes.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn descriptor(size: i64) -> OciDescriptor {
        OciDescriptor {
            size,
            ..OciDescriptor::default()
        }
    }

    #[tokio::test]
    async fn a_blob_takes_its_declared_size_and_not_one_byte_more() {
        let mut blob = Blob::for_descriptor(&descriptor(4), ByteSize::kib(1)).unwrap();
        blob.write_all(b"wasm").await.unwrap();
        let err = blob.write_all(b"!").await.unwrap_err();
        let err = OciDistributionError::IoError(err);
        assert_eq!(blob.cut_off(&err), Some(Oversize::Sent { size: 4 }));
        assert_eq!(
            Oversize::Sent { size: 4 }.to_string(),
            "was sent longer than the 4 bytes its manifest gives it"
        );
        assert_eq!(blob.into_bytes(), b"wasm");
    }

    #[test]
    fn a_declared_size_over_the_bound_or_negative_is_refused_before_the_pull() {
        let err = Blob::for_descriptor(&descriptor(300 << 20), ByteSize::mib(256)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "is 300 MiB by its manifest, larger than the 256 MiB it may be"
        );
        let err = Blob::for_descriptor(&descriptor(-1), ByteSize::mib(256)).unwrap_err();
        assert_eq!(err.to_string(), "has a negative size (-1) in its manifest");
        assert!(Blob::for_descriptor(&descriptor(256 << 20), ByteSize::mib(256)).is_ok());
    }
}
