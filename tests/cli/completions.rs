//! `pulse completions SHELL` and `pulse man`, tried in the real shells and
//! renderers: bash always; zsh and fish where installed (scripts/test.sh
//! installs them), skipped with the reason otherwise; the man pages through
//! groff with every warning on.

use std::process::{Command, Stdio};

use super::util::*;

fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("skipped: {tool} is not installed");
    }
    found
}

/// The completion script for `shell`, written to a file.
fn script(shell: &str, dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let out = run(&["completions", shell]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!out.stdout.is_empty());
    let path = dir.join(name);
    std::fs::write(&path, &out.stdout).unwrap();
    path
}

/// Run `sh_cmd` with `shell -c` and give its stdout, asserting success.
fn shell(shell: &str, args: &[&str], sh_cmd: &str) -> String {
    let out = Command::new(shell)
        .args(args)
        .arg("-c")
        .arg(sh_cmd)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{shell} failed: {}\n{}",
        stderr(&out),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Sourced in bash, the script's function completes the subcommands, a
/// subcommand's flags and `--output`'s values, and not the hidden
/// responder.
#[test]
fn bash_completes_subcommands_flags_and_values() {
    let dir = tempfile::tempdir().unwrap();
    let file = script("bash", dir.path(), "pulse.bash");
    let complete = |words: &[&str]| {
        let cword = words.len() - 1;
        let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
        let cmd = format!(
            "source '{}' && complete -p pulse >/dev/null && COMP_WORDS=({}); COMP_CWORD={cword}; \
             _pulse pulse '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            file.display(),
            quoted.join(" "),
            words[cword],
            words[cword - 1],
        );
        shell("bash", &["--norc", "--noprofile"], &cmd)
    };
    let subcommands = complete(&["pulse", ""]);
    for want in [
        "scan",
        "check",
        "serve",
        "farm",
        "compare",
        "completions",
        "man",
    ] {
        assert!(
            subcommands.lines().any(|l| l == want),
            "no {want}: {subcommands}"
        );
    }
    assert!(
        !subcommands.contains("farm-icmp-responder"),
        "{subcommands}"
    );
    assert_eq!(complete(&["pulse", "sc"]).trim(), "scan");
    let flags = complete(&["pulse", "scan", "--"]);
    assert!(flags.lines().any(|l| l == "--targets"), "{flags}");
    let values = complete(&["pulse", "scan", "--output", ""]);
    let values: Vec<&str> = values.lines().collect();
    assert_eq!(values, ["table", "json", "jsonl", "yaml", "prom"]);
}

/// zsh's compinit finds the script on `fpath` as the completion of
/// `pulse`, the script loads, and its command list offers the subcommands
/// (zsh's `_describe` stubbed to print what it is given).
#[test]
fn zsh_loads_the_completion_for_pulse() {
    if !have("zsh") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    script("zsh", dir.path(), "_pulse");
    let out = shell(
        "zsh",
        &["-f"],
        &format!(
            "fpath=('{}' $fpath); autoload -U compinit; compinit -u -D; \
             print -r -- \"for pulse: $_comps[pulse]\"; source '{}/_pulse' || exit 1; \
             _describe() {{ print -rl -- \"${{(@P)4}}\" }}; _pulse_commands",
            dir.path().display(),
            dir.path().display()
        ),
    );
    assert!(out.contains("for pulse: _pulse"), "{out}");
    for want in ["scan:", "check:", "serve:", "farm:", "compare:", "man:"] {
        assert!(
            out.lines().any(|l| l.starts_with(want)),
            "no {want} in {out}"
        );
    }
}

/// fish completes `pulse sc` to scan and `--output` to its values.
#[test]
fn fish_completes_subcommands_and_values() {
    if !have("fish") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = script("fish", dir.path(), "pulse.fish");
    let out = shell(
        "fish",
        &["--no-config"],
        &format!(
            "source '{}'; complete -C 'pulse sc'; echo SPLIT; complete -C 'pulse scan --output '",
            file.display()
        ),
    );
    let (subcommands, values) = out.split_once("SPLIT\n").unwrap();
    assert!(subcommands.starts_with("scan\t"), "{out}");
    for want in ["table\t", "json\t", "jsonl\t", "yaml\t", "prom\t"] {
        assert!(
            values.lines().any(|l| l.starts_with(want)),
            "no {want} in {out}"
        );
    }
}

/// An unknown shell is a usage error naming the ones there are.
#[test]
fn an_unknown_shell_is_a_usage_error() {
    let out = run(&["completions", "tcsh"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("bash"), "{}", stderr(&out));
}

/// groff renders `page` with every warning enabled and none given (`-k`:
/// through preconv, as man does, since the help holds UTF-8), and the text
/// has `want` in it.
fn renders_cleanly(page: &[u8], want: &[&str]) {
    let mut child = Command::new("groff")
        // -P-cbou: plain text, no bold or underline by overstriking.
        .args(["-k", "-man", "-Tutf8", "-ww", "-P-cbou"])
        .env("LC_ALL", "C.UTF-8")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, page).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "", "groff warned");
    let text = String::from_utf8_lossy(&out.stdout);
    for w in want {
        assert!(text.contains(w), "no {w} in\n{text}");
    }
}

/// `pulse man` prints pulse.1, which groff renders without a warning;
/// `--out DIR` writes it and one page per visible command.
#[test]
fn man_pages_render_without_warnings() {
    if !have("groff") {
        return;
    }
    let out = run(&["man"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        out.stdout.starts_with(b".ie"),
        "roff: {:?}",
        &out.stdout[..20]
    );
    renders_cleanly(
        &out.stdout,
        &["NAME", "SYNOPSIS", "SUBCOMMANDS", "pulse-scan(1)"],
    );

    let dir = tempfile::tempdir().unwrap();
    let out = run(&["man", "--out", dir.path().to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mut pages: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    assert_eq!(
        pages,
        [
            "pulse-check.1",
            "pulse-compare.1",
            "pulse-completions.1",
            "pulse-farm.1",
            "pulse-man.1",
            "pulse-scan.1",
            "pulse-serve.1",
            "pulse.1"
        ]
    );
    for page in &pages {
        let text = std::fs::read(dir.path().join(page)).unwrap();
        renders_cleanly(&text, &["NAME", "SYNOPSIS"]);
    }
    let scan = std::fs::read(dir.path().join("pulse-scan.1")).unwrap();
    renders_cleanly(&scan, &["--targets", "jsonl", "--icmp-count"]);
}
