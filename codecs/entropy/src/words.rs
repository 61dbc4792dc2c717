//! Conversion between constriction's 32-bit words and the bytes stored in containers.

use crate::error::{EntropyError, Result};

/// Little-endian bytes of an ANS stack's words, without the zero high bytes of its last word:
/// the top of the stack, which the decoder reads first and which constriction never leaves
/// zero (so at least its low byte is written). A stream of n words takes 4(n − 1) + 1 to 4 n
/// bytes; the bytes of a state's leading zero bits are not stored.
pub fn stack_to_bytes(words: &[u32]) -> Vec<u8> {
    let mut bytes = words_to_bytes(words);
    if let Some(&top) = words.last() {
        let zero_high_bytes = (top.leading_zeros() / 8) as usize;
        bytes.truncate(bytes.len() - zero_high_bytes);
    }
    bytes
}

/// Words of a stack written by [`stack_to_bytes`] (or, with its full last word, by
/// [`words_to_bytes`]): a last partial word is widened with zero high bytes. A partial word
/// ending in a zero byte is refused: [`stack_to_bytes`] never writes one.
pub fn bytes_to_stack(bytes: &[u8]) -> Result<Vec<u32>> {
    if !bytes.len().is_multiple_of(4) && bytes.last() == Some(&0) {
        return Err(EntropyError::Corrupt(
            "ANS stream ends in a zero byte its last word does not need".into(),
        ));
    }
    Ok(bytes
        .chunks(4)
        .map(|c| {
            let mut word = [0u8; 4];
            word[..c.len()].copy_from_slice(c);
            u32::from_le_bytes(word)
        })
        .collect())
}

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

    #[test]
    fn a_stack_drops_only_its_top_words_zero_high_bytes() {
        for (top, len) in [
            (1, 5),
            (0xff, 5),
            (0x100, 6),
            (0xff_ffff, 7),
            (0x100_0000, 8),
        ] {
            let words = vec![0, top];
            let bytes = stack_to_bytes(&words);
            assert_eq!(bytes.len(), len, "{top:#x}");
            assert_eq!(bytes_to_stack(&bytes).unwrap(), words);
            assert_eq!(bytes_to_stack(&words_to_bytes(&words)).unwrap(), words);
        }
        assert!(stack_to_bytes(&[]).is_empty());
        assert!(bytes_to_stack(&[]).unwrap().is_empty());
        assert!(bytes_to_stack(&[0, 0, 0, 0, 7, 0]).is_err());
    }
}
