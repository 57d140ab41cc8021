//! A real SMTP server over TCP, in-process, that records what it receives and can
//! be told to refuse mail for a while (451, a transient error). It speaks plain
//! SMTP, STARTTLS or implicit TLS (rustls with ring, a certificate made at test
//! time), and can require AUTH PLAIN or LOGIN.
//!
//! It speaks the part of RFC 5321 a submission client uses: greeting, EHLO/HELO,
//! STARTTLS, AUTH, MAIL, RCPT, DATA (with dot-unstuffing), RSET, NOOP, QUIT.
//! (mailin-embedded was the plan, but 0.8.3 does not build without its rustls
//! feature, which would put aws-lc-rs beside ring in the graph.)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// How connections are secured.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Security {
    Plain,
    StartTls,
    ImplicitTls,
}

/// One received mail and how it came in.
#[derive(Clone, Debug)]
pub struct Received {
    pub text: String,
    pub encrypted: bool,
    pub user: Option<String>,
}

#[derive(Clone)]
struct Shared {
    mails: Arc<Mutex<Vec<Received>>>,
    refusing: Arc<AtomicBool>,
    security: Security,
    tls: Option<Arc<rustls::ServerConfig>>,
    credentials: Option<(String, String)>,
}

/// A running server on 127.0.0.1; it lives until the test process ends.
pub struct SmtpServer {
    pub port: u16,
    /// The PEM of the self-signed certificate, for clients to trust.
    pub certificate_pem: String,
    shared: Shared,
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

fn encrypt(
    tcp: &TcpStream,
    config: &Arc<rustls::ServerConfig>,
) -> std::io::Result<BufReader<Box<dyn Stream>>> {
    let connection =
        rustls::ServerConnection::new(config.clone()).map_err(std::io::Error::other)?;
    Ok(BufReader::new(Box::new(rustls::StreamOwned::new(
        connection,
        tcp.try_clone()?,
    ))))
}

fn read_line(io: &mut BufReader<Box<dyn Stream>>) -> std::io::Result<Option<String>> {
    let mut line = String::new();
    Ok((io.read_line(&mut line)? > 0).then_some(line))
}

fn reply(io: &mut BufReader<Box<dyn Stream>>, text: &str) -> std::io::Result<()> {
    io.get_mut().write_all(text.as_bytes())?;
    io.get_mut().flush()
}

fn decode(text: &str) -> String {
    String::from_utf8_lossy(&STANDARD.decode(text.trim()).unwrap_or_default()).into_owned()
}

fn session(tcp: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let tls = shared.tls.clone();
    let mut io: BufReader<Box<dyn Stream>> = match (&tls, shared.security) {
        (Some(config), Security::ImplicitTls) => encrypt(&tcp, config)?,
        _ => BufReader::new(Box::new(tcp.try_clone()?)),
    };
    let mut encrypted = shared.security == Security::ImplicitTls;
    let mut user: Option<String> = None;
    reply(&mut io, "220 test.invalid ESMTP\r\n")?;
    while let Some(line) = read_line(&mut io)? {
        let command = line.trim_end().to_string();
        let upper = command.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            let mut lines = vec!["250-test.invalid", "250-8BITMIME"];
            if shared.security == Security::StartTls && !encrypted {
                lines.push("250-STARTTLS");
            }
            if encrypted && shared.credentials.is_some() {
                lines.push("250-AUTH PLAIN LOGIN");
            }
            lines.push("250 SMTPUTF8");
            reply(&mut io, &(lines.join("\r\n") + "\r\n"))?;
        } else if upper.starts_with("STARTTLS")
            && shared.security == Security::StartTls
            && !encrypted
        {
            reply(&mut io, "220 2.0.0 Ready to start TLS\r\n")?;
            io = encrypt(&tcp, tls.as_ref().expect("STARTTLS needs a certificate"))?;
            encrypted = true;
        } else if upper.starts_with("AUTH") {
            let parts: Vec<&str> = command.split_whitespace().collect();
            let (name, password) = match parts.get(1).map(|m| m.to_ascii_uppercase()).as_deref() {
                Some("PLAIN") => {
                    let response = match parts.get(2) {
                        Some(r) => (*r).to_owned(),
                        None => {
                            reply(&mut io, "334 \r\n")?;
                            read_line(&mut io)?.unwrap_or_default()
                        }
                    };
                    let decoded = decode(&response);
                    let mut fields = decoded.split('\0').skip(1);
                    (
                        fields.next().unwrap_or_default().to_owned(),
                        fields.next().unwrap_or_default().to_owned(),
                    )
                }
                Some("LOGIN") => {
                    reply(&mut io, "334 VXNlcm5hbWU6\r\n")?;
                    let name = decode(&read_line(&mut io)?.unwrap_or_default());
                    reply(&mut io, "334 UGFzc3dvcmQ6\r\n")?;
                    (name, decode(&read_line(&mut io)?.unwrap_or_default()))
                }
                _ => (String::new(), String::new()),
            };
            if shared.credentials.as_ref() == Some(&(name.clone(), password)) {
                user = Some(name);
                reply(&mut io, "235 2.7.0 Authentication successful\r\n")?;
            } else {
                reply(&mut io, "535 5.7.8 Authentication credentials invalid\r\n")?;
            }
        } else if upper.starts_with("HELO")
            || upper.starts_with("RSET")
            || upper.starts_with("NOOP")
        {
            reply(&mut io, "250 OK\r\n")?;
        } else if upper.starts_with("MAIL") {
            if shared.credentials.is_some() && user.is_none() {
                reply(&mut io, "530 5.7.0 Authentication required\r\n")?;
            } else if shared.refusing.load(Ordering::SeqCst) {
                reply(&mut io, "451 4.3.0 Try again later\r\n")?;
            } else {
                reply(&mut io, "250 OK\r\n")?;
            }
        } else if upper.starts_with("RCPT") {
            reply(&mut io, "250 OK\r\n")?;
        } else if upper.starts_with("DATA") {
            reply(&mut io, "354 End data with <CR><LF>.<CR><LF>\r\n")?;
            let mut mail = String::new();
            while let Some(line) = read_line(&mut io)? {
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                mail.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            shared.mails.lock().unwrap().push(Received {
                text: mail,
                encrypted,
                user: user.clone(),
            });
            reply(&mut io, "250 OK queued\r\n")?;
        } else if upper.starts_with("QUIT") {
            reply(&mut io, "221 Bye\r\n")?;
            return Ok(());
        } else {
            reply(&mut io, "502 Command not implemented\r\n")?;
        }
    }
    Ok(())
}

impl SmtpServer {
    pub fn start() -> SmtpServer {
        SmtpServer::with(Security::Plain, None)
    }

    /// A server with the given security, requiring `credentials` (user, password) if given.
    pub fn with(security: Security, credentials: Option<(&str, &str)>) -> SmtpServer {
        let certified = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
        ])
        .unwrap();
        let key =
            rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key)
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Shared {
            mails: Arc::default(),
            refusing: Arc::default(),
            security,
            tls: Some(Arc::new(tls)),
            credentials: credentials.map(|(u, p)| (u.to_owned(), p.to_owned())),
        };
        let accepting = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = accepting.clone();
                std::thread::spawn(move || {
                    let _ = session(stream, &shared);
                });
            }
        });
        SmtpServer {
            port,
            certificate_pem: certified.cert.pem(),
            shared,
        }
    }

    pub fn refuse(&self, refusing: bool) {
        self.shared.refusing.store(refusing, Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.mails.lock().unwrap().clone()
    }

    pub fn mails(&self) -> Vec<String> {
        self.received().into_iter().map(|r| r.text).collect()
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
