//! `numpy.percentile` (method "linear") exactly as the reference computes it: a list of numpy
//! float32 values is a float32 array, and the quantile, virtual index, weight and
//! interpolation are all float32; a list that also holds a Python float (a forced 1.0 or a
//! dropped 0.0) becomes a float64 array and everything is float64. Thresholds then match bit
//! for bit.

use std::ops::{Add, Mul, Sub};

/// A float type numpy computes a percentile in.
pub trait Real:
    Copy + PartialOrd + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self>
{
    /// `q / 100` in this type.
    fn quantile(q: i64) -> Self;
    /// An index as this type.
    fn from_index(i: usize) -> Self;
    /// Floor.
    fn floor(self) -> Self;
    /// A non-negative integral value as an index.
    fn to_index(self) -> usize;
    /// Total order.
    fn total(&self, other: &Self) -> std::cmp::Ordering;
    /// 0.5 and 1.
    const HALF: Self;
    /// 1.
    const ONE: Self;
}

macro_rules! real {
    ($t:ty) => {
        impl Real for $t {
            fn quantile(q: i64) -> Self {
                q as $t / 100.0
            }
            fn from_index(i: usize) -> Self {
                i as $t
            }
            fn floor(self) -> Self {
                <$t>::floor(self)
            }
            fn to_index(self) -> usize {
                self.max(0.0) as usize
            }
            fn total(&self, other: &Self) -> std::cmp::Ordering {
                self.total_cmp(other)
            }
            const HALF: Self = 0.5;
            const ONE: Self = 1.0;
        }
    };
}
real!(f32);
real!(f64);

/// The `q`-th percentile (0..=100) of `values`; `None` when `values` is empty.
pub fn percentile<T: Real>(values: &[T], q: i64) -> Option<T> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(T::total);
    let n = sorted.len();
    let virtual_index = T::from_index(n - 1) * T::quantile(q);
    let previous = virtual_index.floor();
    let gamma = virtual_index - previous;
    let i = previous.to_index().min(n - 1);
    let j = (i + 1).min(n - 1);
    let (a, b) = (sorted[i], sorted[j]);
    let diff = b - a;
    Some(if gamma >= T::HALF {
        b - diff * (T::ONE - gamma)
    } else {
        a + diff * gamma
    })
}

/// A probability as the reference holds it: a numpy float32, or a Python float (`exact`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prob {
    /// The value.
    pub value: f32,
    /// A Python float (forced 1.0, dropped 0.0) rather than a numpy float32.
    pub exact: bool,
}

impl Prob {
    /// A classifier output.
    pub fn model(value: f32) -> Self {
        Self {
            value,
            exact: false,
        }
    }

    /// A value the reference assigns as a Python float.
    pub fn assigned(value: f32) -> Self {
        Self { value, exact: true }
    }
}

/// A percentile threshold in the precision numpy computed it in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    /// From a float32 array.
    Single(f32),
    /// From a float64 array.
    Double(f64),
}

impl Threshold {
    /// The reference's keep test: `p > threshold or (threshold == 1.0 and p == threshold)`.
    pub fn keeps(self, p: f32) -> bool {
        match self {
            Self::Single(t) => p > t || (t == 1.0 && p == t),
            Self::Double(t) => f64::from(p) > t || (t == 1.0 && f64::from(p) == t),
        }
    }

    /// `p > threshold`.
    pub fn below(self, p: f32) -> bool {
        match self {
            Self::Single(t) => p > t,
            Self::Double(t) => f64::from(p) > t,
        }
    }
}

/// `np.percentile` of a Python list of probabilities.
pub fn threshold(values: &[Prob], q: i64) -> Option<Threshold> {
    if values.iter().any(|p| p.exact) {
        let wide: Vec<f64> = values.iter().map(|p| f64::from(p.value)).collect();
        percentile(&wide, q).map(Threshold::Double)
    } else {
        let narrow: Vec<f32> = values.iter().map(|p| p.value).collect();
        percentile(&narrow, q).map(Threshold::Single)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_numpy() {
        // numpy 2.3: np.percentile([0.1, 0.7, 0.3] as float32, 51) == float32(0.308)
        assert_eq!(percentile(&[0.1f32, 0.7, 0.3], 51), Some(0.308));
        assert_eq!(percentile(&[0.5f32], 71), Some(0.5));
        assert_eq!(percentile(&[3.0f32, 1.0, 2.0], 0), Some(1.0));
        assert_eq!(percentile(&[3.0f32, 1.0, 2.0], 100), Some(3.0));
        assert_eq!(percentile::<f32>(&[], 50), None);
        // A Python float in the list makes numpy compute in float64.
        let mixed = [Prob::model(0.1), Prob::assigned(1.0), Prob::model(0.3)];
        assert!(matches!(threshold(&mixed, 51), Some(Threshold::Double(_))));
    }
}
