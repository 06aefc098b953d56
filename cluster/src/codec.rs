//! The wire codec: the one place where bytes that cross the network are
//! made and read.
//!
//! Every remotable payload is a serde type wrapped in [`Wire`], encoded with
//! bincode 2 under [`MAX_MESSAGE_BYTES`]. Keeping bincode behind this module
//! means it can be swapped without touching a protocol.
//!
//! Invariants:
//! - decoding never panics and never allocates more than the size limit,
//!   whatever the bytes: a hostile 15-byte payload that claims a 2^60-element
//!   vector is an error, not an abort;
//! - every frame starts with the protocol tag of its type, because
//!   ractor_cluster carries no type id: a frame of one protocol delivered to
//!   an actor of another decodes as [`CodecError::WrongProtocol`] instead of
//!   as garbage;
//! - a frame must be consumed exactly: trailing bytes are an error.

use std::fmt;

use bincode::config::{Configuration, Limit, LittleEndian, Varint};
use serde::{de::DeserializeOwned, Serialize};

/// Largest encoded message, in bytes, that is sent or accepted.
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;

/// Largest inbound cluster frame the transport accepts: one message plus
/// ractor_cluster's own envelope.
pub const MAX_FRAME_BYTES: u64 = MAX_MESSAGE_BYTES as u64 + 64 * 1024;

type WireConfig = Configuration<LittleEndian, Varint, Limit<MAX_MESSAGE_BYTES>>;

fn config() -> WireConfig {
    bincode::config::standard().with_limit::<MAX_MESSAGE_BYTES>()
}

/// Why a payload could not be encoded or decoded.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CodecError {
    /// The encoded value is larger than [`MAX_MESSAGE_BYTES`].
    #[error("message of {size} bytes exceeds the limit of {MAX_MESSAGE_BYTES} bytes")]
    TooLarge {
        /// Encoded size in bytes.
        size: usize,
    },
    /// The frame belongs to another protocol.
    #[error("frame of protocol {found:?} delivered where {expected:?} was expected")]
    WrongProtocol {
        /// The protocol the receiver speaks.
        expected: String,
        /// The tag found in the frame (lossy).
        found: String,
    },
    /// The bytes are not a valid encoding of the type.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// The value decoded but bytes were left over.
    #[error("frame has {0} trailing bytes")]
    TrailingBytes(usize),
    /// The value could not be encoded.
    #[error("cannot encode: {0}")]
    Encode(String),
}

/// A serde type that travels between nodes.
pub trait WireMessage: Serialize + DeserializeOwned + Send + 'static {
    /// Protocol tag written in front of every frame, e.g. `"bazaar.membership.v1"`.
    const PROTOCOL: &'static str;
}

/// Encodes `value` with its protocol tag.
pub fn encode<T: WireMessage>(value: &T) -> Result<Vec<u8>, CodecError> {
    encode_tagged(T::PROTOCOL, value)
}

/// Decodes a frame produced by [`encode`]; any other bytes give an error.
pub fn decode<T: WireMessage>(bytes: &[u8]) -> Result<T, CodecError> {
    decode_tagged(T::PROTOCOL, bytes)
}

/// Encodes `value` behind the protocol tag `tag`.
pub fn encode_tagged<T: Serialize + ?Sized>(tag: &str, value: &T) -> Result<Vec<u8>, CodecError> {
    let bytes = bincode::serde::encode_to_vec((tag, value), config())
        .map_err(|err| CodecError::Encode(err.to_string()))?;
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(CodecError::TooLarge { size: bytes.len() });
    }
    Ok(bytes)
}

/// Appends `value` behind the protocol tag `tag` to `buf`; on error `buf`
/// is left as it was.
pub fn encode_tagged_into<T: Serialize + ?Sized>(
    tag: &str,
    value: &T,
    buf: &mut Vec<u8>,
) -> Result<(), CodecError> {
    let start = buf.len();
    let written = bincode::serde::encode_into_std_write((tag, value), buf, config());
    match written {
        Ok(size) if size <= MAX_MESSAGE_BYTES => Ok(()),
        Ok(size) => {
            buf.truncate(start);
            Err(CodecError::TooLarge { size })
        }
        Err(err) => {
            buf.truncate(start);
            Err(CodecError::Encode(err.to_string()))
        }
    }
}

/// Decodes a frame produced by [`encode_tagged`] with the same tag.
pub fn decode_tagged<T: DeserializeOwned>(tag: &str, bytes: &[u8]) -> Result<T, CodecError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(CodecError::TooLarge { size: bytes.len() });
    }
    let (found, tag_len): (&str, usize) = bincode::serde::borrow_decode_from_slice(bytes, config())
        .map_err(|err| CodecError::Malformed(err.to_string()))?;
    if found != tag {
        return Err(CodecError::WrongProtocol {
            expected: tag.to_string(),
            found: found.chars().take(64).collect(),
        });
    }
    let rest = &bytes[tag_len..];
    let (value, used): (T, usize) = bincode::serde::decode_from_slice(rest, config())
        .map_err(|err| CodecError::Malformed(err.to_string()))?;
    if used != rest.len() {
        return Err(CodecError::TrailingBytes(rest.len() - used));
    }
    Ok(value)
}

/// A remotable message: what a cluster actor receives.
///
/// `ractor::BytesConvertable` has no way to fail, so a frame that does not
/// decode arrives as `Wire::Malformed` and the receiving actor decides what
/// to do (log and drop, usually). A value sent to a local actor is never
/// encoded.
pub enum Wire<T> {
    /// A decoded (or never encoded) value.
    Value(T),
    /// Bytes from the network that did not decode.
    Malformed(CodecError),
}

impl<T> Wire<T> {
    /// The value, or the decoding error.
    pub fn into_result(self) -> Result<T, CodecError> {
        match self {
            Self::Value(value) => Ok(value),
            Self::Malformed(err) => Err(err),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Wire<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Value(value) => f.debug_tuple("Value").field(value).finish(),
            Self::Malformed(err) => f.debug_tuple("Malformed").field(err).finish(),
        }
    }
}

impl<T: WireMessage> ractor::BytesConvertable for Wire<T> {
    fn into_bytes(self) -> Vec<u8> {
        match self {
            // An unencodable value becomes an empty frame, which the receiver
            // reports as malformed; the sender logs it here.
            Self::Value(value) => encode(&value).unwrap_or_else(|err| {
                tracing::error!(protocol = T::PROTOCOL, error = %err, "dropping unencodable message");
                Vec::new()
            }),
            Self::Malformed(_) => Vec::new(),
        }
    }

    fn from_bytes(bytes: Vec<u8>) -> Self {
        match decode(&bytes) {
            Ok(value) => Self::Value(value),
            Err(err) => Self::Malformed(err),
        }
    }
}

#[cfg(test)]
mod tests;
