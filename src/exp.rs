//! An `exp` that vectorises: a loop over a layer's values calling it compiles to vector
//! instructions, where libm's scalar `exp` costs a call per value. Within 1 ulp of the
//! standard library over the whole range (checked by the tests), with libm's special
//! values: NaN stays NaN, overflow gives +inf, underflow goes to 0 through the subnormals.
//!
//! Method: `x = n ln2 + r` with `|r| <= ln2 / 2` (Cody and Waite's two-part ln2, so the
//! reduction is exact), `e^r` by its Taylor polynomial, then a multiplication by `2^n`
//! built from exponent bits (in two halves, so that subnormal results come out right).
//! Only selects, no branches, and plain multiply-adds (Rust never fuses them), so every
//! instruction set gives the same bits.

/// `e^x` in f64.
#[inline(always)]
pub fn exp_f64(x: f64) -> f64 {
    const OVERFLOW: f64 = 709.782_712_893_384; // ln(f64::MAX)
    const UNDERFLOW: f64 = -745.133_219_101_941_1; // ln of the smallest subnormal / 2
                                                   // 1.5 * 2^52: adding it rounds to an integer, which lands in the low mantissa bits.
    const SHIFT: f64 = 6_755_399_441_055_744.0;
    // ln2 = LN2_HI + LN2_LO; the low 21 mantissa bits of LN2_HI are zero, so n * LN2_HI
    // is exact for every n used here (|n| <= 1076).
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    // Taylor coefficients 1/k!, k = 13 down to 2: the remainder is below 0.05 ulp on
    // |r| <= ln2 / 2.
    const C: [f64; 12] = [
        1.0 / 6_227_020_800.0,
        1.0 / 479_001_600.0,
        1.0 / 39_916_800.0,
        1.0 / 3_628_800.0,
        1.0 / 362_880.0,
        1.0 / 40_320.0,
        1.0 / 5_040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
    ];
    // NaN is replaced (and restored at the end) so that the bit tricks see a number.
    let xc = if x.is_nan() {
        0.0
    } else {
        x.clamp(-746.0, 710.0)
    };
    let shifted = xc * std::f64::consts::LOG2_E + SHIFT;
    let n = shifted - SHIFT;
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    let mut p = C[0];
    for &c in &C[1..] {
        p = p * r + c;
    }
    let p = (p * r + 1.0) * r + 1.0;
    // n in [-1076, 1024]; two factors 2^a 2^b, a + b = n, each a normal number.
    let k = (shifted.to_bits() as i64).wrapping_sub(SHIFT.to_bits() as i64);
    let a = (((k + 1100) as u64) >> 1) as i64 - 550;
    let scale = |e: i64| f64::from_bits(((e + 1023) as u64) << 52);
    let y = p * scale(a) * scale(k - a);
    let y = if x > OVERFLOW { f64::INFINITY } else { y };
    let y = if x < UNDERFLOW { 0.0 } else { y };
    // `x + x`, as libm does, turns a signalling NaN into a quiet one.
    if x.is_nan() {
        x + x
    } else {
        y
    }
}

/// `e^x` in f32.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const OVERFLOW: f32 = 88.722_84; // ln(f32::MAX)
    const UNDERFLOW: f32 = -103.972_08; // ln of the smallest subnormal / 2
    const SHIFT: f32 = 12_582_912.0; // 1.5 * 2^23
    const LN2_HI: f32 = f32::from_bits(0x3f31_8000); // n * LN2_HI is exact
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1/k!, k = 8 down to 2.
    const C: [f32; 7] = [
        1.0 / 40_320.0,
        1.0 / 5_040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
    ];
    let xc = if x.is_nan() {
        0.0
    } else {
        x.clamp(-105.0, 89.0)
    };
    let shifted = xc * std::f32::consts::LOG2_E + SHIFT;
    let n = shifted - SHIFT;
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    let mut p = C[0];
    for &c in &C[1..] {
        p = p * r + c;
    }
    let p = (p * r + 1.0) * r + 1.0;
    let k = (shifted.to_bits() as i32).wrapping_sub(SHIFT.to_bits() as i32);
    let a = (((k + 160) as u32) >> 1) as i32 - 80;
    let scale = |e: i32| f32::from_bits(((e + 127) as u32) << 23);
    let y = p * scale(a) * scale(k - a);
    let y = if x > OVERFLOW { f32::INFINITY } else { y };
    let y = if x < UNDERFLOW { 0.0 } else { y };
    // `x + x`, as libm does, turns a signalling NaN into a quiet one.
    if x.is_nan() {
        x + x
    } else {
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place (same-sign finite values).
    fn ulps64(a: f64, b: f64) -> u64 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
    }

    fn ulps32(a: f32, b: f32) -> u32 {
        (a.to_bits() as i32 - b.to_bits() as i32).unsigned_abs()
    }

    #[test]
    fn f64_within_one_ulp_of_std() {
        let mut worst = 0;
        for i in 0..=2_000_000 {
            let x = -745.0 + 1454.7 * i as f64 / 2_000_000.0;
            let (got, want) = (exp_f64(x), x.exp());
            if want >= f64::MIN_POSITIVE {
                worst = worst.max(ulps64(got, want));
            } else {
                // subnormal results: absolute error of one subnormal step
                assert!((got - want).abs() <= 5e-324 * 1.5, "{x}: {got} vs {want}");
            }
        }
        assert!(worst <= 1, "worst error {worst} ulp");
        for x in [
            0.0,
            -0.0,
            1e-300,
            -1e-300,
            1.0,
            -1.0,
            0.5 * std::f64::consts::LN_2,
        ] {
            assert!(ulps64(exp_f64(x), x.exp()) <= 1, "{x}");
        }
    }

    #[test]
    fn f32_within_one_ulp_of_std() {
        let mut worst = 0;
        for i in 0..=2_000_000 {
            let x = -103.0 + 191.7 * i as f32 / 2_000_000.0;
            let (got, want) = (exp_f32(x), x.exp());
            if want >= f32::MIN_POSITIVE {
                worst = worst.max(ulps32(got, want));
            } else {
                assert!((got - want).abs() <= 1.5e-45, "{x}: {got} vs {want}");
            }
        }
        assert!(worst <= 1, "worst error {worst} ulp");
    }

    #[test]
    fn special_values() {
        assert!(exp_f64(f64::NAN).is_nan() && exp_f32(f32::NAN).is_nan());
        assert_eq!(exp_f64(f64::INFINITY), f64::INFINITY);
        assert_eq!(exp_f64(f64::NEG_INFINITY), 0.0);
        assert_eq!(exp_f64(710.0), f64::INFINITY);
        assert_eq!(exp_f64(-746.0), 0.0);
        assert_eq!(exp_f64(709.78), 709.78_f64.exp());
        assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(89.0), f32::INFINITY);
        assert_eq!(exp_f32(-105.0), 0.0);
        assert_eq!(exp_f64(0.0), 1.0);
        assert_eq!(exp_f32(0.0), 1.0);
    }
}
