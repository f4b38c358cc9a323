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

/// Wraps `fetch` and `sendBeacon` to log the ids of events that left the page:
/// fetches once the collector answered 2xx (gzipped bodies are decompressed
/// first), beacons once the browser queued them.
const RECORD_SENDS: &str = r#"
(function () {
  window.__sent = [];
  var ids = function (body) {
    try { return JSON.parse(body).batch.map(function (e) { return e.messageId; }); } catch (e) { return []; }
  };
  var text = function (body) {
    if (typeof body === "string") return Promise.resolve(body);
    return new Response(new Blob([body]).stream().pipeThrough(new DecompressionStream("gzip"))).text();
  };
  var f = window.fetch;
  window.fetch = function (url, init) {
    var body = init && init.body;
    return f.apply(this, arguments).then(function (r) {
      if (!r.ok || body == null) return r;
      return text(body).then(function (t) {
        Array.prototype.push.apply(window.__sent, ids(t));
        return r;
      });
    });
  };
  var b = navigator.sendBeacon.bind(navigator);
  navigator.sendBeacon = function (url, body) {
    var ok = b(url, body);
    if (ok) Array.prototype.push.apply(window.__sent, ids(body));
    return ok;
  };
})();
"#;

/// A CDP command sent through ChromeDriver's `goog/cdp/execute`.
#[derive(Debug)]
struct Cdp {
    cmd: String,
    params: Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({"cmd": self.cmd, "params": self.params}).to_string()),
        )
    }
}
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

    /// Run a Chrome DevTools Protocol command in the current tab (via ChromeDriver).
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.client
            .issue_cmd(Cdp {
                cmd: cmd.to_owned(),
                params,
            })
            .await
            .unwrap_or_else(|e| panic!("CDP {cmd} failed: {e}"))
    }

    /// Take the current tab off the network (or back on).
    pub async fn offline(&self, offline: bool) {
        self.cdp("Network.enable", json!({})).await;
        self.cdp(
            "Network.emulateNetworkConditions",
            json!({"offline": offline, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}),
        )
        .await;
    }

    /// Record, in every page of this tab, the messageIds the page sent and the
    /// collector accepted (`window.__sent`), by wrapping fetch and sendBeacon.
    pub async fn record_sends(&self) {
        self.cdp("Page.enable", json!({})).await;
        self.cdp(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({"source": RECORD_SENDS}),
        )
        .await;
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
