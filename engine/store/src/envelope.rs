//! The versioned envelope every object record is stored in.
//!
//! Layout: one format byte, the resource version (u64, big-endian), then the JSON body. A reader
//! refuses formats it does not know instead of guessing.

use crate::{Result, StoreError};

/// The envelope format this build writes.
pub const ENVELOPE_FORMAT: u8 = 1;

/// A decoded envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// The object's resource version.
    pub resource_version: u64,
    /// The JSON body.
    pub body: &'a [u8],
}

impl<'a> Envelope<'a> {
    /// Encodes in the current format.
    pub fn encode(resource_version: u64, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 + body.len());
        out.push(ENVELOPE_FORMAT);
        out.extend_from_slice(&resource_version.to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    /// Decodes bytes written by this or an earlier format.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for unknown formats or truncated records.
    pub fn decode(key: &str, bytes: &'a [u8]) -> Result<Self> {
        let corrupt = |reason: &str| StoreError::Corrupt {
            key: key.to_owned(),
            reason: reason.to_owned(),
        };
        match bytes.first() {
            Some(1) => {
                let rv = bytes.get(1..9).ok_or_else(|| corrupt("truncated header"))?;
                let mut b = [0u8; 8];
                b.copy_from_slice(rv);
                Ok(Self {
                    resource_version: u64::from_be_bytes(b),
                    body: &bytes[9..],
                })
            }
            Some(f) => Err(corrupt(&format!("unknown envelope format {f}"))),
            None => Err(corrupt("empty record")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes as format 1 wrote them; a later format must still read them.
    const FORMAT_1: &[u8] = b"\x01\x00\x00\x00\x00\x00\x00\x00\x2a{\"a\":1}";

    #[test]
    fn reads_format_1_bytes() {
        let e = Envelope::decode("k", FORMAT_1).unwrap();
        assert_eq!(e.resource_version, 42);
        assert_eq!(e.body, b"{\"a\":1}");
        assert_eq!(Envelope::encode(42, b"{\"a\":1}"), FORMAT_1);
    }

    #[test]
    fn refuses_unknown_or_truncated() {
        assert!(Envelope::decode("k", b"\x02abc").is_err());
        assert!(Envelope::decode("k", b"\x01\x00").is_err());
        assert!(Envelope::decode("k", b"").is_err());
    }
}
