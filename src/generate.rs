//! `pulse completions SHELL` and `pulse man`: text generated from the same
//! clap definitions that parse the command line ([`crate::command`]), so a
//! new flag is completed and documented the moment it exists.

use std::io::{self, Write};
use std::path::Path;

use crate::{EXIT_CLOSED_STDOUT, EXIT_SETUP, EXIT_UP, fail};

/// Print the completion script for `shell` (clap_complete's).
pub(crate) fn completions(shell: clap_complete::Shell) -> u8 {
    // The same command without its hidden subcommands (the farm's ICMP
    // responder), which bash and zsh would otherwise offer.
    let full = crate::command();
    let mut visible = clap::Command::new("pulse")
        .version(env!("CARGO_PKG_VERSION"))
        .args(full.get_arguments().cloned())
        .subcommands(
            full.get_subcommands()
                .filter(|sc| !sc.is_hide_set())
                .cloned(),
        );
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut visible, "pulse", &mut script);
    print(&script)
}

/// Print pulse.1, or with `out`, write pulse.1 and one page per visible
/// command (pulse-scan.1, ...) into that directory.
pub(crate) fn man(out: Option<&Path>) -> u8 {
    let mut cmd = crate::command();
    // Built, each subcommand knows its full name (`pulse-scan`), which
    // names its page (pulse-scan.1) and titles it.
    cmd.build();
    let Some(dir) = out else {
        let mut page = Vec::new();
        if let Err(e) = clap_mangen::Man::new(cmd).render(&mut page) {
            return fail(EXIT_SETUP, format!("cannot render the man page: {e}"));
        }
        return print(&page);
    };
    if let Err(e) = std::fs::create_dir_all(dir) {
        return fail(EXIT_SETUP, format!("cannot create {}: {e}", dir.display()));
    }
    // The hidden farm-icmp-responder and clap's own `help` get no page.
    let pages = std::iter::once(cmd.clone()).chain(
        cmd.get_subcommands()
            .filter(|sc| !sc.is_hide_set() && sc.get_name() != "help")
            .cloned(),
    );
    for page in pages {
        match clap_mangen::Man::new(page).generate_to(dir) {
            Ok(path) => eprintln!("pulse: wrote {}", path.display()),
            Err(e) => {
                return fail(
                    EXIT_SETUP,
                    format!("cannot write a man page into {}: {e}", dir.display()),
                );
            }
        }
    }
    EXIT_UP
}

/// Write `text` to stdout, with the exit codes every pulse output has: a
/// closed pipe is 141, quietly; any other failure is 3.
fn print(text: &[u8]) -> u8 {
    let mut out = io::stdout().lock();
    match out.write_all(text).and_then(|()| out.flush()) {
        Ok(()) => EXIT_UP,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => EXIT_CLOSED_STDOUT,
        Err(e) => fail(EXIT_SETUP, format!("writing to stdout: {e}")),
    }
}
