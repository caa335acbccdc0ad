//! The TCP-MD5 key type. It is the only place a password lives after it is read from the
//! Secret, so it is built to stay out of logs: no `Display`, a redacting `Debug`, errors
//! that never quote it, and zeroed memory on drop.

use std::fmt;

use super::sockopt::MD5_MAX_KEY_LEN;

/// A TCP-MD5 (RFC 2385) key: 1 to 80 bytes.
///
/// `Debug` prints `Md5Key(<redacted>)`, so any type holding one can derive `Debug` safely.
#[derive(Clone, PartialEq, Eq)]
pub struct Md5Key(Box<[u8]>);

/// Why a password cannot be used as a TCP-MD5 key. Never contains the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The kernel reads a zero-length key as "delete": an empty password would silently
    /// mean "no authentication", so it is refused; use no key instead.
    #[error("TCP-MD5 password is empty")]
    Empty,
    #[error("TCP-MD5 password is longer than {MD5_MAX_KEY_LEN} bytes")]
    TooLong,
}

impl Md5Key {
    /// Longest key Linux accepts (`TCP_MD5SIG_MAXKEYLEN`).
    pub const MAX_LEN: usize = MD5_MAX_KEY_LEN;

    pub fn new(key: impl Into<Vec<u8>>) -> Result<Self, KeyError> {
        let mut key: Vec<u8> = key.into();
        let err = match key.len() {
            0 => Some(KeyError::Empty),
            n if n > Self::MAX_LEN => Some(KeyError::TooLong),
            _ => None,
        };
        if let Some(err) = err {
            key.fill(0);
            return Err(err);
        }
        Ok(Self(key.into_boxed_slice()))
    }

    /// The key bytes, for the socket option only.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Md5Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Md5Key(<redacted>)")
    }
}

impl Drop for Md5Key {
    fn drop(&mut self) {
        // Best effort (no `zeroize` dependency): clear the bytes and keep the write from
        // being optimised away.
        self.0.fill(0);
        std::hint::black_box(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts() {
        let key = Md5Key::new("hunter2").unwrap();
        let shown = format!("{key:?} {:?}", Some(&key));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn length_bounds() {
        assert_eq!(Md5Key::new(""), Err(KeyError::Empty));
        assert!(Md5Key::new(vec![b'a'; 80]).is_ok());
        assert_eq!(Md5Key::new(vec![b'Q'; 81]), Err(KeyError::TooLong));
        assert!(!KeyError::TooLong.to_string().contains('Q'));
    }
}
