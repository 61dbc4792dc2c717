//! Conversion between constriction's 32-bit words and the bytes stored in containers.

use crate::error::{EntropyError, Result};

/// Little-endian bytes of `words`.
pub fn words_to_bytes(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// Words of a stream written by [`words_to_bytes`]; the length must be a multiple of 4.
pub fn bytes_to_words(bytes: &[u8]) -> Result<Vec<u32>> {
    if !bytes.len().is_multiple_of(4) {
        return Err(EntropyError::Corrupt(format!(
            "coded stream has {} bytes, not a multiple of 4",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect())
}

/// Maps a signed integer to an unsigned one, small magnitudes first (0, -1, 1, -2, ...).
pub fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

/// Inverse of [`zigzag`].
pub fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigzag_round_trips_extremes() {
        for v in [0, 1, -1, 2, -2, i64::MAX, i64::MIN, 12345, -98765] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
    }

    #[test]
    fn words_round_trip_and_odd_lengths_fail() {
        let words = vec![0, 1, u32::MAX, 0xdead_beef];
        assert_eq!(bytes_to_words(&words_to_bytes(&words)).unwrap(), words);
        assert!(bytes_to_words(&[1, 2, 3]).is_err());
    }
}
