//! OPEN (RFC 4271 §4.2) and the capabilities we speak (RFC 5492).
//!
//! ```text
//! +-+-+-+-+-+-+-+-+
//! |    Version    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     My Autonomous System      |   AS_TRANS (23456) when ours needs 4 octets
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           Hold Time           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         BGP Identifier                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Opt Parm Len  |  Optional Parameters (type 2 = capabilities)  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Decoding is ours (checks every length, never panics); encoding goes through netgauze.
//! Capabilities we do not model are kept as [`Capability::Unknown`] and re-encoded as
//! they came, so nothing a peer says is lost in logs or tests.

use std::net::Ipv4Addr;

use bgpintent_api::Family;
use netgauze_bgp_pkt::capabilities::{
    BgpCapability, FourOctetAsCapability, GracefulRestartAddressFamily, GracefulRestartCapability,
    MultiProtocolExtensionsCapability, UnrecognizedCapability,
};
use netgauze_bgp_pkt::open::{BgpOpenMessage, BgpOpenMessageParameter};
use netgauze_iana::address_family::{AddressFamily, AddressType, SubsequentAddressFamily};

use super::{
    DecodeError, EncodeError,
    error::{OpenError, OpenSubcode},
    iana::{BGP_VERSION, afi, capability, graceful_restart as gr, open_param, safi},
};

/// An AFI/SAFI pair as carried in capabilities, MP_REACH and ROUTE-REFRESH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AfiSafi {
    pub afi: u16,
    pub safi: u8,
}

impl AfiSafi {
    pub const IPV4_UNICAST: AfiSafi = AfiSafi {
        afi: afi::IPV4,
        safi: safi::UNICAST,
    };
    pub const IPV6_UNICAST: AfiSafi = AfiSafi {
        afi: afi::IPV6,
        safi: safi::UNICAST,
    };

    pub const fn of(family: Family) -> Self {
        match family {
            Family::Ipv4 => Self::IPV4_UNICAST,
            Family::Ipv6 => Self::IPV6_UNICAST,
        }
    }

    /// The unicast family we carry, `None` for anything else.
    pub const fn family(self) -> Option<Family> {
        match (self.afi, self.safi) {
            (afi::IPV4, safi::UNICAST) => Some(Family::Ipv4),
            (afi::IPV6, safi::UNICAST) => Some(Family::Ipv6),
            _ => None,
        }
    }

    pub(super) fn to_netgauze(self) -> Option<AddressType> {
        let afi = AddressFamily::from_repr(self.afi)?;
        let safi = SubsequentAddressFamily::from_repr(self.safi)?;
        AddressType::from_afi_safi(afi, safi).ok()
    }
}

/// Graceful restart capability (RFC 4724 §3, N-bit from RFC 8538 §2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GracefulRestartCap {
    /// R-bit: the sender restarted and its peer should not wait for its EoR to flush.
    pub restarting: bool,
    /// N-bit: NOTIFICATIONs (but Hard Reset) and hold-timer expiry are graceful too.
    pub notification: bool,
    /// Restart time in seconds (12 bits).
    pub time: u16,
    /// Families with their F-bit (forwarding state preserved).
    pub families: Vec<(AfiSafi, bool)>,
}

/// A capability as advertised in OPEN.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Capability {
    /// RFC 4760.
    Multiprotocol(AfiSafi),
    /// RFC 2918.
    RouteRefresh,
    /// RFC 4724 / RFC 8538.
    GracefulRestart(GracefulRestartCap),
    /// RFC 6793: our real AS.
    FourOctetAs(u32),
    /// Any other capability, kept verbatim.
    Unknown { code: u8, value: Vec<u8> },
}

impl Capability {
    pub fn code(&self) -> u8 {
        match self {
            Capability::Multiprotocol(_) => capability::MULTIPROTOCOL,
            Capability::RouteRefresh => capability::ROUTE_REFRESH,
            Capability::GracefulRestart(_) => capability::GRACEFUL_RESTART,
            Capability::FourOctetAs(_) => capability::FOUR_OCTET_AS,
            Capability::Unknown { code, .. } => *code,
        }
    }

    /// The value octets as they go on the wire (used for lengths, for the data of an
    /// Unsupported Capability NOTIFICATION, and to encode what netgauze cannot).
    pub fn value_bytes(&self) -> Vec<u8> {
        match self {
            Capability::Multiprotocol(af) => {
                let [a, b] = af.afi.to_be_bytes();
                vec![a, b, 0, af.safi]
            }
            Capability::RouteRefresh => vec![],
            Capability::GracefulRestart(g) => {
                let mut flags_time = g.time & gr::TIME_MASK;
                if g.restarting {
                    flags_time |= gr::R_BIT;
                }
                if g.notification {
                    flags_time |= gr::N_BIT;
                }
                let mut v = flags_time.to_be_bytes().to_vec();
                for (af, fwd) in &g.families {
                    v.extend_from_slice(&af.afi.to_be_bytes());
                    v.push(af.safi);
                    v.push(if *fwd { gr::F_BIT } else { 0 });
                }
                v
            }
            Capability::FourOctetAs(asn) => asn.to_be_bytes().to_vec(),
            Capability::Unknown { value, .. } => value.clone(),
        }
    }

    /// Code, length, value: the TLV as it appears in the OPEN.
    pub fn tlv(&self) -> Vec<u8> {
        let value = self.value_bytes();
        let mut v = Vec::with_capacity(2 + value.len());
        v.push(self.code());
        v.push(value.len() as u8);
        v.extend_from_slice(&value);
        v
    }

    fn to_netgauze(&self) -> BgpCapability {
        let raw =
            || BgpCapability::Unrecognized(UnrecognizedCapability::new(self.code(), self.value_bytes()));
        match self {
            Capability::Multiprotocol(af) => match af.to_netgauze() {
                Some(t) => BgpCapability::MultiProtocolExtensions(MultiProtocolExtensionsCapability::new(t)),
                None => raw(),
            },
            Capability::RouteRefresh => BgpCapability::RouteRefresh,
            Capability::FourOctetAs(asn) => BgpCapability::FourOctetAs(FourOctetAsCapability::new(*asn)),
            Capability::GracefulRestart(g) => {
                let families: Option<Vec<_>> = g
                    .families
                    .iter()
                    .map(|(af, fwd)| {
                        af.to_netgauze()
                            .map(|t| GracefulRestartAddressFamily::new(*fwd, t))
                    })
                    .collect();
                match families {
                    Some(families) if g.time <= gr::TIME_MASK => BgpCapability::GracefulRestartCapability(
                        GracefulRestartCapability::new(g.restarting, g.notification, g.time, families),
                    ),
                    _ => raw(),
                }
            }
            Capability::Unknown { .. } => raw(),
        }
    }

    fn decode(code: u8, value: &[u8]) -> Result<Self, OpenError> {
        let malformed = |reason| OpenError::new(OpenSubcode::Unspecific, reason);
        Ok(match code {
            capability::MULTIPROTOCOL => match value {
                [a, b, _reserved, s] => Capability::Multiprotocol(AfiSafi {
                    afi: u16::from_be_bytes([*a, *b]),
                    safi: *s,
                }),
                _ => return Err(malformed("multiprotocol capability is not 4 octets")),
            },
            capability::ROUTE_REFRESH if value.is_empty() => Capability::RouteRefresh,
            capability::ROUTE_REFRESH => return Err(malformed("route refresh capability has a value")),
            capability::FOUR_OCTET_AS => match value {
                [a, b, c, d] => Capability::FourOctetAs(u32::from_be_bytes([*a, *b, *c, *d])),
                _ => return Err(malformed("4-octet AS capability is not 4 octets")),
            },
            capability::GRACEFUL_RESTART => {
                let (head, tuples) = value
                    .split_first_chunk::<2>()
                    .ok_or_else(|| malformed("graceful restart capability shorter than 2 octets"))?;
                if tuples.len() % 4 != 0 {
                    return Err(malformed("graceful restart families are not 4-octet tuples"));
                }
                let flags_time = u16::from_be_bytes(*head);
                Capability::GracefulRestart(GracefulRestartCap {
                    restarting: flags_time & gr::R_BIT != 0,
                    notification: flags_time & gr::N_BIT != 0,
                    time: flags_time & gr::TIME_MASK,
                    families: tuples
                        .chunks_exact(4)
                        .map(|t| {
                            let af = AfiSafi {
                                afi: u16::from_be_bytes([t[0], t[1]]),
                                safi: t[2],
                            };
                            (af, t[3] & gr::F_BIT != 0)
                        })
                        .collect(),
                })
            }
            _ => Capability::Unknown {
                code,
                value: value.to_vec(),
            },
        })
    }
}

/// An OPEN message, sent or received. Received values are syntactically valid but not
/// yet judged (peer AS, identifier, hold time are the session's business).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    pub version: u8,
    /// The 2-octet field: AS_TRANS when the real AS needs 4 octets.
    pub my_as: u16,
    pub hold_time: u16,
    pub router_id: Ipv4Addr,
    pub capabilities: Vec<Capability>,
}

impl Open {
    /// The sender's real AS: the 4-octet capability when present (RFC 6793 §4.1).
    pub fn asn(&self) -> u32 {
        self.four_octet_as().unwrap_or(u32::from(self.my_as))
    }

    pub fn four_octet_as(&self) -> Option<u32> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::FourOctetAs(asn) => Some(*asn),
            _ => None,
        })
    }

    /// Families advertised with the multiprotocol capability. RFC 4760 §8: a peer that
    /// sends none speaks IPv4 unicast only, which is what this returns for it.
    pub fn families(&self) -> Vec<AfiSafi> {
        let mp: Vec<AfiSafi> = self
            .capabilities
            .iter()
            .filter_map(|c| match c {
                Capability::Multiprotocol(af) => Some(*af),
                _ => None,
            })
            .collect();
        if mp.is_empty() {
            vec![AfiSafi::IPV4_UNICAST]
        } else {
            mp
        }
    }

    pub fn route_refresh(&self) -> bool {
        self.capabilities.contains(&Capability::RouteRefresh)
    }

    pub fn graceful_restart(&self) -> Option<&GracefulRestartCap> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::GracefulRestart(g) => Some(g),
            _ => None,
        })
    }

    /// The netgauze message: all capabilities in one optional parameter. netgauze writes
    /// the parameter length as `u8` without checking, so more than 253 octets of
    /// capabilities is refused here (we would need RFC 9072, and never send that much).
    pub(super) fn to_netgauze(&self) -> Result<BgpOpenMessage, EncodeError> {
        if self.version != BGP_VERSION {
            return Err(EncodeError::Invalid(format!("BGP version {}", self.version)));
        }
        let total: usize = self.capabilities.iter().map(|c| 2 + c.value_bytes().len()).sum();
        if total > 253 {
            return Err(EncodeError::Invalid(format!(
                "{total} octets of capabilities exceed one optional parameter"
            )));
        }
        let params = if self.capabilities.is_empty() {
            vec![]
        } else {
            let caps: Vec<_> = self.capabilities.iter().map(Capability::to_netgauze).collect();
            vec![BgpOpenMessageParameter::new_capabilities(caps)]
        };
        Ok(BgpOpenMessage::new(
            self.my_as,
            self.hold_time,
            self.router_id,
            params,
        ))
    }

    /// Parses an OPEN body (after the header). `body.len() >= 10` is checked by the
    /// framing (minimum OPEN length).
    pub(super) fn decode_body(body: &[u8]) -> Result<Self, DecodeError> {
        let unspecific = |reason| DecodeError::Open(OpenError::new(OpenSubcode::Unspecific, reason));
        let Some((fixed, rest)) = body.split_first_chunk::<10>() else {
            return Err(unspecific("OPEN shorter than 10 octets"));
        };
        let version = fixed[0];
        if version != BGP_VERSION {
            // RFC 4271 §6.2: data is the largest version we support.
            return Err(DecodeError::Open(
                OpenError::new(OpenSubcode::UnsupportedVersion, "BGP version is not 4")
                    .with_data(u16::from(BGP_VERSION).to_be_bytes().to_vec()),
            ));
        }
        let my_as = u16::from_be_bytes([fixed[1], fixed[2]]);
        let hold_time = u16::from_be_bytes([fixed[3], fixed[4]]);
        let router_id = Ipv4Addr::new(fixed[5], fixed[6], fixed[7], fixed[8]);
        let opt_len = usize::from(fixed[9]);

        // RFC 9072: Opt Parm Len 255 and a first parameter type of 255 announce the
        // extended format (2-octet lengths).
        let (params, extended) = if opt_len == 255 && rest.first() == Some(&open_param::EXTENDED_LENGTH) {
            let Some(&[_, hi, lo]) = rest.first_chunk::<3>() else {
                return Err(unspecific("extended optional parameters length missing"));
            };
            let len = usize::from(u16::from_be_bytes([hi, lo]));
            (&rest[3..], Some(len))
        } else {
            (rest, None)
        };
        let declared = extended.unwrap_or(opt_len);
        if declared != params.len() {
            return Err(unspecific(
                "optional parameters length does not match the message",
            ));
        }

        let mut capabilities = Vec::new();
        let mut p = params;
        while !p.is_empty() {
            let (ptype, value, tail) = if extended.is_some() {
                let Some(&[t, hi, lo]) = p.first_chunk::<3>() else {
                    return Err(unspecific("truncated optional parameter"));
                };
                let len = usize::from(u16::from_be_bytes([hi, lo]));
                let v = p
                    .get(3..3 + len)
                    .ok_or(unspecific("optional parameter overruns"))?;
                (t, v, &p[3 + len..])
            } else {
                let Some(&[t, l]) = p.first_chunk::<2>() else {
                    return Err(unspecific("truncated optional parameter"));
                };
                let len = usize::from(l);
                let v = p
                    .get(2..2 + len)
                    .ok_or(unspecific("optional parameter overruns"))?;
                (t, v, &p[2 + len..])
            };
            if ptype != open_param::CAPABILITIES {
                return Err(DecodeError::Open(OpenError::new(
                    OpenSubcode::UnsupportedOptionalParameter,
                    "optional parameter is not capabilities",
                )));
            }
            let mut c = value;
            while !c.is_empty() {
                let Some(&[code, l]) = c.first_chunk::<2>() else {
                    return Err(unspecific("truncated capability"));
                };
                let v = c
                    .get(2..2 + usize::from(l))
                    .ok_or(unspecific("capability overruns its parameter"))?;
                capabilities.push(Capability::decode(code, v)?);
                c = &c[2 + usize::from(l)..];
            }
            p = tail;
        }
        Ok(Open {
            version,
            my_as,
            hold_time,
            router_id,
            capabilities,
        })
    }
}
