//! The two workers on workerd (`wrangler dev -c collector.toml -c
//! backend.toml`, one workerd), with their own local storage.
//!
//! `wrangler dev` gives its command-line vars to the first worker only, so
//! each stack writes its own copies of the two configurations (paths made
//! absolute) beside a `.dev.vars` holding the repository's local vars with
//! the test's on top: both workers read the same configuration, as in
//! production.

use crate::{free_port, root, temp_dir, Process};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// Status, headers (lower-case names) and body of an HTTP response.
pub type Reply = (u16, Vec<(String, String)>, Vec<u8>);

/// Both workers running with fresh local D1 / Queue state.
pub struct Stack {
    pub port: u16,
    pub state: PathBuf,
    /// This stack's copies of collector.toml and backend.toml, and its `.dev.vars`.
    configs: PathBuf,
    process: Process,
}

/// The workers' configurations in `edge-worker/`, the primary (which gets the port) first.
const CONFIGS: [&str; 2] = ["collector.toml", "backend.toml"];

/// The backend worker's name (backend.toml), for the triggers only it has.
pub const BACKEND: &str = "sluice-backend";

fn wrangler() -> Command {
    let bin = root().join("node_modules/.bin/wrangler");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo xtask test` (it installs and builds everything first)",
        bin.display()
    );
    let mut cmd = Command::new(bin);
    cmd.current_dir(root().join("edge-worker"))
        .env("WRANGLER_SEND_METRICS", "false")
        // No `Request.cf` sample fetched from workers.cloudflare.com: the
        // tests reach nothing off loopback.
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
        // Nor a version check against npm (wrangler's banner makes it).
        .env("WRANGLER_HIDE_BANNER", "true")
        .env("NO_UPDATE_NOTIFIER", "1")
        .env("CI", "1");
    cmd
}

impl Stack {
    /// A fresh state dir with the migrations applied, `wrangler dev` started on it, waiting until it serves.
    pub fn start() -> Stack {
        Stack::start_with(&[])
    }

    /// Like [`Stack::start`], overriding vars of the configurations (e.g. `SLUICE_SOURCES`), for both workers.
    pub fn start_with(vars: &[(&str, &str)]) -> Stack {
        Stack::start_with_args(vars, &[])
    }

    /// Like [`Stack::start_with`], with extra `wrangler dev` arguments.
    pub fn start_with_args(vars: &[(&str, &str)], args: &[&str]) -> Stack {
        Stack::start_configured(vars, args, &|_, text| text)
    }

    /// Like [`Stack::start_with_args`], each configuration (`collector.toml`,
    /// `backend.toml`) first changed by `edit(name, text)`.
    pub fn start_configured(
        vars: &[(&str, &str)],
        args: &[&str],
        edit: &dyn Fn(&str, String) -> String,
    ) -> Stack {
        for built in [
            "edge-worker/build/collector/worker/shim.mjs",
            "edge-worker/build/backend/worker/shim.mjs",
            "dist/site/sluice/v1/sluice.js",
        ] {
            assert!(
                root().join(built).exists(),
                "{built} is missing: run `cargo xtask test`, which builds the SDK and workers first"
            );
        }
        let state = temp_dir("stack");
        let configs = state.join("config");
        write_configs(&configs, edit);
        write_vars(&configs, vars);
        copy_dir(migrated(), &state);
        let (port, process) = launch(&state, &configs, args);
        Stack {
            port,
            state,
            configs,
            process,
        }
    }

    /// Kill the workers at once (SIGKILL to wrangler and workerd, as a crash
    /// would), then start them again on the same persisted state (D1, R2,
    /// Durable Objects) with these vars. The local Queue keeps its messages
    /// in workerd's memory, so what it held is gone after this.
    pub fn restart_with(&mut self, vars: &[(&str, &str)]) {
        self.process.kill();
        write_vars(&self.configs, vars);
        let (port, process) = launch(&self.state, &self.configs, &[]);
        self.port = port;
        self.process = process;
    }

    /// Run the backend's cron handler now, as its trigger `cron` would;
    /// returns the HTTP status of the trigger (200: it ran).
    ///
    /// Miniflare runs a worker's handler from `/cdn-cgi/handler/scheduled`
    /// with `MF-Route-Override: <worker>` naming which, but only at the
    /// runtime's own entry: `wrangler dev`'s proxy in front of it takes that
    /// header for itself (and `--test-scheduled` reaches the first worker
    /// only). So the trigger goes straight to the runtime: the process
    /// that holds the backend's debug port (from this stack's dev
    /// registry), on each of its other listening ports until one runs it.
    pub fn run_cron(&self, cron: &str) -> u16 {
        let path = format!("/cdn-cgi/handler/scheduled?cron={}", cron.replace(' ', "+"));
        let entry: Value = serde_json::from_slice(
            &std::fs::read(self.state.join("registry").join(BACKEND))
                .expect("the backend is in this stack's dev registry"),
        )
        .expect("a dev registry entry is JSON");
        let debug_port: u16 = entry["debugPortAddress"]
            .as_str()
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .expect("the registry names the runtime's debug port");
        let ports = crate::listening_ports_beside(debug_port);
        assert!(!ports.is_empty(), "no listening port beside {debug_port}");
        let mut answers = Vec::new();
        for port in ports {
            let answer = raw_http(port, "GET", &path, &[("mf-route-override", BACKEND)], b"");
            match answer {
                Some((200, _)) => return 200,
                other => answers.push((
                    port,
                    other.map(|(s, b)| (s, String::from_utf8_lossy(&b).into_owned())),
                )),
            }
        }
        panic!("no port of the runtime ran the backend's cron handler: {answers:?}");
    }

    /// What the worker has logged so far (wrangler's and the worker's console).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.state.join("wrangler.log")).unwrap_or_default()
    }

    /// The ids every dedup shard has committed, as rows `{id, done: 1, at_ms}`
    /// (the Durable Objects' SQLite files, read directly). Claims are held in
    /// the shards' memory, so an id being written is not here yet.
    pub fn dedup_seen(&self) -> Vec<Value> {
        python_json(DEDUP_QUERY, &[&self.state.display().to_string()])
    }

    /// The sum of a counter over days and sources (0 if never counted).
    pub fn counter(&self, name: &str) -> i64 {
        let sql = format!(
            "SELECT COALESCE(SUM(count), 0) AS n FROM counters WHERE name = '{}'",
            name.replace('\'', "''")
        );
        self.d1(&sql)
            .first()
            .and_then(|r| r["n"].as_i64())
            .unwrap_or(0)
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Call the admin API with a bearer token; returns status and the JSON
    /// body (`null` if it is not JSON).
    pub fn admin(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let auth = format!("Bearer {token}");
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let (status, out) = self.request(
            method,
            path,
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            bytes.as_bytes(),
        );
        (status, serde_json::from_slice(&out).unwrap_or(Value::Null))
    }

    /// Send a request over real HTTP; returns status and body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, Vec<u8>) {
        let (status, _, body) = self.request_full(method, path, headers, body);
        (status, body)
    }

    /// Send a request over real HTTP; returns status, headers (lower-case names) and body.
    pub fn request_full(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        raw_http_full(self.port, method, path, headers, body)
            .unwrap_or_else(|| panic!("{method} {path}: no HTTP response"))
    }

    /// POST JSON and parse the JSON answer.
    pub fn post_json(&self, path: &str, headers: &[(&str, &str)], body: &Value) -> (u16, Value) {
        let (status, bytes) = self.request("POST", path, headers, body.to_string().as_bytes());
        let value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "{path}: answer is not JSON: {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        (status, value)
    }

    /// Rows of a SQL query against the local D1 database: the SQLite file
    /// workerd keeps it in, read directly (much faster than `wrangler d1 execute`).
    pub fn d1(&self, sql: &str) -> Vec<Value> {
        python_json(D1_QUERY, &[&self.state.display().to_string(), sql])
    }

    /// Run `wrangler <args…>` against this stack's local state (e.g. `r2 object put`).
    pub fn wrangler(&self, args: &[&str]) {
        let out = wrangler()
            .args(args)
            .arg("-c")
            .arg(self.configs.join("backend.toml"))
            .arg("--local")
            .arg("--persist-to")
            .arg(&self.state)
            .output()
            .expect("run wrangler");
        assert!(
            out.status.success(),
            "wrangler {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Write to the local D1 database directly (test setup only).
    pub fn d1_write(&self, sql: &str) {
        python_json(D1_WRITE, &[&self.state.display().to_string(), sql]);
    }

    /// Copy every object of the local R2 bucket into `dir`, under its key;
    /// returns the keys.
    pub fn export_r2(&self, bucket: &str, dir: &std::path::Path) -> Vec<String> {
        let keys = python_json(
            R2_EXPORT,
            &[
                &self.state.display().to_string(),
                bucket,
                &dir.display().to_string(),
            ],
        );
        keys.into_iter()
            .filter_map(|k| k.as_str().map(str::to_owned))
            .collect()
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }
}

/// Local state with every D1 migration applied, made once per test process
/// by `wrangler d1 migrations apply --local` (each stack's state starts as a
/// copy of it: a stack starts sooner, and `wrangler` runs once per binary
/// instead of once per stack). The migration is set-up, not what a test
/// checks: an attempt that fails is retried in a fresh directory, twice, and
/// the last failure is reported. A broken migration fails all three.
fn migrated() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let mut failure = String::new();
        for attempt in 1..=3 {
            let dir = temp_dir("migrated");
            let configs = dir.join("config");
            let state = dir.join("state");
            write_configs(&configs, &|_, text| text);
            write_vars(&configs, &[]);
            let migrated = wrangler()
                .args(["d1", "migrations", "apply", "DB", "--local", "-c"])
                .arg(configs.join("backend.toml"))
                .arg("--persist-to")
                .arg(&state)
                .output()
                .expect("run wrangler d1 migrations apply");
            if migrated.status.success() {
                return state;
            }
            failure = String::from_utf8_lossy(&migrated.stderr).into_owned();
            eprintln!("wrangler d1 migrations apply failed (attempt {attempt} of 3): {failure}");
        }
        panic!("migrations failed: {failure}")
    })
}

/// Copy the directory `from` into `to` (created if missing), recursively.
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("create the state dir");
    for entry in std::fs::read_dir(from).expect("read the migrated state") {
        let entry = entry.expect("a directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy the migrated state");
        }
    }
}

/// This stack's copies of the configurations, every path in them absolute
/// (they are not beside the build), each changed by `edit`.
fn write_configs(dir: &std::path::Path, edit: &dyn Fn(&str, String) -> String) {
    std::fs::create_dir_all(dir).expect("create the config dir");
    let worker = root().join("edge-worker");
    let site = root().join("dist/site");
    for name in CONFIGS {
        let text = std::fs::read_to_string(worker.join(name))
            .unwrap_or_else(|e| panic!("read edge-worker/{name}: {e}"));
        let absolute = |rel: &str| format!("\"{}\"", worker.join(rel).display());
        let mut rewritten = Vec::new();
        for line in text.lines() {
            let (key, value) = line.split_once(" = ").unwrap_or((line, ""));
            let value = value.trim_matches('"');
            rewritten.push(match key {
                "main" | "migrations_dir" => format!("{key} = {}", absolute(value)),
                // The demo shop too: production serves only dist/public.
                "directory" => format!("directory = \"{}\"", site.display()),
                _ => line.to_owned(),
            });
        }
        let text = edit(name, rewritten.join("\n") + "\n");
        std::fs::write(dir.join(name), text).expect("write a configuration");
    }
}

/// `.dev.vars` beside this stack's configurations: the repository's local
/// vars (`edge-worker/.dev.vars`), the test's `vars` in place of any of the
/// same name. Both workers read it.
fn write_vars(dir: &std::path::Path, vars: &[(&str, &str)]) {
    let base = std::fs::read_to_string(root().join("edge-worker/.dev.vars"))
        .expect("read edge-worker/.dev.vars");
    let mut out: Vec<String> = base
        .lines()
        .filter(|l| {
            let key = l.split_once('=').map_or("", |(k, _)| k.trim());
            !vars.iter().any(|(k, _)| *k == key)
        })
        .map(str::to_owned)
        .collect();
    for (key, value) in vars {
        // Quoted literally, line breaks included (dotenv): with a quote
        // the value does not contain.
        let quote = ['\'', '`', '"']
            .into_iter()
            .find(|q| !value.contains(*q))
            .unwrap_or_else(|| panic!("{key}: a value with every kind of quote"));
        out.push(format!("{key}={quote}{value}{quote}"));
    }
    std::fs::write(dir.join(".dev.vars"), out.join("\n") + "\n").expect("write .dev.vars");
}

/// Start `wrangler dev` with both workers on `state` (already migrated) and
/// wait until the collector serves. Its output is appended to `state/wrangler.log`.
fn launch(state: &std::path::Path, configs: &std::path::Path, args: &[&str]) -> (u16, Process) {
    let port = free_port();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(state.join("wrangler.log"))
        .expect("open log");
    let mut command = wrangler();
    // Its own dev registry: the workers of other stacks (and other
    // checkouts) on the machine register the same names there.
    command.env("WRANGLER_REGISTRY_PATH", state.join("registry"));
    command.arg("dev");
    for name in CONFIGS {
        command.arg("-c").arg(configs.join(name));
    }
    let mut process = Process::spawn(
        "wrangler dev",
        command
            .args([
                "--ip",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--persist-to",
            ])
            .arg(state)
            .args(args)
            // Its own inspector port: workerd fails to start if another
            // wrangler dev on the machine holds the default 9229.
            .args(["--inspector-port", &free_port().to_string()])
            .arg("--show-interactive-dev-session=false")
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        process.assert_running();
        // The collector answers 405 for GET on the ingestion route once it
        // is up, and the backend (through it) 401 to the admin API without
        // a token (500 if a configuration is broken: fail fast with its message).
        let probes = [("/v1/batch", 405), ("/admin/v1/status", 401)];
        let answers: Vec<Option<(u16, Vec<u8>)>> = probes
            .iter()
            .map(|(path, _)| raw_http(port, "GET", path, &[], b""))
            .collect();
        if let Some(Some((_, body))) = answers.iter().find(|a| matches!(a, Some((500, _)))) {
            panic!(
                "a worker reports a broken configuration: {}",
                String::from_utf8_lossy(body)
            );
        }
        let ready = probes
            .iter()
            .zip(&answers)
            .all(|((_, want), got)| matches!(got, Some((status, _)) if status == want));
        if ready {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "wrangler dev did not become ready; see {}",
            state.join("wrangler.log").display()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    (port, process)
}

fn raw_http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<(u16, Vec<u8>)> {
    raw_http_full(port, method, path, headers, body).map(|(s, _, b)| (s, b))
}

/// Query local D1's SQLite file: argv = state dir, SQL. Prints rows as JSON objects.
const D1_QUERY: &str = r#"
import glob, json, sqlite3, sys
files = [f for f in glob.glob(sys.argv[1] + "/v3/d1/miniflare-D1DatabaseObject/*.sqlite") if not f.endswith("metadata.sqlite")]
if not files:
    print("[]"); sys.exit(0)
db = sqlite3.connect(files[0], timeout=30)
db.row_factory = sqlite3.Row
print(json.dumps([dict(r) for r in db.execute(sys.argv[2])]))
"#;

/// Every dedup shard's committed ids: argv = state dir. Prints rows as JSON objects.
const DEDUP_QUERY: &str = r#"
import glob, json, sqlite3, sys
rows = []
for f in glob.glob(sys.argv[1] + "/v3/do/*Dedup*/*.sqlite"):
    if f.endswith("metadata.sqlite"):
        continue
    db = sqlite3.connect(f, timeout=30)
    db.row_factory = sqlite3.Row
    try:
        for r in db.execute("SELECT at_ms, ids FROM committed"):
            rows += [{"id": i, "done": 1, "at_ms": r["at_ms"]} for i in json.loads(r["ids"])]
    except sqlite3.OperationalError:
        pass
print(json.dumps(sorted(rows, key=lambda r: r["id"])))
"#;

/// Write to local D1's SQLite file: argv = state dir, SQL.
const D1_WRITE: &str = r#"
import glob, sqlite3, sys
files = [f for f in glob.glob(sys.argv[1] + "/v3/d1/miniflare-D1DatabaseObject/*.sqlite") if not f.endswith("metadata.sqlite")]
db = sqlite3.connect(files[0], timeout=30)
db.execute(sys.argv[2])
db.commit()
print("[]")
"#;

/// Export local R2 objects: argv = state dir, bucket, target dir. Prints the keys.
const R2_EXPORT: &str = r#"
import glob, json, os, shutil, sqlite3, sys
state, bucket, out = sys.argv[1:4]
keys = []
for f in glob.glob(state + "/v3/r2/miniflare-R2BucketObject/*.sqlite"):
    if f.endswith("metadata.sqlite"):
        continue
    db = sqlite3.connect(f, timeout=30)
    try:
        objects = db.execute("SELECT key, blob_id FROM _mf_objects").fetchall()
    except sqlite3.OperationalError:
        continue  # the bucket's file exists before its first object (and table)
    for key, blob in objects:
        src = os.path.join(state, "v3", "r2", bucket, "blobs", blob)
        if not os.path.exists(src):
            continue
        dst = os.path.join(out, key)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(src, dst)
        keys.append(key)
print(json.dumps(sorted(keys)))
"#;

/// Run a Python snippet that prints JSON, and parse it.
pub fn python_json(script: &str, args: &[&str]) -> Vec<Value> {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    parsed.as_array().cloned().unwrap_or_default()
}

/// Rows of a DuckDB query (DuckDB from PyPI, installed by `cargo xtask test`).
pub fn duckdb(sql: &str) -> Vec<Value> {
    python_json(
        "import duckdb, json, sys\nr = duckdb.sql(sys.argv[1])\ncols = r.columns\nprint(json.dumps([dict(zip(cols, row)) for row in r.fetchall()], default=str))",
        &[sql],
    )
}

/// What `wrangler dev`'s proxy answers (503, `Retry-After: 0`) when the
/// runtime behind it was replaced while a request other than GET or HEAD
/// was in flight (it retries GET and HEAD itself). Seen right after a start
/// on a loaded machine; the workers never answer it.
const PROXY_RESTARTED: &[u8] = b"Your worker restarted mid-request.";

/// Minimal HTTP/1.1 client for loopback: one request, `Connection: close`;
/// sent again (a few times) when wrangler's proxy answers that the runtime
/// restarted under it, as it asks, and a GET or HEAD that got no answer.
fn raw_http_full(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<Reply> {
    let idempotent = method == "GET" || method == "HEAD";
    let mut reply = raw_http_once(port, method, path, headers, body);
    for _ in 0..5 {
        match &reply {
            Some((503, _, b)) if b.starts_with(PROXY_RESTARTED) => {
                reply = raw_http_once(port, method, path, headers, body);
            }
            // No answer at all (the runtime was replaced under the proxy and
            // the connection dropped): a GET or HEAD is asked again.
            None if idempotent => reply = raw_http_once(port, method, path, headers, body),
            _ => break,
        }
    }
    reply
}

fn raw_http_once(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<Reply> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    // A test may address another host (e.g. to check what only works on localhost).
    let host = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("host"))
        .map_or_else(|| format!("127.0.0.1:{port}"), |(_, v)| (*v).to_owned());
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("host"))
    {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).ok()?;
    stream.write_all(body).ok()?;
    let resp = read_response(&mut stream)?;
    let head_end = resp.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&resp[..head_end]).into_owned();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let response_headers: Vec<(String, String)> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = resp[head_end + 4..].to_vec();
    if response_headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Some((status, response_headers, body))
}

/// Read one response: up to `Content-Length`, the last chunk, or EOF.
/// Not simply to EOF: wrangler's proxy keeps the connection open for its
/// keep-alive timeout (5 s) even after `Connection: close`.
fn read_response(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut resp = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        if let Some(head_end) = resp.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&resp[..head_end]).to_ascii_lowercase();
            let body = &resp[head_end + 4..];
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            let status_line = head.lines().next().unwrap_or_default();
            let no_body = [" 204 ", " 304 "].iter().any(|s| status_line.contains(s));
            let done = match length {
                _ if no_body => true,
                Some(n) => body.len() >= n,
                None if head.contains("transfer-encoding: chunked") => {
                    body == b"0\r\n\r\n" || body.ends_with(b"\r\n0\r\n\r\n")
                }
                None => false,
            };
            if done {
                return Some(resp);
            }
        }
        match stream.read(&mut buf) {
            Ok(0) => return (!resp.is_empty()).then_some(resp),
            Ok(n) => resp.extend_from_slice(&buf[..n]),
            Err(_) => return (!resp.is_empty()).then_some(resp),
        }
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..line_end]).trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = line_end + 2;
        out.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = &data[(start + size + 2).min(data.len())..];
    }
    out
}
