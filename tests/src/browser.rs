//! Headless Chromium (Debian's) driven through ChromeDriver.

use crate::{free_port, temp_dir, Process};
use fantoccini::{Client, ClientBuilder};
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};

/// A ChromeDriver process and one browser session with a fresh profile.
pub struct Browser {
    pub client: Client,
    _driver: Process,
}

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

impl Browser {
    /// Start ChromeDriver and a headless Chromium session (a new, empty profile).
    pub async fn start() -> Browser {
        for bin in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(bin).exists(),
                "{bin} is missing: run `cargo xtask test` (it installs chromium and chromium-driver)"
            );
        }
        let port = free_port();
        let mut driver = Process::spawn(
            "chromedriver",
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null()),
        );
        let profile = temp_dir("chromium");
        let caps = json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-quic", "--no-first-run",
                    "--disable-default-apps", "--disable-extensions",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }
        });
        let caps = match caps {
            Value::Object(m) => m,
            _ => unreachable!("capabilities are an object"),
        };
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            driver.assert_running();
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) if Instant::now() > deadline => {
                    panic!("cannot start a Chromium session: {e}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        Browser {
            client,
            _driver: driver,
        }
    }

    /// Run a script in the page and return its result.
    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Wait until the SDK on the current page has loaded.
    pub async fn wait_for_sdk(&self) {
        crate::eventually("the SDK to load", Duration::from_secs(20), || async {
            (self
                .js("return !!(window.sluice && window.sluice.loaded)")
                .await
                == Value::Bool(true))
            .then_some(())
        })
        .await
    }
}
