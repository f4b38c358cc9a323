//! Native micro-measure of server-side enrichment, per event.
//!
//! `cargo bench -p sluice-shared --features enrich --bench enrich`
//!
//! - `enrich, batch of 100, one user agent`: the accept path's case, one
//!   request's facts shared by its events (the user agent is parsed once).
//! - `enrich, every event a new user agent`: the worst case, parsing each time.
//! - `useragent::parse` and `bot::classify` alone, over a table of real agents.
//!
//! Nothing is asserted: figures are printed, CPU time per item (median of
//! several rounds).
#![allow(clippy::unwrap_used)] // a bench binary: a panic is a failed run

use serde_json::json;
use sluice_shared::enrich::{self, bot, ip::IpPolicy, useragent, Geo, RequestFacts};
use sluice_shared::{Event, EventType};
use std::hint::black_box;
use std::time::Instant;

const AGENTS: [&str; 10] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "python-requests/2.31.0",
];

fn event(i: usize) -> Event {
    let kind = if i.is_multiple_of(3) {
        EventType::Page
    } else {
        EventType::Track
    };
    let mut e = Event::new(kind, format!("m-{i}"));
    e.anonymous_id = Some("5f2b8e1c-5c3e-4b8a-9d2c-4b6f3f7e4a8b".into());
    e.event = (kind == EventType::Track).then(|| "Product Added".into());
    e.context = Some(
        json!({
            "page": {
                "path": "/products/42",
                "url": "https://shop.example.com/products/42?utm_source=news&utm_medium=email",
                "referrer": "https://www.google.com/search?q=blue+mug",
                "title": "Blue Mug",
            },
            "locale": "en-GB",
            "library": {"name": "analytics.js", "version": "npm:next-1.70.0"},
        })
        .as_object()
        .cloned()
        .unwrap(),
    );
    e
}

fn facts(ua: &str) -> RequestFacts {
    RequestFacts {
        ip: Some("203.0.113.77".parse().unwrap()),
        user_agent: Some(ua.to_owned()),
        hints: useragent::ClientHints::from_headers(
            Some(r#""Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99""#),
            Some("?0"),
            Some("\"Windows\""),
        ),
        geo: Geo {
            country: Some("DE".into()),
            city: Some("Berlin".into()),
            asn: Some(3320),
            ..Geo::default()
        },
        ..RequestFacts::default()
    }
}

/// This thread's CPU time in ns (Linux's scheduler statistics), so machines
/// shared with other builds still measure the work; wall time elsewhere.
fn cpu_ns(wall: Instant) -> u128 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| wall.elapsed().as_nanos())
}

/// Median CPU ns per item over `rounds` rounds: `setup` (untimed) makes a
/// round's input, `run` handles its `items` items.
fn measure<T>(rounds: usize, items: usize, setup: impl Fn() -> T, run: impl Fn(&mut T)) -> f64 {
    let epoch = Instant::now();
    let mut per: Vec<f64> = (0..rounds)
        .map(|_| {
            let mut input = setup();
            let start = cpu_ns(epoch);
            run(&mut input);
            let spent = cpu_ns(epoch) - start;
            drop(input); // untimed
            spent as f64 / items as f64
        })
        .collect();
    per.sort_by(f64::total_cmp);
    per[per.len() / 2]
}

fn main() {
    // Warm up lazily built tables (the worker builds them once per isolate).
    black_box(bot::classify(Some(AGENTS[0]), None));
    black_box(useragent::parse(
        AGENTS[0],
        &useragent::ClientHints::default(),
    ));

    // `enrich <word>` runs only the measures whose label has the word (for a profiler).
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |label: &str| only.is_empty() || only.iter().any(|w| label.contains(w.as_str()));
    let template: Vec<Event> = (0..100).map(event).collect();
    let batches = 100;
    let pool = || -> Vec<Vec<Event>> { (0..batches).map(|_| template.clone()).collect() };
    let hints = useragent::ClientHints::default();
    let n = 10_000;
    println!("| measure | CPU ns per item |\n| --- | --- |");
    let label = "enrich, batch of 100, one user agent";
    if wanted(label) {
        let ns = measure(7, batches * 100, pool, |pool| {
            for batch in pool.iter_mut() {
                let f = facts(AGENTS[0]);
                for e in batch.iter_mut() {
                    black_box(enrich::enrich(e, &f, IpPolicy::Truncate));
                }
            }
        });
        println!("| {label} | {ns:.0} |");
    }
    let label = "enrich, every event a new user agent";
    if wanted(label) {
        let ns = measure(7, batches * 100, pool, |pool| {
            for batch in pool.iter_mut() {
                for (i, e) in batch.iter_mut().enumerate() {
                    let f = facts(AGENTS[i % AGENTS.len()]);
                    black_box(enrich::enrich(e, &f, IpPolicy::Truncate));
                }
            }
        });
        println!("| {label} | {ns:.0} |");
    }
    let label = "useragent::parse";
    if wanted(label) {
        let ns = measure(
            7,
            n,
            || (),
            |_| {
                for i in 0..n {
                    black_box(useragent::parse(
                        black_box(AGENTS[i % AGENTS.len()]),
                        &hints,
                    ));
                }
            },
        );
        println!("| {label} | {ns:.0} |");
    }
    let label = "bot::classify";
    if wanted(label) {
        let ns = measure(
            7,
            n,
            || (),
            |_| {
                for i in 0..n {
                    black_box(bot::classify(
                        black_box(Some(AGENTS[i % AGENTS.len()])),
                        None,
                    ));
                }
            },
        );
        println!("| {label} | {ns:.0} |");
    }
}
