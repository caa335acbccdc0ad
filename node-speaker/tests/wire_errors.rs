//! Malformed input and the NOTIFICATION (or RFC 7606 outcome) it must produce: one test
//! per row of the table in `wire/update_decode.rs`, plus header and OPEN errors.

use bgpintent_speaker::wire::{
    AttrAction, DecodeCtx, DecodeError, HeaderError, Message, Notification, UpdateSubcode, frame_len,
};

const EBGP: DecodeCtx = DecodeCtx {
    four_octet_as: true,
    ibgp: false,
};
const IBGP: DecodeCtx = DecodeCtx {
    four_octet_as: true,
    ibgp: true,
};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A message of `ty` around `body`, with a correct length.
fn msg(ty: u8, body: &str) -> Vec<u8> {
    let body = hex(body);
    let mut v = vec![0xff; 16];
    v.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    v.push(ty);
    v.extend_from_slice(&body);
    v
}

/// UPDATE with the given attribute octets and one IPv4 prefix 198.51.100.0/24.
fn update_with(attrs: &str) -> Vec<u8> {
    let a = hex(attrs);
    let body = format!("0000 {:04x} {} 18c63364", a.len(), attrs);
    msg(2, &body)
}

const ORIGIN: &str = "40010100";
const AS_PATH: &str = "400206020100 00fbf5";
const NEXT_HOP: &str = "400304c0000202";

fn notification(bytes: &[u8], ctx: &DecodeCtx) -> Notification {
    let e = Message::decode(bytes, ctx).expect_err("must be refused");
    e.notification().expect("answered with a NOTIFICATION")
}

fn decoded(bytes: &[u8], ctx: &DecodeCtx) -> bgpintent_speaker::wire::Update {
    match Message::decode(bytes, ctx) {
        Ok(Message::Update(u)) => u,
        other => panic!("expected an UPDATE, got {other:?}"),
    }
}

#[test]
fn header_errors() {
    let mut bad_marker = msg(4, "");
    bad_marker[3] = 0;
    let n = notification(&bad_marker, &EBGP);
    assert_eq!((n.code, n.subcode, n.data.as_slice()), (1, 1, &[][..]));

    let mut long = msg(4, "");
    long[16..18].copy_from_slice(&4097u16.to_be_bytes());
    assert_eq!(
        frame_len(&long),
        Err(DecodeError::Header(HeaderError::BadLength(4097)))
    );
    let n = HeaderError::BadLength(4097).notification();
    assert_eq!((n.code, n.subcode, n.data.as_slice()), (1, 2, &[0x10, 0x01][..]));

    let n = notification(&msg(9, ""), &EBGP);
    assert_eq!((n.code, n.subcode, n.data.as_slice()), (1, 3, &[9][..]));

    // KEEPALIVE must be exactly 19 octets; OPEN at least 29.
    let n = notification(&msg(4, "00"), &EBGP);
    assert_eq!((n.code, n.subcode, n.data.as_slice()), (1, 2, &[0, 20][..]));
    let n = notification(&msg(1, "04"), &EBGP);
    assert_eq!((n.code, n.subcode), (1, 2));
    // Fewer than 19 octets is "need more", not an error.
    assert_eq!(frame_len(&[0xff; 18]), Ok(None));
}

#[test]
fn malformed_notification_is_not_answered() {
    let e = Message::decode(&msg(3, "06"), &EBGP).unwrap_err();
    assert!(matches!(e, DecodeError::BadNotification(_)));
    assert_eq!(e.notification(), None);
}

#[test]
fn open_errors() {
    let n = notification(&msg(1, "03 fdf5 005a c0000202 00"), &EBGP);
    assert_eq!(
        (n.code, n.subcode, n.data.as_slice()),
        (2, 1, &[0, 4][..]),
        "data = highest version we speak"
    );
    let n = notification(&msg(1, "04 fdf5 005a c0000202 04 01 02 0000"), &EBGP);
    assert_eq!(
        (n.code, n.subcode),
        (2, 4),
        "optional parameter 1 (authentication) is not supported"
    );
    let n = notification(&msg(1, "04 fdf5 005a c0000202 05 02 03 0104 00"), &EBGP);
    assert_eq!((n.code, n.subcode), (2, 0), "capability overruns its parameter");
    let n = notification(&msg(1, "04 fdf5 005a c0000202 09 02 07 41 05 0000fdf5ff"), &EBGP);
    assert_eq!((n.code, n.subcode), (2, 0), "4-octet AS capability of 5 octets");
    let n = notification(&msg(1, "04 fdf5 005a c0000202 03 02 00"), &EBGP);
    assert_eq!(
        (n.code, n.subcode),
        (2, 0),
        "opt parm len disagrees with the message"
    );
}

#[test]
fn open_rfc9072_extended_parameters_are_read() {
    let m = msg(1, "04 fdf5 005a c0000202 ff ff 0007 02 0004 0200 4600");
    let Message::Open(o) = Message::decode(&m, &EBGP).unwrap() else {
        panic!()
    };
    assert!(o.route_refresh());
    assert_eq!(o.capabilities.len(), 2);
}

#[test]
fn update_length_fields_exceeding_the_message_reset() {
    let n = notification(&msg(2, "0010 0000"), &EBGP);
    assert_eq!(
        (n.code, n.subcode),
        (3, UpdateSubcode::MalformedAttributeList as u8)
    );
    let n = notification(&msg(2, "0000 0010 400101"), &EBGP);
    assert_eq!((n.code, n.subcode), (3, 1));
}

#[test]
fn bad_ipv4_nlri_resets_with_invalid_network_field() {
    for body in ["0000 0000 21c0000201ff", "0000 0000 18c000", "0002 2000 0000"] {
        let n = notification(&msg(2, body), &EBGP);
        assert_eq!((n.code, n.subcode), (3, 10), "{body}");
    }
}

#[test]
fn attribute_overrunning_the_list_is_treat_as_withdraw() {
    // NEXT_HOP claims 8 octets, 4 are there: the Total Attribute Length still finds the NLRI.
    let u = decoded(&update_with(&format!("{ORIGIN} {AS_PATH} 400308c0000202")), &EBGP);
    let e = u.treat_as_withdraw.unwrap();
    assert_eq!((e.action, e.type_code), (AttrAction::TreatAsWithdraw, 3));
    assert_eq!((u.announced(), u.withdrawn_count()), (0, 1));
    // Fewer than 3 octets left for a header.
    let u = decoded(&update_with(&format!("{ORIGIN} {AS_PATH} {NEXT_HOP} 40")), &EBGP);
    assert!(u.treat_as_withdraw.is_some());
}

#[test]
fn well_known_attribute_errors_are_treat_as_withdraw() {
    let cases = [
        (
            format!("40010103 {AS_PATH} {NEXT_HOP}"),
            UpdateSubcode::InvalidOriginAttribute,
        ),
        (
            format!("4001020000 {AS_PATH} {NEXT_HOP}"),
            UpdateSubcode::AttributeLengthError,
        ),
        (
            format!("{ORIGIN} 400206020200fbf5 {NEXT_HOP}"),
            UpdateSubcode::MalformedAsPath,
        ),
        (
            format!("{ORIGIN} 400206000100 00fbf5 {NEXT_HOP}"),
            UpdateSubcode::MalformedAsPath,
        ),
        (
            format!("{ORIGIN} 400206030100 00fbf5 {NEXT_HOP}"),
            UpdateSubcode::MalformedAsPath,
        ),
        (
            format!("{ORIGIN} {AS_PATH} 400305c000020200"),
            UpdateSubcode::AttributeLengthError,
        ),
        (
            format!("{ORIGIN} {AS_PATH} {NEXT_HOP} 80040300000a"),
            UpdateSubcode::AttributeLengthError,
        ),
        (
            format!("{ORIGIN} {AS_PATH} {NEXT_HOP} c0080300000a"),
            UpdateSubcode::OptionalAttributeError,
        ),
        (
            format!("{ORIGIN} {AS_PATH} {NEXT_HOP} c0200800000001 00000002"),
            UpdateSubcode::OptionalAttributeError,
        ),
        // Well-known with the optional bit set: flags conflict.
        (
            format!("c0010100 {AS_PATH} {NEXT_HOP}"),
            UpdateSubcode::AttributeFlagsError,
        ),
        // Missing NEXT_HOP while IPv4 NLRI is present.
        (
            format!("{ORIGIN} {AS_PATH}"),
            UpdateSubcode::MissingWellKnownAttribute,
        ),
    ];
    for (attrs, subcode) in cases {
        let u = decoded(&update_with(&attrs), &EBGP);
        let e = u
            .treat_as_withdraw
            .unwrap_or_else(|| panic!("{attrs}: not withdrawn"));
        assert_eq!(e.subcode, subcode, "{attrs}");
    }
}

#[test]
fn discardable_attributes_keep_the_routes() {
    let cases = [
        // LOCAL_PREF from an external peer (RFC 7606 §7.5).
        (format!("{ORIGIN} {AS_PATH} {NEXT_HOP} 40050400000064"), 5, EBGP),
        // ATOMIC_AGGREGATE with a value.
        (format!("{ORIGIN} {AS_PATH} {NEXT_HOP} 40060101"), 6, EBGP),
        // AGGREGATOR of 6 octets on a 4-octet session.
        (
            format!("{ORIGIN} {AS_PATH} {NEXT_HOP} c00706fdf5c0000202"),
            7,
            EBGP,
        ),
        // AS4_PATH with a zero-length segment.
        (format!("{ORIGIN} {AS_PATH} {NEXT_HOP} c0110202 00"), 17, EBGP),
        // ORIGINATOR_ID from an external peer.
        (format!("{ORIGIN} {AS_PATH} {NEXT_HOP} 800904c0000202"), 9, EBGP),
        // A repeated (non-MP) attribute: the first wins.
        (format!("{ORIGIN} {AS_PATH} {NEXT_HOP} 40010102"), 1, EBGP),
    ];
    for (attrs, code, ctx) in cases {
        let u = decoded(&update_with(&attrs), &ctx);
        assert!(u.treat_as_withdraw.is_none(), "{attrs}");
        assert_eq!(
            u.discarded.iter().map(|d| d.type_code).collect::<Vec<_>>(),
            vec![code],
            "{attrs}"
        );
        assert_eq!(u.announced(), 1);
    }
    // The same LOCAL_PREF is fine on iBGP.
    let u = decoded(
        &update_with(&format!("{ORIGIN} 400200 {NEXT_HOP} 40050400000064")),
        &IBGP,
    );
    assert!(u.discarded.is_empty() && u.treat_as_withdraw.is_none());
}

#[test]
fn unrecognized_well_known_attribute_resets_with_the_attribute_as_data() {
    let n = notification(
        &update_with(&format!("{ORIGIN} {AS_PATH} {NEXT_HOP} 406301aa")),
        &EBGP,
    );
    assert_eq!(
        (n.code, n.subcode, n.data.as_slice()),
        (3, 2, &[0x40, 0x63, 0x01, 0xaa][..])
    );
    // An unknown optional attribute is carried, not refused.
    let u = decoded(
        &update_with(&format!("{ORIGIN} {AS_PATH} {NEXT_HOP} c06301aa")),
        &EBGP,
    );
    assert!(u.treat_as_withdraw.is_none() && u.discarded.is_empty());
}

#[test]
fn mp_attribute_errors_reset() {
    let mp_unreach = "800f03 000201";
    let n = notification(&msg(2, &format!("0000 000c {mp_unreach} {mp_unreach}")), &EBGP);
    assert_eq!((n.code, n.subcode), (3, 1), "MP_UNREACH twice");
    // Next hop length 20 is no IPv6 next hop.
    let n = notification(
        &msg(
            2,
            &format!(
                "0000 0023 {ORIGIN} 400200 800e19 000201 14 {} 00",
                "00".repeat(20)
            ),
        ),
        &EBGP,
    );
    assert_eq!((n.code, n.subcode), (3, 9));
    // Prefix length 129.
    let n = notification(
        &msg(
            2,
            &format!(
                "0000 0021 {ORIGIN} 400200 800e17 000201 10 {} 00 81 00",
                "00".repeat(16)
            ),
        ),
        &EBGP,
    );
    assert_eq!((n.code, n.subcode), (3, 10));
    // Wrong flags on MP_REACH (transitive).
    let n = notification(&msg(2, "0000 0006 c00f03000201"), &EBGP);
    assert_eq!((n.code, n.subcode), (3, 4));
}

#[test]
fn route_refresh_of_wrong_length_is_code_7_with_the_message() {
    for body in ["0001000100", "000100", ""] {
        let m = msg(5, body);
        let n = notification(&m, &EBGP);
        assert_eq!((n.code, n.subcode), (7, 1), "{body}");
        assert_eq!(n.data, m);
    }
}

#[test]
fn two_octet_session_reads_two_octet_as_paths() {
    let two = DecodeCtx {
        four_octet_as: false,
        ibgp: false,
    };
    let u = decoded(
        &update_with(&format!("{ORIGIN} 40020402 01fbf5 {NEXT_HOP}")),
        &two,
    );
    assert!(u.treat_as_withdraw.is_none());
    // The same bytes on a 4-octet session are a malformed AS_PATH.
    let u = decoded(
        &update_with(&format!("{ORIGIN} 40020402 01fbf5 {NEXT_HOP}")),
        &EBGP,
    );
    assert!(u.treat_as_withdraw.is_some());
}
