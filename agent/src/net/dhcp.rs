//! The DHCPv4 client: DISCOVER, OFFER, REQUEST, ACK (RFC 2131) over a [`Transport`], with
//! retransmission, exponential back-off and one overall deadline.
//!
//! Everything that arrives is checked before it is believed: a datagram that does not decode,
//! is not a reply, carries another transaction id or another client's hardware address, or
//! comes from a server other than the one we chose, is skipped and the wait goes on.

use std::io;
use std::net::Ipv4Addr;
use std::time::Duration;

use smoltcp::wire::{DhcpMessageType as Kind, DhcpPacket, DhcpRepr, EthernetAddress};

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

/// A server's reply, decoded and checked to be for this exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    kind: Reply,
    /// `yiaddr`: the address offered or granted.
    address: Ipv4Addr,
    /// The server identifier option, or `siaddr` without one.
    server: Ipv4Addr,
    mask: Option<Ipv4Addr>,
    routers: Vec<Ipv4Addr>,
    dns: Vec<Ipv4Addr>,
    lease_secs: Option<u32>,
    /// A NAK's explanation (option 56), made printable.
    message: String,
}

/// DHCP option codes read beyond what smoltcp's `DhcpRepr` keeps.
const OPT_ROUTER: u8 = 3;
const OPT_MESSAGE: u8 = 56;
/// Options asked for: subnet mask, router, name servers, lease time.
const PARAMETERS: [u8; 4] = [1, 3, 6, 51];

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
            transport.send(&self.encode(Kind::Discover, None)?)?;
            let Some(offer) =
                self.await_reply(transport, &mut buf, wait, timeout, None, &[Reply::Offer])?
            else {
                wait = (wait * 2).min(MAX_WAIT);
                continue;
            };
            offers += 1;
            let server = offer.server;
            // Requesting: ask for the offered address from that server.
            let mut request_wait = FIRST_WAIT;
            for _ in 0..REQUEST_TRIES {
                if transport.elapsed() >= timeout {
                    break 'discover;
                }
                transport.send(&self.encode(Kind::Request, Some((offer.address, server)))?)?;
                let answer = self.await_reply(
                    transport,
                    &mut buf,
                    request_wait,
                    timeout,
                    Some(server),
                    &[Reply::Ack, Reply::Nak],
                )?;
                match answer {
                    Some(ack) if ack.kind == Reply::Ack => return Ok(lease_of(&ack, server)),
                    Some(nak) => {
                        naks += 1;
                        last_nak = if nak.message.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", nak.message)
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
        let packet = DhcpPacket::new_checked(bytes).ok()?;
        // The parser refuses a message type that does not match the op code, so a request
        // (ours, looped back, or another client's) never reads as a reply.
        let repr = DhcpRepr::parse(&packet).ok()?;
        if repr.transaction_id != self.xid || repr.client_hardware_address.as_bytes() != self.mac {
            return None;
        }
        let kind = match repr.message_type {
            Kind::Offer => Reply::Offer,
            Kind::Ack => Reply::Ack,
            Kind::Nak => Reply::Nak,
            _ => return None,
        };
        if let (Some(chosen), Some(id)) = (server, repr.server_identifier) {
            // Only the server we asked may answer the REQUEST (a NAK without an id is taken).
            if id != chosen {
                return None;
            }
        }
        let address = repr.your_ip;
        if kind != Reply::Nak
            && (address.is_unspecified()
                || address.is_broadcast()
                || address.is_multicast()
                || address.is_loopback())
        {
            return None;
        }
        let mut routers = Vec::new();
        let mut message = String::new();
        for option in packet.options() {
            match option.kind {
                // smoltcp keeps a router only when there is exactly one; take the list.
                OPT_ROUTER => routers.extend(
                    option
                        .data
                        .chunks_exact(4)
                        .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3])),
                ),
                OPT_MESSAGE => message = printable(&String::from_utf8_lossy(option.data)),
                _ => {}
            }
        }
        Some(Answer {
            kind,
            address,
            server: repr.server_identifier.unwrap_or(repr.server_ip),
            mask: repr.subnet_mask,
            routers,
            dns: repr
                .dns_servers
                .map(|list| list.iter().copied().collect())
                .unwrap_or_default(),
            lease_secs: repr.lease_duration,
            message,
        })
    }

    /// A DISCOVER, or a REQUEST for `(address, server)`.
    fn encode(
        &self,
        kind: Kind,
        request: Option<(Ipv4Addr, Ipv4Addr)>,
    ) -> Result<Vec<u8>, DhcpError> {
        let mac = EthernetAddress(self.mac);
        let repr = DhcpRepr {
            message_type: kind,
            transaction_id: self.xid,
            secs: 0,
            client_hardware_address: mac,
            client_ip: Ipv4Addr::UNSPECIFIED,
            your_ip: Ipv4Addr::UNSPECIFIED,
            server_ip: Ipv4Addr::UNSPECIFIED,
            router: None,
            subnet_mask: None,
            relay_agent_ip: Ipv4Addr::UNSPECIFIED,
            // We have no address yet, so the server must broadcast its replies to reach us.
            broadcast: true,
            requested_ip: request.map(|(address, _)| address),
            client_identifier: Some(mac),
            server_identifier: request.map(|(_, server)| server),
            parameter_request_list: Some(&PARAMETERS),
            dns_servers: None,
            max_size: Some(MAX_MESSAGE as u16),
            lease_duration: None,
            renew_duration: None,
            rebind_duration: None,
            additional_options: &[],
        };
        // Some servers drop BOOTP messages shorter than 300 bytes (RFC 1542); pad with zeroes.
        let mut bytes = vec![0u8; repr.buffer_len().max(300)];
        repr.emit(&mut DhcpPacket::new_unchecked(&mut bytes[..]))
            .map_err(|e| DhcpError::Encode(e.to_string()))?;
        Ok(bytes)
    }
}

/// The lease an ACK grants.
fn lease_of(ack: &Answer, server: Ipv4Addr) -> Lease {
    let prefix = ack
        .mask
        .and_then(prefix_of)
        .unwrap_or_else(|| classful_prefix(ack.address));
    Lease {
        address: ack.address,
        prefix,
        router: ack.routers.iter().copied().find(|r| !r.is_unspecified()),
        dns: ack
            .dns
            .iter()
            .copied()
            .filter(|s| !s.is_unspecified())
            .collect(),
        lease_secs: ack.lease_secs,
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
    use smoltcp::wire::{DhcpOpCode, DhcpOption};
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

    /// A message the client sent, as the server sees it.
    #[derive(Debug)]
    struct Sent {
        kind: Kind,
        xid: u32,
        mac: [u8; 6],
        broadcast: bool,
        client_ip: Ipv4Addr,
        requested: Option<Ipv4Addr>,
        server: Option<Ipv4Addr>,
        parameters: Vec<u8>,
        len: usize,
    }

    /// A scripted server: one step per message the client sends; a fake clock that moves only
    /// when the client waits, so timeouts are exercised without sleeping.
    #[derive(Debug)]
    struct FakeServer {
        steps: VecDeque<Step>,
        pending: VecDeque<Vec<u8>>,
        sent: Vec<Sent>,
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
        fn kinds(&self) -> Vec<Kind> {
            self.sent.iter().map(|m| m.kind).collect()
        }
    }

    impl Transport for FakeServer {
        fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
            let packet = DhcpPacket::new_checked(bytes).unwrap();
            assert_eq!(packet.opcode(), DhcpOpCode::Request);
            let repr = DhcpRepr::parse(&packet).unwrap();
            self.sent.push(Sent {
                kind: repr.message_type,
                xid: repr.transaction_id,
                mac: repr.client_hardware_address.0,
                broadcast: repr.broadcast,
                client_ip: repr.client_ip,
                requested: repr.requested_ip,
                server: repr.server_identifier,
                parameters: repr.parameter_request_list.unwrap_or_default().to_vec(),
                len: bytes.len(),
            });
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

    /// A server reply as slirp sends it: mask /24, router and name server, one-day lease.
    fn reply(
        kind: Kind,
        xid: u32,
        mac: [u8; 6],
        server: Ipv4Addr,
        extra: &[DhcpOption],
    ) -> Vec<u8> {
        let mut options = vec![DhcpOption {
            kind: 6,
            data: &[10, 0, 2, 3],
        }];
        options.extend_from_slice(extra);
        let repr = DhcpRepr {
            message_type: kind,
            transaction_id: xid,
            secs: 0,
            client_hardware_address: EthernetAddress(mac),
            client_ip: Ipv4Addr::UNSPECIFIED,
            your_ip: if kind == Kind::Nak {
                Ipv4Addr::UNSPECIFIED
            } else {
                OFFERED
            },
            server_ip: Ipv4Addr::UNSPECIFIED,
            router: Some(SERVER),
            subnet_mask: Some(Ipv4Addr::new(255, 255, 255, 0)),
            relay_agent_ip: Ipv4Addr::UNSPECIFIED,
            broadcast: true,
            requested_ip: None,
            client_identifier: None,
            server_identifier: Some(server),
            parameter_request_list: None,
            dns_servers: None,
            max_size: None,
            lease_duration: Some(86400),
            renew_duration: None,
            rebind_duration: None,
            additional_options: &options,
        };
        let mut bytes = vec![0u8; repr.buffer_len()];
        repr.emit(&mut DhcpPacket::new_unchecked(&mut bytes[..]))
            .unwrap();
        bytes
    }

    fn offer() -> Vec<u8> {
        reply(Kind::Offer, XID, MAC, SERVER, &[])
    }
    fn ack() -> Vec<u8> {
        reply(Kind::Ack, XID, MAC, SERVER, &[])
    }
    fn nak(text: &[u8]) -> Vec<u8> {
        reply(
            Kind::Nak,
            XID,
            MAC,
            SERVER,
            &[DhcpOption {
                kind: OPT_MESSAGE,
                data: text,
            }],
        )
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
        assert_eq!(server.kinds(), [Kind::Discover, Kind::Request]);
        for m in &server.sent {
            assert_eq!(m.xid, XID);
            assert_eq!(m.mac, MAC);
            assert!(
                m.broadcast,
                "replies must be broadcast to an address-less client"
            );
            assert!(m.client_ip.is_unspecified());
            assert!(m.len >= 300, "BOOTP minimum size: {}", m.len);
            for code in [1, 3, 6] {
                assert!(m.parameters.contains(&code), "option {code} not requested");
            }
        }
        assert_eq!(server.sent[0].requested, None);
        assert_eq!(server.sent[0].server, None);
        assert_eq!(server.sent[1].requested, Some(OFFERED));
        assert_eq!(server.sent[1].server, Some(SERVER));
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
                Kind::Discover,
                Kind::Discover,
                Kind::Discover,
                Kind::Request,
                Kind::Request
            ]
        );
        // Waited 1 s, then 2 s for offers, then 1 s for the first lost ACK (plus reply time).
        let waited = server.elapsed().as_millis();
        assert!((4000..4100).contains(&waited), "{waited} ms");
    }

    #[test]
    fn garbage_foreign_xid_other_mac_and_requests_are_ignored() {
        let mut our_own_request = offer();
        DhcpPacket::new_unchecked(&mut our_own_request[..]).set_opcode(DhcpOpCode::Request);
        let mut no_address = offer();
        DhcpPacket::new_unchecked(&mut no_address[..]).set_your_ip(Ipv4Addr::UNSPECIFIED);
        let mut broadcast_address = offer();
        DhcpPacket::new_unchecked(&mut broadcast_address[..]).set_your_ip(Ipv4Addr::BROADCAST);
        let mut bad_magic = offer();
        DhcpPacket::new_unchecked(&mut bad_magic[..]).set_magic_number(0x6382_5364);
        let mut truncated = offer();
        truncated.truncate(100);
        let mut cut_option = offer();
        cut_option.truncate(240 + 2); // the message type option's length byte is cut off
        let garbage = vec![
            b"not dhcp at all".to_vec(),
            Vec::new(),
            vec![0xff; 600],
            truncated,
            cut_option,
            bad_magic,
            reply(Kind::Offer, XID + 1, MAC, SERVER, &[]),
            reply(Kind::Offer, XID, [1, 2, 3, 4, 5, 6], SERVER, &[]),
            our_own_request,
            no_address,
            broadcast_address,
            // An ACK while selecting is not an answer to a DISCOVER.
            ack(),
            offer(),
        ];
        let mut server = FakeServer::new(vec![Step::Reply(garbage), Step::Reply(vec![ack()])]);
        let lease = client()
            .obtain(&mut server, Duration::from_secs(30))
            .unwrap();
        assert_eq!(lease, slirp_lease());
        assert_eq!(server.kinds(), [Kind::Discover, Kind::Request]);
    }

    #[test]
    fn ack_from_another_server_is_ignored() {
        let other = reply(Kind::Ack, XID, MAC, Ipv4Addr::new(10, 0, 2, 99), &[]);
        let mut server = FakeServer::new(vec![
            Step::Reply(vec![offer()]),
            Step::Reply(vec![other, ack()]),
        ]);
        let lease = client()
            .obtain(&mut server, Duration::from_secs(30))
            .unwrap();
        assert_eq!(lease.server, SERVER);
        assert_eq!(server.kinds(), [Kind::Discover, Kind::Request]);
    }

    #[test]
    fn several_routers_take_the_first() {
        let routers = [10, 0, 2, 1, 10, 0, 2, 2];
        let mut ack = reply(Kind::Ack, XID, MAC, SERVER, &[]);
        // Replace the single router option (3, 4, a.b.c.d) by a list of two.
        let at = ack.windows(2).position(|w| w == [3, 4]).unwrap();
        ack.splice(at..at + 6, [[3u8, 8].as_slice(), &routers].concat());
        let mut server = FakeServer::new(vec![Step::Reply(vec![offer()]), Step::Reply(vec![ack])]);
        let lease = client()
            .obtain(&mut server, Duration::from_secs(30))
            .unwrap();
        assert_eq!(lease.router, Some(Ipv4Addr::new(10, 0, 2, 1)));
    }

    #[test]
    fn nak_starts_over_with_discover() {
        let mut server = FakeServer::new(vec![
            Step::Reply(vec![offer()]),
            Step::Reply(vec![nak(b"address taken")]),
            Step::Reply(vec![offer()]),
            Step::Reply(vec![ack()]),
        ]);
        let lease = client()
            .obtain(&mut server, Duration::from_secs(30))
            .unwrap();
        assert_eq!(lease.address, OFFERED);
        assert_eq!(
            server.kinds(),
            [Kind::Discover, Kind::Request, Kind::Discover, Kind::Request]
        );
    }

    #[test]
    fn only_naks_end_in_a_timeout_that_says_so() {
        // The server offers and refuses forever; the fake clock moves 5 ms per reply and the
        // client pauses 1 s after each refusal, so the overall deadline ends it after two
        // rounds, not after a flood.
        let steps = (0..2000)
            .map(|i| {
                Step::Reply(vec![if i % 2 == 0 {
                    offer()
                } else {
                    nak(b"no\naddress\xff")
                }])
            })
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
                assert_eq!(last_nak, ": noaddress\u{fffd}");
            }
            ref other => panic!("{other}"),
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
        assert_eq!(server.kinds(), [Kind::Discover; 5]);
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
        assert_eq!(kinds[kinds.len() - 2], Kind::Discover);
    }

    #[test]
    fn lease_without_mask_router_or_dns() {
        let mut bare = reply(Kind::Ack, XID, MAC, SERVER, &[]);
        // Blank out the mask, router, name server and lease options (turn them into PADs).
        for code in [1u8, 3, 6, 51] {
            let at = bare[240..]
                .windows(2)
                .position(|w| w[0] == code && (w[1] == 4))
                .map(|i| i + 240)
                .unwrap();
            bare[at..at + 6].fill(0);
        }
        let answer = client().check(&bare, None).unwrap();
        let lease = lease_of(&answer, SERVER);
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
