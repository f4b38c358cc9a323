//! The whole router under generated hostile input: never a panic, always a
//! well-formed, typed answer (see `common/fuzz.rs` for what is asserted).
//!
//! Seeds are the committed libFuzzer corpus (`shared/fuzz/corpus/router/`),
//! mutated by a deterministic generator. Bounded by `SLUICE_FUZZ_CASES`
//! (default 20,000 inputs: under a minute in a debug build here) or, for
//! `cargo xtask fuzz`, by `SLUICE_FUZZ_SECONDS`; `SLUICE_FUZZ_SEED` picks
//! the generator's seed (printed, so a failing run can be replayed).
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

mod common;

use common::fuzz::{self, Rng};
use common::Harness;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

fn corpus() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fuzz/corpus/router");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    seeds.sort();
    assert!(
        seeds.len() >= 10,
        "the router corpus is missing: {}",
        dir.display()
    );
    seeds
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Where a failing input is written, to replay with libFuzzer or this test.
fn save(input: &[u8]) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-failures");
    std::fs::create_dir_all(&dir).unwrap();
    let name = sluice_shared::parse::derive_message_id(input);
    let path = dir.join(name);
    std::fs::write(&path, input).unwrap();
    path
}

#[test]
fn the_router_answers_every_input_with_a_typed_well_formed_response() {
    let seeds = corpus();
    let seed = env_number("SLUICE_FUZZ_SEED").unwrap_or(0x5eed_5111ce);
    let deadline =
        env_number("SLUICE_FUZZ_SECONDS").map(|s| Instant::now() + Duration::from_secs(s));
    let cases = env_number("SLUICE_FUZZ_CASES").unwrap_or(20_000);
    eprintln!(
        "router fuzz: seed {seed:#x}, {} seeds, {}",
        seeds.len(),
        deadline.map_or(format!("{cases} cases"), |_| "until the deadline".into())
    );
    let h = Harness::new();
    let mut rng = Rng(seed);
    let mut n: u64 = 0;
    loop {
        let done = match deadline {
            Some(d) => Instant::now() >= d,
            None => n >= cases,
        };
        if done {
            break;
        }
        // Every seed as it is first, then mutants of them.
        let input = match seeds.get(n as usize) {
            Some(s) => s.clone(),
            None => {
                let parent = rng.below(seeds.len());
                fuzz::mutate(&mut rng, &seeds[parent])
            }
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| fuzz::run_one(&h, &input)));
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(why)) => panic!("input #{n} ({}): {why}", save(&input).display()),
            Err(_) => panic!(
                "input #{n} panicked the router ({})",
                save(&input).display()
            ),
        }
        n += 1;
    }
    eprintln!("router fuzz: {n} inputs, all answered well-formed");
    assert!(n >= seeds.len() as u64, "every seed ran");
}
