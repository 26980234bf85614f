//! An `exp`, and an `ln` (for the log-loss) and a `tanh` (for tanh hidden layers), that
//! vectorise: a loop over a layer's values calling them compiles to vector instructions,
//! where libm's scalar functions cost a call per value. `exp` is within 1 ulp of the standard library over the whole range (checked
//! by the tests), with libm's special values: NaN stays NaN, overflow gives +inf,
//! underflow goes to 0 through the subnormals.
//!
//! Method: `x = n ln2 + r` with `|r| <= ln2 / 2` (Cody and Waite's two-part ln2, so the
//! reduction is exact), `e^r` by its Taylor polynomial, then a multiplication by `2^n`
//! built from exponent bits (in two halves, so that subnormal results come out right).
//! Only selects, no branches. The polynomial uses fused multiply-adds (`mul_add`): FMA
//! instructions on the vector paths, libm's correctly rounded `fma` on the baseline one,
//! so every instruction set gives the same bits.

/// Applies `$f` to each lane: `lanes!(|a, b| expr; a_array, b_array)`.
macro_rules! lanes {
    (|$($v:ident),+| $e:expr; $($a:expr),+) => {{
        let mut out = [Default::default(); N];
        for (i, o) in out.iter_mut().enumerate() {
            $(let $v = $a[i];)+
            *o = $e;
        }
        out
    }};
}

/// `e^x` in f64.
#[inline(always)]
pub(crate) fn exp_f64(x: f64) -> f64 {
    exp_f64_lanes([x])[0]
}

/// `e^x` of `N` values in lockstep: every step runs over all lanes before the next, so a
/// block of values forms independent vector chains that the CPU overlaps (one value at a
/// time in a loop, the polynomial's chain of dependent operations sets the pace).
#[inline(always)]
pub(crate) fn exp_f64_lanes<const N: usize>(x: [f64; N]) -> [f64; N] {
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
    let xc: [f64; N] = lanes!(|x| if x.is_nan() {
        0.0
    } else {
        x.clamp(-746.0, 710.0)
    }; x);
    let shifted: [f64; N] = lanes!(|xc| xc * std::f64::consts::LOG2_E + SHIFT; xc);
    let r: [f64; N] = lanes!(|xc, shifted| {
        let n = shifted - SHIFT;
        (xc - n * LN2_HI) - n * LN2_LO
    }; xc, shifted);
    let mut p = [C[0]; N];
    for &c in &C[1..] {
        p = lanes!(|p, r| p.mul_add(r, c); p, r);
    }
    lanes!(|x, shifted, p, r| {
        let p = p.mul_add(r, 1.0).mul_add(r, 1.0);
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
    }; x, shifted, p, r)
}

/// `e^x` in f32.
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    exp_f32_lanes([x])[0]
}

/// [`exp_f64_lanes`] in f32.
#[inline(always)]
pub(crate) fn exp_f32_lanes<const N: usize>(x: [f32; N]) -> [f32; N] {
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
    let xc: [f32; N] = lanes!(|x| if x.is_nan() {
        0.0
    } else {
        x.clamp(-105.0, 89.0)
    }; x);
    let shifted: [f32; N] = lanes!(|xc| xc * std::f32::consts::LOG2_E + SHIFT; xc);
    let r: [f32; N] = lanes!(|xc, shifted| {
        let n = shifted - SHIFT;
        (xc - n * LN2_HI) - n * LN2_LO
    }; xc, shifted);
    let mut p = [C[0]; N];
    for &c in &C[1..] {
        p = lanes!(|p, r| p.mul_add(r, c); p, r);
    }
    lanes!(|x, shifted, p, r| {
        let p = p.mul_add(r, 1.0).mul_add(r, 1.0);
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
    }; x, shifted, p, r)
}

/// `tanh(x)` in f64, by Cephes' method: `x + x^3 P(x^2) / Q(x^2)` below |x| = 0.625, and
/// `1 - 2 / (e^(2|x|) + 1)` with the sign of `x` above (no cancellation there: the
/// result is above 0.55). Both are computed and one is selected, so that a loop over a
/// layer's values vectorises, where libm's `tanh` is a call per value. Within 2 ulp of
/// libm (checked by the tests); NaN stays NaN, +-inf gives +-1, -0 stays -0.
#[inline(always)]
pub(crate) fn tanh_f64(x: f64) -> f64 {
    const P: [f64; 3] = [
        -9.643_991_794_250_523e-1,
        -9.928_772_310_019_186e1,
        -1.614_687_684_417_084_5e3,
    ];
    // (Q's leading coefficient is 1)
    const Q: [f64; 3] = [
        1.128_116_784_916_329_3e2,
        2.235_488_390_601_004_6e3,
        4.844_063_053_251_255e3,
    ];
    let a = x.abs();
    let s = x * x;
    let p = (P[0] * s + P[1]) * s + P[2];
    let q = ((s + Q[0]) * s + Q[1]) * s + Q[2];
    let small = x + x * s * (p / q);
    let large = (1.0 - 2.0 / (exp_f64(a + a) + 1.0)).copysign(x);
    tanh_branch(x, small, large)
}

/// The branch of [`tanh_f64`] and [`tanh_f32`] that `x` takes (both are computed, so
/// this is a select). 0 itself is returned as is: the polynomial would turn -0 into +0.
#[inline(always)]
fn tanh_branch<T: num_traits::Float>(x: T, small: T, large: T) -> T {
    let a = x.abs();
    if a == T::zero() {
        x
    } else if a < T::from(0.625).unwrap_or_else(T::zero) {
        small
    } else {
        large
    }
}

/// [`tanh_f64`] in f32 (Cephes' `tanhf`: a degree-5 odd polynomial below 0.625).
#[inline(always)]
pub(crate) fn tanh_f32(x: f32) -> f32 {
    const P: [f32; 5] = [
        -5.704_988_7e-3,
        2.063_909e-2,
        -5.373_971_6e-2,
        1.333_144_2e-1,
        -3.333_328e-1,
    ];
    let a = x.abs();
    let z = x * x;
    let p = (((P[0] * z + P[1]) * z + P[2]) * z + P[3]) * z + P[4];
    let small = p * z * x + x;
    let large = (1.0 - 2.0 / (exp_f32(a + a) + 1.0)).copysign(x);
    tanh_branch(x, small, large)
}

/// `ln(x)` of `N` positive normal values in lockstep (NaN gives NaN; zero, negative,
/// subnormal and infinite values are outside its domain). fdlibm's method, as in musl:
/// `x = 2^k (1 + f)` with `1 + f` in `[sqrt(2)/2, sqrt(2)]`, then `ln(1 + f)` from
/// `s = f / (2 + f)` and a polynomial in `s^2`; below 1 ulp. Branch-free, so that it
/// vectorises.
#[inline(always)]
pub(crate) fn ln_f64_lanes<const N: usize>(x: [f64; N]) -> [f64; N] {
    // fdlibm's constants, by their bits
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    const LG1: f64 = f64::from_bits(0x3fe5_5555_5555_5593);
    const LG2: f64 = f64::from_bits(0x3fd9_9999_9997_fa04);
    const LG3: f64 = f64::from_bits(0x3fd2_4924_9422_9359);
    const LG4: f64 = f64::from_bits(0x3fcc_71c5_1d8e_78af);
    const LG5: f64 = f64::from_bits(0x3fc7_4664_96cb_03de);
    const LG6: f64 = f64::from_bits(0x3fc3_9a09_d078_c69f);
    const LG7: f64 = f64::from_bits(0x3fc2_f112_df3e_5244);
    lanes!(|x| {
        let bits = x.to_bits();
        // the high word, shifted so that its exponent field counts from sqrt(2)/2
        let hx = ((bits >> 32) as u32).wrapping_add(0x3ff0_0000 - 0x3fe6_a09e);
        let k = (hx >> 20) as i32 - 0x3ff;
        let hx = (hx & 0x000f_ffff) + 0x3fe6_a09e;
        let m = f64::from_bits(((hx as u64) << 32) | (bits & 0xffff_ffff));
        let f = m - 1.0;
        let hfsq = 0.5 * f * f;
        let s = f / (2.0 + f);
        let z = s * s;
        let w = z * z;
        let t1 = w * (LG2 + w * (LG4 + w * LG6));
        let t2 = z * (LG1 + w * (LG3 + w * (LG5 + w * LG7)));
        let dk = k as f64;
        let y = s * (hfsq + t1 + t2) + dk * LN2_LO - hfsq + f + dk * LN2_HI;
        if x.is_nan() {
            x + x
        } else {
            y
        }
    }; x)
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
    fn tanh_within_two_ulp_of_std() {
        let (mut worst64, mut worst32) = (0, 0);
        for i in 0..=1_000_000 {
            let x = -25.0 + 50.0 * i as f64 / 1_000_000.0;
            worst64 = worst64.max(ulps64(tanh_f64(x), x.tanh()));
            let x = x as f32;
            worst32 = worst32.max(ulps32(tanh_f32(x), x.tanh()));
        }
        for x in [
            1e-300,
            1e-20,
            1e-8,
            0.001,
            0.3,
            0.624_999_999,
            0.625,
            0.625_000_001,
        ] {
            for x in [x, -x] {
                worst64 = worst64.max(ulps64(tanh_f64(x), x.tanh()));
                worst32 = worst32.max(ulps32(tanh_f32(x as f32), (x as f32).tanh()));
            }
        }
        assert!(worst64 <= 2, "f64: worst error {worst64} ulp");
        assert!(worst32 <= 2, "f32: worst error {worst32} ulp");
        for (x, want) in [
            (f64::INFINITY, 1.0),
            (f64::NEG_INFINITY, -1.0),
            (800.0, 1.0),
        ] {
            assert_eq!(tanh_f64(x), want);
            assert_eq!(tanh_f32(x as f32), want as f32);
        }
        assert!(tanh_f64(f64::NAN).is_nan() && tanh_f32(f32::NAN).is_nan());
        assert!(tanh_f64(-0.0).is_sign_negative() && tanh_f32(-0.0).is_sign_negative());
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

    #[test]
    fn ln_within_one_ulp_of_std() {
        let mut worst = 0;
        for i in 0..=2_000_000 {
            // log-spaced over the normal numbers, and densely over (0, 1]
            let x = if i % 2 == 0 {
                (-708.0 + 1417.0 * i as f64 / 2_000_000.0).exp()
            } else {
                i as f64 / 2_000_000.0
            };
            let got = ln_f64_lanes([x])[0];
            worst = worst.max(ulps64(got, x.ln()).min(ulps64(-got, -x.ln())));
        }
        assert!(worst <= 1, "worst error {worst} ulp");
        for x in [1.0, f64::EPSILON, 1.0 - f64::EPSILON, 0.5, 2.0, f64::MAX] {
            assert!(ulps64(ln_f64_lanes([x])[0].abs(), x.ln().abs()) <= 1, "{x}");
        }
        assert_eq!(ln_f64_lanes([1.0])[0], 0.0);
        assert!(ln_f64_lanes([f64::NAN])[0].is_nan());
    }
}
