//! Quantity strings whose exact value is known from the generator, for the property tests in
//! src/quantity.rs and the differential test against Kubernetes (tests/quantity_kubernetes.rs).
//!
//! A value is drawn as an integer count of nano-units and then written out in one of the many
//! forms Kubernetes accepts (decimal and binary SI suffixes, exponents, signs, leading zeros,
//! trailing fraction zeros, `1.` and `.5`), always exactly: a binary-suffix form carries the
//! full decimal expansion of `n / 2^b`. Nothing here calls the parser under test.
//!
//! Include it with `#[path = "support/quantity_strings.rs"] mod quantity_strings;`.
#![allow(dead_code)]

use proptest::prelude::*;

/// Kubernetes' largest magnitude, 2^63-1 units, in nano-units.
pub const MAX_NANOS: i128 = 9_223_372_036_854_775_807_000_000_000;

/// The unit a value is written in.
#[derive(Debug, Clone, Copy)]
pub enum Unit {
    /// A decimal SI suffix worth 10^exp units (`""` included).
    Si(&'static str, i32),
    /// A binary SI suffix worth 2^exp units.
    Binary(&'static str, u32),
    /// `<mantissa>e<shift>`: `e` or `E`, an optional `+` on a positive shift, `pad` zeros in front
    /// of the shift's digits.
    Exponent {
        shift: i32,
        upper: bool,
        plus: bool,
        pad: usize,
    },
}

/// Everything about a rendering except the value.
#[derive(Debug, Clone)]
pub struct Style {
    pub unit: Unit,
    /// Zeros written before the integer part.
    pub lead: usize,
    /// Zeros written after the fraction.
    pub trail: usize,
    /// Write `1.` rather than `1` when there is no fraction.
    pub bare_point: bool,
    /// Write `.5` rather than `0.5`.
    pub no_int_zero: bool,
    /// Sign of a non-negative value: none, `+`, or (for zero only) `-`.
    pub sign: u8,
}

const SI: [(&str, i32); 10] = [
    ("n", -9),
    ("u", -6),
    ("m", -3),
    ("", 0),
    ("k", 3),
    ("M", 6),
    ("G", 9),
    ("T", 12),
    ("P", 15),
    ("E", 18),
];
const BINARY: [(&str, u32); 6] = [
    ("Ki", 10),
    ("Mi", 20),
    ("Gi", 30),
    ("Ti", 40),
    ("Pi", 50),
    ("Ei", 60),
];

/// Values in nano-units within ±(2^63-1) units, weighted toward the interesting ones: whole
/// units, powers of two (exact in binary suffixes), tiny values and the extremes.
pub fn nanos() -> impl Strategy<Value = i128> {
    prop_oneof![
        4 => -MAX_NANOS..=MAX_NANOS,
        2 => any::<i64>().prop_map(|u| i128::from(u.max(-i64::MAX)) * 1_000_000_000),
        2 => (any::<i16>(), 0u32..=47).prop_map(|(x, b)| (i128::from(x) << b) * 1_000_000_000),
        2 => (any::<i16>(), 0u32..=60).prop_map(|(x, b)| i128::from(x) << b),
        2 => -2_000_000_000i128..=2_000_000_000,
        1 => Just(MAX_NANOS),
        1 => Just(-MAX_NANOS),
        1 => Just(0i128),
    ]
}

/// Renderings, in proportion: decimal SI suffixes, binary suffixes, exponents.
pub fn style() -> impl Strategy<Value = Style> {
    let unit = prop_oneof![
        3 => prop::sample::select(SI.to_vec()).prop_map(|(s, e)| Unit::Si(s, e)),
        2 => prop::sample::select(BINARY.to_vec()).prop_map(|(s, b)| Unit::Binary(s, b)),
        2 => (-40i32..=40, any::<bool>(), any::<bool>(), prop_oneof![3 => Just(0usize), 1 => 0usize..4])
            .prop_map(|(shift, upper, plus, pad)| Unit::Exponent { shift, upper, plus, pad }),
    ];
    let zeros = || prop_oneof![4 => Just(0usize), 2 => 0usize..4, 1 => 0usize..80];
    (unit, zeros(), zeros(), any::<bool>(), any::<bool>(), 0u8..3).prop_map(
        |(unit, lead, trail, bare_point, no_int_zero, sign)| Style {
            unit,
            lead,
            trail,
            bare_point,
            no_int_zero,
            sign,
        },
    )
}

/// A value and one exact rendering of it.
pub fn quantity() -> impl Strategy<Value = (i128, String)> {
    (nanos(), style()).prop_map(|(n, style)| {
        let s = render(n, &style);
        (n, s)
    })
}

/// `digits * 5^times`, in decimal, by schoolbook multiplication (values reach ~10^70).
fn times_five_pow(digits: &str, times: u32) -> String {
    let mut le: Vec<u8> = digits.bytes().rev().map(|b| b - b'0').collect();
    for _ in 0..times {
        let mut carry = 0u8;
        for d in le.iter_mut() {
            let v = *d * 5 + carry;
            *d = v % 10;
            carry = v / 10;
        }
        if carry > 0 {
            le.push(carry);
        }
    }
    while le.len() > 1 && le.last() == Some(&0) {
        le.pop();
    }
    le.iter().rev().map(|d| char::from(b'0' + d)).collect()
}

/// Writes `n` nano-units exactly in `style`.
pub fn render(n: i128, style: &Style) -> String {
    let magnitude = n.unsigned_abs().to_string();
    // |n| = digits * 10^-point units-of-the-suffix.
    let (digits, point, suffix) = match style.unit {
        Unit::Si(suffix, exp) => (magnitude, 9 + exp, suffix.to_string()),
        Unit::Binary(suffix, b) => {
            // n / (2^b * 10^9) = n * 5^b / 10^(b+9)
            let b_i32 = i32::try_from(b).expect("binary exponents are at most 60");
            (times_five_pow(&magnitude, b), b_i32 + 9, suffix.to_string())
        }
        Unit::Exponent {
            shift,
            upper,
            plus,
            pad,
        } => {
            let e = if upper { 'E' } else { 'e' };
            let sign = if shift < 0 {
                "-"
            } else if plus {
                "+"
            } else {
                ""
            };
            let zeros = "0".repeat(pad);
            (
                magnitude,
                9 + shift,
                format!("{e}{sign}{zeros}{}", shift.unsigned_abs()),
            )
        }
    };
    let (mut int, frac) = if point <= 0 {
        let zeros = usize::try_from(-point).expect("non-negative");
        (format!("{digits}{}", "0".repeat(zeros)), String::new())
    } else {
        let point = usize::try_from(point).expect("positive");
        let padded = format!("{}{digits}", "0".repeat(point.saturating_sub(digits.len())));
        let (i, f) = padded.split_at(padded.len() - point);
        (i.to_string(), f.to_string())
    };
    if int.is_empty() && !style.no_int_zero {
        int.push('0');
    }
    let int = format!("{}{int}", "0".repeat(style.lead));
    let frac = format!("{frac}{}", "0".repeat(style.trail));
    let mut number = if !frac.is_empty() {
        format!("{int}.{frac}")
    } else if style.bare_point {
        format!("{int}.")
    } else {
        int
    };
    if number.is_empty() || number == "." {
        // Never digit-less: that is a grammar corner, tested on its own.
        number = "0".to_string();
    }
    let sign = match (n < 0, style.sign) {
        (true, _) => "-",
        (false, 1) => "+",
        (false, 2) if n == 0 => "-",
        _ => "",
    };
    format!("{sign}{number}{suffix}")
}

/// Strings over the quantity alphabet that often look almost right: the grammar's corners.
pub fn near_quantity() -> impl Strategy<Value = String> {
    prop_oneof![
        "[+-]?[0-9]{0,22}(\\.[0-9]{0,22})?([numkMGTPE]|[KMGTPE]i|[eE][+-]?[0-9]{1,3})?",
        "[+-]?0{0,3}[1-9]{0,3}0{0,30}\\.?0{0,30}[1-9]?(n|u|m|Ki|Ei|e-[0-9]{1,2})?",
        "[-+.0-9eEinumkKMGTP]{0,12}",
        "[-+. 0-9eEiKMGx\t]{0,8}",
    ]
}

/// One edit to a string: insert, delete or replace at a position (taken modulo the length).
#[derive(Debug, Clone)]
pub enum Edit {
    Insert(usize, char),
    Delete(usize),
    Replace(usize, char),
}

/// Edits that favour characters with a meaning in the grammar.
pub fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let ch = prop_oneof![
        3 => prop::sample::select("0123456789.+-eEinumkKMGTP ".chars().collect::<Vec<_>>()),
        1 => any::<char>(),
    ];
    let edit = prop_oneof![
        (any::<usize>(), ch.clone()).prop_map(|(i, c)| Edit::Insert(i, c)),
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), ch).prop_map(|(i, c)| Edit::Replace(i, c)),
    ];
    prop::collection::vec(edit, 1..4)
}

/// `s` with `edits` applied.
pub fn mutate(s: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    for edit in edits {
        let len = chars.len();
        match *edit {
            Edit::Insert(i, c) => chars.insert(i % (len + 1), c),
            Edit::Delete(i) if len > 0 => {
                chars.remove(i % len);
            }
            Edit::Replace(i, c) if len > 0 => chars[i % len] = c,
            _ => {}
        }
    }
    chars.into_iter().collect()
}
