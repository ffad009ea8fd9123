//! Reading the files a user names (targets files, `ca=` bundles) within a
//! size cap, and reporting a targets file's errors, the same way for
//! `scan`, `check` and `serve`.
//!
//! Why a cap: `--targets /dev/zero`, `--targets - < /dev/zero` or
//! `yes '#c' | pulse scan --targets -` once grew without limit (6-13 GB in
//! seconds) and never ended. Every read here stops one byte past the cap,
//! whatever the file is (regular, FIFO, character device, stdin), so memory
//! stays bounded and the error comes at once.

use std::fmt;
use std::io::{self, Read};
use std::path::Path;
use std::str::FromStr;

use pulse_core::target::{TargetErrors, escape_controls};

/// The default cap on a targets file: 16 MiB holds about 400,000 targets
/// of a typical 40-byte line, far more than one scan or exporter probes, and
/// parsing that much takes well under a second and a few hundred MiB.
pub(crate) const DEFAULT_TARGETS_CAP: ByteSize = ByteSize(16 << 20);

/// The cap on any file a target names, set by the largest: a `ca=FILE`
/// bundle. The whole Mozilla root store in PEM (Debian's
/// ca-certificates.crt) is about 220 KiB.
pub(crate) const CA_CAP: u64 = 4 << 20;

/// A size given on the command line: `16MiB`, `512KiB`, `1GiB`, `1000000`
/// (bytes). `K`/`M`/`G` with or without `iB` are powers of 1024, as `ls -h`
/// and `ulimit` count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ByteSize(pub(crate) u64);

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (digits, unit) = t.split_at(split);
        let shift = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 0,
            "k" | "kb" | "kib" => 10,
            "m" | "mb" | "mib" => 20,
            "g" | "gb" | "gib" => 30,
            _ => {
                return Err(format!(
                    "`{s}` is not a size (examples: 16MiB, 512KiB, 1GiB, 1000000)"
                ));
            }
        };
        let n: u64 = digits
            .parse()
            .map_err(|_| format!("`{s}` is not a size (examples: 16MiB, 512KiB, 1GiB)"))?;
        let bytes = n
            .checked_mul(1 << shift)
            .ok_or_else(|| format!("size `{s}` is too large"))?;
        if bytes == 0 {
            return Err("the size must be greater than zero".into());
        }
        Ok(ByteSize(bytes))
    }
}

impl fmt::Display for ByteSize {
    /// The largest unit that divides it exactly, so the message repeats what
    /// the user could type: `16MiB`, `1500KiB`, `1000001`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
            if self.0 >= 1 << shift && self.0.is_multiple_of(1 << shift) {
                return write!(f, "{}{unit}", self.0 >> shift);
            }
        }
        write!(f, "{} bytes", self.0)
    }
}

/// Where a targets file comes from, as the user named it.
pub(crate) enum Source<'a> {
    /// `-`: standard input.
    Stdin,
    /// A path: a regular file, or anything else that can be opened and read
    /// (a FIFO, `/dev/stdin`, a process substitution).
    Path(&'a Path),
}

impl<'a> Source<'a> {
    pub(crate) fn of(path: &'a Path) -> Self {
        if path == Path::new("-") {
            Source::Stdin
        } else {
            Source::Path(path)
        }
    }

    /// The name messages use: `<stdin>`, or the path as given with any
    /// control character escaped (a file name may hold ESC too).
    pub(crate) fn name(&self) -> String {
        match self {
            Source::Stdin => "<stdin>".into(),
            Source::Path(p) => escape_controls(&p.display().to_string()).into_owned(),
        }
    }
}

/// The targets file's bytes, at most `cap` of them. `flag` is the option
/// that raises the cap, named in the error.
pub(crate) fn read_targets(
    source: &Source<'_>,
    cap: ByteSize,
    flag: &str,
) -> Result<Vec<u8>, String> {
    let name = source.name();
    let read = match source {
        Source::Stdin => read_capped(io::stdin().lock(), cap.0),
        Source::Path(p) => std::fs::File::open(p).and_then(|f| read_capped(f, cap.0)),
    };
    match read {
        Ok(Some(bytes)) => Ok(bytes),
        Ok(None) => Err(format!(
            "targets file {name} is larger than {cap}, the cap on a targets file (is it the \
             right file? /dev/zero, a binary, an endless pipe?); raise it with {flag} if it \
             really is a targets file"
        )),
        Err(e) if matches!(source, Source::Stdin) => {
            Err(format!("cannot read targets from stdin: {e}"))
        }
        Err(e) => Err(format!("cannot read targets file {name}: {e}")),
    }
}

/// A file a target names (`ca=`, `body_file=`, `auth_file=`), at most
/// [`CA_CAP`] bytes: what [`pulse_core::plan::Plan::new`] calls to load
/// one. The core applies each option's own, smaller cap after this; this
/// one bounds what is read at all (a target naming /dev/zero).
pub(crate) fn read_named(path: &Path) -> io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    read_capped(file, CA_CAP)?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "larger than {}, the cap on a file a target names (is it the right file?)",
                ByteSize(CA_CAP)
            ),
        )
    })
}

/// All of `r` if it holds at most `cap` bytes, `None` if it holds more.
/// Reads at most `cap + 1` bytes either way.
fn read_capped(r: impl Read, cap: u64) -> io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    r.take(cap.saturating_add(1)).read_to_end(&mut buf)?;
    Ok((buf.len() as u64 <= cap).then_some(buf))
}

/// The line that closes a targets file's errors: how many lines were bad.
/// `None` when the one error is about the whole file ("no targets": an
/// empty file is not "1 bad target line").
pub(crate) fn bad_lines(errors: &TargetErrors, source: &str) -> Option<String> {
    let whole_file = errors.total == 1 && errors.errors.first().is_some_and(|e| e.line == 0);
    (!whole_file).then(|| format!("{} bad target line(s) in {source}", errors.total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let p = |s: &str| s.parse::<ByteSize>();
        assert_eq!(p("16MiB"), Ok(ByteSize(16 << 20)));
        assert_eq!(p("16m"), Ok(ByteSize(16 << 20)));
        assert_eq!(p("512 KiB"), Ok(ByteSize(512 << 10)));
        assert_eq!(p("1000"), Ok(ByteSize(1000)));
        assert_eq!(p("2G"), Ok(ByteSize(2 << 30)));
        assert!(p("0").is_err());
        assert!(p("ten").unwrap_err().contains("not a size"));
        assert!(p("5TiB").unwrap_err().contains("not a size"));
        assert!(p("99999999999999999999").is_err());
        assert!(
            p("18446744073709551615GiB")
                .unwrap_err()
                .contains("too large")
        );
        assert_eq!(ByteSize(16 << 20).to_string(), "16MiB");
        assert_eq!(ByteSize(1500 << 10).to_string(), "1500KiB");
        assert_eq!(ByteSize(1001).to_string(), "1001 bytes");
    }

    #[test]
    fn reads_stop_one_byte_past_the_cap() {
        assert_eq!(read_capped(&b"abc"[..], 3).unwrap(), Some(b"abc".to_vec()));
        assert_eq!(read_capped(&b"abcd"[..], 3).unwrap(), None);
        // An endless reader (io::repeat is /dev/zero): bounded all the same.
        assert_eq!(read_capped(io::repeat(0), 1 << 20).unwrap(), None);
    }
}
