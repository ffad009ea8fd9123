//! Session tests
use super::*;

#[test]
fn scratch() {
    let t0 = Instant::now();
    let t = crate::target::parse_target("http://127.0.0.1:8080/ok").unwrap();
    let mut s = Session::new(&t, Some(crate::tls::insecure()), DEFAULT_BODY_CAP, t0);
    println!("{:?}", s.step());
    s.connected(Ok(()), t0);
    if let Step::Write(b) = s.step() {
        println!("{:?}", String::from_utf8_lossy(b));
    }
    println!("{}", io::Error::from(io::ErrorKind::ConnectionReset));
    println!("{}", io::Error::from(io::ErrorKind::ConnectionRefused));
    println!("{}", io::Error::from(io::ErrorKind::BrokenPipe));
    println!("{:?}", "/x#frag".parse::<Uri>());
    println!("{:?}", "http://h/x#frag".parse::<Uri>());
    let base: Uri = "http://127.0.0.1:8080/a/b?q".parse().unwrap();
    for l in [
        "?page=2",
        "../x",
        "c",
        "/x#f",
        "http://h/x#top",
        "mailto:x",
        "//o:81/p",
        "ftp://h/",
        "http:/nohost",
        "",
    ] {
        println!("{l:?} -> {:?}", join_location(&base, l));
    }
    for d in [1500u64, 250, 5000, 1001, 61500] {
        println!("{}", fmt_duration(Duration::from_millis(d)));
    }
    println!("{}", fmt_duration(Duration::from_micros(500)));
    let t = crate::target::parse_target("https://127.0.0.1:8443/").unwrap();
    let mut s = Session::new(&t, Some(crate::tls::insecure()), DEFAULT_BODY_CAP, t0);
    s.connected(Ok(()), t0);
    if let Step::Write(b) = s.step() {
        println!("{:x?}", &b[..8]);
    }
}
