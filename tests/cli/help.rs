//! What `--help`, the flags and the messages tell a user: the `--output`
//! values, `--runtime` only where it chooses something, `-v` against `-vv`,
//! the targets file with or without `--targets`, an empty file, and what
//! plain `pulse farm` prints.

use std::net::TcpListener;
use std::process::Command;

use super::util::*;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `scan --help` lists every `--output` value with what it is.
#[test]
fn scan_help_lists_the_output_values() {
    let out = run(&["scan", "--help"]);
    assert_eq!(code(&out), 0);
    let help = stdout(&out);
    for value in ["table:", "json:", "jsonl:", "yaml:", "prom:"] {
        assert!(
            help.contains(&format!("- {value}")),
            "no {value} in\n{help}"
        );
    }
    // Short help (-h) lists them too.
    let short = stdout(&run(&["scan", "-h"]));
    assert!(short.contains("table, json, jsonl, yaml, prom"), "{short}");
}

/// `--runtime` is offered by scan, check and serve, not by farm (which runs
/// no probes) or compare (which takes `--runtimes`); given to those two it
/// is refused, naming what to use, rather than silently ignored.
#[test]
fn runtime_is_offered_only_where_it_chooses_the_model() {
    for command in ["scan", "check", "serve"] {
        let help = stdout(&run(&[command, "--help"]));
        assert!(help.contains("--runtime <RUNTIME>"), "{command}: {help}");
    }
    let farm = stdout(&run(&["farm", "--help"]));
    assert!(!farm.contains("--runtime"), "{farm}");
    assert!(!farm.contains("--stack"), "{farm}");
    let compare = stdout(&run(&["compare", "--help"]));
    assert!(!compare.contains("--runtime <"), "{compare}");
    assert!(compare.contains("--runtimes <RUNTIMES>"), "{compare}");

    let out = run(&["--runtime", "smol", "compare", "--scenario", "smoke"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("use --runtimes smol"),
        "{}",
        stderr(&out)
    );
    let out = run(&["farm", "--runtime", "rayon"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the farm runs no probes"),
        "{}",
        stderr(&out)
    );
    // Where it chooses, it works in either position.
    let f = targets_file(&["tcp://127.0.0.1:1".into()]);
    let p = f.path().to_str().unwrap();
    for args in [
        vec!["--runtime", "smol", "scan", "-t", p, "-o", "json"],
        vec!["scan", "-t", p, "--runtime", "smol", "-o", "json"],
    ] {
        assert_eq!(report(&run(&args)).pulse.runtime, "smol", "{args:?}");
    }
}

/// `-v` gives the run's figures, `-vv` also each probe's result as it
/// comes in; without RUST_LOG, which overrides both.
#[test]
fn vv_logs_each_result_and_v_does_not() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("tcp://{}", listener.local_addr().unwrap());
    let f = targets_file(std::slice::from_ref(&target));
    let p = f.path().to_str().unwrap();
    let v = run(&["-v", "scan", "-t", p, "-o", "json"]);
    let vv = run(&["-vv", "scan", "-t", p, "-o", "json"]);
    assert_eq!((code(&v), code(&vv)), (0, 0));
    let line = format!("line 1 {target}: up in ");
    assert!(stderr(&v).contains("50 workers"), "{}", stderr(&v));
    assert!(!stderr(&v).contains(&line), "{}", stderr(&v));
    assert!(stderr(&vv).contains("50 workers"), "{}", stderr(&vv));
    assert!(stderr(&vv).contains(&line), "{}", stderr(&vv));
    // The libraries stay quiet at -vv (their debug logs come with -vvv).
    assert!(!stderr(&vv).contains("rustls"), "{}", stderr(&vv));
}

/// `pulse scan FILE` is `pulse scan --targets FILE`; both at once, or
/// neither, is a usage error that names `--targets`.
#[test]
fn the_targets_file_may_be_given_without_targets() {
    let f = targets_file(&["tcp://127.0.0.1:1".into()]);
    let p = f.path().to_str().unwrap();
    let positional = run(&["scan", p, "-o", "json"]);
    assert_eq!(code(&positional), 1, "{}", stderr(&positional));
    let flagged = run(&["scan", "--targets", p, "-o", "json"]);
    let kinds = |o| report(o).results.iter().map(kind).collect::<Vec<_>>();
    assert_eq!(kinds(&positional), kinds(&flagged));

    let both = run(&["scan", p, "--targets", p]);
    assert_eq!(code(&both), 2);
    assert!(
        stderr(&both).contains("cannot be used with"),
        "{}",
        stderr(&both)
    );
    let neither = run(&["scan"]);
    assert_eq!(code(&neither), 2);
    assert!(
        stderr(&neither).contains("--targets <FILE>|FILE"),
        "{}",
        stderr(&neither)
    );

    let serve = run(&["serve", p, "--check-config"]);
    assert_eq!(code(&serve), 0, "{}", stderr(&serve));
    assert!(
        stdout(&serve).contains("valid: 1 targets"),
        "{}",
        stdout(&serve)
    );
}

/// An empty targets file (no bytes, only comments, empty stdin) says there
/// are no targets, not that a line is bad.
#[test]
fn an_empty_targets_file_is_no_targets_not_a_bad_line() {
    let empty = tempfile::NamedTempFile::new().unwrap();
    let comments = targets_file(&["# only a comment".into(), String::new()]);
    for path in [empty.path(), comments.path()] {
        let out = run(&["scan", "-t", path.to_str().unwrap()]);
        assert_eq!(code(&out), 2);
        let err = stderr(&out);
        assert!(
            err.contains("no targets (the file is empty or holds only comments)"),
            "{err}"
        );
        assert!(!err.contains("bad target line"), "{err}");
    }
    let out = run_with_stdin(&["scan", "-t", "-"], b"");
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("<stdin>: no targets"),
        "{}",
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains("bad target line"),
        "{}",
        stderr(&out)
    );
}

/// Plain `pulse farm`: piped, it prints the targets file (as scripts take
/// it); on a terminal, hosts per group and how to get the file, not 2,000
/// lines. Run under `timeout -s INT`, as Ctrl-C would stop it.
#[test]
fn plain_farm_prints_targets_when_piped_and_a_summary_on_a_terminal() {
    let bin = env!("CARGO_BIN_EXE_pulse");
    let piped = Command::new("timeout")
        .args([
            "--preserve-status",
            "-s",
            "INT",
            "3",
            bin,
            "farm",
            "--scenario",
            "smoke",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&piped), 0, "{}", stderr(&piped));
    let targets = stdout(&piped);
    let lines = targets.lines().filter(|l| !l.starts_with('#')).count();
    assert!(lines > 20, "the targets file on stdout:\n{targets}");
    assert!(targets.contains("http://127."), "{targets}");

    let have_script = Command::new("sh")
        .args(["-c", "command -v script"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_script {
        eprintln!("skipped the terminal half: needs script(1) (util-linux) for a pseudo-terminal");
        return;
    }
    // script(1) gives pulse a pseudo-terminal as stdout and stderr.
    let tty = Command::new("script")
        .args([
            "-qec",
            &format!("timeout --preserve-status -s INT 3 {bin} farm --scenario smoke"),
            "/dev/null",
        ])
        .output()
        .unwrap();
    assert_eq!(code(&tty), 0, "{}", stdout(&tty));
    let shown = stdout(&tty);
    assert!(
        !shown.contains("http://127."),
        "target lines on a terminal:\n{shown}"
    );
    assert!(shown.contains("--write-targets FILE"), "{shown}");
    assert!(shown.contains("Ctrl-C to stop"), "{shown}");
    let groups = shown
        .lines()
        .filter(|l| l.starts_with("  ") && l.ends_with(" hosts"))
        .count();
    assert!(groups >= 3, "hosts per group:\n{shown}");
    assert!(shown.contains("farm stopping (used "), "{shown}");
}
