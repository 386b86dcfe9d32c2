//! Exact Kubernetes quantity arithmetic for ModelArts resource strings.
//!
//! ModelArts reports every resource as a Kubernetes quantity string (`1930m`, `1912Mi`, `8`).
//! Summing thousands of them must not drift, so a value is held as an integer count of
//! nano-units (`i128`).
//!
//! # What is accepted (tests/quantity_kubernetes.rs checks every rule against Kubernetes)
//!
//! The grammar is exactly that of `resource.ParseQuantity` (k8s.io/apimachinery
//! `parseQuantityString` plus its suffix table), quirks included, so that a string is refused
//! as [`ParseError::Syntax`] or [`ParseError::Suffix`] exactly when Kubernetes refuses it:
//! - `[+-]digits[.digits]suffix`, each part optional: `1.`, `.5`, `1.G`, `.` and a bare `-` are
//!   valid; nothing is trimmed, so any whitespace is an error, as in Kubernetes;
//! - suffixes `n u m k M G T P E`, `Ki Mi Gi Ti Pi Ei`, or `e`/`E` with a signed int64 exponent;
//! - a string without any digit reads as zero where Kubernetes' int64 fast path reads it so
//!   (`-`, `.`, `G`, `Ki`, `e5`) and is refused where its inf.Dec path finds no digit (`e-10`,
//!   `Pi`, `Ei`); for this one decision the exponent is truncated to int32 as Kubernetes does.
//!
//! A value is either exactly what the string says or refused, never approximated:
//! - zero with any exponent is zero; leading zeros and trailing fraction zeros cost nothing;
//! - a non-zero value that is not a whole number of nano-units is refused as
//!   [`ParseError::Precision`] (Kubernetes silently rounds it up to the next 1n);
//! - a magnitude above 2^63-1 units is refused as [`ParseError::Overflow`] (Kubernetes caps a
//!   binary-SI one at that maximum and keeps a decimal one in a form no int64 accessor returns).
//!   Bounding every quantity there also keeps any sum of fewer than 10^10 of them inside i128;
//! - an exponent outside int32 is used as written (Kubernetes truncates it: `1e-4294967296`
//!   reads as `1` there), which makes any non-zero value too large or too fine, hence refused.
//!
//! # Why hand-written
//!
//! No crate parses quantities exactly: `kube_quantity` goes through `rust_decimal` (a 96-bit
//! mantissa, 28 significant digits), which cannot hold `0.000000000931322574615478515625Gi`
//! (exactly 1) or 1n written in `Ei` (42 significant digits), and k8s-openapi's `Quantity` is
//! only the string. Arbitrary-precision decimals would allocate on every parse, and the
//! summarizer parses every resource of every node. So: one pass over the bytes with no
//! allocation, the significant digits in a `u128`, the decimal exponent in an `i128` (no input
//! can overflow it), and a digit-by-digit long division for the rare binary-suffix value whose
//! significant digits outgrow a `u128`.

use std::fmt;

const NANO: i128 = 1_000_000_000;

/// Kubernetes' largest magnitude, 2^63-1 units, in nano-units.
const MAX_NANOS: i128 = i64::MAX as i128 * NANO;

/// Any number with this many digits exceeds [`MAX_NANOS`] (which has 28).
const TOO_MANY_DIGITS: i128 = 29;

/// How a total should be written back, chosen from the inputs that made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Format {
    /// Plain numbers (`8`, `0.5` → `500m`).
    #[default]
    Plain,
    /// Decimal SI suffixes (`16G`).
    DecimalSi,
    /// Binary SI suffixes (`4Gi`), preferred when any input used one.
    BinarySi,
}

/// An exact quantity: a count of nano-units plus the preferred output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Quantity {
    nanos: i128,
    format: Format,
}

/// Why a quantity string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not of the form `<number><suffix>` (Kubernetes refuses it too).
    #[error("not a Kubernetes quantity")]
    Syntax,
    /// The suffix is not one Kubernetes knows (Kubernetes refuses it too).
    #[error("unknown suffix {0:?}")]
    Suffix(String),
    /// Not a whole number of nano-units; Kubernetes would round it up to the next 1n.
    #[error("finer than 1n (Kubernetes would round it up)")]
    Precision,
    /// Magnitude above 2^63-1 units, the most Kubernetes holds.
    #[error("beyond Kubernetes' maximum of 2^63-1 units")]
    Overflow,
}

/// `10^exp` when it fits an `i128`.
fn pow10(exp: i128) -> Option<i128> {
    10i128.checked_pow(u32::try_from(exp).ok()?)
}

/// Length of the run of ASCII digits at the start of `b`.
fn digit_run(b: &[u8]) -> usize {
    b.iter().take_while(|c| c.is_ascii_digit()).count()
}

/// A suffix's multiplier, `10^exp10 * 2^bin` units, and the format it asks for; `None` for a
/// suffix Kubernetes does not know.
fn interpret(suffix: &str) -> Option<(i64, u32, Format)> {
    Some(match suffix {
        "" => (0, 0, Format::Plain),
        "n" => (-9, 0, Format::DecimalSi),
        "u" => (-6, 0, Format::DecimalSi),
        "m" => (-3, 0, Format::DecimalSi),
        "k" => (3, 0, Format::DecimalSi),
        "M" => (6, 0, Format::DecimalSi),
        "G" => (9, 0, Format::DecimalSi),
        "T" => (12, 0, Format::DecimalSi),
        "P" => (15, 0, Format::DecimalSi),
        "E" => (18, 0, Format::DecimalSi),
        "Ki" => (0, 10, Format::BinarySi),
        "Mi" => (0, 20, Format::BinarySi),
        "Gi" => (0, 30, Format::BinarySi),
        "Ti" => (0, 40, Format::BinarySi),
        "Pi" => (0, 50, Format::BinarySi),
        "Ei" => (0, 60, Format::BinarySi),
        other => (parse_exponent(other.strip_prefix(['e', 'E'])?)?, 0, Format::Plain),
    })
}

/// Go's `strconv.ParseInt(s, 10, 64)`, which Kubernetes uses for the exponent: an optional
/// sign, at least one digit, and a value within i64.
fn parse_exponent(s: &str) -> Option<i64> {
    let (negative, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    let mut magnitude: u64 = 0;
    for b in digits.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        magnitude = magnitude.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// Whether Kubernetes reads a mantissa without any digit (`-`, `.`, `-.G`) as zero. It does on
/// its int64 fast path (a decimal scale of at least 1n, a binary suffix up to `Ti`); elsewhere
/// its inf.Dec path finds no digit and refuses the string. Kubernetes truncates the exponent to
/// int32 before deciding, so this does too: the outcome is zero or a refusal either way.
fn digitless_is_zero(exp10: i64, bin: u32) -> bool {
    if bin > 0 { bin <= 40 } else { exp10 as i32 >= -9 }
}

/// `D * 2^bin / 10^m` in nano-units, where `D` is the digit string `digits` and `m <= bin`: the
/// rare binary-suffix value with digits finer than 1n. `D` may have more digits than a `u128`
/// holds (1n in `Ei` has 42), so it is divided by `5^m` one digit at a time, in two stages so
/// every remainder stays below `10 * 5^33`; the remaining `2^(bin-m)` is a shift.
fn binary_fraction(digits: impl Iterator<Item = u8>, m: u32, bin: u32) -> Result<i128, ParseError> {
    let first = m.min(27);
    let (p1, p2) = (5u128.pow(first), 5u128.pow(m - first));
    let shift = bin - m;
    let limit = MAX_NANOS.unsigned_abs() >> shift;
    let (mut r1, mut r2, mut quotient) = (0u128, 0u128, 0u128);
    for d in digits {
        r1 = r1 * 10 + u128::from(d - b'0');
        r2 = r2 * 10 + r1 / p1;
        r1 %= p1;
        quotient = quotient * 10 + r2 / p2;
        r2 %= p2;
        // The quotient only grows, and the value is at least quotient * 2^shift.
        if quotient > limit {
            return Err(ParseError::Overflow);
        }
    }
    if r1 != 0 || r2 != 0 {
        return Err(ParseError::Precision);
    }
    i128::try_from(quotient << shift).map_err(|_| ParseError::Overflow)
}

impl Quantity {
    /// Zero, written plainly.
    pub const ZERO: Quantity = Quantity {
        nanos: 0,
        format: Format::Plain,
    };

    /// Parses any string Kubernetes' `ParseQuantity` accepts (`1930m`, `1912Mi`, `0.5`, `16G`,
    /// `1e3`, `+8`, `-1`, ...) to its exact value, or says why not (see the module docs).
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let b = input.as_bytes();
        let negative = match b.first() {
            None => return Err(ParseError::Syntax),
            Some(first) => *first == b'-',
        };
        // The same scan as Kubernetes' parseQuantityString: sign, digits, `.digits`, then a
        // suffix of letters from its set, one optional sign and digits; anything after is an error.
        let mut i = usize::from(matches!(b[0], b'-' | b'+'));
        let int_start = i;
        i += digit_run(&b[i..]);
        let int_digits = &b[int_start..i];
        let mut frac_digits: &[u8] = &[];
        if b.get(i) == Some(&b'.') {
            let start = i + 1;
            i = start + digit_run(&b[start..]);
            frac_digits = &b[start..i];
        }
        let suffix_start = i;
        while b.get(i).is_some_and(|c| b"eEinumkKMGTP".contains(c)) {
            i += 1;
        }
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        i += digit_run(&b[i..]);
        if i != b.len() {
            // Kubernetes only says "must match the regular expression"; after a number, naming
            // what follows it ("8 cores", "4GB") is clearer.
            return Err(match input.get(suffix_start..) {
                Some(tail) if suffix_start > int_start && !tail.starts_with('.') => {
                    ParseError::Suffix(tail.to_string())
                }
                _ => ParseError::Syntax,
            });
        }
        // Everything before the suffix is ASCII, so this is a char boundary.
        let suffix = input.get(suffix_start..).ok_or(ParseError::Syntax)?;
        let (exp10, bin, format) = interpret(suffix).ok_or_else(|| ParseError::Suffix(suffix.to_string()))?;
        let zero = Quantity { nanos: 0, format };
        if int_digits.is_empty() && frac_digits.is_empty() {
            return if digitless_is_zero(exp10, bin) {
                Ok(zero)
            } else {
                Err(ParseError::Syntax)
            };
        }

        // D = the significant digits (no leading zeros, no trailing zeros), folded into a u128
        // while it fits; value = D * 10^k * 2^bin nano-units. Folding zeros lazily is what keeps
        // "1." followed by 40 zeros from looking like a 41-digit number.
        let (mut sig, mut sig_len, mut zeros, mut fits) = (0u128, 0usize, 0usize, true);
        for &d in int_digits.iter().chain(frac_digits) {
            if d == b'0' {
                zeros += usize::from(sig_len > 0);
                continue;
            }
            sig_len += zeros + 1;
            if fits {
                let folded = u32::try_from(zeros + 1)
                    .ok()
                    .and_then(|z| 10u128.checked_pow(z))
                    .and_then(|p| sig.checked_mul(p))
                    .and_then(|s| s.checked_add(u128::from(d - b'0')));
                fits = folded.is_some();
                sig = folded.unwrap_or(0);
            }
            zeros = 0;
        }
        if sig_len == 0 {
            return Ok(zero);
        }
        // Widths: string lengths fit i128 losslessly, and so does any sum of them with an i64.
        let (sig_len, trailing_zeros) = (sig_len as i128, zeros as i128);
        let k = i128::from(exp10) + 9 - frac_digits.len() as i128 + trailing_zeros;

        let magnitude = if k >= 0 {
            // D * 10^k has sig_len + k digits.
            if sig_len + k >= TOO_MANY_DIGITS || !fits {
                return Err(ParseError::Overflow);
            }
            i128::try_from(sig)
                .ok()
                .zip(pow10(k))
                .and_then(|(d, p)| d.checked_mul(p))
                .and_then(|v| v.checked_mul(1i128 << bin))
                .filter(|v| *v <= MAX_NANOS)
                .ok_or(ParseError::Overflow)?
        } else {
            let m = -k;
            // The integer part of D / 10^m has sig_len - m digits.
            if sig_len - m >= TOO_MANY_DIGITS {
                return Err(ParseError::Overflow);
            }
            // D does not end in 0, so it is not divisible by 10: with no binary factor the value
            // has a fraction of 1n. With one, D must be odd to be divisible by 5^m, and then
            // 2^m must divide 2^bin.
            match u32::try_from(m) {
                Ok(m) if m <= bin => {
                    let all = int_digits.len() + frac_digits.len();
                    let significant = int_digits.iter().chain(frac_digits).copied();
                    binary_fraction(significant.take(all - zeros), m, bin)?
                }
                _ => return Err(ParseError::Precision),
            }
        };
        Ok(Quantity {
            nanos: if negative { -magnitude } else { magnitude },
            format,
        })
    }

    /// Exact sum; `None` on overflow. The result keeps the "largest" input format.
    pub fn checked_add(self, other: Quantity) -> Option<Quantity> {
        Some(Quantity {
            nanos: self.nanos.checked_add(other.nanos)?,
            format: self.format.max(other.format),
        })
    }

    /// The value in nano-units.
    pub fn nanos(&self) -> i128 {
        self.nanos
    }

    /// True when the value is zero.
    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }
}

impl fmt::Display for Quantity {
    /// Canonical, exact text: binary suffixes when the inputs used them and the value
    /// divides evenly, otherwise the largest exact decimal form (`3860m`, `16`, `32G`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.nanos;
        if n == 0 {
            return f.write_str("0");
        }
        if n % NANO == 0 {
            let whole = n / NANO;
            if self.format == Format::BinarySi {
                for (suffix, shift) in [
                    ("Ei", 60),
                    ("Pi", 50),
                    ("Ti", 40),
                    ("Gi", 30),
                    ("Mi", 20),
                    ("Ki", 10),
                ] {
                    let unit = 1i128 << shift;
                    if whole % unit == 0 {
                        return write!(f, "{}{suffix}", whole / unit);
                    }
                }
            }
            if self.format == Format::DecimalSi {
                for (suffix, e) in [("E", 18), ("P", 15), ("T", 12), ("G", 9), ("M", 6), ("k", 3)] {
                    let unit = 10i128.pow(e);
                    if whole % unit == 0 {
                        return write!(f, "{}{suffix}", whole / unit);
                    }
                }
            }
            return write!(f, "{whole}");
        }
        for (suffix, unit) in [("m", 1_000_000i128), ("u", 1_000)] {
            if n % unit == 0 {
                return write!(f, "{}{suffix}", n / unit);
            }
        }
        write!(f, "{n}n")
    }
}

#[cfg(test)]
#[path = "../tests/support/quantity_strings.rs"]
mod quantity_strings;

#[cfg(test)]
mod properties {
    use super::quantity_strings::{MAX_NANOS, edits, mutate, near_quantity, quantity};
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Every exact rendering of a generated value parses to exactly that value.
        #[test]
        fn parses_every_exact_rendering((nanos, s) in quantity()) {
            prop_assert_eq!(Quantity::parse(&s).map(|q| q.nanos()), Ok(nanos), "{:?}", s);
        }

        /// Display writes something that parses back to the generated value.
        #[test]
        fn display_round_trips_generated_values((nanos, s) in quantity()) {
            let shown = Quantity::parse(&s).map(|q| q.to_string());
            prop_assert_eq!(shown.and_then(|t| Quantity::parse(&t)).map(|q| q.nanos()), Ok(nanos));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// A sum of parsed renderings equals the plain i128 sum of the generated values.
        #[test]
        fn sums_equal_the_sum_of_generated_values(items in prop::collection::vec(quantity(), 0..40)) {
            let expected: i128 = items.iter().map(|(n, _)| n).sum();
            let total = items.iter().try_fold(Quantity::ZERO, |acc, (_, s)| {
                Quantity::parse(s).ok().and_then(|q| acc.checked_add(q))
            });
            prop_assert_eq!(total.map(|t| t.nanos()), Some(expected));
        }

        /// Arbitrary text never panics, and whatever is accepted is within Kubernetes' range.
        #[test]
        fn garbage_never_panics(s in prop_oneof!["\\PC{0,40}", ".{0,40}", near_quantity()]) {
            if let Ok(q) = Quantity::parse(&s) {
                prop_assert!(q.nanos().abs() <= MAX_NANOS, "{s:?}");
            }
        }

        /// Nor does a valid rendering with a few edits.
        #[test]
        fn mutations_never_panic((_, s) in quantity(), edits in edits()) {
            let mutated = mutate(&s, &edits);
            if let Ok(q) = Quantity::parse(&mutated) {
                prop_assert!(q.nanos().abs() <= MAX_NANOS, "{mutated:?}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn sum(items: &[&str]) -> String {
        items
            .iter()
            .fold(Quantity::ZERO, |acc, s| acc.checked_add(q(s)).unwrap())
            .to_string()
    }

    // --- defects found in review; each failed on the first implementation ---

    #[test]
    fn trailing_and_leading_zeros_do_not_count_toward_overflow() {
        let forty_zeros = "0".repeat(40);
        assert_eq!(Quantity::parse(&format!("1.{forty_zeros}")), Ok(q("1")));
        assert_eq!(q(&format!("1.{forty_zeros}")).nanos(), 1_000_000_000);
        assert_eq!(q(&format!("{forty_zeros}{forty_zeros}1")).nanos(), 1_000_000_000);
        assert_eq!(
            q(&format!("{forty_zeros}2.5{forty_zeros}Gi")).nanos(),
            2_684_354_560_000_000_000
        );
    }

    #[test]
    fn zero_with_any_exponent_is_zero() {
        assert_eq!(q("0e-100").nanos(), 0);
        assert_eq!(q("-0.000e-2147483648").nanos(), 0);
        assert_eq!(q("0E99999999999").nanos(), 0);
        assert_eq!(q(&format!("0.{}n", "0".repeat(60))).nanos(), 0);
    }

    #[test]
    fn extreme_exponents_are_refused_without_panicking() {
        let tiny = format!("0.{}1e-2147483648", "0".repeat(30));
        assert_eq!(Quantity::parse(&tiny), Err(ParseError::Precision));
        assert_eq!(Quantity::parse("1e-2147483648"), Err(ParseError::Precision));
        assert_eq!(Quantity::parse("1e2147483647"), Err(ParseError::Overflow));
        assert_eq!(
            Quantity::parse("1e-9223372036854775808"),
            Err(ParseError::Precision)
        );
        assert_eq!(
            Quantity::parse("1e9223372036854775807"),
            Err(ParseError::Overflow)
        );
        // Kubernetes truncates this to e0 and would read 1; the written value is far finer than 1n.
        assert_eq!(Quantity::parse("1e-4294967296"), Err(ParseError::Precision));
        assert_eq!(Quantity::parse("1e4294967296"), Err(ParseError::Overflow));
    }

    #[test]
    fn values_up_to_the_kubernetes_maximum_parse_exactly() {
        assert_eq!(
            q("9223372036854775807").nanos(),
            9_223_372_036_854_775_807_000_000_000
        );
        assert_eq!(
            q("-9223372036854775807").nanos(),
            -9_223_372_036_854_775_807_000_000_000
        );
        assert_eq!(
            q("9.223372036854775807e18").nanos(),
            9_223_372_036_854_775_807_000_000_000
        );
        assert_eq!(
            q("9223372036854775807000m").nanos(),
            9_223_372_036_854_775_807_000_000_000
        );
        assert_eq!(q("7Ei").nanos(), 8_070_450_532_247_928_832_000_000_000);
        assert_eq!(q("1e18").nanos(), 1_000_000_000_000_000_000_000_000_000);
        // 2^-30 Gi = 1 unit: 30 fraction digits, more than fit any 64-bit mantissa.
        assert_eq!(q("0.000000000931322574615478515625Gi").nanos(), 1_000_000_000);
        // 1n written in Ei is 5^60 * 10^-69: 42 significant digits, more than an i128 holds.
        let one_nano_in_ei = "0.000000000000000000000000000867361737988403547205962240695953369140625Ei";
        assert_eq!(q(one_nano_in_ei).nanos(), 1);
    }

    #[test]
    fn beyond_the_kubernetes_maximum_is_refused() {
        assert_eq!(Quantity::parse("9223372036854775808"), Err(ParseError::Overflow));
        assert_eq!(Quantity::parse("-9223372036854775808"), Err(ParseError::Overflow));
        assert_eq!(Quantity::parse("8Ei"), Err(ParseError::Overflow));
        assert_eq!(
            Quantity::parse("9.223372036854775808E"),
            Err(ParseError::Overflow)
        );
        assert_eq!(
            Quantity::parse("9223372036854775807.000000001"),
            Err(ParseError::Overflow)
        );
        // Finer than 1n below the maximum: Kubernetes rounds up, we refuse.
        assert_eq!(
            Quantity::parse("7.999999999999999999Ei"),
            Err(ParseError::Precision)
        );
        assert_eq!(Quantity::parse("5e-10"), Err(ParseError::Precision));
        assert_eq!(Quantity::parse("1.0000000001"), Err(ParseError::Precision));
    }

    #[test]
    fn grammar_matches_kubernetes_parse_quantity() {
        // Accepted by Kubernetes: a bare sign, a bare point, "1.", "1.G", digit-less suffixes.
        for (s, nanos) in [
            ("-", 0),
            ("+", 0),
            (".", 0),
            ("-.", 0),
            ("G", 0),
            ("Ki", 0),
            ("e5", 0),
            ("e-9", 0),
            ("-0", 0),
            ("1.", 1_000_000_000),
            ("1.G", 1_000_000_000_000_000_000),
            ("1E", 1_000_000_000_000_000_000_000_000_000),
            ("1E-3", 1_000_000),
            ("1e+3", 1_000_000_000_000),
            ("+1e0003", 1_000_000_000_000),
            ("0.000000001", 1),
            ("1n", 1),
            ("1Ki", 1_024_000_000_000),
            ("00012.50m", 12_500_000),
        ] {
            assert_eq!(Quantity::parse(s).map(|q| q.nanos()), Ok(nanos), "{s:?}");
        }
        // Refused by Kubernetes: whitespace anywhere, digit-less values it cannot scan, bad suffixes.
        for s in [
            "", " 1", "\t1", "+ 1", "1.5.5", "e-10", "Pi", "-Ei", ".Ei", "-e-10", "abc",
        ] {
            assert_eq!(Quantity::parse(s), Err(ParseError::Syntax), "{s:?}");
        }
        for (s, tail) in [
            ("1 ", " "),
            ("1\n", "\n"),
            ("1e3 ", "e3 "),
            ("1Ki ", "Ki "),
            ("1e", "e"),
            ("1e+", "e+"),
            ("1ee3", "ee3"),
            ("1Gi1", "Gi1"),
            ("1K", "K"),
            ("1ei", "ei"),
            ("1-3", "-3"),
            ("--1", "-1"),
            ("1e9223372036854775808", "e9223372036854775808"),
        ] {
            assert_eq!(Quantity::parse(s), Err(ParseError::Suffix(tail.into())), "{s:?}");
        }
    }

    #[test]
    fn parses_the_forms_modelarts_sends() {
        assert_eq!(q("1930m").nanos(), 1_930_000_000);
        assert_eq!(q("1912Mi").nanos(), 1912 * (1 << 20) * NANO);
        assert_eq!(q("0.5").nanos(), 500_000_000);
        assert_eq!(q("16G").nanos(), 16_000_000_000 * NANO);
        assert_eq!(q("4Gi").nanos(), 4 * (1i128 << 30) * NANO);
        assert_eq!(q("8").nanos(), 8 * NANO);
        assert_eq!(q("1e3").nanos(), 1000 * NANO);
        assert_eq!(q("1.5Gi").nanos(), 3 * (1i128 << 29) * NANO);
        assert_eq!(q("-2").nanos(), -2 * NANO);
        assert_eq!(q(".5").nanos(), 500_000_000);
        assert_eq!(q("100n").nanos(), 100);
    }

    #[test]
    fn refuses_what_is_not_a_quantity() {
        assert_eq!(Quantity::parse(""), Err(ParseError::Syntax));
        assert_eq!(Quantity::parse("abc"), Err(ParseError::Syntax));
        assert_eq!(Quantity::parse("1.2.3"), Err(ParseError::Syntax));
        assert_eq!(
            Quantity::parse("8 cores"),
            Err(ParseError::Suffix(" cores".into()))
        );
        assert_eq!(Quantity::parse("4GB"), Err(ParseError::Suffix("GB".into())));
        assert_eq!(Quantity::parse("0.1n"), Err(ParseError::Precision));
        assert_eq!(Quantity::parse("1e40"), Err(ParseError::Overflow));
        assert_eq!(
            Quantity::parse("99999999999999999999999999999999999999999"),
            Err(ParseError::Overflow)
        );
    }

    #[test]
    fn sums_exactly_and_writes_canonically() {
        assert_eq!(sum(&["1930m", "1930m"]), "3860m");
        assert_eq!(sum(&["1912Mi", "1912Mi"]), "3824Mi");
        assert_eq!(sum(&["512Mi", "512Mi"]), "1Gi");
        assert_eq!(sum(&["8", "8"]), "16");
        assert_eq!(sum(&["0.5", "0.5"]), "1");
        assert_eq!(sum(&["0.5", "250m"]), "750m");
        assert_eq!(sum(&["16G", "16G"]), "32G");
        assert_eq!(sum(&["1Gi", "1"]), "1073741825");
        assert_eq!(sum(&["4Gi", "500M"]), "4794967296");
        assert_eq!(sum(&["1", "1n"]), "1000000001n");
        assert_eq!(sum(&[]), "0");
    }

    #[test]
    fn ten_thousand_millicores_do_not_drift() {
        let total = (0..10_000).fold(Quantity::ZERO, |acc, _| acc.checked_add(q("0.1")).unwrap());
        assert_eq!(total.to_string(), "1000");
        let total = (0..10_000).fold(Quantity::ZERO, |acc, _| acc.checked_add(q("3920m")).unwrap());
        assert_eq!(total.to_string(), "39200");
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "1930m",
            "1912Mi",
            "16",
            "32G",
            "4Gi",
            "750m",
            "1000000001n",
            "5u",
            "0",
        ] {
            assert_eq!(q(s).to_string(), s);
            assert_eq!(q(&q(s).to_string()), q(s));
        }
    }
}
