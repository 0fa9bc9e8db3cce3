//! Email: voicemail notifications sent by SMTP, from a durable outbox with retries.
//!
//! [`Mailer`] builds one message (RFC 5322, MIME per RFC 2045/2046: a `text/plain` UTF-8 body and
//! an optional base64 attachment) and delivers it to the `[email]` server over plain SMTP,
//! STARTTLS (RFC 3207, required: a server that does not offer it is refused before any
//! credentials or mail cross the wire) or implicit TLS (RFC 8314). Certificates are checked
//! against the system's roots (`/etc/ssl/certs`), plus any CA a caller adds (tests).
//!
//! The outbox worker ([`outbox::spawn`]) is the only user in the server: voicemail code queues a
//! mail in the database with `Store::enqueue_mail` and wakes the worker, which sends it from its
//! own task, so a slow or dead SMTP server never holds up a call.
//!
//! ```no_run
//! # async fn example() -> Result<(), sambung_server::mail::MailError> {
//! use sambung_server::config::EmailConfig;
//! use sambung_server::mail::{Attachment, Email, Mailer};
//!
//! let config = EmailConfig { server: Some("smtp.example.com".into()), ..EmailConfig::default() };
//! let mailer = Mailer::new(&config, None)?;
//! let wav = std::fs::read("message.wav").unwrap_or_default();
//! mailer
//!     .send(&Email {
//!         to: "alice@example.com",
//!         subject: "New voicemail from bob",
//!         body: "Bob left you a message of 12 seconds.",
//!         attachment: Some(Attachment { file_name: "voicemail.wav", content_type: "audio/wav", data: &wav }),
//!         message_id: None,
//!     })
//!     .await?;
//! # Ok(())
//! # }
//! ```

pub mod outbox;

use std::fmt;
use std::time::Duration;

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

use crate::config::{EmailConfig, SmtpTls};

pub use outbox::{MailWake, MailWorker, retry_at, spawn, spawn_with_ca};

/// One message to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Email<'a> {
    /// The one recipient (`To:` and the envelope).
    pub to: &'a str,
    pub subject: &'a str,
    /// Plain text, UTF-8.
    pub body: &'a str,
    pub attachment: Option<Attachment<'a>>,
    /// The `Message-ID` (RFC 5322 §3.6.4) with its angle brackets; `None` for a random one. The
    /// outbox gives each queued mail a fixed one, so that a mail sent twice (the server stopped
    /// between the delivery and the database update) is one message to the reader's client.
    pub message_id: Option<&'a str>,
}

/// A file sent along with an [`Email`], as a base64 MIME part.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Attachment<'a> {
    pub file_name: &'a str,
    /// A MIME type such as `audio/wav`.
    pub content_type: &'a str,
    pub data: &'a [u8],
}

impl fmt::Debug for Attachment<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attachment")
            .field("file_name", &self.file_name)
            .field("content_type", &self.content_type)
            .field("len", &self.data.len())
            .finish()
    }
}

/// Why a mail could not be built or sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// `[email] server` is unset.
    #[error("email is not configured ([email] server is unset)")]
    NotConfigured,
    /// An address that is not an RFC 5322 mailbox.
    #[error("invalid {field} address {value:?}: {reason}")]
    Address { field: &'static str, value: String, reason: String },
    /// The attachment's content type is not a MIME type.
    #[error("invalid attachment content type {0:?}")]
    ContentType(String),
    /// The message could not be put together.
    #[error("the message cannot be built: {0}")]
    Message(#[from] lettre::error::Error),
    /// The extra CA certificates given to [`Mailer::new`] are not PEM certificates.
    #[error("extra CA: {0}")]
    Ca(&'static str),
    /// The TLS settings cannot be built.
    #[error("TLS setup: {0}")]
    Tls(#[source] lettre::transport::smtp::Error),
    /// The SMTP exchange failed: no connection, TLS handshake, a refusal by the server.
    #[error("SMTP: {0}")]
    Smtp(#[source] lettre::transport::smtp::Error),
    /// The whole attempt took longer than `[email] timeout_seconds`.
    #[error("the SMTP server did not finish within {0} s")]
    Timeout(u64),
}

impl MailError {
    /// Whether sending the same mail again cannot succeed: a malformed mail, or a permanent
    /// refusal by the server (a 5yz reply, which RFC 5321 §4.2.1 says not to repeat as is).
    /// Everything else (no connection, a 4yz reply, a timeout) is worth a retry.
    pub fn is_permanent(&self) -> bool {
        match self {
            MailError::Address { .. } | MailError::ContentType(_) | MailError::Message(_) => true,
            MailError::Smtp(e) => e.is_permanent(),
            MailError::NotConfigured | MailError::Ca(_) | MailError::Tls(_) | MailError::Timeout(_) => false,
        }
    }
}

/// Sends mail through the `[email]` SMTP server. One connection per message (voicemail mail is
/// rare); cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// `host:port`, for logs.
    server: String,
    tls: SmtpTls,
    timeout_seconds: u64,
}

impl fmt::Debug for Mailer {
    // By hand: the transport holds the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("server", &self.server)
            .field("tls", &self.tls)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// A mailer for `config`'s server. `extra_ca_pem` is one or more PEM CA certificates
    /// trusted besides the system's roots (a test's own CA, a private relay's CA).
    pub fn new(config: &EmailConfig, extra_ca_pem: Option<&[u8]>) -> Result<Mailer, MailError> {
        let host = config.server.as_deref().ok_or(MailError::NotConfigured)?;
        let from = parse_mailbox("from", &config.from)?;
        let tls = match config.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::Starttls => Tls::Required(tls_parameters(host, extra_ca_pem)?),
            SmtpTls::Tls => Tls::Wrapper(tls_parameters(host, extra_ca_pem)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(config.port)
            .tls(tls)
            // Per connect, read and write; the whole attempt is bounded in `send`.
            .timeout(Some(Duration::from_secs(config.timeout_seconds)));
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Mailer {
            transport: builder.build(),
            from,
            server: format!("{host}:{}", config.port),
            tls: config.tls,
            timeout_seconds: config.timeout_seconds,
        })
    }

    /// The SMTP server as `host:port`.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The domain of the sender address, for message ids.
    pub fn from_domain(&self) -> &str {
        self.from.email.domain()
    }

    /// The message as it goes on the wire (headers and MIME body), for checks and logs.
    pub fn build(&self, email: &Email<'_>) -> Result<Message, MailError> {
        let to = parse_mailbox("to", email.to)?;
        let mut builder = Message::builder().from(self.from.clone()).to(to).subject(email.subject);
        if let Some(id) = email.message_id {
            builder = builder.message_id(Some(id.to_owned()));
        }
        let text = SinglePart::plain(email.body.to_owned());
        let message = match email.attachment {
            None => builder.singlepart(text)?,
            Some(a) => {
                let content_type = ContentType::parse(a.content_type)
                    .map_err(|_| MailError::ContentType(a.content_type.to_owned()))?;
                let body = Body::new_with_encoding(a.data.to_vec(), ContentTransferEncoding::Base64)
                    .map_err(|_| MailError::ContentType(a.content_type.to_owned()))?;
                let file = lettre::message::Attachment::new(a.file_name.to_owned()).body(body, content_type);
                builder.multipart(MultiPart::mixed().singlepart(text).singlepart(file))?
            }
        };
        Ok(message)
    }

    /// Builds and delivers one message; the attempt ends after `[email] timeout_seconds`.
    pub async fn send(&self, email: &Email<'_>) -> Result<(), MailError> {
        let message = self.build(email)?;
        let limit = Duration::from_secs(self.timeout_seconds);
        match tokio::time::timeout(limit, self.transport.send(message)).await {
            Ok(Ok(_response)) => Ok(()),
            Ok(Err(e)) => Err(MailError::Smtp(e)),
            Err(_elapsed) => Err(MailError::Timeout(self.timeout_seconds)),
        }
    }
}

fn parse_mailbox(field: &'static str, value: &str) -> Result<Mailbox, MailError> {
    value.parse::<Mailbox>().map_err(|e| MailError::Address { field, value: value.to_owned(), reason: e.to_string() })
}

/// TLS settings checking the server's certificate for `host` against the system's roots and
/// `extra_ca_pem`.
fn tls_parameters(host: &str, extra_ca_pem: Option<&[u8]>) -> Result<TlsParameters, MailError> {
    let mut builder = TlsParameters::builder(host.to_owned());
    if let Some(pem) = extra_ca_pem {
        // lettre takes a PEM without any certificate as an empty list: refuse it here.
        let mut certificates = CertificateDer::pem_slice_iter(pem);
        match certificates.next() {
            None => return Err(MailError::Ca("no certificate in the PEM text")),
            Some(Err(_)) => return Err(MailError::Ca("unreadable PEM certificate")),
            Some(Ok(_)) if certificates.any(|c| c.is_err()) => return Err(MailError::Ca("unreadable PEM certificate")),
            Some(Ok(_)) => {}
        }
        builder = builder.add_root_certificate(Certificate::from_pem(pem).map_err(MailError::Tls)?);
    }
    builder.build_rustls().map_err(MailError::Tls)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> EmailConfig {
        EmailConfig {
            server: Some("127.0.0.1".into()),
            tls: SmtpTls::None,
            from: "Sambung Voicemail <voicemail@example.com>".into(),
            ..EmailConfig::default()
        }
    }

    fn formatted(mailer: &Mailer, email: &Email<'_>) -> String {
        String::from_utf8(mailer.build(email).expect("build").formatted()).expect("ASCII on the wire")
    }

    #[test]
    fn unset_server_is_not_configured() {
        let config = EmailConfig::default();
        assert!(matches!(Mailer::new(&config, None), Err(MailError::NotConfigured)));
    }

    #[test]
    fn plain_message_has_the_headers_and_a_utf8_body() {
        let mailer = Mailer::new(&config(), None).expect("mailer");
        let text = formatted(
            &mailer,
            &Email {
                to: "alice@example.com",
                subject: "Hi",
                body: "Hello",
                attachment: None,
                message_id: Some("<m1@example.com>"),
            },
        );
        assert!(text.contains("From: \"Sambung Voicemail\" <voicemail@example.com>\r\n"), "{text}");
        assert!(text.contains("To: alice@example.com\r\n"), "{text}");
        assert!(text.contains("Subject: Hi\r\n"), "{text}");
        assert!(text.contains("Message-ID: <m1@example.com>\r\n"), "{text}");
        assert!(text.contains("Content-Type: text/plain; charset=utf-8\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\nHello\r\n"), "{text:?}");
    }

    #[test]
    fn attachment_is_a_base64_part() {
        let mailer = Mailer::new(&config(), None).expect("mailer");
        let data: Vec<u8> = (0..=255u8).collect();
        let email = Email {
            to: "alice@example.com",
            subject: "Voicemail",
            body: "See the attachment.",
            attachment: Some(Attachment { file_name: "message.wav", content_type: "audio/wav", data: &data }),
            message_id: None,
        };
        let text = formatted(&mailer, &email);
        assert!(text.contains("Content-Type: multipart/mixed;"), "{text}");
        assert!(text.contains("Content-Type: audio/wav\r\n"), "{text}");
        assert!(text.contains("Content-Transfer-Encoding: base64\r\n"), "{text}");
        assert!(text.contains("filename=\"message.wav\""), "{text}");
    }

    #[test]
    fn bad_addresses_and_types_are_permanent_errors() {
        let bad_from = EmailConfig { from: "not an address".into(), ..config() };
        let err = Mailer::new(&bad_from, None).expect_err("bad from");
        assert!(matches!(err, MailError::Address { field: "from", .. }), "{err}");

        let mailer = Mailer::new(&config(), None).expect("mailer");
        let email = Email { to: "nobody", subject: "s", body: "b", attachment: None, message_id: None };
        let err = mailer.build(&email).expect_err("bad to");
        assert!(matches!(err, MailError::Address { field: "to", .. }) && err.is_permanent(), "{err}");

        let data = [1u8, 2, 3];
        let attachment = Attachment { file_name: "x", content_type: "no type", data: &data };
        let email = Email { attachment: Some(attachment), to: "a@example.com", ..email };
        let err = mailer.build(&email).expect_err("bad content type");
        assert!(matches!(err, MailError::ContentType(_)) && err.is_permanent(), "{err}");
    }

    #[test]
    fn bad_extra_ca_is_refused() {
        let config = EmailConfig { tls: SmtpTls::Starttls, ..config() };
        let err = Mailer::new(&config, Some(b"not a certificate")).expect_err("bad pem");
        assert!(matches!(err, MailError::Ca(_)), "{err}");
        let garbled = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        let err = Mailer::new(&config, Some(garbled)).expect_err("bad base64");
        assert!(matches!(err, MailError::Ca(_)), "{err}");
    }

    #[test]
    fn debug_never_shows_the_password() {
        let config = EmailConfig { username: Some("u".into()), password: Some("hunter2-secret".into()), ..config() };
        let mailer = Mailer::new(&config, None).expect("mailer");
        assert!(!format!("{mailer:?}").contains("hunter2"));
    }
}
