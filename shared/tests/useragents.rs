//! Real user agents give the browser, OS, device type and bot verdict in
//! `fixtures/user-agents/agents.tsv`, and the ported isbot list flags isbot's
//! own bot fixtures and none of its browser fixtures.
#![cfg(feature = "enrich")]
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use sluice_shared::enrich::bot::{self, BotReason};
use sluice_shared::enrich::useragent::{self, ClientHints};

fn fixture(name: &str) -> String {
    let full = format!(
        "{}/tests/fixtures/user-agents/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

#[test]
fn every_agent_in_the_table_gets_its_browser_os_device_and_bot_verdict() {
    let table = fixture("agents.tsv");
    let rows: Vec<Vec<&str>> = table
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split('\t').collect())
        .collect();
    assert_eq!(rows.len(), 58, "every row read");
    let mut wrong = Vec::new();
    for row in &rows {
        let [browser, browser_version, os, os_version, device, verdict, ua] = row[..] else {
            panic!("7 columns: {row:?}");
        };
        let got = useragent::parse(ua, &ClientHints::default());
        let reason = bot::classify(Some(ua), None).map_or("-", BotReason::code);
        let got = [
            got.browser.name.as_str(),
            got.browser.version.as_str(),
            got.os.name.as_str(),
            got.os.version.as_str(),
            got.device_type,
            reason,
        ];
        let want = [browser, browser_version, os, os_version, device, verdict];
        if got != want {
            wrong.push(format!("{ua}\n   got {got:?}\n  want {want:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn isbots_own_bot_fixtures_are_all_flagged() {
    let bots = fixture("bots.txt");
    let missed: Vec<&str> = bots
        .lines()
        .filter(|ua| !ua.is_empty())
        .filter(|ua| bot::classify(Some(ua), None).is_none())
        .collect();
    assert_eq!(bots.lines().count(), 436);
    assert!(missed.is_empty(), "not flagged: {missed:#?}");
}

#[test]
fn isbots_own_browser_fixtures_are_never_flagged() {
    let browsers = fixture("browsers.txt");
    let flagged: Vec<&str> = browsers
        .lines()
        .filter(|ua| !ua.is_empty())
        .filter(|ua| bot::classify(Some(ua), None).is_some())
        .collect();
    assert_eq!(browsers.lines().count(), 553);
    assert!(flagged.is_empty(), "flagged: {flagged:#?}");
}

#[test]
fn a_bot_on_the_list_is_a_bot_device_whatever_the_client_hints_say() {
    let hints = ClientHints::from_headers(None, Some("?1"), Some("\"Android\""));
    let ua = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)";
    assert_eq!(useragent::parse(ua, &hints).device_type, "bot");
}
