//! The UDP transport to the AWS X-Ray daemon (or the CloudWatch agent / ADOT
//! collector's X-Ray receiver, which speak the same protocol).
//!
//! The span → segment-document translation is opentelemetry-aws's (`Server`
//! spans become segments, the others subsegment documents with
//! `"type": "subsegment"` and their `parent_id`). Its own daemon client is not
//! used: it logs through the SDK on every failed send and gives no count of
//! what was lost. This one writes each document as one datagram,
//!
//! ```text
//! {"format": "json", "version": 1}\n{segment document}
//! ```
//!
//! on a connected, non-blocking socket: a send that would block, a document
//! over the 64 KiB datagram limit, or a daemon that is not listening (the
//! kernel reports the refused port on a later send) drops that document and
//! counts it. Nothing waits.

use std::{
    io,
    net::{SocketAddr, ToSocketAddrs, UdpSocket},
    sync::Mutex,
};

use opentelemetry_aws::xray_exporter::{SegmentDocument, SegmentDocumentExporter};

/// The daemon protocol's header line.
pub const HEADER: &[u8] = b"{\"format\": \"json\", \"version\": 1}\n";
/// Largest UDP payload.
const MAX_DATAGRAM: usize = 65_507;

/// Sends segment documents to the daemon; see the module docs.
#[derive(Debug)]
pub struct UdpDaemonClient {
    socket: UdpSocket,
    buffer: Mutex<Vec<u8>>,
}

impl UdpDaemonClient {
    /// Resolves `address` (`host:port`, once) and connects a socket to it.
    pub fn connect(address: &str) -> io::Result<Self> {
        let target: SocketAddr = address.to_socket_addrs()?.next().ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "the name resolves to no address")
        })?;
        let local: SocketAddr = if target.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local)?;
        socket.set_nonblocking(true)?;
        socket.connect(target)?;
        let mut buffer = Vec::with_capacity(8 * 1024);
        buffer.extend_from_slice(HEADER);
        Ok(Self {
            socket,
            buffer: Mutex::new(buffer),
        })
    }

    fn send(&self, document: &SegmentDocument<'_>) -> bool {
        let mut buffer = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
        buffer.truncate(HEADER.len());
        document.to_writer(&mut *buffer);
        buffer.len() <= MAX_DATAGRAM && self.socket.send(&buffer).is_ok()
    }
}

impl SegmentDocumentExporter for UdpDaemonClient {
    type Error = io::Error;

    async fn export_segment_documents(
        &self,
        batch: Vec<SegmentDocument<'_>>,
    ) -> Result<(), Self::Error> {
        let (mut sent, mut lost) = (0, 0);
        for document in &batch {
            if self.send(document) {
                sent += 1;
            } else {
                lost += 1;
            }
        }
        super::trace::count_exported(sent);
        super::trace::count_dropped(lost);
        Ok(())
    }
}
