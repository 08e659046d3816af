//! The DHCPv4 client: DISCOVER, OFFER, REQUEST, ACK (RFC 2131) over a [`Transport`], with
//! retransmission, exponential back-off and one overall deadline.
//!
//! Everything that arrives is checked before it is believed: a datagram that does not decode,
//! is not a reply, carries another transaction id or another client's hardware address, or
//! comes from a server other than the one we chose, is skipped and the wait goes on.

use std::io;
use std::net::Ipv4Addr;
use std::time::Duration;

use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Decoder, Encodable};

/// First wait for a reply; doubled after each unanswered message.
const FIRST_WAIT: Duration = Duration::from_secs(1);
/// Longest wait between two retransmissions.
const MAX_WAIT: Duration = Duration::from_secs(8);
/// REQUESTs sent for one OFFER before starting over with a DISCOVER.
const REQUEST_TRIES: u32 = 4;
/// Largest datagram we read (a DHCP message fits an Ethernet frame).
pub const MAX_MESSAGE: usize = 1500;

/// Sends and receives DHCP datagrams on one interface; the real one is a UDP socket, tests
/// use a scripted server.
pub trait Transport {
    /// Sends one message to the servers (broadcast to port 67).
    fn send(&mut self, message: &[u8]) -> io::Result<()>;
    /// Waits at most `wait` for one datagram on port 68; `Ok(None)` when none came in time.
    fn recv(&mut self, buf: &mut [u8], wait: Duration) -> io::Result<Option<usize>>;
    /// Time since the exchange started.
    fn elapsed(&self) -> Duration;
}

/// What the server granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Our address.
    pub address: Ipv4Addr,
    /// Prefix length of the subnet.
    pub prefix: u8,
    /// Default gateway (the first router offered).
    pub router: Option<Ipv4Addr>,
    /// Name servers, in the server's order.
    pub dns: Vec<Ipv4Addr>,
    /// Lease time in seconds (`None`: the server gave none).
    pub lease_secs: Option<u32>,
    /// The server that granted it.
    pub server: Ipv4Addr,
}

/// Why no lease was obtained.
#[derive(Debug, thiserror::Error)]
pub enum DhcpError {
    /// Sending or receiving failed.
    #[error("DHCP socket: {0}")]
    Io(#[from] io::Error),
    /// No usable answer before the deadline.
    #[error("no DHCP lease after {secs} s ({offers} offers, {naks} refusals{last_nak})")]
    Timeout {
        /// Seconds waited.
        secs: u64,
        /// OFFERs received.
        offers: u32,
        /// NAKs received.
        naks: u32,
        /// The last NAK's message, as `: text`, or empty.
        last_nak: String,
    },
    /// A message could not be encoded (cannot happen with our fixed options; kept typed).
    #[error("DHCP message could not be encoded: {0}")]
    Encode(String),
}

/// Our identity in the exchange.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    /// The interface's hardware (MAC) address.
    pub mac: [u8; 6],
    /// Transaction id; a fresh one per exchange.
    pub xid: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reply {
    Offer,
    Ack,
    Nak,
}

/// A checked reply to us.
#[derive(Debug)]
struct Answer {
    kind: Reply,
    message: Message,
}

impl Client {
    /// Runs the exchange until a lease is granted or `timeout` has passed.
    pub fn obtain(
        &self,
        transport: &mut dyn Transport,
        timeout: Duration,
    ) -> Result<Lease, DhcpError> {
        let mut offers = 0;
        let mut naks = 0;
        let mut last_nak = String::new();
        let mut wait = FIRST_WAIT;
        let mut buf = vec![0u8; MAX_MESSAGE];
        'discover: while transport.elapsed() < timeout {
            // Selecting: DISCOVER until an OFFER comes.
            transport.send(&self.encode(MessageType::Discover, None)?)?;
            let Some(offer) =
                self.await_reply(transport, &mut buf, wait, timeout, None, &[Reply::Offer])?
            else {
                wait = (wait * 2).min(MAX_WAIT);
                continue;
            };
            offers += 1;
            let offered = offer.message.yiaddr();
            let server = server_of(&offer.message);
            // Requesting: ask for the offered address from that server.
            let mut request_wait = FIRST_WAIT;
            for _ in 0..REQUEST_TRIES {
                if transport.elapsed() >= timeout {
                    break 'discover;
                }
                transport.send(&self.encode(MessageType::Request, Some((offered, server)))?)?;
                let answer = self.await_reply(
                    transport,
                    &mut buf,
                    request_wait,
                    timeout,
                    Some(server),
                    &[Reply::Ack, Reply::Nak],
                )?;
                match answer {
                    Some(Answer {
                        kind: Reply::Ack,
                        message,
                    }) => return Ok(lease_of(&message, server)),
                    Some(Answer { message, .. }) => {
                        naks += 1;
                        last_nak = match message.opts().get(OptionCode::Message) {
                            Some(DhcpOption::Message(text)) => format!(": {}", printable(text)),
                            _ => String::new(),
                        };
                        // RFC 2131 4.4.4: after a NAK, start again with DISCOVER; pause
                        // first so a server that refuses at once is not flooded.
                        self.await_reply(transport, &mut buf, FIRST_WAIT, timeout, None, &[])?;
                        continue 'discover;
                    }
                    None => request_wait = (request_wait * 2).min(MAX_WAIT),
                }
            }
        }
        Err(DhcpError::Timeout {
            secs: transport.elapsed().as_secs(),
            offers,
            naks,
            last_nak,
        })
    }

    /// Waits up to `wait` (and never past `timeout`) for a reply of one of `kinds`.
    fn await_reply(
        &self,
        transport: &mut dyn Transport,
        buf: &mut [u8],
        wait: Duration,
        timeout: Duration,
        server: Option<Ipv4Addr>,
        kinds: &[Reply],
    ) -> Result<Option<Answer>, DhcpError> {
        let until = (transport.elapsed() + wait).min(timeout);
        loop {
            let now = transport.elapsed();
            if now >= until {
                return Ok(None);
            }
            let Some(len) = transport.recv(buf, until - now)? else {
                return Ok(None);
            };
            let Some(bytes) = buf.get(..len) else {
                continue;
            };
            if let Some(answer) = self.check(bytes, server) {
                if kinds.contains(&answer.kind) {
                    return Ok(Some(answer));
                }
            }
        }
    }

    /// Decodes a datagram and keeps it only if it is a usable reply to this exchange.
    fn check(&self, bytes: &[u8], server: Option<Ipv4Addr>) -> Option<Answer> {
        let message = Message::decode(&mut Decoder::new(bytes)).ok()?;
        if message.opcode() != Opcode::BootReply
            || message.xid() != self.xid
            || message.chaddr() != self.mac.as_slice()
        {
            return None;
        }
        let kind = match message.opts().msg_type()? {
            MessageType::Offer => Reply::Offer,
            MessageType::Ack => Reply::Ack,
            MessageType::Nak => Reply::Nak,
            _ => return None,
        };
        if let Some(chosen) = server {
            // Only the server we asked may answer the REQUEST (a NAK without an id is taken).
            match message.opts().get(OptionCode::ServerIdentifier) {
                Some(DhcpOption::ServerIdentifier(id)) if *id != chosen => return None,
                _ => {}
            }
        }
        let address = message.yiaddr();
        if kind != Reply::Nak
            && (address.is_unspecified()
                || address.is_broadcast()
                || address.is_multicast()
                || address.is_loopback())
        {
            return None;
        }
        Some(Answer { kind, message })
    }

    /// A DISCOVER, or a REQUEST for `(address, server)`.
    fn encode(
        &self,
        kind: MessageType,
        request: Option<(Ipv4Addr, Ipv4Addr)>,
    ) -> Result<Vec<u8>, DhcpError> {
        let mut message = Message::default();
        message
            .set_opcode(Opcode::BootRequest)
            .set_xid(self.xid)
            .set_chaddr(&self.mac)
            // We have no address yet, so the server must broadcast its replies to reach us.
            .set_flags(Flags::default().set_broadcast());
        let opts = message.opts_mut();
        opts.insert(DhcpOption::MessageType(kind));
        let mut id = Vec::with_capacity(7);
        id.push(1); // hardware type: Ethernet
        id.extend_from_slice(&self.mac);
        opts.insert(DhcpOption::ClientIdentifier(id));
        opts.insert(DhcpOption::ParameterRequestList(vec![
            OptionCode::SubnetMask,
            OptionCode::Router,
            OptionCode::DomainNameServer,
            OptionCode::AddressLeaseTime,
        ]));
        opts.insert(DhcpOption::MaxMessageSize(MAX_MESSAGE as u16));
        if let Some((address, server)) = request {
            opts.insert(DhcpOption::RequestedIpAddress(address));
            opts.insert(DhcpOption::ServerIdentifier(server));
        }
        message
            .to_vec()
            .map_err(|e| DhcpError::Encode(e.to_string()))
    }
}

/// The server's identifier option, or the address it says it is (`siaddr`) without one.
fn server_of(message: &Message) -> Ipv4Addr {
    match message.opts().get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(id)) => *id,
        _ => message.siaddr(),
    }
}

/// The lease an ACK grants.
fn lease_of(ack: &Message, server: Ipv4Addr) -> Lease {
    let address = ack.yiaddr();
    let prefix = match ack.opts().get(OptionCode::SubnetMask) {
        Some(DhcpOption::SubnetMask(mask)) => prefix_of(*mask),
        _ => None,
    }
    .unwrap_or_else(|| classful_prefix(address));
    let router = match ack.opts().get(OptionCode::Router) {
        Some(DhcpOption::Router(routers)) => routers.iter().copied().find(|r| !r.is_unspecified()),
        _ => None,
    };
    let dns = match ack.opts().get(OptionCode::DomainNameServer) {
        Some(DhcpOption::DomainNameServer(servers)) => servers
            .iter()
            .copied()
            .filter(|s| !s.is_unspecified())
            .collect(),
        _ => Vec::new(),
    };
    let lease_secs = match ack.opts().get(OptionCode::AddressLeaseTime) {
        Some(DhcpOption::AddressLeaseTime(secs)) => Some(*secs),
        _ => None,
    };
    Lease {
        address,
        prefix,
        router,
        dns,
        lease_secs,
        server,
    }
}

/// The prefix length of a contiguous netmask; `None` for a mask with holes.
pub fn prefix_of(mask: Ipv4Addr) -> Option<u8> {
    let bits = u32::from(mask);
    let ones = bits.leading_ones();
    (bits.checked_shl(ones).unwrap_or(0) == 0).then_some(ones as u8)
}

/// The old class's prefix, for a server that sends no subnet mask (RFC 2132 says to assume it).
fn classful_prefix(address: Ipv4Addr) -> u8 {
    match address.octets()[0] {
        0..=127 => 8,
        128..=191 => 16,
        _ => 24,
    }
}

/// A server's text made safe to show on a console.
fn printable(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(80).collect()
}

/// A transaction id: distinct per boot and per interface, without waiting for the kernel's
/// random pool (which may not be ready this early).
pub fn new_xid(mac: &[u8; 6]) -> u32 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    // FNV-1a over the clock and the MAC: cheap mixing, not secrecy.
    let mut hash: u32 = 0x811c_9dc5;
    for byte in (now as u64).to_le_bytes().iter().chain(mac.iter()) {
        hash = (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
    const XID: u32 = 0x1234_5678;
    const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
    const OFFERED: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);

    /// What the fake server does with one client message.
    #[derive(Debug, Clone)]
    enum Step {
        /// Answer with these datagrams.
        Reply(Vec<Vec<u8>>),
        /// Say nothing (a lost message or reply).
        Lose,
    }

    /// A scripted server: one step per message the client sends; a fake clock that moves only
    /// when the client waits, so timeouts are exercised without sleeping.
    #[derive(Debug)]
    struct FakeServer {
        steps: VecDeque<Step>,
        pending: VecDeque<Vec<u8>>,
        sent: Vec<Message>,
        clock: Duration,
    }

    impl FakeServer {
        fn new(steps: Vec<Step>) -> Self {
            FakeServer {
                steps: steps.into(),
                pending: VecDeque::new(),
                sent: Vec::new(),
                clock: Duration::ZERO,
            }
        }
        fn kinds(&self) -> Vec<MessageType> {
            self.sent
                .iter()
                .map(|m| m.opts().msg_type().unwrap())
                .collect()
        }
    }

    impl Transport for FakeServer {
        fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
            self.sent
                .push(Message::decode(&mut Decoder::new(bytes)).unwrap());
            match self.steps.pop_front() {
                Some(Step::Reply(replies)) => self.pending.extend(replies),
                Some(Step::Lose) | None => {}
            }
            Ok(())
        }
        fn recv(&mut self, buf: &mut [u8], wait: Duration) -> io::Result<Option<usize>> {
            match self.pending.pop_front() {
                Some(reply) => {
                    self.clock += Duration::from_millis(5);
                    buf[..reply.len()].copy_from_slice(&reply);
                    Ok(Some(reply.len()))
                }
                None => {
                    self.clock += wait;
                    Ok(None)
                }
            }
        }
        fn elapsed(&self) -> Duration {
            self.clock
        }
    }

    fn reply(kind: MessageType, xid: u32, mac: &[u8], server: Ipv4Addr) -> Message {
        let mut m = Message::default();
        m.set_opcode(Opcode::BootReply).set_xid(xid).set_chaddr(mac);
        if kind != MessageType::Nak {
            m.set_yiaddr(OFFERED);
        }
        m.opts_mut().insert(DhcpOption::MessageType(kind));
        m.opts_mut().insert(DhcpOption::ServerIdentifier(server));
        m.opts_mut()
            .insert(DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)));
        m.opts_mut().insert(DhcpOption::Router(vec![SERVER]));
        m.opts_mut()
            .insert(DhcpOption::DomainNameServer(vec![Ipv4Addr::new(
                10, 0, 2, 3,
            )]));
        m.opts_mut().insert(DhcpOption::AddressLeaseTime(86400));
        m
    }

    fn bytes(m: &Message) -> Vec<u8> {
        m.to_vec().unwrap()
    }
    fn offer() -> Vec<u8> {
        bytes(&reply(MessageType::Offer, XID, &MAC, SERVER))
    }
    fn ack() -> Vec<u8> {
        bytes(&reply(MessageType::Ack, XID, &MAC, SERVER))
    }

    fn client() -> Client {
        Client { mac: MAC, xid: XID }
    }

    fn slirp_lease() -> Lease {
        Lease {
            address: OFFERED,
            prefix: 24,
            router: Some(SERVER),
            dns: vec![Ipv4Addr::new(10, 0, 2, 3)],
            lease_secs: Some(86400),
            server: SERVER,
        }
    }

    #[test]
    fn discover_offer_request_ack() {
        let mut server =
            FakeServer::new(vec![Step::Reply(vec![offer()]), Step::Reply(vec![ack()])]);
        let lease = client()
            .obtain(&mut server, Duration::from_secs(30))
            .unwrap();
        assert_eq!(lease, slirp_lease());
        assert_eq!(
            server.kinds(),
            [MessageType::Discover, MessageType::Request]
        );
        for m in &server.sent {
            assert_eq!(m.opcode(), Opcode::BootRequest);
            assert_eq!(m.xid(), XID);
            assert_eq!(m.chaddr(), MAC);
            assert!(
                m.flags().broadcast(),
                "replies must be broadcast to an address-less client"
            );
            match m.opts().get(OptionCode::ParameterRequestList) {
                Some(DhcpOption::ParameterRequestList(list)) => {
                    for code in [
                        OptionCode::SubnetMask,
                        OptionCode::Router,
                        OptionCode::DomainNameServer,
                    ] {
                        assert!(list.contains(&code), "{code:?} not requested");
                    }
                }
                other => panic!("no parameter request list: {other:?}"),
            }
        }
        let request = &server.sent[1];
        assert_eq!(
            request.opts().get(OptionCode::RequestedIpAddress),
            Some(&DhcpOption::RequestedIpAddress(OFFERED))
        );
        assert_eq!(
            request.opts().get(OptionCode::ServerIdentifier),
            Some(&DhcpOption::ServerIdentifier(SERVER))
        );
        assert!(request.ciaddr().is_unspecified());
        assert!(server.sent[0]
            .opts()
            .get(OptionCode::RequestedIpAddress)
            .is_none());
    }

    #[test]
    fn lost_messages_are_retransmitted_with_backoff() {
        let mut server = FakeServer::new(vec![
            Step::Lose,
            Step::Lose,
            Step::Reply(vec![offer()]),
            Step::Lose,
            Step::Reply(vec![ack()]),
        ]);
        let lease = client()
            .obtain(&mut server, Duration::from_secs(60))
            .unwrap();
        assert_eq!(lease.address, OFFERED);
        assert_eq!(
            server.kinds(),
            [
                MessageType::Discover,
                MessageType::Discover,
                MessageType::Discover,
                MessageType::Request,
                MessageType::Request
            ]
        );
        // Waited 1 s, then 2 s for offers, then 1 s for the first lost ACK (plus reply time).
        let waited = server.elapsed().as_millis();
        assert!((4000..4100).contains(&waited), "{waited} ms");
    }

    #[test]
    fn garbage_foreign_xid_other_mac_and_requests_are_ignored() {
        let mut wrong_xid = reply(MessageType::Offer, XID + 1, &MAC, SERVER);
        wrong_xid.set_yiaddr(Ipv4Addr::new(10, 9, 9, 9));
        let other_mac = reply(MessageType::Offer, XID, &[1, 2, 3, 4, 5, 6], SERVER);
        let mut our_own_request = reply(MessageType::Offer, XID, &MAC, SERVER);
        our_own_request.set_opcode(Opcode::BootRequest);
        let mut no_address = reply(MessageType::Offer, XID, &MAC, SERVER);
        no_address.set_yiaddr(Ipv4Addr::UNSPECIFIED);
        let mut truncated = offer();
        truncated.truncate(100);
        let garbage = vec![
            b"not dhcp at all".to_vec(),
            Vec::new(),
            truncated,
            bytes(&wrong_xid),
            bytes(&other_mac),
            bytes(&our_own_request),
            bytes(&no_address),
            // An ACK while selecting is not an answer to a DISCOVER.
            ack(),
            offer(),
        ];
        let mut server = FakeServer::new(vec![Step::Reply(garbage), Step::Reply(vec![ack()])]);
        let lease = client()
            .obtain(&mut server, Duration::from_secs(30))
            .unwrap();
        assert_eq!(lease, slirp_lease());
        assert_eq!(
            server.kinds(),
            [MessageType::Discover, MessageType::Request]
        );
    }

    #[test]
    fn ack_from_another_server_is_ignored() {
        let other = bytes(&reply(
            MessageType::Ack,
            XID,
            &MAC,
            Ipv4Addr::new(10, 0, 2, 99),
        ));
        let mut server = FakeServer::new(vec![
            Step::Reply(vec![offer()]),
            Step::Reply(vec![other, ack()]),
        ]);
        let lease = client()
            .obtain(&mut server, Duration::from_secs(30))
            .unwrap();
        assert_eq!(lease.server, SERVER);
        assert_eq!(
            server.kinds(),
            [MessageType::Discover, MessageType::Request]
        );
    }

    #[test]
    fn nak_starts_over_with_discover() {
        let mut nak = reply(MessageType::Nak, XID, &MAC, SERVER);
        nak.opts_mut()
            .insert(DhcpOption::Message("address taken".into()));
        let mut server = FakeServer::new(vec![
            Step::Reply(vec![offer()]),
            Step::Reply(vec![bytes(&nak)]),
            Step::Reply(vec![offer()]),
            Step::Reply(vec![ack()]),
        ]);
        let lease = client()
            .obtain(&mut server, Duration::from_secs(30))
            .unwrap();
        assert_eq!(lease.address, OFFERED);
        assert_eq!(
            server.kinds(),
            [
                MessageType::Discover,
                MessageType::Request,
                MessageType::Discover,
                MessageType::Request
            ]
        );
    }

    #[test]
    fn only_naks_end_in_a_timeout_that_says_so() {
        let mut nak = reply(MessageType::Nak, XID, &MAC, SERVER);
        nak.opts_mut()
            .insert(DhcpOption::Message("no\naddress".into()));
        // The server offers and refuses forever; the fake clock moves 5 ms per reply and the
        // client pauses 1 s after each refusal, so the overall deadline ends it after two
        // rounds, not after a flood.
        let steps = (0..2000)
            .map(|i| Step::Reply(vec![if i % 2 == 0 { offer() } else { bytes(&nak) }]))
            .collect();
        let mut server = FakeServer::new(steps);
        let err = client()
            .obtain(&mut server, Duration::from_secs(2))
            .unwrap_err();
        match err {
            DhcpError::Timeout {
                offers,
                naks,
                ref last_nak,
                ..
            } => {
                assert_eq!((offers, naks), (2, 2));
                assert_eq!(last_nak, ": noaddress");
            }
            other => panic!("{other}"),
        }
        assert!(err.to_string().contains("refusals: noaddress"), "{err}");
        assert_eq!(server.sent.len(), 4);
    }

    #[test]
    fn silence_times_out_at_the_deadline() {
        let mut server = FakeServer::new(vec![]);
        let err = client()
            .obtain(&mut server, Duration::from_secs(20))
            .unwrap_err();
        assert!(
            matches!(
                err,
                DhcpError::Timeout {
                    secs: 20,
                    offers: 0,
                    naks: 0,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(server.elapsed(), Duration::from_secs(20));
        // 1 + 2 + 4 + 8 + 5 (cut by the deadline): five DISCOVERs.
        assert_eq!(server.kinds(), [MessageType::Discover; 5]);
    }

    #[test]
    fn unanswered_requests_fall_back_to_discover() {
        let mut steps = vec![Step::Reply(vec![offer()])];
        steps.extend((0..REQUEST_TRIES).map(|_| Step::Lose));
        steps.push(Step::Reply(vec![offer()]));
        steps.push(Step::Reply(vec![ack()]));
        let mut server = FakeServer::new(steps);
        let lease = client()
            .obtain(&mut server, Duration::from_secs(60))
            .unwrap();
        assert_eq!(lease.address, OFFERED);
        let kinds = server.kinds();
        assert_eq!(kinds.len(), 2 + REQUEST_TRIES as usize + 1);
        assert_eq!(kinds[kinds.len() - 2], MessageType::Discover);
    }

    #[test]
    fn lease_without_mask_or_router() {
        let mut m = reply(MessageType::Ack, XID, &MAC, SERVER);
        m.opts_mut().remove(OptionCode::SubnetMask);
        m.opts_mut().remove(OptionCode::Router);
        m.opts_mut().remove(OptionCode::DomainNameServer);
        m.opts_mut().remove(OptionCode::AddressLeaseTime);
        let lease = lease_of(&m, SERVER);
        assert_eq!(lease.prefix, 8, "10/8 is class A");
        assert_eq!(lease.router, None);
        assert!(lease.dns.is_empty());
        assert_eq!(lease.lease_secs, None);
    }

    #[test]
    fn prefixes() {
        assert_eq!(prefix_of(Ipv4Addr::new(255, 255, 255, 0)), Some(24));
        assert_eq!(prefix_of(Ipv4Addr::new(255, 255, 255, 255)), Some(32));
        assert_eq!(prefix_of(Ipv4Addr::new(0, 0, 0, 0)), Some(0));
        assert_eq!(prefix_of(Ipv4Addr::new(255, 255, 240, 0)), Some(20));
        assert_eq!(prefix_of(Ipv4Addr::new(255, 0, 255, 0)), None);
        assert_eq!(classful_prefix(Ipv4Addr::new(172, 16, 0, 1)), 16);
        assert_eq!(classful_prefix(Ipv4Addr::new(192, 168, 0, 1)), 24);
    }

    #[test]
    fn xids_differ_per_interface() {
        assert_ne!(new_xid(&MAC), new_xid(&[0, 1, 2, 3, 4, 5]));
    }
}
