//! Against a real server: nginx on loopback, started by the test with its own
//! config in a temporary directory (skipped, with the reason printed, when
//! nginx is not installed; scripts/test.sh installs it).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pulse_core::result::ErrorKind;

use super::util::*;

/// An nginx master process on 127.0.0.1:`port`, stopped on drop.
struct Nginx {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nginx_binary() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/local/sbin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

fn start_nginx() -> Option<Nginx> {
    let Some(bin) = nginx_binary() else {
        eprintln!("skipped: nginx not installed (scripts/test.sh installs nginx-light)");
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    std::fs::create_dir_all(dir.path().join("html")).unwrap();
    std::fs::write(dir.path().join("html/ok"), "pulse via nginx: ok\n").unwrap();
    // nginx binds it next.
    let port = free_port();
    let conf = format!(
        "daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  keepalive_timeout 0;
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    root {d}/html;
    location = /ok {{ default_type text/plain; }}
    location = /unavailable {{ return 503; }}
    location = /moved {{ return 302 /ok; }}
  }}
}}
"
    );
    let conf_path = dir.path().join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let child = Command::new(bin)
        .args(["-e", &format!("{d}/error.log"), "-p", &d.to_string(), "-c"])
        .arg(&conf_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let nginx = Nginx {
        child,
        port,
        _dir: dir,
    };
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "nginx did not start listening on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(nginx)
}

#[test]
fn scans_a_real_nginx() {
    let Some(nginx) = start_nginx() else { return };
    let base = format!("http://127.0.0.1:{}", nginx.port);
    let f = targets_file(&[
        format!("{base}/ok contains=\"via nginx\""),
        format!("{base}/missing"),
        format!("{base}/unavailable"),
        format!("{base}/moved"),
        format!("{base}/ok contains=\"apache\""),
        format!("tcp://127.0.0.1:{}", nginx.port),
    ]);
    let out = run(&["scan", "-t", f.path().to_str().unwrap(), "-o", "json"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let rep = report(&out);
    let kinds: Vec<_> = rep.results.iter().map(kind).collect();
    assert_eq!(
        kinds,
        vec![
            None,
            Some(ErrorKind::Status),
            Some(ErrorKind::Status),
            None,
            Some(ErrorKind::Body),
            None
        ]
    );
    assert_eq!(rep.results[1].http.as_ref().unwrap().status_code, Some(404));
    assert_eq!(rep.results[3].http.as_ref().unwrap().redirects, 1);
}

#[test]
fn two_thousand_probes_against_nginx_all_succeed() {
    let Some(nginx) = start_nginx() else { return };
    let lines: Vec<String> = (0..2000)
        .map(|i| format!("http://127.0.0.1:{}/ok?{i}", nginx.port))
        .collect();
    let f = targets_file(&lines);
    let t0 = Instant::now();
    let out = run(&[
        "scan",
        "-t",
        f.path().to_str().unwrap(),
        "-o",
        "json",
        "-w",
        "50",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rep = report(&out);
    assert_eq!(rep.results.len(), 2000);
    assert!(rep.results.iter().all(|r| r.success));
    eprintln!(
        "2000 probes of nginx with 50 workers (debug build): {:?}",
        t0.elapsed()
    );
}
