//! Fuzz the batch parser and everything downstream of it that sees raw input:
//! it must never panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_shared::parse::{parse_batch, parse_single};
use sluice_shared::{EventType, Limits, Timestamp};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let now = Timestamp(1_700_000_000_000);
    if let Ok(batch) = parse_batch(data, &limits) {
        for checked in batch.check(&limits, now) {
            if let Ok(valid) = checked.result {
                let _ = sluice_shared::consent::Consent::from_context(valid.event().context.as_ref());
            }
        }
    }
    if let Ok(single) = parse_single(data, EventType::Track, &limits) {
        let _ = single.check(&limits, now);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = sluice_shared::consent::tcf::parse(text);
        let _ = sluice_shared::consent::gpp::parse(text);
        let _ = Timestamp::parse(text);
    }
});
