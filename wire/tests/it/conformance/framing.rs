//! wire.md section A: the fixed header and framing (cases 1-13).

use bytes::Bytes;
use fastbus_wire::{ErrorKind, MAX_ARRAY_LEN, MAX_MESSAGE_LEN, Message, MessageType, frame_len};

use super::support::*;

/// Case 1 [BAD_BYTE_ORDER]: the first byte alone decides; a stream reader gives up after it.
#[test]
fn rejects_byte_order_marker_other_than_l_or_b() {
    for e in BOTH {
        for marker in [0u8, b'L', b'b', b' ', 0xff] {
            let bytes = RawMsg::call(e).marker(marker).bytes();
            assert_rejected(&bytes, ErrorKind::BadByteOrder, Some(0));
            let err = frame_len(&[marker]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::BadByteOrder);
        }
    }
}

/// Case 2 [BAD_PROTOCOL_VERSION]: the connection is dropped as soon as byte 3 is seen.
#[test]
fn rejects_protocol_version_other_than_1() {
    for e in BOTH {
        for version in [0u8, 2, 255] {
            let bytes = RawMsg::call(e).version(version).bytes();
            assert_rejected(&bytes, ErrorKind::BadProtocolVersion, Some(3));
            let err = frame_len(&bytes[..4]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::BadProtocolVersion);
        }
    }
}

/// Case 3 [BAD_MESSAGE_TYPE].
#[test]
fn rejects_message_type_0() {
    for e in BOTH {
        let bytes = RawMsg::call(e).msg_type(0).bytes();
        assert_rejected(&bytes, ErrorKind::BadMessageType, Some(1));
        assert_eq!(
            frame_len(&bytes[..2]).unwrap_err().kind(),
            ErrorKind::BadMessageType
        );
    }
}

/// Case 4: unknown message types are valid and ignored (zbus 5.19 stopped answering on these),
/// and the next message on the stream is still delivered.
#[test]
fn accepts_unknown_message_type_and_next_message_still_decodes() {
    for e in BOTH {
        for t in 5..=255u8 {
            let bytes = RawMsg::new(e, t).bytes();
            let msg = assert_accepted(&bytes);
            assert_eq!(msg.message_type(), MessageType(t));
            assert_eq!(msg.message_type().name(), None);
            assert!(
                !msg.expects_reply(),
                "an unknown type never expects a reply"
            );
        }
        // With header fields and a body, too.
        let mut body = W::new(e);
        body.s("x").u32(5);
        let bytes = RawMsg::call(e).msg_type(100).body("su", &body).bytes();
        let msg = assert_accepted(&bytes);
        assert_eq!(msg.message_type(), MessageType(100));
        assert_eq!(msg.body::<(&str, u32)>().unwrap(), ("x", 5));
    }
}

/// Case 4, second half: an unknown type must still be well formed.
#[test]
fn rejects_unknown_message_type_that_is_malformed() {
    for e in BOTH {
        let built = RawMsg::new(e, 200)
            .field(
                200,
                "y",
                FV::Custom(std::rc::Rc::new(|w: &mut W| {
                    w.y(5);
                })),
            )
            .build();
        assert_eq!((built.header_end, built.body_start), (21, 24));
        let mut bytes = built.bytes.clone();
        bytes[22] = 1;
        assert_rejected(&bytes, ErrorKind::PaddingNotNul, Some(22));
        let mut w = W::new(e);
        w.u32(2);
        let bytes = RawMsg::new(e, 200).body("b", &w).bytes();
        assert_rejected(&bytes, ErrorKind::BooleanNotZeroOrOne, None);
    }
}

/// Case 5: unknown flag bits are accepted and kept, also when the message is encoded again for
/// relaying.
#[test]
fn accepts_unknown_flag_bits_and_keeps_them_when_reencoded() {
    for e in BOTH {
        for flags in [0x08u8, 0x10, 0x20, 0x40, 0x80, 0xf8, 0xff] {
            let bytes = RawMsg::call(e).flags(flags).bytes();
            let msg = assert_accepted(&bytes);
            assert_eq!(msg.flags().0, flags);
            let again = msg.encode().unwrap();
            assert_eq!(again, bytes, "re-encoding changed the message");
        }
    }
}

/// Case 6 [BAD_SERIAL].
#[test]
fn rejects_serial_0() {
    for e in BOTH {
        let bytes = RawMsg::call(e).serial(0).bytes();
        assert_rejected(&bytes, ErrorKind::BadSerial, Some(8));
        assert_eq!(
            frame_len(&bytes[..16]).unwrap_err().kind(),
            ErrorKind::BadSerial
        );
    }
}

/// Case 7 [INSANE_BODY_LENGTH]: decided from the 16 fixed bytes, before anything is allocated.
#[test]
fn rejects_insane_body_length_from_the_fixed_header_alone() {
    for e in BOTH {
        for len in [u32::MAX, (1 << 27) + 1, 1 << 31] {
            let bytes = RawMsg::call(e).body_len(len).bytes();
            assert_rejected(&bytes, ErrorKind::InsaneBodyLength, Some(4));
            let err = frame_len(&bytes[..16]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InsaneBodyLength);
        }
        // 2^27 itself is a sane body length, but with any header the message is too long.
        let bytes = RawMsg::call(e).body_len(1 << 27).bytes();
        assert_rejected(&bytes, ErrorKind::MessageTooLong, Some(4));
    }
}

/// Case 8 [INSANE_FIELDS_ARRAY_LENGTH].
#[test]
fn rejects_insane_fields_array_length_from_the_fixed_header_alone() {
    for e in BOTH {
        for len in [u32::MAX, (1 << 27) + 1, 0xffff_fff8] {
            let bytes = RawMsg::call(e).fields_len(len).bytes();
            assert_rejected(&bytes, ErrorKind::InsaneFieldsArrayLength, Some(12));
            let err = frame_len(&bytes[..16]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InsaneFieldsArrayLength);
        }
    }
}

/// The header fields are an array, so 64 MiB is their limit too (wire.md's array limit, case
/// 44, applied to the header): a header past it, whose every field is known and valid (a PATH
/// of 64 MiB), is refused at the array's length word, not read field by field and accepted.
#[test]
fn rejects_header_fields_array_longer_than_64_mib() {
    let path = format!("/{}", "a".repeat(MAX_ARRAY_LEN));
    for e in BOTH {
        let bytes = RawMsg::call(e).replace(PATH, "o", fs(&path)).bytes();
        let err = Message::decode(Bytes::from(bytes)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ArrayLengthExceedsMaximum, "{err}");
        assert_eq!(err.offset(), Some(12), "{err}");
    }
}

fn fixed_header(e: fastbus_wire::Endian, body_len: u32, fields_len: u32) -> Vec<u8> {
    let mut w = W::new(e);
    w.y(e.marker())
        .y(1)
        .y(0)
        .y(1)
        .u32(body_len)
        .u32(1)
        .u32(fields_len);
    w.bytes()
}

/// Case 9 [MESSAGE_TOO_LONG]: a total of exactly 2^27 frames; one byte more does not, and no
/// pair of lengths whose 32-bit sum wraps around gets through.
#[test]
fn frames_message_of_exactly_128_mib_and_rejects_one_byte_more() {
    for e in BOTH {
        // 16 + 8 = 24 bytes of header (already a multiple of 8), then the body.
        let exact = fixed_header(e, (1 << 27) - 24, 8);
        assert_eq!(frame_len(&exact).unwrap(), Some(MAX_MESSAGE_LEN));
        // Header padding counts: 16 + 1 rounds up to 24.
        let padded = fixed_header(e, (1 << 27) - 24, 1);
        assert_eq!(frame_len(&padded).unwrap(), Some(MAX_MESSAGE_LEN));
        for (body, fields) in [
            ((1 << 27) - 23, 8),
            ((1 << 27) - 24, 9),
            ((1 << 27) - 16, 1),
            (1 << 27, 0),
            (1 << 27, 1 << 27),
        ] {
            let err = frame_len(&fixed_header(e, body, fields)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::MessageTooLong, "{body} + {fields}");
            assert_eq!(err.offset(), Some(4));
        }
        // Sums that wrap a u32 to something small.
        for (body, fields) in [
            (0x20u32, 0xffff_fff0u32),
            (0xffff_fff0, 0x20),
            (0x8000_0000, 0x8000_0000),
        ] {
            let err = frame_len(&fixed_header(e, body, fields)).unwrap_err();
            assert!(
                matches!(
                    err.kind(),
                    ErrorKind::InsaneBodyLength | ErrorKind::InsaneFieldsArrayLength
                ),
                "{body:#x} + {fields:#x}: {err}"
            );
        }
    }
}

/// Case 9 with real buffers (slow: builds two 128 MiB messages): the full decoder accepts a
/// message of exactly 2^27 bytes and rejects one of 2^27 + 1.
#[test]
fn decodes_message_of_exactly_128_mib_and_rejects_one_byte_more() {
    if !slow_tests_enabled("decodes_message_of_exactly_128_mib_and_rejects_one_byte_more") {
        return;
    }
    for e in BOTH {
        let header_len = RawMsg::call(e).body("ayay", &W::new(e)).build().body_start;
        // Body: ay of 64 MiB, then ay filling the rest.
        let first = 1usize << 26;
        let second = MAX_MESSAGE_LEN - header_len - 8 - first;
        for extra in [0usize, 1] {
            let mut w = W::new(e);
            w.u32(first as u32);
            w.buf.resize(w.len() + first, 7);
            w.u32((second + extra) as u32);
            w.buf.resize(w.len() + second + extra, 9);
            let bytes = RawMsg::call(e).body("ayay", &w).bytes();
            assert_eq!(bytes.len(), MAX_MESSAGE_LEN + extra);
            let r = Message::decode(Bytes::from(bytes));
            if extra == 0 {
                let msg = r.unwrap();
                let (a, b): (&[u8], &[u8]) = msg.body().unwrap();
                assert_eq!((a.len(), b.len()), (first, second));
            } else {
                assert_eq!(r.unwrap_err().kind(), ErrorKind::MessageTooLong);
            }
        }
    }
}

/// Case 10: a stream that ends part-way through a message needs more data until EOF, then fails
/// cleanly; no prefix is ever taken for a message.
#[test]
fn stream_ending_part_way_through_a_message_needs_more_data_then_fails_cleanly() {
    for e in BOTH {
        let mut body = W::new(e);
        body.s("hello").u64(3);
        let bytes = RawMsg::call(e).body("st", &body).bytes();
        for cut in 0..bytes.len() {
            let prefix = &bytes[..cut];
            match frame_len(prefix).unwrap() {
                None => assert!(cut < 16),
                Some(n) => assert_eq!(n, bytes.len()),
            }
            let err = Message::decode(Bytes::copy_from_slice(prefix)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotEnoughData, "cut at {cut}");
            for chunk in CHUNKINGS {
                match read_stream(prefix, chunk).as_slice() {
                    [] => assert_eq!(cut, 0),
                    [Event::Err(err)] => assert_eq!(err.kind(), ErrorKind::NotEnoughData),
                    other => panic!("cut at {cut}, chunks of {chunk}: {other:?}"),
                }
            }
        }
    }
}

/// Case 11 [TOO_MUCH_DATA]: a standalone decode of a buffer longer than the declared size fails;
/// on a stream the extra bytes are the next message.
#[test]
fn rejects_buffer_longer_than_declared_size_but_stream_reads_the_next_message() {
    for e in BOTH {
        let one = RawMsg::call(e).bytes();
        for extra in [vec![0u8], vec![0; 8], next_message(e)] {
            let mut both = one.clone();
            both.extend(&extra);
            let err = Message::decode(Bytes::from(both)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::TooMuchData);
            assert_eq!(err.offset(), Some(one.len()));
        }
        let mut stream = one.clone();
        stream.extend(next_message(e));
        for chunk in CHUNKINGS {
            match read_stream(&stream, chunk).as_slice() {
                [Event::Msg(a), Event::Msg(b)] => assert_eq!((a.serial(), b.serial()), (1, 99)),
                other => panic!("chunks of {chunk}: {other:?}"),
            }
        }
    }
}

/// Case 12 [ALIGNMENT_PADDING_NOT_NUL]: every byte between the end of the field array and the
/// 8-byte boundary must be zero.
#[test]
fn rejects_non_zero_byte_in_header_padding() {
    for e in BOTH {
        let built = RawMsg::call(e).build();
        assert!(
            built.header_end < built.body_start,
            "the test needs padding"
        );
        for at in built.header_end..built.body_start {
            let mut bytes = built.bytes.clone();
            bytes[at] = 1;
            assert_rejected(&bytes, ErrorKind::PaddingNotNul, Some(at));
        }
    }
}

/// Case 13: a field array length that ends inside a `(yv)` struct. The PATH field `/a` is
/// code at 16, signature `o` at 17..20, padding, length at 20..24, text at 24..26, NUL at 26.
#[test]
fn rejects_field_array_length_ending_inside_a_field() {
    use ErrorKind::*;
    let expected = [
        (1, NotEnoughData),              // no signature length byte
        (2, SignatureLengthOutOfBounds), // 'o' missing
        (3, SignatureLengthOutOfBounds), // NUL missing
        (4, NotEnoughData),              // no string length
        (5, NotEnoughData),
        (6, NotEnoughData),
        (7, NotEnoughData),
        (8, LengthOutOfBounds), // text missing
        (9, LengthOutOfBounds),
        (10, LengthOutOfBounds), // NUL missing
    ];
    for e in BOTH {
        let full = RawMsg::new(e, 1)
            .field(PATH, "o", fs("/a"))
            .field(MEMBER, "s", fs("M"))
            .build();
        for (cut, kind) in expected {
            let mut bytes = full.bytes[..16 + cut].to_vec();
            bytes[12..16].copy_from_slice(&match e {
                fastbus_wire::Endian::Little => (cut as u32).to_le_bytes(),
                fastbus_wire::Endian::Big => (cut as u32).to_be_bytes(),
            });
            bytes.resize((16 + cut).div_ceil(8) * 8, 0);
            let err = assert_rejected(&bytes, kind, None);
            assert!(err.offset().is_some_and(|o| o <= 16 + cut), "{err}");
        }
    }
}
