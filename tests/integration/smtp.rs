//! A real SMTP server over TCP, in-process, that records what it receives and can
//! be told to refuse mail for a while (451, a transient error).
//!
//! It speaks the part of RFC 5321 a submission client uses: greeting, EHLO/HELO,
//! MAIL, RCPT, DATA (with dot-unstuffing), RSET, NOOP, QUIT. (mailin-embedded was
//! the plan, but 0.8.3 does not build without its rustls feature, which would put
//! aws-lc-rs beside ring in the graph.)

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Shared {
    mails: Arc<Mutex<Vec<String>>>,
    refusing: Arc<AtomicBool>,
}

/// A running server on 127.0.0.1; it lives until the test process ends.
pub struct SmtpServer {
    pub port: u16,
    shared: Shared,
}

fn session(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    out.write_all(b"220 test.invalid ESMTP\r\n")?;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_ascii_uppercase();
        let reply: &[u8] = if command.starts_with("EHLO") {
            b"250-test.invalid\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
        } else if command.starts_with("HELO")
            || command.starts_with("RSET")
            || command.starts_with("NOOP")
        {
            b"250 OK\r\n"
        } else if command.starts_with("MAIL") {
            if shared.refusing.load(Ordering::SeqCst) {
                b"451 4.3.0 Try again later\r\n"
            } else {
                b"250 OK\r\n"
            }
        } else if command.starts_with("RCPT") {
            b"250 OK\r\n"
        } else if command.starts_with("DATA") {
            out.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")?;
            let mut mail = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line)? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                mail.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            shared.mails.lock().unwrap().push(mail);
            b"250 OK queued\r\n"
        } else if command.starts_with("QUIT") {
            out.write_all(b"221 Bye\r\n")?;
            return Ok(());
        } else {
            b"502 Command not implemented\r\n"
        };
        out.write_all(reply)?;
    }
}

impl SmtpServer {
    pub fn start() -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Shared::default();
        let accepting = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = accepting.clone();
                std::thread::spawn(move || {
                    let _ = session(stream, &shared);
                });
            }
        });
        SmtpServer { port, shared }
    }

    pub fn refuse(&self, refusing: bool) {
        self.shared.refusing.store(refusing, Ordering::SeqCst);
    }

    pub fn mails(&self) -> Vec<String> {
        self.shared.mails.lock().unwrap().clone()
    }

    /// The Message-IDs received, in order (with repeats, if any).
    pub fn message_ids(&self) -> Vec<String> {
        self.mails()
            .iter()
            .filter_map(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("Message-ID: "))
                    .map(str::to_owned)
            })
            .collect()
    }
}
