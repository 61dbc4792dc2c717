//! How a float element splits into a modelled symbol and raw bits.
//!
//! The exponent carries little information (about 2.6 of BF16's 8 bits in trained weights) and
//! the first mantissa bit below it is skewed within each binade, so the two form one symbol that
//! an entropy model codes; the sign and the remaining mantissa bits are close to uniform and go
//! to byte planes. Because the exponent and the top mantissa bit sit next to each other just
//! below the sign, the symbol is one contiguous bit field.

/// The bit layout of a float dtype.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloatLayout {
    /// Bits per element: 16 or 32.
    pub bits: u32,
    /// Exponent bits.
    pub exponent_bits: u32,
}

/// bfloat16: 1 sign, 8 exponent, 7 mantissa bits.
pub const BF16: FloatLayout = FloatLayout {
    bits: 16,
    exponent_bits: 8,
};
/// IEEE half: 1 sign, 5 exponent, 10 mantissa bits.
pub const F16: FloatLayout = FloatLayout {
    bits: 16,
    exponent_bits: 5,
};
/// IEEE single: 1 sign, 8 exponent, 23 mantissa bits.
pub const F32: FloatLayout = FloatLayout {
    bits: 32,
    exponent_bits: 8,
};

/// Mantissa bits modelled together with the exponent.
pub const MODELLED_MANTISSA_BITS: u32 = 1;

fn mask(bits: u32) -> u32 {
    (1u32 << bits) - 1
}

impl FloatLayout {
    /// Bytes per element.
    pub fn bytes(self) -> usize {
        self.bits as usize / 8
    }

    /// Bits of the modelled symbol: the exponent and the top mantissa bit.
    pub fn symbol_bits(self) -> u32 {
        self.exponent_bits + MODELLED_MANTISSA_BITS
    }

    /// Mantissa bits below the symbol.
    fn low_bits(self) -> u32 {
        self.bits - 1 - self.symbol_bits()
    }

    /// Raw bits per element: the sign and the low mantissa bits.
    pub fn rest_bits(self) -> u32 {
        self.low_bits() + 1
    }

    /// Byte planes the raw bits take.
    pub fn planes(self) -> usize {
        self.rest_bits().div_ceil(8) as usize
    }

    /// Bits of raw byte plane `p` (8, except the last, which holds what is left).
    pub fn plane_bits(self, p: usize) -> u32 {
        (self.rest_bits() - 8 * p as u32).min(8)
    }

    /// Reads element `i` of little-endian `bytes`.
    #[inline]
    pub fn read(self, bytes: &[u8], i: usize) -> u32 {
        match self.bits {
            16 => u32::from(u16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]])),
            _ => u32::from_le_bytes(bytes[4 * i..4 * i + 4].try_into().expect("4 bytes")),
        }
    }

    /// Writes element `i` into little-endian `bytes`.
    #[inline]
    pub fn write(self, bytes: &mut [u8], i: usize, value: u32) {
        match self.bits {
            16 => bytes[2 * i..2 * i + 2].copy_from_slice(&(value as u16).to_le_bytes()),
            _ => bytes[4 * i..4 * i + 4].copy_from_slice(&value.to_le_bytes()),
        }
    }

    /// The symbol and the raw bits of `value`.
    #[inline]
    pub fn split(self, value: u32) -> (u16, u32) {
        let low = self.low_bits();
        let symbol = (value >> low) & mask(self.symbol_bits());
        let sign = value >> (self.bits - 1);
        (symbol as u16, (sign << low) | (value & mask(low)))
    }

    /// The value [`Self::split`] took apart.
    #[inline]
    pub fn join(self, symbol: u16, rest: u32) -> u32 {
        let low = self.low_bits();
        ((rest >> low) << (self.bits - 1)) | (u32::from(symbol) << low) | (rest & mask(low))
    }
}

/// Test data: `v` as an element of `layout`, BF16 and FP16 by truncation.
#[cfg(test)]
pub fn element_of(layout: FloatLayout, v: f32) -> u32 {
    let bits = v.to_bits();
    match layout {
        BF16 => bits >> 16,
        F16 => {
            let sign = (bits >> 16) & 0x8000;
            let exp = ((bits >> 23) & 0xff) as i32 - 127 + 15;
            if exp <= 0 {
                return sign;
            }
            sign | ((exp.min(30) as u32) << 10) | ((bits >> 13) & 0x3ff)
        }
        _ => bits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_and_join_are_inverse_on_every_16_bit_pattern() {
        for layout in [BF16, F16] {
            for value in 0..=u32::from(u16::MAX) {
                let (symbol, rest) = layout.split(value);
                assert!(u32::from(symbol) < 1 << layout.symbol_bits());
                assert!(rest < 1 << layout.rest_bits());
                assert_eq!(layout.join(symbol, rest), value, "{layout:?} {value:#x}");
            }
        }
    }

    #[test]
    fn the_symbol_of_a_float32_is_its_exponent_and_top_mantissa_bit() {
        for x in [1.0f32, -1.5, 3.75e-8, f32::MAX, -0.0, f32::NAN] {
            let bits = x.to_bits();
            let (symbol, rest) = F32.split(bits);
            assert_eq!(u32::from(symbol) >> 1, (bits >> 23) & 0xff);
            assert_eq!(u32::from(symbol) & 1, (bits >> 22) & 1);
            assert_eq!(F32.join(symbol, rest), bits);
        }
        assert_eq!((BF16.planes(), F16.planes(), F32.planes()), (1, 2, 3));
    }
}
