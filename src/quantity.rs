//! Exact Kubernetes quantity arithmetic for ModelArts resource strings.
//!
//! ModelArts reports every resource as a Kubernetes quantity string (`1930m`, `1912Mi`,
//! `8`). Summing thousands of them must not drift, so values are held as an integer
//! count of nano-units (`i128`): every quantity Kubernetes itself can represent
//! (it rounds to `1n`) fits exactly, and so does any realistic pool total.

use std::fmt;

const NANO: i128 = 1_000_000_000;

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
    /// Not of the form `<number><suffix>`.
    #[error("not a Kubernetes quantity")]
    Syntax,
    /// The suffix is not one Kubernetes knows.
    #[error("unknown suffix {0:?}")]
    Suffix(String),
    /// Finer than one nano-unit, which Kubernetes cannot represent either.
    #[error("more precise than 1n")]
    Precision,
    /// Out of range.
    #[error("too large")]
    Overflow,
}

fn pow(base: i128, exp: u32) -> Option<i128> {
    base.checked_pow(exp)
}

impl Quantity {
    /// Zero, written plainly.
    pub const ZERO: Quantity = Quantity {
        nanos: 0,
        format: Format::Plain,
    };

    /// Parses `1930m`, `1912Mi`, `0.5`, `16G`, `4Gi`, `1e3`, `+8`, `-1`, ...
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let s = input.trim();
        let (negative, s) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let num_end = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (number, suffix) = s.split_at(num_end);
        let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
        if (int_part.is_empty() && frac_part.is_empty()) || frac_part.contains('.') {
            return Err(ParseError::Syntax);
        }
        // mantissa = the digits without the point; value = mantissa / 10^frac_len * multiplier.
        // Folded digit by digit: this runs for every resource of every node.
        let mut mantissa: i128 = 0;
        for b in int_part.bytes().chain(frac_part.bytes()) {
            if !b.is_ascii_digit() {
                return Err(ParseError::Syntax);
            }
            mantissa = mantissa
                .checked_mul(10)
                .and_then(|m| m.checked_add(i128::from(b - b'0')))
                .ok_or(ParseError::Overflow)?;
        }
        let frac_len = u32::try_from(frac_part.len()).map_err(|_| ParseError::Precision)?;

        // (numerator multiplier, power of ten applied) expressed on nano-units.
        let (mult, exp10, format): (i128, i32, Format) = match suffix {
            "" => (1, 9, Format::Plain),
            "n" => (1, 0, Format::DecimalSi),
            "u" => (1, 3, Format::DecimalSi),
            "m" => (1, 6, Format::DecimalSi),
            "k" => (1, 12, Format::DecimalSi),
            "M" => (1, 15, Format::DecimalSi),
            "G" => (1, 18, Format::DecimalSi),
            "T" => (1, 21, Format::DecimalSi),
            "P" => (1, 24, Format::DecimalSi),
            "E" => (1, 27, Format::DecimalSi),
            "Ki" => (1 << 10, 9, Format::BinarySi),
            "Mi" => (1 << 20, 9, Format::BinarySi),
            "Gi" => (1 << 30, 9, Format::BinarySi),
            "Ti" => (1 << 40, 9, Format::BinarySi),
            "Pi" => (1 << 50, 9, Format::BinarySi),
            "Ei" => (1 << 60, 9, Format::BinarySi),
            other if other.starts_with(['e', 'E']) => {
                let e: i32 = other[1..]
                    .parse()
                    .map_err(|_| ParseError::Suffix(other.to_string()))?;
                (1, e.checked_add(9).ok_or(ParseError::Overflow)?, Format::Plain)
            }
            other => return Err(ParseError::Suffix(other.to_string())),
        };

        let exp = exp10 - i32::try_from(frac_len).map_err(|_| ParseError::Precision)?;
        let scaled = mantissa.checked_mul(mult).ok_or(ParseError::Overflow)?;
        let nanos = if exp >= 0 {
            let p = pow(10, exp.unsigned_abs()).ok_or(ParseError::Overflow)?;
            scaled.checked_mul(p).ok_or(ParseError::Overflow)?
        } else {
            let p = pow(10, exp.unsigned_abs()).ok_or(ParseError::Precision)?;
            if scaled % p != 0 {
                return Err(ParseError::Precision);
            }
            scaled / p
        };
        Ok(Quantity {
            nanos: if negative { -nanos } else { nanos },
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
