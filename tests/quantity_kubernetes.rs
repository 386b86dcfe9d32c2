//! Differential test of `Quantity::parse` against Kubernetes itself: a few thousand strings go,
//! in one batch, through tests/quantity-ref (apimachinery's `resource.ParseQuantity` plus an
//! exact math/big reading of the string; its verdicts are documented in its main.go), and for
//! every string:
//! - Kubernetes refuses it ⇔ we refuse it as `Syntax` or `Suffix`;
//! - Kubernetes holds exactly the written value, within 2^63-1 units ⇔ we return that value;
//! - Kubernetes rounds it up to 1n ⇒ we refuse it as `Precision` (or `Overflow` when the value
//!   is beyond the maximum too); Kubernetes caps an exact value, or holds one beyond 2^63-1
//!   units ⇒ `Overflow`;
//! - Kubernetes reads a different value (an exponent truncated to int32, an int32 scale that
//!   wrapped around) or would take minutes over it ⇒ we refuse it as `Precision` or `Overflow`.
//!
//! Run: `MODELARTS_QUANTITY_REF=$(hack/quantity-ref.sh) cargo test --test quantity_kubernetes`.
//! Without `MODELARTS_QUANTITY_REF` the test prints SKIPPED and passes, unless
//! `MODELARTS_REQUIRE_QUANTITY_REF=1` (set by hack/test.sh), which turns the skip into a failure.

#[path = "support/quantity_strings.rs"]
mod quantity_strings;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use modelarts_operator::quantity::{ParseError, Quantity};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use quantity_strings::{edits, mutate, near_quantity, quantity};

const REF_ENV: &str = "MODELARTS_QUANTITY_REF";
const REQUIRE_ENV: &str = "MODELARTS_REQUIRE_QUANTITY_REF";

/// The reference binary, or `None` when the test should be skipped (panics instead when required).
fn reference(test: &str) -> Option<PathBuf> {
    let require = std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    match std::env::var_os(REF_ENV).filter(|v| !v.is_empty()) {
        Some(p) => {
            let p = PathBuf::from(p);
            assert!(
                p.exists(),
                "{test}: {REF_ENV}={} does not exist; run hack/quantity-ref.sh",
                p.display()
            );
            Some(p)
        }
        None if require => panic!("{test}: {REQUIRE_ENV}=1 but {REF_ENV} is unset; run hack/quantity-ref.sh"),
        None => {
            // Written straight to fd 2: libtest captures eprintln! of passing tests, and a skip must
            // be visible in every `cargo test` log.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: {REF_ENV} unset; run `{REF_ENV}=$(hack/quantity-ref.sh) cargo test --test quantity_kubernetes`"
            );
            None
        }
    }
}

/// Strings chosen by hand: the defects found in review, the limits, the grammar's quirks.
fn tricky() -> Vec<String> {
    let mut cases: Vec<String> = [
        "9223372036854775807",
        "-9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "8Ei",
        "-8Ei",
        "7.999999999999999999Ei",
        "7Ei",
        "8191Pi",
        "8192Pi",
        "9223372036854775807000m",
        "9223372036854775807000000000n",
        "9223372036854775807000000001n",
        "9223372036854775807.000000001",
        "9.223372036854775807E",
        "9.223372036854775808E",
        "1e18",
        "9.223372036854775807e18",
        "9.223372036854775808e18",
        "1e40",
        "0.1n",
        "1n",
        "0.000000001",
        "0.0000000001",
        "5e-10",
        "5e-9",
        "1E-3",
        "1e+3",
        "1e0003",
        ".",
        "+",
        "-",
        "-.",
        "+.",
        "",
        "1.",
        "1.G",
        ".5",
        ".G",
        "-.Ki",
        "G",
        "Ki",
        "Ti",
        "Pi",
        "Ei",
        "e5",
        "e-9",
        "e-10",
        "-e-10",
        "0e-10",
        "e4294967286",
        "e-4294967296",
        "1e",
        "1e+",
        "1e-",
        "1E",
        "1Ei",
        "1EI",
        "1K",
        "1ei",
        " 1",
        "1 ",
        "1\t",
        "1Gi1",
        "1ee3",
        "1Ee3",
        "1Ki",
        "-0",
        "+0",
        "0",
        "00",
        "-00.",
        "1.2.3",
        "--1",
        "+-1",
        "1-3",
        "8 cores",
        "4GB",
        "0e-100",
        "0E99999999999",
        "0e-9223372036854775808",
        "1e9223372036854775807",
        "1e-9223372036854775808",
        "1e9223372036854775808",
        "1e4294967296",
        "1e-4294967296",
        "1e-4294967305",
        "1e2147483647",
        "1e-2147483648",
        "1e2147483648",
        "0.01e-2147483648",
        "0.1e-2147483648",
        "-0.5e-2147483648",
        "123456789012345678.9e-2147483648",
        "1e-2000000000",
        "1234567890123456789e1000000000",
        "0.000000000931322574615478515625Gi",
        "0.000000000000000000000000000867361737988403547205962240695953369140625Ei",
        "0.000000000000000000000000000867361737988403547205962240695953369140624Ei",
        "1.5Gi",
        "1930m",
        "1912Mi",
        "100000000000000000000.0000000001",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // The defects: "1." and forty zeros; a tiny fraction with the smallest int32 exponent.
    cases.push(format!("1.{}", "0".repeat(40)));
    cases.push(format!("{}1", "0".repeat(100)));
    cases.push(format!("0.{}1e-2147483648", "0".repeat(30)));
    cases.push(format!("0.{}", "0".repeat(1000)));
    cases.push(format!("0.{}1", "0".repeat(1000)));
    cases.push(format!("1{}", "0".repeat(1000)));
    cases.push(format!("1{}e-1000", "0".repeat(1000)));
    cases.push(format!("{}e-100", "0".repeat(500)));
    cases.push(format!("9.{}Ei", "9".repeat(60)));
    cases
}

/// `count` values of `strategy` from a runner with a fixed seed, so every run sends the same strings.
fn sample<S: Strategy>(runner: &mut TestRunner, strategy: S, count: usize) -> Vec<S::Value> {
    (0..count)
        .map(|_| {
            strategy
                .new_tree(runner)
                .expect("strategies here never reject")
                .current()
        })
        .collect()
}

fn cases() -> Vec<String> {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[0x6b; 32]),
    );
    let mut all = tricky();
    all.extend(sample(&mut runner, quantity(), 2000).into_iter().map(|(_, s)| s));
    all.extend(sample(&mut runner, near_quantity(), 2000));
    let mutated = sample(&mut runner, (quantity(), edits()), 1000);
    all.extend(mutated.into_iter().map(|((_, s), e)| mutate(&s, &e)));
    // One string per line: a newline cannot be sent, and Kubernetes refuses it anyway.
    all.retain(|s| !s.contains('\n'));
    all
}

/// Runs the reference over `inputs` in one process and returns one verdict per input.
fn verdicts(bin: &PathBuf, inputs: &[String]) -> Vec<String> {
    let mut child = Command::new(bin)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
    let mut stdin = child.stdin.take().expect("piped stdin");
    let payload: String = inputs.iter().map(|s| format!("{s}\n")).collect();
    // Write from another thread: the reference answers as it reads, and a full stdout pipe
    // would otherwise stop both sides.
    let writer = std::thread::spawn(move || stdin.write_all(payload.as_bytes()));
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("piped stdout")
        .read_to_string(&mut out)
        .expect("reference output is UTF-8");
    writer.join().expect("writer thread").expect("write to reference");
    let status = child.wait().expect("wait for reference");
    assert!(status.success(), "{} exited with {status}", bin.display());
    let lines: Vec<String> = out.lines().map(str::to_string).collect();
    assert_eq!(lines.len(), inputs.len(), "one verdict per input line");
    lines
}

/// Whether our result is the one Kubernetes' verdict demands.
fn agrees(verdict: &str, ours: &Result<Quantity, ParseError>) -> bool {
    use ParseError::*;
    let kind = verdict.split(' ').next().unwrap_or_default();
    match (kind, ours) {
        ("ERR", Err(Syntax | Suffix(_))) => true,
        ("ERR", _) | (_, Err(Syntax | Suffix(_))) => false,
        ("EXACT", Ok(q)) => verdict.strip_prefix("EXACT ") == Some(q.nanos().to_string().as_str()),
        ("BIG" | "CAPPED", Err(Overflow)) => true,
        ("ROUNDED", Err(Precision)) => true,
        // Finer than 1n and beyond the maximum: either refusal is true.
        ("ROUNDED", Err(Overflow)) => verdict != "ROUNDED",
        ("WRONG" | "SLOW", Err(Precision | Overflow)) => true,
        _ => false,
    }
}

#[test]
fn parse_agrees_with_kubernetes() {
    let Some(bin) = reference("parse_agrees_with_kubernetes") else {
        return;
    };
    let inputs = cases();
    let verdicts = verdicts(&bin, &inputs);
    let mut tally: BTreeMap<&str, usize> = BTreeMap::new();
    let mut disagreements = Vec::new();
    for (input, verdict) in inputs.iter().zip(&verdicts) {
        *tally
            .entry(verdict.split(' ').next().unwrap_or_default())
            .or_default() += 1;
        let ours = Quantity::parse(input);
        if !agrees(verdict, &ours) {
            disagreements.push(format!("{input:?}: Kubernetes {verdict}, ours {ours:?}"));
        }
    }
    let _ = writeln!(
        std::io::stderr(),
        "parse_agrees_with_kubernetes: {} strings, Kubernetes verdicts {tally:?}, {} disagreements",
        inputs.len(),
        disagreements.len()
    );
    assert!(
        disagreements.is_empty(),
        "{} of {} strings disagree with Kubernetes:\n{}",
        disagreements.len(),
        inputs.len(),
        disagreements
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The sample must exercise every verdict that our refusals depend on.
    for kind in ["ERR", "EXACT", "BIG", "ROUNDED", "CAPPED", "WRONG", "SLOW"] {
        assert!(
            tally.contains_key(kind),
            "no string got the verdict {kind}: {tally:?}"
        );
    }
}
