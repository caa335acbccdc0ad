//! Encode and decode 100,000 IPv4 /32 and 100,000 IPv6 /128 as UPDATEs.
//!
//! `cargo bench -p bgpintent-speaker --bench wire` prints the message count and bytes
//! once, then criterion's time per iteration; divide by 100,000 for ns per prefix
//! (criterion's throughput line gives prefixes per second).

use std::{
    hint::black_box,
    net::{Ipv4Addr, Ipv6Addr},
};

use bgpintent_api::{Family, Prefix};
use bgpintent_speaker::wire::{DecodeCtx, EncodeCtx, Message, NextHop, RouteAttrs, build_updates};
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const N: u32 = 100_000;

fn v4() -> Vec<Prefix> {
    // 198.18.0.0/15 (RFC 2544), as in the baseline measurements.
    (0..N)
        .map(|i| Prefix::host(Ipv4Addr::from(0xc612_0000 + i).into()))
        .collect()
}

fn v6() -> Vec<Prefix> {
    (0..N)
        .map(|i| Prefix::host(Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(i)).into()))
        .collect()
}

fn attrs() -> RouteAttrs {
    RouteAttrs {
        as_path: vec![64500],
        communities: vec![(64500 << 16) | 100],
        ..RouteAttrs::default()
    }
}

fn encode(family: Family, prefixes: &[Prefix]) -> Vec<Bytes> {
    let nh = match family {
        Family::Ipv4 => NextHop::new("192.0.2.1".parse().unwrap()),
        Family::Ipv6 => NextHop::new("2001:db8::1".parse().unwrap()),
    };
    build_updates(family, &attrs(), Some(nh), prefixes, &[], &EncodeCtx::default()).unwrap()
}

fn decode(msgs: &[Bytes]) -> usize {
    let ctx = DecodeCtx {
        four_octet_as: true,
        ibgp: false,
    };
    msgs.iter()
        .map(|m| match Message::decode(m, &ctx).unwrap() {
            Message::Update(u) => u.announced(),
            _ => 0,
        })
        .sum()
}

fn bench(c: &mut Criterion) {
    for (family, prefixes) in [(Family::Ipv4, v4()), (Family::Ipv6, v6())] {
        let msgs = encode(family, &prefixes);
        let bytes: usize = msgs.iter().map(Bytes::len).sum();
        eprintln!("{family}: {N} prefixes -> {} UPDATEs, {bytes} bytes", msgs.len());
        assert_eq!(decode(&msgs), N as usize);

        let mut g = c.benchmark_group(format!("{family}"));
        g.throughput(Throughput::Elements(u64::from(N)));
        g.sample_size(20);
        g.bench_function("encode_100k", |b| b.iter(|| encode(family, black_box(&prefixes))));
        g.bench_function("decode_100k", |b| b.iter(|| decode(black_box(&msgs))));
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
