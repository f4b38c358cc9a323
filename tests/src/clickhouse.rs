//! A real ClickHouse server (Debian's clickhouse-server) on free loopback
//! ports, with its config and data under a temp dir.

use crate::{free_port, temp_dir, Process};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const SERVER: &str = "/usr/sbin/clickhouse-server";

/// A running ClickHouse.
pub struct ClickHouse {
    pub http_port: u16,
    _process: Process,
}

impl ClickHouse {
    /// Start a server and wait until it answers `/ping`.
    pub fn start() -> ClickHouse {
        assert!(
            Path::new(SERVER).exists(),
            "{SERVER} is missing: run `cargo xtask test` (it installs clickhouse-server)"
        );
        let dir = temp_dir("clickhouse");
        let (http_port, tcp_port) = (free_port(), free_port());
        let config = format!(
            r#"<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{d}/server.log</log><errorlog>{d}/error.log</errorlog></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{http_port}</http_port>
  <tcp_port>{tcp_port}</tcp_port>
  <path>{d}/data/</path>
  <tmp_path>{d}/tmp/</tmp_path>
  <user_files_path>{d}/user_files/</user_files_path>
  <format_schema_path>{d}/format_schemas/</format_schema_path>
  <users_config>{d}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>5368709</mark_cache_size>
  <max_concurrent_queries>20</max_concurrent_queries>
</yandex>
"#,
            d = dir.display()
        );
        let users = r#"<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>1000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
"#;
        std::fs::write(dir.join("config.xml"), config).expect("write config");
        std::fs::write(dir.join("users.xml"), users).expect("write users");
        let log = std::fs::File::create(dir.join("stdout.log")).expect("log");
        let mut process = Process::spawn(
            "clickhouse-server",
            Command::new(SERVER)
                .arg(format!(
                    "--config-file={}",
                    dir.join("config.xml").display()
                ))
                .current_dir(&dir)
                .stdout(log.try_clone().expect("log"))
                .stderr(log),
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        let ch = loop {
            process.assert_running();
            if http(http_port, "GET", "/ping", "")
                .is_some_and(|(s, b)| s == 200 && b.starts_with("Ok"))
            {
                break ClickHouse {
                    http_port,
                    _process: process,
                };
            }
            assert!(
                Instant::now() < deadline,
                "ClickHouse did not start; see {}",
                dir.display()
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        ch
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// Run a query; panics on an error answer.
    pub fn query(&self, sql: &str) -> String {
        let (status, body) = http(self.http_port, "POST", "/", sql).expect("ClickHouse answered");
        assert_eq!(status, 200, "ClickHouse query failed: {sql}\n{body}");
        body
    }
}

fn http(port: u16, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    s.write_all(req.as_bytes()).ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let (head, rest) = resp.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut data = rest;
        while let Some((size, tail)) = data.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).ok()?;
            if n == 0 {
                break;
            }
            out.push_str(tail.get(..n)?);
            data = tail.get(n + 2..)?;
        }
        out
    } else {
        rest.to_owned()
    };
    Some((status, body))
}
