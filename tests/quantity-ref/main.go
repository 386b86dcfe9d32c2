// Command quantity-ref is the reference for tests/quantity_kubernetes.rs: it runs Kubernetes' own
// resource.ParseQuantity on one quantity string per stdin line ('\n'-separated, nothing trimmed)
// and prints one verdict per line, comparing what Kubernetes made of the string with the exact
// value the string denotes (computed here independently, with math/big):
//
//	ERR              ParseQuantity refused the string
//	EXACT <nanos>    accepted with exactly the written value, |value| <= 2^63-1 units; the value
//	                 in nano-units as a decimal integer
//	BIG              accepted with exactly the written value, but |value| > 2^63-1 units (Kubernetes
//	                 keeps such decimal values, yet no int64 accessor can return them)
//	ROUNDED          accepted, rounded away from zero to a multiple of 1n (Kubernetes' rule for
//	                 non-zero values finer than 1n); "ROUNDED BIG" when the result is also > 2^63-1
//	CAPPED           a binary-SI value above 2^63-1 units, capped by Kubernetes at that maximum;
//	                 "ROUNDED CAPPED" when it was also finer than 1n
//	WRONG <u> <s>    accepted as u*10^-s, which is none of the above: the written exponent was
//	                 truncated to int32, or Kubernetes' int32 scale arithmetic wrapped around
//	SLOW             not run: ParseQuantity would build a power of ten with more than slowDigits
//	                 digits (minutes and gigabytes for exponents near 2^31)
//
// Build: hack/quantity-ref.sh.
package main

import (
	"bufio"
	"fmt"
	"io"
	"math/big"
	"os"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
)

// slowDigits bounds the powers of ten ParseQuantity may build on a line before the helper
// declines to run it; 10^100000 takes milliseconds.
const slowDigits = 100_000

// expLimit saturates written exponents: 2^62 leaves room for any string length.
const expLimit = int64(1) << 62

var (
	bigTen   = big.NewInt(10)
	maxUnits = big.NewInt(1<<63 - 1)
	// maxNanos is Kubernetes' maximum, 2^63-1 units, in nano-units.
	maxNanos = new(big.Int).Mul(maxUnits, big.NewInt(1_000_000_000))
)

// dec is sign * mant * 10^exp with mant > 0 and not divisible by 10, or sign == 0 for zero:
// two values are equal exactly when their normalized decs are, and exp may be far too large
// to materialize the value.
type dec struct {
	sign int
	mant *big.Int
	exp  int64
}

func normalize(sign int, mant *big.Int, exp int64) dec {
	if mant.Sign() == 0 {
		return dec{}
	}
	m := new(big.Int).Abs(mant)
	q, r := new(big.Int), new(big.Int)
	for {
		q.QuoRem(m, bigTen, r)
		if r.Sign() != 0 {
			break
		}
		m.Set(q)
		exp++
	}
	if mant.Sign() < 0 {
		sign = -sign
	}
	return dec{sign: sign, mant: m, exp: exp}
}

func (d dec) equal(o dec) bool {
	if d.sign != o.sign {
		return false
	}
	return d.sign == 0 || (d.exp == o.exp && d.mant.Cmp(o.mant) == 0)
}

func digits(x *big.Int) int64 { return int64(len(x.String())) }

// roundUpToNano rounds d away from zero to a multiple of 10^-9, as ParseQuantity does.
func (d dec) roundUpToNano() dec {
	if d.sign == 0 || d.exp >= -9 {
		return d
	}
	cut := -9 - d.exp // decimal digits below 1n; mant has no trailing zeros, so the cut part is non-zero
	q := big.NewInt(0)
	if cut < digits(d.mant) {
		q.Quo(d.mant, new(big.Int).Exp(bigTen, big.NewInt(cut), nil))
	}
	return normalize(d.sign, q.Add(q, big.NewInt(1)), -9)
}

// nanos is d in nano-units when d is a multiple of 1n with |d| <= 2^63-1 units.
func (d dec) nanos() (*big.Int, bool) {
	if d.sign == 0 {
		return big.NewInt(0), true
	}
	if d.exp < -9 || digits(d.mant)+d.exp+9 > 29 {
		return nil, false
	}
	n := new(big.Int).Mul(d.mant, new(big.Int).Exp(bigTen, big.NewInt(d.exp+9), nil))
	if n.Cmp(maxNanos) > 0 {
		return nil, false
	}
	if d.sign < 0 {
		n.Neg(n)
	}
	return n, true
}

// parts splits a string ParseQuantity accepted: sign, integer digits, fraction digits, suffix.
func parts(s string) (neg bool, intPart, frac, suffix string) {
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	intPart = s[:i]
	if i < len(s) && s[i] == '.' {
		j := i + 1
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		frac, i = s[i+1:j], j
	}
	return neg, intPart, frac, s[i:]
}

var siExp = map[string]int64{"": 0, "n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
var binExp = map[string]uint{"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}

// suffixValue is the suffix's multiplier 10^exp10 * 2^bin, with the exponent at full int64 width.
func suffixValue(suffix string) (exp10 int64, bin uint, ok bool) {
	if e, found := siExp[suffix]; found {
		return e, 0, true
	}
	if b, found := binExp[suffix]; found {
		return 0, b, true
	}
	if len(suffix) > 1 && (suffix[0] == 'e' || suffix[0] == 'E') {
		e, err := strconv.ParseInt(suffix[1:], 10, 64)
		return e, 0, err == nil
	}
	return 0, 0, false
}

// written is the exact value the string denotes, for a string ParseQuantity accepted.
func written(s string) (dec, bool) {
	neg, intPart, frac, suffix := parts(s)
	exp10, bin, ok := suffixValue(suffix)
	if !ok {
		return dec{}, false
	}
	ds := strings.TrimLeft(intPart+frac, "0")
	trimmed := strings.TrimRight(ds, "0")
	if trimmed == "" {
		return dec{}, true
	}
	m, ok := new(big.Int).SetString(trimmed, 10)
	if !ok {
		return dec{}, false
	}
	m.Lsh(m, bin)
	sign := 1
	if neg {
		sign = -1
	}
	// Saturate far outside anything Kubernetes can hold (its scales are int32) so the sums
	// below cannot wrap; a saturated value still compares unequal and rounds to 1n.
	exp10 = max(min(exp10, expLimit), -expLimit)
	return normalize(sign, m, exp10-int64(len(frac))+int64(len(ds)-len(trimmed))), true
}

// slow predicts, with ParseQuantity's own int32 arithmetic (wrap-around included), whether its
// inf.Dec path would round through a power of ten with more than slowDigits digits.
func slow(s string) bool {
	_, intPart, frac, suffix := parts(s)
	exp10, bin, ok := suffixValue(suffix)
	if !ok || bin != 0 || strings.Trim(intPart+frac, "0") == "" {
		return false // refused, binary (exponent from the suffix table), or zero: never rounded
	}
	num := strings.TrimLeft(intPart, "0")
	if num == "" {
		num = "0"
	}
	exponent := int32(exp10)
	precision := int32(18) - int32(len(num)+len(frac))
	if precision >= 0 && exponent-int32(len(frac)) >= -9 {
		return false // int64 fast path: no rounding
	}
	scale := int32(len(frac)) + -exponent // amount.SetScale(amount.Scale() + Scale(exponent).infScale())
	shift := int32(9) - scale             // inf.Dec quoRem: shift = s - (x.Scale() - y.Scale())
	return shift > slowDigits || shift < -slowDigits
}

func verdict(s string) string {
	if slow(s) {
		return "SLOW"
	}
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return "ERR"
	}
	d := q.AsDec()
	got := normalize(1, d.UnscaledBig(), -int64(d.Scale()))
	want, ok := written(s)
	if !ok {
		return fmt.Sprintf("WRONG %s %d (accepted, but not by this helper's grammar)", d.UnscaledBig(), d.Scale())
	}
	if got.equal(want) {
		if n, ok := want.nanos(); ok {
			return "EXACT " + n.String()
		}
		if want.exp >= -9 {
			return "BIG"
		}
	}
	rounded := want.roundUpToNano()
	_, fits := rounded.nanos()
	if got.equal(rounded) {
		if fits {
			return "ROUNDED"
		}
		return "ROUNDED BIG"
	}
	_, _, _, suffix := parts(s)
	_, bin, _ := suffixValue(suffix)
	if bin != 0 && !fits && got.equal(dec{sign: rounded.sign, mant: maxUnits}) {
		if rounded.equal(want) {
			return "CAPPED"
		}
		return "ROUNDED CAPPED"
	}
	return fmt.Sprintf("WRONG %s %d", d.UnscaledBig(), d.Scale())
}

func main() {
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for {
		line, err := in.ReadString('\n')
		if err == io.EOF && line == "" {
			return
		}
		if err != nil && err != io.EOF {
			fmt.Fprintln(os.Stderr, "quantity-ref:", err)
			os.Exit(1)
		}
		fmt.Fprintln(out, verdict(strings.TrimSuffix(line, "\n")))
	}
}
